/*
  The MySQL handler and plugin declaration (first step: the CSV layout).
  Written for MySQL 9.7's API: dd::Table arguments, mysql_declare_plugin,
  HTON_SUPPORTS_ENGINE_ATTRIBUTE (docs/mysql.md).
*/
#include "ha_rust.h"

#include <mysql/plugin.h>
#include <mysqld_error.h>
#include <my_sys.h>
#include <sql/sql_class.h>
#include <sql/mysqld.h>
#include <sql/auth/auth_acls.h>
#include <sql/auth/auth_common.h>
#include <sql/auth/sql_security_ctx.h>

#include <cstring>

static handlerton *rust_hton;

static rust::Slice<const uint8_t> bytes(const char *s)
{
  return rust::Slice<const uint8_t>(reinterpret_cast<const uint8_t *>(s), strlen(s));
}

static uint stored_columns(const TABLE *t)
{
  uint n= 0;
  for (Field **f= t->field; *f; f++)
    if ((*f)->stored_in_db)
      n++;
  return n;
}

static bool read_attributes(const LEX_CSTRING &text, Rust_attributes *a)
{
  std::string err;
  if (rust_parse_attributes(text.str ? text.str : "", text.str ? text.length : 0,
                            a, &err))
    return false;
  my_printf_error(ER_ILLEGAL_HA_CREATE_OPTION, "RUST: %s", MYF(0), err.c_str());
  return true;
}

static ha_rust_ffi::TableOptions table_options(const Rust_attributes &a,
                                               const TABLE *t)
{
  ha_rust_ffi::TableOptions r;
  r.layout= a.layout;
  for (char c : a.csv_file)
    r.csv_file.push_back((uint8_t) c);
  r.csv_header= a.csv_header;
  r.csv_separator= a.csv_separator.empty() ? ',' : (uint8_t) a.csv_separator[0];
  r.csv_writable= a.csv_writable;
  r.columns= stored_columns(t);
  r.compression_level= a.compression_level;
  r.auto_inc_base= 0;
  r.unique.push_back(false);
  r.hidden_pk= false;
  r.family= ha_rust_ffi::ServerFamily::MySql;
  return r;
}

ha_rust::ha_rust(handlerton *hton, TABLE_SHARE *share) : handler(hton, share)
{
  ref_length= 8;
}

ha_rust::~ha_rust() { delete tbl; }

handler::Table_flags ha_rust::table_flags() const
{
  /* (AUTO_INCREMENT: the core refuses it on CSV tables, create_check) */
  return HA_BINLOG_ROW_CAPABLE | HA_BINLOG_STMT_CAPABLE | HA_NO_TRANSACTIONS |
         HA_CAN_REPAIR;
}

int ha_rust::rust_rc(int rc)
{
  if (rc && tbl)
    err_msg= std::string((*tbl)->last_error());
  if (rc > HA_ERR_LAST || (rc >= 201 && rc <= 204))
  {
    /* The core's own codes (201..) overlap MySQL's HA_ERR codes: say what
       happened and hand the server a generic error. */
    my_printf_error(ER_GET_ERRNO, "RUST: %s", MYF(0), err_msg.c_str());
    return HA_ERR_GENERIC;
  }
  return rc;
}

/* A layout this shim has not been ported for yet. */
static int refuse_layout(const Rust_attributes &a)
{
  if (a.layout != ha_rust_ffi::LayoutKind::Btree)
    return 0;
  my_printf_error(ER_ILLEGAL_HA_CREATE_OPTION,
                  "RUST on MySQL: only {\"layout\": \"csv\"} and {\"layout\": "
                  "\"archive\"} are supported so far (docs/mysql.md)", MYF(0));
  return HA_ERR_UNSUPPORTED;
}

/* What CREATE may not do: the core's rules (ha_rust_ffi::table_create_check,
   as for MariaDB), told what the definition says and the answers of the
   server's own checks on an attached file (the FILE privilege and
   secure_file_priv, as for LOAD DATA INFILE). */
