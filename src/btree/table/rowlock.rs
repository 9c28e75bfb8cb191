//! Row locks of versioned tables (docs/concurrency-plan.md, step 1;
//! docs/btree-design.md, *Row locks*): which record locks a statement takes,
//! and when, over the lock table of [`crate::btree::lock::row`].
//!
//! A statement that writes a table of format [`super::mvcc::MVCC_FORMAT`] on,
//! or reads it with locks (FOR UPDATE, FOR SHARE, SERIALIZABLE), takes an
//! intention lock on the table (IX or IS) and locks rows, as InnoDB:
//! - a write locks its row exclusively (a record lock on the primary key,
//!   taken before the row is read; InnoDB's implicit lock of a new record is
//!   an explicit one here), and the lock covers the row's secondary entries;
//! - a locking read locks what it reads: at REPEATABLE READ and SERIALIZABLE
//!   each entry with its gap (next-key), the first entry past the range too,
//!   and only the record when a full primary key matched; at READ COMMITTED
//!   and below records only; through a secondary index the entry and its row;
//! - an insert first asks for an insert intention on the key after its place
//!   (it waits for another transaction's gap lock there), in the same hold of
//!   the tree's latch as the insert;
//! - a unique check locks the rows whose entries it finds, and is made again
//!   under the latch of the insert (two inserts of one new value meet there);
//! - lock requests for what a read found are made while the latch is held
//!   (without waiting); on a conflict the latch goes, the request waits, and
//!   the read finds its place again by key.
//!
//! Memory: a lock is a map entry per key. A transaction that locks more than
//! [`ESCALATE_AT`] rows of a table takes the whole table instead when nobody
//! else uses it (a bulk load, a copying ALTER, an UPDATE of every row), so it
//! stops adding entries.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use super::*;
use crate::btree::engine::TrxWeight;
use crate::btree::lock::mode;
use crate::btree::lock::row::{Kind as RowKind, Mode, Outcome, Point, RowLocks, RowRequest, Spot};

/// Row locks of one table a transaction holds before it tries to lock the
/// whole table instead (and again at every further as many).
pub const ESCALATE_AT: usize = 10_000;

/// A statement's way to lock rows of its table for its transaction.
pub(super) struct Locker {
    pub(super) trx: u64,
    weight: TrxWeight,
    pub(super) rows: Arc<RowLocks>,
    table: Arc<TableLock>,
    interrupt: Arc<Interrupt>,
    session: usize,
    timeout: Option<u64>,
    /// The table modes the transaction holds: with X (or S, for shared
    /// requests) every row is locked already.
    whole: AtomicU8,
    /// Points it had locks at, at the last grant; the count at which it next
    /// tries to lock the whole table.
    count: AtomicUsize,
    next_escalation: AtomicUsize,
    /// First-updater-wins: the view records must have been seen by
    /// ([`TrxHandle::first_updater_view`]).
    snapshot: Option<Arc<ReadView>>,
}

/// First-updater-wins: `Err(RecordChanged)` if clustered record `rec` was
/// last changed by a transaction `view` does not see (committed after the
/// view was made, or still active: then its lock was waited for first, so it
/// committed; had it rolled back, the record would be the one seen). A
/// delete-marked record counts: its deleter changed it.
pub(super) fn first_updater_check(view: Option<&Arc<ReadView>>, rec: &[u8]) -> Result<()> {
    match view {
        Some(v) if !v.sees(header(rec)?.trx) => Err(Error::RecordChanged),
        _ => Ok(()),
    }
}

/// Why a write could not go on (see [`BtreeTable::insert_fresh`]).
pub(super) enum Blocked {
    /// Another row has the unique key (index `.0`).
    Duplicate(usize),
    /// A lock must be waited for first; then the write is tried again.
    Wait(Spot, RowRequest),
}

pub(super) fn spot(index: usize, key: &[u8]) -> Spot {
    (index as u32, Point::Key(key.to_vec()))
}

fn record_x() -> RowRequest {
    RowRequest::new(Mode::Exclusive, RowKind::Record)
}

impl Locker {
    /// Without waiting (under a tree's latch): whether `req` at `at` is held
    /// now.
    pub(super) fn try_lock(&self, at: &Spot, req: RowRequest) -> bool {
        self.try_lock_new(at, req).is_some()
    }

