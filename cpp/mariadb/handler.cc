/*
  The handler's common part: create/open/close/delete/rename of a table, table
  scans and positions, and the dispatch of writes to the layout (BTREE's own in
  btree.cc; CSV rows as text, csv.cc; ARCHIVE rows as Field::pack() images,
  rows.cc). Glue only: see ha_rust.h.
*/
#include "ha_rust.h"
#include "status.h"

#include <sql_class.h>
#include <sql_acl.h>
#include <mysqld.h>
#include <field.h>
#include <table.h>
#include <log.h>
#include <key.h>

using ha_rust_ffi::Table;

static uchar separator_of(const ha_table_option_struct *o)
{
  return o->csv_separator && o->csv_separator[0] ? (uchar) o->csv_separator[0] : ',';
}

uint stored_columns(TABLE *t)
{
  uint n= 0;
  for (Field **f= t->field; *f; f++)
    if ((*f)->stored_in_db())
      n++;
  return n;
}

/* What a table is created or opened with (one index: the caller adds the
   BTREE indexes, the header image and the AUTO_INCREMENT start). */
static ha_rust_ffi::TableOptions table_options(const ha_table_option_struct *o,
                                               TABLE *t)
{
  ha_rust_ffi::TableOptions r;
  r.layout= (ha_rust_ffi::LayoutKind) o->layout;
  for (const char *p= o->csv_file; p && *p; p++)
    r.csv_file.push_back((uint8_t) *p);
  r.csv_header= o->csv_header;
  r.csv_separator= separator_of(o);
  r.csv_writable= o->csv_writable;
  r.columns= stored_columns(t);
  r.compression_level= (int32_t) o->compression_level;
  r.auto_inc_base= 0;
  r.unique.push_back(false);
  r.hidden_pk= false;
  r.family= ha_rust_ffi::ServerFamily::MariaDb;
  return r;
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
           HA_CAN_SKIP_LOCKED |
           (pk_decodable ? HA_PRIMARY_KEY_IN_READ_INDEX : 0);
  /* ARCHIVE: rnd_pos() decompresses a block. (Not for BTREE or CSV: with it,
     an UPDATE with a subquery and ORDER BY ... LIMIT over a table with a
     blob took a plan in which the server evaluated SET from another row.) */
  return common | HA_STATS_RECORDS_IS_EXACT | HA_HAS_RECORDS | HA_NULL_IN_KEY |
         HA_SLOW_RND_POS;
}

/* What CREATE may not do: Rust's rules (ha_rust_ffi::table_create_check), told
   what the server's definition says and the answers of the server's own
   checks, then what BTREE cannot index; sets *indexes, the number of the
   table's Rust indexes (BTREE). */
static int create_check(THD *thd, const char *name, TABLE *form,
                        const ha_table_option_struct *o,
                        const ha_rust_ffi::TableOptions &opts, uint *indexes)
{
  ha_rust_ffi::CreateFacts f;
  f.csv_file= o->csv_file != nullptr;
  f.csv_separator= o->csv_separator != nullptr;
  for (const char *p= o->csv_separator; p && *p; p++)
    f.csv_separator_text.push_back((uint8_t) *p);
  for (KEY *k= form->key_info; k < form->key_info + form->s->keys; k++)
    f.keys_on_autoinc.push_back(k->user_defined_key_parts == 1 &&
        (k->key_part[0].field->flags & AUTO_INCREMENT_FLAG) &&
        k->key_part[0].field->result_type() == INT_RESULT);
  f.auto_increment= form->found_next_number_field != nullptr;
  f.altering= thd_sql_command(thd) == SQLCOM_ALTER_TABLE;
  /* CSV_FILE, a server-side file: reading one is what the FILE privilege and
     secure_file_priv govern, as for LOAD DATA INFILE (the path is checked
     whole: a cut copy could pass while the full path names another file) */
  char path[FN_REFLEN];
  f.csv_file_max= sizeof(path) - 2;
  f.file_privilege= o->csv_file && !check_global_access(thd, FILE_ACL, true);
  f.secure_path= o->csv_file && strlen(o->csv_file) <= f.csv_file_max &&
                 is_secure_file_path(strcpy(path, o->csv_file));
  rust::String why;
  ha_rust_ffi::CreateVerdict v=
      ha_rust_ffi::table_create_check(bytes(name), opts, f, why);
  using ha_rust_ffi::Refusal;
  if (v.refusal == Refusal::TooManyKeys)
    my_error(ER_TOO_MANY_KEYS, MYF(0), (int) v.max_keys);
  else if (v.refusal == Refusal::AutoIncrement)
    my_error(ER_TABLE_CANT_HANDLE_AUTO_INCREMENT, MYF(0));
  else if (v.refusal == Refusal::Option)
    my_printf_error(ER_ILLEGAL_HA_CREATE_OPTION, "%s", MYF(0),
                    std::string(why).c_str());
  else if (v.refusal == Refusal::FilePrivilege)
    check_global_access(thd, FILE_ACL);   /* raises the server's error */
  else if (v.refusal == Refusal::SecureFilePriv)
    my_error(ER_OPTION_PREVENTS_STATEMENT, MYF(0), "--secure-file-priv");
  else if (o->layout == LAYOUT_BTREE)
    return ha_rust::bt_create_check(form, indexes);
  else
    return 0;
  return HA_WRONG_CREATE_OPTION;
}

