//! The one boundary between the server's C++ and the engine: a `cxx` bridge.
//!
//! Only bytes, plain numbers and the bridge's shared structs and enums cross it
//! (docs/boundary.md): nothing structured is hand framed in bytes. Nothing C++ calls
//! unwinds: every entry point (the bridge's functions, the `extern "C"` ones, and the
//! drop of each type C++ holds) runs its whole body under the panic guard ([`guard`],
//! [`guard_or`], `Table::run`/`value`, all over [`catch`]), which turns a Rust panic
//! into `HA_ERR_RUST_PANIC` with a message (or a stated fallback value where there is
//! no error to return). A table handle an operation panicked in is marked broken and
//! refuses every further call (the server reopens it after FLUSH TABLES).
//! `tests::every_entry_point_is_guarded` fails for an entry point without a guard.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use crate::consts;
use crate::error::{Error, Result};
use crate::layout::{self, CheckStep, LayoutTable, Options};
use crate::optimizer;

#[cxx::bridge(namespace = "ha_rust_ffi")]
pub mod bridge {
    /// The LAYOUT table option's values, in the order C++ declares them.
    #[repr(u8)]
    enum LayoutKind {
        Btree = 0,
        Csv = 1,
        Archive = 2,
    }

    /// `rust_flush_log_at_trx_commit`: when the BTREE log is written and synced.
    #[repr(u8)]
    enum LogFlush {
        /// Write and sync about once a second.
        OncePerSecond = 0,
        /// Write and sync at every commit (durable).
        EveryCommit = 1,
        /// Write at every commit, sync about once a second.
        WriteOnly = 2,
    }

    /// The transaction's isolation level (the server's `enum_tx_isolation`).
    #[repr(u8)]
    enum Isolation {
        ReadUncommitted = 0,
        ReadCommitted = 1,
        RepeatableRead = 2,
        Serializable = 3,
    }

    /// How an index read positions (the server's `ha_rkey_function`; see
    /// `btree::table::Find`).
    #[repr(u8)]
    enum FindMode {
        /// First entry >= key, that must start with key (HA_READ_KEY_EXACT, PREFIX).
        Exact,
        /// First entry >= key.
        KeyOrNext,
        /// Last entry <= key (entries starting with key counted as equal).
        KeyOrPrev,
        /// First entry > key (entries starting with key counted as equal).
        AfterKey,
        /// Last entry < key.
        BeforeKey,
        /// Last entry starting with key.
        PrefixLast,
        /// Last entry starting with key, or else the last before it.
        PrefixLastOrPrev,
    }

    /// One end of a range (records_in_range).
    #[repr(u8)]
    enum RangeEnd {
        Unbounded,
        /// Every entry starting with the key is inside.
        Inclusive,
        /// Every entry starting with the key is outside.
        Exclusive,
    }

    /// The engine's own handler error codes, after the server's last one
    /// (`HA_ERR_LAST` is 200 in 10.11; `error.rs` checks it), as MyRocks does.
    #[repr(i32)]
    enum RustError {
        /// An I/O error other than a full disk or a missing file.
        Io = 201,
        /// Damage found in a file.
        Corrupt = 202,
        /// A Rust panic caught at the boundary.
        Panic = 203,
        /// A broken invariant the engine checks for.
        Internal = 204,
    }

    /// Sizes C++ needs (one place for both sides).
    #[repr(u32)]
    enum Sizes {
        /// A BTREE page in bytes (`btree::page::PAGE_SIZE`).
        Page = 16384,
        /// CHECK/REPAIR shows at most this many damaged records, then a count.
        CheckWarnings = 20,
        /// The layouts (`LayoutKind`'s values are below it; `layout::LAYOUTS`).
        Layouts = 3,
    }

    /// Special answers besides 0 and an error code.
    #[repr(i32)]
    enum Answer {
        /// `xa_end`: no prepared transaction with that XID.
        NoSuchXid = -1,
        /// `check_next`: a damaged record (its text in `out`).
        Damaged = 1,
    }

    /// How a CSV field is written (docs/csv-format.md); a field read is `Null`
    /// or `Bare` (its text decoded).
    #[derive(Debug)]
    #[repr(u8)]
    enum FieldKind {
        Null = 0,
        /// Written as it is (numbers); quoted after all if it needs to be.
        Bare = 1,
        Quoted = 2,
    }

