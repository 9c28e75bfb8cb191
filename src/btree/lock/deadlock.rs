//! Deadlock detection: the wait-for graph of lock waits, searched for a cycle
//! at the moment a transaction is about to wait, so that a deadlock ends at
//! once instead of at the lock wait timeout (as InnoDB's `lock0lock`).
//!
//! The graph is not stored as edges: [`WAITS`] says which lock each waiting
//! transaction waits for, and the edges out of a waiter are read from that
//! lock's state when the search passes (its holders that conflict with the
//! request). A cycle can only close when a transaction starts to wait (a
//! transaction that is granted a lock is not waiting, and a release only
//! removes edges), and every start of a wait is checked under [`WAITS`]'s
//! mutex, one at a time: so every cycle is found by the wait that closes it.
//! One wait can close several cycles (it waits behind several transactions):
//! the search is repeated, passing over the victims already chosen, until no
//! cycle is left or the waiter itself is the victim. A chosen victim never
//! takes its lock afterwards, even if it comes free (see `enter`).
//!
//! The victim is the transaction of the cycle with the least weight (undo
//! entries plus locks held, as InnoDB weighs a transaction), the waiter that
//! closed the cycle on a tie. The victim's wait ends with
//! [`LockDenied::Deadlock`](super::LockDenied); its statement fails with
//! ER_LOCK_DEADLOCK and the server rolls back its whole transaction, which
//! releases its locks. The latest deadlock is kept for SHOW ENGINE RUST STATUS.
//!
//! Lock order: [`WAITS`] before any lock's own mutex (a lock's mutex is never
//! held while [`WAITS`] is taken). Uses only `lock/mod.rs`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
#[cfg(test)]
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

use parking_lot::Mutex;

use super::Waitable;

/// A transaction waiting for a lock.
struct Waiter {
    lock: Arc<dyn Waitable>,
    exclusive: bool,
    weight: u64,
    /// Set when the detector chose this waiter as a deadlock's victim.
    chosen: Arc<AtomicBool>,
}

/// Every transaction waiting for a lock now, by transaction id.
static WAITS: LazyLock<Mutex<HashMap<u64, Waiter>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The latest deadlock found.
static LATEST: Mutex<Option<DeadlockReport>> = Mutex::new(None);

/// One transaction of a deadlock's cycle: what it waited for.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleMember {
    pub trx: u64,
    /// The table whose lock it waited for (`./db/t`).
    pub table: PathBuf,
    pub exclusive: bool,
    /// What kind of lock: `table lock` or `row lock`.
    pub kind: &'static str,
    /// Undo entries plus locks held when it began to wait.
    pub weight: u64,
}

/// A deadlock the detector broke.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadlockReport {
    pub when: SystemTime,
    /// The cycle, from the wait that closed it: each member waits for a lock
    /// the next one holds (or waits for ahead of it: a new reader queues
    /// behind a waiting writer), the last for one the first holds.
    pub cycle: Vec<CycleMember>,
    /// The transaction rolled back to break it.
    pub victim: u64,
}

/// The latest deadlock found since the plugin was loaded.
pub fn latest_deadlock() -> Option<DeadlockReport> {
    LATEST.lock().clone()
}

/// The transactions `trx`'s wait `w` waits behind, read from its lock now
/// (none if the wait has just ended: granted, timed out or interrupted, it
/// leaves the graph as soon as it can take the graph's mutex).
fn blockers(trx: u64, w: &Waiter) -> Vec<u64> {
    w.lock.blockers_of(trx)
}

/// A cycle through `me` in the wait-for graph, as the path from `me` (each
/// member waits for the next, the last for `me`), if there is one.
fn cycle_through(me: u64, waits: &HashMap<u64, Waiter>) -> Option<Vec<u64>> {
    // depth-first, with the path on a stack of (transaction, its blockers
    // still to visit)
    let mut seen: HashSet<u64> = HashSet::new();
    let mut path: Vec<(u64, Vec<u64>)> = vec![(me, blockers(me, waits.get(&me)?))];
    seen.insert(me);
    while let Some((_, todo)) = path.last_mut() {
        let Some(next) = todo.pop() else {
            path.pop();
            continue;
        };
        if next == me {
            return Some(path.iter().map(|(t, _)| *t).collect());
        }
        if !seen.insert(next) {
            continue;
        }
        // a holder that waits for nothing ends this way, and so does a victim
        // already chosen: its rollback will release what it holds
        if let Some(w) = waits.get(&next).filter(|w| !w.chosen.load(Ordering::SeqCst)) {
            path.push((next, blockers(next, w)));
        }
    }
    None
}

