//! The preprocessing steps in order (docs/preprocessing.md#steps), split in two stages:
//! - [`crop_foreground`] (deterministic, cacheable): RAS+ reorientation and the margin crop;
//! - [`finish`]: depth-axis choice, square in-plane crop, percentile clip, trilinear resize to
//!   [T, S, S], augmentation (training only) and the per-volume z-score.

use crate::augment::{augment, AugmentConfig};
use crate::foreground::{margin_crop, BoxIncl};
use crate::intensity::{clip, percentiles, zscore};
use crate::resize::resize_trilinear;
use crate::rng::Rng;
use brainssl_scan::geometry::{matmul, shift_origin, Affine};
use brainssl_scan::{View3, Volume};
use serde::{Deserialize, Serialize};

/// The smallest intensity standard deviation (after clipping and resizing) that is z-scored.
pub const MIN_ZSCORE_STD: f64 = 1e-4;

/// The preprocessing recipe. Part of every cache key and checkpoint manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrepConfig {
    /// T: slices along the depth axis after resizing.
    pub depth: usize,
    /// S: in-plane size after the square crop and resize.
    pub size: usize,
    /// Voxels added on each side of the foreground box
    /// (docs/preprocessing.md#foreground-box-and-margin).
    pub margin: usize,
    /// Training mode picks a random depth axis when max/min crop extent is below this.
    pub isotropy_threshold: f64,
    /// Lower and upper clip percentiles.
    pub clip_percentiles: (f64, f64),
}

impl Default for PrepConfig {
    fn default() -> Self {
        PrepConfig {
            depth: 144,
            size: 160,
            margin: 6,
            isotropy_threshold: 1.4,
            clip_percentiles: (1.0, 99.0),
        }
    }
}

impl PrepConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.depth == 0 || self.size == 0 {
            return Err("depth and size must be positive".into());
        }
        let (lo, hi) = self.clip_percentiles;
        if !(0.0..=100.0).contains(&lo) || !(0.0..=100.0).contains(&hi) || lo > hi {
            return Err(format!(
                "clip percentiles ({lo}, {hi}) must satisfy 0 <= lo <= hi <= 100"
            ));
        }
        if self.isotropy_threshold < 1.0 {
            return Err("isotropy_threshold must be >= 1".into());
        }
        Ok(())
    }
}

/// Which RAS+ axis becomes depth. After reorientation the names mean what they say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Layout {
    /// depth runs inferior → superior, in-plane (x, y)
    Axial,
    /// depth runs left → right, in-plane (z, y)
    Sagittal,
    /// depth runs posterior → anterior, in-plane (z, x)
    Coronal,
}

impl Layout {
    /// Permutation of the crop's (x, y, z) axes giving [depth, h, w]
    /// (docs/preprocessing.md#depth-axis).
    pub fn order(self) -> [usize; 3] {
        match self {
            Layout::Axial => [2, 0, 1],
            Layout::Sagittal => [0, 2, 1],
            Layout::Coronal => [1, 2, 0],
        }
    }
}

/// Evaluation or training mode (docs/preprocessing.md#steps;
/// docs/deviations.md#evaluation-mode-crop).
pub enum Mode<'a> {
    Eval,
    Train {
        rng: &'a mut Rng,
        augment: Option<&'a AugmentConfig>,
    },
}

/// Foreground-cropped volume in RAS+ order, C-order [x, y, z]: the deterministic, cacheable stage.
#[derive(Debug, Clone)]
pub struct Cropped {
    pub data: Vec<f32>,
    pub shape: [usize; 3],
    /// voxel → world affine of this crop
    pub affine: Affine,
}

/// Preprocessed [T, S, S] volume, C-order, z-scored.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub data: Vec<f32>,
    pub shape: [usize; 3],
    /// Affine of NIfTI voxel (w, h, t) — the memory order of `data` — for viewing (exact in
    /// evaluation mode; spatial augmentation is not reflected).
    pub affine: Affine,
    pub layout: Layout,
    pub clip: (f64, f64),
}

