//! Transformer building blocks shared by the encoder, predictor, decoder and classifier
//! (docs/method.md#encoder), with PyTorch's parameter names and layouts (Linear weight [out, in]).
//!
//! Matrix products run in the scope's compute kind ([`brainssl_backend::autocast`]); layer norms run
//! in float32 and return float32, so the residual stream stays float32 as under torch autocast.

use brainssl_backend::tch::nn::Path;
use brainssl_backend::{compute_kind, Kind, Tensor};
use brainssl_prep::rng::Rng;

use crate::init::{constant, param, trunc_normal};

/// Standard deviation of every Linear weight at initialisation (docs/method.md#encoder).
pub const INIT_STD: f64 = 0.02;

/// `x` in the compute kind of the current scope.
/// float64 stays (gradient checks run in f64).
pub fn lowered(x: &Tensor) -> Tensor {
    let k = compute_kind();
    if x.kind() == k || x.kind() == Kind::Double {
        x.shallow_clone()
    } else {
        x.to_kind(k)
    }
}

/// `x` in at least float32 precision (half kinds are raised; float64 stays, for gradient checks).
pub fn full(x: &Tensor) -> Tensor {
    match x.kind() {
        Kind::Half | Kind::BFloat16 => x.to_kind(Kind::Float),
        _ => x.shallow_clone(),
    }
}

/// y = x·Wᵀ + b with W [out, in].
#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

/// The reference initialisation: weight N(0, 0.02²)·`scale`, bias 0.
pub fn linear(p: Path, d_in: usize, d_out: usize, scale: f64, rng: &mut Rng) -> Linear {
    let w = trunc_normal(d_out * d_in, INIT_STD, scale, rng);
    Linear {
        weight: param(&p, "weight", &w, &[d_out, d_in]),
        bias: constant(&p, "bias", &[d_out], 0.0),
    }
}

impl Linear {
    pub fn forward(&self, x: &Tensor) -> Tensor {
        lowered(x).linear(&lowered(&self.weight), Some(lowered(&self.bias)))
    }
}

/// LayerNorm over the last dimension with learnable affine, (1, 0) at initialisation.
#[derive(Debug)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f64,
}

impl LayerNorm {
    pub fn new(p: Path, dim: usize, eps: f64) -> Self {
        LayerNorm {
            weight: constant(&p, "weight", &[dim], 1.0),
            bias: constant(&p, "bias", &[dim], 0.0),
            eps,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let d = self.weight.size()[0];
        full(x).layer_norm([d], Some(&self.weight), Some(&self.bias), self.eps, true)
    }
}

/// LayerNorm without parameters (the extra normalisation of JEPA targets, docs/method.md#jepa).
pub fn layer_norm_plain(x: &Tensor, eps: f64) -> Tensor {
    let d = *x.size().last().expect("a tensor with dimensions");
    full(x).layer_norm([d], None::<&Tensor>, None::<&Tensor>, eps, true)
}

/// Scaled dot-product attention over [B, H, N, hd], scale hd^−½, no mask: libtorch picks its flash or
/// memory-efficient kernel, so memory stays linear in N under autograd too.
pub fn sdpa(q: &Tensor, k: &Tensor, v: &Tensor) -> Tensor {
    Tensor::scaled_dot_product_attention(
        &lowered(q),
        &lowered(k),
        &lowered(v),
        None::<&Tensor>,
        0.0,
        false,
        None,
        false,
    )
}

/// [B, N, H·hd] → [B, H, N, hd]
pub fn split_heads(x: &Tensor, heads: usize) -> Tensor {
    let s = x.size();
    let (b, n, d) = (s[0], s[1], s[2]);
    let h = heads as i64;
    x.reshape([b, n, h, d / h]).transpose(1, 2)
}

/// [B, H, N, hd] → [B, N, H·hd]
pub fn merge_heads(x: &Tensor) -> Tensor {
    let s = x.size();
    let (b, h, n, hd) = (s[0], s[1], s[2], s[3]);
    x.transpose(1, 2).reshape([b, n, h * hd])
}

/// Multi-head self-attention with one fused qkv projection (split as [3, heads, head_dim]).
#[derive(Debug)]
pub struct SelfAttention {
    pub qkv: Linear,
    pub proj: Linear,
    pub heads: usize,
}

impl SelfAttention {
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let s = x.size();
        let (b, n, d) = (s[0], s[1], s[2]);
        let h = self.heads as i64;
        // [B, N, 3, H, hd] → [3, B, H, N, hd]
        let qkv = self
            .qkv
            .forward(x)
            .reshape([b, n, 3, h, d / h])
            .permute([2, 0, 3, 1, 4]);
        let out = sdpa(&qkv.get(0), &qkv.get(1), &qkv.get(2));
        self.proj.forward(&merge_heads(&out))
    }
}

/// fc1 → exact GELU → fc2.
#[derive(Debug)]
pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
}

impl Mlp {
    pub fn new(p: Path, dim: usize, hidden: usize, rescale: f64, rng: &mut Rng) -> Self {
        Mlp {
            fc1: linear(&p / "fc1", dim, hidden, 1.0, rng),
            fc2: linear(&p / "fc2", hidden, dim, rescale, rng),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.fc2.forward(&self.fc1.forward(x).gelu("none"))
    }
}

/// Width, heads, MLP ratio and LayerNorm eps of a stack of blocks.
#[derive(Debug, Clone, Copy)]
pub struct BlockShape {
    pub dim: usize,
    pub heads: usize,
    pub mlp_ratio: f64,
    pub eps: f64,
}

/// Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x)).
#[derive(Debug)]
pub struct Block {
    pub norm1: LayerNorm,
    pub attn: SelfAttention,
    pub norm2: LayerNorm,
    pub mlp: Mlp,
}

impl Block {
    /// `layer_id` is 1-based: the output projections are divided by sqrt(2·layer_id)
    /// (docs/method.md#encoder).
    pub fn new(p: Path, shape: BlockShape, layer_id: usize, rng: &mut Rng) -> Self {
        let BlockShape {
            dim,
            heads,
            mlp_ratio,
            eps,
        } = shape;
        let hidden = (dim as f64 * mlp_ratio) as usize;
        let rescale = 1.0 / (2.0 * layer_id as f64).sqrt();
        let norm1 = LayerNorm::new(&p / "norm1", dim, eps);
        let a = &p / "attn";
        let qkv = linear(&a / "qkv", dim, 3 * dim, 1.0, rng);
        let proj = linear(&a / "proj", dim, dim, rescale, rng);
        let norm2 = LayerNorm::new(&p / "norm2", dim, eps);
        let mlp = Mlp::new(&p / "mlp", dim, hidden, rescale, rng);
        Block {
            norm1,
            attn: SelfAttention { qkv, proj, heads },
            norm2,
            mlp,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let x = full(x) + self.attn.forward(&self.norm1.forward(x));
        &x + self.mlp.forward(&self.norm2.forward(&x))
    }
}

/// `depth` blocks named `0..depth` under `p`, with layer ids 1..=depth.
pub fn blocks(p: Path, shape: BlockShape, depth: usize, rng: &mut Rng) -> Vec<Block> {
    (0..depth).map(|i| Block::new(&p / i, shape, i + 1, rng)).collect()
}
