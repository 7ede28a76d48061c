//! 3D Vision Transformer encoder (SPEC 3.1).

use brainssl_backend::burn;
use brainssl_backend::burn::module::Module;
use brainssl_backend::burn::nn::Linear;
use brainssl_backend::{Device, Tensor};
use brainssl_prep::rng::Rng;
use serde::{Deserialize, Serialize};

use crate::layers::{blocks, linear, Block, BlockShape, LayerNorm};
use crate::pos_embed::pos_embed_tensor;
use crate::tokens::{patchify, TokenIndex};

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

/// Encoder hyperparameters. `tubelet` must equal `patch` (SPEC 4.1: patchify uses one size).
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

    pub fn validate(&self) -> Result<(), String> {
        if self.patch != self.tubelet {
            return Err(format!("tubelet ({}) must equal patch ({})", self.tubelet, self.patch));
        }
        if self.embed_dim == 0 || self.depth == 0 || self.patch == 0 || self.in_chans == 0 {
            return Err("embed_dim, depth, patch and in_chans must be positive".into());
        }
        if self.heads == 0 || !self.embed_dim.is_multiple_of(self.heads) {
            return Err(format!(
                "embed_dim {} is not divisible by heads {}",
                self.embed_dim, self.heads
            ));
        }
        if self.mlp_ratio <= 0.0 {
            return Err("mlp_ratio must be positive".into());
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

    pub fn init(&self, rng: &mut Rng, device: &Device) -> VisionTransformer3d {
        let p3 = self.patch * self.patch * self.tubelet * self.in_chans;
        VisionTransformer3d {
            patch_embed: linear(p3, self.embed_dim, 1.0, rng, device),
            blocks: blocks(self.block_shape(), self.depth, rng, device),
            norm: LayerNorm::new(self.embed_dim, self.layer_norm_eps, device),
            patch: self.patch,
        }
    }
}

/// Tubelet embedding, fixed sin-cos positions, pre-norm blocks and a final LayerNorm.
///
/// The tubelet embedding is the reference's Conv3d with kernel = stride, computed as patchify + Linear
/// (the same map, without a convolution kernel); a Conv3d weight [D, C, p, p, p] is this Linear's
/// weight transposed and reshaped.
#[derive(Module, Debug)]
pub struct VisionTransformer3d {
    pub patch_embed: Linear,
    pub blocks: Vec<Block>,
    pub norm: LayerNorm,
    #[module(skip)]
    pub patch: usize,
}

impl VisionTransformer3d {
    pub fn embed_dim(&self) -> usize {
        self.norm.gamma.dims()[0]
    }

    /// Token embeddings plus positions, before the blocks: [B, N, D].
    pub fn embed(&self, x: Tensor<5>) -> Tensor<3> {
        let [_, _, t, h, w] = x.dims();
        let grid = [t / self.patch, h / self.patch, w / self.patch];
        let tokens = self.patch_embed.forward(patchify(x, self.patch));
        let pos = pos_embed_tensor(grid, self.embed_dim(), &tokens.device());
        tokens + pos
    }

    /// Encodes a volume batch [B, C, T, H, W]; with `keep`, only those tokens enter the blocks.
    pub fn forward(&self, x: Tensor<5>, keep: Option<&TokenIndex>) -> Tensor<3> {
        let mut h = self.embed(x);
        if let Some(keep) = keep {
            h = keep.gather(h);
        }
        for block in &self.blocks {
            h = block.forward(h);
        }
        self.norm.forward(h)
    }
}
