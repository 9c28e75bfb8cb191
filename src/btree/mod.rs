//! The BTREE layout: slotted pages, a bounded buffer pool, a B+tree over byte
//! keys, the redo log, transactions with undo, and the tables built on them
//! (spec: `docs/btree-format.md`).
pub mod engine;
pub mod page;
pub mod pool;
pub mod lock;
pub mod table;
pub mod tree;
pub mod wal;

/// Tests stop a TRUNCATE at each of its writes and fsyncs (see
/// [`engine::Engine::reset_trees`]) as if the process died there: a step that
/// matches the armed one fails with a "simulated crash" error, and the test then
/// forgets the engine without flushing anything. Compiled out of the library.
#[cfg(test)]
pub(crate) mod crash {
    use std::cell::Cell;
    thread_local! {
        static AT: Cell<Option<u32>> = const { Cell::new(None) };
        static SEEN: Cell<u32> = const { Cell::new(0) };
    }
    /// Arms a crash at step `n` (0-based) of what this thread runs next; None
    /// disarms. Returns the steps seen since the last call.
    pub fn arm(n: Option<u32>) -> u32 {
        AT.with(|a| a.set(n));
        SEEN.with(|s| s.replace(0))
    }
    pub fn point() -> crate::error::Result<()> {
        let n = SEEN.with(|s| {
            let n = s.get();
            s.set(n + 1);
            n
        });
        if AT.with(|a| a.get()) == Some(n) {
            return Err(crate::error::Error::io("simulated crash", std::io::Error::other("test")));
        }
        Ok(())
    }
}

/// A place where a test may stop a TRUNCATE (see [`crash`]); nothing otherwise.
#[inline(always)]
pub(crate) fn crash_point() -> crate::error::Result<()> {
    #[cfg(test)]
    crash::point()?;
    Ok(())
}
