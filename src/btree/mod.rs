//! The BTREE layout's storage core: slotted pages, a bounded buffer pool and a
//! B+tree over byte keys (spec: `docs/btree-format.md`). Not yet reachable from
//! SQL: LAYOUT=BTREE stays refused until the redo and undo logs and transactions
//! are in (see the BTREE issue).
pub mod engine;
pub mod log;
pub mod page;
pub mod pool;
pub mod table;
pub mod tree;

/// What the tests of these modules share.
#[cfg(test)]
pub(crate) mod testutil {
    use std::path::PathBuf;

    /// An empty folder for one test (`case`: one of its runs), under the
    /// system's temporary folder and named after the test and this process;
    /// whatever an earlier run left there is removed first. `name` must be
    /// unique among the tests that use this.
    pub fn dir(name: &str, case: u64) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ha_rust-btree-{}-{}-{}", name, std::process::id(), case));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}

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
