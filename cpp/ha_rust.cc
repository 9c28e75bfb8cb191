/*
  ha_rust: plugin declaration and the handler. Glue only: see ha_rust.h.

  Rows cross to Rust as a "text row image": for each stored column, a kind byte
  (0 NULL, 1 bare, 2 quoted), a little-endian u32 length and the value as text.
  Rows come back as decoded text and [offset, length] pairs (length UINT32_MAX for
  NULL), which are stored into the fields here, where the server's types live.
*/
#include "ha_rust.h"

#include <sql_class.h>
#include <sql_acl.h>
#include <mysqld.h>
#include <tztime.h>
#include <field.h>
#include <table.h>
#include <mysql/plugin.h>
#include <log.h>
#include <key.h>

#include <algorithm>

#include <charconv>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstdint>

/* Engine-private error codes, as in src/error.rs: past the server's last one. */
#define HA_ERR_RUST_FIRST (HA_ERR_LAST + 1)

using ha_rust_ffi::Table;

static handlerton *rust_hton;
handlerton *rust_hton_btree;

int rust_bt_commit(handlerton *, THD *thd, bool all);
int rust_bt_rollback(handlerton *, THD *thd, bool all);
int rust_bt_savepoint_set(handlerton *, THD *thd, void *sv);
int rust_bt_savepoint_rollback(handlerton *, THD *thd, void *sv);
int rust_bt_savepoint_release(handlerton *, THD *, void *);
int rust_bt_close_connection(handlerton *, THD *thd);
int rust_bt_prepare(handlerton *, THD *thd, bool all);
int rust_bt_recover(handlerton *, XID *xid_list, uint len);
int rust_bt_commit_by_xid(handlerton *, XID *xid);
int rust_bt_rollback_by_xid(handlerton *, XID *xid);
void rust_bt_commit_checkpoint_request(void *cookie);
void rust_bt_kill_query(handlerton *, THD *thd, enum thd_kill_levels);
extern "C" bool rust_bt_session_stopped(size_t session);
extern "C" void ha_rust_set_interrupt_probe(bool (*probe)(size_t));
extern "C" void ha_rust_set_progress_reporter(void (*r)(size_t, uint64_t, uint64_t));
extern "C" void rust_report_progress(size_t session, uint64_t done, uint64_t total);

/* System variables of the BTREE layout. */
static ulonglong rust_buffer_pool_size;
static ulong rust_flush_log_at_trx_commit;
static ulong rust_lock_wait_timeout;
static ulonglong rust_log_file_size;

