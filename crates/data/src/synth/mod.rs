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
//! heterogeneous texture); `tumor-grade-3` adds an intermediate grade; `none` unlabelled (label 0).

pub mod anatomy;

use crate::manifest::{Manifest, ManifestRow};
use anatomy::{sample_anatomy, signal, Anatomy, Contrast, Tissue};
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
}

impl SynthTask {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "none" => SynthTask::None,
            "ad" => SynthTask::Ad,
            "mci" => SynthTask::Mci,
            "tumor-grade" => SynthTask::TumorGrade,
            "tumor-grade-3" => SynthTask::TumorGrade3,
            _ => bail!("unknown task '{s}' (ad, mci, tumor-grade, tumor-grade-3, none)"),
        })
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

/// Severity, tumour grade and label of subject `s`.
fn subject_condition(task: SynthTask, s: usize, rng: &mut Rng) -> (i64, f64, Option<u8>) {
    let label = (s % task.classes()) as i64;
    match task {
        SynthTask::None => (0, rng.range(0.0, 0.3), None),
        SynthTask::Ad => (label, if label == 1 { rng.range(0.75, 1.1) } else { 0.0 }, None),
        SynthTask::Mci => (label, if label == 1 { rng.range(0.25, 0.45) } else { 0.0 }, None),
        SynthTask::TumorGrade => (label, 0.0, Some(if label == 1 { 2 } else { 0 })),
        SynthTask::TumorGrade3 => (label, 0.0, Some(label as u8)),
    }
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
            let (label, severity, grade) = subject_condition(cfg.task, s, &mut srng);
            let anat = sample_anatomy(&mut srng, severity, grade);
            let mut rng = Rng::for_item(cfg.seed, 1 + k as u64, s as u64);
            let contrast =
                [Contrast::T1, Contrast::T2, Contrast::Flair][if k == 0 { 0 } else { rng.below(3) as usize }];
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
            row.extra.insert("severity".into(), format!("{severity:.3}"));
            row.extra.insert("mask_path".into(), mask_path.display().to_string());
            progress.inc(1);
            Ok(row)
        })
        .collect();
    let rows = rows.into_iter().collect::<Result<Vec<_>>>()?;
    let m = Manifest {
        rows,
        extra_columns: ["session", "plane", "severity", "mask_path"].map(String::from).to_vec(),
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

    #[test]
    fn generate_writes_readable_scans_and_a_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SynthConfig {
            task: SynthTask::TumorGrade,
            subjects: 4,
            sessions: 2,
            size: 32,
            seed: 1,
            keep_skull: false,
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
