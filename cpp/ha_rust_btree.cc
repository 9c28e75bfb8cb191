/*
  ha_rust: the BTREE layout's server glue. Keys become memcomparable bytes here
  (the column's collation applied with the server's own strnxfrm / sort_string, as
  MyRocks does), rows become Field::pack() images, and the connection's
  transaction is tied to the server's (trans_register_ha). The trees, logs, locks
  and transactions themselves are Rust (src/btree/).
*/
#include "ha_rust.h"

#include <sql_class.h>
#include <key.h>
#include <log.h>

extern handlerton *rust_hton_btree;

/* The connection's transaction, kept in the THD's slot for this engine. */
struct Rust_trx
{
  rust::Box<ha_rust_ffi::TrxHandle> h;
  /* stops h's lock waits; used by the kill callback, from another thread */
  rust::Box<ha_rust_ffi::TrxWake> wake;
  uint tables_in_use= 0;
  /* the statement whose start the Rust statement savepoint marks */
  query_id_t stmt_query_id= 0;
  /* prepared in the binlog's two-phase commit (not XA PREPARE): its commit
     need not be durable at once (see rust_bt_commit_checkpoint_request) */
  bool binlog_2pc= false;
  explicit Rust_trx(THD *thd)
    : h(ha_rust_ffi::trx_new()), wake(ha_rust_ffi::trx_wake(*h))
  {
    ha_rust_ffi::trx_set_session(*h, reinterpret_cast<size_t>(thd));
  }
};

static Rust_trx *get_trx(THD *thd, bool create)
{
  Rust_trx *t= static_cast<Rust_trx *>(thd_get_ha_data(thd, rust_hton_btree));
  if (!t && create)
  {
    t= new Rust_trx(thd);
    thd_set_ha_data(thd, rust_hton_btree, t);
  }
  return t;
}

/* ---- KILL ----
   A statement waiting for a lock stops when it is killed (KILL, KILL QUERY,
   max_statement_time) or its client goes away (docs/btree-format.md, "Lock
   waits and KILL"). The server calls kill_query from the killing thread,
   holding the victim's LOCK_thd_data (so close_connection, which clears the
   slot under that mutex before it deletes, cannot free the Rust_trx under
   it); Rust then asks the waiting session itself, through
   rust_bt_session_stopped, in the waiting thread. */

void rust_bt_kill_query(handlerton *, THD *thd, enum thd_kill_levels)
{
  if (Rust_trx *t= get_trx(thd, false))
    ha_rust_ffi::trx_wake_raise(*t->wake);
}

extern "C" bool rust_bt_session_stopped(size_t session)
{
  THD *thd= reinterpret_cast<THD *>(session);
  if (thd_kill_level(thd) != THD_IS_NOT_KILLED)
    return true;
  /* a client that went away: its statement is ended as a killed one (a THD
     without a connection, e.g. an event or --init-file, is never "gone") */
  if (thd->vio_ok() && !thd->is_connected())
  {
    thd->set_killed(KILL_CONNECTION);
    return true;
  }
  return false;
}

ha_rust_ffi::TrxHandle &ha_rust::trx()
{
  return *get_trx(ha_thd(), true)->h;
}

/* ---- handlerton transaction callbacks ---- */

static void report(int rc, const rust::String &e)
{
  if (rc)
    sql_print_error("RUST: %s", std::string(e).c_str());
}

int rust_bt_commit(handlerton *, THD *thd, bool all)
{
  Rust_trx *t= get_trx(thd, false);
  if (!t)
    return 0;
  if (all || !thd_test_options(thd, OPTION_NOT_AUTOCOMMIT | OPTION_BEGIN))
  {
    rust::String e;
    bool durable= !t->binlog_2pc;
    t->binlog_2pc= false;
    int rc= ha_rust_ffi::trx_commit(*t->h, durable, e);
    report(rc, e);
    return rc;
  }
  return 0;   /* the end of a statement inside a transaction */
}

/* The binlog is about to forget the XIDs of an older binlog file: every commit
   made so far must be durable. A commit of a transaction prepared in the
   binlog's two-phase commit only appends its commit record (the binlog keeps
   its XID until this is answered: a crash before brings the transaction back
   prepared, and the binlog's recovery commits it), so one fsync here replaces
   one per commit, as InnoDB does. Answered at once. */
void rust_bt_commit_checkpoint_request(void *cookie)
{
  rust::String e;
  int rc= ha_rust_ffi::log_flush(e);
  report(rc, e);
  if (!rc)
    commit_checkpoint_notify_ha(cookie);
}

int rust_bt_rollback(handlerton *, THD *thd, bool all)
{
  Rust_trx *t= get_trx(thd, false);
  if (!t)
    return 0;
  rust::String e;
  int rc;
  if (all || !thd_test_options(thd, OPTION_NOT_AUTOCOMMIT | OPTION_BEGIN))
  {
    t->binlog_2pc= false;
    rc= ha_rust_ffi::trx_rollback(*t->h, e);
  }
  else
    rc= ha_rust_ffi::trx_stmt_rollback(*t->h, e);   /* a failed statement */
  report(rc, e);
  return rc;
}

