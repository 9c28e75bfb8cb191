//! Checkpoints: write every dirty page of every open tree, carry active
//! transactions' undo forward in the log (UNDO_CARRY), record the checkpoint in
//! the control file and drop the log before it; in the background once the log
//! has grown past its size. Uses the redo log, the control file and the trees.

use super::*;

/// Pages a checkpoint writes per hold of a tree's lock.
const FLUSH_SLICE: usize = 8;

/// Tests: run once by the next checkpoint of the engine in the folder given,
/// right after it has taken its LSN and its list of trees.
#[cfg(test)]
pub(super) static AFTER_BEGIN: parking_lot::Mutex<Option<(PathBuf, Box<dyn FnOnce() + Send>)>> = parking_lot::Mutex::new(None);

#[cfg(test)]
impl Shared {
    fn test_hook(&self) {
        let hook = {
            let mut h = AFTER_BEGIN.lock();
            if h.as_ref().is_some_and(|(d, _)| *d == self.dir) { h.take() } else { None }
        };
        if let Some((_, f)) = hook {
            f();
        }
    }
}

impl Engine {
    /// A checkpoint once the log has grown past [`Engine::set_log_size`], taken by a
    /// background thread: a commit is durable once its log record is, so it does
    /// not wait for the tree files to be written.
    pub(super) fn maybe_checkpoint(&self) -> Result<()> {
        let size = self.sh.log.size();
        let every = self.checkpoint_after.load(Ordering::Relaxed);
        if size <= every
            || size <= self.sh.size_after_checkpoint.load(Ordering::Relaxed) + every
            || !self.sh.lost.lock().is_empty()
        {
            return Ok(());
        }
        let mut bg = self.bg.lock();
        if bg.as_ref().is_some_and(|h| !h.is_finished()) {
            return Ok(());
        }
        if let Some(h) = bg.take() {
            let _ = h.join();
        }
        if let Some(e) = self.sh.bg_error.lock().take() {
            self.notes.lock().push(format!("a background checkpoint failed: {e}"));
        }
        let sh = self.sh.clone();
        let spawned = std::thread::Builder::new().name("rust_checkpoint".into()).spawn(move || {
            if let Err(e) = sh.checkpoint() {
                // the server's error log, now (notes are read only at start-up)
                eprintln!("[ERROR] RUST: a background checkpoint failed (the redo log is kept; it is tried again as the log grows): {e}");
                *sh.bg_error.lock() = Some(e.to_string());
                sh.size_after_checkpoint.store(sh.log.size(), Ordering::Relaxed);
            }
        });
        match spawned {
            Ok(h) => {
                *bg = Some(h);
                Ok(())
            }
            Err(_) => {
                drop(bg);
                self.sh.checkpoint()
            }
        }
    }

    /// Waits for a background checkpoint to end.
    pub(super) fn wait_background(&self) {
        let h = self.bg.lock().take();
        if let Some(h) = h {
            let _ = h.join();
        }
    }

    /// Writes every dirty page of every open tree, records the checkpoint and drops
    /// the log before it (but never an active transaction's records). Waits for a
    /// background checkpoint first (at shutdown: no thread outlives the engine).
    pub fn checkpoint_now(&self) -> Result<()> {
        self.wait_background();
        self.sh.checkpoint()
    }
}

