//! INFORMATION_SCHEMA.RUST_TABLES: the RUST tables found in the data directory,
//! with their layout, files, sizes and format version (docs/operations.md).
//!
//! A table is found by its data file beside its `.frm`: `<t>.rbt` (BTREE, with
//! `<t>#i<n>.rbt` per secondary index), `<t>.csv` (CSV, the table's own file),
//! `<t>.arz` (ARCHIVE, with `<t>.arp`). A CSV table attached to a file elsewhere has
//! no file in the data directory, and its definition is the server's: it is listed
//! once it has been opened since the server started. Only headers are read, never a
//! whole file; a file that cannot be read is listed with what could be learnt.
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::archive::format::{ARZ_MAGIC, FILE_HEADER_LEN, FileHeader};
use crate::btree::tree::BTree;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct TableEntry {
    pub schema: String,
    pub name: String,
    /// "BTREE", "CSV" or "ARCHIVE".
    pub layout: &'static str,
    /// The data file's format version (BTREE meta page, ARCHIVE file header); 0 for
    /// CSV (a plain CSV file has none).
    pub format_version: u32,
    /// BTREE: the row count its meta page holds (as of the last time the page was
    /// written: a checkpoint or a clean close); None where it is not kept.
    pub rows: Option<u64>,
    /// The main data file's bytes, and those of the others (secondary indexes,
    /// ARCHIVE's pending rows).
    pub data_bytes: u64,
    pub other_bytes: u64,
    /// Every file: `name bytes`, separated by `, `.
    pub files: String,
    /// CSV attached to an external file: its path and options.
    pub attached_file: Option<String>,
    pub csv_options: Option<String>,
}

fn size(p: &Path) -> u64 {
    fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn file_list(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| format!("{} {}", f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), size(f)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn archive_version(p: &Path) -> u32 {
    let mut b = [0u8; FILE_HEADER_LEN];
    let ok = File::open(p).and_then(|f| f.read_exact_at(&mut b, 0)).is_ok();
    if !ok {
        return 0;
    }
    FileHeader::decode(&b, ARZ_MAGIC, "").map(|h| h.version).unwrap_or(0)
}

fn csv_options_text(o: &crate::csv::table::CsvOptions) -> String {
    format!(
        "CSV_HEADER={} CSV_SEPARATOR='{}' CSV_WRITABLE={}",
        if o.header { "YES" } else { "NO" },
        (o.separator as char).escape_default(),
        if o.writable { "YES" } else { "NO" }
    )
}

/// The tables of schema directory `dir` named `schema`.
fn scan_schema(dir: &Path, schema: &str, out: &mut Vec<TableEntry>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut names: Vec<String> = rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let has = |n: &str| names.binary_search(&n.to_string()).is_ok();
    for n in &names {
        let (stem, layout) = if let Some(s) = n.strip_suffix(".rbt") {
            if s.contains("#i") {
                continue;
            }
            (s, "BTREE")
        } else if let Some(s) = n.strip_suffix(".csv") {
            (s, "CSV")
        } else if let Some(s) = n.strip_suffix(".arz") {
            (s, "ARCHIVE")
        } else {
            continue;
        };
        if !has(&format!("{stem}.frm")) {
            continue; // not a table's file (a user's, or one being renamed)
        }
        let main = dir.join(n);
        let mut files = vec![main.clone()];
        let mut e = TableEntry { schema: schema.to_string(), name: stem.to_string(), layout, ..Default::default() };
        match layout {
            "BTREE" => {
                let prefix = format!("{stem}#i");
                files.extend(names.iter().filter(|m| m.starts_with(&prefix) && m.ends_with(".rbt")).map(|m| dir.join(m)));
                if let Some((version, rows)) = BTree::meta_of_file(&main) {
                    (e.format_version, e.rows) = (version, Some(rows));
                }
            }
            "ARCHIVE" => {
                let arp = dir.join(format!("{stem}.arp"));
                if arp.exists() {
                    files.push(arp);
                }
                e.format_version = archive_version(&main);
            }
            _ => {}
        }
        e.data_bytes = size(&main);
        e.other_bytes = files[1..].iter().map(|f| size(f)).sum();
        e.files = file_list(&files);
        out.push(e);
    }
}

/// Every RUST table under the data directory `datadir` (the server's working
/// directory is `.`), plus the open CSV tables attached to files elsewhere.
pub fn tables(datadir: &Path) -> Vec<TableEntry> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(datadir) {
        let mut dirs: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
        dirs.sort();
        for d in dirs {
            let schema = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            scan_schema(&d, &schema, &mut out);
        }
    }
    for o in crate::csv::table::open_tables() {
        let own = o.table_path.with_extension("csv");
        match &o.external {
            None => {
                // listed above from its file; add its options
                let name = o.table_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                if let Some(e) = out.iter_mut().find(|e| e.layout == "CSV" && e.name == name && own.exists()) {
                    e.csv_options = Some(csv_options_text(&o));
                }
            }
            Some(ext) => {
                let schema = o
                    .table_path
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let name = o.table_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                out.push(TableEntry {
                    schema,
                    name,
                    layout: "CSV",
                    data_bytes: size(ext),
                    files: file_list(std::slice::from_ref(ext)),
                    attached_file: Some(ext.display().to_string()),
                    csv_options: Some(csv_options_text(&o)),
                    ..Default::default()
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tables_by_their_files_beside_a_frm() {
        let d = crate::testutil::dir("inventory", 0);
        let db = d.join("db");
        fs::create_dir_all(&db).unwrap();
        for f in ["t.frm", "t.rbt", "t#i1.rbt", "c.frm", "c.csv", "a.frm", "a.arz", "a.arp", "stray.csv", "x.frm"] {
            fs::write(db.join(f), b"0123456789").unwrap();
        }
        let t = tables(&d);
        let names: Vec<(&str, &str)> = t.iter().map(|e| (e.name.as_str(), e.layout)).collect();
        assert_eq!(names, vec![("a", "ARCHIVE"), ("c", "CSV"), ("t", "BTREE")]);
        let bt = &t[2];
        assert_eq!(bt.files, "t.rbt 10, t#i1.rbt 10");
        assert_eq!((bt.data_bytes, bt.other_bytes), (10, 10));
        // not a real meta page: no version, no rows (never a panic on a short file)
        assert_eq!((bt.format_version, bt.rows), (0, None));
        assert_eq!(t[0].files, "a.arz 10, a.arp 10");
    }
}
