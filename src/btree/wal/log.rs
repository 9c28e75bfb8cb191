//! The redo log: write-ahead, LSN-ordered, group commit (spec: `docs/btree-format.md`).
//!
//! The log is one file, `redo.log`, in the engine folder. An LSN is a position in
//! the endless stream of log bytes; the file holds the stream from `base_lsn` on
//! (its header says which). Records:
//!
//! ```text
//! u32 length of body, u32 CRC-32 of body, body = u8 type, u64 trx id, payload
//! ```
//! A record whose length or checksum does not check out ends the log (a torn tail
//! after a crash): recovery stops there.
//!
//! Group commit: appends go to a buffer under the log mutex; [`RedoLog::flush_to`]
//! writes and fsyncs everything appended so far, and every committer whose LSN the
//! fsync covers returns without one of its own.
//!
//! Two locks: `inner` (the buffer, held only to append or to hand bytes over)
//! and `writer` (the file, held across a write, taken before `inner`). A write
//! copies what is appended out of the buffer under both, then writes it
//! holding only `writer`: appenders (every change of every transaction) never
//! wait for the disk.
//!
//! Writes bypass the page cache (`O_DIRECT`, as InnoDB writes its log) where the
//! file system allows it: whole 4 KiB blocks from aligned memory, so the last,
//! partly filled block is written again, with what follows it, by the next write;
//! the rest of that block is zeros, which end the log as a torn tail does. Where
//! `O_DIRECT` is refused (tmpfs, say) the log is written through the page cache.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::error::{Error, IoContext, Result};
use crate::metrics;

pub const LOG_MAGIC: &[u8; 8] = b"RUSTRDO\0";
/// 2: MTR page entries of kind 3 (a page initialised by the mtr). 3: UNDO_CARRY
/// records. 4: RESET records (TRUNCATE). Versions 1 to 3 are read and carried on
/// as version 4 (an older build refuses a newer log: it would skip UNDO_CARRY
/// records and leave the changes of a transaction that never committed in place,
/// or skip RESET records and replay a truncated table's later pages onto its old
/// ones).
pub const LOG_VERSION: u32 = 4;
pub const LOG_HEADER: u64 = 32;

/// Record types.
pub const REC_MTR: u8 = 1;
pub const REC_COMMIT: u8 = 2;
pub const REC_ROLLBACK_DONE: u8 = 3;
pub const REC_TREE: u8 = 4;
/// XA PREPARE (and the binlog's two-phase commit): payload = the XID (opaque bytes).
pub const REC_PREPARE: u8 = 5;
/// The rollback of a prepared transaction begins (XA ROLLBACK): recovery finishes
/// rolling it back instead of keeping it prepared. No payload.
pub const REC_ROLLBACK_START: u8 = 6;
/// A transaction's undo entries so far (and its XID if prepared), written by a
/// checkpoint so that the log before it is not needed for that transaction:
/// `u8 flags (1: prepared)`, PREPARE's payload (an empty XID if not prepared),
/// `u32 entries`, then per entry `u32 tree id, u32 length, undo entry`, oldest
/// first. Log version 3.
pub const REC_UNDO_CARRY: u8 = 7;
/// TRUNCATE: the trees it names are empty from here on (their older pages, redo
/// and undo are void). Payload: `u32 trees`, then per tree `u32 id, u16 path
/// length, path`. Log version 4.
pub const REC_RESET: u8 = 8;

/// Appended log bytes are written (not synced) once this many are buffered.
const WRITE_BEHIND: usize = 4 << 20;

/// The log is read back (at start-up) this many bytes at a time. (Tests read
/// odd small pieces, so that records are split between pieces, header and body,
/// and many records are longer than a piece.)
#[cfg(not(test))]
const READ_CHUNK: u64 = 8 << 20;
#[cfg(test)]
const READ_CHUNK: u64 = 1007;

/// The unit of `O_DIRECT` writes: their memory, file offset and length are
/// multiples of it (4 KiB covers every block size Linux file systems use).
const BLOCK: usize = 4096;

#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct Block([u8; BLOCK]);

/// Bytes in block-aligned memory, for `O_DIRECT` writes.
struct AlignedBuf {
    /// Grown as needed, kept between writes (a long transaction's large buffer is
    /// given back after its write).
    blocks: Vec<Block>,
    len: usize,
}

impl AlignedBuf {
    fn new() -> AlignedBuf {
        AlignedBuf { blocks: Vec::new(), len: 0 }
    }

    fn all_mut(&mut self) -> &mut [u8] {
        // SAFETY: `Block` is a plain byte array with no padding (size == align ==
        // BLOCK), so the vector's blocks are `blocks.len() * BLOCK` initialised,
        // contiguous bytes, borrowed mutably through `self` for the slice's life.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_mut_ptr().cast::<u8>(), self.blocks.len() * BLOCK) }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: as in `all_mut`; `len <= blocks.len() * BLOCK`.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr().cast::<u8>(), self.len) }
    }

    fn extend(&mut self, b: &[u8]) {
        let end = self.len + b.len();
        if end > self.blocks.len() * BLOCK {
            self.blocks.resize(end.div_ceil(BLOCK), Block([0; BLOCK]));
        }
        let at = self.len;
        self.all_mut()[at..end].copy_from_slice(b);
        self.len = end;
    }

