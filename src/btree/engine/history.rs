//! Old versions of clustered records, for read views (InnoDB keeps them in its
//! undo log; here, for now, in memory: docs/concurrency-plan.md says what moves
//! to disk next). A change to a clustered record by transaction `T` keeps the
//! record's value as it was ([`Version`]) and writes, in the new record, a
//! *roll pointer* to it; the old value's own roll pointer leads on to the
//! version before it. A view that does not see `T` follows the chain until a
//! version it sees ([`crate::btree::table`] reads the header).
//!
//! Versions are kept by the transaction whose change replaced them, and purged
//! (dropped) once that transaction is below the purge horizon
//! ([`Engine::purge_horizon`]): every view sees its change then. A transaction
//! rolled back is purged the same way (a reader that read a record before the
//! rollback restored it may still follow its pointer meanwhile).
//!
//! After a restart no view is older than the restart, and every record's
//! transaction but a recovered prepared one is committed and seen by every
//! view: no roll pointer of an earlier run is followed (the table layer makes
//! reads of a table a recovered prepared transaction changed lock the table
//! instead).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

/// The largest roll pointer (they are 7 bytes in a record).
const MAX_PTR: u64 = (1 << 56) - 1;

/// A clustered record as it was before a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The record's value (its header, with the transaction id and roll
    /// pointer of the version before, then the row image).
    pub value: Vec<u8>,
    /// The keys of the row's secondary index entries (index 1 first, without
    /// the primary key) and their unpack bytes, as the shim built them: what a
    /// read through a secondary entry compares with the version it reaches,
    /// and what an index-only read of it gives back. Empty for a delete-marked
    /// version (nothing reads it).
    pub sec: Vec<(Vec<u8>, Vec<u8>)>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    versions: HashMap<u64, Arc<Version>>,
    /// By the transaction that replaced them.
    by_trx: BTreeMap<u64, Vec<u64>>,
    bytes: usize,
}

/// The versions kept (one per engine).
#[derive(Default)]
pub struct History {
    m: Mutex<Inner>,
    /// The first transaction id of this run: a record written by an older id
    /// holds a roll pointer of an earlier run, which means nothing here.
    run_start: std::sync::atomic::AtomicU64,
}

fn size(v: &Version) -> usize {
    v.value.len() + v.sec.iter().map(|(k, u)| k.len() + u.len() + 48).sum::<usize>() + 64
}

impl History {
    /// Every transaction id from `id` on is this run's (set once recovery is done).
    pub fn set_run_start(&self, id: u64) {
        self.run_start.store(id, std::sync::atomic::Ordering::Relaxed);
    }

    /// See [`Self::set_run_start`].
    pub fn run_start(&self) -> u64 {
        self.run_start.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Keeps `v`, replaced by a change of transaction `by`; returns its roll
    /// pointer (never 0).
    pub fn add(&self, by: u64, v: Version) -> u64 {
        self.add_with(by, v, || {})
    }

    /// [`Self::add`], running `first` under the history's mutex before the
    /// version is kept (the engine marks the transaction as a writer there, so
    /// that a purge, which computes its horizon under the same mutex, never
    /// drops a version of a transaction it did not count).
    pub fn add_with(&self, by: u64, v: Version, first: impl FnOnce()) -> u64 {
        let mut m = self.m.lock();
        first();
        m.next = if m.next >= MAX_PTR { 1 } else { m.next + 1 };
        let ptr = m.next;
        m.bytes += size(&v);
        m.versions.insert(ptr, Arc::new(v));
        m.by_trx.entry(by).or_default().push(ptr);
        ptr
    }

    /// The version a roll pointer leads to; None if it is not kept (purged: no
    /// view may need it, so a reader asking is a bug it reports).
    pub fn get(&self, ptr: u64) -> Option<Arc<Version>> {
        self.m.lock().versions.get(&ptr).cloned()
    }

    /// Drops the versions replaced by transactions below `horizon`; returns
    /// how many.
    pub fn purge(&self, horizon: u64) -> usize {
        self.purge_with(|| horizon).1
    }

    /// Drops the versions replaced by transactions below the horizon that
    /// `horizon` computes, under the history's mutex (see [`Self::add_with`]);
    /// returns the horizon and how many were dropped.
    pub fn purge_with(&self, horizon: impl FnOnce() -> u64) -> (u64, usize) {
        let mut m = self.m.lock();
        let horizon = horizon();
        let keep = m.by_trx.split_off(&horizon);
        let gone = std::mem::replace(&mut m.by_trx, keep);
        let mut n = 0;
        for ptr in gone.into_values().flatten() {
            if let Some(v) = m.versions.remove(&ptr) {
                m.bytes -= size(&v);
                n += 1;
            }
        }
        (horizon, n)
    }

    /// Versions kept, and their bytes (about).
    pub fn len(&self) -> (usize, usize) {
        let m = self.m.lock();
        (m.versions.len(), m.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_go_with_the_transaction_that_replaced_them() {
        let h = History::default();
        let v = |b: u8| Version { value: vec![b; 3], sec: vec![(vec![b], vec![])] };
        let a = h.add(5, v(1));
        let b = h.add(7, v(2));
        let c = h.add(5, v(3));
        assert_ne!(a, 0);
        assert_eq!(*h.get(b).unwrap(), v(2));
        assert_eq!(h.len().0, 3);
        assert_eq!(h.purge(5), 0); // below 5: none
        assert_eq!(h.purge(6), 2);
        assert!(h.get(a).is_none() && h.get(c).is_none());
        assert_eq!(*h.get(b).unwrap(), v(2));
        assert_eq!(h.purge(100), 1);
        assert_eq!(h.len(), (0, 0));
    }
}
