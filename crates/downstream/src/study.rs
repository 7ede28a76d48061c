//! Studies made of many classifier runs, as typed results: k-fold cross-validation (mean ± sd over
//! folds, as the reference aggregates them) and the few-shot sweep (test AUROC per model and k over
//! several draws). The caller says how one run is trained; the study lays out the splits and
//! folders, collects the outcomes and renders them as [`Table`]s.

use std::path::{Path, PathBuf};

use anyhow::Result;
use brainssl_data::ManifestRow;
use brainssl_eval::table::{format_mean_sd, Table};
use serde::{Deserialize, Serialize};

use crate::fit::{Outcome, Splits};

/// What a study keeps of one run: test metrics of the reported epoch, and whether its classifier
/// fitted its training data at all (see [`Outcome::learned`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub macro_f1: f64,
    pub f1_positive: Option<f64>,
    pub auroc: f64,
    /// The reported epoch, counted from 1.
    pub epoch: usize,
    pub learned: bool,
    pub dir: PathBuf,
}

impl RunResult {
    pub fn new(o: &Outcome, classes: usize, dir: &Path) -> Self {
        Self {
            accuracy: o.test.accuracy,
            balanced_accuracy: o.test.balanced_accuracy,
            macro_f1: o.test.macro_f1,
            f1_positive: o.test.f1_positive,
            auroc: o.test.auroc,
            epoch: o.best_epoch + 1,
            learned: o.learned(classes),
            dir: dir.to_path_buf(),
        }
    }
}

/// Mean and population standard deviation (the reference's aggregation divides by n).
pub fn mean_and_sd(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (
        m,
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt(),
    )
}

/// Marks a run whose classifier never left the chance loss.
pub const NOT_LEARNED: &str = "†";
pub const NOT_LEARNED_NOTE: &str = "† the training loss of the reported epoch never left chance (ln C): \
     that classifier did not fit its training data, so its accuracy and F1 sit at chance and its AUROC \
     rests on tiny differences between near-equal probabilities.";

fn mark(learned: bool) -> &'static str {
    if learned {
        ""
    } else {
        NOT_LEARNED
    }
}

/// k-fold cross-validation of one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrossValidation {
    pub model: String,
    /// "probe" (frozen) or "finetune".
    pub mode: String,
    pub folds: Vec<RunResult>,
}

impl CrossValidation {
    /// Runs every split ([train, val, test], e.g. from `brainssl_data::splits::cv_splits`) in
    /// `out/fold{i}`; `train_fold(i, splits, dir)` trains and tests one fold.
    pub fn run(
        model: &str,
        mode: &str,
        splits: Vec<[Vec<ManifestRow>; 3]>,
        classes: usize,
        out: &Path,
        mut train_fold: impl FnMut(usize, &Splits, &Path) -> Result<Outcome>,
    ) -> Result<Self> {
        let mut folds = Vec::with_capacity(splits.len());
        for (i, [train, val, test]) in splits.into_iter().enumerate() {
            let dir = out.join(format!("fold{i}"));
            let o = train_fold(i, &Splits { train, val, test }, &dir)?;
            folds.push(RunResult::new(&o, classes, &dir));
        }
        Ok(Self {
            model: model.to_string(),
            mode: mode.to_string(),
            folds,
        })
    }

    pub fn stat(&self, f: impl Fn(&RunResult) -> f64) -> (f64, f64) {
        mean_and_sd(&self.folds.iter().map(f).collect::<Vec<_>>())
    }

    /// One row per fold, then the mean and sd rows (the layout of `cv.csv`).
    pub fn folds_table(&self) -> Table {
        let mut t = Table::new(
            format!("{} ({}): test metrics per fold", self.model, self.mode),
            &[
                "fold",
                "accuracy_pct",
                "balanced_accuracy",
                "macro_f1",
                "f1_positive",
                "auroc",
                "best_epoch",
                "learned",
            ],
        );
        for (i, r) in self.folds.iter().enumerate() {
            t.push(vec![
                i.to_string(),
                format!("{:.2}", 100.0 * r.accuracy),
                format!("{:.4}", r.balanced_accuracy),
                format!("{:.4}", r.macro_f1),
                r.f1_positive.map(|f| format!("{f:.4}")).unwrap_or_default(),
                format!("{:.4}", r.auroc),
                r.epoch.to_string(),
                r.learned.to_string(),
            ]);
        }
        let stats = [
            self.stat(|r| 100.0 * r.accuracy),
            self.stat(|r| r.balanced_accuracy),
            self.stat(|r| r.macro_f1),
            self.stat(|r| r.auroc),
        ];
        for (name, pick) in [("mean", 0usize), ("std", 1)] {
            let v = |k: usize, d: usize| {
                let s = if pick == 0 { stats[k].0 } else { stats[k].1 };
                format!("{s:.d$}")
            };
            t.push(vec![
                name.into(),
                v(0, 2),
                v(1, 4),
                v(2, 4),
                String::new(),
                v(3, 4),
                String::new(),
                String::new(),
            ]);
        }
        t
    }

