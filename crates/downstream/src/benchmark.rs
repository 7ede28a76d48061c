//! The in-silico claims benchmark (docs/evaluation.md#claims-benchmark): synthetic tasks with known
//! ground truth, each chosen so that one of the paper's claims can be tested on it, then the
//! multi-seed study on all of them, a few-shot sweep against a ResNet-50 from scratch, and one
//! verdict per claim ([`crate::claims`]).
//!
//! Tasks (each its own synthetic population, split by subject):
//! - `texture`: the label lives in a region's fine texture (claim 1's primary task);
//! - `tumour`: tumour grade as the demo has it (texture, necrosis and rim; the rim is clipped);
//! - `multi-factor`: the majority of three independent findings (claim 2's primary task);
//! - `mci`: subtle atrophy;
//! - `contrast-T2-FLAIR`: atrophy, every subject scanned in T1, T2 and FLAIR; the probe trains and
//!   selects on T1 and is tested on T2 and FLAIR (features that only encode intensity fail), with
//!   `contrast-T1` (the same test subjects in T1) beside it as the in-contrast reference;
//! - the few-shot population (atrophy, the paper's NC vs AD panel; kept out of pretraining as the
//!   paper keeps its pool).
//!
//! Pretraining sees the training scans of every task but the few-shot one, in every contrast.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use brainssl_backend::Device;
use brainssl_data::splits;
use brainssl_data::synth::anatomy::Contrast;
use brainssl_data::synth::{generate, SynthConfig, SynthTask};
use brainssl_data::ManifestRow;
use brainssl_eval::table::{format_mean_sd, Table};
use brainssl_train::PretrainConfig;
use serde::{Deserialize, Serialize};

use crate::baseline::ResNetClassifier;
use crate::claims::{encoder_claims, few_shot_claim, Claim, ClaimTasks};
use crate::encoder::{CheckpointKey, Encoder};
use crate::fit::Splits;
use crate::probe::{run, train, Downstream};
use crate::seeds::{SeedStudy, SeedStudyPlan, Task};
use crate::study::{mean_and_sd, FewShot};
use crate::DownstreamConfig;

/// How big the benchmark is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchmarkScale {
    /// Subjects of each probe task (split 40 / 20 / 40 % train / val / test).
    pub subjects: usize,
    /// Subjects of the cross-contrast task (3 scans each).
    pub contrast_subjects: usize,
    /// Subjects of the few-shot population (60 / 15 / 25 % pool / val / test).
    pub few_shot_subjects: usize,
    /// Labelled subjects per class of the few-shot sweep; the first is claim 4's.
    pub ks: Vec<usize>,
    /// Training draws per k.
    pub draws: usize,
}

impl Default for BenchmarkScale {
    fn default() -> Self {
        BenchmarkScale {
            subjects: 120,
            contrast_subjects: 80,
            few_shot_subjects: 240,
            ks: vec![16, 32, 64],
            draws: 3,
        }
    }
}

/// What to run.
pub struct BenchmarkPlan {
    pub scale: BenchmarkScale,
    /// Seed of the synthetic populations and their splits.
    pub data_seed: u64,
    /// The four objectives' pretraining configs, named `mae`, `sl-mae`, `jepa`, `vcr-jepa`.
    pub presets: Vec<(String, PretrainConfig)>,
    pub seeds: Vec<u64>,
    pub random_seeds: Vec<u64>,
    /// The frozen-probe recipe of the study.
    pub probe: DownstreamConfig,
    /// Few-shot: the SSL objectives (fine-tuned, as in the paper) and their recipe.
    pub few_shot_objectives: Vec<String>,
    pub finetune: DownstreamConfig,
    /// Few-shot: the ResNet-50 baseline's recipe.
    pub resnet: DownstreamConfig,
    pub device: Device,
    pub resamples: usize,
    pub progress: bool,
}

/// One synthetic population of the benchmark.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Population {
    pub name: String,
    pub generator: String,
    pub subjects: usize,
    pub scans: usize,
    pub manifest: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchmarkResult {
    pub scale: BenchmarkScale,
    pub populations: Vec<Population>,
    pub study: SeedStudy,
    pub few_shot: FewShot,
    pub few_shot_objectives: Vec<String>,
    pub claims: Vec<Claim>,
    pub seconds: f64,
}

