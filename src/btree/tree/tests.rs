use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

/// A tree file's path in a folder of its own (removed with the folder).
fn tmp(name: &str) -> (crate::testutil::TempDir, std::path::PathBuf) {
    let d = crate::testutil::dir(&format!("bt-{name}"), 0);
    let p = d.join("t.rbt");
    (d, p)
}

fn scan(t: &mut BTree, desc: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut c = Cursor::default();
    t.seek(&mut c, Bound::Unbounded, desc).unwrap();
    let (mut k, mut v) = (vec![], vec![]);
    let mut out = vec![];
    while t.next(&mut c, desc, &mut k, &mut v).unwrap() {
        out.push((k.clone(), v.clone()));
    }
    out
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u16, usize),
    Delete(u16),
    Reopen,
}

fn key(k: u16) -> Vec<u8> {
    // keys of different lengths, sharing prefixes
    let mut v = format!("key-{:05}", k).into_bytes();
    v.extend(std::iter::repeat_n(b'x', (k % 7) as usize * 30));
    v
}

fn val(k: u16, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u16 ^ k) as u8).collect()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u16..3000, prop_oneof![3 => 0usize..200, 1 => 200usize..3000, 1 => 3000usize..40_000]).prop_map(|(k, l)| Op::Insert(k, l)),
        4 => (0u16..3000).prop_map(Op::Delete),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Long random operation sequences against a model, through splits,
    /// merges, overflow values, a tiny pool (constant eviction) and reopens:
    /// the tree always holds exactly the model's contents, in order both ways,
    /// and passes check().
    #[test]
    fn matches_a_model(ops in prop::collection::vec(op(), 1..1500)) {
        let (_dir, path) = tmp("model");
        BTree::create(&path).unwrap();
        let mut t = BTree::open(&path, 16).unwrap();
        let mut model = BTreeMap::new();
        for o in &ops {
            match *o {
                Op::Insert(k, l) => {
                    let fresh = t.insert(&key(k), &val(k, l)).unwrap();
                    prop_assert_eq!(fresh, !model.contains_key(&key(k)));
                    model.entry(key(k)).or_insert(val(k, l));
                }
                Op::Delete(k) => {
                    prop_assert_eq!(t.delete(&key(k)).unwrap(), model.remove(&key(k)).is_some());
                }
                Op::Reopen => {
                    t.flush().unwrap();
                    drop(t);
                    t = BTree::open(&path, 16).unwrap();
                }
            }
        }
        t.check().unwrap();
        let want: Vec<_> = model.clone().into_iter().collect();
        prop_assert_eq!(scan(&mut t, false), want.clone());
        let mut rev = want.clone();
        rev.reverse();
        prop_assert_eq!(scan(&mut t, true), rev);
        let mut v = vec![];
        for (k, w) in model.iter().take(50) {
            prop_assert!(t.get(k, &mut v).unwrap());
            prop_assert_eq!(&v, w);
        }
        // delete everything: the root collapses back to one leaf and every
        // other page is on the free list, to be reused
        for k in model.keys() {
            prop_assert!(t.delete(k).unwrap());
        }
        t.check().unwrap();
        prop_assert_eq!(t.rows(), 0);
        let pages = t.pool().pages;
        prop_assert_eq!(t.free_pages().unwrap() + 2, pages);
        for (k, w) in &model {
            t.insert(k, w).unwrap();
        }
        t.check().unwrap();
        prop_assert_eq!(scan(&mut t, false), want);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    /// A cursor stepping while the tree changes under it (the scan of an UPDATE
    /// or a DELETE, inserts ahead of it) returns at each step the next key of
    /// the tree as it is then: whether its place is found again within its leaf
    /// or, when the leaf was split, merged, emptied or freed, from the root.
    #[test]
    fn a_cursor_steps_right_through_changes(
        desc in any::<bool>(),
        changes in prop::collection::vec((0u8..5, 0u16..3000, prop_oneof![3 => 0usize..300, 1 => 300usize..5000]), 1..300),
    ) {
        let (_dir, path) = tmp(&format!("cursor-{}", desc as u8));
        BTree::create(&path).unwrap();
        let mut t = BTree::open(&path, 64).unwrap();
        let mut model = BTreeMap::new();
        for k in (0u16..3000).step_by(3) {
            let v = val(k, 40 + (k as usize % 5) * 50);
            t.insert(&key(k), &v).unwrap();
            model.insert(key(k), v);
        }
        let mut c = Cursor::default();
        t.seek(&mut c, Bound::Unbounded, desc).unwrap();
        let (mut k, mut v) = (vec![], vec![]);
        let mut last: Option<Vec<u8>> = None;
        for &(what, at, len) in changes.iter().chain(std::iter::repeat(&(9, 0, 0))) {
            let want = match (&last, desc) {
                (None, false) => model.iter().next(),
                (None, true) => model.iter().next_back(),
                (Some(l), false) => model.range::<Vec<u8>, _>((Bound::Excluded(l), Bound::Unbounded)).next(),
                (Some(l), true) => model.range::<Vec<u8>, _>((Bound::Unbounded, Bound::Excluded(l))).next_back(),
            };
            let got = t.next(&mut c, desc, &mut k, &mut v).unwrap();
            prop_assert_eq!(got.then(|| (k.clone(), v.clone())), want.map(|(a, b)| (a.clone(), b.clone())));
            if !got {
                break;
            }
            last = Some(k.clone());
            match what {
                // the row just read: deleted, or given a new (maybe much longer) value
                0 => {
                    t.delete(&k).unwrap();
                    model.remove(&k);
                }
                1 => {
                    t.update(&k, &val(at, len)).unwrap();
                    model.insert(k.clone(), val(at, len));
                }
                // elsewhere: a new key, or a run of keys deleted (leaves merge)
                2 => {
                    if t.insert(&key(at), &val(at, len)).unwrap() {
                        model.insert(key(at), val(at, len));
                    }
                }
                3 => {
                    for d in at..at.saturating_add(60).min(3000) {
                        t.delete(&key(d)).unwrap();
                        model.remove(&key(d));
                    }
                }
                _ => {}
            }
        }
        t.check().unwrap();
    }
}

