//! The bridge's status entry points (SHOW GLOBAL STATUS, SHOW ENGINE RUST STATUS,
//! INFORMATION_SCHEMA.RUST_TRX; docs/operations.md). They read counters and the
//! engine's gauges only, and never fail: a panic gives the empty answer.
use std::fmt::Write;

use super::bridge::{LockRow, PoolRow, StatusCounters, TableInfo, TrxRow};
use super::{ENGINE, guard_or};
use crate::metrics as m;

fn zero() -> StatusCounters {
    StatusCounters {
        pool_pages: 0,
        pool_cached: 0,
        pool_dirty: 0,
        pool_read_requests: 0,
        pool_reads: 0,
        pool_writes: 0,
        pool_evictions: 0,
        open_trees: 0,
        log_lsn: 0,
        log_synced_lsn: 0,
        checkpoint_lsn: 0,
        checkpoint_age: 0,
        log_size: 0,
        log_bytes_written: 0,
        log_writes: 0,
        log_fsyncs: 0,
        checkpoints: 0,
        trx_active: 0,
        trx_commits: 0,
        trx_rollbacks: 0,
        lock_waits: 0,
        lock_wait_micros: 0,
        lock_timeouts: 0,
        csv_bytes_scanned: 0,
        csv_rows_malformed: 0,
        archive_bytes_scanned: 0,
        archive_blocks_damaged: 0,
        panics_caught: 0,
    }
}

pub(super) fn status_counters() -> StatusCounters {
    guard_or("status_counters", zero, || {
        let mut s = zero();
        if let Some(e) = ENGINE.get() {
            let es = e.status();
            s.pool_pages = es.pool_pages;
            s.pool_cached = es.pool_cached;
            s.pool_dirty = es.pool_dirty;
            s.open_trees = es.open_trees;
            s.log_lsn = es.log_lsn;
            s.log_synced_lsn = es.log_synced_lsn;
            s.checkpoint_lsn = es.checkpoint_lsn;
            s.checkpoint_age = es.log_lsn.saturating_sub(es.checkpoint_lsn);
            s.log_size = es.log_size;
            s.trx_active = es.trx.len() as u64;
        }
        s.pool_read_requests = m::POOL_READ_REQUESTS.get();
        s.pool_reads = m::POOL_READS.get();
        s.pool_writes = m::POOL_WRITES.get();
        s.pool_evictions = m::POOL_EVICTIONS.get();
        s.log_bytes_written = m::LOG_BYTES_WRITTEN.get();
        s.log_writes = m::LOG_WRITES.get();
        s.log_fsyncs = m::LOG_FSYNCS.get();
        s.checkpoints = m::CHECKPOINTS.get();
        s.trx_commits = m::TRX_COMMITS.get();
        s.trx_rollbacks = m::TRX_ROLLBACKS.get();
        s.lock_waits = m::LOCK_WAITS.get();
        s.lock_wait_micros = m::LOCK_WAIT_MICROS.get();
        s.lock_timeouts = m::LOCK_TIMEOUTS.get();
        s.csv_bytes_scanned = m::CSV_BYTES_SCANNED.get();
        s.csv_rows_malformed = m::CSV_ROWS_MALFORMED.get();
        s.archive_bytes_scanned = m::ARCHIVE_BYTES_SCANNED.get();
        s.archive_blocks_damaged = m::ARCHIVE_BLOCKS_DAMAGED.get();
        s.panics_caught = m::PANICS_CAUGHT.get();
        s
    })
}

pub(super) fn trx_rows() -> Vec<TrxRow> {
    guard_or("trx_rows", Vec::new, || {
        let Some(e) = ENGINE.get() else { return Vec::new() };
        e.status()
            .trx
            .into_iter()
            .map(|t| TrxRow { id: t.id, age_secs: t.age_secs, changes: t.changes, state: t.state.to_string() })
            .collect()
    })
}

