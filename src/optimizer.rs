//! What the server's optimizer is told, as numbers: the rules that turn a
//! layout's [`Stats`] and an index's distinct-value counts into the server's
//! statistics (row count, rows per key value, range estimates) and the costs of
//! scans and reads. The C++ handler copies these numbers into the server's
//! structures and decides nothing (docs/boundary.md). The rules follow InnoDB's
//! where the optimizer's plans (and so the results users see) depend on them.

use crate::btree::page::PAGE_SIZE;
use crate::ffi::bridge::{Info, Stats};

/// What `info()` copies (`btree`: a BTREE table) into the server's `ha_statistics`. `show`: the server
/// asks for SHOW TABLE STATUS or the table's open (HA_STATUS_TIME/OPEN), which
/// show the real count.
pub fn info(btree: bool, s: &Stats, show: bool) -> Info {
    let mean = |rows: u64| s.data_length.checked_div(rows).unwrap_or(0);
    if btree {
        // Never 0 for the optimizer (as InnoDB's info()): it takes a table of 0
        // rows for empty and answers "Impossible WHERE" without reading it, so a
        // reader would not wait for the lock of a transaction that deleted every
        // row (not committed) and would see none (difftest findings #15).
        let records = if s.rows == 0 && !show { 1 } else { s.rows };
        return Info {
            records,
            data_length: s.data_length,   // the clustered tree's pages
            index_length: s.index_length, // the secondary trees' pages
            mean_rec_length: mean(s.rows),
            block_size: PAGE_SIZE as u32, // keyread_time uses it
        };
    }
    // An estimate (CSV before its first full scan) is at least 2, so the
    // optimizer does not take the table for a single row (a constant).
    let records = if !s.exact && s.rows < 2 { 2 } else { s.rows };
    Info { records, data_length: s.data_length, index_length: 0, mean_rec_length: mean(records), block_size: 0 }
}

/// records_in_range's answer from the entries counted in the range: never 0,
/// which the optimizer would take for certain (as InnoDB: no lock is held yet,
/// the range may fill before the statement reads it).
pub fn range_rows(counted: u64) -> u64 {
    counted.max(1)
}

/// Rows per value of each key prefix from the distinct values counted per prefix
/// (`n_diff`), halved as ha_innobase::info_low does ("MySQL seems to favor table
/// scans too much over index searches, we pretend index selectivity is 2 times
/// better than our estimate"): the optimizer then weighs ref access against
/// scans as it does for InnoDB, and SHOW INDEX shows about twice the distinct
/// values, as for InnoDB. At least 1 (0 is "unknown" to the server).
pub fn rec_per_key(rows: u64, n_diff: &[u64]) -> Vec<u64> {
    n_diff.iter().map(|&n| ((if n > 0 { rows / n } else { rows }) / 2).max(1)).collect()
}

/// A full scan's cost (`btree`: a BTREE table). BTREE reads the clustered tree: its pages, the meta page
/// not counted (InnoDB: the clustered index's size in pages); the others, the
/// rows read at 20 a unit plus a start-up cost.
pub fn scan_cost(btree: bool, records: u64, data_length: u64) -> f64 {
    if !btree {
        return records as f64 / 20.0 + 10.0;
    }
    (data_length as f64 / PAGE_SIZE as f64 - 1.0).max(1.0)
}

/// Reading `rows` rows over `ranges` ranges of a BTREE table's clustered tree
/// (of `records` rows, whose scan costs `scan`): the share of its pages they
/// fill plus a descent per range; the whole scan if they are more than the table
/// holds. (Through a secondary index the server's default applies, as InnoDB.)
pub fn primary_read_cost(scan: f64, records: u64, ranges: u32, rows: u64) -> f64 {
    if records < rows {
        return scan;
    }
    ranges as f64 + if records > 0 { rows as f64 / records as f64 * scan } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(rows: u64, exact: bool) -> Stats {
        Stats { rows, data_length: 3 * PAGE_SIZE as u64, index_length: 7, exact }
    }

    #[test]
    fn an_empty_btree_table_is_one_row_to_the_optimizer_and_none_to_show() {
        assert_eq!(info(true, &stats(0, true), false).records, 1);
        assert_eq!(info(true, &stats(0, true), true).records, 0);
        let i = info(true, &stats(4, true), false);
        assert_eq!((i.records, i.index_length, i.mean_rec_length, i.block_size), (4, 7, 3 * PAGE_SIZE as u64 / 4, PAGE_SIZE as u32));
    }

    #[test]
    fn an_estimated_row_count_is_at_least_two() {
        assert_eq!(info(false, &stats(0, false), false).records, 2);
        assert_eq!(info(false, &stats(1, false), true).records, 2);
        assert_eq!(info(false, &stats(1, true), false).records, 1);
        assert_eq!(info(false, &stats(0, true), false).mean_rec_length, 0);
    }

    #[test]
    fn rows_per_key_are_halved_and_never_zero() {
        assert_eq!(rec_per_key(100, &[10, 100, 0, 1000]), vec![5, 1, 50, 1]);
        assert_eq!(rec_per_key(0, &[0]), vec![1]);
        assert_eq!(range_rows(0), 1);
        assert_eq!(range_rows(9), 9);
    }

    #[test]
    fn costs_follow_the_clustered_trees_pages() {
        assert_eq!(scan_cost(true, 10, PAGE_SIZE as u64), 1.0);
        assert_eq!(scan_cost(true, 10, 11 * PAGE_SIZE as u64), 10.0);
        assert_eq!(scan_cost(false, 40, 0), 12.0);
        assert_eq!(primary_read_cost(10.0, 100, 2, 50), 7.0);
        assert_eq!(primary_read_cost(10.0, 100, 2, 500), 10.0);
        assert_eq!(primary_read_cost(10.0, 0, 3, 0), 3.0);
    }
}
