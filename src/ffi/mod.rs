//! The one boundary between the server's C++ and the engine: a `cxx` bridge.
//!
//! Only bytes and plain numbers cross it. Every function returns a handler error code
//! (0 for success) and never unwinds: each call runs under [`guard`], which turns a
//! Rust panic into `HA_ERR_RUST_PANIC` with a message, and marks the handle broken so
//! it is not used in a half-changed state (the server reopens it after FLUSH TABLES).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use crate::consts;
use crate::csv::table::{self as csv, CheckStep, CsvOptions, CsvTable};
use crate::error::{Error, Result};

#[cxx::bridge(namespace = "ha_rust_ffi")]
pub mod bridge {
    /// What `SHOW TABLE STATUS` and the optimizer get.
    struct Stats {
        rows: u64,
        data_length: u64,
        index_length: u64,
        exact: bool,
    }

    /// What CHECK/REPAIR found.
    struct CheckSummary {
        rows: u64,
        damaged: u64,
        torn_tail: bool,
        /// Rows in damaged ARCHIVE blocks (that REPAIR cannot keep).
        lost_rows: u64,
    }

    /// The largest key stored in an ARCHIVE table's index (order-preserving).
    struct KeyMax {
        has_key: bool,
        key: u64,
        /// The AUTO_INCREMENT value before the first (CREATE ... AUTO_INCREMENT=N).
        base: u64,
    }

