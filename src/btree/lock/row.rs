//! Record locks: the lock table of docs/concurrency-plan.md, step 1. The
//! table layer takes them (`table/rowlock.rs`): writers and locking reads of
//! versioned tables lock rows, under intention locks on the table.
//!
//! One [`RowLocks`] per table holds every record lock of its indexes, keyed by
//! `(index, point)`: a point is a key's bytes (the memcomparable key the tree
//! orders by) or the end of the index ([`Point::End`], InnoDB's supremum).
//! Keying by the key itself, not by page and slot as InnoDB does, means a
//! page split or merge moves no lock; what does move locks is a record coming
//! or going inside a gap ([`RowLocks::on_insert`], [`RowLocks::on_remove`]).
//!
//! A request has a mode (shared or exclusive) and a kind, and the rules of
//! who waits for whom are InnoDB's (`lock_rec_has_to_wait`), see
//! [`RowRequest::must_wait_for`]:
//! - [`Kind::Record`]: the record only; [`Kind::Gap`]: the open interval
//!   before it only; [`Kind::NextKey`]: both; [`Kind::InsertIntention`]: an
//!   insert that wants to go into the gap before it.
//! - Record parts conflict as S/X; gap parts never conflict with each other
//!   (a gap is only ever locked to keep inserts out: a gap request never
//!   waits); an insert intention waits for another transaction's gap or
//!   next-key lock on the point after the insert, and nothing ever waits for
//!   an insert intention.
//!
//! Queues: requests at a point are kept in the order they came. A new request
//! is granted when nothing of another transaction it must wait for is granted
//! or waiting ahead of it (so a stream of readers does not starve a writer);
//! a transaction that already holds a lock at the point only waits for what
//! is granted (it would otherwise wait behind a request that waits for it).
//! A request already covered by a lock the transaction holds (same or
//! stronger mode, same or wider kind) is granted at once and adds nothing.
//! Grants are made by whoever frees something (a transaction's end, a wait
//! given up): the state changes only under the table's mutex, and waiters
//! learn that their request was granted; so the whole queue logic is the
//! single-threaded [`RowState`], property-tested against the rules.
//!
//! Waits go through the shared loop ([`super::wait_for`]): the lock wait
//! timeout, KILL, and the deadlock detector, in whose graph a row lock wait
//! is one more kind of edge (`blockers_of`), so a cycle through table locks
//! and record locks is found like any other.
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Weak};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::{Lock, LockDenied, Stopper, Waits, wait_for};

/// Shared (a locking read) or exclusive (a write, FOR UPDATE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    Shared,
    Exclusive,
}

/// What of a point a request locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The record only (InnoDB's LOCK_REC_NOT_GAP).
    Record,
    /// The open interval before the record only (LOCK_GAP).
    Gap,
    /// The record and the gap before it (LOCK_ORDINARY).
    NextKey,
    /// An insert waiting to go into the gap before the record
    /// (LOCK_INSERT_INTENTION); always exclusive.
    InsertIntention,
}

impl Kind {
    fn has_record(self) -> bool {
        matches!(self, Kind::Record | Kind::NextKey)
    }
    fn has_gap(self) -> bool {
        matches!(self, Kind::Gap | Kind::NextKey)
    }
}

/// A place in an index that can be locked: a key, or the end of the index
/// (the gap after its last key).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Point {
    Key(Vec<u8>),
    End,
}

/// A point of one of the table's indexes (0: the clustered index).
pub type Spot = (u32, Point);

/// A record lock request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RowRequest {
    pub mode: Mode,
    pub kind: Kind,
}

impl RowRequest {
    pub fn new(mode: Mode, kind: Kind) -> RowRequest {
        // an insert intention is exclusive whatever the caller says
        let mode = if kind == Kind::InsertIntention { Mode::Exclusive } else { mode };
        RowRequest { mode, kind }
    }

