//! The layouts behind the one engine, as the boundary sees them: a [`Layout`]
//! (a table's files: create, open, exists, delete, rename) and the open table it
//! gives, a [`LayoutTable`] (scans, reads by position, writes, statistics,
//! CHECK/REPAIR). `ffi` dispatches through these two traits only, so a new layout
//! is one new module implementing them and one line in [`LAYOUTS`].
//!
//! Each layout implements them beside its own code: `csv/layout.rs`,
//! `archive/layout.rs`, `btree/layout.rs`. An operation a layout does not have
//! answers, by the trait's default, "... is not supported by this table's layout"
//! ([`Error::Unsupported`]). BTREE's own operations (indexes, transactions) are
//! reached through [`LayoutTable::btree`].

use std::path::{Path, PathBuf};

use crate::btree::table::BtreeTable;
use crate::error::{Error, Result};
pub use crate::ffi::bridge::{CheckSummary, CsvField, KeyMax, LayoutKind, Stats};

/// The layouts, in the order of the LAYOUT table option's values (BTREE, CSV,
/// ARCHIVE): the value C++ sends is the index here.
pub static LAYOUTS: [&dyn Layout; 3] =
    [&crate::btree::layout::BTREE, &crate::csv::layout::CSV, &crate::archive::layout::ARCHIVE];

/// The layout of LAYOUT option value `v`.
pub fn by_value(v: u8) -> Result<&'static dyn Layout> {
    LAYOUTS.get(v as usize).copied().ok_or_else(|| Error::Unsupported(format!("unknown LAYOUT value {v}")))
}

/// What a table is created or opened with (the table's options and what the
/// server's definition says). Each layout reads the fields it needs.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The server's path of the table, without extension.
    pub path: PathBuf,
    /// CSV: the attached file (FILE_NAME), if any.
    pub external: Option<PathBuf>,
    /// CSV: whether the file has a header line.
    pub header: bool,
    /// CSV: the field separator.
    pub separator: u8,
    /// CSV: whether an attached file may be written.
    pub writable: bool,
    /// CSV: the table's columns.
    pub columns: usize,
    /// CSV, create: the header line's text and its fields in it.
    pub header_text: Vec<u8>,
    pub header_fields: Vec<CsvField>,
    /// ARCHIVE and BTREE, create: the AUTO_INCREMENT value before the first.
    pub auto_inc_base: u64,
    /// BTREE: the indexes, the clustered one (or the hidden row id's) first.
    pub index_count: usize,
    /// ARCHIVE, open: the zstd level of new blocks (0 or less: the default).
    pub level: i32,
    /// BTREE, open: for each index, whether it is unique.
    pub unique: Vec<bool>,
    /// BTREE, open: whether the table has no primary key (a hidden row id).
    pub hidden_pk: bool,
}

/// The table options CREATE TABLE gave, for [`check_create_options`].
pub struct CreateOptions<'a> {
    pub layout: LayoutKind,
    /// Whether CSV_FILE was given.
    pub csv_file: bool,
    pub csv_header: bool,
    /// CSV_SEPARATOR as written, when given.
    pub csv_separator: Option<&'a [u8]>,
    pub csv_writable: bool,
    /// 0: not given.
    pub compression_level: i32,
}

/// Whether CREATE TABLE's options go together: each layout's own options only,
/// one usable separator character, CSV_WRITABLE with an attached file. The
/// message is the one the user sees (ER_ILLEGAL_HA_CREATE_OPTION).
pub fn check_create_options(o: &CreateOptions) -> std::result::Result<(), String> {
    let any_csv = o.csv_file || o.csv_header || o.csv_separator.is_some() || o.csv_writable;
    let bad = match o.layout {
        LayoutKind::Btree if any_csv || o.compression_level != 0 => Some("CSV_* and COMPRESSION_LEVEL do not apply to LAYOUT=BTREE"),
        LayoutKind::Csv if o.compression_level != 0 => Some("COMPRESSION_LEVEL applies to LAYOUT=ARCHIVE only"),
        LayoutKind::Archive if any_csv => Some("CSV_* options apply to LAYOUT=CSV only"),
        _ => None,
    };
    if let Some(why) = bad {
        return Err(why.into());
    }
    if let Some(sep) = o.csv_separator {
        if sep.len() != 1 || matches!(sep[0], b'"' | b'\\' | b'\n' | b'\r') {
            return Err("CSV_SEPARATOR must be one character other than a quote, a backslash or a line break".into());
        }
    }
    if o.csv_writable && !o.csv_file {
        return Err("CSV_WRITABLE applies to an attached file (CSV_FILE) only".into());
    }
    Ok(())
}