    extern "Rust" {
        type Table;
        /// A connection's BTREE transaction.
        type TrxHandle;
        /// What stops a connection's lock waits, held by C++ beside its TrxHandle
        /// for the server's kill callback (another thread).
        type TrxWake;

        /// Starts the BTREE engine (recovery included) with its files in `dir`.
        fn engine_start(dir: &[u8], pool_pages: u64, flush_policy: u8, log_size: u64, err: &mut String) -> i32;
        /// Checkpoint at shutdown.
        fn engine_stop() -> i32;
        fn engine_set_flush_policy(policy: u8);
        fn engine_set_lock_wait_timeout(secs: u64);
        /// Log bytes between checkpoints (rust_log_file_size).
        fn engine_set_log_size(bytes: u64);
        /// Moves one line of what recovery did into `out`; false when none is left.
        fn engine_take_note(out: &mut String) -> bool;

        fn trx_new() -> Box<TrxHandle>;
        /// The server session (an opaque token for the interrupt probe).
        fn trx_set_session(t: &mut TrxHandle, session: usize);
        fn trx_wake(t: &TrxHandle) -> Box<TrxWake>;
        /// KILL / KILL QUERY of the connection: its lock wait, if any, stops.
        fn trx_wake_raise(w: &TrxWake);
        fn trx_stmt_begin(t: &mut TrxHandle);
        fn trx_stmt_rollback(t: &mut TrxHandle, err: &mut String) -> i32;
        /// `durable`: false for a transaction prepared in the binlog's two-phase
        /// commit (the commit record is appended, made durable by `log_flush`).
        fn trx_commit(t: &mut TrxHandle, durable: bool, err: &mut String) -> i32;
        /// Makes everything the BTREE log holds durable (the binlog's
        /// `commit_checkpoint_request`).
        fn log_flush(err: &mut String) -> i32;
        fn trx_rollback(t: &mut TrxHandle, err: &mut String) -> i32;
        /// Two-phase commit: prepares under `xid` (opaque bytes), durably.
        fn trx_prepare(t: &mut TrxHandle, xid: &[u8], err: &mut String) -> i32;
        /// The connection ends: keeps a prepared transaction for XA COMMIT/ROLLBACK
        /// by XID (true), or does nothing (false: roll back as usual).
        fn trx_detach_prepared(t: &mut TrxHandle) -> bool;
        /// The XIDs of prepared transactions no connection holds that the
        /// server's current recovery pass has not been given, each as `u32
        /// length` and bytes.
        fn xa_prepared() -> Vec<u8>;
        /// The first XIDs of what `xa_prepared` returned (the same framing) were
        /// handed to the server (or logged as malformed); `pass_ended`: it got
        /// fewer than it had room for, so its recovery pass is over.
        fn xa_given(xids: &[u8], pass_ended: bool);
        /// Commits or rolls back the prepared transaction `xid` no connection holds:
        /// 0 done, -1 no such transaction, else an error code.
        fn xa_end(xid: &[u8], commit: bool, err: &mut String) -> i32;
        fn trx_savepoint(t: &TrxHandle) -> u64;
        fn trx_rollback_to(t: &mut TrxHandle, sp: u64, err: &mut String) -> i32;

        /// Layouts, in the order of the LAYOUT table option's values.
        fn layout_supported(layout: u8) -> bool;

        fn table_create(
            path: &[u8],
            layout: u8,
            external: &[u8],
            header: bool,
            separator: u8,
            writable: bool,
            columns: u32,
            header_image: &[u8],
            auto_inc_base: u64,
            index_count: u32,
            err: &mut String,
        ) -> i32;
        fn table_delete(path: &[u8], err: &mut String) -> i32;
        fn table_rename(from: &[u8], to: &[u8], err: &mut String) -> i32;
        fn table_open(
            path: &[u8],
            layout: u8,
            external: &[u8],
            header: bool,
            separator: u8,
            writable: bool,
            columns: u32,
            level: i32,
            unique_mask: u64,
            index_count: u32,
            hidden_pk: bool,
        ) -> Box<Table>;

        /// The error of the last failed call on this handle (or of the open).
        fn last_error(self: &Table) -> &str;
        fn open_error(self: &Table) -> i32;

        fn scan_start(self: &mut Table) -> i32;
        /// 0 with a row ready, HA_ERR_END_OF_FILE at the end, or an error.
        fn scan_next(self: &mut Table) -> i32;
        fn scan_end(self: &mut Table) -> i32;
        fn read_at(self: &mut Table, pos: u64) -> i32;
        fn position(self: &Table) -> u64;
        fn current_line(self: &Table) -> u64;
        /// CSV: the current row's decoded text, and `[offset, length]` pairs into it
        /// (length `u32::MAX` for NULL). ARCHIVE: the row image C++ packed, valid
        /// until the next call on this handle.
        fn record_data(self: &Table) -> &[u8];
        fn record_spans(self: &Table) -> &[u32];

        /// Appends a row. ARCHIVE: `key` is the row's index key (order-preserving),
        /// `keyed` whether the table has the index, `unique` whether it is unique;
        /// HA_ERR_FOUND_DUPP_KEY when a unique key does not grow.
        /// `segs`: ARCHIVE only, where each column's bytes end in `image` (the null
        /// bytes first), so blocks can store rows by column.
        fn insert(self: &mut Table, image: &[u8], segs: &[u32], key: u64, keyed: bool, unique: bool) -> i32;
        /// ARCHIVE: positions on the rows whose key is `key` (then scan_next).
        fn lookup(self: &mut Table, key: u64) -> i32;
        fn max_key(self: &Table) -> KeyMax;
        /// ARCHIVE: recompresses every row into full blocks.
        /// ARCHIVE: recompress; stops with HA_ERR_ABORTED_BY_USER when session
        /// `session` is killed (the table as it was).
        fn optimize(self: &mut Table, session: usize) -> i32;
        fn update_current(self: &mut Table, image: &[u8]) -> i32;
        fn delete_current(self: &mut Table) -> i32;
        fn set_bulk(self: &mut Table, on: bool) -> i32;
        fn flush(self: &mut Table) -> i32;
        fn truncate(self: &mut Table) -> i32;
        /// Forgets pending UPDATE/DELETE work after its statement failed.
        fn discard(self: &mut Table);

        fn stats(self: &Table) -> Stats;
        fn set_exact_rows(self: &Table, rows: u64);
        /// Moves one pending warning into `out`; false when there is none.
        fn take_warning(self: &mut Table, out: &mut String) -> bool;

        fn check_start(self: &mut Table) -> i32;
        /// 0: a row to judge is current; 1: a damaged record (its text in `out`);
        /// HA_ERR_END_OF_FILE at the end; else an error.
        fn check_next(self: &mut Table, out: &mut String) -> i32;
        /// `why` is bytes: it quotes a value from the file, which need not be UTF-8.
        fn check_reject(self: &mut Table, why: &[u8], out: &mut String);
        fn check_finish(self: &mut Table, repair: bool, out: &mut CheckSummary) -> i32;

        // BTREE. Secondary keys `sec` are, for each secondary index in order,
        // `u8 has_null, u32 length, memcomparable key`. `dup` receives the index
        // whose unique key is taken when HA_ERR_FOUND_DUPP_KEY is returned.
        fn bt_insert(self: &mut Table, trx: &mut TrxHandle, pk: &[u8], row: &[u8], sec: &[u8], dup: &mut u32) -> i32;
        fn bt_update(
            self: &mut Table,
            trx: &mut TrxHandle,
            old_pk: &[u8],
            new_pk: &[u8],
            row: &[u8],
            old_sec: &[u8],
            new_sec: &[u8],
            dup: &mut u32,
        ) -> i32;
        fn bt_delete(self: &mut Table, trx: &mut TrxHandle, pk: &[u8], sec: &[u8]) -> i32;
        /// 0 with the row current, HA_ERR_KEY_NOT_FOUND.
        fn bt_get(self: &mut Table, trx: &mut TrxHandle, pk: &[u8]) -> i32;
        /// Positions on index `index` (0: clustered) by `find` (see btree::table::Find,
        /// in declaration order); 0 with a row, or HA_ERR_END_OF_FILE.
        fn bt_seek(self: &mut Table, trx: &mut TrxHandle, index: u32, key: &[u8], find: u8) -> i32;
        fn bt_edge(self: &mut Table, trx: &mut TrxHandle, index: u32, last: bool) -> i32;
        fn bt_next(self: &mut Table, reverse: bool) -> i32;
        /// Only entries starting with `prefix` (or any, with `on` false).
        fn bt_set_prefix(self: &mut Table, prefix: &[u8], on: bool);
        /// The current row's primary key (memcomparable, or the hidden row id).
        fn bt_pk(self: &Table) -> &[u8];
        /// Index-only reads for the next seek/edge and its steps (the server's
        /// keyread): a secondary entry is not looked up in the clustered tree, so
        /// `record_data` is empty; its key bytes are `bt_key`, its row's `bt_pk`.
        fn bt_set_keys_only(self: &mut Table, on: bool);
        /// After an index-only step: the current entry's row (index condition
        /// pushdown: the entry passed the condition).
        fn bt_fetch_current(self: &mut Table) -> i32;
        /// The current entry's key (secondary: the key's bytes, then the primary
        /// key's; clustered: the primary key).
        fn bt_key(self: &Table) -> &[u8];
        /// Entries of index `index` in a range (records_in_range: exact over a few
        /// leaves, else estimated from the tree). Modes: 0 unbounded, 1 inclusive,
        /// 2 exclusive (of every entry starting with the key).
        fn bt_count_range(self: &mut Table, index: u32, min: &[u8], min_mode: u8, max: &[u8], max_mode: u8) -> u64;
        /// Distinct values of each key prefix of index `index` into `out`, one per
        /// entry of `parts` (each part's length, top bit set for a nullable part);
        /// `analyze`: computed again from a larger sample (ANALYZE TABLE).
        fn bt_key_stats(self: &mut Table, index: u32, parts: &[u32], analyze: bool, out: &mut Vec<u64>) -> i32;
        /// The BTREE table's format version (docs/btree-format.md): 2 and up,
        /// binary and NO PAD string key parts end with their length.
        fn bt_key_format(self: &Table) -> u32;
        /// CHECK TABLE: the problems found, one per line, and how many; stops
        /// with HA_ERR_ABORTED_BY_USER when session `session` is killed.
        fn bt_check(self: &mut Table, session: usize, out: &mut String, problems: &mut u32) -> i32;
        /// Takes the table lock for the transaction now (exclusive: for a statement
        /// that writes, or SELECT ... FOR UPDATE).
        fn bt_lock(self: &mut Table, trx: &mut TrxHandle, exclusive: bool) -> i32;
        /// The next AUTO_INCREMENT value (persistent counter, see btree-format.md).
        fn bt_auto_increment(self: &Table) -> u64;
        /// Moves the counter up to `v` (a value given or stored); never down.
        fn bt_auto_increment_used(self: &mut Table, v: u64) -> i32;
        /// Whether the counter was checked against the column since the table was
        /// opened (by any handler of it), and marking it checked.
        fn bt_auto_increment_checked(self: &Table) -> bool;
        fn bt_set_auto_increment_checked(self: &Table);
        /// The last row of index `index`, read without a table lock (for the check
        /// above); 0 with the row current, HA_ERR_END_OF_FILE if the index is empty.
        fn bt_last_unlocked(self: &mut Table, index: u32) -> i32;
        /// TRUNCATE TABLE: the table's trees reset to empty at once (crash
        /// safe, not transactional), the AUTO_INCREMENT counter to its start.
        fn bt_truncate(self: &mut Table, trx: &mut TrxHandle) -> i32;
    }
}