    /// Its name, as InnoDB's performance_schema.data_locks has it.
    pub fn name(self) -> &'static str {
        match (self.mode, self.kind) {
            (Mode::Shared, Kind::NextKey) => "S",
            (Mode::Exclusive, Kind::NextKey) => "X",
            (Mode::Shared, Kind::Record) => "S,REC_NOT_GAP",
            (Mode::Exclusive, Kind::Record) => "X,REC_NOT_GAP",
            (Mode::Shared, Kind::Gap) => "S,GAP",
            (Mode::Exclusive, Kind::Gap) => "X,GAP",
            (_, Kind::InsertIntention) => "X,GAP,INSERT_INTENTION",
        }
    }

    /// Whether this request of one transaction must wait for `other`, a lock
    /// of another transaction at the same point (`at_end`: the end of the
    /// index, which has no record). InnoDB's `lock_rec_has_to_wait`.
    pub fn must_wait_for(self, other: RowRequest, at_end: bool) -> bool {
        if self.mode == Mode::Shared && other.mode == Mode::Shared {
            return false;
        }
        let ii = self.kind == Kind::InsertIntention;
        // a gap is locked only to keep inserts out: a request for a gap
        // (or for anything at the end) waits for nothing
        if (at_end || self.kind == Kind::Gap) && !ii {
            return false;
        }
        // a record or next-key request does not wait for a gap-only lock
        if !ii && matches!(other.kind, Kind::Gap | Kind::InsertIntention) {
            return false;
        }
        // an insert waits for gap parts only
        if ii && other.kind == Kind::Record {
            return false;
        }
        // and nothing waits for an insert intention
        other.kind != Kind::InsertIntention
    }
}

/// One request in a point's queue.
#[derive(Clone, Debug)]
struct Entry {
    trx: u64,
    req: RowRequest,
    granted: bool,
    since: Instant,
}

/// What [`RowState::request`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A lock the transaction holds covers the request: nothing added.
    Held,
    /// Granted now.
    Granted,
    /// Queued: the transaction waits until a grant or until it gives up.
    Waiting,
    /// The wait ended because the record it waited for was removed (the
    /// insert that made it was rolled back, see [`RowState::on_remove`]):
    /// nothing is locked; the caller reads again and locks what it finds.
    Gone,
}

/// The lock table's state: per point its queue, per transaction where it has
/// requests (to free them at its end) and what it waits for.
#[derive(Default)]
pub struct RowState {
    queues: HashMap<Spot, Vec<Entry>>,
    by_trx: HashMap<u64, Vec<Spot>>,
    /// At most one wait per transaction: where.
    waits: HashMap<u64, Spot>,
    /// Transactions whose wait ended because its record went.
    gone: HashSet<u64>,
}

fn covers(held: RowRequest, want: RowRequest) -> bool {
    held.mode >= want.mode
        && match want.kind {
            Kind::Record => held.kind.has_record(),
            Kind::Gap => held.kind.has_gap(),
            Kind::NextKey => held.kind == Kind::NextKey,
            Kind::InsertIntention => false,
        }
}

impl RowState {
    /// The transactions whose locks at `at` the request `req` of `trx` (at
    /// position `pos` of the queue, or at its end if None) must wait for:
    /// granted ones, and waiting ones ahead of it unless `trx` holds a lock
    /// there already.
    fn conflicts(q: &[Entry], at: &Spot, trx: u64, req: RowRequest, pos: Option<usize>) -> Vec<u64> {
        let at_end = at.1 == Point::End;
        let holder = q.iter().any(|e| e.trx == trx && e.granted);
        let ahead = pos.unwrap_or(q.len());
        let mut by: Vec<u64> = q
            .iter()
            .enumerate()
            .filter(|(i, e)| e.trx != trx && (e.granted || (!holder && *i < ahead)))
            .filter(|(_, e)| req.must_wait_for(e.req, at_end))
            .map(|(_, e)| e.trx)
            .collect();
        by.sort_unstable();
        by.dedup();
        by
    }

