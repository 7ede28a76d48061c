//! Batch sources for the training loop: scans through the preprocessing pipeline (augmented for
//! training), or encoder tokens computed once for a frozen probe.

use std::sync::Arc;

use anyhow::{bail, Result};
use brainssl_backend::{tensor, Device, Tensor};
use brainssl_data::loader::{epoch_iter, Dataset, LoaderConfig};
use brainssl_data::ManifestRow;

use crate::config::DownstreamConfig;
use crate::embed::{embed_rows, EmbedPlan};
use crate::encoder::Encoder;
use crate::fit::{Batches, Part, Splits};
use crate::standardise::Moments;

fn loader(cfg: &DownstreamConfig, training: bool) -> LoaderConfig {
    LoaderConfig {
        shuffle: training,
        training,
        seed: cfg.seed,
        ..LoaderConfig::evaluation(cfg.batch_size, cfg.workers)
    }
}

fn dataset(rows: &[ManifestRow], cfg: &DownstreamConfig, training: bool) -> Arc<Dataset> {
    Arc::new(Dataset {
        rows: rows.to_vec(),
        prep: cfg.prep.clone(),
        augment: if training { cfg.augment.clone() } else { None },
        cache: None,
    })
}

/// Scans [B, 1, T, H, W], loaded and preprocessed by background workers every epoch.
pub struct ImageBatches {
    train: Arc<Dataset>,
    val: Arc<Dataset>,
    test: Arc<Dataset>,
    train_loader: LoaderConfig,
    eval_loader: LoaderConfig,
}

impl ImageBatches {
    pub fn new(cfg: &DownstreamConfig, splits: &Splits) -> Self {
        ImageBatches {
            train: dataset(&splits.train, cfg, true),
            val: dataset(&splits.val, cfg, false),
            test: dataset(&splits.test, cfg, false),
            train_loader: loader(cfg, true),
            eval_loader: loader(cfg, false),
        }
    }
}

impl Batches for ImageBatches {
    fn steps_per_epoch(&self) -> usize {
        self.train.batches(&self.train_loader, 0).len()
    }

    fn train<'a>(
        &'a self,
        epoch: usize,
        device: Device,
        warn: &'a dyn Fn(String),
    ) -> Box<dyn Iterator<Item = (Tensor, Vec<usize>)> + 'a> {
        let it = epoch_iter(self.train.clone(), &self.train_loader, epoch as u64);
        Box::new(it.filter_map(move |batch| {
            for (i, why) in &batch.failures {
                warn(format!(
                    "skipped {} in epoch {epoch}: {why}",
                    self.train.rows[*i].path.display()
                ));
            }
            if batch.shape[0] == 0 {
                return None;
            }
            let labels = batch.labels.iter().map(|&l| l as usize).collect();
            Some((tensor(&batch.data, &batch.shape, device), labels))
        }))
    }

    fn eval<'a>(&'a self, part: Part, device: Device) -> Box<dyn Iterator<Item = Result<Tensor>> + 'a> {
        let ds = match part {
            Part::Val => self.val.clone(),
            Part::Test => self.test.clone(),
        };
        let it = epoch_iter(ds.clone(), &self.eval_loader, 0);
        Box::new(it.map(move |batch| {
            if let Some((i, why)) = batch.failures.first() {
                bail!("{}: {why}", ds.rows[*i].path.display());
            }
            Ok(tensor(&batch.data, &batch.shape, device))
        }))
    }
}

/// Token grids [N, D] of every scan, computed once by a frozen encoder from evaluation-mode input.
/// A frozen probe then costs one encoder pass per scan instead of one per scan and epoch, at the
/// price of no training augmentation; memory is scans × N × D × 4 bytes.
pub struct TokenBatches {
    /// The training rows (no scans are read through it: it orders the batches as the image loader).
    order: Arc<Dataset>,
    loader: LoaderConfig,
    train: Vec<Vec<f32>>,
    val: Vec<Vec<f32>>,
    test: Vec<Vec<f32>>,
    tokens: [usize; 2],
}

impl TokenBatches {
    /// Runs the frozen `encoder` over the three splits.
    pub fn new(encoder: &Encoder, cfg: &DownstreamConfig, splits: &Splits) -> Result<Self> {
        let plan = EmbedPlan {
            prep: &cfg.prep,
            batch_size: cfg.batch_size,
            precision: cfg.precision.resolve(encoder.vs.device()),
        };
        let grids = |rows: &[ManifestRow]| -> Result<Vec<Vec<f32>>> { Ok(embed_rows(encoder, rows, plan, true)?.1) };
        let d = encoder.vit.embed_dim();
        let (train, val, test) = (grids(&splits.train)?, grids(&splits.val)?, grids(&splits.test)?);
        let n = train.first().map_or(0, |g| g.len() / d);
        if let Some(g) = train.iter().chain(&val).chain(&test).find(|g| g.len() != n * d) {
            bail!("a token grid has {} values, expected {n} × {d}", g.len());
        }
        Ok(TokenBatches {
            order: dataset(&splits.train, cfg, false),
            loader: loader(cfg, true),
            train,
            val,
            test,
            tokens: [n, d],
        })
    }

    /// Per-channel moments of the training tokens.
    pub fn train_moments(&self) -> Moments {
        let mut m = Moments::new(self.tokens[1]);
        for g in &self.train {
            m.add(g);
        }
        m
    }

    /// Bytes held by the cache.
    pub fn bytes(&self) -> usize {
        (self.train.len() + self.val.len() + self.test.len()) * self.tokens[0] * self.tokens[1] * 4
    }

    fn stack(&self, grids: &[&Vec<f32>], device: Device) -> Tensor {
        let [n, d] = self.tokens;
        let data: Vec<f32> = grids.iter().flat_map(|g| g.iter().copied()).collect();
        tensor(&data, &[grids.len(), n, d], device)
    }
}

impl Batches for TokenBatches {
    fn steps_per_epoch(&self) -> usize {
        self.order.batches(&self.loader, 0).len()
    }

    fn train<'a>(
        &'a self,
        epoch: usize,
        device: Device,
        _warn: &'a dyn Fn(String),
    ) -> Box<dyn Iterator<Item = (Tensor, Vec<usize>)> + 'a> {
        let plan = self.order.batches(&self.loader, epoch as u64);
        Box::new(plan.into_iter().map(move |idx| {
            let grids: Vec<&Vec<f32>> = idx.iter().map(|&i| &self.train[i]).collect();
            let labels = idx.iter().map(|&i| self.order.rows[i].label as usize).collect();
            (self.stack(&grids, device), labels)
        }))
    }

    fn eval<'a>(&'a self, part: Part, device: Device) -> Box<dyn Iterator<Item = Result<Tensor>> + 'a> {
        let all = match part {
            Part::Val => &self.val,
            Part::Test => &self.test,
        };
        let b = self.loader.batch_size.max(1);
        Box::new(all.chunks(b).map(move |c| {
            let grids: Vec<&Vec<f32>> = c.iter().collect();
            Ok(self.stack(&grids, device))
        }))
    }
}
