//! Variance-covariance regulariser of VCR-JEPA (SPEC 4.5, D6), computed in float32.

use brainssl_backend::Tensor;
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

/// The two terms and their weighted sum α·var + β·cov.
pub struct VcrTerms {
    pub variance: Tensor<1>,
    pub covariance: Tensor<1>,
    pub total: Tensor<1>,
}

impl VcrLoss {
    /// `z`: [B, M, D] embeddings ([context ; detached targets]). Needs B ≥ 2.
    pub fn forward(&self, z: Tensor<3>) -> VcrTerms {
        let [b, m, d] = z.dims();
        assert!(b >= 2, "VCR needs at least 2 volumes per batch (got {b})");
        // variance over the batch, per token position and dimension (unbiased)
        let std = z.clone().var(0).add_scalar(self.eps).sqrt();
        let variance = std.neg().add_scalar(self.gamma).clamp_min(0.0).mean();
        // covariance over every token of every volume
        let n = b * m;
        let x = z.reshape([n, d]);
        let x = x.clone() - x.mean_dim(0);
        let cov = x.clone().transpose().matmul(x.clone()).div_scalar((n - 1) as f64);
        let diag = (x.clone() * x).sum_dim(0).div_scalar((n - 1) as f64);
        let off = (cov.clone() * cov).sum() - (diag.clone() * diag).sum();
        let covariance = off.div_scalar(d as f64);
        let total = variance.clone().mul_scalar(self.alpha) + covariance.clone().mul_scalar(self.beta);
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
    use brainssl_backend::{Device, TensorData};

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
        let z = Tensor::<3>::from_data(TensorData::new(v, [b, m, d]), &Device::flex());
        let t = VcrLoss::default().forward(z);
        assert_eq!(t.variance.into_scalar::<f32>(), 0.0);
        assert!(t.covariance.into_scalar::<f32>().abs() < 1e-10);
        assert!(t.total.into_scalar::<f32>().abs() < 1e-10);
    }

    #[test]
    fn positive_on_collapsed_features() {
        let z = Tensor::<3>::ones([4, 5, 6], &Device::flex()).mul_scalar(3.0);
        let t = VcrLoss::default().forward(z);
        // every std is sqrt(1e-4) = 0.01 → relu(1 − 0.01)
        assert!((t.variance.into_scalar::<f32>() - 0.99).abs() < 1e-5);
        // perfectly correlated (rank-1) features: covariance term > 0
        let mut v = Vec::new();
        for i in 0..4 {
            for j in 0..5 {
                let s = (i * 5 + j) as f32;
                v.extend([s, 2.0 * s, -s]);
            }
        }
        let z = Tensor::<3>::from_data(TensorData::new(v, [4, 5, 3]), &Device::flex());
        let t = VcrLoss::default().forward(z);
        assert!(t.covariance.into_scalar::<f32>() > 1.0);
    }
}
