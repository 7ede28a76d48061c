//! Mean-pooled token embeddings of scans (SPEC 5.9) from a frozen encoder, evaluation-mode input.

use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use brainssl_backend::{Device, Tensor, TensorData};
use brainssl_data::loader::{epoch_iter, Dataset, LoaderConfig};
use brainssl_data::ManifestRow;
use brainssl_models::VisionTransformer3d;
use brainssl_prep::PrepConfig;

/// Pooled embeddings [n][D] and, when asked, token grids [n][N·D].
pub type Embeddings = (Vec<Vec<f32>>, Vec<Vec<f32>>);

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
    let ds = Arc::new(Dataset {
        rows: rows.to_vec(),
        prep: prep.clone(),
        augment: None,
        cache: None,
    });
    let loader = LoaderConfig {
        batch_size: batch_size.max(1),
        shuffle: false,
        drop_last: false,
        training: false,
        workers: 2,
        prefetch: 2,
        seed: 0,
    };
    let (mut pooled, mut grids) = (Vec::with_capacity(rows.len()), Vec::new());
    for batch in epoch_iter(ds.clone(), &loader, 0) {
        if let Some((i, why)) = batch.failures.first() {
            bail!("{}: {why}", ds.rows[*i].path.display());
        }
        let x = Tensor::<5>::from_data(TensorData::new(batch.data, batch.shape), device);
        let h = encoder.forward(x, None);
        let [b, n, d] = h.dims();
        let host = |t: Tensor<3>| {
            t.into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow!("{e:?}"))
        };
        let mean = host(h.clone().mean_dim(1))?;
        pooled.extend(mean.chunks(d).map(|c| c.to_vec()));
        if tokens {
            let all = host(h)?;
            grids.extend(all.chunks(n * d).map(|c| c.to_vec()));
        }
        debug_assert_eq!(mean.len(), b * d);
    }
    Ok((pooled, grids))
}