    /// Asks for `req` at `at` for `trx`: granted, held already, or queued
    /// (then `trx` must not ask for anything else until the wait ends).
    pub fn request(&mut self, trx: u64, at: &Spot, req: RowRequest) -> Outcome {
        debug_assert!(!self.waits.contains_key(&trx), "{trx} asks while it waits");
        let q = self.queues.entry(at.clone()).or_default();
        let mine = |e: &&Entry| e.trx == trx && e.granted;
        if q.iter().filter(mine).any(|e| covers(e.req, req))
            || (req.kind == Kind::NextKey
                && q.iter().filter(mine).any(|e| covers(e.req, RowRequest::new(req.mode, Kind::Record)))
                && q.iter().filter(mine).any(|e| covers(e.req, RowRequest::new(req.mode, Kind::Gap))))
        {
            return Outcome::Held;
        }
        let granted = Self::conflicts(q, at, trx, req, None).is_empty();
        if granted && req.kind == Kind::InsertIntention {
            // nothing ever waits for an insert intention: one granted at once
            // need not be kept
            if q.is_empty() {
                self.queues.remove(at);
            }
            return Outcome::Granted;
        }
        q.push(Entry { trx, req, granted, since: Instant::now() });
        let spots = self.by_trx.entry(trx).or_default();
        if spots.last() != Some(at) {
            spots.push(at.clone());
        }
        if granted {
            Outcome::Granted
        } else {
            self.waits.insert(trx, at.clone());
            Outcome::Waiting
        }
    }

    /// As [`Self::request`], but a request that would wait is not queued:
    /// None then (the caller waits with [`RowLocks::acquire`] once it has let
    /// go of what it must not hold while waiting: a tree's latch).
    pub fn try_request(&mut self, trx: u64, at: &Spot, req: RowRequest) -> Option<Outcome> {
        if let Some(q) = self.queues.get(at) {
            let mine = |e: &&Entry| e.trx == trx && e.granted;
            let held = q.iter().filter(mine).any(|e| covers(e.req, req))
                || (req.kind == Kind::NextKey
                    && q.iter().filter(mine).any(|e| covers(e.req, RowRequest::new(req.mode, Kind::Record)))
                    && q.iter().filter(mine).any(|e| covers(e.req, RowRequest::new(req.mode, Kind::Gap))));
            if held {
                return Some(Outcome::Held);
            }
            if !Self::conflicts(q, at, trx, req, None).is_empty() {
                return None;
            }
        }
        Some(self.request(trx, at, req))
    }

    /// Whether no transaction has a lock or a request at `at` (purge removes
    /// only such records: nobody then reads, writes or guards a gap there).
    pub fn is_free(&self, at: &Spot) -> bool {
        !self.queues.contains_key(at)
    }

    /// How many points `trx` has locks at (about: a point locked twice
    /// apart may count twice); for lock escalation.
    pub fn count(&self, trx: u64) -> usize {
        self.by_trx.get(&trx).map_or(0, Vec::len)
    }

    /// Whether `trx` waits now.
    pub fn is_waiting(&self, trx: u64) -> bool {
        self.waits.contains_key(&trx)
    }

    /// The transactions `trx`'s wait is behind (none if it does not wait).
    pub fn blockers(&self, trx: u64) -> Vec<u64> {
        let Some(at) = self.waits.get(&trx) else { return Vec::new() };
        let q = &self.queues[at];
        let pos = q.iter().position(|e| e.trx == trx && !e.granted).expect("a wait has its entry");
        Self::conflicts(q, at, trx, q[pos].req, Some(pos))
    }

    /// Grants, in queue order, the waiting requests at `at` that need wait no
    /// more (an insert intention granted leaves the queue: nothing waits for
    /// one); returns whether any was.
    fn grant_waiting(&mut self, at: &Spot) -> bool {
        let Some(q) = self.queues.get_mut(at) else { return false };
        let mut any = false;
        let mut i = 0;
        while i < q.len() {
            if !q[i].granted && Self::conflicts(q, at, q[i].trx, q[i].req, Some(i)).is_empty() {
                self.waits.remove(&q[i].trx);
                any = true;
                if q[i].req.kind == Kind::InsertIntention {
                    q.remove(i);
                    continue;
                }
                q[i].granted = true;
            }
            i += 1;
        }
        if q.is_empty() {
            self.queues.remove(at);
        }
        any
    }

