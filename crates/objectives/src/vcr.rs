//! Variance-covariance regulariser of VCR-JEPA (docs/method.md#vcr-jepa), computed in float32.

use brainssl_backend::{Kind, Tensor};
use brainssl_models::layers::full;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VcrLoss {
    /// Weight of the variance term.
    pub alpha: f64,
    /// Weight of the covariance term.
    pub beta: f64,
    /// Target standard deviation.
    pub gamma: f64,
    /// Added to variances before the square root.
    pub eps: f64,
}

impl Default for VcrLoss {
    fn default() -> Self {
        VcrLoss {
            alpha: 1.0,
            beta: 0.1,
            gamma: 1.0,
            eps: 1e-4,
        }
    }
}

/// The two terms and their weighted sum α·var + β·cov (scalar tensors).
pub struct VcrTerms {
    pub variance: Tensor,
    pub covariance: Tensor,
    pub total: Tensor,
}

impl VcrLoss {
    /// `z`: [B, M, D] embeddings ([context ; detached targets]). Needs B ≥ 2.
    pub fn forward(&self, z: &Tensor) -> VcrTerms {
        let z = full(z);
        let s = z.size();
        let (b, m, d) = (s[0], s[1], s[2]);
        assert!(b >= 2, "VCR needs at least 2 volumes per batch (got {b})");
        // variance over the batch, per token position and dimension (unbiased)
        let std = (z.var_dim([0i64].as_slice(), true, false) + self.eps).sqrt();
        let variance = (-std + self.gamma).clamp_min(0.0).mean(Kind::Float);
        // covariance over every token of every volume
        let n = b * m;
        let x = z.reshape([n, d]);
        let x = &x - x.mean_dim([0i64].as_slice(), true, x.kind());
        let cov = x.transpose(0, 1).matmul(&x) / (n - 1) as f64;
        let off = cov.square().sum(Kind::Float) - cov.diagonal(0, 0, 1).square().sum(Kind::Float);
        let covariance = off / d as f64;
        let total = &variance * self.alpha + &covariance * self.beta;
        VcrTerms {
            variance,
            covariance,
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_backend::{scalar, tensor, Device};

    /// Sylvester Hadamard matrix of order 8, entries ±1.
    fn hadamard(i: usize, j: usize) -> f32 {
        if (i & j).count_ones().is_multiple_of(2) {
            1.0
        } else {
            -1.0
        }
    }

    #[test]
    fn zero_on_decorrelated_unit_variance_features() {
        // 8 volumes, 3 positions, 4 dims: column d is Hadamard column d+1 (centred, orthogonal)
        let (b, m, d) = (8, 3, 4);
        let mut v = Vec::new();
        for i in 0..b {
            for _ in 0..m {
                for k in 0..d {
                    v.push(hadamard(i, k + 1));
                }
            }
        }
        let t = VcrLoss::default().forward(&tensor(&v, &[b, m, d], Device::Cpu));
        // unbiased variance 8/7 > 1: no variance penalty
        assert_eq!(scalar(&t.variance), 0.0);
        assert!(scalar(&t.covariance).abs() < 1e-10);
        assert!(scalar(&t.total).abs() < 1e-10);
    }

    #[test]
    fn positive_on_collapsed_features() {
        let z = Tensor::ones([4, 5, 6], (Kind::Float, Device::Cpu)) * 3.0;
        let t = VcrLoss::default().forward(&z);
        // every std is sqrt(1e-4) = 0.01 → relu(1 − 0.01)
        assert!((scalar(&t.variance) - 0.99).abs() < 1e-5);
        // perfectly correlated (rank-1) features x, 2x, −x over 20 samples 0..19: var(x) = 35
        let mut v = Vec::new();
        for i in 0..20 {
            let s = i as f32;
            v.extend([s, 2.0 * s, -s]);
        }
        let t = VcrLoss::default().forward(&tensor(&v, &[4, 5, 3], Device::Cpu));
        // off-diagonal covariances: 2·(2·35)² + 2·(35)² + 2·(2·35)² = 9·35²·2 … divided by D = 3
        let c = 35.0f64;
        let want = 2.0 * ((2.0 * c).powi(2) + c.powi(2) + (2.0 * c).powi(2)) / 3.0;
        assert!(
            (scalar(&t.covariance) - want).abs() < 1e-3 * want,
            "{}",
            scalar(&t.covariance)
        );
    }
}