    /// [`Self::try_lock`], saying whether the lock is new (not held before).
    pub(super) fn try_lock_new(&self, at: &Spot, req: RowRequest) -> Option<bool> {
        let whole = self.whole.load(Ordering::Relaxed);
        if whole & mode::X != 0 || (req.mode == Mode::Shared && whole & mode::S != 0) {
            return Some(false);
        }
        let (o, n) = self.rows.try_lock(self.trx, at, req)?;
        self.count.store(n, Ordering::Relaxed);
        Some(o == Outcome::Granted)
    }

    /// Waits for `req` at `at` (no latch held): the lock wait timeout, KILL
    /// and the deadlock detector apply. Ok also when the wait ended because
    /// the record went (a rollback took it out: nothing is locked then; the
    /// caller reads again and asks for what it finds).
    pub(super) fn wait(&self, at: &Spot, req: RowRequest) -> Result<()> {
        self.wait_for(at, req).map(|_| ())
    }

    fn wait_for(&self, at: &Spot, req: RowRequest) -> Result<Outcome> {
        let stop = Stopper { interrupt: &self.interrupt, session: self.session, timeout: self.timeout };
        self.rows.acquire(self.trx, at, req, self.weight.get(), Some(&stop)).map_err(Error::from)
    }

    /// `req` at `at`, held when it returns: [`Self::try_lock`], else waits
    /// (again if the record went meanwhile: a writer's lock on its row's key
    /// is held whether the record is there or not).
    pub(super) fn lock(&self, at: &Spot, req: RowRequest) -> Result<()> {
        loop {
            if self.try_lock(at, req) {
                return Ok(());
            }
            if self.wait_for(at, req)? != Outcome::Gone {
                return Ok(());
            }
        }
    }

    /// As [`Self::try_lock_new`], but a request that must wait is queued
    /// (None): then [`Self::wait_queued`] must follow (see
    /// [`RowLocks::lock_or_queue`]).
    pub(super) fn lock_or_queue(&self, at: &Spot, req: RowRequest) -> Option<bool> {
        let whole = self.whole.load(Ordering::Relaxed);
        if whole & mode::X != 0 || (req.mode == Mode::Shared && whole & mode::S != 0) {
            return Some(false);
        }
        let (o, n) = self.rows.lock_or_queue(self.trx, at, req);
        self.count.store(n, Ordering::Relaxed);
        o
    }

    /// Waits for what [`Self::lock_or_queue`] queued (as [`Self::wait`]).
    pub(super) fn wait_queued(&self, at: &Spot, req: RowRequest) -> Result<()> {
        let stop = Stopper { interrupt: &self.interrupt, session: self.session, timeout: self.timeout };
        self.rows.wait_queued(self.trx, at, req, self.weight.get(), Some(&stop)).map(|_| ()).map_err(Error::from)
    }

    /// Once it holds many row locks of the table: the whole table instead
    /// (exclusive or shared), if nobody else holds or waits for any lock of
    /// it; else it goes on with row locks.
    pub(super) fn maybe_escalate(&self, exclusive: bool) {
        let n = self.count.load(Ordering::Relaxed);
        if n < self.next_escalation.load(Ordering::Relaxed) {
            return;
        }
        self.next_escalation.store(n + ESCALATE_AT, Ordering::Relaxed);
        let stop = Stopper { interrupt: &self.interrupt, session: self.session, timeout: Some(0) };
        let want = Request::from(exclusive);
        if self.table.acquire(&self.table, self.trx, want, 0, Some(&stop)).is_ok() {
            self.whole.fetch_or(want.mode(), Ordering::Relaxed);
            crate::metrics::LOCK_ESCALATIONS.inc();
        }
    }
}

/// The hook a tree of the table calls when a rollback takes a key out of it
/// (an insert undone, [`crate::btree::tree::BTree::on_undo_remove`]): the
/// locks held at that key move to the gap before the next one, and a wait
/// for it ends (the waiter reads again), as InnoDB's lock_update_delete.
pub(super) fn undo_remove_hook(rows: &Arc<RowLocks>, index: usize) -> crate::btree::tree::UndoRemoveHook {
    let rows = rows.clone();
    Arc::new(move |key: &[u8], next: Option<&[u8]>| {
        let i = index as u32;
        let next = match next {
            Some(k) => (i, Point::Key(k.to_vec())),
            None => (i, Point::End),
        };
        rows.on_remove(&(i, Point::Key(key.to_vec())), &next);
    })
}