int rust_bt_savepoint_set(handlerton *, THD *thd, void *sv)
{
  *static_cast<uint64_t *>(sv)= ha_rust_ffi::trx_savepoint(*get_trx(thd, true)->h);
  return 0;
}

int rust_bt_savepoint_rollback(handlerton *, THD *thd, void *sv)
{
  rust::String e;
  int rc= ha_rust_ffi::trx_rollback_to(*get_trx(thd, true)->h,
                                       *static_cast<uint64_t *>(sv), e);
  report(rc, e);
  return rc;
}

int rust_bt_savepoint_release(handlerton *, THD *, void *)
{
  return 0;
}

/* ---- two-phase commit and XA ----
   An XID crosses to Rust as bytes: i64 formatID, u32 gtrid_length, u32
   bqual_length, then the data; Rust keeps it opaque. */

static void pack_xid(const XID *x, std::string &out)
{
  char b[16];
  int8store(b, (ulonglong) (longlong) x->formatID);
  int4store(b + 8, (uint32) x->gtrid_length);
  int4store(b + 12, (uint32) x->bqual_length);
  out.assign(b, 16);
  out.append(x->data, (size_t) (x->gtrid_length + x->bqual_length));
}

static bool unpack_xid(const uint8_t *p, size_t len, XID *x)
{
  if (len < 16)
    return false;
  long gl= (long) uint4korr(p + 8), bl= (long) uint4korr(p + 12);
  if (gl < 0 || bl < 0 || gl > MAXGTRIDSIZE || bl > MAXBQUALSIZE ||
      (size_t) (gl + bl) != len - 16)
    return false;
  x->formatID= (long) (longlong) uint8korr(p);
  x->gtrid_length= gl;
  x->bqual_length= bl;
  memcpy(x->data, p + 16, len - 16);
  return true;
}

/* Prepares the connection's transaction (XA PREPARE, or the binlog's two-phase
   commit): durable, and kept by recovery until committed or rolled back by XID. */
int rust_bt_prepare(handlerton *, THD *thd, bool all)
{
  Rust_trx *t= get_trx(thd, false);
  if (!t)
    return 0;
  if (all || !thd_test_options(thd, OPTION_NOT_AUTOCOMMIT | OPTION_BEGIN))
  {
    XID xid;
    thd_get_xid(thd, (MYSQL_XID *) &xid);
    std::string b;
    pack_xid(&xid, b);
    rust::String e;
    int rc= ha_rust_ffi::trx_prepare(*t->h, sl(b), e);
    /* the binlog's two-phase commit (an XA PREPARE's transaction is ended by
       XA COMMIT, durably: the binlog does not keep its XID for recovery) */
    t->binlog_2pc= !rc && opt_bin_log &&
                   !thd->transaction->xid_state.is_explicit_XA();
    report(rc, e);
    return rc;
  }
  return 0;   /* the end of a statement inside a transaction */
}

/* The prepared transactions no connection holds (found by recovery, or left by
   a connection that ended). The server calls this until it gets fewer than len
   XIDs, and makes more than one such pass at start-up: Rust returns those not
   given in this pass yet, and is told which were handed over (only those: the
   rest come with the next call) and when the pass ends. */
int rust_bt_recover(handlerton *, XID *xid_list, uint len)
{
  rust::Vec<uint8_t> all= ha_rust_ffi::xa_prepared();
  const uint8_t *p= all.data();
  size_t at= 0, size= all.size();
  uint n= 0;
  while (n < len && at + 4 <= size)
  {
    size_t l= uint4korr(p + at);
    if (at + 4 + l > size)
      break;
    if (unpack_xid(p + at + 4, l, &xid_list[n]))
      n++;
    else
    {
      /* not lost silently: it stays prepared, with its locks, and says so */
      static const char hex[]= "0123456789abcdef";
      std::string h;
      for (size_t i= 0; i < l && i < 160; i++)
      {
        h+= hex[p[at + 4 + i] >> 4];
        h+= hex[p[at + 4 + i] & 15];
      }
      sql_print_error("RUST: a prepared transaction has a malformed XID "
                      "(%lu bytes: %s%s); it is kept, with its table locks, "
                      "but the server cannot list, commit or roll it back",
                      (ulong) l, h.c_str(), l > 160 ? "..." : "");
    }
    at+= 4 + l;
  }
  ha_rust_ffi::xa_given(rust::Slice<const uint8_t>(p, at), n < len);
  return (int) n;
}

/* X/Open XA return codes (xa.h; InnoDB's trx0xa.h has the same) */
enum { RUST_XA_OK= 0, RUST_XAER_RMERR= -3, RUST_XAER_NOTA= -4 };

