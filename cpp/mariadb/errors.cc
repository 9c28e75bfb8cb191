/*
  Errors and warnings: the message of a failed Rust call kept for
  print_error()/get_error_message(), and Rust's warnings handed to the client or
  the server's error log.
*/
#include "ha_rust.h"

#include <sql_class.h>
#include <log.h>

/* Remembers the message of a failed Rust call for print_error(). */
int ha_rust::rust_rc(int code)
{
  if (code && tbl)
    err_msg= std::string((*tbl)->last_error());
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
  while (tbl && (*tbl)->take_warning(w))
    push_warning(ha_thd(), Sql_condition::WARN_LEVEL_WARN, ER_UNKNOWN_ERROR,
                 std::string(w).c_str());
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