    /// The paper's table row: accuracy, F1 and AUROC as mean ± sd over folds.
    pub fn summary_table(&self) -> Table {
        let mut t = Table::new(
            format!("{}-fold cross-validation (mean ± sd over folds)", self.folds.len()),
            &["model", "Acc (%)", "balanced acc", "F1", "AUROC", "folds that learned"],
        );
        let (a, b, f, u) = (
            self.stat(|r| 100.0 * r.accuracy),
            self.stat(|r| r.balanced_accuracy),
            self.stat(|r| r.macro_f1),
            self.stat(|r| r.auroc),
        );
        let learned = self.folds.iter().filter(|r| r.learned).count();
        t.push(vec![
            format!("{} ({}){}", self.model, self.mode, mark(learned == self.folds.len())),
            format_mean_sd(a.0, a.1, 2),
            format_mean_sd(b.0, b.1, 3),
            format_mean_sd(f.0, f.1, 3),
            format_mean_sd(u.0, u.1, 3),
            format!("{learned} of {}", self.folds.len()),
        ]);
        if learned < self.folds.len() {
            t.note(NOT_LEARNED_NOTE);
        }
        t
    }
}

/// One few-shot run: a model trained on k subjects per class (draw `draw`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FewShotRun {
    pub model: String,
    pub k: usize,
    pub draw: usize,
    pub train_scans: usize,
    pub result: RunResult,
}

/// Test AUROC against the number of labelled subjects per class (the paper's Figure 5).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FewShot {
    pub models: Vec<String>,
    /// The k that could be drawn, ascending as given.
    pub ks: Vec<usize>,
    pub runs: Vec<FewShotRun>,
}

