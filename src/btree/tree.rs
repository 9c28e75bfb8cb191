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
//! [`Reader`]; see `docs/btree-format.md`, "Locking inside the engine").

use std::fs::{File, OpenOptions};
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;

use super::page::{HEADER, Kind, NONE, PAGE_SIZE, Page, Val, corrupt};
use super::pool::{Budget, Pool, Shrink};
use crate::error::{Error, IoContext, Result};

pub const MAGIC: &[u8; 8] = b"RUSTBT1\0";
/// The format new files get (docs/btree-format.md, "Format versions"): 2 says
/// that the key parts C++ writes for binary and NO PAD strings end with their
/// length. The pages are the same in 1 and 2; a file keeps its version for life
/// (TRUNCATE too), and C++ builds keys as its table's version says.
pub const FORMAT_VERSION: u32 = 2;
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
}

/// Where a cursor stands.
#[derive(Clone, Debug, Default)]
pub struct Cursor {
    leaf: u32,
    slot: usize,
    version: u64,
    /// How to find the place again after a change: from the key last returned
    /// (or, before the first, from where the seek started), kept in `key`.
    resume: Resume,
    key: Vec<u8>,
    valid: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Resume {
    /// From the edge of the tree (a seek without bound).
    #[default]
    Edge,
    /// From `key` on (a seek from it, inclusive).
    From,
    /// After `key` (the last key returned, or an exclusive seek bound).
    After,
}

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
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .ctx(|| format!("cannot create '{}'", path.display()))?;
        let [mut meta, mut root] = Self::empty_pages(auto_inc, FORMAT_VERSION);
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
        Ok(BTree { stats, pool, free_head, rows, auto_inc, version: 0, format: version })
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The file's format version (see [`FORMAT_VERSION`]).
    pub fn format(&self) -> u32 {
        self.format
    }

    /// The format version in the meta page of the file at `path`, read raw
    /// (recovery, before it rebuilds the file's pages: its first bytes are
    /// trusted without the page's checksum); None if it is not a tree file.
    pub fn format_of_file(path: &Path) -> Option<u32> {
        use std::os::unix::fs::FileExt;
        let f = File::open(path).ok()?;
        let mut b = [0u8; HEADER + 12];
        f.read_exact_at(&mut b, 0).ok()?;
        (&b[HEADER..HEADER + 8] == MAGIC).then(|| u32::from_le_bytes(b[HEADER + 8..HEADER + 12].try_into().unwrap()))
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

    /// Runs `f` as one mini-transaction: its page changes are logged as one redo
    /// record (with the undo entry `f` leaves in `undo` in front) or, if it fails,
    /// undone in memory.
    fn in_mtr<T>(&mut self, trx: u64, undo: &mut Vec<u8>, f: impl FnOnce(&mut Self, &mut Vec<u8>) -> Result<T>) -> Result<T> {
        let saved = (self.free_head, self.rows, self.version);
        self.pool.mtr_begin();
        match f(self, undo).and_then(|v| self.write_meta().map(|_| v)) {
            Ok(v) => {
                self.pool.mtr_commit(trx, undo)?;
                Ok(v)
            }
            Err(e) => {
                self.pool.mtr_abort();
                (self.free_head, self.rows, self.version) = saved;
                Err(e)
            }
        }
    }

    fn write_meta(&mut self) -> Result<()> {
        let (free_head, rows, auto_inc) = (self.free_head, self.rows, self.auto_inc);
        let m = self.pool.get(META)?.bytes();
        let mut want = [0u8; 20];
        want[0..4].copy_from_slice(&free_head.to_le_bytes());
        want[4..12].copy_from_slice(&rows.to_le_bytes());
        want[12..20].copy_from_slice(&auto_inc.to_le_bytes());
        if m[HEADER + 16..HEADER + 36] != want {
            self.pool.get_mut(META)?.put(HEADER + 16, &want);
        }
        Ok(())
    }

    /// Inserts `key`; false (and nothing changed) if it is already there.
    pub fn insert(&mut self, key: &[u8], val: &[u8]) -> Result<bool> {
        self.in_mtr(0, &mut Vec::new(), |t, _| t.insert_inner(key, val))
    }

    /// Removes `key`; false if it was not there.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool> {
        self.in_mtr(0, &mut Vec::new(), |t, _| t.delete_inner(key, None))
    }

    /// Replaces the value of an existing key; false if the key is absent.
    pub fn update(&mut self, key: &[u8], val: &[u8]) -> Result<bool> {
        self.in_mtr(0, &mut Vec::new(), |t, _| t.update_inner(key, val, None))
    }

    /// Transactional insert: logs how to undo it, and leaves that undo entry in
    /// `undo`; false if the key was already there (nothing changed).
    pub fn insert_tx(&mut self, trx: u64, key: &[u8], val: &[u8], undo: &mut Vec<u8>) -> Result<bool> {
        // a key already there touches no page: its mtr logs nothing (no undo entry)
        undo_entry(undo, UNDO_DELETE, key, &[]);
        self.in_mtr(trx, undo, |t, _| t.insert_inner(key, val))
    }

    /// Transactional delete, its undo entry left in `undo`; false if the key was
    /// absent.
    pub fn delete_tx(&mut self, trx: u64, key: &[u8], undo: &mut Vec<u8>) -> Result<bool> {
        undo.clear();
        self.in_mtr(trx, undo, |t, u| t.delete_inner(key, Some((UNDO_PUT, u))))
    }

    /// Transactional update of an existing key, its undo entry left in `undo`;
    /// false if the key was absent.
    pub fn update_tx(&mut self, trx: u64, key: &[u8], val: &[u8], undo: &mut Vec<u8>) -> Result<bool> {
        undo.clear();
        self.in_mtr(trx, undo, |t, u| t.update_inner(key, val, Some(u)))
    }