/// What a locking step found under the latch.
enum Step {
    /// An entry, locked (and, of a secondary index, its row).
    Locked,
    /// The end of the scan (past its last entry, locked as its gap needs).
    End,
    /// A lock that must be waited for (then the step is made again).
    Conflict(Spot, RowRequest),
}

impl BtreeTable {
    /// Whether the statement locks rows rather than the table: a table of
    /// format MVCC_FORMAT on, outside LOCK TABLES and whole-table reads.
    pub(super) fn row_level(&self) -> bool {
        self.mvcc && !self.table_level
    }

    /// The statement's locker for `h`'s transaction (made at first use, and
    /// again for another transaction).
    pub(super) fn locker(&mut self, e: &Engine, h: &mut TrxHandle) -> Arc<Locker> {
        let trx = h.trx(e);
        let id = trx.id;
        if let Some(l) = &self.locker {
            if l.trx == id {
                return l.clone();
            }
        }
        let weight = trx.weight();
        h.track_rows(&self.shared.rows);
        let whole = self.shared.lock.modes(id);
        let l = Arc::new(Locker {
            trx: id,
            weight,
            rows: self.shared.rows.clone(),
            table: self.shared.lock.clone(),
            interrupt: h.interrupt.clone(),
            session: h.session,
            timeout: h.wait_timeout,
            whole: AtomicU8::new(whole),
            count: AtomicUsize::new(0),
            next_escalation: AtomicUsize::new(ESCALATE_AT),
            snapshot: h.first_updater_view().cloned(),
        });
        self.locker = Some(l.clone());
        l
    }

    /// Before a write of row `pk`: the table's IX lock and the row's
    /// exclusive lock (waited for). Nothing for table-level statements (their
    /// table lock is exclusive).
    pub(super) fn lock_row_x(&mut self, e: &Engine, h: &mut TrxHandle, pk: &[u8]) -> Result<()> {
        if !self.row_level() {
            return Ok(());
        }
        h.lock(e, &self.shared.lock, Request::intention(true))?;
        let lk = self.locker(e, h);
        lk.lock(&spot(0, pk), record_x())?;
        lk.maybe_escalate(true);
        Ok(())
    }

    /// Waits for a lock a write found held (then the write is tried again).
    pub(super) fn wait_row(&mut self, e: &Engine, h: &mut TrxHandle, at: &Spot, req: RowRequest) -> Result<()> {
        let lk = self.locker(e, h);
        lk.wait(at, req)
    }

    /// Whether unique index `j` has an entry of key `sec` for a live row
    /// other than `pk`. Row-level: the rows of the entries found are locked
    /// first (a row being changed by another transaction is waited for), so
    /// the answer holds until this transaction ends; a new entry of another
    /// transaction can still come, which the insert checks again
    /// ([`Self::insert_fresh`]).
    pub(super) fn unique_taken_locked(&mut self, e: &Engine, h: &mut TrxHandle, j: usize, sec: &[u8], pk: &[u8]) -> Result<bool> {
        if !self.row_level() {
            return self.unique_taken(j, sec, pk);
        }
        let lk = self.locker(e, h);
        loop {
            let f = self.sec_value;
            let found = tree::read(&self.shared.trees[j], |r| {
                let mut c = Cursor::default();
                r.seek(&mut c, Bound::Included(sec), false)?;
                let (mut k, mut v) = (vec![], vec![]);
                while r.next(&mut c, false, &mut k, &mut v)? {
                    if !k.starts_with(sec) {
                        break;
                    }
                    let (deleted, _, p) = split_entry(&k, &v, f)?;
                    if p == pk {
                        continue;
                    }
                    let at = spot(0, p);
                    if !lk.try_lock(&at, record_x()) {
                        return Ok(Err(at));
                    }
                    if !deleted {
                        return Ok(Ok(true));
                    }
                }
                Ok(Ok(false))
            })?;
            match found {
                Ok(taken) => return Ok(taken),
                Err(at) => lk.wait(&at, record_x())?,
            }
        }
    }

