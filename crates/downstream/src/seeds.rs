//! Does pretraining help, or was one initialisation lucky? The multi-seed study pretrains every
//! objective from several seeds, probes each encoder on every task with the same frozen recipe, and
//! compares each objective against two controls on the same test scans:
//!
//! - its step-0 students: the encoders those runs started from (same seed, no training), so that
//!   "pretraining moved the weights somewhere useful" is separated from "this initialisation was
//!   already good";
//! - randomly initialised encoders from other seeds.
//!
//! Results are mean ± sd over seeds, and a two-level bootstrap interval of the difference in mean
//! test AUROC: each draw resamples the seeds (paired with the step-0 students, which share them;
//! independently against random encoders), then the test subjects once for every run of both sides.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use brainssl_backend::Device;
use brainssl_data::ManifestRow;
use brainssl_eval::table::{format_mean_sd, Table};
use brainssl_eval::{mean_auroc_difference, AurocDifference, Predictions, Seeds};
use brainssl_train::session::Start;
use brainssl_train::trainer::{pretrain, TrainOptions};
use brainssl_train::PretrainConfig;
use serde::{Deserialize, Serialize};

use crate::encoder::{CheckpointKey, Encoder};
use crate::fit::Splits;
use crate::probe::{run, Downstream};
use crate::study::{mean_and_sd, NOT_LEARNED, NOT_LEARNED_NOTE};
use crate::DownstreamConfig;

/// A labelled task: its subject-level split and class names.
pub struct Task {
    pub name: String,
    pub splits: Splits,
    pub class_names: Vec<String>,
}

/// What to run.
pub struct SeedStudyPlan {
    /// Pretraining configs by name (their `seed` is replaced by each study seed).
    pub presets: Vec<(String, PretrainConfig)>,
    pub seeds: Vec<u64>,
    /// Seeds of the random-encoder control (keep them apart from `seeds`).
    pub random_seeds: Vec<u64>,
    /// Pretraining scans (labels unused): usually the training scans of every task.
    pub unlabelled: Vec<ManifestRow>,
    pub tasks: Vec<Task>,
    /// The frozen-probe recipe, the same for every encoder (its class names are set per task).
    pub probe: DownstreamConfig,
    pub device: Device,
    /// Bootstrap resamples of each comparison.
    pub resamples: usize,
    pub progress: bool,
}

/// Which kind of encoder a group holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncoderKind {
    Pretrained,
    /// The pretraining runs' initial weights (shared by every objective of one seed when their
    /// encoders have the same architecture, since the encoder is drawn first from the seed).
    StepZero,
    Random,
}

/// One probe of one encoder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeRun {
    pub seed: u64,
    pub val_auroc: f64,
    pub test_auroc: f64,
    pub test_accuracy: f64,
    pub learned: bool,
    pub dir: PathBuf,
}

impl ProbeRun {
    /// The probe's predictions on the test scans (its folder's `test_predictions.csv`).
    pub fn test_predictions(&self) -> Result<Predictions> {
        test_predictions(&self.dir)
    }
}

/// A classifier run folder's predictions on its test scans.
pub fn test_predictions(dir: &Path) -> Result<Predictions> {
    Predictions::read(&dir.join("test_predictions.csv")).map_err(|e| anyhow!(e))
}

/// The probes of one encoder group on one task, one per seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncoderGroup {
    pub name: String,
    pub kind: EncoderKind,
    pub runs: Vec<ProbeRun>,
}

impl EncoderGroup {
    /// Mean and sd over the seeds of the probes' test AUROC.
    pub fn test_auroc(&self) -> (f64, f64) {
        mean_and_sd(&self.runs.iter().map(|r| r.test_auroc).collect::<Vec<_>>())
    }
}

/// One objective against one control.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Comparison {
    pub encoder: String,
    pub control: String,
    pub difference: AurocDifference,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskResult {
    pub task: String,
    pub test_scans: usize,
    pub groups: Vec<EncoderGroup>,
    pub comparisons: Vec<Comparison>,
}

/// The study's results.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedStudy {
    pub seeds: Vec<u64>,
    pub random_seeds: Vec<u64>,
    pub tasks: Vec<TaskResult>,
    pub pretraining: Vec<PretrainingRun>,
}

/// One pretraining run of the study.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PretrainingRun {
    pub preset: String,
    pub seed: u64,
    pub dir: PathBuf,
    pub checkpoint: PathBuf,
}