    /// Applies an undo entry (rolls one change back), logged under `trx` as a plain
    /// change (undoing it is never undone).
    pub fn apply_undo(&mut self, trx: u64, undo: &[u8]) -> Result<()> {
        let Some((op, key, val)) = parse_undo(undo) else {
            return Err(Error::Corrupt(format!("{}: malformed undo entry", self.pool.name())));
        };
        self.in_mtr(trx, &mut Vec::new(), |t, _| {
            match op {
                UNDO_DELETE => {
                    t.delete_inner(key, None)?;
                }
                UNDO_PUT => {
                    t.insert_inner(key, val)?;
                }
                _ => {
                    if !t.update_inner(key, val, None)? {
                        t.insert_inner(key, val)?;
                    }
                }
            }
            Ok(())
        })
    }

    fn insert_inner(&mut self, key: &[u8], val: &[u8]) -> Result<bool> {
        if key.len() > MAX_KEY {
            return Err(Error::Unsupported(format!("key of {} bytes; the most is {MAX_KEY}", key.len())));
        }
        let (path, leaf) = self.descend(key)?;
        let (i, eq) = self.pool.get(leaf)?.search(key);
        if eq {
            return Ok(false);
        }
        let v = self.store_value(key, val)?;
        self.version += 1;
        self.rows += 1;
        if self.pool.get_mut(leaf)?.insert_leaf(i, key, &v) {
            return Ok(true);
        }
        let v = own(v);
        self.split_leaf(path, leaf, i, key, v)?;
        Ok(true)
    }

    /// Replaces the value of `key`; with `undo`, leaves there how to put the old
    /// value back. In place when the new value fits where the old one was (no
    /// cursor loses its place then), else a delete and an insert.
    fn update_inner(&mut self, key: &[u8], val: &[u8], undo: Option<&mut Vec<u8>>) -> Result<bool> {
        let (_, leaf) = self.descend(key)?;
        let (i, eq) = self.pool.get(leaf)?.search(key);
        if !eq {
            return Ok(false);
        }
        let old = own(self.pool.get(leaf)?.val(i));
        if let Some(u) = undo {
            let mut v = Vec::new();
            self.load_value(&old.as_val(), &mut v)?;
            undo_entry(u, UNDO_REPLACE, key, &v);
        }
        if matches!(old, OwnedVal::Inline(_))
            && key.len() + val.len() <= MAX_INLINE
            && self.pool.get_mut(leaf)?.replace_inline(i, val)
        {
            return Ok(true);
        }
        self.delete_inner(key, None)?;
        self.insert_inner(key, val)?;
        Ok(true)
    }

    fn split_leaf(&mut self, path: Vec<(u32, usize)>, leaf: u32, at: usize, key: &[u8], v: OwnedVal) -> Result<()> {
        // sizes of the records with the new one at `at`
        let (sizes, n, right_next) = {
            let p = self.pool.get(leaf)?;
            let mut sizes: Vec<usize> =
                (0..p.slots()).map(|i| Page::leaf_need(p.key(i).len(), &p.val(i))).collect();
            sizes.insert(at, Page::leaf_need(key.len(), &v.as_val()));
            (sizes, p.slots(), p.link_a())
        };
        // Appending at the right edge of the tree (ascending keys, the usual bulk
        // load) leaves the left page full instead of half full.
        let mid = if at == n && right_next == NONE && n > 0 { n } else { split_point(sizes.into_iter()) };
        if leaf == ROOT {
            // the root keeps its number: its records go to two new leaves
            let mut recs: Vec<(Vec<u8>, OwnedVal)> = {
                let p = self.pool.get(leaf)?;
                (0..p.slots()).map(|i| (p.key(i).to_vec(), own(p.val(i)))).collect()
            };
            recs.insert(at, (key.to_vec(), v));
            let l = self.alloc(Kind::Leaf)?;
            let r = self.alloc(Kind::Leaf)?;
            self.fill_leaf(l, &recs[..mid], NONE, r)?;
            self.fill_leaf(r, &recs[mid..], l, NONE)?;
            let sep = recs[mid].0.clone();
            let root = self.pool.get_mut(ROOT)?;
            root.init(ROOT, Kind::Internal);
            root.set_link_a(l);
            root.insert_internal(0, &sep, r);
            return Ok(());
        }
        // The left page keeps its first records where they are (only its slot count
        // changes: little to log); the rest move to a new right page.
        let new_left = at < mid;
        let keep = if new_left { mid - 1 } else { mid };
        let mut moving: Vec<(Vec<u8>, OwnedVal)> = {
            let p = self.pool.get(leaf)?;
            (keep..n).map(|i| (p.key(i).to_vec(), own(p.val(i)))).collect()
        };
        if !new_left {
            moving.insert(at - keep, (key.to_vec(), v.clone()));
        }
        let r = self.alloc(Kind::Leaf)?;
        self.fill_leaf(r, &moving, leaf, right_next)?;
        {
            let p = self.pool.get_mut(leaf)?;
            p.truncate(keep);
            p.set_link_a(r);
            if new_left && !p.insert_leaf(at, key, &v.as_val()) {
                return Err(Error::Internal("a split half does not fit in a page".into()));
            }
        }
        if right_next != NONE {
            self.pool.get_mut(right_next)?.set_link_b(r);
        }
        let sep = moving.swap_remove(0).0;
        self.insert_separator(path, sep, r)
    }

    fn fill_leaf(&mut self, no: u32, recs: &[(Vec<u8>, OwnedVal)], prev: u32, next: u32) -> Result<()> {
        let p = self.pool.get_mut(no)?;
        p.init(no, Kind::Leaf);
        for (i, (k, v)) in recs.iter().enumerate() {
            if !p.insert_leaf(i, k, &v.as_val()) {
                return Err(Error::Internal("a split half does not fit in a page".into()));
            }
        }
        p.set_link_a(next);
        p.set_link_b(prev);
        Ok(())
    }

    fn fill_internal(&mut self, no: u32, leftmost: u32, recs: &[(Vec<u8>, u32)]) -> Result<()> {
        let p = self.pool.get_mut(no)?;
        p.init(no, Kind::Internal);
        p.set_link_a(leftmost);
        for (i, (k, c)) in recs.iter().enumerate() {
            if !p.insert_internal(i, k, *c) {
                return Err(Error::Internal("an internal split half does not fit in a page".into()));
            }
        }
        Ok(())
    }

