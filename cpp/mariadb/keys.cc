/*
  BTREE key bytes: a row's key parts and an index_read key tuple become
  memcomparable bytes (the column's collation applied with the server's own
  strnxfrm / sort_string, as MyRocks does), so Rust orders keys with memcmp; and
  the columns that can be read back from those bytes (index-only reads).
*/
#include "ha_rust.h"

#include <sql_class.h>
#include <key.h>

using ha_rust_ffi::PartRead;

static bool is_text(Field *f)
{
  switch (f->real_type()) {
  case MYSQL_TYPE_VARCHAR: case MYSQL_TYPE_VAR_STRING: case MYSQL_TYPE_STRING:
  case MYSQL_TYPE_TINY_BLOB: case MYSQL_TYPE_MEDIUM_BLOB:
  case MYSQL_TYPE_LONG_BLOB: case MYSQL_TYPE_BLOB:
  case MYSQL_TYPE_GEOMETRY:   /* binary, prefix keys only */
    return true;
  default:
    return false;
  }
}

/* Whether a string key part of this collation needs its length after its
   padded bytes (key format 2): binary strings and NO PAD collations, where
   'a' and 'a\0' (or 'a ') are different values. */
static bool length_matters(CHARSET_INFO *cs)
{
  return (cs->state & MY_CS_NOPAD) || cs == &my_charset_bin;
}

/* Key format 3: a string part of variable length (src/btree/keys.rs, spec in
   docs/btree-format.md) for a collation whose strnxfrm gives one level of
   weights and pads with a fixed unit. Multi-level collations (uca1400 and
   other accent/case-sensitive UCA ones whose weights are levels one after the
   other, padded level by level) and the Czech ones (their own multi-pass
   strnxfrm) keep the padded part of format 2. */
static bool chunked_part(CHARSET_INFO *cs, uint32_t key_format)
{
  uint levels= cs->levels_for_order;
  return key_format >= 3 && !(levels & (levels - 1)) &&
         !strstr(cs->coll_name.str, "czech");
}

/* utf8mb3/utf8mb4 binary collations compare code points, in the order of
   their UTF-8 bytes: the value's bytes are its weights (strnxfrm would take 3
   bytes a character), and a space's is 0x20. */
static bool utf8_bin(CHARSET_INFO *cs)
{
  return (cs->state & MY_CS_BINSORT) && (cs->state & MY_CS_UNICODE) &&
         cs->mbminlen == 1;
}

/* The weights of one space (what strnxfrm pads with) in a PAD SPACE
   collation, into pad[16]; 0 for NO PAD and binary ones. */
static size_t space_weights(CHARSET_INFO *cs, uchar *pad)
{
  if (length_matters(cs))
    return 0;
  if (utf8_bin(cs))
  {
    pad[0]= ' ';
    return 1;
  }
  return cs->strnxfrm(pad, 16, 1, (const uchar *) "", 0,
                      MY_STRXFRM_PAD_WITH_SPACE);
}

/* The collation weights of a string's first `nchars` characters, without
   padding, into w; returns their length. */
static size_t value_weights(CHARSET_INFO *cs, uint nchars, const String *s,
                            std::string &w)
{
  size_t len= cs->strnxfrmlen(nchars * cs->mbmaxlen);
  w.resize(len);
  return cs->strnxfrm((uchar *) &w[0], len, nchars,
                      (const uchar *) s->ptr(), s->length(), 0);
}

/* One key part of the field's current value, memcomparable: strings through
   their collation (strnxfrm over the first `length / mbmaxlen` characters; in
   key format 3 the value's weights in Rust's variable-length chunks, before it
   padded to a fixed length: PAD SPACE collations compare trailing spaces away), other
   types through the server's sort_string(). */
