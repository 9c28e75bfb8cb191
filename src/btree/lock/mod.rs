//! Locks. Today: table locks ([`TableLock`]), held by transactions until they
//! end (shared to read, exclusive to write), with waits that time out
//! (`rust_lock_wait_timeout`) and can be interrupted ([`Interrupt`]: KILL, a
//! client gone), and deadlock detection over every lock wait
//! ([`deadlock`]: a wait that closes a cycle ends at once). This is where row
//! locks will go. Uses no other B-tree layer (only the session probe,
//! [`crate::session`]).

pub mod deadlock;
pub mod row;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::Error;

/// A lock: its state under one mutex, with one condvar for its waiters, and
/// the table it belongs to. [`TableLock`] and [`row::RowLocks`] are two.
#[derive(Default)]
pub struct Lock<S> {
    /// The table's path without extension (`./db/t`), for reports.
    pub(crate) name: PathBuf,
    pub(crate) m: Mutex<S>,
    pub(crate) cv: Condvar,
}

/// A table lock, held by transactions until they end.
pub type TableLock = Lock<LockState>;

/// What a lock's state tells of its waits (for [`Waitable`]).
pub(crate) trait Waits {
    /// Whether `trx` waits for this lock now.
    fn is_waiting(&self, trx: u64) -> bool;
    /// The transactions `trx`'s wait is behind (none if it does not wait).
    fn blockers_of(&self, trx: u64) -> Vec<u64>;
    /// What kind of lock it is, for reports (`table lock`, `row lock`).
    const KIND: &'static str;
}

/// A table lock's modes, as bits of a holder's set (a transaction may hold
/// several: IX and S, say): the intention modes say the transaction locks
/// rows of the table (IS: to read them under shared row locks, IX: to write or
/// lock them exclusive); S and X lock the whole table (LOCK TABLES, TRUNCATE,
/// REPAIR, tables of formats before row versions). InnoDB's table lock modes.
pub mod mode {
    pub const IS: u8 = 1;
    pub const IX: u8 = 2;
    pub const S: u8 = 4;
    pub const X: u8 = 8;

    /// The modes of other transactions a request of `m` cannot be granted beside.
    pub fn conflicts(m: u8) -> u8 {
        match m {
            IS => X,
            IX => S | X,
            S => IX | X,
            _ => IS | IX | S | X,
        }
    }

    /// The modes that, held, make a request of `m` needless.
    pub fn covered_by(m: u8) -> u8 {
        match m {
            IS => IS | IX | S | X,
            IX => IX | X,
            S => S | X,
            _ => X,
        }
    }

    /// Its name in reports.
    pub fn name(m: u8) -> &'static str {
        match m {
            IS => "IS",
            IX => "IX",
            S => "S",
            _ => "X",
        }
    }
}

#[derive(Default)]
pub struct LockState {
    /// Per holder the modes it holds ([`mode`] bits).
    pub(crate) held: HashMap<u64, u8>,
    /// Transactions waiting for it, in the order they began to wait (for the
    /// queue rule and for INFORMATION_SCHEMA.RUST_LOCKS and RUST_LOCK_WAITS).
    pub(crate) waiting: Vec<Waiting>,
}

/// A request waiting for a table lock.
#[derive(Clone, Copy)]
pub(crate) struct Waiting {
    pub(crate) trx: u64,
    pub(crate) want: Request,
    pub(crate) since: Instant,
}

/// What a transaction asks of a table lock.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Request {
    /// To write (exclusive); else to read (shared).
    pub exclusive: bool,
    /// Only an intention (IS or IX): the transaction locks rows, one by one,
    /// in the row lock table ([`row`]).
    pub intention: bool,
    /// A `LOW_PRIORITY` write (`DELETE`/`UPDATE LOW_PRIORITY`, or any write
    /// under `low_priority_updates`): it waits for the readers that come while
    /// it waits, instead of holding them back (see [`LockState::behind_writer`]).
    pub low_priority: bool,
}

/// `true` asks for the lock exclusive, `false` shared.
impl From<bool> for Request {
    fn from(exclusive: bool) -> Request {
        Request { exclusive, intention: false, low_priority: false }
    }
}

impl Request {
    /// An intention lock: IX (`exclusive`) or IS.
    pub fn intention(exclusive: bool) -> Request {
        Request { exclusive, intention: true, low_priority: false }
    }

