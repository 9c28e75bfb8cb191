//! Fixed-size slotted pages (spec: `docs/btree-format.md`).
//!
//! ```text
//! 0   u32 CRC-32 of bytes 4..PAGE_SIZE     16  u8  kind        20  u16 free_lo
//! 4   u32 page number                      17  u8  version     22  u16 free_hi
//! 8   u64 page LSN                         18  u16 slots       24  u32 link_a
//!                                                              28  u32 link_b
//! 32  slot array: u16 record offsets, in key order, growing up
//! ... free space ...
//! free_hi..PAGE_SIZE: records, growing down
//! ```
//! Leaf record: `u16 key length, u32 value length (top bit: overflow), key, value`;
//! an overflowed value is `u32 total length, u32 first overflow page`.
//! Internal record: `u16 key length, u32 child, key`; link_a is the leftmost child.
//! Leaf links: link_a = right sibling, link_b = left sibling (0 = none).

use crate::error::{Error, Result};

pub const PAGE_SIZE: usize = 16 * 1024;
pub const HEADER: usize = 32;
pub const PAGE_VERSION: u8 = 1;
pub const NONE: u32 = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Free = 0,
    Meta = 1,
    Leaf = 2,
    Internal = 3,
    Overflow = 4,
}

impl Kind {
    fn from(v: u8) -> Option<Kind> {
        Some(match v {
            0 => Kind::Free,
            1 => Kind::Meta,
            2 => Kind::Leaf,
            3 => Kind::Internal,
            4 => Kind::Overflow,
            _ => return None,
        })
    }
}

/// Value stored in a leaf record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val<'a> {
    Inline(&'a [u8]),
    Overflow { len: u32, first: u32 },
}

pub const OVERFLOW_BIT: u32 = 1 << 31;
/// Bytes of a page that are logged (the checksum, number and LSN are not).
pub const LOGGED_FROM: usize = 16;

pub struct Page {
    buf: Box<[u8; PAGE_SIZE]>,
    track: Track,
}

/// What a mini-transaction changed in a page, noted by every write as it is made
/// (the redo record logs these ranges; no before-image is diffed).
#[derive(Default)]
struct Track {
    on: bool,
    /// Redo starts from a zeroed page (the page was initialised in this mtr):
    /// `ranges` then cover everything written since.
    fresh: bool,
    /// Byte ranges written (offset, length), in the order written.
    ranges: Vec<(u16, u16)>,
    /// For an abort: the ranges' old bytes, in the same order...
    old: Vec<u8>,
    /// ...or the whole page before it was initialised.
    snapshot: Option<Box<[u8; PAGE_SIZE]>>,
}

impl Track {
    /// Not tracking, nothing noted (buffers kept for reuse).
    fn reset(&mut self) {
        self.on = false;
        self.fresh = false;
        self.ranges.clear();
        self.old.clear();
        self.snapshot = None;
    }
}

fn rd16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn rd32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn wr16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
fn wr32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

impl Default for Page {
    fn default() -> Self {
        Page { buf: Box::new([0u8; PAGE_SIZE]), track: Track::default() }
    }
}

impl Page {
    pub fn new(no: u32, kind: Kind) -> Page {
        let mut p = Page::default();
        p.init(no, kind);
        p
    }

    /// A page around bytes read from somewhere (recovery); not tracked.
    pub fn from_buf(buf: Box<[u8; PAGE_SIZE]>) -> Page {
        Page { buf, track: Track::default() }
    }

    pub fn into_buf(self) -> Box<[u8; PAGE_SIZE]> {
        self.buf
    }

    /// The page's bytes (read only: every write goes through a method that notes it).
    pub fn bytes(&self) -> &[u8; PAGE_SIZE] {
        &self.buf
    }

    /// The raw buffer, for reading the page from disk (no mtr is running on it).
    pub fn raw_mut(&mut self) -> &mut [u8; PAGE_SIZE] {
        debug_assert!(!self.track.on);
        &mut self.buf
    }

    // ---- change tracking (mini-transactions) ----

    /// Starts noting changes; `fresh`: the page is new (redo starts from zeros and
    /// an abort forgets the page, so no old bytes are kept).
    pub fn track_begin(&mut self, fresh: bool) {
        let t = &mut self.track;
        t.reset();
        t.on = true;
        t.fresh = fresh;
        if fresh {
            // redo from zeros must rebuild the header fields too
            t.ranges.push((LOGGED_FROM as u16, (HEADER - LOGGED_FROM) as u16));
        }
    }

