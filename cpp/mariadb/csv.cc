/*
  The CSV layout's field text. A row crosses to Rust as its values' text, one
  after another, and the bridge's CsvField for each stored column (its kind:
  NULL, bare or quoted; where its text is). Rows come back the same way (text
  decoded, kind Null or Bare), and are stored into the fields here, where the
  server's types live.
*/
#include "ha_rust.h"

#include <sql_class.h>
#include <tztime.h>
#include <field.h>

#include <charconv>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstdint>

/* Session time zone switched to UTC while TIMESTAMP values are converted, so the
   file holds UTC whatever the session's time_zone is. */
class Utc_scope
{
  THD *thd;
  Time_zone *saved;
public:
  Utc_scope(THD *t, bool active) : thd(active ? t : nullptr), saved(nullptr)
  {
    if (thd)
    {
      saved= thd->variables.time_zone;
      thd->variables.time_zone= my_tz_OFFSET0; /* my_tz_UTC only converts one way */
    }
  }
  ~Utc_scope() { if (thd) thd->variables.time_zone= saved; }
};

/* Catches the warnings Field::store() raises for a value that does not fit, so
   the handler can report them its own way (naming the file and line). */
class Value_checker : public Internal_error_handler
{
public:
  bool hit= false;
  bool handle_condition(THD *, uint, const char *,
                        Sql_condition::enum_warning_level *level,
                        const char *, Sql_condition **cond_hdl) override
  {
    *cond_hdl= NULL;
    if (*level == Sql_condition::WARN_LEVEL_ERROR)
      return false;
    hit= true;
    return true;
  }
};

/* An ENUM's error value (index 0) reads '' as text, as does a member ''
   when the ENUM has one: then the error value is written as its number. */
static bool enum_has_empty_member(Field *f)
{
  const TYPELIB *t= f->get_typelib();
  for (uint i= 0; i < t->count; i++)
    if (t->type_lengths[i] == 0)
      return true;
  return false;
}

/* Builds the CSV row of `buf`: its text into row_image, its fields into
   row_fields (csv_fields()). */
int ha_rust::pack_row(const uchar *buf)
{
  using ha_rust_ffi::FieldKind;
  my_ptrdiff_t off= buf - table->record[0];
  Utc_scope utc(ha_thd(), has_timestamp);
  row_image.length(0);
  row_fields.clear();
  for (Field **fp= table->field; *fp; fp++)
  {
    Field *f= *fp;
    if (!f->stored_in_db())
      continue;
    if (off)
      f->move_field_offset(off);
    if (f->is_null())
      append_field(&row_image, &row_fields, FieldKind::Null, "", 0);
    else if (f->type() == MYSQL_TYPE_DOUBLE || f->type() == MYSQL_TYPE_FLOAT)
    {
      /* shortest text that reads back to the same bits */
      char num[64];
      double d= f->val_real();
      std::to_chars_result r= std::to_chars(num, num + sizeof(num), d);
      if (f->type() == MYSQL_TYPE_FLOAT)
      {
        /* The server reads a FLOAT's text as a double and then narrows it: the
           shortest float text can read back above FLT_MAX (3.4028235e38), so
           use it only when it reads back to the same float within range. */
        char shortest[64];
        std::to_chars_result s= std::to_chars(shortest, shortest + sizeof(shortest), (float) d);
        *s.ptr= 0;
        double back= strtod(shortest, nullptr);
        if (fabs(back) <= FLT_MAX && (float) back == (float) d)
        {
          memcpy(num, shortest, s.ptr - shortest);
          r.ptr= num + (s.ptr - shortest);
        }
      }
      append_field(&row_image, &row_fields, FieldKind::Bare, num, r.ptr - num);
    }
    else if (f->real_type() == MYSQL_TYPE_ENUM && f->val_int() == 0 &&
             enum_has_empty_member(f))
      append_field(&row_image, &row_fields, FieldKind::Bare, "0", 1);  /* the error value, not '' */
    else
    {
      String *s= f->val_str(&field_text, &field_text);
      append_field(&row_image, &row_fields,
                   f->str_needs_quotes() ? FieldKind::Quoted : FieldKind::Bare,
                   s->ptr(), s->length());
    }
    if (off)
      f->move_field_offset(-off);
  }
  return 0;
}

