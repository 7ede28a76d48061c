//! The mask-token heads (docs/method.md#jepa-predictor, docs/method.md#mae-decoder): the JEPA
//! predictor and the MAE decoder, one structure, two output widths.

use brainssl_backend::tch::nn::Path;
use brainssl_backend::Tensor;
use brainssl_prep::rng::Rng;
use serde::{Deserialize, Serialize};

use crate::init::constant;
use crate::layers::{blocks, full, linear, Block, BlockShape, LayerNorm, Linear};
use crate::pos_embed::pos_embed_tensor;
use crate::tokens::TokenIndex;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictorConfig {
    pub depth: usize,
    pub embed_dim: usize,
    pub heads: usize,
    pub mlp_ratio: f64,
    pub layer_norm_eps: f64,
}

impl PredictorConfig {
    /// The reference's heads: 384 wide, 6 heads; depth 6 (JEPA predictor) or 8 (MAE decoder).
    pub fn reference(depth: usize) -> Self {
        PredictorConfig {
            depth,
            embed_dim: 384,
            heads: 6,
            mlp_ratio: 4.0,
            layer_norm_eps: 1e-6,
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.depth == 0 || self.embed_dim == 0 {
            anyhow::bail!("predictor depth and embed_dim must be positive");
        }
        if self.heads == 0 || !self.embed_dim.is_multiple_of(self.heads) {
            anyhow::bail!(
                "predictor embed_dim {} is not divisible by heads {}",
                self.embed_dim,
                self.heads
            );
        }
        Ok(())
    }

    /// `in_dim`: encoder width; `out_dim`: encoder width (JEPA) or p³·C voxels (MAE). Variables are
    /// named as the reference's predictor (`predictor_embed`, `mask_tokens.0`, `predictor_blocks.N`,
    /// `predictor_norm`, `predictor_proj`).
    pub fn init(&self, p: Path, in_dim: usize, out_dim: usize, rng: &mut Rng) -> MaskedPredictor {
        let shape = BlockShape {
            dim: self.embed_dim,
            heads: self.heads,
            mlp_ratio: self.mlp_ratio,
            eps: self.layer_norm_eps,
        };
        MaskedPredictor {
            predictor_embed: linear(&p / "predictor_embed", in_dim, self.embed_dim, 1.0, rng),
            mask_token: constant(&(&p / "mask_tokens"), "0", &[1, 1, self.embed_dim], 0.0),
            blocks: blocks(&p / "predictor_blocks", shape, self.depth, rng),
            norm: LayerNorm::new(&p / "predictor_norm", self.embed_dim, self.layer_norm_eps),
            predictor_proj: linear(&p / "predictor_proj", self.embed_dim, out_dim, 1.0, rng),
            dim: self.embed_dim,
        }
    }
}

/// Embeds context tokens, appends one zero-initialised mask token per target position (each with its
/// own positional embedding), runs the blocks over [context ; targets] and projects the targets.
#[derive(Debug)]
pub struct MaskedPredictor {
    pub predictor_embed: Linear,
    pub mask_token: Tensor,
    pub blocks: Vec<Block>,
    pub norm: LayerNorm,
    pub predictor_proj: Linear,
    pub dim: usize,
}

impl MaskedPredictor {
    /// `context`: encoder output [B, Nc, D_enc] at `ctx` positions of a token grid `grid`;
    /// returns predictions [B, Nt, out] for the `tgt` positions.
    pub fn forward(&self, context: &Tensor, ctx: &TokenIndex, tgt: &TokenIndex, grid: [usize; 3]) -> Tensor {
        let s = context.size();
        let (b, nc) = (s[0], s[1]);
        let nt = tgt.len() as i64;
        let dim = self.dim as i64;
        let pos = pos_embed_tensor(grid, self.dim, context.device());
        let x = full(&self.predictor_embed.forward(context)) + ctx.gather(&pos);
        let queries = (&self.mask_token + tgt.gather(&pos)).expand([b, nt, dim], false);
        let mut h = Tensor::cat(&[x, queries], 1);
        for block in &self.blocks {
            h = block.forward(&h);
        }
        let h = self.norm.forward(&h).narrow(1, nc, nt);
        full(&self.predictor_proj.forward(&h))
    }
}
