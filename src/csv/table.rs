//! A CSV table: its file, the state its open handlers share, scans, appends, and the
//! crash-safe rewrite behind UPDATE and DELETE.
//!
//! Concurrency: the server's table locks (THR_LOCK, taken in C++) keep UPDATE/DELETE
//! exclusive. Appends may run while other handlers scan: every scan reads only up to
//! the length the file had when it started, and appends are published (the shared
//! length moved) only once their bytes are written, so a scan never sees half a row.
//! An UPDATE or DELETE writes the whole new file beside the old one, fsyncs it and
//! renames it over the old one, then fsyncs the folder: a crash at any moment leaves
//! either the old or the new file.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Weak};

use parking_lot::Mutex;

use super::codec::{self, CsvField, Decoded, Malformed, Record};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{display, sync_dir, with_ext};

/// Extension of a table's own data file, beside the server's `.frm`.
pub const DATA_EXT: &str = ".csv";
/// Extension of the new file an UPDATE/DELETE writes before renaming it into place.
pub const REWRITE_EXT: &str = ".csv-rewrite";
/// How much a scan reads at a time.
const READ_CHUNK: usize = 256 * 1024;
/// Appends buffered by a bulk insert are written out at this size.
const APPEND_FLUSH: usize = 1024 * 1024;
/// The longest record a scan accepts: past it the line is damage, not a reason to
/// let one garbage line (a file of zeros, say) take the server's memory.
pub const MAX_RECORD: usize = 512 * 1024 * 1024;
/// Own files up to this size are counted exactly at open; larger ones are estimated.
const COUNT_AT_OPEN: u64 = 64 * 1024 * 1024;
/// An UPDATE keeps this much of its new records in memory; past it they go to a spool
/// file, so a statement that rewrites a huge table needs no memory in proportion.
const SPILL_AT: usize = 8 * 1024 * 1024;

/// What the table's options say about its file.
#[derive(Clone, Debug)]
pub struct CsvOptions {
    /// The server's path of the table, without extension (`./db/t`).
    pub table_path: PathBuf,
    /// An attached external file, or None for the table's own `<table>.csv`.
    pub external: Option<PathBuf>,
    /// The first line is a header, not a row.
    pub header: bool,
    pub separator: u8,
    /// Attached files are read-only unless the table was created to allow writes.
    pub writable: bool,
    pub columns: usize,
}

impl CsvOptions {
    pub fn data_path(&self) -> PathBuf {
        match &self.external {
            Some(p) => p.clone(),
            None => with_ext(&self.table_path, DATA_EXT),
        }
    }
    fn rewrite_path(&self) -> PathBuf {
        let mut p = self.data_path().into_os_string();
        p.push(if self.external.is_some() { ".ha_rust-rewrite" } else { "-rewrite" });
        PathBuf::from(p)
    }
}

/// State shared by every open handler of one data file.
pub struct Shared {
    opts: CsvOptions,
    state: Mutex<State>,
}

struct State {
    file: Arc<File>,
    /// (device, inode) of `file`, to notice a file replaced behind our back.
    id: (u64, u64),
    /// Bytes of the file that hold published rows.
    len: u64,
    /// Where rows start (after the header line, if any).
    data_start: u64,
    /// Exact row count when known, else None (an attached file not yet scanned).
    rows: Option<u64>,
    /// Bumped whenever the file is replaced: positions and pending changes made
    /// against one generation are refused against another.
    generation: u64,
}

static REGISTRY: LazyLock<Mutex<HashMap<PathBuf, Weak<Shared>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The options of every CSV table open now (INFORMATION_SCHEMA.RUST_TABLES: an
/// attached file is known only from its table's definition, so only once opened).
pub fn open_tables() -> Vec<CsvOptions> {
    REGISTRY.lock().values().filter_map(Weak::upgrade).map(|s| s.opts.clone()).collect()
}

fn open_data(path: &Path, writable: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(writable)
        .open(path)
        .ctx(|| format!("cannot open CSV file '{}'", display(path)))
}

/// Creates the table's own empty data file (with a header line if asked).
/// An attached file must exist and be readable; it is not touched.
pub fn create(opts: &CsvOptions, header_line: &[u8]) -> Result<()> {
    if let Some(ext) = &opts.external {
        let md = fs::metadata(ext).ctx(|| format!("cannot attach CSV file '{}'", display(ext)))?;
        if !md.is_file() {
            return Err(Error::Unsupported(format!(
                "cannot attach '{}': not a regular file",
                display(ext)
            )));
        }
        File::open(ext).ctx(|| format!("cannot read CSV file '{}'", display(ext)))?;
        return Ok(());
    }
    let path = opts.data_path();
    let mut f = File::create(&path).ctx(|| format!("cannot create '{}'", display(&path)))?;
    if opts.header {
        f.write_all(header_line).ctx(|| format!("cannot write '{}'", display(&path)))?;
    }
    f.sync_all().ctx(|| format!("cannot sync '{}'", display(&path)))?;
    sync_dir(&path)
}

/// Removes the table's own files. Attached files are never removed.
pub fn delete(table_path: &Path) -> Result<()> {
    for ext in [DATA_EXT, REWRITE_EXT] {
        let p = with_ext(table_path, ext);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("cannot remove '{}'", display(&p)), e)),
        }
    }
    REGISTRY.lock().remove(&with_ext(table_path, DATA_EXT));
    Ok(())
}

pub fn rename(from: &Path, to: &Path) -> Result<()> {
    let (a, b) = (with_ext(from, DATA_EXT), with_ext(to, DATA_EXT));
    if a.exists() {
        fs::rename(&a, &b).ctx(|| format!("cannot rename '{}' to '{}'", display(&a), display(&b)))?;
        sync_dir(&b)?;
    }
    REGISTRY.lock().remove(&a);
    Ok(())
}

impl Shared {
    fn open(opts: &CsvOptions) -> Result<Arc<Shared>> {
        let path = opts.data_path();
        let mut reg = REGISTRY.lock();
        if let Some(s) = reg.get(&path).and_then(Weak::upgrade) {
            // Two tables attached to one file must read it the same way.
            let o = &s.opts;
            if o.columns != opts.columns
                || o.separator != opts.separator
                || o.header != opts.header
                || o.writable != opts.writable
                || o.external.is_some() != opts.external.is_some()
            {
                return Err(Error::Unsupported(format!(
                    "'{}' is already open through another table with different columns or CSV options; \
                     close that one first (FLUSH TABLES) or attach the file with the same definition",
                    display(&path)
                )));
            }
            return Ok(s);
        }
        if opts.external.is_none() || opts.writable {
            // A rewrite that a crash interrupted before its rename: the old file stands.
            // Only tables that may rewrite the file own its rewrite name (a read-only
            // attachment never writes one, so it leaves the name alone).
            let _ = fs::remove_file(opts.rewrite_path());
        }
        let file = open_data(&path, opts.external.is_none() || opts.writable)?;
        let md = file.metadata().ctx(|| format!("cannot stat '{}'", display(&path)))?;
        let mut st = State {
            file: Arc::new(file),
            id: (md.dev(), md.ino()),
            len: md.len(),
            data_start: 0,
            rows: None,
            generation: 0,
        };
        st.data_start = header_len(&st.file, st.len, opts)?;
        if opts.external.is_none() && st.len <= COUNT_AT_OPEN {
            st.rows = Some(count_records(&st.file, st.data_start, st.len)?);
        }
        let s = Arc::new(Shared { opts: opts.clone(), state: Mutex::new(st) });
        reg.insert(path, Arc::downgrade(&s));
        Ok(s)
    }

    /// The current file and its published length, reopened if it was replaced by
    /// another program (an attached file edited in place, say).
    fn snapshot(&self) -> Result<(Arc<File>, u64, u64)> {
        self.snapshot_gen().map(|(f, s, l, _)| (f, s, l))
    }

    /// [`Self::snapshot`] and the file's generation.
    fn snapshot_gen(&self) -> Result<(Arc<File>, u64, u64, u64)> {
        let mut st = self.state.lock();
        let path = self.opts.data_path();
        let md = fs::metadata(&path).ctx(|| format!("cannot stat '{}'", display(&path)))?;
        if (md.dev(), md.ino()) != st.id {
            let file = open_data(&path, self.opts.external.is_none() || self.opts.writable)?;
            st.file = Arc::new(file);
            st.id = (md.dev(), md.ino());
            st.rows = None;
            st.generation += 1;
        }
        if md.len() != st.len {
            // grown or shrunk by somebody else: our count no longer holds
            if md.len() < st.len || self.opts.external.is_some() {
                st.rows = None;
            }
            st.len = md.len();
            if st.data_start > st.len || st.data_start == 0 {
                st.data_start = header_len(&st.file, st.len, &self.opts)?;
            }
        }
        Ok((st.file.clone(), st.data_start, st.len, st.generation))
    }
}

