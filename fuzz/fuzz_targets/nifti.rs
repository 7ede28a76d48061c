//! NIfTI-1/2, plain or gzip: `load_scan` and the pre-flight `check_scan` on any bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
mod common;

fuzz_target!(|data: &[u8]| {
    let name = if data.starts_with(&[0x1f, 0x8b]) {
        "x.nii.gz"
    } else {
        "x.nii"
    };
    let p = common::scratch(name, data);
    let _ = brainssl_scan::check_scan(&p, Default::default());
    if let Ok(v) = brainssl_scan::load_scan(&p, Default::default()) {
        assert!(v.affine.iter().flatten().all(|x| x.is_finite()));
    }
});