impl FewShot {
    /// Trains every model on every draw of every k (`draws`: k with its training sets), all on the
    /// same validation and test rows, in `out/{model}-k{k}-draw{i}`. `train(m, splits, dir)`
    /// trains model m; `done(run)` hears of each run as it finishes.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        models: &[String],
        draws: &[(usize, Vec<Vec<ManifestRow>>)],
        val: &[ManifestRow],
        test: &[ManifestRow],
        classes: usize,
        out: &Path,
        mut train: impl FnMut(usize, &Splits, &Path) -> Result<Outcome>,
        mut done: impl FnMut(&FewShotRun),
    ) -> Result<Self> {
        let mut study = FewShot {
            models: models.to_vec(),
            ks: draws.iter().map(|d| d.0).collect(),
            runs: Vec::new(),
        };
        for (k, sets) in draws {
            for (m, name) in models.iter().enumerate() {
                for (i, rows) in sets.iter().enumerate() {
                    let dir = out.join(format!("{name}-k{k}-draw{i}"));
                    let split = Splits {
                        train: rows.clone(),
                        val: val.to_vec(),
                        test: test.to_vec(),
                    };
                    let o = train(m, &split, &dir)?;
                    let run = FewShotRun {
                        model: name.clone(),
                        k: *k,
                        draw: i,
                        train_scans: rows.len(),
                        result: RunResult::new(&o, classes, &dir),
                    };
                    done(&run);
                    study.runs.push(run);
                }
            }
        }
        Ok(study)
    }

    /// Test AUROCs of `model` at `k`, one per draw.
    pub fn aurocs(&self, model: &str, k: usize) -> Vec<f64> {
        self.runs
            .iter()
            .filter(|r| r.model == model && r.k == k)
            .map(|r| r.result.auroc)
            .collect()
    }

    /// One row per run (the layout of `fewshot.csv`).
    pub fn runs_table(&self) -> Table {
        let mut t = Table::new(
            "few-shot runs",
            &[
                "model",
                "k",
                "draw",
                "train_scans",
                "test_auroc",
                "test_accuracy",
                "best_epoch",
                "learned",
            ],
        );
        for r in &self.runs {
            t.push(vec![
                r.model.clone(),
                r.k.to_string(),
                r.draw.to_string(),
                r.train_scans.to_string(),
                format!("{:.4}", r.result.auroc),
                format!("{:.4}", r.result.accuracy),
                r.result.epoch.to_string(),
                r.result.learned.to_string(),
            ]);
        }
        t
    }

    /// Test AUROC per model (rows) and k (columns), mean ± sd over draws.
    pub fn summary_table(&self) -> Table {
        let mut cols = vec!["model".to_string()];
        cols.extend(self.ks.iter().map(|k| format!("k = {k}")));
        let draws = self.runs.iter().map(|r| r.draw + 1).max().unwrap_or(0);
        let mut t = Table {
            title: format!("test AUROC, mean ± sd over {draws} draws of k subjects per class"),
            columns: cols,
            ..Table::default()
        };
        let mut any_unlearned = false;
        for m in &self.models {
            let mut row = vec![m.clone()];
            for &k in &self.ks {
                let (mean, sd) = mean_and_sd(&self.aurocs(m, k));
                let unlearned = self.runs.iter().any(|r| r.model == *m && r.k == k && !r.result.learned);
                any_unlearned |= unlearned;
                row.push(format!("{}{}", format_mean_sd(mean, sd, 3), mark(!unlearned)));
            }
            t.push(row);
        }
        if any_unlearned {
            t.note(format!(
                "{NOT_LEARNED} at least one draw's classifier never left the chance loss."
            ));
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_eval::Metrics;

    fn outcome(auroc: f64, loss: f64) -> Outcome {
        let test = Metrics {
            accuracy: auroc - 0.1,
            macro_f1: 0.5,
            f1_positive: Some(0.4),
            auroc,
            balanced_accuracy: 0.6,
            sensitivity: 0.5,
            specificity: 0.7,
            confusion_matrix: vec![vec![1, 0], vec![0, 1]],
        };
        Outcome {
            best_epoch: 2,
            val: test.clone(),
            test,
            train_loss: loss,
            min_train_loss: loss,
        }
    }

    fn rows(n: usize) -> Vec<ManifestRow> {
        (0..n)
            .map(|i| {
                ManifestRow::new(
                    (i % 2) as i64,
                    &format!("s{i}"),
                    "T1",
                    PathBuf::from(format!("{i}.nii")),
                )
            })
            .collect()
    }

    #[test]
    fn cross_validation_aggregates_with_the_population_sd() {
        let splits = brainssl_data::splits::cv_splits(&rows(12), 3, 0.25, 1).unwrap();
        let aurocs = [0.6, 0.8, 1.0];
        let mut seen = Vec::new();
        let cv = CrossValidation::run("mae", "probe", splits, 2, Path::new("/o"), |i, s, dir| {
            seen.push((i, s.test.len(), dir.to_path_buf()));
            Ok(outcome(aurocs[i], if i == 1 { 0.69 } else { 0.2 }))
        })
        .unwrap();
        assert_eq!(seen.iter().map(|s| s.1).sum::<usize>(), 12, "each scan tested once");
        assert_eq!(seen[2].2, Path::new("/o/fold2"));
        let (m, sd) = cv.stat(|r| r.auroc);
        // population sd of 0.6, 0.8, 1.0: sqrt(0.08 / 3)
        assert!((m - 0.8).abs() < 1e-12 && (sd - (0.08f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(cv.folds[0].epoch, 3, "epochs count from 1");
        assert!(!cv.folds[1].learned && cv.folds[0].learned);
        let s = cv.summary_table();
        assert_eq!(s.rows[0][0], "mae (probe)†");
        assert_eq!(s.rows[0][4], "0.800 ± 0.163");
        assert_eq!(s.rows[0][5], "2 of 3");
        assert_eq!(s.notes.len(), 1);
        let f = cv.folds_table();
        assert_eq!(f.rows.len(), 5);
        assert_eq!(f.rows[3][0], "mean");
        assert_eq!(f.rows[3][5], "0.8000");
    }

    #[test]
    fn few_shot_runs_every_model_k_and_draw_and_summarises_per_k() {
        let pool = rows(20);
        let draws: Vec<(usize, Vec<Vec<ManifestRow>>)> = [1, 2]
            .iter()
            .map(|&k| (k, brainssl_data::splits::few_shot_draws(&pool, k, 2, 0).unwrap()))
            .collect();
        let models = vec!["mae".to_string(), "resnet50".to_string()];
        let mut heard = 0;
        let fs = FewShot::run(
            &models,
            &draws,
            &pool[..4],
            &pool[4..8],
            2,
            Path::new("/o"),
            |m, s, _| Ok(outcome(0.5 + 0.1 * m as f64 + 0.05 * s.train.len() as f64, 0.1)),
            |_| heard += 1,
        )
        .unwrap();
        assert_eq!((fs.runs.len(), heard), (8, 8));
        assert_eq!(fs.runs[0].result.dir, Path::new("/o/mae-k1-draw0"));
        assert_eq!(fs.aurocs("resnet50", 2).len(), 2);
        // k = 2: 4 training scans per draw
        assert!((fs.aurocs("mae", 2)[0] - 0.7).abs() < 1e-12);
        let t = fs.summary_table();
        assert_eq!(t.columns, ["model", "k = 1", "k = 2"]);
        assert_eq!(t.rows[1][2], "0.800 ± 0.000");
        assert!(t.notes.is_empty());
        assert_eq!(fs.runs_table().rows.len(), 8);
    }
}