/// `trx` is about to wait for `lock`: registers the wait and looks for a
/// deadlock it would close. Returns the flag that tells the waiter it was
/// chosen as a victim later (by another transaction's wait), or `Err(())` if
/// this wait closes a deadlock and `trx` is its victim (then it is not
/// registered).
pub(super) fn enter(lock: &Arc<dyn Waitable>, trx: u64, exclusive: bool, weight: u64) -> Result<Arc<AtomicBool>, ()> {
    let mut waits = WAITS.lock();
    let chosen = Arc::new(AtomicBool::new(false));
    waits.insert(trx, Waiter { lock: lock.clone(), exclusive, weight, chosen: chosen.clone() });
    // This wait may close several cycles at once (it waits behind several
    // transactions): break each, until none is left or `trx` is the victim.
    while let Some(cycle) = cycle_through(trx, &waits) {
        let victim = *cycle.iter().min_by_key(|&&t| (waits[&t].weight, t != trx)).unwrap();
        if victim != trx {
            // A waiting victim is flagged under its lock's mutex, and only if
            // it still waits: it checks the flag under that mutex before it
            // takes the lock, so once flagged it ends its wait with the
            // deadlock and is rolled back (a victim granted its lock after
            // being chosen would go on holding everything, and the cycle's
            // other waits would last to the timeout). One that has just left
            // its wait is in no cycle now: search again (its edges read as
            // none).
            let v = &waits[&victim];
            if !v.lock.choose(victim, &v.chosen) {
                continue;
            }
        }
        *LATEST.lock() = Some(DeadlockReport {
            when: SystemTime::now(),
            cycle: cycle
                .iter()
                .map(|t| {
                    let w = &waits[t];
                    CycleMember {
                        trx: *t,
                        table: w.lock.table().to_path_buf(),
                        exclusive: w.exclusive,
                        kind: w.lock.kind(),
                        weight: w.weight,
                    }
                })
                .collect(),
            victim,
        });
        crate::metrics::LOCK_DEADLOCKS.inc();
        if victim == trx {
            waits.remove(&trx);
            return Err(());
        }
        // the next search passes over the flagged victim
    }
    Ok(chosen)
}

/// `trx` waits no more (granted, timed out, interrupted or chosen as victim).
pub(super) fn leave(trx: u64) {
    WAITS.lock().remove(&trx);
}

#[cfg(test)]
mod tests {
    use super::super::{LockDenied, table_lock};
    use super::*;
    use std::time::{Duration, Instant};

