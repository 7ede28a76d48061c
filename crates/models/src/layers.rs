//! Transformer building blocks shared by the encoder, predictor and decoder (SPEC 3.1).

use brainssl_backend::burn;
use brainssl_backend::burn::module::{Module, Param};
use brainssl_backend::burn::nn::Linear;
use brainssl_backend::burn::tensor::activation::gelu;
use brainssl_backend::burn::tensor::module::{attention, layer_norm};
use brainssl_backend::burn::tensor::ops::AttentionModuleOptions;
use brainssl_backend::{Device, Tensor};
use brainssl_prep::rng::Rng;

use crate::init::{constant, trunc_normal_scaled};

/// Standard deviation of every Linear weight at initialisation (SPEC 3.1).
pub const INIT_STD: f64 = 0.02;

/// Linear layer with the reference initialisation: weight N(0, 0.02²)·`scale`, bias 0.
/// Burn stores the weight as [in, out].
pub fn linear(d_in: usize, d_out: usize, scale: f64, rng: &mut Rng, device: &Device) -> Linear {
    let weight = trunc_normal_scaled([d_in, d_out], INIT_STD, scale, rng, device);
    Linear {
        weight,
        bias: Some(constant([d_out], 0.0, device)),
    }
}

/// LayerNorm over the last dimension with learnable affine (1, 0) at initialisation.
#[derive(Module, Debug)]
pub struct LayerNorm {
    pub gamma: Param<Tensor<1>>,
    pub beta: Param<Tensor<1>>,
    #[module(skip)]
    pub eps: f64,
}

impl LayerNorm {
    pub fn new(dim: usize, eps: f64, device: &Device) -> Self {
        LayerNorm {
            gamma: constant([dim], 1.0, device),
            beta: constant([dim], 0.0, device),
            eps,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        layer_norm(x, self.gamma.val(), Some(self.beta.val()), self.eps)
    }
}

/// LayerNorm without parameters (the extra normalisation of JEPA targets, SPEC 4.4).
pub fn layer_norm_plain<const D: usize>(x: Tensor<D>, eps: f64) -> Tensor<D> {
    let dim = x.dims()[D - 1];
    let gamma = Tensor::ones([dim], &x.device());
    layer_norm(x, gamma, None, eps)
}

/// Scaled dot-product attention over [B, H, N, hd] with scale hd^−½ and no mask.
pub fn sdpa(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    let options = AttentionModuleOptions {
        scale: None,
        softcap: None,
        is_causal: false,
    };
    attention(q, k, v, None, None, options)
}

/// [B, N, H·hd] → [B, H, N, hd]
pub fn split_heads(x: Tensor<3>, heads: usize) -> Tensor<4> {
    let [b, n, d] = x.dims();
    x.reshape([b, n, heads, d / heads]).swap_dims(1, 2)
}

/// [B, H, N, hd] → [B, N, H·hd]
pub fn merge_heads(x: Tensor<4>) -> Tensor<3> {
    let [b, h, n, hd] = x.dims();
    x.swap_dims(1, 2).reshape([b, n, h * hd])
}

/// Multi-head self-attention with one fused qkv projection (split as [3, heads, head_dim]).
#[derive(Module, Debug)]
pub struct SelfAttention {
    pub qkv: Linear,
    pub proj: Linear,
    #[module(skip)]
    pub heads: usize,
}

impl SelfAttention {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let hd = d / self.heads;
        // [B, N, 3, H, hd] → [3, B, H, N, hd]
        let qkv = self
            .qkv
            .forward(x)
            .reshape([b, n, 3, self.heads, hd])
            .permute([2, 0, 3, 1, 4]);
        let part = |i: usize| qkv.clone().narrow(0, i, 1).reshape([b, self.heads, n, hd]);
        let out = sdpa(part(0), part(1), part(2));
        self.proj.forward(merge_heads(out))
    }
}

/// fc1 → exact GELU → fc2.
#[derive(Module, Debug)]
pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
}

impl Mlp {
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.fc2.forward(gelu(self.fc1.forward(x)))
    }
}

/// Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x)).
#[derive(Module, Debug)]
pub struct Block {
    pub norm1: LayerNorm,
    pub attn: SelfAttention,
    pub norm2: LayerNorm,
    pub mlp: Mlp,
}

/// Width, heads, MLP ratio and LayerNorm eps of a stack of blocks.
#[derive(Debug, Clone, Copy)]
pub struct BlockShape {
    pub dim: usize,
    pub heads: usize,
    pub mlp_ratio: f64,
    pub eps: f64,
}

impl Block {
    /// `layer_id` is 1-based: the output projections are divided by sqrt(2·layer_id) (SPEC 3.1).
    pub fn new(shape: BlockShape, layer_id: usize, rng: &mut Rng, device: &Device) -> Self {
        let BlockShape {
            dim,
            heads,
            mlp_ratio,
            eps,
        } = shape;
        let hidden = (dim as f64 * mlp_ratio) as usize;
        let rescale = 1.0 / (2.0 * layer_id as f64).sqrt();
        let norm1 = LayerNorm::new(dim, eps, device);
        let qkv = linear(dim, 3 * dim, 1.0, rng, device);
        let proj = linear(dim, dim, rescale, rng, device);
        let norm2 = LayerNorm::new(dim, eps, device);
        let fc1 = linear(dim, hidden, 1.0, rng, device);
        let fc2 = linear(hidden, dim, rescale, rng, device);
        Block {
            norm1,
            attn: SelfAttention { qkv, proj, heads },
            norm2,
            mlp: Mlp { fc1, fc2 },
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.norm1.forward(x));
        x.clone() + self.mlp.forward(self.norm2.forward(x))
    }
}

/// `depth` blocks with layer ids 1..=depth.
pub fn blocks(shape: BlockShape, depth: usize, rng: &mut Rng, device: &Device) -> Vec<Block> {
    (1..=depth).map(|id| Block::new(shape, id, rng, device)).collect()
}