    /// Inserts entry `key` (value `val`) into index `j`, where no entry of
    /// that key is. Row-level, under the tree's latch first: for a unique
    /// secondary key (`unique`: the key and the row's primary key), no live
    /// entry of another row may have it, and the rows of those found must be
    /// lockable at once; and the gap it goes into must not be locked by
    /// another transaction (the insert intention on the key after it). Else
    /// nothing is changed and the answer says why.
    pub(super) fn insert_fresh(&mut self, e: &Engine, h: &mut TrxHandle, j: usize, key: &[u8], val: &[u8], unique: Option<(&[u8], &[u8])>) -> Result<Option<Blocked>> {
        if !self.row_level() {
            e.insert(h.trx(e), &self.shared.trees[j], key, val)?;
            return Ok(None);
        }
        let lk = self.locker(e, h);
        let t = &self.shared.trees[j];
        let f = self.sec_value;
        let next = std::cell::RefCell::new(None);
        // (gap locks of the gap it splits hold on both halves: moved before
        // the latch goes, or an insert into the lower half would not see them)
        let after = || {
            if let Some(n) = next.borrow().as_ref() {
                lk.rows.on_insert(&spot(j, key), n);
            }
        };
        let r = e.insert_checked(h.trx(e), t, key, val, |t: &mut BTree| {
            let (mut k, mut v) = (vec![], vec![]);
            if let Some((sec, own)) = unique {
                let mut c = Cursor::default();
                t.seek(&mut c, Bound::Included(sec), false)?;
                while t.next(&mut c, false, &mut k, &mut v)? {
                    if !k.starts_with(sec) {
                        break;
                    }
                    let (deleted, _, p) = split_entry(&k, &v, f)?;
                    if p == own {
                        continue;
                    }
                    let at = spot(0, p);
                    if !lk.try_lock(&at, record_x()) {
                        return Ok(Some(Blocked::Wait(at, record_x())));
                    }
                    if !deleted {
                        return Ok(Some(Blocked::Duplicate(j)));
                    }
                }
            }
            let mut c = Cursor::default();
            t.seek(&mut c, Bound::Excluded(key), false)?;
            let after = if t.next(&mut c, false, &mut k, &mut v)? { Point::Key(k) } else { Point::End };
            let at = (j as u32, after);
            let ii = RowRequest::new(Mode::Exclusive, RowKind::InsertIntention);
            if !lk.try_lock(&at, ii) {
                return Ok(Some(Blocked::Wait(at, ii)));
            }
            *next.borrow_mut() = Some(at);
            Ok(None)
        }, after)?;
        match r {
            Err(b) => Ok(Some(b)),
            Ok(false) => Err(Error::Corrupt(format!("{}: index {j} has an entry an insert did not expect", self.path.display()))),
            Ok(true) => Ok(None),
        }
    }

