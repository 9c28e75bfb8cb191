/*
  Transactions (BTREE): the connection's transaction in the THD's slot, tied to
  the server's (trans_register_ha) at external_lock/start_stmt; commit, rollback,
  savepoints, the binlog's two-phase commit and XA (prepare, recover, commit
  and rollback by XID), KILL of a lock wait; the server's table locks
  (store_lock) for every layout.
*/
#include "ha_rust.h"
#include "trx.h"

#include <sql_class.h>
#include <log.h>

/* The connection's transaction, kept in the THD's slot for this engine. */
struct Rust_trx
{
  rust::Box<ha_rust_ffi::TrxHandle> h;
  /* stops h's lock waits; used by the kill callback, from another thread */
  rust::Box<ha_rust_ffi::TrxWake> wake;
  uint tables_in_use= 0;
  /* the statement whose start the Rust statement savepoint marks */
  query_id_t stmt_query_id= 0;
  /* prepared in the binlog's two-phase commit (not XA PREPARE): its commit
     need not be durable at once (see rust_bt_commit_checkpoint_request) */
  bool binlog_2pc= false;
  explicit Rust_trx(THD *thd)
    : h(ha_rust_ffi::trx_new()), wake(ha_rust_ffi::trx_wake(*h))
  {
    ha_rust_ffi::trx_set_session(*h, reinterpret_cast<size_t>(thd));
  }
};

static Rust_trx *get_trx(THD *thd, bool create)
{
  Rust_trx *t= static_cast<Rust_trx *>(thd_get_ha_data(thd, rust_hton_btree));
  if (!t && create)
  {
    t= new Rust_trx(thd);
    thd_set_ha_data(thd, rust_hton_btree, t);
  }
  return t;
}

/* ---- KILL ----
   A statement waiting for a lock stops when it is killed (KILL, KILL QUERY,
   max_statement_time) or its client goes away (docs/btree-format.md, "Lock
   waits and KILL"). The server calls kill_query from the killing thread,
   holding the victim's LOCK_thd_data (so close_connection, which clears the
   slot under that mutex before it deletes, cannot free the Rust_trx under
   it); Rust then asks the waiting session itself, through
   rust_bt_session_stopped, in the waiting thread. */

void rust_bt_kill_query(handlerton *, THD *thd, enum thd_kill_levels)
{
  if (Rust_trx *t= get_trx(thd, false))
    ha_rust_ffi::trx_wake_raise(*t->wake);
}

extern "C" bool rust_bt_session_stopped(size_t session)
{
  THD *thd= reinterpret_cast<THD *>(session);
  if (thd_kill_level(thd) != THD_IS_NOT_KILLED)
    return true;
  /* a client that went away: its statement is ended as a killed one (a THD
     without a connection, e.g. an event or --init-file, is never "gone") */
  if (thd->vio_ok() && !thd->is_connected())
  {
    thd->set_killed(KILL_CONNECTION);
    return true;
  }
  return false;
}

ha_rust_ffi::TrxHandle &ha_rust::trx()
{
  return *get_trx(ha_thd(), true)->h;
}

/* ---- handlerton transaction callbacks ---- */

static void report(int rc, const rust::String &e)
{
  if (rc)
    sql_print_error("RUST: %s", std::string(e).c_str());
}

/* The end of a statement inside a transaction (its commit or prepare): the
   next statement's rollback goes back to here, even one that marks nothing
   itself (a statement that reaches RUST only through a stored function under
   LOCK TABLES, the runs of a bulk execute, which share one query id), as InnoDB
   marks at every statement commit. */
static int stmt_end(Rust_trx *t)
{
  ha_rust_ffi::trx_stmt_begin(*t->h);
  return 0;
}

int rust_bt_commit(handlerton *, THD *thd, bool all)
{
  Rust_trx *t= get_trx(thd, false);
  if (!t)
    return 0;
  if (all || !thd_test_options(thd, OPTION_NOT_AUTOCOMMIT | OPTION_BEGIN))
  {
    rust::String e;
    bool durable= !t->binlog_2pc;
    t->binlog_2pc= false;
    int rc= ha_rust_ffi::trx_commit(*t->h, durable, e);
    report(rc, e);
    return rc;
  }
  return stmt_end(t);
}