/// A layout: how a table of it is made, found, removed and renamed.
pub trait Layout: Sync {
    /// Whether this build can create and open tables of it now.
    fn available(&self) -> Result<()> {
        Ok(())
    }
    fn create(&self, o: &Options) -> Result<()>;
    fn open(&self, o: &Options) -> Result<Box<dyn LayoutTable>>;
    /// Whether any file of this layout's is there for the table at `base`.
    fn exists(&self, base: &Path) -> bool;
    /// Removes the table's files of this layout (none there: nothing to do).
    fn delete(&self, base: &Path) -> Result<()>;
    /// Renames the table's files of this layout (none there: nothing to do).
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;
}

/// One step of CHECK through rows.
pub enum CheckStep {
    /// A row is current, for the server to judge.
    Row,
    /// A damaged record, with its text.
    Damaged(String),
    End,
}

/// A CHECK that found nothing.
/// ARCHIVE's next AUTO_INCREMENT value: one past the largest key (its 8
/// order-preserving bytes: a signed column's with the sign bit flipped; a signed
/// key at or below 0 does not count) or past the table's start (`m.base`).
/// `keyed`: the table has the index.
pub fn next_auto_increment(m: KeyMax, keyed: bool, unsigned_key: bool) -> u64 {
    let mut last = m.base;
    if m.has_key && keyed {
        let v = if unsigned_key { m.key } else { m.key ^ (1 << 63) };
        if unsigned_key || (v as i64) > 0 {
            last = last.max(v);
        }
    }
    last.wrapping_add(1)
}

pub fn empty_summary() -> CheckSummary {
    CheckSummary {
        rows: 0,
        damaged: 0,
        torn_tail: false,
        lost_rows: 0,
        note: String::new(),
        more: String::new(),
        corrupt: false,
    }
}

/// What a layout does not do, said so.
pub fn unsupported(what: &str) -> Error {
    Error::Unsupported(format!("{what} is not supported by this table's layout"))
}

