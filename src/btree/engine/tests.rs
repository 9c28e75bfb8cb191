use super::*;
use crate::testutil::dir;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn contents(t: &Tree) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut t = t.write();
    let mut c = crate::btree::tree::Cursor::default();
    t.seek(&mut c, std::ops::Bound::Unbounded, false).unwrap();
    let (mut k, mut v) = (vec![], vec![]);
    let mut m = BTreeMap::new();
    while t.next(&mut c, false, &mut k, &mut v).unwrap() {
        m.insert(k.clone(), v.clone());
    }
    m
}

/// The undo arena hands its entries back as they were pushed, per tree, and
/// forgets the newest ones exactly (a rollback to a savepoint).
#[test]
fn undo_entries_come_back_as_pushed() {
    let d = dir("undo-arena", 0);
    let trees: Vec<Tree> = (0..3)
        .map(|i| {
            let p = d.join(format!("t{i}.rbt"));
            BTree::create(&p).unwrap();
            Arc::new(Latch::new(BTree::open(&p, 16).unwrap()))
        })
        .collect();
    let mut u = UndoLog::default();
    let mut want: Vec<(usize, Vec<u8>)> = vec![];
    for n in 0..40usize {
        let t = [0, 0, 1, 0, 2, 2, 1][n % 7];
        let b = vec![n as u8; n % 5];
        u.push(&trees[t], &b);
        want.push((t, b));
        if n % 9 == 8 {
            u.drop_last();
            want.pop();
        }
    }
    let got = |u: &UndoLog| -> Vec<(usize, Vec<u8>)> {
        u.iter().map(|(t, b)| (trees.iter().position(|x| Arc::ptr_eq(x, t)).unwrap(), b.to_vec())).collect()
    };
    assert_eq!(got(&u), want);
    assert_eq!(u.size(), want.iter().map(|w| w.1.len()).sum::<usize>());
    while u.len() > 3 {
        let (t, b) = u.last().unwrap();
        let (wt, wb) = want.pop().unwrap();
        assert!(Arc::ptr_eq(t, &trees[wt]) && b == &wb[..]);
        u.drop_last();
    }
    assert_eq!(got(&u), want);
    assert!(u.uses(&trees[0]) && !u.uses(&trees[2]), "{want:?}");
}

#[test]
fn commit_rollback_and_savepoints() {
    let d = dir("trx", 0);
    let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
    let p = d.join("t.rbt");
    e.create_tree(&p).unwrap();
    let t = e.open_tree(&p).unwrap();
    let mut a = e.begin();
    e.insert(&mut a, &t, b"k1", b"v1").unwrap();
    e.commit(a).unwrap();
    let mut b = e.begin();
    e.insert(&mut b, &t, b"k2", b"v2").unwrap();
    let sp = b.savepoint();
    e.update(&mut b, &t, b"k1", b"changed").unwrap();
    e.delete(&mut b, &t, b"k2").unwrap();
    e.insert(&mut b, &t, b"k3", b"v3").unwrap();
    e.rollback_to(&mut b, sp).unwrap();
    assert_eq!(contents(&t), BTreeMap::from([(b"k1".to_vec(), b"v1".to_vec()), (b"k2".to_vec(), b"v2".to_vec())]));
    e.rollback(b).unwrap();
    assert_eq!(contents(&t), BTreeMap::from([(b"k1".to_vec(), b"v1".to_vec())]));
    t.write().check().unwrap();
}

/// Commits that grow the log past its size start a checkpoint in the
/// background while writes go on; after a crash that loses every dirty page,
/// recovery gives exactly the committed rows.
#[test]
fn background_checkpoints_and_a_crash_keep_the_committed() {
    let d = dir("bgckpt", 0);
    let edir = d.join("eng");
    let p = d.join("t.rbt");
    let val = |i: u32, round: u32| vec![(i ^ round) as u8; 300 + (i % 200) as usize];
    let rounds = 4u32;
    {
        let e = Engine::open(&edir, 256, FlushPolicy::EveryCommit).unwrap();
        e.set_log_size(16 << 20);
        e.create_tree(&p).unwrap();
        let t = e.open_tree(&p).unwrap();
        for round in 0..rounds {
            let mut trx = e.begin();
            for i in 0..60_000u32 {
                let k = i.wrapping_mul(2_654_435_761).to_be_bytes();
                if !e.insert(&mut trx, &t, &k, &val(i, round)).unwrap() {
                    e.update(&mut trx, &t, &k, &val(i, round)).unwrap();
                }
            }
            e.commit(trx).unwrap();
        }
        assert!(e.bg.lock().is_some(), "no background checkpoint was started");
        // an uncommitted transaction, then the crash (after the background
        // checkpoint, whose thread cannot be killed here)
        let mut trx = e.begin();
        for i in 0..1000u32 {
            e.delete(&mut trx, &t, &i.wrapping_mul(2_654_435_761).to_be_bytes()).unwrap();
        }
        e.wait_background();
        e.sh.log.write().unwrap();
        std::mem::forget(trx);
        std::mem::forget(t);
        std::mem::forget(e);
    }
    let e = Engine::open(&edir, 256, FlushPolicy::EveryCommit).unwrap();
    let t = e.open_tree(&p).unwrap();
    t.write().check().unwrap();
    let got = contents(&t);
    assert_eq!(got.len(), 60_000);
    for i in 0..60_000u32 {
        assert_eq!(got[&i.wrapping_mul(2_654_435_761).to_be_bytes().to_vec()], val(i, rounds - 1), "row {i}");
    }
}

/// A leaf's first change after a checkpoint is logged without its free middle
/// (a kind 3 entry of the parts around it, the meta page whole), and recovery
/// rebuilds the page from that entry when the file's copy is torn.
#[test]
fn a_first_change_after_a_checkpoint_leaves_out_the_free_middle() {
    let d = dir("fpi-middle", 0);
    let edir = d.join("eng");
    let p = d.join("t.rbt");
    let row = |i: u32| (i.to_be_bytes(), vec![i as u8; 100]);
    {
        let e = Engine::open(&edir, 64, FlushPolicy::EveryCommit).unwrap();
        e.create_tree(&p).unwrap();
        let t = e.open_tree(&p).unwrap();
        let mut trx = e.begin();
        for i in 0..20u32 {
            let (k, v) = row(i);
            e.insert(&mut trx, &t, &k, &v).unwrap();
        }
        e.commit(trx).unwrap();
        e.checkpoint_now().unwrap();
        let mut trx = e.begin();
        let (k, v) = row(20);
        e.insert(&mut trx, &t, &k, &v).unwrap();
        e.commit(trx).unwrap();
        std::mem::forget(t);
        e.simulate_crash(false);
    }
    let ckpt = read_control(&edir.join(CONTROL_FILE)).unwrap().unwrap().checkpoint;
    let (log, recs) = RedoLog::open(&edir.join(LOG_FILE), ckpt).unwrap();
    drop(log);
    let mut kinds = vec![];
    for r in recs.iter().filter(|r| r.kind == REC_MTR) {
        let (_, _, changes) = parse_mtr(&r.payload).unwrap();
        for c in changes {
            kinds.push((c.page, c.kind, c.bytes.len()));
        }
    }
    assert!(kinds.iter().any(|&(no, k, _)| no == 0 && k == PAGE_FULL), "{kinds:?}");
    let leaf = kinds.iter().find(|&&(no, _, _)| no != 0).unwrap();
    assert!(leaf.1 == PAGE_NEW && leaf.2 < 4096, "the leaf was logged as {leaf:?}");
    // both pages torn on disk: recovery has only the log's images to go on
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    for no in 0..f.metadata().unwrap().len() / PAGE_SIZE as u64 {
        f.write_all_at(&[0xA5; PAGE_SIZE / 2], no * PAGE_SIZE as u64 + PAGE_SIZE as u64 / 2).unwrap();
    }
    let e = Engine::open(&edir, 64, FlushPolicy::EveryCommit).unwrap();
    let t = e.open_tree(&p).unwrap();
    t.write().check().unwrap();
    let want: BTreeMap<Vec<u8>, Vec<u8>> = (0..21).map(|i| (row(i).0.to_vec(), row(i).1)).collect();
    assert_eq!(contents(&t), want);
}

