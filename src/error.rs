//! Engine errors, and the handler error code each one becomes at the boundary.

use crate::consts;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The data does not parse; the message names the file and line or block.
    #[error("{0}")]
    Corrupt(String),
    #[error("{0}")]
    ReadOnly(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    NotFound(String),
    /// A Rust panic, caught at the boundary (`ffi`); only the boundary makes these.
    #[error("internal error in the RUST engine (panic): {0}")]
    Panic(String),
    /// A broken invariant the code checks for (a call out of order, a row image or
    /// key framing from C++ that does not parse, a page split that cannot fit): a
    /// bug in the engine, reported as an error of the statement.
    #[error("internal error in the RUST engine: {0}")]
    Internal(String),
    #[error("Lock wait timeout exceeded; try restarting transaction")]
    LockWait,
    /// The statement was killed (KILL, KILL QUERY, max_statement_time, its client
    /// went away) while it waited.
    #[error("Query execution was interrupted")]
    Interrupted,
    /// A lock wait closed a deadlock and this transaction was chosen to break
    /// it: the server rolls back its whole transaction.
    #[error("Deadlock found when trying to get lock; try restarting transaction")]
    Deadlock,
    /// A consistent read whose view is older than the table's last rebuild
    /// (TRUNCATE, a copying ALTER, REPAIR): the server says "Table definition
    /// has changed, please retry transaction", as InnoDB does.
    #[error("Table definition has changed, please retry transaction")]
    TableDefChanged,
    /// A consistent read needs a row version that is not kept (one a
    /// transaction recovered as prepared replaced before the restart): the
    /// server says "Record has changed since last read"; the transaction may be
    /// retried.
    #[error("{0}")]
    VersionGone(String),
    /// First-updater-wins (`rust_snapshot_isolation`): a locking read or a
    /// write met a record that a transaction its read view does not see
    /// changed last. The server says "Record has changed since last read"
    /// and rolls back the whole transaction, as InnoDB's
    /// `innodb_snapshot_isolation`.
    #[error("Record has changed since last read; try restarting transaction")]
    RecordChanged,
    /// A row a READ UNCOMMITTED read took from an index entry was gone when its
    /// record was read (a rollback removed it): the read steps over it.
    #[error("the row is gone")]
    RowGone,
}

/// First engine-private error code, as MyRocks does: past the server's last one.
/// C++ reads these codes from the bridge's `RustError` (src/ffi checks they agree).
pub const HA_ERR_RUST_FIRST: i32 = consts::HA_ERR_LAST as i32 + 1;
pub const HA_ERR_RUST_IO: i32 = HA_ERR_RUST_FIRST;
pub const HA_ERR_RUST_CORRUPT: i32 = HA_ERR_RUST_FIRST + 1;
pub const HA_ERR_RUST_PANIC: i32 = HA_ERR_RUST_FIRST + 2;
pub const HA_ERR_RUST_INTERNAL: i32 = HA_ERR_RUST_FIRST + 3;

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    /// The handler error code (`HA_ERR_*` or one of ours) for this error.
    pub fn code(&self) -> i32 {
        match self {
            Error::Io { source, .. } => match source.raw_os_error() {
                Some(libc::ENOSPC) | Some(libc::EDQUOT) => consts::HA_ERR_DISK_FULL as i32,
                Some(libc::ENOENT) => consts::HA_ERR_NO_SUCH_TABLE as i32,
                _ => HA_ERR_RUST_IO,
            },
            Error::Corrupt(_) => HA_ERR_RUST_CORRUPT,
            Error::ReadOnly(_) => consts::HA_ERR_TABLE_READONLY as i32,
            Error::Unsupported(_) => consts::HA_ERR_UNSUPPORTED as i32,
            Error::NotFound(_) => consts::HA_ERR_NO_SUCH_TABLE as i32,
            Error::Panic(_) => HA_ERR_RUST_PANIC,
            Error::Internal(_) => HA_ERR_RUST_INTERNAL,
            Error::LockWait => consts::HA_ERR_LOCK_WAIT_TIMEOUT as i32,
            Error::Interrupted => consts::HA_ERR_ABORTED_BY_USER as i32,
            Error::Deadlock => consts::HA_ERR_LOCK_DEADLOCK as i32,
            Error::TableDefChanged => consts::HA_ERR_TABLE_DEF_CHANGED as i32,
            Error::VersionGone(_) | Error::RecordChanged => consts::HA_ERR_RECORD_CHANGED as i32,
            Error::RowGone => consts::HA_ERR_RECORD_DELETED as i32,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// `?` on an io::Result with a context string.
pub trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}
