//! 3D Vision Transformer encoder (docs/method.md#encoder).

use brainssl_backend::tch::nn::Path;
use brainssl_backend::Tensor;
use brainssl_prep::rng::Rng;
use serde::{Deserialize, Serialize};

use crate::init::{constant, param, trunc_normal};
use crate::layers::{blocks, full, lowered, Block, BlockShape, LayerNorm, INIT_STD};
use crate::pos_embed::pos_embed_tensor;
use crate::tokens::TokenIndex;

/// Named encoder sizes of the reference factories (width / depth / heads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VitSize {
    /// 192 / 12 / 3
    Tiny,
    /// 384 / 12 / 6
    Small,
    /// 768 / 12 / 12 (the paper's encoder)
    Base,
    /// 1024 / 24 / 16
    Large,
}

impl VitSize {
    pub fn dims(self) -> (usize, usize, usize) {
        match self {
            VitSize::Tiny => (192, 12, 3),
            VitSize::Small => (384, 12, 6),
            VitSize::Base => (768, 12, 12),
            VitSize::Large => (1024, 24, 16),
        }
    }
}

/// Encoder hyperparameters. `tubelet` must equal `patch` (the MAE target's patchify uses one size;
/// docs/method.md#patch-embedding).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VitConfig {
    pub embed_dim: usize,
    pub depth: usize,
    pub heads: usize,
    pub mlp_ratio: f64,
    pub patch: usize,
    pub tubelet: usize,
    pub in_chans: usize,
    pub layer_norm_eps: f64,
}

impl VitConfig {
    pub fn sized(size: VitSize) -> Self {
        let (embed_dim, depth, heads) = size.dims();
        VitConfig {
            embed_dim,
            depth,
            heads,
            mlp_ratio: 4.0,
            patch: 8,
            tubelet: 8,
            in_chans: 1,
            layer_norm_eps: 1e-6,
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.patch != self.tubelet {
            anyhow::bail!("tubelet ({}) must equal patch ({})", self.tubelet, self.patch);
        }
        if self.embed_dim == 0 || self.depth == 0 || self.patch == 0 || self.in_chans == 0 {
            anyhow::bail!("embed_dim, depth, patch and in_chans must be positive");
        }
        if self.heads == 0 || !self.embed_dim.is_multiple_of(self.heads) {
            anyhow::bail!("embed_dim {} is not divisible by heads {}", self.embed_dim, self.heads);
        }
        if self.mlp_ratio <= 0.0 {
            anyhow::bail!("mlp_ratio must be positive");
        }
        Ok(())
    }

    pub fn block_shape(&self) -> BlockShape {
        BlockShape {
            dim: self.embed_dim,
            heads: self.heads,
            mlp_ratio: self.mlp_ratio,
            eps: self.layer_norm_eps,
        }
    }

    /// Token grid (depth, height, width) of a T×S×S volume.
    pub fn grid(&self, depth: usize, size: usize) -> [usize; 3] {
        [depth / self.tubelet, size / self.patch, size / self.patch]
    }

    /// The encoder's variables under `p` (`patch_embed.proj.weight`, `blocks.N.…`, `norm.…`).
    pub fn init(&self, p: Path, rng: &mut Rng) -> VisionTransformer3d {
        let (d, c, t, k) = (self.embed_dim, self.in_chans, self.tubelet, self.patch);
        let proj = &p / "patch_embed" / "proj";
        let w = trunc_normal(d * c * t * k * k, INIT_STD, 1.0, rng);
        let patch_embed = PatchEmbed {
            weight: param(&proj, "weight", &w, &[d, c, t, k, k]),
            bias: constant(&proj, "bias", &[d], 0.0),
            patch: k,
        };
        VisionTransformer3d {
            patch_embed,
            blocks: blocks(&p / "blocks", self.block_shape(), self.depth, rng),
            norm: LayerNorm::new(&p / "norm", d, self.layer_norm_eps),
            embed_dim: d,
        }
    }
}

/// The tubelet embedding: the reference's Conv3d with kernel = stride = (t, p, p), weight [D, C, t, p, p].
#[derive(Debug)]
pub struct PatchEmbed {
    pub weight: Tensor,
    pub bias: Tensor,
    pub patch: usize,
}

impl PatchEmbed {
    /// [B, C, T, H, W] → [B, N, D] in token order t·Hg·Wg + h·Wg + w.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let p = self.patch as i64;
        lowered(x)
            .conv3d(
                &lowered(&self.weight),
                Some(lowered(&self.bias)),
                [p, p, p],
                [0, 0, 0],
                [1, 1, 1],
                1,
            )
            .flatten(2, -1)
            .transpose(1, 2)
    }
}

/// Tubelet embedding, fixed sin-cos positions, pre-norm blocks and a final LayerNorm
/// (docs/method.md#encoder).
#[derive(Debug)]
pub struct VisionTransformer3d {
    pub patch_embed: PatchEmbed,
    pub blocks: Vec<Block>,
    pub norm: LayerNorm,
    pub embed_dim: usize,
}

impl VisionTransformer3d {
    pub fn embed_dim(&self) -> usize {
        self.embed_dim
    }

    /// Token embeddings plus positions, before the blocks: [B, N, D], float32.
    pub fn embed(&self, x: &Tensor) -> Tensor {
        let s = x.size();
        let p = self.patch_embed.patch as i64;
        let grid = [s[2] / p, s[3] / p, s[4] / p].map(|g| g as usize);
        let tokens = self.patch_embed.forward(x);
        full(&tokens) + pos_embed_tensor(grid, self.embed_dim, x.device())
    }

    /// Encodes a volume batch [B, C, T, H, W]; with `keep`, only those tokens enter the blocks.
    pub fn forward(&self, x: &Tensor, keep: Option<&TokenIndex>) -> Tensor {
        let mut h = self.embed(x);
        if let Some(keep) = keep {
            h = keep.gather(&h);
        }
        for block in &self.blocks {
            h = block.forward(&h);
        }
        self.norm.forward(&h)
    }
}
