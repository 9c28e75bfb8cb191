//! Engine-wide state of the BTREE layout: the redo log, the control file, the open
//! trees, transactions (undo, commit, rollback, savepoints), checkpoints, and crash
//! recovery (spec: `docs/btree-format.md`).
//!
//! Recovery, at [`Engine::open`]: redo every logged page change from the last
//! checkpoint on (full images and diffs, into the tree files), then roll back every
//! transaction that has neither a commit nor a rollback record, using the undo
//! entries its log records carry, then take a checkpoint.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use super::log::{REC_COMMIT, REC_MTR, REC_PREPARE, REC_RESET, REC_ROLLBACK_DONE, REC_ROLLBACK_START, REC_TREE, REC_UNDO_CARRY, Record, RedoLog};
use super::page::{PAGE_SIZE, Page};
use super::pool::{Budget, LOGGED_FROM, LogLink, PAGE_DIFF, PAGE_FULL, PAGE_NEW, apply_diff};
use super::tree::{BTree, share_budget};
use crate::error::{Error, IoContext, Result};

mod status;
pub use status::{EngineStatus, TreeStatus, TrxStatus};

const CONTROL_MAGIC: &[u8; 8] = b"RUSTCTL\0";
/// The engine's files, in the server's data directory (beside InnoDB's ib_logfile0).
pub const CONTROL_FILE: &str = "rust_control";
pub const LOG_FILE: &str = "rust_redo.log";
const CONTROL_VERSION: u32 = 1;
/// A checkpoint is taken when the log has grown by this much since the last one,
/// unless set otherwise ([`Engine::set_log_size`], the server's
/// `rust_log_file_size`, default as InnoDB's `innodb_log_file_size`).
pub const CHECKPOINT_AFTER: u64 = 96 * 1024 * 1024;
/// Pages a checkpoint writes per hold of a tree's lock.
const FLUSH_SLICE: usize = 8;

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

pub type Tree = Arc<RwLock<BTree>>;

struct Control {
    checkpoint: u64,
    log_start: u64,
    trees: Vec<(u32, PathBuf)>,
}

fn read_control(path: &Path) -> Result<Option<Control>> {
    let b = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("cannot read '{}'", path.display()), e)),
    };
    let bad = || Error::Corrupt(format!("{}: damaged control file", path.display()));
    if b.len() < 36 || &b[0..8] != CONTROL_MAGIC {
        return Err(bad());
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().unwrap()) {
        return Err(bad());
    }
    let v = u32::from_le_bytes(b[8..12].try_into().unwrap());
    if v != CONTROL_VERSION {
        return Err(Error::Unsupported(format!("{}: control file version {v}", path.display())));
    }
    let checkpoint = u64::from_le_bytes(b[12..20].try_into().unwrap());
    let log_start = u64::from_le_bytes(b[20..28].try_into().unwrap());
    let n = u32::from_le_bytes(b[28..32].try_into().unwrap()) as usize;
    let mut at = 32;
    let mut trees = Vec::new();
    use std::os::unix::ffi::OsStrExt;
    for _ in 0..n {
        let id = u32::from_le_bytes(body.get(at..at + 4).ok_or_else(bad)?.try_into().unwrap());
        let len = u16::from_le_bytes(body.get(at + 4..at + 6).ok_or_else(bad)?.try_into().unwrap()) as usize;
        let p = body.get(at + 6..at + 6 + len).ok_or_else(bad)?;
        trees.push((id, PathBuf::from(std::ffi::OsStr::from_bytes(p))));
        at += 6 + len;
    }
    Ok(Some(Control { checkpoint, log_start, trees }))
}

fn write_control(path: &Path, c: &Control) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let mut b = Vec::new();
    b.extend_from_slice(CONTROL_MAGIC);
    b.extend_from_slice(&CONTROL_VERSION.to_le_bytes());
    b.extend_from_slice(&c.checkpoint.to_le_bytes());
    b.extend_from_slice(&c.log_start.to_le_bytes());
    b.extend_from_slice(&(c.trees.len() as u32).to_le_bytes());
    for (id, p) in &c.trees {
        let pb = p.as_os_str().as_bytes();
        b.extend_from_slice(&id.to_le_bytes());
        b.extend_from_slice(&(pb.len() as u16).to_le_bytes());
        b.extend_from_slice(pb);
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    let tmp = path.with_extension("new");
    let f = File::create(&tmp).ctx(|| format!("cannot create '{}'", tmp.display()))?;
    f.write_all_at(&b, 0).ctx(|| format!("cannot write '{}'", tmp.display()))?;
    f.sync_all().ctx(|| format!("cannot sync '{}'", tmp.display()))?;
    fs::rename(&tmp, path).ctx(|| format!("cannot rename '{}'", tmp.display()))?;
    if let Some(d) = path.parent() {
        File::open(d).and_then(|d| d.sync_all()).ctx(|| "cannot sync the engine folder".into())?;
    }
    Ok(())
}

/// A page change in an MTR record.
struct PageChange<'a> {
    page: u32,
    kind: u8,
    bytes: &'a [u8],
}

/// Splits a prepare record's payload: the XID and the transaction's tree ids.
fn parse_prepare(p: &[u8]) -> Option<(Vec<u8>, HashMap<u32, PathBuf>)> {
    parse_xid_and_trees(p).map(|(xid, ids, _)| (xid, ids))
}

/// An UNDO_CARRY record's payload, split: the XID if the transaction was
/// prepared, its tree ids, and its undo entries (tree id, entry), oldest first.
type Carry = (Option<Vec<u8>>, HashMap<u32, PathBuf>, Vec<(u32, Vec<u8>)>);

fn parse_carry(p: &[u8]) -> Option<Carry> {
    let flags = *p.first()?;
    let (xid, ids, mut at) = parse_xid_and_trees(p.get(1..)?)?;
    at += 1;
    let n = u32::from_le_bytes(p.get(at..at + 4)?.try_into().ok()?) as usize;
    at += 4;
    let mut entries = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let tree = u32::from_le_bytes(p.get(at..at + 4)?.try_into().ok()?);
        let len = u32::from_le_bytes(p.get(at + 4..at + 8)?.try_into().ok()?) as usize;
        entries.push((tree, p.get(at + 8..at + 8 + len)?.to_vec()));
        at += 8 + len;
    }
    if at != p.len() {
        return None;
    }
    Some(((flags & 1 != 0).then_some(xid), ids, entries))
}

/// `u32 XID length, XID`, then a list of trees (see [`parse_trees`]) (PREPARE's
/// payload, and part of UNDO_CARRY's), and where it ends.
fn parse_xid_and_trees(p: &[u8]) -> Option<(Vec<u8>, HashMap<u32, PathBuf>, usize)> {
    let xl = u32::from_le_bytes(p.get(0..4)?.try_into().ok()?) as usize;
    let xid = p.get(4..4 + xl)?.to_vec();
    let (ids, end) = parse_trees(p.get(4 + xl..)?)?;
    Some((xid, ids.into_iter().collect(), 4 + xl + end))
}

/// A list of trees (in PREPARE, UNDO_CARRY and RESET records): `u32 trees`, then
/// per tree `u32 id, u16 path length, path`; and where it ends.
fn parse_trees(p: &[u8]) -> Option<(Vec<(u32, PathBuf)>, usize)> {
    use std::os::unix::ffi::OsStrExt;
    let n = u32::from_le_bytes(p.get(0..4)?.try_into().ok()?) as usize;
    let mut at = 4;
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = u32::from_le_bytes(p.get(at..at + 4)?.try_into().ok()?);
        let len = u16::from_le_bytes(p.get(at + 4..at + 6)?.try_into().ok()?) as usize;
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(p.get(at + 6..at + 6 + len)?));
        ids.push((id, path));
        at += 6 + len;
    }
    Some((ids, at))
}

/// Writes a list of trees as [`parse_trees`] reads it.
fn write_trees(b: &mut Vec<u8>, trees: &[(u32, &Path)]) {
    use std::os::unix::ffi::OsStrExt;
    b.extend_from_slice(&(trees.len() as u32).to_le_bytes());
    for (id, p) in trees {
        let pb = p.as_os_str().as_bytes();
        b.extend_from_slice(&id.to_le_bytes());
        b.extend_from_slice(&(pb.len() as u16).to_le_bytes());
        b.extend_from_slice(pb);
    }
}

/// A RESET record's trees.
fn parse_reset(p: &[u8]) -> Option<Vec<(u32, PathBuf)>> {
    parse_trees(p).filter(|(_, end)| *end == p.len()).map(|(ids, _)| ids)
}

/// Splits an MTR record payload: (tree id, undo entry, page changes).
fn parse_mtr(p: &[u8]) -> Option<(u32, &[u8], Vec<PageChange<'_>>)> {
    let tree = u32::from_le_bytes(p.get(0..4)?.try_into().ok()?);
    let ulen = u32::from_le_bytes(p.get(4..8)?.try_into().ok()?) as usize;
    let undo = p.get(8..8 + ulen)?;
    let mut at = 8 + ulen;
    let n = u16::from_le_bytes(p.get(at..at + 2)?.try_into().ok()?) as usize;
    at += 2;
    let mut pages = Vec::with_capacity(n);
    for _ in 0..n {
        let page = u32::from_le_bytes(p.get(at..at + 4)?.try_into().ok()?);
        let kind = *p.get(at + 4)?;
        at += 5;
        let len = match kind {
            PAGE_FULL => PAGE_SIZE - LOGGED_FROM,
            PAGE_DIFF | PAGE_NEW => ranges_len(p.get(at..)?)?,
            _ => return None,
        };
        pages.push(PageChange { page, kind, bytes: p.get(at..at + len)? });
        at += len;
    }
    Some((tree, undo, pages))
}

