//! What the modules' tests share.

use std::path::{Path, PathBuf};

/// An empty folder for one test, under the system's temporary folder; removed
/// when dropped, unless the test is failing (a panic), so that what it left can
/// be looked at.
#[derive(Debug)]
pub struct TempDir(PathBuf);

/// A [`TempDir`] for one test (`case`: one of its runs), named after the test
/// and this process; whatever an earlier run left there is removed first. `name`
/// must be unique among the tests.
pub fn dir(name: &str, case: u64) -> TempDir {
    dir_in(&std::env::temp_dir(), name, case)
}

/// [`dir`], in folder `base`.
pub fn dir_in(base: &Path, name: &str, case: u64) -> TempDir {
    let d = base.join(format!("ha_rust-{}-{}-{}", name, std::process::id(), case));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A small deterministic generator for tests (xorshift64): the same seed gives
/// the same run, so a failing schedule can be run again.
pub struct Rng(u64);

impl Rng {
    /// `seed` must not be 0.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
