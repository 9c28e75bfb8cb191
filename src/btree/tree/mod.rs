//! A B+tree of byte keys (compared with memcmp) and byte values in one file.
//!
//! Page 0 is the meta page, page 1 the root (it never moves: a root split moves
//! the root's records into two new children). Leaves are linked both ways. A value
//! too large to stay in its leaf (more than [`MAX_INLINE`] with its key) goes to a
//! chain of overflow pages. Deletions merge a leaf (or internal page) into a
//! sibling when both fit in one page, and an internal root left with one child
//! takes that child's records. [`BTree::check`] verifies every invariant.
//!
//! The tree is used under one reader-writer lock (`engine::Tree`): changes take
//! `&mut BTree` under the write lock; lookups and cursor steps can also run under
//! the read lock, beside other readers, on the pages already cached ([`read`],
//! [`Reader`]; see `docs/btree-design.md`, "Locking inside the engine").
//!
//! - this file: [`BTree`] itself (create, open, the meta page: row count,
//!   AUTO_INCREMENT, format version, stored statistics), the page budget;
//! - [`write`]: the write path (mutations, splits, merges);
//! - `read`: [`Reader`], [`Cursor`], [`read()`];
//! - [`check`]: CHECK.
//!
//! Uses the layers below: `pool` (the buffer pool), `page`, `wal::records` (the
//! undo entry format).

mod check;
mod read;
mod salvage;
mod write;

use std::fs::{File, OpenOptions};
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use std::sync::{PoisonError, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use super::page::{HEADER, Kind, NONE, PAGE_SIZE, Page, Val, corrupt};
use super::pool::{Budget, Pool, Shrink};
use crate::error::{Error, IoContext, Result};
pub use super::wal::records::{UNDO_DELETE, UNDO_PUT, UNDO_REPLACE, parse_undo, undo_entry};
pub use read::{Cursor, Pages, Reader, read, shared_read_retries};
pub use salvage::{BadPage, Salvaged, salvage};

pub const MAGIC: &[u8; 8] = b"RUSTBT1\0";
/// The format new files get (docs/btree-format.md, "Versions"): 2 says
/// that the key parts C++ writes for binary and NO PAD strings end with their
/// length; 3 that string key parts (of one-level collations) are of variable
/// length (btree/keys.rs); 4 that the meta page keeps the file's page count
/// ([`PAGES_AT`]); 5 that a secondary entry's value holds C++'s unpack bytes after
/// the primary key's length ([`UNPACK_FORMAT`]); 6 that the unpack item of a
/// string part whose collation folds case is the compact one of btree/unpack.rs
/// (C++ writes it; format 5 kept the value); 7 that rows are versioned: a
/// clustered record's header may carry a delete mark and a roll pointer, and a
/// secondary entry's value a delete mark (`btree::table::mvcc`). The other
/// pages are the same in 1 to 7; a file keeps its version for life (TRUNCATE
/// too), and C++ builds keys as its table's version says.
pub const FORMAT_VERSION: u32 = 7;
/// The first format whose meta page keeps the page count.
const PAGE_COUNT_SINCE: u32 = 4;
/// From this format on, a secondary entry's value is `LEB128(len(pk)) unpack`
/// (the primary key being the end of the entry's key): the bytes C++ needs to
/// rebuild string key columns in an index-only read (docs/btree-format.md,
/// "Secondary entries and unpack bytes"); before it, the value is the primary key.
pub const UNPACK_FORMAT: u32 = 5;
/// The oldest format this build reads.
pub const MIN_FORMAT_VERSION: u32 = 1;
pub const META: u32 = 0;
pub const ROOT: u32 = 1;
/// Largest key.
pub const MAX_KEY: usize = 3072;
/// A record (key and value) larger than this sends its value to overflow pages, so
/// any leaf holds at least four records.
pub const MAX_INLINE: usize = (PAGE_SIZE - HEADER) / 4 - 16;
/// A page whose records use less than this after a delete tries to merge.
const MERGE_BELOW: usize = (PAGE_SIZE - HEADER) / 4;

/// Where the optimizer statistics start in the meta page (after the
/// AUTO_INCREMENT counter); see [`StoredStats`].
const STATS_AT: usize = HEADER + 36;
/// The statistics block's own version (0: none stored; bytes an older build
/// never wrote are zero).
const STATS_VERSION: u8 = 1;
/// Most key parts whose statistics are stored (an index has at most 32 parts of
/// its own, plus the primary key's in a secondary index's entries).
pub const STATS_MAX_PARTS: usize = 128;
/// Where the meta page keeps the file's page count (format 4 on): right after
/// the largest statistics block. A file shorter than that lost its end.
const PAGES_AT: usize = STATS_AT + 12 + 12 * STATS_MAX_PARTS;

/// Optimizer statistics of a tree's index, kept in its meta page so that they
/// outlive a restart (as InnoDB's persistent statistics): the distinct values
/// of each key prefix, the part layout they were computed for, the entries the
/// index had then, and whether every leaf was read. Written as a mini-transaction
/// of its own (logged, no undo): a crash may lose the newest, never corrupt them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredStats {
    pub exact: bool,
    pub rows_at: u64,
    pub parts: Vec<u32>,
    pub n_diff: Vec<u64>,
}

