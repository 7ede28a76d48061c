//! `brainssl study`: every pretraining objective from several seeds against its controls (step-0
//! students and random encoders), frozen probes on one labelled task, mean ± sd over seeds and
//! paired subject-bootstrap intervals (`brainssl_downstream::seeds`).

use std::path::PathBuf;

use anyhow::{bail, Result};
use brainssl_data::Manifest;
use brainssl_downstream::seeds::{SeedStudyPlan, Task};
use brainssl_downstream::Mode;
use clap::Args;

use crate::downstream::{classes_of, recipe, FrozenArgs, RecipeArgs, SplitArgs};
use crate::output::{claim_folder, write_table};
use crate::pretrain::build_config;

#[derive(Args)]
pub struct StudyArgs {
    #[command(flatten)]
    data: SplitArgs,
    /// Pretraining presets to compare, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "tiny-mae,tiny-sl-mae,tiny-jepa,tiny-vcr-jepa", value_parser = crate::choices::preset())]
    presets: Vec<String>,
    /// More manifests for pretraining only (unlabelled rows allowed); the task's training scans are always used
    #[arg(long, num_args = 1..)]
    unlabelled: Vec<PathBuf>,
    /// Pretraining seeds per preset (3 or more: the intervals resample them)
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// The first pretraining seed; the others follow it
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Randomly initialised encoders as a control (seeds first-seed + 1000, + 1001, ...)
    #[arg(long, default_value_t = 3)]
    random_seeds: u64,
    /// Pretraining epochs [default: the preset's]
    #[arg(long)]
    pretrain_epochs: Option<usize>,
    /// TOML overrides applied to every preset's pretraining config
    #[arg(long)]
    pretrain_config: Option<PathBuf>,
    /// Frozen-probe recipe, epochs and overrides (the probes cache and standardise tokens)
    #[command(flatten)]
    recipe: RecipeArgs,
    /// Bootstrap resamples of each comparison
    #[arg(long, default_value_t = 1000)]
    resamples: usize,
    /// Output folder: study.json, the tables per task, and one folder per pretraining run and probe
    #[arg(long)]
    out: PathBuf,
    /// Write into a non-empty --out, overwriting its files (others are kept)
    #[arg(long)]
    force: bool,
}

pub fn study(a: StudyArgs) -> Result<()> {
    if a.seeds < 1 || a.random_seeds < 1 {
        bail!("--seeds and --random-seeds must be at least 1");
    }
    let _lock = claim_folder(&a.out, a.force, "study")?;
    let (splits, map) = a.data.splits()?;
    let classes = classes_of(&[&splits.train, &splits.val, &splits.test], map)?;
    let mut presets = Vec::new();
    for name in &a.presets {
        let cfg = build_config(name, a.pretrain_config.as_deref(), a.pretrain_epochs)?;
        presets.push((name.clone(), cfg));
    }
    let frozen = FrozenArgs {
        feature_cache: true,
        standardise_tokens: true,
    };
    let probe = recipe(&a.recipe, &frozen, Mode::Frozen, &classes, &presets[0].1)?;
    let mut unlabelled = splits.train.clone();
    for m in &a.unlabelled {
        unlabelled.extend(Manifest::read(m)?.rows);
    }
    let task_name = a.data.name().unwrap_or_else(|| "task".into());
    let plan = SeedStudyPlan {
        presets,
        seeds: (a.first_seed..a.first_seed + a.seeds).collect(),
        random_seeds: (a.first_seed + 1000..a.first_seed + 1000 + a.random_seeds).collect(),
        unlabelled,
        tasks: vec![Task {
            name: task_name,
            splits,
            class_names: classes.names.clone(),
        }],
        probe,
        device: a.recipe.device.device()?,
        resamples: a.resamples,
        progress: !a.recipe.quiet,
    };
    let result = plan.run(&a.out)?;
    brainssl_scan::atomic_write(
        &a.out.join("study.json"),
        serde_json::to_string_pretty(&result)?.as_bytes(),
    )?;
    for t in &result.tasks {
        let (g, c) = (t.groups_table(), t.comparisons_table());
        write_table(&a.out, &format!("{}-encoders", t.task), &g)?;
        write_table(&a.out, &format!("{}-comparisons", t.task), &c)?;
        print!("{}\n{}", g.to_markdown(), c.to_markdown());
    }
    Ok(())
}
