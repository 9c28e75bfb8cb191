//! The engine (BTREE layout): one per server, over the redo log, the control file
//! and every open tree; it hands out transactions and runs checkpoints and crash
//! recovery (spec: `docs/btree-format.md`). Uses the layers below it: `wal`
//! (log, records, control file), `pool`, `tree`.
//!
//! - this file: [`Engine`] itself (open, the open trees, TRUNCATE's reset, the
//!   flush policy), [`Closer`];
//! - [`trx`]: transactions (begin, logged writes, commit, prepare, rollback);
//! - [`undo`]: a transaction's undo log in memory;
//! - [`recovery`]: crash recovery, at [`Engine::open`]: redo every logged page
//!   change from the last checkpoint on (full images and diffs, into the tree
//!   files), then roll back every transaction that has neither a commit nor a
//!   rollback record, using the undo entries its log records carry, then take a
//!   checkpoint;
//! - [`checkpoint`]: checkpoints, and carrying active transactions' undo forward.

mod checkpoint;
pub mod history;
mod read_view;
mod recovery;
mod status;
pub use status::{EngineStatus, TreeStatus, TrxStatus};
mod trx;
mod undo;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::page::{PAGE_SIZE, Page};
use super::page::LOGGED_FROM;
use super::pool::{Budget, LogLink};
use super::tree::{BTree, Latch, share_budget};
use super::wal::control::{Control, read_control, write_control};
pub use super::wal::control::{CONTROL_FILE, LOG_FILE};
use super::wal::log::{REC_COMMIT, REC_MTR, REC_PREPARE, REC_RESET, REC_ROLLBACK_DONE, REC_ROLLBACK_START, REC_TREE, REC_UNDO_CARRY, Record, RedoLog};
use super::wal::records::{PAGE_DIFF, PAGE_FULL, PAGE_NEW, apply_diff, parse_carry, parse_mtr, parse_prepare, parse_reset, write_trees};
use crate::error::{Error, IoContext, Result};
pub use history::{History, Version};
pub use read_view::ReadView;
pub use trx::{RecoveredPrepared, Trx, TrxWeight};
use trx::{TrxShared, TrxState};
use undo::UndoLog;

/// A checkpoint is taken when the log has grown by this much since the last one,
/// unless set otherwise ([`Engine::set_log_size`], the server's
/// `rust_log_file_size`, default as InnoDB's `innodb_log_file_size`).
pub const CHECKPOINT_AFTER: u64 = 96 * 1024 * 1024;


/// When a commit makes the log durable (InnoDB's innodb_flush_log_at_trx_commit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// 0: write and sync about once a second.
    OncePerSecond = 0,
    /// 1: write and sync at every commit (durable).
    EveryCommit = 1,
    /// 2: write at every commit, sync about once a second.
    WriteOnly = 2,
}

pub type Tree = Arc<Latch<BTree>>;

/// background.
struct Shared {
    dir: PathBuf,
    log: Arc<RedoLog>,
    checkpoint: Arc<AtomicU64>,
    /// The last checkpoint whose control file is written (see LinkCheck).
    completed: Arc<super::pool::Completed>,
    /// Every tree file opened since the engine started: its id (kept for the file
    /// while the engine runs) and, while it is open or still has pages to write,
    /// the tree itself. The engine holds each open tree, so a tree is never dropped
    /// with dirty pages behind a checkpoint's back: only a checkpoint (after writing
    /// its pages) or [`Engine::open_tree`] lets go of a tree nobody else uses, and
    /// only when it is clean.
    trees: Mutex<HashMap<PathBuf, (u32, Option<Tree>)>>,
    /// Active transactions (the log is kept from the oldest record one of them
    /// needs: see [`TrxShared::first_lsn`]).
    active: Mutex<HashMap<u64, Arc<TrxShared>>>,
    /// The next transaction id (given under `active`'s mutex: see
    /// [`read_view`]); ids never go back, across restarts too (the control
    /// file keeps it).
    next_trx: AtomicU64,
    /// The open read views ([`read_view`]).
    views: Arc<read_view::Views>,
    /// Old versions of clustered records ([`history`]).
    history: Arc<History>,
    ckpt_lock: Mutex<()>,
    /// A background checkpoint's failure, for the server's log.
    bg_error: Mutex<Option<String>>,
    /// The log's size after the last checkpoint: a log a prepared or long
    /// transaction keeps from shrinking does not start a checkpoint at every commit.
    size_after_checkpoint: AtomicU64,
    /// Trees closed with changes they could not write (a full disk, an I/O error).
    lost: Arc<Mutex<HashSet<u32>>>,
    /// Every tree object with a log link that the engine has not forgotten (DROP,
    /// RENAME): by id, its path and a weak handle. A checkpoint lists and writes
    /// each one still alive, in the map or not (see [`Shared::strays`]).
    links: Mutex<HashMap<u32, TreeLink>>,
    /// The last changes to `trees`, for the report of a stray tree.
    events: Mutex<std::collections::VecDeque<MapEvent>>,
}