impl StoredStats {
    /// `u8 version (1), u8 flags (1: every leaf read), u16 parts, u64 entries,
    /// parts × u32 part layout, parts × u64 distinct values`.
    fn encode(&self) -> Vec<u8> {
        let mut b = vec![STATS_VERSION, self.exact as u8];
        b.extend_from_slice(&(self.parts.len() as u16).to_le_bytes());
        b.extend_from_slice(&self.rows_at.to_le_bytes());
        for p in &self.parts {
            b.extend_from_slice(&p.to_le_bytes());
        }
        for n in &self.n_diff {
            b.extend_from_slice(&n.to_le_bytes());
        }
        b
    }

    /// None when there are none, or of a version this build does not know (they
    /// are then computed again, and stored in this version).
    fn decode(b: &[u8]) -> Option<StoredStats> {
        if b.first() != Some(&STATS_VERSION) {
            return None;
        }
        let n = u16::from_le_bytes(b.get(2..4)?.try_into().ok()?) as usize;
        if n == 0 || n > STATS_MAX_PARTS {
            return None;
        }
        let rows_at = u64::from_le_bytes(b.get(4..12)?.try_into().ok()?);
        let parts = (0..n).map(|i| Some(u32::from_le_bytes(b.get(12 + 4 * i..16 + 4 * i)?.try_into().ok()?))).collect::<Option<Vec<_>>>()?;
        let at = 12 + 4 * n;
        let n_diff = (0..n).map(|i| Some(u64::from_le_bytes(b.get(at + 8 * i..at + 8 + 8 * i)?.try_into().ok()?))).collect::<Option<Vec<_>>>()?;
        Some(StoredStats { exact: b[1] & 1 != 0, rows_at, parts, n_diff })
    }
}

pub struct BTree {
    stats: Option<StoredStats>,
    pool: Pool,
    free_head: u32,
    rows: u64,
    /// The table's AUTO_INCREMENT counter (meta page, after the row count): the
    /// largest value given or stored, 0 for none. Only the clustered tree's is used.
    auto_inc: u64,
    /// Bumped by every change; cursors use it to know whether their leaf position
    /// still holds.
    version: u64,
    /// The file's format version (meta page).
    format: u32,
    /// The page count the meta page holds when the file is shorter than that (its
    /// end was cut off while the server was down): every change is refused, since
    /// a new page would take the number of a lost one that a parent still points
    /// at. REPAIR TABLE rebuilds the file.
    cut_short: Option<u32>,
    /// Told when a rollback takes a key out (an insert undone): the key, and
    /// the key after it (None: the end). The table layer moves the row locks
    /// held there to the gap (see `table/rowlock.rs`); called under the
    /// tree's write latch.
    pub on_undo_remove: Option<UndoRemoveHook>,
}

