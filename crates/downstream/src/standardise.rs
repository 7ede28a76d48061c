//! Per-channel standardisation of frozen encoder tokens with training-set statistics, before the
//! probe. Frozen SSL tokens can vary across subjects by a few percent of their scale (tiny-MAE on
//! the synthetic atrophy task: 0.03 between subjects against 0.7 between tokens); the attentive
//! probe with its 0.02-scale initialisation then sits at the ln 2 saddle (measured, in Burn and in
//! PyTorch alike). The MAE paper puts a parameter-free BatchNorm before its linear probe for the same
//! reason; this is that normalisation with statistics fixed once, so training and inference agree.

use brainssl_backend::tch::nn::Path;
use brainssl_backend::{tch, tensor, Device, Tensor};

/// Running per-channel sums over tokens, in f64.
#[derive(Debug, Clone)]
pub struct Moments {
    n: f64,
    sum: Vec<f64>,
    sq: Vec<f64>,
}

impl Moments {
    pub fn new(channels: usize) -> Self {
        Moments {
            n: 0.0,
            sum: vec![0.0; channels],
            sq: vec![0.0; channels],
        }
    }

    /// Adds tokens laid out [.., D] (row-major, D channels per token).
    pub fn add(&mut self, tokens: &[f32]) {
        let d = self.sum.len();
        for t in tokens.chunks_exact(d) {
            for ((s, q), &v) in self.sum.iter_mut().zip(&mut self.sq).zip(t) {
                let v = v as f64;
                *s += v;
                *q += v * v;
            }
            self.n += 1.0;
        }
    }

    /// Mean and population standard deviation per channel (floored at 1e-6: a constant channel
    /// stays finite).
    pub fn finish(&self) -> (Vec<f64>, Vec<f64>) {
        let n = self.n.max(1.0);
        let mean: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let std = self
            .sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| (q / n - m * m).max(0.0).sqrt().max(1e-6))
            .collect();
        (mean, std)
    }
}

/// (x − mean) / std per channel; the statistics are variables that are saved but never trained.
#[derive(Debug)]
pub struct TokenStandardiser {
    pub mean: Tensor,
    pub inv_std: Tensor,
}

impl TokenStandardiser {
    /// Buffers `mean` and `inv_std` under `p`.
    pub fn new(p: Path, moments: &Moments) -> Self {
        let (mean, std) = moments.finish();
        let d = mean.len();
        let buffer = |name: &str, v: Vec<f32>| {
            let t = p.zeros_no_train(name, &[d as i64]);
            tch::no_grad(|| t.shallow_clone().copy_(&tensor(&v, &[d], Device::Cpu)));
            t
        };
        TokenStandardiser {
            mean: buffer("mean", mean.iter().map(|&m| m as f32).collect()),
            inv_std: buffer("inv_std", std.iter().map(|&s| (1.0 / s) as f32).collect()),
        }
    }

    /// Standardised tokens [B, N, D].
    pub fn forward(&self, x: &Tensor) -> Tensor {
        (x - &self.mean) * &self.inv_std
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_backend::tch::nn::VarStore;
    use brainssl_backend::to_vec;

    #[test]
    fn moments_match_closed_form_and_standardise() {
        // two channels over three tokens: (1, 10), (2, 10), (3, 10)
        let mut m = Moments::new(2);
        m.add(&[1.0, 10.0, 2.0, 10.0]);
        m.add(&[3.0, 10.0]);
        let (mean, std) = m.finish();
        assert_eq!(mean, vec![2.0, 10.0]);
        assert!((std[0] - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(std[1], 1e-6);
        let vs = VarStore::new(Device::Cpu);
        let s = TokenStandardiser::new(vs.root() / "standardise", &m);
        let y = to_vec(&s.forward(&tensor(&[1.0, 10.0, 3.0, 10.0], &[1, 2, 2], Device::Cpu)));
        let r = 1.0 / (2.0f32 / 3.0).sqrt();
        for (a, b) in y.iter().zip([-r, 0.0, r, 0.0]) {
            assert!((a - b).abs() < 1e-5, "{y:?}");
        }
        assert!(!s.mean.requires_grad());
    }
}
