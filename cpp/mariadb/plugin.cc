/*
  The plugin declaration: the RUST storage engine and its INFORMATION_SCHEMA
  tables, the handlerton (rust_init wires the transaction hooks of trx.cc and the
  status of status.cc), the system variables and the table options
  (LAYOUT=..., CSV_FILE=...).
*/
#include "ha_rust.h"
#include "status.h"
#include "trx.h"

#include <mysql/plugin.h>
#include <log.h>

/* Rust's hooks into the server's session: is it killed, how far is it
   (src/ffi/mod.rs). */
extern "C" void ha_rust_set_interrupt_probe(bool (*probe)(size_t));
extern "C" void ha_rust_set_progress_reporter(void (*r)(size_t, uint64_t, uint64_t));

static handlerton *rust_hton;
handlerton *rust_hton_btree;

/* System variables of the BTREE layout. */
static ulonglong rust_buffer_pool_size;
static ulong rust_flush_log_at_trx_commit;
static ulong rust_lock_wait_timeout;
static ulonglong rust_log_file_size;

static void update_flush_policy(THD *, struct st_mysql_sys_var *, void *var,
                                const void *save)
{
  *static_cast<ulong *>(var)= *static_cast<const ulong *>(save);
  ha_rust_ffi::engine_set_flush_policy(
      (ha_rust_ffi::LogFlush) rust_flush_log_at_trx_commit);
}

static void update_lock_wait_timeout(THD *, struct st_mysql_sys_var *, void *var,
                                     const void *save)
{
  *static_cast<ulong *>(var)= *static_cast<const ulong *>(save);
  ha_rust_ffi::engine_set_lock_wait_timeout(rust_lock_wait_timeout);
}

static void update_log_file_size(THD *, struct st_mysql_sys_var *, void *var,
                                 const void *save)
{
  *static_cast<ulonglong *>(var)= *static_cast<const ulonglong *>(save);
  ha_rust_ffi::engine_set_log_size(rust_log_file_size);
}

/* A test hook (docs/crash-safety.md, Panics): the bridge entry point (named as
   src/ffi's guard test names it) whose every call panics inside the guard. */
static char *rust_debug_panic_at;
static char debug_panic_at_buf[64];

static void update_debug_panic_at(THD *, struct st_mysql_sys_var *, void *var,
                                  const void *save)
{
  const char *v= *static_cast<char *const *>(save);
  snprintf(debug_panic_at_buf, sizeof debug_panic_at_buf, "%s", v ? v : "");
  *static_cast<char **>(var)= debug_panic_at_buf;
  ha_rust_ffi::engine_set_debug_panic_at(bytes(debug_panic_at_buf));
}

/* A test hook: the BTREE tree format version new tables are created in. */
static uint rust_debug_create_format;

static void update_debug_create_format(THD *, struct st_mysql_sys_var *,
                                       void *var, const void *save)
{
  *static_cast<uint *>(var)= *static_cast<const uint *>(save);
  ha_rust_ffi::engine_set_debug_create_format(rust_debug_create_format);
}

static MYSQL_SYSVAR_ULONGLONG(buffer_pool_size, rust_buffer_pool_size,
  PLUGIN_VAR_RQCMDARG | PLUGIN_VAR_READONLY,
  "Bytes of B-tree pages all BTREE tables together keep in memory "
  "(pages beyond it are evicted; an idle table's make way for a busy one's)",
  NULL, NULL, 64ULL << 20, 1ULL << 20, 1ULL << 40, RUST_PAGE_SIZE);
static MYSQL_SYSVAR_ULONG(flush_log_at_trx_commit, rust_flush_log_at_trx_commit,
  PLUGIN_VAR_RQCMDARG,
  "When a BTREE commit makes the redo log durable, as "
  "innodb_flush_log_at_trx_commit: 1 write and sync at every commit, "
  "2 write at every commit and sync about once a second, 0 both about once "
  "a second",
  NULL, update_flush_policy, 1, 0, 2, 0);
static MYSQL_SYSVAR_ULONG(lock_wait_timeout, rust_lock_wait_timeout,
  PLUGIN_VAR_RQCMDARG,
  "Seconds a BTREE transaction waits for a table lock before it gives up "
  "with ER_LOCK_WAIT_TIMEOUT",
  NULL, update_lock_wait_timeout, 50, 1, 1073741824, 0);

