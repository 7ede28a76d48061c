//! Paired comparison of two models' AUROC on the same test rows. Two test AUROCs of 0.97 and 0.99 on
//! 24 scans say little on their own: resampling the subjects once for both models keeps the pairing,
//! so the interval of the difference is far narrower than the two marginal intervals suggest.

use serde::{Deserialize, Serialize};

use crate::metrics::{interval95, subject_draws, Metrics};
use crate::Predictions;
use brainssl_prep::Rng;

/// AUROC of `a` minus AUROC of `b` (means over runs when there are several), with a paired
/// bootstrap.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AurocDifference {
    /// AUROC of `a` (the mean over its runs)
    pub auroc_a: f64,
    /// AUROC of `b` (the mean over its runs)
    pub auroc_b: f64,
    pub difference: f64,
    /// 95 % percentile interval of the difference over the draws
    pub interval: (f64, f64),
    /// share of draws where `a`'s AUROC is strictly higher than `b`'s
    pub share_a_higher: f64,
    pub resamples: usize,
    /// draws with a single class (AUROC undefined), left out
    pub skipped: usize,
}

/// Compares two prediction sets that hold the same rows (same labels and subjects, in the same order).
pub fn paired_auroc(a: &Predictions, b: &Predictions, resamples: usize, seed: u64) -> Result<AurocDifference, String> {
    mean_auroc_difference(
        std::slice::from_ref(a),
        std::slice::from_ref(b),
        Seeds::Fixed,
        resamples,
        seed,
    )
}

/// How the runs on the two sides of a comparison are resampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seeds {
    /// Not at all: the interval is the test set's noise around these runs' means.
    Fixed,
    /// Run i of `a` belongs with run i of `b` (a pretrained encoder and the initialisation it
    /// started from): one draw of run indices for both sides.
    Paired,
    /// The two sides' runs are unrelated (pretrained encoders against random ones): each side is
    /// resampled on its own.
    Independent,
    /// Each side is `a` (resp. `b`) blocks of n runs, and run i of every block on either side
    /// belongs with run i of every other (the same seed, or the same training draw): one draw of n
    /// indices serves all blocks. With `resample`, each side's blocks are drawn again too (blocks
    /// that are themselves random samples, such as pretraining seeds); without, every block is
    /// kept (blocks that are fixed choices, such as the objectives of a family).
    Blocks { a: usize, b: usize, resample: bool },
}

/// Mean AUROC of the runs in `a` minus the mean AUROC of the runs in `b` (an encoder over several
/// pretraining seeds against a control), every run on the same test rows. Each bootstrap draw
/// resamples the runs (as `seeds` says) and then the test subjects, once for every run of both
/// sides, so the interval covers both the spread across seeds and the test set's sampling noise.
pub fn mean_auroc_difference(
    a: &[Predictions],
    b: &[Predictions],
    seeds: Seeds,
    resamples: usize,
    seed: u64,
) -> Result<AurocDifference, String> {
    pooled_auroc_difference(&[(a, b)], seeds, resamples, seed)
}