/// A tree object the engine opened (see `Shared::links`).
struct TreeLink {
    path: PathBuf,
    tree: std::sync::Weak<Latch<BTree>>,
    /// Forgotten by [`Engine::close_tree`] (its file removed or renamed): never
    /// listed again, and expected to be dropped.
    forgotten: bool,
}

/// A change to the engine's map of trees, kept in a short ring for reports.
struct MapEvent {
    at: Instant,
    what: &'static str,
    id: u32,
    path: PathBuf,
    /// The tree object (its address), 0 if none.
    tree: usize,
    /// The OS thread (the server's connection threads have no names).
    tid: i64,
}

/// Map changes kept for reports.
const EVENTS_KEPT: usize = 2048;

impl Shared {
    /// Notes a change to the map of trees (see `events`).
    fn event(&self, what: &'static str, id: u32, path: &Path, tree: Option<&Tree>) {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) };
        let mut ev = self.events.lock();
        if ev.len() == EVENTS_KEPT {
            ev.pop_front();
        }
        ev.push_back(MapEvent {
            at: Instant::now(),
            what,
            id,
            path: path.to_path_buf(),
            tree: tree.map_or(0, |t| Arc::as_ptr(t) as usize),
            tid,
        });
    }

    /// The kept map changes that name `id` or `path`, oldest first, one a line.
    fn events_of(&self, id: u32, path: &Path) -> String {
        let now = Instant::now();
        let ev = self.events.lock();
        let mut s = String::new();
        for e in ev.iter().filter(|e| e.id == id || e.path == path) {
            s.push_str(&format!(
                "\n    -{:.3} s {} id {} '{}' tree {:#x} thread {}",
                now.duration_since(e.at).as_secs_f64(),
                e.what,
                e.id,
                e.path.display(),
                e.tree,
                e.tid
            ));
        }
        s
    }
}

pub struct Engine {
    sh: Arc<Shared>,
    next_tree: AtomicU32,
    policy: AtomicU8,
    /// Log bytes between checkpoints.
    checkpoint_after: AtomicU64,
    /// The page budget every tree's cache shares (rust_buffer_pool_size).
    budget: Arc<Budget>,
    last_sync: Mutex<Instant>,
    /// The checkpoint running in the background, if any.
    bg: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// What recovery did, for the server's log.
    pub notes: Mutex<Vec<String>>,
    /// Transactions recovery found prepared (XA PREPARE, or the binlog's two-phase
    /// commit) and neither committed nor rolled back: kept, with their undo, for
    /// the server to commit or roll back by XID. Taken once by the table layer.
    pub recovered_prepared: Mutex<Vec<RecoveredPrepared>>,
}


impl Engine {
    /// Opens the engine folder (creating it), recovering from a crash if needed.
    pub fn open(dir: &Path, pool_pages: usize, policy: FlushPolicy) -> Result<Engine> {
        fs::create_dir_all(dir).ctx(|| format!("cannot create '{}'", dir.display()))?;
        let ctl_path = dir.join(CONTROL_FILE);
        let ctl = read_control(&ctl_path)?.unwrap_or(Control { checkpoint: 0, log_start: 0, next_trx: 0, trees: vec![] });
        let (log, recs) = RedoLog::open(&dir.join(LOG_FILE), ctl.log_start)?;
        let log = Arc::new(log);
        let e = Engine {
            sh: Arc::new(Shared {
                dir: dir.to_path_buf(),
                log,
                checkpoint: Arc::new(AtomicU64::new(ctl.checkpoint)),
                completed: Arc::default(),
                trees: Mutex::new(HashMap::new()),
                active: Mutex::new(HashMap::new()),
                next_trx: AtomicU64::new(ctl.next_trx.max(1)),
                views: Arc::default(),
                history: Arc::default(),
                ckpt_lock: Mutex::new(()),
                bg_error: Mutex::new(None),
                size_after_checkpoint: AtomicU64::new(0),
                lost: Arc::new(Mutex::new(HashSet::new())),
                links: Mutex::new(HashMap::new()),
                events: Mutex::new(std::collections::VecDeque::new()),
            }),
            next_tree: AtomicU32::new(1),
            policy: AtomicU8::new(policy as u8),
            checkpoint_after: AtomicU64::new(CHECKPOINT_AFTER),
            budget: Budget::new(pool_pages),
            last_sync: Mutex::new(Instant::now()),
            bg: Mutex::new(None),
            notes: Mutex::new(Vec::new()),
            recovered_prepared: Mutex::new(Vec::new()),
        };
        e.recover(&ctl, &recs)?;
        e.sh.history.set_run_start(e.sh.next_trx.load(Ordering::Relaxed));
        Ok(e)
    }