    /// Its [`mode`] bit.
    pub fn mode(&self) -> u8 {
        match (self.intention, self.exclusive) {
            (true, false) => mode::IS,
            (true, true) => mode::IX,
            (false, false) => mode::S,
            (false, true) => mode::X,
        }
    }
}

impl LockState {
    /// The transactions a request of `trx` (`exclusive` or shared) waits
    /// behind: the exclusive holder; for an exclusive request every shared
    /// holder too; for a new shared request every other transaction queued for
    /// it exclusively (see [`Self::behind_writer`]). The lock wait reports and
    /// the deadlock search read these.
    pub(crate) fn blockers(&self, trx: u64, want: Request) -> Vec<u64> {
        let m = want.mode();
        let mut by: Vec<u64> =
            self.held.iter().filter(|&(&h, &modes)| h != trx && modes & mode::conflicts(m) != 0).map(|(&h, _)| h).collect();
        by.sort_unstable();
        if !self.held.contains_key(&trx) {
            by.extend(self.queued_ahead(trx, m));
        }
        by
    }

    /// The other transactions waiting (ahead of `trx`, if it waits) for a mode
    /// that conflicts with `m`: a new request queues behind them (all but
    /// `LOW_PRIORITY` writers).
    fn queued_ahead(&self, trx: u64, m: u8) -> impl Iterator<Item = u64> + '_ {
        self.waiting
            .iter()
            .take_while(move |w| w.trx != trx)
            .filter(move |w| !w.want.low_priority && w.want.mode() & mode::conflicts(m) != 0)
            .map(|w| w.trx)
    }

    /// Whether a shared request of `trx` queues behind a writer: a transaction
    /// that does not hold the lock yet waits while another waits to take it
    /// exclusively. Without this a stream of readers, each taking the lock
    /// before the last lets it go, starves a writer (sysbench's
    /// oltp_read_write at 4 threads did half as much: every writer that
    /// upgraded its lock waited for readers that kept coming). A holder asking
    /// again is granted at once (it would deadlock with the writer otherwise),
    /// and a `LOW_PRIORITY` writer holds no reader back: that is what the
    /// keyword asks for (MyISAM's THR_LOCK gives it so, and the server's
    /// `storage_engine` tests `delete_low_prio`/`update_low_prio` check it).
    fn behind_writer(&self, trx: u64, m: u8) -> bool {
        !self.held.contains_key(&trx) && self.queued_ahead(trx, m).next().is_some()
    }

    /// Whether `trx` is waiting for this lock now (it is from its first
    /// refusal until its wait ends, granted or not).
    pub(crate) fn is_waiting(&self, trx: u64) -> bool {
        self.waiting.iter().any(|w| w.trx == trx)
    }
}

pub static LOCK_WAIT_TIMEOUT_SECS: AtomicU64 = AtomicU64::new(50);

pub(crate) static LOCKS: LazyLock<Mutex<HashMap<PathBuf, Weak<TableLock>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

pub(crate) fn table_lock(path: &Path) -> Arc<TableLock> {
    let mut m = LOCKS.lock();
    if let Some(l) = m.get(path).and_then(Weak::upgrade) {
        return l;
    }
    let l = Arc::new(TableLock { name: path.to_path_buf(), ..TableLock::default() });
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
    /// The wait would have closed a deadlock, and this transaction was chosen
    /// to be rolled back to break it.
    Deadlock,
}

impl From<LockDenied> for Error {
    fn from(d: LockDenied) -> Error {
        match d {
            LockDenied::Timeout => Error::LockWait,
            LockDenied::Interrupted => Error::Interrupted,
            LockDenied::Deadlock => Error::Deadlock,
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
    pub(crate) raised: AtomicBool,
    pub(crate) waiting_on: Mutex<Option<Arc<dyn Waitable>>>,
}

impl Interrupt {
    pub fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        if let Some(l) = self.waiting_on.lock().as_ref() {
            // under the lock's mutex: the waiter checks `raised` under it before
            // it sleeps, so the wake-up cannot fall between the two
            l.wake();
        }
    }
}

pub use crate::session::{Probe, StopCheck, session_stopped, set_probe};

/// How often a lock wait asks its session whether to stop, besides when raised.
pub const PROBE_EVERY: Duration = Duration::from_millis(100);

/// A lock request's way to be stopped: its transaction's interrupt and session.
pub(crate) struct Stopper<'a> {
    pub(crate) interrupt: &'a Interrupt,
    pub(crate) session: usize,
    /// The statement's own limit on a wait in seconds, if shorter than
    /// `rust_lock_wait_timeout` (0: NOWAIT).
    pub(crate) timeout: Option<u64>,
}