/// The length of a ranges entry (`u16 count`, then `u16 offset, u16 length,
/// bytes`), checking that every range lies in the logged part of a page.
fn ranges_len(r: &[u8]) -> Option<usize> {
    let n = u16::from_le_bytes(r.get(0..2)?.try_into().ok()?) as usize;
    let mut at = 2;
    for _ in 0..n {
        let off = u16::from_le_bytes(r.get(at..at + 2)?.try_into().ok()?) as usize;
        let len = u16::from_le_bytes(r.get(at + 2..at + 4)?.try_into().ok()?) as usize;
        if off < LOGGED_FROM || off + len > PAGE_SIZE {
            return None;
        }
        r.get(at + 4..at + 4 + len)?;
        at += 4 + len;
    }
    Some(at)
}

/// What a checkpoint needs, shared with the thread that takes checkpoints in the
/// background.
struct Shared {
    dir: PathBuf,
    log: Arc<RedoLog>,
    checkpoint: Arc<AtomicU64>,
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
    ckpt_lock: Mutex<()>,
    /// A background checkpoint's failure, for the server's log.
    bg_error: Mutex<Option<String>>,
    /// The log's size after the last checkpoint: a log a prepared or long
    /// transaction keeps from shrinking does not start a checkpoint at every commit.
    size_after_checkpoint: AtomicU64,
    /// Trees closed with changes they could not write (a full disk, an I/O error).
    lost: Arc<Mutex<HashSet<u32>>>,
}

