//! A page cache over one table file, with CLOCK eviction, under an engine-wide
//! page budget ([`Budget`], `rust_buffer_pool_size`) that every tree's pool shares.
//!
//! Pages are checked ([`Page::verify`]) when read and sealed (checksum) when
//! written. A dirty page is written back when it is evicted or at [`Pool::flush`].
//! The pool is used under its tree's lock (a `RwLock`), so it needs no locking of
//! its own: everything that changes the pool (a page read in, an eviction, a write
//! back, a change) takes `&mut self`, under the write lock. Readers holding the read
//! lock share `&Pool` and see only cached pages ([`Pool::get_cached`]); the one
//! thing they change is a frame's CLOCK reference bit, an atomic. A reader whose
//! page is not cached gives up and does its read again under the write lock (see
//! `tree::read`).
//!
//! Logging: changes happen inside a mini-transaction ([`Pool::mtr_begin`] ..
//! [`Pool::mtr_commit`]). Every page the mtr touches notes the byte ranges its
//! writes cover (and their old bytes); at commit the pool logs, per page, those
//! ranges (from zeros for a page the mtr initialised) or, for a page's first change
//! after a checkpoint, the whole page, all in one redo record, and stamps the pages
//! with its LSN. [`Pool::mtr_abort`] puts the old bytes back. Write-ahead rule: a
//! dirty page is written only after the log is durable up to the page's LSN.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use super::wal::log::{REC_MTR, RedoLog};
use super::wal::records::{self, PAGE_DIFF, PAGE_NEW};
use super::page::{Kind, PAGE_SIZE, Page, corrupt};
use crate::error::{IoContext, Result};
use crate::metrics;

/// Every pool's frames count against one budget. A pool that needs a frame when the
/// budget is spent first asks other pools to give some back (each asked without
/// waiting for its tree's lock: a busy tree is skipped), then evicts one of its own.
/// So an idle table's cached pages make way for a busy one's, and the pages cached
/// by all pools together stay within the budget, plus at most [`MIN_FRAMES`] per
/// open tree file (a pool always keeps that many, so a tree can always work).
pub struct Budget {
    capacity: usize,
    used: AtomicUsize,
    members: parking_lot::Mutex<Vec<Weak<dyn Shrink>>>,
    next: AtomicUsize,
}

/// How far ahead of the file's end [`Pool::reserve`] allocates disk blocks (64 pages).
const RESERVE_AHEAD: u64 = 1 << 20;

/// Frames a pool may always have, whatever the budget.
pub const MIN_FRAMES: usize = 8;
/// Frames asked of another pool at a time.
const RECLAIM_BATCH: usize = 32;

/// A pool (behind its tree's lock) that can be asked to give frames back.
pub trait Shrink: Send + Sync {
    /// Frees up to `want` frames if the tree's lock is free right now; returns how
    /// many it freed.
    fn try_shrink(&self, want: usize) -> usize;
}

impl Budget {
    pub fn new(capacity_pages: usize) -> Arc<Budget> {
        Arc::new(Budget {
            capacity: capacity_pages.max(MIN_FRAMES),
            used: AtomicUsize::new(0),
            members: parking_lot::Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
        })
    }

    /// Frames held by all pools.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Makes a pool one that others may ask for frames.
    pub fn register(&self, member: Weak<dyn Shrink>) {
        let mut m = self.members.lock();
        m.retain(|w| w.strong_count() > 0);
        m.push(member);
    }

    fn try_take(&self) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |u| (u < self.capacity).then_some(u + 1))
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// Asks other pools, in turn, for frames; `me` (the caller's own tree) is
    /// skipped: its lock is held by the caller.
    fn reclaim(&self, me: usize) -> usize {
        let members: Vec<Arc<dyn Shrink>> = self.members.lock().iter().filter_map(Weak::upgrade).collect();
        if members.is_empty() {
            return 0;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..members.len() {
            let m = &members[(start + i) % members.len()];
            if Arc::as_ptr(m) as *const () as usize == me {
                continue;
            }
            let got = m.try_shrink(RECLAIM_BATCH);
            if got > 0 {
                return got;
            }
        }
        0
    }
}