const CLASS_NAMES: [[&str; 2]; 5] = [
    ["smooth", "textured"],
    ["low grade", "high grade"],
    ["fewer than 2 findings", "2 or more"],
    ["normal", "MCI-like"],
    ["normal", "atrophy"],
];

impl BenchmarkPlan {
    fn population(&self, out: &Path, name: &str, cfg: SynthConfig) -> Result<(Population, Vec<ManifestRow>)> {
        let dir = out.join("data").join(name);
        let m = generate(&cfg, &dir, &indicatif::ProgressBar::hidden())?;
        let p = Population {
            name: name.into(),
            generator: format!(
                "synth --task {} --subjects {} --sessions {} --seed {}{}",
                cfg.task.name(),
                cfg.subjects,
                cfg.sessions,
                cfg.seed,
                if cfg.contrasts.is_empty() {
                    String::new()
                } else {
                    let c: Vec<&str> = cfg.contrasts.iter().map(|c| c.name()).collect();
                    format!(" --contrasts {}", c.join(","))
                }
            ),
            subjects: cfg.subjects,
            scans: m.rows.len(),
            manifest: dir.join("manifest.csv"),
        };
        if self.progress {
            eprintln!("benchmark: {name}: {} scans of {} subjects", p.scans, p.subjects);
        }
        Ok((p, m.rows))
    }

    fn split(&self, rows: &[ManifestRow], fractions: [f64; 3]) -> Result<[Vec<ManifestRow>; 3]> {
        let s = splits::train_val_test(rows, fractions, self.data_seed)?;
        splits::check_disjoint(&[("train", &s[0]), ("val", &s[1]), ("test", &s[2])])?;
        Ok(s)
    }

    /// Runs everything in `out`: `data/`, the study's folders, `fewshot/`.
    pub fn run(&self, out: &Path) -> Result<BenchmarkResult> {
        let started = std::time::Instant::now();
        let sc = &self.scale;
        let seed = self.data_seed;
        let mut populations = Vec::new();
        let mut tasks = Vec::new();
        let mut unlabelled = Vec::new();
        // the few-shot draws first: a k the pool cannot hold fails now, not after the study
        let (few_shot_population, rows) = self.population(
            out,
            "few-shot",
            SynthConfig::new(SynthTask::Ad, sc.few_shot_subjects, seed + 20),
        )?;
        let [pool, few_shot_val, few_shot_test] = self.split(&rows, [0.6, 0.15, 0.25])?;
        let mut draws = Vec::new();
        for &k in &sc.ks {
            let d = splits::few_shot_draws(&pool, k, sc.draws, seed)
                .map_err(|e| anyhow!("few-shot population ({} subjects): {e:#}", sc.few_shot_subjects))?;
            draws.push((k, d));
        }
        let probe_tasks = [
            ("texture", SynthTask::Texture),
            ("tumour", SynthTask::TumorGrade),
            ("multi-factor", SynthTask::MultiFactor),
            ("mci", SynthTask::Mci),
        ];
        for (i, (name, task)) in probe_tasks.into_iter().enumerate() {
            let (p, rows) = self.population(out, name, SynthConfig::new(task, sc.subjects, seed + i as u64))?;
            populations.push(p);
            let [train, val, test] = self.split(&rows, [0.4, 0.2, 0.4])?;
            unlabelled.extend(train.iter().cloned());
            tasks.push(Task {
                name: name.into(),
                splits: Splits { train, val, test },
                class_names: CLASS_NAMES[i].map(String::from).to_vec(),
            });
        }
        // cross-contrast: train and select on T1, test on T2 and FLAIR of other subjects
        let cfg = SynthConfig {
            sessions: 3,
            contrasts: vec![Contrast::T1, Contrast::T2, Contrast::Flair],
            ..SynthConfig::new(SynthTask::Ad, sc.contrast_subjects, seed + 10)
        };
        let (p, rows) = self.population(out, "contrast", cfg)?;
        populations.push(p);
        let [train, val, test] = self.split(&rows, [0.4, 0.2, 0.4])?;
        unlabelled.extend(train.iter().cloned());
        let t1 = |rows: &[ManifestRow], want: bool| -> Vec<ManifestRow> {
            rows.iter().filter(|r| (r.contrast == "T1") == want).cloned().collect()
        };
        for (name, test) in [
            ("contrast-T2-FLAIR", t1(&test, false)),
            ("contrast-T1", t1(&test, true)),
        ] {
            tasks.push(Task {
                name: name.into(),
                splits: Splits {
                    train: t1(&train, true),
                    val: t1(&val, true),
                    test,
                },
                class_names: CLASS_NAMES[4].map(String::from).to_vec(),
            });
        }
        let study = SeedStudyPlan {
            presets: self.presets.clone(),
            seeds: self.seeds.clone(),
            random_seeds: self.random_seeds.clone(),
            unlabelled,
            tasks,
            probe: self.probe.clone(),
            device: self.device,
            resamples: self.resamples,
            progress: self.progress,
        }
        .run(out)?;
        populations.push(few_shot_population);
        let few_shot = self.few_shot(&draws, &few_shot_val, &few_shot_test, &study, &out.join("fewshot"))?;
        let mut result = BenchmarkResult {
            scale: sc.clone(),
            populations,
            study,
            few_shot,
            few_shot_objectives: self.few_shot_objectives.clone(),
            claims: Vec::new(),
            seconds: started.elapsed().as_secs_f64(),
        };
        // the hours of training are on disk before the claims are read from them: should reading
        // fail, `brainssl benchmark --claims-only` can try again
        brainssl_scan::atomic_write(
            &out.join("benchmark.json"),
            serde_json::to_string_pretty(&result)?.as_bytes(),
        )?;
        result.compute_claims(self.resamples)?;
        Ok(result)
    }

