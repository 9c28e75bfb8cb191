//! The control file (`rust_control`): the last checkpoint's LSN, where the log
//! starts, and the tree ids in use; written whole to a temporary file and renamed
//! into place (spec: `docs/btree-format.md`). Uses nothing of the B-tree layers.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

const CONTROL_MAGIC: &[u8; 8] = b"RUSTCTL\0";
/// The engine's files, in the server's data directory (beside InnoDB's ib_logfile0).
pub const CONTROL_FILE: &str = "rust_control";
pub const LOG_FILE: &str = "rust_redo.log";
/// 2: the next transaction id after `log_start` (read views need ids that
/// never go back across restarts: a record's id must stay below every id given
/// later). Version 1 (no such field) is still read.
const CONTROL_VERSION: u32 = 2;

pub(crate) struct Control {
    pub(crate) checkpoint: u64,
    pub(crate) log_start: u64,
    /// Every transaction id given before the checkpoint is below this (0 in a
    /// version 1 file).
    pub(crate) next_trx: u64,
    pub(crate) trees: Vec<(u32, PathBuf)>,
}

pub(crate) fn read_control(path: &Path) -> Result<Option<Control>> {
    let b = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("cannot read '{}'", path.display()), e)),
    };
    let bad = || Error::Corrupt(format!("{}: damaged control file", path.display()));
    if b.len() < 36 || &b[0..8] != CONTROL_MAGIC {
        return Err(bad());
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().unwrap()) {
        return Err(bad());
    }
    let v = u32::from_le_bytes(b[8..12].try_into().unwrap());
    if v != 1 && v != CONTROL_VERSION {
        return Err(Error::Unsupported(format!("{}: control file version {v}", path.display())));
    }
    let checkpoint = u64::from_le_bytes(b[12..20].try_into().unwrap());
    let log_start = u64::from_le_bytes(b[20..28].try_into().unwrap());
    let (next_trx, mut at) = if v >= 2 {
        (u64::from_le_bytes(body.get(28..36).ok_or_else(bad)?.try_into().unwrap()), 36)
    } else {
        (0, 28)
    };
    let n = u32::from_le_bytes(body.get(at..at + 4).ok_or_else(bad)?.try_into().unwrap()) as usize;
    at += 4;
    let mut trees = Vec::new();
    use std::os::unix::ffi::OsStrExt;
    for _ in 0..n {
        let id = u32::from_le_bytes(body.get(at..at + 4).ok_or_else(bad)?.try_into().unwrap());
        let len = u16::from_le_bytes(body.get(at + 4..at + 6).ok_or_else(bad)?.try_into().unwrap()) as usize;
        let p = body.get(at + 6..at + 6 + len).ok_or_else(bad)?;
        trees.push((id, PathBuf::from(std::ffi::OsStr::from_bytes(p))));
        at += 6 + len;
    }
    Ok(Some(Control { checkpoint, log_start, next_trx, trees }))
}

pub(crate) fn write_control(path: &Path, c: &Control) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let mut b = Vec::new();
    b.extend_from_slice(CONTROL_MAGIC);
    b.extend_from_slice(&CONTROL_VERSION.to_le_bytes());
    b.extend_from_slice(&c.checkpoint.to_le_bytes());
    b.extend_from_slice(&c.log_start.to_le_bytes());
    b.extend_from_slice(&c.next_trx.to_le_bytes());
    b.extend_from_slice(&(c.trees.len() as u32).to_le_bytes());
    for (id, p) in &c.trees {
        let pb = p.as_os_str().as_bytes();
        b.extend_from_slice(&id.to_le_bytes());
        b.extend_from_slice(&(pb.len() as u16).to_le_bytes());
        b.extend_from_slice(pb);
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    let tmp = path.with_extension("new");
    let f = File::create(&tmp).ctx(|| format!("cannot create '{}'", tmp.display()))?;
    f.write_all_at(&b, 0).ctx(|| format!("cannot write '{}'", tmp.display()))?;
    f.sync_all().ctx(|| format!("cannot sync '{}'", tmp.display()))?;
    crate::btree::write_crash_point()?;
    fs::rename(&tmp, path).ctx(|| format!("cannot rename '{}'", tmp.display()))?;
    if let Some(d) = path.parent() {
        File::open(d).and_then(|d| d.sync_all()).ctx(|| "cannot sync the engine folder".into())?;
    }
    Ok(())
}
