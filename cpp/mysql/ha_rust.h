/*
  The MySQL (Oracle MySQL 9.7) shim of ha_rust: a handler over the Rust core
  (src/ffi/mod.rs), written for MySQL's handler API (docs/mysql.md). Its
  MariaDB counterpart is cpp/mariadb/; nothing of it is compiled here.
  So far: the CSV layout (create, insert, full scans, update, delete) and the
  ARCHIVE layout (rows.cc), with CHECK, REPAIR and OPTIMIZE (admin.cc); BTREE
  is refused with an error until its code is ported.
*/
#pragma once

#include <sql/handler.h>
#include <sql/table.h>
#include <sql/field.h>
#include <sql_string.h>
#include <thr_lock.h>

#include "ha_rust/src/ffi/mod.rs.h"

#include <string>
#include <vector>

using ha_rust_ffi::Table;

/* One field of a CSV row written: its text appended to `text`, its kind and
   place in `fields` (a std::vector or rust::Vec of the bridge's CsvField). */
template <class Fields>
void append_field(String *text, Fields *fields, ha_rust_ffi::FieldKind kind,
                  const char *p, size_t len)
{
  fields->push_back({kind, (uint32_t) text->length(), (uint32_t) len});
  if (len)
    text->append(p, len);
}

/* The layout and CSV options of a table, read from ENGINE_ATTRIBUTE (JSON). */
struct Rust_attributes
{
  ha_rust_ffi::LayoutKind layout= ha_rust_ffi::LayoutKind::Btree;
  std::string csv_file;
  bool csv_header= false;
  bool csv_writable= false;
  std::string csv_separator;
  bool given_file= false, given_header= false, given_separator= false;
  int compression_level= 0;          /* ARCHIVE: zstd level, 0 = the default */
};

/* Parses `text` (a JSON object, or empty); false with *err set when it is not
   one or names a key the engine does not know (attributes.cc). */
bool rust_parse_attributes(const char *text, size_t len, Rust_attributes *out,
                           std::string *err);

/* What all handlers of one table share: the server's table lock (THR_LOCK),
   which lets one writer at a time into a table (as MariaDB's shim and MySQL's
   ARCHIVE and CSV engines do): an ARCHIVE insert reads its AUTO_INCREMENT value
   and appends its row in two calls, and a CSV UPDATE rewrites the file. */
class Rust_share : public Handler_share
{
public:
  THR_LOCK lock;
  Rust_share() { thr_lock_init(&lock); }
  ~Rust_share() override { thr_lock_delete(&lock); }
};

class ha_rust final : public handler
{
  THR_LOCK_DATA lock;
  Rust_share *share= nullptr;
  rust::Box<Table> *tbl= nullptr;
  Rust_attributes attrs;
  String row_image;                      /* a CSV row written: its text */
  std::vector<ha_rust_ffi::CsvField> row_fields;  /* ... and its fields */
  String field_text;
  std::string err_msg;
  std::vector<uint32_t> segs;            /* ARCHIVE: column ends in row_image */
  /* Blob bytes of the rows handed to the server: one arena per record buffer
     read into, valid until the next read into that buffer (rows.cc) */
  struct blob_arena { const uchar *rec; std::vector<uchar> bytes; };
  std::vector<blob_arena> blob_arenas;

  bool archive() const { return attrs.layout == ha_rust_ffi::LayoutKind::Archive; }
  int fetch_row(uchar *buf);
  int fetch_text(uchar *buf, std::string *bad= nullptr);
  bool fetch_checked(uchar *buf, std::string *bad);
  int admin(THD *thd, bool repair);
  int admin_failed(THD *thd, int rc, bool started);
  void pack_row(const uchar *buf);
  int pack_binary(const uchar *buf);
  int unpack_binary(uchar *buf);
  std::vector<uchar> &arena_for(const uchar *rec);
  uint64_t key_of(const uchar *record, bool *keyed, bool *unique);
  ulonglong next_auto_increment();
  int rust_rc(int rc);
  Rust_share *get_share();

public:
  ha_rust(handlerton *hton, TABLE_SHARE *share);
  ~ha_rust() override;

  const char *table_type() const override { return "RUST"; }
  Table_flags table_flags() const override;
  /* ARCHIVE's one index, on the AUTO_INCREMENT column: equality lookups only
     (CSV has none: create refuses it) */
  ulong index_flags(uint, uint, bool) const override { return HA_ONLY_WHOLE_INDEX; }
  uint max_supported_keys() const override { return 1; }
  uint max_supported_key_parts() const override { return 1; }
  int index_read_map(uchar *buf, const uchar *key, key_part_map keypart_map,
                     enum ha_rkey_function find_flag) override;
  int index_next(uchar *buf) override;
  int index_end() override;
  void get_auto_increment(ulonglong offset, ulonglong increment,
                          ulonglong nb_desired_values, ulonglong *first_value,
                          ulonglong *nb_reserved_values) override;

  int open(const char *name, int mode, uint test_if_locked,
           const dd::Table *table_def) override;
  int close(void) override;
  int create(const char *name, TABLE *form, HA_CREATE_INFO *info,
             dd::Table *table_def) override;
  int delete_table(const char *name, const dd::Table *table_def) override;
  int rename_table(const char *from, const char *to, const dd::Table *from_def,
                   dd::Table *to_def) override;

  int write_row(uchar *buf) override;
  int update_row(const uchar *old_data, uchar *new_data) override;
  int delete_row(const uchar *buf) override;
  /* DELETE is "batched", so that the rewrite at its end can report a failure
     (rnd_end's result is ignored by the server). UPDATE is not: MySQL writes
     no row events to the binlog for a batched update (ha_bulk_update_row
     skips binlog_log_row), so its rewrite runs at rnd_end (docs/mysql.md). */
  bool start_bulk_delete() override { return false; }
  int exec_bulk_update(uint *dup_key_found) override;
  int end_bulk_delete() override { return exec_bulk_update(nullptr); }
  int rnd_init(bool scan) override;
  int rnd_next(uchar *buf) override;
  int rnd_end() override;
  int rnd_pos(uchar *buf, uchar *pos) override;
  void position(const uchar *record) override;
  int info(uint flag) override;
  int external_lock(THD *, int) override { return 0; }
  void update_create_info(HA_CREATE_INFO *create_info) override;
  int check(THD *thd, HA_CHECK_OPT *check_opt) override;
  int repair(THD *thd, HA_CHECK_OPT *check_opt) override;
  int optimize(THD *thd, HA_CHECK_OPT *check_opt) override;
  THR_LOCK_DATA **store_lock(THD *thd, THR_LOCK_DATA **to,
                             thr_lock_type lock_type) override;
};
