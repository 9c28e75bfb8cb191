//! Variable-length memcomparable string key parts (key format 3, spec in
//! docs/btree-format.md, "String key parts").
//!
//! C++ gives a string key part's collation weights (the collation's `strnxfrm`
//! of the value, without padding) and, for a PAD SPACE collation, the weight
//! string of one space (the unit `strnxfrm` pads with). This module turns them
//! into bytes that compare with `memcmp` as the collation compares the values,
//! taking space in proportion to the value, and tells where such a part ends in
//! a key (for the statistics and for C++ stepping over parts).
//!
//! - PAD SPACE (`pad` not empty): a value compares as its weights followed by
//!   the space unit repeated without end. The weights, their trailing space units
//!   dropped, are cut into chunks of [`chunk_len`] bytes (a multiple of the unit),
//!   the last one filled with space units; each chunk is followed by a marker:
//!   [`PAD_END`] for the last chunk, else [`PAD_LESS`] or [`PAD_MORE`] as the
//!   weights after the chunk compare below or above spaces. So `'a'`, `'a '` are
//!   one key, and `'a\t'` (a tab weighs less than a space) sorts before `'a'`.
//! - NO PAD and binary (`pad` empty): chunks of [`NOPAD_CHUNK`] bytes, the last
//!   one filled with zero bytes, each followed by the number of the value's bytes
//!   in it, or `NOPAD_CHUNK + 1` when more chunks follow: a shorter value sorts
//!   before a longer one it begins.
//!
//! Every part has at least one chunk, and no part's bytes are a prefix of
//! another's, so the parts that follow (and the primary key after a secondary
//! key) never take part in comparing two different values.

/// Chunk length of NO PAD and binary parts.
pub const NOPAD_CHUNK: usize = 8;
/// PAD SPACE markers: the weights after this chunk compare below spaces...
pub const PAD_LESS: u8 = 1;
/// ... this is the last chunk (what follows is spaces) ...
pub const PAD_END: u8 = 2;
/// ... or above spaces.
pub const PAD_MORE: u8 = 3;

/// Chunk length for a PAD SPACE collation whose space unit is `pad_len` bytes:
/// the smallest multiple of it that is at least 8.
pub fn chunk_len(pad_len: usize) -> usize {
    if pad_len == 0 {
        NOPAD_CHUNK
    } else {
        pad_len * NOPAD_CHUNK.div_ceil(pad_len)
    }
}

/// The most bytes [`encode`] writes for at most `weights` bytes of weights.
pub fn max_len(weights: usize, pad_len: usize) -> usize {
    let c = chunk_len(pad_len);
    // (+pad_len: misaligned weights are completed to a whole unit; 2-byte
    // units may become 3 bytes, see `CODE_POINT_SPACE`)
    let w = if pad_len == 2 { (weights + 2) / 2 * 3 } else { weights + pad_len };
    w.div_ceil(c).max(1) * (c + 1)
}

/// The space's weight in the collations whose weights are 2-byte code points
/// (utf8mb3/utf8mb4/ucs2/utf16 `general_ci` and the like): their weights are
/// written as UTF-8 (1 byte for the ASCII range, which is most keys; the order
/// of UTF-8 is that of the code points, and no code begins another, so the
/// order of the weights, padded with spaces, is kept), and the space unit is
/// then 0x20.
pub const CODE_POINT_SPACE: [u8; 2] = [0x00, 0x20];

fn utf8_units(weights: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(weights.len());
    for u in weights.chunks(2) {
        // (an odd last byte is completed with the space's second byte, as
        // `encode` completes a unit)
        let w = (u[0] as u32) << 8 | *u.get(1).unwrap_or(&CODE_POINT_SPACE[1]) as u32;
        if w < 0x80 {
            v.push(w as u8);
        } else if w < 0x800 {
            v.extend([0xc0 | (w >> 6) as u8, 0x80 | (w & 0x3f) as u8]);
        } else {
            v.extend([0xe0 | (w >> 12) as u8, 0x80 | ((w >> 6) & 0x3f) as u8, 0x80 | (w & 0x3f) as u8]);
        }
    }
    v
}

