//! The rejected-records file REPAIR TABLE writes before it removes anything: what it
//! cannot keep is saved beside the table's data, so that bad input loses nothing.
//!
//! For a data file `<dir>/<name>` and a REPAIR made at UTC time `<ts>`
//! (`20261205T061502Z`), two files are made in `<dir>`:
//! - `<name>.rejected-<ts>.<ext>`: the removed byte ranges of the data file, byte for
//!   byte, in file order (`csv` for CSV: plain CSV lines a `LOAD DATA` reads; `bin`
//!   for ARCHIVE: raw damaged blocks);
//! - `<name>.rejected-<ts>.index.txt`: a versioned text index: where each range was
//!   (line, byte offset, length), why it was removed, a CRC-32 of the data file, and
//!   a CRC-32 of the index itself on its last line.
//!
//! When either name exists, `-2`, `-3`, ... is added before the extension: an
//! earlier file is never overwritten. Both files are written under temporary names
//! (`.partial`), fsynced, then hard-linked to their final names (a link fails if the
//! name exists, so no race can overwrite a file either), the temporary names removed
//! and the folder fsynced: a file under a final name is always complete, the data
//! file before the index. Any failure removes what this call made and is an error;
//! the caller then changes nothing. The format is specified in docs/repair.md.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, IoContext, Result};

/// The index format's version (first line of the index file).
pub const INDEX_VERSION: u32 = 1;

/// What layout the records come from (names the data file's extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Csv,
    Archive,
    /// BTREE: whole pages of a tree file.
    Btree,
}

impl Kind {
    fn ext(self) -> &'static str {
        match self {
            Kind::Csv => "csv",
            Kind::Archive | Kind::Btree => "bin",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Csv => "CSV",
            Kind::Archive => "ARCHIVE",
            Kind::Btree => "BTREE",
        }
    }
}

/// One removed byte range of the source file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub offset: u64,
    pub len: u64,
    /// The 1-based line the record starts on (CSV).
    pub line: Option<u64>,
    /// Rows the range held, when known (ARCHIVE blocks).
    pub rows: Option<u64>,
    /// Why it was removed.
    pub why: String,
}

/// Where the records went.
#[derive(Clone, Debug)]
pub struct Saved {
    pub data: PathBuf,
    pub index: PathBuf,
    pub records: u64,
    pub bytes: u64,
}

impl Saved {
    /// For REPAIR's result: where the file is and what it holds.
    pub fn describe(&self) -> String {
        format!(
            "{} {} ({} bytes) saved to '{}' (index: '{}')",
            self.records,
            if self.records == 1 { "record" } else { "records" },
            self.bytes,
            self.data.display(),
            self.index.display()
        )
    }
}

/// `20261205T061502Z` for `t`.
pub fn utc_stamp(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

fn iso(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// UTC calendar date and time of `t` (proleptic Gregorian; times before 1970 read
/// as 1970).
fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // days since 1970-01-01 to a date (the "civil from days" algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, (rem / 3600) as u32, (rem / 60 % 60) as u32, (rem % 60) as u32)
}

/// A reason as one index field: `\`, tab, CR and LF escaped.
fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\t' => o.push_str("\\t"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            c => o.push(c),
        }
    }
    o
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// Saves `pieces` (sorted by offset, not overlapping) of `src`, the file at
/// `source`, beside it. See the module comment.
pub fn save(source: &Path, src: &File, kind: Kind, pieces: &[Piece]) -> Result<Saved> {
    save_at(source, src, kind, pieces, SystemTime::now())
}