use bridge::{CheckSummary, KeyMax, Stats};
use crate::archive::table::{self as arch, ArchiveOptions, ArchiveTable};
use crate::btree::engine::{Engine, FlushPolicy};
use crate::btree::table::{self as bt, BtreeTable, Find};
pub use crate::btree::table::TrxHandle;
use std::sync::OnceLock;

static ENGINE: OnceLock<Engine> = OnceLock::new();

fn engine() -> Result<&'static Engine> {
    ENGINE.get().ok_or_else(|| Error::Unsupported("the BTREE engine did not start (see the error log)".into()))
}

fn policy(p: u8) -> FlushPolicy {
    match p {
        0 => FlushPolicy::OncePerSecond,
        2 => FlushPolicy::WriteOnly,
        _ => FlushPolicy::EveryCommit,
    }
}

fn engine_start(dir: &[u8], pool_pages: u64, flush_policy: u8, log_size: u64, err: &mut String) -> i32 {
    guard(err, || {
        if ENGINE.get().is_some() {
            return Ok(());
        }
        let e = Engine::open(&path(dir), pool_pages as usize, policy(flush_policy))?;
        e.set_log_size(log_size);
        let _ = ENGINE.set(e);
        bt::adopt_recovered_prepared(engine()?)
    })
}

fn engine_stop() -> i32 {
    let mut err = String::new();
    guard(&mut err, || match ENGINE.get() {
        Some(e) => e.checkpoint_now(),
        None => Ok(()),
    })
}

fn engine_set_flush_policy(p: u8) {
    if let Some(e) = ENGINE.get() {
        e.set_policy(policy(p));
    }
}

fn engine_set_log_size(bytes: u64) {
    if let Some(e) = ENGINE.get() {
        e.set_log_size(bytes);
    }
}

fn engine_set_lock_wait_timeout(secs: u64) {
    bt::LOCK_WAIT_TIMEOUT_SECS.store(secs, std::sync::atomic::Ordering::Relaxed);
}

fn engine_take_note(out: &mut String) -> bool {
    match ENGINE.get().and_then(|e| {
        let mut n = e.notes.lock();
        (!n.is_empty()).then(|| n.remove(0))
    }) {
        Some(s) => {
            *out = s;
            true
        }
        None => false,
    }
}

fn trx_new() -> Box<TrxHandle> {
    Box::new(TrxHandle::new())
}

fn trx_set_session(t: &mut TrxHandle, session: usize) {
    let mut err = String::new();
    guard(&mut err, || {
        t.set_session(session);
        Ok(())
    });
}

pub struct TrxWake(std::sync::Arc<bt::Interrupt>);

fn trx_wake(t: &TrxHandle) -> Box<TrxWake> {
    Box::new(TrxWake(t.interrupt()))
}

