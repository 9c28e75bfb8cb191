//! Versions of rows (docs/btree-design.md, *Read views and versions*): the
//! clustered record's header, delete-marking, and which version of a record
//! or a secondary entry a read sees.
//!
//! From tree format [`MVCC_FORMAT`] on, a change never removes what a read
//! view may still need:
//! - a clustered record's header holds the transaction that wrote it, whether
//!   that was a delete (the *delete mark*, the top bit of the id), and a roll
//!   pointer to the version before it, kept in the engine's history
//!   ([`crate::btree::engine::history`]);
//! - DELETE delete-marks the record and its secondary entries; an UPDATE that
//!   moves a key delete-marks the old entry (or record) and writes the new one;
//!   purge ([`super::purge`]) removes them once no view can need them;
//! - a secondary entry's value says whether it is delete-marked (its first
//!   varint is the primary key's length times two, plus one if marked).
//!
//! Invariant: each row has, in each secondary index, exactly one entry that is
//! not delete-marked, for the key of its newest version (none once the row is
//! deleted). So a read that sees a record's newest version takes the unmarked
//! entries and skips the marked ones; a read that sees an older version
//! compares the entry's key with the keys the version was kept with.

use std::sync::Arc;

use super::ROW_HEADER;
use crate::btree::engine::{History, ReadView, Version};
use crate::error::{Error, Result};

/// The first tree format with delete marks and versions (older tables are read
/// and written as before: under table locks, deletes removing at once).
pub const MVCC_FORMAT: u32 = 7;

/// The delete mark, in the first byte of a clustered record's transaction id.
const DELETE_MARK: u8 = 0x80;

/// A clustered record's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub trx: u64,
    pub roll: u64,
    pub deleted: bool,
}

/// The header of clustered record value `v`.
pub fn header(v: &[u8]) -> Result<Header> {
    if v.len() < ROW_HEADER {
        return Err(Error::Corrupt("a clustered record shorter than its header".into()));
    }
    let mut t = [0u8; 8];
    t[2..8].copy_from_slice(&v[0..6]);
    let deleted = t[2] & DELETE_MARK != 0;
    t[2] &= !DELETE_MARK;
    let mut r = [0u8; 8];
    r[1..8].copy_from_slice(&v[6..13]);
    Ok(Header { trx: u64::from_be_bytes(t), roll: u64::from_be_bytes(r), deleted })
}

/// A clustered record's value: the header, then the row image.
pub fn record(h: Header, row: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(ROW_HEADER + row.len());
    v.extend_from_slice(&h.trx.to_be_bytes()[2..8]);
    if h.deleted {
        v[0] |= DELETE_MARK;
    }
    v.extend_from_slice(&h.roll.to_be_bytes()[1..8]);
    v.extend_from_slice(row);
    v
}

/// How a statement reads a table's rows.
#[derive(Clone, Default)]
pub enum Vis {
    /// The newest version (under a table lock, or READ UNCOMMITTED): a
    /// delete-marked record or entry is skipped.
    #[default]
    Newest,
    /// What a read view sees.
    View(Arc<ReadView>),
}

/// The version of a clustered record a read sees.
pub enum Seen {
    /// The record itself (its row is the value's, after the header).
    Newest,
    /// An older version, from the history.
    Old(Arc<Version>),
    /// None: the row did not exist for the read (or was deleted).
    Gone,
}

/// Which version of the clustered record with value `v` a read (`vis`) sees.
pub fn resolve(history: &History, vis: &Vis, v: &[u8]) -> Result<Seen> {
    let h = header(v)?;
    let view = match vis {
        Vis::Newest => return Ok(if h.deleted { Seen::Gone } else { Seen::Newest }),
        Vis::View(view) => view,
    };
    if view.sees(h.trx) {
        return Ok(if h.deleted { Seen::Gone } else { Seen::Newest });
    }
    let gone = |trx: u64| {
        Error::VersionGone(format!(
            "Record has changed since last read: a version this read view needs was replaced by transaction {trx}, \
             recovered as prepared at the restart, whose old versions are not kept; retry the transaction"
        ))
    };
    // a roll pointer of an earlier run means nothing in this one: only a
    // transaction recovered as prepared can be a record's unseen writer then
    if h.trx < history.run_start() {
        return Err(gone(h.trx));
    }
    let mut roll = h.roll;
    for _ in 0..1_000_000 {
        if roll == 0 {
            return Ok(Seen::Gone); // inserted by a transaction the view does not see
        }
        let Some(ver) = history.get(roll) else {
            return Err(Error::Internal(format!(
                "the version a read view needs is not kept (roll pointer {roll}, transaction {})",
                h.trx
            )));
        };
        let vh = header(&ver.value)?;
        if view.sees(vh.trx) {
            return Ok(if vh.deleted { Seen::Gone } else { Seen::Old(ver) });
        }
        if vh.trx < history.run_start() {
            return Err(gone(vh.trx));
        }
        roll = vh.roll;
    }
    Err(Error::Corrupt("a version chain that does not end".into()))
}

