//! `brainssl pretrain`, `model-info` and `print-config --preset`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use brainssl_backend::{Device, DeviceSpec, PrecisionChoice};
use brainssl_data::Manifest;
use brainssl_dist::{launch, WorldInfo};
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
    /// cpu or cuda:N; with several ranks, `cuda` gives each rank the GPU of its LOCAL_RANK
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Start this many data-parallel ranks on this machine (one per GPU, or CPU processes sharing the
    /// cores), like `torchrun --standalone --nproc-per-node N`. Under torchrun or srun leave it out:
    /// the ranks are read from RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT or SLURM_PROCID/SLURM_NTASKS
    #[arg(long, default_value_t = 1)]
    nproc_per_node: usize,
    /// Seconds a rank waits for the others (rendezvous and each collective) before failing
    /// [default: config key dist.timeout_s, 600]
    #[arg(long)]
    dist_timeout: Option<u64>,
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
    let world = WorldInfo::from_env(|k| std::env::var(k).ok())?;
    if a.nproc_per_node == 0 || a.nproc_per_node > 1024 {
        bail!("--nproc-per-node {}: use 1 to 1024", a.nproc_per_node);
    }
    if a.nproc_per_node > 1 && !launch::is_launched_worker() {
        if let Some(w) = &world {
            bail!(
                "--nproc-per-node starts its own ranks, but this process is already rank {} of {} ({}): leave it out",
                w.rendezvous.rank,
                w.rendezvous.world,
                w.source
            );
        }
        let exe = std::env::current_exe().context("cannot find this executable to start the ranks")?;
        let args: Vec<String> = std::env::args().skip(1).collect();
        return launch::run_local(&exe, &args, a.nproc_per_node, std::time::Duration::from_secs(15));
    }
    if let Some(t) = a.dist_timeout {
        if t == 0 || t > 86_400 {
            bail!("--dist-timeout {t}: use 1 to 86400 seconds");
        }
    }
    let manifest = Manifest::read_many(&a.manifest)?;
    let spec = a.device.parse::<DeviceSpec>()?;
    let spec = match (&world, spec) {
        (Some(w), DeviceSpec::Cuda(0)) => DeviceSpec::Cuda(w.rendezvous.local_rank),
        (Some(_), DeviceSpec::Cuda(i)) => {
            bail!("--device cuda:{i} with several ranks: say --device cuda, and each rank takes the GPU of its LOCAL_RANK")
        }
        (_, s) => s,
    };
    let device = spec.device()?;
    if let Some(w) = &world {
        let r = &w.rendezvous;
        if r.rank == 0 {
            eprintln!(
                "data parallel: {} ranks ({}), rendezvous {}:{}",
                r.world, w.source, r.master_addr, r.master_port
            );
        }
    }
    let (start, out) = match &a.resume {
        Some(dir) => (Start::Resume, dir.clone()),
        None => {
            let preset = a.preset.as_deref().expect("clap requires --preset");
            let mut cfg = build_config(preset, a.config.as_deref(), a.epochs)?;
            if let Some(p) = a.precision {
                cfg.precision = p;
            }
            if world.as_ref().is_none_or(|w| w.rendezvous.rank == 0) {
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
            }
            (Start::Fresh(Box::new(cfg)), a.out.clone().expect("clap requires --out"))
        }
    };
    let lead = world.as_ref().is_none_or(|w| w.rendezvous.rank == 0);
    let opts = TrainOptions {
        device,
        start,
        world: world.map(|w| w.rendezvous),
        dist_timeout: a.dist_timeout.map(std::time::Duration::from_secs),
        halt_after_steps: a.halt_after_steps,
        progress: !a.quiet,
    };
    let summary = pretrain(manifest.rows, &out, opts)?;
    if !lead {
        return Ok(());
    }
    let curve: Vec<String> = summary.epoch_losses.iter().map(|l| format!("{l:.4}")).collect();
    println!(
        "done: {} steps ({} optimiser steps) in {:.1} s ({:.2} volumes/s end to end); epoch losses {}; {} non-finite; checkpoint {}",
        summary.micro_steps,
        summary.optimizer_steps,
        summary.seconds,
        summary.volumes as f64 / summary.seconds.max(1e-9),
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
