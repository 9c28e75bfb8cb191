//! The bridge's status entry points (SHOW GLOBAL STATUS, SHOW ENGINE RUST STATUS,
//! the INFORMATION_SCHEMA tables; docs/operations.md). They read counters and the
//! engine's gauges only, and never fail: a panic gives the empty answer. The
//! lists themselves (variable names, each table's columns and rows) are written
//! here, once; C++ only turns them into the server's SHOW_VAR and
//! ST_FIELD_INFO and stores the cells into its fields.
use std::fmt::Write;

use super::bridge::{Cell, Column, ColumnKind, InfoTable, LayoutKind, RowCounts, StatusVar};
use super::{ENGINE, guard_or};
use crate::metrics as m;

/// The engine's counters since the plugin was loaded and its gauges now.
#[derive(Default)]
struct StatusCounters {
    pool_pages: u64,
    pool_cached: u64,
    pool_dirty: u64,
    pool_read_requests: u64,
    pool_reads: u64,
    pool_writes: u64,
    pool_evictions: u64,
    open_trees: u64,
    log_lsn: u64,
    log_synced_lsn: u64,
    checkpoint_lsn: u64,
    checkpoint_age: u64,
    log_size: u64,
    log_bytes_written: u64,
    log_writes: u64,
    log_fsyncs: u64,
    checkpoints: u64,
    trx_active: u64,
    trx_commits: u64,
    trx_rollbacks: u64,
    lock_waits: u64,
    lock_wait_micros: u64,
    lock_timeouts: u64,
    lock_deadlocks: u64,
    lock_escalations: u64,
    csv_bytes_scanned: u64,
    csv_rows_malformed: u64,
    archive_bytes_scanned: u64,
    archive_blocks_damaged: u64,
    panics_caught: u64,
    history_length: u64,
    purge_pending: u64,
    purged: u64,
    read_views: u64,
}

