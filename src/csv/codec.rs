//! The CSV dialect: how one row becomes one record of text and back.
//!
//! Writing (see `docs/csv-format.md`):
//! - a NULL is an empty, unquoted field;
//! - a value the server calls numeric is written bare;
//! - every other value is quoted with `"`; inside it `"` is doubled (RFC 4180) and
//!   `\`, LF and CR are written `\\`, `\n`, `\r`, so every record is one physical line
//!   (what MariaDB's CSV engine writes with `IETF_QUOTES=YES`).
//!
//! Reading accepts that and what other tools write: `""` and `\"` inside quotes,
//! raw line breaks inside quotes (RFC 4180), CRLF line ends, and the backslash escapes
//! of MariaDB's CSV engine. A backslash before any other byte is kept as it is.

use memchr::{memchr, memchr2, memchr3};

/// How a value is to be written: `Bare` is written as it is (numbers) unless it
/// holds the separator, a quote, `\`, CR or LF (then it is quoted after all).
/// The bridge's enum, as C++ says it for each field.
pub use crate::ffi::bridge::FieldKind as Kind;
pub use crate::ffi::bridge::CsvField;

/// A decoded record, reused from row to row so a scan allocates nothing per row.
#[derive(Default, Debug)]
pub struct Record {
    pub data: Vec<u8>,
    /// Each field in `data` (kind `Null` or `Bare`), as the boundary hands them
    /// to C++.
    pub spans: Vec<CsvField>,
    /// Line breaks inside the record's quoted values (for line numbering).
    pub inner_newlines: u64,
}

impl Record {
    pub fn clear(&mut self) {
        self.data.clear();
        self.spans.clear();
        self.inner_newlines = 0;
    }
    pub fn field(&self, i: usize) -> Option<&[u8]> {
        let f = *self.spans.get(i)?;
        if f.kind == Kind::Null {
            None
        } else {
            Some(&self.data[f.offset as usize..(f.offset + f.length) as usize])
        }
    }
}

/// Appends one value to `out`. `first` says whether a separator is needed before it.
pub fn encode_field(out: &mut Vec<u8>, sep: u8, first: bool, kind: Kind, value: &[u8]) {
    if !first {
        out.push(sep);
    }
    match kind {
        Kind::Null => {}
        Kind::Bare if !value.is_empty() && bare_is_safe(value, sep) => out.extend_from_slice(value),
        _ => {
            out.reserve(value.len() + 2);
            out.push(b'"');
            let mut rest = value;
            while let Some(i) = find_special(rest) {
                out.extend_from_slice(&rest[..i]);
                match rest[i] {
                    b'"' => out.extend_from_slice(b"\"\""),
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    _ => out.extend_from_slice(b"\\r"),
                }
                rest = &rest[i + 1..];
            }
            out.extend_from_slice(rest);
            out.push(b'"');
        }
    }
}

fn find_special(s: &[u8]) -> Option<usize> {
    // Two passes with SIMD searches beat one byte loop for the usual value with none.
    let a = memchr3(b'"', b'\\', b'\n', s);
    let b = memchr(b'\r', &s[..a.unwrap_or(s.len())]);
    b.or(a)
}

fn bare_is_safe(value: &[u8], sep: u8) -> bool {
    !value
        .iter()
        .any(|&c| c == sep || c == b'"' || c == b'\\' || c == b'\n' || c == b'\r')
}

/// Ends a record.
pub fn end_record(out: &mut Vec<u8>) {
    out.push(b'\n');
}

/// Why a record could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Malformed {
    UnterminatedQuote,
    /// A closing quote followed by something other than a separator or line end.
    JunkAfterQuote(u8),
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Malformed::UnterminatedQuote => write!(f, "unbalanced quote (a quoted value never ends)"),
            Malformed::JunkAfterQuote(c) => {
                write!(f, "unexpected character {:?} after a closing quote", char::from(*c))
            }
        }
    }
}

/// Result of decoding at the start of `buf`.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole record of `len` bytes (line end included); `terminated` is false for a
    /// last record without a line end.
    Record { len: usize, terminated: bool },
    /// `buf` ends inside the record: read more and call again.
    NeedMore,
    /// The record is malformed; `len` bytes (to the end of its physical line) can be
    /// skipped to resynchronise.
    Bad { len: usize, why: Malformed },
}

