/*
  What a DBA watches (status.cc): the rows counted for SHOW GLOBAL STATUS,
  SHOW ENGINE RUST STATUS, the INFORMATION_SCHEMA tables, and a statement's
  progress report.
*/
#pragma once

#include "ha_rust.h"

/* Rows counted per layout for SHOW GLOBAL STATUS (status.cc; Rust gets them
   as the bridge's RowCounts). */
enum rust_row_count { ROWS_READ, ROWS_INSERTED, ROWS_UPDATED, ROWS_DELETED, ROW_COUNTS };
void rust_count_row(rust_row_count what, rust_layout layout);
/* SHOW ENGINE RUST STATUS (the handlerton's show_status). */
bool rust_show_status(handlerton *hton, THD *thd, stat_print_fn *print,
                      enum ha_stat_type stat);
extern SHOW_VAR rust_status_variables[];
/* The INFORMATION_SCHEMA plugins' descriptor and init functions. */
extern struct st_mysql_information_schema rust_i_s_info;
int rust_trx_init(void *p);
int rust_tables_init(void *p);
int rust_pool_init(void *p);
int rust_locks_init(void *p);
int rust_lock_waits_init(void *p);

/* A statement's progress report (SHOW PROCESSLIST's Progress, the client's
   progress line) for as long as it lives: C++ loops call at(); Rust's long calls
   (BTREE CHECK, ARCHIVE OPTIMIZE) report through rust_report_progress. */
struct rust_progress
{
  THD *thd;
  ulonglong total;
  explicit rust_progress(THD *t, ulonglong of= 0) : thd(t), total(of)
  { thd_progress_init(thd, 1); }
  void at(ulonglong done)
  { thd_progress_report(thd, done, std::max(total, done + 1)); }
  ~rust_progress() { thd_progress_end(thd); }
};

/* Rust's long calls tell their session how far they are (session.rs). */
extern "C" void rust_report_progress(size_t session, uint64_t done, uint64_t total);