    /// One field of a CSV row: `length` bytes of the row's text from `offset`
    /// (both 0 for `Null`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct CsvField {
        kind: FieldKind,
        offset: u32,
        length: u32,
    }

    /// A statement's session settings for its transaction
    /// (`trx_statement_settings`, once per statement).
    struct StatementSettings {
        /// The statement's longest lock wait, in seconds: the server's
        /// `lock_wait_timeout` of the session (0 under NOWAIT, n under WAIT
        /// n); the wait is the shorter of it and `rust_lock_wait_timeout`.
        lock_wait_timeout: u64,
        /// The session's `rust_snapshot_isolation`: first-updater-wins (see
        /// TrxHandle::first_updater_view).
        snapshot_isolation: bool,
    }

    /// How a statement locks a BTREE table (`bt_begin_statement`), from the
    /// server's lock type in store_lock/external_lock.
    struct StatementLock {
        /// It writes the table, or reads it FOR UPDATE: the table lock is
        /// taken exclusive now, before the statement reads.
        exclusive: bool,
        /// DELETE/UPDATE LOW_PRIORITY (or `low_priority_updates`): readers
        /// that come while it waits go first.
        low_priority: bool,
        /// SELECT ... SKIP LOCKED: never waits (see BtreeTable::begin_statement).
        skip_locked: bool,
        /// A plain read (not FOR SHARE, not SERIALIZABLE inside a transaction,
        /// not under LOCK TABLES, not a source read the statement binlog
        /// needs locked): consistent, from a read view (`btree::table::StmtRead`).
        consistent: bool,
        /// The transaction's isolation level.
        isolation: Isolation,
        /// It locks the whole table, not rows: under LOCK TABLES, and a read
        /// of the whole table the server asks to keep stable
        /// (TL_READ_NO_INSERT: the source of INSERT ... SELECT under
        /// statement binlogging, of a copying ALTER).
        whole_table: bool,
    }

    /// What a table is created or opened with: its options and what the server's
    /// definition says (`layout::Options` is the Rust side).
    struct TableOptions {
        layout: LayoutKind,
        /// CSV: the attached file (CSV_FILE), empty for the table's own file.
        csv_file: Vec<u8>,
        csv_header: bool,
        csv_separator: u8,
        csv_writable: bool,
        /// The stored columns.
        columns: u32,
        /// ARCHIVE, open: the zstd level of new blocks (0: the default).
        compression_level: i32,
        /// CSV, create: the header line (the stored columns' names), as a
        /// written row: its text and its fields.
        header_text: Vec<u8>,
        header_fields: Vec<CsvField>,
        /// ARCHIVE and BTREE, create: the AUTO_INCREMENT value before the first.
        auto_inc_base: u64,
        /// BTREE: for each index (the clustered one, or the hidden row id's,
        /// first), whether it is unique; its length is the number of indexes.
        unique: Vec<bool>,
        /// BTREE, open: no primary key (the rows have a hidden row id).
        hidden_pk: bool,
        /// The server family of the shim (ARCHIVE files say which wrote them;
        /// a table of the other family is refused).
        family: ServerFamily,
    }

    /// The server family a shim speaks to.
    #[repr(u8)]
    enum ServerFamily {
        MariaDb,
        MySql,
    }

    /// What CREATE TABLE gives beyond `TableOptions` (which has the options'
    /// values, with defaults for those not given), for `table_create_check`:
    /// which options were given, what the server's definition says, and the
    /// answers of the server's own checks (`layout::Create` is the Rust side).
    struct CreateFacts {
        csv_file: bool,
        /// CSV_SEPARATOR as written, when given.
        csv_separator: bool,
        csv_separator_text: Vec<u8>,
        /// For each index: whether it has one part, on the integer
        /// AUTO_INCREMENT column.
        keys_on_autoinc: Vec<bool>,
        /// The table has an AUTO_INCREMENT column.
        auto_increment: bool,
        /// The statement is an ALTER TABLE.
        altering: bool,
        /// The longest CSV_FILE path the server checks.
        csv_file_max: u32,
        /// CSV_FILE given: the connection has the FILE privilege, and
        /// secure_file_priv lets it read the file.
        file_privilege: bool,
        secure_path: bool,
    }

    /// Why CREATE TABLE is refused (`table_create_check`): which server error
    /// C++ raises.
    #[derive(Debug)]
    #[repr(u8)]
    enum Refusal {
        None = 0,
        /// ER_TOO_MANY_KEYS, with `CreateVerdict::max_keys`.
        TooManyKeys = 1,
        /// ER_TABLE_CANT_HANDLE_AUTO_INCREMENT.
        AutoIncrement = 2,
        /// ER_ILLEGAL_HA_CREATE_OPTION, with the message in `err`.
        Option = 3,
        /// The server's error for a missing FILE privilege.
        FilePrivilege = 4,
        /// ER_OPTION_PREVENTS_STATEMENT for --secure-file-priv.
        SecureFilePriv = 5,
    }

    /// `table_create_check`'s answer.
    struct CreateVerdict {
        refusal: Refusal,
        /// `TooManyKeys`: the layout's limit.
        max_keys: u32,
    }

    /// A row's key in one secondary index.
    struct SecKey {
        /// Memcomparable bytes.
        key: Vec<u8>,
        /// A part of it is NULL (such a key is never a duplicate).
        has_null: bool,
        /// What rebuilds its string columns that `key` cannot give back (kept
        /// in the entry from tree format 5 on; empty: nothing).
        unpack: Vec<u8>,
    }

    /// One part of an index's key as it lies in a memcomparable key (as keys.cc
    /// writes it; btree/keys.rs, btree/table/stats.rs).
    #[derive(Clone, Copy)]
    struct KeyPart {
        /// Not `chunked`: its length. `chunked`: the length of a space's
        /// weights in a PAD SPACE collation (0: NO PAD or binary).
        length: u32,
        /// It starts with a null byte (0: NULL, and nothing of it follows).
        nullable: bool,
        /// A variable-length string part of key format 3 (btree/keys.rs).
        chunked: bool,
    }

    /// How a key part's column reads back from a secondary entry (index-only
    /// reads: btree/keyread.rs, whose `Read` it mirrors).
    #[repr(u8)]
    enum PartRead {
        /// It does not.
        None,
        /// The key bytes are the column's.
        Copy,
        /// Byte-reversed.
        Reverse,
        /// Byte-reversed, then the sign bit flipped.
        ReverseSigned,
        /// A string from its key's weights (they are its bytes).
        StringKey,
        /// A string kept whole in the unpack bytes.
        StringValue,
        /// A string from its weights and its compact unpack item.
        StringCase,
    }

    /// One key part of a server key in the reading plan of index-only reads
    /// (`Table::bt_set_read_plan`).
    #[derive(Clone, Copy)]
    struct PartPlan {
        /// The server's key number.
        key: u32,
        part: KeyPart,
        read: PartRead,
        /// `StringKey`: a PAD SPACE part whose trailing spaces are counted in
        /// the unpack bytes.
        trail: bool,
        /// `StringCase`: UTF-8 values with 2-byte code point weights (else one
        /// byte a character).
        wide: bool,
    }

    /// What one part of an entry read back gave (`Table::bt_read_entry`).
    #[repr(u8)]
    enum PartState {
        /// Nothing: the part does not read back.
        Skip,
        Null,
        /// The column's bytes, at `at` for `len` in the bytes given back.
        Value,
    }

    #[derive(Clone, Copy)]
    struct ReadPart {
        state: PartState,
        at: u32,
        len: u32,
    }

    /// An XA transaction id (the server's `XID`): `data` is the gtrid then the bqual.
    struct Xid {
        format_id: i64,
        gtrid_length: u32,
        bqual_length: u32,
        data: Vec<u8>,
    }

    /// What `SHOW TABLE STATUS` and the optimizer get.
    struct Stats {
        rows: u64,
        data_length: u64,
        index_length: u64,
        exact: bool,
    }

    /// What info() copies into the server's statistics (src/optimizer.rs).
    struct Info {
        records: u64,
        data_length: u64,
        index_length: u64,
        mean_rec_length: u64,
        /// BTREE's page (keyread_time uses it); 0 for the other layouts.
        block_size: u32,
    }

    /// One get_auto_increment call on a BTREE table: the server's arguments, and
    /// the statement's reservation (kept by the handler) before and after
    /// (btree/table/autoinc.rs).
    #[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
    struct Autoinc {
        offset: u64,
        increment: u64,
        /// Values the server asks for (0: unknown, INSERT ... SELECT).
        desired: u64,
        /// The column's largest value.
        max: u64,
        /// ALTER TABLE copies rows: values keep no series.
        alter_table: bool,
        /// In: the server's first value (at least); out: the first value given
        /// (u64::MAX: none left).
        first: u64,
        /// Out: how many values are reserved from `first` on.
        reserved: u64,
        /// The statement's values reserved and not yet used (0: its first call).
        rows_left: u64,
        /// The value after the statement's reservation (0: none).
        last: u64,
    }

    /// The rows the handler counted for one layout (SHOW GLOBAL STATUS).
    struct RowCounts {
        read: u64,
        inserted: u64,
        updated: u64,
        deleted: u64,
    }

    /// A status variable (SHOW GLOBAL STATUS LIKE 'Rust%', docs/operations.md).
    struct StatusVar {
        name: String,
        value: u64,
    }

    /// The engine's INFORMATION_SCHEMA tables (docs/operations.md; their columns
    /// and rows: ffi/status.rs).
    #[repr(u8)]
    enum InfoTable {
        /// RUST_TRX: the open BTREE transactions.
        Trx,
        /// RUST_TABLES: the RUST tables and their files.
        Tables,
        /// RUST_BUFFER_POOL: cached pages per tree file.
        BufferPool,
        /// RUST_LOCKS: table locks held or waited for.
        Locks,
        /// RUST_LOCK_WAITS: who waits for whom.
        LockWaits,
    }

    /// An INFORMATION_SCHEMA column's type.
    #[repr(u8)]
    enum ColumnKind {
        /// BIGINT UNSIGNED (a cell's `number`).
        U64,
        /// INT UNSIGNED (a cell's `number`).
        U32,
        /// DOUBLE (a cell's `real`).
        Double,
        /// VARCHAR(length) (a cell's `text`).
        Text,
    }

    struct Column {
        name: String,
        kind: ColumnKind,
        /// A text column's length in characters.
        length: u32,
        nullable: bool,
    }

    /// One value of an INFORMATION_SCHEMA row; its column's kind says which
    /// field holds it.
    struct Cell {
        null: bool,
        number: u64,
        real: f64,
        text: String,
    }

    /// What CHECK/REPAIR found.
    struct CheckSummary {
        rows: u64,
        damaged: u64,
        torn_tail: bool,
        /// Rows in damaged ARCHIVE blocks (that REPAIR cannot keep).
        lost_rows: u64,
        /// REPAIR's result line when it removed something: rows kept, and where the
        /// removed records were saved (empty otherwise).
        note: String,
        /// The line after the damage shown when more was found than
        /// `Sizes::CheckWarnings` (empty otherwise).
        more: String,
        /// The verdict: the table is corrupt (HA_ADMIN_CORRUPT), else OK.
        corrupt: bool,
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
        fn engine_start(dir: &[u8], pool_pages: u64, flush_policy: LogFlush, log_size: u64, err: &mut String) -> i32;
        /// Checkpoint at shutdown.
        fn engine_stop() -> i32;
        fn engine_set_flush_policy(policy: LogFlush);
        fn engine_set_lock_wait_timeout(secs: u64);
        /// The test hook rust_debug_panic_at: the name of an entry point (as the
        /// guard test names it) whose every call then panics inside its guard; empty
        /// turns it off.
        fn engine_set_debug_panic_at(entry: &[u8]);
        /// The test hook rust_debug_create_format: the BTREE tree format version
        /// new tables are created in (0: this build's).
        fn engine_set_debug_create_format(format: u32);
        /// Log bytes between checkpoints (rust_log_file_size).
        fn engine_set_log_size(bytes: u64);
        /// Moves one line of what recovery did into `out`; false when none is left.
        fn engine_take_note(out: &mut String) -> bool;
        /// The counters and gauges of SHOW GLOBAL STATUS (all 0 for a part not
        /// started); never fails.
        /// SHOW GLOBAL STATUS LIKE 'Rust%': the variables in the order shown;
        /// `rows`: the rows the handler counted, one entry a layout (by
        /// `LayoutKind` value).
        fn status_vars(rows: &[RowCounts]) -> Vec<StatusVar>;
        /// SHOW ENGINE RUST STATUS: the report, in lines.
        fn engine_status_text() -> String;
        /// An INFORMATION_SCHEMA table's columns, and its rows (one cell a
        /// column, row after row).
        fn info_columns(table: InfoTable) -> Vec<Column>;
        fn info_rows(table: InfoTable) -> Vec<Cell>;

        fn trx_new() -> Box<TrxHandle>;
        /// The server session (an opaque token for the interrupt probe).
        fn trx_set_session(t: &mut TrxHandle, session: usize);
        fn trx_wake(t: &TrxHandle) -> Box<TrxWake>;
        /// KILL / KILL QUERY of the connection: its lock wait, if any, stops.
        fn trx_wake_raise(w: &TrxWake);
        fn trx_stmt_begin(t: &mut TrxHandle);
        /// The statement ended (its last table unlocked), in a transaction of
        /// isolation `level` (see TrxHandle::stmt_end).
        fn trx_stmt_end(t: &mut TrxHandle, level: Isolation);
        /// The statement's settings (see StatementSettings).
        fn trx_statement_settings(t: &mut TrxHandle, s: StatementSettings);
        /// START TRANSACTION WITH CONSISTENT SNAPSHOT: the read view now (at
        /// REPEATABLE READ; the other levels make none).
        fn trx_consistent_snapshot(t: &mut TrxHandle, level: Isolation);
        fn trx_stmt_rollback(t: &mut TrxHandle, err: &mut String) -> i32;
        /// `durable`: false for a transaction prepared in the binlog's two-phase
        /// commit (the commit record is appended, made durable by `log_flush`).
        fn trx_commit(t: &mut TrxHandle, durable: bool, err: &mut String) -> i32;
        /// Makes everything the BTREE log holds durable (the binlog's
        /// `commit_checkpoint_request`).
        fn log_flush(err: &mut String) -> i32;
        fn trx_rollback(t: &mut TrxHandle, err: &mut String) -> i32;
        /// Two-phase commit: prepares under `xid`, durably.
        fn trx_prepare(t: &mut TrxHandle, xid: &Xid, err: &mut String) -> i32;
        /// The connection ends: keeps a prepared transaction for XA COMMIT/ROLLBACK
        /// by XID (true), or does nothing (false: roll back as usual).
        fn trx_detach_prepared(t: &mut TrxHandle) -> bool;
        /// The XIDs of prepared transactions no connection holds that the
        /// server's current recovery pass has not been given. One stored
        /// malformed (a damaged log) is not listed: it is written to the error
        /// log, and stays prepared with its locks.
        fn xa_prepared() -> Vec<Xid>;
        /// These XIDs (the first of what `xa_prepared` returned) were handed to
        /// the server; `pass_ended`: it got fewer than it had room for, so its
        /// recovery pass is over.
        fn xa_given(xids: &[Xid], pass_ended: bool);
        /// Commits or rolls back the prepared transaction `xid` no connection holds:
        /// 0 done, `Answer::NoSuchXid` no such transaction, else an error code.
        fn xa_end(xid: &Xid, commit: bool, err: &mut String) -> i32;
        fn trx_savepoint(t: &TrxHandle) -> u64;
        fn trx_rollback_to(t: &mut TrxHandle, sp: u64, err: &mut String) -> i32;

        /// A BTREE read of `rows` rows over `ranges` ranges of the clustered tree
        /// whose scan costs `scan` (src/optimizer.rs).
        fn primary_read_cost(scan: f64, records: u64, ranges: u32, rows: u64) -> f64;

        /// A string key part of key format 3 (btree/keys.rs): the memcomparable
        /// bytes of the collation weights `weights` (`pad`: a space's weights in a
        /// PAD SPACE collation, else empty) into `out` (room for
        /// `string_key_max(weights.len(), pad.len())`); returns their length (0
        /// if they did not fit).
        fn string_key(weights: &[u8], pad: &[u8], out: &mut [u8]) -> usize;
        fn string_key_max(weights: usize, pad: usize) -> usize;
        /// The unpack item (tree format 6, btree/unpack.rs) of a string key
        /// part's `value` whose collation weights (without padding) are
        /// `weights`: `wide`, UTF-8 values with 2-byte code point weights;
        /// else one byte a character and a weight. Into `out` (room for
        /// `string_unpack_max(value.len())`); returns its length (0 if it did
        /// not fit: an item is never empty).
        fn string_unpack(value: &[u8], weights: &[u8], wide: bool, out: &mut [u8]) -> usize;
        fn string_unpack_max(value: usize) -> usize;

        /// What CREATE TABLE of the table at `path` may not do (`layout::check_create`:
        /// a layout this build lacks, CSV's and ARCHIVE's indexes and
        /// AUTO_INCREMENT, options that do not go together, an attached file);
        /// `Refusal::Option`'s message in `err`.
        fn table_create_check(path: &[u8], options: &TableOptions, facts: &CreateFacts, err: &mut String) -> CreateVerdict;
        fn table_create(path: &[u8], options: &TableOptions, err: &mut String) -> i32;
        fn table_delete(path: &[u8], err: &mut String) -> i32;
        fn table_rename(from: &[u8], to: &[u8], err: &mut String) -> i32;
        fn table_open(path: &[u8], options: &TableOptions) -> Box<Table>;

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
        /// CSV: the current row's decoded text, and its fields in it. ARCHIVE:
        /// the row image C++ packed. Valid until the next call on this handle.
        fn record_data(self: &Table) -> &[u8];
        fn record_fields(self: &Table) -> &[CsvField];

        /// ARCHIVE: appends a row. `key` is the row's index key (order-preserving),
        /// `keyed` whether the table has the index, `unique` whether it is unique;
        /// HA_ERR_FOUND_DUPP_KEY when a unique key does not grow.
        /// `segs`: where each column's bytes end in `image` (the null bytes
        /// first), so blocks can store rows by column.
        fn insert(self: &mut Table, image: &[u8], segs: &[u32], key: u64, keyed: bool, unique: bool) -> i32;
        /// CSV: appends a row, `fields` (one per stored column) in `text`.
        fn insert_text(self: &mut Table, text: &[u8], fields: &[CsvField]) -> i32;
        /// ARCHIVE: positions on the rows whose key is `key` (then scan_next).
        fn lookup(self: &mut Table, key: u64) -> i32;
        /// ARCHIVE: the next AUTO_INCREMENT value, after the largest key (of an
        /// `unsigned_key` column; a signed one counts from 1) or the table's start.
        fn next_auto_increment(self: &Table, keyed: bool, unsigned_key: bool) -> u64;
        /// ARCHIVE: recompresses every row into full blocks.
        /// ARCHIVE: recompress; stops with HA_ERR_ABORTED_BY_USER when session
        /// `session` is killed (the table as it was).
        fn optimize(self: &mut Table, session: usize) -> i32;
        /// CSV: the current row becomes `fields` in `text` (as `insert_text`).
        fn update_current(self: &mut Table, text: &[u8], fields: &[CsvField]) -> i32;
        fn delete_current(self: &mut Table) -> i32;
        fn set_bulk(self: &mut Table, on: bool) -> i32;
        fn flush(self: &mut Table) -> i32;
        fn truncate(self: &mut Table) -> i32;
        /// Forgets pending UPDATE/DELETE work after its statement failed.
        fn discard(self: &mut Table);

        fn stats(self: &Table) -> Stats;
        /// info()'s numbers; `show`: SHOW TABLE STATUS or the open (the real count).
        fn info(self: &Table, show: bool) -> Info;
        /// A full scan's cost for a table of `records` rows (src/optimizer.rs).
        fn scan_cost(self: &Table, records: u64, data_length: u64) -> f64;
        fn set_exact_rows(self: &Table, rows: u64);
        /// Moves one pending warning into `out`; false when there is none.
        fn take_warning(self: &mut Table, out: &mut String) -> bool;

        fn check_start(self: &mut Table) -> i32;
        /// 0: a row to judge is current; `Answer::Damaged`: a damaged record (its
        /// text in `out`); HA_ERR_END_OF_FILE at the end; else an error.
        fn check_next(self: &mut Table, out: &mut String) -> i32;
        /// `why` is bytes: it quotes a value from the file, which need not be UTF-8.
        /// The server could not store the current row's values (`why`): the
        /// line to show in `out`.
        fn check_reject(self: &mut Table, why: &[u8], out: &mut String);
        fn check_finish(self: &mut Table, repair: bool, out: &mut CheckSummary) -> i32;

        // BTREE. Secondary keys `sec`: the row's key in each secondary index, in
        // order. `dup` receives the index whose unique key is taken when
        // HA_ERR_FOUND_DUPP_KEY is returned.
        fn bt_insert(self: &mut Table, trx: &mut TrxHandle, pk: &[u8], row: &[u8], sec: &[SecKey], dup: &mut u32) -> i32;
        fn bt_update(
            self: &mut Table,
            trx: &mut TrxHandle,
            old_pk: &[u8],
            new_pk: &[u8],
            row: &[u8],
            old_sec: &[SecKey],
            new_sec: &[SecKey],
            dup: &mut u32,
        ) -> i32;
        fn bt_delete(self: &mut Table, trx: &mut TrxHandle, pk: &[u8], sec: &[SecKey]) -> i32;
        /// 0 with the row current, HA_ERR_KEY_NOT_FOUND.
        fn bt_get(self: &mut Table, trx: &mut TrxHandle, pk: &[u8]) -> i32;
        /// Positions on index `index` (0: clustered) by `find`; 0 with a row, or
        /// HA_ERR_END_OF_FILE.
        fn bt_seek(self: &mut Table, trx: &mut TrxHandle, index: u32, key: &[u8], find: FindMode) -> i32;
        fn bt_edge(self: &mut Table, trx: &mut TrxHandle, index: u32, last: bool) -> i32;
        fn bt_next(self: &mut Table, reverse: bool) -> i32;
        /// Only entries starting with `prefix` (or any, with `on` false).
        fn bt_set_prefix(self: &mut Table, prefix: &[u8], on: bool);
        /// The current row's primary key (memcomparable, or the hidden row id).
        fn bt_pk(self: &Table) -> &[u8];
        /// Index-only reads for the next seek/edge and its steps (the server's
        /// keyread): a secondary entry is not looked up in the clustered tree, so
        /// `record_data` is empty; its columns are read back by `bt_read_entry`,
        /// its row's primary key is `bt_pk`.
        fn bt_set_keys_only(self: &mut Table, on: bool);
        /// After an index-only step: the current entry's row (index condition
        /// pushdown: the entry passed the condition).
        fn bt_fetch_current(self: &mut Table) -> i32;
        /// The reading plan of index-only reads (btree/keyread.rs): how each part
        /// of each server key reads back from a secondary entry, in key order;
        /// `pk`: the primary key's server key number when every part of it reads
        /// back (its columns are then read from every entry), else `u32::MAX`.
        fn bt_set_read_plan(self: &mut Table, plan: &[PartPlan], pk: u32);
        /// The current secondary entry of server key `key` read back by that
        /// plan: a `ReadPart` a part (the key's, then the primary key's) into
        /// `parts`, their bytes into `bytes`; an entry that does not decode is
        /// an error (corrupt) with its message.
        fn bt_read_entry(self: &mut Table, key: u32, bytes: &mut Vec<u8>, parts: &mut Vec<ReadPart>) -> i32;
        /// Entries of index `index` in a range (records_in_range: exact over a few
        /// leaves, else estimated from the tree), never 0 (src/optimizer.rs).
        fn bt_count_range(self: &mut Table, index: u32, min: &[u8], min_end: RangeEnd, max: &[u8], max_end: RangeEnd) -> u64;
        /// The rows per value (rec_per_key, src/optimizer.rs) of each key prefix
        /// of index `index` into `out`, one per entry of `parts` (the index's key
        /// parts), for a table of `rows` rows, from the distinct values counted
        /// per prefix; `analyze`: counted again from a larger sample (ANALYZE).
        fn bt_rec_per_key(self: &mut Table, index: u32, parts: &[KeyPart], analyze: bool, rows: u64, out: &mut Vec<u64>) -> i32;
        /// The BTREE table's format version (docs/btree-format.md): 2 and up,
        /// binary and NO PAD string key parts end with their length.
        fn bt_key_format(self: &Table) -> u32;
        /// CHECK TABLE: the problems found, one a line to show; stops with
        /// HA_ERR_ABORTED_BY_USER when session `session` is killed.
        fn bt_check(self: &mut Table, session: usize, out: &mut Vec<String>) -> i32;
        /// A statement on the table begins, locking it as `lock` says.
        fn bt_begin_statement(self: &mut Table, trx: &mut TrxHandle, lock: &StatementLock) -> i32;
        /// The next AUTO_INCREMENT value (persistent counter, see btree-format.md).
        fn bt_auto_increment(self: &Table) -> u64;
        /// Moves the counter up for a value `v` given or stored (to just below the
        /// next value of the session's series `increment`, `offset`); never down.
        fn bt_auto_increment_used(self: &mut Table, v: u64, increment: u64, offset: u64) -> i32;
        /// Reserves a statement's values (get_auto_increment) and moves the
        /// counter to the reservation's end (btree/table/autoinc.rs).
        fn bt_auto_increment_reserve(self: &mut Table, r: &mut Autoinc) -> i32;
        /// Whether the counter was checked against the column since the table was
        /// opened (by any handler of it), and marking it checked.
        fn bt_auto_increment_checked(self: &Table) -> bool;
        fn bt_set_auto_increment_checked(self: &Table);
        /// The last row of index `index`, read without a table lock (for the check
        /// above); 0 with the row current, HA_ERR_END_OF_FILE if the index is empty.
        fn bt_last_unlocked(self: &mut Table, index: u32) -> i32;
        /// The server does not want the row last read (it did not match, or
        /// lay past the range): at READ COMMITTED and below its row locks,
        /// taken by this read, are let go (InnoDB's unlock_row).
        fn bt_unlock_row(self: &mut Table);
        /// TRUNCATE TABLE: the table's trees reset to empty at once (crash
        /// safe, not transactional), the AUTO_INCREMENT counter to its start.
        fn bt_truncate(self: &mut Table, trx: &mut TrxHandle) -> i32;
        /// REPAIR TABLE (docs/repair.md), in steps: begin (the table's exclusive
        /// lock; the clustered file salvaged into a new one, new empty secondary
        /// files); then bt_repair_next (0 with the next row current, as after
        /// bt_next; HA_ERR_END_OF_FILE at the end) and bt_repair_add with its
        /// secondary keys (framed as bt_insert's) for every row; then
        /// bt_repair_finish: `keep` puts the new files in place of the old, all or
        /// none (false gives the repair up); `note` gets the result's note,
        /// `damaged` whether rows were lost.
        fn bt_repair_begin(self: &mut Table, trx: &mut TrxHandle, session: usize) -> i32;
        fn bt_repair_next(self: &mut Table) -> i32;
        fn bt_repair_add(self: &mut Table, sec: &[SecKey]) -> i32;
        fn bt_repair_finish(self: &mut Table, keep: bool, note: &mut String, damaged: &mut bool) -> i32;
    }
}

