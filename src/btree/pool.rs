//! A bounded page cache over one table file, with CLOCK eviction.
//!
//! Pages are checked ([`Page::verify`]) when read and sealed (checksum) when
//! written. A dirty page is written back when it is evicted or at [`Pool::flush`].
//! The pool is used under its tree's lock, so it needs no locking of its own.
//!
//! Write-ahead logging is not wired in yet: when the redo log arrives, eviction of
//! a dirty page must first make the log durable up to the page's LSN.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use super::page::{Kind, PAGE_SIZE, Page, corrupt};
use crate::error::{IoContext, Result};

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
        })
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
        loop {
            let f = self.hand;
            self.hand = (self.hand + 1) % self.frames.len();
            if self.frames[f].referenced {
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
        self.frames[f].dirty = true;
        Ok(&mut self.frames[f].page)
    }

    /// Appends a new page to the file.
    pub fn allocate(&mut self, kind: Kind) -> Result<u32> {
        let no = self.pages;
        self.pages += 1;
        let f = self.victim()?;
        self.install(f, no, Page::new(no, kind), true);
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
}
