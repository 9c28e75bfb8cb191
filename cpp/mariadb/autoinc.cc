/*
  AUTO_INCREMENT: BTREE reserves values per statement from the counter kept in
  the tree's meta page; ARCHIVE takes the next value after its largest key. SHOW
  CREATE TABLE and ALTER TABLE keep the counter.
*/
#include "ha_rust.h"

#include <sql_class.h>

ulonglong ha_rust::next_auto_increment()
{
  bool keyed= table->s->keys != 0;
  return (*tbl)->next_auto_increment(
      keyed, keyed && (table->key_info[0].key_part[0].field->flags & UNSIGNED_FLAG));
}

void ha_rust::get_auto_increment(ulonglong offset, ulonglong increment,
                                 ulonglong nb_desired_values,
                                 ulonglong *first_value,
                                 ulonglong *nb_reserved_values)
{
  if (layout() == LAYOUT_BTREE)
  {
    bt_get_auto_increment(offset, increment, nb_desired_values, first_value,
                          nb_reserved_values);
    return;
  }
  *first_value= next_auto_increment();
  *nb_reserved_values= ULONGLONG_MAX;
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
   (auto_increment_increment/_offset; btree/table/autoinc.rs). */
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
  const system_variables &sv= ha_thd()->variables;
  return rust_rc((*tbl)->bt_auto_increment_used(
      (ulonglong) v, sv.auto_increment_increment, sv.auto_increment_offset));
}

/* AUTO_INCREMENT values are reserved as InnoDB reserves them: the arithmetic
   is Rust's (btree/table/autoinc.rs); the statement's reservation state
   (autoinc_rows_left, autoinc_last) is kept here, write_row counts it down. */
void ha_rust::bt_get_auto_increment(ulonglong offset, ulonglong increment,
                                    ulonglong nb_desired_values,
                                    ulonglong *first_value,
                                    ulonglong *nb_reserved_values)
{
  bt_autoinc_check();
  ha_rust_ffi::Autoinc r;
  r.offset= offset;
  r.increment= increment;
  r.desired= nb_desired_values;
  r.max= table->next_number_field->get_max_int_value();
  r.alter_table= thd_sql_command(ha_thd()) == SQLCOM_ALTER_TABLE;
  r.first= *first_value;
  r.reserved= 0;
  r.rows_left= autoinc_rows_left;
  r.last= autoinc_last;
  int rc= (*tbl)->bt_auto_increment_reserve(r);
  *first_value= r.first;        /* ULLONG_MAX: HA_ERR_AUTOINC_READ_FAILED */
  *nb_reserved_values= r.reserved;
  autoinc_rows_left= r.rows_left;
  autoinc_last= r.last;
  rust_rc(rc);
}