    /// The bytes and zeros up to the next block boundary.
    fn padded(&mut self) -> &[u8] {
        let (len, end) = (self.len, self.len.div_ceil(BLOCK) * BLOCK);
        self.all_mut()[len..end].fill(0);
        &self.all_mut()[..end]
    }

    /// Keeps only the bytes from `from` on, moved to the front.
    fn keep_from(&mut self, from: usize) {
        let len = self.len;
        self.all_mut().copy_within(from..len, 0);
        self.len = len - from;
        self.shrink();
    }

    /// Gives a large buffer's memory back once what it holds is small.
    fn shrink(&mut self) {
        if self.blocks.len() * BLOCK > 2 * WRITE_BEHIND {
            self.blocks.truncate(self.len.div_ceil(BLOCK).max(1));
            self.blocks.shrink_to_fit();
        }
    }
}

pub(crate) struct Inner {
    /// LSN of file offset LOG_HEADER.
    pub(crate) base_lsn: u64,
    /// From file offset `buf_off` on: the written part of the file's last block
    /// (with `direct`: written again with what follows), then the appended bytes
    /// not yet written (from `written_lsn` on).
    buf: AlignedBuf,
    buf_off: u64,
    /// LSN of the end of `buf` (the next record's LSN).
    end_lsn: u64,
    /// Everything below this LSN is written (not necessarily synced).
    written_lsn: u64,
}

/// The file side of the log (see the module's text on its two locks).
pub(crate) struct Writer {
    /// Reads, fsyncs, and writes where `direct` is `None`.
    file: Arc<File>,
    /// The same file opened with `O_DIRECT`, for writes, if the file system takes it.
    direct: Option<File>,
    /// The bytes of the write being made.
    out: AlignedBuf,
}

pub struct RedoLog {
    path: PathBuf,
    pub(crate) inner: Mutex<Inner>,
    writer: Mutex<Writer>,
    /// Durable up to this LSN.
    pub(crate) synced: AtomicU64,
    /// Group commit: whether a flush is being made, and who waits for one.
    group: Mutex<Group>,
    /// Set by the first write or sync of the log that failed: after it nothing is
    /// known about what reached the disk (a failed fsync may have dropped the
    /// pages it could not write, and a later fsync would then succeed over the
    /// hole), so no later flush may claim durability until a restart.
    failed: Mutex<Option<String>>,
    /// fsyncs of this log (metrics::LOG_FSYNCS counts those of every log).
    fsyncs: AtomicU64,
}

/// A record read back.
#[derive(Debug, Clone)]
pub struct Record {
    pub lsn: u64,
    pub kind: u8,
    pub trx: u64,
    pub payload: Vec<u8>,
}

fn header(base_lsn: u64) -> [u8; LOG_HEADER as usize] {
    let mut h = [0u8; LOG_HEADER as usize];
    h[0..8].copy_from_slice(LOG_MAGIC);
    h[8..12].copy_from_slice(&LOG_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&base_lsn.to_le_bytes());
    let c = crc32fast::hash(&h[0..28]);
    h[28..32].copy_from_slice(&c.to_le_bytes());
    h
}

/// What follows the last record that checks out, from file byte `from` to `to`:
/// after a crash only a torn tail (the part of the last write that reached the
/// file) or the zeros that end the last block. A record that checks out anywhere in
/// it (a known type, a length that fits, its CRC-32) means the log was damaged in
/// the middle, not torn at its end: recovery would stop at the damage and silently
/// lose the records after it, commits that were acknowledged among them. That is an
/// error (the engine does not start, the file is left as it is), as InnoDB refuses
/// a corrupt log. A torn tail that holds anything but zeros is noted in the error log.
fn tail_check(file: &File, name: &str, base_lsn: u64, from: u64, to: u64) -> Result<()> {
    let n = usize::try_from(to - from).map_err(|_| Error::Corrupt(format!("{name}: too large")))?;
    let mut rest = vec![0u8; n];
    file.read_exact_at(&mut rest, from).ctx(|| format!("cannot read '{name}'"))?;
    if let Some(at) = first_record_in(&rest[1.min(n)..]).map(|a| a + 1.min(n)) {
        let lsn = base_lsn + (from - LOG_HEADER);
        return Err(Error::Corrupt(format!(
            "{name}: the redo log is damaged at byte {from} (LSN {lsn}): the record there does not check out, \
             but records further on do (the first at byte {}); recovering up to the damage would silently lose \
             them, acknowledged commits among them, so the BTREE engine does not start and the file is left \
             as it is (a crash of the server does not leave this: the file was damaged on disk or by another \
             program; docs/crash-safety.md, Damaged files). To start anyway, losing every record from the \
             damage on, cut the file there while the server is down: truncate -s {from} {name}",
            from + at as u64
        )));
    }
    if rest.iter().any(|&b| b != 0) {
        eprintln!(
            "[Note] RUST: {name}: cut a torn tail of {n} bytes at byte {from} (LSN {}): the end of a log write that a crash interrupted",
            base_lsn + (from - LOG_HEADER)
        );
    }
    Ok(())
}