/// An open table of some layout. The defaults are for an operation the layout
/// does not have.
pub trait LayoutTable {
    fn scan_start(&mut self) -> Result<()>;
    /// Whether a row is current.
    fn scan_next(&mut self) -> Result<bool>;
    fn scan_end(&mut self) -> Result<()> {
        Ok(())
    }
    fn read_at(&mut self, _pos: u64) -> Result<()> {
        Err(unsupported("a position read"))
    }
    /// Where the current row is, for `read_at`.
    fn position(&self) -> u64 {
        0
    }
    /// CSV: the line of the current row.
    fn current_line(&self) -> u64 {
        0
    }
    /// The current row (see the bridge's `record_data`).
    fn record_data(&self) -> &[u8];
    /// CSV: the fields of the current row in `record_data`.
    fn record_fields(&self) -> &[CsvField] {
        &[]
    }
    /// Appends a row; false when a unique key does not grow (ARCHIVE).
    fn insert(&mut self, _image: &[u8], _segs: &[u32], _key: u64, _keyed: bool, _unique: bool) -> Result<bool> {
        Err(unsupported("an insert"))
    }
    /// CSV: appends a row, `fields` in `text`.
    fn insert_text(&mut self, _text: &[u8], _fields: &[CsvField]) -> Result<()> {
        Err(unsupported("an insert"))
    }
    fn lookup(&mut self, _key: u64) -> Result<()> {
        Err(unsupported("an index lookup"))
    }
    fn max_key(&self) -> KeyMax {
        KeyMax { has_key: false, key: 0, base: 0 }
    }
    fn optimize(&mut self, _session: usize) -> Result<()> {
        Err(unsupported("OPTIMIZE"))
    }
    fn update_current(&mut self, _text: &[u8], _fields: &[CsvField]) -> Result<()> {
        Err(unsupported("UPDATE"))
    }
    fn delete_current(&mut self) -> Result<()> {
        Err(unsupported("DELETE"))
    }
    fn set_bulk(&mut self, _on: bool) -> Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn truncate(&mut self) -> Result<()> {
        Err(unsupported("TRUNCATE"))
    }
    /// Forgets pending UPDATE/DELETE work after its statement failed.
    fn discard(&mut self) {}
    fn stats(&self) -> Stats;
    fn set_exact_rows(&self, _rows: u64) {}
    /// Warnings waiting for the server, oldest first.
    fn warnings(&mut self) -> &mut Vec<String>;
    fn check_start(&mut self) -> Result<()> {
        Err(unsupported("CHECK through rows"))
    }
    fn check_next(&mut self) -> Result<CheckStep> {
        Ok(CheckStep::End)
    }
    /// The server found the current row bad for `why`: the text to report.
    fn check_reject(&mut self, why: String) -> String {
        why
    }
    /// The end of CHECK (or REPAIR, which mends what it can now): what was
    /// found, with the verdict. `rejected`: rows the server could not store.
    fn check_finish(&mut self, _repair: bool, _rejected: u64) -> Result<CheckSummary> {
        Ok(empty_summary())
    }
    /// The BTREE table, for the operations only BTREE has.
    fn btree(&mut self) -> Option<&mut BtreeTable> {
        None
    }
    fn btree_ref(&self) -> Option<&BtreeTable> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(layout: LayoutKind) -> CreateOptions<'static> {
        CreateOptions { layout, csv_file: false, csv_header: false, csv_separator: None, csv_writable: false, compression_level: 0 }
    }

    /// Each rule refuses what it names, with the text the user sees, and lets
    /// the layout's own options through.
    #[test]
    fn create_options_go_together_or_say_why() {
        for l in [LayoutKind::Btree, LayoutKind::Csv, LayoutKind::Archive] {
            assert_eq!(check_create_options(&opts(l)), Ok(()));
        }
        let err = |o: CreateOptions| check_create_options(&o).unwrap_err();
        assert_eq!(err(CreateOptions { csv_header: true, ..opts(LayoutKind::Btree) }), "CSV_* and COMPRESSION_LEVEL do not apply to LAYOUT=BTREE");
        assert_eq!(err(CreateOptions { compression_level: 3, ..opts(LayoutKind::Btree) }), "CSV_* and COMPRESSION_LEVEL do not apply to LAYOUT=BTREE");
        assert_eq!(err(CreateOptions { compression_level: 3, ..opts(LayoutKind::Csv) }), "COMPRESSION_LEVEL applies to LAYOUT=ARCHIVE only");
        assert_eq!(err(CreateOptions { csv_file: true, ..opts(LayoutKind::Archive) }), "CSV_* options apply to LAYOUT=CSV only");
        assert_eq!(check_create_options(&CreateOptions { compression_level: 3, ..opts(LayoutKind::Archive) }), Ok(()));
        assert_eq!(check_create_options(&CreateOptions { csv_separator: Some(b";"), csv_header: true, ..opts(LayoutKind::Csv) }), Ok(()));
        for bad in [&b""[..], b";;", b"\"", b"\\", b"\n", b"\r"] {
            assert!(err(CreateOptions { csv_separator: Some(bad), ..opts(LayoutKind::Csv) }).starts_with("CSV_SEPARATOR must be one character"), "{bad:?}");
        }
        assert_eq!(err(CreateOptions { csv_writable: true, ..opts(LayoutKind::Csv) }), "CSV_WRITABLE applies to an attached file (CSV_FILE) only");
        assert_eq!(check_create_options(&CreateOptions { csv_writable: true, csv_file: true, ..opts(LayoutKind::Csv) }), Ok(()));
    }
}
