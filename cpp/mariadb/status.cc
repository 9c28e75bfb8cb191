/* What a DBA watches (docs/operations.md): SHOW GLOBAL STATUS LIKE 'Rust%',
   SHOW ENGINE RUST STATUS and the INFORMATION_SCHEMA tables. The lists (names,
   columns, rows) are Rust's (src/ffi/status.rs, from src/metrics.rs); the rows
   the handler hands over are counted here, per layout, with relaxed atomics (no
   lock on the row path), and passed to Rust when shown. */
#include "ha_rust.h"
#include "status.h"

#include <atomic>
#include <deque>
#include <string>
#include <vector>
#include <sql_i_s.h>
#include <sql_show.h>

static const int LAYOUTS= (int) ha_rust_ffi::Sizes::Layouts;
static std::atomic<ulonglong> rows_counted[LAYOUTS][ROW_COUNTS];

struct st_mysql_information_schema rust_i_s_info=
{ MYSQL_INFORMATION_SCHEMA_INTERFACE_VERSION };

/* Rust's long calls tell their session how far they are (session.rs). */
extern "C" void rust_report_progress(size_t session, uint64_t done, uint64_t total)
{
  thd_progress_report(reinterpret_cast<THD *>(session), done, total);
}

void rust_count_row(rust_row_count what, rust_layout layout)
{
  rows_counted[layout][what].fetch_add(1, std::memory_order_relaxed);
}

/* The variables (Rust's list, ffi/status.rs), built anew for each SHOW: values
   and entries live in the statement's memory, so concurrent SHOWs never share a
   buffer. */
static int show_rust_vars(THD *thd, SHOW_VAR *var, void *, system_status_var *,
                          enum enum_var_type)
{
  ha_rust_ffi::RowCounts rows[LAYOUTS];
  for (int l= 0; l < LAYOUTS; l++)
  {
    auto n= [l](rust_row_count what)
    { return rows_counted[l][what].load(std::memory_order_relaxed); };
    rows[l]= {n(ROWS_READ), n(ROWS_INSERTED), n(ROWS_UPDATED), n(ROWS_DELETED)};
  }
  rust::Vec<ha_rust_ffi::StatusVar> items=
      ha_rust_ffi::status_vars(rust::Slice<const ha_rust_ffi::RowCounts>(rows, LAYOUTS));
  const size_t n= items.size();
  ulonglong *values= (ulonglong *) thd_alloc(thd, n * sizeof(ulonglong));
  SHOW_VAR *vars= (SHOW_VAR *) thd_alloc(thd, (n + 1) * sizeof(SHOW_VAR));
  if (!values || !vars)
    return 1;
  for (size_t i= 0; i < n; i++)
  {
    values[i]= items[i].value;
    vars[i].name= thd_strmake(thd, items[i].name.data(), items[i].name.size());
    vars[i].value= (char *) &values[i];
    vars[i].type= SHOW_ULONGLONG;
  }
  vars[n].name= NullS;
  vars[n].value= NullS;
  vars[n].type= SHOW_LONG;
  var->type= SHOW_ARRAY;
  var->value= (char *) vars;
  return 0;
}

SHOW_VAR rust_status_variables[]= {
  {"Rust", (char *) &show_rust_vars, SHOW_FUNC},
  {NullS, NullS, SHOW_LONG}
};

bool rust_show_status(handlerton *, THD *thd, stat_print_fn *print,
                      enum ha_stat_type stat)
{
  if (stat != HA_ENGINE_STATUS)
    return false;
  rust::String text= ha_rust_ffi::engine_status_text();
  return print(thd, "RUST", 4, "", 0, text.data(), text.size());
}

/* ---- INFORMATION_SCHEMA tables: Rust describes each one's columns and gives
   its rows (ffi/status.rs); here they become ST_FIELD_INFO and fields ---- */

/* A column's server type. */
static Show::Type column_type(const ha_rust_ffi::Column &c)
{
  using ha_rust_ffi::ColumnKind;
  if (c.kind == ColumnKind::U64)
    return Show::ULonglong();
  if (c.kind == ColumnKind::U32)
    return Show::ULong();
  if (c.kind == ColumnKind::Double)
    return Show::Double(MY_INT64_NUM_DECIMAL_DIGITS);
  return Show::Varchar(c.length);
}

/* The columns of each table, built once at its plugin's init (names kept for
   the plugin's life). */
static std::vector<ST_FIELD_INFO> i_s_fields[5];
static std::deque<std::string> i_s_names;

template <int T>
static int i_s_fill(THD *thd, TABLE_LIST *tables, COND *)
{
  using ha_rust_ffi::ColumnKind;
  TABLE *t= tables->table;
  const std::vector<ST_FIELD_INFO> &cols= i_s_fields[T];
  const size_t n= cols.size() - 1;
  rust::Vec<ha_rust_ffi::Cell> cells=
      ha_rust_ffi::info_rows(static_cast<ha_rust_ffi::InfoTable>(T));
  for (size_t i= 0; n && i + n <= cells.size(); i+= n)
  {
    for (size_t c= 0; c < n; c++)
    {
      const ha_rust_ffi::Cell &v= cells[i + c];
      Field *f= t->field[c];
      if (v.null)
      {
        f->set_null();
        continue;
      }
      f->set_notnull();
      if (cols[c].type_handler() == &type_handler_double)
        f->store(v.real);
      else if (cols[c].unsigned_flag())
        f->store((longlong) v.number, true);
      else
        f->store(v.text.data(), v.text.size(), system_charset_info);
    }
    if (schema_table_store_record(thd, t))
      return 1;
  }
  return 0;
}

template <int T>
static int i_s_init(void *p)
{
  std::vector<ST_FIELD_INFO> &fields= i_s_fields[T];
  fields.clear();
  for (const ha_rust_ffi::Column &c :
       ha_rust_ffi::info_columns(static_cast<ha_rust_ffi::InfoTable>(T)))
  {
    i_s_names.emplace_back(c.name.data(), c.name.size());
    fields.push_back(Show::Column(i_s_names.back().c_str(), column_type(c),
                                  c.nullable ? NULLABLE : NOT_NULL));
  }
  fields.push_back(Show::CEnd());
  ST_SCHEMA_TABLE *s= (ST_SCHEMA_TABLE *) p;
  s->fields_info= fields.data();
  s->fill_table= i_s_fill<T>;
  return 0;
}

int rust_trx_init(void *p)
{ return i_s_init<(int) ha_rust_ffi::InfoTable::Trx>(p); }
int rust_tables_init(void *p)
{ return i_s_init<(int) ha_rust_ffi::InfoTable::Tables>(p); }
int rust_pool_init(void *p)
{ return i_s_init<(int) ha_rust_ffi::InfoTable::BufferPool>(p); }
int rust_locks_init(void *p)
{ return i_s_init<(int) ha_rust_ffi::InfoTable::Locks>(p); }
int rust_lock_waits_init(void *p)
{ return i_s_init<(int) ha_rust_ffi::InfoTable::LockWaits>(p); }
