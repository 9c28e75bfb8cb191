//! Entry points for the fuzz targets (`ci/fuzz`, cargo fuzz / libFuzzer), behind
//! the `fuzzing` feature: each feeds arbitrary bytes to one decoder of what the
//! engine reads from disk, and checks what the decoder promises. Every input must
//! decode or be refused: no panic, no hang, no allocation beyond the input's size
//! (docs/fuzzing.md).
use crate::archive::format::{ARZ_MAGIC, BlockMeta, FileHeader, RowSet, decode_pending};
use crate::btree::page::{Kind, PAGE_SIZE, Page, Val};
use crate::csv::codec::{Decoded, Record, decode_record};

/// The CSV record decoder over a whole file: the first byte picks the
/// separator, the rest is the file. Every step moves forward, fields lie inside
/// the decoded data, and at the end of the input nothing asks for more.
pub fn csv_records(data: &[u8]) {
    let Some((&s, buf)) = data.split_first() else { return };
    let sep = match s % 4 {
        0 => b',',
        1 => b';',
        2 => b'\t',
        _ => b'|',
    };
    let mut rec = Record::default();
    let mut at = 0;
    while at < buf.len() {
        match decode_record(&buf[at..], sep, true, &mut rec) {
            Decoded::Record { len, .. } | Decoded::Bad { len, .. } => {
                assert!(len > 0 && len <= buf.len() - at, "a step of {len} at {at} of {}", buf.len());
                for i in 0..rec.spans.len() {
                    let _ = rec.field(i);
                }
                at += len;
            }
            Decoded::NeedMore => panic!("NeedMore at the end of the input"),
        }
        // and the same bytes as a stream cut short: it may ask for more, never panic
        let _ = decode_record(&buf[at.min(buf.len())..], sep, false, &mut rec);
    }
}

/// The ARCHIVE file header, block header, block payload (zstd-compressed column
/// streams and the word dictionary) and pending-row record decoders.
pub fn archive_block(data: &[u8]) {
    let _ = FileHeader::decode(data, ARZ_MAGIC, "fuzz");
    let _ = decode_pending(data);
    if let Some(meta) = BlockMeta::decode(data, 0) {
        let hdr = crate::archive::format::BLOCK_HEADER_LEN;
        if data.len() > hdr {
            let mut rows = RowSet::default();
            if rows.from_payload(&meta, &data[hdr..], &|| "fuzz".to_string()).is_ok() {
                for i in 0..rows.len() {
                    let _ = (rows.row(i), rows.row_segs(i));
                }
            }
        }
    }
}

/// The B-tree page checks: a page `verify` accepts (its checksum made right
/// first, else nothing would pass) is read slot by slot without a panic.
pub fn btree_page(data: &[u8]) {
    let mut buf = Box::new([0u8; PAGE_SIZE]);
    let n = data.len().min(PAGE_SIZE);
    buf[..n].copy_from_slice(&data[..n]);
    let mut p = Page::from_buf(buf);
    p.seal();
    let no = p.no();
    if p.verify(no).is_ok() {
        // what the tree reads of each kind: keys and values of a leaf, keys and
        // children of an internal page (other kinds have no slots)
        match p.kind() {
            Kind::Leaf => {
                for i in 0..p.slots() {
                    let _ = p.key(i);
                    if let Val::Inline(v) = p.val(i) {
                        let _ = v.len();
                    }
                }
            }
            Kind::Internal => {
                for i in 0..p.slots() {
                    let _ = (p.key(i), p.child(i));
                }
            }
            _ => {}
        }
    }
}