fn trx_wake_raise(w: &TrxWake) {
    let mut err = String::new();
    guard(&mut err, || {
        w.0.raise();
        Ok(())
    });
}

/// C++ installs, at plugin start, the function that tells whether a session's
/// statement is to stop (see `btree::table::Interrupt`), and removes it at the
/// end. Not in the cxx bridge: cxx hands no C++ function pointer to Rust.
#[unsafe(no_mangle)]
pub extern "C" fn ha_rust_set_interrupt_probe(probe: Option<bt::Probe>) {
    let mut err = String::new();
    guard(&mut err, || {
        bt::set_probe(probe);
        Ok(())
    });
}

fn trx_stmt_begin(t: &mut TrxHandle) {
    t.stmt_begin();
}

fn trx_stmt_rollback(t: &mut TrxHandle, err: &mut String) -> i32 {
    guard(err, || t.stmt_rollback(engine()?))
}

fn trx_commit(t: &mut TrxHandle, durable: bool, err: &mut String) -> i32 {
    guard(err, || t.commit(engine()?, durable))
}

fn log_flush(err: &mut String) -> i32 {
    guard(err, || engine()?.flush_log())
}

fn trx_rollback(t: &mut TrxHandle, err: &mut String) -> i32 {
    guard(err, || t.rollback(engine()?))
}

fn trx_prepare(t: &mut TrxHandle, xid: &[u8], err: &mut String) -> i32 {
    guard(err, || t.prepare(engine()?, xid))
}

fn trx_detach_prepared(t: &mut TrxHandle) -> bool {
    t.detach_prepared()
}

fn xa_prepared() -> Vec<u8> {
    let mut out = Vec::new();
    for x in bt::prepared_xids() {
        out.extend_from_slice(&(x.len() as u32).to_le_bytes());
        out.extend_from_slice(&x);
    }
    out
}

fn xa_given(xids: &[u8], pass_ended: bool) {
    let mut v = Vec::new();
    let mut at = 0;
    while let Some(l) = xids.get(at..at + 4) {
        let l = u32::from_le_bytes(l.try_into().unwrap()) as usize;
        let Some(x) = xids.get(at + 4..at + 4 + l) else { break };
        v.push(x.to_vec());
        at += 4 + l;
    }
    bt::prepared_xids_given(v, pass_ended);
}

fn xa_end(xid: &[u8], commit: bool, err: &mut String) -> i32 {
    let mut found = false;
    let code = guard(err, || {
        found = bt::end_prepared(engine()?, xid, commit)?;
        Ok(())
    });
    if code == 0 && !found { -1 } else { code }
}

fn trx_savepoint(t: &TrxHandle) -> u64 {
    t.savepoint()
}

fn trx_rollback_to(t: &mut TrxHandle, sp: u64, err: &mut String) -> i32 {
    guard(err, || t.rollback_to(engine()?, sp))
}

/// Decodes the secondary keys C++ sends.
fn sec_keys(b: &[u8]) -> Result<Vec<(Vec<u8>, bool)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let bad = || Error::Panic("malformed secondary keys from C++".into());
        let has_null = *b.get(at).ok_or_else(bad)? != 0;
        let len = u32::from_le_bytes(b.get(at + 1..at + 5).ok_or_else(bad)?.try_into().unwrap()) as usize;
        let k = b.get(at + 5..at + 5 + len).ok_or_else(bad)?;
        out.push((k.to_vec(), has_null));
        at += 5 + len;
    }
    Ok(out)
}

/// Runs `f`, turning an error or a panic into a code and a message.
fn guard(err: &mut String, f: impl FnOnce() -> Result<()>) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            *err = e.to_string();
            e.code()
        }
        Err(p) => {
            let e = Error::Panic(panic_text(&p));
            *err = e.to_string();
            e.code()
        }
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}

fn path(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

/// The values of the LAYOUT option, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Btree = 0,
    Csv = 1,
    Archive = 2,
}

fn layout(v: u8) -> Result<Layout> {
    match v {
        0 => Ok(Layout::Btree),
        1 => Ok(Layout::Csv),
        2 => Ok(Layout::Archive),
        _ => Err(Error::Unsupported(format!("unknown LAYOUT value {v}"))),
    }
}

/// The layouts this build can create and open.
fn available(v: u8) -> Result<Layout> {
    let l = layout(v)?;
    if l == Layout::Btree {
        engine()?;
    }
    Ok(l)
}

fn layout_supported(l: u8) -> bool {
    available(l).is_ok()
}

#[allow(clippy::too_many_arguments)]
fn csv_options(path_b: &[u8], external: &[u8], header: bool, sep: u8, writable: bool, columns: u32) -> CsvOptions {
    CsvOptions {
        table_path: path(path_b),
        external: (!external.is_empty()).then(|| path(external)),
        header,
        separator: sep,
        writable,
        columns: columns as usize,
    }
}

#[allow(clippy::too_many_arguments)]
fn table_create(
    path_b: &[u8],
    l: u8,
    external: &[u8],
    header: bool,
    sep: u8,
    writable: bool,
    columns: u32,
    header_image: &[u8],
    auto_inc_base: u64,
    index_count: u32,
    err: &mut String,
) -> i32 {
    guard(err, || {
        match available(l)? {
            Layout::Archive => return arch::create(&path(path_b), auto_inc_base),
            Layout::Btree => return bt::create(&path(path_b), index_count as usize, auto_inc_base),
            Layout::Csv => {}
        }
        let opts = csv_options(path_b, external, header, sep, writable, columns);
        let mut line = Vec::new();
        if header && opts.external.is_none() {
            csv::encode_image(&mut line, header_image, sep, columns as usize)?;
        }
        csv::create(&opts, &line)
    })
}

