//! Transactions: [`Trx`] and its shared state, begin, the logged writes, commit,
//! prepare (two-phase commit, XA) and rollback (to a savepoint or whole). Uses the
//! undo log ([`super::undo`]), the redo log and the trees.

use super::*;

/// A prepared transaction found by recovery.
pub struct RecoveredPrepared {
    pub xid: Vec<u8>,
    pub trx: Trx,
    /// The tree files it changed (their tables' locks are taken again for it).
    pub trees: Vec<PathBuf>,
}

/// A transaction. Its state is shared with the engine's list of active
/// transactions, so that a checkpoint can carry its undo entries forward in the
/// log (see [`Shared::carry_undo`]).
pub struct Trx {
    pub id: u64,
    pub(super) sh: Arc<TrxShared>,
}

/// What the engine knows of an active transaction.
pub(super) struct TrxShared {
    /// The LSN of the oldest log record recovery needs of it: its first MTR record,
    /// or its last UNDO_CARRY record; `u64::MAX` before it has written anything.
    /// Checkpoints keep the log from the oldest of these on.
    pub(super) first_lsn: AtomicU64,
    /// Locked by the transaction's own calls for the whole of each (a write with
    /// its log record, a rollback from its first undo entry to its last record),
    /// and by a checkpoint that carries its undo: never both at once.
    pub(super) st: Mutex<TrxState>,
    /// When it began (SHOW ENGINE RUST STATUS, INFORMATION_SCHEMA.RUST_TRX).
    pub(super) started: std::time::Instant,
    /// It has changed something (or kept an old version): only such a
    /// transaction holds the purge horizon back while it is active.
    pub(super) wrote: std::sync::atomic::AtomicBool,
}


#[derive(Default)]
pub(super) struct TrxState {
    /// Undo entries, newest last.
    pub(super) undo: UndoLog,
    /// Where a write's undo entry is made before [`TrxState::push`] keeps it.
    pub(super) scratch: Vec<u8>,
    /// The XID, once prepared (a prepare record is logged): its rollback is
    /// logged as begun before it changes anything, and its end is made durable.
    pub(super) xid: Option<Vec<u8>>,
    /// Committed or rolled back: nothing left to carry.
    pub(super) ended: bool,
    /// It has logged a change (an MTR record with an undo entry), even if a
    /// rollback to a savepoint took every change back since: its end must then
    /// be logged (COMMIT or ROLLBACK_DONE), or recovery, which finds its
    /// records without an end, applies their undo entries again, over what
    /// later transactions committed on the same keys.
    pub(super) logged: bool,
}

impl TrxState {
    /// Keeps the undo entry in `scratch` as the newest, for tree `t`.
    pub(super) fn push(&mut self, t: &Tree) {
        self.undo.push(t, &self.scratch);
        self.logged = true;
    }
}

impl Trx {
    pub(super) fn new(id: u64, first_lsn: u64, st: TrxState) -> Trx {
        Trx {
            id,
            sh: Arc::new(TrxShared {
                first_lsn: AtomicU64::new(first_lsn),
                st: Mutex::new(st),
                started: std::time::Instant::now(),
                wrote: Default::default(),
            }),
        }
    }
    /// A savepoint: roll back to it with [`Engine::rollback_to`].
    pub fn savepoint(&self) -> usize {
        self.sh.st.lock().undo.len()
    }
    pub fn is_empty(&self) -> bool {
        self.sh.st.lock().undo.is_empty()
    }
    /// Whether it changed tree `t` (has an undo entry for it).
    pub fn changed(&self, t: &Tree) -> bool {
        self.sh.st.lock().undo.uses(t)
    }
    /// What tells how much rolling it back would undo, later (a deadlock's
    /// victim is the lightest transaction of the cycle).
    pub fn weight(&self) -> TrxWeight {
        TrxWeight(Arc::downgrade(&self.sh))
    }
}

/// See [`Trx::weight`]. (It does not keep an ended transaction's state
/// alive: 0 then.)
pub struct TrxWeight(std::sync::Weak<TrxShared>);

