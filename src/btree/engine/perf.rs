//! A write-path workload for profiling without a server (not a test of
//! anything): `BT_ROWS=20000 cargo test --release perf_workload -- --ignored
//! --nocapture`, or the test binary under `valgrind --tool=callgrind`.
use super::*;
use crate::btree::table::{self, BtreeTable, TrxHandle};
use crate::testutil::dir;

fn row(i: u32) -> Vec<u8> {
    // about the bench's rows: fixed columns, then text of 50..350 bytes
    let len = 60 + (i.wrapping_mul(2_654_435_761) % 300) as usize;
    (0..len).map(|j| (j as u32 ^ i) as u8 | 0x20).collect()
}

/// A read-path workload (not a test of anything): sysbench oltp_read_only's
/// engine calls (10 point reads and 4 ranges of 100 rows per transaction) on
/// one table from 1 and 2 threads: `BT_ROWS=100000 cargo test --release
/// perf_read_only -- --ignored --nocapture`.
#[test]
#[ignore]
fn perf_read_only() {
    use crate::btree::table::Find;
    let rows: u32 = std::env::var("BT_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let d = dir("perf-ro", 0);
    let e = Engine::open(&d.join("eng"), 32768, FlushPolicy::OncePerSecond).unwrap();
    let tp = d.join("t");
    table::create(&tp, 1, 0).unwrap();
    {
        let mut t = BtreeTable::open(&e, &tp, vec![true], false).unwrap();
        let mut h = TrxHandle::new();
        for i in 1..=rows {
            t.insert(&e, &mut h, &i.to_be_bytes(), &row(i), table::NO_SEC).unwrap();
        }
        h.commit(&e, true).unwrap();
        drop(t);
    }
    for threads in [1u32, 2] {
        let done = AtomicU64::new(0);
        let secs = 3;
        std::thread::scope(|s| {
            for th in 0..threads {
                let (e, tp, done) = (&e, &tp, &done);
                s.spawn(move || {
                    let mut t = BtreeTable::open(e, tp, vec![true], false).unwrap();
                    let mut x = 12345u32 + th * 777;
                    let mut rnd = || {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        1 + x % (rows - 200)
                    };
                    let t0 = Instant::now();
                    let mut n = 0;
                    while t0.elapsed().as_secs() < secs {
                        let mut h = TrxHandle::new();
                        for _ in 0..10 {
                            assert!(t.get(e, &mut h, &rnd().to_be_bytes()).unwrap());
                        }
                        for _ in 0..4 {
                            let from = rnd();
                            let mut more = t.seek(e, &mut h, 0, &from.to_be_bytes(), Find::KeyOrNext).unwrap();
                            let mut got = 0;
                            while more && got < 100 {
                                got += 1;
                                more = t.next(false).unwrap();
                            }
                            assert_eq!(got, 100);
                        }
                        h.commit(e, true).unwrap();
                        n += 1;
                    }
                    done.fetch_add(n, Ordering::Relaxed);
                });
            }
        });
        eprintln!("{threads} thread(s): {} transactions/s", done.load(Ordering::Relaxed) / secs);
    }
    let _ = fs::remove_dir_all(&d);
}

#[test]
#[ignore]
fn perf_workload() {
    let rows: u32 = std::env::var("BT_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let d = dir("perf", 0);
    let e = Engine::open(&d.join("eng"), 32768, FlushPolicy::EveryCommit).unwrap();
    let tp = d.join("t");
    table::create(&tp, 1, 0).unwrap();
    let mut t = BtreeTable::open(&e, &tp, vec![true], false).unwrap();
    let mut h = TrxHandle::new();
    let t0 = Instant::now();
    for i in 1..=rows {
        h.stmt_begin();
        assert!(t.insert(&e, &mut h, &i.to_be_bytes(), &row(i), table::NO_SEC).unwrap().is_none());
    }
    let t1 = Instant::now();
    h.commit(&e, true).unwrap();
    let commit = t1.elapsed();
    let load = t0.elapsed();
    let log_load = e.log().size();
    let t0 = Instant::now();
    for i in (10..=rows).step_by(10) {
        let mut r = row(i);
        r[0] ^= 1;
        t.update(&e, &mut h, &i.to_be_bytes(), &i.to_be_bytes(), &r, table::NO_SEC, table::NO_SEC).unwrap();
    }
    let t1 = Instant::now();
    h.commit(&e, true).unwrap();
    let ucommit = t1.elapsed();
    let upd = t0.elapsed();
    let log_upd = e.log().size();
    let t0 = Instant::now();
    for i in (5..=rows).step_by(10) {
        t.delete(&e, &mut h, &i.to_be_bytes(), table::NO_SEC).unwrap();
    }
    h.commit(&e, true).unwrap();
    let del = t0.elapsed();
    let (data, _) = t.data_length();
    eprintln!("rows {rows}: load {load:?} (its commit {commit:?}) update {upd:?} (its commit {ucommit:?}) delete {del:?}; {} pages ({} MB); log bytes: load {log_load}, update {}, delete {}",
        data / PAGE_SIZE as u64, data >> 20, log_upd.wrapping_sub(log_load) as i64, e.log().size().wrapping_sub(log_upd) as i64);
    drop(t);
    let _ = fs::remove_dir_all(&d);
}