    /// Adds separator `sep` (for new right page `right`) to the parent at the end
    /// of `path`, splitting upwards as needed.
    fn insert_separator(&mut self, mut path: Vec<(u32, usize)>, sep: Vec<u8>, right: u32) -> Result<()> {
        let Some((parent, idx)) = path.pop() else {
            return Err(Error::Internal("split of a non-root page without a parent".into()));
        };
        let pos = if idx == usize::MAX { 0 } else { idx + 1 };
        if self.pool.get_mut(parent)?.insert_internal(pos, &sep, right) {
            return Ok(());
        }
        let (leftmost, mut recs) = {
            let p = self.pool.get(parent)?;
            (p.link_a(), (0..p.slots()).map(|i| (p.key(i).to_vec(), p.child(i))).collect::<Vec<_>>())
        };
        recs.insert(pos, (sep, right));
        // the same at the right edge: the new right page takes just the last record
        let mid = if pos == recs.len() - 1 && recs.len() > 3 {
            recs.len() - 2
        } else {
            split_point(recs.iter().map(|(k, _)| Page::internal_need(k.len())))
        };
        let (up_key, up_child) = recs[mid].clone();
        if parent == ROOT {
            let l = self.alloc(Kind::Internal)?;
            let r = self.alloc(Kind::Internal)?;
            self.fill_internal(l, leftmost, &recs[..mid])?;
            self.fill_internal(r, up_child, &recs[mid + 1..])?;
            let root = self.pool.get_mut(ROOT)?;
            root.init(ROOT, Kind::Internal);
            root.set_link_a(l);
            root.insert_internal(0, &up_key, r);
            return Ok(());
        }
        let r = self.alloc(Kind::Internal)?;
        self.fill_internal(parent, leftmost, &recs[..mid])?;
        self.fill_internal(r, up_child, &recs[mid + 1..])?;
        self.insert_separator(path, up_key, r)
    }

    /// Removes `key`; with `undo` (kind, entry), leaves there how to put it back.
    fn delete_inner(&mut self, key: &[u8], undo: Option<(u8, &mut Vec<u8>)>) -> Result<bool> {
        let (path, leaf) = self.descend(key)?;
        let (i, eq) = self.pool.get(leaf)?.search(key);
        if !eq {
            return Ok(false);
        }
        let v = own(self.pool.get(leaf)?.val(i));
        if let Some((kind, u)) = undo {
            let mut old = Vec::new();
            self.load_value(&v.as_val(), &mut old)?;
            undo_entry(u, kind, key, &old);
        }
        if let OwnedVal::Overflow { first, .. } = v {
            self.free_value(first)?;
        }
        self.pool.get_mut(leaf)?.remove(i);
        self.version += 1;
        self.rows -= 1;
        self.rebalance(path, leaf)?;
        Ok(true)
    }

    /// After a delete: merge `no` with a sibling under the same parent when both
    /// fit in one page; collapse a root left with a single child.
    fn rebalance(&mut self, mut path: Vec<(u32, usize)>, no: u32) -> Result<()> {
        if no == ROOT {
            let p = self.pool.get(ROOT)?;
            if p.kind() == Kind::Internal && p.slots() == 0 {
                let child = p.link_a();
                self.absorb_into_root(child)?;
            }
            return Ok(());
        }
        if self.pool.get(no)?.used() >= MERGE_BELOW {
            return Ok(());
        }
        let Some(&(parent, idx)) = path.last() else { return Ok(()) };
        let (nslots, left_sib, right_sib) = {
            let p = self.pool.get(parent)?;
            let child_at = |j: usize| if j == usize::MAX { p.link_a() } else { p.child(j) };
            let left = if idx == usize::MAX { None } else if idx == 0 { Some((usize::MAX, p.link_a())) } else { Some((idx - 1, p.child(idx - 1))) };
            let right_idx = if idx == usize::MAX { 0 } else { idx + 1 };
            let right = (right_idx < p.slots()).then(|| (right_idx, child_at(right_idx)));
            (p.slots(), left, right)
        };
        let _ = nslots;
        // merge (left, right) where right's separator in the parent is at sep_idx
        let pair = if let Some((ri, r)) = right_sib {
            Some((no, r, ri))
        } else {
            left_sib.map(|(_, l)| (l, no, idx))
        };
        let Some((l, r, sep_idx)) = pair else { return Ok(()) };
        let merged = self.try_merge(parent, l, r, sep_idx)?;
        if merged {
            path.pop();
            self.rebalance(path, parent)?;
        }
        Ok(())
    }

    /// Moves every record of `r` into `l` (siblings under `parent`, `r`'s separator
    /// at `sep_idx`) if they fit, removing `r` and its separator.
    fn try_merge(&mut self, parent: u32, l: u32, r: u32, sep_idx: usize) -> Result<bool> {
        let kind = self.pool.get(l)?.kind();
        let sep = self.pool.get(parent)?.key(sep_idx).to_vec();
        if kind == Kind::Leaf {
            let (recs, next) = {
                let p = self.pool.get(r)?;
                ((0..p.slots()).map(|i| (p.key(i).to_vec(), own(p.val(i)))).collect::<Vec<_>>(), p.link_a())
            };
            let need: usize = recs.iter().map(|(k, v)| Page::leaf_need(k.len(), &v.as_val())).sum();
            if need > self.pool.get(l)?.free() {
                return Ok(false);
            }
            let lp = self.pool.get_mut(l)?;
            for (k, v) in &recs {
                let n = lp.slots();
                lp.insert_leaf(n, k, &v.as_val());
            }
            lp.set_link_a(next);
            if next != NONE {
                self.pool.get_mut(next)?.set_link_b(l);
            }
        } else {
            let (leftmost, recs) = {
                let p = self.pool.get(r)?;
                (p.link_a(), (0..p.slots()).map(|i| (p.key(i).to_vec(), p.child(i))).collect::<Vec<_>>())
            };
            let need: usize = Page::internal_need(sep.len()) + recs.iter().map(|(k, _)| Page::internal_need(k.len())).sum::<usize>();
            if need > self.pool.get(l)?.free() {
                return Ok(false);
            }
            let lp = self.pool.get_mut(l)?;
            let n = lp.slots();
            lp.insert_internal(n, &sep, leftmost);
            for (k, c) in &recs {
                let n = lp.slots();
                lp.insert_internal(n, k, *c);
            }
        }
        self.pool.get_mut(parent)?.remove(sep_idx);
        self.release(r)?;
        Ok(true)
    }

