//! A seeded mutation battery in seconds: valid NIfTI files (plain and gzip) and a real DICOM slice
//! with random byte flips, extreme header or length values, truncations and appended junk, read by
//! `load_scan` and `check_scan`. Every outcome must be a value or an error naming the file; never a
//! panic. (The bounded-inflation, header-arithmetic and DICOM length checks keep each case small,
//! so none can hang or blow up memory; the battery runs in a few seconds.)
//! Sizes, seeds and dumps for `scripts/battery.sh`: see brainssl-testkit.

use std::io::Write;

use brainssl_scan::geometry::IDENTITY;
use brainssl_scan::nifti_io::write_nifti;
use brainssl_scan::{check_scan, load_scan, LoadOptions};
use brainssl_testkit::{battery_size, keep, mutate_bytes, peak_rss_mib, Rng};

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

/// A NIfTI file mutated: byte flips, extreme values over header fields, truncation, junk appended.
fn mutate(base: &[u8], rng: &mut Rng) -> Vec<u8> {
    mutate_bytes(base, rng, 4, 5, 2000, |b, rng| {
        let width = [2, 4, 8][rng.below(3)];
        let at = rng.below(348 - width);
        let v = extreme(rng, width);
        if at + v.len() <= b.len() {
            b[at..at + v.len()].copy_from_slice(&v);
        }
    })
}

/// A DICOM file mutated: extreme values anywhere (element lengths live anywhere), byte flips,
/// truncation, junk appended.
fn mutate_dicom(base: &[u8], rng: &mut Rng) -> Vec<u8> {
    mutate_bytes(base, rng, 3, 4, 1000, |b, rng| {
        let width = [2, 4][rng.below(2)];
        let at = 132 + rng.below(b.len().saturating_sub(132 + width));
        let v: [u32; 6] = [0xFFFF_FFFF, 0xFFFF_FFF0, 0x7FFF_FFFF, 0, 1, 0x0001_0000];
        let v = v[rng.below(6)].to_le_bytes();
        if at + width <= b.len() {
            b[at..at + width].copy_from_slice(&v[..width]);
        }
    })
}

/// Reads `p` with `load_scan` and `check_scan`: a panic fails the battery, an error must name the
/// file, an accepted volume must have finite geometry and as many voxels as its dims say. Returns
/// (reads, errors).
fn read_both(p: &std::path::Path, case: usize) -> (usize, usize) {
    let name = p.file_name().unwrap().to_string_lossy().to_string();
    let mut errors = 0;
    for which in ["load", "check"] {
        let r = std::panic::catch_unwind(|| match which {
            "load" => load_scan(p, LoadOptions::default()).map(Some),
            _ => check_scan(p, Default::default()).map(|_| None),
        });
        match r.unwrap_or_else(|_| panic!("{which} panicked on case {case} ({name})")) {
            Err(e) => {
                errors += 1;
                let text = e.to_string();
                assert!(
                    text.contains(&name),
                    "case {case}: the error does not name the file: {text}"
                );
            }
            Ok(Some(v)) => {
                assert!(
                    v.affine.iter().flatten().all(|x| x.is_finite()),
                    "case {case}: non-finite affine accepted"
                );
                assert_eq!(v.data.len(), v.dims.iter().product::<usize>(), "case {case}");
            }
            Ok(None) => {}
        }
    }
    (2, errors)
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
    let (cases, seed) = battery_size(6000);
    let mut rng = Rng::new(0x5eed_1234_abcd_0001 ^ seed);
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
        keep("nifti", &name, &bytes);
        let (t, e) = read_both(&p, case);
        (tried, errors) = (tried + t, errors + e);
        std::fs::remove_file(&p).unwrap();
    }
    eprintln!(
        "NIfTI mutation battery: {tried} reads of {cases} mutated files, {errors} clean errors, {} accepted, 0 panics",
        tried - errors
    );
    // the battery must actually exercise the error paths (and not only refuse everything)
    assert!(errors > tried / 4 && errors < tried, "{errors} errors of {tried}");
}

/// A real slice (tests/fixtures/mr_small.dcm) mutated: lengths beyond the file must be refused
/// before anything allocates them, so every case stays small and fast.
#[test]
fn no_mutated_dicom_panics_the_readers() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mr_small.dcm");
    let base = std::fs::read(&fixture).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cases, seed) = battery_size(1500);
    let mut rng = Rng::new(0xd1c0_4d00_5eed_0002 ^ seed);
    let (mut tried, mut errors) = (0, 0);
    let start = std::time::Instant::now();
    for case in 0..cases {
        let bytes = mutate_dicom(&base, &mut rng);
        let name = format!("m{case}.dcm");
        let p = dir.path().join(&name);
        std::fs::write(&p, &bytes).unwrap();
        keep("dicom", &name, &bytes);
        let (t, e) = read_both(&p, case);
        (tried, errors) = (tried + t, errors + e);
        std::fs::remove_file(&p).unwrap();
    }
    eprintln!(
        "DICOM mutation battery: {tried} reads of {cases} mutated files in {:.1} s, {errors} clean errors, {} accepted, 0 panics",
        start.elapsed().as_secs_f64(),
        tried - errors
    );
    assert!(errors > tried / 10 && errors < tried, "{errors} errors of {tried}");
    // an allocation of a claimed length would show here: the fixture is 10 KB
    if let Some(peak) = peak_rss_mib() {
        assert!(peak < 1024, "peak RSS {peak} MiB");
    }
}
