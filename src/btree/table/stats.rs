//! Statistics of a table's indexes for the optimizer: cardinality per key
//! prefix sampled from the leaves (stored in each index's meta page), and entries
//! in a key range (records_in_range). Uses the tree reader
//! ([`crate::btree::tree`]).

use super::*;
use crate::btree::keys::value_len;

/// Leaves sampled when statistics are computed on their own (first use after the
/// table opens, or after a tenth of the entries changed); ANALYZE TABLE samples
/// more. An index with no more leaves than that is read whole (exact counts).
pub const STATS_SAMPLE_LEAVES: usize = 32;
pub const ANALYZE_SAMPLE_LEAVES: usize = 512;
/// Leaves records_in_range walks to count a range exactly before it estimates.
pub(super) const RANGE_EXACT_LEAVES: usize = 8;
/// A key part layout for statistics: its length (or, for a variable-length
/// string part, [`crate::btree::keys::PART_CHUNKED`] and its chunk length), with
/// this bit for a nullable part (one byte, 0 for NULL with nothing after it, else
/// 1 and the value).
pub const PART_NULLABLE: u32 = 1 << 31;

/// The first key part (by `parts`) in which two keys differ; `parts.len()` if
/// they agree on all of them.
pub(super) fn first_diff_part(a: &[u8], b: &[u8], parts: &[u32]) -> usize {
    let m = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    let mut off = 0;
    for (j, &spec) in parts.iter().enumerate() {
        let mut end = off;
        if spec & PART_NULLABLE != 0 {
            end += 1;
            if a.get(off).copied().unwrap_or(0) != 0 {
                end += value_len(a.get(end..).unwrap_or(&[]), spec);
            }
        } else {
            end += value_len(a.get(end..).unwrap_or(&[]), spec);
        }
        if m < end {
            return j;
        }
        off = end;
    }
    parts.len()
}

/// Where the first entry >= `probe` is (None: past the last entry): its leaf and
/// slot, and the fraction of the tree's entries before it, estimated from the
/// child positions taken on the way down (as if subtrees of one page were of
/// equal size).
pub(super) fn locate(t: &mut Reader, probe: Option<&[u8]>) -> Result<(u32, usize, f64)> {
    let (mut frac, mut width) = (0.0f64, 1.0f64);
    let mut no = ROOT;
    for _ in 0..64 {
        let p = t.page(no)?;
        let n = p.slots();
        match p.kind() {
            Kind::Leaf => {
                let slot = match probe {
                    Some(k) => p.search(k).0,
                    None => n,
                };
                frac += if n == 0 { 0.0 } else { width * slot as f64 / n as f64 };
                return Ok((no, slot, frac.min(1.0)));
            }
            Kind::Internal => {
                // children: the leftmost, then one per record (keys >= its key)
                let ord = match probe {
                    Some(k) => {
                        let (i, eq) = p.search(k);
                        if eq { i + 1 } else { i }
                    }
                    None => n,
                };
                let child = if ord == 0 { p.link_a() } else { p.child(ord - 1) };
                frac += width * ord as f64 / (n + 1) as f64;
                width /= (n + 1) as f64;
                no = child;
            }
            k => return Err(Error::Corrupt(format!("{}: page {no}: expected a tree page, found {k:?}", t.name()))),
        }
    }
    Err(Error::Corrupt(format!("{}: tree deeper than 64 levels (a cycle?)", t.name())))
}

/// Counts key-prefix changes between consecutive entries of `leaf` (and its last
/// entry against the next leaf's first): adds to `changes[j]` for each prefix of
/// `j + 1` parts that differs, and to `pairs` the pairs compared. Returns the next
/// leaf.
pub(super) fn count_changes(t: &mut BTree, leaf: u32, parts: &[u32], changes: &mut [u64], pairs: &mut u64) -> Result<u32> {
    let (keys, next) = {
        let p = t.pool_mut().get(leaf)?;
        ((0..p.slots()).map(|i| p.key(i).to_vec()).collect::<Vec<_>>(), p.link_a())
    };
    let mut tally = |a: &[u8], b: &[u8]| {
        let d = first_diff_part(a, b, parts);
        for c in changes.iter_mut().skip(d) {
            *c += 1;
        }
        *pairs += 1;
    };
    for w in keys.windows(2) {
        tally(&w[0], &w[1]);
    }
    if next != NONE {
        if let Some(last) = keys.last() {
            let p = t.pool_mut().get(next)?;
            if p.slots() > 0 {
                let first = p.key(0).to_vec();
                tally(last, &first);
            }
        }
    }
    Ok(next)
}