/// Length of the header line (0 without one).
fn header_len(file: &File, len: u64, opts: &CsvOptions) -> Result<u64> {
    if !opts.header || len == 0 {
        return Ok(0);
    }
    let mut sc = Scanner::new(Arc::new(file.try_clone().ctx(|| "dup".into())?), 0, len);
    let mut rec = Record::default();
    Ok(match sc.next(opts.separator, &mut rec)? {
        Item::Row { end, .. } | Item::Bad { end, .. } => end,
        Item::Eof => 0,
    })
}

fn count_records(file: &File, start: u64, end: u64) -> Result<u64> {
    // Own files hold one record per line, so counting line ends is exact for them.
    let mut n = 0u64;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut off = start;
    let mut last = b'\n';
    while off < end {
        let want = ((end - off) as usize).min(buf.len());
        let got = file.read_at(&mut buf[..want], off).ctx(|| "cannot read CSV file".into())?;
        if got == 0 {
            break;
        }
        n += memchr::memchr_iter(b'\n', &buf[..got]).count() as u64;
        last = buf[got - 1];
        off += got as u64;
    }
    if last != b'\n' {
        n += 1;
    }
    Ok(n)
}

/// Makes a file that does not end in a line end ready for records to follow, before
/// the first write after it (an append, or an UPDATE's rewrite adding records), so
/// that the new records never run into the old last line. What the last line holds
/// decides, by the rule scans read it with (so no row a scan returned is lost and no
/// row it skipped appears):
/// - a record that scans return (an attached file's whole last record: another
///   program may leave the last line open; also a quoted value spanning lines) is
///   kept and gets its line end;
/// - anything else (in the table's own file every last line without a line end: the
///   engine ends every row it writes, so it is an append a crash cut short, whose
///   values may be cut too; in an attached file a line that does not parse) is first
///   saved beside the file as a rejected record ([`crate::rejected`], as REPAIR does),
///   then cut off. If it cannot be saved, nothing changes and the write fails.
///
/// Returns a note for the error log when it changed something. `st.len` is the file's
/// real length on entry.
fn mend_tail(opts: &CsvOptions, st: &mut State) -> Result<Option<String>> {
    let path = opts.data_path();
    let name = display(&path);
    if st.len == 0 {
        return Ok(None);
    }
    let mut last = [0u8; 1];
    st.file.read_exact_at(&mut last, st.len - 1).ctx(|| format!("cannot read '{name}'"))?;
    if last[0] == b'\n' {
        return Ok(None);
    }
    let add_line_end = |st: &mut State| -> Result<()> {
        st.file.write_all_at(b"\n", st.len).ctx(|| format!("cannot write '{name}'"))?;
        st.len += 1;
        Ok(())
    };
    if st.len <= st.data_start {
        // only a header line
        add_line_end(st)?;
        return Ok(None);
    }
    // Records may span lines (quoted values), so the last record's start is found by
    // reading the file from its first record, as a scan does. This happens once: the
    // file ends in a line end afterwards.
    let mut sc = Scanner::new(st.file.clone(), st.data_start, st.len);
    let mut rec = Record::default();
    let mut line = if st.data_start > 0 { 2 } else { 1 };
    let mut tail = None;
    loop {
        let item = sc.next(opts.separator, &mut rec)?;
        let this_line = line;
        let (start, end, keep, why) = match item {
            Item::Eof => break,
            Item::Row { start, end, terminated } => {
                line += 1 + rec.inner_newlines;
                let fields_ok = rec.spans.len() == opts.columns;
                let keep = terminated || (fields_ok && opts.external.is_some());
                let why = if !fields_ok {
                    format!("expected {} fields, found {}", opts.columns, rec.spans.len())
                } else {
                    "no line end".to_string()
                };
                (start, end, keep, why)
            }
            Item::Bad { start, end, why, lines } => {
                line += lines.max(1);
                (start, end, false, why.to_string())
            }
        };
        tail = Some((start, end, keep, why, this_line));
    }
    let Some((start, end, keep, why, line)) = tail else {
        add_line_end(st)?;
        return Ok(None);
    };
    if keep || end != st.len {
        add_line_end(st)?;
        return Ok(Some(format!("{name} line {line}: the last line had no line end; one was added before writing")));
    }
    let piece = crate::rejected::Piece {
        offset: start,
        len: end - start,
        line: Some(line),
        rows: None,
        why: format!("incomplete last line ({why})"),
    };
    let saved =
        crate::rejected::save_by(&path, &st.file, crate::rejected::Kind::Csv, &[piece], crate::rejected::By::TornTail)?;
    // Cut off by writing the file anew without it (fsynced, renamed into place, as an
    // UPDATE does), not by truncating in place: a scan that started earlier keeps
    // reading the old file, and never reads new rows where the torn bytes were.
    replace_with_prefix(opts, st, start)
        .map_err(|e| saved_but_tail(e, &saved))?;
    st.rows = if opts.external.is_none() && st.len <= COUNT_AT_OPEN {
        Some(count_records(&st.file, st.data_start, st.len)?)
    } else {
        None
    };
    Ok(Some(format!(
        "{name} line {line}: the incomplete last line ({why}; what a crash in the middle of an append leaves) \
         was moved aside before writing: {}",
        saved.describe()
    )))
}

/// Replaces the data file by a copy of its first `len` bytes (written beside it,
/// fsynced, renamed over it, folder fsynced); the shared state then holds the new file.
fn replace_with_prefix(opts: &CsvOptions, st: &mut State, len: u64) -> Result<()> {
    let path = opts.data_path();
    let tmp = opts.rewrite_path();
    let result = (|| -> Result<File> {
        let out = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .ctx(|| format!("cannot create '{}'", display(&tmp)))?;
        let mut buf = vec![0u8; READ_CHUNK.min(len.max(1) as usize)];
        let mut off = 0u64;
        while off < len {
            let n = ((len - off) as usize).min(buf.len());
            st.file.read_exact_at(&mut buf[..n], off).ctx(|| format!("cannot read '{}'", display(&path)))?;
            out.write_all_at(&buf[..n], off).ctx(|| format!("cannot write '{}'", display(&tmp)))?;
            off += n as u64;
        }
        if opts.external.is_some() {
            if let Ok(md) = st.file.metadata() {
                let _ = out.set_permissions(md.permissions());
            }
        }
        out.sync_all().ctx(|| format!("cannot sync '{}'", display(&tmp)))?;
        fs::rename(&tmp, &path).ctx(|| format!("cannot rename '{}' to '{}'", display(&tmp), display(&path)))?;
        Ok(out)
    })();
    let out = match result {
        Ok(f) => f,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let md = out.metadata().ctx(|| format!("cannot stat '{}'", display(&path)))?;
    st.file = Arc::new(out);
    st.id = (md.dev(), md.ino());
    st.len = len;
    st.generation += 1;
    sync_dir(&path)
}

/// An error after the torn last line was saved: says where it is.
fn saved_but_tail(e: Error, saved: &crate::rejected::Saved) -> Error {
    let tail = format!(" (the incomplete last line had been saved first: {})", saved.describe());
    match e {
        Error::Io { context, source } => Error::Io { context: format!("{context}{tail}"), source },
        Error::Corrupt(m) => Error::Corrupt(format!("{m}{tail}")),
        e => e,
    }
}

/// One step of a scan.
#[derive(Debug)]
pub enum Item {
    Row { start: u64, end: u64, terminated: bool },
    /// `lines`: line ends inside the skipped bytes.
    Bad { start: u64, end: u64, why: Malformed, lines: u64 },
    Eof,
}

/// Streams records from `[start, end)` of a file with a bounded buffer.
struct Scanner {
    file: Arc<File>,
    end: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_off: u64,
    pos: usize,
    filled: usize,
}

impl Scanner {
    fn new(file: Arc<File>, start: u64, end: u64) -> Scanner {
        Scanner { file, end, buf: Vec::new(), buf_off: start, pos: 0, filled: 0 }
    }

    fn at_eof(&self) -> bool {
        self.buf_off + self.filled as u64 >= self.end
    }

    fn refill(&mut self) -> Result<()> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.filled, 0);
            self.buf_off += self.pos as u64;
            self.filled -= self.pos;
            self.pos = 0;
        }
        if self.buf.len() < READ_CHUNK {
            self.buf.resize(READ_CHUNK, 0);
        } else if self.filled == self.buf.len() {
            // one record larger than the buffer: grow it, up to MAX_RECORD
            if self.buf.len() >= MAX_RECORD {
                return Err(Error::Corrupt(format!(
                    "a record at byte {} is longer than {} MiB (no line end found)",
                    self.buf_off,
                    MAX_RECORD >> 20
                )));
            }
            let n = (self.buf.len() * 2).min(MAX_RECORD);
            self.buf.resize(n, 0);
        }
        let want = ((self.end - self.buf_off - self.filled as u64) as usize).min(self.buf.len() - self.filled);
        let got = self
            .file
            .read_at(&mut self.buf[self.filled..self.filled + want], self.buf_off + self.filled as u64)
            .ctx(|| "cannot read CSV file".into())?;
        if got == 0 && want > 0 {
            // the file shrank under us: treat what we have as the end
            self.end = self.buf_off + self.filled as u64;
        }
        self.filled += got;
        Ok(())
    }

    fn next(&mut self, sep: u8, rec: &mut Record) -> Result<Item> {
        loop {
            let at_eof = self.at_eof();
            let avail = &self.buf[self.pos..self.filled];
            if avail.is_empty() {
                if at_eof {
                    return Ok(Item::Eof);
                }
                self.refill()?;
                continue;
            }
            let start = self.buf_off + self.pos as u64;
            match codec::decode_record(avail, sep, at_eof, rec) {
                Decoded::Record { len, terminated } => {
                    self.pos += len;
                    return Ok(Item::Row { start, end: start + len as u64, terminated });
                }
                Decoded::Bad { len, why } => {
                    let lines = memchr::memchr_iter(b'\n', &avail[..len]).count() as u64;
                    self.pos += len;
                    return Ok(Item::Bad { start, end: start + len as u64, why, lines });
                }
                Decoded::NeedMore => self.refill()?,
            }
        }
    }
}