    pub fn tracking(&self) -> bool {
        self.track.on
    }

    /// Whether redo starts from a zeroed page.
    pub fn track_fresh(&self) -> bool {
        self.track.fresh
    }

    /// Ends tracking (after the mtr's record is built, or an abort).
    pub fn track_end(&mut self) {
        self.track.reset();
    }

    /// Puts the bytes the mtr changed back (an aborted mtr).
    pub fn track_undo(&mut self) {
        if let Some(s) = self.track.snapshot.take() {
            self.buf = s;
        } else if !self.track.fresh {
            let mut end = self.track.old.len();
            for &(off, len) in self.track.ranges.iter().rev() {
                let (off, len) = (off as usize, len as usize);
                self.buf[off..off + len].copy_from_slice(&self.track.old[end - len..end]);
                end -= len;
            }
        }
        self.track_end();
    }

    /// The changed ranges at or above `from`, sorted and joined (gaps under 8 bytes
    /// are logged rather than split): (offset, length).
    pub fn changed_ranges(&self, from: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        self.changed_ranges_into(from, &mut out);
        out
    }

    /// [`Page::changed_ranges`] into `out` (cleared first; no allocation once it has
    /// room).
    pub fn changed_ranges_into(&self, from: usize, out: &mut Vec<(usize, usize)>) {
        out.clear();
        out.extend(self.track.ranges.iter().filter_map(|&(o, l)| {
            let (o, e) = ((o as usize).max(from), o as usize + l as usize);
            (e > o).then_some((o, e))
        }));
        out.sort_unstable();
        let mut w = 0;
        for r in 0..out.len() {
            let (o, e) = out[r];
            if w > 0 && o <= out[w - 1].1 + 8 {
                out[w - 1].1 = out[w - 1].1.max(e);
            } else {
                out[w] = (o, e);
                w += 1;
            }
        }
        out.truncate(w);
        for r in out.iter_mut() {
            r.1 -= r.0;
        }
    }

    /// Notes that `len` bytes at `off` are about to be written.
    #[inline]
    fn note(&mut self, off: usize, len: usize) {
        let t = &mut self.track;
        if !t.on || len == 0 {
            return;
        }
        t.ranges.push((off as u16, len as u16));
        if !t.fresh && t.snapshot.is_none() {
            t.old.extend_from_slice(&self.buf[off..off + len]);
        }
    }

    /// Writes `bytes` at `off` (noted).
    pub fn put(&mut self, off: usize, bytes: &[u8]) {
        self.note(off, bytes.len());
        self.buf[off..off + bytes.len()].copy_from_slice(bytes);
    }

    fn put16(&mut self, off: usize, v: u16) {
        self.put(off, &v.to_le_bytes());
    }

    fn put32(&mut self, off: usize, v: u32) {
        self.put(off, &v.to_le_bytes());
    }

    /// Copies `src` to `dest` within the page (noted).
    fn copy_within(&mut self, src: std::ops::Range<usize>, dest: usize) {
        self.note(dest, src.len());
        self.buf.copy_within(src, dest);
    }

    /// Makes this page a copy of `other`'s bytes (noted as a whole new page).
    /// (Its number, checksum and LSN stay its own.)
    pub fn copy_from(&mut self, other: &[u8; PAGE_SIZE]) {
        self.begin_rewrite();
        self.buf[LOGGED_FROM..].copy_from_slice(&other[LOGGED_FROM..]);
        self.note(LOGGED_FROM, PAGE_SIZE - LOGGED_FROM);
    }

    /// The whole page is about to be rewritten: keep it for an abort, and log the
    /// page from zeros.
    fn begin_rewrite(&mut self) {
        let t = &mut self.track;
        if !t.on {
            return;
        }
        if !t.fresh && t.snapshot.is_none() {
            // the page as it was when the mtr began: undo what was noted so far
            let mut s = self.buf.clone();
            let mut end = t.old.len();
            for &(off, len) in t.ranges.iter().rev() {
                let (off, len) = (off as usize, len as usize);
                s[off..off + len].copy_from_slice(&t.old[end - len..end]);
                end -= len;
            }
            t.snapshot = Some(s);
        }
        t.fresh = true;
        t.ranges.clear();
        t.old.clear();
        t.ranges.push((LOGGED_FROM as u16, (HEADER - LOGGED_FROM) as u16));
    }