/// The rows the handler counted: which count of which layout's `RowCounts`.
type RowCount = (&'static str, fn(&RowCounts) -> u64, LayoutKind);
const ROW_COUNTS: [RowCount; 10] = [
    ("rows_deleted_btree", |c| c.deleted, LayoutKind::Btree),
    ("rows_deleted_csv", |c| c.deleted, LayoutKind::Csv),
    ("rows_inserted_archive", |c| c.inserted, LayoutKind::Archive),
    ("rows_inserted_btree", |c| c.inserted, LayoutKind::Btree),
    ("rows_inserted_csv", |c| c.inserted, LayoutKind::Csv),
    ("rows_read_archive", |c| c.read, LayoutKind::Archive),
    ("rows_read_btree", |c| c.read, LayoutKind::Btree),
    ("rows_read_csv", |c| c.read, LayoutKind::Csv),
    ("rows_updated_btree", |c| c.updated, LayoutKind::Btree),
    ("rows_updated_csv", |c| c.updated, LayoutKind::Csv),
];

/// SHOW GLOBAL STATUS LIKE 'Rust%': the variables, in alphabetical order (the
/// server shows them as given), with the handler's row counts `rows`.
pub(super) fn status_vars(rows: &[RowCounts]) -> Vec<StatusVar> {
    guard_or("status_vars", Vec::new, || {
        let s = status_counters();
        let mut v: Vec<(&str, u64)> = vec![
            ("archive_blocks_damaged", s.archive_blocks_damaged),
            ("archive_bytes_read", s.archive_bytes_scanned),
            ("buffer_pool_evictions", s.pool_evictions),
            ("buffer_pool_pages_cached", s.pool_cached),
            ("buffer_pool_pages_dirty", s.pool_dirty),
            (
                "buffer_pool_pages_free",
                s.pool_pages.saturating_sub(s.pool_cached),
            ),
            ("buffer_pool_pages_total", s.pool_pages),
            ("buffer_pool_pages_written", s.pool_writes),
            ("buffer_pool_read_requests", s.pool_read_requests),
            ("buffer_pool_reads", s.pool_reads),
            ("checkpoint_age", s.checkpoint_age),
            ("checkpoints", s.checkpoints),
            ("csv_bytes_scanned", s.csv_bytes_scanned),
            ("csv_rows_malformed", s.csv_rows_malformed),
            ("history_length", s.history_length),
            ("lock_deadlocks", s.lock_deadlocks),
            ("lock_wait_microseconds", s.lock_wait_micros),
            ("lock_wait_timeouts", s.lock_timeouts),
            ("lock_waits", s.lock_waits),
            ("log_bytes_written", s.log_bytes_written),
            ("log_file_size", s.log_size),
            ("log_fsyncs", s.log_fsyncs),
            ("log_lsn", s.log_lsn),
            ("log_lsn_checkpoint", s.checkpoint_lsn),
            ("log_lsn_synced", s.log_synced_lsn),
            ("log_writes", s.log_writes),
            ("open_tree_files", s.open_trees),
            ("panics_caught", s.panics_caught),
            ("purge_pending", s.purge_pending),
            ("purged", s.purged),
            ("read_views", s.read_views),
            ("trx_active", s.trx_active),
            ("trx_committed", s.trx_commits),
            ("trx_rolled_back", s.trx_rollbacks),
        ];
        v.extend(ROW_COUNTS.iter().map(|&(n, count, l)| (n, rows.get(l.repr as usize).map_or(0, count))));
        v.sort_by_key(|&(n, _)| n);
        v.into_iter()
            .map(|(n, value)| StatusVar {
                name: n.to_string(),
                value,
            })
            .collect()
    })
}

fn status_counters() -> StatusCounters {
    {
        let mut s = StatusCounters::default();
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
            s.history_length = e.history().len().0 as u64;
            s.purge_pending = crate::btree::table::purge::pending(e) as u64;
            s.read_views = e.read_views_open() as u64;
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
        s.lock_deadlocks = m::LOCK_DEADLOCKS.get();
        s.lock_escalations = m::LOCK_ESCALATIONS.get();
        s.csv_bytes_scanned = m::CSV_BYTES_SCANNED.get();
        s.csv_rows_malformed = m::CSV_ROWS_MALFORMED.get();
        s.archive_bytes_scanned = m::ARCHIVE_BYTES_SCANNED.get();
        s.archive_blocks_damaged = m::ARCHIVE_BLOCKS_DAMAGED.get();
        s.panics_caught = m::PANICS_CAUGHT.get();
        s.purged = m::PURGED.get();
        s
    }
}

/// The report, InnoDB's monitor in spirit: sections of `name value` lines.
pub(super) fn engine_status_text() -> String {
    guard_or("engine_status_text", String::new, || {
        let s = status_counters();
        let mut o = String::new();
        let hit = if s.pool_read_requests > 0 {
            format!(
                "{:.4}",
                1.0 - s.pool_reads as f64 / s.pool_read_requests as f64
            )
        } else {
            "-".to_string()
        };
        let _ = writeln!(o, "BUFFER POOL (BTREE)");
        let _ = writeln!(
            o,
            "pages total {}, cached {}, dirty {}, free {}",
            s.pool_pages,
            s.pool_cached,
            s.pool_dirty,
            s.pool_pages.saturating_sub(s.pool_cached)
        );
        let _ = writeln!(
            o,
            "read requests {}, reads from disk {}, hit ratio {}",
            s.pool_read_requests, s.pool_reads, hit
        );
        let _ = writeln!(
            o,
            "pages written {}, evictions {}, open tree files {}",
            s.pool_writes, s.pool_evictions, s.open_trees
        );
        let _ = writeln!(o, "LOG");
        let _ = writeln!(
            o,
            "lsn {}, synced up to {}, last checkpoint at {}, checkpoint age {}",
            s.log_lsn, s.log_synced_lsn, s.checkpoint_lsn, s.checkpoint_age
        );
        let _ = writeln!(
            o,
            "log file size {}, bytes written {}, writes {}, fsyncs {}, checkpoints {}",
            s.log_size, s.log_bytes_written, s.log_writes, s.log_fsyncs, s.checkpoints
        );
        let _ = writeln!(o, "TRANSACTIONS");
        let _ = writeln!(
            o,
            "committed {}, rolled back {}, active {}",
            s.trx_commits, s.trx_rollbacks, s.trx_active
        );
        let _ = writeln!(
            o,
            "read views open {}, history length {} (old row versions kept), purge pending {}, purged {}",
            s.read_views, s.history_length, s.purge_pending, s.purged
        );
        let _ = writeln!(
            o,
            "lock waits {}, waited {:.3} s in all, timeouts {}, deadlocks {}, escalations to a table lock {}",
            s.lock_waits,
            s.lock_wait_micros as f64 / 1e6,
            s.lock_timeouts,
            s.lock_deadlocks,
            s.lock_escalations
        );
        for t in ENGINE.get().map(|e| e.status().trx).unwrap_or_default() {
            let _ = writeln!(
                o,
                "trx {}: {}, {:.1} s, {} undo entries",
                t.id, t.state, t.age_secs, t.changes
            );
        }
        latest_deadlock_text(&mut o);
        let _ = writeln!(o, "CSV AND ARCHIVE");
        let _ = writeln!(
            o,
            "csv bytes scanned {}, malformed rows found {}",
            s.csv_bytes_scanned, s.csv_rows_malformed
        );
        let _ = writeln!(
            o,
            "archive bytes read {}, damaged blocks found {}",
            s.archive_bytes_scanned, s.archive_blocks_damaged
        );
        let _ = writeln!(o, "BRIDGE");
        let _ = writeln!(o, "panics caught {}", s.panics_caught);
        o
    })
}

/// The LATEST DETECTED DEADLOCK section (none until one is found): when, each
/// transaction of the cycle with the table lock it waited for, the victim.
fn latest_deadlock_text(o: &mut String) {
    let Some(d) = crate::btree::table::latest_deadlock() else { return };
    let _ = writeln!(o, "LATEST DETECTED DEADLOCK");
    let secs = d.when.duration_since(std::time::UNIX_EPOCH).map_or(0, |t| t.as_secs());
    let ago = d.when.elapsed().map_or(0.0, |t| t.as_secs_f64());
    let _ = writeln!(o, "at unix time {secs} ({ago:.1} s ago), a cycle of {} transactions", d.cycle.len());
    for c in &d.cycle {
        let _ = writeln!(
            o,
            "trx {} (weight {}) waited for {} {} on {}, behind the next",
            c.trx,
            c.weight,
            if c.exclusive { "an exclusive" } else { "a shared" },
            c.kind,
            c.table.display()
        );
    }
    let _ = writeln!(o, "rolled back: trx {}", d.victim);
}

/// A column of an INFORMATION_SCHEMA table: its name, type, length (text) and
/// whether it may be NULL.
fn col(name: &str, kind: ColumnKind, length: u32, nullable: bool) -> Column {
    Column {
        name: name.to_string(),
        kind,
        length,
        nullable,
    }
}

/// The server's NAME_CHAR_LEN: a schema or table name column.
const NAME: u32 = 64;

/// The columns of an INFORMATION_SCHEMA table (docs/operations.md).
#[allow(non_upper_case_globals)]
pub(super) fn info_columns(t: InfoTable) -> Vec<Column> {
    const U64: ColumnKind = ColumnKind::U64;
    const U32: ColumnKind = ColumnKind::U32;
    const Double: ColumnKind = ColumnKind::Double;
    const Text: ColumnKind = ColumnKind::Text;
    guard_or("info_columns", Vec::new, || match t {
        InfoTable::Trx => vec![
            col("TRX_ID", U64, 0, false),
            col("STATE", Text, 16, false),
            col("AGE_SECONDS", Double, 0, false),
            col("UNDO_ENTRIES", U64, 0, false),
        ],
        InfoTable::Tables => vec![
            col("TABLE_SCHEMA", Text, NAME, false),
            col("TABLE_NAME", Text, NAME, false),
            col("LAYOUT", Text, 8, false),
            col("FORMAT_VERSION", U32, 0, true),
            col("ROWS_ESTIMATE", U64, 0, true),
            col("DATA_BYTES", U64, 0, false),
            col("OTHER_BYTES", U64, 0, false),
            col("FILES", Text, 2048, false),
            col("ATTACHED_FILE", Text, 1024, true),
            col("CSV_OPTIONS", Text, 128, true),
        ],
        InfoTable::BufferPool => vec![
            col("TABLE_SCHEMA", Text, NAME, false),
            col("TABLE_NAME", Text, NAME, false),
            col("INDEX_NUMBER", U32, 0, false),
            col("PAGES_CACHED", U64, 0, false),
            col("PAGES_DIRTY", U64, 0, true),
        ],
        InfoTable::Locks => vec![
            col("TABLE_SCHEMA", Text, NAME, false),
            col("TABLE_NAME", Text, NAME, false),
            col("TRX_ID", U64, 0, false),
            col("LOCK_TYPE", Text, 6, false),
            col("LOCK_MODE", Text, 32, false),
            col("LOCK_STATUS", Text, 8, false),
            col("WAIT_SECONDS", Double, 0, true),
            col("INDEX_NO", U32, 0, true),
            col("LOCK_DATA", Text, 8192, true),
        ],
        InfoTable::LockWaits => vec![
            col("REQUESTING_TRX_ID", U64, 0, false),
            col("REQUESTED_MODE", Text, 32, false),
            col("BLOCKING_TRX_ID", U64, 0, false),
            col("TABLE_SCHEMA", Text, NAME, false),
            col("TABLE_NAME", Text, NAME, false),
            col("WAIT_SECONDS", Double, 0, false),
        ],
        _ => Vec::new(),
    })
}

fn num(v: u64) -> Cell {
    Cell {
        null: false,
        number: v,
        real: 0.0,
        text: String::new(),
    }
}
fn real(v: f64) -> Cell {
    Cell {
        null: false,
        number: 0,
        real: v,
        text: String::new(),
    }
}
fn text(v: impl Into<String>) -> Cell {
    Cell {
        null: false,
        number: 0,
        real: 0.0,
        text: v.into(),
    }
}
fn null() -> Cell {
    Cell {
        null: true,
        number: 0,
        real: 0.0,
        text: String::new(),
    }
}

/// A text cell, NULL when empty.
fn text_or_null(v: Option<String>) -> Cell {
    v.filter(|s| !s.is_empty()).map_or_else(null, text)
}

/// The rows of an INFORMATION_SCHEMA table, one cell a column of
/// [`info_columns`], row after row.
pub(super) fn info_rows(t: InfoTable) -> Vec<Cell> {
    guard_or("info_rows", Vec::new, || {
        let mut out = Vec::new();
        match t {
            InfoTable::Trx => {
                for t in ENGINE.get().map(|e| e.status().trx).unwrap_or_default() {
                    out.extend([num(t.id), text(t.state), real(t.age_secs), num(t.changes)]);
                }
            }
            InfoTable::Tables => {
                // the schema and table names are the file names' (the server's
                // own encoding of special characters, e.g. @002d, left as it is)
                for e in crate::inventory::tables(std::path::Path::new(".")) {
                    let version = if e.format_version != 0 {
                        num(e.format_version.into())
                    } else {
                        null()
                    };
                    out.extend([
                        text(e.schema),
                        text(e.name),
                        text(e.layout),
                        version,
                        e.rows.map_or_else(null, num),
                    ]);
                    out.extend([
                        num(e.data_bytes),
                        num(e.other_bytes),
                        text(e.files),
                        text_or_null(e.attached_file),
                        text_or_null(e.csv_options),
                    ]);
                }
            }
            InfoTable::BufferPool => {
                for t in ENGINE.get().map(|e| e.status().trees).unwrap_or_default() {
                    let (schema, table, index) = tree_names(&t.path);
                    out.extend([
                        text(schema),
                        text(table),
                        num(index.into()),
                        num(t.cached),
                        t.dirty.map_or_else(null, num),
                    ]);
                }
            }
            InfoTable::Locks => {
                for e in crate::btree::lock::locks_now() {
                    let (schema, table) = lock_names(&e.table);
                    let status = text(if e.waiting_secs.is_some() {
                        "WAITING"
                    } else {
                        "GRANTED"
                    });
                    out.extend([
                        text(schema),
                        text(table),
                        num(e.trx),
                        text(if e.row.is_some() { "RECORD" } else { "TABLE" }),
                        text(e.mode),
                        status,
                        e.waiting_secs.map_or_else(null, real),
                        e.row.as_ref().map_or_else(null, |r| num(r.0.into())),
                        text_or_null(e.row.map(|r| r.1)),
                    ]);
                }
            }
            InfoTable::LockWaits => {
                for e in crate::btree::lock::locks_now() {
                    let (schema, table) = lock_names(&e.table);
                    for by in e.blocked_by {
                        let secs = real(e.waiting_secs.unwrap_or(0.0));
                        out.extend([
                            num(e.trx),
                            text(e.mode.clone()),
                            num(by),
                            text(schema.clone()),
                            text(table.clone()),
                            secs,
                        ]);
                    }
                }
            }
            _ => {}
        }
        out
    })
}

/// A locked table's path `./db/t` as (schema, table).
fn lock_names(p: &std::path::Path) -> (String, String) {
    let name = |p: Option<&std::ffi::OsStr>| {
        p.map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    (
        name(p.parent().and_then(|d| d.file_name())),
        name(p.file_name()),
    )
}

/// `./db/t.rbt` or `./db/t#i2.rbt` as (schema, table, index).
fn tree_names(p: &std::path::Path) -> (String, String, u32) {
    let schema = p
        .parent()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = p
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match file.rsplit_once("#i") {
        Some((t, n)) if n.parse::<u32>().is_ok() => (schema, t.to_string(), n.parse().unwrap()),
        _ => (schema, file, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::tree_names;
    use std::path::Path;

    #[test]
    fn tree_files_name_their_table_and_index() {
        assert_eq!(
            tree_names(Path::new("./db/t.rbt")),
            ("db".into(), "t".into(), 0)
        );
        assert_eq!(
            tree_names(Path::new("./db/t#i12.rbt")),
            ("db".into(), "t".into(), 12)
        );
        assert_eq!(
            tree_names(Path::new("./d@002db/a#ib.rbt")),
            ("d@002db".into(), "a#ib".into(), 0)
        );
    }
}