/// Distinct values of each key prefix (`parts`: each part's layout, see
/// [`PART_NULLABLE`]) of a tree: exact if it has at most `sample` leaves (all are
/// read), else estimated from `sample` leaves reached by random descents (a fixed
/// seed: the same tree gives the same estimate) as InnoDB samples leaf pages: the
/// share of neighbouring entries whose prefix differs, times the entries. NULLs
/// count as equal to each other (InnoDB's default `innodb_stats_method`).
pub(super) fn n_diff(t: &mut BTree, parts: &[u32], sample: usize) -> Result<(Vec<u64>, bool)> {
    let rows = t.rows();
    let mut changes = vec![0u64; parts.len()];
    let mut pairs = 0u64;
    if rows == 0 {
        return Ok((changes, true));
    }
    // the leftmost leaf, then along the chain for up to `sample` leaves
    let mut leaf = ROOT;
    loop {
        let p = t.pool_mut().get(leaf)?;
        match p.kind() {
            Kind::Internal => leaf = p.link_a(),
            _ => break,
        }
    }
    let mut read = 0;
    while leaf != NONE && read < sample {
        leaf = count_changes(t, leaf, parts, &mut changes, &mut pairs)?;
        read += 1;
    }
    if leaf == NONE {
        return Ok((changes.iter().map(|c| c + 1).collect(), true));
    }
    changes.iter_mut().for_each(|c| *c = 0);
    pairs = 0;
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..sample {
        let mut no = ROOT;
        for _ in 0..64 {
            let p = t.pool_mut().get(no)?;
            if p.kind() != Kind::Internal {
                break;
            }
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let ord = ((seed >> 33) % (p.slots() as u64 + 1)) as usize;
            no = if ord == 0 { p.link_a() } else { p.child(ord - 1) };
        }
        count_changes(t, no, parts, &mut changes, &mut pairs)?;
    }
    let est = |c: u64| {
        if pairs == 0 { 1 } else { (1 + ((rows - 1) as f64 * c as f64 / pairs as f64).round() as u64).min(rows) }
    };
    Ok((changes.iter().map(|&c| est(c)).collect(), false))
}

impl BtreeTable {
    /// Entries of index `i` between two keys, for the optimizer (records_in_range):
    /// the tree is descended to both ends; entries are counted exactly when the ends
    /// are at most [`RANGE_EXACT_LEAVES`] leaves apart, else estimated from where
    /// the two descents went (the fraction of the tree between them, times its
    /// entries). A bound is a key prefix: inclusive takes every entry starting with
    /// it, exclusive none of them. Reads a few pages; takes no table lock.
    pub fn count_range(&mut self, i: usize, min: Option<&[u8]>, min_incl: bool, max: Option<&[u8]>, max_incl: bool) -> Result<u64> {
        // both ends as "the first entry >= probe" (None: past the last entry)
        let lo: Option<Vec<u8>> = match min {
            None => Some(Vec::new()),
            Some(k) if min_incl => Some(k.to_vec()),
            Some(k) => match successor(k) {
                Some(s) => Some(s),
                None => return Ok(0),
            },
        };
        let hi: Option<Vec<u8>> = match max {
            None => None,
            Some(k) if max_incl => successor(k),
            Some(k) => Some(k.to_vec()),
        };
        if let (Some(a), Some(b)) = (&lo, &hi) {
            if a >= b {
                return Ok(0);
            }
        }
        tree::read(&self.shared.trees[i], |t| {
            let (la, sa, fa) = locate(t, lo.as_deref())?;
            let (lb, sb, fb) = locate(t, hi.as_deref())?;
            if la == lb {
                return Ok(sb.saturating_sub(sa) as u64);
            }
            let mut n = {
                let p = t.page(la)?;
                (p.slots().saturating_sub(sa), p.link_a())
            };
            for _ in 0..RANGE_EXACT_LEAVES {
                if n.1 == NONE {
                    break;
                }
                if n.1 == lb {
                    return Ok((n.0 + sb) as u64);
                }
                let p = t.page(n.1)?;
                n = (n.0 + p.slots(), p.link_a());
            }
            let est = ((fb - fa).max(0.0) * t.rows() as f64).round() as u64;
            Ok(est.max(n.0 as u64).min(t.rows()))
        })
    }

    /// Distinct values of each key prefix of index `i` (`parts`: the layout of
    /// each part of its entries, see [`PART_NULLABLE`]), for rec_per_key. Kept per
    /// open table and computed again when asked with `analyze` (ANALYZE TABLE: a
    /// larger sample), for another layout, or when the index's entries changed by
    /// more than a tenth since (as InnoDB's automatic recalculation). Stored in
    /// the index's meta page each time they are computed (as InnoDB's persistent
    /// statistics), and read from there when the table opens: plans do not
    /// change with a restart, and the first statement after it does not sample.
    pub fn key_stats(&self, i: usize, parts: &[u32], analyze: bool) -> Result<Vec<u64>> {
        let kept = |rows: u64| {
            let m = self.shared.key_stats.lock();
            let s = m.get(&i)?;
            let stale = rows.abs_diff(s.rows_at) > s.rows_at / 10;
            let keep = (!analyze && !stale && s.parts == parts) || (analyze && s.exact && rows == s.rows_at && s.parts == parts);
            keep.then(|| s.n_diff.clone())
        };
        // kept ones are looked up beside the tree's readers (the read lock let go
        // of first)
        let rows = self.estimate(i).0;
        if let Some(v) = kept(rows) {
            return Ok(v);
        }
        let mut t = self.shared.trees[i].write();
        let rows = t.rows();
        if let Some(v) = kept(rows) {
            return Ok(v);
        }
        let (n_diff, exact) = n_diff(&mut t, parts, if analyze { ANALYZE_SAMPLE_LEAVES } else { STATS_SAMPLE_LEAVES })?;
        self.shared.stats_counted.fetch_add(1, Ordering::Relaxed);
        // kept for the next open too; a failure to log them only loses them
        let st = StoredStats { exact, rows_at: rows, parts: parts.to_vec(), n_diff };
        let _ = t.store_stats(st.clone());
        let n_diff = st.n_diff.clone();
        self.shared.key_stats.lock().insert(i, st);
        Ok(n_diff)
    }
}