/// Decodes one record from `buf` into `rec`. `at_eof` says that no bytes follow `buf`.
pub fn decode_record(buf: &[u8], sep: u8, at_eof: bool, rec: &mut Record) -> Decoded {
    rec.clear();
    let mut i = 0usize;
    loop {
        // one field starting at i
        let start = rec.data.len();
        let mut null = false;
        if i < buf.len() && buf[i] == b'"' {
            i += 1;
            loop {
                let Some(j) = memchr2(b'"', b'\\', &buf[i..]) else {
                    return incomplete(buf, at_eof, Malformed::UnterminatedQuote);
                };
                let seg = &buf[i..i + j];
                rec.inner_newlines += memchr::memchr_iter(b'\n', seg).count() as u64;
                rec.data.extend_from_slice(seg);
                i += j;
                if i + 1 >= buf.len() {
                    if at_eof && buf[i] == b'"' {
                        i += 1; // closing quote at the very end of the input
                        break;
                    }
                    return incomplete(buf, at_eof, Malformed::UnterminatedQuote);
                }
                let next = buf[i + 1];
                if buf[i] == b'\\' {
                    rec.data.extend_from_slice(match next {
                        b'n' => b"\n",
                        b'r' => b"\r",
                        b'\\' => b"\\",
                        b'"' => b"\"",
                        _ => b"\\", // kept as it is; `next` is read as an ordinary byte
                    });
                    i += if matches!(next, b'n' | b'r' | b'\\' | b'"') { 2 } else { 1 };
                } else if next == b'"' {
                    rec.data.push(b'"');
                    i += 2;
                } else {
                    i += 1; // closing quote
                    break;
                }
            }
            // after the closing quote: separator, line end or end of input
            if i < buf.len() && buf[i] != sep && buf[i] != b'\n' && buf[i] != b'\r' {
                return bad_line(buf, i, Malformed::JunkAfterQuote(buf[i]));
            }
            if i < buf.len() && buf[i] == b'\r' && !(i + 1 < buf.len() && buf[i + 1] == b'\n') {
                if i + 1 >= buf.len() && !at_eof {
                    return Decoded::NeedMore;
                }
                return bad_line(buf, i, Malformed::JunkAfterQuote(b'\r'));
            }
        } else {
            // a bare field: up to the separator or line end, with backslash escapes
            loop {
                let Some(j) = memchr3(sep, b'\n', b'\\', &buf[i..]) else {
                    rec.data.extend_from_slice(&buf[i..]);
                    i = buf.len();
                    break;
                };
                rec.data.extend_from_slice(&buf[i..i + j]);
                i += j;
                if buf[i] != b'\\' {
                    break;
                }
                if i + 1 >= buf.len() {
                    if !at_eof {
                        return Decoded::NeedMore;
                    }
                    rec.data.push(b'\\');
                    i += 1;
                    break;
                }
                let next = buf[i + 1];
                match next {
                    b'n' => rec.data.push(b'\n'),
                    b'r' => rec.data.push(b'\r'),
                    b'\\' | b'"' => rec.data.push(next),
                    _ => {
                        rec.data.push(b'\\');
                        i += 1;
                        continue;
                    }
                }
                i += 2;
            }
            // a CR right before the line end belongs to a CRLF line end
            if i < buf.len() && buf[i] == b'\n' && rec.data.len() > start && rec.data.last() == Some(&b'\r')
            {
                rec.data.pop();
            }
            if rec.data.len() == start {
                null = true;
            }
        }
        rec.spans.push(if null {
            CsvField { kind: Kind::Null, offset: 0, length: 0 }
        } else {
            CsvField { kind: Kind::Bare, offset: start as u32, length: (rec.data.len() - start) as u32 }
        });
        if i >= buf.len() {
            if !at_eof {
                return Decoded::NeedMore;
            }
            return Decoded::Record { len: i, terminated: false };
        }
        match buf[i] {
            b'\n' => return Decoded::Record { len: i + 1, terminated: true },
            b'\r' => {
                // CRLF after a quoted field (checked above)
                return Decoded::Record { len: i + 2, terminated: true };
            }
            _ => i += 1, // the separator
        }
    }
}

fn incomplete(buf: &[u8], at_eof: bool, why: Malformed) -> Decoded {
    if at_eof {
        // resynchronise at the first line end of the record, if any
        Decoded::Bad {
            len: memchr(b'\n', buf).map_or(buf.len(), |p| p + 1),
            why,
        }
    } else {
        Decoded::NeedMore
    }
}

