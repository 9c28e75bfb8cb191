//! On-disk structures of the ARCHIVE layout (spec: `docs/archive-format.md`).
//!
//! - `<table>.arz`: a file header, then compressed blocks of rows, append-only.
//! - `<table>.arp`: a header, then rows not yet in a block, one checksummed record each.
//!
//! All integers little-endian. Every header, payload and record carries a CRC-32.

use std::collections::HashMap;

use crate::error::{Error, Result};

pub const ARZ_MAGIC: &[u8; 8] = b"RUSTARZ\0";
pub const ARP_MAGIC: &[u8; 8] = b"RUSTARP\0";
/// The version this build writes for new tables (and for any rewrite: OPTIMIZE,
/// REPAIR, TRUNCATE). Version 2 adds block codec 3; a version 1 table keeps writing
/// codec 2 blocks, so a build that reads only version 1 can still read it.
/// Version 3: `.arp`'s header value is the length of `.arz` its rows follow (the
/// bytes sealed), so a `.arz` cut short is damage, not a torn tail.
pub const FORMAT_VERSION: u32 = 4;
/// The first version whose `.arp` header keeps the sealed length of `.arz`.
pub const SEALED_LEN_SINCE: u32 = 3;
/// The version from which the header says which server family's shim wrote the
/// table ([`FileHeader::family`]); before it, every table was MariaDB's.
pub const FAMILY_SINCE: u32 = 4;
/// [`FileHeader::family`] values: the server family whose shim made the rows'
/// images (`Field::pack()` bytes are each family's own).
pub const FAMILY_MARIADB: u32 = 0;
pub const FAMILY_MYSQL: u32 = 1;
const _: () = assert!(FAMILY_MARIADB == 0 && FAMILY_MYSQL == 1, "crate::layout::Family::code gives these");

/// A family's name, for messages.
pub fn family_name(f: u32) -> String {
    match f {
        FAMILY_MARIADB => "MariaDB".into(),
        FAMILY_MYSQL => "MySQL".into(),
        other => format!("server family {other}"),
    }
}
/// The oldest version this build reads.
pub const MIN_FORMAT_VERSION: u32 = 1;
pub const FILE_HEADER_LEN: usize = 32;
pub const BLOCK_MAGIC: u32 = u32::from_le_bytes(*b"BLK1");
pub const BLOCK_HEADER_LEN: usize = 56;
/// Codec ids in a block header: rows one after another, or split into columns
/// (see `docs/archive-format.md`), then zstd.
pub const CODEC_ZSTD: u32 = 1;
pub const CODEC_ZSTD_COLUMNS: u32 = 2;
/// Columns, each stream its own zstd frame; text columns may be word-tokenized
/// (format version 2).
pub const CODEC_ZSTD_STREAMS: u32 = 3;
/// Per-record overhead in the pending file.
pub const PENDING_HEADER_LEN: usize = 24;
/// The largest decompressed block accepted (the engine writes at most a few MiB,
/// or one row: the server caps a row at max_allowed_packet, at most 1 GiB).
pub const MAX_RAW: usize = 1 << 30;
/// Rows x segments a codec 3 block may have (see `from_streams`).
pub const MAX_CELLS: usize = 1 << 25;

fn crc(b: &[u8]) -> u32 {
    crc32fast::hash(b)
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// The 32-byte header of both files: magic, version, a value (the `.arz`
/// AUTO_INCREMENT base; in `.arp`, from version 3, the length of `.arz` sealed
/// when `.arp` was last emptied, 0 before), flags, and a CRC of the bytes before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeader {
    pub version: u32,
    pub auto_inc_base: u64,
    pub flags: u32,
    /// Which server family's shim wrote the rows ([`FAMILY_MARIADB`],
    /// [`FAMILY_MYSQL`]); [`FAMILY_MARIADB`] before [`FAMILY_SINCE`].
    pub family: u32,
}

impl FileHeader {
    pub fn encode(&self, magic: &[u8; 8]) -> [u8; FILE_HEADER_LEN] {
        let mut b = [0u8; FILE_HEADER_LEN];
        b[0..8].copy_from_slice(magic);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[12..20].copy_from_slice(&self.auto_inc_base.to_le_bytes());
        b[20..24].copy_from_slice(&self.flags.to_le_bytes());
        b[24..28].copy_from_slice(&self.family.to_le_bytes());
        let c = crc(&b[0..28]);
        b[28..32].copy_from_slice(&c.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8], magic: &[u8; 8], file: &str) -> Result<FileHeader> {
        if b.len() < FILE_HEADER_LEN || &b[0..8] != magic {
            return Err(Error::Corrupt(format!("{file}: not a RUST archive file (bad magic)")));
        }
        if crc(&b[0..28]) != u32_at(b, 28) {
            return Err(Error::Corrupt(format!("{file}: file header checksum mismatch")));
        }
        let version = u32_at(b, 8);
        if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(Error::Unsupported(format!(
                "{file}: archive format version {version}; this build reads versions {MIN_FORMAT_VERSION} to {FORMAT_VERSION}"
            )));
        }
        let family = if version >= FAMILY_SINCE { u32_at(b, 24) } else { FAMILY_MARIADB };
        Ok(FileHeader { version, auto_inc_base: u64_at(b, 12), flags: u32_at(b, 20), family })
    }
}

/// What a block header says: enough to skip the block, find a row id in it, or
/// know whether a key can be in it without decompressing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BlockMeta {
    /// File offset of the block header.
    pub offset: u64,
    pub payload_len: u32,
    pub raw_len: u32,
    pub rows: u32,
    pub codec: u32,
    pub first_row: u64,
    /// Smallest and largest key of the rows (order-preserving u64; see `docs/`).
    pub min_key: u64,
    pub max_key: u64,
    pub payload_crc: u32,
}

impl BlockMeta {
    pub fn end(&self) -> u64 {
        self.offset + BLOCK_HEADER_LEN as u64 + self.payload_len as u64
    }

