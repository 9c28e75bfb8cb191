//! Reading a tree: [`Reader`] (with the tree to itself, or shared with other
//! readers under its read lock on the cached pages: [`read`]), lookups, and
//! [`Cursor`] seeks and steps in both directions. Uses the buffer pool and the
//! page format.

use super::*;

/// Where a cursor stands.
#[derive(Clone, Debug, Default)]
pub struct Cursor {
    pub(super) leaf: u32,
    pub(super) slot: usize,
    pub(super) version: u64,
    /// How to find the place again after a change: from the key last returned
    /// (or, before the first, from where the seek started), kept in `key`.
    pub(super) resume: Resume,
    pub(super) key: Vec<u8>,
    pub(super) valid: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Resume {
    /// From the edge of the tree (a seek without bound).
    #[default]
    Edge,
    /// From `key` on (a seek from it, inclusive).
    From,
    /// After `key` (the last key returned, or an exclusive seek bound).
    After,
}

impl BTree {
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
    pub(super) fn get(&mut self, no: u32) -> Result<&Page> {
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

    pub(super) fn name(&self) -> &str {
        match self {
            Pages::Own(p) => p.name(),
            Pages::Shared { pool, .. } => pool.name(),
        }
    }

    pub(super) fn count(&self) -> u32 {
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

pub(super) static RETRIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Shared reads that missed a page and were done again under the write lock,
/// since the engine started (all trees).
pub fn shared_read_retries() -> u64 {
    RETRIES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs a read of a shared tree under its read lock, beside other readers, when
/// every page it needs is cached; else (a page must be read from the file, which
/// may evict another) once more under the write lock. `f` must be repeatable: a
/// read that missed a page left nothing half done (see [`Reader`]).
pub fn read<T>(t: &Latch<BTree>, mut f: impl FnMut(&mut Reader<'_>) -> Result<T>) -> Result<T> {
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
    pub(super) fn find_leaf(&mut self, key: &[u8]) -> Result<u32> {
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

    pub(super) fn load_value(&mut self, v: &Val, out: &mut Vec<u8>) -> Result<()> {
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
    pub(super) fn place(&mut self, from: Bound<&[u8]>, descending: bool) -> Result<(u32, usize)> {
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
    pub(super) fn place_in_leaf(&mut self, leaf: u32, slot: usize, from: Bound<&[u8]>, descending: bool) -> Result<Option<(u32, usize)>> {
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
    pub(super) fn edge(&mut self, last: bool) -> Result<(u32, usize)> {
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
                p.prefetch(if descending { c.slot.wrapping_sub(1) } else { c.slot + 1 });
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

/// A cursor's slot in a leaf from a search of its bound there (`i`: the first
/// slot >= the probe, `eq`: the probe is at `i`): ascending, the first record
/// within the bound; descending, the last one (may be "before slot 0", which
/// wraps: the step then goes to the previous leaf).
pub(super) fn slot_from(i: usize, eq: bool, from: Bound<&[u8]>, descending: bool) -> usize {
    if !descending {
        if eq && matches!(from, Bound::Excluded(_)) { i + 1 } else { i }
    } else {
        // last slot <= probe (or < probe)
        let take_eq = eq && matches!(from, Bound::Included(_));
        if take_eq { i } else { i.wrapping_sub(1) }
    }
}
