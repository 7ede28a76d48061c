//! `brainssl benchmark`: the in-silico test of the paper's four claims
//! (`brainssl_downstream::benchmark`, docs/evaluation.md#claims-benchmark). Far longer than the
//! demo: the few-shot ResNet-50 runs dominate (docs/research-log.md#claims-benchmark).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use brainssl_backend::DeviceSpec;
use brainssl_downstream::benchmark::{BenchmarkPlan, BenchmarkResult, BenchmarkScale};
use brainssl_downstream::{DownstreamConfig, Mode};
use clap::Args;

use crate::output::{claim_folder, write_table};
use crate::pretrain::build_config;

const OBJECTIVES: [&str; 4] = ["mae", "sl-mae", "jepa", "vcr-jepa"];

#[derive(Args)]
pub struct BenchmarkArgs {
    /// Output folder: benchmark.json, claims.md, one table per claim, data/, the study's run
    /// folders and fewshot/
    #[arg(long)]
    out: PathBuf,
    /// Write into a non-empty --out, overwriting its files (others are kept)
    #[arg(long)]
    force: bool,
    /// Train nothing: recompute the claims of the finished benchmark in --out from its run folders'
    /// prediction files, and rewrite benchmark.json, claims.md and the claim tables
    #[arg(long)]
    claims_only: bool,
    /// Seed of the synthetic populations and their splits
    #[arg(long, default_value_t = 0)]
    data_seed: u64,
    /// Pretraining seeds per objective (the random-encoder control gets as many, from 1000)
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Subjects of each probe task (texture, tumour, multi-factor, mci), split 40/20/40 %
    #[arg(long, default_value_t = 120)]
    subjects: usize,
    /// Subjects of the cross-contrast task (a T1, a T2 and a FLAIR scan each)
    #[arg(long, default_value_t = 80)]
    contrast_subjects: usize,
    /// Subjects of the few-shot population, split 60/15/25 % pool/val/test
    #[arg(long, default_value_t = 240)]
    few_shot_subjects: usize,
    /// Labelled subjects per class in the few-shot sweep; the first decides claim 4
    #[arg(long, value_delimiter = ',', default_value = "16,32,64")]
    k: Vec<usize>,
    /// Training draws per k
    #[arg(long, default_value_t = 3)]
    draws: usize,
    /// Pretraining epochs of each tiny preset
    #[arg(long, default_value_t = 8)]
    pretrain_epochs: usize,
    /// TOML overrides applied to every objective's pretraining config
    #[arg(long)]
    pretrain_config: Option<PathBuf>,
    /// Epochs of each frozen probe (cached, standardised tokens)
    #[arg(long, default_value_t = 40)]
    probe_epochs: usize,
    /// Epochs of each few-shot fine-tuning run of an SSL encoder
    #[arg(long, default_value_t = 10)]
    finetune_epochs: usize,
    /// Epochs of each few-shot ResNet-50 run (trained from scratch)
    #[arg(long, default_value_t = 20)]
    baseline_epochs: usize,
    /// Bootstrap resamples of each comparison
    #[arg(long, default_value_t = 1000)]
    resamples: usize,
    /// cpu or cuda:N
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

pub fn benchmark(a: BenchmarkArgs) -> Result<()> {
    if a.claims_only {
        let path = a.out.join("benchmark.json");
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("{}: no finished benchmark", path.display()))?;
        let mut result: BenchmarkResult =
            serde_json::from_str(&text).with_context(|| format!("{}: not a benchmark result", path.display()))?;
        result.compute_claims(a.resamples)?;
        return write_outputs(&a.out, &result);
    }
    if a.seeds < 2 || a.k.is_empty() || a.draws < 1 {
        bail!("the benchmark needs --seeds 2 or more (its intervals resample them), one k and one draw");
    }
    let _lock = claim_folder(&a.out, a.force, "benchmark")?;
    let mut presets = Vec::new();
    for o in OBJECTIVES {
        let cfg = build_config(
            &format!("tiny-{o}"),
            a.pretrain_config.as_deref(),
            Some(a.pretrain_epochs),
        )?;
        presets.push((o.to_string(), cfg));
    }
    let with_epochs = |mut c: DownstreamConfig, epochs: usize| {
        c.set_epochs(epochs);
        c
    };
    let mut probe = with_epochs(DownstreamConfig::paper(Mode::Frozen, 2, true), a.probe_epochs);
    probe.feature_cache = true;
    probe.standardise_tokens = true;
    let plan = BenchmarkPlan {
        scale: BenchmarkScale {
            subjects: a.subjects,
            contrast_subjects: a.contrast_subjects,
            few_shot_subjects: a.few_shot_subjects,
            ks: a.k.clone(),
            draws: a.draws,
        },
        data_seed: a.data_seed,
        presets,
        seeds: (0..a.seeds).collect(),
        random_seeds: (1000..1000 + a.seeds).collect(),
        probe,
        few_shot_objectives: vec!["sl-mae".into(), "vcr-jepa".into()],
        finetune: with_epochs(DownstreamConfig::paper(Mode::Finetune, 2, true), a.finetune_epochs),
        resnet: with_epochs(DownstreamConfig::resnet(2, true), a.baseline_epochs),
        device: a.device.device()?,
        resamples: a.resamples,
        progress: true,
    };
    let result = plan.run(&a.out)?;
    write_outputs(&a.out, &result)
}

fn write_outputs(out: &Path, result: &BenchmarkResult) -> Result<()> {
    brainssl_scan::atomic_write(
        &out.join("benchmark.json"),
        serde_json::to_string_pretty(result)?.as_bytes(),
    )?;
    let mut md = format!(
        "# Claims benchmark\n\n{} pretraining seeds per objective, {:.0} s.\n\n",
        result.study.seeds.len(),
        result.seconds
    );
    for h in result.headlines() {
        md.push_str(&format!("- {h}\n"));
    }
    for (i, t) in result.tables().iter().enumerate() {
        md.push('\n');
        md.push_str(&t.to_markdown());
        if i < result.claims.len() {
            write_table(out, &format!("claim{}", i + 1), t)?;
        }
    }
    brainssl_scan::atomic_write(&out.join("claims.md"), md.as_bytes())?;
    println!("{md}");
    Ok(())
}