/// [`save`] with the time to name the files after.
pub fn save_at(source: &Path, src: &File, kind: Kind, pieces: &[Piece], now: SystemTime) -> Result<Saved> {
    let records = pieces.len() as u64;
    let bytes: u64 = pieces.iter().map(|p| p.len).sum();
    let dir = source.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = format!("{file_name}.rejected-{}", utc_stamp(now));
    let refuse = |e: Error| {
        let head = format!(
            "REPAIR refused and changed nothing: it must first save the {records} damaged {} ({bytes} bytes) \
             it would remove beside '{}', and could not",
            if records == 1 { "record" } else { "records" },
            source.display()
        );
        match e {
            // an I/O error keeps its cause, so that a full disk is reported as one
            Error::Io { context, source } => Error::Io { context: format!("{head}: {context}"), source },
            e => Error::Corrupt(format!("{head}: {e}")),
        }
    };
    let mut made: Vec<PathBuf> = Vec::new();
    let result = (|| -> Result<Saved> {
        // the data, under a temporary name
        let data_tmp = dir.join(format!("{stem}.{}.partial-{}", kind.ext(), std::process::id()));
        made.push(data_tmp.clone());
        let data_crc = write_data(&data_tmp, src, source, pieces)?;
        // the index
        let index_tmp = dir.join(format!("{stem}.index.txt.partial-{}", std::process::id()));
        made.push(index_tmp.clone());
        // the final names: the first suffix free for both (a link never replaces)
        for n in 1u32.. {
            let sfx = if n == 1 { String::new() } else { format!("-{n}") };
            let data = dir.join(format!("{stem}{sfx}.{}", kind.ext()));
            let index = dir.join(format!("{stem}{sfx}.index.txt"));
            if index.symlink_metadata().is_ok() || data.symlink_metadata().is_ok() {
                continue;
            }
            let data_name = data.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let text = index_text(source, kind, pieces, &data_name, data_crc, now);
            write_file(&index_tmp, text.as_bytes())?;
            match fs::hard_link(&data_tmp, &data) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(format!("cannot create '{}'", data.display()), e)),
            }
            made.push(data.clone());
            match fs::hard_link(&index_tmp, &index) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let _ = fs::remove_file(&data);
                    made.pop();
                    continue;
                }
                Err(e) => return Err(Error::io(format!("cannot create '{}'", index.display()), e)),
            }
            made.push(index.clone());
            fs::remove_file(&data_tmp).ctx(|| format!("cannot remove '{}'", data_tmp.display()))?;
            fs::remove_file(&index_tmp).ctx(|| format!("cannot remove '{}'", index_tmp.display()))?;
            crate::fsutil::sync_dir(source)?;
            return Ok(Saved { data, index, records, bytes });
        }
        unreachable!("a free name is always found")
    })();
    result.map_err(|e| {
        for p in made.iter().rev() {
            let _ = fs::remove_file(p);
        }
        refuse(e)
    })
}

/// Copies the pieces of `src` into a new file at `path`, fsynced; returns their CRC-32.
fn write_data(path: &Path, src: &File, source: &Path, pieces: &[Piece]) -> Result<u32> {
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .ctx(|| format!("cannot create '{}'", path.display()))?;
    let wctx = || format!("cannot write '{}'", path.display());
    let mut out = BufWriter::with_capacity(256 * 1024, f);
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    for p in pieces {
        let (mut off, end) = (p.offset, p.offset + p.len);
        while off < end {
            let n = ((end - off) as usize).min(buf.len());
            src.read_exact_at(&mut buf[..n], off).ctx(|| format!("cannot read '{}'", source.display()))?;
            out.write_all(&buf[..n]).ctx(wctx)?;
            crc.update(&buf[..n]);
            off += n as u64;
        }
    }
    let f = out.into_inner().map_err(|e| Error::io(wctx(), e.into_error()))?;
    f.sync_all().ctx(|| format!("cannot sync '{}'", path.display()))?;
    Ok(crc.finalize())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let _ = fs::remove_file(path);
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .ctx(|| format!("cannot create '{}'", path.display()))?;
    f.write_all_at(bytes, 0).ctx(|| format!("cannot write '{}'", path.display()))?;
    f.sync_all().ctx(|| format!("cannot sync '{}'", path.display()))
}