    pub fn encode(&self) -> [u8; BLOCK_HEADER_LEN] {
        let mut b = [0u8; BLOCK_HEADER_LEN];
        b[0..4].copy_from_slice(&BLOCK_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&self.payload_len.to_le_bytes());
        b[8..12].copy_from_slice(&self.raw_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.rows.to_le_bytes());
        b[16..20].copy_from_slice(&self.codec.to_le_bytes());
        b[20..28].copy_from_slice(&self.first_row.to_le_bytes());
        b[28..36].copy_from_slice(&self.min_key.to_le_bytes());
        b[36..44].copy_from_slice(&self.max_key.to_le_bytes());
        b[44..48].copy_from_slice(&self.payload_crc.to_le_bytes());
        // 48..52 reserved (zero)
        let c = crc(&b[0..52]);
        b[52..56].copy_from_slice(&c.to_le_bytes());
        b
    }

    /// Decodes a header read at `offset`; None if it is not a valid block header.
    pub fn decode(b: &[u8], offset: u64) -> Option<BlockMeta> {
        if b.len() < BLOCK_HEADER_LEN || u32_at(b, 0) != BLOCK_MAGIC || crc(&b[0..52]) != u32_at(b, 52) {
            return None;
        }
        Some(BlockMeta {
            offset,
            payload_len: u32_at(b, 4),
            raw_len: u32_at(b, 8),
            rows: u32_at(b, 12),
            codec: u32_at(b, 16),
            first_row: u64_at(b, 20),
            min_key: u64_at(b, 28),
            max_key: u64_at(b, 36),
            payload_crc: u32_at(b, 44),
        })
    }
}

/// Rows being gathered for a block, or decoded from one. Each row is a row image
/// cut into `nseg` segments (the null bytes, then one per stored column; a NULL
/// column's segment is empty), which lets a block store its rows by column.
#[derive(Default, Debug, Clone)]
pub struct RowSet {
    pub keys: Vec<u64>,
    pub ends: Vec<u32>,
    pub data: Vec<u8>,
    /// Segments per row; 0 when the rows do not all have the same number.
    pub nseg: usize,
    /// `nseg` segment ends per row, relative to the row's start.
    pub segs: Vec<u32>,
}

/// Byte-shuffles `n` values of `w` bytes: all first bytes, then all second bytes...
/// Numbers that grow slowly turn into long runs and repeats, which zstd loves.
fn shuffle(src: &[u8], w: usize, out: &mut Vec<u8>) {
    let n = if w == 0 { 0 } else { src.len() / w };
    let base = out.len();
    out.resize(base + n * w, 0);
    for b in 0..w {
        let plane = &mut out[base + b * n..base + (b + 1) * n];
        for (i, v) in plane.iter_mut().enumerate() {
            *v = src[i * w + b];
        }
    }
}

fn unshuffle(src: &[u8], w: usize, n: usize, out: &mut Vec<u8>) {
    let base = out.len();
    out.resize(base + n * w, 0);
    for b in 0..w {
        let plane = &src[b * n..(b + 1) * n];
        for (i, v) in plane.iter().enumerate() {
            out[base + i * w + b] = *v;
        }
    }
}