static void update_flush_policy(THD *, struct st_mysql_sys_var *, void *var,
                                const void *save)
{
  *static_cast<ulong *>(var)= *static_cast<const ulong *>(save);
  ha_rust_ffi::engine_set_flush_policy((uint8_t) rust_flush_log_at_trx_commit);
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

static MYSQL_SYSVAR_ULONGLONG(buffer_pool_size, rust_buffer_pool_size,
  PLUGIN_VAR_RQCMDARG | PLUGIN_VAR_READONLY,
  "Bytes of B-tree pages all BTREE tables together keep in memory "
  "(pages beyond it are evicted; an idle table's make way for a busy one's)",
  NULL, NULL, 64ULL << 20, 1ULL << 20, 1ULL << 40, 16384);
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

static MYSQL_SYSVAR_ULONGLONG(log_file_size, rust_log_file_size,
  PLUGIN_VAR_RQCMDARG,
  "Bytes the BTREE redo log grows by before a checkpoint writes the tables' "
  "changed pages and lets the log go, as innodb_log_file_size: larger means "
  "fewer page writes, a longer recovery after a crash (which reads the log "
  "since the last checkpoint into memory)",
  NULL, update_log_file_size, 96ULL << 20, 1ULL << 20, 4ULL << 30, 1ULL << 20);

static struct st_mysql_sys_var *rust_system_variables[]= {
  MYSQL_SYSVAR(buffer_pool_size),
  MYSQL_SYSVAR(flush_log_at_trx_commit),
  MYSQL_SYSVAR(lock_wait_timeout),
  MYSQL_SYSVAR(log_file_size),
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

static rust::Slice<const uint8_t> bytes(const char *s)
{
  return rust::Slice<const uint8_t>(reinterpret_cast<const uint8_t *>(s ? s : ""),
                                    s ? strlen(s) : 0);
}


static uchar separator_of(const ha_table_option_struct *o)
{
  return o->csv_separator && o->csv_separator[0] ? (uchar) o->csv_separator[0] : ',';
}

static uint stored_columns(TABLE *t)
{
  uint n= 0;
  for (Field **f= t->field; *f; f++)
    if ((*f)->stored_in_db())
      n++;
  return n;
}

static void append_value(String *image, uchar kind, const char *p, size_t len)
{
  char hdr[5];
  hdr[0]= (char) kind;
  int4store(hdr + 1, (uint32) len);
  image->append(hdr, 5);
  if (len)
    image->append(p, len);
}

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

static handler *rust_create_handler(handlerton *hton, TABLE_SHARE *table,
                                    MEM_ROOT *mem_root)
{
  return new (mem_root) ha_rust(hton, table);
}

ha_rust::ha_rust(handlerton *hton, TABLE_SHARE *table_arg)
  : handler(hton, table_arg)
{
  ref_length= 8;
}

ha_rust::~ha_rust()
{
  delete tbl;
}

/* THR_LOCK's check_status: may an INSERT (TL_WRITE_CONCURRENT_INSERT) run beside
   the readers? Always, for CSV and ARCHIVE: a scan reads only what was published
   when it started, and appends are published whole (see src/csv, src/archive). */
static my_bool concurrent_insert_allowed(void *)
{
  return FALSE;
}

Rust_share *ha_rust::get_share()
{
  Rust_share *s;
  lock_shared_ha_data();
  if (!(s= static_cast<Rust_share *>(get_ha_share_ptr())))
  {
    s= new Rust_share;
    /* Without check_status, thr_lock turns every concurrent insert into a plain
       write lock that waits for running scans. BTREE takes its own table locks
       (store_lock below), so only the append-only layouts need it. */
    if (table_share->option_struct &&
        table_share->option_struct->layout != LAYOUT_BTREE)
      s->lock.check_status= concurrent_insert_allowed;
    set_ha_share_ptr(static_cast<Handler_share *>(s));
  }
  unlock_shared_ha_data();
  return s;
}

/* Remembers the message of a failed Rust call for print_error(). */
int ha_rust::rust_rc(int code)
{
  if (code && tbl)
    err_msg= std::string((*tbl)->last_error());
  return code;
}

/* The layout of the open table; a handler the server makes to check a CREATE
   has no share yet, and answers for every layout (create() then refuses what
   the chosen layout cannot do). */
rust_layout ha_rust::layout() const
{
  if (table_share && table_share->option_struct)
    return (rust_layout) table_share->option_struct->layout;
  return LAYOUT_BTREE;   /* the widest: BTREE can index and AUTO_INCREMENT */
}

ulonglong ha_rust::table_flags() const
{
  ulonglong common= HA_NO_TRANSACTIONS | HA_REC_NOT_IN_SEQ |
                    HA_BINLOG_ROW_CAPABLE | HA_BINLOG_STMT_CAPABLE |
                    HA_CAN_REPAIR | HA_CAN_GEOMETRY |
                    HA_CAN_VIRTUAL_COLUMNS;
  if (layout() == LAYOUT_CSV)
    return common | HA_NO_AUTO_INCREMENT;
  if (layout() == LAYOUT_BTREE)
    /* HA_PRIMARY_KEY_IN_READ_INDEX: every secondary entry ends with the
       primary key, which index-only reads decode when they can (every part
       decodable; not a hidden row id). Known once the table is open (bt_setup);
       a handler that helps build the share answers without it. */
    return (common & ~HA_NO_TRANSACTIONS & ~HA_CAN_REPAIR) | HA_NULL_IN_KEY |
           HA_CAN_SQL_HANDLER |
           HA_CAN_INDEX_BLOBS | HA_PRIMARY_KEY_REQUIRED_FOR_POSITION |
           HA_REQUIRES_KEY_COLUMNS_FOR_DELETE | HA_TABLE_SCAN_ON_INDEX |
           (pk_decodable ? HA_PRIMARY_KEY_IN_READ_INDEX : 0);
  /* ARCHIVE: rnd_pos() decompresses a block. (Not for BTREE or CSV: with it,
     an UPDATE with a subquery and ORDER BY ... LIMIT over a table with a
     blob took a plan in which the server evaluated SET from another row.) */
  return common | HA_STATS_RECORDS_IS_EXACT | HA_HAS_RECORDS | HA_NULL_IN_KEY |
         HA_SLOW_RND_POS;
}

ulong ha_rust::index_flags(uint inx, uint part, bool all_parts) const
{
  if (layout() != LAYOUT_BTREE)
    return HA_ONLY_WHOLE_INDEX;
  ulong flags= HA_READ_NEXT | HA_READ_PREV | HA_READ_RANGE | HA_READ_ORDER;
  if (!table_share || !table_share->key_info || inx >= table_share->keys)
    return flags;
  KEY *k= table_share->key_info + inx;
  /* the clustered tree holds whole rows: reading it "index only" gives every
     column. Known by its name: while the server builds the share (and asks
     which keys can be read index only), table_share->primary_key is not set
     yet. */
  if (k->name.str && !strcmp(k->name.str, "PRIMARY"))
    return flags | HA_CLUSTERED_INDEX | HA_KEYREAD_ONLY;
  /* A secondary index can be read index only for the parts asked about when
     each can be decoded from its memcomparable bytes (integers, dates, ...:
     see rust_key_part_decodable; never a string). While the share is being
     built the parts after `part` have no field yet: only those asked about
     are looked at. The primary key's columns, at the end of every entry, are
     offered through HA_PRIMARY_KEY_IN_READ_INDEX (table_flags). */
  bool decodable= part < k->user_defined_key_parts;
  for (uint p= all_parts ? 0 : part; p <= part && p < k->user_defined_key_parts; p++)
  {
    /* a prefix key part cannot give the order of the whole value; nor, for
       the server, can a BIT part: the GROUP BY it would read in index order
       copies a BIT's group value without the bits kept among the null bits
       (MyISAM and Aria give wrong groups there too; InnoDB keeps no BIT bits
       there and sorts) */
    if ((k->key_part[p].key_part_flag & HA_PART_KEY_SEG) ||
        (k->key_part[p].field && k->key_part[p].field->type() == MYSQL_TYPE_BIT))
      flags&= ~HA_READ_ORDER;
    if (!rust_key_part_decodable(k->key_part + p))
      decodable= false;
  }
  /* Index condition pushdown (asked with all_parts, once the share is built):
     when every part of the key decodes, the pushed condition is tested on the
     entry before its row is read (bt_fetch). */
  if (all_parts && part == 0 && decodable)
  {
    bool icp= true;
    for (uint p= 0; p < k->user_defined_key_parts && icp; p++)
      icp= k->key_part[p].field && rust_key_part_decodable(k->key_part + p);
    if (icp)
      flags|= HA_DO_INDEX_COND_PUSHDOWN;
  }
  return decodable ? flags | HA_KEYREAD_ONLY : flags;
}

int ha_rust::create(const char *name, TABLE *form, HA_CREATE_INFO *info)
{
  THD *thd= ha_thd();
  ha_table_option_struct *o= form->s->option_struct;
  if (!ha_rust_ffi::layout_supported((uint8_t) o->layout))
  {
    rust::String e;
    int rc= ha_rust_ffi::table_create(bytes(name), (uint8_t) o->layout,
                                      bytes(""), false, ',', false, 0,
                                      rust::Slice<const uint8_t>(), 0, 1, e);
    my_printf_error(ER_ILLEGAL_HA_CREATE_OPTION, "%s", MYF(0),
                    std::string(e).c_str());
    return rc ? HA_WRONG_CREATE_OPTION : HA_WRONG_CREATE_OPTION;
  }
  uint indexes= 1;
  if (o->layout == LAYOUT_BTREE)
  {
    if (o->csv_file || o->csv_header || o->csv_separator || o->csv_writable ||
        o->compression_level)
    {
      my_printf_error(ER_ILLEGAL_HA_CREATE_OPTION,
                      "CSV_* and COMPRESSION_LEVEL do not apply to LAYOUT=BTREE",
                      MYF(0));
      return HA_WRONG_CREATE_OPTION;
    }
    if (int rc= bt_create_check(form, &indexes))
      return rc;
  }
  else if (o->layout == LAYOUT_CSV)
  {
    if (form->s->keys)
    {
      my_error(ER_TOO_MANY_KEYS, MYF(0), 0);
      return HA_WRONG_CREATE_OPTION;
    }
    if (form->found_next_number_field)
    {
      my_error(ER_TABLE_CANT_HANDLE_AUTO_INCREMENT, MYF(0));
      return HA_WRONG_CREATE_OPTION;
    }
    if (o->compression_level)
    {
      my_printf_error(ER_ILLEGAL_HA_CREATE_OPTION,
                      "COMPRESSION_LEVEL applies to LAYOUT=ARCHIVE only", MYF(0));
      return HA_WRONG_CREATE_OPTION;
    }
  }
  else
  {
    if (o->csv_file || o->csv_header || o->csv_separator || o->csv_writable)
    {
      my_printf_error(ER_ILLEGAL_HA_CREATE_OPTION,
                      "CSV_* options apply to LAYOUT=CSV only", MYF(0));
      return HA_WRONG_CREATE_OPTION;
    }
    /* As MariaDB's ARCHIVE: at most one index, on the AUTO_INCREMENT column. */
    if (form->s->keys > 1)
    {
      my_error(ER_TOO_MANY_KEYS, MYF(0), 1);
      return HA_WRONG_CREATE_OPTION;
    }
    for (uint k= 0; k < form->s->keys; k++)
    {
      KEY *key= form->key_info + k;
      if (key->user_defined_key_parts != 1 ||
          !(key->key_part[0].field->flags & AUTO_INCREMENT_FLAG) ||
          key->key_part[0].field->result_type() != INT_RESULT)
      {
        my_printf_error(ER_ILLEGAL_HA_CREATE_OPTION,
                        "An ARCHIVE table can have one index only, on its "
                        "integer AUTO_INCREMENT column", MYF(0));
        return HA_WRONG_CREATE_OPTION;
      }
    }
  }
  if (o->csv_separator)
  {
    size_t n= strlen(o->csv_separator);
    char c= o->csv_separator[0];
    if (n != 1 || c == '"' || c == '\\' || c == '\n' || c == '\r')
    {
      my_printf_error(ER_ILLEGAL_HA_CREATE_OPTION,
                      "CSV_SEPARATOR must be one character other than a quote, "
                      "a backslash or a line break", MYF(0));
      return HA_WRONG_CREATE_OPTION;
    }
  }
  if (o->csv_writable && !o->csv_file)
  {
    my_printf_error(ER_ILLEGAL_HA_CREATE_OPTION,
                    "CSV_WRITABLE applies to an attached file (CSV_FILE) only",
                    MYF(0));
    return HA_WRONG_CREATE_OPTION;
  }
  if (o->csv_file && (thd_sql_command(thd) == SQLCOM_ALTER_TABLE ||
                      strstr(name, "#P#")))
  {
    /* ALTER copies rows into a new table: attached to the same file, it would
       append them to it again; partitions would each attach the whole file */
    my_printf_error(ER_ILLEGAL_HA_CREATE_OPTION,
                    "A table attached to a CSV file cannot be altered or "
                    "partitioned; drop it and create it again", MYF(0));
    return HA_WRONG_CREATE_OPTION;
  }
  if (o->csv_file)
  {
    /* Reading a server-side file is what the FILE privilege and
       secure_file_priv govern, as for LOAD DATA INFILE. */
    if (check_global_access(thd, FILE_ACL))
      return HA_WRONG_CREATE_OPTION;
    if (o->csv_file[0] != '/')
    {
      my_printf_error(ER_ILLEGAL_HA_CREATE_OPTION,
                      "CSV_FILE must be an absolute path", MYF(0));
      return HA_WRONG_CREATE_OPTION;
    }
    char path[FN_REFLEN];
    if (strlen(o->csv_file) >= sizeof(path) - 1)
    {
      /* checked whole or not at all: a cut copy could pass the check while
         the full path names another file */
      my_printf_error(ER_ILLEGAL_HA_CREATE_OPTION,
                      "CSV_FILE is longer than %d bytes", MYF(0),
                      (int) sizeof(path) - 2);
      return HA_WRONG_CREATE_OPTION;
    }
    strmake(path, o->csv_file, sizeof(path) - 1);
    if (!is_secure_file_path(path))
    {
      my_error(ER_OPTION_PREVENTS_STATEMENT, MYF(0), "--secure-file-priv");
      return HA_WRONG_CREATE_OPTION;
    }
  }
  /* header line: the names of the stored columns */
  String header;
  for (Field **f= form->field; *f; f++)
    if ((*f)->stored_in_db())
      append_value(&header, 2, (*f)->field_name.str, (*f)->field_name.length);
  rust::String e;
  int rc= ha_rust_ffi::table_create(
      bytes(name), (uint8_t) o->layout, bytes(o->csv_file), o->csv_header,
      separator_of(o), o->csv_writable, stored_columns(form), bytes(header),
      info->auto_increment_value ? info->auto_increment_value - 1 : 0,
      indexes, e);
  if (rc)
  {
    err_msg= std::string(e);
    my_printf_error(ER_CANT_CREATE_TABLE, "Cannot create RUST table: %s",
                    MYF(0), err_msg.c_str());
  }
  return rc;
}

int ha_rust::delete_table(const char *name)
{
  rust::String e;
  int rc= ha_rust_ffi::table_delete(bytes(name), e);
  if (rc)
    err_msg= std::string(e);
  return rc;
}

int ha_rust::rename_table(const char *from, const char *to)
{
  rust::String e;
  int rc= ha_rust_ffi::table_rename(bytes(from), bytes(to), e);
  if (rc)
    err_msg= std::string(e);
  return rc;
}

int ha_rust::open(const char *name, int mode, uint test_if_locked)
{
  if (!(share= get_share()))
    return HA_ERR_OUT_OF_MEM;
  thr_lock_data_init(&share->lock, &lock, NULL);
  ha_table_option_struct *o= table->s->option_struct;
  uint64_t unique_mask= 0;
  uint indexes= 1;
  if (o->layout == LAYOUT_BTREE)
  {
    bt_setup();
    /* a table scan reads the clustered index: an UPDATE that changes the primary
       key must collect the rows first, or it meets the rows it moved again */
    key_used_on_scan= table->s->primary_key;
    indexes= (uint) server_key_of.size();
    for (uint r= 0; r < indexes && r < 64; r++)
    {
      uint k= server_key_of[r];
      if (k != MAX_KEY && (table->key_info[k].flags & HA_NOSAME))
        unique_mask|= 1ULL << r;
    }
  }
  else if (table->s->keys)
  {
    /* The server builds the share (which keys cover which columns, and give
       their order) before it reads the table options: this handler answered
       as for BTREE then. ARCHIVE's one index is for equality lookups only: no
       index-only reads and no ordered scans (MIN/MAX, ORDER BY, GROUP BY). */
    mysql_mutex_lock(&table->s->LOCK_share);
    table->s->keys_for_keyread.clear_all();
    mysql_mutex_unlock(&table->s->LOCK_share);
    table->covering_keys.clear_all();
    for (Field **f= table->field; *f; f++)
    {
      (*f)->part_of_key.clear_all();
      (*f)->part_of_key_not_clustered.clear_all();
      (*f)->part_of_sortkey.clear_all();
    }
  }
  tbl= new rust::Box<Table>(ha_rust_ffi::table_open(
      bytes(name), (uint8_t) o->layout, bytes(o->csv_file), o->csv_header,
      separator_of(o), o->csv_writable, stored_columns(table),
      (int32_t) o->compression_level, unique_mask, indexes,
      table->s->primary_key == MAX_KEY));
  if (int rc= (*tbl)->open_error())
  {
    err_msg= std::string((*tbl)->last_error());
    sql_print_error("RUST: cannot open %s: %s", name, err_msg.c_str());
    delete tbl;
    tbl= nullptr;
    return rc;
  }
  if (o->layout == LAYOUT_BTREE)
    bt_setup_decode();
  /* What the open mended (a torn tail cut after a crash) goes to the log. */
  log_rust_warnings();
  has_timestamp= false;
  for (Field **f= table->field; *f; f++)
    if ((*f)->type() == MYSQL_TYPE_TIMESTAMP)
      has_timestamp= true;
  return 0;
}

int ha_rust::close(void)
{
  int rc= tbl ? rust_rc((*tbl)->flush()) : 0;
  delete tbl;
  tbl= nullptr;
  return rc;
}

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

/* Builds the text row image of `buf` into row_image. */
int ha_rust::pack_row(const uchar *buf)
{
  my_ptrdiff_t off= buf - table->record[0];
  Utc_scope utc(ha_thd(), has_timestamp);
  row_image.length(0);
  for (Field **fp= table->field; *fp; fp++)
  {
    Field *f= *fp;
    if (!f->stored_in_db())
      continue;
    if (off)
      f->move_field_offset(off);
    if (f->is_null())
      append_value(&row_image, 0, "", 0);
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
      append_value(&row_image, 1, num, r.ptr - num);
    }
    else if (f->real_type() == MYSQL_TYPE_ENUM && f->val_int() == 0 &&
             enum_has_empty_member(f))
      append_value(&row_image, 1, "0", 1);  /* the error value, not '' */
    else
    {
      String *s= f->val_str(&field_text, &field_text);
      append_value(&row_image, f->str_needs_quotes() ? 2 : 1, s->ptr(),
                   s->length());
    }
    if (off)
      f->move_field_offset(-off);
  }
  return 0;
}

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

/* An integer as an order-preserving unsigned 64-bit number. */
static uint64_t ordered_key(Field *f, longlong v)
{
  return (f->flags & UNSIGNED_FLAG) ? (uint64_t) v : ((uint64_t) v ^ (1ULL << 63));
}

/* The ARCHIVE index key of a row, order-preserving as an unsigned 64-bit
   number (signed values have their sign bit flipped). */
uint64_t ha_rust::key_of(const uchar *record, bool *keyed, bool *unique)
{
  *keyed= table->s->keys > 0;
  *unique= *keyed && (table->key_info[0].flags & HA_NOSAME);
  if (!*keyed)
    return 0;
  Field *f= table->key_info[0].key_part[0].field;
  return ordered_key(f, f->val_int(record + f->offset(table->record[0])));
}

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

/* Stores the current Rust record into `buf`. Values that do not fit their column
   are described in *bad (the first one) instead of being warned about. */
int ha_rust::unpack_row(uchar *buf, bool all_fields, std::string *bad)
{
  rust::Slice<const uint8_t> data= (*tbl)->record_data();
  rust::Slice<const uint32_t> spans= (*tbl)->record_spans();
  if (spans.size() < 2 * stored_columns(table))
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
    uint32 start= spans[2 * i], len= spans[2 * i + 1];
    if (len == UINT32_MAX)
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
    }
    else
    {
      f->set_notnull();
      const char *p= reinterpret_cast<const char *>(data.data()) + start;
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
    if (off)
      f->move_field_offset(-off);
  }
  thd->pop_internal_handler();
  thd->count_cuted_fields= saved_check;
  thd->cuted_fields= saved_cuted;
  own_blobs(buf, all_fields);
  return 0;
}

