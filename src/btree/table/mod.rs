//! A BTREE table: a clustered tree on the primary key (or a hidden row id) holding
//! the rows, and one tree per secondary index holding `secondary key + primary
//! key`. Isolation comes from table locks held to the end of the transaction
//! (shared to read, exclusive to write): serializable, with lock waits that time
//! out (`rust_lock_wait_timeout`). Keys arrive memcomparable from C++.
//!
//! - this file: [`BtreeTable`] (open, rows, reads, writes, CHECK, TRUNCATE) and
//!   the table's files (create, delete, rename);
//! - [`trx`]: the connection's transaction ([`TrxHandle`]);
//! - [`xa`]: the XA registry of prepared transactions;
//! - [`stats`]: index statistics and range estimates.
//!
//! Uses the layers below: `engine` (transactions), `lock` (table locks), `tree`.

pub mod autoinc;
pub mod mvcc;
pub mod purge;
mod repair;
mod rowlock;
mod stats;
mod trx;
mod xa;

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};

use parking_lot::Mutex;

use super::keyread::{self, Got};
use super::engine::{Closer, Engine, History, ReadView, Tree, Trx};
use mvcc::{SecValue, Vis, header, split_entry};
use super::page::{Kind, NONE};
use super::tree::{self, BTree, Cursor, ROOT, Reader, StoredStats, UNPACK_FORMAT};
use crate::error::{Error, Result};
use crate::fsutil::with_ext;
pub use super::lock::deadlock::{DeadlockReport, latest_deadlock};
pub use super::lock::{Interrupt, LOCK_WAIT_TIMEOUT_SECS, LockDenied, PROBE_EVERY, Probe, Request, StopCheck, TableLock, session_stopped, set_probe};
use super::lock::row::{RowLocks, row_locks};
use super::lock::{Stopper, mode, table_lock};
pub use rowlock::ESCALATE_AT;
pub use repair::RepairReport;
use repair::{RepairState, finish_interrupted_repair};
pub use stats::{ANALYZE_SAMPLE_LEAVES, PART_NULLABLE, STATS_SAMPLE_LEAVES};
pub use trx::TrxHandle;
pub use xa::{RecoverPass, adopt_recovered_prepared, end_prepared, prepared_xids, prepared_xids_given};
use xa::PREPARED;

/// Bytes in front of a clustered record's row image: the transaction id (6) and
/// the undo pointer (7), as InnoDB's records carry for MVCC (the pointer is 0
/// until read views exist).
pub const ROW_HEADER: usize = 13;

pub const HIDDEN_PK_LEN: usize = 8;

/// The file of index `i` (0: the clustered index).
pub fn index_path(table: &Path, i: usize) -> PathBuf {
    if i == 0 { with_ext(table, ".rbt") } else { with_ext(table, &format!("#i{i}.rbt")) }
}


/// How an index read positions (the server's ha_rkey_function, in Rust terms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Find {
    /// First entry >= key, that must start with key.
    Exact,
    /// First entry >= key.
    KeyOrNext,
    /// Last entry <= key (with entries starting with key counted as equal).
    KeyOrPrev,
    /// First entry > key (after every entry starting with key).
    AfterKey,
    /// Last entry < key.
    BeforeKey,
    /// Last entry starting with key.
    PrefixLast,
    /// Last entry starting with key, else the last before it.
    PrefixLastOrPrev,
}

/// The smallest byte string greater than every string starting with `p`; None
/// if there is none (all 0xFF).
fn successor(p: &[u8]) -> Option<Vec<u8>> {
    let mut s = p.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xFF {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

/// The shared part of an open table.
struct Shared {
    trees: Vec<Tree>,
    /// The table's path, and how its trees go back to the engine when it closes.
    path: PathBuf,
    closer: Closer,
    next_rowid: AtomicU64,
    lock: Arc<TableLock>,
    /// Its row locks (versioned tables, see [`rowlock`]).
    rows: Arc<RowLocks>,
    /// Whether the AUTO_INCREMENT counter has been checked against the column's
    /// largest value since the table was opened (C++ does it: it knows the column).
    autoinc_checked: AtomicBool,
    /// Cardinality estimates per index (see [`BtreeTable::key_stats`]).
    /// (the same as stored in each index's meta page)
    key_stats: Mutex<HashMap<usize, StoredStats>>,
    /// How many times they were counted from the trees since the open.
    stats_counted: AtomicU64,
    /// The engine's old versions of records (format [`mvcc::MVCC_FORMAT`] on).
    history: Arc<History>,
    /// Per index, the newest transaction that changed it (at least every id
    /// given before the open): an index-only read by a view that sees every
    /// transaction up to it needs no look at the clustered record.
    newest_change: Vec<AtomicU64>,
    /// When the table's rows were last replaced whole (created, TRUNCATE,
    /// REPAIR) in this run, as a mark in the order of ids ([`Engine::mark_id`]);
    /// 0: before this run. A read view made before it cannot read the table.
    defined: AtomicU64,
    /// Per tree, its row and page counts when last read (see
    /// [`BtreeTable::estimate`]).
    seen: Vec<(AtomicU64, AtomicU64)>,
    /// Some tree's file was found cut short at the open (see
    /// [`BtreeTable::writable`]): false spares every write a look at each
    /// tree under its latch.
    cut_short: bool,
}

/// [`Shared::defined`] of tables whose rows were replaced whole in this run,
/// by path (kept while the table is closed, moved by RENAME).
static DEFINED: LazyLock<Mutex<HashMap<PathBuf, u64>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The table's rows were replaced whole now (CREATE, the new table of a
/// copying ALTER, TRUNCATE, REPAIR): older read views cannot read it.
pub fn mark_defined(e: &Engine, table: &Path) {
    let id = e.mark_id();
    DEFINED.lock().insert(table.to_path_buf(), id);
    if let Some(s) = TABLES.lock().get(table).and_then(Weak::upgrade) {
        s.defined.store(id, Ordering::Release);
    }
}


impl Drop for Shared {
    /// The table's last user closed it: its trees' pages are written and the
    /// engine lets go of them (see [`Closer::close`]). Never unwinds.
    fn drop(&mut self) {
        for (i, t) in std::mem::take(&mut self.trees).into_iter().enumerate() {
            let p = index_path(&self.path, i);
            let c = &self.closer;
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.close(&p, t)));
        }
    }
}

