//! The one boundary between the server's C++ and the engine: a `cxx` bridge.
//!
//! Only bytes and plain numbers cross it. Every function returns a handler error code
//! (0 for success) and never unwinds: each call runs under [`guard`], which turns a
//! Rust panic into `HA_ERR_RUST_PANIC` with a message, and marks the handle broken so
//! it is not used in a half-changed state (the server reopens it after FLUSH TABLES).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use crate::consts;
use crate::csv::table::{self as csv, CheckStep, CsvOptions, CsvTable};
use crate::error::{Error, Result};

#[cxx::bridge(namespace = "ha_rust_ffi")]
pub mod bridge {
    /// What `SHOW TABLE STATUS` and the optimizer get.
    struct Stats {
        rows: u64,
        data_length: u64,
        exact: bool,
    }

    /// What CHECK/REPAIR found.
    struct CheckSummary {
        rows: u64,
        damaged: u64,
        torn_tail: bool,
    }

    extern "Rust" {
        type Table;

        /// Layouts, in the order of the LAYOUT table option's values.
        fn layout_supported(layout: u8) -> bool;

        fn table_create(
            path: &[u8],
            layout: u8,
            external: &[u8],
            header: bool,
            separator: u8,
            writable: bool,
            columns: u32,
            header_image: &[u8],
            err: &mut String,
        ) -> i32;
        fn table_delete(path: &[u8], err: &mut String) -> i32;
        fn table_rename(from: &[u8], to: &[u8], err: &mut String) -> i32;
        fn table_open(
            path: &[u8],
            layout: u8,
            external: &[u8],
            header: bool,
            separator: u8,
            writable: bool,
            columns: u32,
        ) -> Box<Table>;

        /// The error of the last failed call on this handle (or of the open).
        fn last_error(self: &Table) -> &str;
        fn open_error(self: &Table) -> i32;

        fn scan_start(self: &mut Table) -> i32;
        /// 0 with a row ready, HA_ERR_END_OF_FILE at the end, or an error.
        fn scan_next(self: &mut Table) -> i32;
        fn scan_end(self: &mut Table) -> i32;
        fn read_at(self: &mut Table, pos: u64) -> i32;
        fn position(self: &Table) -> u64;
        fn current_line(self: &Table) -> u64;
        /// The current row's decoded text, and `[offset, length]` pairs into it
        /// (length `u32::MAX` for NULL).
        fn record_data(self: &Table) -> &[u8];
        fn record_spans(self: &Table) -> &[u32];

        fn insert(self: &mut Table, image: &[u8]) -> i32;
        fn update_current(self: &mut Table, image: &[u8]) -> i32;
        fn delete_current(self: &mut Table) -> i32;
        fn set_bulk(self: &mut Table, on: bool) -> i32;
        fn flush(self: &mut Table) -> i32;
        fn truncate(self: &mut Table) -> i32;

        fn stats(self: &Table) -> Stats;
        fn set_exact_rows(self: &Table, rows: u64);
        /// Moves one pending warning into `out`; false when there is none.
        fn take_warning(self: &mut Table, out: &mut String) -> bool;

        fn check_start(self: &mut Table) -> i32;
        /// 0: a row to judge is current; 1: a damaged record (its text in `out`);
        /// HA_ERR_END_OF_FILE at the end; else an error.
        fn check_next(self: &mut Table, out: &mut String) -> i32;
        fn check_reject(self: &mut Table, why: &str, out: &mut String);
        fn check_finish(self: &mut Table, repair: bool, out: &mut CheckSummary) -> i32;
    }
}

use bridge::{CheckSummary, Stats};

/// Runs `f`, turning an error or a panic into a code and a message.
fn guard(err: &mut String, f: impl FnOnce() -> Result<()>) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            *err = e.to_string();
            e.code()
        }
        Err(p) => {
            let e = Error::Panic(panic_text(&p));
            *err = e.to_string();
            e.code()
        }
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}