    /// The root's only child becomes the root (its records move into page 1).
    fn absorb_into_root(&mut self, child: u32) -> Result<()> {
        let (kind, buf) = {
            let p = self.pool.get(child)?;
            (p.kind(), Box::new(*p.bytes()))
        };
        let root = self.pool.get_mut(ROOT)?;
        root.copy_from(&buf);
        if kind == Kind::Leaf {
            root.set_link_a(NONE);
            root.set_link_b(NONE);
        }
        self.release(child)
    }

    // ---- cursors ----

    /// Positions `c` on the first key within `from` (ascending) or the last key
    /// within `from` (descending: `from` is then the upper bound).
    pub fn seek(&mut self, c: &mut Cursor, from: Bound<&[u8]>, descending: bool) -> Result<()> {
        self.reader().seek(c, from, descending)
    }

    /// The record at the cursor, then moves it one step; None at the end.
    pub fn next(&mut self, c: &mut Cursor, descending: bool, key: &mut Vec<u8>, val: &mut Vec<u8>) -> Result<bool> {
        self.reader().next(c, descending, key, val)
    }

    /// Reads with the tree to itself (`&mut`: pages not cached are read in).
    pub fn reader(&mut self) -> Reader<'_> {
        Reader { pages: Pages::Own(&mut self.pool), version: self.version, rows: self.rows }
    }

    /// Reads sharing the tree with other readers (under its read lock): cached
    /// pages only; see [`read`].
    pub fn shared_reader(&self) -> Reader<'_> {
        Reader { pages: Pages::Shared { pool: &self.pool, missed: false }, version: self.version, rows: self.rows }
    }

    // ---- checking ----

    /// Pages on the free list.
    pub fn free_pages(&mut self) -> Result<u32> {
        let mut n = 0;
        let mut no = self.free_head;
        while no != NONE {
            n += 1;
            if n > self.pool.pages {
                return Err(corrupt(self.pool.name(), no, "the free list has a cycle"));
            }
            no = self.pool.get(no)?.link_a();
        }
        Ok(n)
    }

    /// Verifies the whole tree: every page's checksum (on read), key order within
    /// pages and against the separators above, equal leaf depth, both sibling
    /// chains, overflow chains, and the row count. Returns the first problem.
    pub fn check(&mut self) -> Result<()> {
        self.check_with(&mut || Ok(()))
    }

    /// [`Self::check`], calling `step` once a page: its error stops the check.
    pub fn check_with(&mut self, step: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        let mut leaves = Vec::new();
        let mut depth = None;
        let mut count = 0u64;
        self.check_page(ROOT, None, None, 0, &mut depth, &mut leaves, &mut count, step)?;
        let name = self.pool.name().to_string();
        for (i, &l) in leaves.iter().enumerate() {
            let p = self.pool.get(l)?;
            let want_next = leaves.get(i + 1).copied().unwrap_or(NONE);
            let want_prev = if i == 0 { NONE } else { leaves[i - 1] };
            if p.link_a() != want_next || p.link_b() != want_prev {
                return Err(corrupt(&name, l, "leaf sibling links do not match the tree"));
            }
        }
        if count != self.rows {
            return Err(corrupt(&name, META, &format!("row count {} but the leaves hold {count}", self.rows)));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn check_page(
        &mut self,
        no: u32,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        level: usize,
        depth: &mut Option<usize>,
        leaves: &mut Vec<u32>,
        count: &mut u64,
        step: &mut dyn FnMut() -> Result<()>,
    ) -> Result<()> {
        step()?;
        let name = self.pool.name().to_string();
        let (kind, keys, children, overflow) = {
            let p = self.pool.get(no)?;
            let keys: Vec<Vec<u8>> = (0..p.slots()).map(|i| p.key(i).to_vec()).collect();
            let children: Vec<u32> = if p.kind() == Kind::Internal {
                std::iter::once(p.link_a()).chain((0..p.slots()).map(|i| p.child(i))).collect()
            } else {
                vec![]
            };
            let overflow: Vec<(u32, u32)> = if p.kind() == Kind::Leaf {
                (0..p.slots())
                    .filter_map(|i| match p.val(i) {
                        Val::Overflow { len, first } => Some((len, first)),
                        _ => None,
                    })
                    .collect()
            } else {
                vec![]
            };
            (p.kind(), keys, children, overflow)
        };
        for w in keys.windows(2) {
            if w[0] >= w[1] {
                return Err(corrupt(&name, no, "keys out of order"));
            }
        }
        if let (Some(lo), Some(first)) = (lo, keys.first()) {
            if first.as_slice() < lo {
                return Err(corrupt(&name, no, "a key is below its parent's separator"));
            }
        }
        if let (Some(hi), Some(last)) = (hi, keys.last()) {
            if last.as_slice() >= hi {
                return Err(corrupt(&name, no, "a key is not below the next separator"));
            }
        }
        match kind {
            Kind::Leaf => {
                match depth {
                    Some(d) if *d != level => return Err(corrupt(&name, no, "leaves at different depths")),
                    _ => *depth = Some(level),
                }
                *count += keys.len() as u64;
                leaves.push(no);
                for (len, first) in overflow {
                    let mut v = Vec::new();
                    self.load_value(&Val::Overflow { len, first }, &mut v)?;
                }
            }
            Kind::Internal => {
                if no != ROOT && keys.is_empty() {
                    return Err(corrupt(&name, no, "internal page without separators"));
                }
                for (j, &child) in children.iter().enumerate() {
                    let clo = if j == 0 { lo } else { Some(keys[j - 1].as_slice()) };
                    let chi = if j < keys.len() { Some(keys[j].as_slice()) } else { hi };
                    self.check_page(child, clo, chi, level + 1, depth, leaves, count, step)?;
                }
            }
            k => return Err(corrupt(&name, no, &format!("{k:?} page inside the tree"))),
        }
        Ok(())
    }
}

impl Shrink for RwLock<BTree> {
    fn try_shrink(&self, want: usize) -> usize {
        match self.try_write() {
            Some(mut t) => t.pool.shrink(want),
            None => 0,
        }
    }
}

/// Registers a tree with its budget, so that other trees' pools may ask it for
/// pages, and tells its pool which tree it is (it never asks itself).
pub fn share_budget(t: &Arc<RwLock<BTree>>, budget: &Budget) {
    let w: std::sync::Weak<RwLock<BTree>> = Arc::downgrade(t);
    t.write().pool.set_owner(Arc::as_ptr(t) as *const () as usize);
    budget.register(w);
}

/// Where a read takes its pages from.
pub enum Pages<'a> {
    /// The pool, under the tree's write lock: a page not cached is read in.
    Own(&'a mut Pool),
    /// The pool shared with other readers under the tree's read lock: cached pages
    /// only. A miss is noted (and the read fails): [`read`] does it again with the
    /// pool to itself.
    Shared { pool: &'a Pool, missed: bool },
}

impl Pages<'_> {
    fn get(&mut self, no: u32) -> Result<&Page> {
        match self {
            Pages::Own(p) => p.get(no),
            Pages::Shared { pool, missed } => match pool.get_cached(no) {
                Some(p) => Ok(p),
                None => {
                    *missed = true;
                    Err(Error::Corrupt(format!("{}: page {no} is not cached", pool.name())))
                }
            },
        }
    }

    fn name(&self) -> &str {
        match self {
            Pages::Own(p) => p.name(),
            Pages::Shared { pool, .. } => pool.name(),
        }
    }

    fn count(&self) -> u32 {
        match self {
            Pages::Own(p) => p.page_count(),
            Pages::Shared { pool, .. } => pool.page_count(),
        }
    }
}

/// The read operations of a tree (lookups, cursors), over [`Pages`]. Cursor
/// steps change the cursor only once every page they need was there, so that a
/// step that missed a page can be done again.
pub struct Reader<'a> {
    pages: Pages<'a>,
    version: u64,
    rows: u64,
}

static RETRIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Shared reads that missed a page and were done again under the write lock,
/// since the engine started (all trees).
pub fn shared_read_retries() -> u64 {
    RETRIES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs a read of a shared tree under its read lock, beside other readers, when
/// every page it needs is cached; else (a page must be read from the file, which
/// may evict another) once more under the write lock. `f` must be repeatable: a
/// read that missed a page left nothing half done (see [`Reader`]).
pub fn read<T>(t: &RwLock<BTree>, mut f: impl FnMut(&mut Reader<'_>) -> Result<T>) -> Result<T> {
    {
        let g = t.read();
        let mut r = g.shared_reader();
        let out = f(&mut r);
        if !r.missed() {
            return out;
        }
    }
    RETRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut g = t.write();
    let mut r = g.reader();
    f(&mut r)
}

impl Reader<'_> {
    /// Whether a shared read needed a page that was not cached (its result is an
    /// error then, to be retried).
    pub fn missed(&self) -> bool {
        matches!(self.pages, Pages::Shared { missed: true, .. })
    }

    /// A page of the tree (for the table layer's estimates).
    pub fn page(&mut self, no: u32) -> Result<&Page> {
        self.pages.get(no)
    }

    pub fn name(&self) -> &str {
        self.pages.name()
    }

    /// Entries in the tree.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The leaf that holds (or would hold) `key`.
    fn find_leaf(&mut self, key: &[u8]) -> Result<u32> {
        let mut no = ROOT;
        for _ in 0..64 {
            let p = self.pages.get(no)?;
            match p.kind() {
                Kind::Leaf => return Ok(no),
                Kind::Internal => {
                    let (i, eq) = p.search(key);
                    // records (k_i, c_i): c_i holds keys >= k_i
                    no = if eq { p.child(i) } else if i == 0 { p.link_a() } else { p.child(i - 1) };
                }
                k => return Err(corrupt(self.pages.name(), no, &format!("expected a tree page, found {k:?}"))),
            }
        }
        Err(corrupt(self.pages.name(), no, "tree deeper than 64 levels (a cycle?)"))
    }

    /// The value of `key` into `out`; false if the key is absent.
    pub fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        let leaf = self.find_leaf(key)?;
        let p = self.pages.get(leaf)?;
        let (i, eq) = p.search(key);
        if !eq {
            return Ok(false);
        }
        match p.val(i) {
            Val::Inline(b) => {
                out.clear();
                out.extend_from_slice(b);
                Ok(true)
            }
            Val::Overflow { len, first } => {
                self.load_value(&Val::Overflow { len, first }, out)?;
                Ok(true)
            }
        }
    }

    fn load_value(&mut self, v: &Val, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        match *v {
            Val::Inline(b) => out.extend_from_slice(b),
            Val::Overflow { len, first } => {
                out.reserve(len as usize);
                let mut no = first;
                while out.len() < len as usize {
                    if no == NONE {
                        return Err(corrupt(self.pages.name(), first, "overflow chain ends early"));
                    }
                    let p = self.pages.get(no)?;
                    if p.kind() != Kind::Overflow {
                        return Err(corrupt(self.pages.name(), no, "expected an overflow page"));
                    }
                    let take = (len as usize - out.len()).min(Page::OVERFLOW_DATA);
                    out.extend_from_slice(&p.bytes()[HEADER..HEADER + take]);
                    no = p.link_a();
                }
            }
        }
        Ok(())
    }

    /// Positions `c` on the first key within `from` (ascending) or the last key
    /// within `from` (descending: `from` is then the upper bound). A seek that
    /// missed a page leaves the cursor as it was (to be done again); one that
    /// failed otherwise leaves it at the end.
    pub fn seek(&mut self, c: &mut Cursor, from: Bound<&[u8]>, descending: bool) -> Result<()> {
        match self.place(from, descending) {
            Ok((leaf, slot)) => {
                (c.leaf, c.slot, c.version, c.valid) = (leaf, slot, self.version, true);
                c.key.clear();
                c.resume = match from {
                    Bound::Unbounded => Resume::Edge,
                    Bound::Included(k) => {
                        c.key.extend_from_slice(k);
                        Resume::From
                    }
                    Bound::Excluded(k) => {
                        c.key.extend_from_slice(k);
                        Resume::After
                    }
                };
                Ok(())
            }
            Err(e) => {
                if !self.missed() {
                    c.valid = false;
                }
                Err(e)
            }
        }
    }

    /// Where [`Reader::seek`] puts a cursor: leaf and slot.
    fn place(&mut self, from: Bound<&[u8]>, descending: bool) -> Result<(u32, usize)> {
        let probe: &[u8] = match from {
            Bound::Included(k) | Bound::Excluded(k) => k,
            Bound::Unbounded => return self.edge(descending),
        };
        let leaf = self.find_leaf(probe)?;
        let (i, eq) = self.pages.get(leaf)?.search(probe);
        Ok((leaf, slot_from(i, eq, from, descending)))
    }

    /// Where [`Reader::place`] would put a cursor, found in the leaf it was on
    /// without a descent from the root, when that leaf still decides it: the page
    /// is a leaf holding the key itself, or keys on both sides of it (so the next
    /// record either way is in this leaf or over its sibling link). None: descend.
    /// What makes a scan that changes the rows it reads (UPDATE, DELETE) cheap: each
    /// change moves the tree's version, and every step would otherwise search from
    /// the root.
    /// `slot` is where the cursor stood: after a step, the key it returned is
    /// most often still right behind it (the row was updated in place), and then
    /// not even the leaf is searched.
    fn place_in_leaf(&mut self, leaf: u32, slot: usize, from: Bound<&[u8]>, descending: bool) -> Result<Option<(u32, usize)>> {
        let probe: &[u8] = match from {
            Bound::Included(k) | Bound::Excluded(k) => k,
            Bound::Unbounded => return Ok(None),
        };
        if leaf == NONE || leaf >= self.pages.count() {
            return Ok(None);
        }
        let p = self.pages.get(leaf)?;
        if p.kind() != Kind::Leaf {
            return Ok(None);
        }
        let behind = if descending { slot.wrapping_add(1) } else { slot.wrapping_sub(1) };
        if matches!(from, Bound::Excluded(_)) && behind < p.slots() && p.key(behind) == probe {
            return Ok(Some((leaf, slot)));
        }
        let (i, eq) = p.search(probe);
        if !eq && (i == 0 || i >= p.slots()) {
            return Ok(None);
        }
        Ok(Some((leaf, slot_from(i, eq, from, descending))))
    }

    /// The first (or last) leaf, and its first (or last) slot.
    fn edge(&mut self, last: bool) -> Result<(u32, usize)> {
        let mut no = ROOT;
        let slots = loop {
            let p = self.pages.get(no)?;
            match p.kind() {
                Kind::Leaf => break p.slots(),
                Kind::Internal => {
                    no = if last && p.slots() > 0 { p.child(p.slots() - 1) } else { p.link_a() };
                }
                _ => return Err(corrupt(self.pages.name(), no, "expected a tree page")),
            }
        };
        Ok((no, if last { slots.wrapping_sub(1) } else { 0 }))
    }

    /// The record at the cursor, then moves it one step; None at the end.
    pub fn next(&mut self, c: &mut Cursor, descending: bool, key: &mut Vec<u8>, val: &mut Vec<u8>) -> Result<bool> {
        if !c.valid {
            return Ok(false);
        }
        if c.version != self.version {
            // the tree changed since: find the place again from the last key
            let from = match c.resume {
                Resume::Edge => Bound::Unbounded,
                Resume::From => Bound::Included(&c.key[..]),
                Resume::After => Bound::Excluded(&c.key[..]),
            };
            let (leaf, slot) = match self.place_in_leaf(c.leaf, c.slot, from, descending)? {
                Some(at) => at,
                None => self.place(from, descending)?,
            };
            (c.leaf, c.slot, c.version) = (leaf, slot, self.version);
        }
        loop {
            let p = self.pages.get(c.leaf)?;
            if c.slot < p.slots() {
                key.clear();
                key.extend_from_slice(p.key(c.slot));
                match p.val(c.slot) {
                    Val::Inline(b) => {
                        val.clear();
                        val.extend_from_slice(b);
                    }
                    Val::Overflow { len, first } => self.load_value(&Val::Overflow { len, first }, val)?,
                }
                // moved only now: every page the step needed was there
                c.slot = if descending { c.slot.wrapping_sub(1) } else { c.slot + 1 };
                c.key.clear();
                c.key.extend_from_slice(key);
                c.resume = Resume::After;
                return Ok(true);
            }
            let next = if descending { p.link_b() } else { p.link_a() };
            if next == NONE {
                c.valid = false;
                return Ok(false);
            }
            // (the next leaf's first or last slot: a valid place to stand, should
            // the step stop here for a page to be read)
            let slots = self.pages.get(next)?.slots();
            c.leaf = next;
            c.slot = if descending { slots.wrapping_sub(1) } else { 0 };
        }
    }
}

