//! On-disk structures of the ARCHIVE layout (spec: `docs/archive-format.md`).
//!
//! - `<table>.arz`: a file header, then compressed blocks of rows, append-only.
//! - `<table>.arp`: a header, then rows not yet in a block, one checksummed record each.
//!
//! All integers little-endian. Every header, payload and record carries a CRC-32.

use crate::error::{Error, Result};

pub const ARZ_MAGIC: &[u8; 8] = b"RUSTARZ\0";
pub const ARP_MAGIC: &[u8; 8] = b"RUSTARP\0";
pub const FORMAT_VERSION: u32 = 1;
pub const FILE_HEADER_LEN: usize = 32;
pub const BLOCK_MAGIC: u32 = u32::from_le_bytes(*b"BLK1");
pub const BLOCK_HEADER_LEN: usize = 56;
/// Codec ids in a block header: rows one after another, or split into columns
/// (see `docs/archive-format.md`), then zstd.
pub const CODEC_ZSTD: u32 = 1;
pub const CODEC_ZSTD_COLUMNS: u32 = 2;
/// Per-record overhead in the pending file.
pub const PENDING_HEADER_LEN: usize = 24;
/// The largest decompressed block accepted (the engine writes at most a few MiB,
/// or one row: the server caps a row at max_allowed_packet, at most 1 GiB).
pub const MAX_RAW: usize = 1 << 30;

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
/// AUTO_INCREMENT base; 0 in `.arp`), flags, and a CRC of the bytes before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeader {
    pub version: u32,
    pub auto_inc_base: u64,
    pub flags: u32,
}

impl FileHeader {
    pub fn encode(&self, magic: &[u8; 8]) -> [u8; FILE_HEADER_LEN] {
        let mut b = [0u8; FILE_HEADER_LEN];
        b[0..8].copy_from_slice(magic);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[12..20].copy_from_slice(&self.auto_inc_base.to_le_bytes());
        b[20..24].copy_from_slice(&self.flags.to_le_bytes());
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
        if version != FORMAT_VERSION {
            return Err(Error::Unsupported(format!(
                "{file}: archive format version {version}; this build reads version {FORMAT_VERSION}"
            )));
        }
        Ok(FileHeader { version, auto_inc_base: u64_at(b, 12), flags: u32_at(b, 20) })
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

    /// Serialises and compresses the rows into a block (header + payload).
    pub fn to_block(&self, first_row: u64, level: i32, out: &mut Vec<u8>) -> Result<BlockMeta> {
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
        let payload = zstd::bulk::compress(&raw, level)
            .map_err(|e| Error::io("cannot compress an archive block", e))?;
        let meta = BlockMeta {
            offset: 0,
            payload_len: payload.len() as u32,
            raw_len: raw.len() as u32,
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

    /// Checks and decompresses a block's payload into `self`.
    pub fn from_payload(&mut self, meta: &BlockMeta, payload: &[u8], what: &dyn Fn() -> String) -> Result<()> {
        if crc(payload) != meta.payload_crc {
            return Err(Error::Corrupt(format!("{}: payload checksum mismatch", what())));
        }
        if meta.codec != CODEC_ZSTD && meta.codec != CODEC_ZSTD_COLUMNS {
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
            let meta = set.to_block(77, 3, &mut block).unwrap();
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

    #[test]
    fn file_header_is_checked() {
        let h = FileHeader { version: FORMAT_VERSION, auto_inc_base: 41, flags: 0 };
        let mut b = h.encode(ARZ_MAGIC);
        assert_eq!(FileHeader::decode(&b, ARZ_MAGIC, "f").unwrap(), h);
        assert!(FileHeader::decode(&b, ARP_MAGIC, "f").is_err());
        b[13] ^= 1;
        assert!(FileHeader::decode(&b, ARZ_MAGIC, "f").is_err());
    }
}
#[cfg(test)]
mod size_probe {
    use super::*;
    #[test]
    #[ignore]
    fn probe() {
        for (nrows, label) in [(20000usize, "small"), (80000, "big")] {
            for cols in [false, true] {
                let mut set = RowSet::default();
                for i in 0..nrows {
                    let r = format!("row number {i} with some repeated text text text").into_bytes();
                    let segs = if cols { vec![4.min(r.len() as u32), r.len() as u32] } else { vec![] };
                    set.push(i as u64, &r, &segs);
                }
                let mut out = Vec::new();
                let m = set.to_block(0, 3, &mut out).unwrap();
                eprintln!("{label} cols={cols} raw={} comp={}", m.raw_len, m.payload_len);
            }
        }
    }
}