fn path(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

/// The values of the LAYOUT option, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Btree = 0,
    Csv = 1,
    Archive = 2,
}

fn layout(v: u8) -> Result<Layout> {
    match v {
        1 => Ok(Layout::Csv),
        0 => Err(Error::Unsupported(
            "LAYOUT=BTREE is not available yet in this build of the RUST engine; use LAYOUT=CSV".into(),
        )),
        2 => Err(Error::Unsupported(
            "LAYOUT=ARCHIVE is not available yet in this build of the RUST engine; use LAYOUT=CSV".into(),
        )),
        _ => Err(Error::Unsupported(format!("unknown LAYOUT value {v}"))),
    }
}

fn layout_supported(l: u8) -> bool {
    layout(l).is_ok()
}

#[allow(clippy::too_many_arguments)]
fn csv_options(path_b: &[u8], external: &[u8], header: bool, sep: u8, writable: bool, columns: u32) -> CsvOptions {
    CsvOptions {
        table_path: path(path_b),
        external: (!external.is_empty()).then(|| path(external)),
        header,
        separator: sep,
        writable,
        columns: columns as usize,
    }
}

#[allow(clippy::too_many_arguments)]
fn table_create(
    path_b: &[u8],
    l: u8,
    external: &[u8],
    header: bool,
    sep: u8,
    writable: bool,
    columns: u32,
    header_image: &[u8],
    err: &mut String,
) -> i32 {
    guard(err, || {
        let _: Layout = layout(l)?;
        let opts = csv_options(path_b, external, header, sep, writable, columns);
        let mut line = Vec::new();
        if header && opts.external.is_none() {
            csv::encode_image(&mut line, header_image, sep, columns as usize)?;
        }
        csv::create(&opts, &line)
    })
}

fn table_delete(p: &[u8], err: &mut String) -> i32 {
    guard(err, || csv::delete(&path(p)))
}

fn table_rename(from: &[u8], to: &[u8], err: &mut String) -> i32 {
    guard(err, || csv::rename(&path(from), &path(to)))
}

/// An open table as C++ holds it.
pub struct Table {
    inner: Option<CsvTable>,
    open_error: i32,
    error: String,
}

fn table_open(p: &[u8], l: u8, external: &[u8], header: bool, sep: u8, writable: bool, columns: u32) -> Box<Table> {
    let mut t = Box::new(Table { inner: None, open_error: 0, error: String::new() });
    let mut inner = None;
    t.open_error = guard(&mut t.error, || {
        layout(l)?;
        inner = Some(CsvTable::open(&csv_options(p, external, header, sep, writable, columns))?);
        Ok(())
    });
    t.inner = inner;
    t
}

impl Table {
    /// Runs `f` on the open table under [`guard`]; a panic leaves the handle closed.
    fn run(&mut self, f: impl FnOnce(&mut CsvTable) -> Result<()>) -> i32 {
        let Some(inner) = self.inner.as_mut() else {
            self.error = "this RUST table handle is closed after an earlier internal error; FLUSH TABLES reopens it".into();
            return crate::error::HA_ERR_RUST_PANIC;
        };
        let mut panicked = false;
        let code = guard(&mut self.error, || {
            let r = catch_unwind(AssertUnwindSafe(|| f(inner)));
            match r {
                Ok(r) => r,
                Err(p) => {
                    panicked = true;
                    std::panic::resume_unwind(p)
                }
            }
        });
        if panicked {
            // Dropping may run more of the broken state; never let that unwind either.
            if let Some(t) = self.inner.take() {
                let _ = catch_unwind(AssertUnwindSafe(|| std::mem::forget(t)));
            }
        }
        code
    }

    fn last_error(&self) -> &str {
        &self.error
    }
    fn open_error(&self) -> i32 {
        self.open_error
    }

