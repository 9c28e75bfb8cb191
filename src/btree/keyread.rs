//! Index-only reads: the columns of a secondary entry's key parts, and of the
//! primary key's parts after them, read back from the entry's key and unpack
//! bytes in one pass (docs/btree-format.md, "Index-only reads").
//!
//! Which parts read back, and how, depends on each column's type and collation,
//! which only the server shim knows: it gives a [`Plan`] when the table opens
//! (one list of [`Part`]s a server key). What a read gives is bytes per part in
//! the column's own byte order, or NULL, or nothing (a part that does not read
//! back); the shim stores them into its record. This module knows only the key
//! format: fixed parts, the chunked string parts of [`super::keys`] and the
//! unpack items of [`super::unpack`]. It never trusts an entry: one that does not
//! decode is an error, never a panic or a wrong value.

use super::keys::{self, PART_CHUNKED, PART_PAD_SPACE};
use super::unpack::{self, Units};

/// How one key part's column reads back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// It does not: the part is stepped over.
    None,
    /// The key bytes are the column's.
    Copy,
    /// The key bytes reversed (a little-endian column keyed big-endian).
    Reverse,
    /// Reversed, then the sign bit flipped (a signed integer).
    ReverseSigned,
    /// A string whose collation weights are its bytes (binary and `_bin`
    /// collations), from the key's chunks; `trail`: a PAD SPACE part, whose
    /// trailing spaces the key drops, with their count (LEB128) in the unpack
    /// bytes.
    StringKey { trail: bool },
    /// A string kept whole in the unpack bytes (LEB128 length, bytes).
    StringValue,
    /// A string rebuilt from its weights and its compact unpack item.
    StringCase(Units),
}

/// One key part: its layout in the key and how it reads back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// Its layout ([`keys::value_len`]'s spec: a fixed length, or a chunked
    /// string part's space unit length with [`PART_CHUNKED`] and
    /// [`PART_PAD_SPACE`]).
    pub spec: u32,
    /// A 0/1 byte first, and nothing after a 0 (NULL).
    pub nullable: bool,
    pub read: Read,
}

/// What one part read gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Got {
    /// Nothing: the part does not read back.
    Skip,
    Null,
    /// The column's bytes: `out[at..at + len]`.
    Value { at: usize, len: usize },
}

/// The reading plan of a table's indexes, from the shim.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// By server key number.
    keys: Vec<Vec<Part>>,
    /// The primary key's server key number, when every part of it reads back
    /// (then a secondary entry's columns include the primary key's, read after
    /// the key's own parts).
    pk: Option<usize>,
    /// Scratch: a string part's weights.
    weights: Vec<u8>,
}

/// The longest run of trailing spaces a column can have (a VARCHAR's bytes).
const MAX_TRAIL: usize = 65_535;

impl Plan {
    pub fn new(keys: Vec<Vec<Part>>, pk: Option<usize>) -> Plan {
        Plan { keys, pk, weights: Vec::new() }
    }

    /// The parts of secondary entry `entry` (key bytes, then the primary key's)
    /// with unpack bytes `unpack`, read by the plan of server key `key` and then
    /// (when it reads back) the primary key's: one [`Got`] a part into `got`, the
    /// bytes into `out` (both cleared first). Err: what does not decode.
    pub fn read(&mut self, key: usize, entry: &[u8], unpack: &[u8], out: &mut Vec<u8>, got: &mut Vec<Got>) -> Result<(), String> {
        out.clear();
        got.clear();
        let (mut at, mut uat) = (0usize, 0usize);
        let pk = self.pk.filter(|&p| p != key);
        for k in std::iter::once(key).chain(pk) {
            let parts = self.keys.get(k).ok_or_else(|| format!("no reading plan for key {k}"))?;
            for (i, part) in parts.iter().enumerate() {
                let g = read_part(part, entry, &mut at, unpack, &mut uat, &mut self.weights, out)
                    .ok_or_else(|| format!("key {k}, part {}: the entry does not decode at byte {at}", i + 1))?;
                got.push(g);
            }
        }
        Ok(())
    }
}