pub struct Engine {
    sh: Arc<Shared>,
    next_tree: AtomicU32,
    next_trx: AtomicU64,
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

/// The tree of an undo entry found by recovery: a tree id (an MTR record's) or
/// the path an UNDO_CARRY record gave for its id.
enum UndoTree {
    Id(u32),
    Path(PathBuf),
}

/// A prepared transaction found by recovery.
pub struct RecoveredPrepared {
    pub xid: Vec<u8>,
    pub trx: Trx,
    /// The tree files it changed (their tables' locks are taken again for it).
    pub trees: Vec<PathBuf>,
}

/// A transaction. Its state is shared with the engine's list of active
/// transactions, so that a checkpoint can carry its undo entries forward in the
/// log (see [`Shared::carry_undo`]).
pub struct Trx {
    pub id: u64,
    sh: Arc<TrxShared>,
}

/// What the engine knows of an active transaction.
struct TrxShared {
    /// The LSN of the oldest log record recovery needs of it: its first MTR record,
    /// or its last UNDO_CARRY record; `u64::MAX` before it has written anything.
    /// Checkpoints keep the log from the oldest of these on.
    first_lsn: AtomicU64,
    /// Locked by the transaction's own calls for the whole of each (a write with
    /// its log record, a rollback from its first undo entry to its last record),
    /// and by a checkpoint that carries its undo: never both at once.
    st: Mutex<TrxState>,
    /// When it began (SHOW ENGINE RUST STATUS, INFORMATION_SCHEMA.RUST_TRX).
    started: Instant,
}

/// A transaction's undo entries, oldest first, with no allocation per entry: their
/// bytes one after another in one buffer, and per entry its tree (an index into
/// the trees it used) and where its bytes end.
#[derive(Default)]
struct UndoLog {
    trees: Vec<Tree>,
    entries: Vec<(u32, usize)>,
    bytes: Vec<u8>,
}

impl UndoLog {
    fn push(&mut self, t: &Tree, u: &[u8]) {
        // most transactions write one tree or a few: the last one used first
        let i = match self.entries.last() {
            Some(&(i, _)) if Arc::ptr_eq(&self.trees[i as usize], t) => i as usize,
            _ => match self.trees.iter().position(|x| Arc::ptr_eq(x, t)) {
                Some(i) => i,
                None => {
                    self.trees.push(t.clone());
                    self.trees.len() - 1
                }
            },
        };
        self.bytes.extend_from_slice(u);
        self.entries.push((i as u32, self.bytes.len()));
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total size of the entries.
    fn size(&self) -> usize {
        self.bytes.len()
    }

    /// The newest entry: its tree and bytes (valid until the next change).
    fn last(&self) -> Option<(&Tree, &[u8])> {
        let n = self.entries.len();
        let &(t, end) = self.entries.last()?;
        let start = if n >= 2 { self.entries[n - 2].1 } else { 0 };
        Some((&self.trees[t as usize], &self.bytes[start..end]))
    }

    /// Forgets the newest entry.
    fn drop_last(&mut self) {
        self.entries.pop();
        self.bytes.truncate(self.entries.last().map_or(0, |e| e.1));
    }

    fn iter(&self) -> impl Iterator<Item = (&Tree, &[u8])> {
        self.entries.iter().scan(0, |start, &(t, end)| {
            let b = &self.bytes[*start..end];
            *start = end;
            Some((&self.trees[t as usize], b))
        })
    }

    /// Whether an entry is for tree `t`.
    fn uses(&self, t: &Tree) -> bool {
        match self.trees.iter().position(|x| Arc::ptr_eq(x, t)) {
            Some(i) => self.entries.iter().any(|e| e.0 as usize == i),
            None => false,
        }
    }
}

#[derive(Default)]
struct TrxState {
    /// Undo entries, newest last.
    undo: UndoLog,
    /// Where a write's undo entry is made before [`TrxState::push`] keeps it.
    scratch: Vec<u8>,
    /// The XID, once prepared (a prepare record is logged): its rollback is
    /// logged as begun before it changes anything, and its end is made durable.
    xid: Option<Vec<u8>>,
    /// Committed or rolled back: nothing left to carry.
    ended: bool,
}

impl TrxState {
    /// Keeps the undo entry in `scratch` as the newest, for tree `t`.
    fn push(&mut self, t: &Tree) {
        self.undo.push(t, &self.scratch);
    }
}

impl Trx {
    fn new(id: u64, first_lsn: u64, st: TrxState) -> Trx {
        Trx {
            id,
            sh: Arc::new(TrxShared { first_lsn: AtomicU64::new(first_lsn), st: Mutex::new(st), started: Instant::now() }),
        }
    }
    /// A savepoint: roll back to it with [`Engine::rollback_to`].
    pub fn savepoint(&self) -> usize {
        self.sh.st.lock().undo.len()
    }
    pub fn is_empty(&self) -> bool {
        self.sh.st.lock().undo.is_empty()
    }
    /// Whether it changed tree `t` (has an undo entry for it).
    pub fn changed(&self, t: &Tree) -> bool {
        self.sh.st.lock().undo.uses(t)
    }
}

impl Engine {
    /// Opens the engine folder (creating it), recovering from a crash if needed.
    pub fn open(dir: &Path, pool_pages: usize, policy: FlushPolicy) -> Result<Engine> {
        fs::create_dir_all(dir).ctx(|| format!("cannot create '{}'", dir.display()))?;
        let ctl_path = dir.join(CONTROL_FILE);
        let ctl = read_control(&ctl_path)?.unwrap_or(Control { checkpoint: 0, log_start: 0, trees: vec![] });
        let (log, recs) = RedoLog::open(&dir.join(LOG_FILE), ctl.log_start)?;
        let log = Arc::new(log);
        let e = Engine {
            sh: Arc::new(Shared {
                dir: dir.to_path_buf(),
                log,
                checkpoint: Arc::new(AtomicU64::new(ctl.checkpoint)),
                trees: Mutex::new(HashMap::new()),
                active: Mutex::new(HashMap::new()),
                ckpt_lock: Mutex::new(()),
                bg_error: Mutex::new(None),
                size_after_checkpoint: AtomicU64::new(0),
                lost: Arc::new(Mutex::new(HashSet::new())),
            }),
            next_tree: AtomicU32::new(1),
            next_trx: AtomicU64::new(1),
            policy: AtomicU8::new(policy as u8),
            checkpoint_after: AtomicU64::new(CHECKPOINT_AFTER),
            budget: Budget::new(pool_pages),
            last_sync: Mutex::new(Instant::now()),
            bg: Mutex::new(None),
            notes: Mutex::new(Vec::new()),
            recovered_prepared: Mutex::new(Vec::new()),
        };
        e.recover(&ctl, &recs)?;
        Ok(e)
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

    fn recover(&self, ctl: &Control, recs: &[Record]) -> Result<()> {
        let mut map: HashMap<u32, PathBuf> = ctl.trees.iter().cloned().collect();
        for r in recs.iter().filter(|r| r.kind == REC_TREE && r.payload.len() >= 4) {
            use std::os::unix::ffi::OsStrExt;
            let id = u32::from_le_bytes(r.payload[0..4].try_into().unwrap());
            map.insert(id, PathBuf::from(std::ffi::OsStr::from_bytes(&r.payload[4..])));
        }
        // TRUNCATEs: the last RESET record of each tree file (its older pages,
        // redo and undo are void)
        let mut reset_at: HashMap<PathBuf, u64> = HashMap::new();
        for r in recs.iter().filter(|r| r.kind == REC_RESET) {
            let Some(trees) = parse_reset(&r.payload) else {
                return Err(Error::Corrupt(format!("reset record at LSN {} is malformed", r.lsn)));
            };
            for (_, path) in trees {
                reset_at.insert(path, r.lsn);
            }
        }
        // 1. redo
        let mut pages: HashMap<(u32, u32), Box<[u8; PAGE_SIZE]>> = HashMap::new();
        // trees a RESET record after the checkpoint empties: their files are
        // rebuilt from that record on, whatever they hold
        let mut reset: HashSet<u32> = HashSet::new();
        let mut resets = 0u64;
        let mut redone = 0u64;
        let mut max_trx = 0u64;
        // a long recovery says how far it is in the server's error log (stderr)
        let tenth = recs.len() / 10;
        for (i, r) in recs.iter().enumerate() {
            if recs.len() >= 100_000 && i > 0 && i % tenth == 0 && i / tenth < 10 {
                eprintln!("RUST: recovery: redo {}% done ({} of {} log records)", i / tenth * 10, i, recs.len());
            }
            max_trx = max_trx.max(r.trx);
            if r.kind == REC_RESET && r.lsn >= ctl.checkpoint {
                for (id, path) in parse_reset(&r.payload).unwrap_or_default() {
                    if !path.exists() {
                        continue; // dropped since
                    }
                    // the file keeps its format (TRUNCATE never changes it)
                    let format = BTree::format_of_file(&path).unwrap_or(super::tree::FORMAT_VERSION);
                    map.insert(id, path);
                    pages.retain(|&(t, _), _| t != id);
                    for (no, mut p) in BTree::empty_pages(0, format).into_iter().enumerate() {
                        p.set_lsn(r.lsn);
                        pages.insert((id, no as u32), p.into_buf());
                    }
                    reset.insert(id);
                }
                resets += 1;
                continue;
            }
            if r.kind != REC_MTR || r.lsn < ctl.checkpoint {
                continue;
            }
            let Some((tree, _, changes)) = parse_mtr(&r.payload) else {
                return Err(Error::Corrupt(format!("redo record at LSN {} is malformed", r.lsn)));
            };
            let Some(path) = map.get(&tree) else { continue };
            if !path.exists() {
                continue; // the table was dropped since
            }
            for c in changes {
                let page = match pages.entry((tree, c.page)) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let mut b = Box::new([0u8; PAGE_SIZE]);
                        if c.kind == PAGE_DIFF {
                            // (not expected: a page's first change after the
                            // checkpoint is logged whole or as new)
                            let f = File::open(path).ctx(|| format!("cannot open '{}'", path.display()))?;
                            let _ = f.read_exact_at(&mut b[..], c.page as u64 * PAGE_SIZE as u64);
                        }
                        v.insert(b)
                    }
                };
                if c.kind == PAGE_FULL {
                    page[LOGGED_FROM..].copy_from_slice(c.bytes);
                } else {
                    if c.kind == PAGE_NEW {
                        // initialised by this mtr: built from zeros, never from disk
                        page.fill(0);
                    }
                    apply_diff(&mut page[..], c.bytes)
                        .ok_or_else(|| Error::Corrupt(format!("redo record at LSN {} is malformed", r.lsn)))?;
                }
                page[4..8].copy_from_slice(&c.page.to_le_bytes());
                page[8..16].copy_from_slice(&r.lsn.to_le_bytes());
                redone += 1;
            }
        }
        // a reset tree's file ends at its last page (its older pages are freed)
        let mut reset_len: HashMap<u32, u64> = HashMap::new();
        for &(tree, no) in pages.keys().filter(|(t, _)| reset.contains(t)) {
            let end = reset_len.entry(tree).or_default();
            *end = (*end).max((no as u64 + 1) * PAGE_SIZE as u64);
        }
        let mut files: HashMap<u32, File> = HashMap::new();
        for ((tree, no), buf) in pages {
            let path = &map[&tree];
            let f = match files.entry(tree) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(
                    OpenOptions::new().write(true).open(path).ctx(|| format!("cannot open '{}'", path.display()))?,
                ),
            };
            let mut p = Page::from_buf(buf);
            p.seal();
            f.write_all_at(&p.bytes()[..], no as u64 * PAGE_SIZE as u64)
                .ctx(|| format!("cannot write '{}'", path.display()))?;
        }
        for (tree, len) in reset_len {
            let path = &map[&tree];
            files[&tree].set_len(len).ctx(|| format!("cannot truncate '{}'", path.display()))?;
        }
        for f in files.values() {
            f.sync_all().ctx(|| "cannot sync a tree file".into())?;
        }
        // 2. undo what never committed
        let mut done: HashSet<u64> = HashSet::new();
        for r in recs {
            if r.kind == REC_COMMIT || r.kind == REC_ROLLBACK_DONE {
                done.insert(r.trx);
            }
        }
        // prepared and not ended: kept (the server commits or rolls them back by XID)
        // prepared, then XA ROLLBACK began and did not end: rolled back below
        let rolling_back: HashSet<u64> =
            recs.iter().filter(|r| r.kind == REC_ROLLBACK_START && !done.contains(&r.trx)).map(|r| r.trx).collect();
        let mut prepared: HashMap<u64, (Vec<u8>, HashMap<u32, PathBuf>)> = HashMap::new();
        // each unfinished transaction's undo entries, oldest first, and the LSN the
        // log must be kept from for it
        let mut first_lsn: HashMap<u64, u64> = HashMap::new();
        // (tree, LSN of the record that logged it, undo entry)
        let mut undo: HashMap<u64, Vec<(UndoTree, u64, Vec<u8>)>> = HashMap::new();
        for r in recs.iter().filter(|r| r.trx != 0 && !done.contains(&r.trx)) {
            match r.kind {
                REC_PREPARE => {
                    let Some(p) = parse_prepare(&r.payload) else {
                        return Err(Error::Corrupt(format!("prepare record at LSN {} is malformed", r.lsn)));
                    };
                    prepared.insert(r.trx, p);
                }
                REC_MTR => {
                    first_lsn.entry(r.trx).or_insert(r.lsn);
                    if let Some((tree, u, _)) = parse_mtr(&r.payload) {
                        if !u.is_empty() {
                            undo.entry(r.trx).or_default().push((UndoTree::Id(tree), r.lsn, u.to_vec()));
                        }
                    }
                }
                REC_UNDO_CARRY => {
                    // every undo entry the transaction had then: its records
                    // before this one are not needed (and may be gone)
                    let Some((xid, ids, entries)) = parse_carry(&r.payload) else {
                        return Err(Error::Corrupt(format!("undo carry record at LSN {} is malformed", r.lsn)));
                    };
                    first_lsn.insert(r.trx, r.lsn);
                    let list = undo.entry(r.trx).or_default();
                    list.clear();
                    for (tree, u) in entries {
                        if let Some(path) = ids.get(&tree) {
                            list.push((UndoTree::Path(path.clone()), r.lsn, u));
                        }
                    }
                    if let Some(xid) = xid {
                        prepared.insert(r.trx, (xid, ids));
                    }
                }
                _ => {}
            }
        }
        // an undo entry of a change a later TRUNCATE voided has nothing to undo
        // (no transaction that changed a table is open when it is truncated: the
        // table's exclusive lock; this only keeps a log that says otherwise from
        // putting old rows into the empty table; a carried entry counts from its
        // UNDO_CARRY record)
        let voided = |path: &Path, lsn: u64| reset_at.get(path).is_some_and(|&at| at > lsn);
        self.next_trx.store(max_trx + 1, Ordering::Relaxed);
        // an entry's tree: tree ids in MTR records are those of the run that wrote
        // them, which for a prepared transaction may be an earlier run (its
        // PREPARE or UNDO_CARRY record names them); later runs reuse ids
        let resolve = |ids: &HashMap<u32, PathBuf>, t: &UndoTree| -> Option<PathBuf> {
            match t {
                UndoTree::Id(id) => ids.get(id).cloned(),
                UndoTree::Path(p) => Some(p.clone()),
            }
        };
        let mut kept = Vec::new();
        let mut ids_of: HashMap<u64, HashMap<u32, PathBuf>> = HashMap::new();
        for (trx, (xid, ids)) in prepared {
            if rolling_back.contains(&trx) {
                undo.entry(trx).or_default();
                ids_of.insert(trx, ids);
                continue;
            }
            let mut st = TrxState { xid: Some(xid.clone()), ..Default::default() };
            let mut trees = Vec::new();
            for (tree, lsn, u) in undo.remove(&trx).unwrap_or_default() {
                let Some(path) = resolve(&ids, &tree) else { continue };
                if !path.exists() || voided(&path, lsn) {
                    continue;
                }
                st.undo.push(&self.open_tree(&path)?, &u);
                if !trees.contains(&path) {
                    trees.push(path);
                }
            }
            // its log records stay until it ends (or a checkpoint carries its undo)
            let first = first_lsn.get(&trx).copied().unwrap_or_else(|| self.sh.log.end_lsn());
            let t = Trx::new(trx, first, st);
            self.sh.active.lock().insert(trx, t.sh.clone());
            kept.push(RecoveredPrepared { xid, trx: t, trees });
        }
        let mut rolled = 0;
        // keep the trees open until the checkpoint below has written them
        let mut keep = Vec::new();
        for (trx, entries) in &undo {
            let ids = ids_of.get(trx).unwrap_or(&map);
            for (tree, lsn, u) in entries.iter().rev() {
                // (entries a partial rollback already applied are applied again:
                // each puts a key back as it was before the change it undoes)
                let Some(path) = resolve(ids, tree) else { continue };
                if !path.exists() || voided(&path, *lsn) {
                    continue;
                }
                let t = self.open_tree(&path)?;
                t.write().apply_undo(*trx, u)?;
                keep.push(t);
            }
            self.sh.log.append(REC_ROLLBACK_DONE, *trx, &[]);
            rolled += 1;
        }
        if redone > 0 || rolled > 0 {
            self.notes.lock().push(format!(
                "recovery: redid {redone} page changes from the redo log, rolled back {rolled} transactions that had not committed"
            ));
        }
        if resets > 0 {
            self.notes.lock().push(format!("recovery: redid {resets} TRUNCATE TABLE (the tables' files rebuilt empty)"));
        }
        if !ids_of.is_empty() {
            self.notes.lock().push(format!(
                "recovery: {} of them were prepared transactions whose XA ROLLBACK had begun",
                ids_of.len()
            ));
        }
        if !kept.is_empty() {
            self.notes.lock().push(format!(
                "recovery: {} prepared transactions kept for the server to commit or roll back",
                kept.len()
            ));
        }
        *self.recovered_prepared.lock() = kept;
        self.checkpoint_now()?;
        drop(keep);
        Ok(())
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
                return Ok(t.clone());
            }
            if self.sh.lost.lock().contains(id) {
                // its file is stale: the newest changes are only in the redo log
                return Err(lost_error(path));
            }
            reuse = Some(*id);
        }
        release_idle(&mut trees);
        let mut t = BTree::open_in(path, self.budget.clone())?;
        // A file keeps its id while the engine runs, even when it was closed and
        // opened again: recovery collects each page's changes by (tree id, page), so
        // two ids for one file since a checkpoint would replay two diverging copies
        // of its pages over each other.
        let id = reuse.unwrap_or_else(|| self.next_tree.fetch_add(1, Ordering::Relaxed));
        use std::os::unix::ffi::OsStrExt;
        let mut p = id.to_le_bytes().to_vec();
        p.extend_from_slice(path.as_os_str().as_bytes());
        self.sh.log.append(REC_TREE, 0, &p);
        t.pool_mut().set_log(LogLink {
            log: self.sh.log.clone(),
            tree_id: id,
            checkpoint: self.sh.checkpoint.clone(),
            lost: self.sh.lost.clone(),
        });
        let t = Arc::new(RwLock::new(t));
        share_budget(&t, &self.budget);
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
        self.sh.trees.lock().remove(path);
        Ok(())
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

    pub fn begin(&self) -> Trx {
        let id = self.next_trx.fetch_add(1, Ordering::Relaxed);
        let t = Trx::new(id, u64::MAX, TrxState::default());
        self.sh.active.lock().insert(id, t.sh.clone());
        t
    }

    pub fn insert(&self, trx: &mut Trx, t: &Tree, key: &[u8], val: &[u8]) -> Result<bool> {
        let mut st = self.writing(trx);
        let done = t.write().insert_tx(trx.id, key, val, &mut st.scratch)?;
        if done {
            st.push(t);
        }
        Ok(done)
    }

    pub fn delete(&self, trx: &mut Trx, t: &Tree, key: &[u8]) -> Result<bool> {
        let mut st = self.writing(trx);
        let done = t.write().delete_tx(trx.id, key, &mut st.scratch)?;
        if done {
            st.push(t);
        }
        Ok(done)
    }

    pub fn update(&self, trx: &mut Trx, t: &Tree, key: &[u8], val: &[u8]) -> Result<bool> {
        let mut st = self.writing(trx);
        let done = t.write().update_tx(trx.id, key, val, &mut st.scratch)?;
        if done {
            st.push(t);
        }
        Ok(done)
    }

    /// The transaction's state, locked for a write; before its first record, the
    /// log is kept from the current end on for it (its record comes after).
    fn writing<'a>(&self, trx: &'a Trx) -> parking_lot::MutexGuard<'a, TrxState> {
        let st = trx.sh.st.lock();
        if trx.sh.first_lsn.load(Ordering::Acquire) == u64::MAX {
            trx.sh.first_lsn.store(self.sh.log.end_lsn(), Ordering::Release);
        }
        st
    }

    /// Commits: a commit record, made durable as the flush policy says (group
    /// commit: concurrent committers share one fsync).
    pub fn commit(&self, trx: Trx) -> Result<()> {
        self.commit_with(trx, true)
    }

    /// Commits; `durable: false` only appends the commit record, for a
    /// transaction prepared in the binlog's two-phase commit: the binlog holds its
    /// XID, and until [`Engine::flush_log`] has made the record durable (the
    /// server asks at each binlog rotation, `commit_checkpoint_request`), a crash
    /// brings it back prepared and the binlog's recovery commits it.
    pub fn commit_with(&self, trx: Trx, durable: bool) -> Result<()> {
        crate::metrics::TRX_COMMITS.inc();
        let mut st = trx.sh.st.lock();
        st.ended = true;
        let lsn = (!st.undo.is_empty()).then(|| self.sh.log.append(REC_COMMIT, trx.id, &[]));
        drop(st);
        // only now: a checkpoint that no longer sees it keeps its COMMIT record
        // or needs none of its records
        self.sh.active.lock().remove(&trx.id);
        let Some(lsn) = lsn else { return Ok(()) };
        if !durable {
            return self.maybe_checkpoint();
        }
        match self.policy.load(Ordering::Relaxed) {
            1 => self.sh.log.flush_to(lsn + 1)?,
            p => {
                if p == 2 {
                    self.sh.log.write()?;
                }
                let mut last = self.last_sync.lock();
                if last.elapsed().as_millis() >= 1000 {
                    *last = Instant::now();
                    drop(last);
                    self.sh.log.flush_to(lsn + 1)?;
                }
            }
        }
        self.maybe_checkpoint()
    }

    /// Prepares (two-phase commit, XA PREPARE): a prepare record carrying the XID,
    /// made durable as the flush policy says for commits. Recovery then keeps the
    /// transaction (see [`RecoveredPrepared`]) instead of rolling it back.
    pub fn prepare(&self, trx: &mut Trx, xid: &[u8]) -> Result<()> {
        let mut st = trx.sh.st.lock();
        if st.undo.is_empty() {
            return Ok(()); // nothing to keep: a read-only transaction
        }
        let mut payload = Vec::new();
        self.sh.xid_and_trees(&st, xid, &mut payload);
        let lsn = self.sh.log.append(REC_PREPARE, trx.id, &payload);
        st.xid = Some(xid.to_vec());
        drop(st);
        self.durable_as_prepare(lsn)
    }

    /// Makes the log durable up to the record at `lsn` as the flush policy says
    /// for a prepare (and for the end of a prepared transaction's rollback).
    fn durable_as_prepare(&self, lsn: u64) -> Result<()> {
        match self.policy.load(Ordering::Relaxed) {
            1 => self.sh.log.flush_to(lsn + 1),
            2 => self.sh.log.write().map(|_| ()),
            _ => Ok(()),
        }
    }

    /// Rolls back to a savepoint (0: the whole transaction, which stays open).
    pub fn rollback_to(&self, trx: &mut Trx, savepoint: usize) -> Result<()> {
        Self::undo_to(&mut trx.sh.st.lock(), trx.id, savepoint)
    }

    fn undo_to(st: &mut TrxState, id: u64, savepoint: usize) -> Result<()> {
        while st.undo.len() > savepoint {
            let (t, u) = st.undo.last().unwrap();
            t.write().apply_undo(id, u)?;
            st.undo.drop_last();
        }
        Ok(())
    }

    pub fn rollback(&self, trx: Trx) -> Result<()> {
        crate::metrics::TRX_ROLLBACKS.inc();
        let mut st = trx.sh.st.lock();
        let had = !st.undo.is_empty();
        self.sh.rollback_begins(&st, trx.id);
        Self::undo_to(&mut st, trx.id, 0)?;
        st.ended = true;
        let lsn = had.then(|| self.sh.log.append(REC_ROLLBACK_DONE, trx.id, &[]));
        let prepared = st.xid.is_some();
        drop(st);
        self.sh.active.lock().remove(&trx.id);
        if let (Some(lsn), true) = (lsn, prepared) {
            // XA ROLLBACK has ended it: a crash must not bring it back
            // prepared (a later XA COMMIT would commit what was rolled back)
            self.durable_as_prepare(lsn)?;
        }
        Ok(())
    }

    /// See [`Shared::rollback_begins`] (tests: a crash in the middle of it).
    #[cfg(test)]
    fn rollback_begins(&self, trx: &Trx) {
        self.sh.rollback_begins(&trx.sh.st.lock(), trx.id)
    }

    /// A checkpoint once the log has grown past [`Engine::set_log_size`], taken by a
    /// background thread: a commit is durable once its log record is, so it does
    /// not wait for the tree files to be written.
    fn maybe_checkpoint(&self) -> Result<()> {
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
    fn wait_background(&self) {
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
            let synced = *self.sh.log.synced.lock();
            let base = self.sh.log.inner.lock().base_lsn;
            let f = OpenOptions::new().write(true).open(self.sh.dir.join(LOG_FILE)).unwrap();
            f.set_len(super::log::LOG_HEADER + (synced - base)).unwrap();
        }
        self.wait_background();
        std::mem::forget(self);
    }
}

