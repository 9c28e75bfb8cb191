//! REPAIR TABLE of a BTREE table (docs/repair.md). Every index file of the
//! table is built anew beside the old one and then put in its place, all or
//! none, so that no reader ever sees an index that disagrees with the rows:
//!
//! 1. [`BtreeTable::repair_begin`]: the table's exclusive lock, a checkpoint
//!    (every change is in the files, and no redo of them is left to replay: a
//!    file may then be replaced whole), the clustered file salvaged into
//!    `<file>.repair` (every record of every leaf that checks out; the damaged
//!    pages' bytes saved beside the table first, or REPAIR refuses and changes
//!    nothing), and an empty `<file>.repair` for every secondary index.
//! 2. For every row of the new clustered tree ([`BtreeTable::repair_next`]), the
//!    caller gives its secondary keys ([`BtreeTable::repair_add_entries`]): keys
//!    are built by the server glue, which knows the collations.
//! 3. [`BtreeTable::repair_finish`]: the new files synced, then a marker file
//!    `<table>.rbt.repair-ready` (synced) says they are complete, then each
//!    replaces its old file (rename), then the marker goes. A crash before the
//!    marker leaves the old files (the `.repair` files are removed at the next
//!    open); after it, the next open finishes the renames
//!    ([`finish_interrupted_repair`]).
//!
//! Uses the trees' salvage, the engine's tree file replacement, [`crate::rejected`].

use std::fs::File;

use super::*;
use crate::btree::page::PAGE_SIZE;
use crate::fsutil::sync_dir;
use crate::rejected::{self, Piece};

/// What REPAIR did.
#[derive(Debug, Default)]
pub struct RepairReport {
    /// Rows in the table after the repair.
    pub rows: u64,
    /// Rows the clustered file's meta page said the table held (when readable).
    pub rows_before: Option<u64>,
    /// Pages of the clustered file that did not check out (their bytes are in
    /// the rejected file).
    pub bad_pages: u64,
    /// Rows of good leaves whose long value could not be read whole.
    pub lost_values: u64,
    /// Where the damaged pages were saved.
    pub saved: Option<rejected::Saved>,
    /// Secondary entries written, and entries left out because another row had
    /// the same unique key.
    pub entries: u64,
    pub unique_clashes: u64,
}

impl RepairReport {
    /// Whether rows were lost (the clustered file was damaged).
    pub fn damaged(&self) -> bool {
        self.bad_pages > 0 || self.lost_values > 0 || self.rows_before.is_some_and(|b| b != self.rows)
    }

    /// The REPAIR result's note.
    pub fn note(&self) -> String {
        let mut s = format!("REPAIR kept {} {}", self.rows, if self.rows == 1 { "row" } else { "rows" });
        if let Some(before) = self.rows_before {
            s += &format!(" of the {before} the table held");
        }
        s += " and rebuilt every index";
        if self.bad_pages > 0 {
            s += &format!(
                "; {} damaged {} could not be read",
                self.bad_pages,
                if self.bad_pages == 1 { "page" } else { "pages" }
            );
        }
        if self.lost_values > 0 {
            s += &if self.lost_values == 1 {
                "; 1 row whose long value was on a damaged page was left out".to_string()
            } else {
                format!("; {} rows whose long values were on damaged pages were left out", self.lost_values)
            };
        }
        if let Some(saved) = &self.saved {
            s += &format!("; the damaged pages were saved to '{}' (index: '{}')", saved.data.display(), saved.index.display());
        }
        s
    }
}

/// A REPAIR under way on one handle.
pub(super) struct RepairState {
    report: RepairReport,
    /// The new files, one per index, under their temporary names.
    new: Vec<(PathBuf, BTree)>,
    cur: Cursor,
}

/// The temporary name of index file `path` during a REPAIR.
fn temp_of(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".repair");
    PathBuf::from(p)
}

/// The marker that says the new files of a REPAIR of `table` are complete.
fn marker_of(table: &Path) -> PathBuf {
    let mut p = index_path(table, 0).into_os_string();
    p.push(".repair-ready");
    PathBuf::from(p)
}