/// The offset of the first position in `buf` where a log record checks out (a
/// known type, a length that fits in `buf`, its CRC-32), if any.
fn first_record_in(buf: &[u8]) -> Option<usize> {
    let mut at = 0usize;
    while at + 8 + 9 <= buf.len() {
        let blen = u32::from_le_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
        if blen >= 9 && blen <= buf.len() - at - 8 && (REC_MTR..=REC_RESET).contains(&buf[at + 8]) {
            let crc = u32::from_le_bytes(buf[at + 4..at + 8].try_into().unwrap());
            if crc32fast::hash(&buf[at + 8..at + 8 + blen]) == crc {
                return Some(at);
            }
        }
        at += 1;
    }
    None
}

impl RedoLog {
    /// Opens (or creates) the log; returns it with the records found from
    /// `from_lsn` on (for recovery). A torn tail is cut off.
    pub fn open(path: &Path, from_lsn: u64) -> Result<(RedoLog, Vec<Record>)> {
        Self::open_with(path, from_lsn, true)
    }

    /// [`RedoLog::open`]; `direct`: write with `O_DIRECT` if the file system takes it.
    fn open_with(path: &Path, from_lsn: u64, direct: bool) -> Result<(RedoLog, Vec<Record>)> {
        let name = path.display().to_string();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .ctx(|| format!("cannot open '{name}'"))?;
        let len = file.metadata().ctx(|| format!("cannot stat '{name}'"))?.len();
        let base_lsn = if len < LOG_HEADER {
            let base = from_lsn.max(1);
            file.set_len(0).ctx(|| format!("cannot truncate '{name}'"))?;
            file.write_all_at(&header(base), 0).ctx(|| format!("cannot write '{name}'"))?;
            file.sync_all().ctx(|| format!("cannot sync '{name}'"))?;
            base
        } else {
            let mut h = [0u8; LOG_HEADER as usize];
            file.read_exact_at(&mut h, 0).ctx(|| format!("cannot read '{name}'"))?;
            if &h[0..8] != LOG_MAGIC || crc32fast::hash(&h[0..28]) != u32::from_le_bytes(h[28..32].try_into().unwrap()) {
                return Err(Error::Corrupt(format!("{name}: not a RUST redo log (bad header)")));
            }
            let v = u32::from_le_bytes(h[8..12].try_into().unwrap());
            if !(1..=LOG_VERSION).contains(&v) {
                return Err(Error::Unsupported(format!("{name}: redo log version {v}; this build reads 1 to {LOG_VERSION}")));
            }
            let base = u64::from_le_bytes(h[12..20].try_into().unwrap());
            if v != LOG_VERSION {
                // an older version's records are read as they are; what follows
                // may use this version's, so the header says so from now on
                file.write_all_at(&header(base), 0).ctx(|| format!("cannot write '{name}'"))?;
                file.sync_all().ctx(|| format!("cannot sync '{name}'"))?;
            }
            base
        };
        // read every record, a few MiB of the file at a time (the records kept
        // are all the memory this takes); stop at the first that does not check out
        let total = len.max(LOG_HEADER) - LOG_HEADER;
        let mut recs = Vec::new();
        // unparsed bytes, from log offset `off`; the file is read up to `read_to`
        let mut buf: Vec<u8> = Vec::new();
        let (mut off, mut read_to) = (0u64, 0u64);
        loop {
            let mut at = 0usize;
            let mut end_found = false;
            while at + 8 <= buf.len() {
                let blen = u32::from_le_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
                let crc = u32::from_le_bytes(buf[at + 4..at + 8].try_into().unwrap());
                if blen < 9 || (read_to == total && at + 8 + blen > buf.len()) {
                    end_found = true;
                    break;
                }
                if at + 8 + blen > buf.len() {
                    break; // the rest of it is further on in the file
                }
                let body = &buf[at + 8..at + 8 + blen];
                if crc32fast::hash(body) != crc {
                    end_found = true;
                    break;
                }
                let lsn = base_lsn + off + at as u64;
                if lsn >= from_lsn {
                    recs.push(Record {
                        lsn,
                        kind: body[0],
                        trx: u64::from_le_bytes(body[1..9].try_into().unwrap()),
                        payload: body[9..].to_vec(),
                    });
                }
                at += 8 + blen;
            }
            buf.drain(..at);
            off += at as u64;
            if end_found || read_to == total {
                break;
            }
            let n = (total - read_to).min(READ_CHUNK) as usize;
            let have = buf.len();
            buf.resize(have + n, 0);
            file.read_exact_at(&mut buf[have..], LOG_HEADER + read_to).ctx(|| format!("cannot read '{name}'"))?;
            read_to += n as u64;
        }
        if off < total {
            // the zeros after the last record in its block, or the torn tail of a
            // write the crash interrupted; but never damage in the middle of the
            // log (a flipped bit, a zeroed block), which would lose every record
            // after it, acknowledged commits among them: see tail_check
            tail_check(&file, &name, base_lsn, LOG_HEADER + off, LOG_HEADER + total)?;
            file.set_len(LOG_HEADER + off).ctx(|| format!("cannot truncate '{name}'"))?;
            file.sync_all().ctx(|| format!("cannot sync '{name}'"))?;
        }
        let end = base_lsn + off;
        let direct = if direct { open_direct(path) } else { None };
        let mut w = Writer { file: Arc::new(file), direct, out: AlignedBuf::new() };
        let mut inner = Inner { base_lsn, buf: AlignedBuf::new(), buf_off: 0, end_lsn: end, written_lsn: end };
        inner.rebase(&mut w, &[]);
        let log = RedoLog {
            path: path.to_path_buf(),
            inner: Mutex::new(inner),
            writer: Mutex::new(w),
            synced: AtomicU64::new(end),
            group: Mutex::new(Group { syncing: false, waiters: Vec::new() }),
            failed: Mutex::new(None),
            fsyncs: AtomicU64::new(0),
        };
        Ok((log, recs))
    }