use bridge::{
    Answer, Autoinc, CheckSummary, CsvField, FindMode, Info, Isolation, KeyPart, LayoutKind, LogFlush, CreateFacts, CreateVerdict, RangeEnd, Refusal, SecKey, ServerFamily, Sizes, StatementLock, StatementSettings, Stats, TableOptions, PartPlan, PartRead, PartState, ReadPart, Xid,
};
use crate::btree::engine::{Engine, FlushPolicy};
use crate::btree::keyread::{self, Got};
use crate::btree::layout::{ENGINE, engine};
use crate::btree::table::{self as bt, BtreeTable, Find, Request, StmtRead};
use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::sync::Arc;

// What C++ reads from the bridge's shared enums agrees with the engine's own.
const _: () = {
    use crate::error::*;
    assert!(
        bridge::RustError::Io.repr == HA_ERR_RUST_IO
            && bridge::RustError::Corrupt.repr == HA_ERR_RUST_CORRUPT
            && bridge::RustError::Panic.repr == HA_ERR_RUST_PANIC
            && bridge::RustError::Internal.repr == HA_ERR_RUST_INTERNAL,
        "the bridge's RustError codes must follow the server's HA_ERR_LAST"
    );
    assert!(bridge::Sizes::Page.repr as usize == crate::btree::page::PAGE_SIZE);
    assert!(bridge::Sizes::Layouts.repr as usize == layout::LAYOUTS.len());
    assert!(bridge::LogFlush::WriteOnly.repr == FlushPolicy::WriteOnly as u8);
};

mod status;
use status::{engine_status_text, info_columns, info_rows, status_vars};

fn policy(p: LogFlush) -> FlushPolicy {
    match p {
        LogFlush::OncePerSecond => FlushPolicy::OncePerSecond,
        LogFlush::WriteOnly => FlushPolicy::WriteOnly,
        _ => FlushPolicy::EveryCommit,
    }
}

fn engine_start(dir: &[u8], pool_pages: u64, flush_policy: LogFlush, log_size: u64, err: &mut String) -> i32 {
    guard("engine_start", err, || {
        if ENGINE.get().is_some() {
            return Ok(());
        }
        let e = Engine::open(&path(dir), pool_pages as usize, policy(flush_policy))?;
        e.set_log_size(log_size);
        let _ = ENGINE.set(e);
        bt::adopt_recovered_prepared(engine()?)?;
        bt::purge::start(engine()?);
        Ok(())
    })
}

fn engine_stop() -> i32 {
    let mut err = String::new();
    guard("engine_stop", &mut err, || match ENGINE.get() {
        Some(e) => {
            // what no transaction needs any more is purged before the last checkpoint
            if let Err(err) = bt::purge::stop(e) {
                eprintln!("[ERROR] RUST: purge at shutdown: {err}");
            }
            e.checkpoint_now()
        }
        None => Ok(()),
    })
}

fn engine_set_flush_policy(p: LogFlush) {
    guard_or("engine_set_flush_policy", 
        || (),
        || {
            if let Some(e) = ENGINE.get() {
                e.set_policy(policy(p));
            }
        },
    )
}

fn engine_set_log_size(bytes: u64) {
    guard_or("engine_set_log_size", 
        || (),
        || {
            if let Some(e) = ENGINE.get() {
                e.set_log_size(bytes);
            }
        },
    )
}

fn engine_set_lock_wait_timeout(secs: u64) {
    guard_or("engine_set_lock_wait_timeout", || (), || bt::LOCK_WAIT_TIMEOUT_SECS.store(secs, std::sync::atomic::Ordering::Relaxed))
}

fn engine_take_note(out: &mut String) -> bool {
    guard_or("engine_take_note", 
        || false,
        || match ENGINE.get().and_then(|e| {
            let mut n = e.notes.lock();
            (!n.is_empty()).then(|| n.remove(0))
        }) {
            Some(s) => {
                *out = s;
                true
            }
            None => false,
        },
    )
}