static int create_check(THD *thd, const char *name, TABLE *form,
                        const Rust_attributes &a,
                        const ha_rust_ffi::TableOptions &opts)
{
  ha_rust_ffi::CreateFacts f;
  f.csv_file= a.given_file;
  f.csv_separator= a.given_separator;
  for (char c : a.csv_separator)
    f.csv_separator_text.push_back((uint8_t) c);
  for (KEY *k= form->key_info; k < form->key_info + form->s->keys; k++)
    f.keys_on_autoinc.push_back(k->user_defined_key_parts == 1 &&
        k->key_part[0].field->is_flag_set(AUTO_INCREMENT_FLAG) &&
        k->key_part[0].field->result_type() == INT_RESULT);
  f.auto_increment= form->found_next_number_field != nullptr;
  f.altering= thd_sql_command(thd) == SQLCOM_ALTER_TABLE;
  /* the path is checked whole: a cut copy could pass while the full path
     names another file */
  char path[FN_REFLEN];
  f.csv_file_max= sizeof(path) - 2;
  f.file_privilege= a.given_file &&
                    thd->security_context()->check_access(FILE_ACL);
  f.secure_path= a.given_file && a.csv_file.size() <= f.csv_file_max &&
                 is_secure_file_path(strcpy(path, a.csv_file.c_str()));
  rust::String why;
  ha_rust_ffi::CreateVerdict v=
      ha_rust_ffi::table_create_check(bytes(name), opts, f, why);
  using ha_rust_ffi::Refusal;
  if (v.refusal == Refusal::TooManyKeys)
    my_error(ER_TOO_MANY_KEYS, MYF(0), (int) v.max_keys);
  else if (v.refusal == Refusal::AutoIncrement)
    my_error(ER_TABLE_CANT_HANDLE_AUTO_INCREMENT, MYF(0));
  else if (v.refusal == Refusal::Option)
    my_printf_error(ER_ILLEGAL_HA_CREATE_OPTION, "RUST: %s", MYF(0),
                    std::string(why).c_str());
  else if (v.refusal == Refusal::FilePrivilege)
    check_global_access(thd, FILE_ACL);   /* raises the server's error */
  else if (v.refusal == Refusal::SecureFilePriv)
    my_error(ER_OPTION_PREVENTS_STATEMENT, MYF(0), "--secure-file-priv");
  else
    return 0;
  return HA_WRONG_CREATE_OPTION;
}

int ha_rust::create(const char *name, TABLE *form, HA_CREATE_INFO *info,
                    dd::Table *)
{
  Rust_attributes a;
  if (read_attributes(info->engine_attribute, &a))
    return HA_WRONG_CREATE_OPTION;
  if (int rc= refuse_layout(a))
    return rc;
  ha_rust_ffi::TableOptions opts= table_options(a, form);
  if (int rc= create_check(ha_thd(), name, form, a, opts))
    return rc;
  /* header line: the names of the stored columns */
  String header;
  for (Field **f= form->field; *f; f++)
    if ((*f)->stored_in_db)
      append_field(&header, &opts.header_fields, ha_rust_ffi::FieldKind::Quoted,
                   (*f)->field_name, strlen((*f)->field_name));
  for (size_t i= 0; i < header.length(); i++)
    opts.header_text.push_back((uint8_t) header[i]);
  opts.auto_inc_base= info->auto_increment_value ? info->auto_increment_value - 1 : 0;
  rust::String e;
  int rc= ha_rust_ffi::table_create(bytes(name), opts, e);
  if (rc)
    my_printf_error(ER_CANT_CREATE_TABLE, "Cannot create RUST table: %s", MYF(0),
                    std::string(e).c_str());
  return rc ? HA_ERR_GENERIC : 0;
}

int ha_rust::delete_table(const char *name, const dd::Table *)
{
  rust::String e;
  int rc= ha_rust_ffi::table_delete(bytes(name), e);
  if (rc && rc != HA_ERR_NO_SUCH_TABLE)
    my_printf_error(ER_GET_ERRNO, "RUST: %s", MYF(0), std::string(e).c_str());
  return rc == HA_ERR_NO_SUCH_TABLE ? 0 : (rc ? HA_ERR_GENERIC : 0);
}

int ha_rust::rename_table(const char *from, const char *to, const dd::Table *,
                          dd::Table *)
{
  rust::String e;
  int rc= ha_rust_ffi::table_rename(bytes(from), bytes(to), e);
  if (rc)
    my_printf_error(ER_GET_ERRNO, "RUST: %s", MYF(0), std::string(e).c_str());
  return rc ? HA_ERR_GENERIC : 0;
}

