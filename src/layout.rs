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
    /// The server family of the shim this build runs under: ARCHIVE files say
    /// which one wrote them (their row images are that family's bytes), and a
    /// table of the other is refused.
    pub family: Family,
}

/// A server family, each with a shim of its own (cpp/mariadb/, cpp/mysql/).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Family {
    #[default]
    MariaDb,
    MySql,
}

impl Family {
    /// Its code in table files (ARCHIVE: `archive::format::FAMILY_*`).
    pub fn code(self) -> u32 {
        match self {
            Family::MariaDb => 0,
            Family::MySql => 1,
        }
    }
}

/// The table options CREATE TABLE gave, for [`check_create_options`] and
/// [`check_create`].
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

/// What CREATE TABLE gives beyond its options, for [`check_create`]: what the
/// server's definition says and the answers of the server's own checks.
pub struct Create<'a> {
    pub options: CreateOptions<'a>,
    /// The server's path of the table (a partition's has `#P#` in it).
    pub path: &'a [u8],
    /// For each index: whether it has one part, on the integer AUTO_INCREMENT column.
    pub keys_on_autoinc: &'a [bool],
    /// The table has an AUTO_INCREMENT column.
    pub auto_increment: bool,
    /// The statement is an ALTER TABLE.
    pub altering: bool,
    /// CSV_FILE's value (when given) and the longest path the server checks.
    pub csv_file: &'a [u8],
    pub csv_file_max: usize,
    /// CSV_FILE given: whether the connection has the FILE privilege, and
    /// whether secure_file_priv lets it read the file.
    pub file_privilege: bool,
    pub secure_path: bool,
}

/// Why CREATE TABLE is refused: the server's error for each.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// ER_TOO_MANY_KEYS, with the layout's limit.
    TooManyKeys(u32),
    /// ER_TABLE_CANT_HANDLE_AUTO_INCREMENT.
    AutoIncrement,
    /// ER_ILLEGAL_HA_CREATE_OPTION, with the message the user sees.
    Option(String),
    /// The server's error for a missing FILE privilege.
    FilePrivilege,
    /// ER_OPTION_PREVENTS_STATEMENT for --secure-file-priv.
    SecureFilePriv,
}

