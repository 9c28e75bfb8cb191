/*
  ARCHIVE rows in MySQL: the null bytes, then Field::pack() of each stored
  non-NULL column (blobs inline), as the MariaDB shim writes them (the image's
  bytes are per server family: docs/mysql.md), unpacked back into a record
  buffer; and the blob arenas that own the blob bytes handed to the server
  (docs/handler-rows.md).
*/
#include "ha_rust.h"

#include <sql/field.h>

/* The image of the row at `buf` into row_image, with segs: where each stored
   column's bytes end (the null bytes first). */
int ha_rust::pack_binary(const uchar *buf)
{
  ptrdiff_t off= buf - table->record[0];
  /* Field::pack() may write a length prefix (1-2 bytes) before a value that
     fills its whole record width, and a blob writes its data */
  size_t max= table->s->reclength + 2 * table->s->fields + 16;
  for (uint *b= table->s->blob_field, *e= b + table->s->blob_fields; b != e; b++)
  {
    Field_blob *f= (Field_blob *) table->field[*b];
    if (!f->is_null(off))
      max+= f->get_length(off) + 4;
  }
  if (row_image.alloc(max))
    return HA_ERR_OUT_OF_MEM;
  uchar *start= (uchar *) row_image.ptr(), *p= start;
  memcpy(p, buf, table->s->null_bytes);
  p+= table->s->null_bytes;
  segs.clear();
  segs.push_back((uint32_t) (p - start));
  for (Field **fp= table->field; *fp; fp++)
  {
    Field *f= *fp;
    if (!f->stored_in_db)
      continue;
    if (!f->is_null(off))
      p= f->pack(p, buf + f->offset(table->record[0]), UINT_MAX);
    segs.push_back((uint32_t) (p - start));
  }
  row_image.length((uint32) (p - start));
  return 0;
}

/* The blob arena of record buffer `rec`: record[0] and record[1] keep theirs;
   a few other buffers take turns in the remaining slots. */
std::vector<uchar> &ha_rust::arena_for(const uchar *rec)
{
  for (blob_arena &a : blob_arenas)
    if (a.rec == rec)
      return a.bytes;
  if (blob_arenas.size() >= 6)
    for (auto it= blob_arenas.begin(); it != blob_arenas.end(); ++it)
      if (it->rec != table->record[0] && it->rec != table->record[1])
      {
        blob_arenas.erase(it);
        break;
      }
  blob_arenas.push_back({rec, {}});
  return blob_arenas.back().bytes;
}

/* Whether the packed string at p (before end) is one the field can hold:
   MySQL's Field_string::unpack and Field_varstring::unpack copy the length
   they read into the record without a check against the column's width. */
static bool string_fits(Field *f, const uchar *p, const uchar *end)
{
  uint lb;
  if (f->real_type() == MYSQL_TYPE_VARCHAR)
    lb= f->get_length_bytes();
  else if (f->real_type() == MYSQL_TYPE_STRING)
    lb= f->field_length > 255 ? 2 : 1;
  else
    return true;
  if ((size_t) (end - p) < lb)
    return false;
  uint len= lb == 1 ? p[0] : uint2korr(p);
  /* (a CHAR is padded after its value in whole characters of the charset's
     smallest width: utf32's fill writes 4 bytes at a time) */
  if (f->real_type() == MYSQL_TYPE_STRING && len % f->charset()->mbminlen)
    return false;
  return len <= f->field_length && (size_t) (end - p) - lb >= len;
}

/* The current row into `buf`. MySQL's Field::unpack() takes no end, so the
   image is copied into buf's arena with room after it for the widest column:
   a damaged image makes a column read past the image's end into that room,
   never past the buffer, and is then refused. Blob values point into the
   arena (the Rust row buffer is reused by the next read; the arena is this
   record buffer's until its next read). */
