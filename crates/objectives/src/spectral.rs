//! The spectral loss of SL-MAE (SPEC 4.2, D5): per-sample z-score, unnormalised 3-D DFT, hard radial
//! high-pass mask, log(1 + |F| + 1e-6), mean squared difference over all bins.

use brainssl_backend::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use brainssl_prep::frequency::normalised_radius;

use crate::dft::{bins_layout, dft3};

/// 1 where the normalised radius r/max(r) ≥ `cutoff`, else 0, in [`dft3`]'s bin layout [H, W, T].
pub fn high_pass_mask([t, h, w]: [usize; 3], cutoff: f64) -> Vec<f32> {
    let r = normalised_radius([t, h, w]);
    let mut mask = vec![0.0f32; t * h * w];
    for a in 0..t {
        for b in 0..h {
            for c in 0..w {
                mask[bins_layout([t, h, w], a, b, c)] = (r[(a * h + b) * w + c] >= cutoff) as u8 as f32;
            }
        }
    }
    mask
}

/// Configuration of the spectral term (the schedule is the trainer's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpectralLoss {
    /// Apply the hard high-pass mask (true for SL-MAE).
    pub high_pass: bool,
    /// Normalised radius below which bins are dropped.
    pub cutoff: f64,
}

impl Default for SpectralLoss {
    fn default() -> Self {
        SpectralLoss {
            high_pass: true,
            cutoff: 0.3,
        }
    }
}

/// Per-volume (x − mean)/(unbiased std + 1e-6) over all voxels of [B, T, H, W].
fn standardise(x: Tensor<4>) -> Tensor<4> {
    let [b, t, h, w] = x.dims();
    let flat = x.reshape([b, t * h * w]);
    let mean = flat.clone().mean_dim(1);
    let std = flat.clone().var(1).sqrt().add_scalar(1e-6);
    ((flat - mean) / std).reshape([b, t, h, w])
}

/// log(1 + |F| + 1e-6); a tiny floor inside the square root keeps the gradient finite at |F| = 0.
fn log_magnitude(re: Tensor<4>, im: Tensor<4>) -> Tensor<4> {
    (re.clone() * re + im.clone() * im)
        .add_scalar(1e-20)
        .sqrt()
        .add_scalar(1.0 + 1e-6)
        .log()
}

impl SpectralLoss {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.cutoff) {
            return Err(format!("spectral cutoff {} is outside [0, 1]", self.cutoff));
        }
        Ok(())
    }

    fn mask(&self, shape: [usize; 3], device: &Device) -> Option<Tensor<4>> {
        self.high_pass.then(|| {
            let [t, h, w] = shape;
            Tensor::from_data(
                TensorData::new(high_pass_mask(shape, self.cutoff), [1, h, w, t]),
                device,
            )
        })
    }

    /// Loss between a reconstruction and the input, both [B, C, T, H, W]; averaged over channels.
    ///
    /// Masking the log-magnitude difference equals masking both spectra as the reference does: a
    /// dropped bin contributes 0 and stays in the denominator.
    pub fn forward(&self, recon: Tensor<5>, input: Tensor<5>) -> Tensor<1> {
        let [b, c, t, h, w] = recon.dims();
        let spectrum = |x: Tensor<5>| {
            let (re, im) = dft3(standardise(x.reshape([b * c, t, h, w])));
            log_magnitude(re, im)
        };
        let diff = spectrum(recon) - spectrum(input.detach());
        let diff = match self.mask([t, h, w], &diff.device()) {
            Some(m) => diff * m,
            None => diff,
        };
        (diff.clone() * diff).mean()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_prep::rng::Rng;

    fn kept(n: usize) -> f64 {
        let m = high_pass_mask([n, n, n], 0.3);
        m.iter().map(|&v| v as f64).sum::<f64>() / m.len() as f64
    }

    #[test]
    fn high_pass_keeps_about_92_66_percent_at_reference_sizes() {
        let (k160, k144) = (kept(160), kept(144));
        assert!((k160 - 0.9266).abs() < 5e-4, "{k160}");
        assert!((k144 - 0.9266).abs() < 1e-3, "{k144}");
        // the sphere of radius 0.3·(√3/2) in a unit cube of frequencies: 1 − (4/3)π(0.2598)³ = 0.9266
        let closed = 1.0 - 4.0 / 3.0 * std::f64::consts::PI * (0.3 * 3f64.sqrt() / 2.0).powi(3);
        assert!((k160 - closed).abs() < 5e-4);
    }

    fn volume(rng: &mut Rng, shape: [usize; 5]) -> (Vec<f32>, Tensor<5>) {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
        (v.clone(), Tensor::from_data(TensorData::new(v, shape), &Device::flex()))
    }

    #[test]
    fn identical_volumes_give_zero_and_different_ones_positive() {
        let mut rng = Rng::new(5);
        let (_, a) = volume(&mut rng, [2, 1, 6, 8, 8]);
        let (_, b) = volume(&mut rng, [2, 1, 6, 8, 8]);
        let loss = SpectralLoss::default();
        assert!(loss.forward(a.clone(), a.clone()).into_scalar::<f32>().abs() < 1e-10);
        assert!(loss.forward(a, b).into_scalar::<f32>() > 0.01);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = Rng::new(9);
        let shape = [1, 1, 4, 6, 5];
        let (xv, _) = volume(&mut rng, shape);
        let (_, target) = volume(&mut rng, shape);
        let device = Device::flex().autodiff();
        let target = target.to_device(&device);
        let loss = SpectralLoss {
            high_pass: true,
            cutoff: 0.3,
        };
        let eval = |v: &[f32]| -> f64 {
            let x = Tensor::<5>::from_data(TensorData::new(v.to_vec(), shape), &device);
            loss.forward(x, target.clone()).into_scalar::<f32>() as f64
        };
        let x = Tensor::<5>::from_data(TensorData::new(xv.clone(), shape), &device).require_grad();
        let grads = loss.forward(x.clone(), target.clone()).backward();
        let g = x.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
        let eps = 1e-2f32;
        for i in [0usize, 7, 31, 64, 119] {
            let (mut up, mut down) = (xv.clone(), xv.clone());
            up[i] += eps;
            down[i] -= eps;
            let fd = (eval(&up) - eval(&down)) / (2.0 * eps as f64);
            let err = (g[i] as f64 - fd).abs();
            assert!(
                err < 2e-2 * fd.abs().max(1e-2),
                "voxel {i}: autodiff {} vs finite difference {fd}",
                g[i]
            );
        }
    }
}