/// Splits a text column into words (each with the whitespace after it) and
/// numbers them in order of first appearance: returns the dictionary (`u32`
/// count, the words' lengths as `u32`s byte-shuffled, the words' bytes), the ids
/// (`width` bytes each, byte-shuffled) and `width`. None when the column is not
/// worth it: too little text, or words that barely repeat (then the dictionary
/// would be about as big as the text).
fn tokenize(vals: &[&[u8]], prefix: usize, plain_len: usize) -> Option<(Vec<u8>, Vec<u8>, usize)> {
    if plain_len < 4096 {
        return None;
    }
    let mut index: HashMap<&[u8], u32> = HashMap::new();
    let mut words: Vec<&[u8]> = Vec::new();
    let mut word_bytes = 0usize;
    let mut ids: Vec<u32> = Vec::new();
    for v in vals {
        let v = v.get(prefix..).unwrap_or(&[]);
        let mut start = 0;
        for (j, &c) in v.iter().enumerate() {
            if is_space(c) || j + 1 == v.len() {
                let w = &v[start..=j];
                let id = *index.entry(w).or_insert_with(|| {
                    words.push(w);
                    word_bytes += w.len();
                    (words.len() - 1) as u32
                });
                ids.push(id);
                start = j + 1;
            }
        }
        // the dictionary must stay well below the text, and ids fit in 2 bytes
        if words.len() > 65536 || word_bytes * 2 > plain_len {
            return None;
        }
    }
    let width = if words.len() <= 256 { 1 } else { 2 };
    let mut dict = Vec::with_capacity(4 + words.len() * 4 + word_bytes);
    dict.extend_from_slice(&(words.len() as u32).to_le_bytes());
    let lens: Vec<u8> = words.iter().flat_map(|w| (w.len() as u32).to_le_bytes()).collect();
    shuffle(&lens, 4, &mut dict);
    for w in &words {
        dict.extend_from_slice(w);
    }
    let raw: Vec<u8> = ids.iter().flat_map(|&i| i.to_le_bytes()[..width].to_vec()).collect();
    let mut out = Vec::with_capacity(raw.len());
    shuffle(&raw, width, &mut out);
    Some((dict, out, width))
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// The text of a tokenized column: every id's word, one after another; None if
/// the dictionary or an id is bad, or the text would exceed `total` bytes.
fn untokenize(dict: &[u8], ids: &[u8], width: usize, total: usize) -> Option<Vec<u8>> {
    if !(1..=2).contains(&width) || dict.len() < 4 || ids.len() % width != 0 {
        return None;
    }
    let count = u32_at(dict, 0) as usize;
    let lens_end = count.checked_mul(4)?.checked_add(4)?;
    if dict.len() < lens_end {
        return None;
    }
    let mut lb = Vec::with_capacity(count * 4);
    unshuffle(&dict[4..lens_end], 4, count, &mut lb);
    // every word as (start, length) in `words`, the dictionary's bytes followed by
    // 16 spare bytes, so a short word is copied as one 16-byte move
    let bytes = &dict[lens_end..];
    let mut words = Vec::with_capacity(bytes.len() + 16);
    words.extend_from_slice(bytes);
    words.resize(bytes.len() + 16, 0);
    let mut spans = Vec::with_capacity(count);
    let mut at = 0usize;
    for c in lb.chunks_exact(4) {
        let l = u32::from_le_bytes(c.try_into().unwrap()) as usize;
        let end = at.checked_add(l).filter(|&e| e <= bytes.len())?;
        spans.push((at as u32, l as u32));
        at = end;
    }
    if at != bytes.len() {
        return None;
    }
    let m = ids.len() / width;
    let mut out = vec![0u8; total + 16];
    let mut pos = 0usize;
    for i in 0..m {
        let mut id = ids[i] as usize;
        if width == 2 {
            id |= (ids[m + i] as usize) << 8;
        }
        let (start, len) = *spans.get(id)?;
        let (start, len) = (start as usize, len as usize);
        if pos + len > total {
            return None;
        }
        if len <= 16 {
            out[pos..pos + 16].copy_from_slice(&words[start..start + 16]);
        } else {
            out[pos..pos + len].copy_from_slice(&words[start..start + len]);
        }
        pos += len;
    }
    out.truncate(pos);
    Some(out)
}

impl RowSet {
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    pub fn clear(&mut self) {
        self.keys.clear();
        self.ends.clear();
        self.data.clear();
        self.segs.clear();
        self.nseg = 0;
    }
    /// Adds a row; `segs` are its segment ends (may be empty: then the set is
    /// stored row by row).
    pub fn push(&mut self, key: u64, image: &[u8], segs: &[u32]) {
        if self.is_empty() {
            self.nseg = segs.len();
        }
        let fits = !segs.is_empty()
            && segs.len() == self.nseg
            && segs.last().copied() == Some(image.len() as u32)
            && segs.windows(2).all(|w| w[0] <= w[1]);
        if self.nseg > 0 && fits {
            self.segs.extend_from_slice(segs);
        } else if self.nseg > 0 {
            self.nseg = 0;
            self.segs.clear();
        }
        self.data.extend_from_slice(image);
        self.keys.push(key);
        self.ends.push(self.data.len() as u32);
    }
    pub fn row(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.data[start..self.ends[i] as usize]
    }
    pub fn row_segs(&self, i: usize) -> &[u32] {
        if self.nseg == 0 {
            &[]
        } else {
            &self.segs[i * self.nseg..(i + 1) * self.nseg]
        }
    }
    pub fn raw_len(&self) -> usize {
        self.data.len() + self.keys.len() * (12 + 4 * self.nseg)
    }

    fn columns_payload(&self, raw: &mut Vec<u8>) {
        let n = self.len();
        raw.extend_from_slice(&(self.nseg as u32).to_le_bytes());
        let keys: Vec<u8> = self.keys.iter().flat_map(|k| k.to_le_bytes()).collect();
        shuffle(&keys, 8, raw);
        let mut lens = Vec::with_capacity(n);
        let mut col = Vec::new();
        for c in 0..self.nseg {
            lens.clear();
            col.clear();
            for i in 0..n {
                let row = self.row(i);
                let s = self.row_segs(i);
                let start = if c == 0 { 0 } else { s[c - 1] as usize };
                let end = s[c] as usize;
                lens.push((end - start) as u32);
                col.extend_from_slice(&row[start..end]);
            }
            let w = lens.first().copied().unwrap_or(0);
            if lens.iter().all(|&l| l == w) {
                raw.push(1);
                raw.extend_from_slice(&w.to_le_bytes());
                shuffle(&col, w as usize, raw);
            } else {
                raw.push(2);
                let lb: Vec<u8> = lens.iter().flat_map(|l| l.to_le_bytes()).collect();
                shuffle(&lb, 4, raw);
                raw.extend_from_slice(&(col.len() as u32).to_le_bytes());
                raw.extend_from_slice(&col);
            }
        }
    }

    /// Serialises and compresses the rows into a block (header + payload), in the
    /// codec of a file of format `version` (see `docs/archive-format.md`).
    pub fn to_block(&self, first_row: u64, level: i32, version: u32, out: &mut Vec<u8>) -> Result<BlockMeta> {
        let zerr = |e| Error::io("cannot compress an archive block", e);
        let (codec, raw_len, payload) = if self.nseg > 0 && version >= 2 {
            let mut payload = Vec::with_capacity(self.raw_len() / 4 + 64);
            let raw_len = self.streams_payload(level, &mut payload).map_err(zerr)?;
            (CODEC_ZSTD_STREAMS, raw_len, payload)
        } else {
            let mut raw = Vec::with_capacity(self.raw_len() + 16);
            raw.extend_from_slice(&(self.len() as u32).to_le_bytes());
            let codec = if self.nseg > 0 {
                self.columns_payload(&mut raw);
                CODEC_ZSTD_COLUMNS
            } else {
                for k in &self.keys {
                    raw.extend_from_slice(&k.to_le_bytes());
                }
                for e in &self.ends {
                    raw.extend_from_slice(&e.to_le_bytes());
                }
                raw.extend_from_slice(&self.data);
                CODEC_ZSTD
            };
            (codec, raw.len(), zstd::bulk::compress(&raw, level).map_err(zerr)?)
        };
        if raw_len > MAX_RAW || payload.len() > u32::MAX as usize {
            return Err(Error::Unsupported(format!("an archive block of {raw_len} bytes is too large")));
        }
        let meta = BlockMeta {
            offset: 0,
            payload_len: payload.len() as u32,
            raw_len: raw_len as u32,
            rows: self.len() as u32,
            codec,
            first_row,
            min_key: self.keys.iter().copied().min().unwrap_or(0),
            max_key: self.keys.iter().copied().max().unwrap_or(0),
            payload_crc: crc(&payload),
        };
        out.extend_from_slice(&meta.encode());
        out.extend_from_slice(&payload);
        Ok(meta)
    }

    /// Codec 3: every stream (the keys; per column its values, or its lengths and
    /// bytes, or its lengths, word dictionary and word ids) is its own zstd frame, so
    /// each gets its own window and entropy tables. Returns the raw length (the sum of
    /// the streams' decompressed lengths).
    fn streams_payload(&self, level: i32, out: &mut Vec<u8>) -> std::io::Result<usize> {
        let n = self.len();
        let mut z = zstd::bulk::Compressor::new(level)?;
        let mut raw_total = 0usize;
        fn zc(z: &mut zstd::bulk::Compressor, raw: &[u8]) -> std::io::Result<Vec<u8>> {
            if raw.is_empty() { Ok(Vec::new()) } else { z.compress(raw) }
        }
        fn frame(out: &mut Vec<u8>, c: &[u8], raw_len: usize, raw_total: &mut usize) {
            out.extend_from_slice(&(c.len() as u32).to_le_bytes());
            out.extend_from_slice(&(raw_len as u32).to_le_bytes());
            out.extend_from_slice(c);
            *raw_total += raw_len;
        }
        let put = |z: &mut zstd::bulk::Compressor, out: &mut Vec<u8>, raw: &[u8], raw_total: &mut usize| -> std::io::Result<()> {
            let c = zc(z, raw)?;
            frame(out, &c, raw.len(), raw_total);
            Ok(())
        };
        out.extend_from_slice(&(n as u32).to_le_bytes());
        out.extend_from_slice(&(self.nseg as u32).to_le_bytes());
        let keys: Vec<u8> = self.keys.iter().flat_map(|k| k.to_le_bytes()).collect();
        let mut buf = Vec::new();
        shuffle(&keys, 8, &mut buf);
        put(&mut z, out, &buf, &mut raw_total)?;
        let mut vals: Vec<&[u8]> = Vec::with_capacity(n);
        for c in 0..self.nseg {
            vals.clear();
            for i in 0..n {
                let row = self.row(i);
                let s = self.row_segs(i);
                let start = if c == 0 { 0 } else { s[c - 1] as usize };
                vals.push(&row[start..s[c] as usize]);
            }
            let w = vals.first().map_or(0, |v| v.len());
            if vals.iter().all(|v| v.len() == w) {
                out.push(1);
                out.extend_from_slice(&(w as u32).to_le_bytes());
                let col: Vec<u8> = vals.concat();
                buf.clear();
                shuffle(&col, w, &mut buf);
                put(&mut z, out, &buf, &mut raw_total)?;
                continue;
            }
            // A value that starts with its own length (what Field::pack() writes for
            // VARCHAR, TEXT, BLOB) repeats what the lengths stream says: drop it.
            // Empty values (NULLs) may be among them.
            let prefix = [1usize, 2, 3, 4]
                .into_iter()
                .find(|&p| {
                    vals.iter().all(|v| {
                        v.is_empty()
                            || v.len() >= p && {
                                let mut l = [0u8; 8];
                                l[..p].copy_from_slice(&v[..p]);
                                u64::from_le_bytes(l) == (v.len() - p) as u64
                            }
                    })
                })
                .unwrap_or(0);
            // with a prefix: 0 for an empty value, else 1 + the length without it
            let lens: Vec<u8> = vals
                .iter()
                .flat_map(|v| (if prefix == 0 || v.is_empty() { v.len() } else { v.len() - prefix + 1 } as u32).to_le_bytes())
                .collect();
            let plain: Vec<u8> = vals.iter().flat_map(|v| v.get(prefix..).unwrap_or(&[])).copied().collect();
            // Words when they win: they are compared with the text compressed at
            // level 1 first (cheap), and the text is compressed at the table's level
            // only when the words do not win clearly.
            let mut words_z = None;
            let mut plain_z = None;
            if let Some((dict, ids, width)) = tokenize(&vals, prefix, plain.len()) {
                let dz = zc(&mut z, &dict)?;
                let iz = zc(&mut z, &ids)?;
                let size = dz.len() + iz.len() + 9;
                let fast = zstd::bulk::compress(&plain, 1)?;
                if size * 10 <= fast.len() * 9 {
                    words_z = Some((dz, iz, width, dict.len(), ids.len()));
                } else {
                    let pz = if level == 1 { fast } else { zc(&mut z, &plain)? };
                    if size < pz.len() {
                        words_z = Some((dz, iz, width, dict.len(), ids.len()));
                    } else {
                        plain_z = Some(pz);
                    }
                }
            }
            let plain_z = match (plain_z, &words_z) {
                (Some(p), _) => p,
                (None, Some(_)) => Vec::new(),
                (None, None) => zc(&mut z, &plain)?,
            };
            out.push(if words_z.is_some() { 3 } else { 2 });
            out.push(prefix as u8);
            buf.clear();
            shuffle(&lens, 4, &mut buf);
            put(&mut z, out, &buf, &mut raw_total)?;
            match words_z {
                Some((dz, iz, width, dlen, ilen)) => {
                    out.push(width as u8);
                    frame(out, &dz, dlen, &mut raw_total);
                    frame(out, &iz, ilen, &mut raw_total);
                }
                None => {
                    frame(out, &plain_z, plain.len(), &mut raw_total);
                }
            }
        }
        Ok(raw_total)
    }

    /// Rebuilds rows from codec 3; the error says what does not add up.
    fn from_streams(&mut self, payload: &[u8], n: usize, raw_len: usize) -> std::result::Result<(), String> {
        let mut b = payload;
        let mut left = raw_len;
        let mut z = zstd::bulk::Decompressor::new().map_err(|e| format!("cannot decompress: {e}"))?;
        let bad = |what: &str| format!("rows do not match the header ({what})");
        fn take<'a>(b: &mut &'a [u8], k: usize) -> Option<&'a [u8]> {
            if b.len() < k {
                return None;
            }
            let (h, t) = b.split_at(k);
            *b = t;
            Some(h)
        }
        fn u32_of(b: &mut &[u8]) -> Option<usize> {
            take(b, 4).map(|h| u32::from_le_bytes(h.try_into().unwrap()) as usize)
        }
        // one stream: compressed length, raw length, frame; raw lengths add up to
        // the header's, which bounds every allocation
        let mut stream = |b: &mut &[u8]| -> std::result::Result<Vec<u8>, String> {
            let clen = u32_of(b).ok_or_else(|| bad("stream cut short"))?;
            let rlen = u32_of(b).ok_or_else(|| bad("stream cut short"))?;
            let frame = take(b, clen).ok_or_else(|| bad("stream cut short"))?;
            if rlen > left {
                return Err(bad("streams longer than the block"));
            }
            left -= rlen;
            if rlen == 0 {
                return if clen == 0 { Ok(Vec::new()) } else { Err(bad("empty stream with a frame")) };
            }
            let v = z.decompress(frame, rlen).map_err(|e| format!("cannot decompress: {e}"))?;
            if v.len() != rlen {
                return Err(bad("stream length"));
            }
            Ok(v)
        };
        if u32_of(&mut b) != Some(n) {
            return Err(bad("row count"));
        }
        let nseg = u32_of(&mut b).ok_or_else(|| bad("segments"))?;
        // as for codec 2: every row costs each column at least a byte or a length in
        // the raw streams (whose total the header gives, and the streams must match
        // before any row is built)
        // ... and, whatever the header says, the per-row segment table built below
        // (a u32 per row and column, also for columns of width 0, which cost the
        // streams nothing) stays small: blocks are sealed when their rows' metadata
        // (12 + 4 x segments bytes a row) reaches a few MiB, so MAX_CELLS is far above
        // any block this engine writes, and a small forged block cannot ask for GiBs
        let cells = n.checked_mul(nseg).ok_or_else(|| bad("segments"))?;
        if nseg == 0 || nseg > 4097 || cells > raw_len.saturating_mul(8) + 4096 || cells > MAX_CELLS {
            return Err(bad("segments"));
        }
        let keys = stream(&mut b)?;
        if keys.len() != n * 8 {
            return Err(bad("keys"));
        }
        let mut kb = Vec::with_capacity(n * 8);
        unshuffle(&keys, 8, n, &mut kb);
        self.keys.extend(kb.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())));
        // per column: the values' lengths (without the prefix), their bytes, and
        // how many bytes of length prefix to put back
        let mut cols: Vec<(Vec<u32>, Vec<u8>, usize)> = Vec::with_capacity(nseg);
        let mut total = 0usize;
        for _ in 0..nseg {
            let kind = take(&mut b, 1).ok_or_else(|| bad("column kind"))?[0];
            if kind == 1 {
                let w = u32_of(&mut b).ok_or_else(|| bad("width"))?;
                let v = stream(&mut b)?;
                if Some(v.len()) != n.checked_mul(w) {
                    return Err(bad("fixed column"));
                }
                let mut vals = Vec::with_capacity(v.len());
                unshuffle(&v, w, n, &mut vals);
                total += vals.len();
                cols.push((vec![w as u32; n], vals, 0));
                continue;
            }
            if kind != 2 && kind != 3 {
                return Err(bad("column kind"));
            }
            let prefix = take(&mut b, 1).ok_or_else(|| bad("prefix"))?[0] as usize;
            if prefix > 4 {
                return Err(bad("prefix"));
            }
            let lb = stream(&mut b)?;
            if lb.len() != n * 4 {
                return Err(bad("lengths"));
            }
            let mut lu = Vec::with_capacity(lb.len());
            unshuffle(&lb, 4, n, &mut lu);
            let lens: Vec<u32> = lu.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
            // with a prefix, a length is 0 (an empty value) or 1 + the text's length
            let text = |l: u32| if prefix == 0 { l as usize } else { (l as usize).saturating_sub(1) };
            let sum = lens.iter().map(|&l| text(l)).sum::<usize>();
            total = total.saturating_add(sum).saturating_add(n * prefix);
            if total > MAX_RAW || (prefix > 0 && prefix < 4 && lens.iter().any(|&l| text(l) as u64 >> (8 * prefix) != 0)) {
                return Err(bad("lengths"));
            }
            let vals = if kind == 2 {
                stream(&mut b)?
            } else {
                let width = take(&mut b, 1).ok_or_else(|| bad("id width"))?[0] as usize;
                let dict = stream(&mut b)?;
                let ids = stream(&mut b)?;
                untokenize(&dict, &ids, width, sum).ok_or_else(|| bad("words"))?
            };
            if vals.len() != sum {
                return Err(bad("column length"));
            }
            cols.push((lens, vals, prefix));
        }
        if !b.is_empty() || left != 0 {
            return Err(bad("trailing bytes"));
        }
        self.nseg = nseg;
        self.data.reserve(total);
        let mut at = vec![0usize; nseg];
        for i in 0..n {
            let row_start = self.data.len();
            for (c, (lens, vals, prefix)) in cols.iter().enumerate() {
                let mut l = lens[i] as usize;
                if *prefix > 0 && l > 0 {
                    l -= 1;
                    self.data.extend_from_slice(&(l as u32).to_le_bytes()[..*prefix]);
                }
                self.data.extend_from_slice(&vals[at[c]..at[c] + l]);
                at[c] += l;
                self.segs.push((self.data.len() - row_start) as u32);
            }
            if self.data.len() > u32::MAX as usize {
                return Err(bad("block too large"));
            }
            self.ends.push(self.data.len() as u32);
        }
        Ok(())
    }


    /// Checks and decompresses a block's payload into `self`.
    pub fn from_payload(&mut self, meta: &BlockMeta, payload: &[u8], what: &dyn Fn() -> String) -> Result<()> {
        if crc(payload) != meta.payload_crc {
            return Err(Error::Corrupt(format!("{}: payload checksum mismatch", what())));
        }
        if ![CODEC_ZSTD, CODEC_ZSTD_COLUMNS, CODEC_ZSTD_STREAMS].contains(&meta.codec) {
            return Err(Error::Corrupt(format!("{}: unknown codec {}", what(), meta.codec)));
        }
        // A header that checks out can still be hostile: bound what it makes us
        // allocate (a failed allocation aborts the server).
        if meta.raw_len as usize > MAX_RAW || meta.rows == 0 {
            return Err(Error::Corrupt(format!(
                "{}: impossible block ({} rows, {} bytes)",
                what(),
                meta.rows,
                meta.raw_len
            )));
        }
        if meta.codec == CODEC_ZSTD_STREAMS {
            self.clear();
            let r = self.from_streams(payload, meta.rows as usize, meta.raw_len as usize);
            return r.map_err(|why| {
                self.clear();
                Error::Corrupt(format!("{}: {why}", what()))
            });
        }
        let raw = zstd::bulk::decompress(payload, meta.raw_len as usize)
            .map_err(|e| Error::Corrupt(format!("{}: cannot decompress: {e}", what())))?;
        let bad = || Error::Corrupt(format!("{}: rows do not match the header", what()));
        if raw.len() != meta.raw_len as usize || raw.len() < 4 {
            return Err(bad());
        }
        let n = u32_at(&raw, 0) as usize;
        if n != meta.rows as usize {
            return Err(bad());
        }
        self.clear();
        if meta.codec == CODEC_ZSTD_COLUMNS {
            return self.from_columns(&raw[4..], n).ok_or_else(bad);
        }
        if raw.len() < 4 + n * 12 {
            return Err(bad());
        }
        let keys_at = 4;
        let ends_at = keys_at + n * 8;
        let data_at = ends_at + n * 4;
        self.keys.extend((0..n).map(|i| u64_at(&raw, keys_at + i * 8)));
        self.ends.extend((0..n).map(|i| u32_at(&raw, ends_at + i * 4)));
        self.data.extend_from_slice(&raw[data_at..]);
        let mut prev = 0;
        for &e in &self.ends {
            if e < prev || e as usize > self.data.len() {
                return Err(bad());
            }
            prev = e;
        }
        if prev as usize != self.data.len() {
            return Err(bad());
        }
        Ok(())
    }

    /// Rebuilds rows from the column layout; None if it does not add up.
    fn from_columns(&mut self, b: &[u8], n: usize) -> Option<()> {
        let take = |b: &mut &[u8], k: usize| -> Option<Vec<u8>> {
            if b.len() < k {
                return None;
            }
            let (h, t) = b.split_at(k);
            *b = t;
            Some(h.to_vec())
        };
        let mut b = b;
        let nseg = u32::from_le_bytes(take(&mut b, 4)?.try_into().ok()?) as usize;
        // a table has at most 4096 columns; every row costs each column at least a
        // length or a byte in the payload (or nothing, for width 0, which a real
        // table does not have many of)
        if nseg == 0 || nseg > 4097 || n.saturating_mul(nseg) > b.len().saturating_mul(8) + 4096 {
            return None;
        }
        let mut keys = Vec::new();
        unshuffle(&take(&mut b, n.checked_mul(8)?)?, 8, n, &mut keys);
        self.keys.extend(keys.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())));
        // per column: its values' lengths and bytes
        let mut cols: Vec<(Vec<u32>, Vec<u8>)> = Vec::with_capacity(nseg);
        for _ in 0..nseg {
            let kind = take(&mut b, 1)?[0];
            match kind {
                1 => {
                    let w = u32::from_le_bytes(take(&mut b, 4)?.try_into().ok()?) as usize;
                    let mut vals = Vec::new();
                    unshuffle(&take(&mut b, n.checked_mul(w)?)?, w, n, &mut vals);
                    cols.push((vec![w as u32; n], vals));
                }
                2 => {
                    let mut lb = Vec::new();
                    unshuffle(&take(&mut b, n.checked_mul(4)?)?, 4, n, &mut lb);
                    let lens: Vec<u32> = lb.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
                    let total = u32::from_le_bytes(take(&mut b, 4)?.try_into().ok()?) as usize;
                    if lens.iter().map(|&l| l as usize).sum::<usize>() != total {
                        return None;
                    }
                    cols.push((lens, take(&mut b, total)?));
                }
                _ => return None,
            }
        }
        if !b.is_empty() {
            return None;
        }
        self.nseg = nseg;
        let mut at = vec![0usize; nseg];
        for _ in 0..n {
            let row_start = self.data.len();
            for (c, (lens, vals)) in cols.iter().enumerate() {
                let l = lens[self.ends.len()] as usize;
                self.data.extend_from_slice(&vals[at[c]..at[c] + l]);
                at[c] += l;
                self.segs.push((self.data.len() - row_start) as u32);
            }
            self.ends.push(self.data.len() as u32);
        }
        Some(())
    }
}