impl Shared {
    /// The rollback of a prepared transaction is logged as begun before it
    /// changes anything: recovery then finishes it instead of keeping a partly
    /// rolled-back transaction prepared. (Its changes reach the tree files only
    /// after the log is durable past them, so past this record too.)
    fn rollback_begins(&self, st: &TrxState, id: u64) {
        if st.xid.is_some() && !st.undo.is_empty() {
            self.log.append(REC_ROLLBACK_START, id, &[]);
        }
    }

    /// `u32 XID length, XID, u32 trees`, then per tree `u32 id, u16 path length,
    /// path`: the ids the transaction's records use, so that recovery finds its
    /// trees even after restarts have given the ids to others (PREPARE's
    /// payload). Returns the id of each undo entry's tree (`None`: a tree no
    /// longer open, whose file was dropped).
    fn xid_and_trees(&self, st: &TrxState, xid: &[u8], b: &mut Vec<u8>) -> Vec<Option<u32>> {
        let mut used: HashMap<*const RwLock<BTree>, Option<u32>> = HashMap::new();
        for (t, _) in st.undo.iter() {
            used.insert(Arc::as_ptr(t), None);
        }
        let mut ids: Vec<(u32, PathBuf)> = Vec::new();
        for (p, (id, t)) in self.trees.lock().iter() {
            if let Some(slot) = t.as_ref().and_then(|t| used.get_mut(&Arc::as_ptr(t))) {
                *slot = Some(*id);
                ids.push((*id, p.clone()));
            }
        }
        b.extend_from_slice(&(xid.len() as u32).to_le_bytes());
        b.extend_from_slice(xid);
        write_trees(b, &ids.iter().map(|(id, p)| (*id, p.as_path())).collect::<Vec<_>>());
        st.undo.iter().map(|(t, _)| used[&Arc::as_ptr(t)]).collect()
    }