/* Warnings of the Rust side for the server's error log (not the client). */
void ha_rust::log_rust_warnings()
{
  rust::String note;
  while (tbl && (*tbl)->take_warning(note))
    sql_print_warning("RUST: %s", std::string(note).c_str());
}

void ha_rust::push_rust_warnings()
{
  rust::String w;
  /* about the file, never a strict-mode error for the statement (an UPDATE's
     scan that skips a torn last line must still run) */
  Abort_on_warning_instant_set not_strict(ha_thd(), false);
  while (tbl && (*tbl)->take_warning(w))
    push_warning(ha_thd(), Sql_condition::WARN_LEVEL_WARN, ER_UNKNOWN_ERROR,
                 std::string(w).c_str());
}

/* Rows written and read, counted per layout for SHOW GLOBAL STATUS
   (ha_rust_status.cc); the work itself is the layout's. */
int ha_rust::write_row(const uchar *buf)
{
  int rc= write_row_layout(buf);
  if (!rc)
    rust_count_row(ROWS_INSERTED, layout());
  return rc;
}

int ha_rust::update_row(const uchar *old_data, const uchar *new_data)
{
  int rc= update_row_layout(old_data, new_data);
  if (!rc)
    rust_count_row(ROWS_UPDATED, layout());
  return rc;
}

