//! DICOM Part 10 files: the input follows a 128-byte preamble and "DICM", so the fuzzer works on
//! the meta group and the data set.
#![no_main]
use libfuzzer_sys::fuzz_target;
mod common;

fuzz_target!(|data: &[u8]| {
    let mut b = vec![0u8; 128];
    b.extend_from_slice(b"DICM");
    b.extend_from_slice(data);
    let p = common::scratch("x.dcm", &b);
    let _ = brainssl_scan::load_scan(&p, Default::default());
});