    /// The old versions of clustered records ([`history`]).
    pub fn history(&self) -> Arc<History> {
        self.sh.history.clone()
    }

    /// A fresh id, given to no transaction: a mark in the order of ids (a read
    /// view made before it has a low limit at or below it; one made after, above).
    pub fn mark_id(&self) -> u64 {
        let _active = self.sh.active.lock();
        self.sh.next_trx.fetch_add(1, Ordering::Relaxed)
    }

    /// The id the next transaction will get (every id given so far is below it).
    pub fn next_trx_id(&self) -> u64 {
        self.sh.next_trx.load(Ordering::Relaxed)
    }

    /// A number for this engine, different from every other open one's (the
    /// purge queue keeps each engine's work apart: tests open several).
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.sh) as usize
    }

    pub fn set_policy(&self, p: FlushPolicy) {
        self.policy.store(p as u8, Ordering::Relaxed);
    }

    /// How much the log grows between checkpoints (at least 1 MiB): a larger
    /// log means fewer tree page writes and fewer whole-page images in the log
    /// (a page's first change after a checkpoint), a longer recovery after a
    /// crash and more disk for the log.
    pub fn set_log_size(&self, bytes: u64) {
        self.checkpoint_after.store(bytes.max(1 << 20), Ordering::Relaxed);
    }


    /// Creates an empty tree file.
    /// See [`Closer`].
    pub fn closer(&self) -> Closer {
        Closer(self.sh.clone())
    }

    pub fn create_tree(&self, path: &Path) -> Result<()> {
        BTree::create(path)
    }

    /// Opens a tree (shared by every caller while open) with its changes logged.
    pub fn open_tree(&self, path: &Path) -> Result<Tree> {
        let mut trees = self.sh.trees.lock();
        let mut reuse = None;
        if let Some((id, open)) = trees.get(path) {
            if let Some(t) = open {
                self.sh.event("open-shared", *id, path, Some(t));
                return Ok(t.clone());
            }
            if self.sh.lost.lock().contains(id) {
                // its file is stale: the newest changes are only in the redo log
                return Err(lost_error(path));
            }
            reuse = Some(*id);
        }
        self.sh.release_idle(&mut trees);
        let mut t = BTree::open_in(path, self.budget.clone())?;
        // A file keeps its id while the engine runs, even when it was closed and
        // opened again: recovery collects each page's changes by (tree id, page), so
        // two ids for one file since a checkpoint would replay two diverging copies
        // of its pages over each other.
        let id = reuse.unwrap_or_else(|| self.next_tree.fetch_add(1, Ordering::Relaxed));
        use std::os::unix::ffi::OsStrExt;
        let mut p = id.to_le_bytes().to_vec();
        p.extend_from_slice(path.as_os_str().as_bytes());
        let tree_lsn = self.sh.log.append(REC_TREE, 0, &p);
        t.pool_mut().set_log(LogLink {
            log: self.sh.log.clone(),
            tree_id: id,
            checkpoint: self.sh.checkpoint.clone(),
            lost: self.sh.lost.clone(),
            check: Arc::new(super::pool::LinkCheck { tree_lsn, ..Default::default() }),
            completed: self.sh.completed.clone(),
        });
        let t = Arc::new(Latch::new(t));
        share_budget(&t, &self.budget);
        self.sh.event(if reuse.is_some() { "open-again" } else { "open-new" }, id, path, Some(&t));
        self.sh.links.lock().insert(id, TreeLink { path: path.to_path_buf(), tree: Arc::downgrade(&t), forgotten: false });
        trees.insert(path.to_path_buf(), (id, Some(t.clone())));
        Ok(t)
    }

    /// Forgets a tree (before its file is removed or renamed): a checkpoint first,
    /// so no redo for it remains to be replayed.
    /// `dropping`: the file is about to be removed (DROP TABLE), so changes of it
    /// that could not be written no longer matter; a RENAME of such a tree is
    /// refused (recovery finds the tree by its old name).
    pub fn close_tree(&self, path: &Path, dropping: bool) -> Result<()> {
        if let Some((id, open)) = self.sh.trees.lock().get(path) {
            if open.is_none() && self.sh.lost.lock().contains(id) {
                if !dropping {
                    return Err(lost_error(path));
                }
                self.sh.lost.lock().remove(id);
            }
        }
        self.checkpoint_now()?;
        let gone = {
            let mut trees = self.sh.trees.lock();
            let gone = trees.remove(path);
            if let Some((id, t)) = &gone {
                // under the map's lock: a checkpoint sees the entry or the mark
                if let Some(l) = self.sh.links.lock().get_mut(id) {
                    l.forgotten = true;
                }
                self.sh.event("forget", *id, path, t.as_ref());
            }
            gone
        };
        if let Some((id, Some(t))) = gone {
            held_after_close(path, id, &t, &self.sh);
        }
        Ok(())
    }

    /// REPAIR TABLE: tree `t`, open at `path`, takes the tree file `new` (written
    /// and synced by the caller), which replaces `path`'s file; the tree keeps
    /// its id (and so its TREE record) in the log. The caller holds the table's
    /// exclusive lock and made a checkpoint after the tree's last change, so no
    /// redo of the old file is left to replay onto the new one: a crash before
    /// the rename leaves the old file, after it the new one, whole.
    pub fn replace_tree_file(&self, path: &Path, t: &Tree, new: &Path) -> Result<()> {
        let mut g = t.write();
        let mut fresh = BTree::open_in(new, self.budget.clone())?;
        let Some(link) = g.pool_mut().take_log() else {
            return Err(Error::Unsupported(format!("'{}' is not a logged tree", path.display())));
        };
        if let Err(err) = fs::rename(new, path) {
            g.pool_mut().set_log(link);
            return Err(Error::io(format!("cannot rename '{}' to '{}'", new.display(), path.display()), err));
        }
        fresh.pool_mut().set_log(link);
        fresh.pool_mut().set_name(path.display().to_string());
        // the old tree's pages are all clean (the checkpoint): dropped unwritten
        *g = fresh;
        crate::btree::crash_point()?;
        crate::fsutil::sync_dir(path)
    }

    /// TRUNCATE: empties `trees` (a table's, together), crash safe and at once
    /// whatever their size. One RESET record names them all; once it is durable
    /// each file is cut to an empty tree (its pages freed). A crash before the
    /// record is durable leaves every tree as it was (no file is touched before);
    /// a crash after it is recovered by replaying the record, which voids the
    /// trees' older pages and redo. The trees stay locked throughout, so a
    /// checkpoint that begins after the record has written the empty trees
    /// before it records itself. No transaction may have changed them (the
    /// caller holds the table's exclusive lock: nobody can roll back into them).
    pub fn reset_trees(&self, trees: &[(PathBuf, Tree)]) -> Result<()> {
        let mut guards: Vec<_> = trees.iter().map(|(_, t)| t.write()).collect();
        let mut ids = Vec::with_capacity(trees.len());
        for ((path, _), g) in trees.iter().zip(&guards) {
            let Some(id) = g.pool().tree_id() else {
                return Err(Error::Unsupported(format!("'{}' is not a logged tree", path.display())));
            };
            ids.push((id, path.as_path()));
        }
        let mut p = Vec::new();
        write_trees(&mut p, &ids);
        let lsn = self.sh.log.append(REC_RESET, 0, &p);
        // From here on the trees are empty in memory: what is logged after the
        // record builds on empty trees, and their pages reach the files only once
        // the log is durable past it (the write-ahead rule), even if the sync
        // below fails (the statement then fails, and the table is empty, or after
        // a crash is as it was if the record never reached the disk).
        for g in guards.iter_mut() {
            g.reset(lsn);
        }
        crate::btree::crash_point()?;
        self.sh.log.flush_to(lsn + 1)?;
        for g in guards.iter_mut() {
            crate::btree::crash_point()?;
            g.truncate_file()?;
        }
        Ok(())
    }


    /// Makes everything logged so far durable.
    pub fn flush_log(&self) -> Result<()> {
        self.sh.log.flush_to(self.sh.log.end_lsn())
    }

    pub fn log(&self) -> &RedoLog {
        &self.sh.log
    }

    /// Tests: the process dies now. Nothing is flushed; what the log buffered is
    /// lost, and with `power_loss` also what was written but not synced.
    #[cfg(test)]
    pub(crate) fn simulate_crash(self, power_loss: bool) {
        if power_loss {
            let synced = self.sh.log.synced.load(Ordering::Acquire);
            let base = self.sh.log.inner.lock().base_lsn;
            let f = OpenOptions::new().write(true).open(self.sh.dir.join(LOG_FILE)).unwrap();
            f.set_len(super::wal::log::LOG_HEADER + (synced - base)).unwrap();
        }
        self.wait_background();
        std::mem::forget(self);
    }
}