fn bad_line(buf: &[u8], from: usize, why: Malformed) -> Decoded {
    // Resynchronise at the first line end of the record: a quote that ran over a
    // line end and then went wrong most likely lost its closing quote on the first
    // line, and the next line is a record of its own. Otherwise skip to the end of
    // the line where the damage is.
    let len = memchr(b'\n', &buf[..from])
        .map(|p| p + 1)
        .unwrap_or_else(|| memchr(b'\n', &buf[from..]).map_or(buf.len(), |p| from + p + 1));
    Decoded::Bad { len, why }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(vals: &[(Kind, &[u8])], sep: u8) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (k, v)) in vals.iter().enumerate() {
            encode_field(&mut out, sep, i == 0, *k, v);
        }
        end_record(&mut out);
        out
    }

    fn dec(buf: &[u8], sep: u8) -> (Decoded, Vec<Option<Vec<u8>>>) {
        let mut r = Record::default();
        let d = decode_record(buf, sep, true, &mut r);
        let f = (0..r.spans.len()).map(|i| r.field(i).map(|s| s.to_vec())).collect();
        (d, f)
    }

    #[test]
    fn null_and_empty_differ() {
        let b = enc(&[(Kind::Null, b""), (Kind::Quoted, b""), (Kind::Bare, b"7")], b',');
        assert_eq!(b, b",\"\",7\n");
        let (_, f) = dec(&b, b',');
        assert_eq!(f, vec![None, Some(vec![]), Some(b"7".to_vec())]);
    }

    #[test]
    fn escapes_written_like_mariadb_ietf() {
        let b = enc(&[(Kind::Quoted, b"a\"b\\c\nd\re")], b',');
        assert_eq!(b, b"\"a\"\"b\\\\c\\nd\\re\"\n".to_vec());
    }

    #[test]
    fn reads_rfc4180_and_tina_styles() {
        let (d, f) = dec(b"\"x\"\"y\",\"p\\\"q\",\"multi\nline\"\r\n", b',');
        assert_eq!(d, Decoded::Record { len: 28, terminated: true });
        assert_eq!(
            f,
            vec![Some(b"x\"y".to_vec()), Some(b"p\"q".to_vec()), Some(b"multi\nline".to_vec())]
        );
        let (_, f) = dec(b"1,abc\r\n", b',');
        assert_eq!(f, vec![Some(b"1".to_vec()), Some(b"abc".to_vec())]);
        // unknown escapes stay as they are
        let (_, f) = dec(b"\"C:\\temp\",C:\\x\n", b',');
        assert_eq!(f, vec![Some(b"C:\\temp".to_vec()), Some(b"C:\\x".to_vec())]);
    }

    #[test]
    fn last_record_without_newline() {
        let (d, f) = dec(b"1,\"a\"", b',');
        assert_eq!(d, Decoded::Record { len: 5, terminated: false });
        assert_eq!(f.len(), 2);
        let mut r = Record::default();
        assert_eq!(decode_record(b"1,\"a\"", b',', false, &mut r), Decoded::NeedMore);
    }

    #[test]
    fn malformed_lines() {
        let (d, _) = dec(b"1,\"abc\n2,\"x\"\n", b',');
        // the quote swallows the newline and never closes properly: junk after quote
        assert!(matches!(d, Decoded::Bad { .. }), "{d:?}");
        let (d, _) = dec(b"1,\"abc", b',');
        assert_eq!(d, Decoded::Bad { len: 6, why: Malformed::UnterminatedQuote });
        let (d, _) = dec(b"\"a\"b,1\n2\n", b',');
        assert_eq!(d, Decoded::Bad { len: 7, why: Malformed::JunkAfterQuote(b'b') });
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![Just(Kind::Null), Just(Kind::Bare), Just(Kind::Quoted)]
    }

    proptest! {
        /// Any row written reads back identically, whatever bytes its values hold,
        /// with any separator, and whether the reader gets it whole or in pieces.
        #[test]
        fn any_row_round_trips(
            vals in prop::collection::vec((kind(), prop::collection::vec(any::<u8>(), 0..40)), 1..8),
            sep in prop_oneof![Just(b','), Just(b';'), Just(b'\t'), Just(b'|')],
            cut in 0usize..200,
        ) {
            let vals: Vec<(Kind, Vec<u8>)> = vals.into_iter()
                .map(|(k, v)| if k == Kind::Null { (k, vec![]) } else if v.is_empty() { (Kind::Quoted, v) } else { (k, v) })
                .collect();
            let mut buf = Vec::new();
            for (i, (k, v)) in vals.iter().enumerate() {
                encode_field(&mut buf, sep, i == 0, *k, v);
            }
            end_record(&mut buf);
            // one record per physical line
            prop_assert_eq!(memchr::memchr_iter(b'\n', &buf).count(), 1);
            let mut r = Record::default();
            let cut = cut.min(buf.len());
            if cut < buf.len() {
                prop_assert_eq!(decode_record(&buf[..cut], sep, false, &mut r), Decoded::NeedMore);
            }
            let mut twice = buf.clone();
            twice.extend_from_slice(&buf);
            prop_assert_eq!(decode_record(&twice, sep, false, &mut r), Decoded::Record { len: buf.len(), terminated: true });
            prop_assert_eq!(r.spans.len(), vals.len());
            for (i, (k, v)) in vals.iter().enumerate() {
                match *k {
                    Kind::Null => prop_assert_eq!(r.field(i), None),
                    _ => prop_assert_eq!(r.field(i), Some(&v[..])),
                }
            }
        }

        /// Hostile input never panics and always makes progress.
        #[test]
        fn garbage_never_panics(buf in prop::collection::vec(any::<u8>(), 0..300), eof in any::<bool>()) {
            let mut r = Record::default();
            match decode_record(&buf, b',', eof, &mut r) {
                Decoded::Record { len, .. } | Decoded::Bad { len, .. } => prop_assert!(len > 0 || buf.is_empty()),
                Decoded::NeedMore => prop_assert!(!eof),
            }
        }
    }
}