impl Stopper<'_> {
    pub(crate) fn should_stop(&self) -> bool {
        self.interrupt.raised.swap(false, Ordering::SeqCst);
        session_stopped(self.session)
    }
}

/// A lock transactions wait for (a table lock, a row lock queue): what the
/// shared wait loop ([`wait_for`]), the deadlock detector and [`Interrupt`]
/// need of it. Each keeps its state under one mutex with one condvar.
pub(crate) trait Waitable: Send + Sync {
    /// The transactions `trx`'s wait is behind now (none once its wait has
    /// ended: granted, timed out or interrupted).
    fn blockers_of(&self, trx: u64) -> Vec<u64>;
    /// Under the lock's mutex: if `trx` still waits for it, raises `flag` and
    /// wakes it (so it ends its wait as a deadlock's victim); whether it did.
    fn choose(&self, trx: u64, flag: &AtomicBool) -> bool;
    /// Wakes every waiter (under the lock's mutex, so no wake-up is lost).
    fn wake(&self);
    /// The table it belongs to (`./db/t`), for reports.
    fn table(&self) -> &Path;
    /// What kind of lock it is (see [`Waits::KIND`]).
    fn kind(&self) -> &'static str;
}

/// The wait every lock shares: `grant` (under the lock's mutex `m`) says
/// whether `trx` may take the lock now (`Some`: done, granted or refused);
/// else `trx` waits on `cv`, registered with `enqueue` (once) and `dequeue`d
/// when the wait ends (told whether it failed), up to the lock wait timeout
/// (or the statement's shorter one), unless `stop` says the statement is to
/// stop or the wait closes a deadlock whose victim `trx` is (it is, or becomes,
/// one if its `weight` is the cycle's least: see [`deadlock`]). `me` is the
/// lock as the interrupt and the detector see it; `exclusive` is what the
/// deadlock report says of the request.
#[allow(clippy::too_many_arguments)]
pub(crate) fn wait_for<S, R>(
    me: Arc<dyn Waitable>,
    m: &Mutex<S>,
    cv: &Condvar,
    trx: u64,
    exclusive: bool,
    weight: u64,
    stop: Option<&Stopper>,
    mut grant: impl FnMut(&mut S) -> Option<std::result::Result<R, LockDenied>>,
    mut enqueue: impl FnMut(&mut S, Instant),
    mut dequeue: impl FnMut(&mut S, bool),
) -> std::result::Result<R, LockDenied> {
    let started = Instant::now();
    let secs = LOCK_WAIT_TIMEOUT_SECS.load(Ordering::Relaxed);
    let secs = stop.and_then(|s| s.timeout).map_or(secs, |t| t.min(secs));
    let deadline = started + Duration::from_secs(secs);
    let mut registered = false;
    let mut waited = false;
    // in the wait-for graph, with the flag that says it was made a victim
    let mut in_graph: Option<Arc<AtomicBool>> = None;
    let mut s = m.lock();
    let result = loop {
        // a victim ends its wait even if the lock has come free meanwhile:
        // the detector counts on its rollback to break the cycle
        if in_graph.as_ref().is_some_and(|c| c.load(Ordering::SeqCst)) {
            break Err(LockDenied::Deadlock);
        }
        if let Some(r) = grant(&mut s) {
            break r;
        }
        if !waited {
            waited = true;
            enqueue(&mut s, started);
        }
        // a request that will not wait (NOWAIT) is in no deadlock: it must
        // not make another transaction a victim
        if in_graph.is_none() && secs > 0 {
            // the graph's mutex before any lock's: never under ours
            match MutexGuard::unlocked(&mut s, || deadlock::enter(&me, trx, exclusive, weight)) {
                Ok(chosen) => in_graph = Some(chosen),
                Err(()) => break Err(LockDenied::Deadlock),
            }
            // the lock may have been released meanwhile
            continue;
        }
        let Some(stop) = stop else {
            if cv.wait_until(&mut s, deadline).timed_out() {
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
            cv.wait_until(&mut s, deadline.min(now + PROBE_EVERY));
        }
        // the probe reads the server's session state: never under our mutex
        if MutexGuard::unlocked(&mut s, || stop.should_stop()) {
            break Err(LockDenied::Interrupted);
        }
    };
    if waited {
        dequeue(&mut s, result.is_err());
    }
    drop(s);
    if in_graph.is_some() {
        deadlock::leave(trx);
    }
    if registered {
        *stop.unwrap().interrupt.waiting_on.lock() = None;
    }
    // a request that could not wait (NOWAIT, SKIP LOCKED) did not wait
    if waited && secs > 0 {
        crate::metrics::LOCK_WAITS.inc();
        crate::metrics::LOCK_WAIT_MICROS.add(started.elapsed().as_micros() as u64);
        if matches!(result, Err(LockDenied::Timeout)) {
            crate::metrics::LOCK_TIMEOUTS.inc();
        }
        // (a deadlock is counted where it is found: in deadlock::enter)
    }
    result
}

impl Waits for LockState {
    const KIND: &'static str = "table lock";

    fn is_waiting(&self, trx: u64) -> bool {
        LockState::is_waiting(self, trx)
    }

    fn blockers_of(&self, trx: u64) -> Vec<u64> {
        match self.waiting.iter().find(|w| w.trx == trx) {
            Some(w) => self.blockers(trx, w.want),
            None => Vec::new(),
        }
    }
}

impl<S: Waits + Send> Waitable for Lock<S> {
    fn blockers_of(&self, trx: u64) -> Vec<u64> {
        self.m.lock().blockers_of(trx)
    }

    fn choose(&self, trx: u64, flag: &AtomicBool) -> bool {
        let s = self.m.lock();
        if !s.is_waiting(trx) {
            return false;
        }
        flag.store(true, Ordering::SeqCst);
        self.cv.notify_all();
        true
    }

    fn wake(&self) {
        let _s = self.m.lock();
        self.cv.notify_all();
    }

    fn table(&self) -> &Path {
        &self.name
    }

    fn kind(&self) -> &'static str {
        S::KIND
    }
}

