//! The attentive classifier of SPEC 3.4 (D7): one learned query cross-attends to the encoder's
//! tokens, optional self-attention blocks refine it, and a 3-layer MLP maps it to class logits.

use brainssl_backend::burn;
use brainssl_backend::burn::module::{Module, Param};
use brainssl_backend::burn::nn::Linear;
use brainssl_backend::burn::tensor::activation::relu;
use brainssl_backend::{Device, Tensor};
use brainssl_prep::rng::Rng;
use serde::{Deserialize, Serialize};

use crate::init::trunc_normal;
use crate::layers::{linear, merge_heads, sdpa, split_heads, Block, BlockShape, LayerNorm, Mlp, INIT_STD};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// 1: the cross-attention block only (paper); 2: plus one self-attention block (reference HEAD).
    pub depth: usize,
    pub heads: usize,
    pub num_classes: usize,
}

impl ClassifierConfig {
    pub fn validate(&self, embed_dim: usize) -> Result<(), String> {
        if self.depth == 0 || self.num_classes < 2 {
            return Err("classifier depth must be >= 1 and num_classes >= 2".into());
        }
        if self.heads == 0 || !embed_dim.is_multiple_of(self.heads) {
            return Err(format!(
                "encoder width {embed_dim} is not divisible by {} classifier heads",
                self.heads
            ));
        }
        Ok(())
    }

    pub fn init(&self, embed_dim: usize, rng: &mut Rng, device: &Device) -> AttentiveClassifier {
        let d = embed_dim;
        let eps = 1e-5;
        let rescale = 1.0 / 2f64.sqrt();
        let shape = BlockShape {
            dim: d,
            heads: self.heads,
            mlp_ratio: 4.0,
            eps,
        };
        AttentiveClassifier {
            query: trunc_normal([1, 1, d], INIT_STD, rng, device),
            norm1: LayerNorm::new(d, eps, device),
            q_proj: linear(d, d, 1.0, rng, device),
            kv: linear(d, 2 * d, 1.0, rng, device),
            proj: linear(d, d, rescale, rng, device),
            norm2: LayerNorm::new(d, eps, device),
            mlp: Mlp {
                fc1: linear(d, 4 * d, 1.0, rng, device),
                fc2: linear(4 * d, d, rescale, rng, device),
            },
            // extra blocks are enumerated from 1 and use layer_id + 1 for their rescale
            blocks: (1..self.depth).map(|i| Block::new(shape, i + 1, rng, device)).collect(),
            linear1: linear(d, 192, 1.0, rng, device),
            linear2: linear(192, 96, 1.0, rng, device),
            linear3: linear(96, self.num_classes, 1.0, rng, device),
            heads: self.heads,
        }
    }
}

#[derive(Module, Debug)]
pub struct AttentiveClassifier {
    pub query: Param<Tensor<3>>,
    /// Normalises the keys/values (encoder tokens) only; the query is not normalised.
    pub norm1: LayerNorm,
    pub q_proj: Linear,
    pub kv: Linear,
    pub proj: Linear,
    pub norm2: LayerNorm,
    pub mlp: Mlp,
    pub blocks: Vec<Block>,
    pub linear1: Linear,
    pub linear2: Linear,
    pub linear3: Linear,
    #[module(skip)]
    pub heads: usize,
}

impl AttentiveClassifier {
    /// The pooled representation [B, D] of encoder tokens [B, N, D].
    pub fn pool(&self, x: Tensor<3>) -> Tensor<2> {
        let [b, _, d] = x.dims();
        let q = self.query.val().expand([b, 1, d]);
        let kv = self.kv.forward(self.norm1.forward(x));
        let (k, v) = (kv.clone().narrow(2, 0, d), kv.narrow(2, d, d));
        let heads = self.heads;
        let y = sdpa(
            split_heads(self.q_proj.forward(q.clone()), heads),
            split_heads(k, heads),
            split_heads(v, heads),
        );
        let mut q = q + self.proj.forward(merge_heads(y));
        q = q.clone() + self.mlp.forward(self.norm2.forward(q));
        for block in &self.blocks {
            q = block.forward(q);
        }
        q.reshape([b, d])
    }

    /// Class logits [B, C].
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let h = relu(self.linear1.forward(self.pool(x)));
        let h = relu(self.linear2.forward(h));
        self.linear3.forward(h)
    }
}