impl Shared {
    /// Carries the undo entries of the transactions that keep the log from
    /// before `ckpt` forward: one UNDO_CARRY record each, at the log's end, with
    /// every undo entry it has (and its XID if prepared), after which recovery
    /// needs none of its earlier records. So a long or prepared transaction no
    /// longer keeps the whole log from its first change on, only its own undo.
    /// Skipped for a transaction whose undo is more than half of what it keeps
    /// (the log would hardly shrink) and for one busy for longer than a moment
    /// (it is carried by a later checkpoint). Returns once the records are durable.
    pub(super) fn carry_undo(&self, ckpt: u64) -> Result<usize> {
        let pinning: Vec<(u64, Arc<TrxShared>)> = self
            .active
            .lock()
            .iter()
            .filter(|(_, t)| t.first_lsn.load(Ordering::Acquire) < ckpt)
            .map(|(id, t)| (*id, t.clone()))
            .collect();
        let mut last = None;
        let mut carried = 0;
        for (id, t) in pinning {
            let Some(st) = t.st.try_lock_for(Duration::from_millis(100)) else { continue };
            let first = t.first_lsn.load(Ordering::Acquire);
            if st.ended || first >= ckpt {
                continue;
            }
            if st.undo.is_empty() {
                // nothing to undo (a rollback to its start): nothing to keep
                t.first_lsn.store(u64::MAX, Ordering::Release);
                continue;
            }
            if (ckpt - first) / 2 < st.undo.size() as u64 + 4096 {
                continue;
            }
            let mut b = vec![st.xid.is_some() as u8];
            let ids = self.xid_and_trees(&st, st.xid.as_deref().unwrap_or(&[]), &mut b);
            let n_at = b.len();
            b.extend_from_slice(&0u32.to_le_bytes());
            let mut n = 0u32;
            for ((_, u), tree) in st.undo.iter().zip(ids) {
                let Some(tree) = tree else {
                    // its tree is no longer open in the engine (never expected: the
                    // transaction holds it): said, so that it is seen
                    eprintln!("[ERROR] RUST: a checkpoint could not carry an undo entry of transaction {id}: its tree is not open");
                    continue;
                };
                b.extend_from_slice(&tree.to_le_bytes());
                b.extend_from_slice(&(u.len() as u32).to_le_bytes());
                b.extend_from_slice(u);
                n += 1;
            }
            b[n_at..n_at + 4].copy_from_slice(&n.to_le_bytes());
            let lsn = self.log.append(REC_UNDO_CARRY, id, &b);
            t.first_lsn.store(lsn, Ordering::Release);
            last = Some(lsn);
            carried += 1;
        }
        if let Some(lsn) = last {
            self.log.flush_to(lsn + 1)?;
        }
        Ok(carried)
    }

    pub(super) fn checkpoint(&self) -> Result<()> {
        let _g = self.ckpt_lock.lock();
        if !self.lost.lock().is_empty() {
            // the only copy of those changes is the log from the last checkpoint on
            return Err(Error::io(
                "a RUST table was closed with changes it could not write (see the error log)",
                std::io::Error::other("the redo log is kept from the last checkpoint until a restart recovers them"),
            ));
        }
        let seq = self.completed.next.fetch_add(1, Ordering::Relaxed) + 1;
        // The LSN and the list of trees, at one moment (under the map's lock,
        // which `open_tree` appends its TREE record under): a tree open then is
        // listed (and written below); one opened later has its TREE record
        // after the LSN, in the log kept; one let go of before was written and
        // synced whole (`Closer::close`, `release_idle`) and is opened again,
        // with a new TREE record, before it can change. Taken apart, a tree
        // opened before the LSN, written after it and let go of before the list
        // was read was in neither (the crash loop's cycle 770, `ci/ddlhunt`).
        let (ckpt, mut live, strays) = {
            let trees = self.trees.lock();
            // from now on a page's first change is logged whole (torn-page safety)
            let ckpt = self.log.begin_checkpoint(&self.checkpoint);
            let live: Vec<(u32, PathBuf, Tree)> =
                trees.iter().filter_map(|(p, (id, t))| t.as_ref().map(|t| (*id, p.clone(), t.clone()))).collect();
            let strays = self.strays(&trees, &live);
            (ckpt, live, strays)
        };
        // (the trees are let go of, and may be dropped, without the map's lock)
        self.report_strays(&strays, seq, ckpt);
        live.extend(strays.into_iter().filter(|s| s.listable).map(|s| (s.id, s.path, s.tree)));
        #[cfg(test)]
        self.test_hook();
        crate::btree::write_crash_point()?;
        self.log.flush_to(ckpt)?;
        crate::btree::write_crash_point()?;
        for (_, path, t) in &live {
            // a slice at a time: the tree's users are not held up for the whole
            // flush
            let mut at = 0;
            loop {
                let mut g = t.write();
                let next = g.flush_some(at, FLUSH_SLICE, ckpt)?;
                if next >= g.pool().frames() {
                    let f = g.pool().file_handle()?;
                    let (serial, writes) = (g.pool().serial(), g.pool().writes);
                    drop(g);
                    if let Err(e) = f.sync_data() {
                        // the pages a failed sync could not write may be dropped by
                        // the kernel and counted clean: no later sync has them for
                        // sure, the log is their only copy until a restart
                        t.read().pool().mark_lost();
                        eprintln!(
                            "[ERROR] RUST: cannot sync '{}' ({e}): checkpoints wait, and the redo log is kept, until a restart recovers its changes",
                            path.display()
                        );
                        return Err(Error::io(format!("cannot sync '{}'", path.display()), e));
                    }
                    t.write().pool_mut().mark_synced(serial, writes);
                    break;
                }
                at = next;
            }
        }
        self.carry_undo(ckpt)?;
        let oldest = self.active.lock().values().map(|t| t.first_lsn.load(Ordering::Acquire)).min().unwrap_or(ckpt);
        let log_start = oldest.min(ckpt);
        // A transaction that ended (COMMIT, ROLLBACK) or rolled back to its
        // start since `ckpt` is not kept by `log_start`, but its end record and
        // its rollback's page changes come after `ckpt` and may not be in the
        // log file yet, while its changes from before `ckpt` may be in the tree
        // files: they are made durable before the control file lets the log
        // before `ckpt` go. (Each appends them before it leaves `active`, and
        // `active` was read above: the log's end now covers them.)
        self.log.flush_to(self.log.end_lsn())?;
        let ctl = Control {
            checkpoint: ckpt,
            log_start,
            next_trx: self.next_trx.load(Ordering::Relaxed),
            trees: live.iter().map(|(id, p, _)| (*id, p.clone())).collect(),
        };
        // every change from now on to a tree not listed here must come after a
        // TREE record of its own (see LinkCheck)
        for (_, _, t) in &live {
            if let Some(c) = t.read().pool().link_check() {
                c.listed_at.store(seq, Ordering::Release);
            }
        }
        write_control(&self.dir.join(CONTROL_FILE), &ctl)?;
        self.completed.lsn.store(ckpt, Ordering::Release);
        self.completed.seq.store(seq, Ordering::Release);
        crate::btree::write_crash_point()?;
        drop(live);
        self.release_idle(&mut self.trees.lock());
        self.log.truncate_before(log_start)?;
        self.size_after_checkpoint.store(self.log.size(), Ordering::Relaxed);
        crate::metrics::CHECKPOINTS.inc();
        Ok(())
    }