impl TableLock {
    /// Takes the lock for `trx` (shared or exclusive, see [`Request`]),
    /// waiting as [`wait_for`] says; `Ok(true)` if `trx` did not hold it (or
    /// not exclusive, when it asks for that) before. `me` is this lock's own
    /// Arc (for the interrupt and the deadlock detector to wake it).
    pub(crate) fn acquire(
        &self,
        me: &Arc<TableLock>,
        trx: u64,
        want: impl Into<Request>,
        weight: u64,
        stop: Option<&Stopper>,
    ) -> std::result::Result<bool, LockDenied> {
        let want = want.into();
        let exclusive = want.exclusive;
        let m = want.mode();
        let grant = |s: &mut LockState| {
            let mine = s.held.get(&trx).copied().unwrap_or(0);
            if mine & mode::covered_by(m) != 0 {
                return Some(Ok(false));
            }
            let conflict = s.held.iter().any(|(&h, &modes)| h != trx && modes & mode::conflicts(m) != 0);
            if conflict || s.behind_writer(trx, m) {
                return None;
            }
            *s.held.entry(trx).or_default() |= m;
            Some(Ok(true))
        };
        let enqueue = |s: &mut LockState, since| s.waiting.push(Waiting { trx, want, since });
        let dequeue = |s: &mut LockState, failed: bool| {
            s.waiting.retain(|w| w.trx != trx);
            // new requests queued behind this one may go now that it gives up
            if failed {
                self.cv.notify_all();
            }
        };
        wait_for(me.clone(), &self.m, &self.cv, trx, exclusive, weight, stop, grant, enqueue, dequeue)
    }

    /// Who holds it and who waits for it, now.
    fn report(&self, table: &Path, out: &mut Vec<LockEntry>) {
        let s = self.m.lock();
        let mut holders: Vec<(u64, u8)> = s.held.iter().map(|(&t, &m)| (t, m)).collect();
        holders.sort_unstable();
        for (t, modes) in holders {
            // (every mode held, strongest first)
            for m in [mode::X, mode::S, mode::IX, mode::IS] {
                if modes & m != 0 {
                    out.push(LockEntry {
                        table: table.to_path_buf(),
                        trx: t,
                        exclusive: m & (mode::X | mode::IX) != 0,
                        mode: mode::name(m).into(),
                        row: None,
                        waiting_secs: None,
                        blocked_by: vec![],
                    });
                }
            }
        }
        for w in &s.waiting {
            let (t, since) = (w.trx, w.since);
            let mut by = s.blockers(t, w.want);
            by.sort_unstable();
            by.dedup();
            out.push(LockEntry {
                table: table.to_path_buf(),
                trx: t,
                exclusive: w.want.exclusive,
                mode: mode::name(w.want.mode()).into(),
                row: None,
                waiting_secs: Some(since.elapsed().as_secs_f64()),
                blocked_by: by,
            });
        }
    }