impl TrxWeight {
    /// Its undo entries now.
    pub fn get(&self) -> u64 {
        self.0.upgrade().map_or(0, |sh| sh.st.lock().undo.len() as u64)
    }
}

/// A COMMIT (or PREPARE) whose redo record cannot be written or synced: it must not
/// be acknowledged, and it cannot be taken back either (its changes are already in
/// the pages others read, and its COMMIT record may or may not have reached the
/// disk). As InnoDB does when its log cannot be written, the server is stopped
/// (abort): the client sees the connection lost, as for a crash with the COMMIT in
/// flight, and recovery at the restart keeps every commit acknowledged before and
/// this one whole or not at all (docs/crash-safety.md, Failing I/O). Not a panic:
/// nothing unwinds into the server.
fn log_failed_at_commit(e: &Error) -> ! {
    eprintln!(
        "[ERROR] RUST: a commit cannot be made durable: {e}. Stopping the server so that it is not \
         acknowledged (as InnoDB does when its log cannot be written); restart it once the disk is \
         writable: recovery keeps every commit acknowledged before"
    );
    std::process::abort()
}

/// See [`Engine::undo_to`]. Not a panic: nothing unwinds into the server. (Unit
/// tests get the error back: their simulated crashes fail every write.)
fn rollback_failed(e: Error) -> Result<()> {
    if cfg!(test) {
        return Err(e);
    }
    eprintln!(
        "[ERROR] RUST: a rollback cannot be completed: {e}. Stopping the server so that the \
         transaction neither commits half rolled back nor lets go of rows it still holds; at the \
         restart, recovery finishes the rollback from the redo log"
    );
    std::process::abort()
}

impl Engine {
    pub fn begin(&self) -> Trx {
        // the id is given and listed as active under one mutex (read views)
        let mut active = self.sh.active.lock();
        let id = self.sh.next_trx.fetch_add(1, Ordering::Relaxed);
        let t = Trx::new(id, u64::MAX, TrxState::default());
        active.insert(id, t.sh.clone());
        t
    }

    pub fn insert(&self, trx: &mut Trx, t: &Tree, key: &[u8], val: &[u8]) -> Result<bool> {
        let mut st = self.writing(trx);
        let done = t.write().insert_tx(trx.id, key, val, &mut st.scratch)?;
        if done {
            st.push(t);
        }
        Ok(done)
    }

    /// As [`Self::insert`], with `check` run first and `after` (once the key
    /// went in) under the same hold of the tree's latch (the row lock
    /// layer's insert-intention and duplicate checks, which must see the tree
    /// as the insert finds it, and its lock moves, which must be made before
    /// anyone sees the new key): `Err(a)` if `check` says so (nothing is
    /// changed then), else whether the key went in.
    pub fn insert_checked<A>(
        &self,
        trx: &mut Trx,
        t: &Tree,
        key: &[u8],
        val: &[u8],
        check: impl FnOnce(&mut BTree) -> Result<Option<A>>,
        after: impl FnOnce(),
    ) -> Result<std::result::Result<bool, A>> {
        let mut st = self.writing(trx);
        let mut g = t.write();
        if let Some(a) = check(&mut g)? {
            return Ok(Err(a));
        }
        let done = g.insert_tx(trx.id, key, val, &mut st.scratch)?;
        if done {
            after();
        }
        drop(g);
        if done {
            st.push(t);
        }
        Ok(Ok(done))
    }

    pub fn delete(&self, trx: &mut Trx, t: &Tree, key: &[u8]) -> Result<bool> {
        let mut st = self.writing(trx);
        let done = t.write().delete_tx(trx.id, key, &mut st.scratch)?;
        if done {
            st.push(t);
        }
        Ok(done)
    }

    pub fn update(&self, trx: &mut Trx, t: &Tree, key: &[u8], val: &[u8]) -> Result<bool> {
        let mut st = self.writing(trx);
        let done = t.write().update_tx(trx.id, key, val, &mut st.scratch)?;
        if done {
            st.push(t);
        }
        Ok(done)
    }

