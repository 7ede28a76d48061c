//! Mean-pooled token embeddings of scans (SPEC 5.9) from a frozen encoder, evaluation-mode input.

use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use brainssl_backend::{Device, Tensor, TensorData};
use brainssl_data::loader::{epoch_iter, Dataset, LoaderConfig};
use brainssl_data::ManifestRow;
use brainssl_models::VisionTransformer3d;
use brainssl_prep::PrepConfig;

use crate::standardise::Moments;

/// Pooled embeddings [n][D] and, when asked, token grids [n][N·D].
pub type Embeddings = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// Runs `encoder` over `rows` (evaluation-mode input) and hands each batch's tokens [B, N, D] to
/// `visit`, in row order. A scan that fails to load is an error naming it.
pub fn for_each_batch(
    encoder: &VisionTransformer3d,
    rows: &[ManifestRow],
    prep: &PrepConfig,
    batch_size: usize,
    device: &Device,
    mut visit: impl FnMut(Tensor<3>) -> Result<()>,
) -> Result<()> {
    let ds = Arc::new(Dataset {
        rows: rows.to_vec(),
        prep: prep.clone(),
        augment: None,
        cache: None,
    });
    let loader = LoaderConfig::evaluation(batch_size, 2);
    for batch in epoch_iter(ds.clone(), &loader, 0) {
        if let Some((i, why)) = batch.failures.first() {
            bail!("{}: {why}", ds.rows[*i].path.display());
        }
        let x = Tensor::<5>::from_data(TensorData::new(batch.data, batch.shape), device);
        visit(encoder.forward(x, None))?;
    }
    Ok(())
}

fn host(t: Tensor<3>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow!("{e:?}"))
}

/// One embedding per row, in row order: the mean over tokens of the encoder's output [N, D]; with
/// `tokens`, also the full [N, D] grid of each scan.
pub fn embed_rows(
    encoder: &VisionTransformer3d,
    rows: &[ManifestRow],
    prep: &PrepConfig,
    batch_size: usize,
    device: &Device,
    tokens: bool,
) -> Result<Embeddings> {
    let (mut pooled, mut grids) = (Vec::with_capacity(rows.len()), Vec::new());
    for_each_batch(encoder, rows, prep, batch_size, device, |h| {
        let [_, n, d] = h.dims();
        pooled.extend(host(h.clone().mean_dim(1))?.chunks(d).map(|c| c.to_vec()));
        if tokens {
            grids.extend(host(h)?.chunks(n * d).map(|c| c.to_vec()));
        }
        Ok(())
    })?;
    Ok((pooled, grids))
}

/// Per-channel moments of the encoder's tokens over `rows`, streamed (nothing is kept).
pub fn token_moments(
    encoder: &VisionTransformer3d,
    rows: &[ManifestRow],
    prep: &PrepConfig,
    batch_size: usize,
    device: &Device,
) -> Result<Moments> {
    let mut m = Moments::new(encoder.embed_dim());
    for_each_batch(encoder, rows, prep, batch_size, device, |h| {
        m.add(&host(h)?);
        Ok(())
    })?;
    Ok(m)
}