static int xa_end(XID *xid, bool commit)
{
  std::string b;
  pack_xid(xid, b);
  rust::String e;
  int rc= ha_rust_ffi::xa_end(sl(b), commit, e);
  if (rc == -1)
    return RUST_XAER_NOTA;
  if (rc)
  {
    report(rc, e);
    return RUST_XAER_RMERR;
  }
  return RUST_XA_OK;
}

int rust_bt_commit_by_xid(handlerton *, XID *xid)
{
  return xa_end(xid, true);
}

int rust_bt_rollback_by_xid(handlerton *, XID *xid)
{
  return xa_end(xid, false);
}

int rust_bt_close_connection(handlerton *, THD *thd)
{
  Rust_trx *t= get_trx(thd, false);
  if (t)
  {
    rust::String e;
    /* a prepared XA transaction outlives its connection (XA COMMIT/ROLLBACK
       by XID from another one); anything else is rolled back */
    if (!ha_rust_ffi::trx_detach_prepared(*t->h))
      ha_rust_ffi::trx_rollback(*t->h, e);
    /* out of the slot (under LOCK_thd_data) before it is freed: see KILL */
    thd_set_ha_data(thd, rust_hton_btree, NULL);
    delete t;
  }
  return 0;
}

/* ---- keys ---- */

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

/* Layout bits of a chunked part (src/btree/keys.rs: PART_CHUNKED,
   PART_PAD_SPACE; the space's weight length in the low bits). */
static const uint32_t PART_CHUNKED= 1U << 30, PART_PAD_SPACE= 1U << 29;

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

