//! An ARCHIVE table: compressed blocks in `<table>.arz`, the newest rows in
//! `<table>.arp` until there are enough of them for a block.
//!
//! Writes: an INSERT's rows are appended to `.arp` (one checksummed record each) at
//! the end of the statement, or every 1 MiB of a bulk insert, and become visible then.
//! When `.arp` holds [`BLOCK_RAW`] bytes of rows, they are compressed into one block
//! appended to `.arz`, `.arz` is fsynced, and only then `.arp` is emptied; a crash in
//! between leaves rows in both, and the next open drops the `.arp` copies (by row id).
//!
//! Reads: a scan takes a snapshot (the block list, `.arz` length and the pending
//! rows, all behind `Arc`s) and never sees rows published after it started.
//!
//! Keys: a table may have one index, on its AUTO_INCREMENT column. Each row carries
//! its key as an order-preserving u64, and each block header the smallest and
//! largest key in it, so a point lookup decompresses only blocks that can hold it.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Weak};

use parking_lot::Mutex;

use super::format::*;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{display, sync_dir, with_ext};
use crate::session::StopCheck;

pub const ARZ_EXT: &str = ".arz";
pub const ARP_EXT: &str = ".arp";
pub const REWRITE_EXT: &str = ".arz-rewrite";
/// Raw bytes of pending rows that are sealed into a block.
pub const BLOCK_RAW: usize = 1024 * 1024;
/// A bulk insert that ends with at least this much pending seals it too, so a
/// loaded table keeps little uncompressed.
pub const BULK_SEAL: usize = 64 * 1024;
/// Block size of OPTIMIZE (bigger blocks compress better).
pub const OPTIMIZE_BLOCK_RAW: usize = 4 * 1024 * 1024;
/// A bulk insert publishes its rows every this many bytes.
const APPEND_FLUSH: usize = 1024 * 1024;
pub const DEFAULT_LEVEL: i32 = 9;

#[derive(Clone, Debug)]
pub struct ArchiveOptions {
    pub table_path: PathBuf,
    /// zstd level for new blocks.
    pub level: i32,
    /// The server family of the shim this build runs under (`format::FAMILY_*`):
    /// a table another family's shim wrote is refused (its row images are that
    /// family's `Field::pack()` bytes).
    pub family: u32,
}

/// Rows in `.arp`: ids `first_row..first_row + set.len()`.
#[derive(Clone, Default, Debug)]
struct Pending {
    first_row: u64,
    set: RowSet,
}

struct State {
    arz: Arc<File>,
    arz_len: u64,
    blocks: Arc<Vec<BlockMeta>>,
    arp: File,
    arp_len: u64,
    pending: Arc<Pending>,
    next_row: u64,
    /// Largest key stored or reserved (None: no keyed row yet).
    max_key: Option<u64>,
    auto_inc_base: u64,
    rows: u64,
    /// Which rewrite of `.arz` this is (kept in both files' headers): a `.arp`
    /// of another epoch is stale (a crash between installing a rewritten `.arz`
    /// and emptying `.arp`) and is ignored.
    epoch: u32,
    /// The format version of both files (what codec new blocks get).
    version: u32,
    /// The server family whose shim wrote the table (`format::FAMILY_*`; the
    /// open's, which it checked the files against).
    family: u32,
    /// Damage found at open before the end of `.arz`: scans refuse the table
    /// until REPAIR, rather than return some rows silently.
    damaged: Option<String>,
    /// `.arz` is shorter than the length `.arp` says was sealed: its end was cut
    /// off while the server was down (CHECK reports it even when the cut fell
    /// between two blocks; REPAIR clears it).
    cut_short: Option<String>,
}

pub struct Shared {
    opts: ArchiveOptions,
    state: Mutex<State>,
    /// What the open found and mended (torn tails cut), for the server's log.
    notes: Mutex<Vec<String>>,
}

static REGISTRY: LazyLock<Mutex<HashMap<PathBuf, Weak<Shared>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn arz_path(t: &Path) -> PathBuf {
    with_ext(t, ARZ_EXT)
}
fn arp_path(t: &Path) -> PathBuf {
    with_ext(t, ARP_EXT)
}

fn rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .ctx(|| format!("cannot open '{}'", display(path)))
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .ctx(|| format!("cannot create '{}'", display(path)))?;
    f.write_all_at(bytes, 0).ctx(|| format!("cannot write '{}'", display(path)))?;
    f.sync_all().ctx(|| format!("cannot sync '{}'", display(path)))?;
    Ok(f)
}

/// Both files carry the table's format version: [`FORMAT_VERSION`] for a table
/// created or rewritten by this build, 1 for an older table until its next rewrite.
/// An empty `.arp` following a `.arz` of `sealed` bytes (kept from version 3 on).
fn empty_arp(epoch: u32, version: u32, sealed: u64, family: u32) -> [u8; FILE_HEADER_LEN] {
    let value = if version >= SEALED_LEN_SINCE { sealed } else { 0 };
    FileHeader { version, auto_inc_base: value, flags: epoch, family }.encode(ARP_MAGIC)
}

/// The `.arz` length a `.arp` says was sealed, with the epoch it belongs to; None
/// for a `.arp` that keeps none (before version 3) or cannot be read (the open
/// reports that later).
fn sealed_len(arp: &Path) -> Option<(u32, u64)> {
    let f = File::open(arp).ok()?;
    let mut b = [0u8; FILE_HEADER_LEN];
    f.read_exact_at(&mut b, 0).ok()?;
    let h = FileHeader::decode(&b, ARP_MAGIC, "").ok()?;
    (h.version >= SEALED_LEN_SINCE).then_some((h.flags, h.auto_inc_base))
}

fn arz_header(auto_inc_base: u64, epoch: u32, family: u32) -> [u8; FILE_HEADER_LEN] {
    FileHeader { version: FORMAT_VERSION, auto_inc_base, flags: epoch, family }.encode(ARZ_MAGIC)
}

/// Replaces a file atomically: the new content at `<path>-new`, synced, renamed.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<File> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push("-new");
    let tmp = PathBuf::from(tmp);
    let f = write_new(&tmp, bytes)?;
    fs::rename(&tmp, path).ctx(|| format!("cannot rename '{}' to '{}'", display(&tmp), display(path)))?;
    sync_dir(path)?;
    Ok(f)
}

/// Creates empty `.arz` and `.arp` files. `auto_inc_base`: the AUTO_INCREMENT value
/// before the first (CREATE TABLE ... AUTO_INCREMENT=N gives N-1).
pub fn create(table_path: &Path, auto_inc_base: u64, family: u32) -> Result<()> {
    write_new(&arz_path(table_path), &arz_header(auto_inc_base, 0, family))?;
    write_new(&arp_path(table_path), &empty_arp(0, FORMAT_VERSION, FILE_HEADER_LEN as u64, family))?;
    sync_dir(&arz_path(table_path))
}

pub fn delete(table_path: &Path) -> Result<()> {
    for ext in [ARZ_EXT, ARP_EXT, REWRITE_EXT] {
        let p = with_ext(table_path, ext);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("cannot remove '{}'", display(&p)), e)),
        }
    }
    REGISTRY.lock().remove(table_path);
    Ok(())
}

pub fn rename(from: &Path, to: &Path) -> Result<()> {
    for ext in [ARP_EXT, ARZ_EXT] {
        let (a, b) = (with_ext(from, ext), with_ext(to, ext));
        if a.exists() {
            fs::rename(&a, &b).ctx(|| format!("cannot rename '{}' to '{}'", display(&a), display(&b)))?;
        }
    }
    sync_dir(&arz_path(to))?;
    REGISTRY.lock().remove(from);
    Ok(())
}

/// Walks the block headers of `.arz`. A block cut short at the end of the file (a
/// crash in the middle of an append) is cut off, and reported in `notes`; damage
/// before the end is left for scans and CHECK to report.
struct Loaded {
    blocks: Vec<BlockMeta>,
    len: u64,
    auto_inc_base: u64,
    epoch: u32,
    version: u32,
    damaged: Option<String>,
    /// A complete last block whose payload checksum fails: torn if `.arp` still
    /// holds its rows, media damage otherwise (decided by the caller).
    suspect: Option<BlockMeta>,
    cut_short: Option<String>,
}

