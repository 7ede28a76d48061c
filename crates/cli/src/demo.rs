//! `brainssl demo`: the whole path on built-in synthetic brains, on a laptop CPU in about ten
//! minutes: synth two labelled datasets (atrophy vs normal, low vs high tumour grade) → subject-level
//! splits → pretrain tiny MAE, SL-MAE, JEPA and VCR-JEPA on the unlabelled training scans of both →
//! frozen attentive probes on each encoder and on a random one, fine-tuned probes, a supervised
//! ResNet-50 → embeddings, t-SNE, silhouette and NMI → PSD → a summary table and an HTML report.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use brainssl_backend::{Device, Precision};
use brainssl_data::splits;
use brainssl_data::synth::{generate, SynthConfig, SynthTask};
use brainssl_data::{Manifest, ManifestRow};
use brainssl_downstream::baseline::ResNetClassifier;
use brainssl_downstream::embed::{embed_rows, EmbedPlan};
use brainssl_downstream::encoder::{CheckpointKey, Encoder};
use brainssl_downstream::fit::{Outcome, Splits};
use brainssl_downstream::probe::{run, train, Downstream};
use brainssl_downstream::study::{NOT_LEARNED, NOT_LEARNED_NOTE};
use brainssl_downstream::{DownstreamConfig, Mode};
use brainssl_eval::cluster::{Separation, TsneConfig};
use brainssl_eval::{paired_auroc, Metrics, Predictions, Table};
use brainssl_train::session::Start;
use brainssl_train::trainer::{pretrain, TrainOptions};
use brainssl_train::PretrainConfig;
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::commands::progress;

const PRESETS: [&str; 4] = ["tiny-mae", "tiny-sl-mae", "tiny-jepa", "tiny-vcr-jepa"];

#[derive(Args)]
pub struct DemoArgs {
    /// Output folder
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
    /// Seed of the synthetic data, the splits and every run
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Subjects of the atrophy dataset (half of them atrophied)
    #[arg(long, default_value_t = 120)]
    pub atrophy_subjects: usize,
    /// Subjects of the tumour-grade dataset (half high grade)
    #[arg(long, default_value_t = 80)]
    pub tumour_subjects: usize,
    /// Pretraining epochs per objective, over the training scans of both datasets
    #[arg(long, default_value_t = 8)]
    pub pretrain_epochs: usize,
    /// Epochs of each frozen probe (on cached, standardised tokens: a fraction of a second each)
    #[arg(long, default_value_t = 40)]
    pub probe_epochs: usize,
    /// Epochs of the fine-tuned MAE probe on each task
    #[arg(long, default_value_t = 4)]
    pub finetune_epochs: usize,
    /// Epochs of the ResNet-50 baseline on the atrophy task (about 1 min each on 2 cores)
    #[arg(long, default_value_t = 3)]
    pub baseline_epochs: usize,
}

/// One labelled synthetic dataset and its subject-level split.
struct Task {
    name: &'static str,
    /// Names of classes 0 and 1.
    classes: [&'static str; 2],
    manifest: PathBuf,
    split: Splits,
}

impl Task {
    fn class_names(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.to_string()).collect()
    }
}

fn synth_task(
    a: &DemoArgs,
    (name, classes): (&'static str, [&'static str; 2]),
    task: SynthTask,
    subjects: usize,
    seed: u64,
) -> Result<Task> {
    let dir = a.out.join(format!("synth-{name}"));
    let cfg = SynthConfig {
        task,
        subjects,
        sessions: 1,
        size: 64,
        seed,
        keep_skull: false,
    };
    let pb = progress(0, "synth");
    let m = generate(&cfg, &dir, &pb)?;
    pb.finish_and_clear();
    let [train, val, test] = splits::train_val_test(&m.rows, [0.6, 0.2, 0.2], a.seed)?;
    splits::check_disjoint(&[("train", &train), ("val", &val), ("test", &test)])?;
    let splits_dir = a.out.join(format!("splits-{name}"));
    for (part, rows) in [("train", &train), ("val", &val), ("test", &test)] {
        Manifest {
            rows: rows.clone(),
            extra_columns: m.extra_columns.clone(),
        }
        .write(&splits_dir.join(format!("{part}.csv")))?;
    }
    eprintln!(
        "1/6 {name}: {} synthetic brains, subject-level split {} / {} / {} → {}",
        m.rows.len(),
        train.len(),
        val.len(),
        test.len(),
        splits_dir.display()
    );
    Ok(Task {
        name,
        classes,
        manifest: dir.join("manifest.csv"),
        split: Splits { train, val, test },
    })
}