#[test]
fn range_seeks_in_both_directions() {
    let (_dir, path) = tmp("range");
    BTree::create(&path).unwrap();
    let mut t = BTree::open(&path, 64).unwrap();
    for i in (0u32..20_000).step_by(2) {
        t.insert(&i.to_be_bytes(), &[7u8; 40]).unwrap();
    }
    let (mut k, mut v) = (vec![], vec![]);
    let mut c = Cursor::default();
    t.seek(&mut c, Bound::Included(&1001u32.to_be_bytes()), false).unwrap();
    assert!(t.next(&mut c, false, &mut k, &mut v).unwrap());
    assert_eq!(k, 1002u32.to_be_bytes());
    t.seek(&mut c, Bound::Excluded(&1002u32.to_be_bytes()), false).unwrap();
    assert!(t.next(&mut c, false, &mut k, &mut v).unwrap());
    assert_eq!(k, 1004u32.to_be_bytes());
    t.seek(&mut c, Bound::Included(&1001u32.to_be_bytes()), true).unwrap();
    assert!(t.next(&mut c, true, &mut k, &mut v).unwrap());
    assert_eq!(k, 1000u32.to_be_bytes());
    t.seek(&mut c, Bound::Excluded(&1000u32.to_be_bytes()), true).unwrap();
    assert!(t.next(&mut c, true, &mut k, &mut v).unwrap());
    assert_eq!(k, 998u32.to_be_bytes());
    // a cursor survives changes made between its steps
    t.seek(&mut c, Bound::Included(&0u32.to_be_bytes()), false).unwrap();
    assert!(t.next(&mut c, false, &mut k, &mut v).unwrap());
    for i in (2u32..400).step_by(2) {
        t.delete(&i.to_be_bytes()).unwrap();
    }
    assert!(t.next(&mut c, false, &mut k, &mut v).unwrap());
    assert_eq!(k, 400u32.to_be_bytes());
    t.check().unwrap();
}

