//! MAE targets and the mosaic reconstruction of SPEC 4.1-4.2.

use brainssl_backend::Tensor;
use brainssl_models::{patchify, unpatchify, TokenIndex};

/// Targets: patches of the (z-scored) input at the masked positions, no per-patch normalisation.
pub fn mae_targets(x: Tensor<5>, patch: usize, tgt: &TokenIndex) -> Tensor<3> {
    tgt.gather(patchify(x, patch))
}

/// A volume whose visible tokens are the input's patches and whose masked tokens are the predictions
/// (SPEC 4.2 step 1); gradients reach only the predictions.
pub fn mosaic(x: Tensor<5>, pred: Tensor<3>, ctx: &TokenIndex, tgt: &TokenIndex, patch: usize) -> Tensor<5> {
    let [b, _, t, h, w] = x.dims();
    let grid = [t / patch, h / patch, w / patch];
    let n = grid.iter().product::<usize>();
    let visible = ctx.gather(patchify(x.detach(), patch));
    let joined = Tensor::cat(vec![visible, pred], 1);
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
    let order = match (ctx, tgt) {
        (TokenIndex::Shared(_), TokenIndex::Shared(_)) => TokenIndex::Shared(inverse(0)),
        _ => TokenIndex::PerSample((0..b).map(inverse).collect()),
    };
    unpatchify(order.gather(joined), patch, grid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_backend::{Device, TensorData};

    #[test]
    fn mosaic_takes_visible_input_and_predicted_targets() {
        let device = Device::flex();
        let x: Vec<f32> = (0..2 * 4 * 4 * 2).map(|i| i as f32).collect();
        let x = Tensor::<5>::from_data(TensorData::new(x, [2, 1, 4, 4, 2]), &device);
        // grid 2x2x1 with patch 2: 4 tokens of 8 voxels
        let ctx = TokenIndex::PerSample(vec![vec![0, 3], vec![1, 2]]);
        let tgt = TokenIndex::PerSample(vec![vec![1, 2], vec![0, 3]]);
        let pred = Tensor::<3>::ones([2, 2, 8], &device).neg();
        let m = mosaic(x.clone(), pred, &ctx, &tgt, 2);
        let mp = patchify(m, 2).into_data().try_to_vec::<f32>().unwrap();
        let xp = patchify(x, 2).into_data().try_to_vec::<f32>().unwrap();
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
    }
}