/// A problem found in the file.
#[derive(Clone, Debug)]
pub struct Damage {
    pub start: u64,
    pub end: u64,
    pub line: u64,
    pub what: String,
    /// The last record, cut short (no line end): what a crash mid-append leaves.
    pub torn_tail: bool,
}

impl Damage {
    pub fn describe(&self, file: &str) -> String {
        if self.torn_tail {
            format!(
                "{} line {}: incomplete last line ({}): what a crash in the middle of an append leaves; \
                 reads skip it, and the next write or REPAIR moves it aside",
                file, self.line, self.what
            )
        } else {
            format!("{} line {}: {}", file, self.line, self.what)
        }
    }
}

pub enum CheckStep {
    Row,
    Damaged(String),
    End,
}

#[derive(Debug, Default)]
pub struct CheckReport {
    pub rows: u64,
    pub damage: Vec<Damage>,
    /// Where REPAIR saved the records it removed.
    pub saved: Option<crate::rejected::Saved>,
}

impl CheckReport {
    /// REPAIR's result line: what it kept and where the removed records went.
    pub fn repair_note(&self) -> String {
        match &self.saved {
            Some(s) => format!(
                "REPAIR kept {} rows and moved {} damaged {} ({} bytes) to '{}' (index: '{}')",
                self.rows,
                s.records,
                if s.records == 1 { "record" } else { "records" },
                s.bytes,
                s.data.display(),
                s.index.display()
            ),
            None => String::new(),
        }
    }
}

/// UPDATE/DELETE work not yet written: the byte ranges of old records to drop and the
/// new records to add. Applied by [`CsvTable::flush`].
#[derive(Default)]
struct Pending {
    dropped: Vec<(u64, u64)>,
    added: Spool,
    added_rows: u64,
    /// The file generation the dropped ranges refer to.
    generation: Option<u64>,
}

/// The new records of an UPDATE, in order: the first ones in an unnamed file (created
/// beside the data file and unlinked at once, so a crash leaves nothing behind), the
/// newest `SPILL_AT` bytes at most in memory.
#[derive(Default)]
struct Spool {
    file: Option<File>,
    file_len: u64,
    mem: Vec<u8>,
}

impl Spool {
    fn is_empty(&self) -> bool {
        self.file_len == 0 && self.mem.is_empty()
    }

    /// Moves the in-memory part to the spool file once it is large enough.
    fn maybe_spill(&mut self, near: &Path) -> Result<()> {
        if self.mem.len() < SPILL_AT {
            return Ok(());
        }
        let wctx = || format!("cannot write the UPDATE spool file beside '{}'", display(near));
        if self.file.is_none() {
            // a name no one else uses (two UPDATEs may spool beside one file)
            static SPOOLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = SPOOLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut name = near.as_os_str().to_owned();
            name.push(format!(".ha_rust-spool-{}-{n}", std::process::id()));
            let path = PathBuf::from(name);
            let f = OpenOptions::new().read(true).write(true).create_new(true).open(&path).ctx(wctx)?;
            fs::remove_file(&path).ctx(wctx)?;
            self.file = Some(f);
        }
        let f = self.file.as_ref().expect("spool file");
        f.write_all_at(&self.mem, self.file_len).ctx(wctx)?;
        self.file_len += self.mem.len() as u64;
        self.mem.clear();
        Ok(())
    }

    /// Writes every spooled record to `out`; returns the last byte written.
    fn copy_to(&self, out: &mut impl Write, near: &Path) -> Result<Option<u8>> {
        let mut last = None;
        if let Some(f) = &self.file {
            let mut buf = vec![0u8; READ_CHUNK];
            let mut off = 0u64;
            while off < self.file_len {
                let n = ((self.file_len - off) as usize).min(buf.len());
                f.read_exact_at(&mut buf[..n], off)
                    .ctx(|| format!("cannot read the UPDATE spool file beside '{}'", display(near)))?;
                out.write_all(&buf[..n]).ctx(|| format!("cannot write beside '{}'", display(near)))?;
                last = Some(buf[n - 1]);
                off += n as u64;
            }
        }
        if !self.mem.is_empty() {
            out.write_all(&self.mem).ctx(|| format!("cannot write beside '{}'", display(near)))?;
            last = self.mem.last().copied();
        }
        Ok(last)
    }
}

/// Positions are `generation << GEN_SHIFT | byte offset` (files up to 1 TiB).
const GEN_SHIFT: u32 = 40;
const OFFSET_MASK: u64 = (1 << GEN_SHIFT) - 1;

/// One handler's view of a CSV table.
pub struct CsvTable {
    shared: Arc<Shared>,
    scan: Option<Scanner>,
    rec: Record,
    /// Byte range of the record in `rec` (for position() and delete/update).
    cur: (u64, u64),
    /// Line number of the record in `rec`, counted by the running scan (1-based).
    cur_line: u64,
    scan_line: u64,
    scan_gen: u64,
    pending: Pending,
    /// Generation of the file the current record was read from.
    cur_gen: u64,
    appends: Vec<u8>,
    append_rows: u64,
    bulk: bool,
    pub warnings: Vec<String>,
    report: CheckReport,
}

impl CsvTable {
    pub fn open(opts: &CsvOptions) -> Result<CsvTable> {
        Ok(CsvTable {
            shared: Shared::open(opts)?,
            scan: None,
            rec: Record::default(),
            cur: (0, 0),
            cur_line: 0,
            scan_line: 0,
            scan_gen: 0,
            pending: Pending::default(),
            cur_gen: 0,
            appends: Vec::new(),
            append_rows: 0,
            bulk: false,
            warnings: Vec::new(),
            report: CheckReport::default(),
        })
    }

    fn opts(&self) -> &CsvOptions {
        &self.shared.opts
    }

    fn name(&self) -> String {
        display(&self.opts().data_path())
    }

    fn check_writable(&self) -> Result<()> {
        if self.opts().external.is_some() && !self.opts().writable {
            return Err(Error::ReadOnly(format!(
                "the attached CSV file '{}' is read-only (create the table with CSV_WRITABLE=YES to allow writes)",
                self.name()
            )));
        }
        Ok(())
    }

    pub fn record(&self) -> &Record {
        &self.rec
    }