    /// Appends a record; returns its LSN (its end is `lsn + length`).
    pub fn append(&self, kind: u8, trx: u64, payload: &[u8]) -> u64 {
        let mut g = self.inner.lock();
        let lsn = Self::push(&mut g, kind, trx, payload);
        self.write_behind(g);
        lsn
    }

    /// A long transaction: what is buffered is written (not synced) as it
    /// goes, rather than held in memory whole; a failure is met again by the
    /// next flush (see [`Self::failed`]).
    fn write_behind(&self, g: parking_lot::MutexGuard<'_, Inner>) {
        if g.buf.len >= WRITE_BEHIND {
            drop(g);
            let _ = self.write();
        }
    }

    /// Appends a record unless a checkpoint began since `checkpoint` read `seen`
    /// (then the caller builds the record again: see [`RedoLog::begin_checkpoint`]).
    pub fn append_unless_checkpoint(&self, kind: u8, trx: u64, payload: &[u8], checkpoint: &AtomicU64, seen: u64) -> Option<u64> {
        let mut g = self.inner.lock();
        if checkpoint.load(Ordering::Acquire) != seen {
            return None;
        }
        let lsn = Self::push(&mut g, kind, trx, payload);
        self.write_behind(g);
        Some(lsn)
    }

    /// Sets `checkpoint` to the log's end, under the lock appends take: every record
    /// after it was built knowing the new checkpoint.
    pub fn begin_checkpoint(&self, checkpoint: &AtomicU64) -> u64 {
        let g = self.inner.lock();
        checkpoint.store(g.end_lsn, Ordering::Release);
        g.end_lsn
    }