/// What a table uses to give its trees back when its last user closes it (FLUSH
/// TABLES, the table cache letting it go).
#[derive(Clone)]
pub struct Closer(Arc<Shared>);

impl Closer {
    /// Writes the tree's dirty pages and syncs its file, then, if nobody else uses
    /// the tree (no transaction's undo, no checkpoint holding it), lets go of it: a
    /// closed table's files are complete, and it is read afresh when opened again.
    /// The engine keeps the tree when it cannot be written (a checkpoint tries
    /// again). Safe beside a checkpoint: the tree is let go of only after it is
    /// wholly on disk, and a checkpoint that holds it keeps it.
    pub fn close(&self, path: &Path, t: Tree) {
        if t.write().flush().is_err() {
            return;
        }
        let mut trees = self.0.trees.lock();
        if let Some((id, open)) = trees.get_mut(path) {
            let ours = open.as_ref().is_some_and(|o| Arc::ptr_eq(o, &t));
            if ours && unused_and_clean(&t, 2) {
                *open = None;
                self.0.event("close-release", *id, path, Some(&t));
            } else {
                self.0.event(if ours { "close-keep" } else { "close-other" }, *id, path, Some(&t));
            }
        }
    }
}

/// Whether `t` has no holders but the `refs` known ones and nothing to write.
fn unused_and_clean(t: &Tree, refs: usize) -> bool {
    Arc::strong_count(t) == refs && t.try_write().is_some_and(|g| g.pool().is_clean())
}

