//! Arbitrary bytes through the record-batch header view, the CRC check and the record decoder;
//! see `kairos_fuzz::record_batch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kairos_fuzz::record_batch(data));
