//! Measures how the ARCHIVE block codecs do on `ci/bench`'s data set: rebuilds the row
//! images `Field::pack()` makes for the bench table from its TSV, cuts them into blocks
//! of 1, 4 and 8 MiB, and reports bytes per row (per column where it can), compression
//! and decompression speed.
//!
//! `cargo run --release --example archive_probe -- build/bench/dataset/rows200000-*.tsv [rows] [modes]`
//!
//! modes: `enc` (encode speed of codecs 2 and 3, best of 3), `dec` (decode speed, best
//! of 7), or a comma-separated list of: `cur<level>` (codec 2), `new<level>` (codec 3,
//! checked to read back), `col<level>[s<strategy>]` (every column its own frame; zstd
//! strategy 5-9 = lazy2..btultra2), `tok<level>` (own frames, text as words).
use std::time::Instant;

use ha_rust::archive::format::RowSet;
use zstd::zstd_safe::{CParameter, Strategy};

fn dec_bin(s: &str, intg: usize, frac: usize) -> Vec<u8> {
    let neg = s.starts_with('-');
    let s = s.trim_start_matches('-');
    let (ip, fp) = s.split_once('.').unwrap_or((s, ""));
    let ip: u64 = ip.parse().unwrap();
    let mut fps = fp.to_string();
    while fps.len() < frac {
        fps.push('0');
    }
    let fpv: u64 = if frac > 0 { fps[..frac].parse().unwrap() } else { 0 };
    let d2b = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    let mut out = Vec::new();
    let ib = d2b[intg];
    out.extend_from_slice(&ip.to_be_bytes()[8 - ib..]);
    let fb = d2b[frac];
    out.extend_from_slice(&fpv.to_be_bytes()[8 - fb..]);
    if neg {
        for b in out.iter_mut() {
            *b ^= 0xff;
        }
    }
    out[0] ^= 0x80;
    out
}

fn row_image(line: &str) -> (u64, Vec<u8>, Vec<u32>) {
    let f: Vec<&str> = line.split('\t').collect();
    let mut img = vec![0xf8u8]; // null byte(s)
    let mut segs = vec![img.len() as u32];
    let push = |img: &mut Vec<u8>, segs: &mut Vec<u32>, b: &[u8]| {
        img.extend_from_slice(b);
        segs.push(img.len() as u32);
    };
    let id: i32 = f[0].parse().unwrap();
    push(&mut img, &mut segs, &id.to_le_bytes());
    push(&mut img, &mut segs, &f[1].parse::<i32>().unwrap().to_le_bytes());
    push(&mut img, &mut segs, &f[2].parse::<i32>().unwrap().to_le_bytes());
    push(&mut img, &mut segs, &f[3].parse::<i64>().unwrap().to_le_bytes());
    push(&mut img, &mut segs, &dec_bin(f[4], 8, 2));
    push(&mut img, &mut segs, &dec_bin(f[5], 4, 3));
    let d: Vec<u32> = f[6].split('-').map(|x| x.parse().unwrap()).collect();
    let v = d[0] * 512 + d[1] * 32 + d[2];
    push(&mut img, &mut segs, &v.to_le_bytes()[..3]);
    let (dd, tt) = f[7].split_once(' ').unwrap();
    let d: Vec<u64> = dd.split('-').map(|x| x.parse().unwrap()).collect();
    let t: Vec<u64> = tt.split(':').map(|x| x.parse().unwrap()).collect();
    let ymd = ((d[0] * 13 + d[1]) << 5) | d[2];
    let hms = (t[0] << 12) | (t[1] << 6) | t[2];
    let v = ((ymd << 17) | hms) + 0x80_0000_0000;
    push(&mut img, &mut segs, &v.to_be_bytes()[3..]);
    for (i, pl) in [(8usize, 1usize), (9, 1), (10, 2)] {
        let s = f[i].as_bytes();
        let mut b = (s.len() as u32).to_le_bytes()[..pl].to_vec();
        b.extend_from_slice(s);
        push(&mut img, &mut segs, &b);
    }
    (id as u64, img, segs)
}

fn zc(data: &[u8], level: i32, extra: &[CParameter]) -> usize {
    let mut c = zstd::bulk::Compressor::new(level).unwrap();
    for p in extra {
        c.set_parameter(*p).unwrap();
    }
    c.compress(data).unwrap().len()
}

