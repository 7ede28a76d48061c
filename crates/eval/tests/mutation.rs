//! A seeded mutation battery for prediction files: every outcome is predictions whose metrics
//! and bootstrap intervals compute, or an error naming the file; never a panic.

use brainssl_testkit::{battery_size, keep, mutate_text, Rng};

#[test]
fn no_mutated_prediction_file_panics_the_parser_or_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let base = "label,p0,p1,subject_id\n0,0.9,0.1,a\n1,0.2,0.8,b\n1,0.5,0.5,c\n0,0.6,0.4,d\n";
    let (cases, seed) = battery_size(3000);
    let mut rng = Rng::new(0x7072_6564_6963_7473 ^ seed);
    let mut errors = 0;
    for case in 0..cases {
        let name = format!("p{case}.csv");
        let p = dir.path().join(&name);
        let text = mutate_text(base, &mut rng);
        std::fs::write(&p, &text).unwrap();
        keep("predictions", &name, text.as_bytes());
        let r = std::panic::catch_unwind(|| {
            brainssl_eval::predictions::Predictions::read(&p).map(|pr| {
                let _ = brainssl_eval::metrics::Metrics::compute(&pr.probs, &pr.labels);
                let _ = brainssl_eval::metrics::bootstrap(&pr.probs, &pr.labels, &pr.groups, 20, 1);
            })
        });
        match r.unwrap_or_else(|_| panic!("case {case} panicked")) {
            Ok(()) => {}
            Err(e) => {
                errors += 1;
                assert!(e.contains(&p.display().to_string()), "case {case}: {e}");
            }
        }
    }
    assert!(errors > cases / 10 && errors < cases, "{errors} errors of {cases}");
}