/* Stores one value of a Rust record into its field: `len` bytes of text at
   `p`, or NULL when `null`. A value that does not fit is described in *bad, if
   it is the first. */
static void store_value(Field *f, bool null, const char *p, uint32 len,
                        Value_checker &checker, std::string *bad)
{
  if (null)
  {
    /* reset() too, so that an unchanged NULL compares equal byte for byte
       (compare_record) */
    f->reset();
    if (f->real_maybe_null())
      f->set_null();
    else
    {
      f->set_notnull();
      if (bad && bad->empty())
        *bad= "an empty field (NULL) in NOT NULL column `" +
              std::string(f->field_name.str, f->field_name.length) + "`";
    }
    return;
  }
  f->set_notnull();
  checker.hit= false;
  bool failed= f->store(p, len, f->charset()) || checker.hit;
  if (failed && f->real_type() == MYSQL_TYPE_ENUM &&
      (len == 0 || (len == 1 && *p == '0')))
  {
    /* '' (or 0, when the ENUM has a member '') is how an ENUM's error
       value (index 0) is written */
    f->store((longlong) 0, true);
    failed= false;
  }
  if (failed && bad && bad->empty())
  {
    std::string v(p, len > 64 ? 64 : len);
    *bad= "value '" + v + (len > 64 ? "...'" : "'") + " does not fit column `" +
          std::string(f->field_name.str, f->field_name.length) + "`";
  }
}

/* Stores the current Rust record into `buf`. Values that do not fit their column
   are described in *bad (the first one) instead of being warned about. */
int ha_rust::unpack_row(uchar *buf, bool all_fields, std::string *bad)
{
  rust::Slice<const uint8_t> data= (*tbl)->record_data();
  rust::Slice<const ha_rust_ffi::CsvField> fields= (*tbl)->record_fields();
  if (fields.size() < stored_columns(table))
  {
    if (bad)
      *bad= "a record with fewer fields than the table has columns";
    return HA_ERR_WRONG_IN_RECORD;
  }
  THD *thd= ha_thd();
  Utc_scope utc(thd, has_timestamp);
  /* Field::store() tells whether a value fits only when asked to warn; the
     warnings are caught here and reported once, by line. Reading is never
     strict: a strict sql_mode must not turn them into statement errors. */
  Abort_on_warning_instant_set not_strict(thd, false);
  enum_check_fields saved_check= thd->count_cuted_fields;
  /* the statement's count of cut values (its info line) is not ours to move */
  ha_rows saved_cuted= thd->cuted_fields;
  thd->count_cuted_fields= CHECK_FIELD_WARN;
  Value_checker checker;
  thd->push_internal_handler(&checker);
  memcpy(buf, table->s->default_values, table->s->null_bytes);
  my_ptrdiff_t off= buf - table->record[0];
  uint col= 0;
  for (Field **fp= table->field; *fp; fp++)
  {
    Field *f= *fp;
    if (!f->stored_in_db())
      continue;
    uint i= col++;
    if (!all_fields && !bitmap_is_set(table->read_set, f->field_index))
      continue;
    if (off)
      f->move_field_offset(off);
    const ha_rust_ffi::CsvField &v= fields[i];
    store_value(f, v.kind == ha_rust_ffi::FieldKind::Null,
                reinterpret_cast<const char *>(data.data()) + v.offset, v.length,
                checker, bad);
    if (off)
      f->move_field_offset(-off);
  }
  thd->pop_internal_handler();
  thd->count_cuted_fields= saved_check;
  thd->cuted_fields= saved_cuted;
  own_blobs(buf, all_fields);
  return 0;
}
