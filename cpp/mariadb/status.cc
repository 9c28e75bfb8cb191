/* What a DBA watches (docs/operations.md): SHOW GLOBAL STATUS LIKE 'Rust%',
   SHOW ENGINE RUST STATUS and INFORMATION_SCHEMA.RUST_TRX. The counters of the
   engine's work are Rust's (src/metrics.rs, read through status_counters());
   the rows the handler hands over are counted here, per layout, with relaxed
   atomics (no lock on the row path). */
#include "ha_rust.h"
#include "status.h"

#include <atomic>
#include <sql_i_s.h>
#include <sql_show.h>

static std::atomic<ulonglong> rows_counted[4][3];

struct st_mysql_information_schema rust_i_s_info=
{ MYSQL_INFORMATION_SCHEMA_INTERFACE_VERSION };

/* Rust's long calls tell their session how far they are (session.rs). */
extern "C" void rust_report_progress(size_t session, uint64_t done, uint64_t total)
{
  thd_progress_report(reinterpret_cast<THD *>(session), done, total);
}

void rust_count_row(rust_row_count what, rust_layout layout)
{
  rows_counted[what][layout].fetch_add(1, std::memory_order_relaxed);
}

static ulonglong rows_of(rust_row_count what, rust_layout layout)
{
  return rows_counted[what][layout].load(std::memory_order_relaxed);
}

/* The variables, built anew for each SHOW: values and entries live in the
   statement's memory, so concurrent SHOWs never share a buffer. Names are
   listed alphabetically (the server shows them as given). */