/* The binlog is about to forget the XIDs of an older binlog file: every commit
   made so far must be durable. A commit of a transaction prepared in the
   binlog's two-phase commit only appends its commit record (the binlog keeps
   its XID until this is answered: a crash before brings the transaction back
   prepared, and the binlog's recovery commits it), so one fsync here replaces
   one per commit, as InnoDB does. Answered at once. */
void rust_bt_commit_checkpoint_request(void *cookie)
{
  rust::String e;
  int rc= ha_rust_ffi::log_flush(e);
  report(rc, e);
  if (!rc)
    commit_checkpoint_notify_ha(cookie);
}

int rust_bt_rollback(handlerton *, THD *thd, bool all)
{
  Rust_trx *t= get_trx(thd, false);
  if (!t)
    return 0;
  rust::String e;
  int rc;
  if (all || !thd_test_options(thd, OPTION_NOT_AUTOCOMMIT | OPTION_BEGIN))
  {
    t->binlog_2pc= false;
    rc= ha_rust_ffi::trx_rollback(*t->h, e);
  }
  else
  {
    rc= ha_rust_ffi::trx_stmt_rollback(*t->h, e);   /* a failed statement */
    ha_rust_ffi::trx_stmt_begin(*t->h);              /* the next one's mark */
  }
  report(rc, e);
  return rc;
}

int rust_bt_savepoint_set(handlerton *, THD *thd, void *sv)
{
  *static_cast<uint64_t *>(sv)= ha_rust_ffi::trx_savepoint(*get_trx(thd, true)->h);
  return 0;
}

int rust_bt_savepoint_rollback(handlerton *, THD *thd, void *sv)
{
  rust::String e;
  int rc= ha_rust_ffi::trx_rollback_to(*get_trx(thd, true)->h,
                                       *static_cast<uint64_t *>(sv), e);
  report(rc, e);
  return rc;
}

int rust_bt_savepoint_release(handlerton *, THD *, void *)
{
  return 0;
}

/* ---- two-phase commit and XA ----
   An XID crosses to Rust as bytes: i64 formatID, u32 gtrid_length, u32
   bqual_length, then the data; Rust keeps it opaque. */

static ha_rust_ffi::Xid xid_of(const XID *x)
{
  ha_rust_ffi::Xid r;
  r.format_id= (int64_t) x->formatID;
  r.gtrid_length= (uint32_t) x->gtrid_length;
  r.bqual_length= (uint32_t) x->bqual_length;
  size_t n= (size_t) (x->gtrid_length + x->bqual_length);
  r.data.reserve(n);
  for (size_t i= 0; i < n; i++)
    r.data.push_back((uint8_t) x->data[i]);
  return r;
}

/* Rust checked the lengths (at most 64 each, adding up to the data's). */
static void set_xid(const ha_rust_ffi::Xid &r, XID *x)
{
  x->formatID= (long) r.format_id;
  x->gtrid_length= (long) r.gtrid_length;
  x->bqual_length= (long) r.bqual_length;
  memcpy(x->data, r.data.data(), r.data.size());
}

/* Prepares the connection's transaction (XA PREPARE, or the binlog's two-phase
   commit): durable, and kept by recovery until committed or rolled back by XID. */
int rust_bt_prepare(handlerton *, THD *thd, bool all)
{
  Rust_trx *t= get_trx(thd, false);
  if (!t)
    return 0;
  if (all || !thd_test_options(thd, OPTION_NOT_AUTOCOMMIT | OPTION_BEGIN))
  {
    XID xid;
    thd_get_xid(thd, (MYSQL_XID *) &xid);
    rust::String e;
    int rc= ha_rust_ffi::trx_prepare(*t->h, xid_of(&xid), e);
    /* the binlog's two-phase commit (an XA PREPARE's transaction is ended by
       XA COMMIT, durably: the binlog does not keep its XID for recovery) */
    t->binlog_2pc= !rc && opt_bin_log &&
                   !thd->transaction->xid_state.is_explicit_XA();
    report(rc, e);
    return rc;
  }
  return stmt_end(t);
}

