use std::time::Duration;

use proptest::prelude::*;

use super::super::{Interrupt, table_lock};
use super::*;

const S: Mode = Mode::Shared;
const X: Mode = Mode::Exclusive;

fn r(mode: Mode, kind: Kind) -> RowRequest {
    RowRequest::new(mode, kind)
}

fn key(k: &str) -> Spot {
    (0, Point::Key(k.as_bytes().to_vec()))
}

fn end() -> Spot {
    (0, Point::End)
}

/// The conflict rules, case by case (InnoDB's lock_rec_has_to_wait).
#[test]
fn who_waits_for_whom() {
    use Kind::*;
    let w = |a: RowRequest, b: RowRequest| a.must_wait_for(b, false);
    // record parts: S/X
    assert!(!w(r(S, Record), r(S, Record)));
    assert!(w(r(X, Record), r(S, Record)));
    assert!(w(r(S, NextKey), r(X, Record)));
    assert!(w(r(X, NextKey), r(S, NextKey)));
    // gap parts never conflict with each other; a gap request waits for nothing
    assert!(!w(r(X, Gap), r(X, NextKey)));
    assert!(!w(r(X, Gap), r(X, Gap)));
    assert!(!w(r(X, NextKey), r(X, Gap)));
    assert!(!w(r(X, Record), r(X, Gap)));
    // an insert waits for another's gap or next-key lock, S or X, and nothing else
    assert!(w(r(X, InsertIntention), r(S, Gap)));
    assert!(w(r(X, InsertIntention), r(S, NextKey)));
    assert!(w(r(X, InsertIntention), r(X, NextKey)));
    assert!(!w(r(X, InsertIntention), r(X, Record)));
    assert!(!w(r(X, InsertIntention), r(X, InsertIntention)));
    // nothing waits for an insert intention
    for k in [Record, Gap, NextKey] {
        assert!(!w(r(X, k), r(X, InsertIntention)));
    }
    // an insert intention is exclusive whatever it is asked as
    assert_eq!(r(S, InsertIntention).mode, X);
    // the end of the index has no record: only inserts wait there
    assert!(!r(X, NextKey).must_wait_for(r(X, NextKey), true));
    assert!(r(X, InsertIntention).must_wait_for(r(S, NextKey), true));
}

/// A new request queues behind a conflicting one that waits (no starvation
/// of writers by readers), but a transaction that holds a lock there waits
/// only for what is granted.
#[test]
fn queue_order_and_the_holder_exception() {
    let mut s = RowState::default();
    let a = key("a");
    assert_eq!(s.request(1, &a, r(S, Kind::Record)), Outcome::Granted);
    assert_eq!(s.request(2, &a, r(X, Kind::Record)), Outcome::Waiting);
    assert_eq!(s.blockers(2), vec![1]);
    // a new reader waits behind the waiting writer
    assert_eq!(s.request(3, &a, r(S, Kind::Record)), Outcome::Waiting);
    assert_eq!(s.blockers(3), vec![2]);
    // the holder asking again is covered; asking for more it waits for holders only
    assert_eq!(s.request(1, &a, r(S, Kind::Record)), Outcome::Held);
    // trx 1 ends: the writer goes, the reader still waits for it
    assert!(s.release_all(1));
    assert!(!s.is_waiting(2));
    assert_eq!(s.blockers(3), vec![2]);
    assert!(s.release_all(2));
    assert!(!s.is_waiting(3));
    s.release_all(3);
    assert!(s.entries().is_empty());
}

/// A holder upgrading (S to X) waits for the other holders, not for the
/// writer queued behind it (which waits for the holder: no false deadlock).
#[test]
fn an_upgrade_waits_for_holders_only() {
    let mut s = RowState::default();
    let a = key("a");
    assert_eq!(s.request(1, &a, r(S, Kind::NextKey)), Outcome::Granted);
    assert_eq!(s.request(2, &a, r(X, Kind::NextKey)), Outcome::Waiting);
    assert_eq!(s.request(1, &a, r(X, Kind::NextKey)), Outcome::Granted);
    assert_eq!(s.blockers(2), vec![1]);
    // covered by X next-key: S record, X gap
    assert_eq!(s.request(1, &a, r(S, Kind::Record)), Outcome::Held);
    assert_eq!(s.request(1, &a, r(X, Kind::Gap)), Outcome::Held);
    // a record lock and a gap lock together cover a next-key request
    let b = key("b");
    assert_eq!(s.request(1, &b, r(X, Kind::Record)), Outcome::Granted);
    assert_eq!(s.request(1, &b, r(X, Kind::Gap)), Outcome::Granted);
    assert_eq!(s.request(1, &b, r(S, Kind::NextKey)), Outcome::Held);
}