static int show_rust_vars(THD *thd, SHOW_VAR *var, void *, system_status_var *,
                          enum enum_var_type)
{
  ha_rust_ffi::StatusCounters s= ha_rust_ffi::status_counters();
  const struct { const char *name; ulonglong value; } items[]= {
    {"archive_blocks_damaged", s.archive_blocks_damaged},
    {"archive_bytes_read", s.archive_bytes_scanned},
    {"buffer_pool_evictions", s.pool_evictions},
    {"buffer_pool_pages_cached", s.pool_cached},
    {"buffer_pool_pages_dirty", s.pool_dirty},
    {"buffer_pool_pages_free", s.pool_pages > s.pool_cached ? s.pool_pages - s.pool_cached : 0},
    {"buffer_pool_pages_total", s.pool_pages},
    {"buffer_pool_pages_written", s.pool_writes},
    {"buffer_pool_read_requests", s.pool_read_requests},
    {"buffer_pool_reads", s.pool_reads},
    {"checkpoint_age", s.checkpoint_age},
    {"checkpoints", s.checkpoints},
    {"csv_bytes_scanned", s.csv_bytes_scanned},
    {"csv_rows_malformed", s.csv_rows_malformed},
    {"lock_wait_microseconds", s.lock_wait_micros},
    {"lock_wait_timeouts", s.lock_timeouts},
    {"lock_waits", s.lock_waits},
    {"log_bytes_written", s.log_bytes_written},
    {"log_file_size", s.log_size},
    {"log_fsyncs", s.log_fsyncs},
    {"log_lsn", s.log_lsn},
    {"log_lsn_checkpoint", s.checkpoint_lsn},
    {"log_lsn_synced", s.log_synced_lsn},
    {"log_writes", s.log_writes},
    {"open_tree_files", s.open_trees},
    {"panics_caught", s.panics_caught},
    {"rows_deleted_btree", rows_of(ROWS_DELETED, LAYOUT_BTREE)},
    {"rows_deleted_csv", rows_of(ROWS_DELETED, LAYOUT_CSV)},
    {"rows_inserted_archive", rows_of(ROWS_INSERTED, LAYOUT_ARCHIVE)},
    {"rows_inserted_btree", rows_of(ROWS_INSERTED, LAYOUT_BTREE)},
    {"rows_inserted_csv", rows_of(ROWS_INSERTED, LAYOUT_CSV)},
    {"rows_read_archive", rows_of(ROWS_READ, LAYOUT_ARCHIVE)},
    {"rows_read_btree", rows_of(ROWS_READ, LAYOUT_BTREE)},
    {"rows_read_csv", rows_of(ROWS_READ, LAYOUT_CSV)},
    {"rows_updated_btree", rows_of(ROWS_UPDATED, LAYOUT_BTREE)},
    {"rows_updated_csv", rows_of(ROWS_UPDATED, LAYOUT_CSV)},
    {"trx_active", s.trx_active},
    {"trx_committed", s.trx_commits},
    {"trx_rolled_back", s.trx_rollbacks},
  };
  const size_t n= array_elements(items);
  ulonglong *values= (ulonglong *) thd_alloc(thd, n * sizeof(ulonglong));
  SHOW_VAR *vars= (SHOW_VAR *) thd_alloc(thd, (n + 1) * sizeof(SHOW_VAR));
  if (!values || !vars)
    return 1;
  for (size_t i= 0; i < n; i++)
  {
    values[i]= items[i].value;
    vars[i].name= items[i].name;
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

/* An INFORMATION_SCHEMA plugin's init: its columns and how it is filled. */
static int i_s_init(void *p, ST_FIELD_INFO *fields,
                    int (*fill)(THD *, TABLE_LIST *, COND *))
{
  ST_SCHEMA_TABLE *s= (ST_SCHEMA_TABLE *) p;
  s->fields_info= fields;
  s->fill_table= fill;
  return 0;
}

/* A nullable number column: NULL unless `known`. */
static void store_opt(Field *f, bool known, longlong v, bool is_unsigned)
{
  if (!known)
  {
    f->set_null();
    return;
  }
  f->set_notnull();
  f->store(v, is_unsigned);
}

/* ---- INFORMATION_SCHEMA.RUST_TRX: the open BTREE transactions ---- */

namespace Show {
static ST_FIELD_INFO rust_trx_fields[]=
{
  Column("TRX_ID", ULonglong(), NOT_NULL),
  Column("STATE", Varchar(16), NOT_NULL),
  Column("AGE_SECONDS", Double(MY_INT64_NUM_DECIMAL_DIGITS), NOT_NULL),
  Column("UNDO_ENTRIES", ULonglong(), NOT_NULL),
  CEnd()
};
} // namespace Show

static int rust_trx_fill(THD *thd, TABLE_LIST *tables, COND *)
{
  TABLE *t= tables->table;
  for (const ha_rust_ffi::TrxRow &r : ha_rust_ffi::trx_rows())
  {
    t->field[0]->store((longlong) r.id, true);
    t->field[1]->store(r.state.data(), r.state.size(), system_charset_info);
    t->field[2]->store(r.age_secs);
    t->field[3]->store((longlong) r.changes, true);
    if (schema_table_store_record(thd, t))
      return 1;
  }
  return 0;
}

int rust_trx_init(void *p)
{ return i_s_init(p, Show::rust_trx_fields, rust_trx_fill); }


/* ---- INFORMATION_SCHEMA.RUST_TABLES: the RUST tables and their files ---- */

namespace Show {
static ST_FIELD_INFO rust_tables_fields[]=
{
  Column("TABLE_SCHEMA", Name(), NOT_NULL),
  Column("TABLE_NAME", Name(), NOT_NULL),
  Column("LAYOUT", Varchar(8), NOT_NULL),
  Column("FORMAT_VERSION", ULong(), NULLABLE),
  Column("ROWS_ESTIMATE", ULonglong(), NULLABLE),
  Column("DATA_BYTES", ULonglong(), NOT_NULL),
  Column("OTHER_BYTES", ULonglong(), NOT_NULL),
  Column("FILES", Varchar(2048), NOT_NULL),
  Column("ATTACHED_FILE", Varchar(1024), NULLABLE),
  Column("CSV_OPTIONS", Varchar(128), NULLABLE),
  CEnd()
};
} // namespace Show

static void store_text(Field *f, const rust::String &s, bool null_if_empty)
{
  if (null_if_empty && s.empty())
  {
    f->set_null();
    return;
  }
  f->set_notnull();
  f->store(s.data(), s.size(), system_charset_info);
}

static int rust_tables_fill(THD *thd, TABLE_LIST *tables, COND *)
{
  TABLE *t= tables->table;
  for (const ha_rust_ffi::TableInfo &r : ha_rust_ffi::table_rows())
  {
    /* the schema and table names are the file names' (the server's own
       encoding of special characters, e.g. @002d, left as it is) */
    store_text(t->field[0], r.schema, false);
    store_text(t->field[1], r.name, false);
    store_text(t->field[2], r.layout, false);
    store_opt(t->field[3], r.format_version != 0, r.format_version, true);
    store_opt(t->field[4], r.rows_known, (longlong) r.rows, true);
    t->field[5]->store((longlong) r.data_bytes, true);
    t->field[6]->store((longlong) r.other_bytes, true);
    store_text(t->field[7], r.files, false);
    store_text(t->field[8], r.attached_file, true);
    store_text(t->field[9], r.csv_options, true);
    if (schema_table_store_record(thd, t))
      return 1;
  }
  return 0;
}

int rust_tables_init(void *p)
{ return i_s_init(p, Show::rust_tables_fields, rust_tables_fill); }


/* ---- INFORMATION_SCHEMA.RUST_BUFFER_POOL: cached pages per tree file ---- */

namespace Show {
static ST_FIELD_INFO rust_pool_fields[]=
{
  Column("TABLE_SCHEMA", Name(), NOT_NULL),
  Column("TABLE_NAME", Name(), NOT_NULL),
  Column("INDEX_NUMBER", ULong(), NOT_NULL),
  Column("PAGES_CACHED", ULonglong(), NOT_NULL),
  Column("PAGES_DIRTY", ULonglong(), NULLABLE),
  CEnd()
};
} // namespace Show

static int rust_pool_fill(THD *thd, TABLE_LIST *tables, COND *)
{
  TABLE *t= tables->table;
  for (const ha_rust_ffi::PoolRow &r : ha_rust_ffi::pool_rows())
  {
    store_text(t->field[0], r.schema, false);
    store_text(t->field[1], r.table, false);
    t->field[2]->store((longlong) r.index, true);
    t->field[3]->store((longlong) r.cached, true);
    store_opt(t->field[4], r.dirty_known, (longlong) r.dirty, true);
    if (schema_table_store_record(thd, t))
      return 1;
  }
  return 0;
}

int rust_pool_init(void *p)
{ return i_s_init(p, Show::rust_pool_fields, rust_pool_fill); }


/* ---- INFORMATION_SCHEMA.RUST_LOCKS and RUST_LOCK_WAITS: table locks ---- */

namespace Show {
static ST_FIELD_INFO rust_locks_fields[]=
{
  Column("TABLE_SCHEMA", Name(), NOT_NULL),
  Column("TABLE_NAME", Name(), NOT_NULL),
  Column("TRX_ID", ULonglong(), NOT_NULL),
  Column("LOCK_MODE", Varchar(1), NOT_NULL),
  Column("LOCK_STATUS", Varchar(8), NOT_NULL),
  Column("WAIT_SECONDS", Double(MY_INT64_NUM_DECIMAL_DIGITS), NULLABLE),
  CEnd()
};

static ST_FIELD_INFO rust_lock_waits_fields[]=
{
  Column("REQUESTING_TRX_ID", ULonglong(), NOT_NULL),
  Column("REQUESTED_MODE", Varchar(1), NOT_NULL),
  Column("BLOCKING_TRX_ID", ULonglong(), NOT_NULL),
  Column("TABLE_SCHEMA", Name(), NOT_NULL),
  Column("TABLE_NAME", Name(), NOT_NULL),
  Column("WAIT_SECONDS", Double(MY_INT64_NUM_DECIMAL_DIGITS), NOT_NULL),
  CEnd()
};
} // namespace Show

static int rust_locks_fill(THD *thd, TABLE_LIST *tables, COND *)
{
  TABLE *t= tables->table;
  for (const ha_rust_ffi::LockRow &r : ha_rust_ffi::lock_rows())
  {
    store_text(t->field[0], r.schema, false);
    store_text(t->field[1], r.table, false);
    t->field[2]->store((longlong) r.trx, true);
    t->field[3]->store(r.exclusive ? "X" : "S", 1, system_charset_info);
    t->field[4]->store(r.waiting ? "WAITING" : "GRANTED", 7, system_charset_info);
    if (r.waiting)
    {
      t->field[5]->set_notnull();
      t->field[5]->store(r.waiting_secs);
    }
    else
      t->field[5]->set_null();
    if (schema_table_store_record(thd, t))
      return 1;
  }
  return 0;
}

static int rust_lock_waits_fill(THD *thd, TABLE_LIST *tables, COND *)
{
  TABLE *t= tables->table;
  for (const ha_rust_ffi::LockRow &r : ha_rust_ffi::lock_rows())
    for (uint64_t by : r.blocked_by)
    {
      t->field[0]->store((longlong) r.trx, true);
      t->field[1]->store(r.exclusive ? "X" : "S", 1, system_charset_info);
      t->field[2]->store((longlong) by, true);
      store_text(t->field[3], r.schema, false);
      store_text(t->field[4], r.table, false);
      t->field[5]->store(r.waiting_secs);
      if (schema_table_store_record(thd, t))
        return 1;
    }
  return 0;
}

int rust_locks_init(void *p)
{ return i_s_init(p, Show::rust_locks_fields, rust_locks_fill); }

int rust_lock_waits_init(void *p)
{ return i_s_init(p, Show::rust_lock_waits_fields, rust_lock_waits_fill); }