    /// A locking read's next entry (see [`Self::step`]): the entry is locked
    /// before it is taken, as the module doc says.
    pub(super) fn step_locking(&mut self, lk: &Locker) -> Result<bool> {
        self.fresh.clear();
        let i = self.cur_index;
        let mode = if self.row_x { Mode::Exclusive } else { Mode::Shared };
        let gaps = self.gaps && !self.skip_locked;
        let skip = self.skip_locked;
        loop {
            if self.unique_hit {
                return Ok(false);
            }
            let exact = self.exact.take();
            let f = self.sec_value;
            let step = {
                let (cur, desc, key, val) = (&mut self.cur, self.desc, &mut self.key, &mut self.val);
                let prefix = self.must_prefix.as_deref();
                let fresh = &mut self.fresh;
                tree::read(&self.shared.trees[i], |r| {
                    let (at, kind, past) = if !r.next(cur, desc, key, val)? {
                        // the gap before the first entry is the first entry's
                        if desc || !gaps {
                            return Ok(Step::End);
                        }
                        ((i as u32, Point::End), RowKind::NextKey, true)
                    } else if prefix.is_some_and(|p| !key.starts_with(p)) {
                        if desc || !gaps {
                            return Ok(Step::End);
                        }
                        (spot(i, key), RowKind::Gap, true)
                    } else {
                        let whole_key = i == 0 && exact.as_deref() == Some(&key[..]);
                        (spot(i, key), if whole_key || !gaps { RowKind::Record } else { RowKind::NextKey }, false)
                    };
                    let req = RowRequest::new(mode, kind);
                    // (queued under the latch when it must wait, unless SKIP
                    // LOCKED, which never waits)
                    let ask = |at: &Spot, req| if skip { lk.try_lock_new(at, req) } else { lk.lock_or_queue(at, req) };
                    match ask(&at, req) {
                        None => return Ok(Step::Conflict(at, req)),
                        Some(true) => fresh.push((at.clone(), req)),
                        Some(false) => {}
                    }
                    if past {
                        return Ok(Step::End);
                    }
                    if i > 0 {
                        // and the entry's row, in the same hold of the latch:
                        // a writer of the row holds its lock while it changes
                        // the entry (a mark, or its clearing by a rollback),
                        // so once the row is locked the entry read is the
                        // committed one (or this transaction's), marked or not
                        let (_, _, p) = split_entry(key, val, f)?;
                        let row = spot(0, p);
                        let req = RowRequest::new(mode, RowKind::Record);
                        match ask(&row, req) {
                            None => return Ok(Step::Conflict(row, req)),
                            Some(true) => fresh.push((row, req)),
                            Some(false) => {}
                        }
                    }
                    Ok(Step::Locked)
                })?
            };
            match step {
                Step::End => return Ok(false),
                Step::Conflict(at, req) => {
                    if self.skip_locked {
                        continue; // SKIP LOCKED: the cursor is past it already
                    }
                    lk.wait_queued(&at, req)?;
                    self.fresh.push((at, req));
                    // what it found may have changed meanwhile: found again
                    self.refind(exact)?;
                    continue;
                }
                Step::Locked => {}
            }
            let upto = self.locked_upto.get_or_insert_with(Vec::new);
            upto.clear();
            upto.extend_from_slice(&self.key);
            lk.maybe_escalate(self.row_x);
            if i == 0 {
                // (every record locked, live or marked, as InnoDB; not a gap
                // lock's record past the range, which ended the scan above)
                first_updater_check(lk.snapshot.as_ref(), &self.val)?;
            }
            if exact.as_deref() == Some(&self.key[..]) && i == 0 && self.must_prefix.is_some() {
                self.unique_hit = true;
            }
            if i == 0 {
                if !self.moved.is_empty() && self.moved.contains(&self.key) {
                    continue;
                }
                if header(&self.val)?.deleted {
                    continue;
                }
                self.pk.clear();
                self.pk.extend_from_slice(&self.key);
                self.row.clear();
                self.row.extend_from_slice(&self.val[ROW_HEADER..]);
                return Ok(true);
            }
            let (deleted, u, p) = split_entry(&self.key, &self.val, self.sec_value)?;
            if deleted || (!self.moved.is_empty() && self.moved.contains(p)) {
                continue;
            }
            self.unpack.clear();
            self.unpack.extend_from_slice(u);
            self.pk.clear();
            self.pk.extend_from_slice(p);
            // its row (locked above: the entry is live, so the row's newest
            // version is committed or this transaction's, and has it)
            if self.keys_only && lk.snapshot.is_none() {
                self.row.clear();
                return Ok(true);
            }
            let mut rec = std::mem::take(&mut self.rec);
            let found = tree::read(&self.shared.trees[0], |r| r.get(&self.pk, &mut rec));
            self.rec = rec;
            if !found? {
                return Err(Error::Corrupt(format!(
                    "{}: index {i} has an entry for a row that does not exist",
                    self.path.display()
                )));
            }
            first_updater_check(lk.snapshot.as_ref(), &self.rec)?;
            if header(&self.rec)?.deleted {
                continue; // (not expected: the row is locked and its entry live)
            }
            self.row.clear();
            if !self.keys_only {
                self.row.extend_from_slice(&self.rec[ROW_HEADER..]);
            }
            return Ok(true);
        }
    }

    /// After a wait: the cursor stands again right after the last entry the
    /// scan locked (or where it began), to read on from there (`exact` kept
    /// for its first step). Not at the entry waited for: a wait that ended
    /// because that entry went (its insert rolled back) held nothing, so an
    /// insert may have come in before it meanwhile, into the gap the scan's
    /// next lock is to cover.
    fn refind(&mut self, exact: Option<Vec<u8>>) -> Result<()> {
        self.exact = exact;
        let (cur, desc) = (&mut self.cur, self.desc);
        let b = match &self.locked_upto {
            Some(k) => Bound::Excluded(&k[..]),
            None => match &self.scan_from {
                Bound::Included(k) => Bound::Included(&k[..]),
                Bound::Excluded(k) => Bound::Excluded(&k[..]),
                Bound::Unbounded => Bound::Unbounded,
            },
        };
        tree::read(&self.shared.trees[self.cur_index], |r| r.seek(cur, b, desc))
    }

