//! File helpers every layout shares.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

/// `base` with `ext` appended to its name (`t` + `.csv` = `t.csv`), whatever dots
/// the name already has (unlike `Path::with_extension`).
pub fn with_ext(base: &Path, ext: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

/// A path as error messages print it.
pub fn display(p: &Path) -> String {
    p.display().to_string()
}

/// Makes a rename or a new file in the folder holding `file` durable (fsync of the
/// folder; the current folder for a bare file name).
/// Writes a new file `path` holding `bytes`, synced (not its folder: see [`sync_dir`]).
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = File::create(path).map_err(|e| crate::error::Error::io(format!("cannot create '{}'", path.display()), e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| crate::error::Error::io(format!("cannot write '{}'", path.display()), e))
}

pub fn sync_dir(file: &Path) -> Result<()> {
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("cannot sync folder '{}'", display(dir)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_ext_appends_to_the_whole_name() {
        assert_eq!(with_ext(Path::new("db/t.v1"), ".csv"), PathBuf::from("db/t.v1.csv"));
        assert_eq!(with_ext(Path::new("t"), "#i1.rbt"), PathBuf::from("t#i1.rbt"));
    }

    #[test]
    fn sync_dir_of_a_bare_name_syncs_the_current_folder() {
        sync_dir(Path::new("t.csv")).unwrap();
        let e = sync_dir(Path::new("/nonexistent-ha_rust/t.csv")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent-ha_rust"), "{e}");
    }
}