/// Steps 1-3 (docs/preprocessing.md#steps) as a view on the volume's buffer: RAS+ axes, cropped to
/// `fg` (inclusive, RAS order) plus margin, and the crop's affine.
pub fn crop_view(vol: &Volume, fg: BoxIncl, margin: usize) -> Result<(View3, Affine), String> {
    let (view, affine) = vol.ras_view();
    for a in 0..3 {
        if fg[a].0 > fg[a].1 || fg[a].1 >= view.shape[a] {
            return Err(format!(
                "foreground box {fg:?} lies outside the RAS volume of shape {:?}",
                view.shape
            ));
        }
    }
    let r = margin_crop(fg, view.shape, margin);
    Ok((view.crop(r), shift_origin(&affine, [r[0].0, r[1].0, r[2].0])))
}

/// The crop materialised (the cacheable stage).
pub fn crop_foreground(vol: &Volume, fg: BoxIncl, margin: usize) -> Result<Cropped, String> {
    let (v, affine) = crop_view(vol, fg, margin)?;
    Ok(Cropped {
        data: v.materialize(&vol.data),
        shape: v.shape,
        affine,
    })
}

/// Step 4 (docs/preprocessing.md#depth-axis): the depth axis is the shortest extent (first on ties)
/// unless training on a near-isotropic crop, where it is uniform over the three layouts.
pub fn choose_layout(shape: [usize; 3], threshold: f64, rng: Option<&mut Rng>) -> Layout {
    // P = [Z, X, Y]
    let p = [shape[2], shape[0], shape[1]];
    let ratio = *p.iter().max().unwrap() as f64 / *p.iter().min().unwrap() as f64;
    if let Some(rng) = rng {
        if ratio < threshold {
            return [Layout::Coronal, Layout::Axial, Layout::Sagittal][rng.below(3) as usize];
        }
    }
    let k = (0..3).fold(0, |best, i| if p[i] < p[best] { i } else { best });
    [Layout::Axial, Layout::Sagittal, Layout::Coronal][k]
}

/// Steps 4-10 on a cropped volume.
pub fn finish(c: &Cropped, cfg: &PrepConfig, mode: Mode) -> Result<Prepared, String> {
    finish_view(&c.data, View3::c_order(c.shape), &c.affine, cfg, mode)
}

/// Steps 4-10 on a crop given as a view (axes x, y, z) on `src`; copies the data once.
fn finish_view(
    src: &[f32],
    crop: View3,
    crop_affine: &Affine,
    cfg: &PrepConfig,
    mode: Mode,
) -> Result<Prepared, String> {
    let (mut rng, aug) = match mode {
        Mode::Eval => (None, None),
        Mode::Train { rng, augment } => (Some(rng), augment),
    };
    let layout = choose_layout(crop.shape, cfg.isotropy_threshold, rng.as_deref_mut());
    let order = layout.order();
    let v = crop.permute(order);
    let [d, h, w] = v.shape;
    // step 5: square in-plane crop of the longer axis
    let side = h.min(w);
    let diff = h.max(w) - side;
    let off = match rng.as_deref_mut() {
        Some(r) => r.int_inclusive(0, diff),
        None => diff / 2,
    };
    let ranges = if h > w {
        [(0, d), (off, off + side), (0, w)]
    } else {
        [(0, d), (0, h), (off, off + side)]
    };
    let v = v.crop(ranges);
    let mut arr = v.materialize(src);
    // step 6: percentile clip over all voxels, background included
    let (qlo, qhi) = cfg.clip_percentiles;
    let p = percentiles(&arr, &[qlo, qhi]);
    if p[1] <= p[0] {
        return Err(format!(
            "constant intensity after cropping (percentiles {qlo} and {qhi} are both {}); nothing to learn from",
            p[0]
        ));
    }
    clip(&mut arr, p[0], p[1]);
    // step 7: resize to [T, S, S]
    let out_shape = [cfg.depth, cfg.size, cfg.size];
    let mut out = resize_trilinear(&arr, v.shape, out_shape);
    // step 9: augmentation on clipped raw intensities
    if let (Some(r), Some(a)) = (rng, aug) {
        augment(&mut out, out_shape, a, r);
    }
    // step 10; below this spread the z-score's ε (1e-8) would distort the result by more than 0.01 %:
    // such intensities come from a broken scaling (e.g. scl_slope 1e-38), not from a scan
    let (_, std) = crate::intensity::mean_std(&out);
    if std.is_nan() || std < MIN_ZSCORE_STD {
        return Err(format!(
            "intensity spread too small to z-score (std {std:.3e} after clipping to {:.3e}..{:.3e}; at least \
             {MIN_ZSCORE_STD:e} needed): check the scan's intensity scaling (scl_slope)",
            p[0], p[1]
        ));
    }
    zscore(&mut out);
    let affine = output_affine(crop_affine, order, [ranges[1].0, ranges[2].0], v.shape, out_shape);
    Ok(Prepared {
        data: out,
        shape: out_shape,
        affine,
        layout,
        clip: (p[0], p[1]),
    })
}