/// A transaction left open (or prepared) while others commit and checkpoints
/// run does not keep the log from its first change on: each checkpoint carries
/// its undo entries forward (UNDO_CARRY). After a crash it is rolled back (or
/// kept prepared, through two crashes, with every undo entry), its changes
/// from before and after a carry alike; the committed work is all there.
#[test]
fn a_long_transaction_does_not_keep_the_log() {
    for prepared in [false, true] {
        let d = dir("carry", prepared as u64);
        let edir = d.join("eng");
        let (p, q) = (d.join("t.rbt"), d.join("q.rbt"));
        let base: BTreeMap<Vec<u8>, Vec<u8>> = (0..200u16).map(|k| (key(k), vec![k as u8; 50])).collect();
        let mut committed: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let crash = |e: Engine, trx: Option<Trx>, trees: Vec<Tree>| {
            e.sh.log.write().unwrap();
            std::mem::forget(trx);
            std::mem::forget(trees);
            std::mem::forget(e);
        };
        let undo_entries;
        {
            let e = Engine::open(&edir, 64, FlushPolicy::EveryCommit).unwrap();
            e.create_tree(&p).unwrap();
            e.create_tree(&q).unwrap();
            let t = e.open_tree(&p).unwrap();
            let tq = e.open_tree(&q).unwrap();
            let mut trx = e.begin();
            for (k, v) in &base {
                e.insert(&mut trx, &t, k, v).unwrap();
            }
            e.commit(trx).unwrap();
            // the long transaction changes both trees...
            let mut long = e.begin();
            for k in 0..50u16 {
                assert!(e.update(&mut long, &t, &key(k), &[0xAA; 80]).unwrap());
            }
            for k in 50..60u16 {
                assert!(e.delete(&mut long, &t, &key(k)).unwrap());
            }
            for k in 0..30u16 {
                assert!(e.insert(&mut long, &t, &key(1000 + k), b"long").unwrap());
                assert!(e.insert(&mut long, &tq, &key(k), b"long").unwrap());
            }
            // ...while others commit far more, with checkpoints between
            let mut work = |e: &Engine, from: u16| {
                for round in 0..12u16 {
                    let mut trx = e.begin();
                    for i in 0..60u16 {
                        let k = key(from + round * 60 + i);
                        let v = vec![(round + i) as u8; 900];
                        assert!(e.insert(&mut trx, &tq, &k, &v).unwrap());
                        committed.insert(k, v);
                    }
                    e.commit(trx).unwrap();
                    e.checkpoint_now().unwrap();
                }
            };
            work(&e, 2000);
            // the log holds about the last checkpoint's carry, not ~1.5 MB
            // of committed rows since the long transaction began
            let size = e.sh.log.size();
            assert!(size < 256 << 10, "the log kept {size} bytes");
            // more changes after a carry, then (maybe) PREPARE, more work
            for k in 60..70u16 {
                assert!(e.update(&mut long, &t, &key(k), &[0xBB; 120]).unwrap());
            }
            if prepared {
                e.prepare(&mut long, b"xid-carry").unwrap();
            }
            work(&e, 3000);
            let size = e.sh.log.size();
            assert!(size < 256 << 10, "the log kept {size} bytes");
            undo_entries = long.savepoint();
            assert_eq!(undo_entries, 50 + 10 + 60 + 10);
            crash(e, Some(long), vec![t, tq]);
        }
        if prepared {
            // kept prepared through two crashes (the second after the
            // recovery's own checkpoint carried it with this run's ids)
            for _ in 0..2 {
                let e = Engine::open(&edir, 64, FlushPolicy::EveryCommit).unwrap();
                let mut kept = std::mem::take(&mut *e.recovered_prepared.lock());
                assert_eq!(kept.len(), 1);
                let k = kept.pop().unwrap();
                assert_eq!(k.xid, b"xid-carry");
                assert_eq!(k.trx.savepoint(), undo_entries);
                let t = e.open_tree(&p).unwrap();
                assert_eq!(contents(&t)[&key(65)], vec![0xBB; 120]);
                assert!(!contents(&t).contains_key(&key(55)));
                crash(e, Some(k.trx), vec![t]);
            }
            let e = Engine::open(&edir, 64, FlushPolicy::EveryCommit).unwrap();
            let k = e.recovered_prepared.lock().pop().unwrap();
            e.rollback(k.trx).unwrap();
            e.checkpoint_now().unwrap();
        }
        let e = Engine::open(&edir, 64, FlushPolicy::EveryCommit).unwrap();
        assert!(e.recovered_prepared.lock().is_empty());
        let t = e.open_tree(&p).unwrap();
        let tq = e.open_tree(&q).unwrap();
        t.write().check().unwrap();
        tq.write().check().unwrap();
        assert!(contents(&t) == base, "prepared {prepared}: not rolled back");
        assert!(contents(&tq) == committed, "prepared {prepared}: committed rows differ");
        drop((t, tq));
        let _ = fs::remove_dir_all(&d);
    }
}