impl Drop for BTree {
    /// A tree closed with dirty pages writes them (after the log, by the WAL rule):
    /// a checkpoint may already count on them. Never unwinds.
    fn drop(&mut self) {
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

/// A cursor's slot in a leaf from a search of its bound there (`i`: the first
/// slot >= the probe, `eq`: the probe is at `i`): ascending, the first record
/// within the bound; descending, the last one (may be "before slot 0", which
/// wraps: the step then goes to the previous leaf).
fn slot_from(i: usize, eq: bool, from: Bound<&[u8]>, descending: bool) -> usize {
    if !descending {
        if eq && matches!(from, Bound::Excluded(_)) { i + 1 } else { i }
    } else {
        // last slot <= probe (or < probe)
        let take_eq = eq && matches!(from, Bound::Included(_));
        if take_eq { i } else { i.wrapping_sub(1) }
    }
}

/// Undo entry kinds: how to revert an insert (delete the key), a delete (put the
/// old value back), an update (put the old value back in place).
pub const UNDO_DELETE: u8 = 1;
pub const UNDO_PUT: u8 = 2;
pub const UNDO_REPLACE: u8 = 3;

/// Makes `v` the undo entry `u8 kind, u32 key length, key, value`.
pub fn undo_entry(v: &mut Vec<u8>, kind: u8, key: &[u8], val: &[u8]) {
    v.clear();
    v.push(kind);
    v.extend_from_slice(&(key.len() as u32).to_le_bytes());
    v.extend_from_slice(key);
    v.extend_from_slice(val);
}

pub fn parse_undo(u: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let kind = *u.first()?;
    let klen = u32::from_le_bytes(u.get(1..5)?.try_into().ok()?) as usize;
    let key = u.get(5..5usize.checked_add(klen)?)?;
    Some((kind, key, &u[5 + klen..]))
}

/// A value copied out of a page.
#[derive(Clone, Debug)]
enum OwnedVal {
    Inline(Vec<u8>),
    Overflow { len: u32, first: u32 },
}

impl OwnedVal {
    fn as_val(&self) -> Val<'_> {
        match self {
            OwnedVal::Inline(v) => Val::Inline(v),
            OwnedVal::Overflow { len, first } => Val::Overflow { len: *len, first: *first },
        }
    }
}

fn own(v: Val) -> OwnedVal {
    match v {
        Val::Inline(b) => OwnedVal::Inline(b.to_vec()),
        Val::Overflow { len, first } => OwnedVal::Overflow { len, first },
    }
}

/// Where to split records of these sizes so both halves are about equally full
/// (and neither is empty).
fn split_point(sizes: impl Iterator<Item = usize>) -> usize {
    let sizes: Vec<usize> = sizes.collect();
    let total: usize = sizes.iter().sum();
    let mut acc = 0;
    for (i, s) in sizes.iter().enumerate() {
        acc += s;
        if acc * 2 >= total {
            return (i + 1).clamp(1, sizes.len() - 1);
        }
    }
    sizes.len() / 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// A tree file's path in a folder of its own (removed with the folder).
    fn tmp(name: &str) -> (crate::testutil::TempDir, std::path::PathBuf) {
        let d = crate::testutil::dir(&format!("bt-{name}"), 0);
        let p = d.join("t.rbt");
        (d, p)
    }

    fn scan(t: &mut BTree, desc: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut c = Cursor::default();
        t.seek(&mut c, Bound::Unbounded, desc).unwrap();
        let (mut k, mut v) = (vec![], vec![]);
        let mut out = vec![];
        while t.next(&mut c, desc, &mut k, &mut v).unwrap() {
            out.push((k.clone(), v.clone()));
        }
        out
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, usize),
        Delete(u16),
        Reopen,
    }