void ha_rust::append_field_key(KEY_PART_INFO *kp, Field *f, std::string &out)
{
  if (is_text(f))
  {
    CHARSET_INFO *cs= f->charset();
    String *s= f->val_str(&key_text, &key_text);
    uint nchars= kp->length / cs->mbmaxlen;
    size_t len= cs->strnxfrmlen(nchars * cs->mbmaxlen);
    size_t at= out.size();
    if (chunked_part(cs, key_format))
    {
      /* the value's weights only (no padding), then Rust's chunks */
      static thread_local std::string w;
      uchar pad[16];
      size_t plen= space_weights(cs, pad);
      size_t wlen;
      if (utf8_bin(cs))
        w.assign(s->ptr(), wlen= std::min<size_t>(s->length(),
                 cs->charpos(s->ptr(), s->ptr() + s->length(), nchars)));
      else
        wlen= value_weights(cs, nchars, s, w);
      size_t max= ha_rust_ffi::string_key_max(wlen, plen);
      out.resize(at + max);
      size_t n= ha_rust_ffi::string_key(
          rust::Slice<const uint8_t>((const uint8_t *) w.data(), wlen),
          rust::Slice<const uint8_t>(pad, plen),
          rust::Slice<uint8_t>((uint8_t *) &out[at], max));
      out.resize(at + n);
      return;
    }
    out.resize(at + len);
    uint flags= MY_STRXFRM_PAD_TO_MAXLEN;
    if (!(cs->state & MY_CS_NOPAD))
      flags|= MY_STRXFRM_PAD_WITH_SPACE;
    cs->strnxfrm((uchar *) &out[at], len, nchars, (const uchar *) s->ptr(),
                 s->length(), flags);
    if (key_format >= 2 && length_matters(cs))
    {
      /* binary and NO PAD strings: padding cannot be told from trailing 0x00
         (or weight-0) characters, so the length in characters follows;
         shorter sorts first among equal padded bytes, as such strings do */
      size_t chars= cs->numchars(s->ptr(), s->ptr() + s->length());
      if (chars > nchars)
        chars= nchars;
      out.push_back((char) (chars >> 8));
      out.push_back((char) (chars & 0xff));
    }
    return;
  }
  uint len= f->sort_length();
  if (len > 3072)            /* never a key part of that size: be safe */
    len= kp->length;
  size_t at= out.size();
  out.resize(at + len + 8);   /* sort_string may write up to 8 bytes more */
  f->sort_string((uchar *) &out[at], len);
  out.resize(at + len);
}

/* The first `parts` parts of key `key` of the row at `record`. */
void ha_rust::append_key(uint key, const uchar *record, uint parts,
                         std::string &out, bool *has_null)
{
  KEY *k= table->key_info + key;
  my_ptrdiff_t off= record - table->record[0];
  for (uint i= 0; i < parts && i < k->user_defined_key_parts; i++)
  {
    KEY_PART_INFO *kp= k->key_part + i;
    Field *f= kp->field;
    if (off)
      f->move_field_offset(off);
    if (f->real_maybe_null())
    {
      if (f->is_null())
      {
        out.push_back(0);
        *has_null= true;
        if (off)
          f->move_field_offset(-off);
        continue;
      }
      out.push_back(1);
    }
    append_field_key(kp, f, out);
    if (off)
      f->move_field_offset(-off);
  }
}

void ha_rust::primary_key_of(const uchar *record, std::string &out)
{
  out.clear();
  if (table->s->primary_key == MAX_KEY)
    return;                      /* hidden: Rust gives the row id */
  bool has_null= false;
  append_key(table->s->primary_key, record, MAX_REF_PARTS, out, &has_null);
}

/* Every secondary index's key, in order (the vectors' memory is reused). */
void ha_rust::secondary_keys_of(const uchar *record, sec_keys &out)
{
  out.resize(server_key_of.size() > 1 ? server_key_of.size() - 1 : 0);
  for (uint r= 1; r < server_key_of.size(); r++)
  {
    key_tmp.clear();
    bool has_null= false;
    append_key(server_key_of[r], record, MAX_REF_PARTS, key_tmp, &has_null);
    ha_rust_ffi::SecKey &k= out[r - 1];
    k.has_null= has_null;
    k.key.clear();
    k.key.reserve(key_tmp.size());
    for (char c : key_tmp)
      k.key.push_back((uint8_t) c);
    k.unpack.clear();
    if (key_format >= KEY_FORMAT_UNPACK)
    {
      /* what rebuilds the string columns the key cannot give back: the
         key's, then the primary key's (read from every entry) */
      key_tmp.clear();
      append_unpack(server_key_of[r], record, key_tmp);
      if (pk_decodable)
        append_unpack(table->s->primary_key, record, key_tmp);
      for (char c : key_tmp)
        k.unpack.push_back((uint8_t) c);
    }
  }
}