/// Inserts: one into a gap another transaction locked waits, and is granted
/// (and kept nowhere) when that transaction ends; two inserts into one gap
/// do not wait for each other.
#[test]
fn an_insert_waits_for_a_gap_lock() {
    let mut s = RowState::default();
    let c = key("c");
    assert_eq!(s.request(1, &c, r(S, Kind::NextKey)), Outcome::Granted);
    assert_eq!(s.request(2, &c, r(X, Kind::InsertIntention)), Outcome::Waiting);
    assert_eq!(s.blockers(2), vec![1]);
    assert_eq!(s.request(3, &end(), r(X, Kind::InsertIntention)), Outcome::Granted);
    assert!(s.release_all(1));
    assert!(!s.is_waiting(2));
    // a granted insert intention holds nobody back
    assert_eq!(s.request(4, &c, r(X, Kind::InsertIntention)), Outcome::Granted);
    assert_eq!(s.request(5, &c, r(X, Kind::NextKey)), Outcome::Granted);
}

/// A record inserted into a locked gap splits it: the gap lock holds on both
/// parts. A record removed merges its gap into the next one: what was locked
/// on it stays locked as a gap before the next key.
#[test]
fn gap_locks_follow_inserts_and_removals() {
    let mut s = RowState::default();
    let (b, d) = (key("b"), key("d"));
    // trx 1 read the range up to d: next-key lock on d
    assert_eq!(s.request(1, &d, r(S, Kind::NextKey)), Outcome::Granted);
    // trx 1's own insert of b (its insert intention at d is its own: granted)
    assert_eq!(s.request(1, &d, r(X, Kind::InsertIntention)), Outcome::Granted);
    s.on_insert(&b, &d);
    // the gap before b is trx 1's now too: trx 2 may not insert a
    assert_eq!(s.request(2, &b, r(X, Kind::InsertIntention)), Outcome::Waiting);
    s.cancel(2);
    // a record lock is no gap lock: trx 3 locks b, trx 4 waits for it
    assert_eq!(s.request(3, &b, r(X, Kind::Record)), Outcome::Granted);
    assert_eq!(s.request(4, &b, r(S, Kind::NextKey)), Outcome::Waiting);
    // b is removed again (say, trx 3's insert rolled back): its locks become
    // gap locks on d, and the wait for it ends with the record gone
    assert!(s.on_remove(&b, &d));
    assert!(!s.is_waiting(4));
    assert!(s.take_gone(4));
    assert!(s.entries().iter().any(|e| e.0 == d && e.1 == 3 && e.2 == r(X, Kind::Gap) && e.3));
    assert!(!s.entries().iter().any(|e| e.0 == b));
    // so an insert into the merged gap waits for both
    assert_eq!(s.request(5, &d, r(X, Kind::InsertIntention)), Outcome::Waiting);
    assert_eq!(s.blockers(5), vec![1, 3]);
    s.release_all(1);
    assert_eq!(s.blockers(5), vec![3]);
    s.release_all(3);
    assert!(!s.is_waiting(5));
}

/// Through threads: a waiter whose record is removed wakes with `Gone`.
#[test]
fn a_wait_for_a_removed_record_ends_gone() {
    let l = RowLocks::new(Path::new("./rowlock_db/t4"));
    let (b, d) = (key("b"), key("d"));
    assert_eq!(l.acquire(31, &b, r(X, Kind::Record), 0, None), Ok(Outcome::Granted));
    let (l2, b2) = (l.clone(), b.clone());
    let waiter = std::thread::spawn(move || l2.acquire(32, &b2, r(S, Kind::Record), 0, None));
    until_waiting(&l, 32);
    l.on_remove(&b, &d);
    assert_eq!(waiter.join().unwrap(), Ok(Outcome::Gone));
    l.release_all(31);
    l.release_all(32);
    assert!(l.entries().is_empty());
}