/// DROP: the files of whichever layout the table has (the server does not say).
fn table_delete(p: &[u8], err: &mut String) -> i32 {
    guard(err, || {
        let base = path(p);
        // The server's DROP of a table without a .frm asks every engine to delete it and
        // takes success from any of them as "the table existed": answer "no such
        // table" when neither a definition nor any file of ours is there.
        let any = |exts: &[&str]| exts.iter().any(|e| csv::with_ext(&base, e).exists());
        let existed = any(&[".frm", csv::DATA_EXT, arch::ARZ_EXT, arch::ARP_EXT]) || bt::exists(&base);
        csv::delete(&base)?;
        arch::delete(&base)?;
        if bt::exists(&base) {
            bt::delete(engine()?, &base)?;
        }
        if !existed {
            return Err(Error::NotFound(format!("table '{}' does not exist", base.display())));
        }
        Ok(())
    })
}

fn table_rename(from: &[u8], to: &[u8], err: &mut String) -> i32 {
    guard(err, || {
        csv::rename(&path(from), &path(to))?;
        arch::rename(&path(from), &path(to))?;
        // a BTREE table whose rename a crash cut short has its first file under the
        // new name already: the server's DDL recovery renames it again to finish
        if bt::exists(&path(from)) || bt::exists(&path(to)) {
            bt::rename(engine()?, &path(from), &path(to))?;
        }
        Ok(())
    })
}

/// The open table of one layout.
enum Inner {
    Csv(CsvTable),
    Archive(ArchiveTable),
    Btree(BtreeTable),
}

/// An open table as C++ holds it.
pub struct Table {
    inner: Option<Inner>,
    open_error: i32,
    error: String,
}

#[allow(clippy::too_many_arguments)]
fn table_open(
    p: &[u8],
    l: u8,
    external: &[u8],
    header: bool,
    sep: u8,
    writable: bool,
    columns: u32,
    level: i32,
    unique_mask: u64,
    index_count: u32,
    hidden_pk: bool,
) -> Box<Table> {
    let mut t = Box::new(Table { inner: None, open_error: 0, error: String::new() });
    let mut inner = None;
    t.open_error = guard(&mut t.error, || {
        inner = Some(match available(l)? {
            Layout::Csv => Inner::Csv(CsvTable::open(&csv_options(p, external, header, sep, writable, columns))?),
            Layout::Archive => {
                let level = if level <= 0 { arch::DEFAULT_LEVEL } else { level };
                Inner::Archive(ArchiveTable::open(&ArchiveOptions { table_path: path(p), level })?)
            }
            Layout::Btree => {
                let unique = (0..index_count as usize).map(|i| i < 64 && unique_mask & (1 << i) != 0).collect();
                Inner::Btree(BtreeTable::open(engine()?, &path(p), unique, hidden_pk)?)
            }
        });
        Ok(())
    });
    t.inner = inner;
    t
}

fn wrong_layout(what: &str) -> Error {
    Error::Unsupported(format!("{what} is not supported by this table's layout"))
}

impl Inner {
    fn scan_start(&mut self) -> Result<()> {
        match self {
            Inner::Csv(t) => t.scan_start(),
            Inner::Archive(t) => t.scan_start(),
            Inner::Btree(_) => Err(wrong_layout("a scan without a transaction")),
        }
    }
    fn scan_next(&mut self) -> Result<bool> {
        match self {
            Inner::Csv(t) => t.scan_next(),
            Inner::Archive(t) => t.scan_next(),
            Inner::Btree(t) => t.next(false),
        }
    }
    fn scan_end(&mut self) -> Result<()> {
        match self {
            Inner::Csv(t) => t.scan_end(),
            Inner::Archive(t) => t.scan_end(),
            Inner::Btree(_) => Ok(()),
        }
    }
    fn read_at(&mut self, pos: u64) -> Result<()> {
        match self {
            Inner::Csv(t) => t.read_at(pos),
            Inner::Archive(t) => t.read_at(pos),
            Inner::Btree(_) => Err(wrong_layout("a position read without a transaction")),
        }
    }
    fn set_bulk(&mut self, on: bool) -> Result<()> {
        match self {
            Inner::Csv(t) => t.set_bulk(on),
            Inner::Archive(t) => t.set_bulk(on),
            Inner::Btree(_) => Ok(()),
        }
    }
    fn flush(&mut self) -> Result<()> {
        match self {
            Inner::Csv(t) => t.flush(),
            Inner::Archive(t) => t.flush(),
            Inner::Btree(_) => Ok(()),
        }
    }
    fn truncate(&mut self) -> Result<()> {
        match self {
            Inner::Csv(t) => t.truncate(),
            Inner::Archive(t) => t.truncate(),
            Inner::Btree(_) => Err(wrong_layout("TRUNCATE without a transaction")),
        }
    }
    fn warnings(&mut self) -> &mut Vec<String> {
        static NONE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let _ = &NONE;
        match self {
            Inner::Csv(t) => &mut t.warnings,
            Inner::Archive(t) => &mut t.warnings,
            Inner::Btree(t) => &mut t.warnings,
        }
    }
    fn btree(&mut self) -> Result<&mut BtreeTable> {
        match self {
            Inner::Btree(t) => Ok(t),
            _ => Err(wrong_layout("a BTREE operation")),
        }
    }
}