    pub fn init(&mut self, no: u32, kind: Kind) {
        self.begin_rewrite();
        self.buf.fill(0);
        wr32(&mut self.buf[..], 4, no);
        self.buf[16] = kind as u8;
        self.buf[17] = PAGE_VERSION;
        // an empty heap: free_hi is PAGE_SIZE, stored as 0 (see free_hi())
        wr16(&mut self.buf[..], 20, HEADER as u16);
        wr16(&mut self.buf[..], 22, 0);
    }

    pub fn no(&self) -> u32 {
        rd32(&self.buf[..], 4)
    }
    pub fn lsn(&self) -> u64 {
        u64::from_le_bytes(self.buf[8..16].try_into().unwrap())
    }
    pub fn set_lsn(&mut self, lsn: u64) {
        self.buf[8..16].copy_from_slice(&lsn.to_le_bytes());
    }
    pub fn kind(&self) -> Kind {
        Kind::from(self.buf[16]).unwrap_or(Kind::Free)
    }
    pub fn slots(&self) -> usize {
        rd16(&self.buf[..], 18) as usize
    }
    fn set_slots(&mut self, n: usize) {
        self.put16(18, n as u16);
    }
    /// A leaf's or internal page's free middle (`free_lo..free_hi`, between the
    /// slot array and the records): bytes nothing reads. None for other pages, or
    /// if the header does not make sense.
    pub fn free_middle(&self) -> Option<std::ops::Range<usize>> {
        if !matches!(self.kind(), Kind::Leaf | Kind::Internal) {
            return None;
        }
        let (lo, hi) = (self.free_lo(), self.free_hi());
        (HEADER <= lo && lo <= hi && hi <= PAGE_SIZE).then_some(lo..hi)
    }

    fn free_lo(&self) -> usize {
        rd16(&self.buf[..], 20) as usize
    }
    /// Start of the record heap; stored as 0 for an empty heap (PAGE_SIZE does
    /// not fit in a u16).
    fn free_hi(&self) -> usize {
        match rd16(&self.buf[..], 22) {
            0 => PAGE_SIZE,
            v => v as usize,
        }
    }
    fn set_free(&mut self, lo: usize, hi: usize) {
        let mut b = [0u8; 4];
        b[0..2].copy_from_slice(&(lo as u16).to_le_bytes());
        b[2..4].copy_from_slice(&(if hi == PAGE_SIZE { 0 } else { hi as u16 }).to_le_bytes());
        self.put(20, &b);
    }
    pub fn link_a(&self) -> u32 {
        rd32(&self.buf[..], 24)
    }
    pub fn set_link_a(&mut self, v: u32) {
        self.put32(24, v);
    }
    pub fn link_b(&self) -> u32 {
        rd32(&self.buf[..], 28)
    }
    pub fn set_link_b(&mut self, v: u32) {
        self.put32(28, v);
    }

    /// Writes the checksum; done before every write to disk.
    pub fn seal(&mut self) {
        let c = crc32fast::hash(&self.buf[4..]);
        wr32(&mut self.buf[..], 0, c);
    }

    /// Checks a page read from disk: checksum, number, kind, and that its slots and
    /// records lie inside it.
    pub fn verify(&self, no: u32) -> std::result::Result<(), String> {
        if self.buf.iter().all(|&b| b == 0) {
            return Err("page is all zeros (never written, or lost)".into());
        }
        if crc32fast::hash(&self.buf[4..]) != rd32(&self.buf[..], 0) {
            return Err("checksum mismatch (torn or corrupt page)".into());
        }
        if self.no() != no {
            return Err(format!("page claims to be page {}", self.no()));
        }
        if Kind::from(self.buf[16]).is_none() || self.buf[17] != PAGE_VERSION {
            return Err(format!("unknown page kind {} or version {}", self.buf[16], self.buf[17]));
        }
        if matches!(self.kind(), Kind::Leaf | Kind::Internal) {
            let (lo, hi) = (self.free_lo(), self.free_hi());
            if lo != HEADER + 2 * self.slots() || lo > hi {
                return Err("slot array and record heap overlap".into());
            }
            for i in 0..self.slots() {
                let off = self.slot(i);
                if off < hi || off + self.rec_len(off)? > PAGE_SIZE {
                    return Err(format!("record {i} lies outside the page"));
                }
            }
        }
        Ok(())
    }

