//! Training augmentations (docs/preprocessing.md#augmentation), on a C-order [T, S, S] volume of
//! clipped raw intensities.
//!
//! Two one-of blocks as in the reference (torchio): spatial {random affine, left-right flip,
//! identity} then intensity {gamma, noise, blur, identity}, each child picked by normalised weight.
//! torchio's spatial axes are (h, w, t) with 1 mm voxels; "LR" is h.

use crate::rng::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// weights of random affine, flip, identity
    pub spatial_weights: [f64; 3],
    /// per-axis scale range of the random affine ((1, 1) disables scaling, as downstream does)
    pub scale_range: (f64, f64),
    /// rotation about each axis drawn from U(−deg, deg)
    pub rotation_degrees: f64,
    /// probability that the chosen flip actually flips
    pub flip_probability: f64,
    /// weights of gamma, noise, blur, identity
    pub intensity_weights: [f64; 4],
    /// γ = exp(U(−g, g))
    pub log_gamma: f64,
    /// noise σ ~ U(0, noise_std)
    pub noise_std: f64,
    /// blur σ per axis ~ U(lo, hi), in voxels (mm at 1 mm spacing)
    pub blur_std: (f64, f64),
}

impl Default for AugmentConfig {
    /// The reference's pretraining values (docs/preprocessing.md#augmentation).
    fn default() -> Self {
        AugmentConfig {
            spatial_weights: [0.3, 0.3, 0.4],
            scale_range: (0.9, 1.1),
            rotation_degrees: 10.0,
            flip_probability: 0.5,
            intensity_weights: [0.2, 0.2, 0.2, 0.4],
            log_gamma: 0.1,
            noise_std: 0.01,
            blur_std: (0.01, 0.02),
        }
    }
}

impl AugmentConfig {
    /// Downstream training (docs/preprocessing.md#augmentation): no scaling, the rest as in
    /// pretraining.
    pub fn downstream() -> Self {
        AugmentConfig {
            scale_range: (1.0, 1.0),
            ..Self::default()
        }
    }
}

/// Apply one spatial and one intensity augmentation in place. `shape` is [T, S, S].
pub fn augment(data: &mut [f32], shape: [usize; 3], cfg: &AugmentConfig, rng: &mut Rng) {
    match rng.choose_weighted(&cfg.spatial_weights) {
        0 => {
            let scales = [0; 3].map(|_| rng.range(cfg.scale_range.0, cfg.scale_range.1));
            let angles = [0; 3].map(|_| rng.range(-cfg.rotation_degrees, cfg.rotation_degrees).to_radians());
            random_affine(data, shape, scales, angles);
        }
        1 if rng.bernoulli(cfg.flip_probability) => flip_h(data, shape),
        _ => {}
    }
    match rng.choose_weighted(&cfg.intensity_weights) {
        0 => {
            let g = rng.range(-cfg.log_gamma, cfg.log_gamma).exp();
            gamma(data, g);
        }
        1 => {
            let sigma = rng.range(0.0, cfg.noise_std);
            for v in data.iter_mut() {
                *v += (sigma * rng.normal()) as f32;
            }
        }
        2 => {
            let s = [0; 3].map(|_| rng.range(cfg.blur_std.0, cfg.blur_std.1));
            // torchio's order (h, w, t) → our axes (t, h, w)
            gaussian_blur(data, shape, [s[2], s[0], s[1]]);
        }
        _ => {}
    }
}

/// torchio's RandomGamma: x^γ, or sign(x)·|x|^γ when negatives exist.
pub fn gamma(data: &mut [f32], g: f64) {
    let g = g as f32;
    for v in data.iter_mut() {
        *v = v.signum() * v.abs().powf(g);
    }
}

/// Reverse the h axis (torchio's "LR", spatial axis 0).
pub fn flip_h(data: &mut [f32], [t, h, w]: [usize; 3]) {
    for k in 0..t {
        let plane = &mut data[k * h * w..(k + 1) * h * w];
        for r in 0..h / 2 {
            let (a, b) = plane.split_at_mut((h - 1 - r) * w);
            a[r * w..(r + 1) * w].swap_with_slice(&mut b[..w]);
        }
    }
}

/// Rotation about each axis and per-axis scaling about the volume centre, trilinear, padded with
/// the volume minimum (torchio's default for RandomAffine).
pub fn random_affine(data: &mut [f32], shape: [usize; 3], scales: [f64; 3], angles: [f64; 3]) {
    let rot = |axis: usize, a: f64| -> [[f64; 3]; 3] {
        let (c, s) = (a.cos(), a.sin());
        let (p, q) = ((axis + 1) % 3, (axis + 2) % 3);
        let mut m = [[0.0; 3]; 3];
        m[axis][axis] = 1.0;
        m[p][p] = c;
        m[p][q] = -s;
        m[q][p] = s;
        m[q][q] = c;
        m
    };
    let mul = |a: [[f64; 3]; 3], b: [[f64; 3]; 3]| {
        let mut o = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                o[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
            }
        }
        o
    };
    // forward map A = R·diag(s); sampling needs A⁻¹ = diag(1/s)·Rᵀ
    let r = mul(mul(rot(0, angles[0]), rot(1, angles[1])), rot(2, angles[2]));
    let mut inv = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            inv[i][j] = r[j][i] / scales[i];
        }
    }
    let src = data.to_vec();
    let pad = src.iter().copied().fold(f32::INFINITY, f32::min);
    let c = shape.map(|n| (n as f64 - 1.0) / 2.0);
    let [_, h, w] = shape;
    data.par_chunks_mut(h * w).enumerate().for_each(|(t, plane)| {
        for y in 0..h {
            for x in 0..w {
                let d = [t as f64 - c[0], y as f64 - c[1], x as f64 - c[2]];
                let p = [0, 1, 2].map(|i| c[i] + inv[i][0] * d[0] + inv[i][1] * d[1] + inv[i][2] * d[2]);
                plane[y * w + x] = sample_trilinear(&src, shape, p, pad);
            }
        }
    });
}

