/*
  ha_rust: the server-facing half of the RUST storage engine, the class the
  server calls. Its member functions are defined by concern in the .cc files of
  this folder (see docs/architecture.md for the map).

  The C++ here is glue only: it speaks the handler API and converts between the
  server's types (TABLE, Field, THD) and bytes. Everything that touches a file, a
  page or a lock lives in Rust, behind the cxx bridge in src/ffi/mod.rs.
*/
#pragma once

#include <my_global.h>
#include <sql_priv.h>
#include <sql_class.h>
#include <thr_lock.h>
#include <handler.h>
#include <my_base.h>

#include <string>
#include <vector>

#include "rust/cxx.h"
#include "ha_rust/src/ffi/mod.rs.h"

/* Table options: CREATE TABLE ... ENGINE=RUST LAYOUT=CSV CSV_FILE='/x.csv' ... */
struct ha_table_option_struct
{
  uint layout;               /* index into "BTREE,CSV,ARCHIVE" */
  const char *csv_file;      /* attach an existing file instead of <table>.csv */
  bool csv_header;           /* the first line is a header */
  const char *csv_separator; /* one character; default ',' */
  bool csv_writable;         /* an attached file may be written */
  ulonglong compression_level; /* ARCHIVE: zstd level, 0 = the default */
};

/* The LAYOUT option's values: the bridge's LayoutKind. */
enum rust_layout {
  LAYOUT_BTREE= (int) ha_rust_ffi::LayoutKind::Btree,
  LAYOUT_CSV= (int) ha_rust_ffi::LayoutKind::Csv,
  LAYOUT_ARCHIVE= (int) ha_rust_ffi::LayoutKind::Archive
};

/* Engine-private error codes (the bridge's RustError): past the server's last one. */
#define HA_ERR_RUST_FIRST ((int) ha_rust_ffi::RustError::Io)
static_assert(HA_ERR_RUST_FIRST == HA_ERR_LAST + 1,
              "the bridge's RustError codes must follow HA_ERR_LAST");

/* The BTREE tree format from which a secondary entry keeps unpack bytes
   (src/btree/tree/mod.rs UNPACK_FORMAT): string key parts are read back
   from the entry from it on. */
static const uint32_t KEY_FORMAT_UNPACK= 5;
/* ... and from which the unpack item of a string part whose collation folds
   case is Rust's compact one (src/btree/unpack.rs), not the value again. */
static const uint32_t KEY_FORMAT_CASE= 6;

/* Whether a key part's column can be read back from its secondary entry
   (index-only reads; keys.cc) in a table of tree format `key_format` (0: not
   known yet, taken as the format new tables get). */
bool rust_key_part_decodable(const KEY_PART_INFO *kp, uint32_t key_format);

/* Bytes for the bridge. */
static inline rust::Slice<const uint8_t> bytes(const String &s)
{
  return rust::Slice<const uint8_t>(reinterpret_cast<const uint8_t *>(s.ptr()),
                                    s.length());
}

static inline rust::Slice<const uint8_t> bytes(const char *s)
{
  return rust::Slice<const uint8_t>(reinterpret_cast<const uint8_t *>(s ? s : ""),
                                    s ? strlen(s) : 0);
}

static inline rust::Slice<const uint8_t> sl(const std::string &s)
{
  return rust::Slice<const uint8_t>(reinterpret_cast<const uint8_t *>(s.data()),
                                    s.size());
}

static inline rust::Slice<const ha_rust_ffi::SecKey>
sl(const std::vector<ha_rust_ffi::SecKey> &v)
{
  return rust::Slice<const ha_rust_ffi::SecKey>(v.data(), v.size());
}

/* The BTREE page size (the bridge's). */
#define RUST_PAGE_SIZE ((uint32_t) ha_rust_ffi::Sizes::Page)

/* The number of columns stored in the table's files (not virtual ones);
   handler.cc. */
uint stored_columns(TABLE *t);
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