    /// The modes `trx` holds ([`mode`] bits).
    pub(crate) fn modes(&self, trx: u64) -> u8 {
        self.m.lock().held.get(&trx).copied().unwrap_or(0)
    }

    pub(crate) fn release(&self, trx: u64) {
        let mut s = self.m.lock();
        s.held.remove(&trx);
        self.cv.notify_all();
    }
}

/// A lock held or waited for (INFORMATION_SCHEMA.RUST_LOCKS, RUST_LOCK_WAITS).
#[derive(Debug, Clone, PartialEq)]
pub struct LockEntry {
    /// The table (its path without extension, `./db/t`).
    pub table: PathBuf,
    pub trx: u64,
    pub exclusive: bool,
    /// The mode: a table lock's (IS, IX, S, X) or a row lock's, named as
    /// InnoDB's performance_schema.data_locks names them (`X` next-key,
    /// `X,REC_NOT_GAP`, `X,GAP`, `X,GAP,INSERT_INTENTION`).
    pub mode: String,
    /// A row lock's index (0: the clustered one) and point (the key's bytes
    /// in hex, or `supremum`, the end of the index); None for a table lock.
    pub row: Option<(u32, String)>,
    /// None: held; Some: waited for, this long so far.
    pub waiting_secs: Option<f64>,
    /// For a wait: the transactions it waits for.
    pub blocked_by: Vec<u64>,
}

/// Tests that simulate a crash: the locks of tables under `d` are forgotten
/// (the handles that hold them were leaked, not dropped).
#[cfg(test)]
pub(crate) fn forget_under(d: &Path) {
    LOCKS.lock().retain(|p, _| !p.starts_with(d));
    row::forget_under(d);
}

