use super::stats::n_diff;
use super::xa::table_of_index;
use super::*;
use crate::btree::engine::{FlushPolicy, RecoveredPrepared};
use crate::testutil::dir;

/// After a simulated crash (the engine and handles forgotten, not dropped):
/// the open tables and the locks of tables under `d` are forgotten too, as a
/// real crash loses them (only this test's: others run beside it).
fn forget_after_crash(d: &Path) {
    TABLES.lock().retain(|p, _| !p.starts_with(d));
    crate::btree::lock::forget_under(d);
}

/// The AUTO_INCREMENT counter: kept from CREATE, moved up only, durable through
/// the redo log (a crash that loses every unflushed page keeps it), reset by
/// TRUNCATE.
#[test]
fn the_auto_increment_counter_is_persistent() {
    let d = dir("autoinc", 0);
    let t = d.join("t");
    create(&t, 2, 9).unwrap();
    {
        let e = Engine::open(&d.join("eng"), 16, FlushPolicy::EveryCommit).unwrap();
        let tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
        assert_eq!(tb.auto_increment_next(), 10);
        tb.auto_increment_used(20).unwrap();
        tb.auto_increment_used(15).unwrap();
        assert_eq!(tb.auto_increment_next(), 21);
        // a committed transaction makes the log durable up to its commit, past
        // the counter's mini-transaction
        let mut h = TrxHandle::new();
        let mut tb = tb;
        assert_eq!(tb.insert(&e, &mut h, b"k", b"row", &[(b"s".to_vec(), false)]).unwrap(), None);
        h.commit(&e, true).unwrap();
        // the crash: no checkpoint, no page written
        std::mem::forget(tb);
        std::mem::forget(e);
        forget_after_crash(&d); // (this test's tables only: others run beside it)
    }
    let e = Engine::open(&d.join("eng"), 16, FlushPolicy::EveryCommit).unwrap();
    let mut tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
    assert_eq!(tb.auto_increment_next(), 21);
    assert_eq!(tb.rows(), 1);
    let mut h = TrxHandle::new();
    tb.truncate(&e, &mut h).unwrap();
    h.commit(&e, true).unwrap();
    assert_eq!(tb.auto_increment_next(), 1);
    drop(tb);
    e.checkpoint_now().unwrap();
    let _ = std::fs::remove_dir_all(&d);
}

/// A scan (each row read under its own hold of the tree's read lock) gives
/// its rows in order both ways and across a turn, and sees the changes its own
/// transaction makes ahead of it (through another handler of the same table,
/// as a self-join's update would), on the clustered and a secondary index.
#[test]
fn a_scan_sees_its_own_changes_ahead_of_it() {
    let d = dir("ahead", 0);
    let t = d.join("t");
    create(&t, 2, 0).unwrap();
    let e = Engine::open(&d.join("eng"), 64, FlushPolicy::OncePerSecond).unwrap();
    let mut a = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
    let mut b = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
    let mut h = TrxHandle::new();
    let pk = |i: u32| i.to_be_bytes().to_vec();
    let row = |i: u32, v: u8| vec![v; 50 + (i % 5) as usize * 100];
    // secondary key: the row's first byte, then the primary key
    let sec = |v: u8| vec![(vec![v], false)];
    for i in (0..400).step_by(2) {
        assert_eq!(a.insert(&e, &mut h, &pk(i), &row(i, 1), &sec(1)).unwrap(), None);
    }
    h.commit(&e, true).unwrap();
    let all: Vec<u32> = (0..400).step_by(2).collect();
    // whole scans both ways, and a turn in the middle
    let mut got = vec![];
    let mut more = a.seek(&e, &mut h, 0, &[], Find::KeyOrNext).unwrap();
    while more {
        got.push(u32::from_be_bytes(a.pk[..].try_into().unwrap()));
        assert_eq!(a.row, row(*got.last().unwrap(), 1));
        more = a.next(false).unwrap();
    }
    assert_eq!(got, all);
    let mut got = vec![];
    let mut more = a.edge(&e, &mut h, 0, true).unwrap();
    while more {
        got.push(u32::from_be_bytes(a.pk[..].try_into().unwrap()));
        more = a.next(false).unwrap();
    }
    assert_eq!(got, all.iter().rev().copied().collect::<Vec<_>>());
    let mut got = vec![];
    let mut more = a.seek(&e, &mut h, 0, &pk(100), Find::KeyOrNext).unwrap();
    for _ in 0..30 {
        got.push(u32::from_be_bytes(a.pk[..].try_into().unwrap()));
        more = a.next(false).unwrap();
    }
    assert!(more);
    more = a.next(true).unwrap();
    while more && got.len() < 60 {
        got.push(u32::from_be_bytes(a.pk[..].try_into().unwrap()));
        more = a.next(false).unwrap();
    }
    // (the turn starts from the row last read, 160: the row before it is 158)
    let want: Vec<u32> = (100..160).step_by(2).chain((100..160).step_by(2).rev()).collect();
    assert_eq!(got, want);
    // changes ahead of a scan that has entries read ahead, on either index
    for index in [0, 1] {
        let mut got = vec![];
        let start: &[u8] = if index == 0 { &[] } else { &[1] };
        let mut more = a.seek(&e, &mut h, index, start, Find::KeyOrNext).unwrap();
        let mut changed = false;
        while more {
            let i = u32::from_be_bytes(a.pk[..].try_into().unwrap());
            got.push((i, a.row[0]));
            if i == 40 && !changed {
                changed = true;
                let v = 2 + index as u8;
                // an update in place, a delete, an insert, all just ahead
                let old = row(44, 1);
                let new = vec![v; old.len()];
                assert_eq!(b.update(&e, &mut h, &pk(44), &pk(44), &new, &sec(1), &sec(1)).unwrap(), None);
                b.delete(&e, &mut h, &pk(46), &sec(1)).unwrap();
                assert_eq!(b.insert(&e, &mut h, &pk(47), &row(47, v), &sec(1)).unwrap(), None);
            }
            more = a.next(false).unwrap();
        }
        let v = 2 + index as u8;
        assert!(got.contains(&(44, v)), "index {index}: an update ahead not seen");
        assert!(!got.iter().any(|&(i, _)| i == 46), "index {index}: a deleted row seen");
        assert!(got.contains(&(47, v)), "index {index}: an insert ahead not seen");
        let ids: Vec<u32> = got.iter().map(|&(i, _)| i).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "index {index}: out of order or repeated");
        assert_eq!(ids.len(), 200);
        // as it was, for the next round
        h.rollback(&e).unwrap();
    }
    drop((a, b));
    e.checkpoint_now().unwrap();
    let _ = std::fs::remove_dir_all(&d);
}

/// A table of 3000 rows (clustered and one secondary index) over several
/// hundred pages, part of it only in the redo log; its expected contents.
fn filled(e: &Engine, t: &Path) -> (BtreeTable, Vec<(Vec<u8>, Vec<u8>)>) {
    let mut tb = BtreeTable::open(e, t, vec![true, false], false).unwrap();
    let mut h = TrxHandle::new();
    let mut rows = Vec::new();
    for i in 0..3000u32 {
        let pk = (i.wrapping_mul(2_654_435_761)).to_be_bytes().to_vec();
        let row = vec![(i % 251) as u8; 100 + (i % 300) as usize];
        assert_eq!(tb.insert(e, &mut h, &pk, &row, &[((i % 97).to_be_bytes().to_vec(), false)]).unwrap(), None);
        rows.push((pk, row));
        if i == 1500 {
            h.commit(e, true).unwrap();
            e.checkpoint_now().unwrap();
        }
    }
    tb.auto_increment_used(5000).unwrap();
    h.commit(e, true).unwrap();
    rows.sort();
    (tb, rows)
}

