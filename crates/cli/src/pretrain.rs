//! `brainssl pretrain`, `model-info` and `print-config --preset`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use brainssl_backend::{Device, DeviceSpec, PrecisionChoice};
use brainssl_data::Manifest;
use brainssl_models::count_params;
use brainssl_prep::Rng;
use brainssl_train::session::Start;
use brainssl_train::step::Student;
use brainssl_train::trainer::{pretrain, TrainOptions};
use brainssl_train::{PretrainConfig, PRESETS};
use clap::Args;

#[derive(Args)]
pub struct PretrainArgs {
    /// mae, sl-mae, jepa, vcr-jepa (reference sizes) or tiny-* (CPU sizes)
    #[arg(long, required_unless_present = "resume")]
    preset: Option<String>,
    /// Manifest(s) of training scans (SPEC 1.1 CSV)
    #[arg(long, required = true, num_args = 1..)]
    manifest: Vec<PathBuf>,
    /// Run folder: config.toml, log.csv, checkpoints/, previews/
    #[arg(long, required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its latest checkpoint
    #[arg(long, conflicts_with_all = ["preset", "config", "epochs", "out"])]
    resume: Option<PathBuf>,
    /// Override the preset's number of epochs
    #[arg(long)]
    epochs: Option<usize>,
    /// TOML file of overrides (any subset of `print-config --preset P`)
    #[arg(long)]
    config: Option<PathBuf>,
    /// cpu or cuda:N
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Matrix-product precision: auto (bf16 on CUDA, f32 on the CPU), f32 or bf16 (config key `precision`)
    #[arg(long, conflicts_with = "resume")]
    precision: Option<PrecisionChoice>,
    /// Stop after this many steps as if killed (for resume tests)
    #[arg(long, hide = true)]
    halt_after_steps: Option<usize>,
    /// No progress bar
    #[arg(long)]
    quiet: bool,
}

/// The preset with `--config` overrides and `--epochs` applied.
pub fn build_config(preset: &str, overrides: Option<&Path>, epochs: Option<usize>) -> Result<PretrainConfig> {
    let mut cfg = PretrainConfig::preset(preset)?;
    if let Some(path) = overrides {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        cfg = cfg.with_overrides(&text).with_context(|| path.display().to_string())?;
    }
    if let Some(e) = epochs {
        cfg.optim.epochs = e;
        cfg.optim.warmup_epochs = cfg.optim.warmup_epochs.min(e);
    }
    cfg.validate()?;
    Ok(cfg)
}

pub fn run(a: PretrainArgs) -> Result<()> {
    let manifest = Manifest::read_many(&a.manifest)?;
    let device = a.device.parse::<DeviceSpec>()?.device()?;
    let (start, out) = match &a.resume {
        Some(dir) => (Start::Resume, dir.clone()),
        None => {
            let preset = a.preset.as_deref().expect("clap requires --preset");
            let mut cfg = build_config(preset, a.config.as_deref(), a.epochs)?;
            if let Some(p) = a.precision {
                cfg.precision = p;
            }
            eprintln!(
                "pretraining {} on {} scans ({}x{}x{}), {} epochs, {} in {:?}",
                cfg.objective.name(),
                manifest.rows.len(),
                cfg.data.prep.depth,
                cfg.data.prep.size,
                cfg.data.prep.size,
                cfg.optim.epochs,
                a.device,
                cfg.precision.resolve(device)
            );
            (Start::Fresh(Box::new(cfg)), a.out.clone().expect("clap requires --out"))
        }
    };
    let opts = TrainOptions {
        device,
        start,
        halt_after_steps: a.halt_after_steps,
        progress: !a.quiet,
    };
    let summary = pretrain(manifest.rows, &out, opts)?;
    let curve: Vec<String> = summary.epoch_losses.iter().map(|l| format!("{l:.4}")).collect();
    println!(
        "done: {} steps ({} optimiser steps) in {:.1} s; epoch losses {}; {} non-finite; checkpoint {}",
        summary.micro_steps,
        summary.optimizer_steps,
        summary.seconds,
        curve.join(" "),
        summary.nonfinite_losses,
        summary.final_checkpoint.display()
    );
    Ok(())
}

#[derive(Args)]
pub struct ModelInfoArgs {
    #[arg(long)]
    preset: String,
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn model_info(a: ModelInfoArgs) -> Result<()> {
    let cfg = build_config(&a.preset, a.config.as_deref(), None)?;
    let student = Student::init(&cfg, &mut Rng::new(0), Device::Cpu);
    let head = if cfg.objective.is_mae() { "decoder" } else { "predictor" };
    let e = &cfg.encoder;
    let grid = e.grid(cfg.data.prep.depth, cfg.data.prep.size);
    println!("preset {} ({})", a.preset, cfg.objective.name());
    println!(
        "input 1x{}x{}x{}, tubelet {}x{}x{}, token grid {}x{}x{} = {} tokens",
        cfg.data.prep.depth,
        cfg.data.prep.size,
        cfg.data.prep.size,
        e.tubelet,
        e.patch,
        e.patch,
        grid[0],
        grid[1],
        grid[2],
        grid.iter().product::<usize>()
    );
    let (ne, nh) = (
        count_params(&student.vs, "encoder."),
        count_params(&student.vs, "head."),
    );
    println!(
        "{:<10} {:>14}  width {} depth {} heads {}",
        "encoder",
        fmt(ne),
        e.embed_dim,
        e.depth,
        e.heads
    );
    let p = &cfg.predictor;
    println!(
        "{:<10} {:>14}  width {} depth {} heads {}",
        head,
        fmt(nh),
        p.embed_dim,
        p.depth,
        p.heads
    );
    println!("{:<10} {:>14}", "total", fmt(ne + nh));
    Ok(())
}

fn fmt(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `print-config --preset P`: the full pretraining config.
pub fn print_preset(preset: &str) -> Result<()> {
    if !PRESETS.contains(&preset) {
        bail!("unknown preset '{preset}': use one of {}", PRESETS.join(", "));
    }
    print!("{}", build_config(preset, None, None)?.to_toml());
    Ok(())
}
