//! A bounded page cache over one table file, with CLOCK eviction.
//!
//! Pages are checked ([`Page::verify`]) when read and sealed (checksum) when
//! written. A dirty page is written back when it is evicted or at [`Pool::flush`].
//! The pool is used under its tree's lock, so it needs no locking of its own.
//!
//! Logging: changes happen inside a mini-transaction ([`Pool::mtr_begin`] ..
//! [`Pool::mtr_commit`]). The pool keeps the before-image of every page the mtr
//! touches; at commit it logs, per page, either the bytes that changed or (for a
//! page's first change after a checkpoint, and for new pages) the whole page, all
//! in one redo record, and stamps the pages with its LSN. [`Pool::mtr_abort`] puts
//! the before-images back. Write-ahead rule: a dirty page is written only after the
//! log is durable up to the page's LSN.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::log::{REC_MTR, RedoLog};
use super::page::{Kind, PAGE_SIZE, Page, corrupt};
use crate::error::{IoContext, Result};

/// Where a tree's changes are logged.
pub struct LogLink {
    pub log: Arc<RedoLog>,
    pub tree_id: u32,
    /// LSN of the last checkpoint: a page whose LSN is below it gets a full image.
    pub checkpoint: Arc<AtomicU64>,
}

/// Page entry kinds in an MTR record.
pub const PAGE_FULL: u8 = 1;
pub const PAGE_DIFF: u8 = 2;
/// Bytes of a page that are logged (the checksum, number and LSN are not).
pub const LOGGED_FROM: usize = 16;

#[derive(Default)]
struct Mtr {
    /// Touched pages and their images before the mtr (None: a new page).
    before: Vec<(u32, Option<Box<[u8; PAGE_SIZE]>>)>,
}

struct Frame {
    no: u32,
    page: Page,
    dirty: bool,
    referenced: bool,
}

pub struct Pool {
    file: File,
    name: String,
    capacity: usize,
    frames: Vec<Frame>,
    map: HashMap<u32, usize>,
    hand: usize,
    /// Pages in the file (the next page number to append).
    pub pages: u32,
    pub reads: u64,
    pub writes: u64,
    link: Option<LogLink>,
    mtr: Option<Mtr>,
    pages_before_mtr: u32,
}

impl Pool {
    pub fn new(file: File, name: String, capacity_pages: usize) -> Result<Pool> {
        let len = file.metadata().ctx(|| format!("cannot stat '{name}'"))?.len();
        Ok(Pool {
            file,
            name,
            capacity: capacity_pages.max(8),
            frames: Vec::new(),
            map: HashMap::new(),
            hand: 0,
            pages: (len / PAGE_SIZE as u64) as u32,
            reads: 0,
            writes: 0,
            link: None,
            mtr: None,
            pages_before_mtr: 0,
        })
    }

    /// Logs every change from now on.
    pub fn set_log(&mut self, link: LogLink) {
        self.link = Some(link);
    }

    pub fn logged(&self) -> bool {
        self.link.is_some()
    }

    pub fn mtr_begin(&mut self) {
        self.mtr = Some(Mtr::default());
        self.pages_before_mtr = self.pages;
    }

    fn touch(&mut self, f: usize, fresh: bool) {
        let no = self.frames[f].no;
        if let Some(m) = self.mtr.as_mut() {
            if !m.before.iter().any(|(n, _)| *n == no) {
                let img = (!fresh).then(|| self.frames[f].page.buf.clone());
                m.before.push((no, img));
            }
        }
    }