/// The rows grouped as the engine seals them: blocks of about 1 MiB.
fn blocks(rows: &[(u64, Vec<u8>, Vec<u32>)]) -> Vec<RowSet> {
    let mut sets = vec![];
    let mut set = RowSet::default();
    for (k, img, segs) in rows {
        set.push(*k, img, segs);
        if set.raw_len() >= 1 << 20 {
            sets.push(std::mem::take(&mut set));
        }
    }
    sets
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let text = std::fs::read_to_string(&args[1]).unwrap();
    let limit: usize = args.get(2).map_or(usize::MAX, |s| s.parse().unwrap());
    let rows: Vec<_> = text.lines().take(limit).map(row_image).collect();
    let raw: usize = rows.iter().map(|r| r.1.len()).sum();
    eprintln!("{} rows, {} image bytes ({:.1}/row)", rows.len(), raw, raw as f64 / rows.len() as f64);
    let modes: Vec<String> = args.get(3).map_or(vec!["cur".into()], |s| s.split(',').map(|x| x.to_string()).collect());
    if modes[0] == "enc" {
        let sets = blocks(&rows);
        for (v, lvl) in [(1u32, 9), (2, 9), (2, 3), (1, 3)] {
            let mut best = f64::MAX;
            let mut size = 0;
            for _ in 0..3 {
                let t = Instant::now();
                size = 0;
                for s in &sets {
                    let mut o = Vec::new();
                    s.to_block(0, lvl, v, &mut o).unwrap();
                    size += o.len();
                }
                best = best.min(t.elapsed().as_secs_f64());
            }
            eprintln!("v{v} level {lvl}: encode {:.3} s for {} rows ({:.0} MB/s) {:.2} B/row", best, rows.len(), raw as f64 / best / 1e6, size as f64 / rows.len() as f64);
        }
        return;
    }
    if modes[0] == "dec" {
        let sets = blocks(&rows);
        for v in [1u32, 2] {
            let blocks: Vec<_> = sets.iter().map(|s| { let mut o = Vec::new(); let m = s.to_block(0, 9, v, &mut o).unwrap(); (m, o) }).collect();
            let mut best = f64::MAX;
            let mut back = RowSet::default();
            for _ in 0..7 {
                let t = Instant::now();
                for (m, o) in &blocks {
                    back.from_payload(m, &o[ha_rust::archive::format::BLOCK_HEADER_LEN..], &|| "x".into()).unwrap();
                }
                best = best.min(t.elapsed().as_secs_f64());
            }
            eprintln!("v{v}: decode {:.3} s for {} rows ({:.0} MB/s)", best, rows.len(), raw as f64 / best / 1e6);
        }
        return;
    }
    for block_raw in [1usize << 20, 4 << 20, 8 << 20] {
        // cut into blocks
        let mut sets = vec![];
        let mut set = RowSet::default();
        for (k, img, segs) in &rows {
            set.push(*k, img, segs);
            if set.raw_len() >= block_raw {
                sets.push(std::mem::take(&mut set));
            }
        }
        if !set.is_empty() {
            sets.push(set);
        }
        for mode in &modes {
            let t = Instant::now();
            let mut total = 0usize;
            let mut dec = 0f64;
            let mut percol = vec![0usize; 12];
            for s in &sets {
                match mode.as_str() {
                    m if m.starts_with("cur") || m.starts_with("new") => {
                        let lvl: i32 = m[3..].parse().unwrap_or(9);
                        let v = if m.starts_with("cur") { 1 } else { 2 };
                        let mut out = Vec::new();
                        let meta = s.to_block(0, lvl, v, &mut out).unwrap();
                        total += out.len();
                        let t2 = Instant::now();
                        let mut back = RowSet::default();
                        back.from_payload(&meta, &out[ha_rust::archive::format::BLOCK_HEADER_LEN..], &|| "x".into()).unwrap();
                        dec += t2.elapsed().as_secs_f64();
                        assert_eq!(back.data, s.data);
                        assert_eq!(back.segs, s.segs);
                        assert_eq!(back.keys, s.keys);
                    }
                    m if m.starts_with("col") => {
                        // col<level>[u]: each column its own frame; u = btultra2
                        let spec = &m[3..];
                        let (lv, strat) = match spec.split_once('s') {
                            Some((a, b)) => (a, b.parse::<u32>().ok()),
                            None => (spec, None),
                        };
                        let lvl: i32 = lv.parse().unwrap_or(9);
                        let mut extra = vec![];
                        if let Some(st) = strat {
                            let st = match st { 7 => Strategy::ZSTD_btopt, 8 => Strategy::ZSTD_btultra, 9 => Strategy::ZSTD_btultra2, 6 => Strategy::ZSTD_btlazy2, 5 => Strategy::ZSTD_lazy2, _ => Strategy::ZSTD_lazy };
                            extra.push(CParameter::Strategy(st));
                        }
                        for c in 0..s.nseg {
                            let mut col = Vec::new();
                            for i in 0..s.len() {
                                let row = s.row(i);
                                let sg = s.row_segs(i);
                                let st = if c == 0 { 0 } else { sg[c - 1] as usize };
                                col.extend_from_slice(&row[st..sg[c] as usize]);
                            }
                            let w = s.row_segs(0)[c] - if c == 0 { 0 } else { s.row_segs(0)[c - 1] };
                            let fixed = (0..s.len()).all(|i| {
                                let sg = s.row_segs(i);
                                sg[c] - if c == 0 { 0 } else { sg[c - 1] } == w
                            });
                            let data = if fixed {
                                let n = s.len();
                                let w = w as usize;
                                let mut o = vec![0u8; col.len()];
                                for b in 0..w {
                                    for i in 0..n {
                                        o[b * n + i] = col[i * w + b];
                                    }
                                }
                                o
                            } else {
                                col
                            };
                            let n = zc(&data, lvl, &extra);
                            percol[c] += n;
                            total += n;
                        }
                    }
                    m if m.starts_with("tok") => {
                        let lvl: i32 = m[3..].parse().unwrap_or(9);
                        for c in 0..s.nseg {
                            let mut vals: Vec<&[u8]> = Vec::new();
                            for i in 0..s.len() {
                                let row = s.row(i);
                                let sg = s.row_segs(i);
                                let st = if c == 0 { 0 } else { sg[c - 1] as usize };
                                vals.push(&row[st..sg[c] as usize]);
                            }
                            let w = vals[0].len();
                            let n = if vals.iter().all(|v| v.len() == w) {
                                let mut o = vec![0u8; w * vals.len()];
                                for b in 0..w { for (i, v) in vals.iter().enumerate() { o[b * vals.len() + i] = v[b]; } }
                                zc(&o, lvl, &[])
                            } else {
                                // strip prefix: 1 or 2 bytes
                                let pl = if vals.iter().all(|v| v.len() >= 1 && v[0] as usize == v.len() - 1) { 1 } else if vals.iter().all(|v| v.len() >= 2 && u16::from_le_bytes([v[0], v[1]]) as usize == v.len() - 2) { 2 } else { 0 };
                                let mut lens = Vec::new();
                                let mut dict: std::collections::HashMap<&[u8], u32> = Default::default();
                                let mut order: Vec<&[u8]> = vec![];
                                let mut ids: Vec<u32> = vec![];
                                let mut plain = Vec::new();
                                for v in &vals {
                                    let v = &v[pl..];
                                    lens.extend_from_slice(&(v.len() as u32).to_le_bytes());
                                    plain.extend_from_slice(v);
                                    let mut st = 0;
                                    for j in 0..v.len() {
                                        if v[j] == b' ' || j + 1 == v.len() {
                                            let t = &v[st..=j];
                                            let id = *dict.entry(t).or_insert_with(|| { order.push(t); (order.len() - 1) as u32 });
                                            ids.push(id);
                                            st = j + 1;
                                        }
                                    }
                                }
                                let n = vals.len();
                                let mut ls = vec![0u8; lens.len()];
                                for b in 0..4 { for i in 0..n { ls[b * n + i] = lens[i * 4 + b]; } }
                                let lc = zc(&ls, lvl, &[]);
                                let pc = zc(&plain, lvl, &[]);
                                // dictionary: lengths + bytes
                                let mut d = Vec::new();
                                for t in &order { d.push(t.len().min(255) as u8); }
                                for t in &order { d.extend_from_slice(t); }
                                let dc = zc(&d, lvl, &[]);
                                let m = ids.len();
                                let mut is = vec![0u8; m * 2];
                                for (i, id) in ids.iter().enumerate() { is[i] = *id as u8; is[m + i] = (*id >> 8) as u8; }
                                let ic = zc(&is, lvl, &[]);
                                if c == 11 || c == 10 { eprintln!("col {c} pl {pl} dict {} tokens {} ids {} plain {} -> lens {lc} plain {pc} dict {dc} ids {ic}", order.len(), m, is.len(), plain.len()); }
                                lc + pc.min(dc + ic)
                            };
                            percol[c] += n;
                            total += n;
                        }
                    }
                    _ => panic!("mode"),
                }
            }
            let dt = t.elapsed().as_secs_f64();
            eprintln!(
                "block {:>2} MiB {:>12}: {:>7.2} B/row  total {:>10}  {:.1} MB/s dec {:.0} MB/s cols {:?}",
                block_raw >> 20,
                mode,
                total as f64 / rows.len() as f64,
                total,
                raw as f64 / (dt - dec) / 1e6,
                raw as f64 / dec / 1e6,
                percol.iter().map(|&x| format!("{:.1}", x as f64 / rows.len() as f64)).collect::<Vec<_>>()
            );
        }
    }
}