/// [`mean_auroc_difference`] averaged over several test sets (tasks): the mean over tasks of each
/// task's difference. Run i of a side is the same encoder on every task, so one draw of run indices
/// serves all tasks; each task's subjects are resampled on their own.
pub fn pooled_auroc_difference(
    tasks: &[(&[Predictions], &[Predictions])],
    seeds: Seeds,
    resamples: usize,
    seed: u64,
) -> Result<AurocDifference, String> {
    let Some(&(a0, b0)) = tasks.first() else {
        return Err("a comparison needs at least one test set".into());
    };
    for (t, (a, b)) in tasks.iter().enumerate() {
        if a.is_empty() || b.is_empty() {
            return Err("a comparison needs prediction sets on both sides".into());
        }
        if (a.len(), b.len()) != (a0.len(), b0.len()) {
            return Err(format!(
                "test set {t} has {} and {} runs, the first {} and {}: pooled tasks need the same runs",
                a.len(),
                b.len(),
                a0.len(),
                b0.len()
            ));
        }
        if seeds == Seeds::Paired && a.len() != b.len() {
            return Err(format!(
                "paired runs need as many on each side ({} vs {})",
                a.len(),
                b.len()
            ));
        }
        if let Seeds::Blocks { a: ka, b: kb, .. } = seeds {
            if ka == 0 || kb == 0 || a.len() % ka != 0 || b.len() % kb != 0 || a.len() / ka != b.len() / kb {
                return Err(format!(
                    "{} and {} runs do not split into {ka} and {kb} blocks of one size",
                    a.len(),
                    b.len()
                ));
            }
        }
        let first = &a[0];
        if let Some(p) = a
            .iter()
            .chain(b.iter())
            .find(|p| p.labels != first.labels || p.groups != first.groups)
        {
            return Err(format!(
                "the prediction sets do not hold the same rows ({} vs {} rows, or labels/subjects differ): \
                 a paired comparison needs the same test scans in the same order",
                first.labels.len(),
                p.labels.len()
            ));
        }
    }
    let auroc = |p: &Predictions, rows: &[usize]| {
        let probs: Vec<Vec<f64>> = rows.iter().map(|&i| p.probs[i].clone()).collect();
        let labels: Vec<usize> = rows.iter().map(|&i| p.labels[i]).collect();
        Metrics::compute(&probs, &labels).map(|m| m.auroc)
    };
    let mean = |side: &[Predictions], runs: &[usize], rows: &[usize]| -> Result<f64, String> {
        let mut sum = 0.0;
        for &r in runs {
            sum += auroc(&side[r], rows)?;
        }
        Ok(sum / runs.len() as f64)
    };
    let (all_a, all_b): (Vec<usize>, Vec<usize>) = ((0..a0.len()).collect(), (0..b0.len()).collect());
    let n = tasks.len() as f64;
    let (mut auroc_a, mut auroc_b) = (0.0, 0.0);
    for (a, b) in tasks {
        let rows: Vec<usize> = (0..a[0].labels.len()).collect();
        auroc_a += mean(a, &all_a, &rows)? / n;
        auroc_b += mean(b, &all_b, &rows)? / n;
    }
    let mut subjects: Vec<_> = tasks
        .iter()
        .enumerate()
        .map(|(t, (a, _))| subject_draws(&a[0].groups, resamples, seed.wrapping_add(t as u64)))
        .collect();
    let mut runs_rng = Rng::new(seed ^ 0x7275_6e73);
    let mut draw_runs = |n: usize| -> Vec<usize> { (0..n).map(|_| runs_rng.below(n as u64) as usize).collect() };
    let mut diffs = Vec::with_capacity(resamples);
    let mut skipped = 0;
    // paired runs are one block a side
    let blocks = match seeds {
        Seeds::Paired => Some((1, 1, false)),
        Seeds::Blocks { a, b, resample } => Some((a, b, resample)),
        Seeds::Fixed | Seeds::Independent => None,
    };
    for _ in 0..resamples {
        let (ra, rb) = if let Some((ka, kb, resample)) = blocks {
            let n = a0.len() / ka;
            let within = draw_runs(n);
            let mut redraw = |k: usize| if resample { draw_runs(k) } else { (0..k).collect() };
            let (qa, qb) = (redraw(ka), redraw(kb));
            let expand = |q: &[usize]| -> Vec<usize> {
                q.iter().flat_map(|&j| within.iter().map(move |&i| j * n + i)).collect()
            };
            (expand(&qa), expand(&qb))
        } else if seeds == Seeds::Independent {
            (draw_runs(a0.len()), draw_runs(b0.len()))
        } else {
            (all_a.clone(), all_b.clone())
        };
        let mut diff = Some(0.0);
        for ((a, b), draws) in tasks.iter().zip(subjects.iter_mut()) {
            let rows = draws.next().expect("one subject draw per resample");
            diff = match (diff, mean(a, &ra, &rows), mean(b, &rb, &rows)) {
                (Some(d), Ok(x), Ok(y)) => Some(d + (x - y) / n),
                _ => None,
            };
        }
        match diff {
            Some(d) => diffs.push(d),
            None => skipped += 1,
        }
    }
    let share_a_higher = if diffs.is_empty() {
        f64::NAN
    } else {
        diffs.iter().filter(|&&d| d > 0.0).count() as f64 / diffs.len() as f64
    };
    Ok(AurocDifference {
        auroc_a,
        auroc_b,
        difference: auroc_a - auroc_b,
        interval: interval95(diffs),
        share_a_higher,
        resamples,
        skipped,
    })
}