    /// Ends the mtr: one redo record (with `extra` in front of the page images:
    /// the undo entry), pages stamped with its LSN. Returns the LSN (0 unlogged).
    pub fn mtr_commit(&mut self, trx: u64, extra: &[u8]) -> Result<u64> {
        let Some(m) = self.mtr.take() else { return Ok(0) };
        let Some(link) = &self.link else { return Ok(0) };
        if m.before.is_empty() {
            // nothing changed (an insert of a key already there): nothing to log,
            // and above all no undo entry
            return Ok(0);
        }
        let ckpt = link.checkpoint.load(Ordering::Acquire);
        let mut rec = Vec::with_capacity(64);
        rec.extend_from_slice(&link.tree_id.to_le_bytes());
        rec.extend_from_slice(&(extra.len() as u32).to_le_bytes());
        rec.extend_from_slice(extra);
        rec.extend_from_slice(&(m.before.len() as u16).to_le_bytes());
        let mut changed = !extra.is_empty();
        for (no, before) in &m.before {
            let f = self.map[no];
            let page = &self.frames[f].page;
            rec.extend_from_slice(&no.to_le_bytes());
            match before {
                Some(b) if page.lsn() >= ckpt && page.lsn() != 0 => {
                    rec.push(PAGE_DIFF);
                    let at = rec.len();
                    diff(&b[..], &page.buf[..], &mut rec);
                    changed |= rec[at..at + 2] != [0, 0];
                }
                _ => {
                    rec.push(PAGE_FULL);
                    rec.extend_from_slice(&page.buf[LOGGED_FROM..]);
                    changed = true;
                }
            }
        }
        if !changed {
            return Ok(0);
        }
        let lsn = link.log.append(REC_MTR, trx, &rec);
        for (no, _) in &m.before {
            let f = self.map[no];
            self.frames[f].page.set_lsn(lsn);
        }
        Ok(lsn)
    }

