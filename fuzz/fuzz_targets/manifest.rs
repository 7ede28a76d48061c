//! Manifest CSVs.
#![no_main]
use libfuzzer_sys::fuzz_target;
mod common;

fuzz_target!(|data: &[u8]| {
    let p = common::scratch("m.csv", data);
    let _ = brainssl_data::Manifest::read(&p);
});