static TABLES: LazyLock<Mutex<HashMap<PathBuf, Weak<Shared>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

pub struct BtreeTable {
    path: PathBuf,
    shared: Arc<Shared>,
    unique: Vec<bool>,
    hidden_pk: bool,
    // cursor
    cur: Cursor,
    cur_index: usize,
    desc: bool,
    /// Entries must start with this (Exact / next_same), else the scan ends.
    must_prefix: Option<Vec<u8>>,
    /// Index-only reads (the server's keyread): a secondary entry is not looked
    /// up in the clustered tree; [`Self::key`] and [`Self::pk`] are the row's.
    keys_only: bool,
    /// How secondary entries' values are laid out (by format).
    sec_value: SecValue,
    /// Rows are versioned and deletes only mark (format [`mvcc::MVCC_FORMAT`]
    /// on): see [`mvcc`].
    mvcc: bool,
    /// How the running statement reads (see [`StmtRead`]).
    read: StmtRead,
    /// Which version its reads see (set when it first reads).
    vis: Vis,
    key: Vec<u8>,
    val: Vec<u8>,
    /// A clustered record read for a secondary entry (versioned tables).
    rec: Vec<u8>,
    /// The current secondary entry's unpack bytes (empty for older formats).
    unpack: Vec<u8>,
    /// How index-only reads read an entry's columns back (from the shim).
    read_plan: keyread::Plan,
    /// What [`Self::read_entry`] read, a part each.
    got: Vec<Got>,
    /// The current row: its primary key and row image.
    pub pk: Vec<u8>,
    pub row: Vec<u8>,
    pub warnings: Vec<String>,
    /// Primary keys this handler gave to rows during the running scan (an UPDATE
    /// of the primary key): the scan skips them, or it would meet the rows it
    /// moved again and again (the Halloween problem).
    moved: std::collections::HashSet<Vec<u8>>,
    /// A REPAIR TABLE under way on this handle (see [`repair`]).
    repair: Option<Box<RepairState>>,
    /// The running statement reads with SKIP LOCKED (see [`Self::begin_statement`]).
    skip_locked: bool,
    /// ... and found the table locked by another transaction: it reads no rows.
    skipped: bool,
    /// The statement locks the whole table, not rows (LOCK TABLES, a read
    /// of the whole table for a copy; always for formats before
    /// [`mvcc::MVCC_FORMAT`]): see [`Self::row_level`].
    table_level: bool,
    /// Its row locks are exclusive (it writes, or reads FOR UPDATE).
    row_x: bool,
    /// Its locking reads lock gaps too (REPEATABLE READ, SERIALIZABLE).
    gaps: bool,
    /// How it locks rows (made at its first row lock).
    locker: Option<Arc<rowlock::Locker>>,
    /// The key of a lookup of the clustered index (Exact, KeyOrNext), until
    /// its first step: an entry of just that key is locked alone, without
    /// its gap (a whole primary key matched, as InnoDB).
    exact: Option<Vec<u8>>,
    /// An Exact lookup found its whole primary key: nothing follows.
    unique_hit: bool,
    /// Where the running scan began (its seek's bound), and the last entry
    /// its locking read locked: where it reads on from after a lock wait.
    scan_from: Bound<Vec<u8>>,
    locked_upto: Option<Vec<u8>>,
    /// The row locks the last read took (let go by [`Self::unlock_row`] at
    /// READ COMMITTED).
    fresh: Vec<(super::lock::row::Spot, super::lock::row::RowRequest)>,
}

/// The test hook `rust_debug_create_format`: the tree format version new tables
/// are created in (0, or one this build does not write: [`tree::FORMAT_VERSION`]),
/// so that tests in the real server can make a table of an older format and see it
/// read as that format and rebuilt by `ALTER TABLE ... FORCE`.
static DEBUG_CREATE_FORMAT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Sets the test hook `rust_debug_create_format` (0: off).
pub fn set_debug_create_format(format: u32) {
    DEBUG_CREATE_FORMAT.store(format, Ordering::Relaxed);
}

/// The format version a new table's trees are created in.
fn create_format() -> u32 {
    match DEBUG_CREATE_FORMAT.load(Ordering::Relaxed) {
        f if (tree::MIN_FORMAT_VERSION..tree::FORMAT_VERSION).contains(&f) => f,
        _ => tree::FORMAT_VERSION,
    }
}

/// Creates the (empty) trees of a table; `auto_inc`: the AUTO_INCREMENT counter
/// to start from (the next value is one more; CREATE ... AUTO_INCREMENT=N gives N-1).
pub fn create(table: &Path, indexes: usize, auto_inc: u64) -> Result<()> {
    let format = create_format();
    for i in 0..indexes {
        BTree::create_with(&index_path(table, i), if i == 0 { auto_inc } else { 0 }, format)?;
    }
    Ok(())
}

/// Removes a table's files (its trees forgotten by the engine first).
pub fn delete(e: &Engine, table: &Path) -> Result<()> {
    purge::forget(table);
    DEFINED.lock().remove(table);
    TABLES.lock().remove(table);
    finish_interrupted_repair(table, index_files(table))?;
    // the last index file first: a crash part-way leaves the first files, and the
    // server's DDL recovery (or the next DROP) removes the rest
    let mut n = 0;
    while index_path(table, n).exists() {
        n += 1;
    }
    for i in (0..n).rev() {
        let p = index_path(table, i);
        e.close_tree(&p, true)?;
        std::fs::remove_file(&p).map_err(|err| Error::io(format!("cannot remove '{}'", p.display()), err))?;
    }
    Ok(())
}

