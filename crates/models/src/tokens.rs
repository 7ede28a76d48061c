//! Volumes ↔ token sequences (SPEC 4.1) and token selection by mask indices (SPEC 2.4).

use brainssl_backend::burn::tensor::Int;
use brainssl_backend::{Tensor, TensorData};

/// [B, C, T, H, W] → [B, N, p³·C] with token order (t, h, w) and vector order (pd, ph, pw, c).
pub fn patchify(x: Tensor<5>, p: usize) -> Tensor<3> {
    let [b, c, t, h, w] = x.dims();
    assert!(
        t % p == 0 && h % p == 0 && w % p == 0,
        "volume {t}x{h}x{w} is not a multiple of the patch {p}"
    );
    let (gt, gh, gw) = (t / p, h / p, w / p);
    x.reshape([b, c, gt, p, gh, p, gw, p])
        .permute([0, 2, 4, 6, 3, 5, 7, 1])
        .reshape([b, gt * gh * gw, p * p * p * c])
}

/// Inverse of [`patchify`] for a token grid `grid` = (Tg, Hg, Wg).
pub fn unpatchify(tokens: Tensor<3>, p: usize, grid: [usize; 3]) -> Tensor<5> {
    let [b, n, v] = tokens.dims();
    let [gt, gh, gw] = grid;
    assert_eq!(n, gt * gh * gw, "token count does not match the grid");
    let c = v / (p * p * p);
    tokens
        .reshape([b, gt, gh, gw, p, p, p, c])
        .permute([0, 7, 1, 4, 2, 5, 3, 6])
        .reshape([b, c, gt * p, gh * p, gw * p])
}

/// Token indices for every volume of a batch: one list shared by the batch (reference masks) or one
/// per volume (paper masks; equal lengths).
#[derive(Debug, Clone, PartialEq)]
pub enum TokenIndex {
    Shared(Vec<usize>),
    PerSample(Vec<Vec<usize>>),
}

impl TokenIndex {
    /// Shared when every row is the same list.
    pub fn from_rows(rows: &[Vec<usize>]) -> Self {
        if rows.windows(2).all(|w| w[0] == w[1]) {
            TokenIndex::Shared(rows[0].clone())
        } else {
            TokenIndex::PerSample(rows.to_vec())
        }
    }

    pub fn len(&self) -> usize {
        match self {
            TokenIndex::Shared(v) => v.len(),
            TokenIndex::PerSample(v) => v[0].len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Indices of volume `b`.
    pub fn row(&self, b: usize) -> &[usize] {
        match self {
            TokenIndex::Shared(v) => v,
            TokenIndex::PerSample(v) => &v[b],
        }
    }

    /// Gathers tokens: [B, N, D] → [B, K, D]. A shared list broadcasts over any batch size.
    pub fn gather(&self, x: Tensor<3>) -> Tensor<3> {
        let device = x.device();
        let [b, _, d] = x.dims();
        match self {
            TokenIndex::Shared(v) => {
                let idx: Vec<i64> = v.iter().map(|&i| i as i64).collect();
                let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [v.len()]), &device);
                x.select(1, idx)
            }
            TokenIndex::PerSample(rows) => {
                assert_eq!(rows.len(), b, "mask rows do not match the batch");
                let k = rows[0].len();
                let mut idx = Vec::with_capacity(b * k * d);
                for row in rows {
                    assert_eq!(row.len(), k, "per-volume masks must have equal lengths");
                    for &i in row {
                        idx.extend(std::iter::repeat_n(i as i64, d));
                    }
                }
                let idx = Tensor::<3, Int>::from_data(TensorData::new(idx, [b, k, d]), &device);
                x.gather(1, idx)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_backend::Device;

    fn ramp(shape: [usize; 5]) -> (Vec<f32>, Tensor<5>) {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let t = Tensor::from_data(TensorData::new(v.clone(), shape), &Device::flex());
        (v, t)
    }

    #[test]
    fn patch_vectors_are_depth_major_cubes_in_token_order() {
        let (v, x) = ramp([2, 1, 4, 6, 4]);
        let p = 2;
        let tokens = patchify(x, p).into_data().try_to_vec::<f32>().unwrap();
        let (gt, gh, gw) = (2, 3, 2);
        for b in 0..2 {
            for tok in 0..gt * gh * gw {
                let (t, h, w) = (tok / (gh * gw), (tok / gw) % gh, tok % gw);
                for k in 0..8 {
                    let (pd, ph, pw) = (k / 4, (k / 2) % 2, k % 2);
                    let (z, y, xx) = (t * p + pd, h * p + ph, w * p + pw);
                    let want = v[((b * 4 + z) * 6 + y) * 4 + xx];
                    assert_eq!(tokens[(b * 12 + tok) * 8 + k], want);
                }
            }
        }
    }

    #[test]
    fn unpatchify_inverts_patchify() {
        let (v, x) = ramp([2, 1, 8, 12, 4]);
        let back = unpatchify(patchify(x, 4), 4, [2, 3, 1]);
        assert_eq!(back.dims(), [2, 1, 8, 12, 4]);
        assert_eq!(back.into_data().try_to_vec::<f32>().unwrap(), v);
    }

    #[test]
    fn gather_shared_and_per_sample() {
        let x = Tensor::<3>::from_data(
            TensorData::new((0..24).map(|i| i as f32).collect::<Vec<_>>(), [2, 4, 3]),
            &Device::flex(),
        );
        let shared = TokenIndex::from_rows(&[vec![1, 3], vec![1, 3]]);
        assert!(matches!(shared, TokenIndex::Shared(_)));
        let g = shared.gather(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(g, vec![3., 4., 5., 9., 10., 11., 15., 16., 17., 21., 22., 23.]);
        let per = TokenIndex::from_rows(&[vec![0, 2], vec![3, 1]]);
        let g = per.gather(x).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(g, vec![0., 1., 2., 6., 7., 8., 21., 22., 23., 15., 16., 17.]);
    }
}