/* A key tuple from the server (index_read, ranges) as memcomparable bytes, for
   the parts `map` names; returns how many parts. */
uint ha_rust::key_tuple(uint key, const uchar *tuple, key_part_map map,
                        std::string &out)
{
  out.clear();
  KEY *k= table->key_info + key;
  uint len= calculate_key_len(table, key, tuple, map);
  uint parts= 0;
  for (key_part_map m= map; m & 1; m>>= 1)
    parts++;
  uchar *rec= key_record.data();
  {
    /* A range's edge can hold more characters than the column (LIKE 'a%'
       gives 'a' then max_sort_char up to the key part's byte length): store
       it cut to the column without a "data too long" warning, which strict
       mode would turn into the statement's error. Cut, it still sorts at or
       above every value the column can hold. */
    THD *thd= ha_thd();
    Check_level_instant_set quiet(thd, CHECK_FIELD_IGNORE);
    Abort_on_warning_instant_set no_abort(thd, false);
    key_restore(rec, tuple, k, len);
  }
  bool has_null= false;
  append_key(key, rec, parts, out, &has_null);
  return parts;
}

/* ---- index-only reads ----
   A secondary entry is the key's memcomparable bytes then the primary key's
   (append_key); from tree format 5 its value also holds unpack bytes
   (append_unpack). Where sort_string() is a reversible image of the column's
   stored bytes, the column is read back from the key; string columns from
   their weights where those are their bytes, else from the unpack bytes. A
   query that needs only such columns is answered from the index without the
   clustered lookup (the server's keyread). Checked against MariaDB 10.11's
   field.cc:
   - TINYINT..BIGINT (and YEAR, a TINYINT UNSIGNED): the little-endian value
     written big-endian, the sign bit flipped when signed;
   - DATE (Field_newdate), ENUM, SET: the little-endian value big-endian;
   - DECIMAL (its binary image), DATETIME/TIMESTAMP/TIME in the MySQL 5.6
     formats (…2, big-endian already): the stored bytes as they are;
   - CHAR/VARCHAR/BINARY/VARBINARY, whole columns (format 5): binary strings
     and utf8mb3/utf8mb4 _bin collations from the key's chunks (their weights
     are their bytes; a PAD SPACE VARCHAR's trailing spaces, which the key
     drops, counted in the unpack bytes), every other collation from the
     value kept in the unpack bytes.
   Not decodable: prefix parts (TEXT/BLOB keys are always prefixes), FLOAT/
   DOUBLE (-0 and 0 have one sort key), BIT, the older temporal formats, and
   strings in tables of formats before 5. Decoding writes into Field buffers,
   so it is server glue, as append_field_key is: it stays here, next to the
   encoding it inverts (ARCHITECTURE.md: C++ owns key <-> bytes). */

/* A PAD SPACE collation whose weights are one a character, in the units
   src/btree/unpack.rs rebuilds characters from: 1 for an 8-bit one whose
   space weighs 0x20 (latin1_swedish_ci and the like), 2 for a utf8mb3/utf8mb4
   one whose weights are 2-byte code points (utf8mb4_general_ci and the
   like); else 0. (Rust checks each value: one whose weights are not one a
   character, as in latin1_german2_ci's 'ß', gets the value kept raw.) */
static uint case_units(CHARSET_INFO *cs)
{
  if (!chunked_part(cs, KEY_FORMAT_CASE) || (cs->state & MY_CS_NOPAD))
    return 0;
  uchar pad[16];
  size_t plen= space_weights(cs, pad);
  if (cs->mbmaxlen == 1 && plen == 1 && pad[0] == 0x20)
    return 1;
  if ((cs->state & MY_CS_UNICODE) && cs->mbminlen == 1 && plen == 2 &&
      pad[0] == 0 && pad[1] == 0x20)
    return 2;
  return 0;
}

/* How a string key part reads back (tree format `key_format`, 0: the format
   new tables get); *trail: a trailing-space count is in the unpack bytes. */