impl Table {
    /// Runs `f` on the open table under [`guard`]; a panic leaves the handle closed.
    fn run(&mut self, f: impl FnOnce(&mut Inner) -> Result<()>) -> i32 {
        let Some(inner) = self.inner.as_mut() else {
            self.error = "this RUST table handle is closed after an earlier internal error; FLUSH TABLES reopens it".into();
            return crate::error::HA_ERR_RUST_PANIC;
        };
        let mut panicked = false;
        let code = guard(&mut self.error, || {
            let r = catch_unwind(AssertUnwindSafe(|| f(inner)));
            match r {
                Ok(r) => r,
                Err(p) => {
                    panicked = true;
                    std::panic::resume_unwind(p)
                }
            }
        });
        if panicked {
            // Dropping may run more of the broken state; never let that unwind either.
            if let Some(t) = self.inner.take() {
                let _ = catch_unwind(AssertUnwindSafe(|| std::mem::forget(t)));
            }
        }
        code
    }

    fn last_error(&self) -> &str {
        &self.error
    }
    fn open_error(&self) -> i32 {
        self.open_error
    }

    fn scan_start(&mut self) -> i32 {
        self.run(|t| t.scan_start())
    }
    fn scan_next(&mut self) -> i32 {
        let mut more = false;
        let code = self.run(|t| {
            more = t.scan_next()?;
            Ok(())
        });
        if code == 0 && !more { consts::HA_ERR_END_OF_FILE as i32 } else { code }
    }
    fn scan_end(&mut self) -> i32 {
        self.run(|t| t.scan_end())
    }
    fn read_at(&mut self, pos: u64) -> i32 {
        self.run(|t| t.read_at(pos))
    }
    fn position(&self) -> u64 {
        match &self.inner {
            Some(Inner::Csv(t)) => t.current_pos(),
            Some(Inner::Archive(t)) => t.position(),
            _ => 0,
        }
    }
    fn current_line(&self) -> u64 {
        match &self.inner {
            Some(Inner::Csv(t)) => t.current_line(),
            _ => 0,
        }
    }
    fn record_data(&self) -> &[u8] {
        match &self.inner {
            Some(Inner::Csv(t)) => &t.record().data,
            Some(Inner::Archive(t)) => t.record(),
            Some(Inner::Btree(t)) => &t.row,
            None => &[],
        }
    }
    fn record_spans(&self) -> &[u32] {
        match &self.inner {
            Some(Inner::Csv(t)) => t.record().spans.as_flattened(),
            _ => &[],
        }
    }
    fn insert(&mut self, image: &[u8], segs: &[u32], key: u64, keyed: bool, unique: bool) -> i32 {
        let mut accepted = true;
        let code = self.run(|t| match t {
            Inner::Csv(t) => t.insert(image),
            Inner::Archive(t) => {
                accepted = t.insert(image, segs, key, keyed, unique)?;
                Ok(())
            }
            Inner::Btree(_) => Err(wrong_layout("an insert without a transaction")),
        });
        if code == 0 && !accepted { consts::HA_ERR_FOUND_DUPP_KEY as i32 } else { code }
    }
    fn lookup(&mut self, key: u64) -> i32 {
        self.run(|t| match t {
            Inner::Archive(t) => t.lookup(key),
            _ => Err(wrong_layout("an index lookup")),
        })
    }
    fn max_key(&self) -> KeyMax {
        match &self.inner {
            Some(Inner::Archive(t)) => {
                let (k, base) = t.max_key();
                KeyMax { has_key: k.is_some(), key: k.unwrap_or(0), base }
            }
            _ => KeyMax { has_key: false, key: 0, base: 0 },
        }
    }
    fn optimize(&mut self, session: usize) -> i32 {
        self.run(|t| match t {
            Inner::Archive(t) => t.optimize(&mut crate::session::StopCheck::every(session, 16)),
            _ => Err(wrong_layout("OPTIMIZE")),
        })
    }
    fn update_current(&mut self, image: &[u8]) -> i32 {
        self.run(|t| match t {
            Inner::Csv(t) => t.update_current(image),
            _ => Err(wrong_layout("UPDATE")),
        })
    }
    fn delete_current(&mut self) -> i32 {
        self.run(|t| match t {
            Inner::Csv(t) => t.delete_current(),
            _ => Err(wrong_layout("DELETE")),
        })
    }
    fn set_bulk(&mut self, on: bool) -> i32 {
        self.run(|t| t.set_bulk(on))
    }
    fn flush(&mut self) -> i32 {
        self.run(|t| t.flush())
    }
    fn truncate(&mut self) -> i32 {
        self.run(|t| t.truncate())
    }
    fn discard(&mut self) {
        match self.inner.as_mut() {
            Some(Inner::Csv(t)) => t.discard(),
            Some(Inner::Archive(t)) => t.discard(),
            _ => {}
        }
    }
    fn stats(&self) -> Stats {
        match &self.inner {
            Some(Inner::Csv(t)) => {
                let (rows, data_length, exact) = t.stats();
                Stats { rows, data_length, index_length: 0, exact }
            }
            Some(Inner::Archive(t)) => {
                let (rows, data_length) = t.stats();
                Stats { rows, data_length, index_length: 0, exact: true }
            }
            Some(Inner::Btree(t)) => {
                let (data_length, index_length) = t.data_length();
                Stats { rows: t.rows(), data_length, index_length, exact: false }
            }
            None => Stats { rows: 0, data_length: 0, index_length: 0, exact: false },
        }
    }
    fn set_exact_rows(&self, rows: u64) {
        if let Some(Inner::Csv(t)) = &self.inner {
            t.set_exact_rows(rows)
        }
    }
    fn take_warning(&mut self, out: &mut String) -> bool {
        match self.inner.as_mut().map(|t| t.warnings()).filter(|w| !w.is_empty()) {
            Some(w) => {
                *out = w.remove(0);
                true
            }
            None => false,
        }
    }
    fn check_start(&mut self) -> i32 {
        self.run(|t| match t {
            Inner::Csv(t) => t.check_start(),
            Inner::Archive(t) => t.check_start(),
            Inner::Btree(_) => Err(wrong_layout("CHECK through rows")),
        })
    }
    fn check_next(&mut self, out: &mut String) -> i32 {
        let mut step = 0;
        let end = consts::HA_ERR_END_OF_FILE as i32;
        let code = self.run(|t| {
            step = match t {
                Inner::Csv(t) => match t.check_next()? {
                    CheckStep::Row => 0,
                    CheckStep::Damaged(text) => {
                        *out = text;
                        1
                    }
                    CheckStep::End => end,
                },
                Inner::Archive(t) => match t.check_next()? {
                    arch::CheckStep::Row => 0,
                    arch::CheckStep::Damaged(text) => {
                        *out = text;
                        1
                    }
                    arch::CheckStep::End => end,
                },
                Inner::Btree(_) => end,
            };
            Ok(())
        });
        if code == 0 { step } else { code }
    }
    fn check_reject(&mut self, why: &[u8], out: &mut String) {
        let why = String::from_utf8_lossy(why).into_owned();
        self.run(|t| {
            match t {
                Inner::Csv(t) => *out = t.check_reject(why.clone()),
                _ => *out = why.clone(),
            }
            Ok(())
        });
    }
    fn check_finish(&mut self, repair: bool, out: &mut CheckSummary) -> i32 {
        self.run(|t| {
            *out = match t {
                Inner::Csv(t) => {
                    let rep = t.check_finish(repair)?;
                    CheckSummary {
                        rows: rep.rows,
                        damaged: rep.damage.len() as u64,
                        torn_tail: rep.damage.iter().any(|d| d.torn_tail),
                        lost_rows: 0,
                    }
                }
                Inner::Archive(t) => {
                    let rep = t.check_finish(repair)?;
                    CheckSummary { rows: rep.rows, damaged: rep.damaged, torn_tail: false, lost_rows: rep.lost_rows }
                }
                Inner::Btree(_) => CheckSummary { rows: 0, damaged: 0, torn_tail: false, lost_rows: 0 },
            };
            Ok(())
        })
    }