/* Every secondary index's key: u8 has_null, u32 length, bytes. */
void ha_rust::secondary_keys_of(const uchar *record, std::string &out)
{
  out.clear();
  for (uint r= 1; r < server_key_of.size(); r++)
  {
    size_t at= out.size();
    out.append(5, '\0');
    bool has_null= false;
    append_key(server_key_of[r], record, MAX_REF_PARTS, out, &has_null);
    out[at]= has_null ? 1 : 0;
    uint32 len= (uint32) (out.size() - at - 5);
    int4store(&out[at + 1], len);
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
  key_restore(rec, tuple, k, len);
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

/* Decides, when an index read starts, whether it reads entries only: the
   server asked for keyread on this (secondary) index, and every column it
   reads can be decoded from the entry (a safety net: the optimizer only asks
   for such columns, see index_flags). */
bool ha_rust::bt_key_only_start()
{
  key_only= false;
  /* the pushed condition is tested on the entry (decoded into record[0]),
     the row read only for entries that pass */
  icp= pushed_idx_cond && pushed_idx_cond_keyno == active_index &&
       active_index < table->s->keys && rust_index_of[active_index] != 0;
  if (keyread_enabled() && keyread == active_index &&
      active_index < table->s->keys && rust_index_of[active_index] != 0)
  {
    key_only= true;
    size_t base= (size_t) active_index * table->s->fields;
    for (uint i= 0; i < table->s->fields && key_only; i++)
      if (bitmap_is_set(table->read_set, i) && !keyread_cols[base + i])
        key_only= false;
  }
  (*tbl)->bt_set_keys_only(key_only || icp);
  return key_only;
}

/* Index condition pushdown: taken when the key is a secondary one whose every
   part decodes (index_flags offers HA_DO_INDEX_COND_PUSHDOWN only then; the
   server pushes only conditions on the key's columns, and the primary key's
   when HA_PRIMARY_KEY_IN_READ_INDEX says they decode too). */
Item *ha_rust::idx_cond_push(uint keyno, Item *idx_cond)
{
  if (layout() != LAYOUT_BTREE || keyno >= table->s->keys ||
      keyno >= rust_index_of.size() || rust_index_of[keyno] == 0 ||
      !(index_flags(keyno, 0, true) & HA_DO_INDEX_COND_PUSHDOWN))
    return idx_cond;
  pushed_idx_cond= idx_cond;
  pushed_idx_cond_keyno= keyno;
  in_range_check_pushed_down= false;  /* the server checks the range's end */
  return NULL;
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
      uint32_t layout= parts[i].layout;
      size_t len= layout & ~(1U << 31);
      part_unpack how= parts[i].how;
      if (layout >> 31)
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
      if (layout & PART_CHUNKED)   /* a string part of format 3: not decoded */
        len= ha_rust_ffi::key_part_len(
            rust::Slice<const uint8_t>(p, (size_t) (end - p)), layout);
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

/* ---- open / create ---- */

int ha_rust::bt_create_check(TABLE *form, uint *indexes)
{
  uint n= 1;
  for (uint k= 0; k < form->s->keys; k++)
  {
    KEY *key= form->key_info + k;
    if (key->algorithm == HA_KEY_ALG_FULLTEXT || (key->flags & HA_SPATIAL))
    {
      my_printf_error(ER_ILLEGAL_HA_CREATE_OPTION,
                      "LAYOUT=BTREE has no FULLTEXT or SPATIAL indexes", MYF(0));
      return HA_WRONG_CREATE_OPTION;
    }
    if (k != form->s->primary_key)
      n++;
  }
  *indexes= n;
  return 0;
}

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
      key_decode[k][i].layout= part_layout(table->key_info[k].key_part + i);
  stat_parts.clear();
}

/* ---- rows ---- */

int ha_rust::bt_rc(int rc)
{
  if (rc && tbl)
    err_msg= std::string((*tbl)->last_error());
  return rc;
}

/* After a Rust read: the current row into buf (`from_key`: a read of the
   index cursor, which may be index-only: then the entry's columns). */
int ha_rust::bt_fetch(uchar *buf, int rc, bool from_key)
{
  rc= bt_fetch_row(buf, rc, from_key);
  if (!rc)
    rust_count_row(ROWS_READ, LAYOUT_BTREE);
  return rc;
}

int ha_rust::bt_fetch_row(uchar *buf, int rc, bool from_key)
{
  fetched_key_only= false;
  /* index condition pushdown: entries that fail the condition are stepped
     over without reading their rows (the condition reads the key's columns
     in the record the read fills, record[0], as MyISAM's does) */
  while (!rc && from_key && icp)
  {
    if (int e= bt_unpack_key(buf))
      return e;
    if (icp_same_key &&
        key_cmp_if_same(table, icp_same_key, active_index, icp_same_len))
      return HA_ERR_END_OF_FILE;
    switch (handler_index_cond_check(this)) {
    case CHECK_NEG:
      rc= (*tbl)->bt_next(false);
      continue;
    case CHECK_POS:
      if (key_only)
      {
        fetched_key_only= true;
        return 0;
      }
      if ((rc= (*tbl)->bt_fetch_current()))
        return bt_rc(rc);
      return unpack_binary(buf) ? HA_ERR_WRONG_IN_RECORD : 0;
    case CHECK_OUT_OF_RANGE:
      return HA_ERR_END_OF_FILE;
    case CHECK_ABORTED_BY_USER:
      return HA_ERR_ABORTED_BY_USER;
    default:
      return HA_ERR_INTERNAL_ERROR;
    }
  }
  if (rc)
    return rc == HA_ERR_END_OF_FILE || rc == HA_ERR_KEY_NOT_FOUND ? rc : bt_rc(rc);
  if (from_key && key_only)
  {
    fetched_key_only= true;
    return bt_unpack_key(buf);
  }
  if (unpack_binary(buf))
    return HA_ERR_WRONG_IN_RECORD;
  /* Under the server's keyread it computes no virtual column (it expects them
     from the index): a whole row read then (a column not decodable was asked
     for too) takes the key's decodable parts from the entry, virtual ones
     included (MIN/MAX over an index on a virtual column) */
  if (from_key && table->vfield && keyread_enabled() &&
      active_index < table->s->keys && rust_index_of[active_index] != 0)
    return bt_unpack_key(buf);
  return 0;
}

int ha_rust::bt_dup(int rc, uint32_t dup)
{
  if (rc == HA_ERR_FOUND_DUPP_KEY)
  {
    /* errkey only: lookup_errkey would tell the server dup_ref is filled */
    errkey= dup < server_key_of.size() ? server_key_of[dup] : 0;
    if (errkey == MAX_KEY)
      errkey= 0;
    last_dup_key= errkey;
    return rc;
  }
  return bt_rc(rc);
}

/* ---- AUTO_INCREMENT ----
   The counter is the Rust table's (the largest value given or stored, kept in the
   clustered tree's meta page: it survives a restart and is not rolled back, as
   InnoDB's). Once per open table it is checked against the column's largest value
   (a table written before the counter existed has 0 there). */

void ha_rust::bt_autoinc_check()
{
  if (!table->found_next_number_field || (*tbl)->bt_auto_increment_checked())
    return;
  uint key= table->s->next_number_index;
  if (key < table->s->keys && table->s->next_number_keypart == 0 &&
      (*tbl)->bt_last_unlocked(rust_index_of[key]) == 0 &&
      unpack_binary(key_record.data()) == 0)
    bt_autoinc_used(key_record.data());
  (*tbl)->bt_set_auto_increment_checked();
}

/* The AUTO_INCREMENT value of the row at `record` moves the counter up: as
   InnoDB's, to just below the next value of the session's series
   (auto_increment_increment/_offset; the server's compute_next_insert_id). */
int ha_rust::bt_autoinc_used(const uchar *record)
{
  Field *f= table->found_next_number_field;
  if (!f)
    return 0;
  my_ptrdiff_t off= record - table->record[0];
  if (f->is_null(off))
    return 0;
  longlong v= f->val_int(record + f->offset(table->record[0]));
  if (!(f->flags & UNSIGNED_FLAG) && v <= 0)
    return 0;
  ulonglong used= (ulonglong) v;
  const system_variables &sv= ha_thd()->variables;
  ulonglong inc= sv.auto_increment_increment, ofs= sv.auto_increment_offset;
  if (inc > 1)
  {
    ulonglong next= (used + inc - ofs) / inc * inc + ofs;
    if (next > used)
      used= next - 1;
  }
  return bt_rc((*tbl)->bt_auto_increment_used(used));
}

/* The value after `current` in the session's series (auto_increment_increment
   `step`, _offset), `need` values on; ULLONG_MAX when past the type's `max` or
   on overflow (then every value is used up). */
static ulonglong autoinc_after(ulonglong current, ulonglong need, ulonglong step,
                               ulonglong offset, ulonglong max)
{
  if (current > max || !step)
    return ULLONG_MAX;
  if (offset > step)
    offset= 0;                  /* an offset above the step is ignored */
  ulonglong v= current > offset ? current - offset : offset - current;
  v-= v % step;
  if (v + offset < v)
    return ULLONG_MAX;
  v+= offset;
  if (need > ULLONG_MAX / step || v + need * step < v)
    return ULLONG_MAX;
  return v + need * step;
}

/* AUTO_INCREMENT values are reserved as InnoDB reserves them (its default
   innodb_autoinc_lock_mode=1), because users see which values a row gets after
   a failed, ignored or duplicate row: a statement's first call reserves the
   values the server asks for (the rows of a multi-row INSERT; 1, then 2, 4, ...
   for INSERT ... SELECT), write_row counts them down, and values reserved but
   not used are gone, as is a value given to a row that failed. The counter
   (the largest value given or stored, in the clustered tree's meta page) moves
   to the end of each reservation at once. */
void ha_rust::bt_get_auto_increment(ulonglong offset, ulonglong increment,
                                    ulonglong nb_desired_values,
                                    ulonglong *first_value,
                                    ulonglong *nb_reserved_values)
{
  bt_autoinc_check();
  ulonglong next= std::max<ulonglong>(1, (*tbl)->bt_auto_increment());
  ulonglong max= table->next_number_field->get_max_int_value();
  if (increment > 1 && increment <= ~next && next < max &&
      thd_sql_command(ha_thd()) != SQLCOM_ALTER_TABLE)
  {
    /* the first value of the session's series at or after the counter */
    ulonglong in_series= ((next - 1) + increment - offset) / increment * increment + offset;
    if (in_series < max)
      next= in_series;
  }
  if (!autoinc_rows_left)
  {
    /* the statement's first reservation (0 desired: INSERT ... SELECT) */
    autoinc_rows_left= nb_desired_values ? nb_desired_values : 1;
    set_if_bigger(*first_value, next);
  }
  else if (!autoinc_last)
    set_if_bigger(*first_value, next);
  if (*first_value > max)
  {
    autoinc_last= 0;             /* the server reports the value out of range */
    *nb_reserved_values= 0;
    return;
  }
  *nb_reserved_values= autoinc_rows_left;
  autoinc_last= autoinc_after(*first_value, *nb_reserved_values, increment,
                              offset, max);
  if (autoinc_last < *first_value)
    *first_value= ULLONG_MAX;
  else if (bt_rc((*tbl)->bt_auto_increment_used(autoinc_last - 1)))
    *first_value= ULLONG_MAX;    /* HA_ERR_AUTOINC_READ_FAILED */
}

int ha_rust::bt_write_row(const uchar *buf)
{
  bool autoinc_row= false;
  if (table->next_number_field && buf == table->record[0])
  {
    bt_autoinc_check();
    if (int rc= update_auto_increment())
      return rc;
    autoinc_row= true;
  }
  primary_key_of(buf, pk_buf);
  secondary_keys_of(buf, sec_buf);
  if (int rc= pack_binary(buf))
    return rc;
  uint32_t dup= 0;
  int rc= (*tbl)->bt_insert(trx(), sl(pk_buf), bytes(row_image), sl(sec_buf), dup);
  if (autoinc_row)
  {
    if (autoinc_rows_left)
      autoinc_rows_left--;
    /* the counter follows a value stored beyond the reservation (an explicit
       one), and, for the statements that go on with a duplicate row's value
       (REPLACE, INSERT ... SELECT, LOAD DATA REPLACE/IGNORE), a duplicate's */
    THD *thd= ha_thd();
    enum_sql_command cmd= (enum_sql_command) thd_sql_command(thd);
    bool follow= false;
    if (rc == HA_ERR_FOUND_DUPP_KEY)
      follow= cmd == SQLCOM_REPLACE || cmd == SQLCOM_INSERT_SELECT ||
              cmd == SQLCOM_REPLACE_SELECT ||
              (cmd == SQLCOM_LOAD &&
               (thd->lex->duplicates != DUP_ERROR || thd->lex->ignore));
    else if (!rc)
    {
      Field *f= table->next_number_field;
      follow= !f->is_null() && f->val_uint() >= autoinc_last;
    }
    if (follow)
      if (int e= bt_autoinc_used(buf))
        return e;
  }
  else if (!rc && table->found_next_number_field)
    rc= bt_autoinc_used(buf);     /* a value stored: the counter follows it */
  return bt_dup(rc, dup);
}


/* Whether two records hold the same value in every stored column (virtual
   columns and the bytes of NULL columns aside). */
bool ha_rust::stored_columns_equal(const uchar *a, const uchar *b)
{
  if (a > b)
    std::swap(a, b);           /* cmp_binary_offset takes a forward offset */
  my_ptrdiff_t off= a - table->record[0], diff= b - a;
  bool same= true;
  for (Field **fp= table->field; *fp && same; fp++)
  {
    Field *f= *fp;
    if (!f->stored_in_db())
      continue;
    f->move_field_offset(off);
    bool null_a= f->is_null(), null_b= f->is_null(diff);
    same= null_a == null_b && (null_a || !f->cmp_binary_offset((uint) diff));
    f->move_field_offset(-off);
  }
  return same;
}

int ha_rust::bt_update_row(const uchar *old_data, const uchar *new_data)
{
  if (table->s->primary_key == MAX_KEY)
  {
    rust::Slice<const uint8_t> cur= (*tbl)->bt_pk();
    pk_buf.assign((const char *) cur.data(), cur.size());
    pk_buf2= pk_buf;
  }
  else
  {
    primary_key_of(old_data, pk_buf);
    primary_key_of(new_data, pk_buf2);
  }
  secondary_keys_of(old_data, sec_buf);
  secondary_keys_of(new_data, sec_buf2);
  /* REPLACE and ON DUPLICATE KEY UPDATE update the duplicate row without the
     server comparing the stored columns only: a row that stays the same is
     HA_ERR_RECORD_IS_THE_SAME, nothing written, and not counted (as InnoDB) */
  enum_sql_command cmd= (enum_sql_command) thd_sql_command(ha_thd());
  if ((cmd == SQLCOM_REPLACE || cmd == SQLCOM_REPLACE_SELECT ||
       cmd == SQLCOM_INSERT || cmd == SQLCOM_INSERT_SELECT) &&
      pk_buf == pk_buf2 && stored_columns_equal(old_data, new_data))
    return HA_ERR_RECORD_IS_THE_SAME;
  if (int rc= pack_binary(new_data))
    return rc;
  uint32_t dup= 0;
  int rc= (*tbl)->bt_update(trx(), sl(pk_buf), sl(pk_buf2), bytes(row_image),
                            sl(sec_buf), sl(sec_buf2), dup);
  if (!rc && table->found_next_number_field)
    rc= bt_autoinc_used(new_data);  /* never give a value the column now holds */
  return bt_dup(rc, dup);
}

int ha_rust::bt_delete_row(const uchar *buf)
{
  if (table->s->primary_key == MAX_KEY)
  {
    rust::Slice<const uint8_t> cur= (*tbl)->bt_pk();
    pk_buf.assign((const char *) cur.data(), cur.size());
  }
  else
    primary_key_of(buf, pk_buf);
  secondary_keys_of(buf, sec_buf);
  return bt_rc((*tbl)->bt_delete(trx(), sl(pk_buf), sl(sec_buf)));
}

int ha_rust::bt_rnd_next(uchar *buf)
{
  int rc;
  if (rnd_first)
  {
    rnd_first= false;
    scan_desc= false;
    key_only= false;
    (*tbl)->bt_set_keys_only(false);
    rc= (*tbl)->bt_edge(trx(), 0, false);
  }
  else
    rc= (*tbl)->bt_next(scan_desc);
  scan_desc= false;
  return bt_fetch(buf, rc);
}

/* The primary key of `record` (the row last read, for a hidden key, or when
   it came from an index entry alone: its columns may not be there). */
void ha_rust::bt_position(const uchar *record)
{
  if (table->s->primary_key != MAX_KEY && !fetched_key_only)
    primary_key_of(record, pk_buf);
  else
  {
    rust::Slice<const uint8_t> pk= (*tbl)->bt_pk();
    pk_buf.assign((const char *) pk.data(), pk.size());
  }
  uint len= (uint) std::min<size_t>(pk_buf.size(), max_pk_len);
  int2store(ref, len);
  memcpy(ref + 2, pk_buf.data(), len);
}

int ha_rust::bt_rnd_pos(uchar *buf, uchar *pos)
{
  uint len= uint2korr(pos);
  int rc= (*tbl)->bt_get(trx(), rust::Slice<const uint8_t>(pos + 2, len));


  return bt_fetch(buf, rc);
}

int ha_rust::bt_index_read(uchar *buf, const uchar *key, key_part_map map,
                           enum ha_rkey_function find_flag)
{
  uint8_t find;
  switch (find_flag) {
  case HA_READ_KEY_EXACT: case HA_READ_PREFIX: find= 0; break;
  case HA_READ_KEY_OR_NEXT: find= 1; break;
  case HA_READ_KEY_OR_PREV: find= 2; break;
  case HA_READ_AFTER_KEY: find= 3; break;
  case HA_READ_BEFORE_KEY: find= 4; break;
  case HA_READ_PREFIX_LAST: find= 5; break;
  case HA_READ_PREFIX_LAST_OR_PREV: find= 6; break;
  default: return HA_ERR_WRONG_COMMAND;
  }
  key_tuple(active_index, key, map, key_buf);
  bt_key_only_start();
  int rc= (*tbl)->bt_seek(trx(), rust_index_of[active_index], sl(key_buf), find);
  scan_desc= find == 2 || find == 4 || find == 5 || find == 6;
  /* the prefix bounds the first row (and the entries a pushed condition
     skips before it); after it the server bounds ranges itself */
  rc= bt_fetch(buf, rc, true);
  (*tbl)->bt_set_prefix(rust::Slice<const uint8_t>(), false);
  return rc == HA_ERR_END_OF_FILE ? HA_ERR_KEY_NOT_FOUND : rc;
}

/* Marks where the statement's rollback goes back to, once per statement: a
   trigger's or stored function's statements run inside it (the server calls
   start_stmt for their tables, each under a query id of its own) and must
   not move the mark past what the outer statement already changed. */
static void bt_stmt_begin(THD *thd, Rust_trx *t)
{
  if (thd->in_sub_stmt || t->stmt_query_id == thd->query_id)
    return;
  t->stmt_query_id= thd->query_id;
  ha_rust_ffi::trx_stmt_begin(*t->h);
}

/* start_stmt: a statement under LOCK TABLES, or a trigger's sub-statement */
void ha_rust::bt_start_stmt(THD *thd)
{
  autoinc_rows_left= 0;
  bt_stmt_begin(thd, get_trx(thd, true));
  trans_register_ha(thd, false, rust_hton_btree, 0);
  if (thd_test_options(thd, OPTION_NOT_AUTOCOMMIT | OPTION_BEGIN))
    trans_register_ha(thd, true, rust_hton_btree, 0);
}

int ha_rust::bt_external_lock(THD *thd, int lock_type)
{
  Rust_trx *t= get_trx(thd, true);
  if (lock_type == F_UNLCK)
  {
    if (t->tables_in_use)
      t->tables_in_use--;
    return 0;
  }
  autoinc_rows_left= 0;          /* a statement begins (bt_get_auto_increment) */
  if (t->tables_in_use++ == 0)
  {
    bt_stmt_begin(thd, t);
    trans_register_ha(thd, false, rust_hton_btree, 0);
    if (thd_test_options(thd, OPTION_NOT_AUTOCOMMIT | OPTION_BEGIN))
      trans_register_ha(thd, true, rust_hton_btree, 0);
  }
  /* A statement that writes the table (INSERT/UPDATE/DELETE, SELECT ... FOR
     UPDATE) takes its exclusive table lock now, before it reads: taken shared
     first and upgraded later, two such transactions would each wait for the
     other's shared lock until the lock wait timeout. Under LOCK TABLES the
     server's own table locks already keep writers apart. */
  if (lock_type == F_WRLCK && !thd_in_lock_tables(thd))
    if (int rc= bt_rc((*tbl)->bt_lock(*t->h, true)))
    {
      t->tables_in_use--;   /* the server does not unlock a table that failed */
      return rc;
    }
  return 0;
}

/* ---- statistics (docs/btree-format.md, "Statistics") ---- */

void ha_rust::bt_info(uint flag)
{
  if (flag & (HA_STATUS_VARIABLE | HA_STATUS_CONST))
  {
    ha_rust_ffi::Stats s= (*tbl)->stats();
    stats.records= s.rows;
    /* Never 0 for the optimizer (as InnoDB's info()): it takes a table of 0
       rows for empty and answers "Impossible WHERE" without reading it, so a
       reader would not wait for the lock of a transaction that deleted every
       row (not committed) and would see none (difftest findings #15).
       SHOW TABLE STATUS (HA_STATUS_TIME) shows the real count. */
    if (!stats.records && !(flag & (HA_STATUS_TIME | HA_STATUS_OPEN)))
      stats.records= 1;
    stats.deleted= 0;
    stats.data_file_length= s.data_length;     /* the clustered tree's pages */
    stats.index_file_length= s.index_length;   /* the secondary trees' pages */
    stats.mean_rec_length= s.rows ? (ulong) (s.data_length / s.rows) : 0;
    stats.block_size= 16384;                   /* the page (keyread_time uses it) */
  }
  /* rec_per_key: cheap when nothing changed much (Rust keeps the counts and
     computes them again once a tenth of the entries changed), so it follows the
     data on every statement, not only when the table is opened */
  if (flag & (HA_STATUS_VARIABLE | HA_STATUS_CONST))
    bt_rec_per_key(false);
}

/* The layout of one key part in a memcomparable key (as append_key writes it):
   its fixed length, with the top bit for a nullable part (a 0/1 byte first, and
   nothing after a 0). */
uint32_t ha_rust::part_layout(KEY_PART_INFO *kp)
{
  Field *f= kp->field;
  uint32_t len;
  if (is_text(f) && chunked_part(f->charset(), key_format))
  {
    uchar pad[16];
    size_t plen= space_weights(f->charset(), pad);
    len= PART_CHUNKED | (plen ? PART_PAD_SPACE : 0) | (uint32_t) plen;
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
  return len | (f->real_maybe_null() ? (1U << 31) : 0);
}

/* rec_per_key of every key part, extended parts included (a secondary entry
   ends with the primary key), from the distinct values Rust counts per key
   prefix: exact when an index has few leaves, else a sample of leaves (as
   InnoDB); ANALYZE TABLE samples more. */
void ha_rust::bt_rec_per_key(bool analyze)
{
  uint pk= table->s->primary_key;
  ha_rows rows= stats.records;
  rust::Vec<uint64_t> nd;
  for (uint k= 0; k < table->s->keys; k++)
  {
    KEY *key= table->key_info + k;
    if (!key->rec_per_key)
      continue;
    uint user= key->user_defined_key_parts;
    stat_parts.clear();
    for (uint p= 0; p < user; p++)
      stat_parts.push_back(part_layout(key->key_part + p));
    if (k != pk && pk != MAX_KEY)
    {
      KEY *pkey= table->key_info + pk;
      for (uint p= 0; p < pkey->user_defined_key_parts; p++)
        stat_parts.push_back(part_layout(pkey->key_part + p));
    }
    if ((*tbl)->bt_key_stats(rust_index_of[k],
                             rust::Slice<const uint32_t>(stat_parts.data(),
                                                         stat_parts.size()),
                             analyze, nd) || nd.size() != stat_parts.size())
    {
      bt_rc(1);
      continue;    /* keep what was there */
    }
    /* rows per value, then halved as ha_innobase::info_low does ("MySQL seems
       to favor table scans too much over index searches, we pretend index
       selectivity is 2 times better than our estimate"): the optimizer then
       weighs ref access against scans as it does for InnoDB (and SHOW INDEX
       shows about twice the distinct values, as for InnoDB); at least 1 (0 is
       "unknown" to the server) */
    auto rpk= [&](uint64_t n) -> ulong {
      return (ulong) std::max<ha_rows>(1, (n ? rows / n : rows) / 2);
    };
    for (uint p= 0; p < user; p++)
      key->rec_per_key[p]= rpk(nd[p]);
    /* extended parts: the primary key's parts not in the key itself */
    for (uint p= user; p < key->ext_key_parts && pk != MAX_KEY; p++)
    {
      KEY *pkey= table->key_info + pk;
      uint q= 0;
      while (q < pkey->user_defined_key_parts &&
             pkey->key_part[q].fieldnr != key->key_part[p].fieldnr)
        q++;
      key->rec_per_key[p]= q < pkey->user_defined_key_parts
                             ? rpk(nd[user + q]) : 1;
    }
  }
}

/* A full scan reads the clustered tree: its pages, the meta page not counted
   (InnoDB: the clustered index's size in pages). */
double ha_rust::scan_time()
{
  if (layout() != LAYOUT_BTREE)
    return (double) (stats.records + stats.deleted) / 20.0 + 10;
  return std::max(1.0, ulonglong2double(stats.data_file_length) / 16384.0 - 1);
}

/* Reading `rows` rows over `ranges` ranges: through the clustered tree, the
   share of its pages they fill plus a descent per range; through a secondary
   index, a clustered lookup per row (the handler's default), as InnoDB. */
double ha_rust::read_time(uint index, uint ranges, ha_rows rows)
{
  if (layout() != LAYOUT_BTREE || index != table->s->primary_key)
    return handler::read_time(index, ranges, rows);
  double scan= scan_time();
  ha_rows total= stats.records;
  if (total < rows)
    return scan;
  return ranges + (total ? (double) rows / (double) total * scan : 0.0);
}

int ha_rust::bt_check(THD *thd)
{
  rust::String out;
  uint32_t n= 0;
  rust_progress progress(thd);   /* pages and entries checked (Rust reports them) */
  if ((*tbl)->bt_check(reinterpret_cast<size_t>(thd), out, n))
  {
    /* killed: the result says so, then "Operation failed" */
    push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_QUERY_INTERRUPTED,
                 ER_THD(thd, ER_QUERY_INTERRUPTED));
    return HA_ADMIN_FAILED;
  }
  if (!n)
    return HA_ADMIN_OK;
  std::string all(out);
  size_t at= 0;
  while (at <= all.size())
  {
    size_t nl= all.find('\n', at);
    std::string line= all.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_UNKNOWN_ERROR, line.c_str());
    if (nl == std::string::npos)
      break;
    at= nl + 1;
  }
  return HA_ADMIN_CORRUPT;
}
