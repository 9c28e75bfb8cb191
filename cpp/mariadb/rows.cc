/*
  Binary row images (ARCHIVE and BTREE): the null bytes, then Field::pack() of
  each stored non-NULL column, packed here and unpacked back into a record
  buffer, and the blob arenas that own the blob bytes handed to the server
  (docs/handler-rows.md).
*/
#include "ha_rust.h"
#include "status.h"

#include <sql_class.h>
#include <field.h>

#include <algorithm>

/* ARCHIVE rows: the null bytes, then Field::pack() of each stored non-NULL
   column (blobs inline), as MariaDB's ARCHIVE does. */
int ha_rust::pack_binary(const uchar *buf)
{
  my_ptrdiff_t off= buf - table->record[0];
  /* Field::pack() may write a length prefix (1-2 bytes) before a value that
     fills its whole record width (CHAR, BINARY, BIT), and a blob writes its
     data: MariaDB's ARCHIVE sizes its buffer the same way */
  size_t max= table->s->reclength + 2 * table->s->fields + 16;
  for (uint *b= table->s->blob_field, *e= b + table->s->blob_fields; b != e; b++)
  {
    Field_blob *f= (Field_blob *) table->field[*b];
    if (!f->is_null(off))
      max+= f->get_length(f->ptr + off) + 4;
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
    if (!f->stored_in_db())
      continue;
    if (!f->is_null(off))
      p= f->pack(p, buf + f->offset(table->record[0]));
    segs.push_back((uint32_t) (p - start));
  }
  row_image.length((uint32) (p - start));
  return 0;
}

/* The blob arena of record buffer `rec` (docs/handler-rows.md). record[0] and
   record[1] keep theirs; a few other buffers (the server's scratch records) take
   turns in the remaining slots. */
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

/* The blob values just stored into `buf` (by Field::store(), which keeps them
   in the Field's own buffer, shared by every record buffer) are copied into
   buf's arena and pointed at there, so that a later read into another buffer,
   or a Field::store() of a new value, cannot change them. `all_fields`: every
   stored column was set, else only those in the read set. */
void ha_rust::own_blobs(uchar *buf, bool all_fields)
{
  if (!table->s->blob_fields)
    return;
  my_ptrdiff_t off= buf - table->record[0];
  auto owned= [&](Field *f) {
    return f->stored_in_db() && !f->is_null(off) &&
           (all_fields || bitmap_is_set(table->read_set, f->field_index));
  };
  size_t total= 0;
  for (uint *b= table->s->blob_field, *e= b + table->s->blob_fields; b != e; b++)
  {
    Field_blob *f= (Field_blob *) table->field[*b];
    if (owned(f))
      total+= f->get_length(off);
  }
  /* a new arena, filled from the values where they are now, then swapped in:
     a value may point into the old arena itself */
  std::vector<uchar> fresh(total);
  size_t at= 0;
  for (uint *b= table->s->blob_field, *e= b + table->s->blob_fields; b != e; b++)
  {
    Field_blob *f= (Field_blob *) table->field[*b];
    if (!owned(f))
      continue;
    uint32 len= f->get_length(off);
    if (len)
      memcpy(fresh.data() + at, f->get_ptr(f->ptr + off), len);
    f->set_ptr_offset(off, len, fresh.data() + at);
    at+= len;
  }
  arena_for(buf).swap(fresh);
}

/* Statement end: large blob arenas are let go of (as InnoDB empties its blob
   heap here); the server reads no row of this handler after it. */
int ha_rust::reset()
{
  autoinc_last= 0;               /* a statement's reservation ends with it */
  for (blob_arena &a : blob_arenas)
    if (a.bytes.capacity() > 65536)
      std::vector<uchar>().swap(a.bytes);
  return 0;
}

/* Unpacks the current ARCHIVE or BTREE row into `buf`. The image is copied into
   buf's blob arena first when the table has blobs, so that the blob values
   point there (docs/handler-rows.md), not into the Rust row buffer that the
   next read on this handler reuses. */
int ha_rust::unpack_binary(uchar *buf)
{
  rust::Slice<const uint8_t> data= (*tbl)->record_data();
  const uchar *p= data.data(), *end= p + data.size();
  if (table->s->blob_fields)
  {
    std::vector<uchar> &a= arena_for(buf);
    a.assign(p, end);
    p= a.data();
    end= p + a.size();
  }
  if ((size_t) (end - p) < table->s->null_bytes)
    return HA_ERR_WRONG_IN_RECORD;
  /* a NULL column's bytes are its default's, as InnoDB leaves them: the
     server compares whole records (compare_record: is a row changed? does ON
     UPDATE CURRENT_TIMESTAMP fire?), NULL columns' bytes included */
  memcpy(buf, table->s->default_values, table->s->reclength);
  memcpy(buf, p, table->s->null_bytes);
  p+= table->s->null_bytes;
  my_ptrdiff_t off= buf - table->record[0];
  for (Field **fp= table->field; *fp; fp++)
  {
    Field *f= *fp;
    if (!f->stored_in_db() || f->is_null(off))
      continue;
    /* Field_blob::unpack() sets the field at its own ptr, whatever buffer it
       is given: the field is moved onto `buf` for the call */
    f->move_field_offset(off);
    p= f->unpack(f->ptr, p, end);
    f->move_field_offset(-off);
    if (!p)
      return HA_ERR_WRONG_IN_RECORD;
  }
  return p == end ? 0 : HA_ERR_WRONG_IN_RECORD;
}

/* The current Rust row into `buf`, whatever the layout. */
int ha_rust::fetch_row_layout(uchar *buf, std::string *bad)
{
  if (layout() == LAYOUT_ARCHIVE)
  {
    int rc= unpack_binary(buf);
    if (rc && bad)
      *bad= "a row image that does not match the table's columns";
    return rc;
  }
  /* An UPDATE needs every column to write the whole row back. */
  return unpack_row(buf, !bitmap_is_clear_all(table->write_set), bad);
}

int ha_rust::fetch_row(uchar *buf, std::string *bad)
{
  int rc= fetch_row_layout(buf, bad);
  if (!rc)
    rust_count_row(ROWS_READ, layout());
  return rc;
}