/// How a secondary entry's value is laid out (by tree format).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecValue {
    /// Formats before 5: the primary key.
    Pk,
    /// Formats 5 and 6: the primary key's length (LEB128; the key is the end
    /// of the entry's key), then the unpack bytes.
    Unpack,
    /// Format 7 on: the primary key's length times two plus the delete mark
    /// (LEB128), then the unpack bytes.
    Marked,
}

impl SecValue {
    pub fn of_format(format: u32) -> SecValue {
        if format >= MVCC_FORMAT {
            SecValue::Marked
        } else if format >= super::UNPACK_FORMAT {
            SecValue::Unpack
        } else {
            SecValue::Pk
        }
    }
}

/// A secondary entry's value (see [`SecValue`]).
pub fn entry_value(f: SecValue, pk: &[u8], unpack: &[u8], deleted: bool) -> Vec<u8> {
    if f == SecValue::Pk {
        return pk.to_vec();
    }
    let mut v = Vec::with_capacity(unpack.len() + 3);
    let mut n = if f == SecValue::Marked { pk.len() * 2 + deleted as usize } else { pk.len() };
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            v.push(b);
            break;
        }
        v.push(b | 0x80);
    }
    v.extend_from_slice(unpack);
    v
}

/// A secondary entry (key `k`, value `v`): whether it is delete-marked, its
/// unpack bytes and its primary key.
pub fn split_entry<'a>(k: &'a [u8], v: &'a [u8], f: SecValue) -> Result<(bool, &'a [u8], &'a [u8])> {
    if f == SecValue::Pk {
        return Ok((false, &[], v));
    }
    let (mut n, mut shift, mut i) = (0usize, 0u32, 0usize);
    loop {
        let b = *v.get(i).ok_or_else(|| Error::Corrupt("a secondary entry's value ends in its primary key length".into()))?;
        i += 1;
        if shift > 28 {
            return Err(Error::Corrupt("a secondary entry's primary key length is too long".into()));
        }
        n |= ((b & 0x7f) as usize) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            break;
        }
    }
    let deleted = f == SecValue::Marked && n & 1 == 1;
    if f == SecValue::Marked {
        n >>= 1;
    }
    if n == 0 || n > k.len() {
        return Err(Error::Corrupt(format!("a secondary entry's primary key of {n} bytes in a key of {}", k.len())));
    }
    Ok((deleted, &v[i..], &k[k.len() - n..]))
}