impl AurocDifference {
    /// The difference and its interval as tables print them: "+0.049 [-0.143, +0.255]".
    pub fn with_interval(&self) -> String {
        format!(
            "{:+.3} [{:+.3}, {:+.3}]",
            self.difference, self.interval.0, self.interval.1
        )
    }

    /// "higher" or "lower" when the 95 % interval excludes 0, else "undecided".
    pub fn verdict(&self) -> &'static str {
        if self.interval.0 > 0.0 {
            "higher"
        } else if self.interval.1 < 0.0 {
            "lower"
        } else {
            "undecided"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preds(p1: &[f64], labels: &[usize]) -> Predictions {
        Predictions {
            labels: labels.to_vec(),
            probs: p1.iter().map(|&p| vec![1.0 - p, p]).collect(),
            groups: (0..labels.len()).map(|i| format!("s{i}")).collect(),
        }
    }

    #[test]
    fn a_model_against_itself_differs_by_exactly_zero() {
        let labels = [0, 1, 0, 1, 1, 0, 1, 0];
        let a = preds(&[0.2, 0.7, 0.6, 0.4, 0.9, 0.1, 0.55, 0.3], &labels);
        let d = paired_auroc(&a, &a, 200, 1).unwrap();
        assert_eq!((d.difference, d.interval, d.share_a_higher), (0.0, (0.0, 0.0), 0.0));
    }

    #[test]
    fn perfect_against_constant_is_one_half_in_every_draw() {
        // a separates the classes in every resample (AUROC 1), b ties everything (AUROC ½)
        let labels = [0, 1, 0, 1, 0, 1];
        let a = preds(&[0.1, 0.9, 0.2, 0.8, 0.3, 0.7], &labels);
        let b = preds(&[0.5; 6], &labels);
        let d = paired_auroc(&a, &b, 300, 3).unwrap();
        assert_eq!(d.difference, 0.5);
        assert_eq!(d.interval, (0.5, 0.5));
        assert_eq!(d.share_a_higher, 1.0);
        // single-class draws are skipped: with 6 subjects, P = 2·(1/2)^6 per draw
        assert!(d.skipped > 0 && d.skipped < 30, "{}", d.skipped);
        let r = paired_auroc(&b, &a, 300, 3).unwrap();
        assert_eq!((r.difference, r.interval, r.share_a_higher), (-0.5, (-0.5, -0.5), 0.0));
    }

    #[test]
    fn pairing_narrows_the_interval_below_the_marginal_ones() {
        // b is a with the scores of a negative (row 0) and a positive (row 1) swapped, the negative
        // scoring lower: b can only lose pairs, so every paired draw has a difference >= 0
        let n = 40;
        let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let p1: Vec<f64> = (0..n)
            .map(|i| (i as f64 * 0.37).sin() * 0.3 + 0.5 + 0.2 * (i % 2) as f64)
            .collect();
        let mut q1 = p1.clone();
        q1.swap(0, 1);
        let (a, b) = (preds(&p1, &labels), preds(&q1, &labels));
        let d = paired_auroc(&a, &b, 500, 9).unwrap();
        let marginal = crate::bootstrap(&a.probs, &a.labels, &a.groups, 500, 9).auroc;
        assert!(p1[0] < p1[1] && d.difference > 0.0 && d.interval.0 >= 0.0, "{d:?}");
        assert!(
            d.interval.1 - d.interval.0 < (marginal.1 - marginal.0) / 2.0,
            "{d:?} vs {marginal:?}"
        );
    }

    #[test]
    fn refuses_different_rows() {
        let a = preds(&[0.2, 0.8], &[0, 1]);
        let b = preds(&[0.2, 0.8, 0.5], &[0, 1, 1]);
        assert!(paired_auroc(&a, &b, 10, 0).unwrap_err().contains("same rows"));
    }

    #[test]
    fn mean_over_sets_is_the_mean_of_the_aurocs_and_checks_the_rows() {
        let labels = [0, 1, 0, 1, 1, 0, 1, 0];
        let good = preds(&[0.1, 0.9, 0.2, 0.8, 0.7, 0.3, 0.6, 0.4], &labels);
        let half = preds(&[0.5; 8], &labels);
        let d = mean_auroc_difference(
            &[good.clone(), half.clone()],
            std::slice::from_ref(&half),
            Seeds::Fixed,
            200,
            1,
        )
        .unwrap();
        // (1.0 + 0.5) / 2 - 0.5
        assert!((d.auroc_a - 0.75).abs() < 1e-12 && (d.difference - 0.25).abs() < 1e-12);
        assert!(d.interval.0 > 0.0 && d.verdict() == "higher", "{d:?}");
        let one = mean_auroc_difference(
            std::slice::from_ref(&good),
            std::slice::from_ref(&half),
            Seeds::Fixed,
            200,
            1,
        )
        .unwrap();
        assert_eq!(one.difference, paired_auroc(&good, &half, 200, 1).unwrap().difference);
        let short = preds(&[0.5; 4], &labels[..4]);
        assert!(mean_auroc_difference(std::slice::from_ref(&good), &[short], Seeds::Fixed, 10, 1).is_err());
        assert!(mean_auroc_difference(&[], std::slice::from_ref(&half), Seeds::Fixed, 10, 1).is_err());
        assert!(
            mean_auroc_difference(&[good.clone(), good], std::slice::from_ref(&half), Seeds::Paired, 10, 1).is_err()
        );
    }

    #[test]
    fn resampling_the_seeds_widens_the_interval_by_their_spread() {
        let labels = [0, 1, 0, 1, 1, 0, 1, 0, 0, 1];
        let perfect = preds(&[0.1, 0.9, 0.2, 0.8, 0.7, 0.3, 0.6, 0.4, 0.2, 0.9], &labels);
        let chance = preds(&[0.5; 10], &labels);
        let inverted = preds(&[0.9, 0.1, 0.8, 0.2, 0.3, 0.7, 0.4, 0.6, 0.8, 0.1], &labels);
        // one perfect seed and one inverted one: a mean of 0.5 whatever the test draw
        let a = [perfect.clone(), inverted.clone()];
        let fixed = mean_auroc_difference(&a, std::slice::from_ref(&chance), Seeds::Fixed, 300, 3).unwrap();
        let seeds = mean_auroc_difference(&a, std::slice::from_ref(&chance), Seeds::Independent, 300, 3).unwrap();
        assert!(fixed.difference.abs() < 1e-12 && seeds.difference.abs() < 1e-12);
        assert!(fixed.interval.1 - fixed.interval.0 < 1e-9, "{fixed:?}");
        // drawing the runs again puts both seeds' values (±0.5) inside the interval
        assert!(seeds.interval.0 <= -0.49 && seeds.interval.1 >= 0.49, "{seeds:?}");
        // paired runs against themselves differ by exactly 0 in every draw
        let p = mean_auroc_difference(&a, &a, Seeds::Paired, 100, 3).unwrap();
        assert_eq!(p.interval, (0.0, 0.0));
    }

    #[test]
    fn pooled_difference_is_the_mean_of_the_tasks_differences() {
        // task 1: a perfect (AUROC 1) against constant b (½); task 2: both constant (½ each)
        let (l1, l2) = ([0, 1, 0, 1, 0, 1], [1, 0, 1, 0]);
        let perfect = preds(&[0.1, 0.9, 0.2, 0.8, 0.3, 0.7], &l1);
        let (half1, half2) = (preds(&[0.5; 6], &l1), preds(&[0.5; 4], &l2));
        let (a1, b1, a2, b2) = ([perfect], [half1], [half2.clone()], [half2]);
        let d = pooled_auroc_difference(&[(&a1, &b1), (&a2, &b2)], Seeds::Fixed, 200, 5).unwrap();
        assert_eq!((d.auroc_a, d.auroc_b, d.difference), (0.75, 0.5, 0.25));
        assert_eq!(d.interval, (0.25, 0.25));
        // one task alone is mean_auroc_difference
        let one = pooled_auroc_difference(&[(&a1, &b1)], Seeds::Fixed, 200, 5).unwrap();
        let same = mean_auroc_difference(&a1, &b1, Seeds::Fixed, 200, 5).unwrap();
        assert_eq!(
            (one.difference, one.interval, one.skipped),
            (same.difference, same.interval, same.skipped)
        );
        // the tasks must hold the same runs
        let two = [a2[0].clone(), a2[0].clone()];
        assert!(pooled_auroc_difference(&[(&a1, &b1), (&two, &b2)], Seeds::Fixed, 10, 5).is_err());
    }

    #[test]
    fn blocks_pair_run_i_of_every_block_and_keep_or_redraw_the_blocks() {
        let labels = [0, 1, 0, 1, 1, 0, 1, 0, 0, 1];
        let perfect = preds(&[0.1, 0.9, 0.2, 0.8, 0.7, 0.3, 0.6, 0.4, 0.2, 0.9], &labels);
        let chance = preds(&[0.5; 10], &labels);
        // side a: block 0 = [perfect, chance], block 1 = [perfect, chance]; side b: [chance, chance]
        let a = [perfect.clone(), chance.clone(), perfect.clone(), chance.clone()];
        let b = [chance.clone(), chance.clone()];
        let fixed = Seeds::Blocks {
            a: 2,
            b: 1,
            resample: false,
        };
        let d = mean_auroc_difference(&a, &b, fixed, 400, 2).unwrap();
        assert_eq!(d.difference, 0.25);
        // one within-block draw for both blocks: two, one or no copies of "perfect" per block,
        // so each draw's difference is 0.5, 0.25 or 0
        assert!(d.interval.0 >= 0.0 && d.interval.1 <= 0.5, "{d:?}");
        // block 0 all perfect, block 1 all chance: fixed blocks give exactly 0.25 every draw, and
        // redrawing the blocks spreads it to both ends
        let a2 = [perfect.clone(), perfect.clone(), chance.clone(), chance.clone()];
        let f = mean_auroc_difference(&a2, &b, fixed, 400, 2).unwrap();
        assert_eq!(f.interval, (0.25, 0.25));
        let r = mean_auroc_difference(
            &a2,
            &b,
            Seeds::Blocks {
                a: 2,
                b: 1,
                resample: true,
            },
            400,
            2,
        )
        .unwrap();
        assert!(r.interval.0 <= 0.0 && r.interval.1 >= 0.5, "{r:?}");
        assert!(mean_auroc_difference(
            &a2,
            &b,
            Seeds::Blocks {
                a: 3,
                b: 1,
                resample: false
            },
            10,
            2
        )
        .is_err());
    }
}