    /// Carries the undo entries of the transactions that keep the log from
    /// before `ckpt` forward: one UNDO_CARRY record each, at the log's end, with
    /// every undo entry it has (and its XID if prepared), after which recovery
    /// needs none of its earlier records. So a long or prepared transaction no
    /// longer keeps the whole log from its first change on, only its own undo.
    /// Skipped for a transaction whose undo is more than half of what it keeps
    /// (the log would hardly shrink) and for one busy for longer than a moment
    /// (it is carried by a later checkpoint). Returns once the records are durable.
    fn carry_undo(&self, ckpt: u64) -> Result<usize> {
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
            for ((_, u), id) in st.undo.iter().zip(ids) {
                let Some(id) = id else { continue };
                b.extend_from_slice(&id.to_le_bytes());
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

    fn checkpoint(&self) -> Result<()> {
        let _g = self.ckpt_lock.lock();
        if !self.lost.lock().is_empty() {
            // the only copy of those changes is the log from the last checkpoint on
            return Err(Error::io(
                "a RUST table was closed with changes it could not write (see the error log)",
                std::io::Error::other("the redo log is kept from the last checkpoint until a restart recovers them"),
            ));
        }
        // from now on a page's first change is logged whole (torn-page safety)
        let ckpt = self.log.begin_checkpoint(&self.checkpoint);
        self.log.flush_to(ckpt)?;
        let live: Vec<(u32, PathBuf, Tree)> = self
            .trees
            .lock()
            .iter()
            .filter_map(|(p, (id, t))| t.as_ref().map(|t| (*id, p.clone(), t.clone())))
            .collect();
        for (_, _, t) in &live {
            // a slice at a time: the tree's users are not held up for the whole
            // flush
            let mut at = 0;
            loop {
                let mut g = t.write();
                let next = g.flush_some(at, FLUSH_SLICE, ckpt)?;
                if next >= g.pool().frames() {
                    let f = g.pool().file_handle()?;
                    drop(g);
                    f.sync_data().ctx(|| "cannot sync a tree file".into())?;
                    break;
                }
                at = next;
            }
        }
        self.carry_undo(ckpt)?;
        let oldest = self.active.lock().values().map(|t| t.first_lsn.load(Ordering::Acquire)).min().unwrap_or(ckpt);
        let log_start = oldest.min(ckpt);
        let ctl = Control {
            checkpoint: ckpt,
            log_start,
            trees: live.iter().map(|(id, p, _)| (*id, p.clone())).collect(),
        };
        write_control(&self.dir.join(CONTROL_FILE), &ctl)?;
        drop(live);
        release_idle(&mut self.trees.lock());
        self.log.truncate_before(log_start)?;
        self.size_after_checkpoint.store(self.log.size(), Ordering::Relaxed);
        crate::metrics::CHECKPOINTS.inc();
        Ok(())
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
        if let Some((_, open)) = trees.get_mut(path) {
            let ours = open.as_ref().is_some_and(|o| Arc::ptr_eq(o, &t));
            if ours && unused_and_clean(&t, 2) {
                *open = None;
            }
        }
    }
}

/// Whether `t` has no holders but the `refs` known ones and nothing to write.
fn unused_and_clean(t: &Tree, refs: usize) -> bool {
    Arc::strong_count(t) == refs && t.try_write().is_some_and(|g| g.pool().is_clean())
}

/// Lets go of trees that nobody uses and that have nothing left to write (their
/// pages go back to the budget); a tree with dirty pages stays until a checkpoint
/// has written them. Its id is kept.
fn release_idle(trees: &mut HashMap<PathBuf, (u32, Option<Tree>)>) {
    for (_, open) in trees.values_mut() {
        if open.as_ref().is_some_and(|t| unused_and_clean(t, 1)) {
            *open = None;
        }
    }
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
mod tests {
    use super::*;
    use crate::testutil::dir;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn contents(t: &Tree) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let mut t = t.write();
        let mut c = super::super::tree::Cursor::default();
        t.seek(&mut c, std::ops::Bound::Unbounded, false).unwrap();
        let (mut k, mut v) = (vec![], vec![]);
        let mut m = BTreeMap::new();
        while t.next(&mut c, false, &mut k, &mut v).unwrap() {
            m.insert(k.clone(), v.clone());
        }
        m
    }

    /// The undo arena hands its entries back as they were pushed, per tree, and
    /// forgets the newest ones exactly (a rollback to a savepoint).
    #[test]
    fn undo_entries_come_back_as_pushed() {
        let d = dir("undo-arena", 0);
        let trees: Vec<Tree> = (0..3)
            .map(|i| {
                let p = d.join(format!("t{i}.rbt"));
                BTree::create(&p).unwrap();
                Arc::new(RwLock::new(BTree::open(&p, 16).unwrap()))
            })
            .collect();
        let mut u = UndoLog::default();
        let mut want: Vec<(usize, Vec<u8>)> = vec![];
        for n in 0..40usize {
            let t = [0, 0, 1, 0, 2, 2, 1][n % 7];
            let b = vec![n as u8; n % 5];
            u.push(&trees[t], &b);
            want.push((t, b));
            if n % 9 == 8 {
                u.drop_last();
                want.pop();
            }
        }
        let got = |u: &UndoLog| -> Vec<(usize, Vec<u8>)> {
            u.iter().map(|(t, b)| (trees.iter().position(|x| Arc::ptr_eq(x, t)).unwrap(), b.to_vec())).collect()
        };
        assert_eq!(got(&u), want);
        assert_eq!(u.size(), want.iter().map(|w| w.1.len()).sum::<usize>());
        while u.len() > 3 {
            let (t, b) = u.last().unwrap();
            let (wt, wb) = want.pop().unwrap();
            assert!(Arc::ptr_eq(t, &trees[wt]) && b == &wb[..]);
            u.drop_last();
        }
        assert_eq!(got(&u), want);
        assert!(u.uses(&trees[0]) && !u.uses(&trees[2]), "{want:?}");
    }

    #[test]
    fn commit_rollback_and_savepoints() {
        let d = dir("trx", 0);
        let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
        let p = d.join("t.rbt");
        e.create_tree(&p).unwrap();
        let t = e.open_tree(&p).unwrap();
        let mut a = e.begin();
        e.insert(&mut a, &t, b"k1", b"v1").unwrap();
        e.commit(a).unwrap();
        let mut b = e.begin();
        e.insert(&mut b, &t, b"k2", b"v2").unwrap();
        let sp = b.savepoint();
        e.update(&mut b, &t, b"k1", b"changed").unwrap();
        e.delete(&mut b, &t, b"k2").unwrap();
        e.insert(&mut b, &t, b"k3", b"v3").unwrap();
        e.rollback_to(&mut b, sp).unwrap();
        assert_eq!(contents(&t), BTreeMap::from([(b"k1".to_vec(), b"v1".to_vec()), (b"k2".to_vec(), b"v2".to_vec())]));
        e.rollback(b).unwrap();
        assert_eq!(contents(&t), BTreeMap::from([(b"k1".to_vec(), b"v1".to_vec())]));
        t.write().check().unwrap();
    }

    /// Commits that grow the log past its size start a checkpoint in the
    /// background while writes go on; after a crash that loses every dirty page,
    /// recovery gives exactly the committed rows.
    #[test]
    fn background_checkpoints_and_a_crash_keep_the_committed() {
        let d = dir("bgckpt", 0);
        let edir = d.join("eng");
        let p = d.join("t.rbt");
        let val = |i: u32, round: u32| vec![(i ^ round) as u8; 300 + (i % 200) as usize];
        let rounds = 4u32;
        {
            let e = Engine::open(&edir, 256, FlushPolicy::EveryCommit).unwrap();
            e.set_log_size(16 << 20);
            e.create_tree(&p).unwrap();
            let t = e.open_tree(&p).unwrap();
            for round in 0..rounds {
                let mut trx = e.begin();
                for i in 0..60_000u32 {
                    let k = i.wrapping_mul(2_654_435_761).to_be_bytes();
                    if !e.insert(&mut trx, &t, &k, &val(i, round)).unwrap() {
                        e.update(&mut trx, &t, &k, &val(i, round)).unwrap();
                    }
                }
                e.commit(trx).unwrap();
            }
            assert!(e.bg.lock().is_some(), "no background checkpoint was started");
            // an uncommitted transaction, then the crash (after the background
            // checkpoint, whose thread cannot be killed here)
            let mut trx = e.begin();
            for i in 0..1000u32 {
                e.delete(&mut trx, &t, &i.wrapping_mul(2_654_435_761).to_be_bytes()).unwrap();
            }
            e.wait_background();
            e.sh.log.write().unwrap();
            std::mem::forget(trx);
            std::mem::forget(t);
            std::mem::forget(e);
        }
        let e = Engine::open(&edir, 256, FlushPolicy::EveryCommit).unwrap();
        let t = e.open_tree(&p).unwrap();
        t.write().check().unwrap();
        let got = contents(&t);
        assert_eq!(got.len(), 60_000);
        for i in 0..60_000u32 {
            assert_eq!(got[&i.wrapping_mul(2_654_435_761).to_be_bytes().to_vec()], val(i, rounds - 1), "row {i}");
        }
    }

    /// A leaf's first change after a checkpoint is logged without its free middle
    /// (a kind 3 entry of the parts around it, the meta page whole), and recovery
    /// rebuilds the page from that entry when the file's copy is torn.
    #[test]
    fn a_first_change_after_a_checkpoint_leaves_out_the_free_middle() {
        let d = dir("fpi-middle", 0);
        let edir = d.join("eng");
        let p = d.join("t.rbt");
        let row = |i: u32| (i.to_be_bytes(), vec![i as u8; 100]);
        {
            let e = Engine::open(&edir, 64, FlushPolicy::EveryCommit).unwrap();
            e.create_tree(&p).unwrap();
            let t = e.open_tree(&p).unwrap();
            let mut trx = e.begin();
            for i in 0..20u32 {
                let (k, v) = row(i);
                e.insert(&mut trx, &t, &k, &v).unwrap();
            }
            e.commit(trx).unwrap();
            e.checkpoint_now().unwrap();
            let mut trx = e.begin();
            let (k, v) = row(20);
            e.insert(&mut trx, &t, &k, &v).unwrap();
            e.commit(trx).unwrap();
            std::mem::forget(t);
            e.simulate_crash(false);
        }
        let ckpt = read_control(&edir.join(CONTROL_FILE)).unwrap().unwrap().checkpoint;
        let (log, recs) = RedoLog::open(&edir.join(LOG_FILE), ckpt).unwrap();
        drop(log);
        let mut kinds = vec![];
        for r in recs.iter().filter(|r| r.kind == REC_MTR) {
            let (_, _, changes) = parse_mtr(&r.payload).unwrap();
            for c in changes {
                kinds.push((c.page, c.kind, c.bytes.len()));
            }
        }
        assert!(kinds.iter().any(|&(no, k, _)| no == 0 && k == PAGE_FULL), "{kinds:?}");
        let leaf = kinds.iter().find(|&&(no, _, _)| no != 0).unwrap();
        assert!(leaf.1 == PAGE_NEW && leaf.2 < 4096, "the leaf was logged as {leaf:?}");
        // both pages torn on disk: recovery has only the log's images to go on
        let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
        for no in 0..f.metadata().unwrap().len() / PAGE_SIZE as u64 {
            f.write_all_at(&[0xA5; PAGE_SIZE / 2], no * PAGE_SIZE as u64 + PAGE_SIZE as u64 / 2).unwrap();
        }
        let e = Engine::open(&edir, 64, FlushPolicy::EveryCommit).unwrap();
        let t = e.open_tree(&p).unwrap();
        t.write().check().unwrap();
        let want: BTreeMap<Vec<u8>, Vec<u8>> = (0..21).map(|i| (row(i).0.to_vec(), row(i).1)).collect();
        assert_eq!(contents(&t), want);
    }

    /// A transaction left open (or prepared) while others commit and checkpoints
    /// run does not keep the log from its first change on: each checkpoint carries
    /// its undo entries forward (UNDO_CARRY). After a crash it is rolled back (or
    /// kept prepared, through two crashes, with every undo entry), its changes
    /// from before and after a carry alike; the committed work is all there.
    #[test]
    fn a_long_transaction_does_not_keep_the_log() {
        for prepared in [false, true] {
            let d = dir("carry", prepared as u64);
            let edir = d.join("eng");
            let (p, q) = (d.join("t.rbt"), d.join("q.rbt"));
            let base: BTreeMap<Vec<u8>, Vec<u8>> = (0..200u16).map(|k| (key(k), vec![k as u8; 50])).collect();
            let mut committed: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let crash = |e: Engine, trx: Option<Trx>, trees: Vec<Tree>| {
                e.sh.log.write().unwrap();
                std::mem::forget(trx);
                std::mem::forget(trees);
                std::mem::forget(e);
            };
            let undo_entries;
            {
                let e = Engine::open(&edir, 64, FlushPolicy::EveryCommit).unwrap();
                e.create_tree(&p).unwrap();
                e.create_tree(&q).unwrap();
                let t = e.open_tree(&p).unwrap();
                let tq = e.open_tree(&q).unwrap();
                let mut trx = e.begin();
                for (k, v) in &base {
                    e.insert(&mut trx, &t, k, v).unwrap();
                }
                e.commit(trx).unwrap();
                // the long transaction changes both trees...
                let mut long = e.begin();
                for k in 0..50u16 {
                    assert!(e.update(&mut long, &t, &key(k), &[0xAA; 80]).unwrap());
                }
                for k in 50..60u16 {
                    assert!(e.delete(&mut long, &t, &key(k)).unwrap());
                }
                for k in 0..30u16 {
                    assert!(e.insert(&mut long, &t, &key(1000 + k), b"long").unwrap());
                    assert!(e.insert(&mut long, &tq, &key(k), b"long").unwrap());
                }
                // ...while others commit far more, with checkpoints between
                let mut work = |e: &Engine, from: u16| {
                    for round in 0..12u16 {
                        let mut trx = e.begin();
                        for i in 0..60u16 {
                            let k = key(from + round * 60 + i);
                            let v = vec![(round + i) as u8; 900];
                            assert!(e.insert(&mut trx, &tq, &k, &v).unwrap());
                            committed.insert(k, v);
                        }
                        e.commit(trx).unwrap();
                        e.checkpoint_now().unwrap();
                    }
                };
                work(&e, 2000);
                // the log holds about the last checkpoint's carry, not ~1.5 MB
                // of committed rows since the long transaction began
                let size = e.sh.log.size();
                assert!(size < 256 << 10, "the log kept {size} bytes");
                // more changes after a carry, then (maybe) PREPARE, more work
                for k in 60..70u16 {
                    assert!(e.update(&mut long, &t, &key(k), &[0xBB; 120]).unwrap());
                }
                if prepared {
                    e.prepare(&mut long, b"xid-carry").unwrap();
                }
                work(&e, 3000);
                let size = e.sh.log.size();
                assert!(size < 256 << 10, "the log kept {size} bytes");
                undo_entries = long.savepoint();
                assert_eq!(undo_entries, 50 + 10 + 60 + 10);
                crash(e, Some(long), vec![t, tq]);
            }
            if prepared {
                // kept prepared through two crashes (the second after the
                // recovery's own checkpoint carried it with this run's ids)
                for _ in 0..2 {
                    let e = Engine::open(&edir, 64, FlushPolicy::EveryCommit).unwrap();
                    let mut kept = std::mem::take(&mut *e.recovered_prepared.lock());
                    assert_eq!(kept.len(), 1);
                    let k = kept.pop().unwrap();
                    assert_eq!(k.xid, b"xid-carry");
                    assert_eq!(k.trx.savepoint(), undo_entries);
                    let t = e.open_tree(&p).unwrap();
                    assert_eq!(contents(&t)[&key(65)], vec![0xBB; 120]);
                    assert!(!contents(&t).contains_key(&key(55)));
                    crash(e, Some(k.trx), vec![t]);
                }
                let e = Engine::open(&edir, 64, FlushPolicy::EveryCommit).unwrap();
                let k = e.recovered_prepared.lock().pop().unwrap();
                e.rollback(k.trx).unwrap();
                e.checkpoint_now().unwrap();
            }
            let e = Engine::open(&edir, 64, FlushPolicy::EveryCommit).unwrap();
            assert!(e.recovered_prepared.lock().is_empty());
            let t = e.open_tree(&p).unwrap();
            let tq = e.open_tree(&q).unwrap();
            t.write().check().unwrap();
            tq.write().check().unwrap();
            assert!(contents(&t) == base, "prepared {prepared}: not rolled back");
            assert!(contents(&tq) == committed, "prepared {prepared}: committed rows differ");
            drop((t, tq));
            let _ = fs::remove_dir_all(&d);
        }
    }

    /// A crash in the middle of the rollback of a prepared transaction (XA
    /// ROLLBACK): recovery finishes the rollback instead of bringing back as
    /// prepared a transaction that is partly rolled back (which a later XA COMMIT
    /// would commit). Once in the run that prepared it, and once in a later run
    /// that recovered it prepared (with other tree ids than its records carry).
    #[test]
    fn a_crash_during_the_rollback_of_a_prepared_transaction_finishes_it() {
        for later_run in [false, true] {
            let d = dir("xarb", later_run as u64);
            let edir = d.join("eng");
            let (p, other) = (d.join("t.rbt"), d.join("other.rbt"));
            let base: BTreeMap<Vec<u8>, Vec<u8>> = (0..300u16).map(|k| (key(k), vec![k as u8; 100])).collect();
            let crash = |e: Engine, trx: Option<Trx>, trees: Vec<Tree>| {
                e.sh.log.write().unwrap();
                std::mem::forget(trx);
                std::mem::forget(trees);
                std::mem::forget(e);
            };
            {
                let e = Engine::open(&edir, 16, FlushPolicy::EveryCommit).unwrap();
                e.create_tree(&other).unwrap();
                e.create_tree(&p).unwrap();
                // `other` takes id 1 here; recovery gives `t` id 1 in the next run
                let o = e.open_tree(&other).unwrap();
                let t = e.open_tree(&p).unwrap();
                let mut trx = e.begin();
                for (k, v) in &base {
                    e.insert(&mut trx, &t, k, v).unwrap();
                }
                e.commit(trx).unwrap();
                e.checkpoint_now().unwrap();
                let mut trx = e.begin();
                for k in 0..300u16 {
                    match k % 3 {
                        0 => assert!(e.update(&mut trx, &t, &key(k), &vec![0xEE; 700]).unwrap()),
                        1 => assert!(e.delete(&mut trx, &t, &key(k)).unwrap()),
                        _ => assert!(e.insert(&mut trx, &t, &key(1000 + k), &vec![0xDD; 500]).unwrap()),
                    }
                }
                // the same key changed twice
                assert!(e.insert(&mut trx, &t, &key(1), b"again").unwrap());
                assert!(e.update(&mut trx, &t, &key(0), b"twice").unwrap());
                e.prepare(&mut trx, b"xid-rb").unwrap();
                if later_run {
                    crash(e, Some(trx), vec![t, o]);
                } else {
                    // XA ROLLBACK, and the crash when half of it is done
                    e.rollback_begins(&trx);
                    let half = trx.savepoint() / 2;
                    e.rollback_to(&mut trx, half).unwrap();
                    crash(e, Some(trx), vec![t, o]);
                }
            }
            if later_run {
                let e = Engine::open(&edir, 16, FlushPolicy::EveryCommit).unwrap();
                let mut kept = std::mem::take(&mut *e.recovered_prepared.lock());
                assert_eq!(kept.len(), 1);
                let mut trx = kept.pop().unwrap().trx;
                // `other` now has the id `t` had when the transaction ran
                let o = e.open_tree(&other).unwrap();
                e.rollback_begins(&trx);
                let half = trx.savepoint() / 2;
                e.rollback_to(&mut trx, half).unwrap();
                crash(e, Some(trx), vec![o]);
            }
            for _ in 0..2 {
                let e = Engine::open(&edir, 16, FlushPolicy::EveryCommit).unwrap();
                assert!(e.recovered_prepared.lock().is_empty(), "later run {later_run}: kept prepared");
                assert!(e.notes.lock().iter().all(|n| !n.contains("kept")));
                let t = e.open_tree(&p).unwrap();
                t.write().check().unwrap();
                assert!(contents(&t) == base, "later run {later_run}: not rolled back");
                let o = e.open_tree(&other).unwrap();
                assert!(contents(&o).is_empty(), "later run {later_run}: undo went to another tree");
                drop((t, o));
                e.checkpoint_now().unwrap();
            }
            let _ = fs::remove_dir_all(&d);
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(u16, u16),
        Del(u16),
        Commit,
        Rollback,
        Checkpoint,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0u16..800, 0u16..3000).prop_map(|(k, l)| Op::Put(k, l)),
            3 => (0u16..800).prop_map(Op::Del),
            2 => Just(Op::Commit),
            1 => Just(Op::Rollback),
            1 => Just(Op::Checkpoint),
        ]
    }

    fn key(k: u16) -> Vec<u8> {
        format!("key{k:05}").into_bytes()
    }

    /// A value that says which key and which version of it it is, and checks
    /// itself: 8 bytes of key number, 4 of generation, then filler derived from
    /// both (lengths up to overflow size, so that reads follow overflow chains).
    fn stamped(k: u16, g: u32) -> Vec<u8> {
        let len = [20usize, 300, 1500, 5000, 40][(g % 5) as usize] + k as usize % 7;
        let mut v = (k as u64).to_le_bytes().to_vec();
        v.extend_from_slice(&g.to_le_bytes());
        v.extend((0..len).map(|i| (i as u32 ^ g ^ k as u32) as u8));
        v
    }

    fn check_stamped(k: &[u8], v: &[u8]) {
        assert!(v.len() >= 12, "a value of {} bytes", v.len());
        let n = u64::from_le_bytes(v[0..8].try_into().unwrap()) as u16;
        let g = u32::from_le_bytes(v[8..12].try_into().unwrap());
        assert_eq!(k, key(n), "a value of another key");
        assert!(v == stamped(n, g), "key {n}: a torn or stale value (generation {g}, {} bytes)", v.len());
    }

    /// Readers share a tree (read lock) while writers change it, a checkpoint
    /// writes it, and a pool of a few pages evicts all the time (so shared reads
    /// keep missing pages and are done again under the write lock). Every read
    /// must be whole: each value exactly what some write stored for its key, scans
    /// in order without repeats, and the keys no writer deletes always there.
    #[test]
    fn readers_beside_writers_and_evictions_see_consistent_trees() {
        use std::sync::atomic::AtomicBool;
        let d = dir("concurrent", 0);
        let e = Engine::open(&d.join("eng"), 12, FlushPolicy::OncePerSecond).unwrap();
        let p = d.join("t.rbt");
        e.create_tree(&p).unwrap();
        let t = e.open_tree(&p).unwrap();
        // even keys stay (their values change), odd ones come and go
        const KEYS: u16 = 1200;
        let mut trx = e.begin();
        for k in (0..KEYS).step_by(2) {
            assert!(e.insert(&mut trx, &t, &key(k), &stamped(k, 0)).unwrap());
        }
        e.commit(trx).unwrap();
        let retries_before = super::super::tree::shared_read_retries();
        let stop = AtomicBool::new(false);
        let (reads, scans) = (AtomicU64::new(0), AtomicU64::new(0));
        std::thread::scope(|s| {
            for w in 0..2u32 {
                let (e, t, stop) = (&e, &t, &stop);
                s.spawn(move || {
                    let mut seed = 0x2545_F491_4F6C_DD1Du64 ^ w as u64;
                    let mut rnd = |n: u64| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed % n
                    };
                    let mut g = 1 + w;
                    for round in 0..150 {
                        let mut trx = e.begin();
                        for _ in 0..20 {
                            let k = rnd(KEYS as u64) as u16;
                            g += 2;
                            if k % 2 == 0 {
                                assert!(e.update(&mut trx, t, &key(k), &stamped(k, g)).unwrap());
                            } else if !e.insert(&mut trx, t, &key(k), &stamped(k, g)).unwrap() {
                                e.delete(&mut trx, t, &key(k)).unwrap();
                            }
                        }
                        if round % 4 == 3 { e.rollback(trx).unwrap() } else { e.commit(trx).unwrap() }
                        if round % 25 == 0 && w == 0 {
                            e.checkpoint_now().unwrap();
                        }
                    }
                    stop.store(true, Ordering::Relaxed);
                });
            }
            for r in 0..2u64 {
                let (t, stop, reads, scans) = (&t, &stop, &reads, &scans);
                s.spawn(move || {
                    let mut v = Vec::new();
                    let mut k = r * 7;
                    while !stop.load(Ordering::Relaxed) {
                        // point reads
                        for _ in 0..50 {
                            k = (k * 31 + 17) % KEYS as u64;
                            let kk = key(k as u16);
                            let found = super::super::tree::read(t, |rd| rd.get(&kk, &mut v)).unwrap();
                            assert!(found || k % 2 == 1, "key {k} is gone");
                            if found {
                                check_stamped(&kk, &v);
                            }
                            reads.fetch_add(1, Ordering::Relaxed);
                        }
                        // a scan, one step per hold of the read lock, either way
                        let desc = r == 1;
                        let mut c = super::super::tree::Cursor::default();
                        super::super::tree::read(t, |rd| rd.seek(&mut c, std::ops::Bound::Unbounded, desc)).unwrap();
                        let (mut kb, mut vb) = (Vec::new(), Vec::new());
                        let mut last: Option<Vec<u8>> = None;
                        let mut evens = 0;
                        while super::super::tree::read(t, |rd| rd.next(&mut c, desc, &mut kb, &mut vb)).unwrap() {
                            if let Some(l) = &last {
                                assert!(if desc { kb < *l } else { kb > *l }, "scan out of order");
                            }
                            check_stamped(&kb, &vb);
                            if u64::from_le_bytes(vb[0..8].try_into().unwrap()) % 2 == 0 {
                                evens += 1;
                            }
                            last = Some(kb.clone());
                        }
                        assert_eq!(evens, KEYS / 2, "a scan missed or repeated a key that is always there");
                        scans.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert!(reads.load(Ordering::Relaxed) > 0 && scans.load(Ordering::Relaxed) > 0);
        let retries = super::super::tree::shared_read_retries() - retries_before;
        assert!(retries > 0, "no shared read missed a page: the pool is not small enough to test that path");
        t.write().check().unwrap();
        for (k, v) in contents(&t) {
            check_stamped(&k, &v);
        }
        drop(t);
        e.checkpoint_now().unwrap();
        let _ = fs::remove_dir_all(&d);
    }

    /// A tree whose last user let go of it while it had dirty pages is still the
    /// engine's: the next checkpoint writes it (never racing a close that writes
    /// it on its own), then lets go of it; the log it needed can then go.
    #[test]
    fn a_closed_tree_is_written_by_the_checkpoint() {
        let d = dir("closed", 0);
        let edir = d.join("eng");
        let p = d.join("t.rbt");
        {
            let e = Engine::open(&edir, 1000, FlushPolicy::EveryCommit).unwrap();
            e.create_tree(&p).unwrap();
            let t = e.open_tree(&p).unwrap();
            let mut trx = e.begin();
            for k in 0..3000u16 {
                e.insert(&mut trx, &t, &key(k), &[1u8; 300]).unwrap();
            }
            e.commit(trx).unwrap();
            drop(t);
            {
                let trees = e.sh.trees.lock();
                let (_, open) = trees.get(&p).unwrap();
                let t = open.as_ref().expect("the engine keeps a closed tree with dirty pages");
                assert!(!t.write().pool().is_clean());
            }
            e.checkpoint_now().unwrap();
            assert!(e.sh.trees.lock().get(&p).unwrap().1.is_none(), "let go of once written");
            // a crash now: the log may be gone entirely, the pages are on disk
            let f = OpenOptions::new().write(true).open(edir.join(LOG_FILE)).unwrap();
            let keep = super::super::log::LOG_HEADER;
            f.set_len(keep).unwrap();
            std::mem::forget(e);
        }
        let e = Engine::open(&edir, 1000, FlushPolicy::EveryCommit).unwrap();
        let t = e.open_tree(&p).unwrap();
        t.write().check().unwrap();
        assert_eq!(contents(&t).len(), 3000);
    }

    /// rust_buffer_pool_size bounds all trees together: an idle tree's cached pages
    /// make way for a busy one's, and both still read back exactly.
    #[test]
    fn trees_share_one_page_budget() {
        use super::super::pool::MIN_FRAMES;
        let d = dir("budget", 0);
        let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
        let (pa, pb) = (d.join("a.rbt"), d.join("b.rbt"));
        e.create_tree(&pa).unwrap();
        e.create_tree(&pb).unwrap();
        let a = e.open_tree(&pa).unwrap();
        let b = e.open_tree(&pb).unwrap();
        let val = vec![7u8; 400];
        let fill = |t: &Tree| {
            let mut trx = e.begin();
            for k in 0..4000u16 {
                assert!(e.insert(&mut trx, t, &key(k), &val).unwrap());
            }
            e.commit(trx).unwrap();
        };
        let bound = 64 + 2 * MIN_FRAMES;
        fill(&a);
        let a_frames = a.write().pool().frames();
        assert!(a_frames > 32, "a alone may use most of the budget: {a_frames}");
        assert!(e.budget.used() <= bound, "{} > {bound}", e.budget.used());
        fill(&b);
        let b_frames = b.write().pool().frames();
        assert!(b_frames > 32, "b took pages from the idle a: {b_frames}");
        assert!(a.write().pool().frames() < a_frames);
        assert!(e.budget.used() <= bound, "{} > {bound}", e.budget.used());
        assert_eq!(e.budget.used(), a.write().pool().frames() + b.write().pool().frames());
        assert_eq!(contents(&a).len(), 4000);
        assert_eq!(contents(&b).len(), 4000);
        a.write().check().unwrap();
        b.write().check().unwrap();
        // a closed tree gives its pages back
        drop(a);
        e.checkpoint_now().unwrap();
        assert_eq!(e.budget.used(), b.write().pool().frames());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20))]
        /// A crash at any moment: the process dies with the buffer pool's dirty
        /// pages lost (some written by eviction, some not) and the log cut anywhere
        /// after what commits made durable. Recovery must give exactly the
        /// committed transactions, and a tree that passes check().
        #[test]
        fn recovery_after_a_crash_keeps_exactly_the_committed(
            ops in prop::collection::vec(op(), 1..400),
            cut in any::<prop::sample::Index>(),
            case in any::<u64>(),
        ) {
            let d = dir("crash", case);
            let edir = d.join("eng");
            let p = d.join("t.rbt");
            let mut committed: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let durable_end;
            {
                let e = Engine::open(&edir, 12, FlushPolicy::EveryCommit).unwrap();
                e.create_tree(&p).unwrap();
                let t = e.open_tree(&p).unwrap();
                let mut trx = e.begin();
                let mut pending = committed.clone();
                // a second transaction, open all along and never committed: each
                // checkpoint carries its undo entries forward (UNDO_CARRY)
                let mut long = e.begin();
                let mut n_long = 0u16;
                e.insert(&mut long, &t, &key(60000), b"long").unwrap();
                for o in &ops {
                    match *o {
                        Op::Put(k, l) => {
                            let v = vec![(k % 251) as u8; l as usize];
                            if !e.insert(&mut trx, &t, &key(k), &v).unwrap() {
                                e.update(&mut trx, &t, &key(k), &v).unwrap();
                            }
                            pending.insert(key(k), v);
                        }
                        Op::Del(k) => {
                            e.delete(&mut trx, &t, &key(k)).unwrap();
                            pending.remove(&key(k));
                        }
                        Op::Commit => {
                            e.commit(std::mem::replace(&mut trx, e.begin())).unwrap();
                            committed = pending.clone();
                        }
                        Op::Rollback => {
                            e.rollback(std::mem::replace(&mut trx, e.begin())).unwrap();
                            pending = committed.clone();
                        }
                        Op::Checkpoint => {
                            n_long += 1;
                            e.insert(&mut long, &t, &key(60000 + n_long), b"long").unwrap();
                            e.checkpoint_now().unwrap()
                        }
                    }
                }
                // what is written but not synced may or may not survive: keep a
                // random part of it
                let synced = *e.sh.log.synced.lock();
                e.sh.log.write().unwrap();
                let written = e.sh.log.end_lsn();
                durable_end = synced + (cut.index((written - synced + 1) as usize) as u64);
                // the crash: no flush of the pool; the open transactions are lost
                std::mem::forget(trx);
                std::mem::forget(long);
                std::mem::forget(t);
                let base = e.sh.log.inner.lock().base_lsn;
                let lp = edir.join(LOG_FILE);
                let f = OpenOptions::new().write(true).open(&lp).unwrap();
                f.set_len(super::super::log::LOG_HEADER + (durable_end - base)).unwrap();
                std::mem::forget(e);
                // torn writes: any page written since the checkpoint recovery will
                // start from may be half old, half new (here: its second half lost)
                let ckpt = read_control(&edir.join(CONTROL_FILE)).unwrap().unwrap().checkpoint;
                let tf = OpenOptions::new().read(true).write(true).open(&p).unwrap();
                let pages = tf.metadata().unwrap().len() / PAGE_SIZE as u64;
                for no in 0..pages {
                    let mut b = vec![0u8; PAGE_SIZE];
                    tf.read_exact_at(&mut b, no * PAGE_SIZE as u64).unwrap();
                    let lsn = u64::from_le_bytes(b[8..16].try_into().unwrap());
                    if lsn >= ckpt && (no + case) % 2 == 0 {
                        b[PAGE_SIZE / 2..].fill(0xA5);
                        tf.write_all_at(&b, no * PAGE_SIZE as u64).unwrap();
                    }
                }
            }
            let e = Engine::open(&edir, 12, FlushPolicy::EveryCommit).unwrap();
            let t = e.open_tree(&p).unwrap();
            t.write().check().unwrap();
            let got = contents(&t);
            let summary = |m: &BTreeMap<Vec<u8>, Vec<u8>>| m.iter().map(|(k, v)| (String::from_utf8_lossy(k).to_string(), v.len(), v.first().copied())).collect::<Vec<_>>();
            prop_assert_eq!(summary(&got), summary(&committed));
        }
    }
}

#[cfg(test)]
mod perf {
    //! A write-path workload for profiling without a server (not a test of
    //! anything): `BT_ROWS=20000 cargo test --release perf_workload -- --ignored
    //! --nocapture`, or the test binary under `valgrind --tool=callgrind`.
    use super::*;
    use crate::btree::table::{self, BtreeTable, TrxHandle};
    use crate::testutil::dir;

    fn row(i: u32) -> Vec<u8> {
        // about the bench's rows: fixed columns, then text of 50..350 bytes
        let len = 60 + (i.wrapping_mul(2_654_435_761) % 300) as usize;
        (0..len).map(|j| (j as u32 ^ i) as u8 | 0x20).collect()
    }

    /// A read-path workload (not a test of anything): sysbench oltp_read_only's
    /// engine calls (10 point reads and 4 ranges of 100 rows per transaction) on
    /// one table from 1 and 2 threads: `BT_ROWS=100000 cargo test --release
    /// perf_read_only -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn perf_read_only() {
        use crate::btree::table::Find;
        let rows: u32 = std::env::var("BT_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
        let d = dir("perf-ro", 0);
        let e = Engine::open(&d.join("eng"), 32768, FlushPolicy::OncePerSecond).unwrap();
        let tp = d.join("t");
        table::create(&tp, 1, 0).unwrap();
        {
            let mut t = BtreeTable::open(&e, &tp, vec![true], false).unwrap();
            let mut h = TrxHandle::new();
            for i in 1..=rows {
                t.insert(&e, &mut h, &i.to_be_bytes(), &row(i), &[]).unwrap();
            }
            h.commit(&e, true).unwrap();
            drop(t);
        }
        for threads in [1u32, 2] {
            let done = AtomicU64::new(0);
            let secs = 3;
            std::thread::scope(|s| {
                for th in 0..threads {
                    let (e, tp, done) = (&e, &tp, &done);
                    s.spawn(move || {
                        let mut t = BtreeTable::open(e, tp, vec![true], false).unwrap();
                        let mut x = 12345u32 + th * 777;
                        let mut rnd = || {
                            x ^= x << 13;
                            x ^= x >> 17;
                            x ^= x << 5;
                            1 + x % (rows - 200)
                        };
                        let t0 = Instant::now();
                        let mut n = 0;
                        while t0.elapsed().as_secs() < secs {
                            let mut h = TrxHandle::new();
                            for _ in 0..10 {
                                assert!(t.get(e, &mut h, &rnd().to_be_bytes()).unwrap());
                            }
                            for _ in 0..4 {
                                let from = rnd();
                                let mut more = t.seek(e, &mut h, 0, &from.to_be_bytes(), Find::KeyOrNext).unwrap();
                                let mut got = 0;
                                while more && got < 100 {
                                    got += 1;
                                    more = t.next(false).unwrap();
                                }
                                assert_eq!(got, 100);
                            }
                            h.commit(e, true).unwrap();
                            n += 1;
                        }
                        done.fetch_add(n, Ordering::Relaxed);
                    });
                }
            });
            eprintln!("{threads} thread(s): {} transactions/s", done.load(Ordering::Relaxed) / secs);
        }
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    #[ignore]
    fn perf_workload() {
        let rows: u32 = std::env::var("BT_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
        let d = dir("perf", 0);
        let e = Engine::open(&d.join("eng"), 32768, FlushPolicy::EveryCommit).unwrap();
        let tp = d.join("t");
        table::create(&tp, 1, 0).unwrap();
        let mut t = BtreeTable::open(&e, &tp, vec![true], false).unwrap();
        let mut h = TrxHandle::new();
        let t0 = Instant::now();
        for i in 1..=rows {
            h.stmt_begin();
            assert!(t.insert(&e, &mut h, &i.to_be_bytes(), &row(i), &[]).unwrap().is_none());
        }
        let t1 = Instant::now();
        h.commit(&e, true).unwrap();
        let commit = t1.elapsed();
        let load = t0.elapsed();
        let log_load = e.log().size();
        let t0 = Instant::now();
        for i in (10..=rows).step_by(10) {
            let mut r = row(i);
            r[0] ^= 1;
            t.update(&e, &mut h, &i.to_be_bytes(), &i.to_be_bytes(), &r, &[], &[]).unwrap();
        }
        let t1 = Instant::now();
        h.commit(&e, true).unwrap();
        let ucommit = t1.elapsed();
        let upd = t0.elapsed();
        let log_upd = e.log().size();
        let t0 = Instant::now();
        for i in (5..=rows).step_by(10) {
            t.delete(&e, &mut h, &i.to_be_bytes(), &[]).unwrap();
        }
        h.commit(&e, true).unwrap();
        let del = t0.elapsed();
        let (data, _) = t.data_length();
        eprintln!("rows {rows}: load {load:?} (its commit {commit:?}) update {upd:?} (its commit {ucommit:?}) delete {del:?}; {} pages ({} MB); log bytes: load {log_load}, update {}, delete {}",
            data / PAGE_SIZE as u64, data >> 20, log_upd.wrapping_sub(log_load) as i64, e.log().size().wrapping_sub(log_upd) as i64);
        drop(t);
        let _ = fs::remove_dir_all(&d);
    }
}