    fn key(k: u16) -> Vec<u8> {
        // keys of different lengths, sharing prefixes
        let mut v = format!("key-{:05}", k).into_bytes();
        v.extend(std::iter::repeat_n(b'x', (k % 7) as usize * 30));
        v
    }

    fn val(k: u16, len: usize) -> Vec<u8> {
        (0..len).map(|i| (i as u16 ^ k) as u8).collect()
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u16..3000, prop_oneof![3 => 0usize..200, 1 => 200usize..3000, 1 => 3000usize..40_000]).prop_map(|(k, l)| Op::Insert(k, l)),
            4 => (0u16..3000).prop_map(Op::Delete),
            1 => Just(Op::Reopen),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Long random operation sequences against a model, through splits,
        /// merges, overflow values, a tiny pool (constant eviction) and reopens:
        /// the tree always holds exactly the model's contents, in order both ways,
        /// and passes check().
        #[test]
        fn matches_a_model(ops in prop::collection::vec(op(), 1..1500)) {
            let (_dir, path) = tmp("model");
            BTree::create(&path).unwrap();
            let mut t = BTree::open(&path, 16).unwrap();
            let mut model = BTreeMap::new();
            for o in &ops {
                match *o {
                    Op::Insert(k, l) => {
                        let fresh = t.insert(&key(k), &val(k, l)).unwrap();
                        prop_assert_eq!(fresh, !model.contains_key(&key(k)));
                        model.entry(key(k)).or_insert(val(k, l));
                    }
                    Op::Delete(k) => {
                        prop_assert_eq!(t.delete(&key(k)).unwrap(), model.remove(&key(k)).is_some());
                    }
                    Op::Reopen => {
                        t.flush().unwrap();
                        drop(t);
                        t = BTree::open(&path, 16).unwrap();
                    }
                }
            }
            t.check().unwrap();
            let want: Vec<_> = model.clone().into_iter().collect();
            prop_assert_eq!(scan(&mut t, false), want.clone());
            let mut rev = want.clone();
            rev.reverse();
            prop_assert_eq!(scan(&mut t, true), rev);
            let mut v = vec![];
            for (k, w) in model.iter().take(50) {
                prop_assert!(t.get(k, &mut v).unwrap());
                prop_assert_eq!(&v, w);
            }
            // delete everything: the root collapses back to one leaf and every
            // other page is on the free list, to be reused
            for k in model.keys() {
                prop_assert!(t.delete(k).unwrap());
            }
            t.check().unwrap();
            prop_assert_eq!(t.rows(), 0);
            let pages = t.pool().pages;
            prop_assert_eq!(t.free_pages().unwrap() + 2, pages);
            for (k, w) in &model {
                t.insert(k, w).unwrap();
            }
            t.check().unwrap();
            prop_assert_eq!(scan(&mut t, false), want);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]
        /// A cursor stepping while the tree changes under it (the scan of an UPDATE
        /// or a DELETE, inserts ahead of it) returns at each step the next key of
        /// the tree as it is then: whether its place is found again within its leaf
        /// or, when the leaf was split, merged, emptied or freed, from the root.
        #[test]
        fn a_cursor_steps_right_through_changes(
            desc in any::<bool>(),
            changes in prop::collection::vec((0u8..5, 0u16..3000, prop_oneof![3 => 0usize..300, 1 => 300usize..5000]), 1..300),
        ) {
            let (_dir, path) = tmp(&format!("cursor-{}", desc as u8));
            BTree::create(&path).unwrap();
            let mut t = BTree::open(&path, 64).unwrap();
            let mut model = BTreeMap::new();
            for k in (0u16..3000).step_by(3) {
                let v = val(k, 40 + (k as usize % 5) * 50);
                t.insert(&key(k), &v).unwrap();
                model.insert(key(k), v);
            }
            let mut c = Cursor::default();
            t.seek(&mut c, Bound::Unbounded, desc).unwrap();
            let (mut k, mut v) = (vec![], vec![]);
            let mut last: Option<Vec<u8>> = None;
            for &(what, at, len) in changes.iter().chain(std::iter::repeat(&(9, 0, 0))) {
                let want = match (&last, desc) {
                    (None, false) => model.iter().next(),
                    (None, true) => model.iter().next_back(),
                    (Some(l), false) => model.range::<Vec<u8>, _>((Bound::Excluded(l), Bound::Unbounded)).next(),
                    (Some(l), true) => model.range::<Vec<u8>, _>((Bound::Unbounded, Bound::Excluded(l))).next_back(),
                };
                let got = t.next(&mut c, desc, &mut k, &mut v).unwrap();
                prop_assert_eq!(got.then(|| (k.clone(), v.clone())), want.map(|(a, b)| (a.clone(), b.clone())));
                if !got {
                    break;
                }
                last = Some(k.clone());
                match what {
                    // the row just read: deleted, or given a new (maybe much longer) value
                    0 => {
                        t.delete(&k).unwrap();
                        model.remove(&k);
                    }
                    1 => {
                        t.update(&k, &val(at, len)).unwrap();
                        model.insert(k.clone(), val(at, len));
                    }
                    // elsewhere: a new key, or a run of keys deleted (leaves merge)
                    2 => {
                        if t.insert(&key(at), &val(at, len)).unwrap() {
                            model.insert(key(at), val(at, len));
                        }
                    }
                    3 => {
                        for d in at..at.saturating_add(60).min(3000) {
                            t.delete(&key(d)).unwrap();
                            model.remove(&key(d));
                        }
                    }
                    _ => {}
                }
            }
            t.check().unwrap();
        }
    }

    #[test]
    fn range_seeks_in_both_directions() {
        let (_dir, path) = tmp("range");
        BTree::create(&path).unwrap();
        let mut t = BTree::open(&path, 64).unwrap();
        for i in (0u32..20_000).step_by(2) {
            t.insert(&i.to_be_bytes(), &[7u8; 40]).unwrap();
        }
        let (mut k, mut v) = (vec![], vec![]);
        let mut c = Cursor::default();
        t.seek(&mut c, Bound::Included(&1001u32.to_be_bytes()), false).unwrap();
        assert!(t.next(&mut c, false, &mut k, &mut v).unwrap());
        assert_eq!(k, 1002u32.to_be_bytes());
        t.seek(&mut c, Bound::Excluded(&1002u32.to_be_bytes()), false).unwrap();
        assert!(t.next(&mut c, false, &mut k, &mut v).unwrap());
        assert_eq!(k, 1004u32.to_be_bytes());
        t.seek(&mut c, Bound::Included(&1001u32.to_be_bytes()), true).unwrap();
        assert!(t.next(&mut c, true, &mut k, &mut v).unwrap());
        assert_eq!(k, 1000u32.to_be_bytes());
        t.seek(&mut c, Bound::Excluded(&1000u32.to_be_bytes()), true).unwrap();
        assert!(t.next(&mut c, true, &mut k, &mut v).unwrap());
        assert_eq!(k, 998u32.to_be_bytes());
        // a cursor survives changes made between its steps
        t.seek(&mut c, Bound::Included(&0u32.to_be_bytes()), false).unwrap();
        assert!(t.next(&mut c, false, &mut k, &mut v).unwrap());
        for i in (2u32..400).step_by(2) {
            t.delete(&i.to_be_bytes()).unwrap();
        }
        assert!(t.next(&mut c, false, &mut k, &mut v).unwrap());
        assert_eq!(k, 400u32.to_be_bytes());
        t.check().unwrap();
    }

    #[test]
    fn a_corrupt_page_is_reported_with_its_number() {
        let (_dir, path) = tmp("corrupt");
        BTree::create(&path).unwrap();
        let mut t = BTree::open(&path, 64).unwrap();
        for i in 0u32..5000 {
            t.insert(&i.to_be_bytes(), &[1u8; 100]).unwrap();
        }
        t.flush().unwrap();
        drop(t);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(b"torn!", 3 * PAGE_SIZE as u64 + 5000).unwrap();
        let mut t = BTree::open(&path, 64).unwrap();
        let e = t.check().unwrap_err().to_string();
        assert!(e.contains("page 3") && e.contains("checksum"), "{e}");
    }

    #[test]
    fn a_table_ten_times_the_pool_works() {
        let (_dir, path) = tmp("big");
        BTree::create(&path).unwrap();
        let mut t = BTree::open(&path, 32).unwrap(); // 512 KiB of pool
        for i in 0u32..60_000 {
            let k = (i.wrapping_mul(2_654_435_761)).to_be_bytes();
            assert!(t.insert(&k, &[i as u8; 80]).unwrap());
        }
        assert!(t.pool().pages as usize > 10 * 32);
        assert!(t.pool().cached() <= 32);
        t.check().unwrap();
        let mut v = vec![];
        assert!(t.get(&(12345u32.wrapping_mul(2_654_435_761)).to_be_bytes(), &mut v).unwrap());
        assert_eq!(v, vec![12345u32 as u8; 80]);
        assert_eq!(scan(&mut t, false).len(), 60_000);
    }
}
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