/// Separation of the classes in `rows`' pooled embeddings; saves the t-SNE map as `dir/tsne-{name}.svg`.
fn analyse(
    name: &str,
    task: &Task,
    enc: &Encoder,
    rows: &[ManifestRow],
    cfg: &DownstreamConfig,
    dir: &Path,
) -> Result<Separation> {
    let plan = EmbedPlan {
        prep: &cfg.prep,
        batch_size: 4,
        precision: Precision::F32,
    };
    let (pooled, _) = embed_rows(enc, rows, plan, false)?;
    let x: Vec<Vec<f64>> = pooled.iter().map(|e| e.iter().map(|&v| v as f64).collect()).collect();
    let y: Vec<usize> = rows.iter().map(|r| r.label as usize).collect();
    let sep = Separation::compute(&x, &y, &TsneConfig::default()).map_err(|e| anyhow!(e))?;
    let svg = crate::figures::tsne(
        &sep.map,
        &y,
        &task.class_names(),
        &format!("{name}: t-SNE of {} held-out scans", sep.n),
    )?;
    let path = dir.join(format!("tsne-{name}.svg"));
    brainssl_plot::save(&path, &svg).with_context(|| path.display().to_string())?;
    Ok(sep)
}

/// The verdict line of one task: each pretrained encoder's test AUROC minus the random encoder's
/// (the last of `probes`), with a paired bootstrap over the test subjects, so that a lead that is
/// within the noise of a small test set is not read as a win.
fn versus_random(task: &Task, probes: &[(String, PathBuf)], seed: u64) -> Result<String> {
    let read = |dir: &PathBuf| Predictions::read(&dir.join("test_predictions.csv")).map_err(|e| anyhow!(e));
    let (_, random_dir) = probes.last().ok_or_else(|| anyhow!("no probes"))?;
    let random = read(random_dir)?;
    let random_auroc = Metrics::compute(&random.probs, &random.labels)
        .map_err(|e| anyhow!(e))?
        .auroc;
    let (mut higher, mut clear, mut parts) = (0, 0, Vec::new());
    for (name, dir) in &probes[..probes.len() - 1] {
        let d = paired_auroc(&read(dir)?, &random, 1000, seed).map_err(|e| anyhow!(e))?;
        higher += usize::from(d.difference > 0.0);
        clear += usize::from(d.interval.0 > 0.0);
        parts.push(format!(
            "{name} {:+.3} [{:+.3}, {:+.3}]",
            d.difference, d.interval.0, d.interval.1
        ));
    }
    Ok(format!(
        "{}: {higher} of {} pretrained encoders with a higher test AUROC than the random encoder ({:.3}), \
         {clear} with the paired 95 % interval above 0 ({} test scans): {}",
        task.name,
        probes.len() - 1,
        random_auroc,
        task.split.test.len(),
        parts.join("; ")
    ))
}

/// The demo's summary: what it ran, the verdict per task, and its tables. Written as
/// `summary.md` for readers and `summary.json` for `brainssl report`.
#[derive(Serialize, Deserialize)]
pub struct DemoSummary {
    pub intro: String,
    pub verdicts: Vec<String>,
    pub tables: Vec<Table>,
}

impl DemoSummary {
    pub fn to_markdown(&self) -> String {
        let mut s = format!("{}\n\n", self.intro);
        for v in &self.verdicts {
            s.push_str(&format!("- {v}\n"));
        }
        for t in &self.tables {
            s.push('\n');
            s.push_str(&t.to_markdown());
        }
        s
    }
}

/// A table row of one classifier: validation and test AUROC, test accuracy and macro F1, marked
/// when the classifier never left the chance loss.
fn row(t: &mut Table, name: &str, o: &Outcome, extra: &[String]) {
    let mark = if o.learned(2) { "" } else { NOT_LEARNED };
    let mut r = vec![
        format!("{name}{mark}"),
        format!("{:.3}", o.val.auroc),
        format!("{:.3}", o.test.auroc),
        format!("{:.1}", 100.0 * o.test.accuracy),
        format!("{:.3}", o.test.macro_f1),
    ];
    r.extend(extra.iter().cloned());
    t.push(r);
}