    fn rec_len(&self, off: usize) -> std::result::Result<usize, String> {
        if off + 6 > PAGE_SIZE {
            return Err("record header outside the page".into());
        }
        let klen = rd16(&self.buf[..], off) as usize;
        Ok(match self.kind() {
            Kind::Internal => 6 + klen,
            _ => {
                let v = rd32(&self.buf[..], off + 2);
                6 + klen + if v & OVERFLOW_BIT != 0 { 8 } else { v as usize }
            }
        })
    }

    pub fn slot(&self, i: usize) -> usize {
        rd16(&self.buf[..], HEADER + 2 * i) as usize
    }

    /// Asks the CPU to bring record `i` into its cache, for a scan about to
    /// read it: records lie in the page in the order they were written, not
    /// in key order, so a scan's next record is seldom in a cache line it has
    /// touched (a scan stalled on it at every step). A hint only: nothing
    /// happens for a slot out of range or where no such instruction exists.
    #[inline]
    pub fn prefetch(&self, i: usize) {
        if i >= self.slots() || HEADER + 2 * i + 2 > self.buf.len() {
            return;
        }
        let off = self.slot(i);
        if off >= self.buf.len() {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch reads nothing and cannot fault; the address is
        // inside the page's buffer (checked above).
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(self.buf.as_ptr().add(off) as *const i8);
        }
    }

    pub fn key(&self, i: usize) -> &[u8] {
        let off = self.slot(i);
        let klen = rd16(&self.buf[..], off) as usize;
        &self.buf[off + 6..off + 6 + klen]
    }

