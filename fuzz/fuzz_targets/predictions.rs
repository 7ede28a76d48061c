//! Prediction CSVs, and the metrics and bootstrap intervals of whatever parses.
#![no_main]
use libfuzzer_sys::fuzz_target;
mod common;

fuzz_target!(|data: &[u8]| {
    let p = common::scratch("p.csv", data);
    if let Ok(pr) = brainssl_eval::predictions::Predictions::read(&p) {
        let _ = brainssl_eval::metrics::Metrics::compute(&pr.probs, &pr.labels);
        let _ = brainssl_eval::metrics::bootstrap(&pr.probs, &pr.labels, &pr.groups, 10, 1);
    }
});