/* The prepared transactions no connection holds (found by recovery, or left by
   a connection that ended). The server calls this until it gets fewer than len
   XIDs, and makes more than one such pass at start-up: Rust returns those not
   given in this pass yet, and is told which were handed over (only those: the
   rest come with the next call) and when the pass ends. */
int rust_bt_recover(handlerton *, XID *xid_list, uint len)
{
  rust::Vec<ha_rust_ffi::Xid> all= ha_rust_ffi::xa_prepared();
  uint n= 0;
  for (; n < len && n < all.size(); n++)
    set_xid(all[n], &xid_list[n]);
  ha_rust_ffi::xa_given(rust::Slice<const ha_rust_ffi::Xid>(all.data(), n),
                        n < len);
  return (int) n;
}

/* X/Open XA return codes (xa.h; InnoDB's trx0xa.h has the same) */
enum { RUST_XA_OK= 0, RUST_XAER_RMERR= -3, RUST_XAER_NOTA= -4 };

static int xa_end(XID *xid, bool commit)
{
  rust::String e;
  int rc= ha_rust_ffi::xa_end(xid_of(xid), commit, e);
  if (rc == (int) ha_rust_ffi::Answer::NoSuchXid)
    return RUST_XAER_NOTA;
  if (rc)
  {
    report(rc, e);
    return RUST_XAER_RMERR;
  }
  return RUST_XA_OK;
}

int rust_bt_commit_by_xid(handlerton *, XID *xid)
{
  return xa_end(xid, true);
}

int rust_bt_rollback_by_xid(handlerton *, XID *xid)
{
  return xa_end(xid, false);
}

int rust_bt_close_connection(handlerton *, THD *thd)
{
  Rust_trx *t= get_trx(thd, false);
  if (t)
  {
    rust::String e;
    /* a prepared XA transaction outlives its connection (XA COMMIT/ROLLBACK
       by XID from another one); anything else is rolled back */
    if (!ha_rust_ffi::trx_detach_prepared(*t->h))
      ha_rust_ffi::trx_rollback(*t->h, e);
    /* out of the slot (under LOCK_thd_data) before it is freed: see KILL */
    thd_set_ha_data(thd, rust_hton_btree, NULL);
    delete t;
  }
  return 0;
}

/* Marks where the statement's rollback goes back to, once per statement: a
   trigger's or stored function's statements run inside it (the server calls
   start_stmt for their tables, each under a query id of its own) and must
   not move the mark past what the outer statement already changed. */
static void bt_stmt_begin(THD *thd, Rust_trx *t)
{
  if (thd->in_sub_stmt || t->stmt_query_id == thd->query_id)
    return;
  t->stmt_query_id= thd->query_id;
  ha_rust_ffi::trx_stmt_begin(*t->h);
  /* NOWAIT / WAIT n set the session's lock_wait_timeout for the statement */
  ha_rust_ffi::trx_statement_settings(*t->h, {thd->variables.lock_wait_timeout,
                                              rust_thd_snapshot_isolation(thd)});
}

/* start_stmt: a statement under LOCK TABLES, or a trigger's sub-statement */
void ha_rust::bt_start_stmt(THD *thd)
{
  autoinc_rows_left= 0;
  bt_stmt_begin(thd, get_trx(thd, true));
  trans_register_ha(thd, false, rust_hton_btree, 0);
  if (thd_test_options(thd, OPTION_NOT_AUTOCOMMIT | OPTION_BEGIN))
    trans_register_ha(thd, true, rust_hton_btree, 0);
}

static ha_rust_ffi::Isolation tx_isolation(THD *thd)
{
  using ha_rust_ffi::Isolation;
  switch (thd_tx_isolation(thd)) {
  case ISO_READ_UNCOMMITTED: return Isolation::ReadUncommitted;
  case ISO_READ_COMMITTED: return Isolation::ReadCommitted;
  case ISO_REPEATABLE_READ: return Isolation::RepeatableRead;
  default: return Isolation::Serializable;
  }
}

