//! A server connection's transaction in the engine ([`TrxHandle`]): the engine
//! transaction, the table locks it holds, its statement savepoint, its XID once
//! prepared. Uses the engine ([`crate::btree::engine`]) and the locks
//! ([`crate::btree::lock`]).

use super::*;

/// A server connection's transaction in the engine.
pub struct TrxHandle {
    pub trx: Option<Trx>,
    /// The table locks it holds, and in which modes ([`mode`] bits: a lock
    /// held as strongly as asked is not asked for again, so statements of one
    /// table do not meet in its lock's mutex at every seek).
    pub(super) locks: Vec<(Arc<TableLock>, u8)>,
    /// The tables whose row locks it may hold (freed at its end).
    pub(super) row_locks: Vec<Arc<RowLocks>>,
    pub(super) stmt_savepoint: usize,
    /// The XID it was prepared under (XA PREPARE, or the binlog's two-phase commit).
    pub(super) xid: Option<Vec<u8>>,
    /// Stops its lock waits (KILL); shared with the server's kill callback.
    pub(super) interrupt: Arc<Interrupt>,
    /// The server session it belongs to, for the probe (0: none).
    pub(super) session: usize,
    /// The current statement's longest lock wait in seconds (the session's
    /// `lock_wait_timeout`: 0 under NOWAIT), if the server said.
    pub(super) wait_timeout: Option<u64>,
    /// Its read view (REPEATABLE READ: from its first consistent read to its
    /// end; READ COMMITTED: the statement's).
    pub(super) view: Option<Arc<ReadView>>,
    /// The view is the statement's (dropped at its end).
    pub(super) view_per_statement: bool,
    /// First-updater-wins for the current statement (the session's
    /// `rust_snapshot_isolation`): see [`Self::first_updater_view`].
    pub(super) snapshot_isolation: bool,
    /// What it delete-marked, for purge once it has committed.
    pub(super) purge: Vec<purge::Item>,
    /// Found prepared by recovery: its changes' old versions are not kept
    /// (see [`super::xa::held_by_recovered`]).
    pub(super) recovered: bool,
}

impl TrxHandle {
    pub fn new() -> TrxHandle {
        TrxHandle {
            trx: None,
            locks: Vec::new(),
            row_locks: Vec::new(),
            stmt_savepoint: 0,
            xid: None,
            interrupt: Arc::default(),
            session: 0,
            wait_timeout: None,
            view: None,
            view_per_statement: false,
            snapshot_isolation: false,
            purge: Vec::new(),
            recovered: false,
        }
    }

    /// The read view of a consistent read (`per_statement`: READ COMMITTED's,
    /// made anew for each statement; else the transaction's, kept to its end).
    pub(super) fn view(&mut self, e: &Engine, per_statement: bool) -> Arc<ReadView> {
        if let Some(v) = &self.view {
            return v.clone();
        }
        let id = self.trx(e).id;
        let v = Arc::new(e.read_view(id));
        self.view = Some(v.clone());
        self.view_per_statement = per_statement;
        v
    }

    /// Lets go of the read view (its transaction or statement ended): purge
    /// may then drop what only it needed, even while a table handle still
    /// holds it until its next statement.
    fn drop_view(&mut self) {
        if let Some(v) = self.view.take() {
            v.close();
        }
    }

    /// START TRANSACTION WITH CONSISTENT SNAPSHOT: the transaction's read view
    /// now (at REPEATABLE READ; InnoDB ignores it at the other levels).
    pub fn consistent_snapshot(&mut self, e: &Engine) {
        self.view(e, false);
    }

    /// The server session this handle belongs to (an opaque token for the probe).
    pub fn set_session(&mut self, session: usize) {
        self.session = session;
    }

    /// The current statement's longest lock wait (see [`Self::wait_timeout`]).
    pub fn set_lock_wait_timeout(&mut self, secs: u64) {
        self.wait_timeout = Some(secs);
    }