    fn push(g: &mut Inner, kind: u8, trx: u64, payload: &[u8]) -> u64 {
        let lsn = g.end_lsn;
        let blen = 9 + payload.len();
        let mut head = [0u8; 9];
        head[0] = kind;
        head[1..9].copy_from_slice(&trx.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        crc.update(payload);
        let mut rec_head = [0u8; 17];
        rec_head[0..4].copy_from_slice(&(blen as u32).to_le_bytes());
        rec_head[4..8].copy_from_slice(&crc.finalize().to_le_bytes());
        rec_head[8..17].copy_from_slice(&head);
        g.buf.extend(&rec_head);
        g.buf.extend(payload);
        g.end_lsn += 8 + blen as u64;
        lsn
    }

    /// LSN of the next record.
    pub fn end_lsn(&self) -> u64 {
        self.inner.lock().end_lsn
    }

    /// Writes the buffer to the file (no fsync); returns the LSN written up to.
    pub fn write(&self) -> Result<u64> {
        self.write_with(&mut self.writer.lock())
    }

    /// [`Self::write`], holding the writer lock. A failure is remembered (see
    /// [`Self::failed`]): no flush claims durability until a restart.
    fn write_with(&self, w: &mut Writer) -> Result<u64> {
        Self::write_job(&self.inner, w).map_err(|e| {
            let e = Error::io(format!("cannot write '{}'", self.path.display()), e);
            *self.failed.lock() = Some(e.to_string());
            e
        })
    }

    /// Takes what is appended from the buffer (under `inner`, briefly) and
    /// writes it (holding only the writer); returns the LSN written up to.
    fn write_job(inner: &Mutex<Inner>, w: &mut Writer) -> std::io::Result<u64> {
        #[cfg(test)]
        if crate::btree::crash::fired() {
            // a simulated SIGKILL: what the log buffers is lost
            return Err(std::io::Error::other("simulated crash"));
        }
        // the bytes are copied out, but stay in the buffer (and `written_lsn`
        // where it is) until they are written: a write that fails is made
        // again by the next one, and no later write lands after a hole.
        // (Only writers, one at a time under `writer`, move them; appenders
        // only add at the end.)
        let (start, from, end, upto) = {
            let g = inner.lock();
            if g.written_lsn == g.end_lsn {
                return Ok(g.written_lsn);
            }
            let (from, end) = (g.off(g.written_lsn), g.off(g.end_lsn));
            w.out.len = 0;
            let start = if w.direct.is_some() {
                // whole blocks, from the start of the one `written_lsn` is in
                w.out.extend(g.buf.bytes());
                g.buf_off
            } else {
                w.out.extend(&g.buf.bytes()[(from - g.buf_off) as usize..]);
                from
            };
            (start, from, end, g.end_lsn)
        };
        let direct = match &w.direct {
            Some(d) => Some(d.write_all_at(w.out.padded(), start)),
            None => None,
        };
        match direct {
            Some(Ok(())) => {}
            Some(Err(e)) if e.raw_os_error() != Some(libc::EINVAL) => return Err(e),
            _ => {
                // buffered: no direct handle, or the file system refused the
                // direct write after all (then it is not tried again)
                w.direct = None;
                w.file.write_all_at(&w.out.bytes()[(from - start) as usize..(end - start) as usize], from)?;
            }
        }
        w.out.shrink();
        let mut g = inner.lock();
        metrics::LOG_WRITES.inc();
        metrics::LOG_BYTES_WRITTEN.add(upto - g.written_lsn);
        g.written_lsn = upto;
        let keep = if w.direct.is_some() { end / BLOCK as u64 * BLOCK as u64 } else { end };
        let buf_off = g.buf_off;
        g.buf.keep_from((keep - buf_off) as usize);
        g.buf_off = keep;
        Ok(upto)
    }

    /// Makes the log durable up to at least `lsn`. Concurrent callers share one
    /// fsync: whoever finds a flush running waits, and is woken when a flush
    /// has covered its LSN, or to make the next flush itself (the waiter with
    /// the smallest LSN not covered: see [`Wake`]). No waiter is woken for
    /// nothing: with 64 committers, waking every one at every sync (a condition
    /// variable's notify_all) was a quarter of the server's CPU time in futex
    /// calls.
    pub fn flush_to(&self, lsn: u64) -> Result<()> {
        loop {
            if self.synced.load(Ordering::Acquire) >= lsn {
                return Ok(());
            }
            let mut g = self.group.lock();
            if self.synced.load(Ordering::Acquire) >= lsn {
                return Ok(());
            }
            if g.syncing {
                let w = Arc::new(Waiter { woken: AtomicBool::new(false), thread: std::thread::current() });
                g.waiters.push((lsn, w.clone()));
                drop(g);
                while !w.woken.load(Ordering::Acquire) {
                    std::thread::park();
                }
                continue;
            }
            g.syncing = true;
            drop(g);
            // the waiters are woken however this ends, a panic included (else
            // every later commit would wait for a sync that never ends)
            let _wake = Wake(self);
            if let Some(why) = self.failed.lock().clone() {
                return Err(Error::Corrupt(format!(
                    "'{}' cannot be made durable until the server restarts: an earlier write or sync of it failed ({why})",
                    self.path.display()
                )));
            }
            let done = (|| -> Result<u64> {
                let (upto, f) = {
                    let mut w = self.writer.lock();
                    (self.write_with(&mut w)?, w.file.clone())
                };
                // (a checkpoint may swap the file meanwhile: it syncs the new
                // one, which holds everything written to this one)
                f.sync_data().ctx(|| format!("cannot sync '{}'", self.path.display()))?;
                Ok(upto)
            })();
            let upto = match done {
                Ok(u) => u,
                Err(e) => {
                    *self.failed.lock() = Some(e.to_string());
                    return Err(e);
                }
            };
            metrics::LOG_FSYNCS.inc();
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
            self.synced.fetch_max(upto, Ordering::AcqRel);
        }
    }

    /// How many times this log was synced by [`flush_to`](Self::flush_to).
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// Starts the log anew at `keep_from` (a checkpoint): the records from there on
    /// are copied into a new file that replaces the old one atomically. The bulk
    /// of the copy is made without holding the log, so appends and commits go on
    /// meanwhile; only what was written during it is copied under the lock, just
    /// before the swap. (Only the checkpoint calls this, one at a time.)
    pub fn truncate_before(&self, keep_from: u64) -> Result<()> {
        let name = self.path.display().to_string();
        let (old, base, upto, keep_from) = {
            let mut w = self.writer.lock();
            self.write_with(&mut w)?;
            let g = self.inner.lock();
            if keep_from <= g.base_lsn {
                return Ok(());
            }
            let k = keep_from.min(g.written_lsn);
            (w.file.clone(), g.base_lsn, g.written_lsn, k)
        };
        let tmp = self.path.with_extension("log-new");
        let tname = tmp.display().to_string();
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .ctx(|| format!("cannot create '{tname}'"))?;
        f.write_all_at(&header(keep_from), 0).ctx(|| format!("cannot write '{tname}'"))?;
        copy_lsns(&old, base, &f, keep_from, keep_from..upto, &name, &tname)?;
        f.sync_data().ctx(|| format!("cannot sync '{tname}'"))?;
        crate::btree::write_crash_point()?;
        // (the writer's lock first: every write handed over is then made)
        let mut w = self.writer.lock();
        let mut g = self.inner.lock();
        debug_assert_eq!(g.base_lsn, base, "two log truncations at once");
        copy_lsns(&old, base, &f, keep_from, upto..g.written_lsn, &name, &tname)?;
        f.sync_all().ctx(|| format!("cannot sync '{tname}'"))?;
        let direct = if w.direct.is_some() { open_direct(&tmp) } else { None };
        std::fs::rename(&tmp, &self.path).ctx(|| format!("cannot rename '{tname}'"))?;
        // renamed: from now on the log is the new file, whatever follows (a
        // flush must never sync the old one, which no path names any more)
        let pending = g.buf.bytes()[(g.off(g.written_lsn) - g.buf_off) as usize..].to_vec();
        w.file = Arc::new(f);
        w.direct = direct;
        g.base_lsn = keep_from;
        g.rebase(&mut w, &pending);
        if let Some(dir) = self.path.parent() {
            if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
                // the rename may not survive a crash: nothing is durable
                // until a restart, as after a failed sync of the log
                let e = Error::io("cannot sync the engine folder".to_string(), e);
                *self.failed.lock() = Some(e.to_string());
                return Err(e);
            }
        }
        Ok(())
    }