Rust_share *ha_rust::get_share()
{
  lock_shared_ha_data();
  Rust_share *s= static_cast<Rust_share *>(get_ha_share_ptr());
  if (!s)
  {
    s= new Rust_share;
    set_ha_share_ptr(s);
  }
  unlock_shared_ha_data();
  return s;
}

int ha_rust::open(const char *name, int, uint, const dd::Table *)
{
  if (!(share= get_share()))
    return HA_ERR_OUT_OF_MEM;
  thr_lock_data_init(&share->lock, &lock, nullptr);
  attrs= Rust_attributes();
  if (read_attributes(table->s->engine_attribute, &attrs))
    return HA_ERR_GENERIC;
  if (int rc= refuse_layout(attrs))
    return rc;
  ha_rust_ffi::TableOptions opts= table_options(attrs, table);
  tbl= new rust::Box<Table>(ha_rust_ffi::table_open(bytes(name), opts));
  if (int rc= (*tbl)->open_error())
  {
    err_msg= std::string((*tbl)->last_error());
    /* TODO: my_plugin_log_message needs the plugin's own handle (not the
       handlerton init gets); stderr is the error log meanwhile. The client
       is told why too (a table of the other server family, damage). */
    fprintf(stderr, "RUST: cannot open %s: %s\n", name, err_msg.c_str());
    my_printf_error(ER_GET_ERRNO, "RUST: %s", MYF(0), err_msg.c_str());
    delete tbl;
    tbl= nullptr;
    return rc;
  }
  return 0;
}

int ha_rust::close(void)
{
  int rc= tbl ? rust_rc((*tbl)->flush()) : 0;
  delete tbl;
  tbl= nullptr;
  return rc;
}

/* Builds the CSV row of `buf`: its text into row_image, its fields into
   row_fields. */
