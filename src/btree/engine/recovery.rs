//! Crash recovery ([`Engine::recover`], run by [`Engine::open`]): redo every
//! logged page change from the last checkpoint on, replay TRUNCATE's RESET records,
//! roll back every transaction with neither a commit nor a rollback record (from
//! the undo entries its records carry), keep the prepared ones. Uses the redo
//! records' readers ([`crate::btree::wal::records`]), the trees and transactions.

use super::*;

/// The tree of an undo entry found by recovery: a tree id (an MTR record's), with
/// the file that id named where the record is in the log, or the path an
/// UNDO_CARRY record gave for its id.
pub(super) enum UndoTree {
    Id(u32, Option<PathBuf>),
    Path(PathBuf),
}

/// Which file each tree id names, read along the log record by record: a TREE
/// record says what its id names from there on. Tree ids are given by the run
/// that writes the records; a run gives ids no record still in the log uses
/// (see [`max_tree_id`]), but a log written by an older build may hold one id
/// for two files, from two runs (a recovery cut short, which numbered its trees
/// from 1 again), so an id is resolved where its record is, never by the last
/// TREE record of the whole log.
struct TreeIds {
    map: HashMap<u32, PathBuf>,
    /// The ids the control file names: before its checkpoint, a TREE record
    /// for one of them is of an older run (kept for a prepared transaction).
    at_checkpoint: HashSet<u32>,
    checkpoint: u64,
}

impl TreeIds {
    fn new(ctl: &Control) -> TreeIds {
        TreeIds {
            map: ctl.trees.iter().cloned().collect(),
            at_checkpoint: ctl.trees.iter().map(|(id, _)| *id).collect(),
            checkpoint: ctl.checkpoint,
        }
    }

    /// Takes in record `r` (a TREE record names a file for its id).
    fn see(&mut self, r: &Record) {
        if r.kind != REC_TREE || r.payload.len() < 4 {
            return;
        }
        use std::os::unix::ffi::OsStrExt;
        let id = u32::from_le_bytes(r.payload[0..4].try_into().unwrap());
        if r.lsn >= self.checkpoint || !self.at_checkpoint.contains(&id) {
            self.map.insert(id, PathBuf::from(std::ffi::OsStr::from_bytes(&r.payload[4..])));
        }
    }
}

/// The largest tree id the control file or any record of the log uses (TREE,
/// MTR, PREPARE, UNDO_CARRY and RESET records): the trees this run opens get
/// larger ones, so that no id means two files in one log, however often
/// recovery is cut short and run again (its rollback's records come after
/// those of the run that crashed, in the same log).
fn max_tree_id(ctl: &Control, recs: &[Record]) -> u32 {
    let mut max = ctl.trees.iter().map(|(id, _)| *id).max().unwrap_or(0);
    for r in recs {
        let ids: Vec<u32> = match r.kind {
            REC_TREE | REC_MTR => r.payload.get(0..4).map(|b| u32::from_le_bytes(b.try_into().unwrap())).into_iter().collect(),
            REC_PREPARE => parse_prepare(&r.payload).map(|(_, ids)| ids.into_keys().collect()).unwrap_or_default(),
            REC_UNDO_CARRY => parse_carry(&r.payload).map(|(_, ids, _)| ids.into_keys().collect()).unwrap_or_default(),
            REC_RESET => parse_reset(&r.payload).map(|t| t.into_iter().map(|(id, _)| id).collect()).unwrap_or_default(),
            _ => continue,
        };
        max = ids.into_iter().fold(max, u32::max);
    }
    max
}