    /// The tree objects alive with a log link the engine has not forgotten
    /// (`links`) but that `trees` (the map, locked by the caller) does not hold
    /// open; `live` lists what the map holds. Each one whose path is still its
    /// own (no other tree under it in the map: recovery replays by path) is
    /// listed and written by the checkpoint, so that a change of it is never
    /// lost. A tree let go of a moment ago and not yet dropped (the closer's own
    /// handle, the budget's) is one of them and harmless; one that changed since
    /// it was let go of is a breach: see [`Shared::report_strays`].
    fn strays(&self, trees: &HashMap<PathBuf, (u32, Option<Tree>)>, live: &[(u32, PathBuf, Tree)]) -> Vec<Stray> {
        let listed: HashSet<u32> = live.iter().map(|(id, _, _)| *id).collect();
        let mut out = Vec::new();
        let mut links = self.links.lock();
        links.retain(|_, l| l.tree.strong_count() > 0);
        for (id, l) in links.iter() {
            // (a tree forgotten while held is check 2's: `held_after_close`)
            if listed.contains(id) || l.forgotten {
                continue;
            }
            let Some(t) = l.tree.upgrade() else { continue };
            let map = match trees.get(&l.path) {
                None => "no entry".to_string(),
                Some((mid, None)) => format!("id {mid}, let go of"),
                Some((mid, Some(o))) => format!("id {mid}, open as tree {:#x}", Arc::as_ptr(o) as usize),
            };
            let listable = trees.get(&l.path).is_none_or(|(mid, _)| mid == id);
            out.push(Stray { id: *id, path: l.path.clone(), tree: t, map, listable });
        }
        out
    }

    /// Says in the error log, and counts ([`crate::metrics::CHECKPOINT_BREACHES`]),
    /// each stray tree that changed since it was let go of (never expected: a
    /// tree is let go of only when written and synced, so one that is not is
    /// being written outside the map), with the map's state for its path and the
    /// map's last changes of it. Called without the map's lock (a tree's lock
    /// is waited for here).
    fn report_strays(&self, strays: &[Stray], seq: u64, ckpt: u64) {
        for st in strays {
            if st.tree.read().pool().is_clean() {
                continue;
            }
            crate::metrics::CHECKPOINT_BREACHES.inc();
            eprintln!(
                "[ERROR] RUST: checkpoint {seq} (LSN {ckpt}) found tree id {} ('{}', tree {:#x}, {} holders) changed but not open in the engine's map (its path: {}){}. The map's last changes of it:{}",
                st.id,
                st.path.display(),
                Arc::as_ptr(&st.tree) as usize,
                Arc::strong_count(&st.tree) - 1,
                st.map,
                if st.listable { "; it writes and lists it" } else { "" },
                self.events_of(st.id, &st.path)
            );
        }
    }
}

/// A tree alive outside the engine's map (see [`Shared::strays`]).
struct Stray {
    id: u32,
    path: PathBuf,
    tree: Tree,
    /// The map's entry for its path, said in a report.
    map: String,
    /// Its path is still its own: the checkpoint lists it.
    listable: bool,
}
