//! `brainssl synth`: procedural 3-D heads with known ground truth, written as NIfTI plus a manifest.
//!
//! Each subject gets a random anatomy ([`anatomy`]); each session is a new acquisition of it: a
//! contrast (T1, T2, FLAIR), an orientation (axial, coronal or sagittal slices, thicker through-plane
//! voxels), a stored axis order with flips, a small head rotation and shift, a smooth bias field and
//! Rician noise. Images are skull-stripped like BET output (background 0) unless `keep_skull`, and
//! every image has a `_brainmask` beside it.
//!
//! Tasks (label: meaning): `ad` 0 normal / 1 AD-like atrophy (enlarged ventricles, thinner cortex,
//! wider sulci, smaller hippocampus); `mci` the same at about a third of the severity; `tumor-grade`
//! 0 low grade (smooth homogeneous lesion) / 1 high grade (necrotic core, enhancing rim, fine
//! heterogeneous texture); `tumor-grade-3` adds an intermediate grade; `texture` 0 smooth / 1
//! finely textured region of the same size and generated mean (the label lives in high-frequency
//! texture that survives the percentile clipping); `multi-factor` three
//! independent findings (small hippocampi, enlarged ventricles, a white-matter hyperintensity), each
//! present with probability 1/2, label 1 when at least two are present, so no single finding decides
//! it; `none` unlabelled (label 0). The manifest's `finding` column names what each brain carries.

pub mod anatomy;

use crate::manifest::{Manifest, ManifestRow};
use anatomy::{sample_anatomy, signal, Anatomy, Contrast, Focal, Tissue};
use anyhow::{bail, Result};
use brainssl_prep::foreground::ras_foreground;
use brainssl_prep::Rng;
use brainssl_scan::geometry::Affine;
use brainssl_scan::nifti_io::write_nifti;
use brainssl_scan::volume::ScanMeta;
use brainssl_scan::Volume;
use rayon::prelude::*;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthTask {
    None,
    Ad,
    Mci,
    TumorGrade,
    TumorGrade3,
    Texture,
    MultiFactor,
}

/// The task names `parse` accepts, for help texts and errors.
pub const TASK_NAMES: [&str; 7] = [
    "ad",
    "mci",
    "tumor-grade",
    "tumor-grade-3",
    "texture",
    "multi-factor",
    "none",
];