/// The same entry value with the delete mark set or cleared.
pub fn remark(v: &[u8], k: &[u8], deleted: bool) -> Result<Vec<u8>> {
    let (_, unpack, pk) = split_entry(k, v, SecValue::Marked)?;
    Ok(entry_value(SecValue::Marked, pk, unpack, deleted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_entries_round_trip() {
        let h = Header { trx: (1 << 47) - 1, roll: (1 << 56) - 1, deleted: true };
        let v = record(h, b"row");
        assert_eq!(header(&v).unwrap(), h);
        assert_eq!(&v[ROW_HEADER..], b"row");
        let h = Header { trx: 77, roll: 0, deleted: false };
        assert_eq!(header(&record(h, b"")).unwrap(), h);
        let k = b"sec\x00pkpk";
        for f in [SecValue::Pk, SecValue::Unpack, SecValue::Marked] {
            for del in [false, true] {
                let v = entry_value(f, b"pkpk", if f == SecValue::Pk { b"" } else { b"unp" }, del);
                let (d, u, pk) = split_entry(k, &v, f).unwrap();
                assert_eq!((d, pk), (del && f == SecValue::Marked, &b"pkpk"[..]));
                assert_eq!(u, if f == SecValue::Pk { &b""[..] } else { &b"unp"[..] });
            }
        }
        let v = entry_value(SecValue::Marked, b"pkpk", b"unp", false);
        assert_eq!(split_entry(k, &remark(&v, k, true).unwrap(), SecValue::Marked).unwrap().0, true);
        // a primary key of 64 bytes or more takes a second length byte when marked
        let long = vec![7u8; 70];
        let mut k = b"s".to_vec();
        k.extend_from_slice(&long);
        let v = entry_value(SecValue::Marked, &long, b"", true);
        assert_eq!(split_entry(&k, &v, SecValue::Marked).unwrap(), (true, &b""[..], &long[..]));
    }

    /// Against a model: a record changed by a series of transactions; each
    /// view sees the newest change of a transaction it sees (or nothing).
    #[test]
    fn a_view_reads_the_version_of_its_moment() {
        let hist = History::default();
        // transactions 10, 20, 30 write versions in turn; 30 deletes
        let mut cur = record(Header { trx: 10, roll: 0, deleted: false }, b"v10");
        for (t, del, row) in [(20u64, false, &b"v20"[..]), (30, true, b"v20")] {
            let roll = hist.add(t, Version { value: cur.clone(), sec: vec![] });
            cur = record(Header { trx: t, roll, deleted: del }, row);
        }
        let row_of = |view: ReadView| match resolve(&hist, &Vis::View(Arc::new(view)), &cur).unwrap() {
            Seen::Newest => Some(cur[ROW_HEADER..].to_vec()),
            Seen::Old(v) => Some(v.value[ROW_HEADER..].to_vec()),
            Seen::Gone => None,
        };
        assert_eq!(row_of(ReadView::of(5, 10, &[])), None); // before the insert
        assert_eq!(row_of(ReadView::of(15, 20, &[])), Some(b"v10".to_vec()));
        assert_eq!(row_of(ReadView::of(15, 25, &[20])), Some(b"v10".to_vec()));
        assert_eq!(row_of(ReadView::of(25, 30, &[])), Some(b"v20".to_vec()));
        assert_eq!(row_of(ReadView::of(35, 40, &[])), None); // deleted
        assert_eq!(row_of(ReadView::of(20, 40, &[20, 30])), Some(b"v20".to_vec())); // its own
        assert!(matches!(resolve(&hist, &Vis::Newest, &cur).unwrap(), Seen::Gone));
    }
}

// ---- writes and reads of a versioned table (format MVCC_FORMAT on) ----

use std::sync::atomic::Ordering;

use super::purge::Item;
use super::rowlock::{Blocked, first_updater_check};
use super::{BtreeTable, SecondaryKey, TrxHandle, tree};
use crate::btree::engine::{Engine, Trx};

/// The secondary keys of a row as a version keeps them.
fn keys_of<S: SecondaryKey>(sec: &[S]) -> Vec<(Vec<u8>, Vec<u8>)> {
    sec.iter().map(|s| (s.key().to_vec(), s.unpack().to_vec())).collect()
}

impl BtreeTable {
    /// A change reads before it writes: a tree whose file lost its end says
    /// so first (as a change to it would), not the page a read meets.
    pub(super) fn writable(&self) -> Result<()> {
        if !self.shared.cut_short {
            return Ok(());
        }
        self.shared.trees.iter().try_for_each(|t| t.read().refuse_if_cut_short())
    }

    /// The clustered record `pk` as it is now (its value into `out`).
    pub(super) fn raw_get(&self, pk: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        tree::read(&self.shared.trees[0], |r| r.get(pk, out))
    }

    /// Writes transaction `trx`'s version of clustered record `pk`: `row`,
    /// delete-marked or not. The record there now (`old`), if any, becomes a
    /// version in the history, with its secondary keys `old_sec`, unless it is
    /// `trx`'s own already (a view that does not see `trx` reads on past it).
    /// A new record is inserted as [`Self::insert_fresh`] says (it may be
    /// blocked).
    #[allow(clippy::too_many_arguments)]
    fn write_version(
        &mut self,
        e: &Engine,
        h: &mut TrxHandle,
        pk: &[u8],
        old: Option<&[u8]>,
        row: &[u8],
        deleted: bool,
        old_sec: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Option<Blocked>> {
        let id = h.trx(e).id;
        let Some(old) = old else {
            return self.insert_fresh(e, h, 0, pk, &record(Header { trx: id, roll: 0, deleted }, row), None);
        };
        let oh = header(old)?;
        first_updater_check(h.first_updater_view(), old)?;
        let trx = h.trx(e);
        let roll = if oh.trx == trx.id {
            oh.roll
        } else {
            let sec = if oh.deleted { Vec::new() } else { old_sec };
            e.keep_version(trx, Version { value: old.to_vec(), sec })
        };
        e.update(trx, &self.shared.trees[0], pk, &record(Header { trx: trx.id, roll, deleted }, row))?;
        Ok(None)
    }

    /// Makes entry `key` of index `j` the row's live one: inserted (checked
    /// as [`Self::insert_fresh`] says; `unique`: the secondary key, when it
    /// must be unique), or its delete mark cleared (with the row's unpack
    /// bytes: the row's lock keeps every other writer off its entries).
    #[allow(clippy::too_many_arguments)]
    fn entry_live(&mut self, e: &Engine, h: &mut TrxHandle, j: usize, key: &[u8], pk: &[u8], unpack: &[u8], unique: Option<&[u8]>) -> Result<Option<Blocked>> {
        let id = h.trx(e).id;
        // before the change: an index-only read that finds it checks this after
        self.shared.newest_change[j].fetch_max(id, Ordering::AcqRel);
        let v = entry_value(SecValue::Marked, pk, unpack, false);
        let mut old = Vec::new();
        if tree::read(&self.shared.trees[j], |r| r.get(key, &mut old))? {
            if old != v {
                e.update(h.trx(e), &self.shared.trees[j], key, &v)?;
            }
            return Ok(None);
        }
        self.insert_fresh(e, h, j, key, &v, unique.map(|s| (s, pk)))
    }

    /// Delete-marks entry `key` of index `j` (purge removes it later).
    fn entry_mark(&self, e: &Engine, trx: &mut Trx, j: usize, key: &[u8]) -> Result<()> {
        let t = &self.shared.trees[j];
        self.shared.newest_change[j].fetch_max(trx.id, Ordering::AcqRel);
        let mut old = Vec::new();
        if tree::read(t, |r| r.get(key, &mut old))? {
            let v = remark(&old, key, true)?;
            if v != old {
                e.update(trx, t, key, &v)?;
            }
        }
        Ok(())
    }

    fn purge_item(&self, index: usize, key: Vec<u8>) -> Item {
        Item { table: self.shared.clone(), index: index as u32, key }
    }

    /// The unique key of secondary key `s` of index `j` that a write must
    /// check (None: the index is not unique, or a part is NULL).
    fn unique_key<'s, S: SecondaryKey>(&self, j: usize, s: &'s S) -> Option<&'s [u8]> {
        (self.unique[j] && !s.has_null()).then(|| s.key())
    }

    /// A write blocked part-way (see [`Blocked`]): what it changed is taken
    /// back (to `sp`); a duplicate is the answer, a lock is waited for and
    /// the write made again (Ok(None)).
    fn blocked(&mut self, e: &Engine, h: &mut TrxHandle, sp: usize, b: Blocked) -> Result<Option<usize>> {
        e.rollback_to(h.trx(e), sp)?;
        match b {
            Blocked::Duplicate(j) => Ok(Some(j)),
            Blocked::Wait(at, req) => {
                self.wait_row(e, h, &at, req)?;
                Ok(None)
            }
        }
    }

    /// [`BtreeTable::insert`] of a versioned table: over a delete-marked
    /// record or entry of the same key, if there is one. Row-level, the
    /// row's lock first (see [`super::rowlock`]).
    pub(super) fn insert_versioned<S: SecondaryKey>(&mut self, e: &Engine, h: &mut TrxHandle, pk: Vec<u8>, row: &[u8], sec: &[S]) -> Result<Option<usize>> {
        self.writable()?;
        loop {
            self.lock_row_x(e, h, &pk)?;
            let mut old = Vec::new();
            let exists = self.raw_get(&pk, &mut old)?;
            if exists {
                // (a duplicate of a row the view never saw is that error
                // first, as InnoDB's duplicate check, which locks it)
                first_updater_check(h.first_updater_view(), &old)?;
                if !header(&old)?.deleted {
                    return Ok(Some(0));
                }
            }
            for (j, s) in sec.iter().enumerate() {
                if let Some(k) = self.unique_key(j + 1, s) {
                    if self.unique_taken_locked(e, h, j + 1, k, &pk)? {
                        return Ok(Some(j + 1));
                    }
                }
            }
            let sp = h.trx(e).savepoint();
            let mut b = self.write_version(e, h, &pk, exists.then_some(&old[..]), row, false, Vec::new())?;
            for (j, s) in sec.iter().enumerate() {
                if b.is_some() {
                    break;
                }
                let k = Self::secondary_entry(s.key(), &pk);
                b = self.entry_live(e, h, j + 1, &k, &pk, s.unpack(), self.unique_key(j + 1, s))?;
            }
            match b {
                None => {
                    self.pk = pk;
                    return Ok(None);
                }
                Some(b) => {
                    if let Some(j) = self.blocked(e, h, sp, b)? {
                        return Ok(Some(j));
                    }
                }
            }
        }
    }

    /// [`BtreeTable::delete`] of a versioned table: the record and its
    /// entries delete-marked, and handed to purge at commit.
    pub(super) fn delete_versioned<S: SecondaryKey>(&mut self, e: &Engine, h: &mut TrxHandle, pk: &[u8], sec: &[S]) -> Result<()> {
        self.writable()?;
        self.lock_row_x(e, h, pk)?;
        let mut old = Vec::new();
        if !self.raw_get(pk, &mut old)? || header(&old)?.deleted {
            return Ok(());
        }
        let b = self.write_version(e, h, pk, Some(&old), &old[super::ROW_HEADER..], true, keys_of(sec))?;
        debug_assert!(b.is_none(), "an update in place is never blocked");
        let trx = h.trx(e);
        let mut items = vec![self.purge_item(0, pk.to_vec())];
        for (j, s) in sec.iter().enumerate() {
            let k = Self::secondary_entry(s.key(), pk);
            self.entry_mark(e, trx, j + 1, &k)?;
            items.push(self.purge_item(j + 1, k));
        }
        h.purge.extend(items);
        Ok(())
    }

    /// [`BtreeTable::update`] of a versioned table: the checks (the new
    /// primary key free, the new unique keys free: the primary key first,
    /// then the secondary keys in order, as [`BtreeTable::insert`]), then a
    /// new version of the record; a moved primary key delete-marks the old
    /// record and writes the new one, a changed secondary key delete-marks
    /// the old entry and makes the new one live. Returns the index whose
    /// unique key the new row would take.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn update_versioned<S: SecondaryKey>(
        &mut self,
        e: &Engine,
        h: &mut TrxHandle,
        old_pk: &[u8],
        new_pk: &[u8],
        row: &[u8],
        old_sec: &[S],
        new_sec: &[S],
    ) -> Result<Option<usize>> {
        self.writable()?;
        let pk_changed = old_pk != new_pk;
        loop {
            self.lock_row_x(e, h, old_pk)?;
            let mut at = Vec::new();
            if pk_changed {
                self.lock_row_x(e, h, new_pk)?;
                if self.raw_get(new_pk, &mut at)? {
                    first_updater_check(h.first_updater_view(), &at)?;
                    if !header(&at)?.deleted {
                        return Ok(Some(0));
                    }
                }
            }
            for (j, s) in new_sec.iter().enumerate() {
                let changed = pk_changed || old_sec[j].key() != s.key();
                if let Some(k) = self.unique_key(j + 1, s).filter(|_| changed) {
                    if self.unique_taken_locked(e, h, j + 1, k, old_pk)? {
                        return Ok(Some(j + 1));
                    }
                }
            }
            let sp = h.trx(e).savepoint();
            match self.update_parts(e, h, old_pk, new_pk, row, old_sec, new_sec)? {
                Ok(items) => {
                    h.purge.extend(items);
                    return Ok(None);
                }
                Err(b) => {
                    if let Some(j) = self.blocked(e, h, sp, b)? {
                        return Ok(Some(j));
                    }
                }
            }
        }
    }

    /// The writes of [`Self::update_versioned`]: the purge items, or why it
    /// was blocked part-way.
    #[allow(clippy::too_many_arguments)]
    fn update_parts<S: SecondaryKey>(
        &mut self,
        e: &Engine,
        h: &mut TrxHandle,
        old_pk: &[u8],
        new_pk: &[u8],
        row: &[u8],
        old_sec: &[S],
        new_sec: &[S],
    ) -> Result<std::result::Result<Vec<Item>, Blocked>> {
        let pk_changed = old_pk != new_pk;
        let mut cur = Vec::new();
        if !self.raw_get(old_pk, &mut cur)? {
            return Err(Error::Corrupt(format!("{}: an UPDATE of a row that is not there", self.path.display())));
        }
        let mut items = Vec::new();
        if pk_changed {
            let mut at = Vec::new();
            let exists = self.raw_get(new_pk, &mut at)?;
            if let Some(b) = self.write_version(e, h, new_pk, exists.then_some(&at[..]), row, false, Vec::new())? {
                return Ok(Err(b));
            }
            self.write_version(e, h, old_pk, Some(&cur), &cur[super::ROW_HEADER..], true, keys_of(old_sec))?;
            items.push(self.purge_item(0, old_pk.to_vec()));
            self.moved.insert(new_pk.to_vec());
        } else {
            self.write_version(e, h, old_pk, Some(&cur), row, false, keys_of(old_sec))?;
        }
        for (j, s) in new_sec.iter().enumerate() {
            let new_entry = Self::secondary_entry(s.key(), new_pk);
            if pk_changed || old_sec[j].key() != s.key() {
                let k = Self::secondary_entry(old_sec[j].key(), old_pk);
                self.entry_mark(e, h.trx(e), j + 1, &k)?;
                items.push(self.purge_item(j + 1, k));
                if let Some(b) = self.entry_live(e, h, j + 1, &new_entry, new_pk, s.unpack(), self.unique_key(j + 1, s))? {
                    return Ok(Err(b));
                }
            } else if old_sec[j].unpack() != s.unpack() {
                // one key, another value ('a' to 'A' under a _ci collation)
                self.entry_live(e, h, j + 1, &new_entry, new_pk, s.unpack(), None)?;
            }
        }
        Ok(Ok(items))
    }

    /// The version of the clustered record in [`Self::val`] the statement
    /// sees, into [`Self::row`]; false if none.
    pub(super) fn take_version(&mut self) -> Result<bool> {
        match resolve(&self.shared.history, &self.vis, &self.val)? {
            Seen::Gone => Ok(false),
            Seen::Newest => {
                self.row.clear();
                self.row.extend_from_slice(&self.val[super::ROW_HEADER..]);
                Ok(true)
            }
            Seen::Old(v) => {
                self.row.clear();
                self.row.extend_from_slice(&v.value[super::ROW_HEADER..]);
                Ok(true)
            }
        }
    }

    /// Whether the statement sees the current secondary entry ([`Self::key`],
    /// its primary key in [`Self::pk`], `deleted`: its mark): the row's entry
    /// for the version of the row it sees. Reads that row into
    /// [`Self::row`] unless the read is index-only (where the version seen is
    /// an older one, its unpack bytes replace the entry's).
    pub(super) fn entry_seen(&mut self, deleted: bool) -> Result<bool> {
        let j = self.cur_index;
        let view = match &self.vis {
            Vis::Newest => {
                if deleted {
                    return Ok(false);
                }
                if self.keys_only {
                    self.row.clear();
                    return Ok(true);
                }
                // (a READ UNCOMMITTED read may meet a row being changed: skipped)
                let mut rec = std::mem::take(&mut self.rec);
                let r = self.raw_get(&self.pk, &mut rec).and_then(|found| Ok(found && !header(&rec)?.deleted));
                if matches!(r, Ok(true)) {
                    self.row.clear();
                    self.row.extend_from_slice(&rec[super::ROW_HEADER..]);
                }
                self.rec = rec;
                return r;
            }
            Vis::View(v) => v,
        };
        // read after the entry: a change to the index is counted before it is made
        let settled = view.sees_all_upto(self.shared.newest_change[j].load(Ordering::Acquire));
        if self.keys_only && settled {
            self.row.clear();
            return Ok(!deleted);
        }
        // (lent out for the call, not cloned: this runs for every entry)
        let vis = std::mem::take(&mut self.vis);
        let mut rec = std::mem::take(&mut self.rec);
        let r = self.entry_seen_in(&vis, deleted, settled, &mut rec);
        self.rec = rec;
        self.vis = vis;
        r
    }

    fn entry_seen_in(&mut self, vis: &Vis, deleted: bool, settled: bool, rec: &mut Vec<u8>) -> Result<bool> {
        if !self.raw_get(&self.pk, rec)? {
            return Ok(false);
        }
        match resolve(&self.shared.history, vis, rec)? {
            Seen::Gone => Ok(false),
            Seen::Newest => {
                // the live entry is the newest version's; but a rollback puts
                // entries back before the record, so an entry read before the
                // record while the index has changes the view does not see may
                // be for a version rolled back since: it is read again, and its
                // mark and unpack bytes now are the ones that go with the record
                let deleted = if settled {
                    deleted
                } else {
                    match self.entry_now()? {
                        None => return Ok(false),
                        Some(d) => d,
                    }
                };
                if deleted {
                    return Ok(false);
                }
                self.row.clear();
                if !self.keys_only {
                    self.row.extend_from_slice(&rec[super::ROW_HEADER..]);
                }
                Ok(true)
            }
            Seen::Old(v) => {
                let sk = &self.key[..self.key.len() - self.pk.len()];
                match v.sec.get(self.cur_index - 1) {
                    Some((k, u)) if k[..] == *sk => {
                        self.row.clear();
                        if self.keys_only {
                            self.unpack.clone_from(u);
                        } else {
                            self.row.extend_from_slice(&v.value[super::ROW_HEADER..]);
                        }
                        Ok(true)
                    }
                    _ => Ok(false),
                }
            }
        }
    }

    /// The current secondary entry as it is now: its delete mark (its unpack
    /// bytes into [`Self::unpack`]); None if it is gone.
    fn entry_now(&mut self) -> Result<Option<bool>> {
        let mut v = Vec::new();
        if !tree::read(&self.shared.trees[self.cur_index], |r| r.get(&self.key, &mut v))? {
            return Ok(None);
        }
        let (deleted, unpack, _) = split_entry(&self.key, &v, SecValue::Marked)?;
        self.unpack.clear();
        self.unpack.extend_from_slice(unpack);
        Ok(Some(deleted))
    }

    /// The version of row `pk` the statement sees, into [`Self::row`] (a
    /// READ UNCOMMITTED read takes the newest, delete-marked or not, when
    /// `any`: the row of an entry it already took); false if none.
    pub(super) fn load_versioned(&mut self, pk: &[u8], any: bool) -> Result<bool> {
        let mut rec = std::mem::take(&mut self.rec);
        let r = (|| {
            if !self.raw_get(pk, &mut rec)? {
                return Ok(false);
            }
            let row: &[u8] = match resolve(&self.shared.history, &self.vis, &rec)? {
                Seen::Newest => &rec[super::ROW_HEADER..],
                Seen::Old(v) => {
                    self.row.clear();
                    self.row.extend_from_slice(&v.value[super::ROW_HEADER..]);
                    return Ok(true);
                }
                Seen::Gone if any && matches!(self.vis, Vis::Newest) => &rec[super::ROW_HEADER..],
                Seen::Gone => return Ok(false),
            };
            self.row.clear();
            self.row.extend_from_slice(row);
            Ok(true)
        })();
        self.rec = rec;
        if matches!(r, Ok(true)) {
            self.pk.clear();
            self.pk.extend_from_slice(pk);
        }
        r
    }
}

#[cfg(test)]
mod run_tests {
    use super::*;

    /// A record written before the restart by a transaction a view does not see
    /// (only one recovered as prepared can be that) holds a roll pointer of the
    /// earlier run: the read fails with a retryable error instead of following
    /// it into this run's history.
    #[test]
    fn a_roll_pointer_of_an_earlier_run_is_never_followed() {
        let hist = History::default();
        hist.set_run_start(100);
        // this run's version 1 exists: a stale pointer 1 would find it
        let p = hist.add(120, Version { value: record(Header { trx: 110, roll: 0, deleted: false }, b"other"), sec: vec![] });
        assert_eq!(p, 1);
        let rec = record(Header { trx: 50, roll: 1, deleted: false }, b"prepared");
        let view = Vis::View(Arc::new(ReadView::of(130, 131, &[50, 130])));
        assert!(matches!(resolve(&hist, &view, &rec), Err(Error::VersionGone(_))));
        // a view that sees it reads it
        let view = Vis::View(Arc::new(ReadView::of(130, 131, &[130])));
        assert!(matches!(resolve(&hist, &view, &rec), Ok(Seen::Newest)));
    }
}