fn all_rows(e: &Engine, tb: &mut BtreeTable) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut h = TrxHandle::new();
    let mut out = Vec::new();
    let mut more = tb.seek(e, &mut h, 0, b"", Find::KeyOrNext).unwrap();
    while more {
        out.push((tb.pk.clone(), tb.row.clone()));
        more = tb.next(false).unwrap();
    }
    h.commit(e, true).unwrap();
    out
}

fn file_pages(t: &Path, i: usize) -> u64 {
    std::fs::metadata(index_path(t, i)).unwrap().len() / super::super::page::PAGE_SIZE as u64
}

/// TRUNCATE stopped by a crash at each of its writes and fsyncs (and once
/// after it, with rows inserted and committed on the empty table), with what
/// the log had not synced lost or kept: recovery gives the whole old table
/// until the RESET record is durable, the empty table from then on (never a
/// mix of the two, in either index), a clean check, files cut to an empty
/// tree, the AUTO_INCREMENT counter restarted, and a table that works.
#[test]
fn truncate_survives_a_crash_at_every_step() {
    use crate::btree::crash;
    let base = dir("trunc", 0);
    let mut steps = None;
    let mut step = 0u32;
    loop {
        for power_loss in [false, true] {
            let d = base.join(format!("{step}-{power_loss}"));
            std::fs::create_dir(&d).unwrap();
            let t = d.join("t");
            create(&t, 2, 0).unwrap();
            let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
            let (mut tb, old) = filled(&e, &t);
            assert!(file_pages(&t, 0) > 20);
            let mut h = TrxHandle::new();
            crash::arm(Some(step));
            let r = tb.truncate(&e, &mut h);
            let seen = crash::arm(None);
            let crashed = r.is_err();
            if !crashed {
                // ran to the end: it had `seen` steps
                steps.get_or_insert(seen);
                h.commit(&e, true).unwrap();
                assert_eq!((tb.rows(), file_pages(&t, 0), file_pages(&t, 1)), (0, 2, 2));
                if power_loss {
                    // recovery then starts after the RESET record: from the
                    // files the checkpoint wrote
                    e.checkpoint_now().unwrap();
                }
                // rows on the empty table, committed, then the crash
                for i in 0..50u32 {
                    tb.insert(&e, &mut h, &i.to_be_bytes(), b"new", &[(b"s".to_vec(), false)]).unwrap();
                }
                h.commit(&e, true).unwrap();
            }
            drop(h);
            std::mem::forget(tb);
            TABLES.lock().remove(&t);
            e.simulate_crash(power_loss);

            let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
            let mut tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
            assert!(tb.check().unwrap().is_empty(), "step {step}: {:?}", tb.check());
            let got = all_rows(&e, &mut tb);
            let ctx = format!("step {step}, power loss {power_loss}");
            if step == 0 {
                // the RESET record had not reached the log file
                assert!(got == old, "{ctx}: not the old table ({} rows)", got.len());
                assert_eq!(tb.shared.trees[1].read().rows(), 3000, "{ctx}");
                assert_eq!(tb.auto_increment_next(), 5001, "{ctx}");
            } else {
                let want = if crashed { 0 } else { 50 };
                assert_eq!(got.len(), want, "{ctx}");
                assert_eq!(tb.shared.trees[1].read().rows(), want as u64, "{ctx}");
                assert_eq!(tb.auto_increment_next(), 1, "{ctx}");
                if crashed {
                    assert_eq!((file_pages(&t, 0), file_pages(&t, 1)), (2, 2), "{ctx}: files not cut");
                }
            }
            // the table works on: rows in, a checkpoint, a clean restart
            let mut h = TrxHandle::new();
            for i in 100..400u32 {
                tb.insert(&e, &mut h, &i.to_be_bytes(), &[9u8; 300], &[(b"x".to_vec(), false)]).unwrap();
            }
            h.commit(&e, true).unwrap();
            assert!(tb.check().unwrap().is_empty(), "{ctx}");
            let n = tb.rows();
            drop(tb);
            e.checkpoint_now().unwrap();
            drop(e);
            let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
            let mut tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
            assert_eq!(tb.rows(), n, "{ctx}");
            assert!(tb.check().unwrap().is_empty(), "{ctx}");
            drop(tb);
            e.checkpoint_now().unwrap();
        }
        if steps.is_some() {
            break;
        }
        step += 1;
        assert!(step < 100, "TRUNCATE never ran to its end");
    }
    // a RESET record, then the trees one by one: write, cut, sync
    assert_eq!(steps, Some(7));
    let _ = std::fs::remove_dir_all(&base);
}

/// A log that has a transaction's change to a table before the table's
/// TRUNCATE and no end of that transaction (the table lock keeps this from
/// happening; here the trees are reset under it): recovery does not roll the
/// change back into the empty table.
#[test]
fn recovery_does_not_undo_into_a_truncated_table() {
    let d = dir("trunc-undo", 0);
    let t = d.join("t");
    create(&t, 1, 0).unwrap();
    let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
    let mut tb = BtreeTable::open(&e, &t, vec![true], false).unwrap();
    let mut h = TrxHandle::new();
    for i in 0..200u32 {
        tb.insert(&e, &mut h, &i.to_be_bytes(), &[1u8; 200], NO_SEC).unwrap();
    }
    h.commit(&e, true).unwrap();
    // an open transaction deletes rows (undo: put them back)
    for i in 0..100u32 {
        tb.delete(&e, &mut h, &i.to_be_bytes(), NO_SEC).unwrap();
    }
    let trees = vec![(index_path(&t, 0), tb.shared.trees[0].clone())];
    e.reset_trees(&trees).unwrap();
    drop(trees);
    h.release_locks();
    std::mem::forget(h.trx.take());
    std::mem::forget(tb);
    TABLES.lock().remove(&t);
    e.simulate_crash(false);
    let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
    let mut tb = BtreeTable::open(&e, &t, vec![true], false).unwrap();
    assert!(tb.check().unwrap().is_empty());
    assert_eq!(all_rows(&e, &mut tb).len(), 0, "deleted rows were rolled back into the empty table");
    drop(tb);
    e.checkpoint_now().unwrap();
    let _ = std::fs::remove_dir_all(&d);
}