    /// Whether the current statement refuses to lock or change a record
    /// its transaction's read view does not see the last change of (the
    /// session's `rust_snapshot_isolation`; see [`Self::first_updater_view`]).
    pub fn set_snapshot_isolation(&mut self, on: bool) {
        self.snapshot_isolation = on;
    }

    /// The view first-updater-wins checks records against: the
    /// transaction's own (REPEATABLE READ, from its first consistent read
    /// or START TRANSACTION WITH CONSISTENT SNAPSHOT), when the statement
    /// asks for the check. None before the transaction has a view (a
    /// transaction whose first statement writes has seen nothing it could
    /// overwrite unseen), and at READ COMMITTED and below (a statement's
    /// view is no promise about the next one), as InnoDB.
    pub(super) fn first_updater_view(&self) -> Option<&Arc<ReadView>> {
        if self.snapshot_isolation && !self.view_per_statement { self.view.as_ref() } else { None }
    }

    /// What the server's kill callback raises to stop this handle's lock waits.
    pub fn interrupt(&self) -> Arc<Interrupt> {
        self.interrupt.clone()
    }

    /// Prepares the transaction under `xid` (durable as commits are).
    pub fn prepare(&mut self, e: &Engine, xid: &[u8]) -> Result<()> {
        if let Some(t) = &mut self.trx {
            if !t.is_empty() {
                e.prepare(t, xid)?;
                self.xid = Some(xid.to_vec());
            }
        }
        Ok(())
    }

    /// The connection ends: a prepared transaction is kept (with its locks) for a
    /// later XA COMMIT or XA ROLLBACK by XID; returns whether it was.
    pub fn detach_prepared(&mut self) -> bool {
        let (Some(xid), Some(_)) = (self.xid.take(), self.trx.as_ref()) else { return false };
        let mut h = TrxHandle::new();
        h.trx = self.trx.take();
        h.locks = std::mem::take(&mut self.locks);
        h.row_locks = std::mem::take(&mut self.row_locks);
        h.purge = std::mem::take(&mut self.purge);
        self.drop_view();
        h.xid = Some(xid.clone());
        PREPARED.lock().insert(xid, h);
        true
    }

    pub(super) fn trx(&mut self, e: &Engine) -> &mut Trx {
        self.trx.get_or_insert_with(|| e.begin())
    }

    pub(super) fn lock(&mut self, e: &Engine, l: &Arc<TableLock>, want: impl Into<Request>) -> Result<()> {
        self.lock_with(e, l, want.into(), self.wait_timeout)
    }

    /// As [`Self::lock`], but never waits: `Error::LockWait` at once if
    /// another transaction holds what conflicts (SKIP LOCKED).
    pub(super) fn lock_nowait(&mut self, e: &Engine, l: &Arc<TableLock>, want: impl Into<Request>) -> Result<()> {
        self.lock_with(e, l, want.into(), Some(0))
    }

    fn lock_with(&mut self, e: &Engine, l: &Arc<TableLock>, want: Request, timeout: Option<u64>) -> Result<()> {
        let m = want.mode();
        let held = self.locks.iter().position(|(x, _)| Arc::ptr_eq(x, l));
        if self.trx.is_some() && held.is_some_and(|at| self.locks[at].1 & mode::covered_by(m) != 0) {
            return Ok(());
        }
        let t = self.trx(e);
        let id = t.id;
        // what rolling it back would undo, as InnoDB weighs a deadlock's victims
        let weight = (t.savepoint() + self.locks.len()) as u64;
        let stop = Stopper { interrupt: &self.interrupt, session: self.session, timeout };
        l.acquire(l, id, want, weight, Some(&stop))?;
        match held {
            Some(at) => self.locks[at].1 |= m,
            None => self.locks.push((l.clone(), m)),
        }
        Ok(())
    }

    /// The transaction may take row locks in `rows` (they are freed at its end).
    pub(super) fn track_rows(&mut self, rows: &Arc<RowLocks>) {
        if !self.row_locks.iter().any(|r| Arc::ptr_eq(r, rows)) {
            self.row_locks.push(rows.clone());
        }
    }