/// What CREATE TABLE may not do, in the order the user is told: CSV has no
/// index and no AUTO_INCREMENT; the options go together
/// ([`check_create_options`]); ARCHIVE, as MariaDB's ARCHIVE, has at most one
/// index, on the AUTO_INCREMENT column; an attached file (CSV_FILE) is not for
/// ALTER or partitions, and is a file the connection may read, as LOAD DATA
/// INFILE reads one. (BTREE's own refusals need the server's key types: C++.)
pub fn check_create(c: &Create) -> std::result::Result<(), Refused> {
    let o = &c.options;
    if o.layout == LayoutKind::Csv && !c.keys_on_autoinc.is_empty() {
        return Err(Refused::TooManyKeys(0));
    }
    if o.layout == LayoutKind::Csv && c.auto_increment {
        return Err(Refused::AutoIncrement);
    }
    check_create_options(o).map_err(Refused::Option)?;
    if o.layout == LayoutKind::Archive && c.keys_on_autoinc.len() > 1 {
        return Err(Refused::TooManyKeys(1));
    }
    if o.layout == LayoutKind::Archive && c.keys_on_autoinc.contains(&false) {
        return Err(Refused::Option(
            "An ARCHIVE table can have one index only, on its integer AUTO_INCREMENT column".into(),
        ));
    }
    if !o.csv_file {
        return Ok(());
    }
    if c.altering || c.path.windows(3).any(|w| w == b"#P#") {
        // ALTER copies rows into a new table: attached to the same file, it would
        // append them to it again; partitions would each attach the whole file
        return Err(Refused::Option(
            "A table attached to a CSV file cannot be altered or partitioned; drop it and create it again".into(),
        ));
    }
    if !c.file_privilege {
        return Err(Refused::FilePrivilege);
    }
    if !c.csv_file.starts_with(b"/") {
        return Err(Refused::Option("CSV_FILE must be an absolute path".into()));
    }
    if c.csv_file.len() > c.csv_file_max {
        // checked whole or not at all: a cut copy could pass the check while
        // the full path names another file
        return Err(Refused::Option(format!("CSV_FILE is longer than {} bytes", c.csv_file_max)));
    }
    if !c.secure_path {
        return Err(Refused::SecureFilePriv);
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

    fn create(layout: LayoutKind) -> Create<'static> {
        Create {
            options: opts(layout),
            path: b"./db/t",
            keys_on_autoinc: &[],
            auto_increment: false,
            altering: false,
            csv_file: b"",
            csv_file_max: 510,
            file_privilege: true,
            secure_path: true,
        }
    }

    /// CREATE's refusals, each the first that applies, with the server's error
    /// for it (or the text the user sees).
    #[test]
    fn create_is_refused_in_order() {
        use Refused::*;
        let opt = |s: &str| Err(Option(s.into()));
        for l in [LayoutKind::Btree, LayoutKind::Csv, LayoutKind::Archive] {
            assert_eq!(check_create(&create(l)), Ok(()));
        }
        let csv = create(LayoutKind::Csv);
        assert_eq!(check_create(&Create { keys_on_autoinc: &[true], auto_increment: true, ..create(LayoutKind::Csv) }), Err(TooManyKeys(0)));
        assert_eq!(check_create(&Create { auto_increment: true, ..create(LayoutKind::Csv) }), Err(AutoIncrement));
        let bad_level = CreateOptions { compression_level: 3, ..opts(LayoutKind::Csv) };
        assert_eq!(check_create(&Create { options: bad_level, ..create(LayoutKind::Csv) }), opt("COMPRESSION_LEVEL applies to LAYOUT=ARCHIVE only"));
        assert_eq!(check_create(&Create { keys_on_autoinc: &[true], ..create(LayoutKind::Archive) }), Ok(()));
        assert_eq!(check_create(&Create { keys_on_autoinc: &[true, true], ..create(LayoutKind::Archive) }), Err(TooManyKeys(1)));
        assert_eq!(
            check_create(&Create { keys_on_autoinc: &[false], ..create(LayoutKind::Archive) }),
            opt("An ARCHIVE table can have one index only, on its integer AUTO_INCREMENT column")
        );
        assert_eq!(check_create(&Create { keys_on_autoinc: &[false, true], ..create(LayoutKind::Btree) }), Ok(()));
        let attached = |file: &'static [u8]| Create { options: CreateOptions { csv_file: true, ..opts(LayoutKind::Csv) }, csv_file: file, ..create(LayoutKind::Csv) };
        assert_eq!(check_create(&attached(b"/tmp/x.csv")), Ok(()));
        let moved = "A table attached to a CSV file cannot be altered or partitioned; drop it and create it again";
        assert_eq!(check_create(&Create { altering: true, ..attached(b"/tmp/x.csv") }), opt(moved));
        assert_eq!(check_create(&Create { path: b"./db/t#P#p0", ..attached(b"/tmp/x.csv") }), opt(moved));
        assert_eq!(check_create(&Create { file_privilege: false, ..attached(b"x.csv") }), Err(FilePrivilege));
        assert_eq!(check_create(&attached(b"x.csv")), opt("CSV_FILE must be an absolute path"));
        assert_eq!(check_create(&attached(b"")), opt("CSV_FILE must be an absolute path"));
        assert_eq!(check_create(&Create { csv_file_max: 5, ..attached(b"/tmp/x.csv") }), opt("CSV_FILE is longer than 5 bytes"));
        assert_eq!(check_create(&Create { csv_file_max: 10, ..attached(b"/tmp/x.csv") }), Ok(()));
        assert_eq!(check_create(&Create { secure_path: false, ..attached(b"/tmp/x.csv") }), Err(SecureFilePriv));
        assert_eq!(check_create(&Create { altering: true, ..csv }), Ok(()));
    }
}
