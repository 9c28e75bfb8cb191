/*
  Errors and warnings: the message of a failed Rust call kept for
  print_error()/get_error_message(), and Rust's warnings handed to the client or
  the server's error log.
*/
#include "ha_rust.h"

#include <sql_class.h>
#include <log.h>

/* A deadlock's victim loses its whole transaction, as with InnoDB: the server
   rolls it back at the statement's end (which releases its locks). So does a
   transaction that met a record changed since its read view was made
   (rust_snapshot_isolation; or a version it needs is not kept): its snapshot
   is of no further use, as with InnoDB's innodb_snapshot_isolation. */
static int mark_deadlock(THD *thd, int code)
{
  if ((code == HA_ERR_LOCK_DEADLOCK || code == HA_ERR_RECORD_CHANGED) && thd)
    thd->mark_transaction_to_rollback(true);
  return code;
}

/* Remembers the message of a failed Rust call for print_error(). */
int ha_rust::rust_rc(int code)
{
  if (code && tbl)
    err_msg= std::string((*tbl)->last_error());
  return mark_deadlock(ha_thd(), code);
}

/* DROP TABLE and RENAME run on a handler object of their own, and the server
   reports a failure through another one it makes for print_error()
   (ha_delete_table): the message of the connection's last failed DROP or
   RENAME is kept for that, for the statement it failed in only. */
static thread_local std::string ddl_error;
static thread_local query_id_t ddl_error_query= 0;

int ha_rust::ddl_rc(int code, const rust::String &e)
{
  if (code)
  {
    err_msg= std::string(e);
    THD *thd= current_thd;
    ddl_error= err_msg;
    ddl_error_query= thd ? thd->query_id : 0;
  }
  return code;
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

void ha_rust::print_error(int error, myf errflag)
{
  THD *thd= current_thd;
  if (mark_deadlock(thd, error) == HA_ERR_LOCK_DEADLOCK)
    err_msg.clear();      /* the server appends get_error_message()'s text */
  if (err_msg.empty() && !ddl_error.empty() && thd &&
      ddl_error_query == thd->query_id)
    err_msg.swap(ddl_error);
  ddl_error.clear();
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