    /// Every few-shot objective's encoder of every seed, fine-tuned, and the ResNet-50 from
    /// scratch, on the same draws of k subjects per class.
    fn few_shot(
        &self,
        draws: &[(usize, Vec<Vec<ManifestRow>>)],
        val: &[ManifestRow],
        test: &[ManifestRow],
        study: &SeedStudy,
        out: &Path,
    ) -> Result<FewShot> {
        let mut models = Vec::new();
        let mut checkpoints = Vec::new();
        for o in &self.few_shot_objectives {
            for &s in &self.seeds {
                let p = study
                    .pretraining
                    .iter()
                    .find(|p| p.preset == *o && p.seed == s)
                    .ok_or_else(|| anyhow!("few-shot objective {o} was not pretrained with seed {s}"))?;
                models.push(format!("{o}-seed{s}"));
                checkpoints.push(p.checkpoint.clone());
            }
        }
        models.push("resnet50".into());
        let classes = self.finetune.classifier.num_classes;
        FewShot::run(
            &models,
            draws,
            val,
            test,
            classes,
            out,
            |m, split, dir| match checkpoints.get(m) {
                Some(c) => {
                    let enc = Encoder::load(c, CheckpointKey::Student, self.device)?;
                    let mut cfg = self.finetune.clone();
                    cfg.classifier.heads = enc.cfg.heads;
                    run(&cfg, Downstream::new(&cfg, enc, true)?, split, dir, false)
                }
                None => train(
                    &self.resnet,
                    &ResNetClassifier::new(classes, self.resnet.seed, self.device),
                    split,
                    dir,
                    self.device,
                    false,
                ),
            },
            |r| {
                if self.progress {
                    eprintln!(
                        "benchmark: few-shot {} k = {} draw {}: test AUROC {:.3}",
                        r.model, r.k, r.draw, r.result.auroc
                    );
                }
            },
        )
    }
}

/// The test sets by role in the claims.
fn claim_tasks() -> ClaimTasks {
    let all = [
        "texture",
        "tumour",
        "multi-factor",
        "mci",
        "contrast-T2-FLAIR",
        "contrast-T1",
    ];
    ClaimTasks {
        high_frequency: "texture".into(),
        multi_factor: "multi-factor".into(),
        all: all.map(String::from).to_vec(),
        // contrast-T1 tests the same subjects as contrast-T2-FLAIR
        pooled: all[..5].iter().map(|s| s.to_string()).collect(),
    }
}

