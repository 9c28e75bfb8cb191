//! A BTREE table: a clustered tree on the primary key (or a hidden row id) holding
//! the rows, and one tree per secondary index holding `secondary key + primary
//! key`. Isolation comes from table locks held to the end of the transaction
//! (shared to read, exclusive to write): serializable, with lock waits that time
//! out (`rust_lock_wait_timeout`). Keys arrive memcomparable from C++.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::engine::{Closer, Engine, Tree, Trx};
use super::page::{Kind, NONE};
use super::tree::{self, BTree, Cursor, ROOT, Reader, StoredStats};
use crate::csv::table::with_ext;
use crate::error::{Error, Result};

/// Bytes in front of a clustered record's row image: the transaction id (6) and
/// the undo pointer (7), as InnoDB's records carry for MVCC (the pointer is 0
/// until read views exist).
pub const ROW_HEADER: usize = 13;

pub const HIDDEN_PK_LEN: usize = 8;

/// The file of index `i` (0: the clustered index).
pub fn index_path(table: &Path, i: usize) -> PathBuf {
    if i == 0 { with_ext(table, ".rbt") } else { with_ext(table, &format!("#i{i}.rbt")) }
}

/// A table lock, held by transactions until they end.
#[derive(Default)]
pub struct TableLock {
    m: Mutex<LockState>,
    cv: Condvar,
}

#[derive(Default)]
struct LockState {
    shared: HashMap<u64, ()>,
    exclusive: Option<u64>,
}

pub static LOCK_WAIT_TIMEOUT_SECS: AtomicU64 = AtomicU64::new(50);

static LOCKS: LazyLock<Mutex<HashMap<PathBuf, Weak<TableLock>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn table_lock(path: &Path) -> Arc<TableLock> {
    let mut m = LOCKS.lock();
    if let Some(l) = m.get(path).and_then(Weak::upgrade) {
        return l;
    }
    let l = Arc::new(TableLock::default());
    m.insert(path.to_path_buf(), Arc::downgrade(&l));
    l
}

/// Why a lock was not granted.
#[derive(Debug, PartialEq)]
pub enum LockDenied {
    /// `rust_lock_wait_timeout` ran out.
    Timeout,
    /// The waiting statement was killed (or its client went away).
    Interrupted,
}

impl From<LockDenied> for Error {
    fn from(d: LockDenied) -> Error {
        match d {
            LockDenied::Timeout => Error::LockWait,
            LockDenied::Interrupted => Error::Interrupted,
        }
    }
}

/// How a transaction waiting for a lock learns that its statement is to stop:
/// KILL, KILL QUERY, `max_statement_time`, a client that went away. The server's
/// kill callback raises it, which wakes the lock the transaction waits for; the
/// waiter then asks the session itself through the probe C++ installs (the
/// server's kill state is the authority: a raise left over from an earlier
/// statement does not stop this one). The waiter also asks every
/// [`PROBE_EVERY`], since nobody reports a client that went away.
#[derive(Default)]
pub struct Interrupt {
    raised: AtomicBool,
    waiting_on: Mutex<Option<Arc<TableLock>>>,
}

impl Interrupt {
    pub fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        if let Some(l) = self.waiting_on.lock().as_ref() {
            // under the lock's mutex: the waiter checks `raised` under it before
            // it sleeps, so the wake-up cannot fall between the two
            let _s = l.m.lock();
            l.cv.notify_all();
        }
    }
}

pub use crate::session::{Probe, StopCheck, session_stopped, set_probe};

/// How often a lock wait asks its session whether to stop, besides when raised.
pub const PROBE_EVERY: Duration = Duration::from_millis(100);

/// A lock request's way to be stopped: its transaction's interrupt and session.
struct Stopper<'a> {
    interrupt: &'a Interrupt,
    session: usize,
}

impl Stopper<'_> {
    fn should_stop(&self) -> bool {
        self.interrupt.raised.swap(false, Ordering::SeqCst);
        session_stopped(self.session)
    }
}

impl TableLock {
    /// Takes the lock for `trx` (shared or exclusive); waits up to the lock wait
    /// timeout for other transactions to end, unless `stop` says the statement
    /// is to stop. `me` is this lock's own Arc (for the interrupt to wake it).
    fn acquire(
        &self,
        me: &Arc<TableLock>,
        trx: u64,
        exclusive: bool,
        stop: Option<&Stopper>,
    ) -> std::result::Result<bool, LockDenied> {
        let deadline = Instant::now() + Duration::from_secs(LOCK_WAIT_TIMEOUT_SECS.load(Ordering::Relaxed));
        let mut registered = false;
        let mut s = self.m.lock();
        let result = loop {
            let others_shared = s.shared.keys().any(|&t| t != trx);
            let ok = match s.exclusive {
                Some(t) if t == trx => break Ok(false),
                Some(_) => false,
                None => !exclusive || !others_shared,
            };
            if ok {
                let new = !s.shared.contains_key(&trx);
                if exclusive {
                    s.exclusive = Some(trx);
                } else {
                    s.shared.insert(trx, ());
                }
                break Ok(new || exclusive);
            }
            let Some(stop) = stop else {
                if self.cv.wait_until(&mut s, deadline).timed_out() {
                    break Err(LockDenied::Timeout);
                }
                continue;
            };
            if !registered {
                // the interrupt's mutex before the lock's (as raise() takes them)
                registered = true;
                MutexGuard::unlocked(&mut s, || *stop.interrupt.waiting_on.lock() = Some(me.clone()));
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                break Err(LockDenied::Timeout);
            }
            if !stop.interrupt.raised.load(Ordering::SeqCst) {
                self.cv.wait_until(&mut s, deadline.min(now + PROBE_EVERY));
            }
            // the probe reads the server's session state: never under our mutex
            if MutexGuard::unlocked(&mut s, || stop.should_stop()) {
                break Err(LockDenied::Interrupted);
            }
        };
        drop(s);
        if registered {
            *stop.unwrap().interrupt.waiting_on.lock() = None;
        }
        result
    }

    fn release(&self, trx: u64) {
        let mut s = self.m.lock();
        s.shared.remove(&trx);
        if s.exclusive == Some(trx) {
            s.exclusive = None;
        }
        self.cv.notify_all();
    }
}

/// A server connection's transaction in the engine.
pub struct TrxHandle {
    pub trx: Option<Trx>,
    /// The table locks it holds, and whether exclusive (a lock held as strongly
    /// as asked is not asked for again: readers of one table do not meet in its
    /// lock's mutex at every seek).
    locks: Vec<(Arc<TableLock>, bool)>,
    stmt_savepoint: usize,
    /// The XID it was prepared under (XA PREPARE, or the binlog's two-phase commit).
    xid: Option<Vec<u8>>,
    /// Stops its lock waits (KILL); shared with the server's kill callback.
    interrupt: Arc<Interrupt>,
    /// The server session it belongs to, for the probe (0: none).
    session: usize,
}

/// Prepared transactions no connection holds, by XID: found by recovery, or left
/// by a connection that ended after XA PREPARE. They keep their table locks (taken
/// again after a restart) until XA COMMIT or XA ROLLBACK ends them.
static PREPARED: LazyLock<Mutex<HashMap<Vec<u8>, TrxHandle>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The table a tree file belongs to: `<table>.rbt` is its clustered index,
/// `<table>#i<N>.rbt` its secondary index N (see [`index_path`]). A partition's
/// files carry `#P#<name>` (`#SP#<name>` for a subpartition), and a partition may
/// be named `i1`: `t#P#i1.rbt` is the clustered index of `t#P#i1`, not index 1 of
/// `t#P`. So a `#i<N>` suffix names a secondary index only when the table it
/// leaves has its clustered file (a table's name never holds a bare `#`: the
/// server writes it as `@0023`, so no other table can own that file).
fn table_of_index(p: &Path) -> PathBuf {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let s = p.as_os_str().as_bytes();
    let Some(base) = s.strip_suffix(b".rbt") else { return p.to_path_buf() };
    if let Some(at) = base.windows(2).rposition(|w| w == b"#i") {
        let n = &base[at + 2..];
        if !n.is_empty() && n[0] != b'0' && n.iter().all(u8::is_ascii_digit) {
            let table = Path::new(OsStr::from_bytes(&base[..at]));
            if index_path(table, 0).exists() {
                return table.to_path_buf();
            }
        }
    }
    PathBuf::from(OsStr::from_bytes(base))
}

/// Takes over the prepared transactions recovery kept (at engine start), with
/// exclusive locks on the tables they changed.
pub fn adopt_recovered_prepared(e: &Engine) -> Result<()> {
    let kept = std::mem::take(&mut *e.recovered_prepared.lock());
    let mut prepared = PREPARED.lock();
    for r in kept {
        let mut h = TrxHandle::new();
        for p in &r.trees {
            let l = table_lock(&table_of_index(p));
            if !h.locks.iter().any(|(x, _)| Arc::ptr_eq(x, &l)) {
                l.acquire(&l, r.trx.id, true, None)?;
                h.locks.push((l, true));
            }
        }
        h.trx = Some(r.trx);
        h.xid = Some(r.xid.clone());
        prepared.insert(r.xid, h);
    }
    Ok(())
}

/// Which prepared XIDs the server's current recovery pass has been given. The
/// server calls the handlerton's `recover` with room for `len` XIDs, again and
/// again until it gets fewer than `len`; and it makes two passes at start-up (the
/// binlog's or tc.log's recovery, then a dry run that must see what is left), so
/// the pass that ends lets the next one see every XID again (as InnoDB does).
#[derive(Default)]
pub struct RecoverPass {
    given: HashSet<Vec<u8>>,
}

impl RecoverPass {
    /// Of `all`, those not given in this pass yet (sorted).
    pub fn pending(&self, all: impl IntoIterator<Item = Vec<u8>>) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = all.into_iter().filter(|x| !self.given.contains(x)).collect();
        v.sort();
        v
    }

    /// `xids` were handed to the server (or reported in the error log as
    /// unusable); `ended`: the server got fewer than it had room for, so its pass
    /// is over.
    pub fn given(&mut self, xids: impl IntoIterator<Item = Vec<u8>>, ended: bool) {
        if ended {
            self.given.clear();
        } else {
            self.given.extend(xids);
        }
    }
}

