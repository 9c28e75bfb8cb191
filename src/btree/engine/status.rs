//! What the engine can tell about itself right now (SHOW ENGINE RUST STATUS,
//! SHOW GLOBAL STATUS, INFORMATION_SCHEMA.RUST_TRX; docs/operations.md). Reads
//! under the engine's own locks, briefly, one at a time: never a consistent
//! snapshot across them, as InnoDB's monitor output is not either.
use std::sync::atomic::Ordering;

use super::Engine;

/// The buffer pool, the redo log and the transactions, at one moment.
pub struct EngineStatus {
    /// The page budget all tree caches share (rust_buffer_pool_size / 16 KiB).
    pub pool_pages: u64,
    /// Pages cached now, and of those changed and not yet written (trees whose
    /// lock was free at the moment; a busy tree's dirty pages are not counted).
    pub pool_cached: u64,
    pub pool_dirty: u64,
    /// Tree files open (tables and secondary indexes).
    pub open_trees: u64,
    /// The log's end, what is written, what is durable, and the last checkpoint.
    pub log_lsn: u64,
    pub log_synced_lsn: u64,
    pub checkpoint_lsn: u64,
    /// The log file's size in bytes.
    pub log_size: u64,
    pub trx: Vec<TrxStatus>,
    /// Per open tree file: its path, pages cached and dirty (a tree busy at that
    /// moment shows `None` for dirty).
    pub trees: Vec<TreeStatus>,
}

pub struct TreeStatus {
    pub path: std::path::PathBuf,
    pub cached: u64,
    pub dirty: Option<u64>,
}

pub struct TrxStatus {
    pub id: u64,
    pub age_secs: f64,
    /// Undo entries: one per change of a clustered or secondary entry.
    pub changes: u64,
    /// "active", "prepared" (XA or two-phase commit) or "ending".
    pub state: &'static str,
}

impl Engine {
    pub fn status(&self) -> EngineStatus {
        let mut dirty = 0;
        let mut open = 0;
        let mut trees = Vec::new();
        for (path, (_, t)) in self.sh.trees.lock().iter() {
            if let Some(t) = t {
                open += 1;
                let (cached, d) = match t.try_read() {
                    Some(g) => (g.pool().cached() as u64, Some(g.pool().dirty() as u64)),
                    None => (0, None),
                };
                dirty += d.unwrap_or(0);
                trees.push(TreeStatus { path: path.clone(), cached, dirty: d });
            }
        }
        trees.sort_by(|a, b| a.path.cmp(&b.path));
        let mut trx: Vec<TrxStatus> = self
            .sh
            .active
            .lock()
            .iter()
            .map(|(&id, t)| {
                let (changes, state) = match t.st.try_lock() {
                    Some(st) => (
                        st.undo.len() as u64,
                        if st.ended {
                            "ending"
                        } else if st.xid.is_some() {
                            "prepared"
                        } else {
                            "active"
                        },
                    ),
                    None => (0, "active"),
                };
                TrxStatus { id, age_secs: t.started.elapsed().as_secs_f64(), changes, state }
            })
            .collect();
        trx.sort_by_key(|t| t.id);
        EngineStatus {
            pool_pages: self.budget.capacity() as u64,
            pool_cached: self.budget.used() as u64,
            pool_dirty: dirty,
            open_trees: open,
            log_lsn: self.sh.log.end_lsn(),
            log_synced_lsn: self.sh.log.synced.load(Ordering::Acquire),
            checkpoint_lsn: self.sh.checkpoint.load(Ordering::Acquire),
            log_size: self.sh.log.size(),
            trx,
            trees,
        }
    }
}
