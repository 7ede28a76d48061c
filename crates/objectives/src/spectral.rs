//! The spectral loss of SL-MAE (docs/method.md#spectral-loss): per-sample z-score, unnormalised 3-D
//! FFT (`torch.fft.fftn`, any length, with autograd), hard radial high-pass mask, log(1 + |F| +
//! 1e-6), mean squared difference over all bins, in float32.

use brainssl_backend::{tensor, Device, Kind, Tensor};
use brainssl_models::layers::full;
use serde::{Deserialize, Serialize};

use brainssl_prep::frequency::normalised_radius;

/// 1 where the normalised radius r/max(r) ≥ `cutoff`, else 0, over the T×H×W bins in FFT order.
pub fn high_pass_mask([t, h, w]: [usize; 3], cutoff: f64) -> Vec<f32> {
    normalised_radius([t, h, w])
        .iter()
        .map(|&r| (r >= cutoff) as u8 as f32)
        .collect()
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

/// Per-volume (x − mean)/(unbiased std + 1e-6) over the last three axes of [V, T, H, W].
fn standardise(x: &Tensor) -> Tensor {
    let axes = [-3i64, -2, -1];
    let mean = x.mean_dim(axes.as_slice(), true, x.kind());
    let std = x.std_correction(axes.as_slice(), 1, true);
    (x - mean) / (std + 1e-6)
}

/// log(1 + |F| + 1e-6) of the unnormalised 3-D spectrum of [V, T, H, W].
fn log_spectrum(x: &Tensor) -> Tensor {
    let f = standardise(x).fft_fftn(None::<&[i64]>, [-3i64, -2, -1].as_slice(), "backward");
    (f.abs() + 1e-6).log1p()
}

impl SpectralLoss {
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(0.0..=1.0).contains(&self.cutoff) {
            anyhow::bail!("spectral cutoff {} is outside [0, 1]", self.cutoff);
        }
        Ok(())
    }

    fn mask(&self, shape: [usize; 3], device: Device) -> Option<Tensor> {
        self.high_pass
            .then(|| tensor(&high_pass_mask(shape, self.cutoff), &shape, device))
    }

    /// Loss between a reconstruction and the input, both [B, C, T, H, W]; averaged over channels.
    ///
    /// Masking the log-magnitude difference equals masking both spectra as the reference does: a
    /// dropped bin contributes 0 and stays in the denominator.
    pub fn forward(&self, recon: &Tensor, input: &Tensor) -> Tensor {
        let s = recon.size();
        let (b, c, t, h, w) = (s[0], s[1], s[2], s[3], s[4]);
        let flat = |x: &Tensor| full(x).reshape([b * c, t, h, w]);
        let diff = log_spectrum(&flat(recon)) - log_spectrum(&flat(&input.detach()));
        let diff = match self.mask([t, h, w].map(|v| v as usize), recon.device()) {
            Some(m) => diff * m,
            None => diff,
        };
        diff.square().mean(Kind::Float)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_backend::{scalar, to_vec};
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

    fn volume(rng: &mut Rng, shape: &[usize]) -> Vec<f32> {
        let n: usize = shape.iter().product();
        (0..n).map(|_| rng.normal() as f32).collect()
    }

    /// log(1 + |F| + 1e-6) of one standardised volume by a direct O(N²) DFT in f64.
    fn direct_log_spectrum(x: &[f32], [t, h, w]: [usize; 3]) -> Vec<f64> {
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let z: Vec<f64> = x.iter().map(|&v| (v as f64 - mean) / (var.sqrt() + 1e-6)).collect();
        let mut out = Vec::with_capacity(x.len());
        for (ft, fh, fw) in (0..t).flat_map(|a| (0..h).flat_map(move |b| (0..w).map(move |c| (a, b, c)))) {
            let (mut re, mut im) = (0.0, 0.0);
            for a in 0..t {
                for b in 0..h {
                    for c in 0..w {
                        let ph = 2.0
                            * std::f64::consts::PI
                            * ((a * ft) as f64 / t as f64 + (b * fh) as f64 / h as f64 + (c * fw) as f64 / w as f64);
                        let v = z[(a * h + b) * w + c];
                        re += v * ph.cos();
                        im -= v * ph.sin();
                    }
                }
            }
            out.push((1.0 + (re * re + im * im).sqrt() + 1e-6).ln());
        }
        out
    }

    #[test]
    fn matches_a_direct_dft_for_odd_and_even_lengths() {
        let mut rng = Rng::new(5);
        let shape = [5usize, 6, 7];
        let dims = [2, 1, 5, 6, 7];
        let (a, b) = (volume(&mut rng, &dims), volume(&mut rng, &dims));
        let loss = SpectralLoss::default();
        let got = scalar(&loss.forward(&tensor(&a, &dims, Device::Cpu), &tensor(&b, &dims, Device::Cpu)));
        let mask = high_pass_mask(shape, 0.3);
        let n = 210;
        let mut sum = 0.0;
        for v in 0..2 {
            let la = direct_log_spectrum(&a[v * n..(v + 1) * n], shape);
            let lb = direct_log_spectrum(&b[v * n..(v + 1) * n], shape);
            for k in 0..n {
                sum += (mask[k] as f64 * (la[k] - lb[k])).powi(2);
            }
        }
        let want = sum / (2 * n) as f64;
        assert!((got - want).abs() < 1e-5 * want, "fftn {got} vs direct DFT {want}");
        assert!(scalar(&loss.forward(&tensor(&a, &dims, Device::Cpu), &tensor(&a, &dims, Device::Cpu))).abs() < 1e-10);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = Rng::new(9);
        let shape = [1, 1, 4, 6, 5];
        let xv = volume(&mut rng, &shape);
        let target = tensor(&volume(&mut rng, &shape), &shape, Device::Cpu);
        let loss = SpectralLoss::default();
        let eval = |v: &[f32]| -> f64 {
            let x = tensor(v, &shape, Device::Cpu).to_kind(Kind::Double);
            scalar(&loss.forward(&x, &target.to_kind(Kind::Double)))
        };
        let x = tensor(&xv, &shape, Device::Cpu).set_requires_grad(true);
        loss.forward(&x, &target).backward();
        let g = to_vec(&x.grad());
        let eps = 1e-3f32;
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
