//! The XA registry: prepared transactions no connection holds (found by
//! recovery, or left by a connection that ended after XA PREPARE), by XID; the
//! server's recovery pass over them ([`RecoverPass`]); XA COMMIT / ROLLBACK of
//! one. Uses the connection's transaction ([`super::trx`]) and the engine.

use super::*;

/// Prepared transactions no connection holds, by XID: found by recovery, or left
/// by a connection that ended after XA PREPARE. They keep their table locks (taken
/// again after a restart) until XA COMMIT or XA ROLLBACK ends them.
pub(super) static PREPARED: LazyLock<Mutex<HashMap<Vec<u8>, TrxHandle>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The table a tree file belongs to: `<table>.rbt` is its clustered index,
/// `<table>#i<N>.rbt` its secondary index N (see [`index_path`]). A partition's
/// files carry `#P#<name>` (`#SP#<name>` for a subpartition), and a partition may
/// be named `i1`: `t#P#i1.rbt` is the clustered index of `t#P#i1`, not index 1 of
/// `t#P`. So a `#i<N>` suffix names a secondary index only when the table it
/// leaves has its clustered file (a table's name never holds a bare `#`: the
/// server writes it as `@0023`, so no other table can own that file).
pub(super) fn table_of_index(p: &Path) -> PathBuf {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let s = p.as_os_str().as_bytes();
    let Some(base) = s.strip_suffix(b".rbt") else { return p.to_path_buf() };
    if let Some(at) = base.windows(2).rposition(|w| w == b"#i") {
        let n = &base[at + 2..];
        if !n.is_empty() && n[0] != b'0' && n.iter().all(u8::is_ascii_digit) {
            let table = Path::new(OsStr::from_bytes(&base[..at]));
            if index_path(table, 0).exists() {
                return table.to_path_buf();
            }
        }
    }
    PathBuf::from(OsStr::from_bytes(base))
}

/// The owner of the exclusive table locks recovered prepared transactions
/// hold: one for all of them, since row locks let several change one table
/// before the crash (each table's lock goes when the last of them that
/// changed it ends: [`end_prepared`]). No transaction id comes near it.
pub(super) const RECOVERED: u64 = u64::MAX - 1;

/// Takes over the prepared transactions recovery kept (at engine start), with
/// exclusive locks on the tables they changed (their rows' locks were in
/// memory: the whole table is locked instead).
pub fn adopt_recovered_prepared(e: &Engine) -> Result<()> {
    let kept = std::mem::take(&mut *e.recovered_prepared.lock());
    let mut prepared = PREPARED.lock();
    for r in kept {
        let mut h = TrxHandle::new();
        for p in &r.trees {
            let l = table_lock(&table_of_index(p));
            if !h.locks.iter().any(|(x, _)| Arc::ptr_eq(x, &l)) {
                l.acquire(&l, RECOVERED, true, u64::MAX, None)?;
                h.locks.push((l, crate::btree::lock::mode::X));
            }
        }
        h.trx = Some(r.trx);
        h.xid = Some(r.xid.clone());
        h.recovered = true;
        prepared.insert(r.xid, h);
    }
    Ok(())
}

/// Whether a transaction found prepared by recovery holds table `path`: its
/// changes' old versions were in memory only, so reads of the table lock it
/// (they wait for XA COMMIT or ROLLBACK) instead of reading from a view.
pub fn held_by_recovered(path: &Path) -> bool {
    let p = PREPARED.lock();
    !p.is_empty() && p.values().any(|h| h.recovered && h.locks.iter().any(|(l, _)| l.name == path))
}

/// Which prepared XIDs the server's current recovery pass has been given. The
/// server calls the handlerton's `recover` with room for `len` XIDs, again and
/// again until it gets fewer than `len`; and it makes two passes at start-up (the
/// binlog's or tc.log's recovery, then a dry run that must see what is left), so
/// the pass that ends lets the next one see every XID again (as InnoDB does).
#[derive(Default)]
pub struct RecoverPass {
    given: HashSet<Vec<u8>>,
}

impl RecoverPass {
    /// Of `all`, those not given in this pass yet (sorted).
    pub fn pending(&self, all: impl IntoIterator<Item = Vec<u8>>) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = all.into_iter().filter(|x| !self.given.contains(x)).collect();
        v.sort();
        v
    }

    /// `xids` were handed to the server (or reported in the error log as
    /// unusable); `ended`: the server got fewer than it had room for, so its pass
    /// is over.
    pub fn given(&mut self, xids: impl IntoIterator<Item = Vec<u8>>, ended: bool) {
        if ended {
            self.given.clear();
        } else {
            self.given.extend(xids);
        }
    }
}

pub(super) static RECOVER_PASS: LazyLock<Mutex<RecoverPass>> = LazyLock::new(Default::default);

/// The XIDs of the prepared transactions no connection holds that the server's
/// current recovery pass has not been given yet (see [`RecoverPass`]); C++ hands
/// over as many as the server has room for and tells [`prepared_xids_given`]
/// which.
pub fn prepared_xids() -> Vec<Vec<u8>> {
    let all: Vec<Vec<u8>> = PREPARED.lock().keys().cloned().collect();
    RECOVER_PASS.lock().pending(all)
}

/// See [`RecoverPass::given`].
pub fn prepared_xids_given(xids: Vec<Vec<u8>>, pass_ended: bool) {
    RECOVER_PASS.lock().given(xids, pass_ended);
}

/// XA COMMIT / XA ROLLBACK of a prepared transaction no connection holds; false
/// if there is none with that XID.
pub fn end_prepared(e: &Engine, xid: &[u8], commit: bool) -> Result<bool> {
    let Some(mut h) = PREPARED.lock().remove(xid) else { return Ok(false) };
    let held: Vec<Arc<TableLock>> = if h.recovered { h.locks.iter().map(|(l, _)| l.clone()).collect() } else { Vec::new() };
    let r = if commit { h.commit(e, true) } else { h.rollback(e) };
    // a table no other recovered transaction changed is free now
    let p = PREPARED.lock();
    for l in held {
        if !p.values().any(|o| o.recovered && o.locks.iter().any(|(x, _)| Arc::ptr_eq(x, &l))) {
            l.release(RECOVERED);
        }
    }
    drop(p);
    r?;
    Ok(true)
}