    pub fn current_line(&self) -> u64 {
        self.cur_line
    }

    /// The current record's position: its byte offset and the file generation.
    pub fn current_pos(&self) -> u64 {
        (self.cur_gen & (u64::MAX >> GEN_SHIFT)) << GEN_SHIFT | self.cur.0
    }

    fn stale(&self) -> Error {
        Error::Corrupt(format!(
            "{}: the file was rewritten while this statement was using it (an UPDATE or DELETE \
             joining a CSV table with itself is not supported); the statement's remaining changes \
             were not applied",
            self.name()
        ))
    }

    /// Starts a full scan of the rows published so far.
    pub fn scan_start(&mut self) -> Result<()> {
        self.flush_appends()?;
        let (file, start, len, generation) = self.shared.snapshot_gen()?;
        self.scan_gen = generation;
        self.scan = Some(Scanner::new(file, start, len));
        self.scan_line = if start > 0 { 2 } else { 1 };
        Ok(())
    }

    /// The next row into [`Self::record`]; false at the end. A malformed record is an
    /// error naming its line, but a torn last record (a crash mid-append) is only
    /// reported as a warning, so the rows before it stay readable.
    pub fn scan_next(&mut self) -> Result<bool> {
        let sep = self.opts().separator;
        let columns = self.opts().columns;
        let Some(sc) = self.scan.as_mut() else {
            return Err(Error::Internal("scan_next without scan_start".into()));
        };
        let item = sc.next(sep, &mut self.rec)?;
        let line = self.scan_line;
        let (start, end, why) = match item {
            Item::Eof => return Ok(false),
            Item::Row { start, end, terminated } => {
                self.scan_line += 1 + self.rec.inner_newlines;
                // The engine ends every row it writes with a line end: in its own
                // file a last line without one is a torn append, whatever it holds.
                let torn_own = !terminated && self.opts().external.is_none();
                if self.rec.spans.len() == columns && !torn_own {
                    crate::metrics::CSV_BYTES_SCANNED.add(end - start);
                    self.cur = (start, end);
                    self.cur_gen = self.scan_gen;
                    self.cur_line = line;
                    return Ok(true);
                }
                let why = if torn_own {
                    "no line end".to_string()
                } else {
                    format!("expected {} fields, found {}", columns, self.rec.spans.len())
                };
                if !terminated {
                    self.warnings.push(format!(
                        "{} line {}: the last line is incomplete ({}); it is skipped. REPAIR TABLE removes it",
                        self.name(),
                        line,
                        why
                    ));
                    return Ok(false);
                }
                (start, end, why)
            }
            Item::Bad { start, end, why, .. } => {
                let torn = end == sc.end && matches!(why, Malformed::UnterminatedQuote);
                if torn {
                    self.warnings.push(format!(
                        "{} line {}: the last line is incomplete ({}); it is skipped. REPAIR TABLE removes it",
                        self.name(),
                        line,
                        why
                    ));
                    return Ok(false);
                }
                (start, end, why.to_string())
            }
        };
        let _ = (start, end);
        crate::metrics::CSV_ROWS_MALFORMED.inc();
        Err(Error::Corrupt(format!(
            "{} line {}: {}. CHECK TABLE lists the damage; REPAIR TABLE keeps every good row",
            self.name(),
            line,
            why
        )))
    }

    pub fn scan_end(&mut self) -> Result<()> {
        self.scan = None;
        self.flush()
    }

    /// Reads the record at `pos` (from [`Self::current_pos`]) into [`Self::record`].
    pub fn read_at(&mut self, pos: u64) -> Result<()> {
        let (pos_gen, pos) = (pos >> GEN_SHIFT, pos & OFFSET_MASK);
        let (file, _, len, generation) = match &self.scan {
            // inside a scan use its snapshot, so positions stay valid
            Some(sc) => (sc.file.clone(), 0, sc.end, self.scan_gen),
            None => self.shared.snapshot_gen()?,
        };
        if pos_gen != generation & (u64::MAX >> GEN_SHIFT) {
            return Err(self.stale());
        }
        if pos >= len {
            return Err(Error::Corrupt(format!("{}: no row at byte {}", self.name(), pos)));
        }
        let mut sc = Scanner::new(file, pos, len);
        match sc.next(self.opts().separator, &mut self.rec)? {
            Item::Row { start, end, .. } if self.rec.spans.len() == self.opts().columns => {
                self.cur = (start, end);
                self.cur_gen = generation;
                Ok(())
            }
            _ => Err(Error::Corrupt(format!("{}: no valid row at byte {}", self.name(), pos))),
        }
    }

    /// Encodes a row from C++ (see [`encode_row`]) and appends it.
    pub fn insert(&mut self, text: &[u8], fields: &[CsvField]) -> Result<()> {
        self.check_writable()?;
        let sep = self.opts().separator;
        let cols = self.opts().columns;
        encode_row(&mut self.appends, text, fields, sep, cols)?;
        self.append_rows += 1;
        if !self.bulk || self.appends.len() >= APPEND_FLUSH {
            self.flush_appends()?;
        }
        Ok(())
    }

    pub fn set_bulk(&mut self, on: bool) -> Result<()> {
        self.bulk = on;
        if !on {
            self.flush_appends()?;
        }
        Ok(())
    }

    fn flush_appends(&mut self) -> Result<()> {
        if self.appends.is_empty() {
            return Ok(());
        }
        let name = self.name();
        let mut st = self.shared.state.lock();
        // at the file's real end: another program may have appended since
        let real = st.file.metadata().ctx(|| format!("cannot stat '{name}'"))?.len();
        if real != st.len {
            if self.opts().external.is_some() || real < st.len {
                st.rows = None;
            }
            st.len = real;
        }
        // A file that does not end in a line end: a torn append is moved aside, a
        // whole last record written by another program gets its line end.
        match mend_tail(&self.shared.opts, &mut st) {
            Ok(Some(note)) => self.warnings.push(note),
            Ok(None) => {}
            Err(e) => {
                // these rows are not inserted, and not retried by a later statement
                drop(st);
                self.appends.clear();
                self.append_rows = 0;
                return Err(e);
            }
        }
        let at = st.len;
        if let Err(e) = st.file.write_all_at(&self.appends, at) {
            // A full disk, say: these rows are not inserted (the statement reports
            // the error). Cut off whatever part of them reached the file, so that no
            // half-written row is ever published, and forget them: they must not
            // be retried by the next statement.
            let _ = st.file.set_len(at);
            drop(st);
            self.appends.clear();
            self.append_rows = 0;
            return Err(Error::io(format!("cannot append to '{name}'"), e));
        }
        st.len = at + self.appends.len() as u64;
        if let Some(r) = st.rows.as_mut() {
            *r += self.append_rows;
        }
        drop(st);
        self.appends.clear();
        self.append_rows = 0;
        Ok(())
    }

    /// Marks the current record deleted (written out by [`Self::flush`]).
    pub fn delete_current(&mut self) -> Result<()> {
        self.check_writable()?;
        self.note_generation()?;
        self.pending.dropped.push(self.cur);
        Ok(())
    }

    /// Pending changes all refer to one generation of the file.
    fn note_generation(&mut self) -> Result<()> {
        match self.pending.generation {
            Some(g) if g != self.cur_gen => Err(self.stale()),
            _ => {
                self.pending.generation = Some(self.cur_gen);
                Ok(())
            }
        }
    }

    /// Forgets pending UPDATE/DELETE work (after its statement failed).
    pub fn discard(&mut self) {
        self.pending = Pending::default();
        self.appends.clear();
        self.append_rows = 0;
    }

    pub fn update_current(&mut self, text: &[u8], fields: &[CsvField]) -> Result<()> {
        self.check_writable()?;
        self.note_generation()?;
        let (sep, cols) = (self.opts().separator, self.opts().columns);
        encode_row(&mut self.pending.added.mem, text, fields, sep, cols)?;
        self.pending.added_rows += 1;
        self.pending.dropped.push(self.cur);
        let near = self.opts().data_path();
        self.pending.added.maybe_spill(&near)
    }

    /// Writes buffered appends and applies pending updates and deletes.
    pub fn flush(&mut self) -> Result<()> {
        self.flush_appends()?;
        if self.pending.dropped.is_empty() && self.pending.added.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let current = self.shared.state.lock().generation;
        if pending.generation.is_some_and(|g| g != current) {
            return Err(self.stale());
        }
        match self.rewrite(pending.dropped.clone(), &pending.added, pending.added_rows) {
            Ok(()) => Ok(()),
            Err(e) => {
                // kept, so that the statement's end can still report the failure
                self.pending = pending;
                Err(e)
            }
        }
    }