#[test]
fn a_corrupt_page_is_reported_with_its_number() {
    let (_dir, path) = tmp("corrupt");
    BTree::create(&path).unwrap();
    let mut t = BTree::open(&path, 64).unwrap();
    for i in 0u32..5000 {
        t.insert(&i.to_be_bytes(), &[1u8; 100]).unwrap();
    }
    t.flush().unwrap();
    drop(t);
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(b"torn!", 3 * PAGE_SIZE as u64 + 5000).unwrap();
    let mut t = BTree::open(&path, 64).unwrap();
    let e = t.check().unwrap_err().to_string();
    assert!(e.contains("page 3") && e.contains("checksum"), "{e}");
}

#[test]
fn a_table_ten_times_the_pool_works() {
    let (_dir, path) = tmp("big");
    BTree::create(&path).unwrap();
    let mut t = BTree::open(&path, 32).unwrap(); // 512 KiB of pool
    for i in 0u32..60_000 {
        let k = (i.wrapping_mul(2_654_435_761)).to_be_bytes();
        assert!(t.insert(&k, &[i as u8; 80]).unwrap());
    }
    assert!(t.pool().pages as usize > 10 * 32);
    assert!(t.pool().cached() <= 32);
    t.check().unwrap();
    let mut v = vec![];
    assert!(t.get(&(12345u32.wrapping_mul(2_654_435_761)).to_be_bytes(), &mut v).unwrap());
    assert_eq!(v, vec![12345u32 as u8; 80]);
    assert_eq!(scan(&mut t, false).len(), 60_000);
}

/// A file whose last pages were cut off while the server was down (format 4 on:
/// the meta page keeps the page count) refuses every change: a new page would
/// take the number of a lost one that a parent still points at, and the tree
/// would then be wrong in a new way with the change acknowledged. Reads of the
/// pages still there work; CHECK names the cut; an older format (no count kept)
/// opens as before.
#[test]
fn a_file_cut_short_refuses_changes_and_check_names_the_cut() {
    for format in [3, FORMAT_VERSION] {
        let (_dir, path) = tmp(&format!("cut{format}"));
        BTree::create_with(&path, 0, format).unwrap();
        let mut t = BTree::open(&path, 64).unwrap();
        for i in 0u32..5000 {
            t.insert(&i.to_be_bytes(), &[1u8; 100]).unwrap();
        }
        t.flush().unwrap();
        let pages = t.pool().pages;
        drop(t);
        // the count kept is the file's, before the cut
        let mut t = BTree::open(&path, 64).unwrap();
        t.check().unwrap();
        assert!(t.insert(&9_000_000u32.to_be_bytes(), b"x").unwrap());
        t.flush().unwrap();
        drop(t);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len((pages as u64 - 3) * PAGE_SIZE as u64).unwrap();
        let mut t = BTree::open(&path, 64).unwrap();
        let mut v = vec![];
        if format < 4 {
            // no count kept: the cut is found only where a read reaches it
            assert!(t.check().is_err());
            continue;
        }
        let e = t.insert(&0u32.wrapping_sub(1).to_be_bytes(), b"y").unwrap_err().to_string();
        assert!(e.contains("its end was cut off") && e.contains(&format!("counts {pages}")), "{e}");
        let e = t.delete(&7u32.to_be_bytes()).unwrap_err().to_string();
        assert!(e.contains("cut off"), "{e}");
        let e = t.check().unwrap_err().to_string();
        assert!(e.contains(&format!("holds {} pages but its meta page counts {pages}", pages - 3)), "{e}");
        // the first leaves are still there
        assert!(t.get(&0u32.to_be_bytes(), &mut v).unwrap());
        assert_eq!(t.rows(), 5001);
    }
}