/// Before a table's files are opened: a REPAIR that a crash cut short is
/// finished (its marker is there: every new file is complete, so each one still
/// under its temporary name replaces the old file) or forgotten (no marker:
/// its new files are removed, the old ones are the table).
pub(super) fn finish_interrupted_repair(table: &Path, indexes: usize) -> Result<()> {
    let marker = marker_of(table);
    let ready = marker.exists();
    for i in 0..indexes {
        let path = index_path(table, i);
        let tmp = temp_of(&path);
        if !tmp.exists() {
            continue;
        }
        if ready {
            std::fs::rename(&tmp, &path)
                .map_err(|e| Error::io(format!("cannot rename '{}' to '{}'", tmp.display(), path.display()), e))?;
        } else {
            std::fs::remove_file(&tmp).map_err(|e| Error::io(format!("cannot remove '{}'", tmp.display()), e))?;
        }
    }
    if ready {
        sync_dir(&marker)?;
        std::fs::remove_file(&marker).map_err(|e| Error::io(format!("cannot remove '{}'", marker.display()), e))?;
        sync_dir(&marker)?;
        eprintln!("RUST: finished the REPAIR of '{}' that a crash cut short", table.display());
    }
    Ok(())
}

impl BtreeTable {
    /// REPAIR TABLE, first part (see the module's text): the lock, a checkpoint,
    /// the clustered file salvaged into a new file, empty new secondary files;
    /// then [`Self::repair_next`] gives the rows.
    pub fn repair_begin(&mut self, e: &Engine, h: &mut TrxHandle, stop: &mut StopCheck) -> Result<()> {
        h.lock(e, &self.shared.lock, true)?;
        if h.trx.as_ref().is_some_and(|t| self.shared.trees.iter().any(|x| t.changed(x))) {
            return Err(Error::Unsupported("REPAIR of a table the transaction has changed".into()));
        }
        self.repair = None;
        self.cur = Cursor::default();
        e.checkpoint_now()?;
        let mut report = RepairReport::default();
        let mut new: Vec<(PathBuf, BTree)> = Vec::new();
        let r = (|| -> Result<()> {
            for (i, t) in self.shared.trees.iter().enumerate() {
                let path = index_path(&self.path, i);
                let tmp = temp_of(&path);
                let _ = std::fs::remove_file(&tmp); // a leftover of an earlier try
                let (format, auto_inc) = {
                    let g = t.read();
                    (g.format(), g.auto_increment())
                };
                if i == 0 {
                    let s = tree::salvage(&path, &tmp, format, auto_inc, &mut || stop.step())?;
                    new.push((tmp.clone(), BTree::open(&tmp, 64)?));
                    if !s.bad_pages.is_empty() {
                        report.saved = Some(save_bad_pages(&path, &s.bad_pages)?);
                    }
                    report.rows = s.kept;
                    report.rows_before = s.rows_before;
                    report.bad_pages = s.bad_pages.len() as u64;
                    report.lost_values = s.lost_values;
                } else {
                    BTree::create_with(&tmp, 0, format)?;
                    new.push((tmp.clone(), BTree::open(&tmp, 64)?));
                }
            }
            Ok(())
        })();
        if let Err(err) = r {
            for (tmp, t) in new {
                drop(t);
                let _ = std::fs::remove_file(&tmp);
            }
            let _ = std::fs::remove_file(temp_of(&index_path(&self.path, 0)));
            return Err(err);
        }
        let mut cur = Cursor::default();
        new[0].1.seek(&mut cur, Bound::Unbounded, false)?;
        self.repair = Some(Box::new(RepairState { report, new, cur }));
        Ok(())
    }

    /// REPAIR TABLE: the next row of the new clustered tree into [`Self::pk`]
    /// and [`Self::row`]; false at the end.
    pub fn repair_next(&mut self) -> Result<bool> {
        let st = self.repair.as_mut().ok_or_else(|| Error::Internal("no REPAIR under way".into()))?;
        loop {
            if !st.new[0].1.next(&mut st.cur, false, &mut self.key, &mut self.val)? {
                return Ok(false);
            }
            if self.val.len() < ROW_HEADER {
                return Err(Error::Corrupt(format!("{}: a clustered record shorter than its header", self.path.display())));
            }
            // a delete-marked record is a deleted row's: it gets no entries
            // (purge, or the next rebuild, removes it)
            if !(self.mvcc && super::mvcc::header(&self.val)?.deleted) {
                break;
            }
        }
        self.pk.clone_from(&self.key);
        self.row.clear();
        self.row.extend_from_slice(&self.val[ROW_HEADER..]);
        Ok(true)
    }