pub fn rename(e: &Engine, from: &Path, to: &Path) -> Result<()> {
    // (marks purge had not removed yet stay: reads skip them, and a rebuild
    // drops them)
    purge::forget(from);
    {
        let mut d = DEFINED.lock();
        match d.remove(from) {
            Some(id) => d.insert(to.to_path_buf(), id),
            None => d.remove(to),
        };
    }
    TABLES.lock().remove(from);
    finish_interrupted_repair(from, index_files(from))?;
    // Resumable: a crash between two files' renames (ALTER TABLE's last step) leaves
    // some under the new name, and the server's DDL recovery renames the table again;
    // a file already under the new name is skipped, not taken for the table's end.
    for i in 0.. {
        let (a, b) = (index_path(from, i), index_path(to, i));
        if !a.exists() {
            if b.exists() {
                continue;
            }
            break;
        }
        e.close_tree(&a, false)?;
        std::fs::rename(&a, &b).map_err(|err| Error::io(format!("cannot rename '{}'", a.display()), err))?;
    }
    Ok(())
}

/// How many index files the table has on disk.
fn index_files(table: &Path) -> usize {
    (0..).take_while(|&i| index_path(table, i).exists()).count()
}

pub fn exists(table: &Path) -> bool {
    index_path(table, 0).exists()
}

/// The next hidden row id of a table without a primary key: one past the largest
/// in its clustered tree (1 when it is empty). Used at open and after REPAIR.
pub(super) fn next_hidden_rowid(clustered: &Tree) -> Result<u64> {
    let mut t = clustered.write();
    let mut c = Cursor::default();
    t.seek(&mut c, Bound::Unbounded, true)?;
    let (mut k, mut v) = (vec![], vec![]);
    if t.next(&mut c, true, &mut k, &mut v)? && k.len() == HIDDEN_PK_LEN {
        return Ok(u64::from_be_bytes(k[..].try_into().unwrap()) + 1);
    }
    Ok(1)
}

impl BtreeTable {
    pub fn open(e: &Engine, table: &Path, unique: Vec<bool>, hidden_pk: bool) -> Result<BtreeTable> {
        let shared = {
            let mut reg = TABLES.lock();
            match reg.get(table).and_then(Weak::upgrade) {
                Some(s) => s,
                None => {
                    finish_interrupted_repair(table, unique.len())?;
                    let mut trees = Vec::new();
                    for i in 0..unique.len() {
                        trees.push(e.open_tree(&index_path(table, i))?);
                    }
                    let next = if hidden_pk { next_hidden_rowid(&trees[0])? } else { 1 };
                    // the statistics ANALYZE (or the automatic recount) stored:
                    // no sampling at first use after the open
                    let mut stats = HashMap::new();
                    for (i, t) in trees.iter().enumerate() {
                        if let Some(st) = t.read().stored_stats() {
                            stats.insert(i, st.clone());
                        }
                    }
                    let newest_change = trees.iter().map(|_| AtomicU64::new(e.next_trx_id())).collect();
                    let rows = row_locks(table);
                    for (i, t) in trees.iter().enumerate() {
                        t.write().on_undo_remove = Some(rowlock::undo_remove_hook(&rows, i));
                    }
                    let seen = trees.iter().map(|t| {
                        let t = t.read();
                        (AtomicU64::new(t.rows()), AtomicU64::new(t.pool().pages as u64))
                    }).collect();
                    let cut_short = trees.iter().any(|t| t.read().refuse_if_cut_short().is_err());
                    let s = Arc::new(Shared {
                        seen,
                        cut_short,
                        defined: AtomicU64::new(DEFINED.lock().get(table).copied().unwrap_or(0)),
                        history: e.history(),
                        newest_change,
                        trees,
                        path: table.to_path_buf(),
                        closer: e.closer(),
                        next_rowid: AtomicU64::new(next),
                        lock: table_lock(table),
                        rows,
                        autoinc_checked: AtomicBool::new(false),
                        key_stats: Mutex::new(stats),
                        stats_counted: AtomicU64::new(0),
                    });
                    reg.insert(table.to_path_buf(), Arc::downgrade(&s));
                    s
                }
            }
        };
        if shared.trees.len() != unique.len() {
            return Err(Error::Corrupt(format!(
                "{}: {} index files for {} indexes",
                table.display(),
                shared.trees.len(),
                unique.len()
            )));
        }
        let format = shared.trees[0].read().format();
        Ok(BtreeTable {
            path: table.to_path_buf(),
            shared,
            unique,
            hidden_pk,
            cur: Cursor::default(),
            cur_index: 0,
            desc: false,
            must_prefix: None,
            keys_only: false,
            sec_value: SecValue::of_format(format),
            mvcc: format >= mvcc::MVCC_FORMAT,
            read: StmtRead::Locking,
            vis: Vis::Newest,
            key: Vec::new(),
            val: Vec::new(),
            rec: Vec::new(),
            unpack: Vec::new(),
            read_plan: keyread::Plan::default(),
            got: Vec::new(),
            pk: Vec::new(),
            row: Vec::new(),
            warnings: Vec::new(),
            moved: std::collections::HashSet::new(),
            repair: None,
            skip_locked: false,
            skipped: false,
            table_level: false,
            row_x: false,
            gaps: true,
            locker: None,
            exact: None,
            unique_hit: false,
            fresh: Vec::new(),
            scan_from: Bound::Unbounded,
            locked_upto: None,
        })
    }

    pub fn rows(&self) -> u64 {
        self.shared.trees[0].read().rows()
    }

    /// The next AUTO_INCREMENT value: one more than the largest given or stored
    /// (kept in the clustered tree's meta page, so it survives a restart and a
    /// rollback, as InnoDB's persistent counter).
    pub fn auto_increment_next(&self) -> u64 {
        self.shared.trees[0].read().auto_increment().saturating_add(1)
    }

    /// A value was given to or stored in the AUTO_INCREMENT column: the counter
    /// moves up to it (never down).
    pub fn auto_increment_used(&self, v: u64) -> Result<()> {
        let mut t = self.shared.trees[0].write();
        if v > t.auto_increment() { t.set_auto_increment(v) } else { Ok(()) }
    }

    /// A statement's reservation of AUTO_INCREMENT values (see
    /// [`autoinc::reserve`]), read and moved under one hold of the tree's
    /// latch: writers of one table run side by side, and two must never
    /// reserve the same values.
    pub fn auto_increment_reserve(&self, r: &mut autoinc::Reservation) -> Result<()> {
        let mut t = self.shared.trees[0].write();
        match autoinc::reserve(r, t.auto_increment().saturating_add(1)) {
            Some(end) if end > t.auto_increment() => t.set_auto_increment(end).inspect_err(|_| r.first = u64::MAX),
            _ => Ok(()),
        }
    }