/// One record of the pending file: length and CRC of what follows, the row id, the
/// key, the number of segments and their ends (u16, u32 each), the row image.
pub fn encode_pending(out: &mut Vec<u8>, row_id: u64, key: u64, segs: &[u32], image: &[u8]) {
    let start = out.len();
    let body = 2 + segs.len() * 4 + image.len();
    out.extend_from_slice(&(body as u32).to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&row_id.to_le_bytes());
    out.extend_from_slice(&key.to_le_bytes());
    out.extend_from_slice(&(segs.len() as u16).to_le_bytes());
    for s in segs {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out.extend_from_slice(image);
    let c = crc(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&c.to_le_bytes());
}

/// A decoded pending record.
pub struct PendingRecord<'a> {
    pub row_id: u64,
    pub key: u64,
    pub segs: Vec<u32>,
    pub image: &'a [u8],
    /// Bytes the record takes in the file.
    pub len: usize,
}

/// Decodes the pending record at the start of `b`. None when the record is
/// incomplete or its checksum fails (a torn tail).
pub fn decode_pending(b: &[u8]) -> Option<PendingRecord<'_>> {
    if b.len() < PENDING_HEADER_LEN {
        return None;
    }
    let len = u32_at(b, 0) as usize;
    let total = PENDING_HEADER_LEN.checked_add(len)?;
    if b.len() < total || len < 2 || crc(&b[8..total]) != u32_at(b, 4) {
        return None;
    }
    let body = &b[PENDING_HEADER_LEN..total];
    let nseg = u16::from_le_bytes([body[0], body[1]]) as usize;
    if body.len() < 2 + nseg * 4 {
        return None;
    }
    let segs = (0..nseg).map(|i| u32_at(body, 2 + i * 4)).collect();
    Some(PendingRecord {
        row_id: u64_at(b, 8),
        key: u64_at(b, 16),
        segs,
        image: &body[2 + nseg * 4..],
        len: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any set of rows survives a block round trip, and any flipped byte in the
        /// block is caught.
        #[test]
        fn block_round_trip_and_corruption(
            rows in prop::collection::vec((any::<u64>(), prop::collection::vec(any::<u8>(), 0..200), any::<u8>()), 1..50),
            columns in any::<bool>(),
            version in MIN_FORMAT_VERSION..=FORMAT_VERSION,
            flip in any::<prop::sample::Index>(),
        ) {
            let mut set = RowSet::default();
            for (k, r, cut) in &rows {
                // three segments: a fixed 0..min(2,len), a variable middle, the rest
                let a = r.len().min(2) as u32;
                let b = (a + (*cut as u32 % 64)).min(r.len() as u32);
                let segs = if columns { vec![a, b, r.len() as u32] } else { vec![] };
                set.push(*k, r, &segs);
            }
            prop_assert_eq!(set.nseg > 0, columns);
            let mut block = Vec::new();
            let meta = set.to_block(77, 3, version, &mut block).unwrap();
            let hdr = BlockMeta::decode(&block, 0).unwrap();
            prop_assert_eq!(hdr, meta);
            prop_assert_eq!(hdr.min_key, rows.iter().map(|r| r.0).min().unwrap());
            let mut back = RowSet::default();
            back.from_payload(&hdr, &block[BLOCK_HEADER_LEN..], &|| "b".into()).unwrap();
            prop_assert_eq!(back.len(), rows.len());
            for (i, (k, r, _)) in rows.iter().enumerate() {
                prop_assert_eq!(back.keys[i], *k);
                prop_assert_eq!(back.row(i), &r[..]);
                prop_assert_eq!(back.row_segs(i), set.row_segs(i));
            }
            let i = flip.index(block.len());
            block[i] ^= 0x40;
            let ok = match BlockMeta::decode(&block, 0) {
                None => false,
                Some(h) => back.from_payload(&h, &block[BLOCK_HEADER_LEN..], &|| "b".into()).is_ok() && h == meta,
            };
            prop_assert!(!ok, "a flipped byte at {} went unnoticed", i);
        }

        /// Codec 3 on columns like a real table's: fixed integers, length-prefixed
        /// strings (1 and 2 byte prefixes, as Field::pack() writes them), text made
        /// of words from a small vocabulary (tokenized), NULLs (empty segments); every
        /// row reads back, and a flipped byte is caught.
        #[test]
        fn streams_codec_round_trip(
            rows in prop::collection::vec((any::<u32>(), prop::collection::vec(0usize..40, 0..30), any::<bool>(), "[a-z ]{0,20}"), 1..400),
            vocab in prop::collection::vec("[a-zA-Z,.\\t\\n]{0,9}", 1..300),
            flip in any::<prop::sample::Index>(),
        ) {
            let mut set = RowSet::default();
            let mut images = Vec::new();
            for (i, (num, words, null, short)) in rows.iter().enumerate() {
                let mut img = vec![*null as u8];
                let mut segs = vec![1u32];
                img.extend_from_slice(&num.to_le_bytes());
                segs.push(img.len() as u32);
                img.push(short.len() as u8);
                img.extend_from_slice(short.as_bytes());
                segs.push(img.len() as u32);
                if !*null {
                    let text: Vec<u8> = words.iter().map(|&w| vocab[w % vocab.len()].as_str()).collect::<Vec<_>>().join(" ").into_bytes();
                    img.extend_from_slice(&(text.len() as u16).to_le_bytes());
                    img.extend_from_slice(&text);
                }
                segs.push(img.len() as u32);
                set.push(i as u64 * 3, &img, &segs);
                images.push(img);
            }
            let mut block = Vec::new();
            let meta = set.to_block(5, 3, FORMAT_VERSION, &mut block).unwrap();
            prop_assert_eq!(meta.codec, CODEC_ZSTD_STREAMS);
            let mut back = RowSet::default();
            back.from_payload(&meta, &block[BLOCK_HEADER_LEN..], &|| "b".into()).unwrap();
            prop_assert_eq!(back.len(), images.len());
            for (i, img) in images.iter().enumerate() {
                prop_assert_eq!(back.row(i), &img[..]);
                prop_assert_eq!(back.row_segs(i), set.row_segs(i));
                prop_assert_eq!(back.keys[i], i as u64 * 3);
            }
            let i = flip.index(block.len());
            block[i] ^= 0x10;
            let ok = match BlockMeta::decode(&block, 0) {
                None => false,
                Some(h) => back.from_payload(&h, &block[BLOCK_HEADER_LEN..], &|| "b".into()).is_ok() && h == meta,
            };
            prop_assert!(!ok, "a flipped byte at {} went unnoticed", i);
        }

        /// Codec 3 payloads that are well formed zstd but lie (a checksum that was
        /// recomputed over garbage) are refused, never a panic or a huge allocation.
        #[test]
        fn streams_codec_refuses_lies(
            garbage in prop::collection::vec(any::<u8>(), 0..600),
            rows in 1u32..100_000, raw in 0u32..(1 << 30),
        ) {
            let meta = BlockMeta {
                payload_len: garbage.len() as u32, raw_len: raw, rows, codec: CODEC_ZSTD_STREAMS,
                payload_crc: crc(&garbage), ..Default::default()
            };
            let mut back = RowSet::default();
            prop_assert!(back.from_payload(&meta, &garbage, &|| "b".into()).is_err());
        }

        #[test]
        fn pending_records_round_trip_and_torn_tails_are_seen(
            image in prop::collection::vec(any::<u8>(), 0..300), id in any::<u64>(), key in any::<u64>(), cut in 0usize..400,
            segs in prop::collection::vec(any::<u32>(), 0..5),
        ) {
            let mut b = Vec::new();
            encode_pending(&mut b, id, key, &segs, &image);
            let r = decode_pending(&b).unwrap();
            prop_assert_eq!((r.row_id, r.key, r.image, r.len, r.segs), (id, key, &image[..], b.len(), segs));
            if cut < b.len() {
                prop_assert!(decode_pending(&b[..cut]).is_none());
            }
        }
    }

    /// Text of words from a vocabulary (and NULLs) takes the word dictionary, and is
    /// much smaller than with codec 2; both codecs read back.
    #[test]
    fn words_beat_plain_text() {
        let vocab: Vec<String> = (0..500).map(|i| format!("w{}x{}", i * 7919 % 1000, "ab".repeat(i % 4))).collect();
        let mut set = RowSet::default();
        let mut x = 12345u64;
        for i in 0..3000u64 {
            let mut text = Vec::new();
            for _ in 0..20 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                text.extend_from_slice(vocab[(x >> 33) as usize % vocab.len()].as_bytes());
                text.push(b' ');
            }
            let mut img = (text.len() as u16).to_le_bytes().to_vec();
            img.extend_from_slice(&text);
            if i % 5 == 0 {
                img.clear(); // a NULL: an empty segment
            }
            set.push(i, &img, &[img.len() as u32]);
        }
        let (mut v1, mut v2) = (Vec::new(), Vec::new());
        let m1 = set.to_block(0, 9, 1, &mut v1).unwrap();
        let m2 = set.to_block(0, 9, 2, &mut v2).unwrap();
        assert_eq!((m1.codec, m2.codec), (CODEC_ZSTD_COLUMNS, CODEC_ZSTD_STREAMS));
        // the column after the keys stream: words (kind 3), 2-byte prefixes left out
        let p = &v2[BLOCK_HEADER_LEN..];
        let col = 16 + u32_at(p, 8) as usize;
        assert_eq!((p[col], p[col + 1]), (3, 2));
        assert!(v2.len() * 10 < v1.len() * 8, "codec 3 {} vs codec 2 {}", v2.len(), v1.len());
        for (m, b) in [(m1, &v1), (m2, &v2)] {
            let mut back = RowSet::default();
            back.from_payload(&m, &b[BLOCK_HEADER_LEN..], &|| "b".into()).unwrap();
            assert_eq!(back.data, set.data);
        }
    }

    /// A block that compresses to almost nothing (the same value in every row) is
    /// not mistaken for a hostile one.
    #[test]
    fn a_block_of_repeats_reads_back() {
        let mut set = RowSet::default();
        for i in 0..50_000u32 {
            let mut img = vec![0u8];
            img.extend_from_slice(&1u32.to_le_bytes());
            img.extend_from_slice(&i.to_le_bytes());
            img.push(50);
            img.extend_from_slice(&[b'a'; 50]);
            set.push(0, &img, &[1, 5, 9, img.len() as u32]);
        }
        for v in [1, 2] {
            let mut b = Vec::new();
            let m = set.to_block(0, 9, v, &mut b).unwrap();
            let mut back = RowSet::default();
            back.from_payload(&m, &b[BLOCK_HEADER_LEN..], &|| "b".into()).unwrap();
            assert_eq!((back.data == set.data, back.segs == set.segs), (true, true));
        }
    }

    #[test]
    fn file_header_versions() {
        for v in [1, 2, 3] {
            let h = FileHeader { version: v, auto_inc_base: 1, flags: 0, family: 0 };
            assert_eq!(FileHeader::decode(&h.encode(ARZ_MAGIC), ARZ_MAGIC, "f").unwrap(), h);
        }
        let h = FileHeader { version: FORMAT_VERSION + 1, auto_inc_base: 1, flags: 0, family: 0 };
        let e = FileHeader::decode(&h.encode(ARZ_MAGIC), ARZ_MAGIC, "f").unwrap_err().to_string();
        assert!(e.contains(&format!("version {}", FORMAT_VERSION + 1)), "{e}");
        // the family from version 4; before it, bytes 24..28 are not read (0 there)
        let h = FileHeader { version: FAMILY_SINCE, auto_inc_base: 1, flags: 7, family: FAMILY_MYSQL };
        assert_eq!(FileHeader::decode(&h.encode(ARZ_MAGIC), ARZ_MAGIC, "f").unwrap(), h);
        let mut old = FileHeader { version: FAMILY_SINCE - 1, auto_inc_base: 1, flags: 7, family: FAMILY_MYSQL }.encode(ARZ_MAGIC);
        assert_eq!(FileHeader::decode(&old, ARZ_MAGIC, "f").unwrap().family, FAMILY_MARIADB);
        old[24] = 0;
        assert!(FileHeader::decode(&old, ARZ_MAGIC, "f").is_err(), "the checksum covers the family's bytes");
    }

    #[test]
    fn file_header_is_checked() {
        let h = FileHeader { version: FORMAT_VERSION, auto_inc_base: 41, flags: 0, family: 0 };
        let mut b = h.encode(ARZ_MAGIC);
        assert_eq!(FileHeader::decode(&b, ARZ_MAGIC, "f").unwrap(), h);
        assert!(FileHeader::decode(&b, ARP_MAGIC, "f").is_err());
        b[13] ^= 1;
        assert!(FileHeader::decode(&b, ARZ_MAGIC, "f").is_err());
    }

    /// A forged block of 1 KiB whose 2^20 rows have 64 columns of width 0 (empty
    /// streams) must be refused before its segment table (256 MiB) is built.
    #[test]
    fn zero_width_columns_cannot_amplify_allocation() {
        let n: usize = 1 << 20;
        let nseg: usize = 64;
        let keys = vec![0u8; n * 8];
        let kz = zstd::bulk::compress(&keys, 19).unwrap();
        let mut p = Vec::new();
        p.extend_from_slice(&(n as u32).to_le_bytes());
        p.extend_from_slice(&(nseg as u32).to_le_bytes());
        p.extend_from_slice(&(kz.len() as u32).to_le_bytes());
        p.extend_from_slice(&((n * 8) as u32).to_le_bytes());
        p.extend_from_slice(&kz);
        for _ in 0..nseg {
            p.push(1);
            p.extend_from_slice(&0u32.to_le_bytes());
            p.extend_from_slice(&0u32.to_le_bytes());
            p.extend_from_slice(&0u32.to_le_bytes());
        }
        let meta = BlockMeta {
            payload_len: p.len() as u32,
            raw_len: (n * 8) as u32,
            rows: n as u32,
            codec: CODEC_ZSTD_STREAMS,
            payload_crc: crc(&p),
            ..Default::default()
        };
        let mut rs = RowSet::default();
        let err = rs.from_payload(&meta, &p, &|| "t.arz".into()).unwrap_err();
        assert!(err.to_string().contains("segments"), "{err}");
        assert!(rs.segs.capacity() * 4 < 64 << 20);
    }
}