    pub fn val(&self, i: usize) -> Val<'_> {
        let off = self.slot(i);
        let klen = rd16(&self.buf[..], off) as usize;
        let v = rd32(&self.buf[..], off + 2);
        let at = off + 6 + klen;
        if v & OVERFLOW_BIT != 0 {
            Val::Overflow { len: rd32(&self.buf[..], at), first: rd32(&self.buf[..], at + 4) }
        } else {
            Val::Inline(&self.buf[at..at + v as usize])
        }
    }

    pub fn child(&self, i: usize) -> u32 {
        rd32(&self.buf[..], self.slot(i) + 2)
    }

    pub fn set_child(&mut self, i: usize, c: u32) {
        let off = self.slot(i);
        self.put32(off + 2, c);
    }

    /// Bytes a record takes, slot included.
    pub fn leaf_need(klen: usize, val: &Val) -> usize {
        2 + 6 + klen + match val {
            Val::Inline(v) => v.len(),
            Val::Overflow { .. } => 8,
        }
    }
    pub fn internal_need(klen: usize) -> usize {
        2 + 6 + klen
    }

    /// Free bytes, counting the space of removed records (reclaimed by compaction).
    pub fn free(&self) -> usize {
        let used: usize = (0..self.slots()).map(|i| self.rec_len(self.slot(i)).unwrap_or(0)).sum();
        PAGE_SIZE - HEADER - 2 * self.slots() - used
    }

    /// Bytes used by records and slots.
    pub fn used(&self) -> usize {
        PAGE_SIZE - HEADER - self.free()
    }

    /// First slot whose key is >= `key`, and whether it is equal.
    pub fn search(&self, key: &[u8]) -> (usize, bool) {
        let (mut lo, mut hi) = (0, self.slots());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.key(mid).cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Equal => return (mid, true),
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        (lo, false)
    }

    /// Closes the holes removed records left: records slide towards the end of the
    /// page, highest first, so those already packed there do not move (and need no
    /// logging).
    fn compact(&mut self) {
        let n = self.slots();
        let mut order: Vec<(usize, usize, usize)> = (0..n)
            .map(|i| {
                let off = self.slot(i);
                (off, self.rec_len(off).unwrap_or(0), i)
            })
            .collect();
        order.sort_unstable_by_key(|r| std::cmp::Reverse(r.0));
        let mut hi = PAGE_SIZE;
        for (off, len, i) in order {
            let to = hi - len;
            if to != off {
                self.copy_within(off..off + len, to);
                self.put16(HEADER + 2 * i, to as u16);
            }
            hi = to;
        }
        self.set_free(HEADER + 2 * n, hi);
    }

    /// Makes room for a record of `len` bytes; false if the page cannot hold it.
    fn reserve(&mut self, len: usize) -> Option<usize> {
        if self.free_hi() - self.free_lo() < len + 2 {
            if self.free() < len + 2 {
                return None;
            }
            self.compact();
        }
        let hi = self.free_hi() - len;
        let lo = self.free_lo();
        self.set_free(lo, hi);
        Some(hi)
    }

    fn insert_slot(&mut self, i: usize, off: usize) {
        let n = self.slots();
        let start = HEADER + 2 * i;
        self.copy_within(start..HEADER + 2 * n, start + 2);
        self.put16(start, off as u16);
        self.set_slots(n + 1);
        let hi = self.free_hi();
        self.set_free(HEADER + 2 * (n + 1), hi);
    }

    /// Inserts a leaf record at slot `i`; false if it does not fit.
    pub fn insert_leaf(&mut self, i: usize, key: &[u8], val: &Val) -> bool {
        let len = Page::leaf_need(key.len(), val) - 2;
        let Some(off) = self.reserve(len) else { return false };
        self.note(off, len);
        wr16(&mut self.buf[..], off, key.len() as u16);
        self.buf[off + 6..off + 6 + key.len()].copy_from_slice(key);
        let at = off + 6 + key.len();
        match val {
            Val::Inline(v) => {
                wr32(&mut self.buf[..], off + 2, v.len() as u32);
                self.buf[at..at + v.len()].copy_from_slice(v);
            }
            Val::Overflow { len, first } => {
                wr32(&mut self.buf[..], off + 2, OVERFLOW_BIT);
                wr32(&mut self.buf[..], at, *len);
                wr32(&mut self.buf[..], at + 4, *first);
            }
        }
        self.insert_slot(i, off);
        true
    }

    /// Replaces the inline value of record `i` by `val` in place, when the record
    /// holds an inline value at least as long (the rest becomes a hole); false
    /// (nothing changed) otherwise.
    pub fn replace_inline(&mut self, i: usize, val: &[u8]) -> bool {
        let off = self.slot(i);
        let klen = rd16(&self.buf[..], off) as usize;
        let v = rd32(&self.buf[..], off + 2);
        if v & OVERFLOW_BIT != 0 || (v as usize) < val.len() {
            return false;
        }
        let at = off + 6 + klen;
        if v as usize != val.len() {
            self.put32(off + 2, val.len() as u32);
        }
        // only the bytes that differ (an UPDATE usually changes a few columns)
        let old = &self.buf[at..at + val.len()];
        let Some(first) = old.iter().zip(val).position(|(a, b)| a != b) else { return true };
        let last = old.iter().zip(val).rposition(|(a, b)| a != b).unwrap();
        self.put(at + first, &val[first..=last]);
        true
    }

    /// Inserts an internal record (separator `key`, `child` for keys >= it).
    pub fn insert_internal(&mut self, i: usize, key: &[u8], child: u32) -> bool {
        let len = Page::internal_need(key.len()) - 2;
        let Some(off) = self.reserve(len) else { return false };
        self.note(off, len);
        wr16(&mut self.buf[..], off, key.len() as u16);
        wr32(&mut self.buf[..], off + 2, child);
        self.buf[off + 6..off + 6 + key.len()].copy_from_slice(key);
        self.insert_slot(i, off);
        true
    }

    /// Removes slot `i` (its bytes become a hole until the next compaction).
    pub fn remove(&mut self, i: usize) {
        let n = self.slots();
        let start = HEADER + 2 * i;
        self.copy_within(start + 2..HEADER + 2 * n, start);
        self.set_slots(n - 1);
        let hi = self.free_hi();
        self.set_free(HEADER + 2 * (n - 1), hi);
    }

    /// Keeps the first `n` slots (the others' bytes become holes).
    pub fn truncate(&mut self, n: usize) {
        if n >= self.slots() {
            return;
        }
        self.set_slots(n);
        let hi = self.free_hi();
        self.set_free(HEADER + 2 * n, hi);
    }

    /// Overflow page: link_a = next page, bytes from HEADER on.
    pub const OVERFLOW_DATA: usize = PAGE_SIZE - HEADER;
}