    /// Whether the counter was checked against the column since the table opened.
    pub fn auto_increment_checked(&self) -> bool {
        self.shared.autoinc_checked.load(Ordering::Acquire)
    }

    pub fn set_auto_increment_checked(&self) {
        self.shared.autoinc_checked.store(true, Ordering::Release);
    }

    /// A statement on this table begins (the server's external_lock):
    /// `exclusive` if it writes the table or reads it FOR UPDATE (the lock is
    /// then taken now, before it reads: no lock upgrade, which two such
    /// transactions would wait on for each other); `skip_locked` for SELECT ... SKIP
    /// LOCKED. A lock is held for the whole table, so SKIP LOCKED skips the
    /// whole table when another transaction holds a conflicting lock on it:
    /// the statement never waits and reads no row of it (InnoDB skips the
    /// locked rows; here every row is covered by the table lock). Rows it does
    /// read are locked as the statement asked, to the end of the transaction.
    /// A `low_priority` write (DELETE/UPDATE LOW_PRIORITY) lets the readers
    /// that come while it waits go first ([`crate::btree::lock::Request`]).
    ///
    /// `read` says how its reads go: a plain read of a table of format
    /// [`mvcc::MVCC_FORMAT`] on takes no lock and reads from a read view
    /// (see [`StmtRead`]); every other read takes the table's shared lock.
    pub fn begin_statement(&mut self, e: &Engine, h: &mut TrxHandle, want: impl Into<Request>, skip_locked: bool, read: StmtRead) -> Result<()> {
        let want = want.into();
        self.skip_locked = skip_locked;
        self.skipped = false;
        self.row_x = want.exclusive;
        self.locker = None;
        self.read = if want.exclusive || !self.mvcc || xa::held_by_recovered(&self.path) { StmtRead::Locking } else { read };
        // the statement's view now (HANDLER ... READ NEXT steps on without a seek)
        self.vis = match self.read {
            StmtRead::Snapshot | StmtRead::Statement => Vis::View(h.view(e, self.read == StmtRead::Statement)),
            _ => Vis::Newest,
        };
        // a view older than the table's rows (TRUNCATE, a copying ALTER, REPAIR
        // since it was made) would read them as empty: InnoDB's error instead
        if let Vis::View(v) = &self.vis {
            if v.made_before(self.shared.defined.load(Ordering::Acquire)) {
                self.vis = Vis::Newest;
                return Err(Error::TableDefChanged);
            }
        }
        if want.exclusive {
            self.statement_lock(e, h, want)?;
        }
        Ok(())
    }

    /// How the next statement locks (the shim says, before
    /// [`Self::begin_statement`]): `table_level` for LOCK TABLES and reads
    /// of the whole table for a copy (INSERT ... SELECT's source under
    /// statement binlogging, ALTER), whose table lock is the old S/X; `gaps`
    /// at REPEATABLE READ and SERIALIZABLE (next-key locks).
    pub fn set_lock_scope(&mut self, table_level: bool, gaps: bool) {
        self.table_level = table_level;
        self.gaps = gaps;
    }

    /// Takes the lock a read needs (shared; held already if the statement
    /// took it exclusive; row-level, the table's intention lock, the rows
    /// being locked as they are read), or for a consistent read its read
    /// view; false: SKIP LOCKED found it held by another transaction, so
    /// the statement reads no rows of this table.
    fn statement_lock(&mut self, e: &Engine, h: &mut TrxHandle, want: impl Into<Request>) -> Result<bool> {
        let want = want.into();
        if self.skipped {
            return Ok(false);
        }
        // a consistent read took its view in begin_statement: no lock
        if self.read != StmtRead::Locking {
            return Ok(true);
        }
        self.vis = Vis::Newest;
        let rows = self.row_level();
        let want = if rows { Request::intention(self.row_x || want.exclusive) } else { want };
        let r = if !self.skip_locked { h.lock(e, &self.shared.lock, want) } else { h.lock_nowait(e, &self.shared.lock, want) };
        match r {
            Err(Error::LockWait) if self.skip_locked => {
                self.skipped = true;
                self.cur = Cursor::default();
                Ok(false)
            }
            Err(err) => Err(err),
            Ok(()) => {
                if rows {
                    self.locker(e, h);
                }
                Ok(true)
            }
        }
    }

    /// The table's format version (its clustered file's): how C++ builds keys.
    pub fn key_format(&self) -> u32 {
        self.shared.trees[0].read().format()
    }

    /// Tree `i`'s row and page counts for the server's estimates (info():
    /// every statement asks): read if its latch is free now, else the counts
    /// last read. Never waits: with many writers of one table, waiting for
    /// the latch here (spinning first) was a fifth of the threads' time.
    pub(super) fn estimate(&self, i: usize) -> (u64, u64) {
        let (rows, pages) = &self.shared.seen[i];
        if let Some(t) = self.shared.trees[i].try_read() {
            rows.store(t.rows(), Ordering::Relaxed);
            pages.store(t.pool().pages as u64, Ordering::Relaxed);
        }
        (rows.load(Ordering::Relaxed), pages.load(Ordering::Relaxed))
    }

    /// The row count for the server's estimates (see [`Self::estimate`]).
    pub fn rows_estimate(&self) -> u64 {
        self.estimate(0).0
    }

    pub fn data_length(&self) -> (u64, u64) {
        let size = |i: usize| self.estimate(i).1 * super::page::PAGE_SIZE as u64;
        let data = size(0);
        let index = (1..self.shared.trees.len()).map(size).sum();
        (data, index)
    }

    fn secondary_entry(sec: &[u8], pk: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(sec.len() + pk.len());
        k.extend_from_slice(sec);
        k.extend_from_slice(pk);
        k
    }