static MYSQL_THDVAR_BOOL(snapshot_isolation, PLUGIN_VAR_OPCMDARG,
  "First-updater-wins at REPEATABLE READ, as innodb_snapshot_isolation: a "
  "BTREE transaction that locks or changes a row another transaction changed "
  "after its read view was made fails with ER_CHECKREAD and is rolled back, "
  "instead of overwriting a change it never saw (docs/operations.md)",
  NULL, NULL, FALSE);

bool rust_thd_snapshot_isolation(THD *thd)
{
  return THDVAR(thd, snapshot_isolation);
}

static MYSQL_SYSVAR_ULONGLONG(log_file_size, rust_log_file_size,
  PLUGIN_VAR_RQCMDARG,
  "Bytes the BTREE redo log grows by before a checkpoint writes the tables' "
  "changed pages and lets the log go, as innodb_log_file_size: larger means "
  "fewer page writes, a longer recovery after a crash (which reads the log "
  "since the last checkpoint into memory)",
  NULL, update_log_file_size, 96ULL << 20, 1ULL << 20, 4ULL << 30, 1ULL << 20);

static MYSQL_SYSVAR_STR(debug_panic_at, rust_debug_panic_at,
  PLUGIN_VAR_RQCMDARG | PLUGIN_VAR_NOCMDOPT,
  "Test hook, not for production: while it names an entry point of the engine's "
  "bridge (e.g. table_open, bt_insert, trx_commit), every call of it panics "
  "inside the panic guard, which makes it the statement's error; empty: off",
  NULL, update_debug_panic_at, "");

static MYSQL_SYSVAR_UINT(debug_create_format, rust_debug_create_format,
  PLUGIN_VAR_RQCMDARG | PLUGIN_VAR_NOCMDOPT,
  "Test hook, not for production: the BTREE tree format version (docs/"
  "btree-format.md) new tables are created in, to test older formats; 0, or a "
  "version this build does not write: the current one",
  NULL, update_debug_create_format, 0, 0, 255, 0);

static struct st_mysql_sys_var *rust_system_variables[]= {
  MYSQL_SYSVAR(buffer_pool_size),
  MYSQL_SYSVAR(flush_log_at_trx_commit),
  MYSQL_SYSVAR(lock_wait_timeout),
  MYSQL_SYSVAR(log_file_size),
  MYSQL_SYSVAR(snapshot_isolation),
  MYSQL_SYSVAR(debug_panic_at),
  MYSQL_SYSVAR(debug_create_format),
  NULL
};

static ha_create_table_option rust_table_options[]=
{
  HA_TOPTION_ENUM("LAYOUT", layout, "BTREE,CSV,ARCHIVE", 0),
  HA_TOPTION_STRING("CSV_FILE", csv_file),
  HA_TOPTION_BOOL("CSV_HEADER", csv_header, 0),
  HA_TOPTION_STRING("CSV_SEPARATOR", csv_separator),
  HA_TOPTION_BOOL("CSV_WRITABLE", csv_writable, 0),
  HA_TOPTION_NUMBER("COMPRESSION_LEVEL", compression_level, 0, 0, 22, 1),
  HA_TOPTION_END
};

static const char *rust_exts[]= { ".csv", ".csv-rewrite", ".arz", ".arp",
                                  ".arz-rewrite", ".rbt", NullS };

static handler *rust_create_handler(handlerton *hton, TABLE_SHARE *table,
                                    MEM_ROOT *mem_root)
{
  return new (mem_root) ha_rust(hton, table);
}

int ha_rust::update_row(const uchar *old_data, const uchar *new_data)
{
  int rc= update_row_layout(old_data, new_data);
  if (!rc)
    rust_count_row(ROWS_UPDATED, layout());
  return rc;
}

/* ARCHIVE is append-only: UPDATE and DELETE are refused, as MariaDB's ARCHIVE
   engine refuses them. */
int ha_rust::update_row_layout(const uchar *old_data, const uchar *new_data)
{
  if (layout() == LAYOUT_BTREE)
    return bt_update_row(old_data, new_data);
  if (layout() != LAYOUT_CSV)
    return HA_ERR_WRONG_COMMAND;
  pack_row(new_data);
  return rust_rc((*tbl)->update_current(bytes(row_image), csv_fields()));
}

/* SHOW CREATE TABLE and ALTER TABLE keep the AUTO_INCREMENT counter. */
void ha_rust::update_create_info(HA_CREATE_INFO *create_info)
{
  if (tbl && layout() != LAYOUT_CSV &&
      !(create_info->used_fields & HA_CREATE_USED_AUTO))
  {
    info(HA_STATUS_AUTO);
    create_info->auto_increment_value= stats.auto_increment_value;
  }
}

