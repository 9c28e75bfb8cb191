//! The BTREE layout: slotted pages, a bounded buffer pool, a B+tree over byte
//! keys, the redo log, transactions with undo, and the tables built on them
//! (spec: `docs/btree-format.md`; the shape: `docs/architecture.md`).
//!
//! The layers, bottom-up; each uses only those before it in this list:
//! 1. [`page`]: one page (header, checksum, LSN, slotted records);
//! 2. [`wal`]: the redo log, every record's writer and reader, the control file;
//! 3. [`pool`]: a tree file's buffer pool; writes a mini-transaction's record;
//! 4. [`tree`]: one B+tree (write path, reader and cursor, CHECK);
//! 5. [`engine`]: every tree and the log: transactions, undo, recovery,
//!    checkpoints;
//! 6. [`lock`]: table locks and lock waits (uses no other layer: beside `engine`);
//! 7. [`table`]: a SQL table over its trees, the connection's transaction, XA,
//!    statistics: what `ffi` uses;
//! 8. [`layout`]: the BTREE layout behind `crate::layout`'s traits, and the
//!    running engine.
pub mod page;
pub mod wal;
pub mod pool;
pub mod tree;
pub mod engine;
pub mod lock;
pub mod table;
pub mod keys;
pub mod unpack;
pub mod keyread;
pub mod layout;

/// Tests stop a TRUNCATE, a REPAIR or a recovery at each of its writes and fsyncs
/// (see [`engine::Engine::reset_trees`], `engine::recovery`) as if the process
/// died there: a step that matches the armed one fails with a "simulated crash"
/// error, and the test then forgets the engine without flushing anything (a tree
/// dropped after the crash fired writes nothing, as after a SIGKILL). Compiled
/// out of the library.
#[cfg(test)]
pub(crate) mod crash {
    use std::cell::Cell;
    thread_local! {
        static AT: Cell<Option<u32>> = const { Cell::new(None) };
        static SEEN: Cell<u32> = const { Cell::new(0) };
        static FIRED: Cell<bool> = const { Cell::new(false) };
        static EVERY_WRITE: Cell<bool> = const { Cell::new(false) };
    }
    /// Arms a crash at step `n` (0-based) of what this thread runs next; None
    /// disarms. Returns the steps seen since the last call. Clears [`fired`].
    pub fn arm(n: Option<u32>) -> u32 {
        AT.with(|a| a.set(n));
        FIRED.with(|f| f.set(false));
        SEEN.with(|s| s.replace(0))
    }
    /// Also counts the steps of [`super::write_crash_point`]: each page write
    /// of a logged tree's buffer pool (before its log flush, and between that
    /// and the page's write), recovery's page writes and undo steps, the
    /// checkpoint's log flush, control file and log switch (off unless a test
    /// turns it on: the TRUNCATE and REPAIR tests count only their own steps).
    pub fn count_every_write(on: bool) {
        EVERY_WRITE.with(|p| p.set(on));
    }
    /// Whether the armed crash has fired (the process is "dead": nothing more
    /// may be written, not even by a tree's drop).
    pub fn fired() -> bool {
        FIRED.with(|f| f.get())
    }
    pub fn point() -> crate::error::Result<()> {
        if fired() {
            return Err(crate::error::Error::io("simulated crash", std::io::Error::other("test")));
        }
        let n = SEEN.with(|s| {
            let n = s.get();
            s.set(n + 1);
            n
        });
        if AT.with(|a| a.get()) == Some(n) {
            FIRED.with(|f| f.set(true));
            return Err(crate::error::Error::io("simulated crash", std::io::Error::other("test")));
        }
        Ok(())
    }
    pub fn write_point() -> crate::error::Result<()> {
        if EVERY_WRITE.with(|p| p.get()) { point() } else { Ok(()) }
    }
}

/// A place where a test may stop a TRUNCATE, a REPAIR or a recovery (see
/// [`crash`]); nothing otherwise.
#[inline(always)]
pub(crate) fn crash_point() -> crate::error::Result<()> {
    #[cfg(test)]
    crash::point()?;
    Ok(())
}

/// [`crash_point`] at a write of a logged tree's page, of recovery or of a
/// checkpoint (counted only when a test asks, [`crash::count_every_write`]);
/// nothing otherwise.
#[inline(always)]
pub(crate) fn write_crash_point() -> crate::error::Result<()> {
    #[cfg(test)]
    crash::write_point()?;
    Ok(())
}