impl SeedStudyPlan {
    /// Runs the study in `out`: `pretrain-{preset}-seed{s}/` per run, and per task
    /// `{task}-probe-{encoder}-seed{s}/` per probe.
    pub fn run(&self, out: &Path) -> Result<SeedStudy> {
        if self.seeds.is_empty() || self.random_seeds.is_empty() || self.presets.is_empty() {
            return Err(anyhow!(
                "a study needs at least one preset, one seed and one random seed"
            ));
        }
        if let Some(s) = self.random_seeds.iter().find(|s| self.seeds.contains(s)) {
            return Err(anyhow!(
                "seed {s} is both a pretraining seed and a random-encoder seed: that random encoder would be the step-0 student"
            ));
        }
        // one architecture and input size: the controls and the probe recipe are those of the first
        let (first, cfg0) = &self.presets[0];
        let same = |c: &PretrainConfig| {
            c.encoder == cfg0.encoder
                && c.data.prep.depth == cfg0.data.prep.depth
                && c.data.prep.size == cfg0.data.prep.size
        };
        if let Some((name, _)) = self.presets.iter().find(|(_, c)| !same(c)) {
            return Err(anyhow!(
                "presets {first} and {name} differ in encoder or input size: a study compares objectives of one architecture"
            ));
        }
        let mut pretraining = Vec::new();
        for (name, base) in &self.presets {
            for &seed in &self.seeds {
                let mut cfg = base.clone();
                cfg.seed = seed;
                let dir = out.join(format!("pretrain-{name}-seed{seed}"));
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)?;
                }
                let opts = TrainOptions {
                    device: self.device,
                    start: Start::Fresh(Box::new(cfg)),
                    world: None,
                    dist_timeout: None,
                    force: false,
                    epochs: None,
                    init: None,
                    halt_after_steps: None,
                    progress: self.progress,
                };
                let s = pretrain(self.unlabelled.clone(), &dir, opts)?;
                if self.progress {
                    eprintln!(
                        "study: pretrained {name} seed {seed}: {} steps in {:.0} s, loss {:.3} → {:.3}",
                        s.micro_steps,
                        s.seconds,
                        s.epoch_losses.first().copied().unwrap_or(f64::NAN),
                        s.epoch_losses.last().copied().unwrap_or(f64::NAN)
                    );
                }
                pretraining.push(PretrainingRun {
                    preset: name.clone(),
                    seed,
                    dir,
                    checkpoint: s.final_checkpoint,
                });
            }
        }
        let mut tasks = Vec::new();
        for task in &self.tasks {
            tasks.push(self.probe_task(task, &pretraining, out)?);
        }
        Ok(SeedStudy {
            seeds: self.seeds.clone(),
            random_seeds: self.random_seeds.clone(),
            tasks,
            pretraining,
        })
    }

    /// Probes every encoder on `task` and compares each objective with its controls.
    fn probe_task(&self, task: &Task, pretraining: &[PretrainingRun], out: &Path) -> Result<TaskResult> {
        let mut recipe = self.probe.clone();
        recipe.class_names = task.class_names.clone();
        let classes = recipe.classifier.num_classes;
        let mut groups: Vec<EncoderGroup> = Vec::new();
        let mut probe = |group: &str, kind: EncoderKind, seed: u64, enc: Encoder| -> Result<()> {
            recipe.classifier.heads = enc.cfg.heads;
            let dir = out.join(format!("{}-probe-{group}-seed{seed}", task.name));
            let o = run(
                &recipe,
                Downstream::new(&recipe, enc, kind == EncoderKind::Pretrained)?,
                &task.splits,
                &dir,
                false,
            )?;
            if self.progress {
                eprintln!(
                    "study: {}: {group} seed {seed}: test AUROC {:.3}{}",
                    task.name,
                    o.test.auroc,
                    if o.learned(classes) {
                        ""
                    } else {
                        " (did not leave chance)"
                    }
                );
            }
            let result = ProbeRun {
                seed,
                val_auroc: o.val.auroc,
                test_auroc: o.test.auroc,
                test_accuracy: o.test.accuracy,
                learned: o.learned(classes),
                dir,
            };
            match groups.iter_mut().find(|g| g.name == group) {
                Some(g) => g.runs.push(result),
                None => groups.push(EncoderGroup {
                    name: group.to_string(),
                    kind,
                    runs: vec![result],
                }),
            }
            Ok(())
        };
        for p in pretraining {
            probe(
                &p.preset,
                EncoderKind::Pretrained,
                p.seed,
                Encoder::load(&p.checkpoint, CheckpointKey::Student, self.device)?,
            )?;
        }
        // the step-0 students: every objective's run of one seed starts from the same encoder
        let arch = &self.presets[0].1.encoder;
        for &seed in &self.seeds {
            probe(
                "init",
                EncoderKind::StepZero,
                seed,
                Encoder::random(arch, seed, self.device),
            )?;
        }
        for &seed in &self.random_seeds {
            probe(
                "random",
                EncoderKind::Random,
                seed,
                Encoder::random(arch, seed, self.device),
            )?;
        }
        let read =
            |g: &EncoderGroup| -> Result<Vec<Predictions>> { g.runs.iter().map(ProbeRun::test_predictions).collect() };
        let mut comparisons = Vec::new();
        for g in groups.iter().filter(|g| g.kind == EncoderKind::Pretrained) {
            let mine = read(g)?;
            for control in groups.iter().filter(|c| c.kind != EncoderKind::Pretrained) {
                // runs in seed order on both sides, so index i pairs a run with its initialisation
                let pairing = if control.kind == EncoderKind::StepZero {
                    Seeds::Paired
                } else {
                    Seeds::Independent
                };
                let difference = mean_auroc_difference(&mine, &read(control)?, pairing, self.resamples, 0x5eed)
                    .map_err(|e| anyhow!(e))?;
                comparisons.push(Comparison {
                    encoder: g.name.clone(),
                    control: control.name.clone(),
                    difference,
                });
            }
        }
        Ok(TaskResult {
            task: task.name.clone(),
            test_scans: task.splits.test.len(),
            groups,
            comparisons,
        })
    }
}