/// A connection's BTREE transaction as C++ holds it: the engine's handle, dropped
/// under the guard (dropping releases its table locks).
pub struct TrxHandle(ManuallyDrop<bt::TrxHandle>);

impl std::ops::Deref for TrxHandle {
    type Target = bt::TrxHandle;
    fn deref(&self) -> &bt::TrxHandle {
        &self.0
    }
}

impl std::ops::DerefMut for TrxHandle {
    fn deref_mut(&mut self) -> &mut bt::TrxHandle {
        &mut self.0
    }
}

impl Drop for TrxHandle {
    fn drop(&mut self) {
        // SAFETY: the handle is dropped here only, once; after a panic in its drop
        // what is left of it leaks.
        guard_or("drop TrxHandle", || (), || unsafe { ManuallyDrop::drop(&mut self.0) })
    }
}

fn trx_new() -> Box<TrxHandle> {
    // A new handle only allocates: after a panic, a second try.
    let new = || Box::new(TrxHandle(ManuallyDrop::new(bt::TrxHandle::new())));
    guard_or("trx_new", new, new)
}

fn trx_set_session(t: &mut TrxHandle, session: usize) {
    guard_or("trx_set_session", || (), || t.set_session(session))
}

/// What stops a connection's lock waits (see the bridge), dropped under the guard.
pub struct TrxWake(ManuallyDrop<Arc<bt::Interrupt>>);

impl Drop for TrxWake {
    fn drop(&mut self) {
        // SAFETY: as TrxHandle's drop.
        guard_or("drop TrxWake", || (), || unsafe { ManuallyDrop::drop(&mut self.0) })
    }
}

fn trx_wake(t: &TrxHandle) -> Box<TrxWake> {
    // After a panic: a wake tied to no transaction (KILL then ends the
    // connection's lock waits only at their timeout).
    let wake = |i| Box::new(TrxWake(ManuallyDrop::new(i)));
    guard_or("trx_wake", || wake(Arc::default()), || wake(t.interrupt()))
}

fn trx_wake_raise(w: &TrxWake) {
    guard_or("trx_wake_raise", || (), || w.0.raise())
}

/// C++ installs, at plugin start, the function that tells whether a session's
/// statement is to stop (see `btree::table::Interrupt`), and removes it at the
/// end. Not in the cxx bridge: cxx hands no C++ function pointer to Rust.
#[unsafe(no_mangle)]
pub extern "C" fn ha_rust_set_interrupt_probe(probe: Option<bt::Probe>) {
    guard_or("ha_rust_set_interrupt_probe", || (), || bt::set_probe(probe))
}

/// Installs the function long calls (BTREE CHECK TABLE, ARCHIVE OPTIMIZE) tell
/// their session's progress through (crate::session::StopCheck); None removes it.
#[unsafe(no_mangle)]
pub extern "C" fn ha_rust_set_progress_reporter(r: Option<crate::session::Reporter>) {
    guard_or("ha_rust_set_progress_reporter", || (), || crate::session::set_reporter(r))
}

fn trx_stmt_begin(t: &mut TrxHandle) {
    guard_or("trx_stmt_begin", || (), || t.stmt_begin())
}

fn trx_stmt_end(t: &mut TrxHandle, level: Isolation) {
    // a read per statement: the levels below REPEATABLE READ
    let per_statement = matches!(level, Isolation::ReadUncommitted | Isolation::ReadCommitted);
    guard_or("trx_stmt_end", || (), || t.stmt_end(per_statement))
}

fn trx_consistent_snapshot(t: &mut TrxHandle, level: Isolation) {
    guard_or("trx_consistent_snapshot", || (), || {
        if level == Isolation::RepeatableRead {
            if let Some(e) = ENGINE.get() {
                t.consistent_snapshot(e);
            }
        }
    })
}

fn trx_statement_settings(t: &mut TrxHandle, s: StatementSettings) {
    guard_or("trx_statement_settings", || (), || {
        t.set_lock_wait_timeout(s.lock_wait_timeout);
        t.set_snapshot_isolation(s.snapshot_isolation);
    })
}

fn trx_stmt_rollback(t: &mut TrxHandle, err: &mut String) -> i32 {
    guard("trx_stmt_rollback", err, || t.stmt_rollback(engine()?))
}

fn trx_commit(t: &mut TrxHandle, durable: bool, err: &mut String) -> i32 {
    let code = guard("trx_commit", err, || t.commit(engine()?, durable));
    after_panic_at_end(t, code)
}

/// After a panic in COMMIT or ROLLBACK: what the handle still holds of the
/// transaction is rolled back (under a guard of its own), so that the connection's
/// next statement does not commit a transaction whose COMMIT answered an error or
/// whose ROLLBACK was answered. (Found with `rust_debug_panic_at`: before, a
/// transaction whose COMMIT failed with a panic stayed open in the engine, and the
/// next autocommit statement of the connection committed it.) The code is passed on.
fn after_panic_at_end(t: &mut TrxHandle, code: i32) -> i32 {
    if code == crate::error::HA_ERR_RUST_PANIC {
        let mut e = String::new();
        if guard("rollback after a panic", &mut e, || t.rollback(engine()?)) != 0 {
            eprintln!("RUST: a transaction could not be rolled back after a panic at its end: {e}");
        }
    }
    code
}

fn log_flush(err: &mut String) -> i32 {
    guard("log_flush", err, || engine()?.flush_log())
}

fn trx_rollback(t: &mut TrxHandle, err: &mut String) -> i32 {
    let code = guard("trx_rollback", err, || t.rollback(engine()?));
    after_panic_at_end(t, code)
}

fn trx_prepare(t: &mut TrxHandle, xid: &Xid, err: &mut String) -> i32 {
    guard("trx_prepare", err, || t.prepare(engine()?, &xid_bytes(xid)))
}

fn trx_detach_prepared(t: &mut TrxHandle) -> bool {
    // After a panic: not kept (the connection's end rolls it back).
    guard_or("trx_detach_prepared", || false, || t.detach_prepared())
}

fn xa_prepared() -> Vec<Xid> {
    guard_or("xa_prepared", Vec::new, || {
        let mut out = Vec::new();
        let mut malformed = Vec::new();
        for x in bt::prepared_xids() {
            match xid_of(&x) {
                Some(xid) => out.push(xid),
                None => {
                    // not lost silently: it stays prepared, with its locks, and says so
                    eprintln!("{}", malformed_xid(&x));
                    malformed.push(x);
                }
            }
        }
        if !malformed.is_empty() {
            bt::prepared_xids_given(malformed, false);
        }
        out
    })
}

fn xa_given(xids: &[Xid], pass_ended: bool) {
    guard_or("xa_given", || (), || bt::prepared_xids_given(xids.iter().map(xid_bytes).collect(), pass_ended))
}

fn xa_end(xid: &Xid, commit: bool, err: &mut String) -> i32 {
    let mut found = false;
    let code = guard("xa_end", err, || {
        found = bt::end_prepared(engine()?, &xid_bytes(xid), commit)?;
        Ok(())
    });
    if code == 0 && !found { Answer::NoSuchXid.repr } else { code }
}

/// The largest gtrid and bqual of an XID (the server's MAXGTRIDSIZE, MAXBQUALSIZE).
const XID_PART_MAX: u32 = 64;

/// An XID as the engine keeps it (in PREPARE records, docs/btree-format.md): `i64
/// formatID, u32 gtrid_length, u32 bqual_length` (little-endian), then the data.
fn xid_bytes(x: &Xid) -> Vec<u8> {
    let mut b = Vec::with_capacity(16 + x.data.len());
    b.extend_from_slice(&x.format_id.to_le_bytes());
    b.extend_from_slice(&x.gtrid_length.to_le_bytes());
    b.extend_from_slice(&x.bqual_length.to_le_bytes());
    b.extend_from_slice(&x.data);
    b
}

/// The XID kept as `b`, if it is one the server can take.
fn xid_of(b: &[u8]) -> Option<Xid> {
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    if b.len() < 16 {
        return None;
    }
    let (gl, bl) = (u32_at(8), u32_at(12));
    if gl > XID_PART_MAX || bl > XID_PART_MAX || (gl + bl) as usize != b.len() - 16 {
        return None;
    }
    let format_id = i64::from_le_bytes(b[..8].try_into().unwrap());
    Some(Xid { format_id, gtrid_length: gl, bqual_length: bl, data: b[16..].to_vec() })
}

/// The error log's line for a prepared transaction whose stored XID is malformed.
fn malformed_xid(b: &[u8]) -> String {
    let hex: String = b.iter().take(160).map(|c| format!("{c:02x}")).collect();
    format!(
        "RUST: a prepared transaction has a malformed XID ({} bytes: {hex}{}); it is kept, with its table \
         locks, but the server cannot list, commit or roll it back",
        b.len(),
        if b.len() > 160 { "..." } else { "" }
    )
}

fn trx_savepoint(t: &TrxHandle) -> u64 {
    // After a panic: the transaction's start (what a transaction without changes
    // answers too).
    guard_or("trx_savepoint", || 0, || t.savepoint())
}

fn trx_rollback_to(t: &mut TrxHandle, sp: u64, err: &mut String) -> i32 {
    guard("trx_rollback_to", err, || t.rollback_to(engine()?, sp))
}

/// The secondary keys C++ sends, as the table takes them.
impl crate::btree::table::SecondaryKey for SecKey {
    fn key(&self) -> &[u8] {
        &self.key
    }
    fn has_null(&self) -> bool {
        self.has_null
    }
    fn unpack(&self) -> &[u8] {
        &self.unpack
    }
}

// ---- The panic guard ----
//
// Every function C++ calls (the bridge's, `ha_rust_set_interrupt_probe`, and the
// drop of every type C++ holds) runs its whole body in one of these, because a
// panic that reaches the boundary aborts the server. `catch` is the only
// `catch_unwind` of the boundary; the others shape its result for the caller.
// docs/boundary.md has the rule; `tests::every_entry_point_is_guarded` checks it.

/// Runs `f`, the body of entry point `entry` (its name as the bridge spells it; a
/// drop's is `drop <Type>`), turning a panic into [`Error::Panic`] (the panic hook
/// has already written the message and place to the server's error log).
fn catch<T>(entry: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(|| {
        inject::point(entry);
        debug_panic::point(entry);
        f()
    })) {
        Ok(r) => r,
        Err(p) => {
            crate::metrics::PANICS_CAUGHT.inc();
            inject::caught();
            Err(Error::Panic(panic_text(&p)))
        }
    }
}

/// For an entry that returns a code: 0, or the error's handler error code with its
/// message in `err`.
fn guard(entry: &'static str, err: &mut String, f: impl FnOnce() -> Result<()>) -> i32 {
    report(err, catch(entry, f))
}

/// 0, or the error's code with its message in `err`.
fn report(err: &mut String, r: Result<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            *err = e.to_string();
            e.code()
        }
    }
}

/// For an entry with no error to return (a setter, a value, a drop): `f`'s value,
/// or `fallback`'s after a panic.
fn guard_or<T>(entry: &'static str, fallback: impl FnOnce() -> T, f: impl FnOnce() -> T) -> T {
    catch(entry, || Ok(f())).unwrap_or_else(|_| fallback())
}

/// The test hook `rust_debug_panic_at` (a global system variable, SUPER only; see
/// docs/crash-safety.md, Panics): while it names an entry point, every call of that
/// entry point panics inside its guard, so a test can see in the real server what a
/// panic there becomes. Off (empty) by default; a guard then pays one relaxed atomic
/// load. The setter itself (`engine_set_debug_panic_at`) never panics through it, so
/// the hook can always be cleared.
mod debug_panic {
    use parking_lot::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    static ARMED: AtomicBool = AtomicBool::new(false);
    static AT: Mutex<String> = Mutex::new(String::new());