    /// The transaction's state, locked for a write; before its first record, the
    /// log is kept from the current end on for it (its record comes after).
    pub(super) fn writing<'a>(&self, trx: &'a Trx) -> parking_lot::MutexGuard<'a, TrxState> {
        let st = trx.sh.st.lock();
        trx.sh.wrote.store(true, Ordering::SeqCst);
        if trx.sh.first_lsn.load(Ordering::Acquire) == u64::MAX {
            trx.sh.first_lsn.store(self.sh.log.end_lsn(), Ordering::Release);
        }
        st
    }

    /// Commits: a commit record, made durable as the flush policy says (group
    /// commit: concurrent committers share one fsync).
    pub fn commit(&self, trx: Trx) -> Result<()> {
        self.commit_with(trx, true)
    }

    /// Commits; `durable: false` only appends the commit record, for a
    /// transaction prepared in the binlog's two-phase commit: the binlog holds its
    /// XID, and until [`Engine::flush_log`] has made the record durable (the
    /// server asks at each binlog rotation, `commit_checkpoint_request`), a crash
    /// brings it back prepared and the binlog's recovery commits it.
    pub fn commit_with(&self, trx: Trx, durable: bool) -> Result<()> {
        crate::metrics::TRX_COMMITS.inc();
        let mut st = trx.sh.st.lock();
        st.ended = true;
        let lsn = st.logged.then(|| self.sh.log.append(REC_COMMIT, trx.id, &[]));
        drop(st);
        // only now: a checkpoint that no longer sees it keeps its COMMIT record
        // or needs none of its records
        self.sh.active.lock().remove(&trx.id);
        let Some(lsn) = lsn else { return Ok(()) };
        if !durable {
            return self.maybe_checkpoint();
        }
        let made = match self.policy.load(Ordering::Relaxed) {
            1 => self.sh.log.flush_to(lsn + 1),
            p => (|| {
                if p == 2 {
                    self.sh.log.write()?;
                }
                let mut last = self.last_sync.lock();
                if last.elapsed().as_millis() >= 1000 {
                    *last = Instant::now();
                    drop(last);
                    self.sh.log.flush_to(lsn + 1)?;
                }
                Ok(())
            })(),
        };
        if let Err(e) = made {
            log_failed_at_commit(&e);
        }
        self.maybe_checkpoint()
    }

    /// Prepares (two-phase commit, XA PREPARE): a prepare record carrying the XID,
    /// made durable as the flush policy says for commits. Recovery then keeps the
    /// transaction (see [`RecoveredPrepared`]) instead of rolling it back.
    pub fn prepare(&self, trx: &mut Trx, xid: &[u8]) -> Result<()> {
        let mut st = trx.sh.st.lock();
        if st.undo.is_empty() {
            return Ok(()); // nothing to keep: a read-only transaction
        }
        let mut payload = Vec::new();
        self.sh.xid_and_trees(&st, xid, &mut payload);
        let lsn = self.sh.log.append(REC_PREPARE, trx.id, &payload);
        st.xid = Some(xid.to_vec());
        drop(st);
        self.durable_as_prepare(lsn)
    }

    /// Makes the log durable up to the record at `lsn` as the flush policy says
    /// for a prepare (and for the end of a prepared transaction's rollback).
    pub(super) fn durable_as_prepare(&self, lsn: u64) -> Result<()> {
        let made = match self.policy.load(Ordering::Relaxed) {
            1 => self.sh.log.flush_to(lsn + 1),
            2 => self.sh.log.write().map(|_| ()),
            _ => Ok(()),
        };
        if let Err(e) = made {
            log_failed_at_commit(&e);
        }
        Ok(())
    }

    /// Rolls back to a savepoint (0: the whole transaction, which stays open).
    pub fn rollback_to(&self, trx: &mut Trx, savepoint: usize) -> Result<()> {
        Self::undo_to(&mut trx.sh.st.lock(), trx.id, savepoint)
    }

    /// Applies the undo entries above `savepoint`, newest first. One that cannot
    /// be applied (an I/O error, a damaged page) stops the server: the
    /// transaction would otherwise go on half rolled back (a statement's rollback,
    /// then a COMMIT of what is left of it) or end with its table locks released
    /// and rows others may then change, which recovery would later overwrite with
    /// its remaining undo. Recovery at the restart finishes the rollback from
    /// the log (as InnoDB stops when it cannot apply undo).
    pub(super) fn undo_to(st: &mut TrxState, id: u64, savepoint: usize) -> Result<()> {
        while st.undo.len() > savepoint {
            let (t, u) = st.undo.last().unwrap();
            if let Err(e) = t.write().apply_undo(id, u) {
                return rollback_failed(e);
            }
            st.undo.drop_last();
        }
        Ok(())
    }

    pub fn rollback(&self, trx: Trx) -> Result<()> {
        crate::metrics::TRX_ROLLBACKS.inc();
        let mut st = trx.sh.st.lock();
        let had = st.logged;
        self.sh.rollback_begins(&st, trx.id);
        Self::undo_to(&mut st, trx.id, 0)?;
        st.ended = true;
        let lsn = had.then(|| self.sh.log.append(REC_ROLLBACK_DONE, trx.id, &[]));
        let prepared = st.xid.is_some();
        drop(st);
        self.sh.active.lock().remove(&trx.id);
        if let (Some(lsn), true) = (lsn, prepared) {
            // XA ROLLBACK has ended it: a crash must not bring it back
            // prepared (a later XA COMMIT would commit what was rolled back)
            self.durable_as_prepare(lsn)?;
        }
        Ok(())
    }

    /// See [`Shared::rollback_begins`] (tests: a crash in the middle of it).
    #[cfg(test)]
    pub(super) fn rollback_begins(&self, trx: &Trx) {
        self.sh.rollback_begins(&trx.sh.st.lock(), trx.id)
    }
}