int ha_rust::delete_row(const uchar *buf)
{
  int rc= delete_row_layout(buf);
  if (!rc)
    rust_count_row(ROWS_DELETED, layout());
  return rc;
}

int ha_rust::fetch_row(uchar *buf, std::string *bad)
{
  int rc= fetch_row_layout(buf, bad);
  if (!rc)
    rust_count_row(ROWS_READ, layout());
  return rc;
}

int ha_rust::write_row_layout(const uchar *buf)
{
  if (layout() == LAYOUT_BTREE)
    return bt_write_row(buf);
  if (layout() == LAYOUT_CSV)
  {
    pack_row(buf);
    int rc= rust_rc((*tbl)->insert(bytes(row_image),
                                   rust::Slice<const uint32_t>(), 0, false, false));
    if (!rc)
      stats.records++;
    return rc;
  }
  if (table->next_number_field && buf == table->record[0])
    if (int rc= update_auto_increment())
      return rc;
  bool keyed, unique;
  uint64_t key= key_of(buf, &keyed, &unique);
  if (int rc= pack_binary(buf))
    return rc;
  int rc= (*tbl)->insert(bytes(row_image),
                         rust::Slice<const uint32_t>(segs.data(), segs.size()),
                         key, keyed, unique);
  if (rc == HA_ERR_FOUND_DUPP_KEY)
  {
    errkey= last_dup_key= 0;
    return rc;
  }
  return rust_rc(rc);
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
  return rust_rc((*tbl)->update_current(bytes(row_image)));
}

