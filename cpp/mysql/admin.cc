/*
  Table maintenance in MySQL: CHECK and REPAIR of CSV and ARCHIVE tables (every
  record decoded and stored into its fields; damage listed by line, and REPAIR
  rewrites the file without it, as in the MariaDB shim's admin.cc), OPTIMIZE
  (ARCHIVE's rewrite).
*/
#include "ha_rust.h"

#include <mysqld_error.h>
#include <mysql/plugin.h>
#include <sql/sql_class.h>
#include <sql/sql_error.h>

static void warn(THD *thd, uint code, const std::string &msg)
{
  push_warning(thd, Sql_condition::SL_WARNING, code, msg.c_str());
}

/* CHECK and REPAIR stopped: the message of Rust's error `rc` (if any) as a
   warning; a started check ended, changing nothing. */
int ha_rust::admin_failed(THD *thd, int rc, bool started)
{
  if (rc)
  {
    if (tbl)
      err_msg= std::string((*tbl)->last_error());
    warn(thd, ER_UNKNOWN_ERROR, err_msg);
  }
  if (started)
  {
    ha_rust_ffi::CheckSummary ignored;
    (*tbl)->check_finish(false, ignored);
  }
  return HA_ADMIN_FAILED;
}

/* CHECK and REPAIR: every record is decoded and every value stored into its
   column; damage is listed by line, and REPAIR rewrites the file without it
   (in check_finish, at the end: a KILL changes nothing). */
int ha_rust::admin(THD *thd, bool repair)
{
  int rc= (*tbl)->check_start();
  if (rc)
    return admin_failed(thd, rc, false);
  rust::String text;
  ulonglong shown= 0;
  const ulonglong max_shown= (ulonglong) ha_rust_ffi::Sizes::CheckWarnings;
  for (ulonglong step= 1;; step++)
  {
    if (step % 4096 == 0 && thd_killed(thd))
    {
      warn(thd, ER_QUERY_INTERRUPTED, "Query execution was interrupted");
      return admin_failed(thd, 0, true);
    }
    rc= (*tbl)->check_next(text);
    if (rc == HA_ERR_END_OF_FILE)
      break;
    if (rc == 0)
    {
      std::string bad;
      if (fetch_checked(table->record[0], &bad))
        continue;
      (*tbl)->check_reject(rust::Slice<const uint8_t>(
                               (const uint8_t *) bad.data(), bad.size()), text);
    }
    else if (rc != (int) ha_rust_ffi::Answer::Damaged)
      return admin_failed(thd, rc, true);
    if (shown++ < max_shown)
      warn(thd, ER_UNKNOWN_ERROR, std::string(text));
  }
  ha_rust_ffi::CheckSummary sum;
  if (int rc= (*tbl)->check_finish(repair, sum))
    return admin_failed(thd, rc, false);
  if (!sum.more.empty())
    warn(thd, ER_UNKNOWN_ERROR, std::string(sum.more));
  /* what REPAIR kept, and where it saved what it removed (docs/repair.md) */
  if (repair && !sum.note.empty())
    push_warning(thd, Sql_condition::SL_NOTE, ER_UNKNOWN_ERROR,
                 std::string(sum.note).c_str());
  return sum.corrupt ? HA_ADMIN_CORRUPT : HA_ADMIN_OK;
}

int ha_rust::check(THD *thd, HA_CHECK_OPT *) { return admin(thd, false); }

int ha_rust::repair(THD *thd, HA_CHECK_OPT *) { return admin(thd, true); }

/* ARCHIVE: the table rewritten in full blocks. */
int ha_rust::optimize(THD *thd, HA_CHECK_OPT *)
{
  if (!archive())
    return HA_ADMIN_NOT_IMPLEMENTED;
  if (int rc= (*tbl)->optimize(reinterpret_cast<size_t>(thd)))
  {
    err_msg= std::string((*tbl)->last_error());
    warn(thd, ER_UNKNOWN_ERROR, err_msg);
    return HA_ADMIN_FAILED;
  }
  return HA_ADMIN_OK;
}