    /// REPAIR TABLE: the entries of the row [`Self::repair_next`] gave, `sec[i]`
    /// being the key of secondary index i+1 and whether a part of it is NULL. A
    /// unique key another row already has is left out of that index and counted.
    pub fn repair_add_entries<S: SecondaryKey>(&mut self, sec: &[S]) -> Result<()> {
        let n = self.repair.as_ref().ok_or_else(|| Error::Internal("no REPAIR under way".into()))?.new.len();
        if sec.len() + 1 != n {
            return Err(Error::Internal(format!("{} secondary keys for {} indexes", sec.len(), n - 1)));
        }
        for (j, s) in sec.iter().enumerate() {
            let v = self.secondary_value(&self.pk, s.unpack());
            let st = self.repair.as_mut().ok_or_else(|| Error::Internal("no REPAIR under way".into()))?;
            let t = &mut st.new[j + 1].1;
            if self.unique[j + 1] && !s.has_null() && unique_taken_in(t, s.key(), &self.pk, self.sec_value)? {
                st.report.unique_clashes += 1;
                continue;
            }
            t.insert(&Self::secondary_entry(s.key(), &self.pk), &v)?;
            st.report.entries += 1;
        }
        Ok(())
    }

    /// REPAIR TABLE, last part: the new files put in place of the old ones, all
    /// or none (see the module's text). Forgets the repair (and removes its new
    /// files) if it is given up (`keep` false: KILL, an error of the caller's).
    pub fn repair_finish(&mut self, e: &Engine, keep: bool) -> Result<RepairReport> {
        let st = self.repair.take().ok_or_else(|| Error::Internal("no REPAIR under way".into()))?;
        let RepairState { report, new, .. } = *st;
        let mut paths = Vec::with_capacity(new.len());
        let mut r = Ok(());
        for (tmp, mut t) in new {
            if keep && r.is_ok() {
                r = t.flush();
            }
            drop(t);
            paths.push(tmp);
        }
        if !keep || r.is_err() {
            for tmp in &paths {
                let _ = std::fs::remove_file(tmp);
            }
            return r.map(|_| report);
        }
        let marker = marker_of(&self.path);
        crate::btree::crash_point()?;
        crate::fsutil::write_synced(&marker, b"ha_rust REPAIR: the .repair files beside this one are complete\n")?;
        sync_dir(&marker)?;
        crate::btree::crash_point()?;
        for (i, tmp) in paths.iter().enumerate() {
            let path = index_path(&self.path, i);
            e.replace_tree_file(&path, &self.shared.trees[i], tmp)?;
            crate::btree::crash_point()?;
        }
        std::fs::remove_file(&marker).map_err(|err| Error::io(format!("cannot remove '{}'", marker.display()), err))?;
        sync_dir(&marker)?;
        self.shared.key_stats.lock().clear();
        self.cur = Cursor::default();
        super::mark_defined(e, &self.path);
        if self.hidden_pk {
            // hidden row ids go on from the largest kept (never below what was given)
            let next = next_hidden_rowid(&self.shared.trees[0])?;
            self.shared.next_rowid.fetch_max(next, Ordering::Relaxed);
        }
        Ok(report)
    }
}

fn save_bad_pages(path: &Path, bad: &[tree::BadPage]) -> Result<rejected::Saved> {
    let pieces: Vec<Piece> = bad
        .iter()
        .map(|b| Piece {
            offset: b.no as u64 * PAGE_SIZE as u64,
            len: b.len,
            line: None,
            rows: None,
            why: format!("page {}: {}", b.no, b.why),
        })
        .collect();
    let f = File::open(path).map_err(|err| Error::io(format!("cannot open '{}'", path.display()), err))?;
    rejected::save(path, &f, rejected::Kind::Btree, &pieces)
}
