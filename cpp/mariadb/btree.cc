/*
  The BTREE layout's part of the handler: the table's indexes set up at open,
  what CREATE refuses, and its row writes, reads and positions (rows become
  Field::pack() images, rows.cc; keys memcomparable bytes, keys.cc). The trees,
  logs, locks and transactions themselves are Rust (src/btree/).
*/
#include "ha_rust.h"
#include "status.h"

#include <sql_class.h>
#include <key.h>
#include <log.h>

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

/* ---- rows ---- */

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
      {
        /* READ UNCOMMITTED: the entry's row went away meanwhile */
        if (rc == HA_ERR_RECORD_DELETED)
        {
          rc= (*tbl)->bt_next(false);
          continue;
        }
        return rust_rc(rc);
      }
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
    return rc == HA_ERR_END_OF_FILE || rc == HA_ERR_KEY_NOT_FOUND ? rc : rust_rc(rc);
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
  return rust_rc(rc);
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
  int rc= (*tbl)->bt_insert(trx(), sl(pk_buf), bytes(row_image), sl(sec_buf),
                            dup);
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
  return rust_rc((*tbl)->bt_delete(trx(), sl(pk_buf), sl(sec_buf)));
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
  /* the rest of the ref zeroed: the server compares and copies refs whole
     (ref_length bytes: index merge's Unique, cmp_ref), so one row's refs must
     be equal bytes (valgrind found the tail uninitialised under index merge) */
  memset(ref + 2 + len, 0, ref_length - 2 - len);
}

int ha_rust::bt_rnd_pos(uchar *buf, uchar *pos)
{
  uint len= uint2korr(pos);
  int rc= (*tbl)->bt_get(trx(), rust::Slice<const uint8_t>(pos + 2, len));


  return bt_fetch(buf, rc);
}