    /// Writes the file anew without the `drop` ranges and with `add` at the end, then
    /// renames it into place (see the module comment).
    fn rewrite(&mut self, mut drop: Vec<(u64, u64)>, add: &Spool, add_rows: u64) -> Result<()> {
        drop.sort_unstable();
        drop.dedup();
        let shared = self.shared.clone();
        let opts = &shared.opts;
        let path = opts.data_path();
        let tmp = opts.rewrite_path();
        let mut st = shared.state.lock();
        if !add.is_empty() {
            // new records follow the old ones: not after a torn last line (see flush_appends)
            if let Some(note) = mend_tail(opts, &mut st)? {
                self.warnings.push(note);
            }
        }
        let result = (|| -> Result<(File, u64)> {
            let mut out = std::io::BufWriter::with_capacity(
                READ_CHUNK,
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&tmp)
                    .ctx(|| format!("cannot create '{}'", display(&tmp)))?,
            );
            let wctx = || format!("cannot write '{}'", display(&tmp));
            let mut last = b'\n';
            let copy = |from: u64, to: u64, out: &mut std::io::BufWriter<File>, last: &mut u8| -> Result<()> {
                let mut buf = vec![0u8; READ_CHUNK.min((to - from) as usize)];
                let mut off = from;
                while off < to {
                    let n = ((to - off) as usize).min(buf.len());
                    st.file.read_exact_at(&mut buf[..n], off).ctx(|| format!("cannot read '{}'", display(&path)))?;
                    out.write_all(&buf[..n]).ctx(wctx)?;
                    *last = buf[n - 1];
                    off += n as u64;
                }
                Ok(())
            };
            let mut at = 0u64;
            for &(s, e) in &drop {
                if s > at {
                    copy(at, s, &mut out, &mut last)?;
                }
                at = at.max(e);
            }
            if at < st.len {
                copy(at, st.len, &mut out, &mut last)?;
            }
            if !add.is_empty() {
                if last != b'\n' {
                    out.write_all(b"\n").ctx(wctx)?;
                }
                add.copy_to(&mut out, &path)?;
            }
            let f = out.into_inner().map_err(|e| Error::io(wctx(), e.into_error()))?;
            f.sync_all().ctx(|| format!("cannot sync '{}'", display(&tmp)))?;
            let len = f.metadata().ctx(wctx)?.len();
            Ok((f, len))
        })();
        let (new_file, new_len) = match result {
            Ok(x) => x,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        // Keep an attached file's permissions.
        if opts.external.is_some() {
            if let Ok(md) = st.file.metadata() {
                let _ = new_file.set_permissions(md.permissions());
            }
        }
        fs::rename(&tmp, &path).ctx(|| format!("cannot rename '{}' to '{}'", display(&tmp), display(&path)))?;
        sync_dir(&path)?;
        let md = new_file.metadata().ctx(|| format!("cannot stat '{}'", display(&path)))?;
        st.file = Arc::new(new_file);
        st.id = (md.dev(), md.ino());
        st.len = new_len;
        st.generation += 1;
        let removed = drop.len() as u64;
        st.rows = st.rows.map(|r| (r + add_rows).saturating_sub(removed));
        Ok(())
    }

    /// DELETE without WHERE and TRUNCATE: keeps only the header line.
    pub fn truncate(&mut self) -> Result<()> {
        self.check_writable()?;
        self.appends.clear();
        self.append_rows = 0;
        self.pending = Pending::default();
        let (_, start, len) = self.shared.snapshot()?;
        self.rewrite(vec![(start, len)], &Spool::default(), 0)?;
        self.shared.state.lock().rows = Some(0);
        Ok(())
    }

    /// Row count (exact or estimated) and data length, for SHOW TABLE STATUS and the
    /// optimizer.
    pub fn stats(&self) -> (u64, u64, bool) {
        let st = self.shared.state.lock();
        match st.rows {
            Some(r) => (r, st.len, true),
            None => {
                // estimate from the first bytes' average line length
                let sample = (st.len - st.data_start.min(st.len)).min(64 * 1024);
                let mut buf = vec![0u8; sample as usize];
                let n = st.file.read_at(&mut buf, st.data_start).unwrap_or(0);
                let lines = memchr::memchr_iter(b'\n', &buf[..n]).count().max(1) as u64;
                let avg = (n as u64 / lines).max(1);
                ((st.len - st.data_start.min(st.len)) / avg, st.len, false)
            }
        }
    }

    /// Records the exact count a completed full scan found.
    pub fn set_exact_rows(&self, rows: u64) {
        self.shared.state.lock().rows = Some(rows);
    }

    /// Starts CHECK TABLE / REPAIR TABLE: a scan that lists damage instead of failing.
    pub fn check_start(&mut self) -> Result<()> {
        self.flush()?;
        let (file, start, len) = self.shared.snapshot()?;
        self.scan = Some(Scanner::new(file, start, len));
        self.scan_line = if start > 0 { 2 } else { 1 };
        self.report = CheckReport::default();
        Ok(())
    }

    /// The next record of a check: a row with the right number of fields (in
    /// [`Self::record`], for the caller to check its values and [`Self::check_reject`] it),
    /// a damaged record (recorded, described by the returned text), or the end.
    pub fn check_next(&mut self) -> Result<CheckStep> {
        let (sep, cols) = (self.opts().separator, self.opts().columns);
        let Some(sc) = self.scan.as_mut() else {
            return Err(Error::Internal("check_next without check_start".into()));
        };
        let line = self.scan_line;
        let item = sc.next(sep, &mut self.rec)?;
        let end_of_data = sc.end;
        let (start, end, what, torn) = match item {
            Item::Eof => return Ok(CheckStep::End),
            Item::Row { start, end, terminated } => {
                self.scan_line += 1 + self.rec.inner_newlines;
                let torn_own = !terminated && self.opts().external.is_none();
                if self.rec.spans.len() == cols && !torn_own {
                    self.cur = (start, end);
                    self.cur_line = line;
                    self.report.rows += 1;
                    return Ok(CheckStep::Row);
                }
                let what = if torn_own {
                    "no line end".to_string()
                } else {
                    format!("expected {} fields, found {}", cols, self.rec.spans.len())
                };
                (start, end, what, !terminated)
            }
            Item::Bad { start, end, why, lines } => {
                self.scan_line += lines.max(1);
                let torn = end == end_of_data && matches!(why, Malformed::UnterminatedQuote);
                (start, end, why.to_string(), torn)
            }
        };
        let d = Damage { start, end, line, what, torn_tail: torn };
        let text = d.describe(&self.name());
        crate::metrics::CSV_ROWS_MALFORMED.inc();
        self.report.damage.push(d);
        Ok(CheckStep::Damaged(text))
    }

    /// The caller found a value in the current row that does not fit its column.
    pub fn check_reject(&mut self, what: String) -> String {
        self.report.rows -= 1;
        let d = Damage { start: self.cur.0, end: self.cur.1, line: self.cur_line, what, torn_tail: false };
        let text = d.describe(&self.name());
        self.report.damage.push(d);
        text
    }

    /// Ends a check; with `repair`, rewrites the file without the damaged records.
    /// The damaged records are first saved beside the file ([`crate::rejected`]):
    /// if that fails, nothing is changed.
    pub fn check_finish(&mut self, repair: bool) -> Result<CheckReport> {
        self.scan = None;
        let mut rep = std::mem::take(&mut self.report);
        if rep.damage.is_empty() {
            self.set_exact_rows(rep.rows);
        } else if repair {
            self.check_writable()?;
            rep.damage.sort_by_key(|d| d.start);
            let pieces: Vec<_> = rep
                .damage
                .iter()
                .map(|d| crate::rejected::Piece {
                    offset: d.start,
                    len: d.end - d.start,
                    line: Some(d.line),
                    rows: None,
                    why: if d.torn_tail { format!("incomplete last line ({})", d.what) } else { d.what.clone() },
                })
                .collect();
            let file = self.shared.state.lock().file.clone();
            let saved = crate::rejected::save(&self.opts().data_path(), &file, crate::rejected::Kind::Csv, &pieces)?;
            let drop = rep.damage.iter().map(|d| (d.start, d.end)).collect();
            self.rewrite(drop, &Spool::default(), 0).map_err(|e| saved_but(e, &saved))?;
            self.set_exact_rows(rep.rows);
            rep.saved = Some(saved);
        }
        Ok(rep)
    }

