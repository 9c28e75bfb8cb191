//! The redo records' payloads, writer beside reader (spec: `docs/btree-format.md`,
//! "Redo log"): the MTR record (written by the buffer pool at the end of a
//! mini-transaction, read by recovery), the lists of trees in PREPARE,
//! UNDO_CARRY and RESET records, UNDO_CARRY's entries, and the undo entry an MTR
//! or UNDO_CARRY record carries. Uses the page layout ([`crate::btree::page`]) only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::btree::page::{LOGGED_FROM, PAGE_SIZE};

/// Page entry kinds in an MTR record: the whole page (bytes LOGGED_FROM..), the
/// changed ranges applied to the page as it is, or the ranges applied to a zeroed
/// page (a page initialised by the mtr: redo never reads it from disk).
pub const PAGE_FULL: u8 = 1;
pub const PAGE_DIFF: u8 = 2;
pub const PAGE_NEW: u8 = 3;

// ---- MTR: `u32 tree id, u32 undo length, undo entry, u16 pages`, then per page
// `u32 page number, u8 kind` and its bytes (PAGE_FULL: the page from
// LOGGED_FROM on; PAGE_DIFF, PAGE_NEW: ranges, see [`ranges_len`]) ----

/// Starts an MTR record's payload in `rec` (cleared): the tree, the undo entry,
/// room for the page count; returns where the count goes ([`mtr_end`]).
pub(crate) fn mtr_begin(rec: &mut Vec<u8>, tree_id: u32, undo: &[u8]) -> usize {
    rec.clear();
    rec.extend_from_slice(&tree_id.to_le_bytes());
    rec.extend_from_slice(&(undo.len() as u32).to_le_bytes());
    rec.extend_from_slice(undo);
    let count_at = rec.len();
    rec.extend_from_slice(&[0, 0]);
    count_at
}

/// A PAGE_FULL entry: page `no` as it is, from LOGGED_FROM on.
pub(crate) fn mtr_page_full(rec: &mut Vec<u8>, no: u32, page: &[u8]) {
    rec.extend_from_slice(&no.to_le_bytes());
    rec.push(PAGE_FULL);
    rec.extend_from_slice(&page[LOGGED_FROM..]);
}

/// A PAGE_DIFF or PAGE_NEW entry: `n` ranges (offset, length) of page `no`.
pub(crate) fn mtr_page_ranges(rec: &mut Vec<u8>, no: u32, kind: u8, page: &[u8], n: usize, ranges: impl Iterator<Item = (usize, usize)>) {
    rec.extend_from_slice(&no.to_le_bytes());
    rec.push(kind);
    rec.extend_from_slice(&(n as u16).to_le_bytes());
    for (off, len) in ranges {
        rec.extend_from_slice(&(off as u16).to_le_bytes());
        rec.extend_from_slice(&(len as u16).to_le_bytes());
        rec.extend_from_slice(&page[off..off + len]);
    }
}

/// Ends an MTR record's payload: its page count, at `count_at` ([`mtr_begin`]).
pub(crate) fn mtr_end(rec: &mut [u8], count_at: usize, pages: u16) {
    rec[count_at..count_at + 2].copy_from_slice(&pages.to_le_bytes());
}

/// A page change in an MTR record.
pub(crate) struct PageChange<'a> {
    pub(crate) page: u32,
    pub(crate) kind: u8,
    pub(crate) bytes: &'a [u8],
}

/// Splits a prepare record's payload: the XID and the transaction's tree ids.
pub(crate) fn parse_prepare(p: &[u8]) -> Option<(Vec<u8>, HashMap<u32, PathBuf>)> {
    parse_xid_and_trees(p).map(|(xid, ids, _)| (xid, ids))
}

/// An UNDO_CARRY record's payload, split: the XID if the transaction was
/// prepared, its tree ids, and its undo entries (tree id, entry), oldest first.
pub(crate) type Carry = (Option<Vec<u8>>, HashMap<u32, PathBuf>, Vec<(u32, Vec<u8>)>);

pub(crate) fn parse_carry(p: &[u8]) -> Option<Carry> {
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
pub(crate) fn parse_xid_and_trees(p: &[u8]) -> Option<(Vec<u8>, HashMap<u32, PathBuf>, usize)> {
    let xl = u32::from_le_bytes(p.get(0..4)?.try_into().ok()?) as usize;
    let xid = p.get(4..4 + xl)?.to_vec();
    let (ids, end) = parse_trees(p.get(4 + xl..)?)?;
    Some((xid, ids.into_iter().collect(), 4 + xl + end))
}

/// A list of trees (in PREPARE, UNDO_CARRY and RESET records): `u32 trees`, then
/// per tree `u32 id, u16 path length, path`; and where it ends.
pub(crate) fn parse_trees(p: &[u8]) -> Option<(Vec<(u32, PathBuf)>, usize)> {
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
pub(crate) fn write_trees(b: &mut Vec<u8>, trees: &[(u32, &Path)]) {
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
pub(crate) fn parse_reset(p: &[u8]) -> Option<Vec<(u32, PathBuf)>> {
    parse_trees(p).filter(|(_, end)| *end == p.len()).map(|(ids, _)| ids)
}

/// Splits an MTR record payload: (tree id, undo entry, page changes).
pub(crate) fn parse_mtr(p: &[u8]) -> Option<(u32, &[u8], Vec<PageChange<'_>>)> {
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

/// Applies a PAGE_DIFF/PAGE_NEW entry (`u16 count`, then `u16 offset, u16 length,
/// bytes`) to `page`; returns the bytes it used, None if the
/// entry is malformed.
pub(crate) fn apply_diff(page: &mut [u8], rec: &[u8]) -> Option<usize> {
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

/// The length of a ranges entry (`u16 count`, then `u16 offset, u16 length,
/// bytes`), checking that every range lies in the logged part of a page.
pub(crate) fn ranges_len(r: &[u8]) -> Option<usize> {
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