int ha_rust::create(const char *name, TABLE *form, HA_CREATE_INFO *info)
{
  THD *thd= ha_thd();
  ha_table_option_struct *o= form->s->option_struct;
  ha_rust_ffi::TableOptions opts= table_options(o, form);
  uint indexes= 1;
  if (int rc= create_check(thd, name, form, o, opts, &indexes))
    return rc;
  /* header line: the names of the stored columns */
  String header;
  for (Field **f= form->field; *f; f++)
    if ((*f)->stored_in_db())
      append_field(&header, &opts.header_fields, ha_rust_ffi::FieldKind::Quoted,
                   (*f)->field_name.str, (*f)->field_name.length);
  for (size_t i= 0; i < header.length(); i++)
    opts.header_text.push_back((uint8_t) header[i]);
  opts.auto_inc_base= info->auto_increment_value ? info->auto_increment_value - 1 : 0;
  opts.unique.clear();
  for (uint i= 0; i < indexes; i++)
    opts.unique.push_back(false);
  rust::String e;
  int rc= ha_rust_ffi::table_create(bytes(name), opts, e);
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
  return ddl_rc(ha_rust_ffi::table_delete(bytes(name), e), e);
}

int ha_rust::rename_table(const char *from, const char *to)
{
  rust::String e;
  return ddl_rc(ha_rust_ffi::table_rename(bytes(from), bytes(to), e), e);
}

int ha_rust::open(const char *name, int mode, uint test_if_locked)
{
  if (!(share= get_share()))
    return HA_ERR_OUT_OF_MEM;
  thr_lock_data_init(&share->lock, &lock, NULL);
  ha_table_option_struct *o= table->s->option_struct;
  ha_rust_ffi::TableOptions opts= table_options(o, table);
  if (o->layout == LAYOUT_BTREE)
  {
    bt_setup();
    /* a table scan reads the clustered index: an UPDATE that changes the primary
       key must collect the rows first, or it meets the rows it moved again */
    key_used_on_scan= table->s->primary_key;
    opts.unique.clear();
    for (uint r= 0; r < server_key_of.size(); r++)
    {
      uint k= server_key_of[r];
      opts.unique.push_back(k != MAX_KEY && (table->key_info[k].flags & HA_NOSAME));
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
  opts.hidden_pk= table->s->primary_key == MAX_KEY;
  tbl= new rust::Box<Table>(ha_rust_ffi::table_open(bytes(name), opts));
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

/* A second handler on the same table for the same statement (index merge's
   ROR scans): it reads as this one does (store_lock is not called for it). */
handler *ha_rust::clone(const char *name, MEM_ROOT *mem_root)
{
  ha_rust *h= static_cast<ha_rust *>(handler::clone(name, mem_root));
  if (h)
  {
    h->plain_read= plain_read;
    h->whole_read= whole_read;
    h->skip_locked= skip_locked;
    h->low_priority= low_priority;
  }
  return h;
}

int ha_rust::close(void)
{
  int rc= tbl ? rust_rc((*tbl)->flush()) : 0;
  delete tbl;
  tbl= nullptr;
  return rc;
}

/* Rows written and read, counted per layout for SHOW GLOBAL STATUS
   (status.cc); the work itself is the layout's. */
int ha_rust::write_row(const uchar *buf)
{
  int rc= write_row_layout(buf);
  if (!rc)
    rust_count_row(ROWS_INSERTED, layout());
  return rc;
}

int ha_rust::delete_row(const uchar *buf)
{
  int rc= delete_row_layout(buf);
  if (!rc)
    rust_count_row(ROWS_DELETED, layout());
  return rc;
}

int ha_rust::write_row_layout(const uchar *buf)
{
  if (layout() == LAYOUT_BTREE)
    return bt_write_row(buf);
  if (layout() == LAYOUT_CSV)
  {
    pack_row(buf);
    int rc= rust_rc((*tbl)->insert_text(bytes(row_image), csv_fields()));
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
    return rust_rc((*tbl)->bt_truncate(trx()));
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
    return (int) ha_rust_ffi::RustError::Corrupt;
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

/* The server does not want the row last read (it did not match the WHERE,
   or lay past the range): BTREE lets go of its row locks at READ COMMITTED
   and below, as InnoDB does (Rust decides). */
void ha_rust::unlock_row()
{
  if (layout() == LAYOUT_BTREE && tbl)
    (*tbl)->bt_unlock_row();
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

/* The end of a CSV UPDATE/DELETE: the rewrite, whose failure the statement
   reports (its changes are then dropped; the file is as before). */
int ha_rust::exec_bulk_update(ha_rows *dup_key_found)
{
  if (dup_key_found)
    *dup_key_found= 0;           /* no duplicates are found late */
  int rc= rust_rc((*tbl)->flush());
  if (rc)
    (*tbl)->discard();
  return rc;
}

int ha_rust::end_bulk_delete()
{
  return exec_bulk_update(nullptr);
}

bool ha_rust::check_if_incompatible_data(HA_CREATE_INFO *, uint)
{
  /* Any change rewrites the table through the server's copy algorithm. */
  return COMPATIBLE_DATA_NO;
}
