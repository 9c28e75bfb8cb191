//! The compact unpack item of a string key part whose collation folds case
//! (tree format 6, spec in docs/btree-format.md, "Unpack items").
//!
//! A secondary entry keeps, beside its memcomparable key, what rebuilds the
//! values the key's weights cannot give back (`'a'` and `'A'` have one weight in
//! a `_ci` collation). Format 5 kept the whole value again. For the collations
//! whose weights are one per character (the 8-bit ones such as
//! `latin1_swedish_ci`, and the code point ones of utf8mb3/utf8mb4 such as
//! `utf8mb4_general_ci`, which the key writes as UTF-8), the value is rebuilt
//! from the weights plus a few bits a character:
//!
//! ```text
//! item    = LEB128(dropped << 1)  codes  explicit      (compact)
//!         | LEB128(len << 1 | 1)  value                (raw: the value's bytes)
//! codes   = per character, most significant bit first, the last byte
//!           completed with zero bits:
//!             0    the character is its weight
//!             10   the character is its weight (an ASCII capital) + 32: lower case
//!             11   the character is the next one of `explicit`
//! explicit= those characters' own bytes (UTF-8, or one byte), in order
//! ```
//!
//! `dropped` is how many trailing space weights the key left out (a PAD SPACE
//! key drops them); the characters are the key's weights and then `dropped`
//! spaces' worth. The raw form is written when the value is not what the
//! compact one can rebuild (its weights are not one per character, invalid
//! UTF-8) or when it is shorter. Decoding takes the key's weights (decoded from
//! the key part's chunks by C++ through [`super::keys::decode`]) and the item,
//! and never trusts either: anything that does not fit is an error, never a
//! panic or a wrong value.

/// How a part's values and weights are made: `Wide`: UTF-8 values, 2-byte
/// big-endian weights (code points) from the collation; `Narrow`: one byte a
/// character and a weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Units {
    Wide,
    Narrow,
}

/// The space's weight (either width).
const SPACE: u32 = 0x20;

fn put_leb(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push(0x80 | (n & 0x7f) as u8);
        n >>= 7;
    }
    out.push(n as u8);
}