/// Every table lock held or waited for now, by table then holders first.
pub fn locks_now() -> Vec<LockEntry> {
    let locks: Vec<(PathBuf, Arc<TableLock>)> =
        LOCKS.lock().iter().filter_map(|(p, w)| w.upgrade().map(|l| (p.clone(), l))).collect();
    let mut out = Vec::new();
    for (p, l) in &locks {
        l.report(p, &mut out);
    }
    for l in row::all_row_locks() {
        let s = l.m.lock();
        for (at, trx, req, granted, since) in s.entries() {
            let point = match &at.1 {
                row::Point::Key(k) => k.iter().map(|b| format!("{b:02x}")).collect(),
                row::Point::End => "supremum".to_string(),
            };
            let mut blocked_by = if granted { Vec::new() } else { s.blockers(trx) };
            blocked_by.dedup();
            out.push(LockEntry {
                table: l.name.clone(),
                trx,
                exclusive: req.mode == row::Mode::Exclusive,
                mode: req.name().into(),
                row: Some((at.0, point)),
                waiting_secs: (!granted).then(|| since.elapsed().as_secs_f64()),
                blocked_by,
            });
        }
    }
    // (a stable sort: each table's table locks before its row locks)
    out.sort_by(|a, b| a.table.cmp(&b.table).then(a.waiting_secs.is_some().cmp(&b.waiting_secs.is_some())).then(a.trx.cmp(&b.trx)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wait is listed with what it waits for while it waits, and is gone once
    /// the lock is granted.
    #[test]
    fn a_wait_is_listed_with_what_it_waits_for() {
        let path = PathBuf::from("./lock_report_db/t");
        let mine = || -> Vec<LockEntry> { locks_now().into_iter().filter(|e| e.table == path).collect() };
        let l = table_lock(&path);
        assert_eq!(l.acquire(&l, 1, true, 0, None), Ok(true));
        let l2 = l.clone();
        let waiter = std::thread::spawn(move || l2.acquire(&l2, 2, false, 0, None));
        let t0 = Instant::now();
        while !mine().iter().any(|e| e.waiting_secs.is_some()) {
            assert!(t0.elapsed() < Duration::from_secs(20), "the wait never showed");
            std::thread::sleep(Duration::from_millis(5));
        }
        let now = mine();
        assert_eq!(now.len(), 2);
        assert_eq!((now[0].trx, now[0].exclusive, now[0].waiting_secs), (1, true, None));
        assert_eq!((now[1].trx, now[1].exclusive, now[1].blocked_by.clone()), (2, false, vec![1]));
        l.release(1);
        assert_eq!(waiter.join().unwrap(), Ok(true));
        let now = mine();
        assert_eq!(now.len(), 1);
        assert_eq!((now[0].trx, now[0].exclusive, now[0].waiting_secs), (2, false, None));
        l.release(2);
    }

    fn until_waiting(l: &TableLock, trx: u64) {
        let t0 = Instant::now();
        while !l.m.lock().is_waiting(trx) {
            assert!(t0.elapsed() < Duration::from_secs(20), "{trx} never waited");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// A writer waiting for readers to finish is not starved by new readers:
    /// a new shared request queues behind it (and says so in the report),
    /// while a reader that already holds the lock is granted again at once.
    #[test]
    fn a_new_reader_queues_behind_a_waiting_writer() {
        let path = PathBuf::from("./lock_fair_db/t");
        let l = table_lock(&path);
        assert_eq!(l.acquire(&l, 1, false, 0, None), Ok(true));
        let l2 = l.clone();
        let writer = std::thread::spawn(move || l2.acquire(&l2, 2, true, 0, None));
        until_waiting(&l, 2);
        let l3 = l.clone();
        let reader = std::thread::spawn(move || l3.acquire(&l3, 3, false, 0, None));
        until_waiting(&l, 3);
        assert_eq!(l.m.lock().blockers(3, false.into()), vec![2]);
        // the holder asks again: granted (it is not new)
        assert_eq!(l.acquire(&l, 1, false, 0, None), Ok(false));
        std::thread::sleep(Duration::from_millis(50));
        assert!(l.m.lock().is_waiting(3), "the new reader went ahead of the waiting writer");
        l.release(1);
        assert_eq!(writer.join().unwrap(), Ok(true));
        assert!(l.m.lock().is_waiting(3));
        l.release(2);
        assert_eq!(reader.join().unwrap(), Ok(true));
        l.release(3);
    }

    /// A `LOW_PRIORITY` writer waiting for a reader holds no new reader back:
    /// the new reader is granted at once and blocked by nobody, and the
    /// writer goes when both readers are gone.
    #[test]
    fn a_low_priority_writer_lets_new_readers_go_first() {
        let path = PathBuf::from("./lock_fair_db/t_low");
        let l = table_lock(&path);
        assert_eq!(l.acquire(&l, 21, false, 0, None), Ok(true));
        let l2 = l.clone();
        let low = Request { exclusive: true, intention: false, low_priority: true };
        let writer = std::thread::spawn(move || l2.acquire(&l2, 22, low, 0, None));
        until_waiting(&l, 22);
        assert!(l.m.lock().blockers(23, false.into()).is_empty());
        assert_eq!(l.acquire(&l, 23, false, 0, None), Ok(true));
        l.release(21);
        std::thread::sleep(Duration::from_millis(50));
        assert!(l.m.lock().is_waiting(22), "the writer went while a reader held the lock");
        l.release(23);
        assert_eq!(writer.join().unwrap(), Ok(true));
        l.release(22);
    }

    /// A writer that gives up its wait (here: its time runs out) lets the
    /// readers queued behind it go at once, not at their next time-out.
    #[test]
    fn readers_behind_a_writer_that_gives_up_go_at_once() {
        let path = PathBuf::from("./lock_fair_db/t2");
        let l = table_lock(&path);
        assert_eq!(l.acquire(&l, 11, false, 0, None), Ok(true));
        let l2 = l.clone();
        let writer = std::thread::spawn(move || {
            let i = Interrupt::default();
            let stop = Stopper { interrupt: &i, session: 0, timeout: Some(1) };
            l2.acquire(&l2, 12, true, 0, Some(&stop))
        });
        until_waiting(&l, 12);
        let t0 = Instant::now();
        // the reader has no stop, so nothing but a wake-up ends its wait before 50 s
        let granted_at = Arc::new(AtomicU64::new(0));
        let (l3, g) = (l.clone(), granted_at.clone());
        let reader = std::thread::spawn(move || {
            let r = l3.acquire(&l3, 13, false, 0, None);
            g.store(t0.elapsed().as_millis() as u64, Ordering::SeqCst);
            r
        });
        assert_eq!(writer.join().unwrap(), Err(LockDenied::Timeout));
        let gave_up = t0.elapsed();
        assert_eq!(reader.join().unwrap(), Ok(true));
        let waited = Duration::from_millis(granted_at.load(Ordering::SeqCst)).saturating_sub(gave_up);
        assert!(waited < Duration::from_secs(5), "the reader went {waited:?} after the writer gave up");
        l.release(11);
        l.release(13);
    }
}