impl TaskResult {
    /// Comparisons whose interval lies above 0.
    pub fn higher_count(&self) -> usize {
        self.comparisons
            .iter()
            .filter(|c| c.difference.verdict() == "higher")
            .count()
    }

    /// Test AUROC per encoder group: mean ± sd over seeds, and each seed's value.
    pub fn groups_table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "{}: frozen probes, mean ± sd over seeds ({} test scans)",
                self.task, self.test_scans
            ),
            &[
                "encoder",
                "kind",
                "seeds",
                "val AUROC",
                "test AUROC",
                "test accuracy (%)",
                "test AUROC per seed",
            ],
        );
        let mut unlearned = false;
        for g in &self.groups {
            let (v, vs) = mean_and_sd(&g.runs.iter().map(|r| r.val_auroc).collect::<Vec<_>>());
            let (a, s) = g.test_auroc();
            let (c, cs) = mean_and_sd(&g.runs.iter().map(|r| 100.0 * r.test_accuracy).collect::<Vec<_>>());
            let per: Vec<String> = g
                .runs
                .iter()
                .map(|r| format!("{:.3}{}", r.test_auroc, if r.learned { "" } else { NOT_LEARNED }))
                .collect();
            unlearned |= g.runs.iter().any(|r| !r.learned);
            let kind = match g.kind {
                EncoderKind::Pretrained => "pretrained",
                EncoderKind::StepZero => "step-0 student",
                EncoderKind::Random => "random init",
            };
            t.push(vec![
                g.name.clone(),
                kind.into(),
                g.runs.len().to_string(),
                format_mean_sd(v, vs, 3),
                format_mean_sd(a, s, 3),
                format_mean_sd(c, cs, 1),
                per.join(", "),
            ]);
        }
        if unlearned {
            t.note(NOT_LEARNED_NOTE);
        }
        t
    }

    /// Each pretrained encoder against its controls: difference in mean test AUROC with its paired
    /// 95 % interval, and the verdict it supports.
    pub fn comparisons_table(&self) -> Table {
        let mut t = Table::new(
            format!("{}: pretrained encoders against their controls", self.task),
            &[
                "encoder",
                "control",
                "mean test AUROC",
                "control's",
                "difference [95 % CI]",
                "verdict",
            ],
        );
        for c in &self.comparisons {
            let d = &c.difference;
            t.push(vec![
                c.encoder.clone(),
                c.control.clone(),
                format!("{:.3}", d.auroc_a),
                format!("{:.3}", d.auroc_b),
                d.with_interval(),
                d.verdict().into(),
            ]);
        }
        t.note(
            "Interval: 2.5th-97.5th percentile of the difference over bootstrap draws that resample the seeds \
             (paired with the step-0 students, independently against random encoders) and then the test \
             subjects; 'higher' or 'lower' only when it excludes 0. No correction for the number of \
             comparisons: with many rows, one may cross 0 by chance.",
        );
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_backend::to_vec;
    use brainssl_models::named_params;
    use brainssl_prep::Rng;
    use brainssl_train::step::Student;

    /// The step-0 control is only a control if it is the encoder the pretraining run started from.
    #[test]
    fn step_zero_student_is_the_encoder_a_run_starts_from() {
        for preset in ["tiny-mae", "tiny-sl-mae", "tiny-jepa", "tiny-vcr-jepa"] {
            let mut cfg = PretrainConfig::preset(preset).unwrap();
            cfg.seed = 7;
            let student = Student::init(&cfg, &mut Rng::new(cfg.seed), Device::Cpu);
            let init = Encoder::random(&cfg.encoder, 7, Device::Cpu);
            let a: Vec<(String, Vec<f32>)> = named_params(&student.vs)
                .into_iter()
                .filter_map(|(n, t)| Some((n.strip_prefix("encoder.")?.to_string(), to_vec(&t))))
                .collect();
            let b: Vec<(String, Vec<f32>)> = named_params(&init.vs)
                .into_iter()
                .map(|(n, t)| (n, to_vec(&t)))
                .collect();
            assert!(!a.is_empty());
            assert_eq!(a, b, "{preset}");
            let other = Encoder::random(&cfg.encoder, 8, Device::Cpu);
            let c: Vec<(String, Vec<f32>)> = named_params(&other.vs)
                .into_iter()
                .map(|(n, t)| (n, to_vec(&t)))
                .collect();
            assert_ne!(c, b, "another seed draws other weights");
        }
    }
}
