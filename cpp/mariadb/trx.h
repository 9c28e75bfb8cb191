/*
  The handlerton's transaction hooks (trx.cc), set by rust_init (plugin.cc).
*/
#pragma once

#include "ha_rust.h"

/* The engine's handlerton (plugin.cc), whose THD slot holds a connection's
   transaction. */
extern handlerton *rust_hton_btree;

int rust_bt_commit(handlerton *, THD *thd, bool all);
int rust_bt_rollback(handlerton *, THD *thd, bool all);
int rust_bt_savepoint_set(handlerton *, THD *thd, void *sv);
int rust_bt_savepoint_rollback(handlerton *, THD *thd, void *sv);
int rust_bt_savepoint_release(handlerton *, THD *, void *);
int rust_bt_close_connection(handlerton *, THD *thd);
int rust_bt_prepare(handlerton *, THD *thd, bool all);
int rust_bt_start_consistent_snapshot(handlerton *, THD *thd);
int rust_bt_recover(handlerton *, XID *xid_list, uint len);
int rust_bt_commit_by_xid(handlerton *, XID *xid);
int rust_bt_rollback_by_xid(handlerton *, XID *xid);
void rust_bt_commit_checkpoint_request(void *cookie);
void rust_bt_kill_query(handlerton *, THD *thd, enum thd_kill_levels);
/* The session's rust_snapshot_isolation (plugin.cc). */
bool rust_thd_snapshot_isolation(THD *thd);
/* Rust's lock waits ask whether their session was killed (session.rs). */
extern "C" bool rust_bt_session_stopped(size_t session);
