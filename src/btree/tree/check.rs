//! CHECK of a tree: every page's checksum, key order within pages and against
//! the separators above, equal leaf depth, both sibling chains, overflow chains,
//! the row count, and the free list. Uses the buffer pool and the page format.

use super::*;

impl BTree {
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
        self.refuse_if_cut_short()?;
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
    pub(super) fn check_page(
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