fn load_blocks(f: &File, path: &Path, sealed: Option<(u32, u64)>, notes: &mut Vec<String>) -> Result<Loaded> {
    let name = display(path);
    let len = f.metadata().ctx(|| format!("cannot stat '{name}'"))?.len();
    let mut hdr = [0u8; FILE_HEADER_LEN];
    // Only a file too short to hold the header is damage; a failing read (EIO) is
    // an I/O error, not a report of a broken file (found by ci/faults-sweep).
    f.read_exact_at(&mut hdr, 0).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::Corrupt(format!("{name}: file header missing")),
        _ => Error::io(format!("cannot read '{name}'"), e),
    })?;
    let fh = FileHeader::decode(&hdr, ARZ_MAGIC, &name)?;
    let mut damaged = None;
    // Shorter than what was sealed (fsynced before `.arp` said so): no crash
    // leaves that, so it is damage, and nothing is cut.
    let cut_short = sealed.filter(|&(epoch, sealed)| epoch == fh.flags && len < sealed).map(|(_, sealed)| {
        format!(
            "{name}: the file holds {len} bytes but {sealed} were sealed: its end was cut off while the server was down \
             (the rows of the lost blocks are gone); reads and writes are refused; CHECK TABLE reports it, REPAIR TABLE \
             keeps every intact block"
        )
    });
    if let Some(what) = &cut_short {
        notes.push(what.clone());
        damaged = Some(what.clone());
    }
    let mut blocks = Vec::new();
    let mut off = FILE_HEADER_LEN as u64;
    let mut bh = [0u8; BLOCK_HEADER_LEN];
    let mut cut = None;
    while off < len {
        if len - off < BLOCK_HEADER_LEN as u64 {
            cut = Some(off);
            break;
        }
        f.read_exact_at(&mut bh, off).ctx(|| format!("cannot read '{name}'"))?;
        let Some(meta) = BlockMeta::decode(&bh, off) else {
            // Not a block header, with room for one: damage, not a torn append.
            // Look for the next valid header so the blocks after it stay readable.
            match find_next_block(f, off + 1, len)? {
                Some(next) => {
                    let what = format!(
                        "{name}: {} bytes at byte {off} are not a valid block; CHECK TABLE lists the damage, REPAIR TABLE keeps every intact block",
                        next - off
                    );
                    notes.push(what.clone());
                    damaged.get_or_insert(what);
                    off = next;
                    continue;
                }
                None => {
                    cut = Some(off);
                    break;
                }
            }
        };
        if meta.end() > len {
            cut = Some(off);
            break;
        }
        blocks.push(meta);
        off = meta.end();
    }
    // The last block's payload is checked too: a torn write may have left its bytes
    // unwritten even though the file reached its length (the caller decides).
    let mut suspect = None;
    if cut.is_none() {
        if let Some(last) = blocks.last().copied() {
            let mut payload = vec![0u8; last.payload_len as usize];
            f.read_exact_at(&mut payload, last.offset + BLOCK_HEADER_LEN as u64)
                .ctx(|| format!("cannot read '{name}'"))?;
            if crc32fast::hash(&payload) != last.payload_crc {
                blocks.pop();
                suspect = Some(last);
            }
        }
    }
    if let (Some(_), Some(_)) = (cut, &cut_short) {
        return Ok(Loaded { blocks, len, auto_inc_base: fh.auto_inc_base, epoch: fh.flags, version: fh.version, damaged, suspect, cut_short });
    }
    if let Some(at) = cut {
        notes.push(format!(
            "{name}: cut a torn block at the end of the file ({} bytes at offset {at}, written when the server stopped); earlier blocks are intact",
            len - at
        ));
        f.set_len(at).ctx(|| format!("cannot truncate '{name}'"))?;
        f.sync_all().ctx(|| format!("cannot sync '{name}'"))?;
        return Ok(Loaded { blocks, len: at, auto_inc_base: fh.auto_inc_base, epoch: fh.flags, version: fh.version, damaged, suspect, cut_short });
    }
    Ok(Loaded { blocks, len, auto_inc_base: fh.auto_inc_base, epoch: fh.flags, version: fh.version, damaged, suspect, cut_short })
}

/// The offset of the next valid block header at or after `from`.
fn find_next_block(f: &File, from: u64, len: u64) -> Result<Option<u64>> {
    let magic = BLOCK_MAGIC.to_le_bytes();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = from;
    while off + BLOCK_HEADER_LEN as u64 <= len {
        let n = ((len - off) as usize).min(buf.len());
        f.read_exact_at(&mut buf[..n], off).ctx(|| "cannot read archive".into())?;
        let mut i = 0;
        while let Some(p) = memchr::memmem::find(&buf[i..n], &magic) {
            let at = i + p;
            if at + BLOCK_HEADER_LEN > n {
                break;
            }
            if let Some(m) = BlockMeta::decode(&buf[at..at + BLOCK_HEADER_LEN], off + at as u64) {
                if m.end() <= len {
                    return Ok(Some(off + at as u64));
                }
            }
            i = at + 1;
        }
        if n < BLOCK_HEADER_LEN {
            break;
        }
        off += (n - BLOCK_HEADER_LEN + 1) as u64;
    }
    Ok(None)
}

/// Reads `.arp`; a torn last record is cut off (and reported); records already in a
/// block (row id below `next_row`) are dropped.
fn load_pending(f: &File, path: &Path, next_row: u64, epoch: u32, version: u32, family: u32, sealed: u64, notes: &mut Vec<String>) -> Result<(Pending, u64, Option<File>)> {
    let name = display(path);
    let mut all = Vec::new();
    {
        use std::io::Read;
        let mut r = f;
        r.read_to_end(&mut all).ctx(|| format!("cannot read '{name}'"))?;
    }
    let fh = FileHeader::decode(&all, ARP_MAGIC, &name)?;
    let mut p = Pending { first_row: next_row, set: RowSet::default() };
    if fh.flags != epoch {
        // left from before the last OPTIMIZE/REPAIR/TRUNCATE: its rows are in .arz
        notes.push(format!("{name}: stale (from before the last rewrite of the table), emptied"));
        let f = replace_file(path, &empty_arp(epoch, version, sealed, family))?;
        return Ok((p, FILE_HEADER_LEN as u64, Some(f)));
    }
    let mut off = FILE_HEADER_LEN;
    let mut dropped = 0u64;
    let mut keep = Vec::new();
    while off < all.len() {
        let Some(r) = decode_pending(&all[off..]) else {
            break;
        };
        if r.row_id < next_row {
            dropped += 1;
        } else {
            if keep.is_empty() {
                p.first_row = r.row_id;
            }
            keep.push((r.key, r.segs, r.image.to_vec()));
        }
        off += r.len;
    }
    for (k, segs, img) in &keep {
        p.set.push(*k, img, segs);
    }
    if off < all.len() {
        // What does not check out is cut off: a record torn by a crash, or a record
        // damaged on disk, after which nothing can be trusted to be a record start.
        // Unless it is only zeros (space an OS crash left unwritten), its bytes are
        // first saved beside the file (as REPAIR saves damaged blocks), so that
        // damage never loses rows silently: the note says where they are.
        let cut = &all[off..];
        if cut.iter().any(|&b| b != 0) {
            let piece = crate::rejected::Piece {
                offset: off as u64,
                len: cut.len() as u64,
                line: None,
                rows: None,
                why: "pending row records that do not check out (a torn tail, or damage)".into(),
            };
            let saved = crate::rejected::save_by(path, f, crate::rejected::Kind::Archive, &[piece], crate::rejected::By::ArchivePending)?;
            notes.push(format!(
                "{name}: cut {} bytes at offset {off} that do not check out as row records (a record torn by a crash, \
                 or damage); the rows before them are intact; the bytes were saved first: {}",
                cut.len(),
                saved.describe()
            ));
        } else {
            notes.push(format!(
                "{name}: cut a torn row record at the end ({} bytes of zeros at offset {off}); the rows before it are intact",
                cut.len()
            ));
        }
    }
    if dropped > 0 || off < all.len() {
        // .arp anew (atomically), holding exactly the kept rows
        let mut bytes = empty_arp(epoch, version, fh.auto_inc_base, family).to_vec();
        for (i, (k, segs, img)) in keep.iter().enumerate() {
            encode_pending(&mut bytes, p.first_row + i as u64, *k, segs, img);
        }
        let f = replace_file(path, &bytes)?;
        return Ok((p, bytes.len() as u64, Some(f)));
    }
    Ok((p, all.len() as u64, None))
}

