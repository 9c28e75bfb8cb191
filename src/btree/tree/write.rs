//! The tree's write path: mini-transactions (`in_mtr`), insert, delete, update
//! (each with its undo entry, [`crate::btree::wal::records::undo_entry`]),
//! applying an undo entry, leaf and internal page splits, merges and the root
//! taking its only child's records. Uses the buffer pool ([`crate::btree::pool`])
//! and the page format.

use super::*;

impl BTree {
    /// Runs `f` as one mini-transaction: its page changes are logged as one redo
    /// record (with the undo entry `f` leaves in `undo` in front) or, if it fails,
    /// undone in memory.
    pub(super) fn in_mtr<T>(&mut self, trx: u64, undo: &mut Vec<u8>, f: impl FnOnce(&mut Self, &mut Vec<u8>) -> Result<T>) -> Result<T> {
        self.refuse_if_cut_short()?;
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
        let removed = self.in_mtr(trx, &mut Vec::new(), |t, _| {
            match op {
                UNDO_DELETE => return t.delete_inner(key, None),
                UNDO_PUT => {
                    t.insert_inner(key, val)?;
                }
                _ => {
                    if !t.update_inner(key, val, None)? {
                        t.insert_inner(key, val)?;
                    }
                }
            }
            Ok(false)
        })?;
        if let (true, Some(hook)) = (removed, self.on_undo_remove.clone()) {
            let mut c = Cursor::default();
            self.seek(&mut c, std::ops::Bound::Excluded(key), false)?;
            let (mut k, mut v) = (Vec::new(), Vec::new());
            let next = self.next(&mut c, false, &mut k, &mut v)?;
            hook(key, next.then_some(&k[..]));
        }
        Ok(())
    }

    pub(super) fn insert_inner(&mut self, key: &[u8], val: &[u8]) -> Result<bool> {
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
    pub(super) fn update_inner(&mut self, key: &[u8], val: &[u8], undo: Option<&mut Vec<u8>>) -> Result<bool> {
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

    pub(super) fn split_leaf(&mut self, path: Vec<(u32, usize)>, leaf: u32, at: usize, key: &[u8], v: OwnedVal) -> Result<()> {
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

    pub(super) fn fill_leaf(&mut self, no: u32, recs: &[(Vec<u8>, OwnedVal)], prev: u32, next: u32) -> Result<()> {
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

    pub(super) fn fill_internal(&mut self, no: u32, leftmost: u32, recs: &[(Vec<u8>, u32)]) -> Result<()> {
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
    pub(super) fn insert_separator(&mut self, mut path: Vec<(u32, usize)>, sep: Vec<u8>, right: u32) -> Result<()> {
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
    pub(super) fn delete_inner(&mut self, key: &[u8], undo: Option<(u8, &mut Vec<u8>)>) -> Result<bool> {
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
    pub(super) fn rebalance(&mut self, mut path: Vec<(u32, usize)>, no: u32) -> Result<()> {
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
    pub(super) fn try_merge(&mut self, parent: u32, l: u32, r: u32, sep_idx: usize) -> Result<bool> {
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
    pub(super) fn absorb_into_root(&mut self, child: u32) -> Result<()> {
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
}

/// A value copied out of a page.
#[derive(Clone, Debug)]
pub(super) enum OwnedVal {
    Inline(Vec<u8>),
    Overflow { len: u32, first: u32 },
}

impl OwnedVal {
    pub(super) fn as_val(&self) -> Val<'_> {
        match self {
            OwnedVal::Inline(v) => Val::Inline(v),
            OwnedVal::Overflow { len, first } => Val::Overflow { len: *len, first: *first },
        }
    }
}

pub(super) fn own(v: Val) -> OwnedVal {
    match v {
        Val::Inline(b) => OwnedVal::Inline(b.to_vec()),
        Val::Overflow { len, first } => OwnedVal::Overflow { len, first },
    }
}

/// Where to split records of these sizes so both halves are about equally full
/// (and neither is empty).
pub(super) fn split_point(sizes: impl Iterator<Item = usize>) -> usize {
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
