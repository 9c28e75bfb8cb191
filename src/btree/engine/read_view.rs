//! Read views (InnoDB's `read0read`): which transactions' changes a consistent
//! read sees, and the purge horizon, below which no view needs an old version.
//!
//! A view is made from the engine's active transactions at one moment (under
//! the same mutex as [`Engine::begin`] gives ids, so that no id is given but
//! not yet listed as active): it sees the changes of a transaction that had
//! committed by then, and its creator's own; nothing else. With ids given in
//! increasing order, that is: an id below the smallest active one (the *up
//! limit*), or below the next id to be given (the *low limit*) and not among
//! the active ones.
//!
//! The horizon ([`Engine::purge_horizon`]): the smallest of every open view's up
//! limit, every active transaction's id that has written, and the next id. A
//! change by a transaction below it is committed (or rolled back) and seen by
//! every view open now or made later, so the version it replaced is needed by
//! nobody: purge may drop it, and a record it delete-marked may go. A
//! transaction that has only read does not count (an idle READ COMMITTED
//! session, say): its id is below the horizon, but it has no version to
//! keep, and when it first writes it is counted before its first version is
//! kept ([`Engine::keep_version`]).

use super::*;

/// What one consistent read sees (see the module's text).
pub struct ReadView {
    creator: u64,
    /// Ids from this one on had not been given when the view was made.
    low_limit: u64,
    /// Ids below this one had ended when the view was made.
    up_limit: u64,
    /// The transactions active then (but the creator), sorted.
    active: Vec<u64>,
    /// Where the view is registered for the horizon (deregistered by
    /// [`ReadView::close`], or on drop).
    reg: Option<(Arc<Views>, u64)>,
    closed: std::sync::atomic::AtomicBool,
}

impl ReadView {
    /// Whether the view sees the changes of transaction `id`.
    pub fn sees(&self, id: u64) -> bool {
        id == self.creator || id < self.up_limit || (id < self.low_limit && self.active.binary_search(&id).is_err())
    }

    /// Whether the view sees every change of every transaction up to `id`
    /// (an index whose newest change is by `id` reads as it is).
    pub fn sees_all_upto(&self, id: u64) -> bool {
        id < self.up_limit
    }

    /// Whether the view was made before the mark `id` ([`Engine::mark_id`]).
    pub fn made_before(&self, id: u64) -> bool {
        self.low_limit <= id
    }

    /// The transaction it belongs to.
    pub fn creator(&self) -> u64 {
        self.creator
    }

    /// The view's transaction (or statement) is over: purge no longer keeps
    /// what it sees, even if a handle still holds it (it must not read with
    /// it again).
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            if let Some((views, seq)) = &self.reg {
                views.m.lock().remove(seq);
            }
        }
    }

    /// A view of the given state, registered nowhere (tests).
    #[cfg(test)]
    pub fn of(creator: u64, low_limit: u64, active: &[u64]) -> ReadView {
        let mut active: Vec<u64> = active.iter().copied().filter(|&a| a != creator).collect();
        active.sort_unstable();
        let up_limit = active.first().copied().unwrap_or(low_limit);
        ReadView { creator, low_limit, up_limit, active, reg: None, closed: Default::default() }
    }
}

impl Drop for ReadView {
    fn drop(&mut self) {
        self.close();
    }
}

/// The open views' up limits, for the horizon.
#[derive(Default)]
pub(super) struct Views {
    m: Mutex<HashMap<u64, u64>>,
    next: AtomicU64,
}

impl Views {
    /// How many views are open.
    pub(super) fn open(&self) -> usize {
        self.m.lock().len()
    }
}

impl Engine {
    /// A read view for transaction `creator` (see the module's text).
    pub fn read_view(&self, creator: u64) -> ReadView {
        let active = self.sh.active.lock();
        let low_limit = self.sh.next_trx.load(Ordering::Relaxed);
        let mut ids: Vec<u64> = active.keys().copied().filter(|&a| a != creator).collect();
        ids.sort_unstable();
        let up_limit = ids.first().copied().unwrap_or(low_limit);
        let seq = self.sh.views.next.fetch_add(1, Ordering::Relaxed);
        // registered under the active transactions' mutex: the horizon, read
        // under it too, never misses a view made from an older state
        self.sh.views.m.lock().insert(seq, up_limit);
        drop(active);
        ReadView { creator, low_limit, up_limit, active: ids, reg: Some((self.sh.views.clone(), seq)), closed: Default::default() }
    }