impl Shared {
    fn open(opts: &ArchiveOptions) -> Result<Arc<Shared>> {
        let mut reg = REGISTRY.lock();
        if let Some(s) = reg.get(&opts.table_path).and_then(Weak::upgrade) {
            return Ok(s);
        }
        let mut notes = Vec::new();
        let (ap, pp) = (arz_path(&opts.table_path), arp_path(&opts.table_path));
        let arz = rw(&ap)?;
        // Refused before anything is written (a leftover rewrite removed, a torn
        // tail cut): another server family's shim made the row images, whose
        // bytes are that family's Field::pack(). A header that does not decode is
        // load_blocks' to report.
        let mut hdr = [0u8; FILE_HEADER_LEN];
        if arz.read_exact_at(&mut hdr, 0).is_ok() {
            if let Ok(fh) = FileHeader::decode(&hdr, ARZ_MAGIC, "") {
                if fh.family != opts.family {
                    return Err(Error::Unsupported(format!(
                        "{}: this ARCHIVE table was written by ha_rust in {}, and this server is {}: \
                         the rows of one server family cannot be read by the other (move a table \
                         between them with a dump and a load)",
                        display(&ap),
                        family_name(fh.family),
                        family_name(opts.family)
                    )));
                }
            }
        }
        let _ = fs::remove_file(with_ext(&opts.table_path, REWRITE_EXT));
        let Loaded { mut blocks, len: mut arz_len, auto_inc_base: base, epoch, version, mut damaged, suspect, cut_short } =
            load_blocks(&arz, &ap, sealed_len(&pp), &mut notes)?;
        let family = opts.family;
        let mut next_row = blocks.last().map_or(0, |b| b.first_row + b.rows as u64);
        let arp = match rw(&pp) {
            Ok(f) => f,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                notes.push(format!("{}: missing, created empty", display(&pp)));
                write_new(&pp, &empty_arp(epoch, version, arz_len, family))?
            }
            Err(e) => return Err(e),
        };
        let (mut pending, mut arp_len, new_arp) = load_pending(&arp, &pp, next_row, epoch, version, family, arz_len, &mut notes)?;
        let mut arp = new_arp.unwrap_or(arp);
        if let Some(s) = suspect {
            if !pending.set.is_empty() && pending.first_row <= s.first_row {
                // .arp still holds the block's rows: it was being written when the
                // server stopped
                notes.push(format!(
                    "{}: cut a torn block at the end of the file ({} bytes at offset {}); its rows are still pending",
                    display(&ap),
                    s.end() - s.offset,
                    s.offset
                ));
                arz.set_len(s.offset).ctx(|| format!("cannot truncate '{}'", display(&ap)))?;
                arz.sync_all().ctx(|| format!("cannot sync '{}'", display(&ap)))?;
                arz_len = s.offset;
            } else {
                // a block written and synced earlier: damage, for CHECK and REPAIR
                let what = format!(
                    "{} block {} at byte {}: payload checksum mismatch; CHECK TABLE lists the damage, REPAIR TABLE keeps every intact block",
                    display(&ap),
                    blocks.len(),
                    s.offset
                );
                notes.push(what.clone());
                damaged.get_or_insert(what);
                blocks.push(s);
                next_row = s.first_row + s.rows as u64;
                if pending.set.is_empty() {
                    pending.first_row = next_row;
                } else if pending.first_row < next_row {
                    // cannot happen with an intact .arp; keep the ids apart
                    pending = Pending { first_row: next_row, set: RowSet::default() };
                    arp = replace_file(&pp, &empty_arp(epoch, version, arz_len, family))?;
                    arp_len = FILE_HEADER_LEN as u64;
                }
            }
        }
        let rows = blocks.iter().map(|b| b.rows as u64).sum::<u64>() + pending.set.len() as u64;
        let max_key = blocks
            .iter()
            .map(|b| b.max_key)
            .chain(pending.set.keys.iter().copied())
            .max()
            .filter(|_| rows > 0);
        let next_row = pending.first_row + pending.set.len() as u64;
        let st = State {
            arz: Arc::new(arz),
            arz_len,
            blocks: Arc::new(blocks),
            arp,
            arp_len,
            pending: Arc::new(pending),
            next_row: next_row.max(0),
            max_key,
            auto_inc_base: base,
            rows,
            epoch,
            version,
            family,
            damaged,
            cut_short,
        };
        let s = Arc::new(Shared { opts: opts.clone(), state: Mutex::new(st), notes: Mutex::new(notes) });
        reg.insert(opts.table_path.clone(), Arc::downgrade(&s));
        Ok(s)
    }
}

/// A consistent view for one scan.
#[derive(Clone)]
struct Snapshot {
    arz: Arc<File>,
    blocks: Arc<Vec<BlockMeta>>,
    pending: Arc<Pending>,
}

/// Where a cursor is.
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    block: usize,
    row: usize,
    in_pending: bool,
}

pub enum CheckStep {
    Row,
    Damaged(String),
    End,
}

#[derive(Default, Debug)]
pub struct CheckReport {
    pub rows: u64,
    pub damaged: u64,
    pub lost_rows: u64,
    /// Where REPAIR saved the damaged bytes it removed.
    pub saved: Option<crate::rejected::Saved>,
}

impl CheckReport {
    /// REPAIR's result line: what it kept and where the removed blocks went.
    pub fn repair_note(&self) -> String {
        match &self.saved {
            Some(s) => format!(
                "REPAIR kept {} rows and moved {} damaged {} holding {} rows ({} bytes) to '{}' (index: '{}')",
                self.rows,
                s.records,
                if s.records == 1 { "block" } else { "blocks" },
                self.lost_rows,
                s.bytes,
                s.data.display(),
                s.index.display()
            ),
            None => String::new(),
        }
    }
}

pub struct ArchiveTable {
    shared: Arc<Shared>,
    snap: Option<Snapshot>,
    cur: Cursor,
    /// Decoded rows of block `loaded` of the snapshot.
    rows: RowSet,
    loaded: Option<usize>,
    payload: Vec<u8>,
    /// The current row: (row id, where its image is).
    cur_row: u64,
    cur_in_pending: bool,
    cur_idx: usize,
    /// Point lookup: only rows with this key.
    key: Option<u64>,
    appends: RowSet,
    bulk: bool,
    check: Option<CheckState>,
    pub warnings: Vec<String>,
}

struct CheckState {
    report: CheckReport,
    good_blocks: Vec<BlockMeta>,
    bad_ranges: u64,
    /// The damaged byte ranges, for REPAIR to save before it removes them.
    bad: Vec<crate::rejected::Piece>,
    offset: u64,
    len: u64,
    file: Arc<File>,
    block_rows_left: usize,
    pending_done: bool,
    /// `.arz` lost its end (see `State::cut_short`): reported once, at the end.
    cut_short: Option<String>,
}

impl ArchiveTable {
    pub fn open(opts: &ArchiveOptions) -> Result<ArchiveTable> {
        let shared = Shared::open(opts)?;
        let warnings = std::mem::take(&mut *shared.notes.lock());
        Ok(ArchiveTable {
            shared,
            snap: None,
            cur: Cursor::default(),
            rows: RowSet::default(),
            loaded: None,
            payload: Vec::new(),
            cur_row: 0,
            cur_in_pending: false,
            cur_idx: 0,
            key: None,
            appends: RowSet::default(),
            bulk: false,
            check: None,
            warnings,
        })
    }

    fn name(&self) -> String {
        display(&arz_path(&self.shared.opts.table_path))
    }

    fn snapshot(&self) -> Snapshot {
        let st = self.shared.state.lock();
        Snapshot { arz: st.arz.clone(), blocks: st.blocks.clone(), pending: st.pending.clone() }
    }

    /// The image of the current row.
    pub fn record(&self) -> &[u8] {
        if self.cur_in_pending {
            match &self.snap {
                Some(s) => s.pending.set.row(self.cur_idx),
                None => &[],
            }
        } else {
            self.rows.row(self.cur_idx)
        }
    }

    pub fn position(&self) -> u64 {
        self.cur_row
    }

    fn load_block(&mut self, snap: &Snapshot, i: usize) -> Result<()> {
        if self.loaded == Some(i) {
            return Ok(());
        }
        self.loaded = None;
        let meta = snap.blocks[i];
        crate::metrics::ARCHIVE_BYTES_SCANNED.add(meta.payload_len as u64);
        self.payload.resize(meta.payload_len as usize, 0);
        snap.arz
            .read_exact_at(&mut self.payload, meta.offset + BLOCK_HEADER_LEN as u64)
            .ctx(|| format!("cannot read '{}'", self.name()))?;
        let name = self.name();
        self.rows
            .from_payload(&meta, &self.payload, &|| format!("{name} block {i} at byte {}", meta.offset))
            .map_err(|e| match e {
                Error::Corrupt(m) => Error::Corrupt(format!("{m}; CHECK TABLE lists the damage, REPAIR TABLE keeps every intact block")),
                e => e,
            })?;
        self.loaded = Some(i);
        Ok(())
    }

    fn refuse_if_damaged(&self) -> Result<()> {
        match &self.shared.state.lock().damaged {
            Some(what) => Err(Error::Corrupt(what.clone())),
            None => Ok(()),
        }
    }

    pub fn scan_start(&mut self) -> Result<()> {
        self.flush()?;
        self.refuse_if_damaged()?;
        self.snap = Some(self.snapshot());
        self.cur = Cursor::default();
        self.key = None;
        Ok(())
    }

    /// Starts a point lookup of `key`; then [`Self::scan_next`] returns its rows.
    pub fn lookup(&mut self, key: u64) -> Result<()> {
        self.flush()?;
        self.refuse_if_damaged()?;
        self.snap = Some(self.snapshot());
        self.cur = Cursor::default();
        self.key = Some(key);
        Ok(())
    }