/// The index file's text (docs/repair.md).
fn index_text(source: &Path, kind: Kind, pieces: &[Piece], data_name: &str, data_crc: u32, now: SystemTime) -> String {
    let bytes: u64 = pieces.iter().map(|p| p.len).sum();
    let mut t = String::new();
    t.push_str(&format!("ha_rust rejected records, version {INDEX_VERSION}\n"));
    t.push_str(&format!("layout: {}\n", kind.name()));
    t.push_str(&format!("source: {}\n", escape(&source.display().to_string())));
    t.push_str(&format!("made: {} by REPAIR TABLE\n", iso(now)));
    t.push_str(&format!("data: {}\n", escape(data_name)));
    t.push_str(&format!("records: {}\n", pieces.len()));
    t.push_str(&format!("bytes: {bytes}\n"));
    t.push_str(&format!("data-crc32: {data_crc:08x}\n"));
    t.push_str("line\toffset\tlength\trows\treason\n");
    for p in pieces {
        t.push_str(&format!("{}\t{}\t{}\t{}\t{}\n", opt(p.line), p.offset, p.len, opt(p.rows), escape(&p.why)));
    }
    let crc = crc32fast::hash(t.as_bytes());
    t.push_str(&format!("end crc32: {crc:08x}\n"));
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn source(dir: &Path, bytes: &[u8]) -> (PathBuf, File) {
        let p = dir.join("people.csv");
        fs::write(&p, bytes).unwrap();
        let f = File::open(&p).unwrap();
        (p, f)
    }

    fn piece(offset: u64, len: u64, line: u64, why: &str) -> Piece {
        Piece { offset, len, line: Some(line), rows: None, why: why.into() }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn timestamps_are_utc_calendar_times() {
        assert_eq!(utc_stamp(at(0)), "19700101T000000Z");
        // 2026-12-05 06:15:02 UTC
        assert_eq!(utc_stamp(at(1_796_451_302)), "20261205T061502Z");
        // a leap day
        assert_eq!(iso(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(iso(at(4_107_542_399)), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn saves_the_pieces_byte_for_byte_with_an_index() {
        let d = crate::testutil::dir("rejected-save", 0);
        let text = b"1,a\n2,b,x\n3,c\n4,\"d\n";
        let (p, f) = source(&d, text);
        let pieces = vec![piece(4, 6, 2, "expected 2 fields, found 3"), piece(14, 5, 4, "tab\there\nand a line")];
        let s = save_at(&p, &f, Kind::Csv, &pieces, at(1_796_451_302)).unwrap();
        assert_eq!(s.data, d.join("people.csv.rejected-20261205T061502Z.csv"));
        assert_eq!(s.index, d.join("people.csv.rejected-20261205T061502Z.index.txt"));
        assert_eq!((s.records, s.bytes), (2, 11));
        assert_eq!(fs::read(&s.data).unwrap(), b"2,b,x\n4,\"d\n");
        let idx = fs::read_to_string(&s.index).unwrap();
        let body = format!(
            "ha_rust rejected records, version 1\nlayout: CSV\nsource: {}\nmade: 2026-12-05T06:15:02Z by REPAIR TABLE\n\
             data: people.csv.rejected-20261205T061502Z.csv\nrecords: 2\nbytes: 11\ndata-crc32: {:08x}\n\
             line\toffset\tlength\trows\treason\n2\t4\t6\t-\texpected 2 fields, found 3\n4\t14\t5\t-\ttab\\there\\nand a line\n",
            p.display(),
            crc32fast::hash(b"2,b,x\n4,\"d\n")
        );
        assert_eq!(idx, format!("{body}end crc32: {:08x}\n", crc32fast::hash(body.as_bytes())));
        // nothing else left behind (no temporary file)
        assert_eq!(
            names(&d),
            ["people.csv", "people.csv.rejected-20261205T061502Z.csv", "people.csv.rejected-20261205T061502Z.index.txt"]
        );
    }

    #[test]
    fn never_overwrites_an_earlier_file() {
        let d = crate::testutil::dir("rejected-unique", 0);
        let (p, f) = source(&d, b"abcdef\n");
        let t = at(1_796_451_302);
        let a = save_at(&p, &f, Kind::Archive, &[Piece { offset: 0, len: 2, line: None, rows: Some(7), why: "x".into() }], t).unwrap();
        let b = save_at(&p, &f, Kind::Archive, &[Piece { offset: 2, len: 2, line: None, rows: None, why: "y".into() }], t).unwrap();
        assert_eq!(a.data, d.join("people.csv.rejected-20261205T061502Z.bin"));
        assert_eq!(b.data, d.join("people.csv.rejected-20261205T061502Z-2.bin"));
        assert_eq!(b.index, d.join("people.csv.rejected-20261205T061502Z-2.index.txt"));
        assert_eq!(fs::read(&a.data).unwrap(), b"ab");
        assert_eq!(fs::read(&b.data).unwrap(), b"cd");
        assert!(fs::read_to_string(&a.index).unwrap().contains("\n-\t0\t2\t7\tx\n"));
        // a name taken by something else (here only the index's name) is skipped too
        fs::create_dir(d.join("people.csv.rejected-20261205T061502Z-3.index.txt")).unwrap();
        let c = save_at(&p, &f, Kind::Archive, &[Piece { offset: 4, len: 2, line: None, rows: None, why: "z".into() }], t).unwrap();
        assert_eq!(c.data, d.join("people.csv.rejected-20261205T061502Z-4.bin"));
        assert_eq!(fs::read(&c.data).unwrap(), b"ef");
    }

    #[test]
    fn fails_cleanly_when_the_folder_cannot_be_written() {
        let d = crate::testutil::dir("rejected-fail", 0);
        let (p, f) = source(&d, b"1,a\n2,b,x\n");
        // the source's "folder" is a path through a regular file: nothing can be
        // created there, whatever the user's rights (root included)
        let bad = d.join("people.csv").join("inner.csv");
        let e = save_at(&bad, &f, Kind::Csv, &[piece(4, 6, 2, "bad")], at(0)).unwrap_err();
        let m = e.to_string();
        assert!(m.starts_with("REPAIR refused and changed nothing: it must first save the 1 damaged record (6 bytes)"), "{m}");
        assert!(m.contains("Not a directory"), "{m}");
        // a read-only folder (not for root, who writes anyway)
        let ro = d.join("ro");
        fs::create_dir(&ro).unwrap();
        let (p2, f2) = source(&ro, b"1,a\n2,b,x\n");
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
        let r = save_at(&p2, &f2, Kind::Csv, &[piece(4, 6, 2, "bad")], at(0));
        let root = unsafe { libc::geteuid() } == 0;
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
        if !root {
            let m = r.unwrap_err().to_string();
            assert!(m.contains("Permission denied"), "{m}");
            assert_eq!(names(&ro), ["people.csv"]);
        }
        // a source range that cannot be read: the partial file is removed
        let e = save_at(&p, &f, Kind::Csv, &[piece(4, 600, 2, "bad")], at(0)).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
        assert_eq!(names(&d), ["people.csv", "ro"]);
    }

    #[test]
    fn a_name_too_long_for_the_file_system_is_refused_leaving_nothing() {
        let d = crate::testutil::dir("rejected-long", 0);
        let long = format!("{}.csv", "n".repeat(240));
        let p = d.join(&long);
        fs::write(&p, b"1\n22\n").unwrap();
        let f = File::open(&p).unwrap();
        let e = save_at(&p, &f, Kind::Csv, &[piece(2, 3, 2, "bad")], at(0)).unwrap_err();
        assert!(e.to_string().contains("File name too long"), "{e}");
        assert_eq!(names(&d), [long]);
    }
}