int ha_rust::delete_row_layout(const uchar *buf)
{
  if (layout() == LAYOUT_BTREE)
    return bt_delete_row(buf);
  if (layout() != LAYOUT_CSV)
    return HA_ERR_WRONG_COMMAND;
  return rust_rc((*tbl)->delete_current());
}

/* DELETE without WHERE (and without row-based binlogging or triggers) asks for
   this first. BTREE answers HA_ERR_WRONG_COMMAND, so the server deletes row by
   row: the DELETE stays part of its transaction and can be rolled back. */
int ha_rust::delete_all_rows()
{
  if (layout() != LAYOUT_CSV)
    return HA_ERR_WRONG_COMMAND;
  return rust_rc((*tbl)->truncate());
}

/* TRUNCATE TABLE (and ALTER TABLE ... TRUNCATE PARTITION, per partition): the
   server holds an exclusive metadata lock and has committed the connection's
   transaction. BTREE resets its trees to empty at once (a redo record makes it
   crash safe; docs/btree-format.md) and restarts AUTO_INCREMENT, as InnoDB. */
int ha_rust::truncate()
{
  if (layout() == LAYOUT_BTREE)
    return bt_rc((*tbl)->bt_truncate(trx()));
  return rust_rc((*tbl)->truncate());
}

void ha_rust::start_bulk_insert(ha_rows rows, uint flags)
{
  if (rows != 1)
    rust_rc((*tbl)->set_bulk(true));
}

int ha_rust::end_bulk_insert()
{
  return rust_rc((*tbl)->set_bulk(false));
}

int ha_rust::rnd_init(bool scan)
{
  if (layout() == LAYOUT_BTREE)
  {
    rnd_first= scan;
    return 0;
  }
  if (!scan)
    return 0;
  return rust_rc((*tbl)->scan_start());
}