impl Engine {
    pub(super) fn recover(&self, ctl: &Control, recs: &[Record]) -> Result<()> {
        // the trees this run opens (the rollback's below) get ids no record uses
        let max_id = max_tree_id(ctl, recs);
        if max_id == u32::MAX {
            return Err(Error::Corrupt(format!("redo log: tree id {max_id} leaves no id for the trees this run opens")));
        }
        self.next_tree.store(max_id + 1, Ordering::Relaxed);
        // TRUNCATEs: the last RESET record of each tree file (its older pages,
        // redo and undo are void)
        let mut reset_at: HashMap<PathBuf, u64> = HashMap::new();
        for r in recs.iter().filter(|r| r.kind == REC_RESET) {
            let Some(trees) = parse_reset(&r.payload) else {
                return Err(Error::Corrupt(format!("reset record at LSN {} is malformed", r.lsn)));
            };
            for (_, path) in trees {
                reset_at.insert(path, r.lsn);
            }
        }
        // 1. redo, into pages keyed by (file, page number): a file is its index
        // in `paths`
        let mut ids = TreeIds::new(ctl);
        let mut paths: Vec<PathBuf> = Vec::new();
        let mut file_no: HashMap<PathBuf, u32> = HashMap::new();
        let mut intern = |path: &Path| -> u32 {
            if let Some(&f) = file_no.get(path) {
                return f;
            }
            paths.push(path.to_path_buf());
            file_no.insert(path.to_path_buf(), paths.len() as u32 - 1);
            paths.len() as u32 - 1
        };
        let mut pages: HashMap<(u32, u32), Box<[u8; PAGE_SIZE]>> = HashMap::new();
        // files a RESET record after the checkpoint empties: they are rebuilt
        // from that record on, whatever they hold
        let mut reset: HashSet<u32> = HashSet::new();
        let mut resets = 0u64;
        let mut redone = 0u64;
        let mut max_trx = 0u64;
        // records whose tree no TREE record nor the control file names: never
        // expected (a tree's records follow its TREE record, and a checkpoint
        // lists the trees open at it); each is said in the error log, so that
        // a log that breaks this is seen (ci/crashloop fails on the line)
        let mut unnamed: Vec<String> = Vec::new();
        // a long recovery says how far it is in the server's error log (stderr)
        let tenth = recs.len() / 10;
        for (i, r) in recs.iter().enumerate() {
            if recs.len() >= 100_000 && i > 0 && i % tenth == 0 && i / tenth < 10 {
                eprintln!("RUST: recovery: redo {}% done ({} of {} log records)", i / tenth * 10, i, recs.len());
            }
            max_trx = max_trx.max(r.trx);
            ids.see(r);
            if r.kind == REC_RESET && r.lsn >= ctl.checkpoint {
                for (id, path) in parse_reset(&r.payload).unwrap_or_default() {
                    if !path.exists() {
                        continue; // dropped since
                    }
                    // the file keeps its format (TRUNCATE never changes it)
                    let format = BTree::format_of_file(&path).unwrap_or(crate::btree::tree::FORMAT_VERSION);
                    let file = intern(&path);
                    ids.map.insert(id, path);
                    pages.retain(|&(t, _), _| t != file);
                    for (no, mut p) in BTree::empty_pages(0, format).into_iter().enumerate() {
                        p.set_lsn(r.lsn);
                        pages.insert((file, no as u32), p.into_buf());
                    }
                    reset.insert(file);
                }
                resets += 1;
                continue;
            }
            if r.kind != REC_MTR || r.lsn < ctl.checkpoint {
                continue;
            }
            let Some((tree, _, changes)) = parse_mtr(&r.payload) else {
                return Err(Error::Corrupt(format!("redo record at LSN {} is malformed", r.lsn)));
            };
            let Some(path) = ids.map.get(&tree) else {
                unnamed.push(format!("the redo record at LSN {} (tree id {tree})", r.lsn));
                continue;
            };
            if !path.exists() {
                continue; // the table was dropped since
            }
            let file = intern(path);
            for c in changes {
                let page = match pages.entry((file, c.page)) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let mut b = Box::new([0u8; PAGE_SIZE]);
                        if c.kind == PAGE_DIFF {
                            // (not expected: a page's first change after the
                            // checkpoint is logged whole or as new)
                            let f = File::open(path).ctx(|| format!("cannot open '{}'", path.display()))?;
                            let _ = f.read_exact_at(&mut b[..], c.page as u64 * PAGE_SIZE as u64);
                        }
                        v.insert(b)
                    }
                };
                if c.kind == PAGE_FULL {
                    page[LOGGED_FROM..].copy_from_slice(c.bytes);
                } else {
                    if c.kind == PAGE_NEW {
                        // initialised by this mtr: built from zeros, never from disk
                        page.fill(0);
                    }
                    apply_diff(&mut page[..], c.bytes)
                        .ok_or_else(|| Error::Corrupt(format!("redo record at LSN {} is malformed", r.lsn)))?;
                }
                page[4..8].copy_from_slice(&c.page.to_le_bytes());
                page[8..16].copy_from_slice(&r.lsn.to_le_bytes());
                redone += 1;
            }
        }
        // a reset tree's file ends at its last page (its older pages are freed)
        let mut reset_len: HashMap<u32, u64> = HashMap::new();
        for &(tree, no) in pages.keys().filter(|(t, _)| reset.contains(t)) {
            let end = reset_len.entry(tree).or_default();
            *end = (*end).max((no as u64 + 1) * PAGE_SIZE as u64);
        }
        let mut files: HashMap<u32, File> = HashMap::new();
        for ((tree, no), buf) in pages {
            let path = &paths[tree as usize];
            let f = match files.entry(tree) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(
                    OpenOptions::new().write(true).open(path).ctx(|| format!("cannot open '{}'", path.display()))?,
                ),
            };
            let mut p = Page::from_buf(buf);
            p.seal();
            crate::btree::write_crash_point()?;
            f.write_all_at(&p.bytes()[..], no as u64 * PAGE_SIZE as u64)
                .ctx(|| format!("cannot write '{}'", path.display()))?;
        }
        for (tree, len) in reset_len {
            crate::btree::write_crash_point()?;
            let path = &paths[tree as usize];
            files[&tree].set_len(len).ctx(|| format!("cannot truncate '{}'", path.display()))?;
        }
        for (tree, f) in &files {
            let path = &paths[*tree as usize];
            f.sync_all().ctx(|| format!("cannot sync '{}'", path.display()))?;
        }
        // 2. undo what never committed
        let mut done: HashSet<u64> = HashSet::new();
        for r in recs {
            if r.kind == REC_COMMIT || r.kind == REC_ROLLBACK_DONE {
                done.insert(r.trx);
            }
        }
        // prepared and not ended: kept (the server commits or rolls them back by XID)
        // prepared, then XA ROLLBACK began and did not end: rolled back below
        let rolling_back: HashSet<u64> =
            recs.iter().filter(|r| r.kind == REC_ROLLBACK_START && !done.contains(&r.trx)).map(|r| r.trx).collect();
        let mut prepared: HashMap<u64, (Vec<u8>, HashMap<u32, PathBuf>)> = HashMap::new();
        // each unfinished transaction's undo entries, oldest first, and the LSN the
        // log must be kept from for it
        let mut first_lsn: HashMap<u64, u64> = HashMap::new();
        // (tree, LSN of the record that logged it, undo entry)
        let mut undo: HashMap<u64, Vec<(UndoTree, u64, Vec<u8>)>> = HashMap::new();
        let mut ids = TreeIds::new(ctl);
        for r in recs {
            ids.see(r);
            if r.trx == 0 || done.contains(&r.trx) {
                continue;
            }
            match r.kind {
                REC_PREPARE => {
                    let Some(p) = parse_prepare(&r.payload) else {
                        return Err(Error::Corrupt(format!("prepare record at LSN {} is malformed", r.lsn)));
                    };
                    prepared.insert(r.trx, p);
                }
                REC_MTR => {
                    first_lsn.entry(r.trx).or_insert(r.lsn);
                    if let Some((tree, u, _)) = parse_mtr(&r.payload) {
                        if !u.is_empty() {
                            let at = ids.map.get(&tree).cloned();
                            undo.entry(r.trx).or_default().push((UndoTree::Id(tree, at), r.lsn, u.to_vec()));
                        }
                    }
                }
                REC_UNDO_CARRY => {
                    // every undo entry the transaction had then: its records
                    // before this one are not needed (and may be gone)
                    let Some((xid, ids, entries)) = parse_carry(&r.payload) else {
                        return Err(Error::Corrupt(format!("undo carry record at LSN {} is malformed", r.lsn)));
                    };
                    first_lsn.insert(r.trx, r.lsn);
                    let list = undo.entry(r.trx).or_default();
                    list.clear();
                    for (tree, u) in entries {
                        match ids.get(&tree) {
                            Some(path) => list.push((UndoTree::Path(path.clone()), r.lsn, u)),
                            None => unnamed.push(format!(
                                "an undo entry of transaction {} carried at LSN {} (tree id {tree})",
                                r.trx, r.lsn
                            )),
                        }
                    }
                    if let Some(xid) = xid {
                        prepared.insert(r.trx, (xid, ids));
                    }
                }
                _ => {}
            }
        }
        // an undo entry of a change a later TRUNCATE voided has nothing to undo
        // (no transaction that changed a table is open when it is truncated: the
        // table's exclusive lock; this only keeps a log that says otherwise from
        // putting old rows into the empty table; a carried entry counts from its
        // UNDO_CARRY record)
        let voided = |path: &Path, lsn: u64| reset_at.get(path).is_some_and(|&at| at > lsn);
        self.sh.next_trx.fetch_max(max_trx + 1, Ordering::Relaxed);
        // an entry's tree: tree ids in MTR records are those of the run that wrote
        // them, which for a prepared transaction may be an earlier run (its
        // PREPARE or UNDO_CARRY record names them: `ids`; the TREE records of
        // that run may be gone from the log); others are read where the
        // record is
        let resolve = |ids: Option<&HashMap<u32, PathBuf>>, t: &UndoTree| -> Option<PathBuf> {
            match (t, ids) {
                (UndoTree::Id(id, _), Some(ids)) => ids.get(id).cloned(),
                (UndoTree::Id(_, at), None) => at.clone(),
                (UndoTree::Path(p), _) => Some(p.clone()),
            }
        };
        let mut kept = Vec::new();
        let mut ids_of: HashMap<u64, HashMap<u32, PathBuf>> = HashMap::new();
        for (trx, (xid, ids)) in prepared {
            if rolling_back.contains(&trx) {
                undo.entry(trx).or_default();
                ids_of.insert(trx, ids);
                continue;
            }
            let mut st = TrxState { xid: Some(xid.clone()), logged: true, ..Default::default() };
            let mut trees = Vec::new();
            for (tree, lsn, u) in undo.remove(&trx).unwrap_or_default() {
                let Some(path) = resolve(Some(&ids), &tree) else {
                    unnamed.push(format!("an undo entry of prepared transaction {trx} at LSN {lsn}"));
                    continue;
                };
                if !path.exists() || voided(&path, lsn) {
                    continue;
                }
                st.undo.push(&self.open_tree(&path)?, &u);
                if !trees.contains(&path) {
                    trees.push(path);
                }
            }
            // its log records stay until it ends (or a checkpoint carries its undo)
            let first = first_lsn.get(&trx).copied().unwrap_or_else(|| self.sh.log.end_lsn());
            let t = Trx::new(trx, first, st);
            self.sh.active.lock().insert(trx, t.sh.clone());
            kept.push(RecoveredPrepared { xid, trx: t, trees });
        }
        let mut rolled = 0;
        // keep the trees open until the checkpoint below has written them
        let mut keep = Vec::new();
        for (trx, entries) in &undo {
            let ids = ids_of.get(trx);
            for (tree, lsn, u) in entries.iter().rev() {
                // (entries a partial rollback already applied are applied again:
                // each puts a key back as it was before the change it undoes)
                let Some(path) = resolve(ids, tree) else {
                    unnamed.push(format!("an undo entry of transaction {trx} at LSN {lsn}"));
                    continue;
                };
                if !path.exists() || voided(&path, *lsn) {
                    continue;
                }
                let t = self.open_tree(&path)?;
                crate::btree::write_crash_point()?;
                t.write().apply_undo(*trx, u)?;
                keep.push(t);
            }
            self.sh.log.append(REC_ROLLBACK_DONE, *trx, &[]);
            rolled += 1;
        }
        if redone > 0 || rolled > 0 {
            self.notes.lock().push(format!(
                "recovery: redid {redone} page changes from the redo log, rolled back {rolled} transactions that had not committed"
            ));
        }
        for u in &unnamed {
            self.notes.lock().push(format!(
                "[ERROR] recovery skipped {u}: no TREE record and not the control file name its tree"
            ));
        }
        if resets > 0 {
            self.notes.lock().push(format!("recovery: redid {resets} TRUNCATE TABLE (the tables' files rebuilt empty)"));
        }
        if !ids_of.is_empty() {
            self.notes.lock().push(format!(
                "recovery: {} of them were prepared transactions whose XA ROLLBACK had begun",
                ids_of.len()
            ));
        }
        if !kept.is_empty() {
            self.notes.lock().push(format!(
                "recovery: {} prepared transactions kept for the server to commit or roll back",
                kept.len()
            ));
        }
        *self.recovered_prepared.lock() = kept;
        self.checkpoint_now()?;
        drop(keep);
        Ok(())
    }
}
