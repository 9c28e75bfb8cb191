//! The ARCHIVE layout behind the engine's [`Layout`] traits (crate::layout): the
//! table's files ([`table`]) as the boundary uses them.

use std::path::Path;

use super::table::{self, ArchiveOptions, ArchiveTable};
use crate::error::Result;
use crate::fsutil::with_ext;
use crate::layout::{CheckStep, CheckSummary, KeyMax, Layout, LayoutTable, Options, Stats};

pub struct Archive;
pub static ARCHIVE: Archive = Archive;

impl Layout for Archive {
    fn create(&self, o: &Options) -> Result<()> {
        table::create(&o.path, o.auto_inc_base, o.family.code())
    }
    fn open(&self, o: &Options) -> Result<Box<dyn LayoutTable>> {
        let level = if o.level <= 0 { table::DEFAULT_LEVEL } else { o.level };
        Ok(Box::new(ArchiveTable::open(&ArchiveOptions { table_path: o.path.clone(), level, family: o.family.code() })?))
    }
    fn exists(&self, base: &Path) -> bool {
        [table::ARZ_EXT, table::ARP_EXT].iter().any(|e| with_ext(base, e).exists())
    }
    fn delete(&self, base: &Path) -> Result<()> {
        table::delete(base)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        table::rename(from, to)
    }
}

impl LayoutTable for ArchiveTable {
    fn scan_start(&mut self) -> Result<()> {
        ArchiveTable::scan_start(self)
    }
    fn scan_next(&mut self) -> Result<bool> {
        ArchiveTable::scan_next(self)
    }
    fn scan_end(&mut self) -> Result<()> {
        ArchiveTable::scan_end(self)
    }
    fn read_at(&mut self, pos: u64) -> Result<()> {
        ArchiveTable::read_at(self, pos)
    }
    fn position(&self) -> u64 {
        ArchiveTable::position(self)
    }
    fn record_data(&self) -> &[u8] {
        self.record()
    }
    fn insert(&mut self, image: &[u8], segs: &[u32], key: u64, keyed: bool, unique: bool) -> Result<bool> {
        ArchiveTable::insert(self, image, segs, key, keyed, unique)
    }
    fn lookup(&mut self, key: u64) -> Result<()> {
        ArchiveTable::lookup(self, key)
    }
    fn max_key(&self) -> KeyMax {
        let (k, base) = ArchiveTable::max_key(self);
        KeyMax { has_key: k.is_some(), key: k.unwrap_or(0), base }
    }
    fn optimize(&mut self, session: usize) -> Result<()> {
        let blocks = self.block_count() as u64;
        ArchiveTable::optimize(self, &mut crate::session::StopCheck::every(session, 16).with_total(blocks))
    }
    fn set_bulk(&mut self, on: bool) -> Result<()> {
        ArchiveTable::set_bulk(self, on)
    }
    fn flush(&mut self) -> Result<()> {
        ArchiveTable::flush(self)
    }
    fn truncate(&mut self) -> Result<()> {
        ArchiveTable::truncate(self)
    }
    fn discard(&mut self) {
        ArchiveTable::discard(self)
    }
    fn stats(&self) -> Stats {
        let (rows, data_length) = ArchiveTable::stats(self);
        Stats { rows, data_length, index_length: 0, exact: true }
    }
    fn warnings(&mut self) -> &mut Vec<String> {
        &mut self.warnings
    }
    fn check_start(&mut self) -> Result<()> {
        ArchiveTable::check_start(self)
    }
    fn check_next(&mut self) -> Result<CheckStep> {
        Ok(match ArchiveTable::check_next(self)? {
            table::CheckStep::Row => CheckStep::Row,
            table::CheckStep::Damaged(text) => CheckStep::Damaged(text),
            table::CheckStep::End => CheckStep::End,
        })
    }
    /// A row the server cannot unpack is damage REPAIR cannot mend: the table
    /// stays corrupt after REPAIR.
    fn check_finish(&mut self, repair: bool, rejected: u64) -> Result<CheckSummary> {
        let rep = ArchiveTable::check_finish(self, repair)?;
        Ok(CheckSummary {
            rows: rep.rows,
            damaged: rep.damaged,
            lost_rows: rep.lost_rows,
            note: rep.repair_note(),
            corrupt: (!repair && rep.damaged > 0) || rejected > 0,
            ..crate::layout::empty_summary()
        })
    }
}