/// See [`BTree::on_undo_remove`].
pub type UndoRemoveHook = std::sync::Arc<dyn Fn(&[u8], Option<&[u8]>) + Send + Sync>;



fn meta_body(magic_ok: bool, b: &[u8]) -> Option<(u32, u32, u64)> {
    if !magic_ok {
        return None;
    }
    let rd32 = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    Some((rd32(HEADER + 12), rd32(HEADER + 16), u64::from_le_bytes(b[HEADER + 20..HEADER + 28].try_into().unwrap())))
}

impl BTree {
    /// Creates a tree file with an empty root leaf.
    pub fn create(path: &Path) -> Result<()> {
        Self::create_with_auto_increment(path, 0)
    }

    /// Creates a tree file whose meta page holds `auto_inc` (CREATE TABLE ...
    /// AUTO_INCREMENT=N keeps N-1 there).
    pub fn create_with_auto_increment(path: &Path, auto_inc: u64) -> Result<()> {
        Self::create_with(path, auto_inc, FORMAT_VERSION)
    }

    /// Creates a tree file of format `format` (REPAIR keeps the table's).
    pub fn create_with(path: &Path, auto_inc: u64, format: u32) -> Result<()> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .ctx(|| format!("cannot create '{}'", path.display()))?;
        let [mut meta, mut root] = Self::empty_pages(auto_inc, format);
        meta.seal();
        root.seal();
        f.write_all_at(&meta.bytes()[..], 0).ctx(|| "cannot write".into())?;
        f.write_all_at(&root.bytes()[..], PAGE_SIZE as u64).ctx(|| "cannot write".into())?;
        f.sync_all().ctx(|| "cannot sync".into())
    }

    /// The pages of an empty tree of format `format`: the meta page (holding
    /// `auto_inc`) and an empty root leaf (not sealed, LSN 0).
    pub fn empty_pages(auto_inc: u64, format: u32) -> [Page; 2] {
        let mut meta = Page::new(META, Kind::Meta);
        meta.put(HEADER, MAGIC);
        meta.put(HEADER + 8, &format.to_le_bytes());
        meta.put(HEADER + 12, &ROOT.to_le_bytes());
        meta.put(HEADER + 28, &auto_inc.to_le_bytes());
        if format >= PAGE_COUNT_SINCE {
            meta.put(PAGES_AT, &2u32.to_le_bytes());
        }
        [meta, Page::new(ROOT, Kind::Leaf)]
    }

    /// TRUNCATE, in memory: the tree becomes empty (its AUTO_INCREMENT counter
    /// 0), as the RESET record at `lsn` says; see [`Pool::reset_to`]. Cursors
    /// on it find their place gone (the version changes).
    pub fn reset(&mut self, lsn: u64) {
        self.pool.reset_to(Self::empty_pages(0, self.format).into(), lsn);
        self.free_head = NONE;
        self.rows = 0;
        self.auto_inc = 0;
        self.stats = None;
        self.cut_short = None;
        self.version += 1;
    }

    /// The optimizer statistics stored in the meta page, if any.
    pub fn stored_stats(&self) -> Option<&StoredStats> {
        self.stats.as_ref()
    }

    /// Stores optimizer statistics in the meta page (a mini-transaction of its
    /// own, logged, no undo). Too many parts: nothing is stored.
    pub fn store_stats(&mut self, s: StoredStats) -> Result<()> {
        if s.parts.is_empty() || s.parts.len() > STATS_MAX_PARTS || s.parts.len() != s.n_diff.len() {
            return Ok(());
        }
        if self.stats.as_ref() == Some(&s) {
            return Ok(());
        }
        let b = s.encode();
        self.in_mtr(0, &mut Vec::new(), |t, _| {
            t.pool.get_mut(META)?.put(STATS_AT, &b);
            Ok(())
        })?;
        self.stats = Some(s);
        Ok(())
    }

    /// TRUNCATE, on disk: see [`Pool::truncate_file`].
    pub fn truncate_file(&mut self) -> Result<()> {
        self.pool.truncate_file()
    }

    /// Opens a tree with a page cache of its own (`pool_pages` pages).
    pub fn open(path: &Path, pool_pages: usize) -> Result<BTree> {
        Self::open_in(path, Budget::new(pool_pages))
    }

    /// Opens a tree whose page cache draws on a shared budget. Register the tree
    /// (see [`share_budget`]) so that other trees can ask it for pages.
    pub fn open_in(path: &Path, budget: Arc<Budget>) -> Result<BTree> {
        let name = path.display().to_string();
        let f: File = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .ctx(|| format!("cannot open '{name}'"))?;
        let mut pool = Pool::new_in(f, name.clone(), budget)?;
        let meta = pool.get(META)?.bytes();
        let ok = &meta[HEADER..HEADER + 8] == MAGIC;
        let version = u32::from_le_bytes(meta[HEADER + 8..HEADER + 12].try_into().unwrap());
        if ok && !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(Error::Unsupported(format!(
                "{name}: B-tree format version {version}; this build reads {MIN_FORMAT_VERSION} to {FORMAT_VERSION}"
            )));
        }
        let Some((_root, free_head, rows)) = meta_body(ok, &meta[..]) else {
            return Err(corrupt(&name, META, "not a RUST B-tree file (bad magic)"));
        };
        let auto_inc = u64::from_le_bytes(meta[HEADER + 28..HEADER + 36].try_into().unwrap());
        let stats = StoredStats::decode(&meta[STATS_AT..]);
        let counted = if version >= PAGE_COUNT_SINCE { u32::from_le_bytes(meta[PAGES_AT..PAGES_AT + 4].try_into().unwrap()) } else { 0 };
        let cut_short = (counted > pool.pages).then_some(counted);
        if let Some(n) = cut_short {
            eprintln!("[ERROR] RUST: {}", cut_short_message(&name, pool.pages, n));
        }
        Ok(BTree { stats, pool, free_head, rows, auto_inc, version: 0, format: version, cut_short, on_undo_remove: None })
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Why no change may be made: the file lost its end (see `cut_short`).
    pub fn refuse_if_cut_short(&self) -> Result<()> {
        match self.cut_short {
            Some(n) => Err(Error::Corrupt(cut_short_message(self.pool.name(), self.pool.pages, n))),
            None => Ok(()),
        }
    }

    /// The file's format version (see [`FORMAT_VERSION`]).
    pub fn format(&self) -> u32 {
        self.format
    }

    /// The format version in the meta page of the file at `path`, read raw
    /// (recovery, before it rebuilds the file's pages: its first bytes are
    /// trusted without the page's checksum); None if it is not a tree file.
    pub fn format_of_file(path: &Path) -> Option<u32> {
        Self::meta_of_file(path).map(|(format, _)| format)
    }

    /// A tree file's format version and the row count its meta page holds (as of
    /// the page's last write), read from the file alone; None when the file cannot
    /// be read or does not start with a meta page.
    pub fn meta_of_file(path: &Path) -> Option<(u32, u64)> {
        use std::os::unix::fs::FileExt;
        let f = File::open(path).ok()?;
        let mut b = [0u8; HEADER + 28];
        f.read_exact_at(&mut b, 0).ok()?;
        let (_, _, rows) = meta_body(&b[HEADER..HEADER + 8] == MAGIC, &b)?;
        Some((u32::from_le_bytes(b[HEADER + 8..HEADER + 12].try_into().unwrap()), rows))
    }

    /// The AUTO_INCREMENT counter kept in the meta page (0: none).
    pub fn auto_increment(&self) -> u64 {
        self.auto_inc
    }

    /// Sets the AUTO_INCREMENT counter, logged as a mini-transaction of its own
    /// (no transaction, no undo: the counter never goes back on rollback).
    pub fn set_auto_increment(&mut self, v: u64) -> Result<()> {
        if v == self.auto_inc {
            return Ok(());
        }
        let old = std::mem::replace(&mut self.auto_inc, v);
        self.in_mtr(0, &mut Vec::new(), |_, _| Ok(())).inspect_err(|_| self.auto_inc = old)
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Writes every dirty page, then syncs (the meta page is kept current by
    /// every change).
    pub fn flush(&mut self) -> Result<()> {
        self.pool.flush()
    }

    /// A slice of a checkpoint's flush: see [`Pool::flush_some`].
    pub fn flush_some(&mut self, from: usize, max: usize, below: u64) -> Result<usize> {
        self.pool.flush_some(from, max, below)
    }

    pub fn pool_mut(&mut self) -> &mut Pool {
        &mut self.pool
    }

    fn alloc(&mut self, kind: Kind) -> Result<u32> {
        if self.free_head != NONE {
            let no = self.free_head;
            let p = self.pool.get(no)?;
            if p.kind() != Kind::Free {
                return Err(corrupt(self.pool.name(), no, "on the free list but not free"));
            }
            self.free_head = p.link_a();
            self.pool.reinit(no, kind)?;
            return Ok(no);
        }
        self.pool.allocate(kind)
    }

    fn release(&mut self, no: u32) -> Result<()> {
        self.pool.reinit(no, Kind::Free)?;
        let head = self.free_head;
        self.pool.get_mut(no)?.set_link_a(head);
        self.free_head = no;
        Ok(())
    }

    // ---- values ----

    fn store_value<'a>(&mut self, key: &[u8], val: &'a [u8]) -> Result<Val<'a>> {
        if key.len() + val.len() <= MAX_INLINE {
            return Ok(Val::Inline(val));
        }
        // chain of overflow pages, written back to front so each knows its next
        let chunk = Page::OVERFLOW_DATA;
        let n = val.len().div_ceil(chunk);
        let mut next = NONE;
        for c in (0..n).rev() {
            let no = self.alloc(Kind::Overflow)?;
            let p = self.pool.get_mut(no)?;
            let part = &val[c * chunk..((c + 1) * chunk).min(val.len())];
            p.put(HEADER, part);
            p.set_link_a(next);
            next = no;
        }
        Ok(Val::Overflow { len: val.len() as u32, first: next })
    }

    fn load_value(&mut self, v: &Val, out: &mut Vec<u8>) -> Result<()> {
        self.reader().load_value(v, out)
    }

    fn free_value(&mut self, first: u32) -> Result<()> {
        let mut no = first;
        while no != NONE {
            let next = self.pool.get(no)?.link_a();
            self.release(no)?;
            no = next;
        }
        Ok(())
    }

    // ---- descent ----

    /// The path from the root to the leaf for `key`: (page, child index taken;
    /// usize::MAX for the leftmost child).
    fn descend(&mut self, key: &[u8]) -> Result<(Vec<(u32, usize)>, u32)> {
        let mut path = Vec::new();
        let mut no = ROOT;
        for _ in 0..64 {
            let p = self.pool.get(no)?;
            match p.kind() {
                Kind::Leaf => return Ok((path, no)),
                Kind::Internal => {
                    let (i, eq) = p.search(key);
                    // records (k_i, c_i): c_i holds keys >= k_i
                    let idx = if eq { i } else if i == 0 { usize::MAX } else { i - 1 };
                    let child = if idx == usize::MAX { p.link_a() } else { p.child(idx) };
                    path.push((no, idx));
                    no = child;
                }
                k => return Err(corrupt(self.pool.name(), no, &format!("expected a tree page, found {k:?}"))),
            }
        }
        Err(corrupt(self.pool.name(), no, "tree deeper than 64 levels (a cycle?)"))
    }

    pub fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        self.reader().get(key, out)
    }
    fn write_meta(&mut self) -> Result<()> {
        let (free_head, rows, auto_inc) = (self.free_head, self.rows, self.auto_inc);
        let pages = self.pool.pages.to_le_bytes();
        let m = self.pool.get(META)?.bytes();
        let mut want = [0u8; 20];
        want[0..4].copy_from_slice(&free_head.to_le_bytes());
        want[4..12].copy_from_slice(&rows.to_le_bytes());
        want[12..20].copy_from_slice(&auto_inc.to_le_bytes());
        let count = self.format >= PAGE_COUNT_SINCE && m[PAGES_AT..PAGES_AT + 4] != pages;
        if m[HEADER + 16..HEADER + 36] != want {
            self.pool.get_mut(META)?.put(HEADER + 16, &want);
        }
        if count {
            self.pool.get_mut(META)?.put(PAGES_AT, &pages);
        }
        Ok(())
    }
}

