//! REPAIR TABLE of a BTREE table, in two parts (docs/repair.md):
//! [`BtreeTable::repair_begin`] salvages the clustered tree when it does not
//! check out (every record of every leaf that does, into a new file that
//! replaces the old one; the damaged pages' bytes saved beside it first) and
//! empties the secondary indexes; the caller then scans the rows and gives each
//! row's secondary keys to [`BtreeTable::repair_add_entries`] (keys are built by
//! the server glue, which knows the collations), and ends with
//! [`BtreeTable::repair_finish`]. Uses the trees' salvage, the engine's tree
//! file replacement and TRUNCATE, and [`crate::rejected`].

use std::fs::File;

use super::*;
use crate::btree::page::PAGE_SIZE;
use crate::rejected::{self, Piece};

/// What REPAIR did.
#[derive(Debug, Default)]
pub struct RepairReport {
    /// The clustered tree did not check out and was rebuilt from what could be read.
    pub rebuilt: bool,
    /// Rows in the table after the salvage.
    pub rows: u64,
    /// Rows the meta page said the table held (when it could be read).
    pub rows_before: Option<u64>,
    /// Pages that did not check out (their bytes are in the rejected file).
    pub bad_pages: u64,
    /// Rows of good leaves whose long value could not be read whole.
    pub lost_values: u64,
    /// Where the damaged pages were saved.
    pub saved: Option<rejected::Saved>,
    /// Secondary entries written, and rows whose unique key another row had.
    pub entries: u64,
    pub unique_clashes: u64,
}

impl RepairReport {
    /// The REPAIR result's note (empty when there was nothing to repair in the
    /// clustered tree).
    pub fn note(&self) -> String {
        if !self.rebuilt {
            return String::new();
        }
        let mut s = format!("REPAIR kept {} rows", self.rows);
        if let Some(before) = self.rows_before {
            s += &format!(" of the {before} the table held");
        }
        if self.bad_pages > 0 {
            s += &format!(
                "; {} damaged {} could not be read",
                self.bad_pages,
                if self.bad_pages == 1 { "page" } else { "pages" }
            );
        }
        if self.lost_values > 0 {
            s += &format!("; {} rows lost a long value on a damaged page and were left out", self.lost_values);
        }
        if let Some(saved) = &self.saved {
            s += &format!("; the damaged pages were saved to '{}' (index: '{}')", saved.data.display(), saved.index.display());
        }
        s
    }
}

impl BtreeTable {
    /// REPAIR TABLE, first part: the table's exclusive lock for `h`; a
    /// checkpoint (every change of the table is in its files, and no redo of them
    /// is left to replay: a file may then be replaced whole); the clustered tree
    /// checked, and if it does not check out, salvaged into a new file that
    /// replaces it (a crash before the replacing rename leaves the old file, after
    /// it the new one); the damaged pages' bytes saved first (if they cannot be,
    /// REPAIR refuses and changes nothing). Then the secondary indexes are emptied
    /// (TRUNCATE's RESET record: a crash leaves them empty or whole, and CHECK
    /// TABLE says which until the next REPAIR), for the caller to fill again.
    pub fn repair_begin(&mut self, e: &Engine, h: &mut TrxHandle, stop: &mut StopCheck) -> Result<RepairReport> {
        h.lock(e, &self.shared.lock, true)?;
        if h.trx.as_ref().is_some_and(|t| self.shared.trees.iter().any(|x| t.changed(x))) {
            return Err(Error::Unsupported("REPAIR of a table the transaction has changed".into()));
        }
        self.cur = Cursor::default();
        e.checkpoint_now()?;
        let mut rep = RepairReport::default();
        let t0 = self.shared.trees[0].clone();
        let whole = match t0.write().check_with(&mut || stop.step()) {
            Ok(()) => true,
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            Err(_) => false,
        };
        rep.rows = t0.read().rows();
        if !whole {
            self.salvage_clustered(e, &t0, stop, &mut rep)?;
        }
        let secs: Vec<_> =
            (1..self.shared.trees.len()).map(|i| (index_path(&self.path, i), self.shared.trees[i].clone())).collect();
        if !secs.is_empty() {
            e.reset_trees(&secs)?;
        }
        self.shared.key_stats.lock().clear();
        self.cur = Cursor::default();
        Ok(rep)
    }

