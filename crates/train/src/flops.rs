//! Matrix-product FLOPs of a training step, for model FLOP utilisation (MFU): what the model needs,
//! not what the kernels happen to do (no recomputation, no attention-mask savings).
//!
//! A linear map of width a → b on n tokens costs 2·n·a·b forward; attention over n tokens of width
//! d costs 2·n²·d for QKᵀ and again for the weighted sum. Backward costs twice the forward, so a
//! trained module costs 3× its forward and the JEPA teacher (no gradient) 1×. Layer norms,
//! softmax, losses and the optimiser are left out: they are a few percent at ViT sizes.

use brainssl_models::{PredictorConfig, VitConfig};

use crate::config::PretrainConfig;

/// Forward FLOPs of `depth` pre-norm blocks of width `d` (MLP ratio `r`) over `n` tokens.
fn blocks(n: f64, d: f64, r: f64, depth: usize) -> f64 {
    let linear = 2.0 * n * d * d * (3.0 + 1.0 + 2.0 * r); // qkv, proj, fc1 + fc2
    let attention = 4.0 * n * n * d;
    depth as f64 * (linear + attention)
}

/// Forward FLOPs of the encoder on `seen` of `total` tokens (the tubelet embedding runs on all).
pub fn encoder_forward(e: &VitConfig, total: f64, seen: f64) -> f64 {
    let d = e.embed_dim as f64;
    let voxels = (e.tubelet * e.patch * e.patch * e.in_chans) as f64;
    2.0 * total * voxels * d + blocks(seen, d, e.mlp_ratio, e.depth)
}

/// Forward FLOPs of the predictor (JEPA) or decoder (MAE): `ctx` embeddings in, `tgt` out of width `out`.
pub fn head_forward(p: &PredictorConfig, encoder_dim: usize, out: usize, ctx: f64, tgt: f64) -> f64 {
    let dp = p.embed_dim as f64;
    2.0 * ctx * encoder_dim as f64 * dp + blocks(ctx + tgt, dp, p.mlp_ratio, p.depth) + 2.0 * tgt * dp * out as f64
}

/// FLOPs of one training micro-step on `batch` volumes with `ctx` context tokens of `total`
/// (the targets are the rest).
pub fn train_step(cfg: &PretrainConfig, batch: usize, total: usize, ctx: f64) -> f64 {
    let (n, tgt) = (total as f64, total as f64 - ctx);
    let e = &cfg.encoder;
    let student =
        encoder_forward(e, n, ctx) + head_forward(&cfg.predictor, e.embed_dim, cfg.objective.head_width(e), ctx, tgt);
    let teacher = if cfg.objective.needs_teacher() {
        encoder_forward(e, n, n)
    } else {
        0.0
    };
    batch as f64 * (3.0 * student + teacher)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ViT-B over 8000 tokens, counted by hand: 12 blocks × (24·n·d² + 4·n²·d) with n = 8000,
    /// d = 768, plus the 512-voxel tubelet embedding 2·n·512·d.
    #[test]
    fn vit_base_forward_matches_the_hand_count() {
        let e = VitConfig::sized(brainssl_models::VitSize::Base);
        let (n, d) = (8000.0f64, 768.0f64);
        let want = 12.0 * (24.0 * n * d * d + 4.0 * n * n * d) + 2.0 * n * 512.0 * d;
        assert!((encoder_forward(&e, n, n) / want - 1.0).abs() < 1e-12);
        // ≈ 3.72 TFLOP forward per 160³ volume: 1.36e12 in the linear maps, 2.36e12 in attention
        assert!((want / 1e12 - 3.724).abs() < 0.01, "{}", want / 1e12);
    }

    #[test]
    fn a_jepa_step_is_three_student_passes_and_one_teacher_pass() {
        let cfg = PretrainConfig::preset("jepa").unwrap();
        let n = 8000usize;
        let ctx = 3776.0;
        let e = &cfg.encoder;
        let student = encoder_forward(e, n as f64, ctx) + head_forward(&cfg.predictor, 768, 768, ctx, n as f64 - ctx);
        let want = 2.0 * (3.0 * student + encoder_forward(e, n as f64, n as f64));
        assert_eq!(train_step(&cfg, 2, n, ctx), want);
        // MAE has no teacher: its step is exactly three forwards
        let mae = PretrainConfig::preset("mae").unwrap();
        let s = encoder_forward(&mae.encoder, 5832.0, 2700.0) + head_forward(&mae.predictor, 768, 512, 2700.0, 3132.0);
        assert_eq!(train_step(&mae, 1, 5832, 2700.0), 3.0 * s);
    }
}
