//! AUTO_INCREMENT arithmetic: the session's series (auto_increment_increment
//! and _offset, as the server's compute_next_insert_id) and a statement's
//! reservation of values, as InnoDB reserves them (its default
//! innodb_autoinc_lock_mode=1), because users see which values a row gets after
//! a failed, ignored or duplicate row: a statement's first call reserves the
//! values the server asks for (the rows of a multi-row INSERT; 1, then 2, 4, ...
//! for INSERT ... SELECT), write_row counts them down, and values reserved but
//! not used are gone, as is a value given to a row that failed. The counter (the
//! largest value given or stored, in the clustered tree's meta page) moves to
//! the end of each reservation at once. The C++ handler passes the server's
//! values in and copies the answer out.

/// One get_auto_increment call (a bridge struct: the server's arguments, and
/// the statement's reservation state kept by the handler, before and after).
pub use crate::ffi::bridge::Autoinc as Reservation;

/// The value the counter keeps for a row given `used`: just below the next value
/// of the session's series (`increment`, `offset`), as InnoDB moves it.
pub fn used_in_series(used: u64, increment: u64, offset: u64) -> u64 {
    if increment > 1 {
        let next = (used.wrapping_add(increment).wrapping_sub(offset) / increment * increment).wrapping_add(offset);
        if next > used {
            return next - 1;
        }
    }
    used
}

/// The value after `current` in the series (`step`, `offset`), `need` values on;
/// u64::MAX when past the type's `max` or on overflow (then every value is used).
fn after(current: u64, need: u64, step: u64, offset: u64, max: u64) -> u64 {
    if current > max || step == 0 {
        return u64::MAX;
    }
    let offset = if offset > step { 0 } else { offset }; // an offset above the step is ignored
    let mut v = current.abs_diff(offset);
    v -= v % step;
    let Some(v) = v.checked_add(offset) else { return u64::MAX };
    need.checked_mul(step).and_then(|n| v.checked_add(n)).unwrap_or(u64::MAX)
}

/// Reserves values from the table's counter `counter` (the next value, 0 when
/// none was given). Returns the value the counter must move to (the largest
/// value the reservation hands out), if it moves.
pub fn reserve(r: &mut Reservation, counter: u64) -> Option<u64> {
    let (inc, ofs, max) = (r.increment, r.offset, r.max);
    let mut next = counter.max(1);
    if inc > 1 && inc <= !next && next < max && !r.alter_table {
        // the first value of the session's series at or after the counter
        let in_series = ((next - 1).wrapping_add(inc).wrapping_sub(ofs) / inc * inc).wrapping_add(ofs);
        if in_series < max {
            next = in_series;
        }
    }
    if r.rows_left == 0 {
        // the statement's first reservation (0 desired: INSERT ... SELECT)
        r.rows_left = r.desired.max(1);
        r.first = r.first.max(next);
    } else if r.last == 0 {
        r.first = r.first.max(next);
    }
    if r.first > max {
        r.last = 0; // the server reports the value out of range
        r.reserved = 0;
        return None;
    }
    r.reserved = r.rows_left;
    r.last = after(r.first, r.reserved, inc, ofs, max);
    if r.last < r.first {
        r.first = u64::MAX;
        return None;
    }
    Some(r.last - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(increment: u64, offset: u64, desired: u64) -> Reservation {
        Reservation { offset, increment, desired, max: 127, ..Default::default() }
    }

    #[test]
    fn a_first_reservation_takes_what_the_statement_asks_for() {
        let mut r = ask(1, 1, 3);
        assert_eq!(reserve(&mut r, 5), Some(7));
        assert_eq!((r.first, r.reserved, r.rows_left, r.last), (5, 3, 3, 8));
        // INSERT ... SELECT: one value at first
        let mut r = ask(1, 1, 0);
        assert_eq!(reserve(&mut r, 0), Some(1));
        assert_eq!((r.first, r.reserved), (1, 1));
    }

    #[test]
    fn values_follow_the_sessions_series() {
        // increment 10, offset 3: 3, 13, 23, ...
        let mut r = ask(10, 3, 2);
        assert_eq!(reserve(&mut r, 5), Some(32));
        assert_eq!((r.first, r.reserved, r.last), (13, 2, 33));
        assert_eq!(used_in_series(14, 10, 3), 22);
        assert_eq!(used_in_series(13, 10, 3), 22);
        assert_eq!(used_in_series(14, 1, 1), 14);
        // ALTER TABLE keeps no series
        let mut r = Reservation { alter_table: true, ..ask(10, 3, 1) };
        reserve(&mut r, 5);
        assert_eq!(r.first, 5);
    }

    #[test]
    fn past_the_columns_largest_value_nothing_is_reserved() {
        let mut r = ask(1, 1, 1);
        assert_eq!(reserve(&mut r, 128), None);
        assert_eq!((r.first, r.reserved, r.last), (128, 0, 0));
        // a reservation may run past the column's end: the server then reports
        // the value out of range when it is used
        let mut r = ask(1, 1, 5);
        assert_eq!(reserve(&mut r, 126), Some(130));
        // past the type's end, every value is used up
        let mut r = Reservation { max: u64::MAX, ..ask(1, 1, 5) };
        assert_eq!(reserve(&mut r, u64::MAX - 1), Some(u64::MAX - 1));
        assert_eq!((r.first, r.last), (u64::MAX - 1, u64::MAX));
    }
}