static RECOVER_PASS: LazyLock<Mutex<RecoverPass>> = LazyLock::new(Default::default);

/// The XIDs of the prepared transactions no connection holds that the server's
/// current recovery pass has not been given yet (see [`RecoverPass`]); C++ hands
/// over as many as the server has room for and tells [`prepared_xids_given`]
/// which.
pub fn prepared_xids() -> Vec<Vec<u8>> {
    let all: Vec<Vec<u8>> = PREPARED.lock().keys().cloned().collect();
    RECOVER_PASS.lock().pending(all)
}

/// See [`RecoverPass::given`].
pub fn prepared_xids_given(xids: Vec<Vec<u8>>, pass_ended: bool) {
    RECOVER_PASS.lock().given(xids, pass_ended);
}

/// XA COMMIT / XA ROLLBACK of a prepared transaction no connection holds; false
/// if there is none with that XID.
pub fn end_prepared(e: &Engine, xid: &[u8], commit: bool) -> Result<bool> {
    let Some(mut h) = PREPARED.lock().remove(xid) else { return Ok(false) };
    if commit { h.commit(e, true)? } else { h.rollback(e)? }
    Ok(true)
}

impl TrxHandle {
    pub fn new() -> TrxHandle {
        TrxHandle {
            trx: None,
            locks: Vec::new(),
            stmt_savepoint: 0,
            xid: None,
            interrupt: Arc::default(),
            session: 0,
        }
    }

    /// The server session this handle belongs to (an opaque token for the probe).
    pub fn set_session(&mut self, session: usize) {
        self.session = session;
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
        h.xid = Some(xid.clone());
        PREPARED.lock().insert(xid, h);
        true
    }

    fn trx(&mut self, e: &Engine) -> &mut Trx {
        self.trx.get_or_insert_with(|| e.begin())
    }