int ha_rust::unpack_binary(uchar *buf)
{
  rust::Slice<const uint8_t> data= (*tbl)->record_data();
  std::vector<uchar> &a= arena_for(buf);
  size_t room= table->s->reclength + 8;
  a.assign(data.size() + room, 0);
  if (data.size())
    memcpy(a.data(), data.data(), data.size());
  const uchar *p= a.data(), *end= p + data.size();
  if (data.size() < table->s->null_bytes)
    return HA_ERR_WRONG_IN_RECORD;
  /* a NULL column's bytes are its default's: the server compares whole
     records */
  memcpy(buf, table->s->default_values, table->s->reclength);
  memcpy(buf, p, table->s->null_bytes);
  p+= table->s->null_bytes;
  ptrdiff_t off= buf - table->record[0];
  for (Field **fp= table->field; *fp; fp++)
  {
    Field *f= *fp;
    if (!f->stored_in_db || f->is_null(off))
      continue;
    if (f->is_flag_set(BLOB_FLAG))
    {
      /* its length, then its bytes, which the field points at in the arena
         (Field_blob::unpack would copy them into the field's own buffer,
         shared by every record buffer, and mark the column written) */
      Field_blob *b= (Field_blob *) f;
      uint n= b->pack_length_no_ptr();
      if ((size_t) (end - p) < n)
        return HA_ERR_WRONG_IN_RECORD;
      uint32 len= b->get_length(p, n);
      if ((size_t) (end - p) - n < len)
        return HA_ERR_WRONG_IN_RECORD;
      b->set_ptr_offset(off, len, p + n);
      p+= n + len;
      continue;
    }
    if (!string_fits(f, p, end))
      return HA_ERR_WRONG_IN_RECORD;
    f->move_field_offset(off);
    p= f->unpack(f->field_ptr(), p, 0);
    f->move_field_offset(-off);
    if (!p || p > end)
      return HA_ERR_WRONG_IN_RECORD;
  }
  return p == end ? 0 : HA_ERR_WRONG_IN_RECORD;
}

/* An integer as an order-preserving unsigned 64-bit number. */
static uint64_t ordered_key(const Field *f, longlong v)
{
  return f->is_flag_set(UNSIGNED_FLAG) ? (uint64_t) v : ((uint64_t) v ^ (1ULL << 63));
}

/* The ARCHIVE index key of a row (its one index, on the AUTO_INCREMENT
   column). */
uint64_t ha_rust::key_of(const uchar *record, bool *keyed, bool *unique)
{
  *keyed= table->s->keys > 0;
  *unique= *keyed && (table->key_info[0].flags & HA_NOSAME);
  if (!*keyed)
    return 0;
  Field *f= table->key_info[0].key_part[0].field;
  ptrdiff_t off= record - table->record[0];
  f->move_field_offset(off);
  longlong v= f->val_int();
  f->move_field_offset(-off);
  return ordered_key(f, v);
}

/* ARCHIVE point lookups (HA_ONLY_WHOLE_INDEX: equality on the whole key). */
int ha_rust::index_read_map(uchar *buf, const uchar *key, key_part_map,
                            enum ha_rkey_function find_flag)
{
  if (attrs.layout != ha_rust_ffi::LayoutKind::Archive)
    return HA_ERR_WRONG_COMMAND;
  if (find_flag != HA_READ_KEY_EXACT)
    return HA_ERR_WRONG_COMMAND;
  KEY_PART_INFO *kp= table->key_info[active_index].key_part;
  if (kp->null_bit)
  {
    if (*key)                     /* key IS NULL: never stored */
      return HA_ERR_KEY_NOT_FOUND;
    key++;
  }
  /* the key's value, read through the field from a copy of the key bytes in
     a scratch record */
  Field *f= kp->field;
  std::vector<uchar> rec(table->s->reclength + 8, 0);
  ptrdiff_t off= rec.data() - table->record[0];
  memcpy(rec.data() + f->offset(table->record[0]), key, f->pack_length());
  f->move_field_offset(off);
  longlong v= f->val_int();
  f->move_field_offset(-off);
  if (int rc= (*tbl)->lookup(ordered_key(f, v)))
    return rust_rc(rc);
  int rc= index_next(buf);
  return rc == HA_ERR_END_OF_FILE ? HA_ERR_KEY_NOT_FOUND : rc;
}

int ha_rust::index_next(uchar *buf)
{
  int rc= (*tbl)->scan_next();
  if (rc)
    return rc == HA_ERR_END_OF_FILE ? rc : rust_rc(rc);
  return fetch_row(buf);
}

int ha_rust::index_end()
{
  active_index= MAX_KEY;
  return rust_rc((*tbl)->scan_end());
}

/* The next AUTO_INCREMENT value of an ARCHIVE table (the Rust table's). */
ulonglong ha_rust::next_auto_increment()
{
  bool keyed= table->s->keys != 0;
  return (*tbl)->next_auto_increment(
      keyed, keyed && table->key_info[0].key_part[0].field->is_flag_set(UNSIGNED_FLAG));
}

void ha_rust::get_auto_increment(ulonglong, ulonglong, ulonglong,
                                 ulonglong *first_value,
                                 ulonglong *nb_reserved_values)
{
  *first_value= next_auto_increment();
  *nb_reserved_values= ULLONG_MAX;
}