impl Shared {
    /// Lets go of trees that nobody uses and that have nothing left to write
    /// (their pages go back to the budget); a tree with dirty pages stays until a
    /// checkpoint has written them. Its id is kept.
    fn release_idle(&self, trees: &mut HashMap<PathBuf, (u32, Option<Tree>)>) {
        for (path, (id, open)) in trees.iter_mut() {
            if open.as_ref().is_some_and(|t| unused_and_clean(t, 1)) {
                self.event("idle-release", *id, path, open.as_ref());
                *open = None;
            }
        }
    }
}

/// Checks that nobody but the engine still holds a tree it forgets
/// ([`Engine::close_tree`]: DROP and RENAME, after the server closed the table):
/// a holder could write it under an id no later checkpoint lists, to a file
/// renamed or removed. Never expected; said in the error log with the stack and
/// counted, as [`crate::btree::pool::LinkCheck`]'s breaches. (The buffer pool's
/// budget holds a tree for a moment while it takes a page from it: waited out.)
fn held_after_close(path: &Path, id: u32, t: &Tree, sh: &Shared) {
    for _ in 0..20 {
        if Arc::strong_count(t) == 1 {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    crate::metrics::CHECKPOINT_BREACHES.inc();
    eprintln!(
        "[ERROR] RUST: the engine forgot tree id {id} ('{}') for a DROP or RENAME while {} others hold it. The map's last changes of it:{}\nForgotten from: {}",
        path.display(),
        Arc::strong_count(t) - 1,
        sh.events_of(id, path),
        std::backtrace::Backtrace::force_capture()
    );
}

fn lost_error(path: &Path) -> Error {
    Error::io(
        format!("'{}' has changes that could not be written (see the error log)", path.display()),
        std::io::Error::other("restart the server: recovery writes them from the redo log"),
    )
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.wait_background();
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod perf;