    fn salvage_clustered(&mut self, e: &Engine, t0: &Tree, stop: &mut StopCheck, rep: &mut RepairReport) -> Result<()> {
        let path = index_path(&self.path, 0);
        let (format, auto_inc) = {
            let g = t0.read();
            (g.format(), g.auto_increment())
        };
        let mut tmp = path.clone().into_os_string();
        tmp.push(".repair");
        let tmp = PathBuf::from(tmp);
        // a leftover of a REPAIR that a crash cut short
        let _ = std::fs::remove_file(&tmp);
        let s = tree::salvage(&path, &tmp, format, auto_inc, &mut || stop.step())?;
        if !s.bad_pages.is_empty() {
            let pieces: Vec<Piece> = s
                .bad_pages
                .iter()
                .map(|b| Piece {
                    offset: b.no as u64 * PAGE_SIZE as u64,
                    len: b.len,
                    line: None,
                    rows: None,
                    why: format!("page {}: {}", b.no, b.why),
                })
                .collect();
            let saved = File::open(&path)
                .map_err(|err| Error::io(format!("cannot open '{}'", path.display()), err))
                .and_then(|f| rejected::save(&path, &f, rejected::Kind::Btree, &pieces));
            match saved {
                Ok(saved) => rep.saved = Some(saved),
                Err(err) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(err);
                }
            }
        }
        e.replace_tree_file(&path, t0, &tmp)?;
        rep.rebuilt = true;
        rep.rows = s.kept;
        rep.rows_before = s.rows_before;
        rep.bad_pages = s.bad_pages.len() as u64;
        rep.lost_values = s.lost_values;
        if self.hidden_pk {
            // hidden row ids go on from the largest kept (never reused below it)
            let mut t = t0.write();
            let mut c = Cursor::default();
            t.seek(&mut c, Bound::Unbounded, true)?;
            let (mut k, mut v) = (vec![], vec![]);
            if t.next(&mut c, true, &mut k, &mut v)? && k.len() == HIDDEN_PK_LEN {
                let next = u64::from_be_bytes(k[..].try_into().unwrap()) + 1;
                self.shared.next_rowid.fetch_max(next, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// REPAIR TABLE, second part, once per row of the table (the row the scan
    /// returned last): its entry in every secondary index, `sec[i]` being the key
    /// of index i+1 and whether a part of it is NULL. Each entry is a
    /// mini-transaction of its own (logged, no undo). A unique key another row
    /// already has is left out of that index and counted (CHECK TABLE then says
    /// the index misses an entry).
    pub fn repair_add_entries(&mut self, sec: &[(Vec<u8>, bool)], rep: &mut RepairReport) -> Result<()> {
        if sec.len() + 1 != self.shared.trees.len() {
            return Err(Error::Internal(format!("{} secondary keys for {} indexes", sec.len(), self.shared.trees.len() - 1)));
        }
        let pk = self.pk.clone();
        for (j, (k, has_null)) in sec.iter().enumerate() {
            if self.unique[j + 1] && !has_null && self.unique_taken(j + 1, k, &pk)? {
                rep.unique_clashes += 1;
                continue;
            }
            self.shared.trees[j + 1].write().insert(&Self::secondary_entry(k, &pk), &pk)?;
            rep.entries += 1;
        }
        Ok(())
    }

    /// REPAIR TABLE, last part: a checkpoint, so that the rebuilt indexes are in
    /// their files.
    pub fn repair_finish(&mut self, e: &Engine) -> Result<()> {
        self.cur = Cursor::default();
        e.checkpoint_now()
    }
}