static PartRead string_unpack_of(const KEY_PART_INFO *kp,
                                    uint32_t key_format, bool *trail)
{
  Field *f= kp->field;
  if (key_format && key_format < KEY_FORMAT_UNPACK)
    return PartRead::None;
  if (f->real_type() != MYSQL_TYPE_VARCHAR && f->real_type() != MYSQL_TYPE_STRING)
    return PartRead::None;            /* TEXT/BLOB/GEOMETRY: prefix parts only */
  if ((kp->key_part_flag & HA_PART_KEY_SEG) || kp->length != f->key_length())
    return PartRead::None;
  CHARSET_INFO *cs= f->charset();
  if (chunked_part(cs, key_format ? key_format : KEY_FORMAT_UNPACK) &&
      (cs == &my_charset_bin || utf8_bin(cs)))
  {
    *trail= f->real_type() == MYSQL_TYPE_VARCHAR && !length_matters(cs);
    return PartRead::StringKey;
  }
  if ((!key_format || key_format >= KEY_FORMAT_CASE) && case_units(cs))
    return PartRead::StringCase;
  return PartRead::StringValue;
}

static PartRead unpack_of(const KEY_PART_INFO *kp, uint32_t key_format,
                             bool *trail)
{
  const Field *f= kp->field;
  *trail= false;
  if (!f)
    return PartRead::None;
  if (is_text((Field *) f))
    return string_unpack_of(kp, key_format, trail);
  if ((kp->key_part_flag & HA_PART_KEY_SEG) ||
      kp->length != f->key_length() || f->sort_length() != f->pack_length())
    return PartRead::None;
  switch (f->real_type()) {
  case MYSQL_TYPE_TINY: case MYSQL_TYPE_SHORT: case MYSQL_TYPE_INT24:
  case MYSQL_TYPE_LONG: case MYSQL_TYPE_LONGLONG:
    return (f->flags & UNSIGNED_FLAG) ? PartRead::Reverse : PartRead::ReverseSigned;
  case MYSQL_TYPE_YEAR: case MYSQL_TYPE_NEWDATE:
  case MYSQL_TYPE_ENUM: case MYSQL_TYPE_SET:
    return PartRead::Reverse;
  case MYSQL_TYPE_NEWDECIMAL: case MYSQL_TYPE_DATETIME2:
  case MYSQL_TYPE_TIMESTAMP2: case MYSQL_TYPE_TIME2:
    return PartRead::Copy;
  default:
    return PartRead::None;
  }
}

bool rust_key_part_decodable(const KEY_PART_INFO *kp, uint32_t key_format)
{
  bool trail;
  return unpack_of(kp, key_format, &trail) != PartRead::None;
}

static void put_varint(std::string &out, size_t n)
{
  for (; n >= 0x80; n>>= 7)
    out.push_back((char) (0x80 | (n & 0x7f)));
  out.push_back((char) n);
}

/* The unpack bytes of key `key`'s string parts for the row at `record`, in
   part order, none for a NULL part: a PartRead::StringValue part's value (its length
   as LEB128, then its bytes), a trailing PartRead::StringKey part's count of
   trailing spaces (LEB128). */
void ha_rust::append_unpack(uint key, const uchar *record, std::string &out)
{
  KEY *k= table->key_info + key;
  my_ptrdiff_t off= record - table->record[0];
  const std::vector<ha_rust_ffi::PartPlan> &parts= key_decode[key];
  for (size_t i= 0; i < parts.size(); i++)
  {
    if (parts[i].read != PartRead::StringValue &&
        parts[i].read != PartRead::StringCase && !parts[i].trail)
      continue;
    Field *f= k->key_part[i].field;
    if (f->real_maybe_null() && f->is_null(off))
      continue;
    if (off)
      f->move_field_offset(off);
    String *v= f->val_str(&key_text, &key_text);
    if (off)
      f->move_field_offset(-off);
    if (parts[i].read == PartRead::StringValue)
    {
      put_varint(out, v->length());
      out.append(v->ptr(), v->length());
    }
    else if (parts[i].read == PartRead::StringCase)
    {
      static thread_local std::string w;
      CHARSET_INFO *cs= f->charset();
      size_t wlen= value_weights(cs, k->key_part[i].length / cs->mbmaxlen, v, w);
      size_t at= out.size(), max= ha_rust_ffi::string_unpack_max(v->length());
      out.resize(at + max);
      size_t n= ha_rust_ffi::string_unpack(
          rust::Slice<const uint8_t>((const uint8_t *) v->ptr(), v->length()),
          rust::Slice<const uint8_t>((const uint8_t *) w.data(), wlen),
          cs->mbmaxlen > 1, rust::Slice<uint8_t>((uint8_t *) &out[at], max));
      out.resize(at + n);
    }
    else
    {
      size_t n= v->length(), sp= 0;
      while (sp < n && v->ptr()[n - 1 - sp] == ' ')
        sp++;
      put_varint(out, sp);
    }
  }
}

