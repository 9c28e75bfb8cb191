//! The CSV layout behind the engine's [`Layout`] traits (crate::layout): the
//! table's file ([`table`]) as the boundary uses it.

use std::path::Path;

use super::table::{self, CsvOptions, CsvTable};
use crate::error::Result;
use crate::fsutil::with_ext;
use crate::layout::{CheckStep, CheckSummary, CsvField, Layout, LayoutTable, Options, Stats};

pub struct Csv;
pub static CSV: Csv = Csv;

fn csv_options(o: &Options) -> CsvOptions {
    CsvOptions {
        table_path: o.path.clone(),
        external: o.external.clone(),
        header: o.header,
        separator: o.separator,
        writable: o.writable,
        columns: o.columns,
    }
}

impl Layout for Csv {
    fn create(&self, o: &Options) -> Result<()> {
        let opts = csv_options(o);
        let mut line = Vec::new();
        if o.header && opts.external.is_none() {
            table::encode_row(&mut line, &o.header_text, &o.header_fields, o.separator, o.columns)?;
        }
        table::create(&opts, &line)
    }
    fn open(&self, o: &Options) -> Result<Box<dyn LayoutTable>> {
        Ok(Box::new(CsvTable::open(&csv_options(o))?))
    }
    fn exists(&self, base: &Path) -> bool {
        with_ext(base, table::DATA_EXT).exists()
    }
    fn delete(&self, base: &Path) -> Result<()> {
        table::delete(base)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        table::rename(from, to)
    }
}

impl LayoutTable for CsvTable {
    fn scan_start(&mut self) -> Result<()> {
        CsvTable::scan_start(self)
    }
    fn scan_next(&mut self) -> Result<bool> {
        CsvTable::scan_next(self)
    }
    fn scan_end(&mut self) -> Result<()> {
        CsvTable::scan_end(self)
    }
    fn read_at(&mut self, pos: u64) -> Result<()> {
        CsvTable::read_at(self, pos)
    }
    fn position(&self) -> u64 {
        self.current_pos()
    }
    fn current_line(&self) -> u64 {
        CsvTable::current_line(self)
    }
    fn record_data(&self) -> &[u8] {
        &self.record().data
    }
    fn record_fields(&self) -> &[CsvField] {
        &self.record().spans
    }
    fn insert_text(&mut self, text: &[u8], fields: &[CsvField]) -> Result<()> {
        CsvTable::insert(self, text, fields)
    }
    fn update_current(&mut self, text: &[u8], fields: &[CsvField]) -> Result<()> {
        CsvTable::update_current(self, text, fields)
    }
    fn delete_current(&mut self) -> Result<()> {
        CsvTable::delete_current(self)
    }
    fn set_bulk(&mut self, on: bool) -> Result<()> {
        CsvTable::set_bulk(self, on)
    }
    fn flush(&mut self) -> Result<()> {
        CsvTable::flush(self)
    }
    fn truncate(&mut self) -> Result<()> {
        CsvTable::truncate(self)
    }
    fn discard(&mut self) {
        CsvTable::discard(self)
    }
    fn stats(&self) -> Stats {
        let (rows, data_length, exact) = CsvTable::stats(self);
        Stats { rows, data_length, index_length: 0, exact }
    }
    fn set_exact_rows(&self, rows: u64) {
        CsvTable::set_exact_rows(self, rows)
    }
    fn warnings(&mut self) -> &mut Vec<String> {
        &mut self.warnings
    }
    fn check_start(&mut self) -> Result<()> {
        CsvTable::check_start(self)
    }
    fn check_next(&mut self) -> Result<CheckStep> {
        Ok(match CsvTable::check_next(self)? {
            table::CheckStep::Row => CheckStep::Row,
            table::CheckStep::Damaged(text) => CheckStep::Damaged(text),
            table::CheckStep::End => CheckStep::End,
        })
    }
    fn check_reject(&mut self, why: String) -> String {
        CsvTable::check_reject(self, why)
    }
    /// Rows the server rejected are damage here (counted in `damaged`), and
    /// REPAIR removes them: after REPAIR the table is sound.
    fn check_finish(&mut self, repair: bool, _rejected: u64) -> Result<CheckSummary> {
        let rep = CsvTable::check_finish(self, repair)?;
        let damaged = rep.damage.len() as u64;
        Ok(CheckSummary {
            rows: rep.rows,
            damaged,
            torn_tail: rep.damage.iter().any(|d| d.torn_tail),
            note: rep.repair_note(),
            // a torn last line of the table's own file is what a crash in the
            // middle of an append leaves: reads skip it and the next write moves
            // it aside (docs/crash-safety.md), so it is listed but is no damage
            corrupt: !repair && rep.damage.iter().any(|d| !d.torn_tail),
            ..crate::layout::empty_summary()
        })
    }
}