int ha_rust::rnd_next(uchar *buf)
{
  if (layout() == LAYOUT_BTREE)
    return bt_rnd_next(buf);
  int rc= (*tbl)->scan_next();
  if (rc == HA_ERR_END_OF_FILE)
  {
    push_rust_warnings();
    return rc;
  }
  if (rc)
    return rust_rc(rc);
  std::string bad;
  if (fetch_row(buf, &bad) && layout() == LAYOUT_ARCHIVE)
  {
    err_msg= "RUST table " + std::string(table->s->table_name.str) + ": " + bad;
    return HA_ERR_RUST_FIRST + 1;
  }
  if (!bad.empty())
  {
    /* a warning about the file, never a strict-mode error for the statement */
    Abort_on_warning_instant_set not_strict(ha_thd(), false);
    push_warning_printf(ha_thd(), Sql_condition::WARN_LEVEL_WARN,
                        ER_UNKNOWN_ERROR, "RUST table %s.%s line %llu: %s",
                        table->s->db.str, table->s->table_name.str,
                        (unsigned long long) (*tbl)->current_line(),
                        bad.c_str());
  }
  return 0;
}

int ha_rust::rnd_end()
{
  push_rust_warnings();
  return rust_rc((*tbl)->scan_end());
}

void ha_rust::position(const uchar *record)
{
  if (layout() == LAYOUT_BTREE)
    return bt_position(record);
  int8store(ref, (*tbl)->position());
}

int ha_rust::rnd_pos(uchar *buf, uchar *pos)
{
  if (layout() == LAYOUT_BTREE)
    return bt_rnd_pos(buf, pos);
  int rc= (*tbl)->read_at(uint8korr(pos));
  if (rc)
    return rust_rc(rc);
  return fetch_row(buf, nullptr) ? HA_ERR_WRONG_IN_RECORD : 0;
}

/* ARCHIVE point lookups (HA_ONLY_WHOLE_INDEX: equality on the whole key). */
int ha_rust::index_read_map(uchar *buf, const uchar *key,
                            key_part_map keypart_map,
                            enum ha_rkey_function find_flag)
{
  if (layout() == LAYOUT_BTREE)
    return bt_index_read(buf, key, keypart_map, find_flag);
  if (find_flag != HA_READ_KEY_EXACT)
    return HA_ERR_WRONG_COMMAND;
  KEY_PART_INFO *kp= table->key_info[active_index].key_part;
  if (kp->null_bit)
  {
    if (*key)                     /* key IS NULL: never stored */
      return HA_ERR_KEY_NOT_FOUND;
    key++;
  }
  Field *f= kp->field;
  if (int rc= (*tbl)->lookup(ordered_key(f, f->val_int(key))))
    return rust_rc(rc);
  int rc= index_next(buf);
  return rc == HA_ERR_END_OF_FILE ? HA_ERR_KEY_NOT_FOUND : rc;
}

int ha_rust::index_next(uchar *buf)
{
  if (layout() == LAYOUT_BTREE)
  {
    int rc= (*tbl)->bt_next(scan_desc);
    scan_desc= false;
    return bt_fetch(buf, rc, true);
  }
  int rc= (*tbl)->scan_next();
  if (rc)
    return rc == HA_ERR_END_OF_FILE ? rc : rust_rc(rc);
  return fetch_row(buf, nullptr) ? HA_ERR_WRONG_IN_RECORD : 0;
}

int ha_rust::index_next_same(uchar *buf, const uchar *key, uint keylen)
{
  /* entries the pushed condition skips must not run past the key */
  icp_same_key= key;
  icp_same_len= keylen;
  /* BTREE: the entries must start with the key's memcomparable bytes (Rust
     stops at the first that does not). Not a comparison of the row's fields:
     the server computes a virtual column only after this returns, so an index
     on one would end after the first row (difftest btree seed 22). */
  bool prefix= false;
  if (layout() == LAYOUT_BTREE)
  {
    KEY *k= table->key_info + active_index;
    key_part_map map= 0;
    uint len= 0;
    for (uint i= 0; i < k->user_defined_key_parts && len < keylen; i++)
    {
      len+= k->key_part[i].store_length;
      map|= (key_part_map) 1 << i;
    }
    if (len == keylen)
    {
      /* built once per lookup: the server passes the same key for each row */
      if (same_index != active_index || same_raw.size() != keylen ||
          memcmp(same_raw.data(), key, keylen))
      {
        same_raw.assign((const char *) key, keylen);
        same_index= active_index;
        key_tuple(active_index, key, map, same_buf);
      }
      (*tbl)->bt_set_prefix(sl(same_buf), true);
      prefix= true;
    }
  }
  int rc= index_next(buf);
  icp_same_key= nullptr;
  if (prefix)
    (*tbl)->bt_set_prefix(rust::Slice<const uint8_t>(), false);
  else if (!rc && layout() == LAYOUT_BTREE &&
           key_cmp_if_same(table, key, active_index, keylen))
    rc= HA_ERR_END_OF_FILE;
  return rc;
}

int ha_rust::index_prev(uchar *buf)
{
  if (layout() != LAYOUT_BTREE)
    return HA_ERR_WRONG_COMMAND;
  int rc= (*tbl)->bt_next(!scan_desc);
  scan_desc= true;
  return bt_fetch(buf, rc, true);
}

int ha_rust::index_first(uchar *buf)
{
  if (layout() != LAYOUT_BTREE)
    return HA_ERR_WRONG_COMMAND;
  scan_desc= false;
  bt_key_only_start();
  return bt_fetch(buf, (*tbl)->bt_edge(trx(), rust_index_of[active_index], false),
                  true);
}

int ha_rust::index_last(uchar *buf)
{
  if (layout() != LAYOUT_BTREE)
    return HA_ERR_WRONG_COMMAND;
  scan_desc= true;
  bt_key_only_start();
  return bt_fetch(buf, (*tbl)->bt_edge(trx(), rust_index_of[active_index], true),
                  true);
}

int ha_rust::index_init(uint idx, bool sorted)
{
  active_index= idx;
  return 0;
}

int ha_rust::index_end()
{
  active_index= MAX_KEY;
  if (layout() == LAYOUT_BTREE)
    return 0;
  return rust_rc((*tbl)->scan_end());
}

