/*
  Table maintenance: CHECK and REPAIR (every record decoded and stored into its
  fields; BTREE checks its trees in Rust), ANALYZE (BTREE's statistics) and
  OPTIMIZE (ARCHIVE's rewrite).
*/
#include "ha_rust.h"
#include "status.h"

#include <sql_class.h>

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

/* CHECK and REPAIR stopped: the message of Rust's error `rc` (if any) as a
   warning; a started check ended, changing nothing. */
int ha_rust::admin_failed(THD *thd, int rc, bool started)
{
  if (rc)
  {
    rust_rc(rc);
    push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_UNKNOWN_ERROR,
                 err_msg.c_str());
  }
  if (started)
  {
    ha_rust_ffi::CheckSummary ignored;
    (*tbl)->check_finish(false, ignored);
  }
  return HA_ADMIN_FAILED;
}

/* Why the record CHECK just read does not fit the table's columns ("" when it
   does): every value is stored into its column. */
std::string ha_rust::admin_decode()
{
  std::string bad;
  if (layout() == LAYOUT_ARCHIVE)
  {
    if (unpack_binary(table->record[0]))
      bad= "a row image that does not match the table's columns";
  }
  else
    unpack_row(table->record[0], true, &bad);
  return bad;
}

/* The end of CHECK and REPAIR: the file rewritten (REPAIR), the count of
   damage not listed, what REPAIR kept, and the verdict. */
int ha_rust::admin_end(THD *thd, bool repair)
{
  ha_rust_ffi::CheckSummary sum;
  if (int rc= (*tbl)->check_finish(repair, sum))
    return admin_failed(thd, rc, false);
  if (!sum.more.empty())
    push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_UNKNOWN_ERROR,
                 std::string(sum.more).c_str());
  /* what REPAIR kept, and where it saved what it removed (docs/repair.md) */
  if (repair && !sum.note.empty())
    push_warning(thd, Sql_condition::WARN_LEVEL_NOTE, ER_UNKNOWN_ERROR,
                 std::string(sum.note).c_str());
  /* the verdict is Rust's (each layout's check_finish) */
  return sum.corrupt ? HA_ADMIN_CORRUPT : HA_ADMIN_OK;
}

/* CHECK and REPAIR: every record is decoded and every value stored into its
   column; damage is listed by line, and REPAIR rewrites the file without it. */
int ha_rust::admin(THD *thd, bool repair)
{
  info(HA_STATUS_VARIABLE);
  rust_progress progress(thd, stats.records);  /* rows done of the table's */
  int rc= (*tbl)->check_start();
  if (rc)
    return admin_failed(thd, rc, false);
  rust::String text;
  ulonglong shown= 0;
  const ulonglong max_shown= (ulonglong) ha_rust_ffi::Sizes::CheckWarnings;
  for (ulonglong step= 1;; step++)
  {
    /* KILL: stop every few thousand rows, changing nothing (REPAIR rewrites
       the file only at the end, in check_finish) */
    if (step % 4096 == 0 && thd_kill_level(thd))
    {
      push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_QUERY_INTERRUPTED,
                   ER_THD(thd, ER_QUERY_INTERRUPTED));
      return admin_failed(thd, 0, true);
    }
    if (step % 4096 == 0)
      progress.at(step);
    rc= (*tbl)->check_next(text);
    if (rc == HA_ERR_END_OF_FILE)
      break;
    if (rc == 0)
    {
      std::string bad= admin_decode();
      if (bad.empty())
        continue;
      (*tbl)->check_reject(sl(bad), text);
    }
    else if (rc != (int) ha_rust_ffi::Answer::Damaged)
      return admin_failed(thd, rc, true);
    if (shown++ < max_shown)
      push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_UNKNOWN_ERROR,
                   std::string(text).c_str());
  }
  return admin_end(thd, repair);
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
    return bt_repair(thd);
  return admin(thd, true);
}

/* REPAIR TABLE (docs/repair.md): Rust salvages the clustered file into a new
   one and hands its rows back here, where each row's secondary keys are made
   (only the server's collations can) for new index files; then the new files
   replace the old ones, all or none. */
int ha_rust::bt_repair(THD *thd)
{
  rust_progress progress(thd, stats.records);
  int rc= (*tbl)->bt_repair_begin(trx(), reinterpret_cast<size_t>(thd));
  ulonglong n= 0;
  while (!rc && !(rc= (*tbl)->bt_repair_next()))
  {
    if (++n % 4096 == 0)
    {
      progress.at(n);
      if (thd_kill_level(thd))
      {
        rc= HA_ERR_ABORTED_BY_USER;
        break;
      }
    }
    if (unpack_binary(table->record[0]))
      rc= HA_ERR_WRONG_IN_RECORD;
    else
    {
      secondary_keys_of(table->record[0], sec_buf);
      rc= (*tbl)->bt_repair_add(sl(sec_buf));
    }
  }
  bool keep= rc == HA_ERR_END_OF_FILE, damaged= false;
  rust::String note;
  int end= (*tbl)->bt_repair_finish(keep, note, damaged);
  if (keep && end)
    rc= end;
  if (!keep || end)
  {
    if (rc == HA_ERR_ABORTED_BY_USER)
      push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_QUERY_INTERRUPTED,
                   ER_THD(thd, ER_QUERY_INTERRUPTED));
    else
    {
      if (rc == HA_ERR_WRONG_IN_RECORD)
        err_msg= "REPAIR changed nothing: a kept row does not match the table's columns";
      else
        rust_rc(rc);
      push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_UNKNOWN_ERROR,
                   err_msg.c_str());
    }
    return HA_ADMIN_FAILED;
  }
  /* as CHECK, REPAIR says nothing but OK when it found nothing wrong */
  if (damaged)
    push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_UNKNOWN_ERROR,
                 std::string(note).c_str());
  return HA_ADMIN_OK;
}

int ha_rust::bt_check(THD *thd)
{
  rust::Vec<rust::String> out;
  rust_progress progress(thd);   /* pages and entries checked (Rust reports them) */
  if ((*tbl)->bt_check(reinterpret_cast<size_t>(thd), out))
  {
    /* killed: the result says so, then "Operation failed" */
    push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_QUERY_INTERRUPTED,
                 ER_THD(thd, ER_QUERY_INTERRUPTED));
    return HA_ADMIN_FAILED;
  }
  if (out.empty())
    return HA_ADMIN_OK;
  for (const rust::String &line : out)
    push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_UNKNOWN_ERROR,
                 std::string(line).c_str());
  return HA_ADMIN_CORRUPT;
}