    /// CHECK (or REPAIR) in one call, with `row_ok` judging each row's values.
    pub fn check(&mut self, repair: bool, mut row_ok: impl FnMut(&Record) -> Option<String>) -> Result<CheckReport> {
        self.check_start()?;
        loop {
            match self.check_next()? {
                CheckStep::End => break,
                CheckStep::Damaged(_) => {}
                CheckStep::Row => {
                    if let Some(why) = row_ok(&self.rec) {
                        self.check_reject(why);
                    }
                }
            }
        }
        self.check_finish(repair)
    }
}

/// A REPAIR that saved its rejected records but then failed to rewrite the table.
pub(crate) fn saved_but(e: Error, saved: &crate::rejected::Saved) -> Error {
    let tail = format!(
        " (REPAIR did not finish; the damaged records had already been saved: {})",
        saved.describe()
    );
    match e {
        Error::Io { context, source } => Error::Io { context: format!("{context}{tail}"), source },
        Error::Corrupt(m) => Error::Corrupt(format!("{m}{tail}")),
        Error::ReadOnly(m) => Error::ReadOnly(format!("{m}{tail}")),
        e => e,
    }
}

impl Drop for CsvTable {
    fn drop(&mut self) {
        // Best effort: a handler closed with work not written (the server always
        // ends statements first, so this is only a safety net). Runs when C++
        // deletes the handle, so a panic must not unwind out of it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.flush()));
    }
}

/// Encodes a row written (its `fields`, one per column, in `text`, as C++ gives
/// them) as one record into `out`; `out` is left as it was when they do not fit.
pub fn encode_row(out: &mut Vec<u8>, text: &[u8], fields: &[CsvField], sep: u8, columns: usize) -> Result<()> {
    if fields.len() != columns {
        return Err(Error::Internal(format!("a row of {} fields, the table has {columns} columns", fields.len())));
    }
    let mark = out.len();
    for (n, f) in fields.iter().enumerate() {
        let (start, len) = (f.offset as usize, f.length as usize);
        let Some(value) = text.get(start..start + len) else {
            out.truncate(mark);
            return Err(Error::Internal(format!("field {n} of a row lies outside the row's text")));
        };
        codec::encode_field(out, sep, n == 0, f.kind, value);
    }
    codec::end_record(out);
    Ok(())
}

/// A row written as C++ gives it (the inverse of what [`encode_row`] reads);
/// for tests. Kinds: 0 NULL, 1 bare, 2 quoted.
#[cfg(test)]
pub struct BuiltRow {
    pub text: Vec<u8>,
    pub fields: Vec<CsvField>,
}

/// Builds a [`BuiltRow`] from `(kind, text)` pairs; for tests.
#[cfg(test)]
pub fn build_row(values: &[(u8, &[u8])]) -> BuiltRow {
    let mut r = BuiltRow { text: Vec::new(), fields: Vec::new() };
    for (k, b) in values {
        let kind = match k {
            0 => codec::Kind::Null,
            1 => codec::Kind::Bare,
            _ => codec::Kind::Quoted,
        };
        r.fields.push(CsvField { kind, offset: r.text.len() as u32, length: b.len() as u32 });
        r.text.extend_from_slice(b);
    }
    r
}

#[allow(dead_code)]
fn read_all(p: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    File::open(p).and_then(|mut f| f.read_to_end(&mut v)).unwrap();
    v
}

