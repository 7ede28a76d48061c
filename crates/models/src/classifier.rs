//! The attentive classifier (docs/method.md#attentive-classifier): one learned query cross-attends
//! to the encoder's tokens, optional self-attention blocks refine it, and a 3-layer MLP maps it to
//! class logits.

use brainssl_backend::tch::nn::Path;
use brainssl_backend::Tensor;
use brainssl_prep::rng::Rng;
use serde::{Deserialize, Serialize};

use crate::init::{param, trunc_normal};
use crate::layers::{
    full, linear, merge_heads, sdpa, split_heads, Block, BlockShape, LayerNorm, Linear, Mlp, INIT_STD,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// 1: the cross-attention block only (paper); 2: plus one self-attention block (reference HEAD).
    pub depth: usize,
    pub heads: usize,
    pub num_classes: usize,
}

impl ClassifierConfig {
    pub fn validate(&self, embed_dim: usize) -> anyhow::Result<()> {
        if self.depth == 0 || self.num_classes < 2 {
            anyhow::bail!("classifier depth must be >= 1 and num_classes >= 2");
        }
        if self.heads == 0 || !embed_dim.is_multiple_of(self.heads) {
            anyhow::bail!(
                "encoder width {embed_dim} is not divisible by {} classifier heads",
                self.heads
            );
        }
        Ok(())
    }

    /// Variables under `p`, named as V-JEPA's attentive pooler (`pooler.query_tokens`,
    /// `pooler.cross_attention_block.{norm1, xattn.q, xattn.kv, xattn.proj, norm2, mlp}`,
    /// `pooler.blocks.N`) plus the head `linear1..3`.
    pub fn init(&self, p: Path, embed_dim: usize, rng: &mut Rng) -> AttentiveClassifier {
        let d = embed_dim;
        let eps = 1e-5;
        let rescale = 1.0 / 2f64.sqrt();
        let shape = BlockShape {
            dim: d,
            heads: self.heads,
            mlp_ratio: 4.0,
            eps,
        };
        let pooler = &p / "pooler";
        let cab = &pooler / "cross_attention_block";
        let xattn = &cab / "xattn";
        let query = param(
            &pooler,
            "query_tokens",
            &trunc_normal(d, INIT_STD, 1.0, rng),
            &[1, 1, d],
        );
        let norm1 = LayerNorm::new(&cab / "norm1", d, eps);
        let q = linear(&xattn / "q", d, d, 1.0, rng);
        let kv = linear(&xattn / "kv", d, 2 * d, 1.0, rng);
        let proj = linear(&xattn / "proj", d, d, rescale, rng);
        let norm2 = LayerNorm::new(&cab / "norm2", d, eps);
        let mlp = Mlp::new(&cab / "mlp", d, 4 * d, rescale, rng);
        // extra blocks are enumerated from 1 and use layer_id + 1 for their rescale
        let blocks = (1..self.depth)
            .map(|i| Block::new(&pooler / "blocks" / (i - 1), shape, i + 1, rng))
            .collect();
        AttentiveClassifier {
            query,
            norm1,
            q,
            kv,
            proj,
            norm2,
            mlp,
            blocks,
            linear1: linear(&p / "linear1", d, 192, 1.0, rng),
            linear2: linear(&p / "linear2", 192, 96, 1.0, rng),
            linear3: linear(&p / "linear3", 96, self.num_classes, 1.0, rng),
            heads: self.heads,
        }
    }
}

#[derive(Debug)]
pub struct AttentiveClassifier {
    pub query: Tensor,
    /// Normalises the keys/values (encoder tokens) only; the query is not normalised.
    pub norm1: LayerNorm,
    pub q: Linear,
    pub kv: Linear,
    pub proj: Linear,
    pub norm2: LayerNorm,
    pub mlp: Mlp,
    pub blocks: Vec<Block>,
    pub linear1: Linear,
    pub linear2: Linear,
    pub linear3: Linear,
    pub heads: usize,
}

impl AttentiveClassifier {
    /// The pooled representation [B, D] of encoder tokens [B, N, D].
    pub fn pool(&self, x: &Tensor) -> Tensor {
        let s = x.size();
        let (b, d) = (s[0], s[2]);
        let q = self.query.expand([b, 1, d], false);
        let kv = self.kv.forward(&self.norm1.forward(x));
        let (k, v) = (kv.narrow(2, 0, d), kv.narrow(2, d, d));
        let y = sdpa(
            &split_heads(&self.q.forward(&q), self.heads),
            &split_heads(&k, self.heads),
            &split_heads(&v, self.heads),
        );
        let mut q = &q + full(&self.proj.forward(&merge_heads(&y)));
        q = &q + full(&self.mlp.forward(&self.norm2.forward(&q)));
        for block in &self.blocks {
            q = block.forward(&q);
        }
        q.reshape([b, d])
    }

    /// Class logits [B, C], float32.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.linear1.forward(&self.pool(x)).relu();
        let h = self.linear2.forward(&h).relu();
        full(&self.linear3.forward(&h))
    }
}