    /// A secondary entry's value: the primary key (formats before
    /// [`UNPACK_FORMAT`]); from that format on, the primary key's length (LEB128;
    /// the primary key itself is the end of the entry's key) and then the unpack
    /// bytes C++ gives (what rebuilds the string columns its sort keys cannot
    /// give back): `len(pk) unpack` (docs/btree-format.md).
    fn secondary_value(&self, pk: &[u8], unpack: &[u8]) -> Vec<u8> {
        mvcc::entry_value(self.sec_value, pk, unpack, false)
    }

    /// Whether a unique index already has an entry with this key (other than for
    /// row `pk`; a delete-marked entry is no row's).
    fn unique_taken(&self, i: usize, sec: &[u8], pk: &[u8]) -> Result<bool> {
        unique_taken_in(&mut self.shared.trees[i].write(), sec, pk, self.sec_value)
    }

    /// Inserts a row. `sec[i]`: the key of secondary index i+1 and whether any of
    /// its parts is NULL (NULLs never collide in a unique index). Returns the index
    /// whose unique key is taken, if any (nothing is changed then).
    pub fn insert<S: SecondaryKey>(&mut self, e: &Engine, h: &mut TrxHandle, pk: &[u8], row: &[u8], sec: &[S]) -> Result<Option<usize>> {
        h.lock(e, &self.shared.lock, self.write_lock())?;
        let pk: Vec<u8> = if self.hidden_pk {
            self.shared.next_rowid.fetch_add(1, Ordering::Relaxed).to_be_bytes().to_vec()
        } else {
            pk.to_vec()
        };
        // Duplicates are found in the server's key order, the primary key
        // first (as InnoDB): REPLACE's "update the last unique key's row" and
        // ODKU's "update the row of the first duplicate" depend on it.
        if self.mvcc {
            return self.insert_versioned(e, h, pk, row, sec);
        }
        let trx = h.trx(e);
        let v = mvcc::record(mvcc::Header { trx: trx.id, roll: 0, deleted: false }, row);
        if !e.insert(trx, &self.shared.trees[0], &pk, &v)? {
            return Ok(Some(0));
        }
        for (j, s) in sec.iter().enumerate() {
            if self.unique[j + 1] && !s.has_null() && self.unique_taken(j + 1, s.key(), &pk)? {
                // taken back: the statement goes on (REPLACE, IGNORE, ODKU)
                e.delete(trx, &self.shared.trees[0], &pk)?;
                return Ok(Some(j + 1));
            }
        }
        for (j, s) in sec.iter().enumerate() {
            let v = self.secondary_value(&pk, s.unpack());
            e.insert(trx, &self.shared.trees[j + 1], &Self::secondary_entry(s.key(), &pk), &v)?;
        }
        self.pk = pk;
        Ok(None)
    }

    /// The table lock a write takes: IX when it locks rows, else X.
    fn write_lock(&self) -> Request {
        if self.row_level() { Request::intention(true) } else { Request::from(true) }
    }

    pub fn delete<S: SecondaryKey>(&mut self, e: &Engine, h: &mut TrxHandle, pk: &[u8], sec: &[S]) -> Result<()> {
        h.lock(e, &self.shared.lock, self.write_lock())?;
        if self.mvcc {
            return self.delete_versioned(e, h, pk, sec);
        }
        let trx = h.trx(e);
        e.delete(trx, &self.shared.trees[0], pk)?;
        for (j, s) in sec.iter().enumerate() {
            e.delete(trx, &self.shared.trees[j + 1], &Self::secondary_entry(s.key(), pk))?;
        }
        Ok(())
    }

    /// Replaces row `old_pk` by `row` under `new_pk` (the same unless the primary
    /// key changed). Returns the index whose unique key the new row would take.
    #[allow(clippy::too_many_arguments)]
    pub fn update<S: SecondaryKey>(
        &mut self,
        e: &Engine,
        h: &mut TrxHandle,
        old_pk: &[u8],
        new_pk: &[u8],
        row: &[u8],
        old_sec: &[S],
        new_sec: &[S],
    ) -> Result<Option<usize>> {
        h.lock(e, &self.shared.lock, self.write_lock())?;
        let new_pk = if self.hidden_pk { old_pk } else { new_pk };
        let pk_changed = old_pk != new_pk;
        if self.mvcc {
            return self.update_versioned(e, h, old_pk, new_pk, row, old_sec, new_sec);
        }
        // the primary key first, then the secondary keys in order (see insert)
        if pk_changed {
            let mut probe = Vec::new();
            if self.shared.trees[0].write().get(new_pk, &mut probe)? {
                return Ok(Some(0));
            }
        }
        for (j, s) in new_sec.iter().enumerate() {
            let changed = pk_changed || old_sec[j].key() != s.key();
            if changed && self.unique[j + 1] && !s.has_null() && self.unique_taken(j + 1, s.key(), old_pk)? {
                return Ok(Some(j + 1));
            }
        }
        let trx = h.trx(e);
        let v = mvcc::record(mvcc::Header { trx: trx.id, roll: 0, deleted: false }, row);
        if pk_changed {
            e.delete(trx, &self.shared.trees[0], old_pk)?;
            e.insert(trx, &self.shared.trees[0], new_pk, &v)?;
            self.moved.insert(new_pk.to_vec());
        } else {
            e.update(trx, &self.shared.trees[0], old_pk, &v)?;
        }
        for (j, s) in new_sec.iter().enumerate() {
            let t = &self.shared.trees[j + 1];
            if pk_changed || old_sec[j].key() != s.key() {
                e.delete(trx, t, &Self::secondary_entry(old_sec[j].key(), old_pk))?;
                let v = self.secondary_value(new_pk, s.unpack());
                e.insert(trx, t, &Self::secondary_entry(s.key(), new_pk), &v)?;
            } else if self.sec_value != SecValue::Pk && old_sec[j].unpack() != s.unpack() {
                // one key, another value ('a' to 'A' under a _ci collation):
                // the entry's unpack bytes change
                let v = self.secondary_value(new_pk, s.unpack());
                e.update(trx, t, &Self::secondary_entry(s.key(), new_pk), &v)?;
            }
        }
        Ok(None)
    }