impl BenchmarkResult {
    /// The four claims from the run folders' prediction files (again, after a change of the rule,
    /// without training anything).
    pub fn compute_claims(&mut self, resamples: usize) -> Result<()> {
        let mut claims = encoder_claims(&self.study.tasks, &claim_tasks(), resamples)?;
        claims.push(few_shot_claim(
            &self.few_shot,
            &self.few_shot_objectives,
            "resnet50",
            self.scale.ks[0],
            resamples,
        )?);
        self.claims = claims;
        Ok(())
    }

    /// Cross-contrast transfer per encoder group: test AUROC on the T1 scans of the test subjects
    /// and on their T2 and FLAIR scans, with the same probe recipe trained on T1.
    pub fn transfer_table(&self) -> Table {
        let mut t = Table::new(
            "cross-contrast transfer: probes trained and selected on T1, mean ± sd over seeds",
            &["encoder", "test on T1", "test on T2 + FLAIR", "change"],
        );
        let task = |n: &str| self.study.tasks.iter().find(|t| t.task == n);
        let (Some(other), Some(t1)) = (task("contrast-T2-FLAIR"), task("contrast-T1")) else {
            return t;
        };
        for g in &t1.groups {
            let Some(h) = other.groups.iter().find(|h| h.name == g.name) else {
                continue;
            };
            let ((a, sa), (b, sb)) = (g.test_auroc(), h.test_auroc());
            t.push(vec![
                g.name.clone(),
                format_mean_sd(a, sa, 3),
                format_mean_sd(b, sb, 3),
                format!("{:+.3}", b - a),
            ]);
        }
        t.note("The same test subjects in both columns: their T1 scans, then their T2 and FLAIR scans.");
        t
    }

    /// One line per claim: its verdict and the primary comparison.
    pub fn headlines(&self) -> Vec<String> {
        self.claims.iter().map(Claim::headline).collect()
    }

    /// Few-shot test AUROC per objective (over seeds × draws) and the baseline (over draws).
    pub fn few_shot_table(&self) -> Table {
        let mut cols = vec!["model".to_string(), "runs per k".to_string()];
        cols.extend(self.few_shot.ks.iter().map(|k| format!("k = {k}")));
        let mut t = Table {
            title: "few-shot: test AUROC, mean ± sd over runs (SSL: seeds × draws, fine-tuned; ResNet-50: draws)"
                .into(),
            columns: cols,
            ..Table::default()
        };
        let mut names: Vec<(String, String)> = self
            .few_shot_objectives
            .iter()
            .map(|o| (o.clone(), format!("{o}-seed")))
            .collect();
        names.push(("resnet50 (from scratch)".into(), "resnet50".into()));
        for (label, prefix) in names {
            let mut row = vec![label];
            let mut n = 0;
            for &k in &self.few_shot.ks {
                let v: Vec<f64> = self
                    .few_shot
                    .runs
                    .iter()
                    .filter(|r| r.k == k && r.model.starts_with(&prefix))
                    .map(|r| r.result.auroc)
                    .collect();
                n = v.len();
                let (m, s) = mean_and_sd(&v);
                row.push(format_mean_sd(m, s, 3));
            }
            row.insert(1, n.to_string());
            t.push(row);
        }
        t
    }

    /// The populations and what each was generated with.
    pub fn populations_table(&self) -> Table {
        let mut t = Table::new("synthetic populations", &["name", "generator", "subjects", "scans"]);
        for p in &self.populations {
            t.push(vec![
                p.name.clone(),
                p.generator.clone(),
                p.subjects.to_string(),
                p.scans.to_string(),
            ]);
        }
        t
    }

    /// Claims first, then the few-shot summary, the study's tables per task and the populations.
    pub fn tables(&self) -> Vec<Table> {
        let mut v: Vec<Table> = self.claims.iter().map(Claim::table).collect();
        v.push(self.few_shot_table());
        v.push(self.transfer_table());
        for t in &self.study.tasks {
            v.push(t.groups_table());
        }
        v.push(self.populations_table());
        v
    }
}
