//! Arbitrary `.log`, `.index` and `.timeindex` files opened as a partition log; see
//! `kairos_fuzz::segment_recover`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kairos_fuzz::segment_recover(data));
