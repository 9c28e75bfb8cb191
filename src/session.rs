//! The server session a statement runs in, as far as the engine needs it: whether
//! the statement is to stop (KILL, KILL QUERY, `max_statement_time`, a client that
//! went away). C++ installs the probe at plugin start; a session is an opaque token
//! C++ gives (0: none, e.g. crash recovery). Used by lock waits
//! (`btree::table::Interrupt`) and by long loops inside one call ([`StopCheck`]).

use parking_lot::RwLock;

use crate::error::{Error, Result};

/// Whether the server session `session` is to stop its statement.
pub type Probe = extern "C" fn(session: usize) -> bool;

static PROBE: RwLock<Option<Probe>> = parking_lot::const_rwlock(None);

pub fn set_probe(p: Option<Probe>) {
    *PROBE.write() = p;
}

/// Tells server session `session` how far a long statement is: `done` of `total`
/// (SHOW PROCESSLIST's progress).
pub type Reporter = extern "C" fn(session: usize, done: u64, total: u64);

static REPORTER: RwLock<Option<Reporter>> = parking_lot::const_rwlock(None);

pub fn set_reporter(r: Option<Reporter>) {
    *REPORTER.write() = r;
}

fn report(session: usize, done: u64, total: u64) {
    if session == 0 || total == 0 {
        return;
    }
    if let Some(r) = *REPORTER.read() {
        r(session, done, total.max(done + 1));
    }
}

/// Whether server session `session` is to stop its statement (0: no session).
pub fn session_stopped(session: usize) -> bool {
    let probe = *PROBE.read();
    session != 0 && probe.is_some_and(|p| p(session))
}

/// For long loops inside one call (CHECK TABLE, OPTIMIZE): asks the session every
/// `every` steps whether to stop, and, when it knows about how many steps there
/// are ([`StopCheck::with_total`]), tells it how far the loop is.
pub struct StopCheck {
    session: usize,
    every: u64,
    steps: u64,
    total: u64,
}

impl StopCheck {
    /// Every 1024 steps (pages, entries).
    pub fn new(session: usize) -> StopCheck {
        StopCheck::every(session, 1024)
    }

    pub fn every(session: usize, every: u32) -> StopCheck {
        StopCheck { session, every: every.max(1) as u64, steps: 0, total: 0 }
    }

    /// About how many steps the loop takes (an estimate: progress never shows
    /// more than done).
    pub fn with_total(mut self, total: u64) -> StopCheck {
        self.total = total;
        self
    }

    /// One step; `Err(Error::Interrupted)` once the statement is to stop.
    pub fn step(&mut self) -> Result<()> {
        self.steps += 1;
        if self.steps % self.every == 0 {
            report(self.session, self.steps, self.total);
            if session_stopped(self.session) {
                return Err(Error::Interrupted);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static ASKED: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn stop_session_7(session: usize) -> bool {
        ASKED.fetch_add(1, Ordering::SeqCst);
        session == 7
    }

    /// A loop asks once every `every` steps, stops only its own killed session,
    /// and never asks for session 0.
    #[test]
    fn a_stop_check_asks_every_n_steps_and_stops_only_its_session() {
        set_probe(Some(stop_session_7));
        let before = ASKED.load(Ordering::SeqCst);
        let mut other = StopCheck::every(3, 4);
        for _ in 0..8 {
            other.step().unwrap();
        }
        assert_eq!(ASKED.load(Ordering::SeqCst) - before, 2);
        let mut none = StopCheck::every(0, 1);
        none.step().unwrap();
        assert_eq!(ASKED.load(Ordering::SeqCst) - before, 2);
        let mut killed = StopCheck::every(7, 4);
        for _ in 0..3 {
            killed.step().unwrap();
        }
        assert!(matches!(killed.step(), Err(Error::Interrupted)));
        set_probe(None);
    }

    static REPORTS: parking_lot::Mutex<Vec<(usize, u64, u64)>> = parking_lot::const_mutex(Vec::new());

    extern "C" fn keep_report(session: usize, done: u64, total: u64) {
        REPORTS.lock().push((session, done, total));
    }

    /// Progress goes to the loop's session at the probe's cadence, never beyond its
    /// total, and not at all without a session or a total.
    #[test]
    fn a_stop_check_with_a_total_reports_progress() {
        set_reporter(Some(keep_report));
        let mut c = StopCheck::every(9, 2).with_total(5);
        for _ in 0..8 {
            c.step().unwrap();
        }
        let mut plain = StopCheck::every(9, 1);
        plain.step().unwrap();
        let mut none = StopCheck::every(0, 1).with_total(3);
        none.step().unwrap();
        set_reporter(None);
        let got: Vec<_> = REPORTS.lock().iter().filter(|r| r.0 == 9).cloned().collect();
        assert_eq!(got, vec![(9, 2, 5), (9, 4, 5), (9, 6, 7), (9, 8, 9)]);
    }
}
