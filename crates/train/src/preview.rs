//! Orthogonal mid-slices as a grayscale PNG: rows input, masked input, reconstruction; columns
//! the three axes. Enough to see whether an MAE reconstructs anatomy or blurs.

use std::path::Path;

use anyhow::{Context, Result};
use brainssl_backend::{autocast, tch, tensor, to_vec, Device};
use brainssl_models::TokenIndex;
use brainssl_objectives::mosaic;
use brainssl_prep::Rng;

use crate::config::PretrainConfig;
use crate::step::Student;

/// Previews draw their masks from their own stream.
const PREVIEW_STREAM: u64 = 0x7072_6576;

/// Writes input / masked input / reconstruction of one volume [T, S, S] with the current weights.
pub fn write_preview(cfg: &PretrainConfig, student: &Student, volume: &[f32], epoch: usize, path: &Path) -> Result<()> {
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
    write_png(
        path,
        &[
            Slices { data: volume, shape },
            Slices { data: &masked, shape },
            Slices { data: &recon, shape },
        ],
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

    /// (width, height, pixels) of the three mid-planes side by side.
    fn strip(&self, lo: f32, hi: f32) -> (usize, usize, Vec<u8>) {
        let [t, h, w] = self.shape;
        let height = t.max(h);
        let width = w + w + h;
        let mut px = vec![0u8; width * height];
        let gray = |v: f32| (((v - lo) / (hi - lo).max(1e-6)).clamp(0.0, 1.0) * 255.0) as u8;
        // plane t = T/2 (rows h, columns w)
        for y in 0..h {
            for x in 0..w {
                px[y * width + x] = gray(self.at(t / 2, h - 1 - y, x));
            }
        }
        // plane h = H/2 (rows t, columns w)
        for y in 0..t {
            for x in 0..w {
                px[y * width + w + x] = gray(self.at(t - 1 - y, h / 2, x));
            }
        }
        // plane w = W/2 (rows t, columns h)
        for y in 0..t {
            for x in 0..h {
                px[y * width + 2 * w + x] = gray(self.at(t - 1 - y, x, w / 2));
            }
        }
        (width, height, px)
    }
}

/// Writes rows of volumes, all on the intensity window of the first (1st-99th percentile).
pub fn write_png(path: &Path, rows: &[Slices]) -> Result<()> {
    let mut sorted: Vec<f32> = rows[0].data.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f32::total_cmp);
    let q = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize];
    let (lo, hi) = (q(0.01), q(0.99));
    let strips: Vec<_> = rows.iter().map(|r| r.strip(lo, hi)).collect();
    let width = strips[0].0;
    let height: usize = strips.iter().map(|s| s.1).sum();
    let mut img = Vec::with_capacity(width * height);
    for (_, _, px) in &strips {
        img.extend_from_slice(px);
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, width as u32, height as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&img)?;
    }
    brainssl_scan::atomic_write(path, &bytes).with_context(|| path.display().to_string())
}