pub(super) fn get_leb(b: &[u8], at: &mut usize) -> Option<usize> {
    let mut n = 0usize;
    for shift in (0..35).step_by(7) {
        let x = *b.get(*at)?;
        *at += 1;
        n |= ((x & 0x7f) as usize) << shift;
        if x & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

/// The most bytes [`encode`] writes for a value of `len` bytes.
pub fn max_len(len: usize) -> usize {
    len + 10
}

/// The value's characters as code points (and each one's bytes), or None when
/// they cannot be rebuilt from single weights (invalid UTF-8).
fn chars(value: &[u8], units: Units) -> Option<Vec<(u32, &[u8])>> {
    match units {
        Units::Narrow => Some(value.chunks(1).map(|c| (c[0] as u32, c)).collect()),
        Units::Wide => {
            let s = std::str::from_utf8(value).ok()?;
            Some(s.char_indices().map(|(i, c)| (c as u32, &value[i..i + c.len_utf8()])).collect())
        }
    }
}

fn weights_of(w: &[u8], units: Units) -> Option<Vec<u32>> {
    match units {
        Units::Narrow => Some(w.iter().map(|&b| b as u32).collect()),
        Units::Wide => (w.len() % 2 == 0).then(|| w.chunks(2).map(|u| (u[0] as u32) << 8 | u[1] as u32).collect()),
    }
}

fn is_capital(w: u32) -> bool {
    (b'A' as u32..=b'Z' as u32).contains(&w)
}

/// Appends the unpack item of `value` whose collation weights (the
/// collation's `strnxfrm` of it, without padding) are `weights`.
pub fn encode(value: &[u8], weights: &[u8], units: Units, out: &mut Vec<u8>) {
    let raw = |out: &mut Vec<u8>| {
        put_leb(out, value.len() << 1 | 1);
        out.extend_from_slice(value);
    };
    let (Some(cs), Some(ws)) = (chars(value, units), weights_of(weights, units)) else {
        return raw(out);
    };
    if cs.len() != ws.len() || (units == Units::Wide && ws.iter().any(|&w| char::from_u32(w).is_none())) {
        return raw(out);
    }
    let dropped = ws.iter().rev().take_while(|&&w| w == SPACE).count();
    let mut item = Vec::with_capacity(8 + cs.len() / 4);
    put_leb(&mut item, dropped << 1);
    let (mut bits, mut nbits) = (0u32, 0u32);
    let mut explicit = Vec::new();
    let mut emit = |item: &mut Vec<u8>, code: u32, n: u32| {
        bits = bits << n | code;
        nbits += n;
        while nbits >= 8 {
            nbits -= 8;
            item.push((bits >> nbits) as u8);
        }
        bits &= (1 << nbits) - 1;
    };
    for (&(c, bytes), &w) in cs.iter().zip(&ws) {
        if c == w {
            emit(&mut item, 0, 1);
        } else if is_capital(w) && c == w + 32 {
            emit(&mut item, 0b10, 2);
        } else {
            emit(&mut item, 0b11, 2);
            explicit.extend_from_slice(bytes);
        }
    }
    emit(&mut item, 0, 7);
    item.extend_from_slice(&explicit);
    if item.len() <= value.len() + 1 {
        out.extend_from_slice(&item);
    } else {
        raw(out);
    }
}

/// The value rebuilt from the key's weights `key_weights` (the form
/// [`super::keys::decode`] gives: for `Wide`, the code points as UTF-8, trailing
/// spaces left out; for `Narrow`, the bytes) and the item at the start of
/// `item`: the value's bytes into `out`, and how many bytes of `item` the item
/// took. None when they do not fit together.
pub fn decode(key_weights: &[u8], item: &[u8], units: Units, out: &mut Vec<u8>) -> Option<usize> {
    let mut at = 0;
    let h = get_leb(item, &mut at)?;
    if h & 1 == 1 {
        let n = h >> 1;
        let v = item.get(at..at.checked_add(n)?)?;
        out.extend_from_slice(v);
        return Some(at + n);
    }
    let dropped = h >> 1;
    // (a count no key part can have: refuse it before reading codes for it)
    if dropped > item.len().saturating_mul(8) {
        return None;
    }
    if key_weights.is_ascii() {
        return decode_ascii(key_weights, item, at, dropped, units, out);
    }
    decode_general(key_weights, item, at, dropped, units, out)
}

/// A compact item's codes, read bit by bit from `item[at..]`.
struct Codes<'a> {
    item: &'a [u8],
    at: usize,
    /// Bits taken so far.
    used: usize,
}

impl Codes<'_> {
    #[inline(always)]
    fn bit(&self, b: usize) -> Option<bool> {
        Some(*self.item.get(self.at + b / 8)? >> (7 - b % 8) & 1 == 1)
    }

    /// The next code: 0 (`0`), 1 (`10`) or 2 (`11`); None past the item's end.
    #[inline(always)]
    fn next(&mut self) -> Option<u8> {
        let code = if !self.bit(self.used)? {
            0
        } else if !self.bit(self.used + 1)? {
            self.used += 1;
            1
        } else {
            self.used += 1;
            2
        };
        self.used += 1;
        Some(code)
    }
}

/// [`decode`] of a compact item when every weight of the key is ASCII (most
/// values of most keys): a character a byte, no UTF-8 to validate or count, and
/// the common codes (the weight itself, its lower case) written at once. Gives
/// exactly what [`decode_general`] gives (a property test holds them to it).
fn decode_ascii(key_weights: &[u8], item: &[u8], at: usize, dropped: usize, units: Units, out: &mut Vec<u8>) -> Option<usize> {
    let chars = key_weights.len() + dropped;
    out.reserve(chars);
    // One pass while no character needs its own bytes (a value whose letters
    // differ from their weights by case only: the common case), as those bytes
    // come after the codes, which must be read to their end to find them.
    let start = out.len();
    if let Some(used) = one_pass_ascii(key_weights, item.get(at..)?, dropped, out) {
        let x = at + used?.div_ceil(8);
        return (x <= item.len()).then_some(x);
    }
    out.truncate(start);
    // the characters' own bytes come after the codes
    let mut codes = Codes { item, at, used: 0 };
    for _ in 0..chars {
        codes.next()?;
    }
    let mut x = at + codes.used.div_ceil(8);
    if x > item.len() {
        return None;
    }
    let mut codes = Codes { item, at, used: 0 };
    for &w in key_weights {
        put_ascii(w, codes.next()?, item, &mut x, units, out)?;
    }
    for _ in 0..dropped {
        put_ascii(SPACE as u8, codes.next()?, item, &mut x, units, out)?;
    }
    Some(x)
}