    /// `trx` gives up its wait (timeout, KILL, deadlock victim): its waiting
    /// request goes, and what waited behind it may be granted; whether any was.
    pub fn cancel(&mut self, trx: u64) -> bool {
        let Some(at) = self.waits.remove(&trx) else { return false };
        let q = self.queues.get_mut(&at).expect("a wait has its queue");
        q.retain(|e| e.trx != trx || e.granted);
        if q.is_empty() {
            self.queues.remove(&at);
        }
        self.grant_waiting(&at)
    }

    /// `trx` ends (commit, rollback): all its locks go, and the requests they
    /// held back are granted; whether any was.
    pub fn release_all(&mut self, trx: u64) -> bool {
        self.waits.remove(&trx);
        self.gone.remove(&trx);
        let mut any = false;
        for at in self.by_trx.remove(&trx).unwrap_or_default() {
            let Some(q) = self.queues.get_mut(&at) else { continue };
            q.retain(|e| e.trx != trx);
            if q.is_empty() {
                self.queues.remove(&at);
            } else {
                any |= self.grant_waiting(&at);
            }
        }
        any
    }

    /// Releases `trx`'s record-only locks at `at` (READ COMMITTED lets go of
    /// rows a scan read but did not change); whether a wait was granted.
    pub fn release_record(&mut self, trx: u64, at: &Spot) -> bool {
        self.release_where(trx, at, |r| r.kind == Kind::Record)
    }

    /// Releases `trx`'s granted lock `req` at `at` (one entry: READ
    /// COMMITTED lets go of what one read took, not what the transaction
    /// held there before); whether a wait was granted.
    pub fn release_exact(&mut self, trx: u64, at: &Spot, req: RowRequest) -> bool {
        let mut once = true;
        self.release_where(trx, at, |r| {
            let hit = once && r == req;
            once &= !hit;
            hit
        })
    }

    /// Releases `trx`'s granted locks at `at` that `which` picks; the point
    /// leaves the transaction's list when it has none left there (so
    /// [`Self::count`] counts what it holds).
    fn release_where(&mut self, trx: u64, at: &Spot, mut which: impl FnMut(RowRequest) -> bool) -> bool {
        let Some(q) = self.queues.get_mut(at) else { return false };
        q.retain(|e| !(e.trx == trx && e.granted && which(e.req)));
        let left = q.iter().any(|e| e.trx == trx);
        if !left {
            if let Some(spots) = self.by_trx.get_mut(&trx) {
                spots.retain(|s| s != at);
            }
        }
        if q.is_empty() {
            self.queues.remove(at);
            return false;
        }
        self.grant_waiting(at)
    }

    /// Gives each of `from` a gap lock at `to`, then grants what may go now
    /// (a transaction that holds a lock at a point waits for less there).
    fn add_gap_locks(&mut self, from: Vec<(u64, Mode)>, to: &Spot) -> bool {
        for (trx, mode) in from {
            let req = RowRequest::new(mode, Kind::Gap);
            let q = self.queues.entry(to.clone()).or_default();
            if q.iter().any(|e| e.trx == trx && e.granted && covers(e.req, req)) {
                continue;
            }
            q.push(Entry { trx, req, granted: true, since: Instant::now() });
            self.by_trx.entry(trx).or_default().push(to.clone());
        }
        self.grant_waiting(to)
    }

    /// A record was inserted at `new`, just before `next` (the key that
    /// follows it, or the end): the gap before `next` is now two, so every
    /// gap part held at `next` is held on the gap before `new` too
    /// (InnoDB's `lock_update_insert`). Whether a wait was granted.
    pub fn on_insert(&mut self, new: &Spot, next: &Spot) -> bool {
        let gaps: Vec<(u64, Mode)> = match self.queues.get(next) {
            Some(q) => q.iter().filter(|e| e.granted && e.req.kind.has_gap()).map(|e| (e.trx, e.req.mode)).collect(),
            None => return false,
        };
        self.add_gap_locks(gaps, new)
    }

