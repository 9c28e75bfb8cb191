//! Purge (InnoDB's `trx0purge`/`row0purge`): removes the delete-marked
//! records and secondary entries of versioned tables ([`super::mvcc`]), and
//! drops the old versions in the history, once no read view can need them.
//!
//! A transaction that delete-marks something hands, at its commit, where
//! (table, index, key) to the queue, under its id. Once that id is below the
//! purge horizon ([`Engine::purge_horizon`]) every view sees the delete, and
//! the item is looked at again, under the table's IX lock (so never beside
//! LOCK TABLES, TRUNCATE or REPAIR), and removed in a redo-logged change
//! without undo (as InnoDB's purge: nothing ever takes it back; a crash
//! before it is durable leaves the mark, which is harmless), in the same hold
//! of the tree's latch as these checks:
//! - a clustered record still delete-marked, by a transaction below the
//!   horizon, is removed;
//! - a secondary entry still delete-marked is removed if its row's newest
//!   version is by a transaction below the horizon (every view reads that
//!   version, whose live entry is another), or its row is gone.
//!
//! A record goes after the entries of its row that are due in the same pass
//! (one that must wait keeps its record). An entry marked by a transaction
//! whose item comes due later (ids are not in commit order) may outlive its
//! record: a marked entry of no row is garbage no read takes, and CHECK TABLE
//! does not count it; its own item removes it.
//!
//! Nothing is removed where a transaction has a row lock or a lock request
//! (on the record, the entry, or the entry's row): a writer locks its row
//! before it reads it, so a record it found stays; a locking read's lock on a
//! marked record guards the gap before it. Such an item waits for a later
//! pass. One that a later transaction changed meanwhile waits for that one to
//! pass the horizon; one taken back (its mark cleared) is dropped. A thread does
//! this about once a second, and the engine's stop drains what it can
//! ([`stop`]). The work is in memory: after a crash, marks whose items were
//! lost stay (reads skip them; a later insert of the same key reuses the
//! record, and `ALTER TABLE ... FORCE` rebuilds without them).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::mvcc::{SecValue, header, split_entry};
use super::rowlock::spot;
use super::{Request, Shared, TrxHandle, tree};
use crate::btree::engine::Engine;
use crate::error::Result;

/// Where something was delete-marked: a key of one of a table's indexes.
pub struct Item {
    pub(super) table: Arc<Shared>,
    pub(super) index: u32,
    pub(super) key: Vec<u8>,
}

type Work = BTreeMap<u64, Vec<Item>>;

/// Each engine's work, by the transaction that marked it.
static QUEUE: LazyLock<Mutex<HashMap<usize, Work>>> = LazyLock::new(Default::default);
/// Held while a pass runs (so that [`forget`] never races one).
static RUNNING: Mutex<()> = Mutex::new(());
/// The purge thread of the server's engine, and its stop flag.
static THREAD: Mutex<Option<(JoinHandle<()>, Arc<AtomicBool>)>> = Mutex::new(None);
static WAKE: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// Items purged at most under one lock hold (writers wait meanwhile).
const BATCH: usize = 1000;

/// Hands what transaction `trx` delete-marked to purge (at its commit).
pub fn enqueue(e: &Engine, trx: u64, items: Vec<Item>) {
    if items.is_empty() {
        return;
    }
    QUEUE.lock().entry(e.id()).or_default().entry(trx).or_default().extend(items);
    let (m, cv) = &WAKE;
    *m.lock() = true;
    cv.notify_one();
}

/// Items waiting (SHOW ENGINE RUST STATUS, Rust_purge_pending).
pub fn pending(e: &Engine) -> usize {
    QUEUE.lock().get(&e.id()).map_or(0, |w| w.values().map(Vec::len).sum())
}

/// A table's files are about to go (DROP) or move (RENAME): its items are
/// dropped (and its trees let go of).
pub fn forget(path: &Path) {
    let _run = RUNNING.lock();
    for w in QUEUE.lock().values_mut() {
        for items in w.values_mut() {
            items.retain(|i| i.table.path != path);
        }
        w.retain(|_, items| !items.is_empty());
    }
}

/// One pass: drops the history no view needs and purges every item below the
/// horizon; returns how many records and entries it removed.
pub fn purge_now(e: &Engine) -> Result<usize> {
    let _run = RUNNING.lock();
    let horizon = e.purge_history();
    let due = {
        let mut q = QUEUE.lock();
        let Some(w) = q.get_mut(&e.id()) else { return Ok(0) };
        let later = w.split_off(&horizon);
        std::mem::replace(w, later)
    };
    // by table, each table's items at once
    let mut tables: Vec<(Arc<Shared>, Vec<(u64, Item)>)> = Vec::new();
    for (trx, items) in due {
        for it in items {
            match tables.iter_mut().find(|(t, _)| Arc::ptr_eq(t, &it.table)) {
                Some((_, v)) => v.push((trx, it)),
                None => tables.push((it.table.clone(), vec![(trx, it)])),
            }
        }
    }
    let mut removed = 0;
    let mut back: Vec<(u64, Item)> = Vec::new();
    let mut failed = None;
    for (table, mut items) in tables {
        // the entries before the records they are checked against
        items.sort_by(|a, b| b.1.index.cmp(&a.1.index));
        // rows with an entry that must wait: their records wait too (an
        // entry never outlives its record)
        let mut kept = HashSet::new();
        while !items.is_empty() && failed.is_none() {
            let rest = items.split_off(items.len().min(BATCH));
            let batch = std::mem::replace(&mut items, rest);
            match purge_batch(e, &table, batch, horizon, &mut back, &mut kept) {
                Ok(Some(n)) => removed += n,
                // the table is busy: all of its items wait for the next pass (a
                // later batch must not remove records whose entries wait)
                Ok(None) => break,
                Err((err, batch)) => {
                    back.extend(batch);
                    failed = Some(err);
                }
            }
        }
        back.append(&mut items);
    }
    if !back.is_empty() {
        let mut q = QUEUE.lock();
        let w = q.entry(e.id()).or_default();
        for (trx, it) in back {
            w.entry(trx).or_default().push(it);
        }
    }
    match failed {
        Some(err) => Err(err),
        None => Ok(removed),
    }
}