/* A string column's value into the record at `off` from the record[0]. */
static bool store_string(Field *f, my_ptrdiff_t off, const char *s, size_t n)
{
  uchar *to= f->ptr + off;
  if (f->real_type() == MYSQL_TYPE_VARCHAR)
  {
    Field_varstring *v= (Field_varstring *) f;
    if (n > v->field_length)
      return true;
    if (v->length_bytes == 1)
      *to= (uchar) n;
    else
      int2store(to, (uint16) n);
    memcpy(to + v->length_bytes, s, n);
    return false;
  }
  if (n > f->field_length)
    return true;
  CHARSET_INFO *cs= f->charset();
  memcpy(to, s, n);
  cs->fill((char *) to + n, f->field_length - n, cs->pad_char);
  return false;
}

/* The current entry's decodable columns into buf (the key's parts, then the
   primary key's), as Rust read them back by the plan of bt_setup_decode; the
   others are left alone. */
int ha_rust::bt_unpack_key(uchar *buf)
{
  if (int rc= (*tbl)->bt_read_entry(active_index, entry_bytes, entry_parts))
    return rust_rc(rc);
  my_ptrdiff_t off= buf - table->record[0];
  uint pk= table->s->primary_key;
  size_t n= 0, got= entry_parts.size();
  const ha_rust_ffi::ReadPart *read= entry_parts.data();
  const char *bytes= (const char *) entry_bytes.data();
  for (uint pass= 0; pass < 2; pass++)
  {
    if (pass == 1 && (pk == MAX_KEY || !pk_decodable || pk == active_index))
      break;                     /* hidden row id, or nothing to decode there */
    uint k= pass ? pk : active_index;
    const std::vector<ha_rust_ffi::PartPlan> &parts= key_decode[k];
    for (size_t i= 0; i < parts.size(); i++, n++)
    {
      if (n >= got)
        return HA_ERR_WRONG_IN_RECORD;
      const ha_rust_ffi::ReadPart &r= read[n];
      Field *f= table->key_info[k].key_part[i].field;
      if (r.state == ha_rust_ffi::PartState::Null)
        f->set_null(off);
      if (r.state != ha_rust_ffi::PartState::Value)
        continue;
      const char *v= bytes + r.at;
      f->set_notnull(off);
      if (parts[i].read == PartRead::Copy || parts[i].read == PartRead::Reverse ||
          parts[i].read == PartRead::ReverseSigned)
      {
        if (r.len != f->pack_length())
          return HA_ERR_WRONG_IN_RECORD;
        memcpy(f->ptr + off, v, r.len);
      }
      else if (store_string(f, off, v, r.len))
        return HA_ERR_WRONG_IN_RECORD;
    }
  }
  return 0;
}

/* ---- open ---- */

int ha_rust::bt_setup()
{
  rust_index_of.assign(table->s->keys, 0);
  server_key_of.assign(1, table->s->primary_key);
  for (uint k= 0; k < table->s->keys; k++)
  {
    if (k == table->s->primary_key)
      continue;
    rust_index_of[k]= (uint) server_key_of.size();
    server_key_of.push_back(k);
  }
  key_record.assign(table->s->rec_buff_length + 8, 0);
  memcpy(key_record.data(), table->s->default_values, table->s->reclength);
  max_pk_len= 8;
  if (table->s->primary_key != MAX_KEY)
  {
    KEY *k= table->key_info + table->s->primary_key;
    uint len= 0;
    for (uint i= 0; i < k->user_defined_key_parts; i++)
    {
      KEY_PART_INFO *kp= k->key_part + i;
      Field *f= kp->field;
      /* (+2: a length, in key format 2, for binary and NO PAD strings; or
         the chunks of format 3, whichever is longer: the format is not
         known yet) */
      if (is_text(f))
      {
        uchar pad[16];
        uint w= std::max<uint>(kp->length,   /* utf8_bin: the bytes */
                               (uint) f->charset()->strnxfrmlen(kp->length));
        size_t plen= space_weights(f->charset(), pad);
        len+= 1 + std::max<uint>(w + 2, (uint) ha_rust_ffi::string_key_max(w, plen));
      }
      else
        len+= 1 + f->sort_length();
    }
    max_pk_len= len;
  }
  ref_length= 2 + max_pk_len;

  return 0;
}