    fn scan_start(&mut self) -> i32 {
        self.run(|t| t.scan_start())
    }
    fn scan_next(&mut self) -> i32 {
        let mut more = false;
        let code = self.run(|t| {
            more = t.scan_next()?;
            Ok(())
        });
        if code == 0 && !more { consts::HA_ERR_END_OF_FILE as i32 } else { code }
    }
    fn scan_end(&mut self) -> i32 {
        self.run(|t| t.scan_end())
    }
    fn read_at(&mut self, pos: u64) -> i32 {
        self.run(|t| t.read_at(pos))
    }
    fn position(&self) -> u64 {
        self.inner.as_ref().map_or(0, |t| t.current_pos())
    }
    fn current_line(&self) -> u64 {
        self.inner.as_ref().map_or(0, |t| t.current_line())
    }
    fn record_data(&self) -> &[u8] {
        self.inner.as_ref().map_or(&[], |t| &t.record().data)
    }
    fn record_spans(&self) -> &[u32] {
        self.inner.as_ref().map_or(&[], |t| t.record().spans.as_flattened())
    }
    fn insert(&mut self, image: &[u8]) -> i32 {
        self.run(|t| t.insert(image))
    }
    fn update_current(&mut self, image: &[u8]) -> i32 {
        self.run(|t| t.update_current(image))
    }
    fn delete_current(&mut self) -> i32 {
        self.run(|t| t.delete_current())
    }
    fn set_bulk(&mut self, on: bool) -> i32 {
        self.run(|t| t.set_bulk(on))
    }
    fn flush(&mut self) -> i32 {
        self.run(|t| t.flush())
    }
    fn truncate(&mut self) -> i32 {
        self.run(|t| t.truncate())
    }
    fn stats(&self) -> Stats {
        let (rows, data_length, exact) = self.inner.as_ref().map_or((0, 0, false), |t| t.stats());
        Stats { rows, data_length, exact }
    }
    fn set_exact_rows(&self, rows: u64) {
        if let Some(t) = &self.inner {
            t.set_exact_rows(rows)
        }
    }
    fn take_warning(&mut self, out: &mut String) -> bool {
        match self.inner.as_mut().and_then(|t| (!t.warnings.is_empty()).then(|| t.warnings.remove(0))) {
            Some(w) => {
                *out = w;
                true
            }
            None => false,
        }
    }
    fn check_start(&mut self) -> i32 {
        self.run(|t| t.check_start())
    }
    fn check_next(&mut self, out: &mut String) -> i32 {
        let mut step = 0;
        let code = self.run(|t| {
            step = match t.check_next()? {
                CheckStep::Row => 0,
                CheckStep::Damaged(text) => {
                    *out = text;
                    1
                }
                CheckStep::End => consts::HA_ERR_END_OF_FILE as i32,
            };
            Ok(())
        });
        if code == 0 { step } else { code }
    }
    fn check_reject(&mut self, why: &str, out: &mut String) {
        self.run(|t| {
            *out = t.check_reject(why.to_string());
            Ok(())
        });
    }
    fn check_finish(&mut self, repair: bool, out: &mut CheckSummary) -> i32 {
        self.run(|t| {
            let rep = t.check_finish(repair)?;
            *out = CheckSummary {
                rows: rep.rows,
                damaged: rep.damage.len() as u64,
                torn_tail: rep.damage.iter().any(|d| d.torn_tail),
            };
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_code() {
        let mut msg = String::new();
        let code = guard(&mut msg, || panic!("boom"));
        assert_eq!(code, crate::error::HA_ERR_RUST_PANIC);
        assert!(msg.contains("boom"), "{msg}");
    }

    #[test]
    fn unsupported_layouts_say_so() {
        let mut msg = String::new();
        let code = table_create(b"/nonexistent/t", 0, b"", false, b',', false, 1, b"", &mut msg);
        assert_eq!(code, consts::HA_ERR_UNSUPPORTED as i32);
        assert!(msg.contains("LAYOUT=BTREE"), "{msg}");
    }
}
