//! A seeded mutation battery in seconds: valid NIfTI files (plain and gzip) with random byte
//! flips, extreme header values, truncations and appended junk, read by `load_scan` and
//! `check_scan`. Every outcome must be a value or an error naming the file; never a panic. (The
//! bounded-inflation and header-arithmetic checks keep each case small, so none can hang or blow
//! up memory; the whole battery runs in a few seconds.)

use std::io::Write;

use brainssl_scan::geometry::IDENTITY;
use brainssl_scan::nifti_io::write_nifti;
use brainssl_scan::{check_scan, load_scan, LoadOptions};

/// xorshift64*: the battery is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that break naive arithmetic, as bytes of each width.
fn extreme(rng: &mut Rng, width: usize) -> Vec<u8> {
    let f: [f32; 8] = [f32::NAN, f32::INFINITY, -f32::INFINITY, 1e30, -1e30, 1e-38, 0.0, -1.0];
    let i: [i64; 8] = [0, -1, i64::MAX, i64::MIN, 32767, -32768, 1 << 31, 4294967296];
    match (width, rng.below(2)) {
        (4, 0) => f[rng.below(8)].to_le_bytes().to_vec(),
        (8, 0) => (f[rng.below(8)] as f64).to_le_bytes().to_vec(),
        (w, _) => i[rng.below(8)].to_le_bytes()[..w].to_vec(),
    }
}

fn mutate(base: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            // a random byte anywhere
            0 => {
                let k = rng.below(b.len());
                b[k] = rng.next() as u8;
            }
            // an extreme value over a header field
            1 | 2 => {
                let width = [2, 4, 8][rng.below(3)];
                let at = rng.below(348 - width);
                let v = extreme(rng, width);
                if at + v.len() <= b.len() {
                    b[at..at + v.len()].copy_from_slice(&v);
                }
            }
            // truncated
            3 => {
                let n = rng.below(b.len());
                b.truncate(n);
            }
            // junk appended
            _ => {
                for _ in 0..rng.below(2000) {
                    b.push(rng.next() as u8);
                }
            }
        }
        if b.is_empty() {
            break;
        }
    }
    b
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[test]
fn no_mutated_nifti_panics_the_readers() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.nii");
    let data: Vec<f32> = (0..6 * 5 * 4).map(|v| v as f32).collect();
    write_nifti(&good, &data, [6, 5, 4], &IDENTITY).unwrap();
    let base = std::fs::read(&good).unwrap();
    // BRAINSSL_MUTATION_CASES=N BRAINSSL_MUTATION_SEED=S run a longer battery (a fuzzing pass)
    let cases: usize = std::env::var("BRAINSSL_MUTATION_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6000);
    let seed: u64 = std::env::var("BRAINSSL_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut rng = Rng(0x5eed_1234_abcd_0001 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let (mut tried, mut errors) = (0, 0);
    for case in 0..cases {
        let mutated = mutate(&base, &mut rng);
        // a third of the cases are gzip streams: of the mutated file, or mutated after compression
        let (bytes, name) = match case % 3 {
            0 => (mutated, format!("m{case}.nii")),
            1 => (gzip(&mutated), format!("m{case}.nii.gz")),
            _ => (mutate(&gzip(&base), &mut rng), format!("m{case}.nii.gz")),
        };
        let p = dir.path().join(&name);
        std::fs::write(&p, &bytes).unwrap();
        for which in ["load", "check"] {
            let r = std::panic::catch_unwind(|| match which {
                "load" => load_scan(&p, LoadOptions::default()).map(|v| v.data.len()),
                _ => check_scan(&p).map(|_| 0),
            });
            let r = r.unwrap_or_else(|_| panic!("{which} panicked on case {case} ({name})"));
            tried += 1;
            if let Err(e) = r {
                errors += 1;
                let text = e.to_string();
                assert!(
                    text.contains(&name),
                    "case {case}: the error does not name the file: {text}"
                );
            } else if which == "load" {
                // accepted: the volume has finite geometry
                let v = load_scan(&p, LoadOptions::default()).unwrap();
                assert!(
                    v.affine.iter().flatten().all(|x| x.is_finite()),
                    "case {case}: non-finite affine accepted"
                );
            }
        }
        std::fs::remove_file(&p).unwrap();
    }
    eprintln!(
        "mutation battery: {tried} reads of {cases} mutated files, {errors} clean errors, {} accepted, 0 panics",
        tried - errors
    );
    // the battery must actually exercise the error paths (and not only refuse everything)
    assert!(errors > tried / 4 && errors < tried, "{errors} errors of {tried}");
}