    /// Frees its row locks (its end).
    fn release_rows(&mut self, id: u64) {
        for r in self.row_locks.drain(..) {
            r.release_all(id);
        }
    }

    pub fn stmt_begin(&mut self) {
        self.stmt_savepoint = self.trx.as_ref().map_or(0, |t| t.savepoint());
    }

    pub fn stmt_rollback(&mut self, e: &Engine) -> Result<()> {
        let sp = self.stmt_savepoint;
        match self.trx.as_mut() {
            Some(t) => e.rollback_to(t, sp),
            None => Ok(()),
        }
    }

    pub fn savepoint(&self) -> u64 {
        self.trx.as_ref().map_or(0, |t| t.savepoint() as u64)
    }

    /// ROLLBACK TO SAVEPOINT: the statement mark moves there too (it must never
    /// lie above the undo log's end: a failed statement that marks nothing
    /// itself would then not be rolled back at all).
    pub fn rollback_to(&mut self, e: &Engine, sp: u64) -> Result<()> {
        let r = match self.trx.as_mut() {
            Some(t) => e.rollback_to(t, sp as usize),
            None => Ok(()),
        };
        self.stmt_begin();
        r
    }

    /// The statement ended. At READ COMMITTED and READ UNCOMMITTED
    /// (`release_reads`) the table locks it took only to read are let go now
    /// instead of at the transaction's end: each statement still reads only
    /// committed rows (a writer's exclusive lock is held to its end), which is
    /// what those levels promise (InnoDB gives them a read view per
    /// statement); a later statement may see what others committed since.
    /// Exclusive locks, and every lock at REPEATABLE READ and SERIALIZABLE,
    /// stay to the end of the transaction.
    pub fn stmt_end(&mut self, release_reads: bool) {
        if self.view_per_statement {
            self.drop_view();
        }
        let Some(id) = self.trx.as_ref().map(|t| t.id).filter(|_| release_reads) else { return };
        // (only a whole-table read lock: row locks, and the intention
        // locks under them, are held to the end, as InnoDB's)
        self.locks.retain(|(l, modes)| {
            let read_only = *modes == mode::S;
            if read_only {
                l.release(id);
            }
            !read_only
        });
    }

    pub(super) fn release_locks(&mut self) {
        self.drop_view();
        let id = self.trx.as_ref().map(|t| t.id);
        if let Some(id) = id {
            self.release_rows(id);
            for (l, _) in self.locks.drain(..) {
                l.release(id);
            }
        }
        self.locks.clear();
        self.row_locks.clear();
    }

    /// Commits; `durable: false` for a transaction prepared in the binlog's
    /// two-phase commit (see [`Engine::commit_with`]).
    pub fn commit(&mut self, e: &Engine, durable: bool) -> Result<()> {
        self.xid = None;
        self.drop_view();
        let r = match self.trx.take() {
            Some(t) => {
                let id = t.id;
                let r = e.commit_with(t, durable);
                self.release_rows(id);
                for (l, _) in self.locks.drain(..) {
                    l.release(id);
                }
                purge::enqueue(e, id, std::mem::take(&mut self.purge));
                r
            }
            None => Ok(()),
        };
        self.stmt_savepoint = 0;
        r
    }

    pub fn rollback(&mut self, e: &Engine) -> Result<()> {
        self.xid = None;
        self.drop_view();
        // its delete marks are taken back
        self.purge.clear();
        let r = match self.trx.take() {
            Some(t) => {
                let id = t.id;
                let r = e.rollback(t);
                self.release_rows(id);
                for (l, _) in self.locks.drain(..) {
                    l.release(id);
                }
                r
            }
            None => Ok(()),
        };
        self.stmt_savepoint = 0;
        r
    }
}

impl Default for TrxHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TrxHandle {
    fn drop(&mut self) {
        self.release_locks();
    }
}