ha_rows ha_rust::records_in_range(uint inx, const key_range *min_key,
                                  const key_range *max_key, page_range *)
{
  if (layout() != LAYOUT_BTREE)
    return 10;
  uint8_t min_mode= 0, max_mode= 0;
  key_buf.clear();
  key_buf2.clear();
  if (min_key)
  {
    key_tuple(inx, min_key->key, min_key->keypart_map, key_buf);
    min_mode= min_key->flag == HA_READ_AFTER_KEY ? 2 : 1;
  }
  if (max_key)
  {
    key_tuple(inx, max_key->key, max_key->keypart_map, key_buf2);
    max_mode= max_key->flag == HA_READ_BEFORE_KEY ? 2 : 1;
  }
  ha_rows n= (ha_rows) (*tbl)->bt_count_range(rust_index_of[inx], sl(key_buf),
                                              min_mode, sl(key_buf2), max_mode);
  /* as InnoDB: never 0, which the optimizer would take for certain (no lock is
     held yet: the range may fill before the statement reads it) */
  return n ? n : 1;
}

int ha_rust::start_stmt(THD *thd, thr_lock_type lock_type)
{
  if (layout() != LAYOUT_BTREE)
    return 0;
  bt_start_stmt(thd);
  return 0;
}

int ha_rust::analyze(THD *thd, HA_CHECK_OPT *)
{
  if (layout() != LAYOUT_BTREE)
    return HA_ADMIN_NOT_IMPLEMENTED;
  /* rows and sizes are kept current; the distinct values per key prefix are
     counted again, from a larger sample of leaves than the automatic one */
  info(HA_STATUS_VARIABLE);
  bt_rec_per_key(true);
  return HA_ADMIN_OK;
}

ha_rows ha_rust::records()
{
  return (ha_rows) (*tbl)->stats().rows;
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

int ha_rust::optimize(THD *thd, HA_CHECK_OPT *check_opt)
{
  if (layout() == LAYOUT_BTREE)
    return HA_ADMIN_TRY_ALTER;   /* rebuilt by the server, as InnoDB's */
  if (layout() != LAYOUT_ARCHIVE)
    return HA_ADMIN_NOT_IMPLEMENTED;
  rust_progress progress(thd);   /* blocks rewritten (Rust reports them) */
  if (int rc= (*tbl)->optimize(reinterpret_cast<size_t>(thd)))
  {
    rust_rc(rc);
    if (rc == HA_ERR_ABORTED_BY_USER)
      push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_QUERY_INTERRUPTED,
                   ER_THD(thd, ER_QUERY_INTERRUPTED));
    else
      push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_UNKNOWN_ERROR,
                   err_msg.c_str());
    return HA_ADMIN_FAILED;
  }
  return HA_ADMIN_OK;
}

int ha_rust::info(uint flag)
{
  if (flag & HA_STATUS_ERRKEY)
    errkey= last_dup_key;
  if (tbl && layout() == LAYOUT_BTREE)
  {
    bt_info(flag);
    if (flag & HA_STATUS_AUTO)
    {
      /* the next value, as InnoDB shows it (0, shown as NULL, without a column) */
      stats.auto_increment_value= 0;
      if (table->found_next_number_field)
      {
        bt_autoinc_check();
        stats.auto_increment_value= (*tbl)->bt_auto_increment();
      }
    }
    return 0;
  }
  if (tbl && (flag & HA_STATUS_VARIABLE))
  {
    ha_rust_ffi::Stats s= (*tbl)->stats();
    stats.records= s.rows;
    if (!s.exact && stats.records < 2)
      stats.records= 2;
    stats.deleted= 0;
    stats.data_file_length= s.data_length;
    stats.mean_rec_length= stats.records ? (ulong) (s.data_length / stats.records) : 0;
  }
  if (tbl && (flag & HA_STATUS_AUTO) && layout() == LAYOUT_ARCHIVE)
    stats.auto_increment_value= next_auto_increment();
  return 0;
}

/* The end of a CSV UPDATE/DELETE: the rewrite, whose failure the statement
   reports (its changes are then dropped; the file is as before). */
int ha_rust::exec_bulk_update(ha_rows *)
{
  int rc= rust_rc((*tbl)->flush());
  if (rc)
    (*tbl)->discard();
  return rc;
}

int ha_rust::end_bulk_delete()
{
  return exec_bulk_update(nullptr);
}

int ha_rust::external_lock(THD *thd, int lock_type)
{
  if (layout() == LAYOUT_BTREE)
    return bt_external_lock(thd, lock_type);
  if (lock_type == F_UNLCK && tbl)
  {
    /* the server ignores this result: never lose a failure silently */
    int rc= rust_rc((*tbl)->flush());
    if (rc)
    {
      sql_print_error("RUST: changes to %s.%s were not written: %s",
                      table->s->db.str, table->s->table_name.str,
                      err_msg.c_str());
      push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_UNKNOWN_ERROR,
                   err_msg.c_str());
      (*tbl)->discard();
    }
    log_rust_warnings();
    return rc;
  }
  return 0;
}

THR_LOCK_DATA **ha_rust::store_lock(THD *thd, THR_LOCK_DATA **to,
                                    enum thr_lock_type lock_type)
{
  if (lock_type != TL_IGNORE && lock.type == TL_UNLOCK)
  {
    /* BTREE isolates transactions with its own table locks (held to the end
       of the transaction), so the server's statement locks may be shared */
    if (layout() == LAYOUT_BTREE && !thd_in_lock_tables(thd))
    {
      if (lock_type >= TL_WRITE_CONCURRENT_INSERT && lock_type <= TL_WRITE)
        lock_type= TL_WRITE_ALLOW_WRITE;
      else if (lock_type == TL_READ_NO_INSERT)
        lock_type= TL_READ;
    }
    /* CSV and ARCHIVE let INSERTs run beside statements' scans (each scan reads
       what was published when it started), but LOCK TABLES ... READ LOCAL must
       give a stable table until UNLOCK TABLES (mysqldump relies on it), which
       those layouts do not snapshot: there, inserts wait. */
    else if (layout() != LAYOUT_BTREE && lock_type == TL_READ &&
             thd_in_lock_tables(thd))
      lock_type= TL_READ_NO_INSERT;
    lock.type= lock_type;
  }
  *to++= &lock;
  return to;
}