    /// Size of the log file's records.
    pub fn size(&self) -> u64 {
        let g = self.inner.lock();
        g.end_lsn - g.base_lsn
    }
}

/// Group commit's state (see [`RedoLog::flush_to`]).
struct Group {
    /// A flush (the write and the sync) is being made.
    syncing: bool,
    /// Who waits for one: the LSN each needs durable, and the waiter.
    waiters: Vec<(u64, Arc<Waiter>)>,
}

struct Waiter {
    woken: AtomicBool,
    thread: std::thread::Thread,
}

impl Waiter {
    fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// The end of a flush, however it ends (a panic included: else every later
/// commit would wait for a flush that never ends): the waiters its sync
/// covered are woken, and the one with the smallest LSN left, to make the
/// next flush (it may find one running by then, and waits again: that one's
/// end wakes the rest). After a failure every waiter is woken, to meet it.
struct Wake<'a>(&'a RedoLog);

impl Drop for Wake<'_> {
    fn drop(&mut self) {
        let failed = self.0.failed.lock().is_some();
        let mut g = self.0.group.lock();
        g.syncing = false;
        let synced = self.0.synced.load(Ordering::Acquire);
        let mut wake = Vec::new();
        g.waiters.retain(|(lsn, w)| {
            let go = failed || *lsn <= synced;
            if go {
                wake.push(w.clone());
            }
            !go
        });
        if let Some(i) = (0..g.waiters.len()).min_by_key(|&i| g.waiters[i].0) {
            wake.push(g.waiters.swap_remove(i).1);
        }
        drop(g);
        for w in wake {
            w.wake();
        }
    }
}

impl Inner {
    /// File offset of `lsn`.
    fn off(&self, lsn: u64) -> u64 {
        LOG_HEADER + (lsn - self.base_lsn)
    }

    /// Sets `buf` up where the file's end moved (opening, a new file): with
    /// `direct`, the written part of the last block, read back from the file;
    /// then `pending`, the appended bytes not yet written. If that part cannot be
    /// read, the log goes on without `O_DIRECT`.
    fn rebase(&mut self, wr: &mut Writer, pending: &[u8]) {
        let w = self.off(self.written_lsn);
        let a = w / BLOCK as u64 * BLOCK as u64;
        let mut head = vec![0u8; (w - a) as usize];
        if wr.direct.is_some() && wr.file.read_exact_at(&mut head, a).is_err() {
            wr.direct = None;
        }
        self.buf.len = 0;
        if wr.direct.is_some() {
            self.buf.extend(&head);
            self.buf_off = a;
        } else {
            self.buf_off = w;
        }
        self.buf.extend(pending);
    }
}

/// `path` opened for writing with `O_DIRECT`, if its file system takes it.
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().write(true).custom_flags(libc::O_DIRECT).open(path).ok()
}

