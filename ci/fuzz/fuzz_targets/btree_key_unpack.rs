//! Fuzz target: see ha_rust::fuzzing::btree_key_unpack and docs/fuzzing.md.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ha_rust::fuzzing::btree_key_unpack(data);
});