/// NIfTI voxel (w, h, t) of the output → world, through resize, square crop and permutation.
fn output_affine(
    crop_affine: &Affine,
    order: [usize; 3],
    inplane_off: [usize; 2],
    pre: [usize; 3],
    out: [usize; 3],
) -> Affine {
    let scale = |k: usize| {
        if out[k] > 1 {
            (pre[k] - 1) as f64 / (out[k] - 1) as f64
        } else {
            0.0
        }
    };
    let mut m = [[0.0; 4]; 4];
    m[3][3] = 1.0;
    // output axis k (0 = t, 1 = h, 2 = w) is NIfTI axis 2 - k, and crop axis order[k]
    for k in 0..3 {
        m[order[k]][2 - k] = scale(k);
    }
    m[order[1]][3] = inplane_off[0] as f64;
    m[order[2]][3] = inplane_off[1] as f64;
    matmul(crop_affine, &m)
}

/// Evaluation-mode preprocessing of a whole volume (the `brainssl preprocess` contract).
pub fn preprocess_eval(vol: &Volume, fg: BoxIncl, cfg: &PrepConfig) -> Result<Prepared, String> {
    cfg.validate()?;
    let (v, affine) = crop_view(vol, fg, cfg.margin)?;
    finish_view(&vol.data, v, &affine, cfg, Mode::Eval)
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_scan::geometry::IDENTITY;
    use brainssl_scan::volume::ScanMeta;

    fn vol(dims: [usize; 3], affine: Affine, f: impl Fn(usize, usize, usize) -> f32) -> Volume {
        let mut data = Vec::new();
        for k in 0..dims[2] {
            for j in 0..dims[1] {
                for i in 0..dims[0] {
                    data.push(f(i, j, k));
                }
            }
        }
        Volume {
            data,
            dims,
            affine,
            meta: ScanMeta::default(),
        }
    }

    #[test]
    fn layout_follows_shortest_extent_with_first_min_on_ties() {
        assert_eq!(choose_layout([100, 120, 40], 1.4, None), Layout::Axial);
        assert_eq!(choose_layout([30, 120, 90], 1.4, None), Layout::Sagittal);
        assert_eq!(choose_layout([100, 20, 90], 1.4, None), Layout::Coronal);
        // ties: P = [Z, X, Y] = [50, 50, 50] → Z first
        assert_eq!(choose_layout([50, 50, 50], 1.4, None), Layout::Axial);
        let mut r = Rng::new(1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            seen.insert(choose_layout([50, 52, 48], 1.4, Some(&mut r)));
        }
        assert_eq!(seen.len(), 3);
        // anisotropic crops ignore the rng
        assert_eq!(choose_layout([100, 120, 40], 1.4, Some(&mut r)), Layout::Axial);
    }

    #[test]
    fn eval_output_shape_stats_and_geometry() {
        // RAS volume 20x24x10 at 1 mm, foreground everywhere but a frame
        let v = vol([20, 24, 10], IDENTITY, |i, j, k| (1 + i + 2 * j + 3 * k) as f32);
        let cfg = PrepConfig {
            depth: 8,
            size: 12,
            margin: 0,
            ..Default::default()
        };
        let p = preprocess_eval(&v, [(0, 19), (0, 23), (0, 9)], &cfg).unwrap();
        assert_eq!(p.shape, [8, 12, 12]);
        assert_eq!(p.layout, Layout::Axial);
        let (m, s) = crate::intensity::mean_std(&p.data);
        assert!(m.abs() < 1e-6 && (s - 1.0).abs() < 1e-4);
        // in-plane (x: 20, y: 24) → square crop of y with offset 2; corners of the output grid map
        // to crop voxels (0, 2, 0) and (19, 21, 9)
        let world = |w: f64, h: f64, t: f64| {
            let a = p.affine;
            [0, 1, 2].map(|r| a[r][0] * w + a[r][1] * h + a[r][2] * t + a[r][3])
        };
        assert_eq!(world(0.0, 0.0, 0.0), [0.0, 2.0, 0.0]);
        let far = world(11.0, 11.0, 7.0);
        assert!((far[0] - 19.0).abs() < 1e-9 && (far[1] - 21.0).abs() < 1e-9 && (far[2] - 9.0).abs() < 1e-9);
    }

    /// Intensities scaled to ~1e-36 (scl_slope 1e-38) would come out "z-scored" with std 1e-28:
    /// refused. The same scan at ordinary scale, or quantitative units of 1e-3 (ADC in mm²/s), passes.
    #[test]
    fn a_spread_too_small_to_zscore_is_refused() {
        let cfg = PrepConfig {
            depth: 8,
            size: 12,
            margin: 0,
            ..Default::default()
        };
        let fg = [(0, 19), (0, 23), (0, 9)];
        for (scale, ok) in [(1e-36f32, false), (1e-3, true), (1.0, true)] {
            let v = vol([20, 24, 10], IDENTITY, |i, j, k| scale * (1 + i + 2 * j + 3 * k) as f32);
            let r = preprocess_eval(&v, fg, &cfg);
            assert_eq!(r.is_ok(), ok, "scale {scale}: {:?}", r.as_ref().err());
            if !ok {
                assert!(r.unwrap_err().contains("too small to z-score"));
            }
        }
    }

    #[test]
    fn constant_volume_is_refused() {
        let v = vol([8, 8, 8], IDENTITY, |_, _, _| 3.0);
        let cfg = PrepConfig {
            depth: 4,
            size: 4,
            ..Default::default()
        };
        let e = preprocess_eval(&v, [(0, 7), (0, 7), (0, 7)], &cfg).unwrap_err();
        assert!(e.contains("constant"), "{e}");
    }

    #[test]
    fn training_mode_is_seeded() {
        let v = vol([30, 31, 29], IDENTITY, |i, j, k| {
            ((i * 7 + j * 3 + k) % 17) as f32 + 1.0
        });
        let cfg = PrepConfig {
            depth: 8,
            size: 8,
            margin: 0,
            ..Default::default()
        };
        let c = crop_foreground(&v, [(0, 29), (0, 30), (0, 28)], 0).unwrap();
        let aug = AugmentConfig::default();
        let run = |seed| {
            let mut r = Rng::new(seed);
            finish(
                &c,
                &cfg,
                Mode::Train {
                    rng: &mut r,
                    augment: Some(&aug),
                },
            )
            .unwrap()
            .data
        };
        assert_eq!(run(5), run(5));
        assert!((0..10).any(|s| run(s) != run(5)));
    }
}
