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
pub use crate::ffi::bridge::{CheckSummary, KeyMax, Stats};

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
    /// CSV, create: the header line's fields as a text row image.
    pub header_image: Vec<u8>,
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
    fn record_spans(&self) -> &[u32] {
        &[]
    }
    /// Appends a row; false when a unique key does not grow (ARCHIVE).
    fn insert(&mut self, _image: &[u8], _segs: &[u32], _key: u64, _keyed: bool, _unique: bool) -> Result<bool> {
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
    fn update_current(&mut self, _image: &[u8]) -> Result<()> {
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
    fn check_finish(&mut self, _repair: bool) -> Result<CheckSummary> {
        Ok(CheckSummary { rows: 0, damaged: 0, torn_tail: false, lost_rows: 0, note: String::new() })
    }
    /// The BTREE table, for the operations only BTREE has.
    fn btree(&mut self) -> Option<&mut BtreeTable> {
        None
    }
    fn btree_ref(&self) -> Option<&BtreeTable> {
        None
    }
}