/// [`decode_ascii`]'s one pass: every character its weight or, for an ASCII
/// capital, its lower case, written straight into `out`, the codes taken from a
/// 64-bit window over `codes` (this runs for every entry an index-only read
/// meets). Some(Some(bits used)) when done, Some(None) when the item does not
/// fit (the decode fails), None when a character needs its own bytes (`out` as
/// it was: the two-pass path then runs).
#[inline(always)]
fn one_pass_ascii(key_weights: &[u8], codes: &[u8], dropped: usize, out: &mut Vec<u8>) -> Option<Option<usize>> {
    let start = out.len();
    let chars = key_weights.len() + dropped;
    out.resize(start + chars, 0);
    let (mut acc, mut n, mut next, mut used) = (0u64, 0u32, 0usize, 0usize);
    let weights = key_weights.iter().copied().chain(std::iter::repeat_n(SPACE as u8, dropped));
    for (dst, w) in out[start..].iter_mut().zip(weights) {
        if n < 2 {
            while n <= 56 {
                let Some(&b) = codes.get(next) else { break };
                acc |= (b as u64) << (56 - n);
                n += 8;
                next += 1;
            }
        }
        if acc >> 63 == 0 {
            if n < 1 {
                out.truncate(start);
                return Some(None);
            }
            *dst = w;
            (acc, n, used) = (acc << 1, n - 1, used + 1);
        } else if n < 2 {
            out.truncate(start);
            return Some(None);
        } else if acc >> 62 & 1 == 0 {
            if !w.is_ascii_uppercase() {
                out.truncate(start);
                return Some(None);
            }
            *dst = w + 32;
            (acc, n, used) = (acc << 2, n - 2, used + 2);
        } else {
            out.truncate(start);
            return None;
        }
    }
    Some(Some(used))
}

/// One character of [`decode_ascii`]: weight `w` with its code.
#[inline(always)]
fn put_ascii(w: u8, code: u8, item: &[u8], x: &mut usize, units: Units, out: &mut Vec<u8>) -> Option<()> {
    match code {
        0 => out.push(w),
        1 if w.is_ascii_uppercase() => out.push(w + 32),
        1 => return None,
        _ => {
            let len = match units {
                Units::Narrow => 1,
                Units::Wide => utf8_len(*item.get(*x)?)?,
            };
            let bytes = item.get(*x..*x + len)?;
            if units == Units::Wide && std::str::from_utf8(bytes).is_err() {
                return None;
            }
            out.extend_from_slice(bytes);
            *x += len;
        }
    }
    Some(())
}

/// The length of the UTF-8 character whose first byte is `b` (None: not a first
/// byte).
#[inline(always)]
fn utf8_len(b: u8) -> Option<usize> {
    match b {
        0x00..=0x7f => Some(1),
        0xc2..=0xdf => Some(2),
        0xe0..=0xef => Some(3),
        0xf0..=0xf4 => Some(4),
        _ => None,
    }
}

/// [`decode`] of a compact item, any weights.
fn decode_general(key_weights: &[u8], item: &[u8], at: usize, dropped: usize, units: Units, out: &mut Vec<u8>) -> Option<usize> {
    let wide = match units {
        Units::Narrow => None,
        Units::Wide => Some(std::str::from_utf8(key_weights).ok()?),
    };
    // Two passes, no allocation (this runs for every entry an index-only read
    // meets): the codes' length first, which says where `explicit` starts,
    // then the characters.
    let chars = match wide {
        None => key_weights.len(),
        Some(s) => s.chars().count(),
    } + dropped;
    let mut bit = 0usize;
    for _ in 0..chars {
        next_code(item, at, &mut bit)?;
    }
    let mut x = at + bit.div_ceil(8);
    if x > item.len() {
        return None;
    }
    bit = 0;
    let spaces = std::iter::repeat_n(SPACE, dropped);
    match wide {
        None => {
            for w in key_weights.iter().map(|&b| b as u32).chain(spaces) {
                put_char(w, next_code(item, at, &mut bit)?, item, &mut x, units, out)?;
            }
        }
        Some(s) => {
            for w in s.chars().map(|c| c as u32).chain(spaces) {
                put_char(w, next_code(item, at, &mut bit)?, item, &mut x, units, out)?;
            }
        }
    }
    Some(x)
}