#[cfg(test)]
impl CsvTable {
    fn insert_built(&mut self, r: &BuiltRow) -> Result<()> {
        self.insert(&r.text, &r.fields)
    }
    fn update_current_built(&mut self, r: &BuiltRow) -> Result<()> {
        self.update_current(&r.text, &r.fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> crate::testutil::TempDir {
        crate::testutil::dir(&format!("csv-{name}"), 0)
    }

    fn opts(dir: &Path, cols: usize) -> CsvOptions {
        CsvOptions {
            table_path: dir.join("t"),
            external: None,
            header: false,
            separator: b',',
            writable: true,
            columns: cols,
        }
    }

    fn all_rows(t: &mut CsvTable) -> Vec<Vec<Option<Vec<u8>>>> {
        t.scan_start().unwrap();
        let mut out = vec![];
        while t.scan_next().unwrap() {
            let r = t.record();
            out.push((0..r.spans.len()).map(|i| r.field(i).map(|s| s.to_vec())).collect());
        }
        t.scan_end().unwrap();
        out
    }


    /// A row from C++ whose fields do not match the table or its text is refused
    /// whole: nothing of it is written.
    #[test]
    fn a_row_whose_fields_do_not_fit_is_refused() {
        let r = build_row(&[(1, b"1"), (2, b"a,b"), (0, b"")]);
        let mut out = b"kept\n".to_vec();
        encode_row(&mut out, &r.text, &r.fields, b',', 3).unwrap();
        assert_eq!(out, b"kept\n1,\"a,b\",\n");
        out.truncate(5);
        assert!(matches!(encode_row(&mut out, &r.text, &r.fields, b',', 2), Err(Error::Internal(_))));
        let mut wide = r.fields.clone();
        wide[1].length = 9;
        assert!(matches!(encode_row(&mut out, &r.text, &wide, b',', 3), Err(Error::Internal(_))));
        assert_eq!(out, b"kept\n");
    }

    #[test]
    fn insert_scan_update_delete() {
        let d = tmpdir("iud");
        let o = opts(&d, 2);
        create(&o, b"").unwrap();
        let mut t = CsvTable::open(&o).unwrap();
        for i in 0..100u32 {
            let s = i.to_string();
            t.insert_built(&build_row(&[(1, s.as_bytes()), (2, b"x,\"y\"\n")])).unwrap();
        }
        assert_eq!(all_rows(&mut t).len(), 100);
        // delete even rows, update row 1
        t.scan_start().unwrap();
        while t.scan_next().unwrap() {
            let v: u32 = std::str::from_utf8(t.record().field(0).unwrap()).unwrap().parse().unwrap();
            if v % 2 == 0 {
                t.delete_current().unwrap();
            } else if v == 1 {
                t.update_current_built(&build_row(&[(1, b"1001"), (0, b"")])).unwrap();
            }
        }
        t.scan_end().unwrap();
        let rows = all_rows(&mut t);
        assert_eq!(rows.len(), 50);
        assert_eq!(rows.last().unwrap(), &vec![Some(b"1001".to_vec()), None]);
        assert_eq!(t.stats().0, 50);
        assert!(!with_ext(&o.table_path, REWRITE_EXT).exists());
        t.truncate().unwrap();
        assert_eq!(all_rows(&mut t).len(), 0);
    }

    #[test]
    fn a_large_update_spills_its_new_records_to_a_file_and_keeps_their_order() {
        let d = tmpdir("spill");
        let o = opts(&d, 2);
        let mut data = Vec::new();
        let text = "t".repeat(200);
        let n = 60_000u32; // 60k new records of ~210 bytes: past SPILL_AT
        for i in 0..n {
            data.extend_from_slice(format!("{i},{text}\n").as_bytes());
        }
        fs::write(o.data_path(), &data).unwrap();
        let mut t = CsvTable::open(&o).unwrap();
        t.scan_start().unwrap();
        while t.scan_next().unwrap() {
            let v: u32 = std::str::from_utf8(t.record().field(0).unwrap()).unwrap().parse().unwrap();
            let s = (v + n).to_string();
            t.update_current_built(&build_row(&[(1, s.as_bytes()), (1, text.as_bytes())])).unwrap();
            // memory holds at most one spill's worth of new records
            assert!(t.pending.added.mem.len() <= SPILL_AT + 512);
        }
        assert!(t.pending.added.file_len > 0, "the new records went to the spool file");
        t.scan_end().unwrap(); // writes the new file
        let rows = all_rows(&mut t);
        assert_eq!(rows.len(), n as usize);
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r[0].as_deref(), Some((i as u32 + n).to_string().as_bytes()));
            assert_eq!(r[1].as_deref(), Some(text.as_bytes()));
        }
        // the spool file was unlinked when created: nothing but the data file is left
        let names: Vec<_> = fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("t.csv")]);
    }

    #[test]
    fn concurrent_append_and_scan_see_whole_rows() {
        let d = tmpdir("conc");
        let o = opts(&d, 2);
        create(&o, b"").unwrap();
        let writer = {
            let o = o.clone();
            std::thread::spawn(move || {
                let mut t = CsvTable::open(&o).unwrap();
                t.set_bulk(true).unwrap();
                for i in 0..20000u32 {
                    let s = i.to_string();
                    t.insert_built(&build_row(&[(1, s.as_bytes()), (2, b"some text, with a comma")])).unwrap();
                }
                t.set_bulk(false).unwrap();
            })
        };
        let mut t = CsvTable::open(&o).unwrap();
        let mut last = 0;
        while !writer.is_finished() {
            let rows = all_rows(&mut t);
            assert!(rows.len() >= last);
            for (i, r) in rows.iter().enumerate() {
                assert_eq!(r[0].as_deref(), Some(i.to_string().as_bytes()));
            }
            last = rows.len();
        }
        writer.join().unwrap();
        assert_eq!(all_rows(&mut t).len(), 20000);
    }

    #[test]
    fn malformed_lines_are_reported_and_repaired() {
        let d = tmpdir("bad");
        let o = opts(&d, 2);
        fs::write(o.data_path(), b"1,\"a\"\n2\n3,\"c\"\n4,\"unterminated\n5,\"e\"\n6,\"torn").unwrap();
        let mut t = CsvTable::open(&o).unwrap();
        t.scan_start().unwrap();
        assert!(t.scan_next().unwrap());
        let e = t.scan_next().unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("expected 2 fields, found 1"), "{e}");
        let rep = t.check(false, |_| None).unwrap();
        let lines: Vec<u64> = rep.damage.iter().map(|d| d.line).collect();
        assert_eq!(rep.rows, 3, "{rep:?}");
        assert_eq!(lines, vec![2, 4, 6], "{rep:?}");
        assert!(rep.damage[2].torn_tail);
        let original = read_all(&o.data_path());
        let rep = t.check(true, |_| None).unwrap();
        let rows = all_rows(&mut t);
        assert_eq!(rows.len(), 3);
        assert_eq!(read_all(&o.data_path()), b"1,\"a\"\n3,\"c\"\n5,\"e\"\n");
        // what REPAIR removed is saved beside the file, byte for byte, with its lines
        let saved = rep.saved.expect("saved");
        assert_eq!(saved.data.parent(), o.data_path().parent());
        assert_eq!((saved.records, saved.bytes), (3, 25));
        let rejected = read_all(&saved.data);
        assert_eq!(rejected, b"2\n4,\"unterminated\n6,\"torn");
        let index = fs::read_to_string(&saved.index).unwrap();
        assert!(index.contains("\n2\t6\t2\t-\texpected 2 fields, found 1\n"), "{index}");
        assert!(index.contains("\n6\t") && index.contains("incomplete last line"), "{index}");
        // every original byte is in one of the two files, at its recorded place
        let mut rebuilt = read_all(&o.data_path());
        for line in index.lines().skip(9).take(saved.records as usize) {
            let f: Vec<&str> = line.split('\t').collect();
            let (off, len): (usize, usize) = (f[1].parse().unwrap(), f[2].parse().unwrap());
            let at: usize = index.lines().skip(9).take_while(|l| *l != line).map(|l| l.split('\t').nth(2).unwrap().parse::<usize>().unwrap()).sum();
            rebuilt.splice(off..off, rejected[at..at + len].iter().copied());
        }
        assert_eq!(rebuilt, original);
        // a second REPAIR has nothing to remove and writes nothing
        let rep = t.check(true, |_| None).unwrap();
        assert!(rep.saved.is_none());
        assert_eq!(fs::read_dir(&*d).unwrap().count(), 3);
    }

    #[test]
    fn repair_changes_nothing_when_it_cannot_save_what_it_removes() {
        // an attached file whose name leaves no room for the rejected file's suffix
        // (a real failure to create a file, whatever the user's rights)
        let d = tmpdir("bad-nosave");
        let mut o = opts(&d, 2);
        o.external = Some(d.join(format!("{}.csv", "x".repeat(240))));
        let text = b"1,\"a\"\n2\n3,\"c\"\n";
        fs::write(o.data_path(), text).unwrap();
        let mut t = CsvTable::open(&o).unwrap();
        let e = t.check(true, |_| None).unwrap_err().to_string();
        assert!(e.starts_with("REPAIR refused and changed nothing"), "{e}");
        assert!(e.contains("File name too long"), "{e}");
        assert_eq!(read_all(&o.data_path()), text);
        assert_eq!(fs::read_dir(&*d).unwrap().count(), 1);
        // the table still reads as before
        let rep = t.check(false, |_| None).unwrap();
        assert_eq!((rep.rows, rep.damage.len()), (2, 1));
    }

    #[test]
    fn torn_tail_is_a_warning_and_the_next_append_is_kept_apart() {
        let d = tmpdir("torn");
        let o = opts(&d, 2);
        fs::write(o.data_path(), b"1,\"a\"\n2,\"b").unwrap();
        let mut t = CsvTable::open(&o).unwrap();
        assert_eq!(all_rows(&mut t).len(), 1);
        assert_eq!(t.warnings.len(), 1);
        assert!(t.warnings[0].contains("line 2"), "{:?}", t.warnings);
    }

    #[test]
    fn an_own_file_s_last_line_without_a_line_end_is_torn_even_with_all_fields() {
        let d = tmpdir("torn2");
        let o = opts(&d, 3);
        // "2,"b",42\n" cut after the 4
        fs::write(o.data_path(), b"1,\"a\",10\n2,\"b\",4").unwrap();
        let mut t = CsvTable::open(&o).unwrap();
        assert_eq!(all_rows(&mut t).len(), 1);
        assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
        let rep = t.check(false, |_| None).unwrap();
        assert_eq!((rep.rows, rep.damage.len()), (1, 1));
        assert!(rep.damage[0].torn_tail);
    }

    /// The `.rejected-*` files beside the data file: (data, index) contents.
    fn rejected_files(d: &Path) -> Vec<(Vec<u8>, String)> {
        let mut names: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path().to_string_lossy().into_owned())
            .filter(|p| p.contains(".rejected-") && p.ends_with(".csv"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|p| {
                let idx = format!("{}.index.txt", &p[..p.len() - 4]);
                (fs::read(&p).unwrap(), fs::read_to_string(&idx).unwrap())
            })
            .collect()
    }

    #[test]
    fn a_torn_last_line_is_moved_aside_before_the_next_append() {
        // the own file of a table whose last append a crash cut short ("3,\"c\"\n"
        // minus its last 3 bytes), with two whole rows before it
        let d = tmpdir("torn-append");
        let o = opts(&d, 2);
        fs::write(o.data_path(), b"1,\"a\"\n2,\"b\"\n3,").unwrap();
        let mut t = CsvTable::open(&o).unwrap();
        t.insert_built(&build_row(&[(1, b"4"), (2, b"d")])).unwrap();
        // the torn bytes went to a rejected file, with an index saying why
        let rej = rejected_files(&d);
        assert_eq!(rej.len(), 1, "{rej:?}");
        assert_eq!(rej[0].0, b"3,");
        assert!(rej[0].1.contains("made: ") && rej[0].1.contains("by a write to the table"), "{}", rej[0].1);
        assert!(rej[0].1.contains("\n3\t12\t2\t-\tincomplete last line (no line end)\n"), "{}", rej[0].1);
        // the error log's note says where
        assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
        assert!(t.warnings[0].contains("line 3") && t.warnings[0].contains("moved aside"), "{:?}", t.warnings);
        t.warnings.clear();
        // the new row is whole and readable, the old rows unchanged, no warning left
        assert_eq!(fs::read(o.data_path()).unwrap(), b"1,\"a\"\n2,\"b\"\n4,\"d\"\n");
        let rows = all_rows(&mut t);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2], vec![Some(b"4".to_vec()), Some(b"d".to_vec())]);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.stats().0, 3);
        let rep = t.check(false, |_| None).unwrap();
        assert_eq!((rep.rows, rep.damage.len()), (3, 0));
        // nothing is moved again, and no temporary file is left
        t.insert_built(&build_row(&[(1, b"5"), (2, b"e")])).unwrap();
        assert_eq!(rejected_files(&d).len(), 1);
        assert!(!with_ext(&o.table_path, REWRITE_EXT).exists());
    }

    #[test]
    fn an_own_file_s_torn_line_with_all_its_fields_is_moved_aside_too() {
        // "2,42\n" cut after the 4: it parses, but its value is cut; scans skip it,
        // so it must not become a row now
        let d = tmpdir("torn-append2");
        let o = opts(&d, 2);
        fs::write(o.data_path(), b"1,10\n2,4").unwrap();
        let mut t = CsvTable::open(&o).unwrap();
        assert_eq!(all_rows(&mut t).len(), 1);
        t.insert_built(&build_row(&[(1, b"3"), (1, b"30")])).unwrap();
        assert_eq!(fs::read(o.data_path()).unwrap(), b"1,10\n3,30\n");
        assert_eq!(rejected_files(&d)[0].0, b"2,4");
    }

    #[test]
    fn an_update_after_a_torn_last_line_keeps_its_new_records_whole() {
        let d = tmpdir("torn-update");
        let o = opts(&d, 2);
        fs::write(o.data_path(), b"1,\"a\"\n2,\"b\"\n3,\"unfinis").unwrap();
        let mut t = CsvTable::open(&o).unwrap();
        t.scan_start().unwrap();
        while t.scan_next().unwrap() {
            if t.record().field(0).unwrap() == b"1" {
                t.update_current_built(&build_row(&[(1, b"1"), (2, b"A")])).unwrap();
            }
        }
        t.scan_end().unwrap();
        assert_eq!(fs::read(o.data_path()).unwrap(), b"2,\"b\"\n1,\"A\"\n");
        assert_eq!(rejected_files(&d)[0].0, b"3,\"unfinis");
        assert_eq!(all_rows(&mut t).len(), 2);
    }

    #[test]
    fn an_attached_file_s_whole_last_record_without_a_line_end_is_kept() {
        let d = tmpdir("attached-tail");
        let ext = d.join("people.csv");
        let mut o = opts(&d, 2);
        o.external = Some(ext.clone());
        // written by another program: no final line end, a quoted value spanning lines
        fs::write(&ext, b"1,\"a\"\n2,\"two\nlines\"").unwrap();
        let mut t = CsvTable::open(&o).unwrap();
        assert_eq!(all_rows(&mut t).len(), 2);
        t.insert_built(&build_row(&[(1, b"3"), (2, b"c")])).unwrap();
        assert_eq!(fs::read(&ext).unwrap(), b"1,\"a\"\n2,\"two\nlines\"\n3,\"c\"\n");
        let rows = all_rows(&mut t);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1][1].as_deref(), Some(&b"two\nlines"[..]));
        assert!(rejected_files(&d).is_empty());
        // a bare last value too
        fs::write(&ext, b"1,\"a\"\n2,20").unwrap();
        let mut t2 = CsvTable::open(&o).unwrap();
        t2.insert_built(&build_row(&[(1, b"3"), (1, b"30")])).unwrap();
        assert_eq!(fs::read(&ext).unwrap(), b"1,\"a\"\n2,20\n3,30\n");
        assert!(rejected_files(&d).is_empty());
    }

    #[test]
    fn an_attached_file_s_malformed_last_line_is_moved_aside() {
        let d = tmpdir("attached-torn");
        let ext = d.join("people.csv");
        let mut o = opts(&d, 2);
        o.external = Some(ext.clone());
        // a quote opened on the last line that never closes
        fs::write(&ext, b"1,\"a\"\n2,\"open").unwrap();
        let mut t = CsvTable::open(&o).unwrap();
        assert_eq!(all_rows(&mut t).len(), 1);
        t.insert_built(&build_row(&[(1, b"4"), (2, b"d")])).unwrap();
        assert_eq!(fs::read(&ext).unwrap(), b"1,\"a\"\n4,\"d\"\n");
        let rej = rejected_files(&d);
        assert_eq!(rej[0].0, b"2,\"open");
        assert!(rej[0].1.contains("\n2\t6\t7\t-\tincomplete last line (unbalanced quote"), "{}", rej[0].1);
        assert_eq!(all_rows(&mut t).len(), 2);
        // a line with too few fields, last
        fs::write(&ext, b"1,\"a\"\n2").unwrap();
        let mut t2 = CsvTable::open(&o).unwrap();
        t2.insert_built(&build_row(&[(1, b"4"), (2, b"d")])).unwrap();
        assert_eq!(fs::read(&ext).unwrap(), b"1,\"a\"\n4,\"d\"\n");
        assert_eq!(rejected_files(&d).len(), 2);
    }

    #[test]
    fn a_torn_last_line_that_cannot_be_saved_fails_the_write_and_changes_nothing() {
        let d = tmpdir("torn-nosave");
        let o = opts(&d, 2);
        // a table name so long that the rejected file's name does not fit the file
        // system's limit: saving fails (as root too)
        let mut o = o;
        o.table_path = d.join("n".repeat(240));
        fs::write(o.data_path(), b"1,\"a\"\n2,\"b").unwrap();
        let mut t = CsvTable::open(&o).unwrap();
        let m = t.insert_built(&build_row(&[(1, b"3"), (2, b"c")])).unwrap_err().to_string();
        assert!(m.contains("the write was refused and changed nothing"), "{m}");
        assert!(m.contains("File name too long"), "{m}");
        assert!(rejected_files(&d).is_empty());
        assert_eq!(all_rows(&mut t).len(), 1);
        assert_eq!(fs::read(o.data_path()).unwrap(), b"1,\"a\"\n2,\"b");
    }

    #[test]
    fn a_crash_before_the_rename_leaves_the_old_file() {
        let d = tmpdir("crash");
        let o = opts(&d, 1);
        fs::write(o.data_path(), b"1\n2\n").unwrap();
        // what a crash mid-rewrite leaves: a partial new file beside the intact old one
        fs::write(with_ext(&o.table_path, REWRITE_EXT), b"1\n").unwrap();
        let mut t = CsvTable::open(&o).unwrap();
        assert_eq!(all_rows(&mut t).len(), 2);
        assert!(!with_ext(&o.table_path, REWRITE_EXT).exists());
    }

    #[test]
    fn attaching_a_huge_file_reads_only_a_sample() {
        let d = tmpdir("huge");
        let ext = d.join("big.csv");
        // 1 GiB, sparse: opening it must not read it through
        let f = File::create(&ext).unwrap();
        f.set_len(1 << 30).unwrap();
        let o = CsvOptions {
            table_path: d.join("t"),
            external: Some(ext),
            header: false,
            separator: b',',
            writable: false,
            columns: 1,
        };
        create(&o, b"").unwrap();
        let t = CsvTable::open(&o).unwrap();
        let (rows, len, exact) = t.stats();
        assert_eq!(len, 1 << 30);
        assert!(!exact);
        assert!(rows > 0);
    }

    #[test]
    fn scans_stream_with_a_bounded_buffer() {
        let d = tmpdir("stream");
        let o = opts(&d, 2);
        let mut data = Vec::new();
        for i in 0..200_000 {
            data.extend_from_slice(format!("{i},\"some text for row {i}\"\n").as_bytes());
        }
        fs::write(o.data_path(), &data).unwrap();
        let mut t = CsvTable::open(&o).unwrap();
        t.scan_start().unwrap();
        let mut n = 0;
        while t.scan_next().unwrap() {
            n += 1;
        }
        assert_eq!(n, 200_000);
        assert!(data.len() > 4 * READ_CHUNK);
        assert_eq!(t.scan.as_ref().unwrap().buf.len(), READ_CHUNK);
    }

    #[test]
    fn attached_file_with_header_is_read_only() {
        let d = tmpdir("attach");
        let ext = d.join("data.csv");
        fs::write(&ext, b"id;name\n1;\"x\"\n2;y\n").unwrap();
        let o = CsvOptions {
            table_path: d.join("t"),
            external: Some(ext.clone()),
            header: true,
            separator: b';',
            writable: false,
            columns: 2,
        };
        create(&o, b"").unwrap();
        let mut t = CsvTable::open(&o).unwrap();
        let rows = all_rows(&mut t);
        assert_eq!(rows, vec![vec![Some(b"1".to_vec()), Some(b"x".to_vec())], vec![Some(b"2".to_vec()), Some(b"y".to_vec())]]);
        assert!(matches!(t.insert_built(&build_row(&[(1, b"3"), (1, b"z")])), Err(Error::ReadOnly(_))));
        delete(&o.table_path).unwrap();
        assert!(ext.exists(), "DROP never removes an attached file");
    }
}
