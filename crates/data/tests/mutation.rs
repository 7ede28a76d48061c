//! A seeded mutation battery for the manifest parser: valid manifests with inserted separators,
//! quotes, newlines, extreme numbers and deletions. Every outcome is a manifest or an error naming
//! the file; never a panic.

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
fn no_mutated_manifest_panics_the_parser() {
    let dir = tempfile::tempdir().unwrap();
    let base = "label,subject_id,contrast,nii_file_path,xmin,xmax,ymin,ymax,zmin,zmax,mask_path\n\
                0,S1,t1,a.nii.gz,1,20,2,30,0,9,a_mask.nii.gz\n\
                1,S2,t2,sub/b.nii,-1,-1,-1,-1,-1,-1,\n\
                0,S3,flair,/abs/c.nii,3,4,5,6,7,8,x.nii\n";
    let mut rng = Rng::new(0x6d61_6e69_6665_7374);
    let (mut errors, cases) = (0, 3000);
    for case in 0..cases {
        let p = dir.path().join(format!("m{case}.csv"));
        std::fs::write(&p, mutate(base, &mut rng)).unwrap();
        let r = std::panic::catch_unwind(|| brainssl_data::Manifest::read(&p).map(|m| m.rows.len()));
        match r.unwrap_or_else(|_| panic!("case {case} panicked")) {
            Ok(_) => {}
            Err(e) => {
                errors += 1;
                let text = format!("{e:#}");
                assert!(text.contains(&p.display().to_string()), "case {case}: {text}");
            }
        }
    }
    assert!(errors > cases / 10 && errors < cases, "{errors} errors of {cases}");
}