const CLASSIFIER_COLUMNS: [&str; 5] = ["model", "val AUROC", "test AUROC", "test acc (%)", "test macro F1"];

pub fn demo(a: DemoArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let tasks = [
        synth_task(
            &a,
            ("atrophy", ["normal", "atrophy"]),
            SynthTask::Ad,
            a.atrophy_subjects,
            a.seed,
        )?,
        synth_task(
            &a,
            ("tumour", ["low grade", "high grade"]),
            SynthTask::TumorGrade,
            a.tumour_subjects,
            a.seed + 1,
        )?,
    ];

    // pretraining sees the training subjects of both datasets, without labels
    let unlabelled: Vec<ManifestRow> = tasks.iter().flat_map(|t| t.split.train.clone()).collect();
    let device = Device::Cpu;
    let mut checkpoints = Vec::new();
    for preset in PRESETS {
        let mut pc = PretrainConfig::preset(preset)?;
        pc.optim.epochs = a.pretrain_epochs;
        pc.seed = a.seed;
        let dir = a.out.join(format!("pretrain-{preset}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let opts = TrainOptions {
            device,
            start: Start::Fresh(Box::new(pc)),
            world: None,
            dist_timeout: None,
            force: false,
            epochs: None,
            init: None,
            halt_after_steps: None,
            progress: true,
        };
        let s = pretrain(unlabelled.clone(), &dir, opts)?;
        eprintln!(
            "2/6 pretrained {preset} on {} unlabelled scans: {} steps in {:.0} s, loss {:.3} → {:.3} → {}",
            unlabelled.len(),
            s.micro_steps,
            s.seconds,
            s.epoch_losses.first().copied().unwrap_or(f64::NAN),
            s.epoch_losses.last().copied().unwrap_or(f64::NAN),
            dir.display()
        );
        checkpoints.push((preset.trim_start_matches("tiny-").to_string(), s.final_checkpoint));
    }

    let random = PretrainConfig::preset("tiny-mae")?;
    // fresh encoders for each run: the pretrained student encoders and a random one
    let encoders = || -> Result<Vec<(String, Encoder, bool)>> {
        let mut v = Vec::new();
        for (name, ckpt) in &checkpoints {
            v.push((name.clone(), Encoder::load(ckpt, CheckpointKey::Student, device)?, true));
        }
        v.push((
            "random".into(),
            Encoder::random(&random.encoder, a.seed + 7, device),
            false,
        ));
        Ok(v)
    };
    // frozen probes: tokens computed once and standardised per channel (see `standardise`)
    let mut dcfg = DownstreamConfig::paper(Mode::Frozen, 2, true);
    dcfg.epochs = a.probe_epochs;
    dcfg.feature_cache = true;
    dcfg.standardise_tokens = true;
    let analysis = a.out.join("analysis");
    std::fs::create_dir_all(&analysis)?;
    let mut tables = Vec::new();
    let mut verdicts = Vec::new();
    let mut columns = CLASSIFIER_COLUMNS.to_vec();
    columns.extend(["silhouette", "NMI", "silhouette (t-SNE)"]);
    for task in &tasks {
        let heldout: Vec<ManifestRow> = task.split.val.iter().chain(&task.split.test).cloned().collect();
        let mut t = Table::new(format!("{} (synthetic), frozen probes", task.name), &columns);
        let mut outcomes = Vec::new();
        for (name, enc, pretrained) in encoders()? {
            dcfg.classifier.heads = enc.cfg.heads;
            dcfg.class_names = task.class_names();
            let dir = a.out.join(format!("{}-probe-{name}", task.name));
            let sep = analyse(&format!("{}-{name}", task.name), task, &enc, &heldout, &dcfg, &analysis)?;
            let o = run(
                &dcfg,
                Downstream::new(&dcfg, enc, pretrained)?,
                &task.split,
                &dir,
                false,
            )?;
            eprintln!(
                "3/6 {}: frozen probe on {name}: val AUROC {:.3}, test AUROC {:.3} (best epoch {}) → {}",
                task.name,
                o.val.auroc,
                o.test.auroc,
                o.best_epoch + 1,
                dir.display()
            );
            let extra = [sep.silhouette_raw, sep.nmi_raw, sep.silhouette_tsne].map(|v| format!("{v:.3}"));
            row(&mut t, &name, &o, &extra);
            outcomes.push((name, dir));
        }
        tables.push(t);
        verdicts.push(versus_random(task, &outcomes, a.seed)?);
    }

    // fine-tuning (paper recipe, the encoder trains) and the supervised baseline
    let mut t = Table::new("fine-tuned and supervised", &CLASSIFIER_COLUMNS);
    let mut fcfg = DownstreamConfig::paper(Mode::Finetune, 2, true);
    fcfg.epochs = a.finetune_epochs;
    fcfg.warmup_epochs = fcfg.warmup_epochs.min(fcfg.epochs);
    for task in &tasks {
        let mae = Encoder::load(&checkpoints[0].1, CheckpointKey::Student, device)?;
        fcfg.classifier.heads = mae.cfg.heads;
        fcfg.class_names = task.class_names();
        let dir = a.out.join(format!("{}-finetune-mae", task.name));
        let o = run(&fcfg, Downstream::new(&fcfg, mae, true)?, &task.split, &dir, true)?;
        eprintln!(
            "4/6 {}: fine-tuned mae: test AUROC {:.3} → {}",
            task.name,
            o.test.auroc,
            dir.display()
        );
        row(&mut t, &format!("{}: mae, fine-tuned", task.name), &o, &[]);
    }
    let mut rcfg = DownstreamConfig::resnet(2, true);
    rcfg.class_names = tasks[0].class_names();
    rcfg.epochs = a.baseline_epochs;
    rcfg.warmup_epochs = rcfg.warmup_epochs.min(rcfg.epochs);
    let rdir = a.out.join("atrophy-baseline-resnet50");
    let o = train(
        &rcfg,
        &ResNetClassifier::new(2, a.seed, device),
        &tasks[0].split,
        &rdir,
        device,
        true,
    )?;
    eprintln!(
        "5/6 atrophy: ResNet-50 3-D from scratch: test AUROC {:.3} → {}",
        o.test.auroc,
        rdir.display()
    );
    row(&mut t, "atrophy: ResNet-50 3-D (supervised, from scratch)", &o, &[]);
    tables.push(t);
    if tables
        .iter()
        .any(|t| t.rows.iter().any(|r| r[0].ends_with(NOT_LEARNED)))
    {
        tables.last_mut().expect("tables").note(NOT_LEARNED_NOTE);
    }

    // spectral content of the two synthetic datasets (docs/evaluation.md#psd-analysis, the paper's Figure 3)
    crate::analysis::psd(crate::analysis::PsdArgs {
        manifest: tasks.iter().map(|t| t.manifest.clone()).collect(),
        names: tasks.iter().map(|t| t.name.to_string()).collect(),
        out: a.out.join("psd"),
        // a rerun of the demo replaces its own results
        force: true,
        depth: 64,
        size: 64,
        cutoff: 0.3,
        bins: 40,
    })?;

    let summary = DemoSummary {
        intro: "Validation and test AUROC of frozen probes (cached, standardised tokens) on every encoder, \
                fine-tuned MAE probes and a supervised ResNet-50. Silhouette and NMI: pooled embeddings of \
                the held-out (val + test) scans. One pretraining seed on a small synthetic test set: read \
                the verdicts' intervals, not the ranking."
            .into(),
        verdicts,
        tables,
    };
    let md = summary.to_markdown();
    brainssl_scan::atomic_write(&a.out.join("summary.md"), md.as_bytes())?;
    brainssl_scan::atomic_write(
        &a.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    println!("{md}");
    let html = a.out.join("report.html");
    crate::report::run(crate::report::ReportArgs {
        runs: vec![a.out.clone()],
        out: html.clone(),
    })?;
    println!(
        "demo finished in {:.0} s: report {}, runs in {}",
        started.elapsed().as_secs_f64(),
        html.display(),
        a.out.display()
    );
    Ok(())
}