/* What all handlers of one table share: the server's table lock. */
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
  rust::Box<ha_rust_ffi::Table> *tbl= nullptr; /* the Rust table, while open */
  std::string err_msg;                         /* text of the last Rust error */
  String row_image;                            /* a row as bytes for Rust */
  std::vector<ha_rust_ffi::CsvField> row_fields; /* CSV: the fields in row_image */
  String field_text;                           /* one field as text */
  std::vector<uint32_t> segs;                  /* ARCHIVE: column ends in row_image */
  bool has_timestamp= false;
  /* Blob bytes of the rows handed to the server: one arena per record buffer
     the server reads into (docs/handler-rows.md). A blob value read into a
     buffer stays valid until the next read into that same buffer, or reset(). */
  /* a vector, not a std::string: a short string's bytes move with it */
  struct blob_arena { const uchar *rec; std::vector<uchar> bytes; };
  std::vector<blob_arena> blob_arenas;

  /* BTREE: server key number <-> Rust index (0 = clustered) */
  std::vector<uint> rust_index_of;
  std::vector<uint> server_key_of;
  std::vector<uchar> key_record;   /* scratch record for key tuples */
  std::string key_buf, key_buf2, pk_buf, pk_buf2, key_tmp;
  std::vector<ha_rust_ffi::SecKey> sec_buf, sec_buf2;
  ulonglong autoinc_rows_left= 0;  /* values a statement reserved, not yet used */
  bool skip_locked= false;           /* the statement reads with SKIP LOCKED (store_lock) */
  bool low_priority= false;          /* a LOW_PRIORITY write (store_lock) */
  bool plain_read= false;            /* a plain SELECT's read (store_lock): may be consistent */
  bool whole_read= false;            /* a read the server keeps stable (TL_READ_NO_INSERT): table lock */
  ulonglong autoinc_last= 0;       /* the end of the statement's reservation */
  std::string same_buf;   /* index_next_same's key, memcomparable */
  std::string same_raw;   /* ... and the server's key tuple it was built from */
  uint same_index= MAX_KEY;
  String key_text;
  bool rnd_first= false;
  uint last_dup_key= 0;              /* for info(HA_STATUS_ERRKEY) */
  bool scan_desc= false;
  uint max_pk_len= 0;
  uint32_t key_format= 0;            /* the table's format version (Rust) */
  std::vector<ha_rust_ffi::KeyPart> stat_parts;  /* key parts for bt_rec_per_key */
  /* Index-only reads (docs/btree-format.md, "Index-only reads") */
  bool pk_decodable= false;          /* every primary key part can be decoded */
  std::vector<bool> keyread_cols;    /* [key * fields + field]: decodable from key */
  /* [key][user part]: part_layout and unpack_of, computed once in
     bt_setup_decode (they depend on the table definition only); Rust reads
     entries back by the same plan (bt_set_read_plan, bt_read_entry) */
  std::vector<std::vector<ha_rust_ffi::PartPlan>> key_decode;
  rust::Vec<uint8_t> entry_bytes;              /* an entry's columns read back */
  rust::Vec<ha_rust_ffi::ReadPart> entry_parts; /* ... a part each */
  bool key_only= false;              /* the open index cursor reads entries only */
  bool fetched_key_only= false;      /* the last row came from an entry only */
  /* Index condition pushdown (docs/btree-format.md, "Index-only reads") */
  bool icp= false;                   /* the open index cursor tests pushed_idx_cond */
  const uchar *icp_same_key= nullptr;  /* index_next_same's key, while it runs */
  uint icp_same_len= 0;

  Rust_share *get_share();
  rust_layout layout() const;
  ha_rust_ffi::TrxHandle &trx();
  void append_field_key(KEY_PART_INFO *kp, Field *f, std::string &out);
  void append_key(uint key, const uchar *record, uint parts, std::string &out,
                  bool *has_null);
  void primary_key_of(const uchar *record, std::string &out);
  typedef std::vector<ha_rust_ffi::SecKey> sec_keys;
  void secondary_keys_of(const uchar *record, sec_keys &out);
  void append_unpack(uint key, const uchar *record, std::string &out);
  uint key_tuple(uint key, const uchar *tuple, key_part_map map,
                 std::string &out);
  int bt_fetch(uchar *buf, int rc, bool from_key= false);
  int bt_fetch_row(uchar *buf, int rc, bool from_key);
  bool bt_key_only_start();
  int index_edge(uchar *buf, bool last);
  int bt_unpack_key(uchar *buf);
  void bt_get_auto_increment(ulonglong offset, ulonglong increment,
                             ulonglong nb_desired_values, ulonglong *first_value,
                             ulonglong *nb_reserved_values);
  int bt_setup();
  void bt_setup_decode();
  int bt_write_row(const uchar *buf);
  int bt_update_row(const uchar *old_data, const uchar *new_data);
  bool stored_columns_equal(const uchar *a, const uchar *b);
  int bt_delete_row(const uchar *buf);
  int bt_rnd_next(uchar *buf);
  void bt_position(const uchar *record);
  int bt_rnd_pos(uchar *buf, uchar *pos);
  int bt_index_read(uchar *buf, const uchar *key, key_part_map map,
                    enum ha_rkey_function find_flag);
  int bt_external_lock(THD *thd, int lock_type);
  void bt_start_stmt(THD *thd);
  void bt_rec_per_key(bool analyze);
  ha_rust_ffi::KeyPart part_layout(KEY_PART_INFO *kp);
  int bt_repair(THD *thd);
  int bt_check(THD *thd);
  int bt_dup(int rc, uint32_t dup);
  void bt_autoinc_check();
  int bt_autoinc_used(const uchar *record);

