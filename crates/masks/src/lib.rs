//! Token masks for pretraining (docs/method.md#masks). A mask splits the token indices of a
//! (T/tubelet) × (S/patch) × (S/patch) grid, flattened in (t, h, w) order, into an ascending
//! context set (seen by the encoder) and an ascending target set (predicted or reconstructed).
//!
//! Two modes, both seeded through the caller's [`Rng`]:
//! - `Reference` (default, what produced the paper's numbers): ⌊num_blocks·N⌋ blocks of 1×1×1 tokens
//!   placed with replacement, one mask shared by the whole batch. With num_blocks = 0.75 about
//!   1 − e^(−0.75) ≈ 52.8 % of the tokens are masked, not 75 %.
//! - `Paper`: exactly round(ratio·N) distinct tokens masked, drawn independently for each volume; all
//!   volumes then have equal-length index sets, so no truncation is needed.

use brainssl_prep::Rng;
use serde::{Deserialize, Serialize};

/// Token grid: depth, height, width in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenGrid {
    pub t: usize,
    pub h: usize,
    pub w: usize,
}

impl TokenGrid {
    /// Grid of a [T, S, S] volume cut into tubelet × patch × patch tokens.
    pub fn of_volume(depth: usize, size: usize, tubelet: usize, patch: usize) -> Self {
        TokenGrid {
            t: depth / tubelet,
            h: size / patch,
            w: size / patch,
        }
    }
    pub fn len(&self) -> usize {
        self.t * self.h * self.w
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskMode {
    Reference,
    Paper,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaskConfig {
    pub mode: MaskMode,
    /// Reference mode: block placements as a fraction of N.
    pub num_blocks: f64,
    /// Reference mode: block extent in tokens (t, h, w); the reference uses 1 × 1 × 1.
    pub block: [usize; 3],
    /// Paper mode: masked fraction.
    pub ratio: f64,
}

impl Default for MaskConfig {
    fn default() -> Self {
        MaskConfig {
            mode: MaskMode::Reference,
            num_blocks: 0.75,
            block: [1, 1, 1],
            ratio: 0.75,
        }
    }
}

impl MaskConfig {
    pub fn validate(&self, grid: TokenGrid) -> Result<(), String> {
        if grid.is_empty() {
            return Err("empty token grid".into());
        }
        if self
            .block
            .iter()
            .zip([grid.t, grid.h, grid.w])
            .any(|(&b, n)| b == 0 || b > n)
        {
            return Err(format!(
                "mask block {:?} does not fit the token grid {grid:?}",
                self.block
            ));
        }
        if !(0.0..1.0).contains(&self.ratio) || self.num_blocks < 0.0 {
            return Err(format!(
                "mask ratio {} must be in [0, 1) and num_blocks {} >= 0",
                self.ratio, self.num_blocks
            ));
        }
        Ok(())
    }
}

/// Context and target token indices for every volume of a batch (equal lengths across the batch).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchMasks {
    pub context: Vec<Vec<usize>>,
    pub target: Vec<Vec<usize>>,
}

impl BatchMasks {
    /// Fraction of tokens that are targets (the same for every volume).
    pub fn masked_fraction(&self) -> f64 {
        let (c, t) = (self.context[0].len(), self.target[0].len());
        t as f64 / (c + t) as f64
    }
}

/// The reference's multi-block mask generator and the paper's per-volume alternative
/// (docs/method.md#masks).
#[derive(Debug, Clone)]
pub struct MultiBlockMasker {
    pub config: MaskConfig,
    pub grid: TokenGrid,
}

impl MultiBlockMasker {
    pub fn new(config: MaskConfig, grid: TokenGrid) -> Result<Self, String> {
        config.validate(grid)?;
        Ok(MultiBlockMasker { config, grid })
    }

    /// Masks for a batch of `batch` volumes.
    pub fn sample(&self, batch: usize, rng: &mut Rng) -> BatchMasks {
        match self.config.mode {
            MaskMode::Reference => {
                let (context, target) = self.reference_mask(rng);
                BatchMasks {
                    context: vec![context; batch],
                    target: vec![target; batch],
                }
            }
            MaskMode::Paper => {
                let (context, target) = (0..batch).map(|_| self.paper_mask(rng)).unzip();
                BatchMasks { context, target }
            }
        }
    }

    /// One reference draw: blocks with replacement on an all-context map; redrawn if nothing is left
    /// for the context.
    fn reference_mask(&self, rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
        let TokenGrid { t, h, w } = self.grid;
        let [bt, bh, bw] = self.config.block;
        let npred = (self.config.num_blocks * self.grid.len() as f64) as usize;
        loop {
            let mut keep = vec![true; self.grid.len()];
            for _ in 0..npred {
                // the reference draws top, left, then start
                let top = rng.below((h - bh + 1) as u64) as usize;
                let left = rng.below((w - bw + 1) as u64) as usize;
                let start = rng.below((t - bt + 1) as u64) as usize;
                for z in start..start + bt {
                    for y in top..top + bh {
                        for x in left..left + bw {
                            keep[(z * h + y) * w + x] = false;
                        }
                    }
                }
            }
            let context: Vec<usize> = (0..keep.len()).filter(|&i| keep[i]).collect();
            if !context.is_empty() {
                let target = (0..keep.len()).filter(|&i| !keep[i]).collect();
                return (context, target);
            }
        }
    }

    /// Exactly round(ratio·N) distinct target tokens (partial Fisher-Yates).
    fn paper_mask(&self, rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
        let n = self.grid.len();
        let k = ((self.config.ratio * n as f64).round() as usize).min(n - 1);
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..k {
            let j = i + rng.below((n - i) as u64) as usize;
            idx.swap(i, j);
        }
        let mut target = idx[..k].to_vec();
        let mut context = idx[k..].to_vec();
        target.sort_unstable();
        context.sort_unstable();
        (context, target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_partition(m: &BatchMasks, n: usize) {
        for (c, t) in m.context.iter().zip(&m.target) {
            assert!(c.windows(2).all(|w| w[0] < w[1]) && t.windows(2).all(|w| w[0] < w[1]));
            let mut all: Vec<usize> = c.iter().chain(t).copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..n).collect::<Vec<_>>());
        }
        assert!(m.context.iter().all(|c| c.len() == m.context[0].len()));
    }

    #[test]
    fn reference_mode_masks_about_52_8_percent_shared_by_the_batch() {
        let grid = TokenGrid::of_volume(160, 160, 8, 8);
        assert_eq!(grid.len(), 8000);
        let m = MultiBlockMasker::new(MaskConfig::default(), grid).unwrap();
        let mut rng = Rng::new(0);
        let fr: Vec<f64> = (0..200)
            .map(|_| {
                let b = m.sample(3, &mut rng);
                check_partition(&b, 8000);
                assert_eq!(b.context[0], b.context[2]);
                b.masked_fraction()
            })
            .collect();
        let mean = fr.iter().sum::<f64>() / fr.len() as f64;
        let sd = (fr.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / (fr.len() - 1) as f64).sqrt();
        // E = 1 − (1 − 1/N)^6000 = 0.52770; simulated std ≈ 0.0035
        // (docs/method.md#reference-mode)
        let expect = 1.0 - (1.0 - 1.0 / 8000f64).powi(6000);
        assert!((mean - expect).abs() < 0.0015, "mean {mean} vs {expect}");
        assert!((sd - 0.0035).abs() < 0.0012, "sd {sd}");
    }

    #[test]
    fn paper_mode_masks_exact_counts_per_volume() {
        let grid = TokenGrid::of_volume(144, 160, 8, 8);
        let cfg = MaskConfig {
            mode: MaskMode::Paper,
            ..Default::default()
        };
        let m = MultiBlockMasker::new(cfg, grid).unwrap();
        let b = m.sample(4, &mut Rng::new(1));
        check_partition(&b, 7200);
        assert!(b.target.iter().all(|t| t.len() == 5400));
        assert_ne!(b.target[0], b.target[1]);
        // each token is masked with probability 0.75 across volumes
        let mut hits = vec![0usize; 7200];
        let mut rng = Rng::new(2);
        for _ in 0..100 {
            for t in m.sample(1, &mut rng).target {
                t.iter().for_each(|&i| hits[i] += 1);
            }
        }
        let mean = hits.iter().sum::<usize>() as f64 / (7200.0 * 100.0);
        assert!((mean - 0.75).abs() < 1e-12);
        assert!(hits.iter().all(|&h| (40..=100).contains(&h)));
    }

    #[test]
    fn seeded_and_validated() {
        let grid = TokenGrid { t: 4, h: 4, w: 4 };
        let m = MultiBlockMasker::new(MaskConfig::default(), grid).unwrap();
        assert_eq!(m.sample(2, &mut Rng::new(5)), m.sample(2, &mut Rng::new(5)));
        let big = MaskConfig {
            block: [5, 1, 1],
            ..Default::default()
        };
        assert!(MultiBlockMasker::new(big, grid).is_err());
        // larger blocks cover whole t×h×w boxes
        let cfg = MaskConfig {
            block: [2, 2, 2],
            num_blocks: 1.0 / 64.0,
            ..Default::default()
        };
        let b = MultiBlockMasker::new(cfg, grid).unwrap().sample(1, &mut Rng::new(3));
        assert_eq!(b.target[0].len(), 8);
    }
}