    #[inline(always)]
    pub fn point(entry: &'static str) {
        if ARMED.load(Ordering::Relaxed) {
            hit(entry)
        }
    }

    #[cold]
    #[inline(never)]
    fn hit(entry: &'static str) {
        if entry != "engine_set_debug_panic_at" && *AT.lock() == entry {
            panic!("panic injected at {entry} (rust_debug_panic_at)");
        }
    }

    pub fn set(entry: &str) {
        let mut at = AT.lock();
        *at = entry.to_string();
        ARMED.store(!at.is_empty(), Ordering::Relaxed);
    }
}

/// Sets the test hook `rust_debug_panic_at` (empty: off).
fn engine_set_debug_panic_at(entry: &[u8]) {
    guard_or("engine_set_debug_panic_at", || (), || debug_panic::set(&String::from_utf8_lossy(entry)))
}

/// Sets the test hook `rust_debug_create_format` (0: off).
fn engine_set_debug_create_format(format: u32) {
    guard_or("engine_set_debug_create_format", || (), || bt::set_debug_create_format(format))
}

/// Test-only panic injection: `arm` makes the guard of entry point `entry`, when it
/// is next entered on this thread, panic inside it, and `caught` counts the panics
/// guards caught, so a test can tell an entry point that went through a guard under
/// its own name from one that did not.
#[cfg(test)]
mod inject {
    use std::cell::Cell;

    thread_local! {
        static ARMED: Cell<Option<&'static str>> = const { Cell::new(None) };
        static CAUGHT: Cell<u64> = const { Cell::new(0) };
    }

    pub fn point(entry: &'static str) {
        if ARMED.get() == Some(entry) {
            ARMED.set(None);
            panic!("panic injected by a test");
        }
    }
    pub fn caught() {
        CAUGHT.set(CAUGHT.get() + 1);
    }
    pub fn arm(entry: Option<&'static str>) {
        ARMED.set(entry);
    }
    pub fn caught_count() -> u64 {
        CAUGHT.get()
    }
}

#[cfg(not(test))]
mod inject {
    #[inline(always)]
    pub fn point(_: &'static str) {}
    #[inline(always)]
    pub fn caught() {}
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

/// The layout `v`, if this build can create and open it now.
fn available(v: LayoutKind) -> Result<&'static dyn layout::Layout> {
    let l = layout::by_value(v.repr)?;
    l.available()?;
    Ok(l)
}

fn primary_read_cost(scan: f64, records: u64, ranges: u32, rows: u64) -> f64 {
    guard_or("primary_read_cost", || scan, || optimizer::primary_read_cost(scan, records, ranges, rows))
}

fn string_key(weights: &[u8], pad: &[u8], out: &mut [u8]) -> usize {
    guard_or("string_key", 
        || 0,
        || {
            let mut v = Vec::with_capacity(out.len());
            crate::btree::keys::encode(weights, pad, &mut v);
            if v.len() > out.len() {
                return 0;
            }
            out[..v.len()].copy_from_slice(&v);
            v.len()
        },
    )
}

fn string_key_max(weights: usize, pad: usize) -> usize {
    guard_or("string_key_max", || 0, || crate::btree::keys::max_len(weights, pad))
}

/// A key part as the engine's layout bits (`btree::keys::PART_*`,
/// `bt::PART_NULLABLE`).
fn part_spec(p: &KeyPart) -> u32 {
    use crate::btree::keys::{PART_CHUNKED, PART_PAD_SPACE};
    let chunked = match (p.chunked, p.length) {
        (false, _) => 0,
        (true, 0) => PART_CHUNKED,
        (true, _) => PART_CHUNKED | PART_PAD_SPACE,
    };
    p.length | chunked | if p.nullable { bt::PART_NULLABLE } else { 0 }
}

/// The shim's reading plan as btree/keyread.rs's (parts in key order, grouped
/// by server key).
fn read_plan(plan: &[PartPlan], pk: u32) -> keyread::Plan {
    let mut keys: Vec<Vec<keyread::Part>> = Vec::new();
    for p in plan {
        let k = p.key as usize;
        if keys.len() <= k {
            keys.resize(k + 1, Vec::new());
        }
        let read = match p.read {
            PartRead::Copy => keyread::Read::Copy,
            PartRead::Reverse => keyread::Read::Reverse,
            PartRead::ReverseSigned => keyread::Read::ReverseSigned,
            PartRead::StringKey => keyread::Read::StringKey { trail: p.trail },
            PartRead::StringValue => keyread::Read::StringValue,
            PartRead::StringCase => keyread::Read::StringCase(units(p.wide)),
            _ => keyread::Read::None,
        };
        keys[k].push(keyread::Part { spec: part_spec(&p.part) & !bt::PART_NULLABLE, nullable: p.part.nullable, read });
    }
    keyread::Plan::new(keys, (pk != u32::MAX).then_some(pk as usize))
}

fn units(wide: bool) -> crate::btree::unpack::Units {
    if wide {
        crate::btree::unpack::Units::Wide
    } else {
        crate::btree::unpack::Units::Narrow
    }
}

fn string_unpack(value: &[u8], weights: &[u8], wide: bool, out: &mut [u8]) -> usize {
    guard_or(
        "string_unpack",
        || 0,
        || {
            let mut v = Vec::with_capacity(out.len());
            crate::btree::unpack::encode(value, weights, units(wide), &mut v);
            if v.len() > out.len() {
                return 0;
            }
            out[..v.len()].copy_from_slice(&v);
            v.len()
        },
    )
}

fn string_unpack_max(value: usize) -> usize {
    guard_or("string_unpack_max", || 0, || crate::btree::unpack::max_len(value))
}

/// The Rust side of a table's options.
fn options(p: &[u8], o: &TableOptions) -> Options {
    Options {
        path: path(p),
        external: (!o.csv_file.is_empty()).then(|| path(&o.csv_file)),
        header: o.csv_header,
        separator: o.csv_separator,
        writable: o.csv_writable,
        columns: o.columns as usize,
        header_text: o.header_text.clone(),
        header_fields: o.header_fields.clone(),
        auto_inc_base: o.auto_inc_base,
        index_count: o.unique.len(),
        level: o.compression_level,
        unique: o.unique.clone(),
        hidden_pk: o.hidden_pk,
        family: if o.family == ServerFamily::MySql { layout::Family::MySql } else { layout::Family::MariaDb },
    }
}

fn table_create_check(p: &[u8], o: &TableOptions, f: &CreateFacts, err: &mut String) -> CreateVerdict {
    let c = layout::Create {
        options: layout::CreateOptions {
            layout: o.layout,
            csv_file: f.csv_file,
            csv_header: o.csv_header,
            csv_separator: f.csv_separator.then_some(&f.csv_separator_text[..]),
            csv_writable: o.csv_writable,
            compression_level: o.compression_level,
        },
        path: p,
        keys_on_autoinc: &f.keys_on_autoinc,
        auto_increment: f.auto_increment,
        altering: f.altering,
        csv_file: &o.csv_file,
        csv_file_max: f.csv_file_max as usize,
        file_privilege: f.file_privilege,
        secure_path: f.secure_path,
    };
    let mut verdict = CreateVerdict { refusal: Refusal::None, max_keys: 0 };
    let mut refused = |r| {
        use layout::Refused as R;
        verdict.refusal = match r {
            R::TooManyKeys(n) => {
                verdict.max_keys = n;
                Refusal::TooManyKeys
            }
            R::AutoIncrement => Refusal::AutoIncrement,
            R::Option(why) => return Err(Error::Unsupported(why)),
            R::FilePrivilege => Refusal::FilePrivilege,
            R::SecureFilePriv => Refusal::SecureFilePriv,
        };
        Ok(())
    };
    // A layout this build lacks, and after a panic: refused, with the message.
    if guard("table_create_check", err, || {
        available(o.layout)?;
        layout::check_create(&c).or_else(&mut refused)
    }) != 0
    {
        verdict.refusal = Refusal::Option;
    }
    verdict
}

fn table_create(p: &[u8], o: &TableOptions, err: &mut String) -> i32 {
    guard("table_create", err, || available(o.layout)?.create(&options(p, o)))
}

/// DROP: the files of whichever layout the table has (the server does not say).
fn table_delete(p: &[u8], err: &mut String) -> i32 {
    guard("table_delete", err, || {
        let base = path(p);
        // The server's DROP of a table without a .frm asks every engine to delete it and
        // takes success from any of them as "the table existed": answer "no such
        // table" when neither a definition nor any file of ours is there.
        let existed =
            crate::fsutil::with_ext(&base, ".frm").exists() || layout::LAYOUTS.iter().any(|l| l.exists(&base));
        for l in layout::LAYOUTS {
            l.delete(&base)?;
        }
        if !existed {
            return Err(Error::NotFound(format!("table '{}' does not exist", base.display())));
        }
        Ok(())
    })
}

fn table_rename(from: &[u8], to: &[u8], err: &mut String) -> i32 {
    guard("table_rename", err, || {
        for l in layout::LAYOUTS {
            l.rename(&path(from), &path(to))?;
        }
        Ok(())
    })
}

/// An open table as C++ holds it.
pub struct Table {
    inner: Option<Box<dyn LayoutTable>>,
    /// An operation on this handle panicked: its state may be half changed, so
    /// it refuses every further use (FLUSH TABLES reopens the table) and what it
    /// holds is never dropped (dropping could write that state).
    broken: Cell<bool>,
    open_error: i32,
    error: String,
    /// Rows the server could not store in this CHECK/REPAIR (`check_reject`).
    check_rejected: u64,
}

impl Drop for Table {
    fn drop(&mut self) {
        guard_or("drop Table", 
            || (),
            || {
                let inner = self.inner.take();
                if self.broken.get() {
                    std::mem::forget(inner)
                } else {
                    drop(inner)
                }
            },
        )
    }
}

fn table_open(p: &[u8], o: &TableOptions) -> Box<Table> {
    let mut t =
        Box::new(Table { inner: None, broken: Cell::new(false), open_error: 0, error: String::new(), check_rejected: 0 });
    let mut inner = None;
    t.open_error = guard("table_open", &mut t.error, || {
        inner = Some(available(o.layout)?.open(&options(p, o))?);
        Ok(())
    });
    t.inner = inner;
    t
}

/// The BTREE table behind a handle, for an operation only BTREE has.
fn btree(t: &mut dyn LayoutTable) -> Result<&mut BtreeTable> {
    t.btree().ok_or_else(|| layout::unsupported("a BTREE operation"))
}

/// What a handle says when it is used after a panic in it (or after a failed open).
fn closed() -> Error {
    Error::Panic("this handle of the table was closed after a panic in an earlier call (see the error log); FLUSH TABLES reopens it".into())
}

impl Table {
    /// Runs `f` on the open table under the guard: 0, or an error code with its
    /// message in `last_error`. A panic marks the handle broken.
    fn run(&mut self, entry: &'static str, f: impl FnOnce(&mut dyn LayoutTable) -> Result<()>) -> i32 {
        let r = catch(entry, || match self.inner.as_deref_mut() {
            Some(t) if !self.broken.get() => f(t),
            _ => Err(closed()),
        });
        if let Err(Error::Panic(_)) = r {
            self.broken.set(true);
        }
        report(&mut self.error, r)
    }

