//! Multi-threaded batch loading with prefetch. Batches are [B, 1, T, S, S] f32 in C order.
//!
//! The visiting order and every random draw are functions of (seed, epoch, index) only: a batch is
//! the same whichever worker builds it and however many workers run.

use crate::cache::{load_cropped, CropCache};
use crate::manifest::ManifestRow;
use anyhow::Result;
use brainssl_prep::{finish, AugmentConfig, Mode, PrepConfig, Rng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LoaderConfig {
    /// Volumes per (global) batch; each of `world` ranks builds its own `batch_size / world` share.
    pub batch_size: usize,
    pub shuffle: bool,
    pub drop_last: bool,
    /// Training mode: random layout and crop and augmentation (docs/preprocessing.md#steps).
    pub training: bool,
    pub workers: usize,
    /// Batches built ahead of the consumer.
    pub prefetch: usize,
    pub seed: u64,
    /// This process's rank among `world` data-parallel ranks.
    pub rank: usize,
    pub world: usize,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            batch_size: 2,
            shuffle: true,
            drop_last: true,
            training: true,
            workers: 2,
            prefetch: 2,
            seed: 0,
            rank: 0,
            world: 1,
        }
    }
}

impl LoaderConfig {
    /// Evaluation mode: every row once, in manifest order, with no random layout, crop or
    /// augmentation (so no seed matters).
    pub fn evaluation(batch_size: usize, workers: usize) -> LoaderConfig {
        LoaderConfig {
            batch_size: batch_size.max(1),
            shuffle: false,
            drop_last: false,
            training: false,
            workers: workers.max(1),
            prefetch: 2,
            seed: 0,
            rank: 0,
            world: 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Batch {
    pub data: Vec<f32>,
    /// [B, 1, T, S, S]
    pub shape: [usize; 5],
    pub labels: Vec<i64>,
    /// Manifest row of each sample.
    pub indices: Vec<usize>,
    /// Samples that failed, with the reason (the batch is then smaller): reported, never replaced.
    pub failures: Vec<(usize, String)>,
}

pub struct Dataset {
    pub rows: Vec<ManifestRow>,
    pub prep: PrepConfig,
    pub augment: Option<AugmentConfig>,
    pub cache: Option<CropCache>,
}

impl Dataset {
    /// Evaluation-mode preprocessing of row `index` with its output geometry (the affine gives
    /// the voxel spacing of the [T, S, S] result).
    pub fn prepared(&self, index: usize) -> Result<brainssl_prep::Prepared> {
        self.prepare(index, Mode::Eval)
    }

    /// Row `index` through the crop cache (when there is one) and the rest of preprocessing.
    fn prepare(&self, index: usize, mode: Mode) -> Result<brainssl_prep::Prepared> {
        let row = &self.rows[index];
        let cropped = match &self.cache {
            Some(c) => c.get(row, self.prep.margin)?,
            None => load_cropped(row, self.prep.margin)?,
        };
        finish(&cropped, &self.prep, mode).map_err(|e| anyhow::anyhow!("{}: {e}", row.path.display()))
    }

    /// One preprocessed sample [T, S, S]; `rng` drives every random choice.
    pub fn sample(&self, index: usize, training: bool, rng: &mut Rng) -> Result<Vec<f32>> {
        let mode = if training {
            Mode::Train {
                rng,
                augment: self.augment.as_ref(),
            }
        } else {
            Mode::Eval
        };
        Ok(self.prepare(index, mode)?.data)
    }

    /// Order of rows for `epoch`, cut into global batches, of which this rank keeps its share
    /// (rank r of w: the r-th of w equal parts of each batch). The order depends only on the seed and
    /// epoch, so ranks together see what one process would.
    pub fn batches(&self, cfg: &LoaderConfig, epoch: u64) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.rows.len()).collect();
        if cfg.shuffle {
            Rng::for_item(cfg.seed, epoch, u64::MAX).shuffle(&mut order);
        }
        let mut out: Vec<Vec<usize>> = order.chunks(cfg.batch_size.max(1)).map(|c| c.to_vec()).collect();
        if cfg.drop_last && out.last().is_some_and(|b| b.len() < cfg.batch_size) {
            out.pop();
        }
        let world = cfg.world.max(1);
        if world > 1 {
            let share = cfg.batch_size.div_ceil(world);
            for b in &mut out {
                let lo = (cfg.rank * share).min(b.len());
                *b = b[lo..(lo + share).min(b.len())].to_vec();
            }
        }
        out
    }

    pub fn build_batch(&self, cfg: &LoaderConfig, epoch: u64, idx: &[usize]) -> Batch {
        let vox = self.prep.depth * self.prep.size * self.prep.size;
        let mut b = Batch {
            data: Vec::with_capacity(idx.len() * vox),
            shape: [0, 1, self.prep.depth, self.prep.size, self.prep.size],
            labels: vec![],
            indices: vec![],
            failures: vec![],
        };
        for &i in idx {
            let mut rng = Rng::for_item(cfg.seed, epoch, i as u64);
            match self.sample(i, cfg.training, &mut rng) {
                Ok(d) => {
                    b.data.extend_from_slice(&d);
                    b.labels.push(self.rows[i].label);
                    b.indices.push(i);
                }
                Err(e) => b.failures.push((i, format!("{e:#}"))),
            }
        }
        b.shape[0] = b.indices.len();
        b
    }
}

/// Shared state of one epoch's workers.
struct EpochState {
    next: AtomicUsize,
    stop: AtomicBool,
    /// (consumed count, ready batches)
    ready: Mutex<(usize, BTreeMap<usize, Batch>)>,
    cv: Condvar,
}

/// Iterator over one epoch's batches, in order, built by background workers.
pub struct EpochIter {
    state: Arc<EpochState>,
    total: usize,
    pos: usize,
    handles: Vec<std::thread::JoinHandle<()>>,
}

pub fn epoch_iter(ds: Arc<Dataset>, cfg: &LoaderConfig, epoch: u64) -> EpochIter {
    epoch_iter_from(ds, cfg, epoch, 0)
}

/// The batches of `epoch` from batch `first` on (an interrupted epoch resumed): the same batches
/// as the whole epoch's, without loading the ones before.
pub fn epoch_iter_from(ds: Arc<Dataset>, cfg: &LoaderConfig, epoch: u64, first: usize) -> EpochIter {
    let mut plan = ds.batches(cfg, epoch);
    plan.drain(..first.min(plan.len()));
    let plan = Arc::new(plan);
    let state = Arc::new(EpochState {
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        ready: Mutex::new((0, BTreeMap::new())),
        cv: Condvar::new(),
    });
    let total = plan.len();
    let ahead = cfg.prefetch.max(1) + cfg.workers.max(1);
    let handles = (0..cfg.workers.max(1))
        .map(|_| {
            let (ds, plan, state, cfg) = (ds.clone(), plan.clone(), state.clone(), cfg.clone());
            std::thread::spawn(move || loop {
                let b = state.next.fetch_add(1, Ordering::SeqCst);
                if b >= plan.len() {
                    return;
                }
                {
                    // wait until the consumer is close enough: bounded memory
                    let mut g = state.ready.lock().unwrap();
                    while b >= g.0 + ahead && !state.stop.load(Ordering::SeqCst) {
                        g = state.cv.wait(g).unwrap();
                    }
                }
                if state.stop.load(Ordering::SeqCst) {
                    return;
                }
                let batch = ds.build_batch(&cfg, epoch, &plan[b]);
                state.ready.lock().unwrap().1.insert(b, batch);
                state.cv.notify_all();
            })
        })
        .collect();
    EpochIter {
        state,
        total,
        pos: 0,
        handles,
    }
}

impl EpochIter {
    pub fn len(&self) -> usize {
        self.total
    }
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

impl Iterator for EpochIter {
    type Item = Batch;
    fn next(&mut self) -> Option<Batch> {
        if self.pos >= self.total {
            return None;
        }
        let mut g = self.state.ready.lock().unwrap();
        loop {
            if let Some(b) = g.1.remove(&self.pos) {
                self.pos += 1;
                g.0 = self.pos;
                drop(g);
                self.state.cv.notify_all();
                return Some(b);
            }
            g = self.state.cv.wait(g).unwrap();
        }
    }
}

impl Drop for EpochIter {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.state.cv.notify_all();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}
