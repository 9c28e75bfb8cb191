//! A transaction's undo log in memory ([`UndoLog`]): its undo entries, oldest
//! first. Uses the tree layer ([`super::Tree`]).

use super::*;

/// A transaction's undo entries, oldest first, with no allocation per entry: their
/// bytes one after another in one buffer, and per entry its tree (an index into
/// the trees it used) and where its bytes end.
#[derive(Default)]
pub(super) struct UndoLog {
    pub(super) trees: Vec<Tree>,
    pub(super) entries: Vec<(u32, usize)>,
    pub(super) bytes: Vec<u8>,
}

impl UndoLog {
    pub(super) fn push(&mut self, t: &Tree, u: &[u8]) {
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

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total size of the entries.
    pub(super) fn size(&self) -> usize {
        self.bytes.len()
    }

    /// The newest entry: its tree and bytes (valid until the next change).
    pub(super) fn last(&self) -> Option<(&Tree, &[u8])> {
        let n = self.entries.len();
        let &(t, end) = self.entries.last()?;
        let start = if n >= 2 { self.entries[n - 2].1 } else { 0 };
        Some((&self.trees[t as usize], &self.bytes[start..end]))
    }

    /// Forgets the newest entry.
    pub(super) fn drop_last(&mut self) {
        self.entries.pop();
        self.bytes.truncate(self.entries.last().map_or(0, |e| e.1));
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&Tree, &[u8])> {
        self.entries.iter().scan(0, |start, &(t, end)| {
            let b = &self.bytes[*start..end];
            *start = end;
            Some((&self.trees[t as usize], b))
        })
    }

    /// Whether an entry is for tree `t`.
    pub(super) fn uses(&self, t: &Tree) -> bool {
        match self.trees.iter().position(|x| Arc::ptr_eq(x, t)) {
            Some(i) => self.entries.iter().any(|e| e.0 as usize == i),
            None => false,
        }
    }
}
