//! `brainssl demo`: the whole path on built-in synthetic brains, on a laptop CPU in under ten
//! minutes (about seven on 2 cores): synth two labelled datasets (atrophy vs normal, low vs high tumour grade) → subject-level
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
use brainssl_downstream::seeds::{SeedStudyPlan, Task as StudyTask};
use brainssl_downstream::study::{NOT_LEARNED, NOT_LEARNED_NOTE};
use brainssl_downstream::{DownstreamConfig, Mode};
use brainssl_eval::cluster::{Separation, TsneConfig};
use brainssl_eval::Table;
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
    /// Pretraining seeds per objective (the random-encoder control gets as many)
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
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
    let cfg = SynthConfig::new(task, subjects, seed);
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
    brainssl_scan::atomic_write(&path, svg.as_bytes()).with_context(|| path.display().to_string())?;
    Ok(sep)
}

/// The demo's summary: what it ran, the verdict per task, and its tables. Written as
/// `summary.md` for readers and `summary.json` for `brainssl report`.
#[derive(Serialize, Deserialize)]
pub struct DemoSummary {
    pub intro: String,
    pub verdicts: Vec<String>,
    pub tables: Vec<Table>,
    /// The run folders the report shows in full (the first seed's); the others are in the tables.
    #[serde(default)]
    pub detailed_runs: Vec<String>,
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

    // every objective from several seeds, on the training subjects of both datasets without
    // labels, then frozen probes (cached, standardised tokens) on each encoder and its controls
    let unlabelled: Vec<ManifestRow> = tasks.iter().flat_map(|t| t.split.train.clone()).collect();
    let device = Device::Cpu;
    let mut presets = Vec::new();
    for preset in PRESETS {
        let pc = crate::pretrain::build_config(preset, None, Some(a.pretrain_epochs))?;
        presets.push((preset.trim_start_matches("tiny-").to_string(), pc));
    }
    let mut dcfg = DownstreamConfig::paper(Mode::Frozen, 2, true);
    dcfg.epochs = a.probe_epochs;
    dcfg.feature_cache = true;
    dcfg.standardise_tokens = true;
    let seeds: Vec<u64> = (a.seed..a.seed + a.seeds).collect();
    let plan = SeedStudyPlan {
        presets,
        seeds: seeds.clone(),
        random_seeds: (a.seed + 1000..a.seed + 1000 + a.seeds).collect(),
        unlabelled: unlabelled.clone(),
        tasks: tasks
            .iter()
            .map(|t| StudyTask {
                name: t.name.to_string(),
                splits: t.split.clone(),
                class_names: t.class_names(),
            })
            .collect(),
        probe: dcfg.clone(),
        device,
        resamples: 1000,
        progress: true,
    };
    eprintln!(
        "2/6 pretraining {} objectives × {} seeds on {} unlabelled scans, then frozen probes on every encoder and its controls",
        PRESETS.len(),
        seeds.len(),
        unlabelled.len()
    );
    let study = plan.run(&a.out)?;
    brainssl_scan::atomic_write(
        &a.out.join("study.json"),
        serde_json::to_string_pretty(&study)?.as_bytes(),
    )?;
    let mut tables = Vec::new();
    let mut verdicts = Vec::new();
    for t in &study.tasks {
        tables.push(t.groups_table());
        tables.push(t.comparisons_table());
        let parts: Vec<String> = t
            .comparisons
            .iter()
            .map(|c| {
                let d = &c.difference;
                format!("{} vs {} {} ({})", c.encoder, c.control, d.with_interval(), d.verdict())
            })
            .collect();
        let higher = t.higher_count();
        verdicts.push(format!(
            "{}: {higher} of {} comparisons with the paired 95 % interval above 0 (mean test AUROC over {} seeds, {} test scans): {}",
            t.task,
            t.comparisons.len(),
            seeds.len(),
            t.test_scans,
            parts.join("; ")
        ));
    }
    let checkpoint_of = |name: &str| {
        study
            .pretraining
            .iter()
            .find(|p| p.preset == name && p.seed == a.seed)
            .map(|p| p.checkpoint.clone())
            .ok_or_else(|| anyhow!("no {name} run of seed {}", a.seed))
    };

    // representations of the first seed's encoders: separation of the classes in held-out scans
    let analysis = a.out.join("analysis");
    std::fs::create_dir_all(&analysis)?;
    let random = PretrainConfig::preset("tiny-mae")?;
    for task in &tasks {
        let heldout: Vec<ManifestRow> = task.split.val.iter().chain(&task.split.test).cloned().collect();
        let mut t = Table::new(
            format!(
                "{}: separation of the classes in held-out scans (seed {})",
                task.name, a.seed
            ),
            &Separation::columns(),
        );
        let mut encoders = Vec::new();
        for preset in PRESETS {
            let name = preset.trim_start_matches("tiny-");
            encoders.push((
                format!("{name}-seed{}", a.seed),
                Encoder::load(&checkpoint_of(name)?, CheckpointKey::Student, device)?,
            ));
        }
        encoders.push((
            format!("init-seed{}", a.seed),
            Encoder::random(&random.encoder, a.seed, device),
        ));
        encoders.push((
            format!("random-seed{}", a.seed + 1000),
            Encoder::random(&random.encoder, a.seed + 1000, device),
        ));
        for (name, enc) in encoders {
            let sep = analyse(&format!("{}-{name}", task.name), task, &enc, &heldout, &dcfg, &analysis)?;
            t.push(sep.row(&name));
        }
        eprintln!(
            "3/6 {}: embeddings, t-SNE, silhouette and NMI of the seed-{} encoders",
            task.name, a.seed
        );
        tables.push(t);
    }

    // fine-tuning (paper recipe, the encoder trains) and the supervised baseline
    let mut t = Table::new("fine-tuned and supervised", &CLASSIFIER_COLUMNS);
    let mut fcfg = DownstreamConfig::paper(Mode::Finetune, 2, true);
    fcfg.set_epochs(a.finetune_epochs);
    for task in &tasks {
        let mae = Encoder::load(&checkpoint_of("mae")?, CheckpointKey::Student, device)?;
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
    rcfg.set_epochs(a.baseline_epochs);
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
    if t.rows.iter().any(|r| r[0].ends_with(NOT_LEARNED)) {
        t.note(NOT_LEARNED_NOTE);
    }
    tables.push(t);

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

    // the report shows the first seed's runs in full; the other seeds are in the study tables
    let first = format!("-seed{}", a.seed);
    let detailed: Vec<String> = std::fs::read_dir(&a.out)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.contains("-seed") || n.ends_with(&first) || n.ends_with(&format!("-seed{}", a.seed + 1000)))
        .collect();
    let summary = DemoSummary {
        intro: format!(
            "Each objective pretrained from {} seeds; frozen probes (cached, standardised tokens) on every \
             encoder, on its step-0 student (the same initialisation, untrained) and on random encoders; \
             mean ± sd over seeds and paired subject-bootstrap intervals against both controls. Then the \
             first seed's encoders: separation of the classes (silhouette, NMI) in held-out scans, a \
             fine-tuned MAE per task and a supervised ResNet-50. A small synthetic test set: read the \
             intervals, not the ranking.",
            seeds.len()
        ),
        verdicts,
        tables,
        detailed_runs: detailed,
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