/// The code at bit `bit` of the codes starting at byte `at` of `item` (0, 1 for
/// `10`, 2 for `11`), `bit` moved past it; None past the item's end.
fn next_code(item: &[u8], at: usize, bit: &mut usize) -> Option<u8> {
    let bit_at = |b: usize| -> Option<bool> { Some(item.get(at + b / 8)? >> (7 - b % 8) & 1 == 1) };
    let code = if !bit_at(*bit)? {
        0
    } else if !bit_at(*bit + 1)? {
        *bit += 1;
        1
    } else {
        *bit += 1;
        2
    };
    *bit += 1;
    Some(code)
}

/// Appends the character of weight `w` and `code`, the explicit ones read at
/// `*x` of `item`.
fn put_char(w: u32, code: u8, item: &[u8], x: &mut usize, units: Units, out: &mut Vec<u8>) -> Option<()> {
    // the common case first: an ASCII character given by its weight
    if w < 0x80 && (code == 0 || code == 1 && is_capital(w)) {
        out.push(w as u8 + if code == 1 { 32 } else { 0 });
        return Some(());
    }
    let c = match code {
        0 => w,
        1 if is_capital(w) => w + 32,
        1 => return None,
        _ => {
            let len = match units {
                Units::Narrow => 1,
                Units::Wide => match *item.get(*x)? {
                    0x00..=0x7f => 1,
                    0xc2..=0xdf => 2,
                    0xe0..=0xef => 3,
                    0xf0..=0xf4 => 4,
                    _ => return None,
                },
            };
            let bytes = item.get(*x..*x + len)?;
            *x += len;
            match units {
                Units::Narrow => bytes[0] as u32,
                Units::Wide => std::str::from_utf8(bytes).ok()?.chars().next()? as u32,
            }
        }
    };
    match units {
        Units::Narrow => out.push(u8::try_from(c).ok()?),
        Units::Wide => {
            let ch = char::from_u32(c)?;
            let mut b = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `utf8mb4_general_ci`'s weights in small: ASCII letters to capitals, a few
    /// others folded the way that collation folds them, characters beyond the
    /// BMP to U+FFFD.
    fn general_ci(s: &str) -> Vec<u8> {
        let mut w = Vec::new();
        for c in s.chars() {
            let x = match c {
                'a'..='z' => c as u32 - 32,
                'à' | 'á' | 'À' | 'Á' => 'A' as u32,
                'ß' => 'S' as u32,
                '\u{212a}' => 'K' as u32,
                c if c as u32 > 0xffff => 0xfffd,
                c => c as u32,
            };
            w.extend_from_slice(&[(x >> 8) as u8, x as u8]);
        }
        w
    }

    /// The key's side: the weights as the key part gives them back (UTF-8 for
    /// code points, trailing spaces dropped).
    fn key_weights(w: &[u8], units: Units) -> Vec<u8> {
        let mut ws = weights_of(w, units).unwrap();
        while ws.last() == Some(&SPACE) {
            ws.pop();
        }
        match units {
            Units::Narrow => ws.iter().map(|&x| x as u8).collect(),
            Units::Wide => ws.iter().map(|&x| char::from_u32(x).unwrap()).collect::<String>().into_bytes(),
        }
    }

    fn round_trip(value: &[u8], weights: &[u8], units: Units) -> Vec<u8> {
        let mut item = Vec::new();
        encode(value, weights, units, &mut item);
        assert!(item.len() <= max_len(value.len()));
        item.extend_from_slice(b"\x05next");
        let mut out = Vec::new();
        let used = decode(&key_weights(weights, units), &item, units, &mut out).expect("decodes");
        assert_eq!(&item[used..], b"\x05next", "the item's end");
        assert_eq!(out, value);
        item.truncate(used);
        item
    }

    #[test]
    fn mixed_case_costs_bits() {
        let v = "Alpha-00012345";
        let item = round_trip(v.as_bytes(), &general_ci(v), Units::Wide);
        // 1 byte of header, 14 characters: 10 of 1 bit and 4 of 2 bits = 3 bytes
        assert_eq!(item.len(), 4);
        let v = "value12345";
        assert_eq!(round_trip(v.as_bytes(), &general_ci(v), Units::Wide).len(), 1 + 2);
        assert_eq!(round_trip(b"", b"", Units::Wide), vec![0]);
    }

    #[test]
    fn folded_and_wide_characters() {
        for v in ["àÁß Straße \u{212a}elvin", "emoji 😀 end", "trail   ", "   ", "\t tab", "é"] {
            round_trip(v.as_bytes(), &general_ci(v), Units::Wide);
        }
        // latin1_swedish_ci-like: bytes, weights folded to capitals
        let v = b"Caf\xe9 \xc4pple  ";
        let w: Vec<u8> = v.iter().map(|&b| if b.is_ascii_lowercase() { b - 32 } else { b }).collect();
        round_trip(v, &w, Units::Narrow);
    }

    #[test]
    fn raw_when_compact_cannot_rebuild() {
        // invalid UTF-8, or weights that are not one per character
        for (v, w) in [(&b"\xff\xfe"[..], &b"\x00A\x00B"[..]), (b"ss", b"\x00S"), (b"ab", b"\x00A\x00B\x00C")] {
            let item = round_trip(v, w, Units::Wide);
            assert_eq!(item[0] & 1, 1, "raw");
        }
        // every character explicit: raw is shorter
        let v = "éèêë".as_bytes();
        let item = round_trip(v, b"\x00E\x00E\x00E\x00E", Units::Wide);
        assert_eq!(item[0] & 1, 1);
    }

    #[test]
    fn damaged_items_are_errors() {
        let v = "Hello World";
        let mut item = Vec::new();
        encode(v.as_bytes(), &general_ci(v), Units::Wide, &mut item);
        let kw = key_weights(&general_ci(v), Units::Wide);
        for cut in 0..item.len() {
            assert!(decode(&kw, &item[..cut], Units::Wide, &mut Vec::new()).is_none(), "cut at {cut}");
        }
        // a lower-case code on a weight that has no lower case
        assert!(decode(b"1", &[0, 0b1000_0000], Units::Wide, &mut Vec::new()).is_none());
        // a huge count of dropped spaces
        assert!(decode(b"", &[0xff, 0xff, 0xff, 0x7f], Units::Wide, &mut Vec::new()).is_none());
        // weights that are not UTF-8
        assert!(decode(b"\xff", &[0, 0], Units::Wide, &mut Vec::new()).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn every_value_comes_back(v in "[a-zA-Z0-9 àÁßé\u{212a}😀\t-]{0,40}") {
            round_trip(v.as_bytes(), &general_ci(&v), Units::Wide);
        }

        #[test]
        fn narrow_values_come_back(v in prop::collection::vec(any::<u8>(), 0..40)) {
            let w: Vec<u8> = v.iter().map(|&b| if b.is_ascii_lowercase() { b - 32 } else { b }).collect();
            round_trip(&v, &w, Units::Narrow);
        }

        /// The ASCII path gives exactly what the general one gives, for any
        /// ASCII weights and any item (well formed or not).
        #[test]
        fn the_ascii_path_agrees_with_the_general_one(
            kw in prop::collection::vec(0u8..0x80, 0..24),
            item in prop::collection::vec(any::<u8>(), 0..24),
            wide in any::<bool>(),
            dropped in 0usize..6,
        ) {
            let units = if wide { Units::Wide } else { Units::Narrow };
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let ra = decode_ascii(&kw, &item, 0, dropped, units, &mut a);
            let rb = decode_general(&kw, &item, 0, dropped, units, &mut b);
            prop_assert_eq!(ra, rb);
            if ra.is_some() {
                prop_assert_eq!(a, b);
            }
        }

        /// ... and on items made by `encode` (mostly well formed) too.
        #[test]
        fn the_ascii_path_agrees_on_encoded_items(v in "[a-zA-Z0-9 àÁé\t-]{0,40}") {
            let w = general_ci(&v);
            let mut item = Vec::new();
            encode(v.as_bytes(), &w, Units::Wide, &mut item);
            let kw = key_weights(&w, Units::Wide);
            if kw.is_ascii() && item[0] & 1 == 0 {
                let mut at = 0;
                let dropped = get_leb(&item, &mut at).unwrap() >> 1;
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let ra = decode_ascii(&kw, &item, at, dropped, Units::Wide, &mut a);
                prop_assert_eq!(ra, decode_general(&kw, &item, at, dropped, Units::Wide, &mut b));
                prop_assert_eq!(&a, v.as_bytes());
                prop_assert_eq!(a, b);
            }
        }

        #[test]
        fn garbage_never_panics(kw in prop::collection::vec(any::<u8>(), 0..20), item in prop::collection::vec(any::<u8>(), 0..20), wide in any::<bool>()) {
            let units = if wide { Units::Wide } else { Units::Narrow };
            let _ = decode(&kw, &item, units, &mut Vec::new());
        }
    }
}