/* START TRANSACTION WITH CONSISTENT SNAPSHOT: the read view now, at
   REPEATABLE READ (InnoDB makes none at the other levels). */
int rust_bt_start_consistent_snapshot(handlerton *, THD *thd)
{
  Rust_trx *t= get_trx(thd, true);
  trans_register_ha(thd, true, rust_hton_btree, 0);
  ha_rust_ffi::trx_consistent_snapshot(*t->h, tx_isolation(thd));
  return 0;
}

int ha_rust::bt_external_lock(THD *thd, int lock_type)
{
  Rust_trx *t= get_trx(thd, true);
  if (lock_type == F_UNLCK)
  {
    plain_read= whole_read= false; /* store_lock says them again for the next one */
    /* the statement's last table: Rust decides what the isolation level
       lets go now (TrxHandle::stmt_end) */
    if (t->tables_in_use && --t->tables_in_use == 0 && !thd->in_sub_stmt &&
        !thd_in_lock_tables(thd))
      ha_rust_ffi::trx_stmt_end(*t->h, tx_isolation(thd));
    return 0;
  }
  autoinc_rows_left= 0;          /* a statement begins (bt_get_auto_increment) */
  if (t->tables_in_use++ == 0)
  {
    bt_stmt_begin(thd, t);
    trans_register_ha(thd, false, rust_hton_btree, 0);
    if (thd_test_options(thd, OPTION_NOT_AUTOCOMMIT | OPTION_BEGIN))
      trans_register_ha(thd, true, rust_hton_btree, 0);
  }
  /* A statement that writes the table (INSERT/UPDATE/DELETE, SELECT ... FOR
     UPDATE) takes its exclusive table lock now, before it reads: taken shared
     first and upgraded later, two such transactions would each wait for the
     other's shared lock until the lock wait timeout. Under LOCK TABLES the
     server's own table locks already keep writers apart. SKIP LOCKED (seen in
     store_lock) never waits: see BtreeTable::begin_statement. */
  /* A plain read takes no lock: it reads from a read view (the transaction's at
     REPEATABLE READ, the statement's at READ COMMITTED), except under LOCK
     TABLES and at SERIALIZABLE inside a transaction, where InnoDB makes it a
     locking read too. */
  ha_rust_ffi::Isolation iso= tx_isolation(thd);
  bool in_trx= thd_test_options(thd, OPTION_NOT_AUTOCOMMIT | OPTION_BEGIN);
  /* Row locks (IX/IS on the table), except under LOCK TABLES and for a read
     the server keeps stable for a copy (TL_READ_NO_INSERT), which lock the
     table whole as before. */
  ha_rust_ffi::StatementLock stmt_lock{lock_type == F_WRLCK && !thd_in_lock_tables(thd),
                                       low_priority, skip_locked,
                                       plain_read && !thd_in_lock_tables(thd) &&
                                       !(iso == ha_rust_ffi::Isolation::Serializable && in_trx),
                                       iso,
                                       thd_in_lock_tables(thd) || (whole_read && lock_type != F_WRLCK)};
  if (int rc= rust_rc((*tbl)->bt_begin_statement(*t->h, stmt_lock)))
  {
    t->tables_in_use--;     /* the server does not unlock a table that failed */
    return rc;
  }
  return 0;
}

int ha_rust::start_stmt(THD *thd, thr_lock_type lock_type)
{
  if (layout() != LAYOUT_BTREE)
    return 0;
  bt_start_stmt(thd);
  return 0;
}

int ha_rust::external_lock(THD *thd, int lock_type)
{
  if (layout() == LAYOUT_BTREE)
    return bt_external_lock(thd, lock_type);
  if (lock_type == F_UNLCK && tbl)
  {
    /* the server ignores this result: never lose a failure silently */
    int rc= rust_rc((*tbl)->flush());
    if (rc)
    {
      sql_print_error("RUST: changes to %s.%s were not written: %s",
                      table->s->db.str, table->s->table_name.str,
                      err_msg.c_str());
      push_warning(thd, Sql_condition::WARN_LEVEL_WARN, ER_UNKNOWN_ERROR,
                   err_msg.c_str());
      (*tbl)->discard();
    }
    log_rust_warnings();
    return rc;
  }
  return 0;
}

