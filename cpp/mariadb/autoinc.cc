/*
  AUTO_INCREMENT: BTREE reserves values per statement from the counter kept in
  the tree's meta page; ARCHIVE takes the next value after its largest key. SHOW
  CREATE TABLE and ALTER TABLE keep the counter.
*/
#include "ha_rust.h"

#include <sql_class.h>

ulonglong ha_rust::next_auto_increment()
{
  ha_rust_ffi::KeyMax m= (*tbl)->max_key();
  ulonglong last= m.base;
  if (m.has_key && table->s->keys)
  {
    Field *f= table->key_info[0].key_part[0].field;
    bool is_unsigned= f->flags & UNSIGNED_FLAG;
    ulonglong v= is_unsigned ? m.key : (ulonglong) (longlong) (m.key ^ (1ULL << 63));
    if (is_unsigned || (longlong) v > 0)
      last= std::max(last, v);
  }
  return last + 1;
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
