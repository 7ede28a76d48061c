//! MAE targets (docs/method.md#mae) and the mosaic reconstruction of the spectral loss
//! (docs/method.md#spectral-loss).

use brainssl_backend::{indices, Tensor};
use brainssl_models::layers::full;
use brainssl_models::{patchify, unpatchify, TokenIndex};

/// Targets: patches of the (z-scored) input at the masked positions, no per-patch normalisation.
pub fn mae_targets(x: &Tensor, patch: usize, tgt: &TokenIndex) -> Tensor {
    tgt.gather(&patchify(x, patch))
}

/// A volume whose visible tokens are the input's patches and whose masked tokens are the predictions
/// (docs/method.md#spectral-loss, step 1); gradients reach only the predictions.
pub fn mosaic(x: &Tensor, pred: &Tensor, ctx: &TokenIndex, tgt: &TokenIndex, patch: usize) -> Tensor {
    let s = x.size();
    let b = s[0] as usize;
    let p = patch as i64;
    let grid = [s[2] / p, s[3] / p, s[4] / p].map(|g| g as usize);
    let n = grid.iter().product::<usize>();
    let visible = ctx.gather(&patchify(&x.detach(), patch));
    let joined = Tensor::cat(&[visible, full(pred)], 1);
    // joined holds [ctx ; tgt]; put every token back at its grid position
    let inverse = |row: usize| {
        let mut inv = vec![usize::MAX; n];
        for (k, &i) in ctx.row(row).iter().chain(tgt.row(row)).enumerate() {
            inv[i] = k;
        }
        assert!(
            inv.iter().all(|&k| k != usize::MAX),
            "context and target do not cover the grid"
        );
        inv
    };
    let ordered = match (ctx, tgt) {
        (TokenIndex::Shared(_), TokenIndex::Shared(_)) => joined.index_select(1, &indices(&inverse(0), x.device())),
        _ => TokenIndex::PerSample((0..b).map(inverse).collect()).gather(&joined),
    };
    unpatchify(&ordered, patch, grid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_backend::{tensor, to_vec, Device, Kind};

    #[test]
    fn mosaic_takes_visible_input_and_predicted_targets() {
        let x: Vec<f32> = (0..2 * 4 * 4 * 2).map(|i| i as f32).collect();
        let x = tensor(&x, &[2, 1, 4, 4, 2], Device::Cpu);
        // grid 2x2x1 with patch 2: 4 tokens of 8 voxels
        let ctx = TokenIndex::PerSample(vec![vec![0, 3], vec![1, 2]]);
        let tgt = TokenIndex::PerSample(vec![vec![1, 2], vec![0, 3]]);
        let pred = -Tensor::ones([2, 2, 8], (Kind::Float, Device::Cpu));
        let m = mosaic(&x, &pred, &ctx, &tgt, 2);
        let mp = to_vec(&patchify(&m, 2));
        let xp = to_vec(&patchify(&x, 2));
        for (b, visible) in [(0usize, [0usize, 3]), (1, [1, 2])] {
            for tok in 0..4 {
                let s = (b * 4 + tok) * 8;
                if visible.contains(&tok) {
                    assert_eq!(mp[s..s + 8], xp[s..s + 8]);
                } else {
                    assert!(mp[s..s + 8].iter().all(|&v| v == -1.0));
                }
            }
        }
        // shared masks take the same path through one index
        let (ctx, tgt) = (TokenIndex::Shared(vec![0, 3]), TokenIndex::Shared(vec![1, 2]));
        let m = to_vec(&patchify(&mosaic(&x, &pred, &ctx, &tgt, 2), 2));
        assert_eq!(m[..8], xp[..8]);
        assert!(m[8..24].iter().all(|&v| v == -1.0));
    }
}