void ha_rust::pack_row(const uchar *buf)
{
  using ha_rust_ffi::FieldKind;
  ptrdiff_t off= buf - table->record[0];
  row_image.length(0);
  row_fields.clear();
  for (Field **fp= table->field; *fp; fp++)
  {
    Field *f= *fp;
    if (!f->stored_in_db)
      continue;
    if (off)
      f->move_field_offset(off);
    if (f->is_null())
      append_field(&row_image, &row_fields, FieldKind::Null, "", 0);
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
}

int ha_rust::write_row(uchar *buf)
{
  if (archive())
  {
    if (table->next_number_field && buf == table->record[0])
      if (int rc= update_auto_increment())
        return rc;
    bool keyed, unique;
    uint64_t key= key_of(buf, &keyed, &unique);
    if (int rc= pack_binary(buf))
      return rc;
    int rc= (*tbl)->insert(
        rust::Slice<const uint8_t>((const uint8_t *) row_image.ptr(), row_image.length()),
        rust::Slice<const uint32_t>(segs.data(), segs.size()), key, keyed, unique);
    if (rc == HA_ERR_FOUND_DUPP_KEY)
    {
      errkey= 0;
      return rc;
    }
    if (!rc)
      stats.records++;
    return rust_rc(rc);
  }
  pack_row(buf);
  int rc= rust_rc((*tbl)->insert_text(
      rust::Slice<const uint8_t>((const uint8_t *) row_image.ptr(), row_image.length()),
      rust::Slice<const ha_rust_ffi::CsvField>(row_fields.data(), row_fields.size())));
  if (!rc)
    stats.records++;
  return rc;
}

/* The row's new text replaces it when the statement's rewrite runs
   (exec_bulk_update, or the scan's end). */
int ha_rust::update_row(const uchar *, uchar *new_data)
{
  if (archive())
    return HA_ERR_WRONG_COMMAND;   /* append-only, as MySQL's ARCHIVE */
  pack_row(new_data);
  return rust_rc((*tbl)->update_current(
      rust::Slice<const uint8_t>((const uint8_t *) row_image.ptr(), row_image.length()),
      rust::Slice<const ha_rust_ffi::CsvField>(row_fields.data(), row_fields.size())));
}

int ha_rust::delete_row(const uchar *)
{
  if (archive())
    return HA_ERR_WRONG_COMMAND;
  return rust_rc((*tbl)->delete_current());
}

/* The end of a DELETE: the rewrite, whose failure the statement reports (its
   changes are then dropped; the file is as before). */
int ha_rust::exec_bulk_update(uint *dup_key_found)
{
  if (dup_key_found)
    *dup_key_found= 0;
  int rc= rust_rc((*tbl)->flush());
  if (rc)
    (*tbl)->discard();
  return rc;
}

int ha_rust::rnd_init(bool scan)
{
  return scan ? rust_rc((*tbl)->scan_start()) : 0;
}

/* The end of a scan; an UPDATE's rewrite runs here. The server ignores the
   result, so a failed rewrite (its changes dropped, the file as before) is
   also raised as the statement's error and written to the error log; with
   the binlog on, the server clears that error when it logs the statement
   (docs/mysql.md, UPDATE). */
int ha_rust::rnd_end()
{
  int rc= (*tbl)->scan_end();
  if (!rc)
    return 0;
  (*tbl)->discard();
  int code= rust_rc(rc);        /* raises the core's own codes */
  fprintf(stderr, "RUST: %s: %s\n", table->s->table_name.str, err_msg.c_str());
  if (code != HA_ERR_GENERIC)
    print_error(code, MYF(0));
  return code;
}

/* The current Rust row into `buf`, whatever the layout. */
int ha_rust::fetch_row(uchar *buf)
{
  return archive() ? unpack_binary(buf) : fetch_text(buf);
}

/* Catches the warnings Field::store() raises while CHECK decodes a record:
   whether a value fits is told by its result, and only when the session
   counts cut values, which also warns; the warnings are kept from the
   statement (CHECK reports each record once, by line). */
namespace {
/* set by Store_warnings while it is installed: a store raised a condition */
thread_local bool store_warned= false;

struct Store_warnings : public Internal_error_handler
{
  bool handle_condition(THD *, uint, const char *,
                        Sql_condition::enum_severity_level *level,
                        const char *) override
  {
    if (*level == Sql_condition::SL_NOTE)
      return true;               /* (cut trailing spaces: not damage) */
    store_warned= true;          /* a warning, or an error (bad JSON) */
    return true;
  }
};
}  // namespace

/* For CHECK and REPAIR: the current record decoded into `buf`; false with
   *bad saying why when it does not fit the table's columns. */
bool ha_rust::fetch_checked(uchar *buf, std::string *bad)
{
  if (archive())
  {
    if (unpack_binary(buf))
      *bad= "a row image that does not match the table's columns";
    return bad->empty();
  }
  THD *thd= ha_thd();
  enum_check_fields saved= thd->check_for_truncated_fields;
  thd->check_for_truncated_fields= CHECK_FIELD_WARN;
  Store_warnings quiet;
  thd->push_internal_handler(&quiet);
  if (fetch_text(buf, bad) && bad->empty())
    *bad= "a record with fewer fields than the table has columns";
  thd->pop_internal_handler();
  thd->check_for_truncated_fields= saved;
  return bad->empty();
}

/* Stores the current CSV record into `buf` (values as text, via Field::store);
   `bad`: the first value that does not fit its column, described. */
int ha_rust::fetch_text(uchar *buf, std::string *bad)
{
  rust::Slice<const uint8_t> data= (*tbl)->record_data();
  rust::Slice<const ha_rust_ffi::CsvField> fields= (*tbl)->record_fields();
  if (fields.size() < stored_columns(table))
    return HA_ERR_WRONG_IN_RECORD;
  memcpy(buf, table->s->default_values, table->s->null_bytes);
  ptrdiff_t off= buf - table->record[0];
  uint col= 0;
  for (Field **fp= table->field; *fp; fp++)
  {
    Field *f= *fp;
    if (!f->stored_in_db)
      continue;
    uint i= col++;
    if (off)
      f->move_field_offset(off);
    const ha_rust_ffi::CsvField &v= fields[i];
    if (v.kind == ha_rust_ffi::FieldKind::Null)
    {
      f->reset();
      if (f->is_nullable())
        f->set_null();
      else if (bad && bad->empty())
        *bad= std::string("an empty field (NULL) in NOT NULL column `") +
              f->field_name + "`";
    }
    else
    {
      f->set_notnull();
      const char *p= reinterpret_cast<const char *>(data.data()) + v.offset;
      store_warned= false;
      type_conversion_status st= f->store(p, v.length, f->charset());
      if (bad && bad->empty() && ((st != TYPE_OK && st != TYPE_NOTE_TRUNCATED &&
                                   st != TYPE_NOTE_TIME_TRUNCATED) || store_warned))
      {
        std::string val(p, v.length > 64 ? 64 : v.length);
        *bad= "value '" + val + (v.length > 64 ? "...'" : "'") +
              " does not fit column `" + f->field_name + "`";
      }
    }
    if (off)
      f->move_field_offset(-off);
  }
  return 0;
}

int ha_rust::rnd_next(uchar *buf)
{
  int rc= (*tbl)->scan_next();
  if (rc)
    return rc == HA_ERR_END_OF_FILE ? rc : rust_rc(rc);
  return fetch_row(buf);
}

void ha_rust::position(const uchar *)
{
  int8store(ref, (*tbl)->position());
}

int ha_rust::rnd_pos(uchar *buf, uchar *pos)
{
  if (int rc= (*tbl)->read_at(uint8korr(pos)))
    return rust_rc(rc);
  return fetch_row(buf);
}

int ha_rust::info(uint flag)
{
  if (tbl)
  {
    ha_rust_ffi::Stats s= (*tbl)->stats();
    stats.records= s.rows;
  }
  /* the next value, as InnoDB shows it */
  if (tbl && (flag & HA_STATUS_AUTO) && archive())
    stats.auto_increment_value= next_auto_increment();
  if (stats.records < 2)
    stats.records= 2;
  return 0;
}

THR_LOCK_DATA **ha_rust::store_lock(THD *, THR_LOCK_DATA **to,
                                    thr_lock_type lock_type)
{
  if (lock_type != TL_IGNORE && lock.type == TL_UNLOCK)
    lock.type= lock_type;
  *to++= &lock;
  return to;
}

/* SHOW CREATE TABLE (and so a dump) keeps an ARCHIVE table's AUTO_INCREMENT
   counter. */
void ha_rust::update_create_info(HA_CREATE_INFO *create_info)
{
  if (tbl && archive() && !(create_info->used_fields & HA_CREATE_USED_AUTO))
  {
    info(HA_STATUS_AUTO);
    create_info->auto_increment_value= stats.auto_increment_value;
  }
}

/* The plugin. */

static handler *rust_create_handler(handlerton *hton, TABLE_SHARE *table, bool,
                                    MEM_ROOT *mem_root)
{
  return new (mem_root) ha_rust(hton, table);
}

static const char *rust_exts[]= {".csv", ".csv-rewrite", ".arz", ".arp",
                                 ".arz-rewrite", ".rbt", nullptr};

/* Whether a session's statement is to stop (KILL): long Rust calls (OPTIMIZE)
   ask it through the core's probe. */
extern "C" void ha_rust_set_interrupt_probe(bool (*probe)(size_t));
static bool rust_session_stopped(size_t session)
{
  return thd_killed(reinterpret_cast<THD *>(session));
}

static int rust_init(void *p)
{
  ha_rust_set_interrupt_probe(rust_session_stopped);
  rust_hton= (handlerton *) p;
  rust_hton->state= SHOW_OPTION_YES;
  rust_hton->db_type= DB_TYPE_UNKNOWN;
  rust_hton->create= rust_create_handler;
  rust_hton->file_extensions= rust_exts;
  rust_hton->flags= HTON_CAN_RECREATE | HTON_SUPPORTS_ENGINE_ATTRIBUTE;
  return 0;
}

static int rust_deinit(void *)
{
  ha_rust_set_interrupt_probe(nullptr);
  return 0;
}

static struct st_mysql_storage_engine rust_storage_engine= {
    MYSQL_HANDLERTON_INTERFACE_VERSION};

mysql_declare_plugin(ha_rust){
    MYSQL_STORAGE_ENGINE_PLUGIN,
    &rust_storage_engine,
    "RUST",
    "ha_rust developers",
    "Storage engine written in Rust (CSV and ARCHIVE layouts; MySQL shim, in progress)",
    PLUGIN_LICENSE_GPL,
    rust_init,
    nullptr,
    rust_deinit,
    0x0001,
    nullptr,
    nullptr,
    nullptr,
    0,
} mysql_declare_plugin_end;
