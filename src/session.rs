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

/// Whether server session `session` is to stop its statement (0: no session).
pub fn session_stopped(session: usize) -> bool {
    let probe = *PROBE.read();
    session != 0 && probe.is_some_and(|p| p(session))
}

/// For long loops inside one call (CHECK TABLE, OPTIMIZE): asks the session every
/// `every` steps whether to stop.
pub struct StopCheck {
    session: usize,
    every: u32,
    steps: u32,
}

impl StopCheck {
    /// Every 1024 steps (pages, entries).
    pub fn new(session: usize) -> StopCheck {
        StopCheck::every(session, 1024)
    }

    pub fn every(session: usize, every: u32) -> StopCheck {
        StopCheck { session, every: every.max(1), steps: 0 }
    }

    /// One step; `Err(Error::Interrupted)` once the statement is to stop.
    pub fn step(&mut self) -> Result<()> {
        self.steps = self.steps.wrapping_add(1);
        if self.steps % self.every == 0 && session_stopped(self.session) {
            return Err(Error::Interrupted);
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
}
