//! Orthogonal mid-slices as a labelled SVG figure: rows input, masked input, reconstruction;
//! columns the three planes. Enough to see whether an MAE reconstructs anatomy or blurs.

use std::path::Path;

use anyhow::{Context, Result};
use brainssl_backend::{autocast, tch, tensor, to_vec, Device};
use brainssl_models::TokenIndex;
use brainssl_objectives::mosaic;
use brainssl_plot::{GrayImage, PanelGrid};
use brainssl_prep::{Prepared, Rng};

use crate::config::PretrainConfig;
use crate::step::Student;

/// Previews draw their masks from their own stream.
const PREVIEW_STREAM: u64 = 0x7072_6576;

/// Writes input / masked input / reconstruction of one volume [T, S, S] with the current weights.
pub fn write_preview(
    cfg: &PretrainConfig,
    student: &Student,
    input: &Prepared,
    epoch: usize,
    path: &Path,
) -> Result<()> {
    let volume = input.data.as_slice();
    let [t, s] = [cfg.data.prep.depth, cfg.data.prep.size];
    let device: Device = student.vs.device();
    let grid = cfg.encoder.grid(t, s);
    let masker = cfg.masker()?;
    let m = masker.sample(1, &mut Rng::for_item(cfg.seed ^ PREVIEW_STREAM, epoch as u64, 0));
    let (ctx, tgt) = (TokenIndex::from_rows(&m.context), TokenIndex::from_rows(&m.target));
    let precision = cfg.precision.resolve(device);
    let (masked, recon) = tch::no_grad(|| {
        autocast(precision, || {
            let x = tensor(volume, &[1, 1, t, s, s], device);
            let z = student.encoder.forward(&x, Some(&ctx));
            let pred = student.head.forward(&z, &ctx, &tgt, grid);
            let masked = mosaic(&x, &pred.zeros_like(), &ctx, &tgt, cfg.encoder.patch);
            let recon = mosaic(&x, &pred, &ctx, &tgt, cfg.encoder.patch);
            (to_vec(&masked), to_vec(&recon))
        })
    });
    let shape = [t, s, s];
    // voxel spacing of the output along (w, h, t): the affine's column norms
    let a = input.affine;
    let spacing = [0, 1, 2].map(|c| (0..3).map(|r| a[r][c] * a[r][c]).sum::<f64>().sqrt());
    write_figure(
        path,
        &format!("epoch {}: {} preview", epoch + 1, cfg.objective.name()),
        &[
            ("input", Slices { data: volume, shape }),
            ("masked input", Slices { data: &masked, shape }),
            ("reconstruction", Slices { data: &recon, shape }),
        ],
        spacing,
    )
}

/// One [T, S, S] volume (row-major).
pub struct Slices<'a> {
    pub data: &'a [f32],
    pub shape: [usize; 3],
}

impl Slices<'_> {
    fn at(&self, t: usize, h: usize, w: usize) -> f32 {
        let [_, hh, ww] = self.shape;
        self.data[(t * hh + h) * ww + w]
    }

    /// The three mid-planes, first row on top: axial (t = T/2, anterior up), coronal (h = H/2) and
    /// sagittal (w = W/2), both with the last slice on top. Each pixel is drawn at its physical
    /// aspect from the voxel `spacing` (w, h, t) in mm, so the anatomy keeps its true proportions.
    fn planes(&self, lo: f32, hi: f32, spacing: [f64; 3]) -> [GrayImage; 3] {
        let [t, h, w] = self.shape;
        let gray = |v: f32| (((v - lo) / (hi - lo).max(1e-6)).clamp(0.0, 1.0) * 255.0) as u8;
        let image = |width: usize, height: usize, aspect: f64, f: &dyn Fn(usize, usize) -> f32| GrayImage {
            width,
            height,
            pixels: (0..height)
                .flat_map(|y| (0..width).map(move |x| (y, x)))
                .map(|(y, x)| gray(f(y, x)))
                .collect(),
            pixel_aspect: aspect,
        };
        let [sw, sh, st] = spacing;
        [
            image(w, h, sh / sw, &|y, x| self.at(t / 2, h - 1 - y, x)),
            image(w, t, st / sw, &|y, x| self.at(t - 1 - y, h / 2, x)),
            image(h, t, st / sh, &|y, x| self.at(t - 1 - y, x, w / 2)),
        ]
    }
}

/// Writes labelled rows of volumes as an SVG figure, all on the intensity window of the first
/// (its 1st-99th percentile), at the physical aspect of voxels of `spacing` (w, h, t) mm.
pub fn write_figure(path: &Path, title: &str, rows: &[(&str, Slices)], spacing: [f64; 3]) -> Result<()> {
    let mut sorted: Vec<f32> = rows[0].1.data.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f32::total_cmp);
    let q = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize];
    let (lo, hi) = (q(0.01), q(0.99));
    let [t, s, _] = rows[0].1.shape;
    let grid = PanelGrid {
        title: title.to_string(),
        row_labels: rows.iter().map(|r| r.0.to_string()).collect(),
        col_labels: vec![
            format!("axial (slice {} of {t})", t / 2 + 1),
            "coronal (mid-plane)".into(),
            "sagittal (mid-plane)".into(),
        ],
        panels: rows.iter().map(|r| r.1.planes(lo, hi, spacing).to_vec()).collect(),
        note: format!(
            "model input {t} × {s} × {s}, voxels {:.2} × {:.2} × {:.2} mm (w × h × t), drawn at their physical aspect; window: 1st-99th percentile of the input",
            spacing[0], spacing[1], spacing[2]
        ),
        scale: (256.0 / s as f64).max(1.0),
    };
    let svg = grid.svg().map_err(anyhow::Error::msg)?;
    brainssl_scan::atomic_write(path, svg.as_bytes()).with_context(|| path.display().to_string())
}
