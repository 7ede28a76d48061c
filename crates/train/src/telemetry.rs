//! Collapse telemetry for joint-embedding runs: a collapsing encoder shows falling per-dimension
//! spread and effective rank of its target embeddings long before its loss says anything.

use brainssl_backend::{to_vec_f64, Kind, Tensor};
use nalgebra::DMatrix;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Mean over dimensions of the per-dimension standard deviation over all tokens.
    pub mean_std: f64,
    /// exp(entropy) of the normalised singular values of the centred embeddings (Roy & Vetterli),
    /// between 1 (collapsed to a line) and D.
    pub effective_rank: f64,
}

/// `z`: [B, N, D] embeddings; tokens of all volumes are samples.
pub fn spread(z: &Tensor) -> Spread {
    let s = z.size();
    let (rows, d) = ((s[0] * s[1]) as usize, s[2] as usize);
    let x = z.detach().to_kind(Kind::Double).reshape([rows as i64, d as i64]);
    let x = &x - x.mean_dim([0i64].as_slice(), true, Kind::Double);
    let gram = to_vec_f64(&x.transpose(0, 1).matmul(&x));
    let denom = (rows.max(2) - 1) as f64;
    let mean_std = (0..d).map(|i| (gram[i * d + i] / denom).max(0.0).sqrt()).sum::<f64>() / d as f64;
    let eig = DMatrix::from_row_slice(d, d, &gram).symmetric_eigenvalues();
    let sv: Vec<f64> = eig.iter().map(|&l| l.max(0.0).sqrt()).collect();
    let total: f64 = sv.iter().sum();
    let effective_rank = if total <= 0.0 {
        0.0
    } else {
        let h: f64 = sv
            .iter()
            .map(|s| s / total)
            .filter(|&p| p > 0.0)
            .map(|p| -p * p.ln())
            .sum();
        h.exp()
    };
    Spread {
        mean_std,
        effective_rank,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_backend::{tensor, Device};

    #[test]
    fn isotropic_and_collapsed_embeddings() {
        // ±1 Hadamard columns: orthogonal, equal singular values → effective rank = D
        let (rows, d) = (8, 4);
        let mut v = Vec::new();
        for i in 0..rows {
            for k in 0..d {
                v.push(if ((i & (k + 1)) as u32).count_ones().is_multiple_of(2) {
                    1.0f32
                } else {
                    -1.0
                });
            }
        }
        let s = spread(&tensor(&v, &[2, 4, d], Device::Cpu));
        assert!((s.effective_rank - 4.0).abs() < 1e-6, "{s:?}");
        assert!((s.mean_std - (8.0f64 / 7.0).sqrt()).abs() < 1e-6);
        // rank one: every token on one line
        let v: Vec<f32> = (0..8).flat_map(|i| [i as f32, 2.0 * i as f32, -(i as f32)]).collect();
        assert!((spread(&tensor(&v, &[1, 8, 3], Device::Cpu)).effective_rank - 1.0).abs() < 1e-3);
    }
}