    /// Reads row `pk` into [`Self::row`].
    pub fn get(&mut self, e: &Engine, h: &mut TrxHandle, pk: &[u8]) -> Result<bool> {
        if !self.statement_lock(e, h, false)? {
            return Ok(false);
        }
        if let Some(lk) = self.row_locking() {
            return self.load_locked(&lk, pk);
        }
        self.load(pk)
    }

    /// The locker of a locking read that locks rows (None: a consistent
    /// read, or one under a table lock).
    fn row_locking(&self) -> Option<Arc<rowlock::Locker>> {
        if self.read == StmtRead::Locking && self.row_level() { self.locker.clone() } else { None }
    }

    fn load(&mut self, pk: &[u8]) -> Result<bool> {
        if self.mvcc {
            return self.load_versioned(pk, false);
        }
        let val = &mut self.val;
        let found = tree::read(&self.shared.trees[0], |r| r.get(pk, val))?;
        if !found {
            return Ok(false);
        }
        if self.val.len() < ROW_HEADER {
            return Err(Error::Corrupt(format!("{}: a clustered record shorter than its header", self.path.display())));
        }
        self.pk.clear();
        self.pk.extend_from_slice(pk);
        self.row.clear();
        self.row.extend_from_slice(&self.val[ROW_HEADER..]);
        Ok(true)
    }

    /// Positions a cursor on index `i` (0: clustered, a full scan with `Find::KeyOrNext`
    /// and an empty key) and reads the first row.
    pub fn seek(&mut self, e: &Engine, h: &mut TrxHandle, i: usize, key: &[u8], find: Find) -> Result<bool> {
        if !self.statement_lock(e, h, false)? {
            return Ok(false);
        }
        self.cur_index = i;
        self.must_prefix = None;
        self.moved.clear();
        self.unique_hit = false;
        self.exact = (i == 0 && matches!(find, Find::Exact | Find::KeyOrNext) && !key.is_empty()).then(|| key.to_vec());
        let (bound, desc): (Bound<Vec<u8>>, bool) = match find {
            Find::Exact => {
                self.must_prefix = Some(key.to_vec());
                (Bound::Included(key.to_vec()), false)
            }
            Find::KeyOrNext => (if key.is_empty() { Bound::Unbounded } else { Bound::Included(key.to_vec()) }, false),
            Find::AfterKey => match successor(key) {
                Some(s) => (Bound::Included(s), false),
                None => {
                    self.cur = Cursor::default();
                    return Ok(false);
                }
            },
            Find::BeforeKey => (Bound::Excluded(key.to_vec()), true),
            Find::KeyOrPrev | Find::PrefixLastOrPrev => match successor(key) {
                Some(s) => (Bound::Excluded(s), true),
                None => (Bound::Unbounded, true),
            },
            Find::PrefixLast => {
                self.must_prefix = Some(key.to_vec());
                match successor(key) {
                    Some(s) => (Bound::Excluded(s), true),
                    None => (Bound::Unbounded, true),
                }
            }
        };
        self.desc = desc;
        self.scan_from = bound.clone();
        self.locked_upto = None;
        {
            let b = match &bound {
                Bound::Included(k) => Bound::Included(&k[..]),
                Bound::Excluded(k) => Bound::Excluded(&k[..]),
                Bound::Unbounded => Bound::Unbounded,
            };
            let cur = &mut self.cur;
            tree::read(&self.shared.trees[i], |r| r.seek(cur, b, desc))?;
            if let Some(lk) = self.row_locking().filter(|_| desc && self.gaps && !self.skip_locked) {
                self.lock_gap_above(&lk, b)?;
            }
        }
        self.step()
    }

    /// The first or last row of index `i`.
    pub fn edge(&mut self, e: &Engine, h: &mut TrxHandle, i: usize, last: bool) -> Result<bool> {
        if !self.statement_lock(e, h, false)? {
            return Ok(false);
        }
        self.unique_hit = false;
        self.exact = None;
        if let Some(lk) = self.row_locking().filter(|_| last && self.gaps && !self.skip_locked) {
            self.cur_index = i;
            self.lock_gap_above(&lk, Bound::Unbounded)?;
        }
        self.edge_unlocked(i, last)
    }

    /// The first or last row of index `i`, without a table lock: what another
    /// transaction has not committed may be seen (for the AUTO_INCREMENT check at
    /// open, where a value too large is harmless).
    pub fn edge_unlocked(&mut self, i: usize, last: bool) -> Result<bool> {
        self.scan_from = Bound::Unbounded;
        self.locked_upto = None;
        self.keys_only = false;
        self.cur_index = i;
        self.must_prefix = None;
        self.moved.clear();
        self.desc = last;
        let cur = &mut self.cur;
        tree::read(&self.shared.trees[i], |r| r.seek(cur, Bound::Unbounded, last))?;
        self.step()
    }

    /// The last row of index `i`, without any lock (see [`Self::edge_unlocked`]).
    pub fn last_unlocked(&mut self, i: usize) -> Result<bool> {
        self.keys_only = false;
        self.cur_index = i;
        self.must_prefix = None;
        self.moved.clear();
        self.desc = true;
        let cur = &mut self.cur;
        tree::read(&self.shared.trees[i], |r| r.seek(cur, Bound::Unbounded, true))?;
        self.step_plain()
    }

    /// The next row in the cursor's direction (or the other way with `reverse`).
    pub fn next(&mut self, reverse: bool) -> Result<bool> {
        if self.skipped {
            return Ok(false);
        }
        if reverse {
            // turn around: continue from the current entry the other way
            self.desc = !self.desc;
            self.scan_from = Bound::Excluded(self.key.clone());
            self.locked_upto = None;
            let (cur, desc) = (&mut self.cur, self.desc);
            let b = Bound::Excluded(&self.key[..]);
            tree::read(&self.shared.trees[self.cur_index], |r| r.seek(cur, b, desc))?;
        }
        self.step()
    }

    /// Ends prefix matching: `next` continues past entries of the prefix.
    pub fn set_prefix(&mut self, p: Option<Vec<u8>>) {
        self.must_prefix = p;
        self.unique_hit = false;
    }