/// Given-up waits: the request goes and what queued behind it may be granted.
#[test]
fn a_wait_given_up_lets_the_queue_move() {
    let mut s = RowState::default();
    let a = key("a");
    assert_eq!(s.request(1, &a, r(S, Kind::Record)), Outcome::Granted);
    assert_eq!(s.request(2, &a, r(X, Kind::Record)), Outcome::Waiting);
    assert_eq!(s.request(3, &a, r(S, Kind::Record)), Outcome::Waiting);
    assert!(s.cancel(2));
    assert!(!s.is_waiting(3));
    assert_eq!(s.blockers(2), Vec::<u64>::new());
}

fn until_waiting(l: &RowLocks, trx: u64) {
    let t0 = Instant::now();
    while !l.m.lock().is_waiting(trx) {
        assert!(t0.elapsed() < Duration::from_secs(20), "{trx} never waited");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Through threads: a wait ends granted when the holder ends; a wait with a
/// time limit ends with the timeout and leaves nothing queued.
#[test]
fn waits_end_granted_or_timed_out() {
    let l = RowLocks::new(Path::new("./rowlock_db/t"));
    let a = key("a");
    assert_eq!(l.acquire(1, &a, r(X, Kind::Record), 0, None), Ok(Outcome::Granted));
    let (l2, a2) = (l.clone(), a.clone());
    let waiter = std::thread::spawn(move || l2.acquire(2, &a2, r(S, Kind::NextKey), 0, None));
    until_waiting(&l, 2);
    l.release_all(1);
    assert_eq!(waiter.join().unwrap(), Ok(Outcome::Granted));
    let i = Interrupt::default();
    let stop = Stopper { interrupt: &i, session: 0, timeout: Some(1) };
    assert_eq!(l.acquire(3, &a, r(X, Kind::Record), 0, Some(&stop)), Err(LockDenied::Timeout));
    // NOWAIT: refused at once, nothing left queued
    let nowait = Stopper { interrupt: &i, session: 0, timeout: Some(0) };
    assert_eq!(l.acquire(3, &a, r(X, Kind::Record), 0, Some(&nowait)), Err(LockDenied::Timeout));
    assert!(!l.m.lock().is_waiting(3));
    l.release_all(2);
    assert!(l.entries().is_empty());
}

/// Two transactions each waiting for a row the other holds: the wait that
/// closes the cycle ends at once with the deadlock (the lighter one), and
/// the other is granted when the victim's locks go.
#[test]
fn a_row_deadlock_ends_at_once() {
    let l = RowLocks::new(Path::new("./rowlock_db/t2"));
    let (a, b) = (key("a"), key("b"));
    assert_eq!(l.acquire(11, &a, r(X, Kind::Record), 0, None), Ok(Outcome::Granted));
    assert_eq!(l.acquire(12, &b, r(X, Kind::Record), 0, None), Ok(Outcome::Granted));
    let (l2, b2) = (l.clone(), b.clone());
    let heavy = std::thread::spawn(move || l2.acquire(11, &b2, r(X, Kind::Record), 5, None));
    until_waiting(&l, 11);
    let t0 = Instant::now();
    assert_eq!(l.acquire(12, &a, r(X, Kind::Record), 1, None), Err(LockDenied::Deadlock));
    assert!(t0.elapsed() < Duration::from_secs(5));
    l.release_all(12);
    assert_eq!(heavy.join().unwrap(), Ok(Outcome::Granted));
    l.release_all(11);
}

/// A cycle through a table lock and a record lock is one deadlock: the
/// detector's graph takes edges from both kinds.
#[test]
fn a_deadlock_across_a_table_lock_and_a_row_lock_is_found() {
    let t = table_lock(Path::new("./rowlock_db/tl"));
    let rows = RowLocks::new(Path::new("./rowlock_db/t3"));
    let a = key("a");
    assert_eq!(t.acquire(&t, 21, true, 0, None), Ok(true));
    assert_eq!(rows.acquire(22, &a, r(X, Kind::Record), 0, None), Ok(Outcome::Granted));
    let (rows2, a2) = (rows.clone(), a.clone());
    let first = std::thread::spawn(move || rows2.acquire(21, &a2, r(S, Kind::Record), 9, None));
    until_waiting(&rows, 21);
    let t0 = Instant::now();
    assert_eq!(t.acquire(&t, 22, false, 1, None), Err(LockDenied::Deadlock));
    assert!(t0.elapsed() < Duration::from_secs(5));
    rows.release_all(22);
    assert_eq!(first.join().unwrap(), Ok(Outcome::Granted));
    rows.release_all(21);
    t.release(21);
}

#[derive(Clone, Debug)]
enum Op {
    Ask(u64, usize, RowRequest),
    Cancel(u64),
    End(u64),
    Insert(usize),
    Remove(usize),
}

fn request() -> impl Strategy<Value = RowRequest> {
    (prop_oneof![Just(S), Just(X)], prop_oneof![Just(Kind::Record), Just(Kind::Gap), Just(Kind::NextKey), Just(Kind::InsertIntention)])
        .prop_map(|(m, k)| r(m, k))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1..5u64, 0..4usize, request()).prop_map(|(t, p, q)| Op::Ask(t, p, q)),
        1 => (1..5u64).prop_map(Op::Cancel),
        2 => (1..5u64).prop_map(Op::End),
        1 => (0..3usize).prop_map(Op::Insert),
        1 => (0..3usize).prop_map(Op::Remove),
    ]
}