/// The page count kept in the meta page follows appends, TRUNCATE's reset and
/// the free list's reuse: a file written normally never looks cut short.
#[test]
fn the_kept_page_count_follows_the_file() {
    let (_dir, path) = tmp("count");
    BTree::create(&path).unwrap();
    let mut t = BTree::open(&path, 16).unwrap();
    for round in 0..3u32 {
        for i in 0u32..4000 {
            t.insert(&(i * 7 + round).to_be_bytes(), &[2u8; 200]).unwrap();
        }
        for i in (0u32..4000).step_by(2) {
            t.delete(&(i * 7 + round).to_be_bytes()).unwrap();
        }
        t.flush().unwrap();
        let pages = t.pool().pages;
        drop(t);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), pages as u64 * PAGE_SIZE as u64);
        t = BTree::open(&path, 16).unwrap();
        t.check().unwrap();
        let m = t.pool.get(META).unwrap().bytes();
        assert_eq!(u32::from_le_bytes(m[PAGES_AT..PAGES_AT + 4].try_into().unwrap()), pages);
    }
}

/// A cursor keeps its place while the tree changes between its steps: keys
/// deleted (leaves merged, the root collapsing), inserted (leaves split) and
/// updated around it. A scan returns, in order, every key that was there for
/// the whole scan, and never one twice (locking reads step beside writers
/// and purge's removals).
#[test]
fn a_cursor_keeps_its_place_while_the_tree_changes() {
    let (_dir, path) = tmp("cursor_churn");
    BTree::create(&path).unwrap();
    let mut t = BTree::open(&path, 256).unwrap();
    let mut rng = crate::testutil::Rng::new(7);
    let k = |i: u32| i.to_be_bytes().to_vec();
    for round in 0..200u32 {
        for i in 0..2000u32 {
            if rng.below(3) != 0 {
                t.insert(&k(i), &[round as u8; 60]).unwrap();
            }
        }
        for desc in [false, true] {
            // keys present from the start of the scan to its end
            let mut c = Cursor::default();
            t.seek(&mut c, Bound::Unbounded, desc).unwrap();
            let mut present: std::collections::BTreeSet<u32> = scan(&mut t, false).iter().map(|(kk, _)| u32::from_be_bytes(kk[..4].try_into().unwrap())).collect();
            let mut stable = present.clone();
            let (mut kk, mut v) = (vec![], vec![]);
            let mut seen = vec![];
            while t.next(&mut c, desc, &mut kk, &mut v).unwrap() {
                seen.push(u32::from_be_bytes(kk[..4].try_into().unwrap()));
                // churn between steps
                for _ in 0..rng.below(6) {
                    let x = rng.below(2000) as u32;
                    match rng.below(3) {
                        0 => {
                            if t.delete(&k(x)).unwrap() {
                                present.remove(&x);
                                stable.remove(&x);
                            }
                        }
                        1 => {
                            if t.insert(&k(x), &vec![1u8; 20 + rng.below(200) as usize]).unwrap() {
                                present.insert(x);
                            }
                        }
                        _ => {
                            t.update(&k(x), &vec![2u8; 20 + rng.below(300) as usize]).unwrap();
                        }
                    }
                }
            }
            let mut sorted = seen.clone();
            sorted.sort_unstable();
            if desc {
                sorted.reverse();
            }
            assert_eq!(seen, sorted, "round {round} desc {desc}: out of order");
            let mut dedup = sorted.clone();
            dedup.dedup();
            assert_eq!(dedup.len(), seen.len(), "round {round} desc {desc}: a key twice");
            let got: std::collections::BTreeSet<u32> = seen.into_iter().collect();
            let missed: Vec<_> = stable.difference(&got).collect();
            assert!(missed.is_empty(), "round {round} desc {desc}: missed {missed:?}");
        }
        // thin out for the next round (merges)
        for i in 0..2000u32 {
            if rng.below(4) != 0 {
                t.delete(&k(i)).unwrap();
            }
        }
    }
}
