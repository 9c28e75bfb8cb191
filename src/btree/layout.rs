//! 8. The BTREE layout behind the engine's [`Layout`] traits (crate::layout), and
//! the one running [`Engine`] its tables live in (started by the boundary's
//! `engine_start`). Uses [`table`](super::table) and [`engine`](super::engine).

use std::path::Path;
use std::sync::OnceLock;

use super::engine::Engine;
use super::table::{self, BtreeTable};
use crate::error::{Error, Result};
use crate::layout::{Layout, LayoutTable, Options, Stats, unsupported};

/// The BTREE engine, once started.
pub static ENGINE: OnceLock<Engine> = OnceLock::new();

pub fn engine() -> Result<&'static Engine> {
    ENGINE.get().ok_or_else(|| Error::Unsupported("the BTREE engine did not start (see the error log)".into()))
}

pub struct Btree;
pub static BTREE: Btree = Btree;

impl Layout for Btree {
    fn available(&self) -> Result<()> {
        engine().map(|_| ())
    }
    fn create(&self, o: &Options) -> Result<()> {
        table::create(&o.path, o.index_count, o.auto_inc_base)?;
        // (a view made before cannot read it: the rows of a copying ALTER's new table)
        table::mark_defined(engine()?, &o.path);
        Ok(())
    }
    fn open(&self, o: &Options) -> Result<Box<dyn LayoutTable>> {
        Ok(Box::new(BtreeTable::open(engine()?, &o.path, o.unique.clone(), o.hidden_pk)?))
    }
    fn exists(&self, base: &Path) -> bool {
        table::exists(base)
    }
    fn delete(&self, base: &Path) -> Result<()> {
        if table::exists(base) {
            table::delete(engine()?, base)?;
        }
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        // a BTREE table whose rename a crash cut short has its first file under the
        // new name already: the server's DDL recovery renames it again to finish
        if table::exists(from) || table::exists(to) {
            table::rename(engine()?, from, to)?;
        }
        Ok(())
    }
}

/// Rows are read and written through a transaction (the bridge's `bt_*` entries,
/// by [`LayoutTable::btree`]); the row-at-a-time entries say so.
impl LayoutTable for BtreeTable {
    fn scan_start(&mut self) -> Result<()> {
        Err(unsupported("a scan without a transaction"))
    }
    fn scan_next(&mut self) -> Result<bool> {
        self.next(false)
    }
    fn read_at(&mut self, _pos: u64) -> Result<()> {
        Err(unsupported("a position read without a transaction"))
    }
    fn record_data(&self) -> &[u8] {
        &self.row
    }
    fn insert(&mut self, _image: &[u8], _segs: &[u32], _key: u64, _keyed: bool, _unique: bool) -> Result<bool> {
        Err(unsupported("an insert without a transaction"))
    }
    fn truncate(&mut self) -> Result<()> {
        Err(unsupported("TRUNCATE without a transaction"))
    }
    fn stats(&self) -> Stats {
        let (data_length, index_length) = self.data_length();
        Stats { rows: self.rows_estimate(), data_length, index_length, exact: false }
    }
    fn warnings(&mut self) -> &mut Vec<String> {
        &mut self.warnings
    }
    fn btree(&mut self) -> Option<&mut BtreeTable> {
        Some(self)
    }
    fn btree_ref(&self) -> Option<&BtreeTable> {
        Some(self)
    }
}