/// Copies the log bytes of `lsns` from `from` (whose records begin at LSN
/// `from_base`) to `to` (whose records begin at `to_base`), a few MiB at a time.
fn copy_lsns(from: &File, from_base: u64, to: &File, to_base: u64, lsns: std::ops::Range<u64>, fname: &str, tname: &str) -> Result<()> {
    let mut buf = vec![0u8; (lsns.end.saturating_sub(lsns.start)).min(8 << 20) as usize];
    let mut at = lsns.start;
    while at < lsns.end {
        let n = ((lsns.end - at) as usize).min(buf.len());
        from.read_exact_at(&mut buf[..n], LOG_HEADER + (at - from_base)).ctx(|| format!("cannot read '{fname}'"))?;
        to.write_all_at(&buf[..n], LOG_HEADER + (at - to_base)).ctx(|| format!("cannot write '{tname}'"))?;
        at += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `d`'s file system takes `O_DIRECT` (tmpfs does not).
    fn on_direct_fs(d: &Path) -> bool {
        let p = d.join("probe");
        let ok = { File::create(&p).unwrap(); open_direct(&p).is_some() };
        std::fs::remove_file(&p).unwrap();
        ok
    }

    fn dir(name: &str) -> crate::testutil::TempDir {
        crate::testutil::dir(&format!("log-{name}"), 0)
    }

    #[test]
    fn records_survive_and_a_torn_tail_ends_the_log() {
        for direct in [true, false] {
            records_survive_and_a_torn_tail_ends_the_log_with(direct);
        }
    }

    fn records_survive_and_a_torn_tail_ends_the_log_with(direct: bool) {
        let d = dir(&format!("basic-{direct}"));
        let p = d.join("redo.log");
        let open = |p: &Path, from| RedoLog::open_with(p, from, direct);
        let (log, recs) = open(&p, 0).unwrap();
        assert!(recs.is_empty());
        let a = log.append(REC_COMMIT, 7, b"first");
        let b = log.append(REC_MTR, 8, &[9u8; 1000]);
        log.flush_to(b + 1).unwrap();
        let c = log.append(REC_COMMIT, 9, b"not synced but written");
        log.write().unwrap();
        assert_eq!(log.writer.lock().direct.is_some(), direct && on_direct_fs(&d));
        let rec_end = LOG_HEADER + (log.end_lsn() - a);
        drop(log);
        if direct && on_direct_fs(&d) {
            // whole blocks were written: the last one ends in zeros
            assert_eq!(std::fs::metadata(&p).unwrap().len() % BLOCK as u64, 0);
        }
        let (_, recs) = open(&p, 0).unwrap();
        assert_eq!(recs.iter().map(|r| (r.lsn, r.trx)).collect::<Vec<_>>(), vec![(a, 7), (b, 8), (c, 9)]);
        // tear the last record
        OpenOptions::new().write(true).open(&p).unwrap().set_len(rec_end - 3).unwrap();
        let (log, recs) = open(&p, 0).unwrap();
        assert_eq!(recs.len(), 2);
        // appends continue after the cut
        let d2 = log.append(REC_COMMIT, 10, b"after");
        assert_eq!(d2, c);
        log.flush_to(d2 + 1).unwrap();
        drop(log);
        let (log, recs) = open(&p, b).unwrap();
        assert_eq!(recs.iter().map(|r| r.trx).collect::<Vec<_>>(), vec![8, 10]);
        // a checkpoint drops what came before, and LSNs go on
        log.truncate_before(d2).unwrap();
        let e = log.append(REC_COMMIT, 11, b"");
        log.flush_to(e + 1).unwrap();
        drop(log);
        let (_, recs) = open(&p, 0).unwrap();
        assert_eq!(recs.iter().map(|r| (r.lsn, r.trx)).collect::<Vec<_>>(), vec![(d2, 10), (e, 11)]);
    }

    /// Damage in the middle of the log (bits flipped in a record, or a block zeroed,
    /// with records that check out after it) is an error that names the file and
    /// leaves it as it is; only a torn tail is cut.
    #[test]
    fn damage_in_the_middle_of_the_log_is_an_error_not_a_torn_tail() {
        for (k, zero) in [false, true].into_iter().enumerate() {
            let d = dir(&format!("mid-damage-{k}"));
            let p = d.join("redo.log");
            let (log, _) = RedoLog::open_with(&p, 0, false).unwrap();
            let mut lsns = vec![];
            for i in 0..50u64 {
                lsns.push(log.append(REC_COMMIT, i, &vec![i as u8; 100]));
            }
            log.flush_to(log.end_lsn()).unwrap();
            drop(log);
            let before = std::fs::read(&p).unwrap();
            // damage record 20 (its body), or zero 300 bytes from it on
            let f = OpenOptions::new().write(true).open(&p).unwrap();
            let at = LOG_HEADER + (lsns[20] - lsns[0]);
            if zero {
                f.write_all_at(&[0u8; 300], at).unwrap();
            } else {
                f.write_all_at(&[0xff], at + 30).unwrap();
            }
            drop(f);
            let damaged = std::fs::read(&p).unwrap();
            let e = RedoLog::open_with(&p, 0, false).err().expect("damage must be an error").to_string();
            assert!(e.contains("redo.log: the redo log is damaged at byte") && e.contains("records further on do"), "{e}");
            // nothing was cut or changed
            assert_eq!(std::fs::read(&p).unwrap(), damaged);
            assert_ne!(damaged, before);
        }
        // a torn tail is still cut, with or without garbage in it
        let d = dir("mid-damage-tail");
        let p = d.join("redo.log");
        let (log, _) = RedoLog::open_with(&p, 0, false).unwrap();
        let first = log.end_lsn();
        for i in 0..5u64 {
            log.append(REC_COMMIT, i, &[1u8; 50]);
        }
        log.flush_to(log.end_lsn()).unwrap();
        let len = LOG_HEADER + (log.end_lsn() - first);
        drop(log);
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all_at(&[0x5a; 40], len - 20).unwrap();
        drop(f);
        let (_, recs) = RedoLog::open_with(&p, 0, false).unwrap();
        assert_eq!(recs.len(), 4);
    }

    /// Truncations while another thread appends and commits: the records written
    /// during a truncation's copy are in the new file too, at their LSNs.
    #[test]
    fn truncations_beside_appends_keep_every_record() {
        let d = dir("trunc-concurrent");
        let p = d.join("redo.log");
        let (log, _) = RedoLog::open(&p, 0).unwrap();
        let log = std::sync::Arc::new(log);
        let n = 6000u64;
        // a record's LSN, as a checkpoint's truncation point always is
        let at = std::sync::Arc::new(AtomicU64::new(0));
        let writer = {
            let (log, at) = (log.clone(), at.clone());
            std::thread::spawn(move || {
                let mut lsns = vec![];
                for i in 0..n {
                    let lsn = log.append(REC_MTR, i, &vec![i as u8; 500 + (i % 7) as usize * 300]);
                    if i % 50 == 0 {
                        log.flush_to(lsn + 1).unwrap();
                    }
                    if i % 500 == 0 {
                        at.store(lsn, Ordering::Release);
                    }
                    lsns.push(lsn);
                }
                lsns
            })
        };
        let mut truncations = 0;
        while !writer.is_finished() {
            log.truncate_before(at.load(Ordering::Acquire)).unwrap();
            truncations += 1;
        }
        assert!(truncations > 1);
        let kept = at.load(Ordering::Acquire);
        let lsns = writer.join().unwrap();
        let last = *lsns.last().unwrap();
        log.flush_to(last + 1).unwrap();
        drop(log);
        let (_, recs) = RedoLog::open(&p, 0).unwrap();
        assert!(!recs.is_empty() && recs[0].lsn <= kept, "records from {kept} on were lost");
        let first = lsns.iter().position(|&l| l == recs[0].lsn).unwrap();
        assert_eq!(recs.len(), lsns.len() - first);
        for (r, i) in recs.iter().zip(first as u64..) {
            assert_eq!((r.lsn, r.trx), (lsns[i as usize], i));
            assert_eq!(r.payload, vec![i as u8; 500 + (i % 7) as usize * 300]);
        }
    }

    /// A log written by an older version (1 to 3: no RESET records) is read and
    /// carried on as this version; a newer one is refused, not misread.
    #[test]
    fn older_logs_are_read_and_newer_refused() {
        let d = dir("versions");
        let p = d.join("redo.log");
        let set_version = |v: u32| {
            let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
            let mut h = [0u8; LOG_HEADER as usize];
            f.read_exact_at(&mut h, 0).unwrap();
            h[8..12].copy_from_slice(&v.to_le_bytes());
            let c = crc32fast::hash(&h[0..28]);
            h[28..32].copy_from_slice(&c.to_le_bytes());
            f.write_all_at(&h, 0).unwrap();
        };
        let version = || u32::from_le_bytes(std::fs::read(&p).unwrap()[8..12].try_into().unwrap());
        let (log, _) = RedoLog::open(&p, 0).unwrap();
        let a = log.append(REC_COMMIT, 7, b"x");
        log.flush_to(a + 1).unwrap();
        drop(log);
        for old in 1..LOG_VERSION {
            set_version(old);
            let (_, recs) = RedoLog::open(&p, 0).unwrap();
            assert_eq!(recs.iter().map(|r| (r.lsn, r.trx)).collect::<Vec<_>>(), vec![(a, 7)]);
            assert_eq!(version(), LOG_VERSION);
        }
        set_version(LOG_VERSION + 1);
        assert!(matches!(RedoLog::open(&p, 0), Err(Error::Unsupported(_))));
    }

    /// Group commit: 8 threads commit 200 times each, every commit waiting until
    /// its record is durable; committers that find a sync running wait for it and
    /// are covered by it or the next one, so the log is synced fewer times than
    /// there are commits (one fsync per commit without group commit), and every
    /// record is there.
    #[test]
    fn concurrent_committers_share_fsyncs() {
        let d = dir("group");
        let (log, _) = RedoLog::open(&d.join("redo.log"), 0).unwrap();
        let log = std::sync::Arc::new(log);
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let log = log.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    for i in 0..200u64 {
                        let lsn = log.append(REC_COMMIT, t * 1000 + i, b"x");
                        log.flush_to(lsn + 1).unwrap();
                        assert!(log.synced.load(Ordering::Acquire) > lsn, "flush_to returned before its record was durable");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let fsyncs = log.fsyncs();
        eprintln!("{fsyncs} fsyncs for 1600 commits");
        assert!(fsyncs > 0);
        assert!(fsyncs < 1600, "{fsyncs} fsyncs for 1600 commits: no commit shared another's fsync");
        drop(log);
        let (_, recs) = RedoLog::open(&d.join("redo.log"), 0).unwrap();
        assert_eq!(recs.len(), 1600);
    }

    /// Many small writes, each rewriting the block the previous one ended in, with
    /// reopenings (the end falls inside a block) and checkpoints (the blocks move
    /// against the LSNs) between them: every record comes back whole, in both
    /// write modes, and on a file system without `O_DIRECT` (tmpfs) too.
    #[test]
    fn small_writes_rewrite_their_block_and_lose_nothing() {
        let mut places = vec![(dir("small-direct"), true), (dir("small-buffered"), false)];
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            places.push((crate::testutil::dir_in(shm, "log-small-shm", 0), true));
        }
        for (d, direct) in places {
            let p = d.join("redo.log");
            let payload = |i: u64| vec![(i * 7) as u8; (i * 37 % 3000) as usize];
            let mut want: Vec<(u64, u64)> = vec![];
            let mut kept = 0;
            for round in 0..6u64 {
                let (log, recs) = RedoLog::open_with(&p, 0, direct).unwrap();
                assert_eq!(recs.iter().map(|r| (r.lsn, r.trx)).collect::<Vec<_>>(), want[kept..], "{d:?} round {round}");
                for r in &recs {
                    assert_eq!(r.payload, payload(r.trx));
                }
                for i in 0..300u64 {
                    let trx = round * 1000 + i;
                    let lsn = log.append(REC_MTR, trx, &payload(trx));
                    want.push((lsn, trx));
                    if i % 3 == 0 {
                        log.flush_to(lsn + 1).unwrap();
                    }
                    if i == 150 && round % 2 == 1 {
                        log.truncate_before(want[want.len() - 20].0).unwrap();
                        kept = want.len() - 20;
                    }
                }
                log.flush_to(log.end_lsn()).unwrap();
            }
        }
    }
}