    pub fn scan_next(&mut self) -> Result<bool> {
        let Some(snap) = self.snap.clone() else {
            return Err(Error::Internal("scan_next without scan_start".into()));
        };
        while !self.cur.in_pending && self.cur.block < snap.blocks.len() {
            let b = self.cur.block;
            let meta = snap.blocks[b];
            if let Some(k) = self.key {
                if k < meta.min_key || k > meta.max_key {
                    self.cur.block += 1;
                    self.cur.row = 0;
                    continue;
                }
            }
            self.load_block(&snap, b)?;
            while self.cur.row < self.rows.len() {
                let r = self.cur.row;
                self.cur.row += 1;
                if self.key.is_none_or(|k| self.rows.keys[r] == k) {
                    self.cur_row = meta.first_row + r as u64;
                    self.cur_in_pending = false;
                    self.cur_idx = r;
                    return Ok(true);
                }
            }
            self.cur.block += 1;
            self.cur.row = 0;
        }
        if !self.cur.in_pending {
            self.cur.in_pending = true;
            self.cur.row = 0;
        }
        let p = &snap.pending;
        while self.cur.row < p.set.len() {
            let r = self.cur.row;
            self.cur.row += 1;
            if self.key.is_none_or(|k| p.set.keys[r] == k) {
                self.cur_row = p.first_row + r as u64;
                self.cur_in_pending = true;
                self.cur_idx = r;
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub fn scan_end(&mut self) -> Result<()> {
        self.key = None;
        self.flush()
    }

    /// Reads the row with id `row` (from [`Self::position`]).
    pub fn read_at(&mut self, row: u64) -> Result<()> {
        let snap = match &self.snap {
            Some(s) => s.clone(),
            None => {
                let s = self.snapshot();
                self.snap = Some(s.clone());
                s
            }
        };
        let i = snap.blocks.partition_point(|b| b.first_row <= row);
        if i > 0 {
            let b = snap.blocks[i - 1];
            if row < b.first_row + b.rows as u64 {
                self.load_block(&snap, i - 1)?;
                self.cur_row = row;
                self.cur_in_pending = false;
                self.cur_idx = (row - b.first_row) as usize;
                return Ok(());
            }
        }
        let p = &snap.pending;
        if row >= p.first_row && row < p.first_row + p.set.len() as u64 {
            self.cur_row = row;
            self.cur_in_pending = true;
            self.cur_idx = (row - p.first_row) as usize;
            return Ok(());
        }
        Err(Error::Corrupt(format!("{}: no row with id {row}", self.name())))
    }

    /// Appends a row. `key`: its order-preserving key (0 without an index);
    /// `unique`: refuse a key not above every key stored so far, as MariaDB's
    /// ARCHIVE does for a unique AUTO_INCREMENT index.
    pub fn insert(&mut self, image: &[u8], segs: &[u32], key: u64, keyed: bool, unique: bool) -> Result<bool> {
        if keyed {
            let mut st = self.shared.state.lock();
            if unique && st.max_key.is_some_and(|m| key <= m) {
                return Ok(false);
            }
            st.max_key = Some(st.max_key.map_or(key, |m| m.max(key)));
        }
        self.appends.push(key, image, segs);
        if !self.bulk || self.appends.data.len() >= APPEND_FLUSH {
            self.flush()?;
        }
        Ok(true)
    }

    pub fn set_bulk(&mut self, on: bool) -> Result<()> {
        let was = self.bulk;
        self.bulk = on;
        if !on {
            self.flush()?;
            if was {
                let shared = self.shared.clone();
                let mut st = shared.state.lock();
                if st.pending.set.raw_len() >= BULK_SEAL {
                    seal_block(&shared.opts, &mut st)?;
                }
            }
        }
        Ok(())
    }

    /// The largest key stored (order-preserving), and the AUTO_INCREMENT base.
    pub fn max_key(&self) -> (Option<u64>, u64) {
        let st = self.shared.state.lock();
        (st.max_key, st.auto_inc_base)
    }

    /// Publishes buffered rows: `.arp` first, then a block when there are enough.
    pub fn flush(&mut self) -> Result<()> {
        if self.appends.is_empty() {
            return Ok(());
        }
        let shared = self.shared.clone();
        let mut st = shared.state.lock();
        let pp = arp_path(&shared.opts.table_path);
        let mut bytes = Vec::with_capacity(self.appends.raw_len() + self.appends.len() * PENDING_HEADER_LEN);
        for i in 0..self.appends.len() {
            encode_pending(
                &mut bytes,
                st.next_row + i as u64,
                self.appends.keys[i],
                self.appends.row_segs(i),
                self.appends.row(i),
            );
        }
        if let Err(e) = st.arp.write_all_at(&bytes, st.arp_len) {
            // A full disk, say: these rows are not inserted (the statement reports
            // the error). Cut off whatever part of them reached `.arp` and forget
            // them: the next statement must not retry them.
            let _ = st.arp.set_len(st.arp_len);
            drop(st);
            self.appends.clear();
            return Err(Error::io(format!("cannot append to '{}'", display(&pp)), e));
        }
        st.arp_len += bytes.len() as u64;
        let n = self.appends.len() as u64;
        {
            let next_row = st.next_row;
            let p = Arc::make_mut(&mut st.pending);
            if p.set.is_empty() {
                p.first_row = next_row;
            }
            for i in 0..self.appends.len() {
                p.set.push(self.appends.keys[i], self.appends.row(i), self.appends.row_segs(i));
            }
        }
        st.next_row += n;
        st.rows += n;
        self.appends.clear();
        if st.pending.set.raw_len() >= BLOCK_RAW {
            // The rows are safe in `.arp` already: a block that cannot be written
            // now (a full disk) is not this statement's failure. It is reported in
            // the error log and tried again at the next insert.
            if let Err(e) = seal_block(&shared.opts, &mut st) {
                self.warnings.push(format!(
                    "{}: the pending rows stay in '{}' for now: {e}",
                    display(&shared.opts.table_path),
                    display(&pp)
                ));
            }
        }
        Ok(())
    }

    /// Forgets buffered rows (their statement failed).
    pub fn discard(&mut self) {
        self.appends.clear();
    }

    /// TRUNCATE: empty files, AUTO_INCREMENT back to 1.
    pub fn truncate(&mut self) -> Result<()> {
        self.appends.clear();
        let shared = self.shared.clone();
        let mut st = shared.state.lock();
        let opts = &shared.opts;
        let tmp = with_ext(&opts.table_path, REWRITE_EXT);
        let hdr = arz_header(0, st.epoch.wrapping_add(1), st.family);
        let f = write_new(&tmp, &hdr)?;
        install_rewrite(opts, &mut st, f, hdr.len() as u64, Vec::new())?;
        st.max_key = None;
        st.auto_inc_base = 0;
        self.loaded = None;
        Ok(())
    }

    /// OPTIMIZE: every row into fresh full blocks at the table's level. `stop`
    /// is asked every 16 blocks (KILL): then the table stays as it was.
    /// Compressed blocks in the file (OPTIMIZE's progress counts them).
    pub fn block_count(&self) -> usize {
        self.shared.state.lock().blocks.len()
    }

    pub fn optimize(&mut self, stop: &mut StopCheck) -> Result<()> {
        self.flush()?;
        let shared = self.shared.clone();
        // Writers wait for the whole rewrite, so no row arrives unseen.
        let mut st = shared.state.lock();
        let snap = Snapshot { arz: st.arz.clone(), blocks: st.blocks.clone(), pending: st.pending.clone() };
        let opts = &shared.opts;
        let tmp = with_ext(&opts.table_path, REWRITE_EXT);
        let hdr = arz_header(st.auto_inc_base, st.epoch.wrapping_add(1), st.family);
        let out = write_new(&tmp, &hdr)?;
        let mut w = BlockWriter { file: out, len: hdr.len() as u64, blocks: Vec::new(), set: RowSet::default(), next_row: 0, level: opts.level };
        let result = (|| -> Result<()> {
            for i in 0..snap.blocks.len() {
                stop.step()?;
                self.load_block(&snap, i)?;
                for r in 0..self.rows.len() {
                    w.push(self.rows.keys[r], self.rows.row(r), self.rows.row_segs(r), &tmp)?;
                }
            }
            let p = &snap.pending.set;
            for r in 0..p.len() {
                w.push(p.keys[r], p.row(r), p.row_segs(r), &tmp)?;
            }
            w.finish(&tmp)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        install_rewrite(opts, &mut st, w.file, w.len, w.blocks)?;
        self.loaded = None;
        Ok(())
    }

    pub fn stats(&self) -> (u64, u64) {
        let st = self.shared.state.lock();
        (st.rows, st.arz_len + st.arp_len)
    }

    // ---- CHECK / REPAIR ----

    /// Starts CHECK (or REPAIR): walks the `.arz` file itself (not the loaded block
    /// list), verifying every header and payload checksum, then the pending rows.
    pub fn check_start(&mut self) -> Result<()> {
        self.flush()?;
        let snap = self.snapshot();
        let st = self.shared.state.lock();
        self.check = Some(CheckState {
            report: CheckReport::default(),
            good_blocks: Vec::new(),
            bad_ranges: 0,
            bad: Vec::new(),
            offset: FILE_HEADER_LEN as u64,
            len: st.arz_len,
            file: st.arz.clone(),
            block_rows_left: 0,
            pending_done: false,
            cut_short: st.cut_short.clone(),
        });
        drop(st);
        self.snap = Some(snap);
        self.cur = Cursor::default();
        self.loaded = None;
        Ok(())
    }

    pub fn check_next(&mut self) -> Result<CheckStep> {
        let name = self.name();
        let Some(cs) = self.check.as_mut() else {
            return Err(Error::Internal("check_next without check_start".into()));
        };
        if cs.block_rows_left > 0 {
            let i = self.rows.len() - cs.block_rows_left;
            cs.block_rows_left -= 1;
            cs.report.rows += 1;
            self.cur_in_pending = false;
            self.cur_idx = i;
            return Ok(CheckStep::Row);
        }
        if cs.offset < cs.len {
            let mut bh = [0u8; BLOCK_HEADER_LEN];
            let at = cs.offset;
            let n = (cs.len - at).min(BLOCK_HEADER_LEN as u64) as usize;
            cs.file.read_exact_at(&mut bh[..n], at).ctx(|| format!("cannot read '{name}'"))?;
            let meta = BlockMeta::decode(&bh[..n], at).filter(|m| m.end() <= cs.len);
            let Some(meta) = meta else {
                let next = find_next_block(&cs.file, at + 1, cs.len)?.unwrap_or(cs.len);
                cs.offset = next;
                cs.bad_ranges += 1;
                cs.report.damaged += 1;
                crate::metrics::ARCHIVE_BLOCKS_DAMAGED.inc();
                let text = format!(
                    "{name}: no valid block header at byte {at} ({} bytes up to {} unreadable)",
                    next - at,
                    if next == cs.len { "the end".to_string() } else { format!("the next block at byte {next}") }
                );
                cs.bad.push(crate::rejected::Piece { offset: at, len: next - at, line: None, rows: None, why: text.clone() });
                return Ok(CheckStep::Damaged(text));
            };
            cs.offset = meta.end();
            let idx = cs.good_blocks.len() + cs.bad_ranges as usize;
            self.payload.resize(meta.payload_len as usize, 0);
            cs.file
                .read_exact_at(&mut self.payload, at + BLOCK_HEADER_LEN as u64)
                .ctx(|| format!("cannot read '{name}'"))?;
            let what = || format!("{name} block {idx} at byte {at}");
            match self.rows.from_payload(&meta, &self.payload, &what) {
                Ok(()) => {
                    cs.good_blocks.push(meta);
                    cs.block_rows_left = self.rows.len();
                    self.loaded = None;
                    return self.check_next();
                }
                Err(e) => {
                    cs.bad_ranges += 1;
                    cs.report.damaged += 1;
                    crate::metrics::ARCHIVE_BLOCKS_DAMAGED.inc();
                    cs.report.lost_rows += meta.rows as u64;
                    self.loaded = None;
                    let text = format!("{e} ({} rows)", meta.rows);
                    cs.bad.push(crate::rejected::Piece {
                        offset: at,
                        len: meta.end() - at,
                        line: None,
                        rows: Some(meta.rows as u64),
                        why: text.clone(),
                    });
                    return Ok(CheckStep::Damaged(text));
                }
            }
        }
        // pending rows were verified by their checksums when the table was opened
        let Some(snap) = self.snap.clone() else { return Ok(CheckStep::End) };
        if !cs.pending_done {
            if self.cur.row < snap.pending.set.len() {
                self.cur_in_pending = true;
                self.cur_idx = self.cur.row;
                self.cur.row += 1;
                cs.report.rows += 1;
                return Ok(CheckStep::Row);
            }
            cs.pending_done = true;
        }
        if let Some(text) = cs.cut_short.take() {
            cs.report.damaged += 1;
            return Ok(CheckStep::Damaged(text));
        }
        Ok(CheckStep::End)
    }

    /// Ends CHECK; with `repair`, saves the damaged bytes beside the table
    /// ([`crate::rejected`]; if that fails, nothing is changed), then rewrites `.arz`
    /// from the intact blocks only.
    pub fn check_finish(&mut self, repair: bool) -> Result<CheckReport> {
        let Some(mut cs) = self.check.take() else {
            return Err(Error::Internal("check_finish without check_start".into()));
        };
        self.snap = None;
        self.loaded = None;
        if !repair || cs.report.damaged == 0 {
            return Ok(cs.report);
        }
        let shared = self.shared.clone();
        let mut st = shared.state.lock();
        let opts = &shared.opts;
        if cs.bad.is_empty() {
            // only the lost end of the file (`cut_short`): no bytes left to save
            self.rewrite_intact(&cs, &mut st)?;
            return Ok(cs.report);
        }
        let saved = crate::rejected::save(&arz_path(&opts.table_path), &cs.file, crate::rejected::Kind::Archive, &cs.bad)?;
        self.rewrite_intact(&cs, &mut st).map_err(|e| crate::csv::table::saved_but(e, &saved))?;
        cs.report.saved = Some(saved);
        Ok(cs.report)
    }

    /// REPAIR's new `.arz`: the intact blocks `cs` found (and any sealed since),
    /// then the pending rows.
    fn rewrite_intact(&self, cs: &CheckState, st: &mut State) -> Result<()> {
        let shared = self.shared.clone();
        let opts = &shared.opts;
        let tmp = with_ext(&opts.table_path, REWRITE_EXT);
        let hdr = arz_header(st.auto_inc_base, st.epoch.wrapping_add(1), st.family);
        let out = write_new(&tmp, &hdr)?;
        let mut len = hdr.len() as u64;
        let mut blocks = Vec::new();
        let mut buf = Vec::new();
        // the intact blocks the check walked, and any sealed since it started
        let later: Vec<BlockMeta> = st.blocks.iter().filter(|b| b.offset >= cs.len).copied().collect();
        for b in cs.good_blocks.iter().chain(later.iter()) {
            buf.resize(BLOCK_HEADER_LEN + b.payload_len as usize, 0);
            st.arz.read_exact_at(&mut buf, b.offset).ctx(|| format!("cannot read '{}'", self.name()))?;
            out.write_all_at(&buf, len).ctx(|| format!("cannot write '{}'", display(&tmp)))?;
            blocks.push(BlockMeta { offset: len, ..*b });
            len += buf.len() as u64;
        }
        // the pending rows go into the new .arz too (see install_rewrite)
        if !st.pending.set.is_empty() {
            let mut bytes = Vec::new();
            let mut meta = st.pending.set.to_block(st.pending.first_row, opts.level, FORMAT_VERSION, &mut bytes)?;
            meta.offset = len;
            out.write_all_at(&bytes, len).ctx(|| format!("cannot write '{}'", display(&tmp)))?;
            len += bytes.len() as u64;
            blocks.push(meta);
        }
        out.sync_all().ctx(|| format!("cannot sync '{}'", display(&tmp)))?;
        install_rewrite(opts, st, out, len, blocks)
    }
}

impl Drop for ArchiveTable {
    fn drop(&mut self) {
        // Best effort: a handler closed with work not written (the server always
        // ends statements first, so this is only a safety net). Runs when C++
        // deletes the handle, so a panic must not unwind out of it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.flush()));
    }
}

/// Compresses the pending rows into a block at the end of `.arz`, fsyncs it, then
/// empties `.arp`.
fn seal_block(opts: &ArchiveOptions, st: &mut State) -> Result<()> {
    let ap = arz_path(&opts.table_path);
    let mut bytes = Vec::new();
    let mut meta = st.pending.set.to_block(st.pending.first_row, opts.level, st.version, &mut bytes)?;
    meta.offset = st.arz_len;
    let written = st
        .arz
        .write_all_at(&bytes, st.arz_len)
        .ctx(|| format!("cannot append to '{}'", display(&ap)))
        .and_then(|_| st.arz.sync_data().ctx(|| format!("cannot sync '{}'", display(&ap))));
    if let Err(e) = written {
        // nothing of the block may stay behind the last good one
        let _ = st.arz.set_len(st.arz_len);
        return Err(e);
    }
    st.arz_len += bytes.len() as u64;
    Arc::make_mut(&mut st.blocks).push(meta);
    // The rows are in the block now: they leave the pending set whatever follows
    // (else a scan would return them twice, and the next seal write them again).
    st.pending = Arc::new(Pending { first_row: st.next_row, set: RowSet::default() });
    // Emptying `.arp` may fail; its records then stay, behind new ones, and the next
    // open drops them (the block covers their row ids).
    let pp = arp_path(&opts.table_path);
    // the header says how much of `.arz` is sealed now (a crash may lose this
    // write: the older length it leaves is below the file's, never above)
    st.arp
        .write_all_at(&empty_arp(st.epoch, st.version, st.arz_len, st.family), 0)
        .ctx(|| format!("cannot write '{}'", display(&pp)))?;
    st.arp.set_len(FILE_HEADER_LEN as u64).ctx(|| format!("cannot truncate '{}'", display(&pp)))?;
    st.arp_len = FILE_HEADER_LEN as u64;
    Ok(())
}

/// Writes rows into blocks of a new file (OPTIMIZE).
struct BlockWriter {
    file: File,
    len: u64,
    blocks: Vec<BlockMeta>,
    set: RowSet,
    next_row: u64,
    level: i32,
}

impl BlockWriter {
    fn push(&mut self, key: u64, image: &[u8], segs: &[u32], path: &Path) -> Result<()> {
        self.set.push(key, image, segs);
        if self.set.raw_len() >= OPTIMIZE_BLOCK_RAW {
            self.seal(path)?;
        }
        Ok(())
    }
    fn seal(&mut self, path: &Path) -> Result<()> {
        if self.set.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::new();
        let mut meta = self.set.to_block(self.next_row, self.level, FORMAT_VERSION, &mut bytes)?;
        meta.offset = self.len;
        self.file.write_all_at(&bytes, self.len).ctx(|| format!("cannot write '{}'", display(path)))?;
        self.len += bytes.len() as u64;
        self.next_row += self.set.len() as u64;
        self.blocks.push(meta);
        self.set.clear();
        Ok(())
    }
    fn finish(&mut self, path: &Path) -> Result<()> {
        self.seal(path)?;
        self.file.sync_all().ctx(|| format!("cannot sync '{}'", display(path)))
    }
}

/// Puts a rewritten `.arz` (already synced, at `<table>.arz-rewrite`, its header
/// carrying epoch `st.epoch + 1`) in place, then empties `.arp` under the new epoch.
/// Every row is in the new `.arz`: a crash between the two renames leaves a `.arp`
/// of the old epoch, which the next open recognises as stale and ignores.
fn install_rewrite(opts: &ArchiveOptions, st: &mut State, arz: File, arz_len: u64, blocks: Vec<BlockMeta>) -> Result<()> {
    let (ap, pp) = (arz_path(&opts.table_path), arp_path(&opts.table_path));
    let tmp = with_ext(&opts.table_path, REWRITE_EXT);
    let epoch = st.epoch.wrapping_add(1);
    fs::rename(&tmp, &ap).ctx(|| format!("cannot rename '{}' to '{}'", display(&tmp), display(&ap)))?;
    sync_dir(&ap)?;
    st.arp = replace_file(&pp, &empty_arp(epoch, FORMAT_VERSION, arz_len, st.family))?;
    st.arp_len = FILE_HEADER_LEN as u64;
    let next = blocks.last().map_or(0, |b| b.first_row + b.rows as u64);
    st.rows = blocks.iter().map(|b| b.rows as u64).sum::<u64>();
    st.next_row = next;
    st.arz = Arc::new(arz);
    st.arz_len = arz_len;
    st.blocks = Arc::new(blocks);
    st.pending = Arc::new(Pending { first_row: next, set: RowSet::default() });
    st.epoch = epoch;
    st.version = FORMAT_VERSION;
    st.damaged = None;
    st.cut_short = None;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> crate::testutil::TempDir {
        crate::testutil::dir(&format!("arch-{name}"), 0)
    }

    /// A failing read of the `.arz` header is an I/O error naming the file, not
    /// "file header missing" (found by ci/faults-sweep: EIO on the header read).
    #[test]
    fn header_read_error_is_io_not_damage() {
        let d = tmpdir("hdr-eio");
        let p = d.join("t.arz");
        fs::write(&p, b"").unwrap();
        let short = File::open(&p).unwrap();
        let e = load_blocks(&short, &p, None, &mut Vec::new()).err().unwrap();
        assert!(matches!(e, Error::Corrupt(ref m) if m.contains("file header missing")), "{e}");
        // write-only: every read fails with EBADF, as a failing disk fails with EIO
        let wo = OpenOptions::new().write(true).open(&p).unwrap();
        let e = load_blocks(&wo, &p, None, &mut Vec::new()).err().unwrap();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        assert!(e.to_string().contains("cannot read"), "{e}");
    }

    fn opts(d: &Path) -> ArchiveOptions {
        ArchiveOptions { table_path: d.join("t"), level: 3, family: FAMILY_MARIADB }
    }

    fn row(i: u64) -> Vec<u8> {
        format!("row number {i} with some repeated text text text").into_bytes()
    }

    /// Two segments: the first 4 bytes, and the rest (as a row with two columns).
    fn segs_of(r: &[u8]) -> Vec<u32> {
        vec![4.min(r.len() as u32), r.len() as u32]
    }

    fn all(t: &mut ArchiveTable) -> Vec<Vec<u8>> {
        t.scan_start().unwrap();
        let mut v = vec![];
        while t.scan_next().unwrap() {
            v.push(t.record().to_vec());
        }
        t.scan_end().unwrap();
        v
    }

    fn fill(t: &mut ArchiveTable, from: u64, to: u64) {
        t.set_bulk(true).unwrap();
        for i in from..to {
            let r = row(i);
            assert!(t.insert(&r, &segs_of(&r), i, true, true).unwrap());
        }
        t.set_bulk(false).unwrap();
    }

    #[test]
    fn a_table_of_the_other_server_family_is_refused_before_anything_is_written() {
        let d = tmpdir("family");
        let o = opts(&d);
        create(&o.table_path, 0, FAMILY_MYSQL).unwrap();
        let before = (fs::read(arz_path(&o.table_path)).unwrap(), fs::read(arp_path(&o.table_path)).unwrap());
        // (the .arp missing, a rewrite left over and a torn tail too: the refusal
        // comes before the open creates, removes or cuts anything)
        fs::remove_file(arp_path(&o.table_path)).unwrap();
        let rewrite = with_ext(&o.table_path, REWRITE_EXT);
        fs::write(&rewrite, b"left over").unwrap();
        let mut torn = before.0.clone();
        torn.extend_from_slice(b"BLK1 and no more");
        fs::write(arz_path(&o.table_path), &torn).unwrap();
        let e = ArchiveTable::open(&o).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("written by ha_rust in MySQL, and this server is MariaDB"), "{e}");
        assert!(!arp_path(&o.table_path).exists(), "nothing written");
        assert!(rewrite.exists(), "nothing removed");
        assert_eq!(fs::read(arz_path(&o.table_path)).unwrap(), torn, "nothing cut");
        fs::remove_file(&rewrite).unwrap();
        fs::write(arz_path(&o.table_path), &before.0).unwrap();
        fs::write(arp_path(&o.table_path), &before.1).unwrap();
        // its own family reads it, and a rewrite keeps the family
        let mine = ArchiveOptions { family: FAMILY_MYSQL, ..opts(&d) };
        let mut t = ArchiveTable::open(&mine).unwrap();
        assert!(t.insert(&row(1), &segs_of(&row(1)), 1, true, true).unwrap());
        t.optimize(&mut StopCheck::new(0)).unwrap();
        drop(t);
        let hdr = fs::read(arz_path(&o.table_path)).unwrap();
        assert_eq!(FileHeader::decode(&hdr, ARZ_MAGIC, "t").unwrap().family, FAMILY_MYSQL);
        assert_ne!(hdr, before.0, "rewritten (a new epoch)");
        // a table of a version before the family (every one was MariaDB's) is
        // MariaDB's: MySQL refuses it
        let d = tmpdir("family-old");
        let o = opts(&d);
        for (p, magic) in [(arz_path(&o.table_path), ARZ_MAGIC), (arp_path(&o.table_path), ARP_MAGIC)] {
            let h = FileHeader { version: FAMILY_SINCE - 1, auto_inc_base: 0, flags: 0, family: 0 }.encode(magic);
            fs::write(p, h).unwrap();
        }
        assert!(ArchiveTable::open(&ArchiveOptions { family: FAMILY_MYSQL, ..opts(&d) }).is_err());
        let mut t = ArchiveTable::open(&o).unwrap();
        assert!(t.insert(&row(1), &segs_of(&row(1)), 1, true, true).unwrap());
    }

    #[test]
    fn insert_scan_lookup_across_blocks_and_pending() {
        let d = tmpdir("basic");
        let o = opts(&d);
        create(&o.table_path, 0, FAMILY_MARIADB).unwrap();
        let mut t = ArchiveTable::open(&o).unwrap();
        fill(&mut t, 1, 199_990);
        // single-row inserts stay pending
        for i in 199_990..200_001 {
            assert!(t.insert(&row(i), &segs_of(&row(i)), i, true, true).unwrap());
        }
        let rows = all(&mut t);
        assert_eq!(rows.len(), 200_000);
        assert_eq!(rows[12344], row(12345));
        assert!(t.shared.state.lock().blocks.len() >= 2, "enough rows for blocks");
        assert!(!t.shared.state.lock().pending.set.is_empty());
        // unique keys must grow
        assert!(!t.insert(&row(5), &[], 5, true, true).unwrap());
        for k in [1u64, 77_777, 200_000] {
            t.lookup(k).unwrap();
            assert!(t.scan_next().unwrap());
            assert_eq!(t.record(), &row(k)[..]);
            let pos = t.position();
            assert!(!t.scan_next().unwrap());
            t.read_at(pos).unwrap();
            assert_eq!(t.record(), &row(k)[..]);
        }
        t.lookup(999_999).unwrap();
        assert!(!t.scan_next().unwrap());
        // reopen: everything is read back from the files
        drop(t);
        let mut t = ArchiveTable::open(&o).unwrap();
        assert_eq!(all(&mut t).len(), 200_000);
        assert_eq!(t.max_key().0, Some(200_000));
        t.optimize(&mut StopCheck::new(0)).unwrap();
        assert_eq!(all(&mut t), (1..200_001).map(row).collect::<Vec<_>>());
        assert!(t.shared.state.lock().pending.set.is_empty());
        t.truncate().unwrap();
        assert!(all(&mut t).is_empty());
        assert_eq!(t.max_key().0, None);
    }

    #[test]
    fn torn_tails_are_cut_and_reported() {
        // A crash while a block is appended: the block is cut short, and .arp (only
        // emptied after the block is synced) still holds its rows; the crash also
        // tore the last .arp record.
        let d = tmpdir("torn");
        let o = opts(&d);
        create(&o.table_path, 0, FAMILY_MARIADB).unwrap();
        let mut t = ArchiveTable::open(&o).unwrap();
        for i in 0..1000 {
            assert!(t.insert(&row(i), &segs_of(&row(i)), i, true, true).unwrap());
        }
        let pp = arp_path(&o.table_path);
        let saved = fs::read(&pp).unwrap();
        {
            let mut st = t.shared.state.lock();
            seal_block(&o, &mut st).unwrap();
        }
        drop(t);
        REGISTRY.lock().clear();
        let ap = arz_path(&o.table_path);
        let len = fs::metadata(&ap).unwrap().len();
        OpenOptions::new().write(true).open(&ap).unwrap().set_len(len - 100).unwrap();
        fs::write(&pp, &saved[..saved.len() - 3]).unwrap();
        let mut t = ArchiveTable::open(&o).unwrap();
        assert_eq!(t.warnings.len(), 2, "{:?}", t.warnings);
        assert!(t.warnings[0].contains("torn block"), "{:?}", t.warnings);
        let rows = all(&mut t);
        assert_eq!(rows, (0..999).map(row).collect::<Vec<_>>());
        // the table takes new rows after the cut
        fill(&mut t, 5000, 5010);
        assert_eq!(all(&mut t).len(), 1009);
    }

    /// `.arz` cut short while the server was down, after its last block was sealed
    /// (`.arp` emptied): before format 3 the open took the cut for a torn append,
    /// cut the file further and served the remaining rows with only a warning
    /// (CHECK said OK). Now `.arp`'s header says how much was sealed, so the cut
    /// is damage: reads and writes refused, CHECK reports it, REPAIR keeps every
    /// intact block and the table works again. Both a cut between two blocks and
    /// one inside a block.
    #[test]
    fn an_arz_cut_short_after_sealing_is_damage_not_a_torn_tail() {
        for inside in [false, true] {
            let d = tmpdir(if inside { "cut-in" } else { "cut-at" });
            let o = opts(&d);
            create(&o.table_path, 0, FAMILY_MARIADB).unwrap();
            let mut t = ArchiveTable::open(&o).unwrap();
            fill(&mut t, 0, 300_000);
            let blocks: Vec<BlockMeta> = t.shared.state.lock().blocks.to_vec();
            assert!(blocks.len() >= 3);
            let pending = t.shared.state.lock().pending.set.len();
            drop(t);
            REGISTRY.lock().clear();
            let ap = arz_path(&o.table_path);
            let last = blocks[blocks.len() - 1];
            let cut_at = if inside { last.offset + 100 } else { last.offset };
            OpenOptions::new().write(true).open(&ap).unwrap().set_len(cut_at).unwrap();
            let mut t = ArchiveTable::open(&o).unwrap();
            assert!(t.warnings.iter().any(|w| w.contains("its end was cut off")), "{:?}", t.warnings);
            assert_eq!(fs::metadata(&ap).unwrap().len(), cut_at, "nothing is cut at open");
            t.scan_start().unwrap_err();
            let kept: u64 = blocks[..blocks.len() - 1].iter().map(|b| b.rows as u64).sum::<u64>() + pending as u64;
            t.check_start().unwrap();
            let (mut damaged, mut rows) = (vec![], 0u64);
            loop {
                match t.check_next().unwrap() {
                    CheckStep::End => break,
                    CheckStep::Row => rows += 1,
                    CheckStep::Damaged(m) => damaged.push(m),
                }
            }
            assert_eq!(rows, kept);
            assert!(damaged.iter().any(|m| m.contains("its end was cut off")), "{damaged:?}");
            assert_eq!(damaged.len(), if inside { 2 } else { 1 }, "{damaged:?}");
            let rep = t.check_finish(true).unwrap();
            assert_eq!(rep.saved.is_some(), inside);
            assert_eq!(all(&mut t).len() as u64, kept);
            fill(&mut t, 400_000, 400_010);
            assert_eq!(all(&mut t).len() as u64, kept + 10);
            drop(t);
            REGISTRY.lock().clear();
            let mut t = ArchiveTable::open(&o).unwrap();
            assert!(t.warnings.is_empty(), "{:?}", t.warnings);
            assert_eq!(all(&mut t).len() as u64, kept + 10);
        }
    }

    #[test]
    fn a_damaged_pending_record_is_saved_before_it_is_cut() {
        // bits flipped in the middle of .arp (damage on disk, not a crash): the rows
        // from the damaged record on cannot be read; they are cut, but their bytes
        // are saved first, and the note says where
        let d = tmpdir("arp-damage");
        let o = opts(&d);
        create(&o.table_path, 0, FAMILY_MARIADB).unwrap();
        let mut t = ArchiveTable::open(&o).unwrap();
        for i in 0..10 {
            assert!(t.insert(&row(i), &segs_of(&row(i)), i, true, true).unwrap());
        }
        t.flush().unwrap();
        drop(t);
        REGISTRY.lock().clear();
        let pp = arp_path(&o.table_path);
        let mut bytes = fs::read(&pp).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        fs::write(&pp, &bytes).unwrap();
        let mut t = ArchiveTable::open(&o).unwrap();
        let rows = all(&mut t);
        assert!(rows.len() < 10 && rows == (0..rows.len() as u64).map(row).collect::<Vec<_>>(), "{}", rows.len());
        assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
        assert!(t.warnings[0].contains("the bytes were saved first") && t.warnings[0].contains(".arp.rejected-"), "{:?}", t.warnings);
        let rej: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(".arp.rejected-") && p.to_string_lossy().ends_with(".bin"))
            .collect();
        assert_eq!(rej.len(), 1);
        // the saved bytes are exactly the cut tail of the damaged file
        let saved = fs::read(&rej[0]).unwrap();
        assert!(bytes.ends_with(&saved) && saved.len() > bytes.len() - mid, "{}", saved.len());
        // a tail of zeros only (space an OS crash left unwritten) is cut without a file
        drop(t);
        REGISTRY.lock().clear();
        let mut z = fs::read(&pp).unwrap();
        z.extend_from_slice(&[0u8; 64]);
        fs::write(&pp, &z).unwrap();
        let t = ArchiveTable::open(&o).unwrap();
        assert!(t.warnings[0].contains("bytes of zeros"), "{:?}", t.warnings);
        assert_eq!(fs::read_dir(&d).unwrap().filter(|e| e.as_ref().unwrap().path().to_string_lossy().contains(".rejected-")).count(), 2);
    }

    #[test]
    fn rows_in_both_files_after_a_crash_are_counted_once() {
        let d = tmpdir("dup");
        let o = opts(&d);
        create(&o.table_path, 0, FAMILY_MARIADB).unwrap();
        let mut t = ArchiveTable::open(&o).unwrap();
        fill(&mut t, 0, 100);
        let pp = arp_path(&o.table_path);
        let saved = fs::read(&pp).unwrap();
        // seal those rows into a block, as a full .arp would be
        {
            let mut st = t.shared.state.lock();
            seal_block(&o, &mut st).unwrap();
        }
        drop(t);
        REGISTRY.lock().clear();
        // crash before .arp was emptied: its old content is back
        fs::write(&pp, &saved).unwrap();
        let mut t = ArchiveTable::open(&o).unwrap();
        assert_eq!(all(&mut t).len(), 100);
    }

    #[test]
    fn a_corrupt_block_is_reported_and_repair_keeps_the_others() {
        let d = tmpdir("corrupt");
        let o = opts(&d);
        create(&o.table_path, 0, FAMILY_MARIADB).unwrap();
        let mut t = ArchiveTable::open(&o).unwrap();
        fill(&mut t, 0, 300_000);
        let (b0, nblocks) = {
            let st = t.shared.state.lock();
            (st.blocks[0], st.blocks.len())
        };
        assert!(nblocks >= 3);
        drop(t);
        REGISTRY.lock().clear();
        // garbage in the middle of the first block's payload
        let ap = arz_path(&o.table_path);
        let f = OpenOptions::new().write(true).open(&ap).unwrap();
        f.write_all_at(b"garbage!", b0.offset + 100).unwrap();
        let mut t = ArchiveTable::open(&o).unwrap();
        t.scan_start().unwrap();
        let e = t.scan_next().unwrap_err().to_string();
        assert!(e.contains("block 0") && e.contains("checksum"), "{e}");
        t.check_start().unwrap();
        let mut damaged = vec![];
        let mut rows = 0;
        loop {
            match t.check_next().unwrap() {
                CheckStep::End => break,
                CheckStep::Row => rows += 1,
                CheckStep::Damaged(m) => damaged.push(m),
            }
        }
        assert_eq!(damaged.len(), 1, "{damaged:?}");
        let before = fs::read(&ap).unwrap();
        let rep = t.check_finish(true).unwrap();
        assert_eq!(rep.lost_rows, b0.rows as u64);
        // the damaged block is saved beside the table, byte for byte, with its offset
        let saved = rep.saved.expect("saved");
        assert_eq!(saved.data.parent(), ap.parent());
        assert!(saved.data.to_string_lossy().ends_with(".bin"), "{saved:?}");
        assert_eq!(saved.records, 1);
        assert_eq!(fs::read(&saved.data).unwrap(), &before[b0.offset as usize..b0.end() as usize]);
        let index = fs::read_to_string(&saved.index).unwrap();
        let want = format!("\n-\t{}\t{}\t{}\t", b0.offset, b0.end() - b0.offset, b0.rows);
        assert!(index.contains(&want) && index.contains("checksum"), "{index}");
        assert_eq!(all(&mut t).len(), rows);
        assert_eq!(rows as u64, 300_000 - b0.rows as u64);
    }

    #[test]
    fn repair_saves_a_run_with_no_valid_block_header_and_every_byte_is_accounted_for() {
        let d = tmpdir("badheader");
        let o = opts(&d);
        create(&o.table_path, 0, FAMILY_MARIADB).unwrap();
        let mut t = ArchiveTable::open(&o).unwrap();
        fill(&mut t, 0, 300_000);
        let blocks = t.shared.state.lock().blocks.clone();
        assert!(blocks.len() >= 3);
        let (b1, b2) = (blocks[1], blocks[2]);
        drop(t);
        REGISTRY.lock().clear();
        // the second block's header is garbage: nothing tells where it ends
        let ap = arz_path(&o.table_path);
        let f = OpenOptions::new().write(true).open(&ap).unwrap();
        f.write_all_at(b"XXXX", b1.offset).unwrap();
        drop(f);
        let before = fs::read(&ap).unwrap();
        let mut t = ArchiveTable::open(&o).unwrap();
        let pending = !t.shared.state.lock().pending.set.is_empty();
        t.check_start().unwrap();
        while !matches!(t.check_next().unwrap(), CheckStep::End) {}
        let rep = t.check_finish(true).unwrap();
        assert_eq!(rep.damaged, 1);
        let saved = rep.saved.expect("saved");
        // the whole run up to the next valid block, raw
        assert_eq!(fs::read(&saved.data).unwrap(), &before[b1.offset as usize..b2.offset as usize]);
        let index = fs::read_to_string(&saved.index).unwrap();
        assert!(index.contains(&format!("\n-\t{}\t{}\t-\t", b1.offset, b2.offset - b1.offset)), "{index}");
        // the new file is the old one without that run (after the renewed header)
        let after = fs::read(&ap).unwrap();
        let h = FILE_HEADER_LEN;
        let mut kept = before[h..b1.offset as usize].to_vec();
        kept.extend_from_slice(&before[b2.offset as usize..]);
        // (then the pending rows, if any, sealed into one more block)
        assert_eq!(&after[h..h + kept.len()], &kept[..]);
        assert_eq!(after.len() > h + kept.len(), pending);
        assert_eq!(all(&mut t).len() as u64, 300_000 - b1.rows as u64);
    }

    #[test]
    fn a_stale_pending_file_is_ignored_and_a_synced_bad_block_is_damage_not_a_tail() {
        let d = tmpdir("epoch");
        let o = opts(&d);
        create(&o.table_path, 0, FAMILY_MARIADB).unwrap();
        let mut t = ArchiveTable::open(&o).unwrap();
        for i in 0..100 {
            assert!(t.insert(&row(i), &segs_of(&row(i)), i, true, true).unwrap());
        }
        let pp = arp_path(&o.table_path);
        let old_arp = fs::read(&pp).unwrap();
        t.optimize(&mut StopCheck::new(0)).unwrap();
        drop(t);
        REGISTRY.lock().clear();
        // a crash after OPTIMIZE renamed .arz and before it emptied .arp
        fs::write(&pp, &old_arp).unwrap();
        let mut t = ArchiveTable::open(&o).unwrap();
        assert!(t.warnings.iter().any(|w| w.contains("stale")), "{:?}", t.warnings);
        assert_eq!(all(&mut t).len(), 100, "rows counted once");
        let b0 = t.shared.state.lock().blocks[0];
        drop(t);
        REGISTRY.lock().clear();
        // one flipped bit in the only block, written and synced long ago
        let ap = arz_path(&o.table_path);
        let f = OpenOptions::new().read(true).write(true).open(&ap).unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, b0.offset + BLOCK_HEADER_LEN as u64 + 5).unwrap();
        f.write_all_at(&[b[0] ^ 1], b0.offset + BLOCK_HEADER_LEN as u64 + 5).unwrap();
        let len = fs::metadata(&ap).unwrap().len();
        let mut t = ArchiveTable::open(&o).unwrap();
        assert_eq!(fs::metadata(&ap).unwrap().len(), len, "not cut off");
        assert!(t.scan_start().is_err(), "scans refuse a damaged table");
        t.check_start().unwrap();
        let mut damaged = 0;
        loop {
            match t.check_next().unwrap() {
                CheckStep::End => break,
                CheckStep::Damaged(_) => damaged += 1,
                CheckStep::Row => {}
            }
        }
        assert_eq!(damaged, 1);
        t.check_finish(true).unwrap();
        assert!(all(&mut t).is_empty());
    }

    /// A table of format version 1 (before codec 3) reads, keeps getting codec 2
    /// blocks (so an older build can still read it), and OPTIMIZE makes it version 2.
    #[test]
    fn a_version_1_table_reads_and_optimize_upgrades_it() {
        let d = tmpdir("v1");
        let o = opts(&d);
        create(&o.table_path, 0, FAMILY_MARIADB).unwrap();
        let v1 = |magic, path: &Path| {
            let h = FileHeader { version: 1, auto_inc_base: 0, flags: 0, family: 0 }.encode(magic);
            OpenOptions::new().write(true).open(path).unwrap().write_all_at(&h, 0).unwrap();
        };
        v1(ARZ_MAGIC, &arz_path(&o.table_path));
        v1(ARP_MAGIC, &arp_path(&o.table_path));
        let mut t = ArchiveTable::open(&o).unwrap();
        fill(&mut t, 0, 50_000);
        let codecs = |t: &ArchiveTable| t.shared.state.lock().blocks.iter().map(|b| b.codec).collect::<Vec<_>>();
        let c = codecs(&t);
        assert!(!c.is_empty() && c.iter().all(|&c| c == CODEC_ZSTD_COLUMNS), "{c:?}");
        drop(t);
        REGISTRY.lock().clear();
        let mut t = ArchiveTable::open(&o).unwrap();
        assert_eq!(all(&mut t), (0..50_000).map(row).collect::<Vec<_>>());
        t.optimize(&mut StopCheck::new(0)).unwrap();
        let c = codecs(&t);
        assert!(!c.is_empty() && c.iter().all(|&c| c == CODEC_ZSTD_STREAMS), "{c:?}");
        fill(&mut t, 50_000, 100_000);
        assert!(codecs(&t).iter().all(|&c| c == CODEC_ZSTD_STREAMS));
        drop(t);
        REGISTRY.lock().clear();
        let hdr = fs::read(arz_path(&o.table_path)).unwrap();
        assert_eq!(FileHeader::decode(&hdr, ARZ_MAGIC, "t").unwrap().version, FORMAT_VERSION);
        let hdr = fs::read(arp_path(&o.table_path)).unwrap();
        assert_eq!(FileHeader::decode(&hdr, ARP_MAGIC, "t").unwrap().version, FORMAT_VERSION);
        let mut t = ArchiveTable::open(&o).unwrap();
        assert_eq!(all(&mut t), (0..100_000).map(row).collect::<Vec<_>>());
    }

    #[test]
    fn concurrent_append_and_scan() {
        let d = tmpdir("conc");
        let o = opts(&d);
        create(&o.table_path, 0, FAMILY_MARIADB).unwrap();
        let w = {
            let o = o.clone();
            std::thread::spawn(move || {
                let mut t = ArchiveTable::open(&o).unwrap();
                for chunk in 0..40u64 {
                    fill(&mut t, chunk * 5000, (chunk + 1) * 5000);
                }
            })
        };
        let mut t = ArchiveTable::open(&o).unwrap();
        let mut last = 0;
        while !w.is_finished() {
            let rows = all(&mut t);
            assert!(rows.len() >= last);
            for (i, r) in rows.iter().enumerate() {
                assert_eq!(r, &row(i as u64));
            }
            last = rows.len();
        }
        w.join().unwrap();
        assert_eq!(all(&mut t).len(), 200_000);
    }
}