/// An error for a page that failed [`Page::verify`].
pub fn corrupt(file: &str, no: u32, why: &str) -> Error {
    Error::Corrupt(format!("{file} page {no}: {why}"))
}

pub type PageResult<T> = Result<T>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_insert_search_remove_and_checksum() {
        let mut p = Page::new(7, Kind::Leaf);
        for (i, k) in [b"b".as_slice(), b"d", b"a", b"c"].iter().enumerate() {
            let (at, eq) = p.search(k);
            assert!(!eq);
            assert!(p.insert_leaf(at, k, &Val::Inline(&[i as u8; 10])));
        }
        let keys: Vec<&[u8]> = (0..p.slots()).map(|i| p.key(i)).collect();
        assert_eq!(keys, vec![b"a".as_slice(), b"b", b"c", b"d"]);
        assert_eq!(p.search(b"c"), (2, true));
        p.remove(1);
        assert_eq!(p.val(1), Val::Inline(&[3u8; 10]));
        p.seal();
        assert!(p.verify(7).is_ok());
        assert!(p.verify(8).is_err());
        p.buf[100] ^= 1;
        assert!(p.verify(7).unwrap_err().contains("checksum"));
    }

    #[test]
    fn a_full_page_compacts_its_holes() {
        let mut p = Page::new(1, Kind::Leaf);
        let v = [9u8; 100];
        let mut n = 0u32;
        while p.insert_leaf(p.slots(), &n.to_be_bytes(), &Val::Inline(&v)) {
            n += 1;
        }
        assert!(n > 100);
        // free every other record, then the page takes as many again
        for i in (0..p.slots()).rev().step_by(2) {
            p.remove(i);
        }
        let before = p.slots();
        let mut m = 0u32;
        while p.insert_leaf(p.slots(), &(1_000_000 + m).to_be_bytes(), &Val::Inline(&v)) {
            m += 1;
        }
        assert!(m as usize >= before - 1, "{m} {before}");
        p.seal();
        p.verify(1).unwrap();
    }

    fn apply_ranges(page: &mut [u8], from: &Page) {
        for (off, len) in from.changed_ranges(LOGGED_FROM) {
            page[off..off + len].copy_from_slice(&from.bytes()[off..off + len]);
        }
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Random changes inside a tracked mtr (inserts, removes, in-place
        /// replaces, truncation, links, compaction, re-initialisation): the noted
        /// ranges rebuild the page from its old bytes (or from zeros once it was
        /// initialised), and an abort gives back exactly the old bytes.
        #[test]
        fn noted_ranges_rebuild_and_undo_the_page(
            before in prop::collection::vec((0u16..400, 0usize..300), 0..60),
            ops in prop::collection::vec((0u8..6, 0u16..400, 0usize..300), 1..80),
        ) {
            let mut p = Page::new(5, Kind::Leaf);
            for (k, l) in &before {
                let key = k.to_be_bytes();
                let (i, eq) = p.search(&key);
                if !eq {
                    p.insert_leaf(i, &key, &Val::Inline(&vec![*k as u8; *l]));
                }
            }
            let old: Box<[u8; PAGE_SIZE]> = Box::new(*p.bytes());
            p.track_begin(false);
            for (op, k, l) in &ops {
                let key = k.to_be_bytes();
                match op {
                    0 | 1 => {
                        let (i, eq) = p.search(&key);
                        if !eq {
                            p.insert_leaf(i, &key, &Val::Inline(&vec![*l as u8; *l]));
                        }
                    }
                    2 => if p.slots() > 0 { p.remove(*k as usize % p.slots()) },
                    3 => if p.slots() > 0 { p.replace_inline(*k as usize % p.slots(), &vec![*k as u8; *l / 4]); },
                    4 => if p.slots() > 0 { p.truncate(*k as usize % p.slots()); p.set_link_a(*l as u32) },
                    _ => if *l < 3 { p.init(5, Kind::Leaf) },
                }
            }
            let mut rebuilt = if p.track_fresh() { Box::new([0u8; PAGE_SIZE]) } else { old.clone() };
            apply_ranges(&mut rebuilt[..], &p);
            prop_assert!(rebuilt[LOGGED_FROM..] == p.bytes()[LOGGED_FROM..]);
            p.track_undo();
            prop_assert!(p.bytes()[..] == old[..]);
        }
    }
}