    /// The deadlock tests read the one LATEST report: one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// Waits until `trx` is registered as waiting.
    fn until_waiting(trx: u64) {
        let t0 = Instant::now();
        while !WAITS.lock().contains_key(&trx) {
            assert!(t0.elapsed() < Duration::from_secs(20), "trx {trx} never waited");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Two transactions each holding the table the other asks for: the second
    /// wait ends at once with a deadlock (not at the 50 s lock wait timeout), the
    /// lighter transaction is the victim, the report names the cycle, and the
    /// other transaction gets its lock once the victim's locks are released.
    #[test]
    fn a_cross_table_deadlock_ends_at_once_and_the_lighter_transaction_is_the_victim() {
        let _g = SERIAL.lock();
        let before = crate::metrics::LOCK_DEADLOCKS.get();
        let (a, b) = (table_lock(Path::new("./dl1/a")), table_lock(Path::new("./dl1/b")));
        assert_eq!(a.acquire(&a, 101, true, 0, None), Ok(true));
        assert_eq!(b.acquire(&b, 102, true, 0, None), Ok(true));
        // 101 is heavier (weight 5): it waits for b
        let b2 = b.clone();
        let heavy = std::thread::spawn(move || b2.acquire(&b2, 101, true, 5, None));
        until_waiting(101);
        let t0 = Instant::now();
        assert_eq!(a.acquire(&a, 102, true, 1, None), Err(LockDenied::Deadlock));
        assert!(t0.elapsed() < Duration::from_secs(10));
        let d = latest_deadlock().unwrap();
        assert_eq!(d.victim, 102);
        assert_eq!(
            d.cycle,
            vec![
                CycleMember { trx: 102, table: PathBuf::from("./dl1/a"), exclusive: true, kind: "table lock", weight: 1 },
                CycleMember { trx: 101, table: PathBuf::from("./dl1/b"), exclusive: true, kind: "table lock", weight: 5 },
            ]
        );
        assert!(crate::metrics::LOCK_DEADLOCKS.get() > before);
        assert!(!WAITS.lock().contains_key(&102), "the victim left the graph");
        // the victim's transaction is rolled back: its locks go
        b.release(102);
        assert_eq!(heavy.join().unwrap(), Ok(true));
        a.release(101);
        b.release(101);
    }

    /// When the waiter that closes the cycle is the heavier one, the lighter
    /// transaction already waiting is chosen: its wait ends with the deadlock
    /// and the closing waiter gets its lock after the victim releases.
    #[test]
    fn a_waiting_transaction_can_be_the_victim() {
        let _g = SERIAL.lock();
        let (a, b) = (table_lock(Path::new("./dl2/a")), table_lock(Path::new("./dl2/b")));
        assert_eq!(a.acquire(&a, 201, true, 0, None), Ok(true));
        assert_eq!(b.acquire(&b, 202, true, 0, None), Ok(true));
        let (a2, b2) = (a.clone(), b.clone());
        let light = std::thread::spawn(move || {
            let r = b2.acquire(&b2, 201, true, 1, None);
            // as the server's rollback of the victim would
            a2.release(201);
            b2.release(201);
            r
        });
        until_waiting(201);
        assert_eq!(a.acquire(&a, 202, true, 9, None), Ok(true));
        assert_eq!(light.join().unwrap(), Err(LockDenied::Deadlock));
        assert_eq!(latest_deadlock().unwrap().victim, 201);
        a.release(202);
        b.release(202);
    }

    /// Two readers of one table that both ask to write it wait for each other's
    /// shared lock: a deadlock.
    #[test]
    fn two_shared_holders_asking_for_exclusive_deadlock() {
        let _g = SERIAL.lock();
        let a = table_lock(Path::new("./dl3/a"));
        assert_eq!(a.acquire(&a, 301, false, 0, None), Ok(true));
        assert_eq!(a.acquire(&a, 302, false, 0, None), Ok(true));
        let a2 = a.clone();
        let first = std::thread::spawn(move || a2.acquire(&a2, 301, true, 3, None));
        until_waiting(301);
        assert_eq!(a.acquire(&a, 302, true, 3, None), Err(LockDenied::Deadlock));
        a.release(302);
        assert_eq!(first.join().unwrap(), Ok(true));
        a.release(301);
    }

    /// Waits that form no cycle are not deadlocks: a chain of three
    /// transactions over two tables all get their locks in turn.
    #[test]
    fn a_chain_of_waits_is_not_a_deadlock() {
        let _g = SERIAL.lock();
        let before = crate::metrics::LOCK_DEADLOCKS.get();
        let (a, b) = (table_lock(Path::new("./dl4/a")), table_lock(Path::new("./dl4/b")));
        assert_eq!(a.acquire(&a, 401, true, 0, None), Ok(true));
        assert_eq!(b.acquire(&b, 402, true, 0, None), Ok(true));
        // 402 waits for a (held by 401), 403 for b (held by 402)
        let a2 = a.clone();
        let w402 = std::thread::spawn(move || a2.acquire(&a2, 402, false, 0, None));
        until_waiting(402);
        let b2 = b.clone();
        let w403 = std::thread::spawn(move || b2.acquire(&b2, 403, true, 0, None));
        until_waiting(403);
        assert_eq!(crate::metrics::LOCK_DEADLOCKS.get(), before);
        a.release(401);
        assert_eq!(w402.join().unwrap(), Ok(true));
        a.release(402);
        b.release(402);
        assert_eq!(w403.join().unwrap(), Ok(true));
        b.release(403);
    }

    /// A cycle of three transactions over three tables is found by the wait
    /// that closes it.
    #[test]
    fn a_cycle_of_three_is_found() {
        let _g = SERIAL.lock();
        let l: Vec<_> = ["./dl5/a", "./dl5/b", "./dl5/c"].iter().map(|p| table_lock(Path::new(p))).collect();
        for (i, x) in l.iter().enumerate() {
            assert_eq!(x.acquire(x, 501 + i as u64, true, 0, None), Ok(true));
        }
        // 501 waits for b (502), 502 for c (503); 503 asks for a (501)
        let b = l[1].clone();
        let w501 = std::thread::spawn(move || b.acquire(&b, 501, true, 7, None));
        until_waiting(501);
        let c = l[2].clone();
        let w502 = std::thread::spawn(move || c.acquire(&c, 502, true, 7, None));
        until_waiting(502);
        assert_eq!(l[0].acquire(&l[0], 503, true, 7, None), Err(LockDenied::Deadlock));
        let d = latest_deadlock().unwrap();
        assert_eq!(d.cycle.iter().map(|c| c.trx).collect::<Vec<_>>(), vec![503, 501, 502]);
        assert_eq!(d.victim, 503, "on equal weights the closing waiter");
        l[2].release(503);
        assert_eq!(w502.join().unwrap(), Ok(true));
        l[1].release(502);
        l[2].release(502);
        assert_eq!(w501.join().unwrap(), Ok(true));
        for x in &l {
            x.release(501);
        }
    }

    /// A request that will not wait (NOWAIT: a timeout of 0) fails with a lock
    /// wait timeout and never makes a waiting transaction a deadlock's victim,
    /// even where waiting would have closed a cycle.
    #[test]
    fn a_nowait_request_makes_no_victim() {
        use super::super::{Interrupt, Stopper};
        let _g = SERIAL.lock();
        let (a, b) = (table_lock(Path::new("./dl6/a")), table_lock(Path::new("./dl6/b")));
        assert_eq!(a.acquire(&a, 601, true, 0, None), Ok(true));
        assert_eq!(b.acquire(&b, 602, true, 0, None), Ok(true));
        let b2 = b.clone();
        let waiter = std::thread::spawn(move || b2.acquire(&b2, 601, true, 0, None));
        until_waiting(601);
        let i = Interrupt::default();
        let nowait = Stopper { interrupt: &i, session: 0, timeout: Some(0) };
        // 602 is heavier: were it to wait, 601 would be the victim
        assert_eq!(a.acquire(&a, 602, true, 9, Some(&nowait)), Err(LockDenied::Timeout));
        assert!(WAITS.lock().get(&601).is_some_and(|w| !w.chosen.load(Ordering::SeqCst)));
        b.release(602);
        assert_eq!(waiter.join().unwrap(), Ok(true));
        a.release(601);
        b.release(601);
    }

    /// Many transactions reading and then writing two tables in random order
    /// (as sysbench's oltp_read_write does) deadlock all the time; every
    /// deadlock must end at once. Here nothing holds a lock while it does not
    /// wait, so a wait that reaches its timeout can only be a deadlock the
    /// detector missed (as a victim granted its lock after being chosen was:
    /// it went on holding its locks and the cycle's other waits lasted to the
    /// timeout).
    #[test]
    fn no_deadlock_is_missed_under_contention() {
        use super::super::{Interrupt, Stopper};
        let _g = SERIAL.lock();
        let tables: Vec<_> = ["./dl7/a", "./dl7/b"].iter().map(|p| table_lock(Path::new(p))).collect();
        let threads: Vec<_> = (0..6u64)
            .map(|th| {
                let tables = tables.clone();
                std::thread::spawn(move || {
                    let i = Interrupt::default();
                    let stop = Stopper { interrupt: &i, session: 0, timeout: Some(8) };
                    let mut rng = th * 7919 + 1;
                    let mut next = move || {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        rng
                    };
                    let t0 = Instant::now();
                    let (mut commits, mut deadlocks) = (0, 0);
                    for n in 0..1_000_000u64 {
                        if t0.elapsed() > Duration::from_secs(3) {
                            break;
                        }
                        let trx = 700_000 + th * 1_000_000 + n;
                        let mut held = Vec::new();
                        let mut r = Ok(true);
                        for step in 0..4 {
                            let l = &tables[(next() % 2) as usize];
                            r = l.acquire(l, trx, step >= 2, held.len() as u64, Some(&stop));
                            held.push(l.clone());
                            if r.is_err() {
                                break;
                            }
                        }
                        for l in &held {
                            l.release(trx);
                        }
                        match r {
                            Ok(_) => commits += 1,
                            Err(LockDenied::Deadlock) => deadlocks += 1,
                            Err(e) => panic!("trx {trx}: {e:?}: a deadlock was missed"),
                        }
                    }
                    (commits, deadlocks)
                })
            })
            .collect();
        let (mut commits, mut deadlocks) = (0, 0);
        for t in threads {
            let (c, d) = t.join().unwrap();
            commits += c;
            deadlocks += d;
        }
        assert!(commits > 0 && deadlocks > 0, "commits {commits}, deadlocks {deadlocks}");
    }
}
