//! Mean-pooled token embeddings of scans (docs/evaluation.md#representation-analysis) from a frozen
//! encoder, evaluation-mode input.

use std::sync::Arc;

use anyhow::{bail, Result};
use brainssl_backend::{autocast, tch, tensor, to_vec, Precision, Tensor};
use brainssl_data::loader::{epoch_iter, Dataset, LoaderConfig};
use brainssl_data::ManifestRow;
use brainssl_prep::PrepConfig;

use crate::encoder::Encoder;
use crate::standardise::Moments;

/// Pooled embeddings [n][D] and, when asked, token grids [n][N·D].
pub type Embeddings = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// How scans are batched and computed for embedding.
#[derive(Debug, Clone, Copy)]
pub struct EmbedPlan<'a> {
    pub prep: &'a PrepConfig,
    pub batch_size: usize,
    pub precision: Precision,
}

/// Runs `encoder` over `rows` (evaluation-mode input, no gradients) and hands each batch's tokens
/// [B, N, D] (float32) to `visit`, in row order. A scan that fails to load is an error naming it.
pub fn for_each_batch(
    encoder: &Encoder,
    rows: &[ManifestRow],
    plan: EmbedPlan,
    mut visit: impl FnMut(Tensor) -> Result<()>,
) -> Result<()> {
    let ds = Arc::new(Dataset {
        rows: rows.to_vec(),
        prep: plan.prep.clone(),
        augment: None,
        cache: None,
    });
    let loader = LoaderConfig::evaluation(plan.batch_size, 2);
    let device = encoder.vs.device();
    for batch in epoch_iter(ds.clone(), &loader, 0) {
        if let Some((i, why)) = batch.failures.first() {
            bail!("{}: {why}", ds.rows[*i].path.display());
        }
        let x = tensor(&batch.data, &batch.shape, device);
        let h = tch::no_grad(|| autocast(plan.precision, || encoder.vit.forward(&x, None)));
        visit(h)?;
    }
    Ok(())
}

/// One embedding per row, in row order: the mean over tokens of the encoder's output [N, D]; with
/// `tokens`, also the full [N, D] grid of each scan.
pub fn embed_rows(encoder: &Encoder, rows: &[ManifestRow], plan: EmbedPlan, tokens: bool) -> Result<Embeddings> {
    let (mut pooled, mut grids) = (Vec::with_capacity(rows.len()), Vec::new());
    for_each_batch(encoder, rows, plan, |h| {
        let s = h.size();
        let (n, d) = (s[1] as usize, s[2] as usize);
        let mean = h.mean_dim([1i64].as_slice(), false, brainssl_backend::Kind::Float);
        pooled.extend(to_vec(&mean).chunks(d).map(|c| c.to_vec()));
        if tokens {
            grids.extend(to_vec(&h).chunks(n * d).map(|c| c.to_vec()));
        }
        Ok(())
    })?;
    Ok((pooled, grids))
}

/// Per-channel moments of the encoder's tokens over `rows`, streamed (nothing is kept).
pub fn token_moments(encoder: &Encoder, rows: &[ManifestRow], plan: EmbedPlan) -> Result<Moments> {
    let mut m = Moments::new(encoder.vit.embed_dim());
    for_each_batch(encoder, rows, plan, |h| {
        m.add(&to_vec(&h));
        Ok(())
    })?;
    Ok(m)
}