/// The error of a tree file whose end was cut off.
fn cut_short_message(name: &str, pages: u32, counted: u32) -> String {
    format!(
        "{name}: the file holds {pages} pages but its meta page counts {counted}: its end was cut off \
         (pages lost while the server was down); reads that reach a lost page fail, changes are \
         refused; REPAIR TABLE rebuilds the table from every page that can be read"
    )
}

/// A tree's latch: readers share it, a change holds it alone. A waiter
/// sleeps in the kernel after a short spin of its own (std's futex lock),
/// never yielding its time slice in a loop: with many more connections than
/// cores (sysbench at 64 threads on 2 cores), the yields of a spinning lock
/// (parking_lot's) were a fifth of the server's time. A panic while it is
/// held does not make it unusable (the poison is ignored, as parking_lot
/// has none): the tree's state is what its last completed change left.
pub struct Latch<T>(std::sync::RwLock<T>);

impl<T> Latch<T> {
    pub fn new(t: T) -> Latch<T> {
        Latch(std::sync::RwLock::new(t))
    }

    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        match self.0.try_read() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        match self.0.try_write() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

impl Shrink for Latch<BTree> {
    fn try_shrink(&self, want: usize) -> usize {
        match self.try_write() {
            Some(mut t) => t.pool.shrink(want),
            None => 0,
        }
    }
}

/// Registers a tree with its budget, so that other trees' pools may ask it for
/// pages, and tells its pool which tree it is (it never asks itself).
pub fn share_budget(t: &Arc<Latch<BTree>>, budget: &Budget) {
    let w: std::sync::Weak<Latch<BTree>> = Arc::downgrade(t);
    t.write().pool.set_owner(Arc::as_ptr(t) as *const () as usize);
    budget.register(w);
}

impl Drop for BTree {
    /// A tree closed with dirty pages writes them (after the log, by the WAL rule):
    /// a checkpoint may already count on them. Never unwinds.
    fn drop(&mut self) {
        #[cfg(test)]
        if crate::btree::crash::fired() {
            return; // a simulated SIGKILL: nothing more is written
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.pool.flush()));
        if !matches!(r, Ok(Ok(()))) {
            let why = match r {
                Ok(Err(e)) => e.to_string(),
                _ => "a panic".into(),
            };
            self.pool.mark_lost();
            eprintln!(
                "[ERROR] RUST: '{}' closed with changes it could not write ({why}); they are kept in the redo log, \
                 checkpoints wait, and the table cannot be opened again until a restart recovers them",
                self.pool.name()
            );
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fill_probe {
    use super::*;
    #[test]
    fn ascending_inserts_fill_pages() {
        let d = crate::testutil::dir("fill", 0);
        let p = d.join("t.rbt");
        BTree::create(&p).unwrap();
        let mut t = BTree::open(&p, 64).unwrap();
        for i in 0u32..100_000 {
            t.insert(&i.to_be_bytes(), &[7u8; 33]).unwrap();
        }
        t.check().unwrap();
        // 45 bytes a record with its slot: about 363 a page when full
        let pages = t.pool().pages;
        assert!(pages < 100_000 / 300 + 10, "{pages} pages for 100k ascending records");
    }
}