/// A crash in the middle of the rollback of a prepared transaction (XA
/// ROLLBACK): recovery finishes the rollback instead of bringing back as
/// prepared a transaction that is partly rolled back (which a later XA COMMIT
/// would commit). Once in the run that prepared it, and once in a later run
/// that recovered it prepared (with other tree ids than its records carry).
#[test]
fn a_crash_during_the_rollback_of_a_prepared_transaction_finishes_it() {
    for later_run in [false, true] {
        let d = dir("xarb", later_run as u64);
        let edir = d.join("eng");
        let (p, other) = (d.join("t.rbt"), d.join("other.rbt"));
        let base: BTreeMap<Vec<u8>, Vec<u8>> = (0..300u16).map(|k| (key(k), vec![k as u8; 100])).collect();
        let crash = |e: Engine, trx: Option<Trx>, trees: Vec<Tree>| {
            e.sh.log.write().unwrap();
            std::mem::forget(trx);
            std::mem::forget(trees);
            std::mem::forget(e);
        };
        {
            let e = Engine::open(&edir, 16, FlushPolicy::EveryCommit).unwrap();
            e.create_tree(&other).unwrap();
            e.create_tree(&p).unwrap();
            // `other` takes id 1 here; recovery gives `t` id 1 in the next run
            let o = e.open_tree(&other).unwrap();
            let t = e.open_tree(&p).unwrap();
            let mut trx = e.begin();
            for (k, v) in &base {
                e.insert(&mut trx, &t, k, v).unwrap();
            }
            e.commit(trx).unwrap();
            e.checkpoint_now().unwrap();
            let mut trx = e.begin();
            for k in 0..300u16 {
                match k % 3 {
                    0 => assert!(e.update(&mut trx, &t, &key(k), &vec![0xEE; 700]).unwrap()),
                    1 => assert!(e.delete(&mut trx, &t, &key(k)).unwrap()),
                    _ => assert!(e.insert(&mut trx, &t, &key(1000 + k), &vec![0xDD; 500]).unwrap()),
                }
            }
            // the same key changed twice
            assert!(e.insert(&mut trx, &t, &key(1), b"again").unwrap());
            assert!(e.update(&mut trx, &t, &key(0), b"twice").unwrap());
            e.prepare(&mut trx, b"xid-rb").unwrap();
            if later_run {
                crash(e, Some(trx), vec![t, o]);
            } else {
                // XA ROLLBACK, and the crash when half of it is done
                e.rollback_begins(&trx);
                let half = trx.savepoint() / 2;
                e.rollback_to(&mut trx, half).unwrap();
                crash(e, Some(trx), vec![t, o]);
            }
        }
        if later_run {
            let e = Engine::open(&edir, 16, FlushPolicy::EveryCommit).unwrap();
            let mut kept = std::mem::take(&mut *e.recovered_prepared.lock());
            assert_eq!(kept.len(), 1);
            let mut trx = kept.pop().unwrap().trx;
            // `other` now has the id `t` had when the transaction ran
            let o = e.open_tree(&other).unwrap();
            e.rollback_begins(&trx);
            let half = trx.savepoint() / 2;
            e.rollback_to(&mut trx, half).unwrap();
            crash(e, Some(trx), vec![o]);
        }
        for _ in 0..2 {
            let e = Engine::open(&edir, 16, FlushPolicy::EveryCommit).unwrap();
            assert!(e.recovered_prepared.lock().is_empty(), "later run {later_run}: kept prepared");
            assert!(e.notes.lock().iter().all(|n| !n.contains("kept")));
            let t = e.open_tree(&p).unwrap();
            t.write().check().unwrap();
            assert!(contents(&t) == base, "later run {later_run}: not rolled back");
            let o = e.open_tree(&other).unwrap();
            assert!(contents(&o).is_empty(), "later run {later_run}: undo went to another tree");
            drop((t, o));
            e.checkpoint_now().unwrap();
        }
        let _ = fs::remove_dir_all(&d);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(u16, u16),
    Del(u16),
    Commit,
    Rollback,
    Checkpoint,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u16..800, 0u16..3000).prop_map(|(k, l)| Op::Put(k, l)),
        3 => (0u16..800).prop_map(Op::Del),
        2 => Just(Op::Commit),
        1 => Just(Op::Rollback),
        1 => Just(Op::Checkpoint),
    ]
}

fn key(k: u16) -> Vec<u8> {
    format!("key{k:05}").into_bytes()
}

/// A value that says which key and which version of it it is, and checks
/// itself: 8 bytes of key number, 4 of generation, then filler derived from
/// both (lengths up to overflow size, so that reads follow overflow chains).
fn stamped(k: u16, g: u32) -> Vec<u8> {
    let len = [20usize, 300, 1500, 5000, 40][(g % 5) as usize] + k as usize % 7;
    let mut v = (k as u64).to_le_bytes().to_vec();
    v.extend_from_slice(&g.to_le_bytes());
    v.extend((0..len).map(|i| (i as u32 ^ g ^ k as u32) as u8));
    v
}

fn check_stamped(k: &[u8], v: &[u8]) {
    assert!(v.len() >= 12, "a value of {} bytes", v.len());
    let n = u64::from_le_bytes(v[0..8].try_into().unwrap()) as u16;
    let g = u32::from_le_bytes(v[8..12].try_into().unwrap());
    assert_eq!(k, key(n), "a value of another key");
    assert!(v == stamped(n, g), "key {n}: a torn or stale value (generation {g}, {} bytes)", v.len());
}