static int rust_init(void *p)
{
  rust_hton= rust_hton_btree= static_cast<handlerton *>(p);
  rust_hton->create= rust_create_handler;
  rust_hton->table_options= rust_table_options;
  rust_hton->tablefile_extensions= rust_exts;
  rust_hton->commit= rust_bt_commit;
  rust_hton->rollback= rust_bt_rollback;
  rust_hton->savepoint_offset= sizeof(uint64_t);
  rust_hton->savepoint_set= rust_bt_savepoint_set;
  rust_hton->savepoint_rollback= rust_bt_savepoint_rollback;
  rust_hton->savepoint_release= rust_bt_savepoint_release;
  rust_hton->close_connection= rust_bt_close_connection;
  rust_hton->prepare= rust_bt_prepare;
  rust_hton->start_consistent_snapshot= rust_bt_start_consistent_snapshot;
  rust_hton->recover= rust_bt_recover;
  rust_hton->commit_by_xid= rust_bt_commit_by_xid;
  rust_hton->rollback_by_xid= rust_bt_rollback_by_xid;
  rust_hton->commit_checkpoint_request= rust_bt_commit_checkpoint_request;
  rust_hton->kill_query= rust_bt_kill_query;
  rust_hton->show_status= rust_show_status;
  ha_rust_set_interrupt_probe(rust_bt_session_stopped);
  ha_rust_set_progress_reporter(rust_report_progress);
  /* The BTREE engine's files live in the data directory (the server's working
     directory); starting it recovers from a crash. If it cannot start, CSV and
     ARCHIVE tables still work and BTREE tables say why they cannot open. */
  ha_rust_ffi::engine_set_lock_wait_timeout(rust_lock_wait_timeout);
  rust::String e;
  if (ha_rust_ffi::engine_start(bytes("."), rust_buffer_pool_size / RUST_PAGE_SIZE,
                                (ha_rust_ffi::LogFlush) rust_flush_log_at_trx_commit,
                                rust_log_file_size, e))
    sql_print_error("RUST: the BTREE layout cannot start: %s",
                    std::string(e).c_str());
  rust::String note;
  while (ha_rust_ffi::engine_take_note(note))
    sql_print_information("RUST: %s", std::string(note).c_str());
  return 0;
}

static int rust_deinit(void *)
{
  ha_rust_set_interrupt_probe(nullptr);
  ha_rust_set_progress_reporter(nullptr);
  ha_rust_ffi::engine_stop();
  return 0;
}

/* The INFORMATION_SCHEMA tables (status.cc), each a plugin of its own in
   this library, all alike but for name, description and init. */
#define RUST_I_S_PLUGIN(name, descr, init)                                   \
  { MYSQL_INFORMATION_SCHEMA_PLUGIN, &rust_i_s_info, name,                   \
    "ha_rust developers", descr, PLUGIN_LICENSE_GPL, init, NULL, 0x0001,    \
    NULL, NULL, "0.1", MariaDB_PLUGIN_MATURITY_GAMMA }

static struct st_mysql_storage_engine rust_storage_engine=
{ MYSQL_HANDLERTON_INTERFACE_VERSION };

maria_declare_plugin(rust)
{
  MYSQL_STORAGE_ENGINE_PLUGIN,
  &rust_storage_engine,
  "RUST",
  "ha_rust developers",
  "Storage engine written in Rust: LAYOUT=BTREE (transactional), CSV, ARCHIVE",
  PLUGIN_LICENSE_GPL,
  rust_init,
  rust_deinit,
  0x0001,
  rust_status_variables,
  rust_system_variables,
  "0.1",
  MariaDB_PLUGIN_MATURITY_GAMMA
},
RUST_I_S_PLUGIN("RUST_TRX", "The open transactions of RUST (BTREE) tables",
                rust_trx_init),
RUST_I_S_PLUGIN("RUST_TABLES", "The RUST tables: layout, files, sizes, format version",
                rust_tables_init),
RUST_I_S_PLUGIN("RUST_BUFFER_POOL", "Pages of each BTREE tree file in the buffer pool",
                rust_pool_init),
RUST_I_S_PLUGIN("RUST_LOCKS", "BTREE table locks held and waited for",
                rust_locks_init),
RUST_I_S_PLUGIN("RUST_LOCK_WAITS", "Which BTREE transaction waits for which",
                rust_lock_waits_init)
maria_declare_plugin_end;
