//! Locks. Today: table locks ([`TableLock`]), held by transactions until they
//! end (shared to read, exclusive to write), with waits that time out
//! (`rust_lock_wait_timeout`) and can be interrupted ([`Interrupt`]: KILL, a
//! client gone), and deadlock detection over every lock wait
//! ([`deadlock`]: a wait that closes a cycle ends at once). This is where row
//! locks will go. Uses no other B-tree layer (only the session probe,
//! [`crate::session`]).

pub mod deadlock;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::Error;

/// A table lock, held by transactions until they end.
#[derive(Default)]
pub struct TableLock {
    /// The table's path without extension (`./db/t`), for reports.
    pub(crate) name: PathBuf,
    pub(crate) m: Mutex<LockState>,
    pub(crate) cv: Condvar,
}

#[derive(Default)]
pub(crate) struct LockState {
    pub(crate) shared: HashMap<u64, ()>,
    pub(crate) exclusive: Option<u64>,
    /// Transactions waiting for it: (transaction, exclusive, since), for
    /// INFORMATION_SCHEMA.RUST_LOCKS and RUST_LOCK_WAITS.
    pub(crate) waiting: Vec<(u64, bool, Instant)>,
}

impl LockState {
    /// The transactions a request of `trx` (`exclusive` or shared) waits
    /// behind: the exclusive holder, and for an exclusive request every shared
    /// holder too (the lock wait reports and the deadlock search read these).
    pub(crate) fn blockers(&self, trx: u64, exclusive: bool) -> Vec<u64> {
        let mut by: Vec<u64> = self.exclusive.into_iter().filter(|&h| h != trx).collect();
        if exclusive {
            by.extend(self.shared.keys().copied().filter(|&h| h != trx && Some(h) != self.exclusive));
        }
        by
    }

    /// Whether `trx` is waiting for this lock now (it is from its first
    /// refusal until its wait ends, granted or not).
    pub(crate) fn is_waiting(&self, trx: u64) -> bool {
        self.waiting.iter().any(|w| w.0 == trx)
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
    pub(crate) waiting_on: Mutex<Option<Arc<TableLock>>>,
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

impl TableLock {
    /// Takes the lock for `trx` (shared or exclusive); waits up to the lock wait
    /// timeout for other transactions to end, unless `stop` says the statement
    /// is to stop or the wait closes a deadlock whose victim `trx` is (it is,
    /// or becomes, one if its `weight` is the cycle's least: see
    /// [`deadlock`]). `me` is this lock's own Arc (for the interrupt and the
    /// deadlock detector to wake it).
    pub(crate) fn acquire(
        &self,
        me: &Arc<TableLock>,
        trx: u64,
        exclusive: bool,
        weight: u64,
        stop: Option<&Stopper>,
    ) -> std::result::Result<bool, LockDenied> {
        let started = Instant::now();
        let secs = LOCK_WAIT_TIMEOUT_SECS.load(Ordering::Relaxed);
        let secs = stop.and_then(|s| s.timeout).map_or(secs, |t| t.min(secs));
        let deadline = started + Duration::from_secs(secs);
        let mut registered = false;
        let mut waited = false;
        // in the wait-for graph, with the flag that says it was made a victim
        let mut in_graph: Option<Arc<AtomicBool>> = None;
        let mut s = self.m.lock();
        let result = loop {
            // a victim ends its wait even if the lock has come free meanwhile:
            // the detector counts on its rollback to break the cycle
            if in_graph.as_ref().is_some_and(|c| c.load(Ordering::SeqCst)) {
                break Err(LockDenied::Deadlock);
            }
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
            if !waited {
                waited = true;
                s.waiting.push((trx, exclusive, started));
            }
            // a request that will not wait (NOWAIT) is in no deadlock: it must
            // not make another transaction a victim
            if in_graph.is_none() && secs > 0 {
                // the graph's mutex before any lock's: never under ours
                match MutexGuard::unlocked(&mut s, || deadlock::enter(me, trx, exclusive, weight)) {
                    Ok(chosen) => in_graph = Some(chosen),
                    Err(()) => break Err(LockDenied::Deadlock),
                }
                // the lock may have been released meanwhile
                continue;
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
        if waited {
            s.waiting.retain(|w| w.0 != trx);
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

    /// Who holds it and who waits for it, now.
    fn report(&self, table: &Path, out: &mut Vec<LockEntry>) {
        let s = self.m.lock();
        let mut holders: Vec<u64> = s.shared.keys().copied().filter(|&t| Some(t) != s.exclusive).collect();
        holders.sort_unstable();
        if let Some(x) = s.exclusive {
            out.push(LockEntry { table: table.to_path_buf(), trx: x, exclusive: true, waiting_secs: None, blocked_by: vec![] });
        }
        for t in holders {
            out.push(LockEntry { table: table.to_path_buf(), trx: t, exclusive: false, waiting_secs: None, blocked_by: vec![] });
        }
        for &(t, x, since) in &s.waiting {
            let mut by = s.blockers(t, x);
            by.sort_unstable();
            out.push(LockEntry {
                table: table.to_path_buf(),
                trx: t,
                exclusive: x,
                waiting_secs: Some(since.elapsed().as_secs_f64()),
                blocked_by: by,
            });
        }
    }

    pub(crate) fn release(&self, trx: u64) {
        let mut s = self.m.lock();
        s.shared.remove(&trx);
        if s.exclusive == Some(trx) {
            s.exclusive = None;
        }
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
    /// None: held; Some: waited for, this long so far.
    pub waiting_secs: Option<f64>,
    /// For a wait: the transactions it waits for.
    pub blocked_by: Vec<u64>,
}

/// Every table lock held or waited for now, by table then holders first.
pub fn locks_now() -> Vec<LockEntry> {
    let locks: Vec<(PathBuf, Arc<TableLock>)> =
        LOCKS.lock().iter().filter_map(|(p, w)| w.upgrade().map(|l| (p.clone(), l))).collect();
    let mut out = Vec::new();
    for (p, l) in &locks {
        l.report(p, &mut out);
    }
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
}