fn sample_trilinear(src: &[f32], shape: [usize; 3], p: [f64; 3], pad: f32) -> f32 {
    let mut acc = 0.0f64;
    let f = p.map(f64::floor);
    for corner in 0..8 {
        let mut w = 1.0;
        let mut idx = 0usize;
        for a in 0..3 {
            let bit = (corner >> a) & 1;
            let i = f[a] as i64 + bit as i64;
            let frac = p[a] - f[a];
            w *= if bit == 1 { frac } else { 1.0 - frac };
            if w == 0.0 {
                break;
            }
            if i < 0 || i >= shape[a] as i64 {
                idx = usize::MAX;
                break;
            }
            idx = idx * shape[a] + i as usize;
        }
        if w == 0.0 {
            continue;
        }
        acc += w * if idx == usize::MAX { pad as f64 } else { src[idx] as f64 };
    }
    acc as f32
}

/// Separable Gaussian with scipy's kernel radius int(4σ + 0.5) and mirrored ("reflect") edges.
pub fn gaussian_blur(data: &mut [f32], shape: [usize; 3], sigma: [f64; 3]) {
    for (axis, &s) in sigma.iter().enumerate() {
        let radius = (4.0 * s + 0.5) as usize;
        if radius == 0 {
            continue;
        }
        let k: Vec<f64> = (-(radius as i64)..=radius as i64)
            .map(|x| (-0.5 * (x as f64 / s).powi(2)).exp())
            .collect();
        let norm: f64 = k.iter().sum();
        let k: Vec<f64> = k.iter().map(|v| v / norm).collect();
        let n = shape[axis];
        let stride: usize = shape[axis + 1..].iter().product();
        let src = data.to_vec();
        let reflect = |i: i64| -> usize {
            let period = 2 * n as i64;
            let m = i.rem_euclid(period);
            (if m < n as i64 { m } else { period - 1 - m }) as usize
        };
        for (idx, out) in data.iter_mut().enumerate() {
            let pos = (idx / stride) % n;
            let base = idx - pos * stride;
            let mut acc = 0.0;
            for (t, kv) in k.iter().enumerate() {
                let j = reflect(pos as i64 + t as i64 - radius as i64);
                acc += kv * src[base + j * stride] as f64;
            }
            *out = acc as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_affine_and_double_flip_change_nothing() {
        let shape = [4, 5, 6];
        let orig: Vec<f32> = (0..120).map(|v| (v * 7 % 13) as f32).collect();
        let mut d = orig.clone();
        random_affine(&mut d, shape, [1.0; 3], [0.0; 3]);
        assert!(d.iter().zip(&orig).all(|(a, b)| (a - b).abs() < 1e-5));
        flip_h(&mut d, shape);
        assert_eq!(d[0], orig[4 * 6]);
        flip_h(&mut d, shape);
        assert!(d.iter().zip(&orig).all(|(a, b)| (a - b).abs() < 1e-5));
    }

    #[test]
    fn quarter_turn_in_plane_rotates_the_grid() {
        // rotation of 90° about the t axis maps (h, w) → a permutation of the plane on a square grid
        let shape = [1, 3, 3];
        let orig: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let mut d = orig.clone();
        random_affine(&mut d, shape, [1.0; 3], [std::f64::consts::FRAC_PI_2, 0.0, 0.0]);
        let mut sorted = d.clone();
        sorted.sort_by(f32::total_cmp);
        assert!(sorted.iter().zip(&orig).all(|(a, b)| (a - b).abs() < 1e-5), "{d:?}");
        assert!((d[4] - 4.0).abs() < 1e-6);
        assert!(d.iter().zip(&orig).any(|(a, b)| (a - b).abs() > 0.5));
    }

    #[test]
    fn gamma_and_blur_known_values() {
        let mut d = vec![4.0, -4.0, 0.0];
        gamma(&mut d, 0.5);
        assert_eq!(d, vec![2.0, -2.0, 0.0]);
        // σ = 1: scipy.ndimage.gaussian_filter1d([0,0,0,1,0,0,0], 1) at the centre = 0.39894347
        let mut e = vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        gaussian_blur(&mut e, [1, 1, 7], [0.0, 0.0, 1.0]);
        assert!((e[3] - 0.398_943_47).abs() < 1e-6, "{e:?}");
        // the reference's tiny σ is a no-op, as in scipy (radius 0)
        let mut f = vec![1.0, 2.0, 3.0];
        gaussian_blur(&mut f, [1, 1, 3], [0.02; 3]);
        assert_eq!(f, vec![1.0, 2.0, 3.0]);
    }
}
