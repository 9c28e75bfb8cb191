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
/// Codec ids in a block header.
pub const CODEC_ZSTD: u32 = 1;
/// Per-record overhead in the pending file.
pub const PENDING_HEADER_LEN: usize = 24;

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

/// Rows being gathered for a block, or decoded from one: keys, then lengths, then
/// the row images, each section contiguous (columns compress better than rows).
#[derive(Default, Debug, Clone)]
pub struct RowSet {
    pub keys: Vec<u64>,
    pub ends: Vec<u32>,
    pub data: Vec<u8>,
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
    }
    pub fn push(&mut self, key: u64, image: &[u8]) {
        self.data.extend_from_slice(image);
        self.keys.push(key);
        self.ends.push(self.data.len() as u32);
    }
    pub fn row(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.data[start..self.ends[i] as usize]
    }
    pub fn raw_len(&self) -> usize {
        self.data.len() + self.keys.len() * 12
    }

    /// Serialises and compresses the rows into a block (header + payload).
    pub fn to_block(&self, first_row: u64, level: i32, out: &mut Vec<u8>) -> Result<BlockMeta> {
        let mut raw = Vec::with_capacity(self.raw_len() + 4);
        raw.extend_from_slice(&(self.len() as u32).to_le_bytes());
        for k in &self.keys {
            raw.extend_from_slice(&k.to_le_bytes());
        }
        for e in &self.ends {
            raw.extend_from_slice(&e.to_le_bytes());
        }
        raw.extend_from_slice(&self.data);
        let payload = zstd::bulk::compress(&raw, level)
            .map_err(|e| Error::io("cannot compress an archive block", e))?;
        let meta = BlockMeta {
            offset: 0,
            payload_len: payload.len() as u32,
            raw_len: raw.len() as u32,
            rows: self.len() as u32,
            codec: CODEC_ZSTD,
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
        if meta.codec != CODEC_ZSTD {
            return Err(Error::Corrupt(format!("{}: unknown codec {}", what(), meta.codec)));
        }
        let raw = zstd::bulk::decompress(payload, meta.raw_len as usize)
            .map_err(|e| Error::Corrupt(format!("{}: cannot decompress: {e}", what())))?;
        let bad = || Error::Corrupt(format!("{}: rows do not match the header", what()));
        if raw.len() != meta.raw_len as usize || raw.len() < 4 {
            return Err(bad());
        }
        let n = u32_at(&raw, 0) as usize;
        if n != meta.rows as usize || raw.len() < 4 + n * 12 {
            return Err(bad());
        }
        self.clear();
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
}

/// One record of the pending file: length and CRC of what follows, the row id, the
/// key, the row image.
pub fn encode_pending(out: &mut Vec<u8>, row_id: u64, key: u64, image: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&(image.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&row_id.to_le_bytes());
    out.extend_from_slice(&key.to_le_bytes());
    out.extend_from_slice(image);
    let c = crc(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&c.to_le_bytes());
}

/// Decodes the pending record at the start of `b`: (row id, key, image, length).
/// None when the record is incomplete or its checksum fails (a torn tail).
pub fn decode_pending(b: &[u8]) -> Option<(u64, u64, &[u8], usize)> {
    if b.len() < PENDING_HEADER_LEN {
        return None;
    }
    let len = u32_at(b, 0) as usize;
    let total = PENDING_HEADER_LEN + len;
    if b.len() < total || crc(&b[8..total]) != u32_at(b, 4) {
        return None;
    }
    Some((u64_at(b, 8), u64_at(b, 16), &b[PENDING_HEADER_LEN..total], total))
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
            rows in prop::collection::vec((any::<u64>(), prop::collection::vec(any::<u8>(), 0..200)), 1..50),
            flip in any::<prop::sample::Index>(),
        ) {
            let mut set = RowSet::default();
            for (k, r) in &rows {
                set.push(*k, r);
            }
            let mut block = Vec::new();
            let meta = set.to_block(77, 3, &mut block).unwrap();
            let hdr = BlockMeta::decode(&block, 0).unwrap();
            prop_assert_eq!(hdr, meta);
            prop_assert_eq!(hdr.min_key, rows.iter().map(|r| r.0).min().unwrap());
            let mut back = RowSet::default();
            back.from_payload(&hdr, &block[BLOCK_HEADER_LEN..], &|| "b".into()).unwrap();
            prop_assert_eq!(back.len(), rows.len());
            for (i, (k, r)) in rows.iter().enumerate() {
                prop_assert_eq!(back.keys[i], *k);
                prop_assert_eq!(back.row(i), &r[..]);
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
        ) {
            let mut b = Vec::new();
            encode_pending(&mut b, id, key, &image);
            let (i, k, img, n) = decode_pending(&b).unwrap();
            prop_assert_eq!((i, k, img, n), (id, key, &image[..], b.len()));
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
