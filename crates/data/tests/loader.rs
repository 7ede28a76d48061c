//! The batch loader: same seed → same batches whatever the worker count; cache hits equal misses.

use brainssl_data::cache::CropCache;
use brainssl_data::loader::{epoch_iter, Batch, Dataset, LoaderConfig};
use brainssl_data::synth::{generate, SynthConfig, SynthTask};
use brainssl_prep::{AugmentConfig, PrepConfig};
use std::sync::Arc;

fn dataset(dir: &std::path::Path, cache: Option<CropCache>) -> Arc<Dataset> {
    let cfg = SynthConfig {
        size: 24,
        ..SynthConfig::new(SynthTask::Ad, 6, 5)
    };
    let m = generate(&cfg, dir, &indicatif::ProgressBar::hidden()).unwrap();
    let prep = PrepConfig {
        depth: 12,
        size: 16,
        ..Default::default()
    };
    Arc::new(Dataset {
        rows: m.rows,
        prep,
        augment: Some(AugmentConfig::default()),
        cache,
    })
}

fn run(ds: &Arc<Dataset>, workers: usize, epoch: u64) -> Vec<Batch> {
    let cfg = LoaderConfig {
        batch_size: 4,
        workers,
        prefetch: 1,
        seed: 11,
        drop_last: false,
        ..Default::default()
    };
    epoch_iter(ds.clone(), &cfg, epoch).collect()
}

#[test]
fn batches_do_not_depend_on_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), None);
    let one = run(&ds, 1, 0);
    let three = run(&ds, 3, 0);
    assert_eq!(one.len(), 2);
    assert_eq!(one[0].shape, [4, 1, 12, 16, 16]);
    assert_eq!(one[1].shape[0], 2);
    for (a, b) in one.iter().zip(&three) {
        assert_eq!(a.indices, b.indices);
        assert_eq!(a.data, b.data);
        assert!(a.failures.is_empty());
    }
    // another epoch: another order or other augmentations
    let next = run(&ds, 2, 1);
    assert!(next
        .iter()
        .zip(&one)
        .any(|(a, b)| a.indices != b.indices || a.data != b.data));
    // every row once per epoch
    let mut seen: Vec<usize> = one.iter().flat_map(|b| b.indices.clone()).collect();
    seen.sort();
    assert_eq!(seen, (0..6).collect::<Vec<_>>());
}

#[test]
fn cache_gives_the_same_batches_and_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let plain = run(&dataset(&dir.path().join("a"), None), 2, 0);
    let cached_ds = dataset(&dir.path().join("a"), Some(CropCache::new(&cache_dir)));
    let first = run(&cached_ds, 2, 0);
    let entries = walk(&cache_dir);
    assert_eq!(entries, 6);
    let second = run(&cached_ds, 2, 0);
    assert_eq!(walk(&cache_dir), 6);
    for ((a, b), c) in plain.iter().zip(&first).zip(&second) {
        // synthetic scans are float-valued: the compact cache stores f16, so allow its rounding
        let d = a
            .data
            .iter()
            .zip(&b.data)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(d < 0.02, "cache changed values by {d}");
        assert!(b.data == c.data, "cache hit differs from cache miss");
    }
}

#[test]
fn unreadable_scans_are_reported_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), None);
    std::fs::write(&ds.rows[2].path, b"broken").unwrap();
    let batches = run(&ds, 2, 0);
    let failures: Vec<_> = batches.iter().flat_map(|b| b.failures.clone()).collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].0, 2);
    assert!(
        failures[0].1.contains(&ds.rows[2].path.display().to_string()),
        "{}",
        failures[0].1
    );
    assert_eq!(batches.iter().map(|b| b.shape[0]).sum::<usize>(), 5);
}

fn walk(d: &std::path::Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        n += if p.is_dir() { walk(&p) } else { 1 };
    }
    n
}

/// Data parallelism: two ranks' shares of each global batch, side by side, are that batch: the
/// same scans with the same augmentations as one process draws.
#[test]
fn rank_shares_make_up_the_global_batch() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), None);
    let global = LoaderConfig {
        batch_size: 4,
        workers: 1,
        seed: 11,
        ..Default::default()
    };
    let whole: Vec<Batch> = epoch_iter(ds.clone(), &global, 3).collect();
    let shares: Vec<Vec<Batch>> = (0..2)
        .map(|rank| {
            epoch_iter(
                ds.clone(),
                &LoaderConfig {
                    rank,
                    world: 2,
                    ..global.clone()
                },
                3,
            )
            .collect()
        })
        .collect();
    assert_eq!(whole.len(), 1); // 6 scans, drop_last
    for (i, w) in whole.iter().enumerate() {
        let (a, b) = (&shares[0][i], &shares[1][i]);
        assert_eq!((a.shape[0], b.shape[0]), (2, 2));
        assert_eq!([a.indices.clone(), b.indices.clone()].concat(), w.indices);
        assert_eq!([a.data.clone(), b.data.clone()].concat(), w.data);
    }
}