public:
  /* BTREE create(): refuses what the layout cannot index; sets *indexes */
  static int bt_create_check(TABLE *form, uint *indexes);
private:
  int rust_rc(int code);
  int ddl_rc(int code, const rust::String &e);
  int unpack_row(uchar *buf, bool all_fields, std::string *bad);
  int pack_row(const uchar *buf);
  rust::Slice<const ha_rust_ffi::CsvField> csv_fields() const
  { return {row_fields.data(), row_fields.size()}; }
  int pack_binary(const uchar *buf);
  int unpack_binary(uchar *buf);
  int fetch_row(uchar *buf, std::string *bad);
  int fetch_row_layout(uchar *buf, std::string *bad);
  int write_row_layout(const uchar *buf);
  int update_row_layout(const uchar *old_data, const uchar *new_data);
  int delete_row_layout(const uchar *buf);
  std::vector<uchar> &arena_for(const uchar *rec);
  void own_blobs(uchar *buf, bool all_fields);
  uint64_t key_of(const uchar *record, bool *keyed, bool *unique);
  ulonglong next_auto_increment();
  void push_rust_warnings();
  void log_rust_warnings();
  int admin(THD *thd, bool repair);
  int admin_failed(THD *thd, int rc, bool started);
  std::string admin_decode();
  int admin_end(THD *thd, bool repair);