/* Whether a read of the table is a consistent read (from a read view, no
   lock) rather than a locking one (the table's shared lock), by InnoDB's rule
   (ha_innobase::store_lock): a plain SELECT reads consistently; the reads of
   every other statement lock (INSERT ... SELECT, UPDATE with a subquery: the
   rows a write is computed from must stay as read), except at READ COMMITTED
   and below for the source of INSERT/REPLACE ... SELECT, UPDATE and CREATE
   ... SELECT, and except CHECKSUM TABLE and ANALYZE. FOR SHARE, SKIP LOCKED
   and LOCK TABLES always lock; external_lock adds SERIALIZABLE's rule. */
static bool consistent_read_of(THD *thd, thr_lock_type lock_type)
{
  if ((lock_type != TL_READ && lock_type != TL_READ_HIGH_PRIORITY &&
       lock_type != TL_READ_NO_INSERT) || thd_in_lock_tables(thd))
    return false;
  enum_sql_command cmd= (enum_sql_command) thd_sql_command(thd);
  if (cmd == SQLCOM_CHECKSUM || cmd == SQLCOM_CREATE_SEQUENCE ||
      (cmd == SQLCOM_ANALYZE && lock_type == TL_READ))
    return true;
  if (thd_tx_isolation(thd) <= ISO_READ_COMMITTED &&
      lock_type != TL_READ_HIGH_PRIORITY &&
      (cmd == SQLCOM_INSERT_SELECT || cmd == SQLCOM_REPLACE_SELECT ||
       cmd == SQLCOM_UPDATE || cmd == SQLCOM_CREATE_TABLE))
    return true;
  return cmd == SQLCOM_SELECT && lock_type != TL_READ_NO_INSERT;
}

THR_LOCK_DATA **ha_rust::store_lock(THD *thd, THR_LOCK_DATA **to,
                                    enum thr_lock_type lock_type)
{
  if (lock_type != TL_IGNORE)
  {
    skip_locked= lock_type == TL_READ_SKIP_LOCKED ||
                 lock_type == TL_WRITE_SKIP_LOCKED;
    /* DELETE/UPDATE LOW_PRIORITY, or low_priority_updates (the server's own
       choice of TL_WRITE_LOW_PRIORITY): BTREE's table lock lets new readers
       go first (the THR_LOCK below is made shared, so this is where the
       keyword is kept) */
    low_priority= lock_type == TL_WRITE_LOW_PRIORITY;
    plain_read= consistent_read_of(thd, lock_type);
    whole_read= lock_type == TL_READ_NO_INSERT;
  }
  if (lock_type != TL_IGNORE && lock.type == TL_UNLOCK)
  {
    /* BTREE isolates transactions with its own table locks (held to the end
       of the transaction), so the server's statement locks may be shared */
    if (layout() == LAYOUT_BTREE && !thd_in_lock_tables(thd))
    {
      if (lock_type >= TL_WRITE_CONCURRENT_INSERT && lock_type <= TL_WRITE)
        lock_type= TL_WRITE_ALLOW_WRITE;
      else if (lock_type == TL_READ_NO_INSERT || lock_type == TL_READ_SKIP_LOCKED)
        lock_type= TL_READ;
    }
    /* CSV and ARCHIVE let INSERTs run beside statements' scans (each scan reads
       what was published when it started), but LOCK TABLES ... READ LOCAL must
       give a stable table until UNLOCK TABLES (mysqldump relies on it), which
       those layouts do not snapshot: there, inserts wait. */
    else if (layout() != LAYOUT_BTREE && lock_type == TL_READ &&
             thd_in_lock_tables(thd))
      lock_type= TL_READ_NO_INSERT;
    lock.type= lock_type;
  }
  *to++= &lock;
  return to;
}
