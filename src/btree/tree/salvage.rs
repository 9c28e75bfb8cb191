//! Salvage ([`salvage`]): what REPAIR TABLE reads of a damaged tree file. Every
//! page is read from the file on its own, trusting no link between pages (a
//! damaged internal page or sibling link loses nothing more): each leaf that
//! checks out gives its records, an overflowed value only if its whole chain
//! checks out, into a new tree file; each page that does not check out is
//! reported, for the caller to save its bytes. Uses the page format and the
//! tree's own (unlogged) insert for the new file.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::*;

/// A page that did not check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPage {
    pub no: u32,
    /// Its bytes in the file (a whole page, or less for a torn last page).
    pub len: u64,
    pub why: String,
}

/// What [`salvage`] found.
#[derive(Debug, Default)]
pub struct Salvaged {
    /// Records written to the new tree.
    pub kept: u64,
    /// Pages that did not check out (their records, if they held any, are lost
    /// from the tree; their bytes are still in the old file).
    pub bad_pages: Vec<BadPage>,
    /// Records of good leaves whose overflowed value could not be read whole.
    pub lost_values: u64,
    /// Keys found in two leaves (the copy in the page with the newer LSN is kept).
    pub duplicates: u64,
    /// Records the meta page says the tree held, if it checked out.
    pub rows_before: Option<u64>,
}

/// Bytes of a value on one overflow page.
const OVERFLOW_ROOM: usize = PAGE_SIZE - HEADER;

/// Reads the tree file `src` page by page and writes every record it can read
/// into a new tree file `dst` (created; format `format`, AUTO_INCREMENT counter
/// `auto_inc`), synced. `step` is called once per page read (KILL: it stops the
/// salvage with its error; `dst` is then removed). Nothing is written to `src`.
pub fn salvage(src: &Path, dst: &Path, format: u32, auto_inc: u64, step: &mut dyn FnMut() -> Result<()>) -> Result<Salvaged> {
    let r = salvage_into(src, dst, format, auto_inc, step);
    if r.is_err() {
        let _ = std::fs::remove_file(dst);
    }
    r
}

fn salvage_into(src: &Path, dst: &Path, format: u32, auto_inc: u64, step: &mut dyn FnMut() -> Result<()>) -> Result<Salvaged> {
    let name = src.display().to_string();
    let f = File::open(src).ctx(|| format!("cannot open '{name}'"))?;
    let len = f.metadata().ctx(|| format!("cannot stat '{name}'"))?.len();
    let pages = len.div_ceil(PAGE_SIZE as u64);
    let mut out = Salvaged::default();
    // 1. every page checked; the good leaves noted with their LSN
    let mut leaves: Vec<(u64, u32)> = Vec::new();
    let mut buf = Box::new([0u8; PAGE_SIZE]);
    for no in 0..pages {
        step()?;
        let no = no as u32;
        let have = read_page(&f, &name, no, len, &mut buf)?;
        if have < PAGE_SIZE {
            out.bad_pages.push(BadPage { no, len: have as u64, why: format!("torn: {have} of {PAGE_SIZE} bytes") });
            continue;
        }
        let p = Page::from_buf(buf.clone());
        if let Err(why) = p.verify(no) {
            out.bad_pages.push(BadPage { no, len: PAGE_SIZE as u64, why });
            continue;
        }
        match p.kind() {
            Kind::Leaf => leaves.push((p.lsn(), no)),
            Kind::Meta if no == META => {
                let b = p.bytes();
                if &b[HEADER..HEADER + 8] == MAGIC {
                    out.rows_before = meta_body(true, &b[..]).map(|(_, _, rows)| rows);
                }
            }
            _ => {}
        }
    }
    // 2. the records, newest leaf first (a key in two leaves keeps the newer copy)
    leaves.sort_unstable_by(|a, b| b.cmp(a));
    create_empty(dst, auto_inc, format)?;
    let mut t = BTree::open(dst, 256)?;
    let mut val = Vec::new();
    for &(_, no) in &leaves {
        step()?;
        read_page(&f, &name, no, len, &mut buf)?;
        let p = Page::from_buf(buf.clone());
        for i in 0..p.slots() {
            let key = p.key(i);
            let v: &[u8] = match p.val(i) {
                Val::Inline(v) => v,
                Val::Overflow { len: total, first } => {
                    if read_chain(&f, &name, len, first, total as usize, &mut val).is_err() {
                        out.lost_values += 1;
                        continue;
                    }
                    &val
                }
            };
            if t.insert(key, v)? {
                out.kept += 1;
            } else {
                out.duplicates += 1;
            }
        }
    }
    t.flush()?;
    drop(t);
    Ok(out)
}

/// Reads page `no` into `buf` (zero-filled past the file's end); returns how many
/// bytes the file had of it.
fn read_page(f: &File, name: &str, no: u32, len: u64, buf: &mut [u8; PAGE_SIZE]) -> Result<usize> {
    let at = no as u64 * PAGE_SIZE as u64;
    let have = (len - at).min(PAGE_SIZE as u64) as usize;
    buf.fill(0);
    f.read_exact_at(&mut buf[..have], at).ctx(|| format!("cannot read page {no} of '{name}'"))?;
    Ok(have)
}

/// An overflowed value, whole, from its chain (every page checked), or the
/// reason it cannot be read.
fn read_chain(f: &File, name: &str, len: u64, first: u32, total: usize, out: &mut Vec<u8>) -> std::result::Result<(), String> {
    out.clear();
    let mut no = first;
    let mut buf = Box::new([0u8; PAGE_SIZE]);
    let most = total.div_ceil(OVERFLOW_ROOM).max(1);
    for _ in 0..most {
        if no == NONE || (no as u64 + 1) * PAGE_SIZE as u64 > len {
            return Err(format!("overflow page {no} is missing"));
        }
        read_page(f, name, no, len, &mut buf).map_err(|e| e.to_string())?;
        let p = Page::from_buf(buf.clone());
        p.verify(no)?;
        if p.kind() != Kind::Overflow {
            return Err(format!("page {no} is not an overflow page"));
        }
        let take = (total - out.len()).min(OVERFLOW_ROOM);
        out.extend_from_slice(&p.bytes()[HEADER..HEADER + take]);
        if out.len() == total {
            return Ok(());
        }
        no = p.link_a();
    }
    Err("overflow chain too short".into())
}

/// A new, empty tree file of format `format`.
pub fn create_empty(path: &Path, auto_inc: u64, format: u32) -> Result<()> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .ctx(|| format!("cannot create '{}'", path.display()))?;
    let [mut meta, mut root] = BTree::empty_pages(auto_inc, format);
    meta.seal();
    root.seal();
    f.write_all_at(&meta.bytes()[..], 0).ctx(|| format!("cannot write '{}'", path.display()))?;
    f.write_all_at(&root.bytes()[..], PAGE_SIZE as u64).ctx(|| format!("cannot write '{}'", path.display()))?;
    f.sync_all().ctx(|| format!("cannot sync '{}'", path.display()))
}