    /// Index-only reads from now on (the next seek or edge and the steps after
    /// it): a secondary index's entries give [`Self::key`] and [`Self::pk`], and
    /// [`Self::row`] stays empty (no clustered lookup). No effect on the
    /// clustered index, whose entries are the rows.
    pub fn set_keys_only(&mut self, on: bool) {
        self.keys_only = on;
    }

    /// Reads the row of the current entry of an index-only read (one whose entry
    /// passed the server's pushed index condition) into [`Self::row`]; the cursor
    /// stays where it is.
    pub fn fetch_current(&mut self) -> Result<()> {
        let pk = std::mem::take(&mut self.pk);
        let found = |t: &mut Self| if t.mvcc { t.load_versioned(&pk, true) } else { t.load(&pk) };
        let ok = self.cur_index != 0 && !pk.is_empty() && found(self)?;
        if !ok && self.mvcc && self.read == StmtRead::Uncommitted {
            // a READ UNCOMMITTED read takes no lock: the row of an entry it took
            // may be gone since (an insert rolled back); the read steps over it
            self.pk = pk;
            return Err(Error::RowGone);
        }
        if !ok {
            self.pk = pk;
            return Err(Error::Corrupt(format!(
                "{}: index {} has an entry for a row that does not exist",
                self.path.display(),
                self.cur_index
            )));
        }
        Ok(())
    }

    /// The shim's plan for reading entries back ([`Self::read_entry`]).
    pub fn set_read_plan(&mut self, plan: keyread::Plan) {
        self.read_plan = plan;
    }

    /// The current secondary entry, of the server's key `key`, read back by the
    /// plan: a [`Got`] a part (the key's, then the primary key's when the plan
    /// reads it), the bytes into `out`.
    pub fn read_entry(&mut self, key: usize, out: &mut Vec<u8>) -> Result<&[Got]> {
        match self.read_plan.read(key, &self.key, &self.unpack, out, &mut self.got) {
            Ok(()) => Ok(&self.got),
            Err(why) => Err(Error::Corrupt(format!("{}: an index entry read back: {why}", self.path.display()))),
        }
    }

    /// The current entry's key: for a secondary index the secondary key's bytes
    /// followed by the primary key's, for the clustered index the primary key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The current secondary entry's unpack bytes (see [`Self::secondary_value`];
    /// empty for the clustered index and for tables of older formats).
    pub fn unpack(&self) -> &[u8] {
        &self.unpack
    }

    /// The cursor's next entry the statement sees: a row of the clustered
    /// index, or a secondary entry (with its row unless index-only).
    fn step(&mut self) -> Result<bool> {
        match self.row_locking() {
            Some(lk) => self.step_locking(&lk),
            None => self.step_plain(),
        }
    }

    /// [`Self::step`] without row locks.
    fn step_plain(&mut self) -> Result<bool> {
        loop {
            let found = {
                let (cur, desc, key, val) = (&mut self.cur, self.desc, &mut self.key, &mut self.val);
                tree::read(&self.shared.trees[self.cur_index], |r| r.next(cur, desc, key, val))?
            };
            if !found {
                return Ok(false);
            }
            if let Some(p) = &self.must_prefix {
                if !self.key.starts_with(p) {
                    return Ok(false);
                }
            }
            if self.cur_index == 0 {
                if !self.moved.is_empty() && self.moved.contains(&self.key) {
                    continue;
                }
                if self.val.len() < ROW_HEADER {
                    return Err(Error::Corrupt(format!("{}: a clustered record shorter than its header", self.path.display())));
                }
                if self.mvcc && !self.take_version()? {
                    continue;
                }
                self.pk.clear();
                self.pk.extend_from_slice(&self.key);
                if !self.mvcc {
                    self.row.clear();
                    self.row.extend_from_slice(&self.val[ROW_HEADER..]);
                }
                return Ok(true);
            }
            // the entry's value holds the primary key (and the unpack bytes,
            // from format UNPACK_FORMAT on): enough for the key's columns and
            // for position(); index-only, the row itself is not read
            let (deleted, u, p) = split_entry(&self.key, &self.val, self.sec_value)?;
            if !self.moved.is_empty() && self.moved.contains(p) {
                continue;
            }
            self.unpack.clear();
            self.unpack.extend_from_slice(u);
            self.pk.clear();
            self.pk.extend_from_slice(p);
            if self.mvcc {
                if self.entry_seen(deleted)? {
                    return Ok(true);
                }
                continue;
            }
            if self.keys_only {
                self.row.clear();
            } else {
                self.fetch_current()?;
            }
            return Ok(true);
        }
    }

    /// CHECK TABLE: every tree's invariants, and every secondary entry matching a
    /// row (and as many entries as rows).
    pub fn check(&mut self) -> Result<Vec<String>> {
        self.check_with(&mut StopCheck::new(0))
    }

    /// About how many steps [`Self::check_with`] takes: every page of every tree,
    /// and every secondary entry once more (progress reports).
    pub fn check_steps(&self) -> u64 {
        let pages: u64 = self.shared.trees.iter().map(|t| t.read().pool().page_count() as u64).sum();
        pages + self.rows() * (self.shared.trees.len() as u64 - 1)
    }