/// The report, InnoDB's monitor in spirit: sections of `name value` lines.
pub(super) fn engine_status_text() -> String {
    guard_or("engine_status_text", String::new, || {
        let s = status_counters();
        let mut o = String::new();
        let hit = if s.pool_read_requests > 0 {
            format!("{:.4}", 1.0 - s.pool_reads as f64 / s.pool_read_requests as f64)
        } else {
            "-".to_string()
        };
        let _ = writeln!(o, "BUFFER POOL (BTREE)");
        let _ = writeln!(o, "pages total {}, cached {}, dirty {}, free {}", s.pool_pages, s.pool_cached, s.pool_dirty, s.pool_pages.saturating_sub(s.pool_cached));
        let _ = writeln!(o, "read requests {}, reads from disk {}, hit ratio {}", s.pool_read_requests, s.pool_reads, hit);
        let _ = writeln!(o, "pages written {}, evictions {}, open tree files {}", s.pool_writes, s.pool_evictions, s.open_trees);
        let _ = writeln!(o, "LOG");
        let _ = writeln!(o, "lsn {}, synced up to {}, last checkpoint at {}, checkpoint age {}", s.log_lsn, s.log_synced_lsn, s.checkpoint_lsn, s.checkpoint_age);
        let _ = writeln!(o, "log file size {}, bytes written {}, writes {}, fsyncs {}, checkpoints {}", s.log_size, s.log_bytes_written, s.log_writes, s.log_fsyncs, s.checkpoints);
        let _ = writeln!(o, "TRANSACTIONS");
        let _ = writeln!(o, "committed {}, rolled back {}, active {}", s.trx_commits, s.trx_rollbacks, s.trx_active);
        let _ = writeln!(o, "table lock waits {}, waited {:.3} s in all, timeouts {}", s.lock_waits, s.lock_wait_micros as f64 / 1e6, s.lock_timeouts);
        for t in trx_rows() {
            let _ = writeln!(o, "trx {}: {}, {:.1} s, {} undo entries", t.id, t.state, t.age_secs, t.changes);
        }
        let _ = writeln!(o, "CSV AND ARCHIVE");
        let _ = writeln!(o, "csv bytes scanned {}, malformed rows found {}", s.csv_bytes_scanned, s.csv_rows_malformed);
        let _ = writeln!(o, "archive bytes read {}, damaged blocks found {}", s.archive_bytes_scanned, s.archive_blocks_damaged);
        let _ = writeln!(o, "BRIDGE");
        let _ = writeln!(o, "panics caught {}", s.panics_caught);
        o
    })
}

pub(super) fn table_rows() -> Vec<TableInfo> {
    guard_or("table_rows", Vec::new, || {
        crate::inventory::tables(std::path::Path::new("."))
            .into_iter()
            .map(|e| TableInfo {
                schema: e.schema,
                name: e.name,
                layout: e.layout.to_string(),
                format_version: e.format_version,
                rows: e.rows.unwrap_or(0),
                rows_known: e.rows.is_some(),
                data_bytes: e.data_bytes,
                other_bytes: e.other_bytes,
                files: e.files,
                attached_file: e.attached_file.unwrap_or_default(),
                csv_options: e.csv_options.unwrap_or_default(),
            })
            .collect()
    })
}

/// `./db/t.rbt` or `./db/t#i2.rbt` as (schema, table, index).
fn tree_names(p: &std::path::Path) -> (String, String, u32) {
    let schema = p.parent().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let file = p.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match file.rsplit_once("#i") {
        Some((t, n)) if n.parse::<u32>().is_ok() => (schema, t.to_string(), n.parse().unwrap()),
        _ => (schema, file, 0),
    }
}

pub(super) fn pool_rows() -> Vec<PoolRow> {
    guard_or("pool_rows", Vec::new, || {
        let Some(e) = ENGINE.get() else { return Vec::new() };
        e.status()
            .trees
            .into_iter()
            .map(|t| {
                let (schema, table, index) = tree_names(&t.path);
                PoolRow { schema, table, index, cached: t.cached, dirty: t.dirty.unwrap_or(0), dirty_known: t.dirty.is_some() }
            })
            .collect()
    })
}

pub(super) fn lock_rows() -> Vec<LockRow> {
    guard_or("lock_rows", Vec::new, || {
        crate::btree::lock::locks_now()
            .into_iter()
            .map(|e| {
                let schema = e.table.parent().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let table = e.table.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                LockRow {
                    schema,
                    table,
                    trx: e.trx,
                    exclusive: e.exclusive,
                    waiting: e.waiting_secs.is_some(),
                    waiting_secs: e.waiting_secs.unwrap_or(0.0),
                    blocked_by: e.blocked_by,
                }
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::tree_names;
    use std::path::Path;

    #[test]
    fn tree_files_name_their_table_and_index() {
        assert_eq!(tree_names(Path::new("./db/t.rbt")), ("db".into(), "t".into(), 0));
        assert_eq!(tree_names(Path::new("./db/t#i12.rbt")), ("db".into(), "t".into(), 12));
        assert_eq!(tree_names(Path::new("./d@002db/a#ib.rbt")), ("d@002db".into(), "a#ib".into(), 0));
    }
}