/* CHECK and REPAIR: every record is decoded and every value stored into its
   column; damage is listed by line, and REPAIR rewrites the file without it. */
int ha_rust::admin(THD *thd, bool repair)
{
  info(HA_STATUS_VARIABLE);
  rust_progress progress(thd, stats.records);  /* rows done of the table's */
  int rc= (*tbl)->check_start();
  if (rc)
  {
    rust_rc(rc);
    push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_UNKNOWN_ERROR,
                 err_msg.c_str());
    return HA_ADMIN_FAILED;
  }
  rust::String text;
  ulonglong shown= 0, rejected= 0;
  const ulonglong max_shown= 20;
  for (ulonglong step= 1;; step++)
  {
    /* KILL: stop every few thousand rows, changing nothing (REPAIR rewrites
       the file only at the end, in check_finish) */
    if (step % 4096 == 0 && thd_kill_level(thd))
    {
      push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_QUERY_INTERRUPTED,
                   ER_THD(thd, ER_QUERY_INTERRUPTED));
      ha_rust_ffi::CheckSummary ignored;
      (*tbl)->check_finish(false, ignored);
      return HA_ADMIN_FAILED;
    }
    if (step % 4096 == 0)
      progress.at(step);
    rc= (*tbl)->check_next(text);
    if (rc == HA_ERR_END_OF_FILE)
      break;
    if (rc == 0)
    {
      std::string bad;
      if (layout() == LAYOUT_ARCHIVE)
      {
        if (unpack_binary(table->record[0]))
          bad= "a row image that does not match the table's columns";
      }
      else
        unpack_row(table->record[0], true, &bad);
      if (bad.empty())
        continue;
      (*tbl)->check_reject(sl(bad), text);
      rejected++;
    }
    else if (rc != 1)
    {
      rust_rc(rc);
      push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_UNKNOWN_ERROR,
                   err_msg.c_str());
      ha_rust_ffi::CheckSummary ignored;
      (*tbl)->check_finish(false, ignored);
      return HA_ADMIN_FAILED;
    }
    if (shown++ < max_shown)
      push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_UNKNOWN_ERROR,
                   std::string(text).c_str());
  }
  ha_rust_ffi::CheckSummary sum;
  rc= (*tbl)->check_finish(repair, sum);
  if (rc)
  {
    rust_rc(rc);
    push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_UNKNOWN_ERROR,
                 err_msg.c_str());
    return HA_ADMIN_FAILED;
  }
  if (sum.damaged > max_shown)
    push_warning_printf(thd, Sql_condition::WARN_LEVEL_WARN, ER_UNKNOWN_ERROR,
                        "... and %llu more damaged records",
                        (unsigned long long) (sum.damaged - max_shown));
  /* what REPAIR kept, and where it saved what it removed (docs/repair.md) */
  if (repair && !sum.note.empty())
    push_warning(thd, Sql_condition::WARN_LEVEL_NOTE, ER_UNKNOWN_ERROR,
                 std::string(sum.note).c_str());
  /* CSV: rejected rows are counted in sum.damaged, and REPAIR removes them.
     ARCHIVE: a row that does not unpack is damage REPAIR cannot mend. */
  bool bad_rows= layout() == LAYOUT_ARCHIVE && rejected;
  if (!repair)
    return sum.damaged || bad_rows ? HA_ADMIN_CORRUPT : HA_ADMIN_OK;
  return bad_rows ? HA_ADMIN_CORRUPT : HA_ADMIN_OK;
}

int ha_rust::check(THD *thd, HA_CHECK_OPT *)
{
  if (layout() == LAYOUT_BTREE)
    return bt_check(thd);
  return admin(thd, false);
}

int ha_rust::repair(THD *thd, HA_CHECK_OPT *)
{
  if (layout() == LAYOUT_BTREE)
    return HA_ADMIN_NOT_IMPLEMENTED;
  return admin(thd, true);
}

bool ha_rust::check_if_incompatible_data(HA_CREATE_INFO *, uint)
{
  /* Any change rewrites the table through the server's copy algorithm. */
  return COMPATIBLE_DATA_NO;
}

void ha_rust::print_error(int error, myf errflag)
{
  if (!err_msg.empty() &&
      (error >= HA_ERR_RUST_FIRST || error == HA_ERR_TABLE_READONLY ||
       error == HA_ERR_UNSUPPORTED || error == HA_ERR_DISK_FULL))
  {
    if (error == HA_ERR_LOCK_WAIT_TIMEOUT)
    {
      handler::print_error(error, errflag);
      return;
    }
    uint code= error == HA_ERR_TABLE_READONLY ? ER_OPEN_AS_READONLY
             : error == HA_ERR_UNSUPPORTED    ? ER_ILLEGAL_HA
             : error == HA_ERR_DISK_FULL      ? ER_DISK_FULL
                                              : ER_GET_ERRMSG;
    my_printf_error(code, "%s", errflag, err_msg.c_str());
    return;
  }
  handler::print_error(error, errflag);
}

bool ha_rust::get_error_message(int error, String *buf)
{
  if (!err_msg.empty())
    buf->copy(err_msg.c_str(), err_msg.length(), system_charset_info);
  return false;
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
  if (ha_rust_ffi::engine_start(bytes("."), rust_buffer_pool_size / 16384,
                                (uint8_t) rust_flush_log_at_trx_commit,
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

/* The INFORMATION_SCHEMA tables (ha_rust_status.cc), each a plugin of its own in
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