    fn lock(&mut self, e: &Engine, l: &Arc<TableLock>, exclusive: bool) -> Result<()> {
        let held = self.locks.iter().position(|(x, _)| Arc::ptr_eq(x, l));
        if self.trx.is_some() && held.is_some_and(|at| self.locks[at].1 || !exclusive) {
            return Ok(());
        }
        let id = self.trx(e).id;
        let stop = Stopper { interrupt: &self.interrupt, session: self.session };
        l.acquire(l, id, exclusive, Some(&stop))?;
        match held {
            Some(at) => self.locks[at].1 |= exclusive,
            None => self.locks.push((l.clone(), exclusive)),
        }
        Ok(())
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

    pub fn rollback_to(&mut self, e: &Engine, sp: u64) -> Result<()> {
        match self.trx.as_mut() {
            Some(t) => e.rollback_to(t, sp as usize),
            None => Ok(()),
        }
    }

    fn release_locks(&mut self) {
        let id = self.trx.as_ref().map(|t| t.id);
        if let Some(id) = id {
            for (l, _) in self.locks.drain(..) {
                l.release(id);
            }
        }
        self.locks.clear();
    }

    /// Commits; `durable: false` for a transaction prepared in the binlog's
    /// two-phase commit (see [`Engine::commit_with`]).
    pub fn commit(&mut self, e: &Engine, durable: bool) -> Result<()> {
        self.xid = None;
        let r = match self.trx.take() {
            Some(t) => {
                let id = t.id;
                let r = e.commit_with(t, durable);
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

    pub fn rollback(&mut self, e: &Engine) -> Result<()> {
        self.xid = None;
        let r = match self.trx.take() {
            Some(t) => {
                let id = t.id;
                let r = e.rollback(t);
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

/// How an index read positions (the server's ha_rkey_function, in Rust terms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Find {
    /// First entry >= key, that must start with key.
    Exact,
    /// First entry >= key.
    KeyOrNext,
    /// Last entry <= key (with entries starting with key counted as equal).
    KeyOrPrev,
    /// First entry > key (after every entry starting with key).
    AfterKey,
    /// Last entry < key.
    BeforeKey,
    /// Last entry starting with key.
    PrefixLast,
    /// Last entry starting with key, else the last before it.
    PrefixLastOrPrev,
}

/// The smallest byte string greater than every string starting with `p`; None
/// if there is none (all 0xFF).
fn successor(p: &[u8]) -> Option<Vec<u8>> {
    let mut s = p.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xFF {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

/// The shared part of an open table.
struct Shared {
    trees: Vec<Tree>,
    /// The table's path, and how its trees go back to the engine when it closes.
    path: PathBuf,
    closer: Closer,
    next_rowid: AtomicU64,
    lock: Arc<TableLock>,
    /// Whether the AUTO_INCREMENT counter has been checked against the column's
    /// largest value since the table was opened (C++ does it: it knows the column).
    autoinc_checked: AtomicBool,
    /// Cardinality estimates per index (see [`BtreeTable::key_stats`]).
    /// (the same as stored in each index's meta page)
    key_stats: Mutex<HashMap<usize, StoredStats>>,
    /// How many times they were counted from the trees since the open.
    stats_counted: AtomicU64,
}

/// Leaves sampled when statistics are computed on their own (first use after the
/// table opens, or after a tenth of the entries changed); ANALYZE TABLE samples
/// more. An index with no more leaves than that is read whole (exact counts).
pub const STATS_SAMPLE_LEAVES: usize = 32;
pub const ANALYZE_SAMPLE_LEAVES: usize = 512;
/// Leaves records_in_range walks to count a range exactly before it estimates.
const RANGE_EXACT_LEAVES: usize = 8;
/// A key part layout for statistics: its length, with this bit for a nullable part
/// (one byte, 0 for NULL with nothing after it, else 1 and the value).
pub const PART_NULLABLE: u32 = 1 << 31;

/// The first key part (by `parts`) in which two keys differ; `parts.len()` if
/// they agree on all of them.
fn first_diff_part(a: &[u8], b: &[u8], parts: &[u32]) -> usize {
    let m = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    let mut off = 0;
    for (j, &spec) in parts.iter().enumerate() {
        let mut end = off;
        if spec & PART_NULLABLE != 0 {
            end += 1;
            if a.get(off).copied().unwrap_or(0) != 0 {
                end += (spec & !PART_NULLABLE) as usize;
            }
        } else {
            end += spec as usize;
        }
        if m < end {
            return j;
        }
        off = end;
    }
    parts.len()
}

/// Where the first entry >= `probe` is (None: past the last entry): its leaf and
/// slot, and the fraction of the tree's entries before it, estimated from the
/// child positions taken on the way down (as if subtrees of one page were of
/// equal size).
fn locate(t: &mut Reader, probe: Option<&[u8]>) -> Result<(u32, usize, f64)> {
    let (mut frac, mut width) = (0.0f64, 1.0f64);
    let mut no = ROOT;
    for _ in 0..64 {
        let p = t.page(no)?;
        let n = p.slots();
        match p.kind() {
            Kind::Leaf => {
                let slot = match probe {
                    Some(k) => p.search(k).0,
                    None => n,
                };
                frac += if n == 0 { 0.0 } else { width * slot as f64 / n as f64 };
                return Ok((no, slot, frac.min(1.0)));
            }
            Kind::Internal => {
                // children: the leftmost, then one per record (keys >= its key)
                let ord = match probe {
                    Some(k) => {
                        let (i, eq) = p.search(k);
                        if eq { i + 1 } else { i }
                    }
                    None => n,
                };
                let child = if ord == 0 { p.link_a() } else { p.child(ord - 1) };
                frac += width * ord as f64 / (n + 1) as f64;
                width /= (n + 1) as f64;
                no = child;
            }
            k => return Err(Error::Corrupt(format!("{}: page {no}: expected a tree page, found {k:?}", t.name()))),
        }
    }
    Err(Error::Corrupt(format!("{}: tree deeper than 64 levels (a cycle?)", t.name())))
}

/// Counts key-prefix changes between consecutive entries of `leaf` (and its last
/// entry against the next leaf's first): adds to `changes[j]` for each prefix of
/// `j + 1` parts that differs, and to `pairs` the pairs compared. Returns the next
/// leaf.
fn count_changes(t: &mut BTree, leaf: u32, parts: &[u32], changes: &mut [u64], pairs: &mut u64) -> Result<u32> {
    let (keys, next) = {
        let p = t.pool_mut().get(leaf)?;
        ((0..p.slots()).map(|i| p.key(i).to_vec()).collect::<Vec<_>>(), p.link_a())
    };
    let mut tally = |a: &[u8], b: &[u8]| {
        let d = first_diff_part(a, b, parts);
        for c in changes.iter_mut().skip(d) {
            *c += 1;
        }
        *pairs += 1;
    };
    for w in keys.windows(2) {
        tally(&w[0], &w[1]);
    }
    if next != NONE {
        if let Some(last) = keys.last() {
            let p = t.pool_mut().get(next)?;
            if p.slots() > 0 {
                let first = p.key(0).to_vec();
                tally(last, &first);
            }
        }
    }
    Ok(next)
}

/// Distinct values of each key prefix (`parts`: each part's layout, see
/// [`PART_NULLABLE`]) of a tree: exact if it has at most `sample` leaves (all are
/// read), else estimated from `sample` leaves reached by random descents (a fixed
/// seed: the same tree gives the same estimate) as InnoDB samples leaf pages: the
/// share of neighbouring entries whose prefix differs, times the entries. NULLs
/// count as equal to each other (InnoDB's default `innodb_stats_method`).
fn n_diff(t: &mut BTree, parts: &[u32], sample: usize) -> Result<(Vec<u64>, bool)> {
    let rows = t.rows();
    let mut changes = vec![0u64; parts.len()];
    let mut pairs = 0u64;
    if rows == 0 {
        return Ok((changes, true));
    }
    // the leftmost leaf, then along the chain for up to `sample` leaves
    let mut leaf = ROOT;
    loop {
        let p = t.pool_mut().get(leaf)?;
        match p.kind() {
            Kind::Internal => leaf = p.link_a(),
            _ => break,
        }
    }
    let mut read = 0;
    while leaf != NONE && read < sample {
        leaf = count_changes(t, leaf, parts, &mut changes, &mut pairs)?;
        read += 1;
    }
    if leaf == NONE {
        return Ok((changes.iter().map(|c| c + 1).collect(), true));
    }
    changes.iter_mut().for_each(|c| *c = 0);
    pairs = 0;
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..sample {
        let mut no = ROOT;
        for _ in 0..64 {
            let p = t.pool_mut().get(no)?;
            if p.kind() != Kind::Internal {
                break;
            }
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let ord = ((seed >> 33) % (p.slots() as u64 + 1)) as usize;
            no = if ord == 0 { p.link_a() } else { p.child(ord - 1) };
        }
        count_changes(t, no, parts, &mut changes, &mut pairs)?;
    }
    let est = |c: u64| {
        if pairs == 0 { 1 } else { (1 + ((rows - 1) as f64 * c as f64 / pairs as f64).round() as u64).min(rows) }
    };
    Ok((changes.iter().map(|&c| est(c)).collect(), false))
}

impl Drop for Shared {
    /// The table's last user closed it: its trees' pages are written and the
    /// engine lets go of them (see [`Closer::close`]). Never unwinds.
    fn drop(&mut self) {
        for (i, t) in std::mem::take(&mut self.trees).into_iter().enumerate() {
            let p = index_path(&self.path, i);
            let c = &self.closer;
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.close(&p, t)));
        }
    }
}

static TABLES: LazyLock<Mutex<HashMap<PathBuf, Weak<Shared>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

pub struct BtreeTable {
    path: PathBuf,
    shared: Arc<Shared>,
    unique: Vec<bool>,
    hidden_pk: bool,
    // cursor
    cur: Cursor,
    cur_index: usize,
    desc: bool,
    /// Entries must start with this (Exact / next_same), else the scan ends.
    must_prefix: Option<Vec<u8>>,
    /// Index-only reads (the server's keyread): a secondary entry is not looked
    /// up in the clustered tree; [`Self::key`] and [`Self::pk`] are the row's.
    keys_only: bool,
    key: Vec<u8>,
    val: Vec<u8>,
    /// The current row: its primary key and row image.
    pub pk: Vec<u8>,
    pub row: Vec<u8>,
    pub warnings: Vec<String>,
    /// Primary keys this handler gave to rows during the running scan (an UPDATE
    /// of the primary key): the scan skips them, or it would meet the rows it
    /// moved again and again (the Halloween problem).
    moved: std::collections::HashSet<Vec<u8>>,
}

/// Creates the (empty) trees of a table; `auto_inc`: the AUTO_INCREMENT counter
/// to start from (the next value is one more; CREATE ... AUTO_INCREMENT=N gives N-1).
pub fn create(table: &Path, indexes: usize, auto_inc: u64) -> Result<()> {
    for i in 0..indexes {
        BTree::create_with_auto_increment(&index_path(table, i), if i == 0 { auto_inc } else { 0 })?;
    }
    Ok(())
}

/// Removes a table's files (its trees forgotten by the engine first).
pub fn delete(e: &Engine, table: &Path) -> Result<()> {
    TABLES.lock().remove(table);
    // the last index file first: a crash part-way leaves the first files, and the
    // server's DDL recovery (or the next DROP) removes the rest
    let mut n = 0;
    while index_path(table, n).exists() {
        n += 1;
    }
    for i in (0..n).rev() {
        let p = index_path(table, i);
        e.close_tree(&p, true)?;
        std::fs::remove_file(&p).map_err(|err| Error::io(format!("cannot remove '{}'", p.display()), err))?;
    }
    Ok(())
}

pub fn rename(e: &Engine, from: &Path, to: &Path) -> Result<()> {
    TABLES.lock().remove(from);
    // Resumable: a crash between two files' renames (ALTER TABLE's last step) leaves
    // some under the new name, and the server's DDL recovery renames the table again;
    // a file already under the new name is skipped, not taken for the table's end.
    for i in 0.. {
        let (a, b) = (index_path(from, i), index_path(to, i));
        if !a.exists() {
            if b.exists() {
                continue;
            }
            break;
        }
        e.close_tree(&a, false)?;
        std::fs::rename(&a, &b).map_err(|err| Error::io(format!("cannot rename '{}'", a.display()), err))?;
    }
    Ok(())
}

pub fn exists(table: &Path) -> bool {
    index_path(table, 0).exists()
}

impl BtreeTable {
    pub fn open(e: &Engine, table: &Path, unique: Vec<bool>, hidden_pk: bool) -> Result<BtreeTable> {
        let shared = {
            let mut reg = TABLES.lock();
            match reg.get(table).and_then(Weak::upgrade) {
                Some(s) => s,
                None => {
                    let mut trees = Vec::new();
                    for i in 0..unique.len() {
                        trees.push(e.open_tree(&index_path(table, i))?);
                    }
                    // the next hidden row id: one past the largest
                    let mut next = 1;
                    if hidden_pk {
                        let mut t = trees[0].write();
                        let mut c = Cursor::default();
                        t.seek(&mut c, Bound::Unbounded, true)?;
                        let (mut k, mut v) = (vec![], vec![]);
                        if t.next(&mut c, true, &mut k, &mut v)? && k.len() == HIDDEN_PK_LEN {
                            next = u64::from_be_bytes(k[..].try_into().unwrap()) + 1;
                        }
                    }
                    // the statistics ANALYZE (or the automatic recount) stored:
                    // no sampling at first use after the open
                    let mut stats = HashMap::new();
                    for (i, t) in trees.iter().enumerate() {
                        if let Some(st) = t.read().stored_stats() {
                            stats.insert(i, st.clone());
                        }
                    }
                    let s = Arc::new(Shared {
                        trees,
                        path: table.to_path_buf(),
                        closer: e.closer(),
                        next_rowid: AtomicU64::new(next),
                        lock: table_lock(table),
                        autoinc_checked: AtomicBool::new(false),
                        key_stats: Mutex::new(stats),
                        stats_counted: AtomicU64::new(0),
                    });
                    reg.insert(table.to_path_buf(), Arc::downgrade(&s));
                    s
                }
            }
        };
        if shared.trees.len() != unique.len() {
            return Err(Error::Corrupt(format!(
                "{}: {} index files for {} indexes",
                table.display(),
                shared.trees.len(),
                unique.len()
            )));
        }
        Ok(BtreeTable {
            path: table.to_path_buf(),
            shared,
            unique,
            hidden_pk,
            cur: Cursor::default(),
            cur_index: 0,
            desc: false,
            must_prefix: None,
            keys_only: false,
            key: Vec::new(),
            val: Vec::new(),
            pk: Vec::new(),
            row: Vec::new(),
            warnings: Vec::new(),
            moved: std::collections::HashSet::new(),
        })
    }

    pub fn rows(&self) -> u64 {
        self.shared.trees[0].read().rows()
    }

    /// The next AUTO_INCREMENT value: one more than the largest given or stored
    /// (kept in the clustered tree's meta page, so it survives a restart and a
    /// rollback, as InnoDB's persistent counter).
    pub fn auto_increment_next(&self) -> u64 {
        self.shared.trees[0].read().auto_increment().saturating_add(1)
    }

    /// A value was given to or stored in the AUTO_INCREMENT column: the counter
    /// moves up to it (never down).
    pub fn auto_increment_used(&self, v: u64) -> Result<()> {
        let mut t = self.shared.trees[0].write();
        if v > t.auto_increment() { t.set_auto_increment(v) } else { Ok(()) }
    }

    /// Whether the counter was checked against the column since the table opened.
    pub fn auto_increment_checked(&self) -> bool {
        self.shared.autoinc_checked.load(Ordering::Acquire)
    }

    pub fn set_auto_increment_checked(&self) {
        self.shared.autoinc_checked.store(true, Ordering::Release);
    }

    /// Takes the table lock for the transaction now (a statement that will write,
    /// or SELECT ... FOR UPDATE, takes it exclusive before it reads: no lock
    /// upgrade, which two such transactions would wait on for each other).
    pub fn lock(&self, e: &Engine, h: &mut TrxHandle, exclusive: bool) -> Result<()> {
        h.lock(e, &self.shared.lock, exclusive)
    }

    /// The table's format version (its clustered file's): how C++ builds keys.
    pub fn key_format(&self) -> u32 {
        self.shared.trees[0].read().format()
    }

    pub fn data_length(&self) -> (u64, u64) {
        let size = |i: usize| self.shared.trees[i].read().pool().pages as u64 * super::page::PAGE_SIZE as u64;
        let data = size(0);
        let index = (1..self.shared.trees.len()).map(size).sum();
        (data, index)
    }

    fn secondary_entry(sec: &[u8], pk: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(sec.len() + pk.len());
        k.extend_from_slice(sec);
        k.extend_from_slice(pk);
        k
    }

    /// Whether a unique index already has an entry with this key (other than for
    /// row `pk`).
    fn unique_taken(&self, i: usize, sec: &[u8], pk: &[u8]) -> Result<bool> {
        let mut t = self.shared.trees[i].write();
        let mut c = Cursor::default();
        t.seek(&mut c, Bound::Included(sec), false)?;
        let (mut k, mut v) = (vec![], vec![]);
        while t.next(&mut c, false, &mut k, &mut v)? {
            if !k.starts_with(sec) {
                return Ok(false);
            }
            if v != pk {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn clustered_value(trx: u64, row: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(ROW_HEADER + row.len());
        v.extend_from_slice(&trx.to_be_bytes()[2..8]);
        v.extend_from_slice(&[0u8; 7]);
        v.extend_from_slice(row);
        v
    }

    /// Inserts a row. `sec[i]`: the key of secondary index i+1 and whether any of
    /// its parts is NULL (NULLs never collide in a unique index). Returns the index
    /// whose unique key is taken, if any (nothing is changed then).
    pub fn insert(&mut self, e: &Engine, h: &mut TrxHandle, pk: &[u8], row: &[u8], sec: &[(Vec<u8>, bool)]) -> Result<Option<usize>> {
        h.lock(e, &self.shared.lock, true)?;
        let pk: Vec<u8> = if self.hidden_pk {
            self.shared.next_rowid.fetch_add(1, Ordering::Relaxed).to_be_bytes().to_vec()
        } else {
            pk.to_vec()
        };
        // Duplicates are found in the server's key order, the primary key
        // first (as InnoDB): REPLACE's "update the last unique key's row" and
        // ODKU's "update the row of the first duplicate" depend on it.
        let trx = h.trx(e);
        let v = Self::clustered_value(trx.id, row);
        if !e.insert(trx, &self.shared.trees[0], &pk, &v)? {
            return Ok(Some(0));
        }
        for (j, (k, has_null)) in sec.iter().enumerate() {
            if self.unique[j + 1] && !has_null && self.unique_taken(j + 1, k, &pk)? {
                // taken back: the statement goes on (REPLACE, IGNORE, ODKU)
                e.delete(trx, &self.shared.trees[0], &pk)?;
                return Ok(Some(j + 1));
            }
        }
        for (j, (k, _)) in sec.iter().enumerate() {
            e.insert(trx, &self.shared.trees[j + 1], &Self::secondary_entry(k, &pk), &pk)?;
        }
        self.pk = pk;
        Ok(None)
    }

    pub fn delete(&mut self, e: &Engine, h: &mut TrxHandle, pk: &[u8], sec: &[(Vec<u8>, bool)]) -> Result<()> {
        h.lock(e, &self.shared.lock, true)?;
        let trx = h.trx(e);
        e.delete(trx, &self.shared.trees[0], pk)?;
        for (j, (k, _)) in sec.iter().enumerate() {
            e.delete(trx, &self.shared.trees[j + 1], &Self::secondary_entry(k, pk))?;
        }
        Ok(())
    }

    /// Replaces row `old_pk` by `row` under `new_pk` (the same unless the primary
    /// key changed). Returns the index whose unique key the new row would take.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        e: &Engine,
        h: &mut TrxHandle,
        old_pk: &[u8],
        new_pk: &[u8],
        row: &[u8],
        old_sec: &[(Vec<u8>, bool)],
        new_sec: &[(Vec<u8>, bool)],
    ) -> Result<Option<usize>> {
        h.lock(e, &self.shared.lock, true)?;
        let new_pk = if self.hidden_pk { old_pk } else { new_pk };
        let pk_changed = old_pk != new_pk;
        // the primary key first, then the secondary keys in order (see insert)
        if pk_changed {
            let mut probe = Vec::new();
            if self.shared.trees[0].write().get(new_pk, &mut probe)? {
                return Ok(Some(0));
            }
        }
        for (j, (k, has_null)) in new_sec.iter().enumerate() {
            let changed = pk_changed || old_sec[j].0 != *k;
            if changed && self.unique[j + 1] && !has_null && self.unique_taken(j + 1, k, old_pk)? {
                return Ok(Some(j + 1));
            }
        }
        let trx = h.trx(e);
        let v = Self::clustered_value(trx.id, row);
        if pk_changed {
            e.delete(trx, &self.shared.trees[0], old_pk)?;
            e.insert(trx, &self.shared.trees[0], new_pk, &v)?;
            self.moved.insert(new_pk.to_vec());
        } else {
            e.update(trx, &self.shared.trees[0], old_pk, &v)?;
        }
        for (j, (k, _)) in new_sec.iter().enumerate() {
            if pk_changed || old_sec[j].0 != *k {
                e.delete(trx, &self.shared.trees[j + 1], &Self::secondary_entry(&old_sec[j].0, old_pk))?;
                e.insert(trx, &self.shared.trees[j + 1], &Self::secondary_entry(k, new_pk), new_pk)?;
            }
        }
        Ok(None)
    }

    /// Reads row `pk` into [`Self::row`].
    pub fn get(&mut self, e: &Engine, h: &mut TrxHandle, pk: &[u8]) -> Result<bool> {
        h.lock(e, &self.shared.lock, false)?;
        self.load(pk)
    }

    fn load(&mut self, pk: &[u8]) -> Result<bool> {
        let val = &mut self.val;
        let found = tree::read(&self.shared.trees[0], |r| r.get(pk, val))?;
        if !found {
            return Ok(false);
        }
        if self.val.len() < ROW_HEADER {
            return Err(Error::Corrupt(format!("{}: a clustered record shorter than its header", self.path.display())));
        }
        self.pk.clear();
        self.pk.extend_from_slice(pk);
        self.row.clear();
        self.row.extend_from_slice(&self.val[ROW_HEADER..]);
        Ok(true)
    }

    /// Positions a cursor on index `i` (0: clustered, a full scan with `Find::KeyOrNext`
    /// and an empty key) and reads the first row.
    pub fn seek(&mut self, e: &Engine, h: &mut TrxHandle, i: usize, key: &[u8], find: Find) -> Result<bool> {
        h.lock(e, &self.shared.lock, false)?;
        self.cur_index = i;
        self.must_prefix = None;
        self.moved.clear();
        let (bound, desc): (Bound<Vec<u8>>, bool) = match find {
            Find::Exact => {
                self.must_prefix = Some(key.to_vec());
                (Bound::Included(key.to_vec()), false)
            }
            Find::KeyOrNext => (if key.is_empty() { Bound::Unbounded } else { Bound::Included(key.to_vec()) }, false),
            Find::AfterKey => match successor(key) {
                Some(s) => (Bound::Included(s), false),
                None => {
                    self.cur = Cursor::default();
                    return Ok(false);
                }
            },
            Find::BeforeKey => (Bound::Excluded(key.to_vec()), true),
            Find::KeyOrPrev | Find::PrefixLastOrPrev => match successor(key) {
                Some(s) => (Bound::Excluded(s), true),
                None => (Bound::Unbounded, true),
            },
            Find::PrefixLast => {
                self.must_prefix = Some(key.to_vec());
                match successor(key) {
                    Some(s) => (Bound::Excluded(s), true),
                    None => (Bound::Unbounded, true),
                }
            }
        };
        self.desc = desc;
        {
            let b = match &bound {
                Bound::Included(k) => Bound::Included(&k[..]),
                Bound::Excluded(k) => Bound::Excluded(&k[..]),
                Bound::Unbounded => Bound::Unbounded,
            };
            let cur = &mut self.cur;
            tree::read(&self.shared.trees[i], |r| r.seek(cur, b, desc))?;
        }
        self.step()
    }

    /// The first or last row of index `i`.
    pub fn edge(&mut self, e: &Engine, h: &mut TrxHandle, i: usize, last: bool) -> Result<bool> {
        h.lock(e, &self.shared.lock, false)?;
        self.edge_unlocked(i, last)
    }

    /// The first or last row of index `i`, without a table lock: what another
    /// transaction has not committed may be seen (for the AUTO_INCREMENT check at
    /// open, where a value too large is harmless).
    pub fn edge_unlocked(&mut self, i: usize, last: bool) -> Result<bool> {
        self.keys_only = false;
        self.cur_index = i;
        self.must_prefix = None;
        self.moved.clear();
        self.desc = last;
        let cur = &mut self.cur;
        tree::read(&self.shared.trees[i], |r| r.seek(cur, Bound::Unbounded, last))?;
        self.step()
    }

    /// The next row in the cursor's direction (or the other way with `reverse`).
    pub fn next(&mut self, reverse: bool) -> Result<bool> {
        if reverse {
            // turn around: continue from the current entry the other way
            self.desc = !self.desc;
            let (cur, desc) = (&mut self.cur, self.desc);
            let b = Bound::Excluded(&self.key[..]);
            tree::read(&self.shared.trees[self.cur_index], |r| r.seek(cur, b, desc))?;
        }
        self.step()
    }

    /// Ends prefix matching: `next` continues past entries of the prefix.
    pub fn set_prefix(&mut self, p: Option<Vec<u8>>) {
        self.must_prefix = p;
    }

    /// Index-only reads from now on (the next seek or edge and the steps after
    /// it): a secondary index's entries give [`Self::key`] and [`Self::pk`], and
    /// [`Self::row`] stays empty (no clustered lookup). No effect on the
    /// clustered index, whose entries are the rows.
    pub fn set_keys_only(&mut self, on: bool) {
        self.keys_only = on;
    }

    /// Reads the row of the current entry of an index-only read (one whose entry
    /// passed the server's pushed index condition) into [`Self::row`]; the cursor
    /// stays where it is.
    pub fn fetch_current(&mut self) -> Result<()> {
        let pk = std::mem::take(&mut self.pk);
        if self.cur_index == 0 || pk.is_empty() || !self.load(&pk)? {
            self.pk = pk;
            return Err(Error::Corrupt(format!(
                "{}: index {} has an entry for a row that does not exist",
                self.path.display(),
                self.cur_index
            )));
        }
        Ok(())
    }

    /// The current entry's key: for a secondary index the secondary key's bytes
    /// followed by the primary key's, for the clustered index the primary key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    fn step(&mut self) -> Result<bool> {
        loop {
            let found = {
                let (cur, desc, key, val) = (&mut self.cur, self.desc, &mut self.key, &mut self.val);
                tree::read(&self.shared.trees[self.cur_index], |r| r.next(cur, desc, key, val))?
            };
            if !found {
                return Ok(false);
            }
            let pk: &[u8] = if self.cur_index == 0 { &self.key } else { &self.val };
            if self.moved.is_empty() || !self.moved.contains(pk) {
                break;
            }
        }
        if let Some(p) = &self.must_prefix {
            if !self.key.starts_with(p) {
                return Ok(false);
            }
        }
        if self.cur_index == 0 {
            if self.val.len() < ROW_HEADER {
                return Err(Error::Corrupt(format!("{}: a clustered record shorter than its header", self.path.display())));
            }
            self.pk.clear();
            self.pk.extend_from_slice(&self.key);
            self.row.clear();
            self.row.extend_from_slice(&self.val[ROW_HEADER..]);
            return Ok(true);
        }
        // the entry's value is the primary key: enough for the key's columns
        // and for position(); index-only, the row itself is not read
        std::mem::swap(&mut self.pk, &mut self.val);
        if self.keys_only {
            self.row.clear();
        } else {
            self.fetch_current()?;
        }
        Ok(true)
    }

    /// Entries of index `i` between two keys, for the optimizer (records_in_range):
    /// the tree is descended to both ends; entries are counted exactly when the ends
    /// are at most [`RANGE_EXACT_LEAVES`] leaves apart, else estimated from where
    /// the two descents went (the fraction of the tree between them, times its
    /// entries). A bound is a key prefix: inclusive takes every entry starting with
    /// it, exclusive none of them. Reads a few pages; takes no table lock.
    pub fn count_range(&mut self, i: usize, min: Option<&[u8]>, min_incl: bool, max: Option<&[u8]>, max_incl: bool) -> Result<u64> {
        // both ends as "the first entry >= probe" (None: past the last entry)
        let lo: Option<Vec<u8>> = match min {
            None => Some(Vec::new()),
            Some(k) if min_incl => Some(k.to_vec()),
            Some(k) => match successor(k) {
                Some(s) => Some(s),
                None => return Ok(0),
            },
        };
        let hi: Option<Vec<u8>> = match max {
            None => None,
            Some(k) if max_incl => successor(k),
            Some(k) => Some(k.to_vec()),
        };
        if let (Some(a), Some(b)) = (&lo, &hi) {
            if a >= b {
                return Ok(0);
            }
        }
        tree::read(&self.shared.trees[i], |t| {
            let (la, sa, fa) = locate(t, lo.as_deref())?;
            let (lb, sb, fb) = locate(t, hi.as_deref())?;
            if la == lb {
                return Ok(sb.saturating_sub(sa) as u64);
            }
            let mut n = {
                let p = t.page(la)?;
                (p.slots().saturating_sub(sa), p.link_a())
            };
            for _ in 0..RANGE_EXACT_LEAVES {
                if n.1 == NONE {
                    break;
                }
                if n.1 == lb {
                    return Ok((n.0 + sb) as u64);
                }
                let p = t.page(n.1)?;
                n = (n.0 + p.slots(), p.link_a());
            }
            let est = ((fb - fa).max(0.0) * t.rows() as f64).round() as u64;
            Ok(est.max(n.0 as u64).min(t.rows()))
        })
    }

    /// Distinct values of each key prefix of index `i` (`parts`: the layout of
    /// each part of its entries, see [`PART_NULLABLE`]), for rec_per_key. Kept per
    /// open table and computed again when asked with `analyze` (ANALYZE TABLE: a
    /// larger sample), for another layout, or when the index's entries changed by
    /// more than a tenth since (as InnoDB's automatic recalculation). Stored in
    /// the index's meta page each time they are computed (as InnoDB's persistent
    /// statistics), and read from there when the table opens: plans do not
    /// change with a restart, and the first statement after it does not sample.
    pub fn key_stats(&self, i: usize, parts: &[u32], analyze: bool) -> Result<Vec<u64>> {
        let kept = |rows: u64| {
            let m = self.shared.key_stats.lock();
            let s = m.get(&i)?;
            let stale = rows.abs_diff(s.rows_at) > s.rows_at / 10;
            let keep = (!analyze && !stale && s.parts == parts) || (analyze && s.exact && rows == s.rows_at && s.parts == parts);
            keep.then(|| s.n_diff.clone())
        };
        // kept ones are looked up beside the tree's readers (the read lock let go
        // of first)
        let rows = self.shared.trees[i].read().rows();
        if let Some(v) = kept(rows) {
            return Ok(v);
        }
        let mut t = self.shared.trees[i].write();
        let rows = t.rows();
        if let Some(v) = kept(rows) {
            return Ok(v);
        }
        let (n_diff, exact) = n_diff(&mut t, parts, if analyze { ANALYZE_SAMPLE_LEAVES } else { STATS_SAMPLE_LEAVES })?;
        self.shared.stats_counted.fetch_add(1, Ordering::Relaxed);
        // kept for the next open too; a failure to log them only loses them
        let st = StoredStats { exact, rows_at: rows, parts: parts.to_vec(), n_diff };
        let _ = t.store_stats(st.clone());
        let n_diff = st.n_diff.clone();
        self.shared.key_stats.lock().insert(i, st);
        Ok(n_diff)
    }

    /// CHECK TABLE: every tree's invariants, and every secondary entry matching a
    /// row (and as many entries as rows).
    pub fn check(&mut self) -> Result<Vec<String>> {
        self.check_with(&mut StopCheck::new(0))
    }

    /// [`Self::check`], stopping with `Error::Interrupted` when `stop` says so
    /// (KILL).
    pub fn check_with(&mut self, stop: &mut StopCheck) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let rows = self.rows();
        for (i, t) in self.shared.trees.iter().enumerate() {
            match t.write().check_with(&mut || stop.step()) {
                Err(Error::Interrupted) => return Err(Error::Interrupted),
                Err(e) => problems.push(format!("index {i}: {e}")),
                Ok(()) => {}
            }
        }
        for i in 1..self.shared.trees.len() {
            let n = self.shared.trees[i].read().rows();
            if n != rows {
                problems.push(format!("index {i} has {n} entries for {rows} rows"));
            }
            let mut c = Cursor::default();
            let (mut k, mut v) = (vec![], vec![]);
            let mut probe = vec![];
            let mut missing = 0;
            {
                let mut t = self.shared.trees[i].write();
                t.seek(&mut c, Bound::Unbounded, false)?;
            }
            loop {
                let more = self.shared.trees[i].write().next(&mut c, false, &mut k, &mut v)?;
                if !more {
                    break;
                }
                stop.step()?;
                if !k.ends_with(&v) || !self.shared.trees[0].write().get(&v, &mut probe)? {
                    missing += 1;
                }
            }
            if missing > 0 {
                problems.push(format!("index {i} has {missing} entries that match no row"));
            }
        }
        Ok(problems)
    }

    /// TRUNCATE TABLE: every tree reset to empty at once, whatever its size
    /// (the files cut to an empty tree, the pages freed), crash safe through one
    /// RESET redo record (see [`Engine::reset_trees`]); the AUTO_INCREMENT
    /// counter starts again from 1, as InnoDB's. Not transactional (the server
    /// commits before and after this DDL). Takes the table's exclusive lock for
    /// `h` first: a transaction that changed the table and is still open (a
    /// prepared XA transaction, which no metadata lock of the server's holds
    /// after a restart) makes it wait, then fail with a lock wait timeout,
    /// rather than truncate rows it could later roll back into the empty table.
    pub fn truncate(&mut self, e: &Engine, h: &mut TrxHandle) -> Result<()> {
        h.lock(e, &self.shared.lock, true)?;
        if h.trx.as_ref().is_some_and(|t| self.shared.trees.iter().any(|x| t.changed(x))) {
            // (the server commits before TRUNCATE: not expected)
            return Err(Error::Unsupported("TRUNCATE of a table the transaction has changed".into()));
        }
        let trees: Vec<_> =
            self.shared.trees.iter().enumerate().map(|(i, t)| (index_path(&self.path, i), t.clone())).collect();
        self.cur = Cursor::default();
        self.shared.key_stats.lock().clear();
        let r = e.reset_trees(&trees);
        // (the trees are empty in memory once the RESET record is logged, even
        // when a later sync failed)
        if self.shared.trees[0].read().rows() == 0 {
            self.shared.next_rowid.store(1, Ordering::Relaxed);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btree::engine::{FlushPolicy, RecoveredPrepared};
    use crate::testutil::dir;

    /// The AUTO_INCREMENT counter: kept from CREATE, moved up only, durable through
    /// the redo log (a crash that loses every unflushed page keeps it), reset by
    /// TRUNCATE.
    #[test]
    fn the_auto_increment_counter_is_persistent() {
        let d = dir("autoinc", 0);
        let t = d.join("t");
        create(&t, 2, 9).unwrap();
        {
            let e = Engine::open(&d.join("eng"), 16, FlushPolicy::EveryCommit).unwrap();
            let tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
            assert_eq!(tb.auto_increment_next(), 10);
            tb.auto_increment_used(20).unwrap();
            tb.auto_increment_used(15).unwrap();
            assert_eq!(tb.auto_increment_next(), 21);
            // a committed transaction makes the log durable up to its commit, past
            // the counter's mini-transaction
            let mut h = TrxHandle::new();
            let mut tb = tb;
            assert_eq!(tb.insert(&e, &mut h, b"k", b"row", &[(b"s".to_vec(), false)]).unwrap(), None);
            h.commit(&e, true).unwrap();
            // the crash: no checkpoint, no page written
            std::mem::forget(tb);
            std::mem::forget(e);
            TABLES.lock().clear();
        }
        let e = Engine::open(&d.join("eng"), 16, FlushPolicy::EveryCommit).unwrap();
        let mut tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
        assert_eq!(tb.auto_increment_next(), 21);
        assert_eq!(tb.rows(), 1);
        let mut h = TrxHandle::new();
        tb.truncate(&e, &mut h).unwrap();
        h.commit(&e, true).unwrap();
        assert_eq!(tb.auto_increment_next(), 1);
        drop(tb);
        e.checkpoint_now().unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A rename cut short after the table's first file (a SIGKILL in ALTER TABLE's
    /// rename step, found by ci/crashloop) is finished by renaming again: the index
    /// files are not left behind under the old name (the table would not open).
    #[test]
    fn a_rename_cut_short_is_finished_by_renaming_again() {
        let d = dir("rename_resume", 0);
        let (from, to) = (d.join("a"), d.join("b"));
        create(&from, 3, 0).unwrap();
        let e = Engine::open(&d.join("eng"), 16, FlushPolicy::EveryCommit).unwrap();
        std::fs::rename(index_path(&from, 0), index_path(&to, 0)).unwrap();
        rename(&e, &from, &to).unwrap();
        for i in 0..3 {
            assert!(index_path(&to, i).exists(), "index file {i} under the new name");
            assert!(!index_path(&from, i).exists(), "index file {i} left under the old name");
        }
        BtreeTable::open(&e, &to, vec![true, false, false], false).unwrap();
        // a delete cut short removes the last files first: deleting again ends it
        std::fs::remove_file(index_path(&to, 2)).unwrap();
        delete(&e, &to).unwrap();
        for i in 0..3 {
            assert!(!index_path(&to, i).exists(), "index file {i} left by DROP");
        }
        drop(e);
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A scan (each row read under its own hold of the tree's read lock) gives
    /// its rows in order both ways and across a turn, and sees the changes its own
    /// transaction makes ahead of it (through another handler of the same table,
    /// as a self-join's update would), on the clustered and a secondary index.
    #[test]
    fn a_scan_sees_its_own_changes_ahead_of_it() {
        let d = dir("ahead", 0);
        let t = d.join("t");
        create(&t, 2, 0).unwrap();
        let e = Engine::open(&d.join("eng"), 64, FlushPolicy::OncePerSecond).unwrap();
        let mut a = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
        let mut b = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
        let mut h = TrxHandle::new();
        let pk = |i: u32| i.to_be_bytes().to_vec();
        let row = |i: u32, v: u8| vec![v; 50 + (i % 5) as usize * 100];
        // secondary key: the row's first byte, then the primary key
        let sec = |v: u8| vec![(vec![v], false)];
        for i in (0..400).step_by(2) {
            assert_eq!(a.insert(&e, &mut h, &pk(i), &row(i, 1), &sec(1)).unwrap(), None);
        }
        h.commit(&e, true).unwrap();
        let all: Vec<u32> = (0..400).step_by(2).collect();
        // whole scans both ways, and a turn in the middle
        let mut got = vec![];
        let mut more = a.seek(&e, &mut h, 0, &[], Find::KeyOrNext).unwrap();
        while more {
            got.push(u32::from_be_bytes(a.pk[..].try_into().unwrap()));
            assert_eq!(a.row, row(*got.last().unwrap(), 1));
            more = a.next(false).unwrap();
        }
        assert_eq!(got, all);
        let mut got = vec![];
        let mut more = a.edge(&e, &mut h, 0, true).unwrap();
        while more {
            got.push(u32::from_be_bytes(a.pk[..].try_into().unwrap()));
            more = a.next(false).unwrap();
        }
        assert_eq!(got, all.iter().rev().copied().collect::<Vec<_>>());
        let mut got = vec![];
        let mut more = a.seek(&e, &mut h, 0, &pk(100), Find::KeyOrNext).unwrap();
        for _ in 0..30 {
            got.push(u32::from_be_bytes(a.pk[..].try_into().unwrap()));
            more = a.next(false).unwrap();
        }
        assert!(more);
        more = a.next(true).unwrap();
        while more && got.len() < 60 {
            got.push(u32::from_be_bytes(a.pk[..].try_into().unwrap()));
            more = a.next(false).unwrap();
        }
        // (the turn starts from the row last read, 160: the row before it is 158)
        let want: Vec<u32> = (100..160).step_by(2).chain((100..160).step_by(2).rev()).collect();
        assert_eq!(got, want);
        // changes ahead of a scan that has entries read ahead, on either index
        for index in [0, 1] {
            let mut got = vec![];
            let start: &[u8] = if index == 0 { &[] } else { &[1] };
            let mut more = a.seek(&e, &mut h, index, start, Find::KeyOrNext).unwrap();
            let mut changed = false;
            while more {
                let i = u32::from_be_bytes(a.pk[..].try_into().unwrap());
                got.push((i, a.row[0]));
                if i == 40 && !changed {
                    changed = true;
                    let v = 2 + index as u8;
                    // an update in place, a delete, an insert, all just ahead
                    let old = row(44, 1);
                    let new = vec![v; old.len()];
                    assert_eq!(b.update(&e, &mut h, &pk(44), &pk(44), &new, &sec(1), &sec(1)).unwrap(), None);
                    b.delete(&e, &mut h, &pk(46), &sec(1)).unwrap();
                    assert_eq!(b.insert(&e, &mut h, &pk(47), &row(47, v), &sec(1)).unwrap(), None);
                }
                more = a.next(false).unwrap();
            }
            let v = 2 + index as u8;
            assert!(got.contains(&(44, v)), "index {index}: an update ahead not seen");
            assert!(!got.iter().any(|&(i, _)| i == 46), "index {index}: a deleted row seen");
            assert!(got.contains(&(47, v)), "index {index}: an insert ahead not seen");
            let ids: Vec<u32> = got.iter().map(|&(i, _)| i).collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "index {index}: out of order or repeated");
            assert_eq!(ids.len(), 200);
            // as it was, for the next round
            h.rollback(&e).unwrap();
        }
        drop((a, b));
        e.checkpoint_now().unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A table of 3000 rows (clustered and one secondary index) over several
    /// hundred pages, part of it only in the redo log; its expected contents.
    fn filled(e: &Engine, t: &Path) -> (BtreeTable, Vec<(Vec<u8>, Vec<u8>)>) {
        let mut tb = BtreeTable::open(e, t, vec![true, false], false).unwrap();
        let mut h = TrxHandle::new();
        let mut rows = Vec::new();
        for i in 0..3000u32 {
            let pk = (i.wrapping_mul(2_654_435_761)).to_be_bytes().to_vec();
            let row = vec![(i % 251) as u8; 100 + (i % 300) as usize];
            assert_eq!(tb.insert(e, &mut h, &pk, &row, &[((i % 97).to_be_bytes().to_vec(), false)]).unwrap(), None);
            rows.push((pk, row));
            if i == 1500 {
                h.commit(e, true).unwrap();
                e.checkpoint_now().unwrap();
            }
        }
        tb.auto_increment_used(5000).unwrap();
        h.commit(e, true).unwrap();
        rows.sort();
        (tb, rows)
    }

    fn all_rows(e: &Engine, tb: &mut BtreeTable) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut h = TrxHandle::new();
        let mut out = Vec::new();
        let mut more = tb.seek(e, &mut h, 0, b"", Find::KeyOrNext).unwrap();
        while more {
            out.push((tb.pk.clone(), tb.row.clone()));
            more = tb.next(false).unwrap();
        }
        h.commit(e, true).unwrap();
        out
    }

    fn file_pages(t: &Path, i: usize) -> u64 {
        std::fs::metadata(index_path(t, i)).unwrap().len() / super::super::page::PAGE_SIZE as u64
    }

    /// TRUNCATE stopped by a crash at each of its writes and fsyncs (and once
    /// after it, with rows inserted and committed on the empty table), with what
    /// the log had not synced lost or kept: recovery gives the whole old table
    /// until the RESET record is durable, the empty table from then on (never a
    /// mix of the two, in either index), a clean check, files cut to an empty
    /// tree, the AUTO_INCREMENT counter restarted, and a table that works.
    #[test]
    fn truncate_survives_a_crash_at_every_step() {
        use crate::btree::crash;
        let base = dir("trunc", 0);
        let mut steps = None;
        let mut step = 0u32;
        loop {
            for power_loss in [false, true] {
                let d = base.join(format!("{step}-{power_loss}"));
                std::fs::create_dir(&d).unwrap();
                let t = d.join("t");
                create(&t, 2, 0).unwrap();
                let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
                let (mut tb, old) = filled(&e, &t);
                assert!(file_pages(&t, 0) > 20);
                let mut h = TrxHandle::new();
                crash::arm(Some(step));
                let r = tb.truncate(&e, &mut h);
                let seen = crash::arm(None);
                let crashed = r.is_err();
                if !crashed {
                    // ran to the end: it had `seen` steps
                    steps.get_or_insert(seen);
                    h.commit(&e, true).unwrap();
                    assert_eq!((tb.rows(), file_pages(&t, 0), file_pages(&t, 1)), (0, 2, 2));
                    if power_loss {
                        // recovery then starts after the RESET record: from the
                        // files the checkpoint wrote
                        e.checkpoint_now().unwrap();
                    }
                    // rows on the empty table, committed, then the crash
                    for i in 0..50u32 {
                        tb.insert(&e, &mut h, &i.to_be_bytes(), b"new", &[(b"s".to_vec(), false)]).unwrap();
                    }
                    h.commit(&e, true).unwrap();
                }
                drop(h);
                std::mem::forget(tb);
                TABLES.lock().remove(&t);
                e.simulate_crash(power_loss);

                let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
                let mut tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
                assert!(tb.check().unwrap().is_empty(), "step {step}: {:?}", tb.check());
                let got = all_rows(&e, &mut tb);
                let ctx = format!("step {step}, power loss {power_loss}");
                if step == 0 {
                    // the RESET record had not reached the log file
                    assert!(got == old, "{ctx}: not the old table ({} rows)", got.len());
                    assert_eq!(tb.shared.trees[1].read().rows(), 3000, "{ctx}");
                    assert_eq!(tb.auto_increment_next(), 5001, "{ctx}");
                } else {
                    let want = if crashed { 0 } else { 50 };
                    assert_eq!(got.len(), want, "{ctx}");
                    assert_eq!(tb.shared.trees[1].read().rows(), want as u64, "{ctx}");
                    assert_eq!(tb.auto_increment_next(), 1, "{ctx}");
                    if crashed {
                        assert_eq!((file_pages(&t, 0), file_pages(&t, 1)), (2, 2), "{ctx}: files not cut");
                    }
                }
                // the table works on: rows in, a checkpoint, a clean restart
                let mut h = TrxHandle::new();
                for i in 100..400u32 {
                    tb.insert(&e, &mut h, &i.to_be_bytes(), &[9u8; 300], &[(b"x".to_vec(), false)]).unwrap();
                }
                h.commit(&e, true).unwrap();
                assert!(tb.check().unwrap().is_empty(), "{ctx}");
                let n = tb.rows();
                drop(tb);
                e.checkpoint_now().unwrap();
                drop(e);
                let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
                let mut tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
                assert_eq!(tb.rows(), n, "{ctx}");
                assert!(tb.check().unwrap().is_empty(), "{ctx}");
                drop(tb);
                e.checkpoint_now().unwrap();
            }
            if steps.is_some() {
                break;
            }
            step += 1;
            assert!(step < 100, "TRUNCATE never ran to its end");
        }
        // a RESET record, then the trees one by one: write, cut, sync
        assert_eq!(steps, Some(7));
        let _ = std::fs::remove_dir_all(&base);
    }

    /// A log that has a transaction's change to a table before the table's
    /// TRUNCATE and no end of that transaction (the table lock keeps this from
    /// happening; here the trees are reset under it): recovery does not roll the
    /// change back into the empty table.
    #[test]
    fn recovery_does_not_undo_into_a_truncated_table() {
        let d = dir("trunc-undo", 0);
        let t = d.join("t");
        create(&t, 1, 0).unwrap();
        let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
        let mut tb = BtreeTable::open(&e, &t, vec![true], false).unwrap();
        let mut h = TrxHandle::new();
        for i in 0..200u32 {
            tb.insert(&e, &mut h, &i.to_be_bytes(), &[1u8; 200], &[]).unwrap();
        }
        h.commit(&e, true).unwrap();
        // an open transaction deletes rows (undo: put them back)
        for i in 0..100u32 {
            tb.delete(&e, &mut h, &i.to_be_bytes(), &[]).unwrap();
        }
        let trees = vec![(index_path(&t, 0), tb.shared.trees[0].clone())];
        e.reset_trees(&trees).unwrap();
        drop(trees);
        h.release_locks();
        std::mem::forget(h.trx.take());
        std::mem::forget(tb);
        TABLES.lock().remove(&t);
        e.simulate_crash(false);
        let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
        let mut tb = BtreeTable::open(&e, &t, vec![true], false).unwrap();
        assert!(tb.check().unwrap().is_empty());
        assert_eq!(all_rows(&e, &mut tb).len(), 0, "deleted rows were rolled back into the empty table");
        drop(tb);
        e.checkpoint_now().unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A prepared transaction survives two crashes (the second run gives its tree
    /// ids to other trees) and is then committed by XID; another is rolled back.
    #[test]
    fn prepared_transactions_survive_crashes() {
        let d = dir("xa", 0);
        let (t1, t2) = (d.join("t1"), d.join("t2"));
        create(&t1, 1, 0).unwrap();
        create(&t2, 1, 0).unwrap();
        create(&d.join("t3"), 1, 0).unwrap();
        let (xc, xr) = (b"xa-test-commit".to_vec(), b"xa-test-rollback".to_vec());
        let crash = |e: Engine, tables: Vec<BtreeTable>| {
            for t in tables {
                std::mem::forget(t);
            }
            for x in [&xc, &xr] {
                if let Some(h) = PREPARED.lock().remove(x.as_slice()) {
                    std::mem::forget(h);
                }
            }
            std::mem::forget(e);
            TABLES.lock().clear();
        };
        {
            let e = Engine::open(&d.join("eng"), 16, FlushPolicy::EveryCommit).unwrap();
            // t3 takes tree id 1 here; the next run gives ids 1 and 2 to t1 and t2
            let c = BtreeTable::open(&e, &d.join("t3"), vec![true], false).unwrap();
            let mut a = BtreeTable::open(&e, &t1, vec![true], false).unwrap();
            let mut b = BtreeTable::open(&e, &t2, vec![true], false).unwrap();
            let (mut h1, mut h2) = (TrxHandle::new(), TrxHandle::new());
            a.insert(&e, &mut h1, b"k1", b"row1", &[]).unwrap();
            h1.prepare(&e, &xc).unwrap();
            b.insert(&e, &mut h2, b"k2", b"row2", &[]).unwrap();
            h2.prepare(&e, &xr).unwrap();
            std::mem::forget(h1);
            std::mem::forget(h2);
            crash(e, vec![a, b, c]);
        }
        for run in 0..2 {
            let e = Engine::open(&d.join("eng"), 16, FlushPolicy::EveryCommit).unwrap();
            adopt_recovered_prepared(&e).unwrap();
            let mut x = prepared_xids_all();
            x.sort();
            assert_eq!(x, vec![xc.clone(), xr.clone()], "run {run}");
            if run == 0 {
                crash(e, vec![]);
                continue;
            }
            assert!(end_prepared(&e, &xc, true).unwrap());
            assert!(end_prepared(&e, &xr, false).unwrap());
            assert!(!end_prepared(&e, &xr, false).unwrap());
            let mut h = TrxHandle::new();
            let mut a = BtreeTable::open(&e, &t1, vec![true], false).unwrap();
            let mut b = BtreeTable::open(&e, &t2, vec![true], false).unwrap();
            assert!(a.get(&e, &mut h, b"k1").unwrap());
            assert_eq!(a.row, b"row1");
            assert!(!b.get(&e, &mut h, b"k2").unwrap());
            assert!(a.check().unwrap().is_empty() && b.check().unwrap().is_empty());
            h.commit(&e, true).unwrap();
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    /// records_in_range and rec_per_key estimates: exact on small ranges and
    /// small indexes, close on large ones (a sample, and the fraction of the tree
    /// between two descents).
    #[test]
    fn statistics_follow_the_data() {
        let d = dir("stats", 0);
        let t = d.join("t");
        create(&t, 2, 0).unwrap();
        let e = Engine::open(&d.join("eng"), 4096, FlushPolicy::OncePerSecond).unwrap();
        let mut tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
        let mut h = TrxHandle::new();
        let n = 30_000u32;
        // secondary key: a (i % 50), then a nullable b (i % 1000, NULL when 0)
        let sec = |i: u32| {
            let mut k = (i % 50).to_be_bytes().to_vec();
            if i % 1000 == 0 {
                k.push(0);
            } else {
                k.push(1);
                k.extend_from_slice(&(i % 1000).to_be_bytes());
            }
            k
        };
        let row = vec![7u8; 120];
        for i in 0..n {
            // scattered primary keys, so that splits are not only the ascending kind
            let j = ((i as u64 * 2654435761) % n as u64) as u32;
            tb.insert(&e, &mut h, &j.to_be_bytes(), &row, &[(sec(j), false)]).unwrap();
        }
        h.commit(&e, true).unwrap();
        let k = |v: u32| v.to_be_bytes().to_vec();
        // exact: a few leaves apart
        assert_eq!(tb.count_range(0, Some(&k(100)), true, Some(&k(150)), false).unwrap(), 50);
        assert_eq!(tb.count_range(0, Some(&k(100)), false, Some(&k(150)), true).unwrap(), 50);
        assert_eq!(tb.count_range(0, Some(&k(100)), true, Some(&k(100)), true).unwrap(), 1);
        assert_eq!(tb.count_range(0, Some(&k(n + 5)), true, None, false).unwrap(), 0);
        // estimated: within a fifth
        let near = |got: u64, want: u64| got.abs_diff(want) * 5 <= want;
        let big = tb.count_range(0, Some(&k(1000)), true, Some(&k(21000)), false).unwrap();
        assert!(near(big, 20_000), "{big}");
        let all = tb.count_range(0, None, false, None, false).unwrap();
        assert!(near(all, n as u64), "{all}");
        // a prefix of the secondary key
        let a7 = tb.count_range(1, Some(&k(7)), true, Some(&k(7)), true).unwrap();
        assert!(near(a7, (n / 50) as u64), "{a7}");
        let a_lt_10 = tb.count_range(1, None, false, Some(&k(10)), false).unwrap();
        assert!(near(a_lt_10, (n / 5) as u64), "{a_lt_10}");
        // cardinality: exact when every leaf is read, close from a sample
        let parts = [4, PART_NULLABLE | 4, 4];
        assert_eq!(tb.key_stats(1, &parts, true).unwrap(), vec![50, 1000, n as u64]);
        assert_eq!(tb.key_stats(0, &[4], true).unwrap(), vec![n as u64]);
        let (s, exact) = n_diff(&mut tb.shared.trees[1].write(), &parts, 8).unwrap();
        assert!(!exact);
        assert!(s[0] < 200 && near(s[1], 1000) && near(s[2], n as u64), "{s:?}");
        drop(tb);
        e.checkpoint_now().unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Index-only reads: a secondary entry gives its key bytes and primary key,
    /// no row (and no clustered lookup: a row missing from the clustered tree is
    /// not noticed then, where a full read calls it corruption); own uncommitted
    /// changes are seen; the AUTO_INCREMENT check's unlocked read is never
    /// index-only.
    #[test]
    fn keys_only_reads_give_the_entry_not_the_row() {
        let d = dir("keysonly", 0);
        let t = d.join("t");
        create(&t, 2, 0).unwrap();
        let e = Engine::open(&d.join("eng"), 64, FlushPolicy::OncePerSecond).unwrap();
        let mut tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
        let mut h = TrxHandle::new();
        for i in 0u32..100 {
            let sec = (1000 - i).to_be_bytes().to_vec();
            tb.insert(&e, &mut h, &i.to_be_bytes(), b"row", &[(sec, false)]).unwrap();
        }
        tb.set_keys_only(true);
        assert!(tb.seek(&e, &mut h, 1, &950u32.to_be_bytes(), Find::Exact).unwrap());
        assert_eq!(tb.key(), [950u32.to_be_bytes(), 50u32.to_be_bytes()].concat());
        assert_eq!(tb.pk, 50u32.to_be_bytes());
        assert!(tb.row.is_empty());
        // the steps after the seek too, in both directions
        tb.set_prefix(None);
        assert!(tb.next(false).unwrap());
        assert_eq!(tb.pk, 49u32.to_be_bytes());
        assert!(tb.row.is_empty());
        assert!(tb.next(true).unwrap());
        assert_eq!(tb.pk, 50u32.to_be_bytes());
        // the clustered index gives rows whatever the flag
        assert!(tb.edge(&e, &mut h, 0, false).unwrap());
        assert_eq!(tb.row, b"row");
        // off again: the row is looked up
        tb.set_keys_only(false);
        assert!(tb.seek(&e, &mut h, 1, &950u32.to_be_bytes(), Find::Exact).unwrap());
        assert_eq!((tb.pk.as_slice(), tb.row.as_slice()), (&50u32.to_be_bytes()[..], &b"row"[..]));
        // own uncommitted changes: an entry gone, a new one there
        tb.delete(&e, &mut h, &50u32.to_be_bytes(), &[(950u32.to_be_bytes().to_vec(), false)]).unwrap();
        tb.insert(&e, &mut h, &500u32.to_be_bytes(), b"new", &[(950u32.to_be_bytes().to_vec(), false)]).unwrap();
        tb.set_keys_only(true);
        assert!(tb.seek(&e, &mut h, 1, &950u32.to_be_bytes(), Find::Exact).unwrap());
        assert_eq!(tb.pk, 500u32.to_be_bytes());
        tb.set_prefix(Some(950u32.to_be_bytes().to_vec()));
        assert!(!tb.next(false).unwrap());
        // the unlocked read (AUTO_INCREMENT check) reads rows
        assert!(tb.edge_unlocked(1, true).unwrap());
        assert_eq!(tb.row, b"row");
        h.rollback(&e).unwrap();
        drop(tb);
        e.checkpoint_now().unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }

    /// The distinct-value counts outlive a restart (stored in the index's meta
    /// page when computed): after a clean restart and after a crash (the log
    /// made durable by a later commit) they are read back, not sampled again; a
    /// crash before they reached the log loses them (they are sampled again),
    /// and never damages the tree; TRUNCATE forgets them.
    #[test]
    fn statistics_outlive_a_restart() {
        let d = dir("pstats", 0);
        let t = d.join("t");
        create(&t, 2, 0).unwrap();
        let parts = [4, 4];
        let open = |e: &Engine| BtreeTable::open(e, &t, vec![true, false], false).unwrap();
        let counted = |tb: &BtreeTable| tb.shared.stats_counted.load(Ordering::Relaxed);
        let eng = || Engine::open(&d.join("eng"), 256, FlushPolicy::EveryCommit).unwrap();
        let crash = |e: Engine, tb: BtreeTable, power_loss: bool| {
            std::mem::forget(tb);
            TABLES.lock().remove(&t);
            e.simulate_crash(power_loss);
        };
        let e = eng();
        let mut tb = open(&e);
        let mut h = TrxHandle::new();
        for i in 0..30_000u32 {
            let j = ((i as u64 * 2654435761) % 30_000) as u32;
            tb.insert(&e, &mut h, &j.to_be_bytes(), &[3u8; 100], &[([(j % 70).to_be_bytes(), j.to_be_bytes()].concat(), false)]).unwrap();
        }
        h.commit(&e, true).unwrap();
        // the automatic count samples 32 leaves; ANALYZE reads them all here
        let sampled = tb.key_stats(1, &parts, false).unwrap();
        let analyzed = tb.key_stats(1, &parts, true).unwrap();
        assert_eq!(analyzed, vec![70, 30_000]);
        assert_ne!(sampled, analyzed, "the test needs a sample that differs");
        assert_eq!(counted(&tb), 2);
        drop(tb);
        e.checkpoint_now().unwrap();
        drop(e);

        // a clean restart
        let e = eng();
        let tb = open(&e);
        assert_eq!(tb.key_stats(1, &parts, false).unwrap(), analyzed);
        assert_eq!(counted(&tb), 0, "sampled again after the restart");
        // another layout is counted again (and stored in place of the first:
        // one block per index), then a crash before the log reached the disk:
        // the newest counts are lost, the older ones are intact
        let stored_parts = |tb: &BtreeTable| tb.shared.trees[1].read().stored_stats().map(|s| s.parts.clone());
        assert_eq!(tb.key_stats(1, &[4], true).unwrap(), vec![70]);
        assert_eq!(stored_parts(&tb), Some(vec![4]));
        crash(e, tb, true);
        let e = eng();
        let mut tb = open(&e);
        assert!(tb.check().unwrap().is_empty());
        assert_eq!(stored_parts(&tb), Some(vec![4, 4]));
        assert_eq!(tb.key_stats(1, &parts, false).unwrap(), analyzed);
        assert_eq!(counted(&tb), 0);
        // again, with a commit that makes the log durable past them: kept
        assert_eq!(tb.key_stats(1, &[4], true).unwrap(), vec![70]);
        let mut h = TrxHandle::new();
        let sec = [[0u8; 4], [0xFF; 4]].concat();
        tb.insert(&e, &mut h, &[0xFF; 4], &[1], &[(sec, false)]).unwrap();
        h.commit(&e, true).unwrap();
        crash(e, tb, true);
        let e = eng();
        let mut tb = open(&e);
        assert!(tb.check().unwrap().is_empty());
        assert_eq!(stored_parts(&tb), Some(vec![4]));
        assert_eq!(tb.key_stats(1, &[4], false).unwrap(), vec![70]);
        assert_eq!(counted(&tb), 0, "counted again after the crash");
        // TRUNCATE forgets them
        let mut h = TrxHandle::new();
        tb.truncate(&e, &mut h).unwrap();
        h.commit(&e, true).unwrap();
        assert!(tb.shared.trees[1].read().stored_stats().is_none());
        drop(tb);
        e.checkpoint_now().unwrap();
        drop(e);
        let e = eng();
        let tb = open(&e);
        assert!(tb.shared.key_stats.lock().is_empty());
        drop(tb);
        e.checkpoint_now().unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Tree files map back to their tables, partitions named like an index
    /// suffix (`i1`) included.
    #[test]
    fn table_of_index_knows_partitions_named_like_indexes() {
        let d = dir("tofi", 0);
        let files = [
            ("u.rbt", "u"),
            ("u#i1.rbt", "u"),
            ("u#i12.rbt", "u"),
            ("t#P#i1.rbt", "t#P#i1"),
            ("t#P#i1#i1.rbt", "t#P#i1"),
            ("t#P#i1#i2.rbt", "t#P#i1"),
            ("t#P#p0.rbt", "t#P#p0"),
            ("t#P#p0#i1.rbt", "t#P#p0"),
            ("t#P#p0#SP#i2.rbt", "t#P#p0#SP#i2"),
            ("t#P#p0#SP#i2#i1.rbt", "t#P#p0#SP#i2"),
        ];
        for (f, _) in files {
            std::fs::write(d.join(f), b"").unwrap();
        }
        for (f, table) in files {
            assert_eq!(table_of_index(&d.join(f)), d.join(table), "{f}");
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A prepared transaction recovered after a crash locks the table it changed
    /// again, also when that is a partition named `i1` (its clustered file
    /// `t#P#i1.rbt` was once taken for index 1 of a table `t#P`).
    #[test]
    fn a_recovered_prepared_transaction_locks_its_partition() {
        let d = dir("xapart", 0);
        let t = d.join("t#P#i1");
        create(&t, 2, 0).unwrap();
        let xid = b"xa-part-test".to_vec();
        {
            let e = Engine::open(&d.join("eng"), 16, FlushPolicy::EveryCommit).unwrap();
            let mut tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
            let mut h = TrxHandle::new();
            assert_eq!(tb.insert(&e, &mut h, b"k", b"row", &[(b"s".to_vec(), false)]).unwrap(), None);
            h.prepare(&e, &xid).unwrap();
            // the crash
            std::mem::forget(h);
            std::mem::forget(tb);
            std::mem::forget(e);
            TABLES.lock().clear();
        }
        let e = Engine::open(&d.join("eng"), 16, FlushPolicy::EveryCommit).unwrap();
        let held = |p: &Path| table_lock(p).m.lock().exclusive.is_some();
        let ours = |r: &RecoveredPrepared| r.xid == xid;
        assert_eq!(e.recovered_prepared.lock().iter().filter(|r| ours(r)).count(), 1);
        adopt_recovered_prepared(&e).unwrap();
        assert!(held(&t), "the partition is not locked");
        assert!(!held(&d.join("t#P")), "a table t#P is locked");
        assert!(end_prepared(&e, &xid, false).unwrap());
        assert!(!held(&t));
        let _ = std::fs::remove_dir_all(&d);
    }

    /// The server's recovery (xarecover_handlerton) with room for `len` XIDs
    /// per call, over what the handlerton's recover (C++ over prepared_xids) gives
    /// it: it ends each XID it gets (here: forgets it) unless `keep`, and asks
    /// again until it gets fewer than `len`. Returns what it got, and what the
    /// C++ side would have logged as malformed (an XID starting with `bad`).
    fn server_pass(pass: &mut RecoverPass, prepared: &mut Vec<Vec<u8>>, len: usize, keep: bool) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let (mut got, mut logged) = (Vec::new(), Vec::new());
        loop {
            // rust_bt_recover
            let all = pass.pending(prepared.iter().cloned());
            let (mut batch, mut walked) = (Vec::new(), Vec::new());
            for x in all {
                if batch.len() == len {
                    break;
                }
                if x.starts_with(b"bad") {
                    logged.push(x.clone());
                } else {
                    batch.push(x.clone());
                }
                walked.push(x);
            }
            let n = batch.len();
            pass.given(walked, n < len);
            // the server
            if !keep {
                prepared.retain(|x| !batch.contains(x));
            }
            got.extend(batch);
            if n == 0 || n < len {
                return (got, logged);
            }
        }
    }

    /// More prepared XIDs than the server has room for per call: every one is
    /// given once per pass, none is lost, a malformed one is logged (not given),
    /// and the next pass (the server's dry run) sees again what is left.
    #[test]
    fn every_prepared_xid_reaches_the_server() {
        let xid = |i: u8| format!("xid{i}").into_bytes();
        for (count, len) in [(8u8, 3usize), (6, 3), (2, 3), (3, 3), (9, 1)] {
            let mut prepared: Vec<Vec<u8>> = (0..count).map(xid).collect();
            prepared.push(b"bad-one".to_vec());
            let mut want: Vec<Vec<u8>> = (0..count).map(xid).collect();
            want.sort();
            let mut pass = RecoverPass::default();
            // a first pass that ends none (as a recovery that collects), then one
            // that ends all, then a dry run that finds none left
            let (mut got, logged) = server_pass(&mut pass, &mut prepared, len, true);
            got.sort();
            assert_eq!(got, want, "{count} XIDs, room for {len}");
            assert_eq!(logged, vec![b"bad-one".to_vec()]);
            let (mut got, _) = server_pass(&mut pass, &mut prepared, len, false);
            got.sort();
            assert_eq!(got, want, "second pass: {count} XIDs, room for {len}");
            assert_eq!(prepared, vec![b"bad-one".to_vec()]);
            let (got, logged) = server_pass(&mut pass, &mut prepared, len, true);
            assert!(got.is_empty());
            assert_eq!(logged, vec![b"bad-one".to_vec()]);
        }
    }

    fn prepared_xids_all() -> Vec<Vec<u8>> {
        PREPARED.lock().keys().filter(|x| x.starts_with(b"xa-test-")).cloned().collect()
    }
}