    /// The record at `gone` was removed, so its gap and the one before `next`
    /// are one: what was locked at `gone` (record or gap) stays locked as a
    /// gap before `next` (InnoDB's `lock_rec_inherit_to_gap`), and every
    /// request at `gone` goes. A wait for it ends with [`Outcome::Gone`] (it
    /// waited for the transaction whose insert is rolled back): the reader
    /// reads again and finds no record, as InnoDB's search restarts after
    /// such a wait. Whether a wait ended.
    pub fn on_remove(&mut self, gone: &Spot, next: &Spot) -> bool {
        let Some(q) = self.queues.remove(gone) else { return false };
        let moved: Vec<(u64, Mode)> =
            q.iter().filter(|e| e.granted && e.req.kind != Kind::InsertIntention).map(|e| (e.trx, e.req.mode)).collect();
        let mut woke = false;
        for e in q.iter().filter(|e| !e.granted) {
            self.waits.remove(&e.trx);
            self.gone.insert(e.trx);
            woke = true;
        }
        self.add_gap_locks(moved, next) | woke
    }

    /// Whether `trx`'s wait ended with its record gone (and forgets it).
    fn take_gone(&mut self, trx: u64) -> bool {
        self.gone.remove(&trx)
    }

    /// Every request now, for reports: (spot, trx, request, granted, since).
    pub fn entries(&self) -> Vec<(Spot, u64, RowRequest, bool, Instant)> {
        let mut out: Vec<_> =
            self.queues.iter().flat_map(|(at, q)| q.iter().map(move |e| (at.clone(), e.trx, e.req, e.granted, e.since))).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        out
    }
}

/// A table's record locks.
pub type RowLocks = Lock<RowState>;

