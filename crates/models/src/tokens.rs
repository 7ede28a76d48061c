//! Volumes ↔ token sequences (docs/method.md#mae-decoder) and token selection by mask indices
//! (docs/method.md#masks).

use brainssl_backend::{indices, Tensor};

/// [B, C, T, H, W] → [B, N, p³·C] with token order (t, h, w) and vector order (pd, ph, pw, c).
pub fn patchify(x: &Tensor, p: usize) -> Tensor {
    let s = x.size();
    let (b, c, t, h, w) = (s[0], s[1], s[2], s[3], s[4]);
    let p = p as i64;
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
pub fn unpatchify(tokens: &Tensor, p: usize, grid: [usize; 3]) -> Tensor {
    let s = tokens.size();
    let (b, n, v) = (s[0], s[1], s[2]);
    let [gt, gh, gw] = grid.map(|g| g as i64);
    assert_eq!(n, gt * gh * gw, "token count does not match the grid");
    let p = p as i64;
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

    /// Gathers tokens: [B, N, D] → [B, K, D]. A shared list keeps any batch size (also 1, for
    /// positional tables that broadcast); per-volume lists broadcast a batch of 1 to their count.
    pub fn gather(&self, x: &Tensor) -> Tensor {
        let device = x.device();
        match self {
            TokenIndex::Shared(v) => x.index_select(1, &indices(v, device)),
            TokenIndex::PerSample(rows) => {
                let s = x.size();
                let (b, d) = (rows.len() as i64, s[2]);
                assert!(
                    s[0] == b || s[0] == 1,
                    "mask rows ({b}) do not match the batch ({})",
                    s[0]
                );
                let k = rows[0].len();
                assert!(
                    rows.iter().all(|r| r.len() == k),
                    "per-volume masks must have equal lengths"
                );
                let flat: Vec<usize> = rows.iter().flatten().copied().collect();
                let idx = indices(&flat, device)
                    .view([b, k as i64, 1])
                    .expand([b, k as i64, d], false);
                x.expand([b, s[1], d], false).gather(1, &idx, false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_backend::{tensor, to_vec, Device};

    fn ramp(shape: [usize; 5]) -> (Vec<f32>, Tensor) {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let t = tensor(&v, &shape, Device::Cpu);
        (v, t)
    }

    #[test]
    fn patch_vectors_are_depth_major_cubes_in_token_order() {
        let (v, x) = ramp([2, 1, 4, 6, 4]);
        let p = 2;
        let tokens = to_vec(&patchify(&x, p));
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
        let back = unpatchify(&patchify(&x, 4), 4, [2, 3, 1]);
        assert_eq!(back.size(), vec![2, 1, 8, 12, 4]);
        assert_eq!(to_vec(&back), v);
    }

    #[test]
    fn gather_shared_and_per_sample() {
        let v: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let x = tensor(&v, &[2, 4, 3], Device::Cpu);
        let shared = TokenIndex::from_rows(&[vec![1, 3], vec![1, 3]]);
        assert!(matches!(shared, TokenIndex::Shared(_)));
        assert_eq!(
            to_vec(&shared.gather(&x)),
            vec![3., 4., 5., 9., 10., 11., 15., 16., 17., 21., 22., 23.]
        );
        let per = TokenIndex::from_rows(&[vec![0, 2], vec![3, 1]]);
        assert_eq!(
            to_vec(&per.gather(&x)),
            vec![0., 1., 2., 6., 7., 8., 21., 22., 23., 15., 16., 17.]
        );
        // a batch of one broadcasts to the rows (positional tables)
        let first = x.narrow(0, 0, 1);
        assert_eq!(
            to_vec(&per.gather(&first)),
            vec![0., 1., 2., 6., 7., 8., 9., 10., 11., 3., 4., 5.]
        );
    }
}