/// Appends the memcomparable bytes of a string key part to `out` (see the
/// module's text); `pad` is the space unit, empty for NO PAD and binary.
pub fn encode(weights: &[u8], pad: &[u8], out: &mut Vec<u8>) {
    if pad.is_empty() {
        encode_nopad(weights, out);
        return;
    }
    if pad == CODE_POINT_SPACE {
        encode(&utf8_units(weights), b" ", out);
        return;
    }
    let u = pad.len();
    let c = chunk_len(u);
    // The weights and then spaces. Weights come in whole units in every 10.11
    // collation; should they not, the last unit is completed with the space
    // unit's bytes (consistently, so the order of such keys is still total).
    let at = |i: usize| if i < weights.len() { weights[i] } else { pad[i % u] };
    let mut n = weights.len().div_ceil(u) * u;
    // drop trailing space units
    while n >= u && (n - u..n).all(|i| at(i) == pad[i % u]) {
        n -= u;
    }
    let chunks = n.div_ceil(c).max(1);
    for k in 0..chunks {
        out.extend((k * c..(k + 1) * c).map(at));
        if k + 1 == chunks {
            out.push(PAD_END);
        } else {
            // the first byte after this chunk that differs from spaces (there is
            // one: the weights end with a unit that is not the space)
            let i = ((k + 1) * c..n).find(|&i| at(i) != pad[i % u]).unwrap_or(n - 1);
            out.push(if at(i) < pad[i % u] { PAD_LESS } else { PAD_MORE });
        }
    }
}

fn encode_nopad(weights: &[u8], out: &mut Vec<u8>) {
    let c = NOPAD_CHUNK;
    let chunks = weights.len().div_ceil(c).max(1);
    for k in 0..chunks {
        let part = &weights[(k * c).min(weights.len())..((k + 1) * c).min(weights.len())];
        out.extend_from_slice(part);
        out.resize(out.len() + c - part.len(), 0);
        out.push(if k + 1 == chunks { part.len() as u8 } else { c as u8 + 1 });
    }
}

/// Key part layout bits (C++ `part_layout`, [`crate::btree::table::PART_NULLABLE`]
/// is bit 31): a variable-length string part of format 3; the low 16 bits are
/// the length of its space unit (0: NO PAD or binary), which gives its chunk
/// length ([`chunk_len`]).
pub const PART_CHUNKED: u32 = 1 << 30;
/// With [`PART_CHUNKED`]: a PAD SPACE part (markers [`PAD_LESS`]..[`PAD_MORE`]).
pub const PART_PAD_SPACE: u32 = 1 << 29;

/// The length of the value bytes of a part with layout `spec` (its null byte
/// excluded) at the start of `key`; for a part cut short, what is there. Bit 31
/// (nullable) is ignored.
pub fn value_len(key: &[u8], spec: u32) -> usize {
    if spec & PART_CHUNKED == 0 {
        return ((spec & 0x0fff_ffff) as usize).min(key.len());
    }
    let c = chunk_len((spec & 0xffff) as usize);
    let mut off = 0;
    while off + c < key.len() {
        let m = key[off + c];
        off += c + 1;
        let last = if spec & PART_PAD_SPACE != 0 { m == PAD_END } else { m as usize <= c };
        if last {
            return off;
        }
    }
    key.len()
}

/// The weights of the chunked part with layout `spec` at the start of `key`
/// back into `out` (the inverse of [`encode`] where it is one: NO PAD and binary
/// parts give their weights exactly; PAD SPACE parts give them without their
/// trailing space units, `pad` being the unit; the code point collations'
/// UTF-8 form is not undone: never asked for). False when `key` is not such a
/// part (cut short, a marker out of place, not chunked).
pub fn decode(key: &[u8], spec: u32, pad: &[u8], out: &mut Vec<u8>) -> bool {
    decode_part(key, spec, pad, out).is_some()
}

