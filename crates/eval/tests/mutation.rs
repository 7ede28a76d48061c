//! A seeded mutation battery for prediction files: every outcome is predictions whose metrics
//! and bootstrap intervals compute, or an error naming the file; never a panic.

use brainssl_prep::Rng;

/// A uniform index below `n` (at least 1) from the project's seeded generator: the battery is the
/// same on every run.
fn below(rng: &mut Rng, n: usize) -> usize {
    rng.below(n.max(1) as u64) as usize
}

/// Text that breaks naive CSV and number handling.
const PIECES: [&str; 20] = [
    ",",
    "\"",
    "\n",
    "\r\n",
    "-",
    "e",
    "9",
    "0",
    ".",
    "nan",
    "inf",
    "-inf",
    "1e300",
    "-1",
    "18446744073709551616",
    "\u{0}",
    "é",
    " ",
    ",,,",
    "\"\"\"",
];

fn mutate(base: &str, rng: &mut Rng) -> String {
    let mut s: Vec<char> = base.chars().collect();
    for _ in 0..1 + below(rng, 4) {
        let at = below(rng, s.len() + 1);
        match below(rng, 4) {
            0 | 1 => {
                let piece: Vec<char> = PIECES[below(rng, PIECES.len())].chars().collect();
                s.splice(at..at, piece);
            }
            2 => {
                let end = (at + below(rng, 12)).min(s.len());
                s.drain(at..end);
            }
            _ => {
                let line: Vec<char> = base
                    .lines()
                    .nth(below(rng, base.lines().count()))
                    .unwrap_or("")
                    .chars()
                    .collect();
                s.splice(at..at, line.into_iter().chain(['\n']));
            }
        }
    }
    s.into_iter().collect()
}

#[test]
fn no_mutated_prediction_file_panics_the_parser_or_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let base = "label,p0,p1,subject_id\n0,0.9,0.1,a\n1,0.2,0.8,b\n1,0.5,0.5,c\n0,0.6,0.4,d\n";
    let mut rng = Rng::new(0x7072_6564_6963_7473);
    let (mut errors, cases) = (0, 3000);
    for case in 0..cases {
        let p = dir.path().join(format!("p{case}.csv"));
        std::fs::write(&p, mutate(base, &mut rng)).unwrap();
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
