//! The training data of a run: the dataset with its crop cache and the shuffled, augmented batches
//! of each epoch (a deterministic function of seed and epoch, whatever the worker count).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Result};
use brainssl_data::cache::CropCache;
use brainssl_data::loader::{epoch_iter_from, Batch, Dataset, LoaderConfig};
use brainssl_data::ManifestRow;

use crate::config::PretrainConfig;

pub struct TrainData {
    pub ds: Arc<Dataset>,
    pub loader: LoaderConfig,
    /// Batches per epoch.
    pub ipe: usize,
}

impl TrainData {
    /// Rank `rank` of `world` data-parallel ranks, each taking `batch_size` volumes of every global
    /// batch of `batch_size · world`.
    pub fn new(
        cfg: &PretrainConfig,
        rows: Vec<ManifestRow>,
        run_dir: &Path,
        rank: usize,
        world: usize,
    ) -> Result<Self> {
        let b = cfg.data.batch_size;
        let cache = (!cfg.data.cache_dir.is_empty()).then(|| {
            let d = PathBuf::from(&cfg.data.cache_dir);
            CropCache::new(if d.is_absolute() { d } else { run_dir.join(d) })
        });
        let ds = Arc::new(Dataset {
            rows,
            prep: cfg.data.prep.clone(),
            augment: cfg.data.augment.clone(),
            cache,
        });
        let loader = LoaderConfig {
            batch_size: b * world,
            shuffle: true,
            drop_last: true,
            training: true,
            workers: cfg.data.workers.max(1),
            prefetch: 2,
            seed: cfg.seed,
            rank,
            world,
        };
        let ipe = ds.batches(&loader, 0).len();
        if ipe == 0 {
            bail!(
                "the manifest has {} scans, fewer than one batch of {} ({b} per rank x {world})",
                ds.rows.len(),
                b * world,
            );
        }
        Ok(TrainData { ds, loader, ipe })
    }

    /// The batches of `epoch` from batch `first` on, numbered from `first`.
    pub fn epoch(&self, epoch: usize, first: usize) -> impl Iterator<Item = (usize, Batch)> {
        epoch_iter_from(self.ds.clone(), &self.loader, epoch as u64, first)
            .enumerate()
            .map(move |(i, b)| (first + i, b))
    }
}