    /// A locking read of row `pk` by its primary key (rnd_pos, a lookup):
    /// its record lock, then the row into [`Self::row`]; false if there is
    /// no live row.
    pub(super) fn load_locked(&mut self, lk: &Locker, pk: &[u8]) -> Result<bool> {
        let req = RowRequest::new(if self.row_x { Mode::Exclusive } else { Mode::Shared }, RowKind::Record);
        let at = spot(0, pk);
        self.fresh.clear();
        loop {
            let mut rec = std::mem::take(&mut self.rec);
            let mut new = false;
            let found = tree::read(&self.shared.trees[0], |r| {
                match lk.try_lock_new(&at, req) {
                    None => return Ok(None),
                    Some(n) => new |= n,
                }
                r.get(pk, &mut rec).map(Some)
            });
            self.rec = rec;
            if new {
                self.fresh.push((at.clone(), req));
            }
            match found? {
                None if self.skip_locked => return Ok(false),
                None => {
                    lk.wait(&at, req)?;
                    self.fresh.push((at.clone(), req));
                    continue;
                }
                Some(false) => return Ok(false),
                Some(true) => {}
            }
            first_updater_check(lk.snapshot.as_ref(), &self.rec)?;
            if header(&self.rec)?.deleted {
                return Ok(false);
            }
            self.pk.clear();
            self.pk.extend_from_slice(pk);
            self.row.clear();
            self.row.extend_from_slice(&self.rec[ROW_HEADER..]);
            return Ok(true);
        }
    }

    /// A descending locking read at REPEATABLE READ or SERIALIZABLE: the gap
    /// above its range (before the first entry past `from`, or the end) is
    /// locked, as its entries' next-key locks cover the gaps below them.
    pub(super) fn lock_gap_above(&mut self, lk: &Locker, from: Bound<&[u8]>) -> Result<()> {
        let i = self.cur_index;
        let mode = if self.row_x { Mode::Exclusive } else { Mode::Shared };
        tree::read(&self.shared.trees[i], |r| {
            let above = match from {
                Bound::Included(k) => Bound::Excluded(k),
                Bound::Excluded(k) => Bound::Included(k),
                Bound::Unbounded => {
                    lk.try_lock(&(i as u32, Point::End), RowRequest::new(mode, RowKind::NextKey));
                    return Ok(());
                }
            };
            let mut c = Cursor::default();
            r.seek(&mut c, above, false)?;
            let (mut k, mut v) = (vec![], vec![]);
            let (at, kind) = if r.next(&mut c, false, &mut k, &mut v)? {
                ((i as u32, Point::Key(k)), RowKind::Gap)
            } else {
                ((i as u32, Point::End), RowKind::NextKey)
            };
            // (a gap request waits for nothing: granted at once)
            lk.try_lock(&at, RowRequest::new(mode, kind));
            Ok(())
        })
    }
}

impl BtreeTable {
    /// The server does not want the row last read (see the bridge's
    /// `bt_unlock_row`): at READ COMMITTED and below, the locks that read
    /// took go (InnoDB's unlock_row); at the higher levels they are kept.
    pub fn unlock_row(&mut self) {
        let fresh = std::mem::take(&mut self.fresh);
        if self.gaps {
            return;
        }
        if let Some(lk) = self.row_locking() {
            for (at, req) in &fresh {
                lk.rows.release_exact(lk.trx, at, *req);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btree::table::mvcc::{Header, record};

    /// First-updater-wins refuses a record whose last writer the view does
    /// not see (active when it was made, or begun after), marked or not, and
    /// lets through the view's own changes, those committed before it, and
    /// everything when there is no view to check against.
    #[test]
    fn first_updater_check_follows_the_view() {
        let view = Arc::new(ReadView::of(130, 140, &[50, 130]));
        let rec = |trx, deleted| record(Header { trx, roll: 0, deleted }, b"row");
        for (trx, ok) in [(40, true), (49, true), (51, true), (130, true), (50, false), (140, false), (200, false)] {
            for deleted in [false, true] {
                let r = first_updater_check(Some(&view), &rec(trx, deleted));
                assert_eq!(r.is_ok(), ok, "trx {trx} deleted {deleted}");
                assert!(matches!(first_updater_check(None, &rec(trx, deleted)), Ok(())));
            }
        }
        assert!(matches!(first_updater_check(Some(&view), &rec(50, false)), Err(Error::RecordChanged)));
    }
}