/// The pool's page map is looked up for every page access: page numbers are hashed
/// with one multiplication (SipHash's resistance to chosen keys is not needed for
/// numbers the tree itself hands out).
#[derive(Default, Clone, Copy)]
pub struct PageHasher(u64);

impl std::hash::Hasher for PageHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (self.0 ^ v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type PageMap = HashMap<u32, usize, std::hash::BuildHasherDefault<PageHasher>>;

/// Where a tree's changes are logged.
pub struct LogLink {
    pub log: Arc<RedoLog>,
    pub tree_id: u32,
    /// LSN of the last checkpoint: a page whose LSN is below it gets a full image.
    pub checkpoint: Arc<AtomicU64>,
    /// Trees closed with dirty pages they could not write (see [`Pool::mark_lost`]).
    pub lost: Arc<parking_lot::Mutex<std::collections::HashSet<u32>>>,
    /// The check that every checkpoint lists the trees written after it (see
    /// [`LinkCheck`]).
    pub check: Arc<LinkCheck>,
    /// The last checkpoint whose control file is written.
    pub completed: Arc<Completed>,
}

/// The last checkpoint whose control file is written: its number (checkpoints
/// are numbered from 1 as the engine runs: two may have one LSN) and its LSN.
/// The LSN is stored before the number and read after it. A checkpoint that
/// fails leaves its number unused.
#[derive(Debug, Default)]
pub struct Completed {
    pub seq: AtomicU64,
    pub lsn: AtomicU64,
    /// The number the next checkpoint takes.
    pub next: AtomicU64,
}

/// An invariant of checkpoints, checked at every logged change (three atomic
/// loads): a tree whose TREE record is before the last completed checkpoint was
/// listed by it (its control file names the tree's id), else a recovery from
/// that checkpoint could not place the change (it would skip it, and say so). A
/// breach is said once per tree in the server's error log, with the stack of the
/// write, and counted ([`crate::metrics::CHECKPOINT_BREACHES`]): the crash loop's
/// cycle-770 failure (docs/crash-safety.md) showed a breach only at the recovery
/// after it; this shows who wrote.
#[derive(Debug, Default)]
pub struct LinkCheck {
    /// The LSN of the tree's TREE record.
    pub tree_lsn: u64,
    /// The number of the last checkpoint that listed the tree (see [`Completed`]).
    pub listed_at: AtomicU64,
    pub reported: std::sync::atomic::AtomicBool,
}

/// A page's whole image leaves out a free middle at least this long (as a
/// PAGE_NEW entry of the parts around it): below, the two ranges' headers and
/// the record's other bookkeeping are not worth it.
const MIN_GAP_LEFT_OUT: usize = 64;
pub use super::page::LOGGED_FROM;

#[derive(Default)]
struct Mtr {
    /// Touched pages, and whether the mtr appended them to the file.
    touched: Vec<(u32, bool)>,
}

struct Frame {
    no: u32,
    page: Page,
    dirty: bool,
    /// CLOCK's reference bit: set by every access, readers' included (they share
    /// the pool, hence an atomic), cleared by the hand.
    referenced: AtomicBool,
}

impl Frame {
    fn empty() -> Frame {
        Frame { no: u32::MAX, page: Page::default(), dirty: false, referenced: AtomicBool::new(false) }
    }

    /// Marks the frame used; a bit already set is not written again (readers on
    /// other cores would otherwise keep taking the cache line from each other).
    fn reference(&self) {
        if !self.referenced.load(Ordering::Relaxed) {
            self.referenced.store(true, Ordering::Relaxed);
        }
    }
}

pub struct Pool {
    file: File,
    name: String,
    budget: Arc<Budget>,
    /// The tree this pool belongs to, as registered with the budget (skipped when
    /// this pool asks the others for frames).
    owner: usize,
    frames: Vec<Frame>,
    map: PageMap,
    hand: usize,
    /// Pages in the file (the next page number to append).
    pub pages: u32,
    /// Bytes of the file with disk blocks allocated (the file may be shorter:
    /// blocks are reserved ahead of its end, [`Pool::reserve`]): pages below it
    /// can be written without allocating space.
    file_len: u64,
    pub reads: u64,
    pub writes: u64,
    /// `writes` when a sync of the file last began (that then succeeded): the
    /// pages written since (an eviction writes without syncing) are not yet
    /// durable.
    synced_writes: u64,
    /// This pool among all (a tree's pool is replaced by REPAIR: a sync of the
    /// old one's file says nothing of the new one's writes).
    serial: u64,
    link: Option<LogLink>,
    mtr: Option<Mtr>,
    pages_before_mtr: u32,
    /// The redo record being built, a page's ranges, the frames it logs (kept to
    /// reuse their allocations).
    rec: Vec<u8>,
    ranges: Vec<(usize, usize)>,
    logged: Vec<usize>,
}

impl Pool {
    /// A pool with a budget of its own (tests, tools).
    pub fn new(file: File, name: String, capacity_pages: usize) -> Result<Pool> {
        Self::new_in(file, name, Budget::new(capacity_pages))
    }

    /// A pool drawing on a shared budget.
    pub fn new_in(file: File, name: String, budget: Arc<Budget>) -> Result<Pool> {
        let len = file.metadata().ctx(|| format!("cannot stat '{name}'"))?.len();
        Ok(Pool {
            file,
            name,
            budget,
            owner: 0,
            frames: Vec::new(),
            map: PageMap::default(),
            hand: 0,
            pages: (len / PAGE_SIZE as u64) as u32,
            file_len: len,
            reads: 0,
            writes: 0,
            synced_writes: 0,
            serial: {
                static NEXT: AtomicU64 = AtomicU64::new(1);
                NEXT.fetch_add(1, Ordering::Relaxed)
            },
            link: None,
            mtr: None,
            pages_before_mtr: 0,
            rec: Vec::new(),
            ranges: Vec::new(),
            logged: Vec::new(),
        })
    }

    /// Sets the tree this pool belongs to (see [`Budget::register`]).
    pub fn set_owner(&mut self, owner: usize) {
        self.owner = owner;
    }

    /// Frames in the pool (each holds one page buffer).
    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// Gives up to `want` frames back to the budget, from the end of the frame
    /// list (writing dirty pages first); only between mini-transactions. Returns how
    /// many it freed; a page that cannot be written stays.
    pub fn shrink(&mut self, want: usize) -> usize {
        if self.mtr.is_some() {
            return 0;
        }
        let mut freed = 0;
        while freed < want && self.frames.len() > MIN_FRAMES {
            let f = self.frames.len() - 1;
            if self.frames[f].no != u32::MAX {
                if self.write_back(f).is_err() {
                    break;
                }
                let no = self.frames[f].no;
                self.map.remove(&no);
            }
            self.frames.pop();
            freed += 1;
        }
        if self.hand >= self.frames.len() {
            self.hand = 0;
        }
        self.budget.give_back(freed);
        freed
    }

    /// Records that this pool is going away with changes it could not write: they
    /// exist only in the redo log now, so no checkpoint may pass them and the table
    /// must not be opened again from its stale file until recovery (a restart).
    pub fn mark_lost(&self) {
        if let Some(link) = &self.link {
            link.lost.lock().insert(link.tree_id);
        }
    }

    /// Logs every change from now on.
    pub fn set_log(&mut self, link: LogLink) {
        self.link = Some(link);
    }

    /// Takes the tree's link to the redo log away (REPAIR: it goes to the
    /// tree that replaces this one's file, see [`crate::btree::engine::Engine::replace_tree_file`]).
    pub fn take_log(&mut self) -> Option<LogLink> {
        self.link.take()
    }

    /// The file's name in messages (REPAIR: the file was renamed into place).
    pub fn set_name(&mut self, name: String) {
        self.name = name;
    }

    pub fn logged(&self) -> bool {
        self.link.is_some()
    }

    /// The checkpoint check of its link (see [`LinkCheck`]).
    pub fn link_check(&self) -> Option<&Arc<LinkCheck>> {
        self.link.as_ref().map(|l| &l.check)
    }

    /// The tree id its changes are logged under.
    pub fn tree_id(&self) -> Option<u32> {
        self.link.as_ref().map(|l| l.tree_id)
    }

    /// TRUNCATE, in memory: every cached page is forgotten unwritten (the file's
    /// pages are void from the RESET record at `lsn` on) and the file is taken to
    /// hold only `fresh` (pages 0..), dirty and stamped with `lsn`, so that they
    /// reach the file only after the log is durable past that record. The file
    /// itself is cut by [`Pool::truncate_file`]. Only between mini-transactions.
    pub fn reset_to(&mut self, fresh: Vec<Page>, lsn: u64) {
        debug_assert!(self.mtr.is_none());
        self.map.clear();
        for fr in &mut self.frames {
            *fr = Frame { page: std::mem::take(&mut fr.page), ..Frame::empty() };
        }
        self.pages = 0;
        for (no, mut page) in fresh.into_iter().enumerate() {
            let no = no as u32;
            debug_assert_eq!(page.no(), no);
            page.set_lsn(lsn);
            let f = match self.frames.iter().position(|fr| fr.no == u32::MAX) {
                Some(f) => f,
                None => self.grow(),
            };
            self.install(f, no, page, true);
            self.pages = no + 1;
        }
        self.hand = 0;
    }

    /// TRUNCATE, on disk (once the RESET record is durable): the pages the pool
    /// holds are written, the file is cut to them, and synced (its new length
    /// too). A crash at any point here is recovered by replaying the RESET record.
    pub fn truncate_file(&mut self) -> Result<()> {
        for f in 0..self.frames.len() {
            if self.frames[f].no != u32::MAX {
                self.write_back(f)?;
            }
        }
        super::crash_point()?;
        let len = self.pages as u64 * PAGE_SIZE as u64;
        self.file.set_len(len).ctx(|| format!("cannot truncate '{}'", self.name))?;
        self.file_len = len;
        super::crash_point()?;
        self.file.sync_all().ctx(|| format!("cannot sync '{}'", self.name))?;
        self.synced_writes = self.writes;
        Ok(())
    }

    pub fn mtr_begin(&mut self) {
        self.mtr = Some(Mtr::default());
        self.pages_before_mtr = self.pages;
    }

    fn touch(&mut self, f: usize, appended: bool) {
        if let Some(m) = self.mtr.as_mut() {
            let page = &mut self.frames[f].page;
            if !page.tracking() {
                page.track_begin(appended);
                m.touched.push((self.frames[f].no, appended));
            }
        }
    }

    /// Ends the mtr: one redo record (with `extra` in front of the page changes:
    /// the undo entry), pages stamped with its LSN. Returns the LSN (0 unlogged).
    /// Each page's changes are the byte ranges its writes noted: no before-image
    /// is kept or compared.
    pub fn mtr_commit(&mut self, trx: u64, extra: &[u8]) -> Result<u64> {
        let Some(m) = self.mtr.take() else { return Ok(0) };
        let Some(link) = &self.link else {
            for (no, _) in &m.touched {
                let f = self.map[no];
                self.frames[f].page.track_end();
            }
            return Ok(0);
        };
        let log = link.log.clone();
        let (tree_id, checkpoint) = (link.tree_id, link.checkpoint.clone());
        let mut rec = std::mem::take(&mut self.rec);
        let mut ranges = std::mem::take(&mut self.ranges);
        let mut logged = std::mem::take(&mut self.logged);
        // built again if a checkpoint begins meanwhile (its first changes to a page
        // must be whole images)
        let lsn = loop {
            let ckpt = checkpoint.load(Ordering::Acquire);
            let count_at = records::mtr_begin(&mut rec, tree_id, extra);
            let mut pages = 0u16;
            logged.clear();
            for &(no, _) in &m.touched {
                let f = self.map[&no];
                let page = &self.frames[f].page;
                page.changed_ranges_into(LOGGED_FROM, &mut ranges);
                let fresh = page.track_fresh();
                if ranges.is_empty() && !fresh {
                    continue;
                }
                logged.push(f);
                pages += 1;
                if !fresh && (page.lsn() < ckpt || page.lsn() == 0) {
                    // the first change since the checkpoint: the page as it is now,
                    // so that redo never builds on a page torn on disk; a tree
                    // page's free middle is left out (rebuilt as zeros)
                    match page.free_middle() {
                        Some(gap) if gap.len() >= MIN_GAP_LEFT_OUT => {
                            let parts = [LOGGED_FROM..gap.start, gap.end..PAGE_SIZE];
                            let parts = parts.iter().filter(|r| !r.is_empty());
                            let n = parts.clone().count();
                            records::mtr_page_ranges(&mut rec, no, PAGE_NEW, page.bytes(), n, parts.map(|r| (r.start, r.len())));
                        }
                        _ => records::mtr_page_full(&mut rec, no, page.bytes()),
                    }
                } else {
                    let kind = if fresh { PAGE_NEW } else { PAGE_DIFF };
                    records::mtr_page_ranges(&mut rec, no, kind, page.bytes(), ranges.len(), ranges.iter().copied());
                }
            }
            if pages == 0 {
                // nothing changed (an insert of a key already there): nothing to
                // log, and above all no undo entry
                break 0;
            }
            records::mtr_end(&mut rec, count_at, pages);
            if let Some(lsn) = log.append_unless_checkpoint(REC_MTR, trx, &rec, &checkpoint, ckpt) {
                break lsn;
            }
        };
        if lsn != 0 {
            if let Some(link) = &self.link {
                let seq = link.completed.seq.load(Ordering::Acquire);
                let done = link.completed.lsn.load(Ordering::Acquire);
                let c = &link.check;
                let listed = c.listed_at.load(Ordering::Acquire);
                if c.tree_lsn < done && listed < seq && !c.reported.swap(true, Ordering::Relaxed) {
                    crate::metrics::CHECKPOINT_BREACHES.inc();
                    eprintln!(
                        "[ERROR] RUST: tree id {} ('{}', TREE record at LSN {}) was written at LSN {lsn} after checkpoint {seq} (LSN {done}), which did not list it (last listed by checkpoint {listed}); a recovery from that checkpoint would skip this change. Written from: {}",
                        link.tree_id,
                        self.name,
                        c.tree_lsn,
                        std::backtrace::Backtrace::force_capture()
                    );
                }
            }
            for &f in &logged {
                self.frames[f].page.set_lsn(lsn);
            }
        }
        for (no, _) in &m.touched {
            let f = self.map[no];
            self.frames[f].page.track_end();
        }
        self.rec = rec;
        self.ranges = ranges;
        self.logged = logged;
        Ok(lsn)
    }

    /// Undoes the pages of a failed mtr in memory.
    pub fn mtr_abort(&mut self) {
        let Some(m) = self.mtr.take() else { return };
        for (no, appended) in m.touched.into_iter().rev() {
            if let Some(&f) = self.map.get(&no) {
                if appended {
                    // a page the mtr appended: forget it
                    self.frames[f].page.track_end();
                    self.map.remove(&no);
                    self.frames[f].no = u32::MAX;
                    self.frames[f].dirty = false;
                } else {
                    self.frames[f].page.track_undo();
                }
            }
        }
        self.pages = self.pages_before_mtr;
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Pages in the file (allocated ones included).
    pub fn page_count(&self) -> u32 {
        self.pages
    }

    /// A frame for page `no`, reading it if it is not cached.
    fn frame(&mut self, no: u32) -> Result<usize> {
        metrics::POOL_READ_REQUESTS.inc();
        if let Some(&f) = self.map.get(&no) {
            self.frames[f].reference();
            return Ok(f);
        }
        if no >= self.pages {
            return Err(corrupt(&self.name, no, &format!("beyond the end of the file ({} pages)", self.pages)));
        }
        let f = self.victim()?;
        let mut page = std::mem::take(&mut self.frames[f].page);
        self.file
            .read_exact_at(&mut page.raw_mut()[..], no as u64 * PAGE_SIZE as u64)
            .ctx(|| format!("cannot read page {no} of '{}'", self.name))?;
        self.reads += 1;
        metrics::POOL_READS.inc();
        if let Err(why) = page.verify(no) {
            self.frames[f].page = page;
            return Err(corrupt(&self.name, no, &why));
        }
        self.install(f, no, page, false);
        Ok(f)
    }

    fn install(&mut self, f: usize, no: u32, page: Page, dirty: bool) {
        self.frames[f] = Frame { no, page, dirty, referenced: AtomicBool::new(true) };
        self.map.insert(no, f);
    }

    /// A free frame: a new one while the budget allows (or another pool gives one
    /// back, or this pool has fewer than MIN_FRAMES), else a CLOCK victim of its own
    /// (written back first if dirty).
    fn victim(&mut self) -> Result<usize> {
        let new_frame = self.budget.try_take()
            || (self.budget.reclaim(self.owner) > 0 && self.budget.try_take())
            || (self.frames.len() < MIN_FRAMES && {
                self.budget.used.fetch_add(1, Ordering::AcqRel);
                true
            });
        if new_frame {
            self.frames.push(Frame::empty());
            return Ok(self.frames.len() - 1);
        }
        let mut looked = 0;
        loop {
            looked += 1;
            if looked > 2 * self.frames.len() + 1 {
                // every frame is held by the running mtr (a huge value): grow
                return Ok(self.grow());
            }
            let f = self.hand;
            self.hand = (self.hand + 1) % self.frames.len();
            if self.frames[f].no == u32::MAX {
                return Ok(f);
            }
            if *self.frames[f].referenced.get_mut() || self.pinned(f) {
                *self.frames[f].referenced.get_mut() = false;
                continue;
            }
            self.write_back(f)?;
            metrics::POOL_EVICTIONS.inc();
            let no = self.frames[f].no;
            self.map.remove(&no);
            self.frames[f].no = u32::MAX;
            return Ok(f);
        }
    }

    fn write_back(&mut self, f: usize) -> Result<()> {
        if !self.frames[f].dirty {
            return Ok(());
        }
        if let Some(link) = &self.link {
            super::write_crash_point()?;
            // write-ahead: the log first, up to this page's last change
            link.log.flush_to(self.frames[f].page.lsn() + 1)?;
            super::write_crash_point()?;
        }
        let no = self.frames[f].no;
        let fr = &mut self.frames[f];
        fr.page.seal();
        self.file
            .write_all_at(&fr.page.bytes()[..], no as u64 * PAGE_SIZE as u64)
            .ctx(|| format!("cannot write page {no} of '{}'", self.name))?;
        fr.dirty = false;
        self.file_len = self.file_len.max((no as u64 + 1) * PAGE_SIZE as u64);
        self.writes += 1;
        metrics::POOL_WRITES.inc();
        Ok(())
    }

    pub fn get(&mut self, no: u32) -> Result<&Page> {
        let f = self.frame(no)?;
        Ok(&self.frames[f].page)
    }

    /// The page if it is cached (None: only [`Pool::get`] can read it in), for
    /// readers sharing the pool under the tree's read lock.
    pub fn get_cached(&self, no: u32) -> Option<&Page> {
        let &f = self.map.get(&no)?;
        let fr = &self.frames[f];
        fr.reference();
        Some(&fr.page)
    }

    /// The page, marked dirty.
    pub fn get_mut(&mut self, no: u32) -> Result<&mut Page> {
        let f = self.frame(no)?;
        self.touch(f, false);
        self.frames[f].dirty = true;
        Ok(&mut self.frames[f].page)
    }

    /// Appends a new page to the file.
    pub fn allocate(&mut self, kind: Kind) -> Result<u32> {
        let no = self.pages;
        self.reserve(no)?;
        self.pages += 1;
        let f = self.victim()?;
        // the frame's buffer is reused: init clears it
        let fr = &mut self.frames[f];
        fr.page.init(no, kind);
        (fr.no, fr.dirty) = (no, true);
        *fr.referenced.get_mut() = true;
        self.map.insert(no, f);
        self.touch(f, true);
        Ok(no)
    }

    /// Makes the file long enough to hold page `no`, with its blocks allocated, so
    /// that writing the page back later (at eviction or a checkpoint, long after the
    /// statement) cannot fail for want of space: a full disk is the error of the
    /// statement that needed the page, which is rolled back, as InnoDB extends its
    /// files inside the mini-transaction. (Copy-on-write file systems may still
    /// refuse a later write; a checkpoint then fails and keeps the log.)
    ///
    /// The blocks are reserved [`RESERVE_AHEAD`] at a time, past the file's end
    /// (`FALLOC_FL_KEEP_SIZE`): one system call per 64 new pages rather than one
    /// per page, and the file's length still ends at its last written page (the
    /// page count is read from it at the next start). A disk too full for the
    /// whole step gets a try for the one page.
    fn reserve(&mut self, no: u32) -> Result<()> {
        let end = (no as u64 + 1) * PAGE_SIZE as u64;
        if end <= self.file_len {
            return Ok(());
        }
        let mut r = self.fallocate(end.max(self.file_len + RESERVE_AHEAD));
        if r == libc::ENOSPC {
            r = self.fallocate(end);
        }
        match r {
            0 => {}
            // a file system without fallocate: the write-back extends the file
            libc::EOPNOTSUPP | libc::EINVAL => {}
            e => {
                return Err(crate::error::Error::io(
                    format!("cannot extend '{}' to page {no}", self.name),
                    std::io::Error::from_raw_os_error(e),
                ));
            }
        }
        Ok(())
    }

    /// Allocates the file's blocks up to `end` without changing its length;
    /// returns 0 or the error number.
    fn fallocate(&mut self, end: u64) -> i32 {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain system call on a file descriptor this pool owns.
        let r = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_KEEP_SIZE,
                self.file_len as libc::off_t,
                (end - self.file_len) as libc::off_t,
            )
        };
        if r == 0 {
            self.file_len = end;
            0
        } else {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
        }
    }

    /// A page (re)initialised as `kind`, without reading it (reuse of a free page).
    pub fn reinit(&mut self, no: u32, kind: Kind) -> Result<()> {
        // read it if it is not cached: an aborted mtr puts its old bytes back
        let f = self.frame(no)?;
        self.touch(f, false);
        self.frames[f].page.init(no, kind);
        self.frames[f].dirty = true;
        Ok(())
    }

    /// Writes every dirty page and syncs the file. A failed sync marks the tree
    /// lost ([`Pool::mark_lost`]): the kernel may have dropped the pages it could
    /// not write while counting them clean, so no later sync can be trusted to
    /// have them; the redo log is their only sure copy until a restart.
    pub fn flush(&mut self) -> Result<()> {
        for f in 0..self.frames.len() {
            if self.frames[f].no != u32::MAX {
                self.write_back(f)?;
            }
        }
        self.file.sync_data().map_err(|e| {
            self.mark_lost();
            e
        }).ctx(|| format!("cannot sync '{}'", self.name))?;
        self.synced_writes = self.writes;
        Ok(())
    }

    /// A sync of the file of pool `serial` that began when its `writes` was
    /// `upto` succeeded (a checkpoint syncs a dup of the file without holding
    /// the tree, which REPAIR may give a new pool meanwhile).
    pub fn mark_synced(&mut self, serial: u64, upto: u64) {
        if serial == self.serial {
            self.synced_writes = self.synced_writes.max(upto);
        }
    }

    /// This pool's number among all (see [`Pool::mark_synced`]).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Writes dirty pages whose LSN is below `below` from frame `from` on, at most
    /// `max` of them; returns the frame to go on from (the number of frames when
    /// every one was looked at). A checkpoint flushes a tree this way, a slice at a
    /// time, so readers and writers of the tree get in between. A page changed since
    /// the checkpoint began (LSN at or above it) is skipped: its first change since
    /// then was logged whole, so the checkpoint does not need it, and writing it
    /// would first force the log to disk up to that change.
    pub fn flush_some(&mut self, from: usize, max: usize, below: u64) -> Result<usize> {
        let mut written = 0;
        let mut f = from;
        while f < self.frames.len() && written < max {
            let fr = &self.frames[f];
            if fr.no != u32::MAX && fr.dirty && fr.page.lsn() < below {
                self.write_back(f)?;
                written += 1;
            }
            f += 1;
        }
        Ok(f)
    }

    /// A handle to sync the file with, outside the tree's lock.
    pub fn file_handle(&self) -> Result<File> {
        self.file.try_clone().ctx(|| format!("cannot dup '{}'", self.name))
    }

    /// No page waits to be written, nor a written page for a sync (a tree let
    /// go of is not written by any later checkpoint: what it wrote must be
    /// durable first).
    pub fn is_clean(&self) -> bool {
        self.synced_writes == self.writes && self.frames.iter().all(|f| !f.dirty || f.no == u32::MAX)
    }

    pub fn cached(&self) -> usize {
        self.map.len()
    }

    /// Cached pages changed and not yet written.
    pub fn dirty(&self) -> usize {
        self.frames.iter().filter(|f| f.dirty && f.no != u32::MAX).count()
    }

    /// A victim must not be a page the running mtr touched (its before-image and
    /// LSN are still needed): CLOCK skips them.
    fn pinned(&self, f: usize) -> bool {
        self.frames[f].page.tracking()
    }

    /// One more frame, beyond the budget (counted in it all the same).
    fn grow(&mut self) -> usize {
        self.budget.used.fetch_add(1, Ordering::AcqRel);
        self.frames.push(Frame::empty());
        self.frames.len() - 1
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.budget.give_back(self.frames.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::os::unix::fs::MetadataExt;

    /// New pages get their disk blocks ahead of the file's end, a step at a time,
    /// while the file's length ends at its last written page: the page count read
    /// back from that length at the next open is the pages written.
    #[test]
    fn blocks_are_reserved_ahead_and_the_length_counts_written_pages() {
        let d = crate::testutil::dir("pool-reserve", 0);
        let p = d.join("t.rbt");
        let open = || OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&p).unwrap();
        let mut pool = Pool::new(open(), "t".into(), 1000).unwrap();
        for i in 0..10u32 {
            assert_eq!(pool.allocate(Kind::Leaf).unwrap(), i);
        }
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.len(), 0, "nothing written yet");
        if pool.file_len > 0 {
            // fallocate worked here: one step covers the ten pages, and more
            assert_eq!(pool.file_len, RESERVE_AHEAD);
            assert!(m.blocks() * 512 >= RESERVE_AHEAD, "{} blocks", m.blocks());
        }
        pool.flush().unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 10 * PAGE_SIZE as u64);
        drop(pool);
        let mut pool = Pool::new(open(), "t".into(), 1000).unwrap();
        assert_eq!(pool.pages, 10);
        for i in 0..10u32 {
            pool.get(i).unwrap();
        }
    }
}
