//! Counters behind `SHOW GLOBAL STATUS LIKE 'Rust%'` and `SHOW ENGINE RUST STATUS`
//! (docs/operations.md). Each is a relaxed atomic bumped where the work happens (no
//! lock on a hot path); they are read one by one, so a snapshot is only as
//! consistent as the counters of a running server can be. They count since the
//! plugin was loaded.
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

impl Default for Counter {
    fn default() -> Self {
        Counter::new()
    }
}

// The BTREE buffer pool.
/// Page accesses through a pool (cached or not).
pub static POOL_READ_REQUESTS: Counter = Counter::new();
/// Pages read from a file.
pub static POOL_READS: Counter = Counter::new();
/// Pages written to a file (eviction, checkpoint, close).
pub static POOL_WRITES: Counter = Counter::new();
/// Cached pages given up to make room for another.
pub static POOL_EVICTIONS: Counter = Counter::new();

// The redo log.
pub static LOG_BYTES_WRITTEN: Counter = Counter::new();
pub static LOG_WRITES: Counter = Counter::new();
pub static LOG_FSYNCS: Counter = Counter::new();
pub static CHECKPOINTS: Counter = Counter::new();
/// Breaches of the checkpoint invariants checked as the engine runs (a tree
/// written after a checkpoint that did not list it; a tree forgotten by the
/// engine while another user still held it): never expected, each also said in
/// the error log with the stack that met it (ci/crashloop fails on the line).
pub static CHECKPOINT_BREACHES: Counter = Counter::new();

// Transactions and table locks (BTREE).
pub static TRX_COMMITS: Counter = Counter::new();
/// Delete-marked records and entries purge removed (BTREE, versioned tables).
pub static PURGED: Counter = Counter::new();
pub static TRX_ROLLBACKS: Counter = Counter::new();
/// Lock requests that had to wait, and how long they waited in all.
pub static LOCK_WAITS: Counter = Counter::new();
pub static LOCK_WAIT_MICROS: Counter = Counter::new();
pub static LOCK_TIMEOUTS: Counter = Counter::new();
/// Deadlocks found (each broken by rolling back one transaction).
pub static LOCK_DEADLOCKS: Counter = Counter::new();
/// Transactions that took a whole table in place of many row locks of it.
pub static LOCK_ESCALATIONS: Counter = Counter::new();

// CSV and ARCHIVE.
pub static CSV_BYTES_SCANNED: Counter = Counter::new();
/// CSV lines a read, CHECK or REPAIR found malformed.
pub static CSV_ROWS_MALFORMED: Counter = Counter::new();
pub static ARCHIVE_BYTES_SCANNED: Counter = Counter::new();
/// ARCHIVE blocks a read, CHECK or REPAIR found damaged.
pub static ARCHIVE_BLOCKS_DAMAGED: Counter = Counter::new();

/// Panics the bridge's guard caught (each one an error to its statement).
pub static PANICS_CAUGHT: Counter = Counter::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up() {
        static C: Counter = Counter::new();
        C.inc();
        C.add(41);
        assert_eq!(C.get(), 42);
    }
}