    /// For an entry that reads the open table and returns a value: `f`'s value, or
    /// `default` when the handle is closed or `f` panicked (which marks it broken).
    fn value<'a, T>(&'a self, entry: &'static str, default: T, f: impl FnOnce(&'a dyn LayoutTable) -> T) -> T {
        let r = catch(entry, || match self.inner.as_deref() {
            Some(t) if !self.broken.get() => Ok(Some(f(t))),
            _ => Ok(None),
        });
        self.valued(r, default)
    }

    /// [`value`](Self::value) for an entry that changes the table and has no error
    /// to return.
    fn value_mut<T>(&mut self, entry: &'static str, default: T, f: impl FnOnce(&mut dyn LayoutTable) -> T) -> T {
        let r = catch(entry, || match self.inner.as_deref_mut() {
            Some(t) if !self.broken.get() => Ok(Some(f(t))),
            _ => Ok(None),
        });
        self.valued(r, default)
    }

    fn valued<T>(&self, r: Result<Option<T>>, default: T) -> T {
        match r {
            Ok(Some(v)) => v,
            Ok(None) => default,
            Err(_) => {
                self.broken.set(true);
                default
            }
        }
    }

    fn last_error(&self) -> &str {
        guard_or("last_error", || "", || &self.error)
    }
    fn open_error(&self) -> i32 {
        guard_or("open_error", || crate::error::HA_ERR_RUST_PANIC, || self.open_error)
    }

    fn scan_start(&mut self) -> i32 {
        self.run("scan_start", |t| t.scan_start())
    }
    fn scan_next(&mut self) -> i32 {
        let mut more = false;
        let code = self.run("scan_next", |t| {
            more = t.scan_next()?;
            Ok(())
        });
        if code == 0 && !more { consts::HA_ERR_END_OF_FILE as i32 } else { code }
    }
    fn scan_end(&mut self) -> i32 {
        self.run("scan_end", |t| t.scan_end())
    }
    fn read_at(&mut self, pos: u64) -> i32 {
        self.run("read_at", |t| t.read_at(pos))
    }
    fn position(&self) -> u64 {
        self.value("position", 0, |t| t.position())
    }
    fn current_line(&self) -> u64 {
        self.value("current_line", 0, |t| t.current_line())
    }
    fn record_data(&self) -> &[u8] {
        self.value("record_data", &[], |t| t.record_data())
    }
    fn record_fields(&self) -> &[CsvField] {
        self.value("record_fields", &[], |t| t.record_fields())
    }
    fn insert(&mut self, image: &[u8], segs: &[u32], key: u64, keyed: bool, unique: bool) -> i32 {
        let mut accepted = true;
        let code = self.run("insert", |t| {
            accepted = t.insert(image, segs, key, keyed, unique)?;
            Ok(())
        });
        if code == 0 && !accepted { consts::HA_ERR_FOUND_DUPP_KEY as i32 } else { code }
    }
    fn insert_text(&mut self, text: &[u8], fields: &[CsvField]) -> i32 {
        self.run("insert_text", |t| t.insert_text(text, fields))
    }
    fn lookup(&mut self, key: u64) -> i32 {
        self.run("lookup", |t| t.lookup(key))
    }
    fn next_auto_increment(&self, keyed: bool, unsigned_key: bool) -> u64 {
        self.value("next_auto_increment", 1, |t| layout::next_auto_increment(t.max_key(), keyed, unsigned_key))
    }
    fn optimize(&mut self, session: usize) -> i32 {
        self.run("optimize", |t| t.optimize(session))
    }
    fn update_current(&mut self, text: &[u8], fields: &[CsvField]) -> i32 {
        self.run("update_current", |t| t.update_current(text, fields))
    }
    fn delete_current(&mut self) -> i32 {
        self.run("delete_current", |t| t.delete_current())
    }
    fn set_bulk(&mut self, on: bool) -> i32 {
        self.run("set_bulk", |t| t.set_bulk(on))
    }
    fn flush(&mut self) -> i32 {
        self.run("flush", |t| t.flush())
    }
    fn truncate(&mut self) -> i32 {
        self.run("truncate", |t| t.truncate())
    }
    fn discard(&mut self) {
        self.value_mut("discard", (), |t| t.discard())
    }
    fn stats(&self) -> Stats {
        self.value("stats", Stats { rows: 0, data_length: 0, index_length: 0, exact: false }, |t| t.stats())
    }
    fn info(&self, show: bool) -> Info {
        let none = Info { records: 0, data_length: 0, index_length: 0, mean_rec_length: 0, block_size: 0 };
        self.value("info", none, |t| optimizer::info(t.btree_ref().is_some(), &t.stats(), show))
    }
    fn scan_cost(&self, records: u64, data_length: u64) -> f64 {
        self.value("scan_cost", 1.0, |t| optimizer::scan_cost(t.btree_ref().is_some(), records, data_length))
    }
    fn set_exact_rows(&self, rows: u64) {
        self.value("set_exact_rows", (), |t| t.set_exact_rows(rows))
    }
    fn take_warning(&mut self, out: &mut String) -> bool {
        self.value_mut("take_warning", false, |t| {
            let w = t.warnings();
            if w.is_empty() {
                return false;
            }
            *out = w.remove(0);
            true
        })
    }
    fn check_start(&mut self) -> i32 {
        self.check_rejected = 0;
        self.run("check_start", |t| t.check_start())
    }
    fn check_next(&mut self, out: &mut String) -> i32 {
        let mut step = 0;
        let code = self.run("check_next", |t| {
            step = match t.check_next()? {
                CheckStep::Row => 0,
                CheckStep::Damaged(text) => {
                    *out = text;
                    Answer::Damaged.repr
                }
                CheckStep::End => consts::HA_ERR_END_OF_FILE as i32,
            };
            Ok(())
        });
        if code == 0 { step } else { code }
    }
    fn check_reject(&mut self, why: &[u8], out: &mut String) {
        self.check_rejected += 1;
        self.run("check_reject", |t| {
            *out = t.check_reject(String::from_utf8_lossy(why).into_owned());
            Ok(())
        });
    }
    fn check_finish(&mut self, repair: bool, out: &mut CheckSummary) -> i32 {
        let rejected = self.check_rejected;
        self.run("check_finish", |t| {
            *out = t.check_finish(repair, rejected)?;
            let shown = Sizes::CheckWarnings.repr as u64;
            if out.damaged > shown {
                out.more = format!("... and {} more damaged records", out.damaged - shown);
            }
            Ok(())
        })
    }

    // ---- BTREE ----

    fn bt_insert(&mut self, trx: &mut TrxHandle, pk: &[u8], row: &[u8], sec: &[SecKey], dup: &mut u32) -> i32 {
        let mut d = None;
        let code = self.run("bt_insert", |t| {
            let e = engine()?;
            d = btree(t)?.insert(e, trx, pk, row, sec)?;
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
        old_sec: &[SecKey],
        new_sec: &[SecKey],
        dup: &mut u32,
    ) -> i32 {
        let mut d = None;
        let code = self.run("bt_update", |t| {
            let e = engine()?;
            d = btree(t)?.update(e, trx, old_pk, new_pk, row, old_sec, new_sec)?;
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

    fn bt_delete(&mut self, trx: &mut TrxHandle, pk: &[u8], sec: &[SecKey]) -> i32 {
        self.run("bt_delete", |t| {
            let e = engine()?;
            btree(t)?.delete(e, trx, pk, sec)
        })
    }

    fn bt_get(&mut self, trx: &mut TrxHandle, pk: &[u8]) -> i32 {
        let mut found = false;
        let code = self.run("bt_get", |t| {
            found = btree(t)?.get(engine()?, trx, pk)?;
            Ok(())
        });
        if code == 0 && !found { consts::HA_ERR_KEY_NOT_FOUND as i32 } else { code }
    }

    fn bt_seek(&mut self, trx: &mut TrxHandle, index: u32, key: &[u8], find: FindMode) -> i32 {
        let f = match find {
            FindMode::Exact => Find::Exact,
            FindMode::KeyOrNext => Find::KeyOrNext,
            FindMode::KeyOrPrev => Find::KeyOrPrev,
            FindMode::AfterKey => Find::AfterKey,
            FindMode::BeforeKey => Find::BeforeKey,
            FindMode::PrefixLast => Find::PrefixLast,
            _ => Find::PrefixLastOrPrev,
        };
        let mut found = false;
        let code = self.run("bt_seek", |t| {
            found = btree(t)?.seek(engine()?, trx, index as usize, key, f)?;
            Ok(())
        });
        if code == 0 && !found { consts::HA_ERR_END_OF_FILE as i32 } else { code }
    }

    fn bt_edge(&mut self, trx: &mut TrxHandle, index: u32, last: bool) -> i32 {
        let mut found = false;
        let code = self.run("bt_edge", |t| {
            found = btree(t)?.edge(engine()?, trx, index as usize, last)?;
            Ok(())
        });
        if code == 0 && !found { consts::HA_ERR_END_OF_FILE as i32 } else { code }
    }

    fn bt_next(&mut self, reverse: bool) -> i32 {
        let mut found = false;
        let code = self.run("bt_next", |t| {
            found = btree(t)?.next(reverse)?;
            Ok(())
        });
        if code == 0 && !found { consts::HA_ERR_END_OF_FILE as i32 } else { code }
    }

    fn bt_set_prefix(&mut self, prefix: &[u8], on: bool) {
        self.value_mut("bt_set_prefix", (), |t| {
            if let Some(t) = t.btree() {
                t.set_prefix(on.then(|| prefix.to_vec()));
            }
        })
    }

    fn bt_key_format(&self) -> u32 {
        self.value("bt_key_format", 0, |t| match t.btree_ref() {
            Some(t) => t.key_format(),
            _ => 0,
        })
    }

    fn bt_pk(&self) -> &[u8] {
        self.value("bt_pk", &[], |t| match t.btree_ref() {
            Some(t) => &t.pk,
            _ => &[],
        })
    }

    fn bt_set_keys_only(&mut self, on: bool) {
        self.value_mut("bt_set_keys_only", (), |t| {
            if let Some(t) = t.btree() {
                t.set_keys_only(on);
            }
        })
    }

    fn bt_fetch_current(&mut self) -> i32 {
        self.run("bt_fetch_current", |t| btree(t)?.fetch_current())
    }

    fn bt_set_read_plan(&mut self, plan: &[PartPlan], pk: u32) {
        self.value_mut("bt_set_read_plan", (), |t| {
            if let Some(t) = t.btree() {
                t.set_read_plan(read_plan(plan, pk));
            }
        })
    }

    fn bt_read_entry(&mut self, key: u32, bytes: &mut Vec<u8>, parts: &mut Vec<ReadPart>) -> i32 {
        self.run("bt_read_entry", |t| {
            let got = btree(t)?.read_entry(key as usize, bytes)?;
            parts.clear();
            parts.extend(got.iter().map(|g| match *g {
                Got::Skip => ReadPart { state: PartState::Skip, at: 0, len: 0 },
                Got::Null => ReadPart { state: PartState::Null, at: 0, len: 0 },
                Got::Value { at, len } => ReadPart { state: PartState::Value, at: at as u32, len: len as u32 },
            }));
            Ok(())
        })
    }

    fn bt_count_range(&mut self, index: u32, min: &[u8], min_end: RangeEnd, max: &[u8], max_end: RangeEnd) -> u64 {
        let mut n = 0;
        self.run("bt_count_range", |t| {
            let t = btree(t)?;
            n = t.count_range(
                index as usize,
                (min_end != RangeEnd::Unbounded).then_some(min),
                min_end == RangeEnd::Inclusive,
                (max_end != RangeEnd::Unbounded).then_some(max),
                max_end == RangeEnd::Inclusive,
            )?;
            Ok(())
        });
        optimizer::range_rows(n)
    }

    fn bt_rec_per_key(&mut self, index: u32, parts: &[KeyPart], analyze: bool, rows: u64, out: &mut Vec<u64>) -> i32 {
        out.clear();
        self.run("bt_rec_per_key", |t| {
            let parts: Vec<u32> = parts.iter().map(part_spec).collect();
            out.extend(optimizer::rec_per_key(rows, &btree(t)?.key_stats(index as usize, &parts, analyze)?));
            Ok(())
        })
    }

    fn bt_begin_statement(&mut self, trx: &mut TrxHandle, lock: &StatementLock) -> i32 {
        let want = Request { exclusive: lock.exclusive, intention: false, low_priority: lock.exclusive && lock.low_priority };
        let read = match lock.isolation {
            _ if !lock.consistent => StmtRead::Locking,
            Isolation::ReadUncommitted => StmtRead::Uncommitted,
            Isolation::ReadCommitted => StmtRead::Statement,
            _ => StmtRead::Snapshot,
        };
        let gaps = matches!(lock.isolation, Isolation::RepeatableRead | Isolation::Serializable);
        self.run("bt_begin_statement", |t| {
            let b = btree(t)?;
            b.set_lock_scope(lock.whole_table, gaps);
            b.begin_statement(engine()?, trx, want, lock.skip_locked, read)
        })
    }

    fn bt_truncate(&mut self, trx: &mut TrxHandle) -> i32 {
        self.run("bt_truncate", |t| btree(t)?.truncate(engine()?, trx))
    }

    fn bt_repair_begin(&mut self, trx: &mut TrxHandle, session: usize) -> i32 {
        self.run("bt_repair_begin", |t| {
            let b = btree(t)?;
            let steps = b.check_steps();
            b.repair_begin(engine()?, trx, &mut bt::StopCheck::new(session).with_total(steps))
        })
    }

    fn bt_repair_next(&mut self) -> i32 {
        let mut found = false;
        let code = self.run("bt_repair_next", |t| {
            found = btree(t)?.repair_next()?;
            Ok(())
        });
        if code == 0 && !found { consts::HA_ERR_END_OF_FILE as i32 } else { code }
    }

    fn bt_repair_add(&mut self, sec: &[SecKey]) -> i32 {
        self.run("bt_repair_add", |t| btree(t)?.repair_add_entries(sec))
    }

    fn bt_repair_finish(&mut self, keep: bool, note: &mut String, damaged: &mut bool) -> i32 {
        self.run("bt_repair_finish", |t| {
            let rep = btree(t)?.repair_finish(engine()?, keep)?;
            *note = rep.note();
            *damaged = rep.damaged();
            Ok(())
        })
    }

    fn bt_auto_increment(&self) -> u64 {
        self.value("bt_auto_increment", 0, |t| match t.btree_ref() {
            Some(t) => t.auto_increment_next(),
            _ => 0,
        })
    }

    fn bt_auto_increment_used(&mut self, v: u64, increment: u64, offset: u64) -> i32 {
        self.run("bt_auto_increment_used", |t| btree(t)?.auto_increment_used(bt::autoinc::used_in_series(v, increment, offset)))
    }

    fn bt_auto_increment_reserve(&mut self, r: &mut Autoinc) -> i32 {
        self.run("bt_auto_increment_reserve", |t| {
            btree(t)?.auto_increment_reserve(r)
        })
    }

    fn bt_auto_increment_checked(&self) -> bool {
        self.value("bt_auto_increment_checked", true, |t| match t.btree_ref() {
            Some(t) => t.auto_increment_checked(),
            _ => true,
        })
    }

    fn bt_set_auto_increment_checked(&self) {
        self.value("bt_set_auto_increment_checked", (), |t| {
            if let Some(t) = t.btree_ref() {
                t.set_auto_increment_checked();
            }
        })
    }

    fn bt_last_unlocked(&mut self, index: u32) -> i32 {
        let mut found = false;
        let code = self.run("bt_last_unlocked", |t| {
            found = btree(t)?.last_unlocked(index as usize)?;
            Ok(())
        });
        if code == 0 && !found { consts::HA_ERR_END_OF_FILE as i32 } else { code }
    }

    fn bt_unlock_row(&mut self) {
        self.value_mut("bt_unlock_row", (), |t| {
            if let Some(b) = t.btree() {
                b.unlock_row();
            }
        })
    }

    fn bt_check(&mut self, session: usize, out: &mut Vec<String>) -> i32 {
        out.clear();
        let code = self.run("bt_check", |t| {
            let b = btree(t)?;
            let steps = b.check_steps();
            *out = b.check_with(&mut bt::StopCheck::new(session).with_total(steps))?;
            Ok(())
        });
        if code == consts::HA_ERR_ABORTED_BY_USER as i32 {
            return code;
        }
        if code != 0 {
            // an error that stopped the check is a problem it found
            *out = vec![self.error.clone()];
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::os::unix::ffi::OsStrExt;

    const PANIC: i32 = crate::error::HA_ERR_RUST_PANIC;

    /// A one-column CSV table's options (or another layout's).
    fn opts(layout: LayoutKind) -> TableOptions {
        TableOptions {
            layout,
            csv_file: Vec::new(),
            csv_header: false,
            csv_separator: b',',
            csv_writable: false,
            columns: 1,
            compression_level: 0,
            header_text: Vec::new(),
            header_fields: Vec::new(),
            auto_inc_base: 0,
            unique: vec![false],
            hidden_pk: false,
            family: ServerFamily::MariaDb,
        }
    }

    /// Runs `f` with a panic injected into the guard of entry point `entry` (the
    /// name the entry passes to its guard): whether a guard caught that panic and
    /// `f` said the entry answered as it should after one.
    fn armed(entry: &'static str, f: impl FnOnce() -> bool) -> bool {
        let before = inject::caught_count();
        inject::arm(Some(entry));
        let answered = f();
        inject::arm(None);
        inject::caught_count() == before + 1 && answered
    }

    fn xid() -> Xid {
        Xid { format_id: 1, gtrid_length: 1, bqual_length: 0, data: b"x".to_vec() }
    }

    /// Whether a handle refuses use as one broken by a panic does.
    fn refuses(t: &mut Table) -> bool {
        t.scan_start() == PANIC && t.last_error().contains("closed after a panic in an earlier call")
    }

    /// What C++ can call, read from this file: the bridge's functions, the drop of
    /// each Rust type the bridge hands over, and the `extern "C"` functions.
    fn entry_points_in_source() -> BTreeSet<String> {
        let src = include_str!("mod.rs");
        let src = &src[..src.find("\n#[cfg(test)]\nmod tests {").unwrap()];
        let start = src.find("pub mod bridge {").unwrap();
        let end = start + src[start..].find("\n}\n").unwrap();
        let mut names = BTreeSet::new();
        for line in src[start..end].lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("fn ") {
                names.insert(rest[..rest.find('(').unwrap()].to_string());
            } else if let Some(rest) = line.strip_prefix("type ") {
                names.insert(format!("drop {}", rest.trim_end_matches(';')));
            }
        }
        let marker = "extern \"C\" fn ";
        for (i, _) in src.match_indices(marker) {
            let rest = &src[i + marker.len()..];
            names.insert(rest[..rest.find('(').unwrap()].to_string());
        }
        names
    }

    /// Every entry point, called with a panic injected into its guard, returns
    /// what it returns after a panic (an error code, or its fallback value) instead
    /// of unwinding into C++, and a table handle is then closed. The list of cases
    /// must be the list of entry points in this file, so a new entry point without
    /// a case here fails, and one without a guard fails its case.
    #[test]
    fn every_entry_point_is_guarded() {
        let d = crate::testutil::dir("ffi_every_entry_point_is_guarded", 0);
        let p = d.join("t").as_os_str().as_bytes().to_vec();
        let mut e = String::new();
        assert_eq!(table_create(&p, &opts(LayoutKind::Csv), &mut e), 0, "{e}");
        let open = || {
            let t = table_open(&p, &opts(LayoutKind::Csv));
            assert_eq!(t.open_error(), 0, "{}", t.last_error());
            t
        };
        // Each case: its entry point's name, and whether it passed.
        let mut cases: Vec<(&str, bool)> = Vec::new();
        // An engine-wide entry.
        macro_rules! free {
            ($name:literal, $e:expr) => {
                cases.push(($name, armed($name, || $e)))
            };
        }
        // An entry on a transaction handle `$t`.
        macro_rules! trx {
            ($name:literal, |$t:ident| $e:expr) => {{
                let mut $t = trx_new();
                let _ = &mut $t;
                cases.push(($name, armed($name, || $e)))
            }};
        }
        // An entry on a table handle `$t` (with a transaction `$x`), which must
        // refuse further use after the panic.
        macro_rules! table {
            ($name:literal, |$t:ident, $x:ident| $e:expr) => {{
                let (mut $t, mut $x) = (open(), trx_new());
                let _ = &mut $x;
                let ok = armed($name, || $e) && refuses(&mut $t);
                cases.push(($name, ok))
            }};
        }
        let mut s = String::new();
        let mut dup = 0u32;
        let mut summary = layout::empty_summary();
        let mut lines = Vec::new();
        let mut v = Vec::new();
        let mut flag = false;

        free!("engine_start", engine_start(b"/nonexistent", 16, LogFlush::EveryCommit, 1 << 20, &mut s) == PANIC);
        free!("engine_stop", engine_stop() == PANIC);
        free!("engine_set_flush_policy", {
            engine_set_flush_policy(LogFlush::EveryCommit);
            true
        });
        free!("engine_set_lock_wait_timeout", {
            engine_set_lock_wait_timeout(bt::LOCK_WAIT_TIMEOUT_SECS.load(std::sync::atomic::Ordering::Relaxed));
            true
        });
        free!("engine_set_log_size", {
            engine_set_log_size(1 << 20);
            true
        });
        free!("engine_set_debug_panic_at", {
            engine_set_debug_panic_at(b"");
            true
        });
        free!("engine_set_debug_create_format", {
            engine_set_debug_create_format(0);
            true
        });
        free!("engine_take_note", !engine_take_note(&mut s));
        free!("trx_new", {
            drop(trx_new());
            true
        });
        trx!("trx_set_session", |t| {
            trx_set_session(&mut t, 7);
            true
        });
        trx!("trx_wake", |t| {
            drop(trx_wake(&t));
            true
        });
        let w = trx_wake(&trx_new());
        free!("trx_wake_raise", {
            trx_wake_raise(&w);
            true
        });
        trx!("trx_stmt_begin", |t| {
            trx_stmt_begin(&mut t);
            true
        });
        trx!("trx_stmt_end", |t| {
            trx_stmt_end(&mut t, Isolation::ReadCommitted);
            true
        });
        trx!("trx_statement_settings", |t| {
            trx_statement_settings(&mut t, StatementSettings { lock_wait_timeout: 1, snapshot_isolation: true });
            true
        });
        trx!("trx_consistent_snapshot", |t| {
            trx_consistent_snapshot(&mut t, Isolation::RepeatableRead);
            true
        });
        trx!("trx_stmt_rollback", |t| trx_stmt_rollback(&mut t, &mut s) == PANIC);
        trx!("trx_commit", |t| trx_commit(&mut t, true, &mut s) == PANIC);
        free!("log_flush", log_flush(&mut s) == PANIC);
        trx!("trx_rollback", |t| trx_rollback(&mut t, &mut s) == PANIC);
        trx!("trx_prepare", |t| trx_prepare(&mut t, &xid(), &mut s) == PANIC);
        trx!("trx_detach_prepared", |t| !trx_detach_prepared(&mut t));
        free!("xa_prepared", xa_prepared().is_empty());
        free!("xa_given", {
            xa_given(&[], false);
            true
        });
        free!("xa_end", xa_end(&xid(), true, &mut s) == PANIC);
        trx!("trx_savepoint", |t| trx_savepoint(&t) == 0);
        trx!("trx_rollback_to", |t| trx_rollback_to(&mut t, 0, &mut s) == PANIC);
        free!("primary_read_cost", primary_read_cost(2.0, 0, 0, 0) == 2.0);
        free!("table_create_check", {
            let f = CreateFacts {
                csv_file: false,
                csv_separator: false,
                csv_separator_text: Vec::new(),
                keys_on_autoinc: Vec::new(),
                auto_increment: false,
                altering: false,
                csv_file_max: 510,
                file_privilege: true,
                secure_path: true,
            };
            table_create_check(&p, &opts(LayoutKind::Csv), &f, &mut s).refusal == Refusal::Option && s.contains("panic")
        });
        free!("table_create", table_create(&p, &opts(LayoutKind::Csv), &mut s) == PANIC);
        free!("string_key", string_key(b"a", b" ", &mut [0u8; 9]) == 0);
        free!("string_key_max", string_key_max(1, 1) == 0);
        free!("string_unpack", string_unpack(b"a", b"A", false, &mut [0u8; 9]) == 0);
        free!("string_unpack_max", string_unpack_max(1) == 0);
        free!("table_delete", table_delete(&p, &mut s) == PANIC);
        free!("table_rename", table_rename(&p, &p, &mut s) == PANIC);
        free!("table_open", table_open(&p, &opts(LayoutKind::Csv)).open_error() == PANIC);
        let t = open();
        free!("drop Table", {
            drop(t);
            true
        });
        let t = trx_new();
        free!("drop TrxHandle", {
            drop(t);
            true
        });
        let w = trx_wake(&trx_new());
        free!("drop TrxWake", {
            drop(w);
            true
        });
        free!("status_vars", status_vars(&[]).is_empty());
        free!("engine_status_text", engine_status_text().is_empty());
        free!("info_columns", info_columns(bridge::InfoTable::Trx).is_empty());
        free!("info_rows", info_rows(bridge::InfoTable::Locks).is_empty());
        free!("ha_rust_set_progress_reporter", {
            ha_rust_set_progress_reporter(None);
            true
        });
        free!("ha_rust_set_interrupt_probe", {
            ha_rust_set_interrupt_probe(None);
            true
        });

        // last_error and open_error only read what the handle keeps for C++.
        let t = open();
        free!("last_error", t.last_error().is_empty());
        free!("open_error", t.open_error() == PANIC);
        table!("scan_start", |t, x| t.scan_start() == PANIC);
        table!("scan_next", |t, x| t.scan_next() == PANIC);
        table!("scan_end", |t, x| t.scan_end() == PANIC);
        table!("read_at", |t, x| t.read_at(0) == PANIC);
        table!("position", |t, x| t.position() == 0);
        table!("current_line", |t, x| t.current_line() == 0);
        table!("record_data", |t, x| t.record_data().is_empty());
        table!("record_fields", |t, x| t.record_fields().is_empty());
        table!("insert", |t, x| t.insert(b"", &[], 0, false, false) == PANIC);
        table!("lookup", |t, x| t.lookup(0) == PANIC);
        table!("next_auto_increment", |t, x| t.next_auto_increment(true, true) == 1);
        table!("optimize", |t, x| t.optimize(0) == PANIC);
        table!("insert_text", |t, x| t.insert_text(b"", &[]) == PANIC);
        table!("update_current", |t, x| t.update_current(b"", &[]) == PANIC);
        table!("delete_current", |t, x| t.delete_current() == PANIC);
        table!("set_bulk", |t, x| t.set_bulk(true) == PANIC);
        table!("flush", |t, x| t.flush() == PANIC);
        table!("truncate", |t, x| t.truncate() == PANIC);
        table!("discard", |t, x| {
            t.discard();
            true
        });
        table!("stats", |t, x| t.stats().rows == 0);
        table!("info", |t, x| t.info(false).records == 0);
        table!("scan_cost", |t, x| t.scan_cost(0, 0) == 1.0);
        table!("set_exact_rows", |t, x| {
            t.set_exact_rows(1);
            true
        });
        table!("take_warning", |t, x| !t.take_warning(&mut s));
        table!("check_start", |t, x| t.check_start() == PANIC);
        table!("check_next", |t, x| t.check_next(&mut s) == PANIC);
        table!("check_reject", |t, x| {
            t.check_reject(b"why", &mut s);
            true
        });
        table!("check_finish", |t, x| t.check_finish(false, &mut summary) == PANIC);
        table!("bt_insert", |t, x| t.bt_insert(&mut x, b"k", b"", &[], &mut dup) == PANIC);
        table!("bt_update", |t, x| t.bt_update(&mut x, b"k", b"k", b"", &[], &[], &mut dup) == PANIC);
        table!("bt_delete", |t, x| t.bt_delete(&mut x, b"k", &[]) == PANIC);
        table!("bt_get", |t, x| t.bt_get(&mut x, b"k") == PANIC);
        table!("bt_seek", |t, x| t.bt_seek(&mut x, 0, b"k", FindMode::Exact) == PANIC);
        table!("bt_edge", |t, x| t.bt_edge(&mut x, 0, false) == PANIC);
        table!("bt_next", |t, x| t.bt_next(false) == PANIC);
        table!("bt_set_prefix", |t, x| {
            t.bt_set_prefix(b"k", true);
            true
        });
        table!("bt_pk", |t, x| t.bt_pk().is_empty());
        table!("bt_set_keys_only", |t, x| {
            t.bt_set_keys_only(true);
            true
        });
        table!("bt_fetch_current", |t, x| t.bt_fetch_current() == PANIC);
        table!("bt_set_read_plan", |t, x| {
            t.bt_set_read_plan(&[], u32::MAX);
            true
        });
        table!("bt_read_entry", |t, x| t.bt_read_entry(0, &mut Vec::new(), &mut Vec::new()) == PANIC);
        table!("bt_count_range", |t, x| t.bt_count_range(0, b"", RangeEnd::Unbounded, b"", RangeEnd::Unbounded) == 1);
        table!("bt_rec_per_key", |t, x| t.bt_rec_per_key(0, &[KeyPart { length: 4, nullable: false, chunked: false }], false, 1, &mut v) == PANIC);
        table!("bt_key_format", |t, x| t.bt_key_format() == 0);
        // CHECK reports what stopped it as a problem it found.
        table!("bt_check", |t, x| t.bt_check(0, &mut lines) == 0 && lines.len() == 1 && lines[0].contains("(panic)"));
        table!("bt_begin_statement", |t, x| t.bt_begin_statement(&mut x, &StatementLock { exclusive: true, low_priority: false, skip_locked: false, consistent: false, isolation: Isolation::RepeatableRead, whole_table: false }) == PANIC);
        table!("bt_auto_increment", |t, x| t.bt_auto_increment() == 0);
        table!("bt_auto_increment_used", |t, x| t.bt_auto_increment_used(1, 1, 1) == PANIC);
        table!("bt_auto_increment_reserve", |t, x| t.bt_auto_increment_reserve(&mut Autoinc::default()) == PANIC);
        table!("bt_auto_increment_checked", |t, x| t.bt_auto_increment_checked());
        table!("bt_set_auto_increment_checked", |t, x| {
            t.bt_set_auto_increment_checked();
            true
        });
        table!("bt_last_unlocked", |t, x| t.bt_last_unlocked(0) == PANIC);
        table!("bt_unlock_row", |t, x| {
            t.bt_unlock_row();
            true
        });
        table!("bt_truncate", |t, x| t.bt_truncate(&mut x) == PANIC);
        table!("bt_repair_begin", |t, x| t.bt_repair_begin(&mut x, 0) == PANIC);
        table!("bt_repair_next", |t, x| t.bt_repair_next() == PANIC);
        table!("bt_repair_add", |t, x| t.bt_repair_add(&[]) == PANIC);
        table!("bt_repair_finish", |t, x| t.bt_repair_finish(true, &mut s, &mut flag) == PANIC);

        let in_source = entry_points_in_source();
        assert!(in_source.len() > 70, "the parse of src/ffi/mod.rs found only {in_source:?}");
        let tested: BTreeSet<String> = cases.iter().map(|(name, _)| name.to_string()).collect();
        assert_eq!(tested.len(), cases.len(), "a case is listed twice");
        let untested: Vec<_> = in_source.difference(&tested).collect();
        let unknown: Vec<_> = tested.difference(&in_source).collect();
        assert!(untested.is_empty(), "entry points without a case here: {untested:?}");
        assert!(unknown.is_empty(), "cases for no entry point: {unknown:?}");
        let unguarded: Vec<_> = cases.iter().filter(|(_, passed)| !passed).map(|(name, _)| name).collect();
        assert!(unguarded.is_empty(), "entry points that let an injected panic through or answered wrongly: {unguarded:?}");
    }

    /// A panic in an entry that reads the handle (no error code to return) also
    /// closes the handle, and a handle closed by a panic is not dropped normally:
    /// its pending work is not written.
    #[test]
    fn a_handle_broken_by_a_panic_refuses_every_use() {
        let d = crate::testutil::dir("ffi_a_handle_broken_by_a_panic", 0);
        let p = d.join("t").as_os_str().as_bytes().to_vec();
        let mut e = String::new();
        assert_eq!(table_create(&p, &opts(LayoutKind::Csv), &mut e), 0, "{e}");
        let mut t = table_open(&p, &opts(LayoutKind::Csv));
        assert_eq!(t.set_bulk(true), 0);
        let seven = [CsvField { kind: bridge::FieldKind::Bare, offset: 0, length: 1 }];
        assert_eq!(t.insert_text(b"7", &seven), 0, "{}", t.last_error());
        assert!(armed("stats", || t.stats().rows == 0));
        assert!(refuses(&mut t));
        assert_eq!(t.flush(), PANIC);
        assert_eq!(t.record_data(), b"");
        drop(t);
        let written = std::fs::read(d.join("t.csv")).unwrap();
        assert!(written.is_empty(), "the broken handle's buffered row was written: {written:?}");
    }

    #[test]
    fn a_panic_becomes_an_error_code() {
        let mut msg = String::new();
        let code = guard("test", &mut msg, || panic!("boom"));
        assert_eq!(code, crate::error::HA_ERR_RUST_PANIC);
        assert!(msg.contains("boom"), "{msg}");
    }

    /// A broken invariant the engine checks for is its own error, not a panic: the
    /// handle stays usable.
    #[test]
    fn a_broken_invariant_is_an_internal_error() {
        let d = crate::testutil::dir("ffi_a_broken_invariant", 0);
        let p = d.join("t").as_os_str().as_bytes().to_vec();
        let mut e = String::new();
        assert_eq!(table_create(&p, &opts(LayoutKind::Csv), &mut e), 0, "{e}");
        let mut t = table_open(&p, &opts(LayoutKind::Csv));
        assert_eq!(t.scan_next(), crate::error::HA_ERR_RUST_INTERNAL);
        assert_eq!(t.last_error(), "internal error in the RUST engine: scan_next without scan_start");
        assert_eq!(t.scan_start(), 0, "{}", t.last_error());
        assert_eq!(t.scan_next(), consts::HA_ERR_END_OF_FILE as i32);
    }

    #[test]
    fn unsupported_layouts_say_so() {
        let mut msg = String::new();
        let code = table_create(b"/nonexistent/t", &opts(LayoutKind::Btree), &mut msg);
        assert_eq!(code, consts::HA_ERR_UNSUPPORTED as i32);
        assert!(msg.contains("BTREE"), "{msg}");
    }

    /// An XID crosses as a struct and is kept in the engine's byte form (the one
    /// PREPARE records hold); a stored one the server could not take is refused.
    #[test]
    fn xids_round_trip_and_malformed_ones_are_refused() {
        let x = Xid { format_id: -7, gtrid_length: 2, bqual_length: 1, data: b"abc".to_vec() };
        let b = xid_bytes(&x);
        assert_eq!(b.len(), 19);
        assert_eq!(&b[..8], &(-7i64).to_le_bytes());
        let y = xid_of(&b).expect("a well-formed XID");
        assert_eq!((y.format_id, y.gtrid_length, y.bqual_length, y.data), (-7, 2, 1, b"abc".to_vec()));
        assert!(xid_of(&b[..18]).is_none(), "lengths that do not add up");
        assert!(xid_of(&b[..10]).is_none(), "too short");
        let mut long = xid_bytes(&Xid { format_id: 0, gtrid_length: 65, bqual_length: 0, data: vec![0; 65] });
        assert!(xid_of(&long).is_none(), "a gtrid over 64 bytes");
        long.truncate(16);
        assert!(malformed_xid(&long).contains("16 bytes: 0000"), "{}", malformed_xid(&long));
    }
}