public:
  ha_rust(handlerton *hton, TABLE_SHARE *table_arg);
  ~ha_rust() override;

  ulonglong table_flags() const override;
  /* BTREE: ordered indexes. ARCHIVE: one index, on the AUTO_INCREMENT column,
     for equality lookups; CSV: none (refused in create()). */
  ulong index_flags(uint inx, uint part, bool all_parts) const override;
  Item *idx_cond_push(uint keyno, Item *idx_cond) override;
  uint max_supported_keys() const override
  { return layout() == LAYOUT_CSV ? 0 : layout() == LAYOUT_ARCHIVE ? 1 : MAX_KEY; }
  uint max_supported_key_parts() const override
  { return layout() == LAYOUT_BTREE ? 16 : 1; }
  const char *index_type(uint) override
  { return layout() == LAYOUT_BTREE ? "BTREE" : "HASH"; }
  /* non-zero so that a CSV index is refused as "too many keys", not "too long" */
  uint max_supported_key_length() const override { return 3072; }
  uint max_supported_key_part_length() const override { return 3072; }
  uint max_supported_record_length() const override { return HA_MAX_REC_LENGTH; }
  double scan_time() override;
  double read_time(uint index, uint ranges, ha_rows rows) override;
  /* BTREE: any index may be scanned whole to give ORDER BY's order without a
     LIMIT, when the optimizer finds it cheaper than a sort (as InnoDB) */
  const key_map *keys_to_use_for_scanning() override
  { return layout() == LAYOUT_BTREE ? &key_map_full : &key_map_empty; }

  int open(const char *name, int mode, uint test_if_locked) override;
  handler *clone(const char *name, MEM_ROOT *mem_root) override;
  int close(void) override;
  int create(const char *name, TABLE *form, HA_CREATE_INFO *info) override;
  int delete_table(const char *name) override;
  int rename_table(const char *from, const char *to) override;

  int write_row(const uchar *buf) override;
  int update_row(const uchar *old_data, const uchar *new_data) override;
  int delete_row(const uchar *buf) override;
  int delete_all_rows() override;
  int truncate() override;
  void start_bulk_insert(ha_rows rows, uint flags) override;
  int end_bulk_insert() override;

  int rnd_init(bool scan) override;
  int rnd_next(uchar *buf) override;
  int rnd_end() override;
  int rnd_pos(uchar *buf, uchar *pos) override;
  void position(const uchar *record) override;
  void unlock_row() override;

  int index_read_map(uchar *buf, const uchar *key, key_part_map keypart_map,
                     enum ha_rkey_function find_flag) override;
  int index_next(uchar *buf) override;
  int index_prev(uchar *buf) override;
  int index_first(uchar *buf) override;
  int index_last(uchar *buf) override;
  int index_init(uint idx, bool sorted) override;
  ha_rows records_in_range(uint inx, const key_range *min_key,
                           const key_range *max_key, page_range *pages) override;
  int start_stmt(THD *thd, thr_lock_type lock_type) override;
  /* CSV: UPDATE and DELETE are "batched" so that the rewrite at their end
     can report a failure (rnd_end's result is ignored by the server) */
  bool start_bulk_update() override { return layout() != LAYOUT_CSV; }
  int bulk_update_row(const uchar *old_data, const uchar *new_data,
                      ha_rows *dup_key_found) override
  { *dup_key_found= 0; return update_row(old_data, new_data); }
  int exec_bulk_update(ha_rows *dup_key_found) override;
  bool start_bulk_delete() override { return layout() != LAYOUT_CSV; }
  int end_bulk_delete() override;
  int analyze(THD *thd, HA_CHECK_OPT *check_opt) override;
  int index_next_same(uchar *buf, const uchar *key, uint keylen) override;
  int index_end() override;
  ha_rows records() override;
  void get_auto_increment(ulonglong offset, ulonglong increment,
                          ulonglong nb_desired_values, ulonglong *first_value,
                          ulonglong *nb_reserved_values) override;
  int optimize(THD *thd, HA_CHECK_OPT *check_opt) override;
  void update_create_info(HA_CREATE_INFO *create_info) override;

  int info(uint flag) override;
  int extra(enum ha_extra_function operation) override { return 0; }
  int reset() override;
  int external_lock(THD *thd, int lock_type) override;
  THR_LOCK_DATA **store_lock(THD *thd, THR_LOCK_DATA **to,
                             enum thr_lock_type lock_type) override;

  int check(THD *thd, HA_CHECK_OPT *check_opt) override;
  int repair(THD *thd, HA_CHECK_OPT *check_opt) override;
  bool auto_repair(int error) const override { return false; }
  bool check_if_incompatible_data(HA_CREATE_INFO *info, uint table_changes) override;

  void print_error(int error, myf errflag) override;
  bool get_error_message(int error, String *buf) override;
};