/// Purges `items` of `table` under its IX lock (waiting a second at most: a
/// table locked whole by another transaction is tried again later, `None`);
/// what must wait goes to `back`.
#[allow(clippy::type_complexity)]
fn purge_batch(
    e: &Engine,
    table: &Arc<Shared>,
    items: Vec<(u64, Item)>,
    horizon: u64,
    back: &mut Vec<(u64, Item)>,
    kept: &mut HashSet<Vec<u8>>,
) -> std::result::Result<Option<usize>, (crate::error::Error, Vec<(u64, Item)>)> {
    let mut h = TrxHandle::new();
    h.set_lock_wait_timeout(1);
    if h.lock(e, &table.lock, Request::intention(true)).is_err() {
        back.extend(items);
        let _ = h.rollback(e);
        return Ok(None);
    }
    let mut removed = 0;
    let mut v = Vec::new();
    let mut rec = Vec::new();
    let mut done = 0;
    let r = (|| {
        for (trx, it) in &items {
            done += 1;
            let j = it.index as usize;
            let t = &table.trees[j];
            let wait = |back: &mut Vec<(u64, Item)>, kept: &mut std::collections::HashSet<Vec<u8>>, trx: u64, pk: Vec<u8>| {
                back.push((trx, Item { table: it.table.clone(), index: it.index, key: it.key.clone() }));
                kept.insert(pk);
            };
            if j == 0 && kept.contains(&it.key) {
                wait(back, kept, *trx, it.key.clone());
                continue;
            }
            if !tree::read(t, |r| r.get(&it.key, &mut v))? {
                continue;
            }
            let mut free = vec![spot(j, &it.key)];
            let pk = if j == 0 { it.key.clone() } else { split_entry(&it.key, &v, SecValue::Marked)?.2.to_vec() };
            let newest = if j == 0 {
                let hd = header(&v)?;
                if !hd.deleted {
                    continue; // inserted again since
                }
                Some(hd.trx)
            } else {
                let (deleted, _, _) = split_entry(&it.key, &v, SecValue::Marked)?;
                if !deleted {
                    continue; // the row has this key again
                }
                free.push(spot(0, &pk));
                if tree::read(&table.trees[0], |r| r.get(&pk, &mut rec))? { Some(header(&rec)?.trx) } else { None }
            };
            if let Some(trx) = newest.filter(|&t| t >= horizon) {
                wait(back, kept, trx, pk);
                continue;
            }
            // checked again with the removal, under the tree's latch: still
            // marked, by a transaction below the horizon (a writer of the
            // row holds its lock while it changes it, and may have committed
            // a change since the look above), and nobody's lock there
            let mut g = t.write();
            if !g.get(&it.key, &mut v)? {
                continue;
            }
            let marked = if j == 0 {
                let hd = header(&v)?;
                if hd.deleted && hd.trx >= horizon {
                    drop(g);
                    wait(back, kept, hd.trx, pk);
                    continue;
                }
                hd.deleted
            } else {
                split_entry(&it.key, &v, SecValue::Marked)?.0
            };
            if !marked {
                continue;
            }
            if !table.rows.is_free(&free.iter().collect::<Vec<_>>()) {
                drop(g);
                wait(back, kept, *trx, pk);
                continue;
            }
            g.delete(&it.key)?;
            removed += 1;
        }
        Ok(())
    })();
    let _ = h.commit(e, false);
    crate::metrics::PURGED.add(removed as u64);
    match r {
        Ok(()) => Ok(Some(removed)),
        Err(err) => Err((err, items.into_iter().skip(done.max(1) - 1).collect())),
    }
}

/// Starts the purge thread of the server's engine.
pub fn start(e: &'static Engine) {
    let mut t = THREAD.lock();
    if t.is_some() {
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let h = std::thread::Builder::new().name("rust_purge".into()).spawn(move || {
        let mut last_error = String::new();
        while !s.load(Ordering::Acquire) {
            {
                let (m, cv) = &WAKE;
                let mut woken = m.lock();
                if !*woken {
                    cv.wait_for(&mut woken, Duration::from_secs(1));
                }
                *woken = false;
            }
            if s.load(Ordering::Acquire) {
                break;
            }
            // (a panic is caught: the thread goes on, the error is logged once)
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| purge_now(e)));
            let msg = match r {
                Ok(Ok(_)) => String::new(),
                Ok(Err(err)) => err.to_string(),
                Err(_) => "a panic in purge".into(),
            };
            if !msg.is_empty() && msg != last_error {
                eprintln!("[ERROR] RUST: purge: {msg}");
            }
            last_error = msg;
        }
    });
    if let Ok(h) = h {
        *t = Some((h, stop));
    }
}

/// Stops the purge thread (the engine stops) and purges what no transaction
/// still needs.
pub fn stop(e: &Engine) -> Result<()> {
    if let Some((h, stop)) = THREAD.lock().take() {
        stop.store(true, Ordering::Release);
        let (m, cv) = &WAKE;
        *m.lock() = true;
        cv.notify_all();
        let _ = h.join();
    }
    // a pass can leave work a later pass can do (items waiting on one another)
    for _ in 0..8 {
        if purge_now(e)? == 0 {
            break;
        }
    }
    Ok(())
}