/* Once the Rust table is open and its format known: the key part layouts
   bt_unpack_key steps over (a string part's length depends on the format). */
void ha_rust::bt_setup_decode()
{
  key_format= (*tbl)->bt_key_format();
  same_index= MAX_KEY;           /* index_next_same's cached key is void */
  stat_parts.clear();

  /* index-only reads: which columns each index gives back */
  uint pk= table->s->primary_key, fields= table->s->fields;
  key_decode.assign(table->s->keys, {});
  std::vector<ha_rust_ffi::PartPlan> plan;
  for (uint k= 0; k < table->s->keys; k++)
    for (uint i= 0; i < table->key_info[k].user_defined_key_parts; i++)
    {
      KEY_PART_INFO *kp= table->key_info[k].key_part + i;
      bool trail;
      PartRead how= unpack_of(kp, key_format, &trail);
      bool wide= kp->field && kp->field->charset()->mbmaxlen > 1;
      key_decode[k].push_back({k, part_layout(kp), how, trail, wide});
      plan.push_back(key_decode[k].back());
    }
  pk_decodable= pk != MAX_KEY;
  for (size_t i= 0; pk_decodable && i < key_decode[pk].size(); i++)
    pk_decodable= key_decode[pk][i].read != PartRead::None;
  (*tbl)->bt_set_read_plan({plan.data(), plan.size()},
                           pk_decodable ? pk : UINT32_MAX);
  keyread_cols.assign((size_t) table->s->keys * fields, false);
  for (uint k= 0; k < table->s->keys; k++)
  {
    KEY *key= table->key_info + k;
    for (uint i= 0; i < key->user_defined_key_parts; i++)
    {
      KEY_PART_INFO *kp= key->key_part + i;
      if (key_decode[k][i].read != PartRead::None)
        keyread_cols[(size_t) k * fields + kp->fieldnr - 1]= true;
      else if (k != pk && rust_key_part_decodable(kp, 0))
      {
        /* a string part of a table of a format before 5: the share was
           built as for the current format (the handler that answered had
           no table open), so this TABLE's own fields are told otherwise */
        kp->field->part_of_key.clear_bit(k);
        table->covering_keys.clear_bit(k);
      }
    }
    if (pk_decodable && k != pk)
      for (uint i= 0; i < table->key_info[pk].user_defined_key_parts; i++)
        keyread_cols[(size_t) k * fields + table->key_info[pk].key_part[i].fieldnr - 1]= true;
  }
  /* Every secondary entry ends with the primary key: when all of it can be
     decoded, its columns can be read from any index (HA_PRIMARY_KEY_IN_READ_INDEX,
     see table_flags). The server sets part_of_key from that flag while it
     builds the share, when this handler cannot know the columns yet; so it is
     done here, on this TABLE's own Field copies (as MariaDB's MyRocks does in
     its open()). */
  if (pk_decodable)
    for (uint i= 0; i < table->key_info[pk].user_defined_key_parts; i++)
      table->key_info[pk].key_part[i].field->part_of_key.merge(table->s->keys_in_use);
}

/* The layout of one key part in a memcomparable key (as append_key writes it):
   its fixed length, or for a chunked string part the length of a space's
   weights; whether it is nullable (a 0/1 byte first, and nothing after a 0). */
ha_rust_ffi::KeyPart ha_rust::part_layout(KEY_PART_INFO *kp)
{
  Field *f= kp->field;
  uint32_t len;
  bool chunked= false;
  if (is_text(f) && chunked_part(f->charset(), key_format))
  {
    uchar pad[16];
    len= (uint32_t) space_weights(f->charset(), pad);
    chunked= true;
  }
  else if (is_text(f))
  {
    CHARSET_INFO *cs= f->charset();
    len= (uint32_t) cs->strnxfrmlen((kp->length / cs->mbmaxlen) * cs->mbmaxlen);
    if (key_format >= 2 && length_matters(cs))
      len+= 2;
  }
  else
  {
    len= f->sort_length();
    if (len > 3072)
      len= kp->length;
  }
  return {len, f->real_maybe_null(), chunked};
}