/// One part at `entry[*at..]` (and its unpack item at `unpack[*uat..]`), both
/// stepped over. None: it does not decode.
fn read_part(part: &Part, entry: &[u8], at: &mut usize, unpack: &[u8], uat: &mut usize, w: &mut Vec<u8>, out: &mut Vec<u8>) -> Option<Got> {
    if part.nullable {
        let b = *entry.get(*at)?;
        *at += 1;
        if b == 0 {
            return Some(if part.read == Read::None { Got::Skip } else { Got::Null });
        }
    }
    let rest = entry.get(*at..)?;
    let chunked = part.spec & PART_CHUNKED != 0;
    let start = out.len();
    let len = match part.read {
        Read::StringCase(units) => {
            // the part's length is found by decoding its chunks; the key's
            // weights of a code point collation are UTF-8 with 0x20 for a
            // space (keys::CODE_POINT_SPACE), so read as a 1-byte unit's
            let unit = match units {
                Units::Wide => 2,
                Units::Narrow => 1,
            };
            if !chunked || part.spec & 0xffff != unit {
                return None;
            }
            w.clear();
            let len = keys::decode_part(rest, PART_CHUNKED | PART_PAD_SPACE | 1, b" ", w)?;
            *uat += unpack::decode(w, unpack.get(*uat..)?, units, out)?;
            len
        }
        _ => {
            let len = if chunked { keys::value_len(rest, part.spec) } else { (part.spec & 0x0fff_ffff) as usize };
            let bytes = rest.get(..len)?;
            match part.read {
                Read::None => {
                    *at += len;
                    return Some(Got::Skip);
                }
                Read::Copy => out.extend_from_slice(bytes),
                Read::Reverse | Read::ReverseSigned => {
                    out.extend(bytes.iter().rev());
                    if part.read == Read::ReverseSigned && len > 0 {
                        out[start + len - 1] ^= 0x80;
                    }
                }
                Read::StringKey { trail } => {
                    let pad: &[u8] = if chunked && part.spec & 0xffff != 0 { b" " } else { b"" };
                    if !keys::decode(bytes, part.spec, pad, out) || out.len() - start > len {
                        return None;
                    }
                    if trail {
                        let sp = unpack::get_leb(unpack, uat)?;
                        if sp > MAX_TRAIL {
                            return None;
                        }
                        out.resize(out.len() + sp, b' ');
                    }
                }
                Read::StringValue => {
                    let n = unpack::get_leb(unpack, uat)?;
                    let v = unpack.get(*uat..uat.checked_add(n)?)?;
                    *uat += n;
                    out.extend_from_slice(v);
                }
                Read::StringCase(_) => unreachable!("read above"),
            }
            len
        }
    };
    *at += len;
    Some(Got::Value { at: start, len: out.len() - start })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chunked(w: &[u8], pad: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        keys::encode(w, pad, &mut v);
        v
    }

    fn value(out: &[u8], g: Got) -> &[u8] {
        match g {
            Got::Value { at, len } => &out[at..at + len],
            other => panic!("expected a value, got {other:?}"),
        }
    }

    const INT: Part = Part { spec: 4, nullable: false, read: Read::ReverseSigned };

    #[test]
    fn fixed_parts_and_nulls_read_back_in_column_order() {
        // (nullable INT UNSIGNED 7, nullable DATE-like NULL, DECIMAL copy, not read) then pk INT -2
        let k0 = vec![
            Part { spec: 4, nullable: true, read: Read::Reverse },
            Part { spec: 3, nullable: true, read: Read::Reverse },
            Part { spec: 2, nullable: false, read: Read::Copy },
            Part { spec: 8, nullable: false, read: Read::None },
        ];
        let mut plan = Plan::new(vec![vec![INT], k0], Some(0));
        let mut e = vec![1, 0, 0, 0, 7, 0, 0xAB, 0xCD];
        e.extend_from_slice(&[9; 8]);
        e.extend_from_slice(&((-2i32 as u32) ^ 0x8000_0000).to_be_bytes());
        let (mut out, mut got) = (Vec::new(), Vec::new());
        plan.read(1, &e, &[], &mut out, &mut got).unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(value(&out, got[0]), &7u32.to_le_bytes());
        assert_eq!(got[1], Got::Null);
        assert_eq!(value(&out, got[2]), &[0xAB, 0xCD]);
        assert_eq!(got[3], Got::Skip);
        assert_eq!(value(&out, got[4]), &(-2i32).to_le_bytes());
        // a NULL in a part that does not read back is skipped, not NULL
        let mut plan = Plan::new(vec![vec![Part { spec: 4, nullable: true, read: Read::None }]], None);
        plan.read(0, &[0], &[], &mut out, &mut got).unwrap();
        assert_eq!(got, vec![Got::Skip]);
    }

    #[test]
    fn string_parts_read_back_from_key_and_unpack_bytes() {
        // utf8mb4_bin VARCHAR 'ab  ' (PAD SPACE: the key drops the spaces, the
        // unpack bytes count them), a NO PAD binary 'x\0', a value kept whole,
        // and a case-folded 'Ab' (weights 'AB')
        let mut e = chunked(b"ab", b" ");
        e.extend_from_slice(&chunked(b"x\0", b""));
        e.extend_from_slice(&chunked(b"ZZ", b" "));
        e.extend_from_slice(&chunked(b"AB", b" "));
        let mut u = vec![2];                     // two trailing spaces
        u.extend_from_slice(&[3, b'q', b'r', b's']); // the value kept whole
        unpack::encode(b"Ab", b"AB", Units::Narrow, &mut u);
        let parts = vec![
            Part { spec: 1 | PART_CHUNKED | PART_PAD_SPACE, nullable: false, read: Read::StringKey { trail: true } },
            Part { spec: PART_CHUNKED, nullable: false, read: Read::StringKey { trail: false } },
            Part { spec: 1 | PART_CHUNKED | PART_PAD_SPACE, nullable: false, read: Read::StringValue },
            Part { spec: 1 | PART_CHUNKED | PART_PAD_SPACE, nullable: false, read: Read::StringCase(Units::Narrow) },
        ];
        let mut plan = Plan::new(vec![parts], None);
        let (mut out, mut got) = (Vec::new(), Vec::new());
        plan.read(0, &e, &u, &mut out, &mut got).unwrap();
        let vals: Vec<&[u8]> = got.iter().map(|&g| value(&out, g)).collect();
        assert_eq!(vals, vec![&b"ab  "[..], b"x\0", b"qrs", b"Ab"]);
    }

    #[test]
    fn the_primary_key_is_read_after_the_key_unless_it_is_the_key() {
        let mut plan = Plan::new(vec![vec![INT], vec![Part { spec: 1, nullable: false, read: Read::Copy }]], Some(0));
        let (mut out, mut got) = (Vec::new(), Vec::new());
        plan.read(1, &[5, 0x80, 0, 0, 3], &[], &mut out, &mut got).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(value(&out, got[1]), &3i32.to_le_bytes());
        plan.read(0, &[0x80, 0, 0, 3], &[], &mut out, &mut got).unwrap();
        assert_eq!(got.len(), 1);
        // no plan for a key: an error, not a panic
        assert!(plan.read(7, &[0x80, 0, 0, 3], &[], &mut out, &mut got).is_err());
    }

    #[test]
    fn damaged_entries_are_errors() {
        let mut plan = Plan::new(
            vec![vec![
                Part { spec: 1 | PART_CHUNKED | PART_PAD_SPACE, nullable: true, read: Read::StringValue },
                INT,
            ]],
            None,
        );
        let (mut out, mut got) = (Vec::new(), Vec::new());
        let mut e = vec![1];
        e.extend_from_slice(&chunked(b"AB", b" "));
        e.extend_from_slice(&[0x80, 0, 0, 1]);
        assert!(plan.read(0, &e, &[2, b'a', b'b'], &mut out, &mut got).is_ok());
        for cut in 0..e.len() {
            assert!(plan.read(0, &e[..cut], &[2, b'a', b'b'], &mut out, &mut got).is_err(), "cut at {cut}");
        }
        assert!(plan.read(0, &e, &[3, b'a', b'b'], &mut out, &mut got).is_err(), "item past its end");
        assert!(plan.read(0, &e, &[], &mut out, &mut got).is_err(), "no item");
    }

    proptest! {
        /// Any bytes: an answer or an error, never a panic, and every value
        /// within `out`.
        #[test]
        fn any_bytes_decode_or_fail_cleanly(e in proptest::collection::vec(any::<u8>(), 0..64),
                                            u in proptest::collection::vec(any::<u8>(), 0..32),
                                            kinds in proptest::collection::vec(0u8..7, 1..4)) {
            let parts = kinds.iter().map(|&k| {
                let read = [Read::None, Read::Copy, Read::ReverseSigned, Read::StringKey { trail: true },
                            Read::StringValue, Read::StringCase(Units::Wide), Read::StringCase(Units::Narrow)][k as usize];
                let spec = match read {
                    Read::StringCase(Units::Wide) => 2 | PART_CHUNKED | PART_PAD_SPACE,
                    Read::StringKey { .. } | Read::StringValue | Read::StringCase(_) => 1 | PART_CHUNKED | PART_PAD_SPACE,
                    _ => 3,
                };
                Part { spec, nullable: k % 2 == 0, read }
            }).collect();
            let mut plan = Plan::new(vec![parts], None);
            let (mut out, mut got) = (Vec::new(), Vec::new());
            if plan.read(0, &e, &u, &mut out, &mut got).is_ok() {
                for g in got {
                    if let Got::Value { at, len } = g {
                        prop_assert!(at + len <= out.len());
                    }
                }
            }
        }
    }
}