/// [`decode`], giving how many bytes of `key` the part took (its
/// [`value_len`]), or None.
pub fn decode_part(key: &[u8], spec: u32, pad: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    if spec & PART_CHUNKED == 0 || pad.len() != (spec & 0xffff) as usize || pad == CODE_POINT_SPACE {
        return None;
    }
    let pad_space = spec & PART_PAD_SPACE != 0;
    if pad_space == pad.is_empty() {
        return None;
    }
    let c = chunk_len(pad.len());
    let mut off = 0;
    while off + c < key.len() {
        let (chunk, m) = (&key[off..off + c], key[off + c]);
        off += c + 1;
        if pad_space {
            out.extend_from_slice(chunk);
            match m {
                PAD_END => {
                    let u = pad.len();
                    while out.len() >= u && out[out.len() - u..] == *pad {
                        out.truncate(out.len() - u);
                    }
                    return Some(off);
                }
                PAD_LESS | PAD_MORE => {}
                _ => return None,
            }
        } else if m as usize <= c {
            out.extend_from_slice(&chunk[..m as usize]);
            return Some(off);
        } else if m as usize == c + 1 {
            out.extend_from_slice(chunk);
        } else {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    /// The collation's order: weights compared as if the shorter one were padded
    /// with space units without end (PAD SPACE), or as they are (NO PAD: a
    /// prefix sorts first).
    fn reference(a: &[u8], b: &[u8], pad: &[u8]) -> Ordering {
        if pad.is_empty() {
            return a.cmp(b);
        }
        let n = a.len().max(b.len()) + pad.len();
        let at = |w: &[u8], i: usize| if i < w.len() { w[i] } else { pad[i % pad.len()] };
        (0..n).map(|i| at(a, i).cmp(&at(b, i))).find(|o| o.is_ne()).unwrap_or(Ordering::Equal)
    }

    fn enc(w: &[u8], pad: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode(w, pad, &mut v);
        assert!(v.len() <= max_len(w.len(), pad.len()));
        v
    }

    /// Weights made of whole units drawn from a few values around the space's,
    /// so that trailing spaces, values below and above them, and prefixes are
    /// common.
    fn weights(unit: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0x1f), Just(0x20), Just(0x21), Just(0xff)], unit), 0..12)
            .prop_map(|units| units.concat())
    }

    const PADS: [&[u8]; 5] = [b"", b" ", b"\x00\x20", b"\x00\x00\x20", b"\x02\x09"];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// memcmp of the encodings (with a primary key after them, as in a
        /// secondary entry) orders as the collation does, and each encoding's
        /// end is found again.
        #[test]
        fn encoding_keeps_the_collation_order(p in 0..PADS.len(), a in weights(3), b in weights(3), tail_a in any::<u8>(), tail_b in any::<u8>()) {
            let pad = PADS[p];
            let unit = pad.len().max(1);
            let cut = |w: &[u8]| w[..w.len() / unit * unit].to_vec();
            let (a, b) = (cut(&a), cut(&b));
            let (ea, eb) = (enc(&a, pad), enc(&b, pad));
            prop_assert_eq!(ea.cmp(&eb), reference(&a, &b, pad), "{:?} {:?}", ea, eb);
            let (mut ka, mut kb) = (ea.clone(), eb.clone());
            ka.push(tail_a);
            kb.push(tail_b);
            let want = reference(&a, &b, pad).then(tail_a.cmp(&tail_b));
            prop_assert_eq!(ka.cmp(&kb), want);
            let spec = PART_CHUNKED | pad.len() as u32 | if pad.is_empty() { 0 } else { PART_PAD_SPACE };
            prop_assert_eq!(value_len(&ka, spec), ea.len());
            // the weights come back: exactly (NO PAD), or without their
            // trailing space units (PAD SPACE)
            if pad != CODE_POINT_SPACE {
                let mut back = Vec::new();
                prop_assert_eq!(decode_part(&ka, spec, pad, &mut back), Some(ea.len()), "the part's length, as value_len");
                let mut want = a.clone();
                while !pad.is_empty() && want.len() >= pad.len() && want[want.len() - pad.len()..] == *pad {
                    want.truncate(want.len() - pad.len());
                }
                prop_assert_eq!(back, want);
            }
        }
    }

    #[test]
    fn pad_space_trap() {
        // 'a\t' < 'a' = 'a ' < 'a!' in a PAD SPACE collation (weights = bytes)
        let (tab, a, sp, bang) = (enc(b"a\t", b" "), enc(b"a", b" "), enc(b"a ", b" "), enc(b"a!", b" "));
        assert!(tab < a && a == sp && a < bang);
        // the same across a chunk boundary
        let long = |s: &[u8]| enc(&[b"abcdefgh", s].concat(), b" ");
        assert!(long(b"\t") < long(b"") && long(b"") == long(b"   ") && long(b"") < long(b"!"));
        assert!(enc(b"", b" ") > enc(b"\x01", b" "));
        // NO PAD: a shorter value first, 0x00 bytes count
        assert!(enc(b"", b"") < enc(b"\0", b"") && enc(b"\0", b"") < enc(b"\0\0", b""));
        assert!(enc(b"abcdefgh", b"") < enc(b"abcdefgh\0", b""));
        // sizes: about the value's, not the declared length's
        assert_eq!(enc(b"value12345", b" ").len(), 18);
        assert_eq!(enc(b"", b"\x00\x00\x20").len(), 10);
        // 2-byte code point weights (general_ci): 1 byte a character for ASCII
        assert_eq!(enc(b"\x00V\x00A\x00L\x00U\x00E\x001\x002\x003\x004\x005", b"\x00\x20").len(), 18);
        assert!(enc(b"\x00a\x00\x09", b"\x00\x20") < enc(b"\x00a", b"\x00\x20"));
        assert!(enc(b"\x00a\x01\x00", b"\x00\x20") > enc(b"\x00a\x00\xff", b"\x00\x20"));
        assert_eq!(chunk_len(3), 9);
        assert_eq!(chunk_len(2), 8);
    }
}