    /// The purge horizon (see the module's text).
    pub fn purge_horizon(&self) -> u64 {
        let active = self.sh.active.lock();
        let next = self.sh.next_trx.load(Ordering::Relaxed);
        let oldest_active =
            active.iter().filter(|(_, t)| t.wrote.load(Ordering::SeqCst)).map(|(&id, _)| id).min().unwrap_or(next);
        let oldest_view = self.sh.views.m.lock().values().copied().min().unwrap_or(next);
        oldest_active.min(oldest_view).min(next)
    }

    /// Keeps an old record version replaced by `trx`'s change; returns its roll
    /// pointer. The transaction counts as a writer for the horizon from here on.
    pub fn keep_version(&self, trx: &Trx, v: super::Version) -> u64 {
        self.sh.history.add_with(trx.id, v, || trx.sh.wrote.store(true, Ordering::SeqCst))
    }

    /// Drops the old versions no view needs; returns the horizon it used (see
    /// [`History::purge_with`]).
    pub fn purge_history(&self) -> u64 {
        self.sh.history.purge_with(|| self.purge_horizon()).0
    }

    /// How many read views are open (SHOW ENGINE RUST STATUS).
    pub fn read_views_open(&self) -> usize {
        self.sh.views.open()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_sees_what_had_committed_and_its_own() {
        // ids 1..10 given; 3 and 7 active, 5 the creator
        let v = ReadView::of(5, 10, &[3, 5, 7]);
        assert!(v.sees(1) && v.sees(2)); // below the up limit
        assert!(!v.sees(3) && !v.sees(7)); // active then
        assert!(v.sees(4) && v.sees(6) && v.sees(9)); // committed before
        assert!(v.sees(5)); // its own
        assert!(!v.sees(10) && !v.sees(11)); // begun after
        assert!(v.sees_all_upto(2) && !v.sees_all_upto(3));
    }

    /// Against a model: random begins, commits and views; each view's answer
    /// equals "committed at the view's making, or the creator".
    #[test]
    fn views_agree_with_a_model_of_commit_order() {
        let dir = crate::testutil::dir("read_view_model", 0);
        let e = Engine::open(&dir, 64, FlushPolicy::OncePerSecond).unwrap();
        let mut rng = crate::testutil::Rng::new(0x9e3779b97f4a7c15);
        let mut rnd = |n: u64| rng.below(n);
        let mut open: Vec<Trx> = Vec::new();
        let mut committed: std::collections::HashSet<u64> = Default::default();
        let mut views: Vec<(ReadView, std::collections::HashSet<u64>, u64)> = Vec::new();
        let mut wrote: std::collections::HashSet<u64> = Default::default();
        for _ in 0..2000 {
            match rnd(5) {
                0 => open.push(e.begin()),
                4 if !open.is_empty() => {
                    // a transaction that keeps a version counts for the horizon
                    let t = &open[rnd(open.len() as u64) as usize];
                    e.keep_version(t, super::super::Version { value: vec![0; 13], sec: vec![] });
                    wrote.insert(t.id);
                }
                1 if !open.is_empty() => {
                    let t = open.swap_remove(rnd(open.len() as u64) as usize);
                    committed.insert(t.id);
                    e.commit(t).unwrap();
                }
                2 if !open.is_empty() => {
                    let creator = open[rnd(open.len() as u64) as usize].id;
                    views.push((e.read_view(creator), committed.clone(), creator));
                }
                _ => {
                    if views.len() > 5 {
                        views.remove(0);
                    }
                }
            }
            let next = e.sh.next_trx.load(Ordering::Relaxed);
            for (v, seen, creator) in &views {
                for id in 1..next + 2 {
                    assert_eq!(v.sees(id), seen.contains(&id) || id == *creator, "id {id}");
                }
            }
            // the horizon: every transaction below it that wrote has ended,
            // and every view sees the committed ones
            let h = e.purge_horizon();
            for id in 1..h {
                assert!(!open.iter().any(|t| t.id == id && wrote.contains(&id)));
                for (v, _, _) in &views {
                    assert!(v.sees(id) || !committed.contains(&id));
                }
            }
        }
    }
}