/// The points: keys k0 < k1 < k2, then the end.
fn point(i: usize) -> Spot {
    if i < 3 { (0, Point::Key(vec![b'k', b'0' + i as u8])) } else { end() }
}

/// The lock table's invariants, checked on its whole state.
fn check(s: &RowState) {
    let all = s.entries();
    let mut waiting_of: HashMap<u64, usize> = HashMap::new();
    for (i, (at, trx, req, granted, _)) in all.iter().enumerate() {
        let at_end = at.1 == Point::End;
        if *granted {
            // granted locks of different transactions never conflict
            for (at2, trx2, req2, granted2, _) in &all[i + 1..] {
                if at2 == at && trx2 != trx && *granted2 {
                    assert!(
                        !req.must_wait_for(*req2, at_end) && !req2.must_wait_for(*req, at_end),
                        "{trx} {req:?} and {trx2} {req2:?} both granted at {at:?}"
                    );
                }
            }
        } else {
            *waiting_of.entry(*trx).or_default() += 1;
            // nobody waits without a reason: a conflicting lock granted, or
            // one waiting ahead of it
            assert!(!s.blockers(*trx).is_empty(), "{trx} waits for nothing at {at:?}");
            assert_eq!(s.waits.get(trx), Some(at));
        }
    }
    // one wait at most per transaction, and every wait has its entry
    assert!(waiting_of.values().all(|&n| n == 1));
    assert_eq!(waiting_of.len(), s.waits.len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Random requests, given-up waits, transaction ends, inserts and
    /// removals by up to four transactions on four points: after each step
    /// the invariants hold, and a granted request is held as asked; at the
    /// end, with every transaction gone, nothing is left.
    #[test]
    fn the_lock_table_keeps_its_rules(ops in prop::collection::vec(op(), 1..60)) {
        let mut s = RowState::default();
        for o in ops {
            match o {
                Op::Ask(t, p, q) => {
                    if s.is_waiting(t) {
                        continue;
                    }
                    let at = point(p);
                    let before = s.entries();
                    let out = s.request(t, &at, q);
                    let after = s.entries();
                    match out {
                        Outcome::Held => prop_assert_eq!(before.len(), after.len()),
                        Outcome::Granted if q.kind == Kind::InsertIntention => {
                            prop_assert_eq!(before.len(), after.len())
                        }
                        Outcome::Granted => prop_assert!(after.iter().any(|e| e.0 == at && e.1 == t && e.2 == q && e.3)),
                        Outcome::Waiting => prop_assert!(s.is_waiting(t)),
                        Outcome::Gone => prop_assert!(false, "a request is never answered Gone"),
                    }
                }
                Op::Cancel(t) => {
                    s.cancel(t);
                    prop_assert!(!s.is_waiting(t));
                }
                Op::End(t) => {
                    s.release_all(t);
                    prop_assert!(!s.entries().iter().any(|e| e.1 == t));
                }
                Op::Insert(i) => {
                    s.on_insert(&point(i), &point(i + 1));
                }
                Op::Remove(i) => {
                    s.on_remove(&point(i), &point(i + 1));
                    prop_assert!(!s.entries().iter().any(|e| e.0 == point(i)));
                }
            }
            check(&s);
        }
        for t in 1..5 {
            s.release_all(t);
            check(&s);
        }
        prop_assert!(s.entries().is_empty());
        prop_assert!(s.waits.is_empty());
    }
}