static ROW_LOCKS: LazyLock<Mutex<HashMap<PathBuf, Weak<RowLocks>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The record locks of the table at `path` (one per table while anyone holds
/// it: an open table, or a transaction with locks in it).
pub fn row_locks(path: &Path) -> Arc<RowLocks> {
    let mut m = ROW_LOCKS.lock();
    if let Some(l) = m.get(path).and_then(Weak::upgrade) {
        return l;
    }
    m.retain(|_, w| w.strong_count() > 0);
    let l = RowLocks::new(path);
    m.insert(path.to_path_buf(), Arc::downgrade(&l));
    l
}

#[cfg(test)]
pub(crate) fn forget_under(d: &Path) {
    ROW_LOCKS.lock().retain(|p, _| !p.starts_with(d));
}

/// Every table's record locks now (for reports).
pub fn all_row_locks() -> Vec<Arc<RowLocks>> {
    ROW_LOCKS.lock().values().filter_map(Weak::upgrade).collect()
}

impl RowLocks {
    pub fn new(name: &Path) -> Arc<RowLocks> {
        Arc::new(RowLocks { name: name.to_path_buf(), m: Mutex::new(RowState::default()), cv: Condvar::new() })
    }

    /// [`RowState::try_request`] under the mutex; with the number of points
    /// `trx` then has locks at.
    pub fn try_lock(&self, trx: u64, at: &Spot, req: RowRequest) -> Option<(Outcome, usize)> {
        let mut s = self.m.lock();
        let o = s.try_request(trx, at, req)?;
        Some((o, s.count(trx)))
    }

    /// Whether nobody has a lock or request at any of `at` (see
    /// [`RowState::is_free`]).
    pub fn is_free(&self, at: &[&Spot]) -> bool {
        let s = self.m.lock();
        at.iter().all(|a| s.is_free(a))
    }

    /// Takes `req` at `at` for `trx`, waiting as [`wait_for`] says (the lock
    /// wait timeout, `stop`, deadlocks; `weight` as for table locks). On a
    /// wait that fails the request is withdrawn; locks granted stay until
    /// [`Self::release_all`].
    pub(crate) fn acquire(
        self: &Arc<Self>,
        trx: u64,
        at: &Spot,
        req: RowRequest,
        weight: u64,
        stop: Option<&Stopper>,
    ) -> std::result::Result<Outcome, LockDenied> {
        self.acquire_from(trx, at, req, weight, stop, false)
    }

    /// Asks for `req` at `at` for `trx` now (under a tree's latch): held or
    /// granted (`Some(whether new)`), else queued (None): the caller must
    /// then [`Self::wait_queued`] for it, once it has let go of the latch.
    /// Queued at once, the request keeps inserts out of the gap it asks for
    /// from now on, as InnoDB's waiting lock does (a read that waits for a
    /// next-key lock finds its place again by key after the wait: nothing
    /// may have come into that gap meanwhile).
    pub fn lock_or_queue(&self, trx: u64, at: &Spot, req: RowRequest) -> (Option<bool>, usize) {
        let mut s = self.m.lock();
        let o = match s.request(trx, at, req) {
            Outcome::Waiting => None,
            o => Some(o == Outcome::Granted),
        };
        (o, s.count(trx))
    }

    /// Waits for the request [`Self::lock_or_queue`] queued (see
    /// [`Self::acquire`]).
    pub(crate) fn wait_queued(
        self: &Arc<Self>,
        trx: u64,
        at: &Spot,
        req: RowRequest,
        weight: u64,
        stop: Option<&Stopper>,
    ) -> std::result::Result<Outcome, LockDenied> {
        self.acquire_from(trx, at, req, weight, stop, true)
    }

    fn acquire_from(
        self: &Arc<Self>,
        trx: u64,
        at: &Spot,
        req: RowRequest,
        weight: u64,
        stop: Option<&Stopper>,
        queued: bool,
    ) -> std::result::Result<Outcome, LockDenied> {
        let mut asked = queued;
        let grant = |s: &mut RowState| {
            if !asked {
                asked = true;
                return match s.request(trx, at, req) {
                    Outcome::Waiting => None,
                    o => Some(Ok(o)),
                };
            }
            if s.take_gone(trx) {
                return Some(Ok(Outcome::Gone));
            }
            (!s.is_waiting(trx)).then_some(Ok(Outcome::Granted))
        };
        let dequeue = |s: &mut RowState, failed: bool| {
            s.take_gone(trx);
            if failed && s.cancel(trx) {
                self.cv.notify_all();
            }
        };
        let exclusive = req.mode == Mode::Exclusive;
        wait_for(self.clone(), &self.m, &self.cv, trx, exclusive, weight, stop, grant, |_, _| {}, dequeue)
    }

    /// `trx` ended: frees its locks and wakes the waits granted.
    pub fn release_all(&self, trx: u64) {
        let mut s = self.m.lock();
        if s.release_all(trx) {
            self.cv.notify_all();
        }
    }

    /// A record was inserted (see [`RowState::on_insert`]).
    pub fn on_insert(&self, new: &Spot, next: &Spot) {
        let mut s = self.m.lock();
        if s.on_insert(new, next) {
            self.cv.notify_all();
        }
    }

    /// A record was removed (see [`RowState::on_remove`]).
    pub fn on_remove(&self, gone: &Spot, next: &Spot) {
        let mut s = self.m.lock();
        if s.on_remove(gone, next) {
            self.cv.notify_all();
        }
    }

    /// Every request now (see [`RowState::entries`]).
    pub fn entries(&self) -> Vec<(Spot, u64, RowRequest, bool, Instant)> {
        self.m.lock().entries()
    }

    /// READ COMMITTED lets go of a row it read but did not change (see
    /// [`RowState::release_record`]).
    pub fn release_record(&self, trx: u64, at: &Spot) {
        let mut s = self.m.lock();
        if s.release_record(trx, at) {
            self.cv.notify_all();
        }
    }

    /// See [`RowState::release_exact`].
    pub fn release_exact(&self, trx: u64, at: &Spot, req: RowRequest) {
        let mut s = self.m.lock();
        if s.release_exact(trx, at, req) {
            self.cv.notify_all();
        }
    }
}

impl Waits for RowState {
    const KIND: &'static str = "row lock";

    fn is_waiting(&self, trx: u64) -> bool {
        RowState::is_waiting(self, trx)
    }

    fn blockers_of(&self, trx: u64) -> Vec<u64> {
        self.blockers(trx)
    }
}

#[cfg(test)]
mod tests;
