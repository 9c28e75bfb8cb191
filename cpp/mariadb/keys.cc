/*
  BTREE key bytes: a row's key parts and an index_read key tuple become
  memcomparable bytes (the column's collation applied with the server's own
  strnxfrm / sort_string, as MyRocks does), so Rust orders keys with memcmp; and
  the columns that can be read back from those bytes (index-only reads).
*/
#include "ha_rust.h"

#include <sql_class.h>
#include <key.h>

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
      {
        w.resize(len);
        wlen= cs->strnxfrm((uchar *) &w[0], len, nchars,
                           (const uchar *) s->ptr(), s->length(), 0);
      }
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
   (append_key). Where sort_string() is a reversible image of the column's
   stored bytes, the column can be read back from the entry, and a query that
   needs only such columns is answered from the index without the clustered
   lookup (the server's keyread). Checked against MariaDB 10.11's field.cc:
   - TINYINT..BIGINT (and YEAR, a TINYINT UNSIGNED): the little-endian value
     written big-endian, the sign bit flipped when signed;
   - DATE (Field_newdate), ENUM, SET: the little-endian value big-endian;
   - DECIMAL (its binary image), DATETIME/TIMESTAMP/TIME in the MySQL 5.6
     formats (…2, big-endian already): the stored bytes as they are.
   Not decodable: strings (a collation's strnxfrm loses case, accents, trailing
   spaces), BLOB/TEXT, prefix parts, FLOAT/DOUBLE (-0 and 0 have one sort
   key), BIT, and the older temporal formats. Decoding writes into Field
   buffers, so it is server glue, as append_field_key is: it stays here, next
   to the encoding it inverts (ARCHITECTURE.md: C++ owns key <-> bytes). */

static part_unpack unpack_of(const KEY_PART_INFO *kp)
{
  const Field *f= kp->field;
  if (!f || (kp->key_part_flag & HA_PART_KEY_SEG) ||
      kp->length != f->key_length() || f->sort_length() != f->pack_length())
    return KU_NONE;
  switch (f->real_type()) {
  case MYSQL_TYPE_TINY: case MYSQL_TYPE_SHORT: case MYSQL_TYPE_INT24:
  case MYSQL_TYPE_LONG: case MYSQL_TYPE_LONGLONG:
    return (f->flags & UNSIGNED_FLAG) ? KU_REVERSE : KU_REVERSE_SIGNED;
  case MYSQL_TYPE_YEAR: case MYSQL_TYPE_NEWDATE:
  case MYSQL_TYPE_ENUM: case MYSQL_TYPE_SET:
    return KU_REVERSE;
  case MYSQL_TYPE_NEWDECIMAL: case MYSQL_TYPE_DATETIME2:
  case MYSQL_TYPE_TIMESTAMP2: case MYSQL_TYPE_TIME2:
    return KU_COPY;
  default:
    return KU_NONE;
  }
}

bool rust_key_part_decodable(const KEY_PART_INFO *kp)
{
  return unpack_of(kp) != KU_NONE;
}

/* The current entry's decodable columns into buf (the key's parts, then the
   primary key's); the others are left alone. */
int ha_rust::bt_unpack_key(uchar *buf)
{
  rust::Slice<const uint8_t> k= (*tbl)->bt_key();
  const uchar *p= k.data(), *end= p + k.size();
  my_ptrdiff_t off= buf - table->record[0];
  uint pk= table->s->primary_key;
  for (uint pass= 0; pass < 2; pass++)
  {
    if (pass == 1 && (pk == MAX_KEY || !pk_decodable))
      break;                     /* hidden row id, or nothing to decode there */
    uint k= pass ? pk : active_index;
    const std::vector<part_decode> &parts= key_decode[k];
    for (size_t i= 0; i < parts.size(); i++)
    {
      Field *f= table->key_info[k].key_part[i].field;
      const ha_rust_ffi::KeyPart &part= parts[i].part;
      size_t len= part.length;
      part_unpack how= parts[i].how;
      if (part.nullable)
      {
        if (p >= end)
          return HA_ERR_WRONG_IN_RECORD;
        if (*p++ == 0)
        {
          if (how != KU_NONE)
            f->set_null(off);
          continue;
        }
      }
      if (part.chunked)   /* a string part of format 3: not decoded */
        len= ha_rust_ffi::key_part_len(
            rust::Slice<const uint8_t>(p, (size_t) (end - p)), part);
      if ((size_t) (end - p) < len)
        return HA_ERR_WRONG_IN_RECORD;
      if (how != KU_NONE)
      {
        if (len != f->pack_length())
          return HA_ERR_WRONG_IN_RECORD;
        uchar *to= f->ptr + off;
        f->set_notnull(off);
        if (how == KU_COPY)
          memcpy(to, p, len);
        else
        {
          for (size_t b= 0; b < len; b++)
            to[b]= p[len - 1 - b];
          if (how == KU_REVERSE_SIGNED)
            to[len - 1]^= 0x80;
        }
      }
      p+= len;
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

  /* index-only reads: which columns each index gives back */
  uint pk= table->s->primary_key, fields= table->s->fields;
  pk_decodable= pk != MAX_KEY;
  for (uint i= 0; pk_decodable && i < table->key_info[pk].user_defined_key_parts; i++)
    pk_decodable= rust_key_part_decodable(table->key_info[pk].key_part + i);
  keyread_cols.assign((size_t) table->s->keys * fields, false);
  key_decode.assign(table->s->keys, {});
  for (uint k= 0; k < table->s->keys; k++)
  {
    KEY *key= table->key_info + k;
    for (uint i= 0; i < key->user_defined_key_parts; i++)
    {
      KEY_PART_INFO *kp= key->key_part + i;
      key_decode[k].push_back({part_layout(kp), unpack_of(kp)});
      if (key_decode[k][i].how != KU_NONE)
        keyread_cols[(size_t) k * fields + kp->fieldnr - 1]= true;
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
  return 0;
}

/* Once the Rust table is open and its format known: the key part layouts
   bt_unpack_key steps over (a string part's length depends on the format). */
void ha_rust::bt_setup_decode()
{
  key_format= (*tbl)->bt_key_format();
  same_index= MAX_KEY;           /* index_next_same's cached key is void */
  for (uint k= 0; k < table->s->keys; k++)
    for (size_t i= 0; i < key_decode[k].size(); i++)
      key_decode[k][i].part= part_layout(table->key_info[k].key_part + i);
  stat_parts.clear();
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