impl Shared {
    /// The rollback of a prepared transaction is logged as begun before it
    /// changes anything: recovery then finishes it instead of keeping a partly
    /// rolled-back transaction prepared. (Its changes reach the tree files only
    /// after the log is durable past them, so past this record too.)
    pub(super) fn rollback_begins(&self, st: &TrxState, id: u64) {
        if st.xid.is_some() && !st.undo.is_empty() {
            self.log.append(REC_ROLLBACK_START, id, &[]);
        }
    }

    /// `u32 XID length, XID, u32 trees`, then per tree `u32 id, u16 path length,
    /// path`: the ids the transaction's records use, so that recovery finds its
    /// trees even after restarts have given the ids to others (PREPARE's
    /// payload). Returns the id of each undo entry's tree (`None`: a tree no
    /// longer open, whose file was dropped).
    pub(super) fn xid_and_trees(&self, st: &TrxState, xid: &[u8], b: &mut Vec<u8>) -> Vec<Option<u32>> {
        let mut used: HashMap<*const Latch<BTree>, Option<u32>> = HashMap::new();
        for (t, _) in st.undo.iter() {
            used.insert(Arc::as_ptr(t), None);
        }
        let mut ids: Vec<(u32, PathBuf)> = Vec::new();
        for (p, (id, t)) in self.trees.lock().iter() {
            if let Some(slot) = t.as_ref().and_then(|t| used.get_mut(&Arc::as_ptr(t))) {
                *slot = Some(*id);
                ids.push((*id, p.clone()));
            }
        }
        b.extend_from_slice(&(xid.len() as u32).to_le_bytes());
        b.extend_from_slice(xid);
        write_trees(b, &ids.iter().map(|(id, p)| (*id, p.as_path())).collect::<Vec<_>>());
        st.undo.iter().map(|(t, _)| used[&Arc::as_ptr(t)]).collect()
    }
}