    /// Undoes the pages of a failed mtr in memory.
    pub fn mtr_abort(&mut self) {
        let Some(m) = self.mtr.take() else { return };
        for (no, before) in m.before.into_iter().rev() {
            if let Some(&f) = self.map.get(&no) {
                match before {
                    Some(b) => self.frames[f].page.buf = b,
                    None => {
                        // a page the mtr appended: forget it
                        self.map.remove(&no);
                        self.frames[f].no = u32::MAX;
                        self.frames[f].dirty = false;
                    }
                }
            }
        }
        self.pages = self.pages_before_mtr;
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A frame for page `no`, reading it if it is not cached.
    fn frame(&mut self, no: u32) -> Result<usize> {
        if let Some(&f) = self.map.get(&no) {
            self.frames[f].referenced = true;
            return Ok(f);
        }
        if no >= self.pages {
            return Err(corrupt(&self.name, no, &format!("beyond the end of the file ({} pages)", self.pages)));
        }
        let f = self.victim()?;
        let mut page = std::mem::take(&mut self.frames[f].page);
        self.file
            .read_exact_at(&mut page.buf[..], no as u64 * PAGE_SIZE as u64)
            .ctx(|| format!("cannot read page {no} of '{}'", self.name))?;
        self.reads += 1;
        if let Err(why) = page.verify(no) {
            self.frames[f].page = page;
            return Err(corrupt(&self.name, no, &why));
        }
        self.install(f, no, page, false);
        Ok(f)
    }

    fn install(&mut self, f: usize, no: u32, page: Page, dirty: bool) {
        self.frames[f] = Frame { no, page, dirty, referenced: true };
        self.map.insert(no, f);
    }

    /// A free frame: a new one while under capacity, else a CLOCK victim (written
    /// back first if dirty).
    fn victim(&mut self) -> Result<usize> {
        if self.frames.len() < self.capacity {
            self.frames.push(Frame { no: u32::MAX, page: Page::default(), dirty: false, referenced: false });
            return Ok(self.frames.len() - 1);
        }
        let mut looked = 0;
        loop {
            looked += 1;
            if looked > 2 * self.frames.len() + 1 {
                // every frame is held by the running mtr (a huge value): grow
                self.frames.push(Frame { no: u32::MAX, page: Page::default(), dirty: false, referenced: false });
                return Ok(self.frames.len() - 1);
            }
            let f = self.hand;
            self.hand = (self.hand + 1) % self.frames.len();
            if self.frames[f].no == u32::MAX {
                return Ok(f);
            }
            if self.frames[f].referenced || self.pinned(f) {
                self.frames[f].referenced = false;
                continue;
            }
            self.write_back(f)?;
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
            // write-ahead: the log first, up to this page's last change
            link.log.flush_to(self.frames[f].page.lsn() + 1)?;
        }
        let no = self.frames[f].no;
        let fr = &mut self.frames[f];
        fr.page.seal();
        self.file
            .write_all_at(&fr.page.buf[..], no as u64 * PAGE_SIZE as u64)
            .ctx(|| format!("cannot write page {no} of '{}'", self.name))?;
        fr.dirty = false;
        self.writes += 1;
        Ok(())
    }

    pub fn get(&mut self, no: u32) -> Result<&Page> {
        let f = self.frame(no)?;
        Ok(&self.frames[f].page)
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
        self.pages += 1;
        let f = self.victim()?;
        self.install(f, no, Page::new(no, kind), true);
        self.touch(f, true);
        Ok(no)
    }

    /// A page (re)initialised as `kind`, without reading it (reuse of a free page).
    pub fn reinit(&mut self, no: u32, kind: Kind) -> Result<()> {
        let f = match self.map.get(&no) {
            Some(&f) => f,
            None => {
                let f = self.victim()?;
                self.install(f, no, Page::default(), true);
                f
            }
        };
        self.touch(f, false);
        self.frames[f].page.init(no, kind);
        self.frames[f].dirty = true;
        Ok(())
    }

    /// Writes every dirty page and syncs the file.
    pub fn flush(&mut self) -> Result<()> {
        for f in 0..self.frames.len() {
            if self.frames[f].no != u32::MAX {
                self.write_back(f)?;
            }
        }
        self.file.sync_data().ctx(|| format!("cannot sync '{}'", self.name))
    }

    pub fn cached(&self) -> usize {
        self.map.len()
    }

    /// A victim must not be a page the running mtr touched (its before-image and
    /// LSN are still needed): CLOCK skips them.
    fn pinned(&self, f: usize) -> bool {
        let no = self.frames[f].no;
        self.mtr.as_ref().is_some_and(|m| m.before.iter().any(|(n, _)| *n == no))
    }
}

/// Appends the changed byte ranges of a page (from LOGGED_FROM on): u16 count, then
/// u16 offset, u16 length, bytes. Ranges closer than 8 bytes are joined.
pub fn diff(before: &[u8], after: &[u8], out: &mut Vec<u8>) {
    let count_at = out.len();
    out.extend_from_slice(&[0, 0]);
    let mut n = 0u16;
    let mut i = LOGGED_FROM;
    while i < PAGE_SIZE {
        if before[i] == after[i] {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i + 1;
        let mut j = end;
        while j < PAGE_SIZE && j < end + 8 {
            if before[j] != after[j] {
                end = j + 1;
            }
            j += 1;
        }
        out.extend_from_slice(&(start as u16).to_le_bytes());
        out.extend_from_slice(&((end - start) as u16).to_le_bytes());
        out.extend_from_slice(&after[start..end]);
        n += 1;
        i = end;
    }
    out[count_at..count_at + 2].copy_from_slice(&n.to_le_bytes());
}

/// Applies what [`diff`] wrote to `page`; returns the bytes it used, None if the
/// entry is malformed.
pub fn apply_diff(page: &mut [u8], rec: &[u8]) -> Option<usize> {
    let n = u16::from_le_bytes(rec.get(0..2)?.try_into().ok()?) as usize;
    let mut at = 2;
    for _ in 0..n {
        let off = u16::from_le_bytes(rec.get(at..at + 2)?.try_into().ok()?) as usize;
        let len = u16::from_le_bytes(rec.get(at + 2..at + 4)?.try_into().ok()?) as usize;
        let bytes = rec.get(at + 4..at + 4 + len)?;
        page.get_mut(off..off + len)?.copy_from_slice(bytes);
        at += 4 + len;
    }
    Some(at)
}