/// A scratch file for a target that reads a file by path: in shared memory (no
/// disk sync slows the run), one per process.
fn scratch(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm".into() } else { std::env::temp_dir() };
    let p = dir.join(format!("ha_rust-fuzz-{}-{name}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The redo log reader and the record payload readers recovery uses. The input
/// is made a log whose header and record checksums are right (else nothing
/// would get past them): byte 0 picks the log version, the rest is the record
/// stream (`u32 length, u32 checksum, body`), each checksum recomputed. Every
/// record read is parsed as recovery parses its kind, and an MTR record's page
/// changes are applied to a scratch page.
pub fn redo_log(data: &[u8]) {
    use crate::btree::wal::records::{PAGE_DIFF, PAGE_NEW, apply_diff};
    use crate::btree::wal::log::{LOG_MAGIC, REC_MTR, REC_PREPARE, REC_RESET, REC_UNDO_CARRY, RedoLog};
    use crate::btree::wal::records::{parse_carry, parse_mtr, parse_prepare, parse_reset};
    let Some((&v, recs)) = data.split_first() else { return };
    let mut file = Vec::with_capacity(32 + recs.len());
    file.extend_from_slice(LOG_MAGIC);
    file.extend_from_slice(&(1 + v as u32 % 5).to_le_bytes()); // 1..=5: 5 is refused
    file.extend_from_slice(&1000u64.to_le_bytes());
    file.extend_from_slice(&[0u8; 8]);
    let c = crc32fast::hash(&file[0..28]);
    file.extend_from_slice(&c.to_le_bytes());
    let start = file.len();
    file.extend_from_slice(recs);
    let mut at = start;
    while at + 8 <= file.len() {
        let blen = u32::from_le_bytes(file[at..at + 4].try_into().unwrap()) as usize;
        if blen < 9 || at + 8 + blen > file.len() {
            break;
        }
        let c = crc32fast::hash(&file[at + 8..at + 8 + blen]);
        file[at + 4..at + 8].copy_from_slice(&c.to_le_bytes());
        at += 8 + blen;
    }
    let path = scratch("redo.log", &file);
    if let Ok((_log, records)) = RedoLog::open(&path, 0) {
        let mut page = vec![0u8; PAGE_SIZE];
        for r in &records {
            match r.kind {
                REC_MTR => {
                    if let Some((_, undo, pages)) = parse_mtr(&r.payload) {
                        let _ = crate::btree::tree::parse_undo(undo);
                        for ch in pages {
                            if ch.kind == PAGE_DIFF || ch.kind == PAGE_NEW {
                                assert!(apply_diff(&mut page, ch.bytes).is_some(), "parse_mtr passed a change apply_diff refuses");
                            }
                        }
                    }
                }
                REC_PREPARE => drop(parse_prepare(&r.payload)),
                REC_UNDO_CARRY => drop(parse_carry(&r.payload)),
                REC_RESET => drop(parse_reset(&r.payload)),
                _ => {}
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// The control file reader (`rust_control`), its checksum made right: byte 0
/// says whether to keep the input's own checksum instead.
pub fn control_file(data: &[u8]) {
    let Some((&keep, body)) = data.split_first() else { return };
    let mut b = body.to_vec();
    if keep & 1 == 0 {
        let c = crc32fast::hash(&b);
        b.extend_from_slice(&c.to_le_bytes());
    }
    let path = scratch("control", &b);
    let _ = crate::btree::wal::control::read_control(&path);
    let _ = std::fs::remove_file(&path);
}

/// A secondary entry's value and string key parts as an index-only read takes
/// them apart (tree formats 5 and 6): the split of the value into unpack bytes and
/// the primary key (`table::split_secondary_value`), a chunked key part's length
/// and weights (`keys::value_len`, `keys::decode`), and the unpack item
/// (`unpack::decode`). Byte 0 picks the units (bit 0) and where the rest splits
/// into a key and a value (bits 1-7). An item that decodes used no more than
/// its bytes and gave no more characters than the weights and its codes say;
/// and the input taken as a value, with an ASCII case fold as its collation,
/// comes back from its own item exactly (`unpack::encode`).
pub fn btree_key_unpack(data: &[u8]) {
    use crate::btree::keys::{self, PART_CHUNKED, PART_PAD_SPACE};
    use crate::btree::unpack::{self, Units};
    let Some((&sel, rest)) = data.split_first() else { return };
    let units = if sel & 1 == 0 { Units::Narrow } else { Units::Wide };
    let (key, value) = rest.split_at(((sel >> 1) as usize).min(rest.len()));
    if let Ok((unpack, pk)) = crate::btree::table::split_secondary_value(key, value, crate::btree::table::mvcc::SecValue::Unpack) {
        assert!(unpack.len() < value.len() && !pk.is_empty() && pk.len() <= key.len());
    }
    let mut w = Vec::new();
    for (spec, pad) in [
        (PART_CHUNKED | PART_PAD_SPACE | 1, &b" "[..]),
        (PART_CHUNKED | PART_PAD_SPACE | 2, &b"\x00\x20"[..]),
        (PART_CHUNKED | 1, &b" "[..]),
        (PART_CHUNKED, &b""[..]),
    ] {
        assert!(keys::value_len(key, spec) <= key.len());
        w.clear();
        if keys::decode(key, spec, pad, &mut w) {
            assert!(w.len() <= key.len() * 8);
        }
    }
    let mut out = Vec::new();
    if let Some(used) = unpack::decode(key, value, units, &mut out) {
        assert!(used <= value.len());
        assert!(out.len() <= value.len() + 4 * (key.len() + 8 * value.len()));
    }
    // the round trip
    let (weights, key_weights): (Vec<u8>, Vec<u8>) = match units {
        Units::Narrow => {
            let w: Vec<u8> = rest.iter().map(|b| b.to_ascii_uppercase()).collect();
            let n = w.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
            (w.clone(), w[..n].to_vec())
        }
        Units::Wide => {
            let Ok(s) = std::str::from_utf8(rest) else { return };
            let folded: String = s.chars().map(|c| if c as u32 > 0xffff { '\u{fffd}' } else { c.to_ascii_uppercase() }).collect();
            let w = folded.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
            (w, folded.trim_end_matches(' ').as_bytes().to_vec())
        }
    };
    let mut item = Vec::new();
    unpack::encode(rest, &weights, units, &mut item);
    assert!(item.len() <= unpack::max_len(rest.len()));
    out.clear();
    assert_eq!(unpack::decode(&key_weights, &item, units, &mut out), Some(item.len()));
    assert_eq!(out, rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input kept in the fuzz corpora (ci/fuzz/corpus/<target>/, the crashes
    /// fuzzing found included) goes through its target again on every `cargo test`.
    #[test]
    fn the_fuzz_corpora_still_pass() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/fuzz/corpus");
        let targets: [(&str, fn(&[u8])); 6] = [
            ("csv_records", csv_records),
            ("archive_block", archive_block),
            ("btree_page", btree_page),
            ("redo_log", redo_log),
            ("control_file", control_file),
            ("btree_key_unpack", btree_key_unpack),
        ];
        let mut seen = 0;
        for (name, f) in targets {
            let Ok(rd) = std::fs::read_dir(root.join(name)) else { continue };
            for e in rd.flatten() {
                f(&std::fs::read(e.path()).unwrap());
                seen += 1;
            }
        }
        assert!(seen > 0, "no corpus under {}", root.display());
    }

    /// A few inputs of each kind, so the targets run even without the corpora.
    #[test]
    fn the_fuzz_targets_take_edge_inputs() {
        for d in [&b""[..], b"\x00", b"\x00a,\"b", b"\x01\"\"\"\n\r", b"\x02\\", &[0xffu8; 70][..]] {
            csv_records(d);
            archive_block(d);
            btree_page(d);
            redo_log(d);
            control_file(d);
            btree_key_unpack(d);
        }
    }
}