    /// [`Self::check`], stopping with `Error::Interrupted` when `stop` says so
    /// (KILL).
    pub fn check_with(&mut self, stop: &mut StopCheck) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        for (i, t) in self.shared.trees.iter().enumerate() {
            match t.write().check_with(&mut || stop.step()) {
                Err(Error::Interrupted) => return Err(Error::Interrupted),
                Err(e) => problems.push(format!("index {i}: {e}")),
                Ok(()) => {}
            }
        }
        // rows and entries not delete-marked (every record and entry in
        // tables of older formats)
        let rows = if self.mvcc && self.shared.trees.len() > 1 { self.live_rows(stop)? } else { self.rows() };
        for i in 1..self.shared.trees.len() {
            let mut n = if self.mvcc { 0 } else { self.shared.trees[i].read().rows() };
            let mut c = Cursor::default();
            let (mut k, mut v) = (vec![], vec![]);
            let mut probe = vec![];
            let mut missing = 0;
            {
                let mut t = self.shared.trees[i].write();
                t.seek(&mut c, Bound::Unbounded, false)?;
            }
            loop {
                let more = self.shared.trees[i].write().next(&mut c, false, &mut k, &mut v)?;
                if !more {
                    break;
                }
                stop.step()?;
                let pk = match split_entry(&k, &v, self.sec_value) {
                    // a delete-marked entry whose row purge has removed
                    // before it is garbage no read takes (its purge may come
                    // later, or never after a restart: a rebuild drops it)
                    Ok((true, _, _)) => continue,
                    Ok((false, _, pk)) => {
                        n += self.mvcc as u64;
                        pk
                    }
                    Err(_) => &[][..],
                };
                if pk.is_empty() || !k.ends_with(pk) || !self.shared.trees[0].write().get(pk, &mut probe)? {
                    missing += 1;
                }
            }
            if missing > 0 {
                problems.push(format!("index {i} has {missing} entries that match no row"));
            }
            if n != rows {
                problems.push(format!("index {i} has {n} entries for {rows} rows"));
            }
        }
        Ok(problems)
    }

    /// The clustered records that are not delete-marked (CHECK TABLE).
    fn live_rows(&self, stop: &mut StopCheck) -> Result<u64> {
        let mut c = Cursor::default();
        let (mut k, mut v) = (vec![], vec![]);
        self.shared.trees[0].write().seek(&mut c, Bound::Unbounded, false)?;
        let mut n = 0;
        while self.shared.trees[0].write().next(&mut c, false, &mut k, &mut v)? {
            stop.step()?;
            n += !header(&v)?.deleted as u64;
        }
        Ok(n)
    }

    /// TRUNCATE TABLE: every tree reset to empty at once, whatever its size
    /// (the files cut to an empty tree, the pages freed), crash safe through one
    /// RESET redo record (see [`Engine::reset_trees`]); the AUTO_INCREMENT
    /// counter starts again from 1, as InnoDB's. Not transactional (the server
    /// commits before and after this DDL). Takes the table's exclusive lock for
    /// `h` first: a transaction that changed the table and is still open (a
    /// prepared XA transaction, which no metadata lock of the server's holds
    /// after a restart) makes it wait, then fail with a lock wait timeout,
    /// rather than truncate rows it could later roll back into the empty table.
    pub fn truncate(&mut self, e: &Engine, h: &mut TrxHandle) -> Result<()> {
        h.lock(e, &self.shared.lock, true)?;
        if h.trx.as_ref().is_some_and(|t| self.shared.trees.iter().any(|x| t.changed(x))) {
            // (the server commits before TRUNCATE: not expected)
            return Err(Error::Unsupported("TRUNCATE of a table the transaction has changed".into()));
        }
        let trees: Vec<_> =
            self.shared.trees.iter().enumerate().map(|(i, t)| (index_path(&self.path, i), t.clone())).collect();
        self.cur = Cursor::default();
        self.shared.key_stats.lock().clear();
        let r = e.reset_trees(&trees);
        mark_defined(e, &self.path);
        // (the trees are empty in memory once the RESET record is logged, even
        // when a later sync failed)
        if self.shared.trees[0].read().rows() == 0 {
            self.shared.next_rowid.store(1, Ordering::Relaxed);
        }
        r
    }
}

/// A secondary entry (key `k`, value `v`) split into its unpack bytes and its
/// primary key (see [`mvcc::SecValue`]).
pub fn split_secondary_value<'a>(k: &'a [u8], v: &'a [u8], f: SecValue) -> Result<(&'a [u8], &'a [u8])> {
    split_entry(k, v, f).map(|(_, u, pk)| (u, pk))
}

/// No secondary keys (a table with the clustered index only).
pub const NO_SEC: &[(Vec<u8>, bool)] = &[];

/// A secondary key as C++ gives it (insert, update, REPAIR): its bytes, whether
/// a part is NULL, and its unpack bytes (empty: none; kept only from format
/// [`UNPACK_FORMAT`] on).
pub trait SecondaryKey {
    fn key(&self) -> &[u8];
    fn has_null(&self) -> bool;
    fn unpack(&self) -> &[u8] {
        &[]
    }
}

impl SecondaryKey for (Vec<u8>, bool) {
    fn key(&self) -> &[u8] {
        &self.0
    }
    fn has_null(&self) -> bool {
        self.1
    }
}

impl SecondaryKey for (Vec<u8>, bool, Vec<u8>) {
    fn key(&self) -> &[u8] {
        &self.0
    }
    fn has_null(&self) -> bool {
        self.1
    }
    fn unpack(&self) -> &[u8] {
        &self.2
    }
}

/// Whether unique index tree `t` has an entry with key `sec` for a row other
/// than `pk` (not delete-marked: a marked entry is a deleted row's, or an old
/// key's).
fn unique_taken_in(t: &mut BTree, sec: &[u8], pk: &[u8], f: SecValue) -> Result<bool> {
    let mut c = Cursor::default();
    t.seek(&mut c, Bound::Included(sec), false)?;
    let (mut k, mut v) = (vec![], vec![]);
    while t.next(&mut c, false, &mut k, &mut v)? {
        if !k.starts_with(sec) {
            return Ok(false);
        }
        let (deleted, _, p) = split_entry(&k, &v, f)?;
        if !deleted && p != pk {
            return Ok(true);
        }
    }
    Ok(false)
}

/// How a statement reads a table (the shim tells, from the server's lock type
/// and the isolation level; InnoDB's rules).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StmtRead {
    /// Under the table's lock: shared for a locking read (FOR SHARE, LOCK IN
    /// SHARE MODE, SERIALIZABLE inside a transaction, LOCK TABLES, the source
    /// of INSERT ... SELECT under statement binlogging), exclusive for a write
    /// or FOR UPDATE. Reads the newest version. Also every read of a table of
    /// a format before [`mvcc::MVCC_FORMAT`].
    #[default]
    Locking,
    /// A consistent read from the transaction's read view, made at its first
    /// such read (REPEATABLE READ; SERIALIZABLE with autocommit).
    Snapshot,
    /// A consistent read from a view of the statement's own (READ COMMITTED).
    Statement,
    /// The newest version, committed or not, without a lock (READ UNCOMMITTED).
    Uncommitted,
}

#[cfg(test)]
mod tests;