    // ---- BTREE ----

    fn bt_insert(&mut self, trx: &mut TrxHandle, pk: &[u8], row: &[u8], sec: &[u8], dup: &mut u32) -> i32 {
        let mut d = None;
        let code = self.run(|t| {
            let e = engine()?;
            d = t.btree()?.insert(e, trx, pk, row, &sec_keys(sec)?)?;
            Ok(())
        });
        match d {
            Some(i) if code == 0 => {
                *dup = i as u32;
                consts::HA_ERR_FOUND_DUPP_KEY as i32
            }
            _ => code,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn bt_update(
        &mut self,
        trx: &mut TrxHandle,
        old_pk: &[u8],
        new_pk: &[u8],
        row: &[u8],
        old_sec: &[u8],
        new_sec: &[u8],
        dup: &mut u32,
    ) -> i32 {
        let mut d = None;
        let code = self.run(|t| {
            let e = engine()?;
            d = t.btree()?.update(e, trx, old_pk, new_pk, row, &sec_keys(old_sec)?, &sec_keys(new_sec)?)?;
            Ok(())
        });
        match d {
            Some(i) if code == 0 => {
                *dup = i as u32;
                consts::HA_ERR_FOUND_DUPP_KEY as i32
            }
            _ => code,
        }
    }

    fn bt_delete(&mut self, trx: &mut TrxHandle, pk: &[u8], sec: &[u8]) -> i32 {
        self.run(|t| {
            let e = engine()?;
            t.btree()?.delete(e, trx, pk, &sec_keys(sec)?)
        })
    }

    fn bt_get(&mut self, trx: &mut TrxHandle, pk: &[u8]) -> i32 {
        let mut found = false;
        let code = self.run(|t| {
            found = t.btree()?.get(engine()?, trx, pk)?;
            Ok(())
        });
        if code == 0 && !found { consts::HA_ERR_KEY_NOT_FOUND as i32 } else { code }
    }

    fn bt_seek(&mut self, trx: &mut TrxHandle, index: u32, key: &[u8], find: u8) -> i32 {
        let f = match find {
            0 => Find::Exact,
            1 => Find::KeyOrNext,
            2 => Find::KeyOrPrev,
            3 => Find::AfterKey,
            4 => Find::BeforeKey,
            5 => Find::PrefixLast,
            _ => Find::PrefixLastOrPrev,
        };
        let mut found = false;
        let code = self.run(|t| {
            found = t.btree()?.seek(engine()?, trx, index as usize, key, f)?;
            Ok(())
        });
        if code == 0 && !found { consts::HA_ERR_END_OF_FILE as i32 } else { code }
    }

    fn bt_edge(&mut self, trx: &mut TrxHandle, index: u32, last: bool) -> i32 {
        let mut found = false;
        let code = self.run(|t| {
            found = t.btree()?.edge(engine()?, trx, index as usize, last)?;
            Ok(())
        });
        if code == 0 && !found { consts::HA_ERR_END_OF_FILE as i32 } else { code }
    }

    fn bt_next(&mut self, reverse: bool) -> i32 {
        let mut found = false;
        let code = self.run(|t| {
            found = t.btree()?.next(reverse)?;
            Ok(())
        });
        if code == 0 && !found { consts::HA_ERR_END_OF_FILE as i32 } else { code }
    }

    fn bt_set_prefix(&mut self, prefix: &[u8], on: bool) {
        if let Some(Inner::Btree(t)) = self.inner.as_mut() {
            t.set_prefix(on.then(|| prefix.to_vec()));
        }
    }

    fn bt_key_format(&self) -> u32 {
        match &self.inner {
            Some(Inner::Btree(t)) => t.key_format(),
            _ => 0,
        }
    }

    fn bt_pk(&self) -> &[u8] {
        match &self.inner {
            Some(Inner::Btree(t)) => &t.pk,
            _ => &[],
        }
    }

    fn bt_set_keys_only(&mut self, on: bool) {
        if let Some(Inner::Btree(t)) = self.inner.as_mut() {
            t.set_keys_only(on);
        }
    }

    fn bt_fetch_current(&mut self) -> i32 {
        self.run(|t| t.btree()?.fetch_current())
    }

    fn bt_key(&self) -> &[u8] {
        match &self.inner {
            Some(Inner::Btree(t)) => t.key(),
            _ => &[],
        }
    }

    fn bt_count_range(&mut self, index: u32, min: &[u8], min_mode: u8, max: &[u8], max_mode: u8) -> u64 {
        let mut n = 0;
        self.run(|t| {
            let t = t.btree()?;
            n = t.count_range(
                index as usize,
                (min_mode != 0).then_some(min),
                min_mode == 1,
                (max_mode != 0).then_some(max),
                max_mode == 1,
            )?;
            Ok(())
        });
        n
    }

    fn bt_key_stats(&mut self, index: u32, parts: &[u32], analyze: bool, out: &mut Vec<u64>) -> i32 {
        out.clear();
        self.run(|t| {
            out.extend(t.btree()?.key_stats(index as usize, parts, analyze)?);
            Ok(())
        })
    }

    fn bt_lock(&mut self, trx: &mut TrxHandle, exclusive: bool) -> i32 {
        self.run(|t| t.btree()?.lock(engine()?, trx, exclusive))
    }

    fn bt_truncate(&mut self, trx: &mut TrxHandle) -> i32 {
        self.run(|t| t.btree()?.truncate(engine()?, trx))
    }

    fn bt_auto_increment(&self) -> u64 {
        match &self.inner {
            Some(Inner::Btree(t)) => t.auto_increment_next(),
            _ => 0,
        }
    }

    fn bt_auto_increment_used(&mut self, v: u64) -> i32 {
        self.run(|t| t.btree()?.auto_increment_used(v))
    }

    fn bt_auto_increment_checked(&self) -> bool {
        match &self.inner {
            Some(Inner::Btree(t)) => t.auto_increment_checked(),
            _ => true,
        }
    }

    fn bt_set_auto_increment_checked(&self) {
        if let Some(Inner::Btree(t)) = &self.inner {
            t.set_auto_increment_checked();
        }
    }

    fn bt_last_unlocked(&mut self, index: u32) -> i32 {
        let mut found = false;
        let code = self.run(|t| {
            found = t.btree()?.edge_unlocked(index as usize, true)?;
            Ok(())
        });
        if code == 0 && !found { consts::HA_ERR_END_OF_FILE as i32 } else { code }
    }

    fn bt_check(&mut self, session: usize, out: &mut String, problems: &mut u32) -> i32 {
        let mut n = 0;
        let code = self.run(|t| {
            let found = t.btree()?.check_with(&mut bt::StopCheck::new(session))?;
            n = found.len() as u32;
            *out = found.join("\n");
            Ok(())
        });
        if code == consts::HA_ERR_ABORTED_BY_USER as i32 {
            return code;
        }
        if code != 0 {
            // an error that stopped the check is a problem it found
            *out = self.error.clone();
            n = n.max(1);
        }
        *problems = n;
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_code() {
        let mut msg = String::new();
        let code = guard(&mut msg, || panic!("boom"));
        assert_eq!(code, crate::error::HA_ERR_RUST_PANIC);
        assert!(msg.contains("boom"), "{msg}");
    }

    #[test]
    fn unsupported_layouts_say_so() {
        let mut msg = String::new();
        let code = table_create(b"/nonexistent/t", 0, b"", false, b',', false, 1, b"", 0, 1, &mut msg);
        assert_eq!(code, consts::HA_ERR_UNSUPPORTED as i32);
        assert!(msg.contains("BTREE"), "{msg}");
    }
}