/// Readers share a tree (read lock) while writers change it, a checkpoint
/// writes it, and a pool of a few pages evicts all the time (so shared reads
/// keep missing pages and are done again under the write lock). Every read
/// must be whole: each value exactly what some write stored for its key, scans
/// in order without repeats, and the keys no writer deletes always there.
#[test]
fn readers_beside_writers_and_evictions_see_consistent_trees() {
    use std::sync::atomic::AtomicBool;
    let d = dir("concurrent", 0);
    let e = Engine::open(&d.join("eng"), 12, FlushPolicy::OncePerSecond).unwrap();
    let p = d.join("t.rbt");
    e.create_tree(&p).unwrap();
    let t = e.open_tree(&p).unwrap();
    // even keys stay (their values change), odd ones come and go
    const KEYS: u16 = 1200;
    let mut trx = e.begin();
    for k in (0..KEYS).step_by(2) {
        assert!(e.insert(&mut trx, &t, &key(k), &stamped(k, 0)).unwrap());
    }
    e.commit(trx).unwrap();
    let retries_before = crate::btree::tree::shared_read_retries();
    let stop = AtomicBool::new(false);
    let (reads, scans) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        for w in 0..2u32 {
            let (e, t, stop) = (&e, &t, &stop);
            s.spawn(move || {
                let mut rng = crate::testutil::Rng::new(0x2545_F491_4F6C_DD1Du64 ^ w as u64);
                let mut rnd = |n: u64| rng.below(n);
                let mut g = 1 + w;
                for round in 0..150 {
                    let mut trx = e.begin();
                    for _ in 0..20 {
                        let k = rnd(KEYS as u64) as u16;
                        g += 2;
                        if k % 2 == 0 {
                            assert!(e.update(&mut trx, t, &key(k), &stamped(k, g)).unwrap());
                        } else if !e.insert(&mut trx, t, &key(k), &stamped(k, g)).unwrap() {
                            e.delete(&mut trx, t, &key(k)).unwrap();
                        }
                    }
                    if round % 4 == 3 { e.rollback(trx).unwrap() } else { e.commit(trx).unwrap() }
                    if round % 25 == 0 && w == 0 {
                        e.checkpoint_now().unwrap();
                    }
                }
                stop.store(true, Ordering::Relaxed);
            });
        }
        for r in 0..2u64 {
            let (t, stop, reads, scans) = (&t, &stop, &reads, &scans);
            s.spawn(move || {
                let mut v = Vec::new();
                let mut k = r * 7;
                while !stop.load(Ordering::Relaxed) {
                    // point reads
                    for _ in 0..50 {
                        k = (k * 31 + 17) % KEYS as u64;
                        let kk = key(k as u16);
                        let found = crate::btree::tree::read(t, |rd| rd.get(&kk, &mut v)).unwrap();
                        assert!(found || k % 2 == 1, "key {k} is gone");
                        if found {
                            check_stamped(&kk, &v);
                        }
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                    // a scan, one step per hold of the read lock, either way
                    let desc = r == 1;
                    let mut c = crate::btree::tree::Cursor::default();
                    crate::btree::tree::read(t, |rd| rd.seek(&mut c, std::ops::Bound::Unbounded, desc)).unwrap();
                    let (mut kb, mut vb) = (Vec::new(), Vec::new());
                    let mut last: Option<Vec<u8>> = None;
                    let mut evens = 0;
                    while crate::btree::tree::read(t, |rd| rd.next(&mut c, desc, &mut kb, &mut vb)).unwrap() {
                        if let Some(l) = &last {
                            assert!(if desc { kb < *l } else { kb > *l }, "scan out of order");
                        }
                        check_stamped(&kb, &vb);
                        if u64::from_le_bytes(vb[0..8].try_into().unwrap()) % 2 == 0 {
                            evens += 1;
                        }
                        last = Some(kb.clone());
                    }
                    assert_eq!(evens, KEYS / 2, "a scan missed or repeated a key that is always there");
                    scans.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert!(reads.load(Ordering::Relaxed) > 0 && scans.load(Ordering::Relaxed) > 0);
    let retries = crate::btree::tree::shared_read_retries() - retries_before;
    assert!(retries > 0, "no shared read missed a page: the pool is not small enough to test that path");
    t.write().check().unwrap();
    for (k, v) in contents(&t) {
        check_stamped(&k, &v);
    }
    drop(t);
    e.checkpoint_now().unwrap();
    let _ = fs::remove_dir_all(&d);
}

/// A tree whose pages were all written by evictions (which do not sync) is not
/// let go of as idle until a sync has made them durable: a tree let go of is in
/// no later checkpoint's list, so nothing would sync them before the log that
/// holds their changes is dropped (a power loss would then lose them).
#[test]
fn a_tree_written_by_evictions_is_kept_until_synced() {
    let d = dir("evicted", 0);
    let e = Engine::open(&d.join("eng"), 1000, FlushPolicy::EveryCommit).unwrap();
    let (p, q) = (d.join("t.rbt"), d.join("u.rbt"));
    e.create_tree(&p).unwrap();
    e.create_tree(&q).unwrap();
    let t = e.open_tree(&p).unwrap();
    let mut trx = e.begin();
    for k in 0..500u16 {
        e.insert(&mut trx, &t, &key(k), &[1u8; 300]).unwrap();
    }
    e.commit(trx).unwrap();
    {
        let mut g = t.write();
        g.pool_mut().shrink(usize::MAX);
        // (and the frames a pool always keeps, written as evictions write)
        g.flush_some(0, usize::MAX, u64::MAX).unwrap();
        assert_eq!(g.pool().dirty(), 0, "every page written");
        assert!(!g.pool().is_clean(), "written, not synced");
    }
    drop(t);
    drop(e.open_tree(&q).unwrap()); // lets go of idle trees
    assert!(e.sh.trees.lock().get(&p).unwrap().1.is_some(), "kept: its writes are not durable");
    e.checkpoint_now().unwrap();
    assert!(e.sh.trees.lock().get(&p).unwrap().1.is_none(), "let go of once synced");
    let _ = fs::remove_dir_all(&d);
}

/// A tree whose last user let go of it while it had dirty pages is still the
/// engine's: the next checkpoint writes it (never racing a close that writes
/// it on its own), then lets go of it; the log it needed can then go.
#[test]
fn a_closed_tree_is_written_by_the_checkpoint() {
    let d = dir("closed", 0);
    let edir = d.join("eng");
    let p = d.join("t.rbt");
    {
        let e = Engine::open(&edir, 1000, FlushPolicy::EveryCommit).unwrap();
        e.create_tree(&p).unwrap();
        let t = e.open_tree(&p).unwrap();
        let mut trx = e.begin();
        for k in 0..3000u16 {
            e.insert(&mut trx, &t, &key(k), &[1u8; 300]).unwrap();
        }
        e.commit(trx).unwrap();
        drop(t);
        {
            let trees = e.sh.trees.lock();
            let (_, open) = trees.get(&p).unwrap();
            let t = open.as_ref().expect("the engine keeps a closed tree with dirty pages");
            assert!(!t.write().pool().is_clean());
        }
        e.checkpoint_now().unwrap();
        assert!(e.sh.trees.lock().get(&p).unwrap().1.is_none(), "let go of once written");
        // a crash now: the log may be gone entirely, the pages are on disk
        let f = OpenOptions::new().write(true).open(edir.join(LOG_FILE)).unwrap();
        let keep = crate::btree::wal::log::LOG_HEADER;
        f.set_len(keep).unwrap();
        std::mem::forget(e);
    }
    let e = Engine::open(&edir, 1000, FlushPolicy::EveryCommit).unwrap();
    let t = e.open_tree(&p).unwrap();
    t.write().check().unwrap();
    assert_eq!(contents(&t).len(), 3000);
}

/// rust_buffer_pool_size bounds all trees together: an idle tree's cached pages
/// make way for a busy one's, and both still read back exactly.
#[test]
fn trees_share_one_page_budget() {
    use crate::btree::pool::MIN_FRAMES;
    let d = dir("budget", 0);
    let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
    let (pa, pb) = (d.join("a.rbt"), d.join("b.rbt"));
    e.create_tree(&pa).unwrap();
    e.create_tree(&pb).unwrap();
    let a = e.open_tree(&pa).unwrap();
    let b = e.open_tree(&pb).unwrap();
    let val = vec![7u8; 400];
    let fill = |t: &Tree| {
        let mut trx = e.begin();
        for k in 0..4000u16 {
            assert!(e.insert(&mut trx, t, &key(k), &val).unwrap());
        }
        e.commit(trx).unwrap();
    };
    let bound = 64 + 2 * MIN_FRAMES;
    fill(&a);
    let a_frames = a.write().pool().frames();
    assert!(a_frames > 32, "a alone may use most of the budget: {a_frames}");
    assert!(e.budget.used() <= bound, "{} > {bound}", e.budget.used());
    fill(&b);
    let b_frames = b.write().pool().frames();
    assert!(b_frames > 32, "b took pages from the idle a: {b_frames}");
    assert!(a.write().pool().frames() < a_frames);
    assert!(e.budget.used() <= bound, "{} > {bound}", e.budget.used());
    assert_eq!(e.budget.used(), a.write().pool().frames() + b.write().pool().frames());
    assert_eq!(contents(&a).len(), 4000);
    assert_eq!(contents(&b).len(), 4000);
    a.write().check().unwrap();
    b.write().check().unwrap();
    // a closed tree gives its pages back
    drop(a);
    e.checkpoint_now().unwrap();
    assert_eq!(e.budget.used(), b.write().pool().frames());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20))]
    /// A crash at any moment: the process dies with the buffer pool's dirty
    /// pages lost (some written by eviction, some not) and the log cut anywhere
    /// after what commits made durable. Recovery must give exactly the
    /// committed transactions, and a tree that passes check().
    #[test]
    fn recovery_after_a_crash_keeps_exactly_the_committed(
        ops in prop::collection::vec(op(), 1..400),
        cut in any::<prop::sample::Index>(),
        case in any::<u64>(),
    ) {
        let d = dir("crash", case);
        let edir = d.join("eng");
        let p = d.join("t.rbt");
        let mut committed: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let durable_end;
        {
            let e = Engine::open(&edir, 12, FlushPolicy::EveryCommit).unwrap();
            e.create_tree(&p).unwrap();
            let t = e.open_tree(&p).unwrap();
            let mut trx = e.begin();
            let mut pending = committed.clone();
            // a second transaction, open all along and never committed: each
            // checkpoint carries its undo entries forward (UNDO_CARRY)
            let mut long = e.begin();
            let mut n_long = 0u16;
            e.insert(&mut long, &t, &key(60000), b"long").unwrap();
            for o in &ops {
                match *o {
                    Op::Put(k, l) => {
                        let v = vec![(k % 251) as u8; l as usize];
                        if !e.insert(&mut trx, &t, &key(k), &v).unwrap() {
                            e.update(&mut trx, &t, &key(k), &v).unwrap();
                        }
                        pending.insert(key(k), v);
                    }
                    Op::Del(k) => {
                        e.delete(&mut trx, &t, &key(k)).unwrap();
                        pending.remove(&key(k));
                    }
                    Op::Commit => {
                        e.commit(std::mem::replace(&mut trx, e.begin())).unwrap();
                        committed = pending.clone();
                    }
                    Op::Rollback => {
                        e.rollback(std::mem::replace(&mut trx, e.begin())).unwrap();
                        pending = committed.clone();
                    }
                    Op::Checkpoint => {
                        n_long += 1;
                        e.insert(&mut long, &t, &key(60000 + n_long), b"long").unwrap();
                        e.checkpoint_now().unwrap()
                    }
                }
            }
            // what is written but not synced may or may not survive: keep a
            // random part of it
            let synced = e.sh.log.synced.load(Ordering::Acquire);
            e.sh.log.write().unwrap();
            let written = e.sh.log.end_lsn();
            durable_end = synced + (cut.index((written - synced + 1) as usize) as u64);
            // the crash: no flush of the pool; the open transactions are lost
            std::mem::forget(trx);
            std::mem::forget(long);
            std::mem::forget(t);
            let base = e.sh.log.inner.lock().base_lsn;
            let lp = edir.join(LOG_FILE);
            let f = OpenOptions::new().write(true).open(&lp).unwrap();
            f.set_len(crate::btree::wal::log::LOG_HEADER + (durable_end - base)).unwrap();
            std::mem::forget(e);
            // torn writes: any page written since the checkpoint recovery will
            // start from may be half old, half new (here: its second half lost)
            let ckpt = read_control(&edir.join(CONTROL_FILE)).unwrap().unwrap().checkpoint;
            let tf = OpenOptions::new().read(true).write(true).open(&p).unwrap();
            let pages = tf.metadata().unwrap().len() / PAGE_SIZE as u64;
            for no in 0..pages {
                let mut b = vec![0u8; PAGE_SIZE];
                tf.read_exact_at(&mut b, no * PAGE_SIZE as u64).unwrap();
                let lsn = u64::from_le_bytes(b[8..16].try_into().unwrap());
                if lsn >= ckpt && (no + case) % 2 == 0 {
                    b[PAGE_SIZE / 2..].fill(0xA5);
                    tf.write_all_at(&b, no * PAGE_SIZE as u64).unwrap();
                }
            }
        }
        let e = Engine::open(&edir, 12, FlushPolicy::EveryCommit).unwrap();
        let t = e.open_tree(&p).unwrap();
        t.write().check().unwrap();
        let got = contents(&t);
        let summary = |m: &BTreeMap<Vec<u8>, Vec<u8>>| m.iter().map(|(k, v)| (String::from_utf8_lossy(k).to_string(), v.len(), v.first().copied())).collect::<Vec<_>>();
        prop_assert_eq!(summary(&got), summary(&committed));
    }
}

/// Copies a test's folder (files, and folders one level down) as it is.
fn copy_folder(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_folder(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Recovery cut short, as by a SIGKILL, at each of its steps (every page it
/// writes in the redo, every undo entry it applies, every page the rollback
/// evicts, before and after the log flush that comes first, the checkpoint's
/// log flush, control file and log switch), then run again (for every other
/// step, itself cut short once more, halfway), then run to its end: every
/// tree checks clean and holds exactly the committed rows.
///
/// The log holds committed changes to three trees after a checkpoint and an
/// uncommitted transaction whose newest changes are to the second and third
/// tree, so a recovery opens those first for its rollback. (Found by
/// ci/crashloop: each run numbered its trees from 1 again, so the rollback's
/// records gave the ids the crashed run had used for other trees to these, and
/// the next recovery replayed the first tree's pages onto the second's file.)
#[test]
fn recovery_cut_short_at_every_step_then_run_again_keeps_exactly_the_committed() {
    use crate::btree::crash;
    let d = dir("recov-cut", 0);
    let work = d.join("work");
    let pristine = d.join("pristine");
    let names = ["x", "y", "z"];
    let path = |i: usize| work.join(format!("{}.rbt", names[i]));
    let val = |i: u16, g: u16| vec![(i ^ g) as u8; 60 + ((i as usize * 37 + g as usize * 11) % 400)];
    let mut committed: Vec<BTreeMap<Vec<u8>, Vec<u8>>> = vec![BTreeMap::new(); 3];
    let pool = 24;
    {
        let e = Engine::open(&work.join("eng"), pool, FlushPolicy::EveryCommit).unwrap();
        let trees: Vec<Tree> = (0..3)
            .map(|i| {
                e.create_tree(&path(i)).unwrap();
                e.open_tree(&path(i)).unwrap()
            })
            .collect();
        let mut trx = e.begin();
        for (i, t) in trees.iter().enumerate() {
            for k in 0..600u16 {
                e.insert(&mut trx, t, &key(k), &val(k, i as u16)).unwrap();
                committed[i].insert(key(k), val(k, i as u16));
            }
        }
        e.commit(trx).unwrap();
        e.checkpoint_now().unwrap();
        // committed changes after the checkpoint: what recovery redoes
        for round in 1..4u16 {
            let mut trx = e.begin();
            for (i, t) in trees.iter().enumerate() {
                for k in (round..600).step_by(5) {
                    let v = val(k, round * 10 + i as u16);
                    if !e.update(&mut trx, t, &key(k), &v).unwrap() {
                        assert!(e.insert(&mut trx, t, &key(k), &v).unwrap());
                    }
                    committed[i].insert(key(k), v);
                }
                for k in (round * 100..round * 100 + 20).map(|k| k + 1000) {
                    e.insert(&mut trx, t, &key(k), &val(k, 1)).unwrap();
                    committed[i].insert(key(k), val(k, 1));
                }
                for k in (round * 3..600).step_by(41) {
                    if e.delete(&mut trx, t, &key(k)).unwrap() {
                        committed[i].remove(&key(k));
                    }
                }
            }
            e.commit(trx).unwrap();
        }
        // the uncommitted transaction: the first tree, then the third and the
        // second (rolled back newest first: the second, the third, the first)
        let mut open = e.begin();
        for (i, n) in [(0usize, 30u16), (2, 60), (1, 60)] {
            let t = &trees[i];
            for k in 0..n {
                e.update(&mut open, t, &key(k * 7 % 600), &vec![0xEE; 500]).unwrap();
                e.insert(&mut open, t, &key(3000 + k), &vec![0xDD; 300]).unwrap();
                e.delete(&mut open, t, &key(k * 11 % 600 + 1)).unwrap();
            }
        }
        // its records are durable (a commit of another session synced them)
        e.flush_log().unwrap();
        std::mem::forget(open);
        std::mem::forget(trees);
        e.simulate_crash(false);
    }
    copy_folder(&work, &pristine);
    let check = |e: &Engine, ctx: &str| {
        for i in 0..3 {
            let t = e.open_tree(&path(i)).unwrap();
            if let Err(err) = t.write().check() {
                panic!("{ctx}: tree {}: {err}", names[i]);
            }
            assert!(contents(&t) == committed[i], "{ctx}: tree {} does not hold the committed rows", names[i]);
        }
    };
    // recovery of the crashed files, cut short at step `k`; whether it ran to
    // its end
    let cut_at = |k: u32| -> bool {
        crash::count_every_write(true);
        crash::arm(Some(k));
        let r = Engine::open(&work.join("eng"), pool, FlushPolicy::EveryCommit);
        crash::arm(None);
        crash::count_every_write(false);
        match r {
            Ok(e) => {
                drop(e);
                true
            }
            Err(err) => {
                assert!(err.to_string().contains("simulated crash"), "step {k}: {err}");
                false
            }
        }
    };
    let mut k = 0u32;
    loop {
        copy_folder(&pristine, &work);
        let finished = cut_at(k);
        if !finished && k % 2 == 1 {
            // the next recovery cut short too
            cut_at(k / 2);
        }
        let e = Engine::open(&work.join("eng"), pool, FlushPolicy::EveryCommit)
            .unwrap_or_else(|err| panic!("recovery after one cut short at step {k}: {err}"));
        check(&e, &format!("recovery cut short at step {k}"));
        if k % 50 == 0 {
            // and a restart after that recovery
            drop(e);
            let e = Engine::open(&work.join("eng"), pool, FlushPolicy::EveryCommit).unwrap();
            check(&e, &format!("restart after a recovery cut short at step {k}"));
        }
        if finished {
            break;
        }
        k += 1;
    }
    assert!(k > 100, "only {k} steps");
    eprintln!("recovery cut short at each of its {k} steps");
    let _ = fs::remove_dir_all(&d);
}

/// Transfers (two updates of one tree and an insert into another, in one
/// transaction) while another thread checkpoints again and again, then a crash
/// with the last transfer part-way: after recovery the accounts add up and each is
/// its opening balance plus its ledger's moves (issue 15: the crash loop's cycle
/// 886 found an account holding an unacknowledged transfer without its ledger row;
/// this looks for it in the engine alone: 40 seeds passed, so the cause is not
/// in this much of it; 10 run here).
#[test]
fn transfers_beside_checkpoints_are_whole_or_absent_after_a_crash() {
    use std::sync::atomic::AtomicBool;
    const ACCOUNTS: u16 = 40;
    let bal = |v: &[u8]| i64::from_le_bytes(v[..8].try_into().unwrap());
    for seed in 0..10u64 {
        let d = dir("xfer", seed);
        let edir = d.join("eng");
        let (pa, pl) = (d.join("acct.rbt"), d.join("ledger.rbt"));
        let mut rng = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut next = move |n: u64| {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (rng >> 33) % n
        };
        {
            let e = Engine::open(&edir, 32, FlushPolicy::EveryCommit).unwrap();
            e.set_log_size(1 << 20);
            e.create_tree(&pa).unwrap();
            e.create_tree(&pl).unwrap();
            let ta = e.open_tree(&pa).unwrap();
            let tl = e.open_tree(&pl).unwrap();
            e.create_tree(&d.join("rows.rbt")).unwrap();
            let tr = e.open_tree(&d.join("rows.rbt")).unwrap();
            let mut trx = e.begin();
            for a in 0..ACCOUNTS {
                e.insert(&mut trx, &ta, &key(a), &[1000i64.to_le_bytes().to_vec(), vec![7; 300]].concat()).unwrap();
            }
            e.commit(trx).unwrap();
            let stop = AtomicBool::new(false);
            let last = std::thread::scope(|s| {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        e.checkpoint_now().unwrap();
                    }
                });
                // other traffic: batches of rows into a third tree
                s.spawn(|| {
                    let mut i = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        let mut trx = e.begin();
                        for _ in 0..34 {
                            e.insert(&mut trx, &tr, format!("r{i:08}").as_bytes(), &[5; 120]).unwrap();
                            i += 1;
                        }
                        e.commit(trx).unwrap();
                    }
                });
                let n = 300 + next(300);
                let mut last = None;
                for i in 0..n {
                    let (a, b) = (next(ACCOUNTS as u64) as u16, next(ACCOUNTS as u64) as u16);
                    if a == b {
                        continue;
                    }
                    let amt = 1 + next(50) as i64;
                    let mut trx = e.begin();
                    let cur_a = bal(&contents(&ta)[&key(a)]);
                    let cur_b = bal(&contents(&ta)[&key(b)]);
                    let stop_at = if i + 1 == n { next(3) } else { 3 };
                    if stop_at > 0 {
                        e.update(&mut trx, &ta, &key(a), &[(cur_a - amt).to_le_bytes().to_vec(), vec![7; 300]].concat()).unwrap();
                    }
                    if stop_at > 1 {
                        e.update(&mut trx, &ta, &key(b), &[(cur_b + amt).to_le_bytes().to_vec(), vec![7; 300]].concat()).unwrap();
                    }
                    if stop_at > 2 {
                        let v = [a.to_le_bytes(), b.to_le_bytes()].concat();
                        e.insert(&mut trx, &tl, format!("l{i:06}").as_bytes(), &[v, amt.to_le_bytes().to_vec(), vec![9; 200]].concat())
                            .unwrap();
                        e.commit(trx).unwrap();
                    } else {
                        last = Some(trx);
                        break;
                    }
                }
                stop.store(true, Ordering::Relaxed);
                last
            });
            e.sh.log.write().unwrap();
            std::mem::forget(last);
            std::mem::forget((ta, tl, tr));
            std::mem::forget(e);
        }
        let e = Engine::open(&edir, 32, FlushPolicy::EveryCommit).unwrap();
        let ta = e.open_tree(&pa).unwrap();
        let tl = e.open_tree(&pl).unwrap();
        let acct = contents(&ta);
        let mut expect: BTreeMap<Vec<u8>, i64> = (0..ACCOUNTS).map(|a| (key(a), 1000)).collect();
        for v in contents(&tl).values() {
            let (a, b) = (u16::from_le_bytes([v[0], v[1]]), u16::from_le_bytes([v[2], v[3]]));
            let amt = i64::from_le_bytes(v[4..12].try_into().unwrap());
            *expect.get_mut(&key(a)).unwrap() -= amt;
            *expect.get_mut(&key(b)).unwrap() += amt;
        }
        for (k, want) in &expect {
            assert_eq!(bal(&acct[k]), *want, "seed {seed}: account {}", String::from_utf8_lossy(k));
        }
    }
}

/// A transaction whose statement rollback took back every change it made (a
/// failed first statement: a duplicate key halfway through a multi-row INSERT)
/// and that then ends, by ROLLBACK or COMMIT, has records in the log (its
/// changes and their undoing) and must leave an end record: else recovery takes
/// it for unfinished and applies its undo entries again, over what later
/// transactions committed on the same keys (a committed row deleted, an old
/// value put back).
#[test]
fn a_transaction_rolled_back_to_its_start_is_not_undone_again_by_recovery() {
    for end_by_commit in [false, true] {
        let d = dir("ghost-trx", end_by_commit as u64);
        let edir = d.join("eng");
        let p = d.join("t.rbt");
        {
            let e = Engine::open(&edir, 64, FlushPolicy::EveryCommit).unwrap();
            e.create_tree(&p).unwrap();
            let t = e.open_tree(&p).unwrap();
            let mut a = e.begin();
            e.insert(&mut a, &t, b"old", b"v0").unwrap();
            e.commit(a).unwrap();
            // the statement: a new key and a changed one, then taken back
            let mut g = e.begin();
            let sp = g.savepoint();
            e.insert(&mut g, &t, b"new", b"g").unwrap();
            e.update(&mut g, &t, b"old", b"g").unwrap();
            e.rollback_to(&mut g, sp).unwrap();
            if end_by_commit {
                e.commit(g).unwrap();
            } else {
                e.rollback(g).unwrap();
            }
            // a later transaction writes the same keys and commits
            let mut b = e.begin();
            e.insert(&mut b, &t, b"new", b"v1").unwrap();
            e.update(&mut b, &t, b"old", b"v1").unwrap();
            e.commit(b).unwrap();
            drop(t);
            e.simulate_crash(false);
        }
        let e = Engine::open(&edir, 64, FlushPolicy::EveryCommit).unwrap();
        let t = e.open_tree(&p).unwrap();
        t.write().check().unwrap();
        assert_eq!(
            contents(&t),
            BTreeMap::from([(b"new".to_vec(), b"v1".to_vec()), (b"old".to_vec(), b"v1".to_vec())]),
            "ended by {}",
            if end_by_commit { "COMMIT" } else { "ROLLBACK" }
        );
    }
}

/// A transaction that ends (COMMIT, or ROLLBACK) while a checkpoint runs, after
/// the checkpoint took its LSN and before it read the active transactions, is
/// not kept by the checkpoint's `log_start`; but its end record, and its
/// rollback's page changes, were appended after the checkpoint's LSN and need
/// not be in the log file yet. A crash once the control file is written then
/// leaves its changes from before the checkpoint in the tree files (written by
/// an eviction or by the checkpoint) and nothing in the log to finish or undo
/// them: a rolled-back transaction is there, or a committed one only in part.
/// Here the checkpoint is held at another tree's lock while the transaction
/// ends, and crashes (as by SIGKILL) right after writing the control file.
#[test]
fn a_transaction_ending_during_a_checkpoint_is_whole_or_absent_after_a_crash() {
    let mut failed = Vec::new();
    // 0: COMMIT; 1: ROLLBACK; 2: a rollback to its start (a failed statement), the
    // transaction still open at the crash (a checkpoint stops keeping the log for
    // a transaction with nothing to undo)
    for how_ended in 0..3u64 {
        let end_by_commit = how_ended == 0;
        let d = dir("end-in-ckpt", how_ended);
        let edir = d.join("eng");
        let (pa, pl, pb) = (d.join("acct.rbt"), d.join("ledger.rbt"), d.join("other.rbt"));
        let (before, after) = (b"1000".to_vec(), b"0940".to_vec());
        {
            let e = Engine::open(&edir, 1000, FlushPolicy::EveryCommit).unwrap();
            for p in [&pa, &pl, &pb] {
                e.create_tree(p).unwrap();
            }
            let (ta, tl, tb) = (e.open_tree(&pa).unwrap(), e.open_tree(&pl).unwrap(), e.open_tree(&pb).unwrap());
            let mut s = e.begin();
            e.insert(&mut s, &ta, b"acct1", &before).unwrap();
            e.commit(s).unwrap();
            e.checkpoint_now().unwrap();
            let mut t = e.begin();
            e.update(&mut t, &ta, b"acct1", &after).unwrap();
            if !end_by_commit {
                e.insert(&mut t, &tl, b"xfer1", b"acct1 -60").unwrap();
            }
            // its pages reach the tree files before the checkpoint, as an
            // eviction writes them (the log first)
            ta.write().flush().unwrap();
            tl.write().flush().unwrap();
            let seen = e.sh.checkpoint.load(Ordering::Acquire);
            let hold = tb.write();
            let r = std::thread::scope(|s| {
                let ck = s.spawn(|| {
                    crate::btree::crash::count_every_write(true);
                    // steps: after it begins, after its log flush, (no page is
                    // written: every one is clean or changed since it began) in
                    // the control file's write, after it: the crash is there
                    crate::btree::crash::arm(Some(3));
                    let r = e.sh.checkpoint();
                    crate::btree::crash::arm(None);
                    crate::btree::crash::count_every_write(false);
                    r
                });
                // the checkpoint has taken its LSN and its log flush is done
                while e.sh.checkpoint.load(Ordering::Acquire) == seen
                    || e.sh.log.synced.load(Ordering::Acquire) < e.sh.checkpoint.load(Ordering::Acquire)
                {
                    std::thread::yield_now();
                }
                // the transaction ends while the checkpoint waits for `other`'s lock
                if end_by_commit {
                    e.insert(&mut t, &tl, b"xfer1", b"acct1 -60").unwrap();
                    // the COMMIT appended and not yet synced: as a SIGKILL in
                    // commit between the two (EveryCommit)
                    e.commit_with(t, false).unwrap();
                } else if how_ended == 1 {
                    e.rollback(t).unwrap();
                } else {
                    e.rollback_to(&mut t, 0).unwrap();
                    std::mem::forget(t);
                }
                drop(hold);
                ck.join().unwrap()
            });
            assert!(r.is_err(), "the checkpoint was to crash after writing the control file");
            let ctl = read_control(&edir.join(CONTROL_FILE)).unwrap().unwrap();
            assert!(ctl.checkpoint > seen, "the control file of the checkpoint was written");
            std::mem::forget((ta, tl, tb));
            e.simulate_crash(false);
        }
        let e = Engine::open(&edir, 1000, FlushPolicy::EveryCommit).unwrap();
        let (ta, tl) = (e.open_tree(&pa).unwrap(), e.open_tree(&pl).unwrap());
        let acct = contents(&ta)[&b"acct1".to_vec()].clone();
        let ledger = contents(&tl).contains_key(&b"xfer1".to_vec());
        let how = ["COMMIT (not yet durable)", "ROLLBACK", "a rollback to its start"][how_ended as usize];
        let ok = if end_by_commit { (acct == after) == ledger } else { acct == before && !ledger };
        if !ok {
            failed.push(format!("ended by {how}: acct1 = {:?}, ledger row there: {ledger}", String::from_utf8_lossy(&acct)));
        }
    }
    assert!(failed.is_empty(), "not whole or absent after the crash: {failed:?}");
}

/// The engine's checks of its checkpoints (the crash loop's cycle-770 failure,
/// docs/crash-safety.md): a tree written, closed, reopened and checkpointed in
/// the ways the table layer uses breaches nothing; a tree forgotten by DROP or
/// RENAME while its caller still holds it, then written after a checkpoint that
/// no longer lists it, is reported twice: once when forgotten, once at the write
/// (a recovery from that checkpoint would skip the change). Only this test
/// breaches them, so the global counter moves only by its doing.
#[test]
fn checkpoint_breaches_are_reported_where_they_happen() {
    let d = dir("breach", 0);
    let e = Engine::open(&d.join("eng"), 256, FlushPolicy::EveryCommit).unwrap();
    let breaches = || crate::metrics::CHECKPOINT_BREACHES.get();
    let (p, q) = (d.join("t.rbt"), d.join("u.rbt"));
    e.create_tree(&p).unwrap();
    e.create_tree(&q).unwrap();
    let before = breaches();
    let write = |t: &Tree, k: u16| {
        let mut trx = e.begin();
        e.insert(&mut trx, t, &key(k), b"v").unwrap();
        e.commit(trx).unwrap();
    };
    // the ordinary ways: written across checkpoints, closed through the Closer
    // (let go of once clean), opened again and written
    let t = e.open_tree(&p).unwrap();
    for k in 0..50 {
        write(&t, k);
        if k % 10 == 0 {
            e.checkpoint_now().unwrap();
        }
    }
    e.closer().close(&p, t);
    e.checkpoint_now().unwrap();
    let t = e.open_tree(&p).unwrap();
    write(&t, 100);
    e.checkpoint_now().unwrap();
    write(&t, 101);
    drop(t);
    e.close_tree(&p, false).unwrap();
    assert_eq!(breaches(), before, "no breach in the ordinary ways");
    // forgotten while held: reported at once
    let u = e.open_tree(&q).unwrap();
    write(&u, 1);
    e.close_tree(&q, true).unwrap();
    assert_eq!(breaches(), before + 1, "a tree forgotten while held");
    // written after a checkpoint that does not list it: reported at the write
    e.checkpoint_now().unwrap();
    write(&u, 2);
    assert_eq!(breaches(), before + 2, "a write no checkpoint covers");
    // once per tree
    write(&u, 3);
    assert_eq!(breaches(), before + 2);
    drop(u);
    // a tree in use that the map no longer holds open (the map's entry let go
    // of behind its users' backs: the cycle-770 failure's shape, whatever its
    // cause): the checkpoint finds it through its log link, says so, and writes
    // and lists it, so that its changes before and after the checkpoint survive
    // a crash
    let r = d.join("r.rbt");
    e.create_tree(&r).unwrap();
    let w = e.open_tree(&r).unwrap();
    write(&w, 1);
    e.sh.trees.lock().get_mut(&r).unwrap().1 = None;
    write(&w, 2);
    e.checkpoint_now().unwrap();
    assert_eq!(breaches(), before + 3, "a tree in use outside the map");
    write(&w, 3);
    assert_eq!(breaches(), before + 3, "listed by the checkpoint: its later writes are covered");
    drop(w);
    e.simulate_crash(false);
    let e = Engine::open(&d.join("eng"), 256, FlushPolicy::EveryCommit).unwrap();
    let w = e.open_tree(&r).unwrap();
    assert_eq!(contents(&w).into_keys().collect::<Vec<_>>(), [key(1), key(2), key(3)], "every write of it recovered");
    assert!(e.notes.lock().iter().all(|n| !n.contains("skipped")), "{:?}", e.notes.lock());
}

/// A checkpoint takes its LSN and its list of trees at one moment: a tree
/// opened before the LSN, written after it and let go of before the list was
/// read (an ALTER's new table, copied into and closed while a DDL's checkpoint
/// waited for its log sync) was in neither the list nor the log kept (its TREE
/// record is before the LSN), so recovery skipped its redo: the crash loop's
/// cycle-770 failure and `ci/ddlhunt`'s (docs/crash-safety.md). Here the
/// checkpoint is held right after it began while the tree is written and
/// closed, then the tree is opened again and written, and the engine killed.
#[test]
fn a_tree_closed_as_a_checkpoint_begins_is_still_covered() {
    use std::sync::mpsc::channel;
    use std::time::Duration;
    let d = dir("ckpt-begin", 0);
    let edir = d.join("eng");
    let e = Engine::open(&edir, 256, FlushPolicy::EveryCommit).unwrap();
    let p = d.join("t.rbt");
    e.create_tree(&p).unwrap();
    let write = |e: &Engine, t: &Tree, k: u16| {
        let mut trx = e.begin();
        e.insert(&mut trx, t, &key(k), b"v").unwrap();
        e.commit(trx).unwrap();
    };
    let t = e.open_tree(&p).unwrap();
    write(&e, &t, 1);
    // (channels with time limits: a failure on either side ends the test
    // rather than leaving the other waiting)
    let (reached_tx, reached) = channel::<()>();
    let (go, go_rx) = channel::<()>();
    *super::checkpoint::AFTER_BEGIN.lock() = Some((edir.clone(), Box::new(move || {
        let _ = reached_tx.send(());
        let _ = go_rx.recv_timeout(Duration::from_secs(60));
    })));
    std::thread::scope(|s| {
        let ck = s.spawn(|| e.checkpoint_now());
        reached.recv_timeout(Duration::from_secs(60)).expect("the checkpoint reached its hook");
        write(&e, &t, 2);
        e.closer().close(&p, t);
        go.send(()).unwrap();
        ck.join().unwrap().unwrap();
    });
    let t = e.open_tree(&p).unwrap();
    write(&e, &t, 3);
    drop(t);
    e.simulate_crash(false);
    let e = Engine::open(&edir, 256, FlushPolicy::EveryCommit).unwrap();
    let notes = e.notes.lock().clone();
    assert!(notes.iter().all(|n| !n.contains("skipped")), "{notes:?}");
    let t = e.open_tree(&p).unwrap();
    assert_eq!(contents(&t).into_keys().collect::<Vec<_>>(), [key(1), key(2), key(3)]);
}

/// Transaction ids never go back across a restart, even when a checkpoint
/// has cut every record of the ids given from the log (read views compare
/// ids in records with the ids of transactions begun later).
#[test]
fn transaction_ids_never_go_back_across_restarts() {
    let d = dir("trx_ids", 0);
    let edir = d.join("eng");
    let p = d.join("t.rbt");
    let last = {
        let e = Engine::open(&edir, 64, FlushPolicy::EveryCommit).unwrap();
        e.create_tree(&p).unwrap();
        let t = e.open_tree(&p).unwrap();
        let mut last = 0;
        for i in 0..50u32 {
            let mut a = e.begin();
            e.insert(&mut a, &t, &i.to_be_bytes(), b"v").unwrap();
            last = a.id;
            e.commit(a).unwrap();
        }
        e.checkpoint_now().unwrap();
        last
    };
    // a clean restart (the log holds no record of those ids)
    let e = Engine::open(&edir, 64, FlushPolicy::EveryCommit).unwrap();
    let t = e.open_tree(&p).unwrap();
    let mut a = e.begin();
    assert!(a.id > last, "id {} after {last}", a.id);
    e.insert(&mut a, &t, b"x", b"v").unwrap();
    let id = a.id;
    e.commit(a).unwrap();
    drop(t);
    // and after a crash with only the log since the checkpoint (an id no
    // record holds may come again: nothing compares with it)
    e.simulate_crash(false);
    let e = Engine::open(&edir, 64, FlushPolicy::EveryCommit).unwrap();
    assert!(e.begin().id > id);
}