impl SynthTask {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "none" => SynthTask::None,
            "ad" => SynthTask::Ad,
            "mci" => SynthTask::Mci,
            "tumor-grade" => SynthTask::TumorGrade,
            "tumor-grade-3" => SynthTask::TumorGrade3,
            "texture" => SynthTask::Texture,
            "multi-factor" => SynthTask::MultiFactor,
            _ => bail!("unknown task '{s}' ({})", TASK_NAMES.join(", ")),
        })
    }
    /// The name `parse` reads.
    pub fn name(self) -> &'static str {
        match self {
            SynthTask::None => "none",
            SynthTask::Ad => "ad",
            SynthTask::Mci => "mci",
            SynthTask::TumorGrade => "tumor-grade",
            SynthTask::TumorGrade3 => "tumor-grade-3",
            SynthTask::Texture => "texture",
            SynthTask::MultiFactor => "multi-factor",
        }
    }
    pub fn classes(self) -> usize {
        match self {
            SynthTask::None => 1,
            SynthTask::TumorGrade3 => 3,
            _ => 2,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SynthConfig {
    pub task: SynthTask,
    pub subjects: usize,
    pub sessions: usize,
    /// in-plane matrix size
    pub size: usize,
    pub seed: u64,
    pub keep_skull: bool,
    /// Contrast of session k: `contrasts[k % len]`. Empty: T1 first, then a random contrast per session.
    pub contrasts: Vec<Contrast>,
}

impl SynthConfig {
    /// One T1 session per subject, skull-stripped, 64 × 64 in-plane.
    pub fn new(task: SynthTask, subjects: usize, seed: u64) -> Self {
        SynthConfig {
            task,
            subjects,
            sessions: 1,
            size: 64,
            seed,
            keep_skull: false,
            contrasts: Vec::new(),
        }
    }
}

/// Orientation of the acquired slices.
#[derive(Debug, Clone, Copy)]
enum Plane {
    Axial,
    Coronal,
    Sagittal,
}

/// One acquisition's geometry: stored voxel (i, j, k) → world RAS mm.
struct Acquisition {
    dims: [usize; 3],
    affine: Affine,
    plane: Plane,
}

fn plan_acquisition(rng: &mut Rng, size: usize) -> Acquisition {
    let plane = [Plane::Axial, Plane::Coronal, Plane::Sagittal][rng.below(3) as usize];
    let fov = rng.range(210.0, 240.0);
    let inplane = fov / size as f64;
    let thickness = inplane * rng.range(1.0, 2.2);
    let slab = match plane {
        Plane::Axial => 180.0,
        Plane::Coronal => 210.0,
        Plane::Sagittal => 170.0,
    };
    let nslices = ((slab / thickness).round() as usize).max(4);
    // world axis of stored axes (in-plane a, in-plane b, slice)
    let axes = match plane {
        Plane::Axial => [0, 1, 2],
        Plane::Coronal => [0, 2, 1],
        Plane::Sagittal => [1, 2, 0],
    };
    let mut affine: Affine = [[0.0; 4]; 4];
    affine[3][3] = 1.0;
    let spacing = [inplane, inplane, thickness];
    let dims = [size, size, nslices];
    for s in 0..3 {
        // radiological storage flips x half the time; some scanners store slices top-down
        let flip = rng.bernoulli(if s == 2 { 0.3 } else { 0.4 });
        let sign = if flip { -1.0 } else { 1.0 };
        affine[axes[s]][s] = sign * spacing[s];
        affine[axes[s]][3] = -sign * spacing[s] * (dims[s] as f64 - 1.0) / 2.0;
    }
    Acquisition { dims, affine, plane }
}

/// Render one scan; returns (image, brain mask) in stored order.
fn render(
    anat: &Anatomy,
    acq: &Acquisition,
    contrast: Contrast,
    rng: &mut Rng,
    keep_skull: bool,
) -> (Vec<f32>, Vec<f32>) {
    // head pose: small rotation about z and x, small shift
    let (az, ax) = (rng.range(-6.0, 6.0).to_radians(), rng.range(-6.0, 6.0).to_radians());
    let shift = [rng.range(-4.0, 4.0), rng.range(-4.0, 4.0), rng.range(-4.0, 4.0)];
    let bias: Vec<f64> = (0..6).map(|_| rng.range(-0.12, 0.12)).collect();
    let noise = rng.range(0.015, 0.035);
    let scale = rng.range(400.0, 1200.0);
    let noise_seed = rng.next_u64();
    let [ni, nj, nk] = acq.dims;
    let a = acq.affine;
    let mut img = vec![0f32; ni * nj * nk];
    let mut mask = vec![0f32; ni * nj * nk];
    img.par_chunks_mut(ni * nj)
        .zip(mask.par_chunks_mut(ni * nj))
        .enumerate()
        .for_each(|(k, (islab, mslab))| {
            let mut r = Rng::for_item(noise_seed, 0, k as u64);
            for j in 0..nj {
                for i in 0..ni {
                    let w = [0, 1, 2]
                        .map(|r| a[r][0] * i as f64 + a[r][1] * j as f64 + a[r][2] * k as f64 + a[r][3] - shift[r]);
                    // inverse pose rotation: world → head
                    let (cz, sz, cx, sx) = (az.cos(), az.sin(), ax.cos(), ax.sin());
                    let p1 = [cz * w[0] + sz * w[1], -sz * w[0] + cz * w[1], w[2]];
                    let p = [p1[0], cx * p1[1] + sx * p1[2], -sx * p1[1] + cx * p1[2]];
                    let (t, lr) = anat.tissue(p);
                    let brain = anat.in_brain(p);
                    let idx = j * ni + i;
                    mslab[idx] = brain as u8 as f32;
                    if !keep_skull && !brain {
                        continue;
                    }
                    let mut s = signal(anat, t, lr, p, contrast);
                    if t == Tissue::Background {
                        s = 0.0;
                    }
                    let b = (bias[0] * p[0] / 80.0
                        + bias[1] * p[1] / 100.0
                        + bias[2] * p[2] / 80.0
                        + bias[3] * (p[0] * p[1]) / 8000.0
                        + bias[4] * (p[2] * p[2]) / 6400.0
                        + bias[5])
                        .exp();
                    // Rician magnitude noise
                    let (n1, n2) = (r.normal() * noise, r.normal() * noise);
                    let v = ((s * b + n1).powi(2) + n2 * n2).sqrt();
                    islab[idx] = (v * scale) as f32;
                }
            }
        });
    (img, mask)
}

/// `texture`'s texture amplitude, in units where T1 white matter is 1 (value noise has sd ≈ 0.35
/// of it), and the textured region's radius. Calibrated on 120 subjects at 32 × 64 × 64: smaller
/// regions or fainter texture (radius 9-13 mm, amplitude 0.4 at 4 mm) left a logistic regression on
/// a tiny MAE's mean-pooled tokens at AUROC 0.55-0.59 and hand-made high-pass detectors below 0.5;
/// this setting gives it 0.64-0.68 (docs/research-log.md#claims-benchmark).
const TEXTURE_AMPLITUDE: f64 = 0.8;
const TEXTURE_RADIUS_MM: (f64, f64) = (24.0, 30.0);

/// The multi-factor task's findings.
const FACTORS: [&str; 3] = ["small-hippocampi", "enlarged-ventricles", "wm-hyperintensity"];

/// Subject `s`'s label, anatomy and a short name of its finding ("" when healthy).
fn subject(task: SynthTask, s: usize, rng: &mut Rng) -> (i64, Anatomy, String) {
    let label = (s % task.classes()) as i64;
    let (severity, grade) = match task {
        SynthTask::None => (rng.range(0.0, 0.3), None),
        SynthTask::Ad => (if label == 1 { rng.range(0.75, 1.1) } else { 0.0 }, None),
        SynthTask::Mci => (if label == 1 { rng.range(0.25, 0.45) } else { 0.0 }, None),
        SynthTask::TumorGrade => (0.0, Some(if label == 1 { 2 } else { 0 })),
        SynthTask::TumorGrade3 => (0.0, Some(label as u8)),
        SynthTask::Texture | SynthTask::MultiFactor => (0.0, None),
    };
    let mut anat = sample_anatomy(rng, severity, grade);
    let finding = match task {
        SynthTask::Ad | SynthTask::Mci if label == 1 => format!("atrophy {severity:.2}"),
        SynthTask::TumorGrade | SynthTask::TumorGrade3 => format!("tumour grade {}", 2 + grade.unwrap_or(0)),
        SynthTask::Texture => {
            let textured = label == 1;
            let amplitude = if textured { TEXTURE_AMPLITUDE } else { 0.0 };
            anat.focal = Some(Focal::sample(rng, TEXTURE_RADIUS_MM, amplitude, false));
            if textured { "textured lesion" } else { "smooth lesion" }.to_string()
        }
        SynthTask::MultiFactor => {
            // independent fair coins conditioned on the label: label 1 holds 2 findings (3/4) or 3,
            // label 0 holds 1 (3/4) or none
            let all = rng.bernoulli(0.25);
            let odd = rng.below(3) as usize;
            let present: [bool; 3] = std::array::from_fn(|i| match (label, all) {
                (1, true) => true,
                (1, false) => i != odd,
                (_, true) => false,
                _ => i == odd,
            });
            if present[0] {
                anat.hippocampus_scale -= 0.45;
            }
            if present[1] {
                anat.ventricle_scale += 0.8;
            }
            if present[2] {
                anat.focal = Some(Focal::sample(rng, (9.0, 13.0), 0.0, true));
            }
            let names: Vec<&str> = (0..3).filter(|&i| present[i]).map(|i| FACTORS[i]).collect();
            names.join("+")
        }
        _ => String::new(),
    };
    (label, anat, finding)
}

/// Generate the data set into `out`, returning the manifest (also written to `out/manifest.csv`).
pub fn generate(cfg: &SynthConfig, out: &Path, progress: &indicatif::ProgressBar) -> Result<Manifest> {
    if cfg.subjects == 0 || cfg.sessions == 0 {
        bail!("synth needs at least one subject and one session");
    }
    if !(16..=512).contains(&cfg.size) {
        bail!("--size must be between 16 and 512 (got {})", cfg.size);
    }
    std::fs::create_dir_all(out)?;
    let out = std::fs::canonicalize(out)?;
    let jobs: Vec<(usize, usize)> = (0..cfg.subjects)
        .flat_map(|s| (0..cfg.sessions).map(move |k| (s, k)))
        .collect();
    progress.set_length(jobs.len() as u64);
    let rows: Vec<Result<ManifestRow>> = jobs
        .par_iter()
        .map(|&(s, k)| {
            let mut srng = Rng::for_item(cfg.seed, 0, s as u64);
            let (label, anat, finding) = subject(cfg.task, s, &mut srng);
            let mut rng = Rng::for_item(cfg.seed, 1 + k as u64, s as u64);
            let random = [Contrast::T1, Contrast::T2, Contrast::Flair][if k == 0 { 0 } else { rng.below(3) as usize }];
            let contrast = match cfg.contrasts.len() {
                0 => random,
                n => cfg.contrasts[k % n],
            };
            let acq = plan_acquisition(&mut rng, cfg.size);
            let (img, mask) = render(&anat, &acq, contrast, &mut rng, cfg.keep_skull);
            let subject = format!("sub-{s:04}");
            let stem = format!("{subject}_ses-{k:02}_{}", contrast.bids_suffix());
            let dir = out.join(&subject);
            let img_path = dir.join(format!("{stem}.nii.gz"));
            let mask_path = dir.join(format!("{stem}_brainmask.nii.gz"));
            write_nifti(&img_path, &img, acq.dims, &acq.affine)?;
            write_nifti(&mask_path, &mask, acq.dims, &acq.affine)?;
            let vol = |d: Vec<f32>| Volume {
                data: d,
                dims: acq.dims,
                affine: acq.affine,
                meta: ScanMeta::default(),
            };
            let b = ras_foreground(&vol(img), Some(&vol(mask)))
                .map_err(|e| anyhow::anyhow!("{}: {e}", img_path.display()))?;
            let mut row = ManifestRow::new(label, &subject, contrast.name(), img_path);
            row.bbox = Some(b);
            row.extra.insert("session".into(), k.to_string());
            row.extra
                .insert("plane".into(), format!("{:?}", acq.plane).to_lowercase());
            row.extra.insert("finding".into(), finding.clone());
            row.extra.insert("mask_path".into(), mask_path.display().to_string());
            progress.inc(1);
            Ok(row)
        })
        .collect();
    let rows = rows.into_iter().collect::<Result<Vec<_>>>()?;
    let m = Manifest {
        rows,
        extra_columns: ["session", "plane", "finding", "mask_path"].map(String::from).to_vec(),
    };
    m.write(&out.join("manifest.csv"))?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_scan::{load_scan, LoadOptions};

    fn tissue_volume(anat: &Anatomy, t: Tissue) -> usize {
        let mut n = 0;
        for x in (-80..80).step_by(2) {
            for y in (-100..100).step_by(2) {
                for z in (-90..90).step_by(2) {
                    if anat.tissue([x as f64, y as f64, z as f64]).0 == t {
                        n += 1;
                    }
                }
            }
        }
        n
    }

    #[test]
    fn acquisition_affines_are_signed_permutations() {
        let mut r = Rng::new(9);
        for _ in 0..30 {
            let acq = plan_acquisition(&mut r, 32);
            for row in 0..3 {
                assert_eq!(
                    (0..3).filter(|&c| acq.affine[row][c] != 0.0).count(),
                    1,
                    "{:?}",
                    acq.affine
                );
            }
            for c in 0..3 {
                assert_eq!(
                    (0..3).filter(|&row| acq.affine[row][c] != 0.0).count(),
                    1,
                    "{:?}",
                    acq.affine
                );
            }
        }
    }

    #[test]
    fn atrophy_enlarges_csf_and_shrinks_grey_matter() {
        let healthy = sample_anatomy(&mut Rng::new(3), 0.0, None);
        let ad = sample_anatomy(&mut Rng::new(3), 1.0, None);
        let v = |a: &Anatomy| [Tissue::Csf, Tissue::Gm, Tissue::Wm].map(|t| tissue_volume(a, t));
        let (h, a) = (v(&healthy), v(&ad));
        assert!(a[0] as f64 > 1.3 * h[0] as f64, "CSF {h:?} vs {a:?}");
        assert!(a[1] < h[1], "grey matter {h:?} vs {a:?}");
        assert!(a[1] + a[2] < h[1] + h[2], "brain tissue {h:?} vs {a:?}");
        let tum = sample_anatomy(&mut Rng::new(3), 0.0, Some(2));
        assert!(tissue_volume(&tum, Tissue::Lesion) > 100);
    }

    /// `texture`'s label must live in local high-frequency texture that survives the percentile
    /// clipping and z-scoring: inside the lesion, the preprocessed textured lesions vary far more from
    /// voxel to voxel than the smooth ones, while their mean stays where the smooth ones' is.
    #[test]
    fn texture_lesions_differ_only_in_fine_texture_after_preprocessing() {
        let prep = brainssl_prep::PrepConfig {
            depth: 32,
            size: 64,
            ..Default::default()
        };
        // (high-pass energy, mean) inside the lesion for smooth (texture 0) and textured lesions
        let lesion_stats = |seed: u64, texture: f64| -> (f64, f64) {
            let mut arng = Rng::new(seed);
            let mut anat = sample_anatomy(&mut arng, 0.0, None);
            anat.focal = Some(Focal::sample(&mut arng, TEXTURE_RADIUS_MM, texture, false));
            let healthy = Anatomy {
                focal: None,
                ..anat.clone()
            };
            let acq = plan_acquisition(&mut Rng::new(seed + 100), 64);
            let preprocessed = |a: &Anatomy| {
                let (img, mask) = render(a, &acq, Contrast::T1, &mut Rng::new(seed + 200), false);
                let vol = |d: Vec<f32>| Volume {
                    data: d,
                    dims: acq.dims,
                    affine: acq.affine,
                    meta: ScanMeta::default(),
                };
                let (img, mask) = (vol(img), vol(mask));
                let fg = ras_foreground(&img, Some(&mask)).unwrap();
                brainssl_prep::preprocess_eval(&img, fg, &prep).unwrap()
            };
            let (with, without) = (preprocessed(&anat), preprocessed(&healthy));
            let [t, h, w] = with.shape;
            let at = |x: usize, y: usize, z: usize| with.data[(z * h + y) * w + x] as f64;
            // the lesion: where the same scan without it differs (same noise draws)
            let (mut hp, mut sum, mut n) = (0.0, 0.0, 0);
            for z in 1..t - 1 {
                for y in 1..h - 1 {
                    for x in 1..w - 1 {
                        let inside = |x: usize, y: usize, z: usize| {
                            let i = (z * h + y) * w + x;
                            (with.data[i] - without.data[i]).abs() > 0.05
                        };
                        // interior voxels only: the lesion's edge is the same in both classes
                        if !(inside(x, y, z)
                            && inside(x - 1, y, z)
                            && inside(x + 1, y, z)
                            && inside(x, y - 1, z)
                            && inside(x, y + 1, z))
                        {
                            continue;
                        }
                        let nb = (at(x - 1, y, z) + at(x + 1, y, z) + at(x, y - 1, z) + at(x, y + 1, z)) / 4.0;
                        hp += (at(x, y, z) - nb).powi(2);
                        sum += at(x, y, z);
                        n += 1;
                    }
                }
            }
            assert!(n > 50, "seed {seed}: only {n} lesion voxels");
            (hp / n as f64, sum / n as f64)
        };
        let smooth: Vec<(f64, f64)> = (0..3).map(|s| lesion_stats(s, 0.0)).collect();
        let textured: Vec<(f64, f64)> = (0..3).map(|s| lesion_stats(s, TEXTURE_AMPLITUDE)).collect();
        let max_smooth = smooth.iter().map(|s| s.0).fold(0.0, f64::max);
        let min_textured = textured.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
        assert!(
            min_textured > 2.0 * max_smooth,
            "high-pass energy: smooth {smooth:?}, textured {textured:?}"
        );
        // the same subjects (seeds) with and without texture: the lesion's mean moves a little,
        // downwards, because the top percentile clips the texture's peaks and its variance raises
        // the volume's sd, which the z-score divides by (docs/preprocessing.md#synthetic-brains)
        for (a, b) in smooth.iter().zip(&textured) {
            let shift = b.1 - a.1;
            assert!(
                (-0.4..0.05).contains(&shift),
                "lesion means (z units): smooth {a:?}, textured {b:?}"
            );
        }
    }

    #[test]
    fn task_names_round_trip() {
        for name in TASK_NAMES {
            assert_eq!(SynthTask::parse(name).unwrap().name(), name);
        }
    }

    /// `multi-factor`: each finding is a fair coin independent of the others, and the label is
    /// their majority, so every one of the 8 patterns is about equally common.
    #[test]
    fn multi_factor_findings_are_independent_coins_and_the_label_their_majority() {
        let mut counts = [0usize; 8];
        let n = 800;
        for s in 0..n {
            let (label, anat, finding) = subject(SynthTask::MultiFactor, s, &mut Rng::for_item(4, 0, s as u64));
            let present = FACTORS.map(|f| finding.split('+').any(|x| x == f));
            let count = present.iter().filter(|&&p| p).count();
            assert_eq!(label, (count >= 2) as i64, "{finding}");
            assert_eq!(anat.focal.is_some(), present[2]);
            assert!(
                (anat.hippocampus_scale < 0.85) == present[0],
                "{}",
                anat.hippocampus_scale
            );
            counts[present
                .iter()
                .enumerate()
                .map(|(i, &p)| (p as usize) << i)
                .sum::<usize>()] += 1;
        }
        // 100 expected each, sd about 9.4
        assert!(counts.iter().all(|&c| (65..=135).contains(&c)), "{counts:?}");
    }

    #[test]
    fn generate_writes_readable_scans_and_a_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SynthConfig {
            sessions: 2,
            size: 32,
            ..SynthConfig::new(SynthTask::TumorGrade, 4, 1)
        };
        let m = generate(&cfg, dir.path(), &indicatif::ProgressBar::hidden()).unwrap();
        assert_eq!(m.rows.len(), 8);
        assert_eq!(m.rows.iter().filter(|r| r.label == 1).count(), 4);
        let back = Manifest::read(&dir.path().join("manifest.csv")).unwrap();
        assert_eq!(back.rows.len(), 8);
        for r in &back.rows {
            let v = load_scan(&r.path, LoadOptions::default()).unwrap();
            assert_eq!(v.dims[0], 32);
            let b = r.bbox.unwrap();
            let ras = v.to_ras();
            assert!(b.iter().zip(ras.dims).all(|((lo, hi), n)| lo <= hi && *hi < n));
            assert!(ras.range().1 > 0.0);
        }
        // same seed, same volumes
        let dir2 = tempfile::tempdir().unwrap();
        let m2 = generate(&cfg, dir2.path(), &indicatif::ProgressBar::hidden()).unwrap();
        for (a, b) in m.rows.iter().zip(&m2.rows) {
            assert_eq!(
                load_scan(&a.path, LoadOptions::default()).unwrap().data,
                load_scan(&b.path, LoadOptions::default()).unwrap().data
            );
            assert_eq!(a.bbox, b.bbox);
        }
    }
}