/// A prepared transaction survives two crashes (the second run gives its tree
/// ids to other trees) and is then committed by XID; another is rolled back.
#[test]
fn prepared_transactions_survive_crashes() {
    let d = dir("xa", 0);
    let (t1, t2) = (d.join("t1"), d.join("t2"));
    create(&t1, 1, 0).unwrap();
    create(&t2, 1, 0).unwrap();
    create(&d.join("t3"), 1, 0).unwrap();
    let (xc, xr) = (b"xa-test-commit".to_vec(), b"xa-test-rollback".to_vec());
    let crash = |e: Engine, tables: Vec<BtreeTable>| {
        for t in tables {
            std::mem::forget(t);
        }
        for x in [&xc, &xr] {
            if let Some(h) = PREPARED.lock().remove(x.as_slice()) {
                std::mem::forget(h);
            }
        }
        std::mem::forget(e);
        forget_after_crash(&d); // (this test's tables only: others run beside it)
    };
    {
        let e = Engine::open(&d.join("eng"), 16, FlushPolicy::EveryCommit).unwrap();
        // t3 takes tree id 1 here; the next run gives ids 1 and 2 to t1 and t2
        let c = BtreeTable::open(&e, &d.join("t3"), vec![true], false).unwrap();
        let mut a = BtreeTable::open(&e, &t1, vec![true], false).unwrap();
        let mut b = BtreeTable::open(&e, &t2, vec![true], false).unwrap();
        let (mut h1, mut h2) = (TrxHandle::new(), TrxHandle::new());
        a.insert(&e, &mut h1, b"k1", b"row1", NO_SEC).unwrap();
        h1.prepare(&e, &xc).unwrap();
        b.insert(&e, &mut h2, b"k2", b"row2", NO_SEC).unwrap();
        h2.prepare(&e, &xr).unwrap();
        std::mem::forget(h1);
        std::mem::forget(h2);
        crash(e, vec![a, b, c]);
    }
    for run in 0..2 {
        let e = Engine::open(&d.join("eng"), 16, FlushPolicy::EveryCommit).unwrap();
        adopt_recovered_prepared(&e).unwrap();
        let mut x = prepared_xids_all();
        x.sort();
        assert_eq!(x, vec![xc.clone(), xr.clone()], "run {run}");
        if run == 0 {
            crash(e, vec![]);
            continue;
        }
        assert!(end_prepared(&e, &xc, true).unwrap());
        assert!(end_prepared(&e, &xr, false).unwrap());
        assert!(!end_prepared(&e, &xr, false).unwrap());
        let mut h = TrxHandle::new();
        let mut a = BtreeTable::open(&e, &t1, vec![true], false).unwrap();
        let mut b = BtreeTable::open(&e, &t2, vec![true], false).unwrap();
        assert!(a.get(&e, &mut h, b"k1").unwrap());
        assert_eq!(a.row, b"row1");
        assert!(!b.get(&e, &mut h, b"k2").unwrap());
        assert!(a.check().unwrap().is_empty() && b.check().unwrap().is_empty());
        h.commit(&e, true).unwrap();
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// records_in_range and rec_per_key estimates: exact on small ranges and
/// small indexes, close on large ones (a sample, and the fraction of the tree
/// between two descents).
#[test]
fn statistics_follow_the_data() {
    let d = dir("stats", 0);
    let t = d.join("t");
    create(&t, 2, 0).unwrap();
    let e = Engine::open(&d.join("eng"), 4096, FlushPolicy::OncePerSecond).unwrap();
    let mut tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
    let mut h = TrxHandle::new();
    let n = 30_000u32;
    // secondary key: a (i % 50), then a nullable b (i % 1000, NULL when 0)
    let sec = |i: u32| {
        let mut k = (i % 50).to_be_bytes().to_vec();
        if i % 1000 == 0 {
            k.push(0);
        } else {
            k.push(1);
            k.extend_from_slice(&(i % 1000).to_be_bytes());
        }
        k
    };
    let row = vec![7u8; 120];
    for i in 0..n {
        // scattered primary keys, so that splits are not only the ascending kind
        let j = ((i as u64 * 2654435761) % n as u64) as u32;
        tb.insert(&e, &mut h, &j.to_be_bytes(), &row, &[(sec(j), false)]).unwrap();
    }
    h.commit(&e, true).unwrap();
    let k = |v: u32| v.to_be_bytes().to_vec();
    // exact: a few leaves apart
    assert_eq!(tb.count_range(0, Some(&k(100)), true, Some(&k(150)), false).unwrap(), 50);
    assert_eq!(tb.count_range(0, Some(&k(100)), false, Some(&k(150)), true).unwrap(), 50);
    assert_eq!(tb.count_range(0, Some(&k(100)), true, Some(&k(100)), true).unwrap(), 1);
    assert_eq!(tb.count_range(0, Some(&k(n + 5)), true, None, false).unwrap(), 0);
    // estimated: within a fifth
    let near = |got: u64, want: u64| got.abs_diff(want) * 5 <= want;
    let big = tb.count_range(0, Some(&k(1000)), true, Some(&k(21000)), false).unwrap();
    assert!(near(big, 20_000), "{big}");
    let all = tb.count_range(0, None, false, None, false).unwrap();
    assert!(near(all, n as u64), "{all}");
    // a prefix of the secondary key
    let a7 = tb.count_range(1, Some(&k(7)), true, Some(&k(7)), true).unwrap();
    assert!(near(a7, (n / 50) as u64), "{a7}");
    let a_lt_10 = tb.count_range(1, None, false, Some(&k(10)), false).unwrap();
    assert!(near(a_lt_10, (n / 5) as u64), "{a_lt_10}");
    // cardinality: exact when every leaf is read, close from a sample
    let parts = [4, PART_NULLABLE | 4, 4];
    assert_eq!(tb.key_stats(1, &parts, true).unwrap(), vec![50, 1000, n as u64]);
    assert_eq!(tb.key_stats(0, &[4], true).unwrap(), vec![n as u64]);
    let (s, exact) = n_diff(&mut tb.shared.trees[1].write(), &parts, 8).unwrap();
    assert!(!exact);
    assert!(s[0] < 200 && near(s[1], 1000) && near(s[2], n as u64), "{s:?}");
    drop(tb);
    e.checkpoint_now().unwrap();
    let _ = std::fs::remove_dir_all(&d);
}

/// Index-only reads: a secondary entry gives its key bytes and primary key,
/// no row (and no clustered lookup: a row missing from the clustered tree is
/// not noticed then, where a full read calls it corruption); own uncommitted
/// changes are seen; the AUTO_INCREMENT check's unlocked read is never
/// index-only.
#[test]
fn keys_only_reads_give_the_entry_not_the_row() {
    let d = dir("keysonly", 0);
    let t = d.join("t");
    create(&t, 2, 0).unwrap();
    let e = Engine::open(&d.join("eng"), 64, FlushPolicy::OncePerSecond).unwrap();
    let mut tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
    let mut h = TrxHandle::new();
    for i in 0u32..100 {
        let sec = (1000 - i).to_be_bytes().to_vec();
        tb.insert(&e, &mut h, &i.to_be_bytes(), b"row", &[(sec, false)]).unwrap();
    }
    tb.set_keys_only(true);
    assert!(tb.seek(&e, &mut h, 1, &950u32.to_be_bytes(), Find::Exact).unwrap());
    assert_eq!(tb.key(), [950u32.to_be_bytes(), 50u32.to_be_bytes()].concat());
    assert_eq!(tb.pk, 50u32.to_be_bytes());
    assert!(tb.row.is_empty());
    // the steps after the seek too, in both directions
    tb.set_prefix(None);
    assert!(tb.next(false).unwrap());
    assert_eq!(tb.pk, 49u32.to_be_bytes());
    assert!(tb.row.is_empty());
    assert!(tb.next(true).unwrap());
    assert_eq!(tb.pk, 50u32.to_be_bytes());
    // the clustered index gives rows whatever the flag
    assert!(tb.edge(&e, &mut h, 0, false).unwrap());
    assert_eq!(tb.row, b"row");
    // off again: the row is looked up
    tb.set_keys_only(false);
    assert!(tb.seek(&e, &mut h, 1, &950u32.to_be_bytes(), Find::Exact).unwrap());
    assert_eq!((tb.pk.as_slice(), tb.row.as_slice()), (&50u32.to_be_bytes()[..], &b"row"[..]));
    // own uncommitted changes: an entry gone, a new one there
    tb.delete(&e, &mut h, &50u32.to_be_bytes(), &[(950u32.to_be_bytes().to_vec(), false)]).unwrap();
    tb.insert(&e, &mut h, &500u32.to_be_bytes(), b"new", &[(950u32.to_be_bytes().to_vec(), false)]).unwrap();
    tb.set_keys_only(true);
    assert!(tb.seek(&e, &mut h, 1, &950u32.to_be_bytes(), Find::Exact).unwrap());
    assert_eq!(tb.pk, 500u32.to_be_bytes());
    tb.set_prefix(Some(950u32.to_be_bytes().to_vec()));
    assert!(!tb.next(false).unwrap());
    // the unlocked read (AUTO_INCREMENT check) reads rows
    assert!(tb.edge_unlocked(1, true).unwrap());
    assert_eq!(tb.row, b"row");
    h.rollback(&e).unwrap();
    drop(tb);
    e.checkpoint_now().unwrap();
    let _ = std::fs::remove_dir_all(&d);
}

/// Tree format 5: a secondary entry keeps the unpack bytes C++ gives beside
/// its primary key; an index-only read gives them back, an update that keeps
/// the key but changes them rewrites the entry, CHECK and the unique probe
/// find the primary key after them. A table of format 3 keeps none (its
/// entries' value is the primary key alone) and reads as before.
#[test]
fn secondary_entries_keep_unpack_bytes_from_format_5() {
    let d = dir("unpack", 0);
    let e = Engine::open(&d.join("eng"), 64, FlushPolicy::OncePerSecond).unwrap();
    for format in [3, tree::FORMAT_VERSION] {
        let t = d.join(format!("t{format}"));
        for i in 0..2 {
            BTree::create_with(&index_path(&t, i), 0, format).unwrap();
        }
        let mut tb = BtreeTable::open(&e, &t, vec![true, true], false).unwrap();
        let mut h = TrxHandle::new();
        let sec = |k: &[u8], u: &[u8]| vec![(k.to_vec(), false, u.to_vec())];
        let big = vec![b'V'; 300]; // an unpack length of two LEB128 bytes
        tb.insert(&e, &mut h, b"p1", b"row1", &sec(b"abc", b"\x03ABC")).unwrap();
        tb.insert(&e, &mut h, b"p2", b"row2", &sec(b"xyz", &big)).unwrap();
        // a unique key taken by p1, whatever the unpack bytes
        assert_eq!(tb.insert(&e, &mut h, b"p3", b"row3", &sec(b"abc", b"\x03abc")).unwrap(), Some(1));
        let kept = |u: &[u8]| if format >= UNPACK_FORMAT { u.to_vec() } else { vec![] };
        tb.set_keys_only(true);
        assert!(tb.seek(&e, &mut h, 1, b"abc", Find::Exact).unwrap());
        assert_eq!((tb.pk.as_slice(), tb.unpack()), (&b"p1"[..], &kept(b"\x03ABC")[..]));
        tb.set_prefix(None);
        assert!(tb.next(false).unwrap());
        assert_eq!((tb.pk.as_slice(), tb.unpack()), (&b"p2"[..], &kept(&big)[..]));
        // the same key, other unpack bytes: the entry's value changes
        tb.update(&e, &mut h, b"p1", b"p1", b"row1", &sec(b"abc", b"\x03ABC"), &sec(b"abc", b"\x03aBc")).unwrap();
        assert!(tb.seek(&e, &mut h, 1, b"abc", Find::Exact).unwrap());
        assert_eq!((tb.pk.as_slice(), tb.unpack()), (&b"p1"[..], &kept(b"\x03aBc")[..]));
        // a full read finds the row through the primary key after them
        tb.set_keys_only(false);
        assert!(tb.seek(&e, &mut h, 1, b"xyz", Find::Exact).unwrap());
        assert_eq!(tb.row, b"row2");
        h.commit(&e, true).unwrap();
        assert!(tb.check().unwrap().is_empty(), "format {format}");
        assert_eq!(tb.key_format(), format);
        drop(tb);
    }
    e.checkpoint_now().unwrap();
    let _ = std::fs::remove_dir_all(&d);
}

/// The distinct-value counts outlive a restart (stored in the index's meta
/// page when computed): after a clean restart and after a crash (the log
/// made durable by a later commit) they are read back, not sampled again; a
/// crash before they reached the log loses them (they are sampled again),
/// and never damages the tree; TRUNCATE forgets them.
#[test]
fn statistics_outlive_a_restart() {
    let d = dir("pstats", 0);
    let t = d.join("t");
    create(&t, 2, 0).unwrap();
    let parts = [4, 4];
    let open = |e: &Engine| BtreeTable::open(e, &t, vec![true, false], false).unwrap();
    let counted = |tb: &BtreeTable| tb.shared.stats_counted.load(Ordering::Relaxed);
    let eng = || Engine::open(&d.join("eng"), 256, FlushPolicy::EveryCommit).unwrap();
    let crash = |e: Engine, tb: BtreeTable, power_loss: bool| {
        std::mem::forget(tb);
        TABLES.lock().remove(&t);
        e.simulate_crash(power_loss);
    };
    let e = eng();
    let mut tb = open(&e);
    let mut h = TrxHandle::new();
    for i in 0..30_000u32 {
        let j = ((i as u64 * 2654435761) % 30_000) as u32;
        tb.insert(&e, &mut h, &j.to_be_bytes(), &[3u8; 100], &[([(j % 70).to_be_bytes(), j.to_be_bytes()].concat(), false)]).unwrap();
    }
    h.commit(&e, true).unwrap();
    // the automatic count samples 32 leaves; ANALYZE reads them all here
    let sampled = tb.key_stats(1, &parts, false).unwrap();
    let analyzed = tb.key_stats(1, &parts, true).unwrap();
    assert_eq!(analyzed, vec![70, 30_000]);
    assert_ne!(sampled, analyzed, "the test needs a sample that differs");
    assert_eq!(counted(&tb), 2);
    drop(tb);
    e.checkpoint_now().unwrap();
    drop(e);

    // a clean restart
    let e = eng();
    let tb = open(&e);
    assert_eq!(tb.key_stats(1, &parts, false).unwrap(), analyzed);
    assert_eq!(counted(&tb), 0, "sampled again after the restart");
    // another layout is counted again (and stored in place of the first:
    // one block per index), then a crash before the log reached the disk:
    // the newest counts are lost, the older ones are intact
    let stored_parts = |tb: &BtreeTable| tb.shared.trees[1].read().stored_stats().map(|s| s.parts.clone());
    assert_eq!(tb.key_stats(1, &[4], true).unwrap(), vec![70]);
    assert_eq!(stored_parts(&tb), Some(vec![4]));
    crash(e, tb, true);
    let e = eng();
    let mut tb = open(&e);
    assert!(tb.check().unwrap().is_empty());
    assert_eq!(stored_parts(&tb), Some(vec![4, 4]));
    assert_eq!(tb.key_stats(1, &parts, false).unwrap(), analyzed);
    assert_eq!(counted(&tb), 0);
    // again, with a commit that makes the log durable past them: kept
    assert_eq!(tb.key_stats(1, &[4], true).unwrap(), vec![70]);
    let mut h = TrxHandle::new();
    let sec = [[0u8; 4], [0xFF; 4]].concat();
    tb.insert(&e, &mut h, &[0xFF; 4], &[1], &[(sec, false)]).unwrap();
    h.commit(&e, true).unwrap();
    crash(e, tb, true);
    let e = eng();
    let mut tb = open(&e);
    assert!(tb.check().unwrap().is_empty());
    assert_eq!(stored_parts(&tb), Some(vec![4]));
    assert_eq!(tb.key_stats(1, &[4], false).unwrap(), vec![70]);
    assert_eq!(counted(&tb), 0, "counted again after the crash");
    // TRUNCATE forgets them
    let mut h = TrxHandle::new();
    tb.truncate(&e, &mut h).unwrap();
    h.commit(&e, true).unwrap();
    assert!(tb.shared.trees[1].read().stored_stats().is_none());
    drop(tb);
    e.checkpoint_now().unwrap();
    drop(e);
    let e = eng();
    let tb = open(&e);
    assert!(tb.shared.key_stats.lock().is_empty());
    drop(tb);
    e.checkpoint_now().unwrap();
    let _ = std::fs::remove_dir_all(&d);
}

/// Tree files map back to their tables, partitions named like an index
/// suffix (`i1`) included.
#[test]
fn table_of_index_knows_partitions_named_like_indexes() {
    let d = dir("tofi", 0);
    let files = [
        ("u.rbt", "u"),
        ("u#i1.rbt", "u"),
        ("u#i12.rbt", "u"),
        ("t#P#i1.rbt", "t#P#i1"),
        ("t#P#i1#i1.rbt", "t#P#i1"),
        ("t#P#i1#i2.rbt", "t#P#i1"),
        ("t#P#p0.rbt", "t#P#p0"),
        ("t#P#p0#i1.rbt", "t#P#p0"),
        ("t#P#p0#SP#i2.rbt", "t#P#p0#SP#i2"),
        ("t#P#p0#SP#i2#i1.rbt", "t#P#p0#SP#i2"),
    ];
    for (f, _) in files {
        std::fs::write(d.join(f), b"").unwrap();
    }
    for (f, table) in files {
        assert_eq!(table_of_index(&d.join(f)), d.join(table), "{f}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// A prepared transaction recovered after a crash locks the table it changed
/// again, also when that is a partition named `i1` (its clustered file
/// `t#P#i1.rbt` was once taken for index 1 of a table `t#P`).
#[test]
fn a_recovered_prepared_transaction_locks_its_partition() {
    let d = dir("xapart", 0);
    let t = d.join("t#P#i1");
    create(&t, 2, 0).unwrap();
    let xid = b"xa-part-test".to_vec();
    {
        let e = Engine::open(&d.join("eng"), 16, FlushPolicy::EveryCommit).unwrap();
        let mut tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
        let mut h = TrxHandle::new();
        assert_eq!(tb.insert(&e, &mut h, b"k", b"row", &[(b"s".to_vec(), false)]).unwrap(), None);
        h.prepare(&e, &xid).unwrap();
        // the crash
        std::mem::forget(h);
        std::mem::forget(tb);
        std::mem::forget(e);
        forget_after_crash(&d); // (this test's tables only: others run beside it)
    }
    let e = Engine::open(&d.join("eng"), 16, FlushPolicy::EveryCommit).unwrap();
    let held = |p: &Path| table_lock(p).m.lock().held.values().any(|&m| m & crate::btree::lock::mode::X != 0);
    let ours = |r: &RecoveredPrepared| r.xid == xid;
    assert_eq!(e.recovered_prepared.lock().iter().filter(|r| ours(r)).count(), 1);
    adopt_recovered_prepared(&e).unwrap();
    assert!(held(&t), "the partition is not locked");
    assert!(!held(&d.join("t#P")), "a table t#P is locked");
    assert!(end_prepared(&e, &xid, false).unwrap());
    assert!(!held(&t));
    let _ = std::fs::remove_dir_all(&d);
}

/// The server's recovery (xarecover_handlerton) with room for `len` XIDs
/// per call, over what the handlerton's recover (C++ over prepared_xids) gives
/// it: it ends each XID it gets (here: forgets it) unless `keep`, and asks
/// again until it gets fewer than `len`. Returns what it got, and what the
/// C++ side would have logged as malformed (an XID starting with `bad`).
fn server_pass(pass: &mut RecoverPass, prepared: &mut Vec<Vec<u8>>, len: usize, keep: bool) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut got, mut logged) = (Vec::new(), Vec::new());
    loop {
        // rust_bt_recover
        let all = pass.pending(prepared.iter().cloned());
        let (mut batch, mut walked) = (Vec::new(), Vec::new());
        for x in all {
            if batch.len() == len {
                break;
            }
            if x.starts_with(b"bad") {
                logged.push(x.clone());
            } else {
                batch.push(x.clone());
            }
            walked.push(x);
        }
        let n = batch.len();
        pass.given(walked, n < len);
        // the server
        if !keep {
            prepared.retain(|x| !batch.contains(x));
        }
        got.extend(batch);
        if n == 0 || n < len {
            return (got, logged);
        }
    }
}

/// More prepared XIDs than the server has room for per call: every one is
/// given once per pass, none is lost, a malformed one is logged (not given),
/// and the next pass (the server's dry run) sees again what is left.
#[test]
fn every_prepared_xid_reaches_the_server() {
    let xid = |i: u8| format!("xid{i}").into_bytes();
    for (count, len) in [(8u8, 3usize), (6, 3), (2, 3), (3, 3), (9, 1)] {
        let mut prepared: Vec<Vec<u8>> = (0..count).map(xid).collect();
        prepared.push(b"bad-one".to_vec());
        let mut want: Vec<Vec<u8>> = (0..count).map(xid).collect();
        want.sort();
        let mut pass = RecoverPass::default();
        // a first pass that ends none (as a recovery that collects), then one
        // that ends all, then a dry run that finds none left
        let (mut got, logged) = server_pass(&mut pass, &mut prepared, len, true);
        got.sort();
        assert_eq!(got, want, "{count} XIDs, room for {len}");
        assert_eq!(logged, vec![b"bad-one".to_vec()]);
        let (mut got, _) = server_pass(&mut pass, &mut prepared, len, false);
        got.sort();
        assert_eq!(got, want, "second pass: {count} XIDs, room for {len}");
        assert_eq!(prepared, vec![b"bad-one".to_vec()]);
        let (got, logged) = server_pass(&mut pass, &mut prepared, len, true);
        assert!(got.is_empty());
        assert_eq!(logged, vec![b"bad-one".to_vec()]);
    }
}

fn prepared_xids_all() -> Vec<Vec<u8>> {
    PREPARED.lock().keys().filter(|x| x.starts_with(b"xa-test-")).cloned().collect()
}

/// A rename cut short after the table's first file (a SIGKILL in ALTER TABLE's
/// rename step, found by ci/crashloop) is finished by renaming again: the index
/// files are not left behind under the old name (the table would not open).
#[test]
fn a_rename_cut_short_is_finished_by_renaming_again() {
    let d = dir("rename_resume", 0);
    let (from, to) = (d.join("a"), d.join("b"));
    create(&from, 3, 0).unwrap();
    let e = Engine::open(&d.join("eng"), 16, FlushPolicy::EveryCommit).unwrap();
    std::fs::rename(index_path(&from, 0), index_path(&to, 0)).unwrap();
    rename(&e, &from, &to).unwrap();
    for i in 0..3 {
        assert!(index_path(&to, i).exists(), "index file {i} under the new name");
        assert!(!index_path(&from, i).exists(), "index file {i} left under the old name");
    }
    BtreeTable::open(&e, &to, vec![true, false, false], false).unwrap();
    // a delete cut short removes the last files first: deleting again ends it
    std::fs::remove_file(index_path(&to, 2)).unwrap();
    delete(&e, &to).unwrap();
    for i in 0..3 {
        assert!(!index_path(&to, i).exists(), "index file {i} left by DROP");
    }
    drop(e);
    let _ = std::fs::remove_dir_all(&d);
}

/// REPAIR of a BTREE table whose clustered file has a damaged leaf and a
/// damaged overflow page: every row of the good leaves is kept (long values
/// too, when their chain is whole), the damaged pages' bytes are saved beside
/// the file, the secondary index is rebuilt from the kept rows, CHECK TABLE is
/// clean afterwards, and a crash right after REPAIR (no page written since)
/// finds the repaired table again (no redo of the old file replayed onto it).
#[test]
fn repair_salvages_every_readable_row_and_rebuilds_the_indexes() {
    let d = dir("repair", 0);
    let t = d.join("t");
    create(&t, 2, 0).unwrap();
    let n = 3000u32;
    let pk = |i: u32| i.to_be_bytes().to_vec();
    let row = |i: u32| if i % 250 == 7 { vec![(i % 200) as u8; 40_000] } else { format!("row {i:06}").into_bytes() };
    let sec = |r: &[u8]| vec![(r[..4].iter().rev().copied().collect::<Vec<u8>>(), false)];
    {
        let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
        let mut tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
        let mut h = TrxHandle::new();
        for i in 0..n {
            let r = row(i);
            assert_eq!(tb.insert(&e, &mut h, &pk(i), &r, &sec(&r)).unwrap(), None);
        }
        h.commit(&e, true).unwrap();
        drop(tb);
        e.checkpoint_now().unwrap();
    }
    forget_after_crash(&d); // (this test's tables only: others run beside it)
    // damage: a leaf in the middle of the file and the first overflow page
    let path = index_path(&t, 0);
    let bytes = std::fs::read(&path).unwrap();
    let kind_of = |no: usize| bytes[no * PAGE_SIZE_FOR_TEST + 16];
    let pages = bytes.len() / PAGE_SIZE_FOR_TEST;
    let leaves: Vec<usize> = (2..pages).filter(|&no| kind_of(no) == 2).collect();
    let bad_leaf = leaves[leaves.len() / 2];
    let bad_overflow = (2..pages).find(|&no| kind_of(no) == 4).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&[0xAB; 64], (bad_leaf * PAGE_SIZE_FOR_TEST + 200) as u64).unwrap();
    f.write_all_at(&[0xCD; 8], (bad_overflow * PAGE_SIZE_FOR_TEST + 4000) as u64).unwrap();
    drop(f);

    let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
    let mut tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
    assert!(tb.check().map_or(true, |p| !p.is_empty()), "the damage is seen by CHECK");
    let mut h = TrxHandle::new();
    tb.repair_begin(&e, &mut h, &mut StopCheck::new(0)).unwrap();
    // the caller's scan: every row's secondary keys
    let mut seen = 0u64;
    while tb.repair_next().unwrap() {
        let r = tb.row.clone();
        let i = u32::from_be_bytes(tb.pk[..4].try_into().unwrap());
        assert!(r == row(i), "a kept row is whole");
        tb.repair_add_entries(&sec(&r)).unwrap();
        seen += 1;
    }
    let rep = tb.repair_finish(&e, true).unwrap();
    h.commit(&e, true).unwrap();
    assert!(rep.damaged());
    assert_eq!(rep.bad_pages, 2, "{rep:?}");
    assert_eq!(rep.lost_values, 1, "the row whose chain runs through the damaged overflow page");
    assert_eq!(rep.rows_before, Some(n as u64));
    let kept = rep.rows;
    assert!(kept < n as u64 - 2 && kept > n as u64 - 600, "one leaf's rows (about 470) and one long value lost: {kept}");
    assert_eq!(seen, kept);
    assert_eq!(rep.entries, kept);
    assert_eq!(tb.rows(), kept);
    let saved = rep.saved.as_ref().unwrap();
    let data = std::fs::read(&saved.data).unwrap();
    assert_eq!(data.len(), 2 * PAGE_SIZE_FOR_TEST);
    let first = bad_overflow.min(bad_leaf);
    let mut expect = bytes[first * PAGE_SIZE_FOR_TEST..][..PAGE_SIZE_FOR_TEST].to_vec();
    let (at, v) = if first == bad_leaf { (200, 0xABu8) } else { (4000, 0xCD) };
    expect[at..at + if v == 0xAB { 64 } else { 8 }].fill(v);
    assert!(data[..PAGE_SIZE_FOR_TEST] == expect[..], "the first damaged page's bytes, as the file had them");
    assert!(rep.note().contains(&format!("REPAIR kept {kept} rows of the {n} the table held")), "{}", rep.note());
    for i in 0..2 {
        assert!(!temp_exists(&t, i), "no new file left under its temporary name");
    }
    assert_eq!(tb.check().unwrap(), Vec::<String>::new());
    // new rows go in as before
    let r = row(n);
    assert_eq!(tb.insert(&e, &mut h, &pk(n), &r, &sec(&r)).unwrap(), None);
    h.commit(&e, true).unwrap();
    // the crash: nothing written since the commit (its redo is in the log)
    std::mem::forget(tb);
    std::mem::forget(e);
    forget_after_crash(&d); // (this test's tables only: others run beside it)
    let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
    let mut tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
    assert_eq!(tb.rows(), kept + 1);
    assert_eq!(tb.check().unwrap(), Vec::<String>::new());
    drop(tb);
    e.checkpoint_now().unwrap();
    let _ = std::fs::remove_dir_all(&d);
}

const PAGE_SIZE_FOR_TEST: usize = crate::btree::page::PAGE_SIZE;

fn temp_exists(t: &Path, i: usize) -> bool {
    let mut p = index_path(t, i).into_os_string();
    p.push(".repair");
    Path::new(&p).exists()
}

/// A REPAIR cut short by a crash: before its marker the old files are the table
/// (the new ones are removed at the next open); after it, the next open puts
/// every new file in place, even those not renamed yet.
#[test]
fn a_repair_cut_short_is_finished_or_forgotten_whole() {
    for (crash_at, finished) in [(0u32, false), (1, true), (2, true), (4, true)] {
        let d = dir("repair_cut", crash_at as u64);
        let t = d.join("t");
        create(&t, 3, 0).unwrap();
        let pk = |i: u32| i.to_be_bytes().to_vec();
        let sec = |i: u32| vec![(vec![(i % 7) as u8], false), (i.to_le_bytes().to_vec(), false)];
        let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
        let mut tb = BtreeTable::open(&e, &t, vec![true, false, true], false).unwrap();
        let mut h = TrxHandle::new();
        for i in 0..500 {
            assert_eq!(tb.insert(&e, &mut h, &pk(i), b"row", &sec(i)).unwrap(), None);
        }
        h.commit(&e, true).unwrap();
        tb.repair_begin(&e, &mut h, &mut StopCheck::new(0)).unwrap();
        let mut n = 0;
        while tb.repair_next().unwrap() {
            // the new secondary index 1 gets other keys than the old, so that
            // which file a reader finds shows
            let i = u32::from_be_bytes(tb.pk[..4].try_into().unwrap());
            tb.repair_add_entries(&[(vec![(i % 7) as u8 + 100], false), (i.to_le_bytes().to_vec(), false)]).unwrap();
            n += 1;
        }
        assert_eq!(n, 500);
        crate::btree::crash::arm(Some(crash_at));
        assert!(tb.repair_finish(&e, true).is_err(), "the crash point fired");
        crate::btree::crash::arm(None);
        h.commit(&e, true).unwrap(); // (the table lock is the process's: let it go)
        std::mem::forget(tb);
        e.simulate_crash(false);
        forget_after_crash(&d); // (this test's tables only: others run beside it)
        let e = Engine::open(&d.join("eng"), 64, FlushPolicy::EveryCommit).unwrap();
        let mut tb = BtreeTable::open(&e, &t, vec![true, false, true], false).unwrap();
        assert_eq!(tb.rows(), 500);
        assert_eq!(tb.check().unwrap(), Vec::<String>::new(), "crash point {crash_at}");
        let mut h = TrxHandle::new();
        let found_new = tb.seek(&e, &mut h, 1, &[100], Find::Exact).unwrap();
        assert_eq!(found_new, finished, "crash point {crash_at}: the new index 1 is there");
        h.commit(&e, true).unwrap();
        for i in 0..3 {
            assert!(!temp_exists(&t, i));
        }
        drop(tb);
        e.checkpoint_now().unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// The keys of table `tb` in order, read in a transaction of their own.
fn review_keys(e: &Engine, tb: &mut BtreeTable) -> Vec<u32> {
    all_rows(e, tb).into_iter().map(|(k, _)| u32::from_be_bytes(k[..].try_into().unwrap())).collect()
}

/// Review (statement boundaries): the calls C++ makes for statements whose
/// only access to a BTREE table is a stored function's or trigger's
/// sub-statement under LOCK TABLES with autocommit=0 (cpp/mariadb/trx.cc:
/// bt_stmt_begin returns at once when `thd->in_sub_stmt`; rust_bt_commit with
/// all=false in a transaction returns 0 without marking anything), or for the
/// 2nd..nth iterations of a COM_STMT_BULK_EXECUTE UPDATE/DELETE (one query id).
///   SET autocommit=0; LOCK TABLES r WRITE;
///   INSERT INTO r VALUES (1);   -- start_stmt: stmt_begin
///   SELECT f(2);                -- f inserts 2: no stmt_begin, stmt commit
///   SELECT f(3);                -- f inserts 3 then fails: stmt rollback
///   COMMIT;
/// InnoDB marks the statement start at every statement commit
/// (innobase_commit -> end_of_statement: last_stmt_start = undo_no), so it
/// keeps 1 and 2; so does RUST since C++ marks at each statement commit
/// (before: the rollback went back to the mark made before 1, and COMMIT
/// committed neither 1 nor 2).
#[test]
fn a_failed_sub_statement_only_statement_keeps_earlier_statements() {
    let d = dir("review_stmt_stale", 0);
    let t = d.join("t");
    create(&t, 2, 0).unwrap();
    let e = Engine::open(&d.join("eng"), 64, FlushPolicy::OncePerSecond).unwrap();
    let mut tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
    let mut h = TrxHandle::new();
    let pk = |i: u32| i.to_be_bytes().to_vec();
    let sec = |i: u32| vec![(vec![i as u8], false)];
    // LOCK TABLES (external_lock, in_sub_stmt == 0): a mark
    h.stmt_begin();
    // INSERT INTO r VALUES (1): start_stmt of its own table: a mark
    h.stmt_begin();
    assert_eq!(tb.insert(&e, &mut h, &pk(1), b"one", &sec(1)).unwrap(), None);
    // statement commit (all=false, in a transaction): C++ marks the next start
    h.stmt_begin();
    // SELECT f(2): start_stmt in the sub-statement only: no mark
    assert_eq!(tb.insert(&e, &mut h, &pk(2), b"two", &sec(2)).unwrap(), None);
    // statement commit: a mark
    h.stmt_begin();
    // SELECT f(3): no mark; f inserts 3, then fails: statement rollback
    assert_eq!(tb.insert(&e, &mut h, &pk(3), b"three", &sec(3)).unwrap(), None);
    h.stmt_rollback(&e).unwrap();
    // COMMIT
    h.commit(&e, true).unwrap();
    assert_eq!(review_keys(&e, &mut tb), vec![1, 2], "the failed statement took back earlier ones");
    drop(tb);
    e.checkpoint_now().unwrap();
}

/// Review (statement boundaries): after ROLLBACK TO SAVEPOINT the statement
/// mark can lie above the undo log's end; a statement that makes no new mark
/// (see above) and fails is then not rolled back at all, and COMMIT commits it.
///   SET autocommit=0; LOCK TABLES r WRITE; SAVEPOINT a;
///   INSERT INTO r VALUES (1),(2),(3); INSERT INTO r VALUES (4);
///   ROLLBACK TO SAVEPOINT a;
///   SELECT g();   -- g: INSERT INTO r VALUES (10),(11),(12); INSERT INTO r VALUES (10) (dup)
///   COMMIT;
/// InnoDB: r is empty (rollback_to_savepoint sets last_stmt_start = undo_no).
/// (Before TrxHandle::rollback_to moved the mark: 10, 11, 12 were committed.)
#[test]
fn a_failed_statement_after_rollback_to_savepoint_is_rolled_back() {
    let d = dir("review_stmt_above", 0);
    let t = d.join("t");
    create(&t, 2, 0).unwrap();
    let e = Engine::open(&d.join("eng"), 64, FlushPolicy::OncePerSecond).unwrap();
    let mut tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
    let mut h = TrxHandle::new();
    let pk = |i: u32| i.to_be_bytes().to_vec();
    let sec = |i: u32| vec![(vec![i as u8], false)];
    h.stmt_begin(); // LOCK TABLES
    let a = h.savepoint(); // SAVEPOINT a
    h.stmt_begin(); // INSERT ... (1),(2),(3)
    for i in 1..=3 {
        assert_eq!(tb.insert(&e, &mut h, &pk(i), b"r", &sec(i)).unwrap(), None);
    }
    h.stmt_begin(); // INSERT ... (4)
    assert_eq!(tb.insert(&e, &mut h, &pk(4), b"r", &sec(4)).unwrap(), None);
    h.rollback_to(&e, a).unwrap(); // ROLLBACK TO SAVEPOINT a (no mark moves)
    // SELECT g(): sub-statements only, no mark
    for i in 10..=12 {
        assert_eq!(tb.insert(&e, &mut h, &pk(i), b"r", &sec(i)).unwrap(), None);
    }
    assert_eq!(tb.insert(&e, &mut h, &pk(10), b"r", &sec(10)).unwrap(), Some(0));
    h.stmt_rollback(&e).unwrap(); // the failed statement
    h.commit(&e, true).unwrap(); // COMMIT
    assert_eq!(review_keys(&e, &mut tb), Vec::<u32>::new(), "the failed statement was committed");
    drop(tb);
    e.checkpoint_now().unwrap();
}

/// SKIP LOCKED: a statement skips the rows another transaction has locked in
/// a conflicting mode, at once and on every read of the statement (seek,
/// get, edge, next), and reads the others, which it then holds locked as it
/// asked; the next statement without SKIP LOCKED reads normally again.
#[test]
fn skip_locked_skips_rows_locked_by_another_transaction() {
    let d = dir("skip_locked", 0);
    let t = d.join("t");
    create(&t, 1, 0).unwrap();
    let e = Engine::open(&d.join("eng"), 64, FlushPolicy::OncePerSecond).unwrap();
    let mut writer_tb = BtreeTable::open(&e, &t, vec![true], false).unwrap();
    let mut reader_tb = BtreeTable::open(&e, &t, vec![true], false).unwrap();
    let (mut w, mut r) = (TrxHandle::new(), TrxHandle::new());
    for k in 1..=3u32 {
        assert_eq!(writer_tb.insert(&e, &mut w, &k.to_be_bytes(), b"row", &[] as &[(Vec<u8>, bool)]).unwrap(), None);
    }
    w.commit(&e, true).unwrap();
    // the writer holds rows 1 and 3 (uncommitted changes)
    writer_tb.begin_statement(&e, &mut w, true, false, StmtRead::Locking).unwrap();
    writer_tb.delete(&e, &mut w, &1u32.to_be_bytes(), &[] as &[(Vec<u8>, bool)]).unwrap();
    writer_tb.update(&e, &mut w, &3u32.to_be_bytes(), &3u32.to_be_bytes(), b"new", NO_SEC, NO_SEC).unwrap();
    let t0 = std::time::Instant::now();
    for exclusive in [true, false] {
        reader_tb.begin_statement(&e, &mut r, exclusive, true, StmtRead::Locking).unwrap();
        assert!(reader_tb.seek(&e, &mut r, 0, b"", Find::KeyOrNext).unwrap());
        assert_eq!(reader_tb.pk, 2u32.to_be_bytes());
        assert!(!reader_tb.next(false).unwrap());
        assert!(!reader_tb.get(&e, &mut r, &1u32.to_be_bytes()).unwrap());
        assert!(!reader_tb.get(&e, &mut r, &3u32.to_be_bytes()).unwrap());
        assert!(reader_tb.get(&e, &mut r, &2u32.to_be_bytes()).unwrap());
        assert!(reader_tb.edge(&e, &mut r, 0, true).unwrap());
        assert_eq!(reader_tb.pk, 2u32.to_be_bytes());
        r.commit(&e, true).unwrap();
    }
    assert!(t0.elapsed() < std::time::Duration::from_secs(5), "SKIP LOCKED waited");
    w.rollback(&e).unwrap();
    // free now: every row, and the lock is held to the reader's end
    reader_tb.begin_statement(&e, &mut r, true, true, StmtRead::Locking).unwrap();
    let mut n = 0;
    let mut more = reader_tb.seek(&e, &mut r, 0, b"", Find::KeyOrNext).unwrap();
    while more {
        n += 1;
        more = reader_tb.next(false).unwrap();
    }
    assert_eq!(n, 3);
    writer_tb.begin_statement(&e, &mut w, false, true, StmtRead::Locking).unwrap();
    assert!(!writer_tb.get(&e, &mut w, &2u32.to_be_bytes()).unwrap(), "the reader's exclusive lock is skipped");
    r.commit(&e, true).unwrap();
    w.commit(&e, true).unwrap();
    // a statement without SKIP LOCKED reads normally again
    reader_tb.begin_statement(&e, &mut r, false, false, StmtRead::Locking).unwrap();
    assert!(reader_tb.get(&e, &mut r, &2u32.to_be_bytes()).unwrap());
    r.commit(&e, true).unwrap();
}

/// Read views against a model: one writer changes rows (updates that move the
/// secondary key, deletes, inserts, inserts over deleted keys), committing or
/// rolling back, while readers with views of different moments scan the
/// clustered index, the secondary index with the rows, and the secondary index
/// alone (index-only); each reader sees exactly the committed state of its
/// view's moment. Purge runs in between; at the end, with no view left, it has
/// removed every delete mark.
#[test]
fn read_views_see_the_committed_state_of_their_moment() {
    use std::collections::BTreeMap;
    let d = dir("mvcc_model", 0);
    let t = d.join("t");
    create(&t, 2, 0).unwrap();
    let e = Engine::open(&d.join("eng"), 64, FlushPolicy::OncePerSecond).unwrap();
    let mut w = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
    assert!(w.mvcc);
    let mut hw = TrxHandle::new();
    let pk = |i: u32| i.to_be_bytes().to_vec();
    let row = |i: u32, v: u8| vec![v; 20 + (i % 7) as usize * 60];
    let sk = |v: u8| vec![v % 4];
    let sec = |v: u8| vec![(sk(v), false, vec![v])];
    let mut rng = crate::testutil::Rng::new(0x2545f4914f6cdd1d);
    let mut rnd = |n: u64| rng.below(n);
    let mut committed: BTreeMap<u32, u8> = BTreeMap::new();
    let mut pending: BTreeMap<u32, Option<u8>> = BTreeMap::new();
    // readers: handle, table, and the state their view saw (once made)
    let mut readers: Vec<(TrxHandle, BtreeTable, Option<BTreeMap<u32, u8>>)> = Vec::new();
    let check = |r: &mut (TrxHandle, BtreeTable, Option<BTreeMap<u32, u8>>), e: &Engine, committed: &BTreeMap<u32, u8>| {
        let (h, tb, seen) = r;
        tb.begin_statement(e, h, false, false, StmtRead::Snapshot).unwrap();
        tb.set_keys_only(false);
        let mut got = BTreeMap::new();
        let mut more = tb.seek(e, h, 0, &[], Find::KeyOrNext).unwrap();
        let model = seen.get_or_insert_with(|| committed.clone()).clone();
        while more {
            let i = u32::from_be_bytes(tb.pk[..].try_into().unwrap());
            assert_eq!(tb.row, row(i, tb.row[0]), "row {i}");
            assert!(got.insert(i, tb.row[0]).is_none());
            more = tb.next(false).unwrap();
        }
        assert_eq!(got, model, "clustered scan");
        for keys_only in [false, true] {
            tb.set_keys_only(keys_only);
            let mut got = BTreeMap::new();
            let mut more = tb.seek(e, h, 1, &[], Find::KeyOrNext).unwrap();
            while more {
                let i = u32::from_be_bytes(tb.pk[..].try_into().unwrap());
                let v = if keys_only { tb.unpack()[0] } else { tb.row[0] };
                assert_eq!(tb.key()[0], v % 4, "entry of {i}");
                assert!(got.insert(i, v).is_none(), "two entries for {i}");
                more = tb.next(false).unwrap();
            }
            assert_eq!(got, model, "secondary scan, index-only {keys_only}");
        }
        // point reads
        for (i, v) in model.iter().take(5) {
            assert!(tb.get(e, h, &pk(*i)).unwrap());
            assert_eq!(tb.row[0], *v);
        }
        h.stmt_end(false);
    };
    for round in 0..1200u32 {
        match rnd(10) {
            0..=4 => {
                let i = rnd(40) as u32;
                let v = (round % 250) as u8 + 1;
                let cur = pending.get(&i).copied().unwrap_or_else(|| committed.get(&i).copied());
                w.begin_statement(&e, &mut hw, true, false, StmtRead::Locking).unwrap();
                match cur {
                    None => {
                        assert_eq!(w.insert(&e, &mut hw, &pk(i), &row(i, v), &sec(v)).unwrap(), None);
                        pending.insert(i, Some(v));
                    }
                    Some(old) if rnd(3) == 0 => {
                        w.delete(&e, &mut hw, &pk(i), &sec(old)).unwrap();
                        pending.insert(i, None);
                    }
                    Some(old) => {
                        assert_eq!(w.update(&e, &mut hw, &pk(i), &pk(i), &row(i, v), &sec(old), &sec(v)).unwrap(), None);
                        pending.insert(i, Some(v));
                    }
                }
            }
            5 => {
                hw.commit(&e, true).unwrap();
                for (i, v) in std::mem::take(&mut pending) {
                    match v {
                        Some(v) => committed.insert(i, v),
                        None => committed.remove(&i),
                    };
                }
            }
            6 => {
                hw.rollback(&e).unwrap();
                pending.clear();
            }
            7 => {
                if readers.len() < 3 {
                    let tb = BtreeTable::open(&e, &t, vec![true, false], false).unwrap();
                    readers.push((TrxHandle::new(), tb, None));
                } else {
                    let (mut h, _, _) = readers.remove(rnd(3) as usize);
                    h.commit(&e, true).unwrap();
                }
            }
            8 => {
                purge::purge_now(&e).unwrap();
            }
            _ => {
                if !readers.is_empty() {
                    let n = rnd(readers.len() as u64) as usize;
                    check(&mut readers[n], &e, &committed);
                }
            }
        }
    }
    hw.commit(&e, true).unwrap();
    for (i, v) in std::mem::take(&mut pending) {
        match v {
            Some(v) => committed.insert(i, v),
            None => committed.remove(&i),
        };
    }
    for r in &mut readers {
        check(r, &e, &committed);
    }
    for (mut h, _, _) in readers.drain(..) {
        h.commit(&e, true).unwrap();
    }
    // every mark purged: the trees hold the live rows and entries only
    while purge::purge_now(&e).unwrap() > 0 {}
    assert_eq!(purge::pending(&e), 0);
    assert_eq!(w.rows(), committed.len() as u64);
    assert_eq!(w.shared.trees[1].read().rows(), committed.len() as u64);
    assert_eq!(e.history().len().0, 0);
    assert!(w.check().unwrap().is_empty());
    let mut r = (TrxHandle::new(), BtreeTable::open(&e, &t, vec![true, false], false).unwrap(), None);
    check(&mut r, &e, &committed);
}
