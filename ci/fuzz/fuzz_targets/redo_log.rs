//! Fuzz target: see ha_rust::fuzzing::redo_log and docs/fuzzing.md.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ha_rust::fuzzing::redo_log(data);
});
