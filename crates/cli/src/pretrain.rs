//! `brainssl pretrain`, `model-info` and `print-config --preset`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use brainssl_backend::{Device, DeviceSpec, PrecisionChoice};
use brainssl_data::Manifest;
use brainssl_dist::{launch, WorldInfo};
use brainssl_models::count_params;
use brainssl_prep::Rng;
use brainssl_train::session::{data_hash, RunPaths, Start};
use brainssl_train::step::Student;
use brainssl_train::trainer::{pretrain, TrainOptions};
use brainssl_train::{PretrainConfig, PRESETS};
use clap::Args;

#[derive(Args)]
pub struct PretrainArgs {
    /// The pretraining preset: mae, sl-mae, jepa, vcr-jepa at the paper's sizes, tiny-* for CPUs
    #[arg(long, required_unless_present = "resume", value_parser = crate::choices::preset())]
    preset: Option<String>,
    /// Manifest(s) of training scans (CSV: label, subject_id, contrast, nii_file_path); on resume
    /// the run's stored copy is used when left out
    #[arg(long, required_unless_present = "resume", num_args = 1..)]
    manifest: Vec<PathBuf>,
    /// Run folder: config.toml, manifest.csv, log.csv, checkpoints/, previews/
    #[arg(long, required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its latest checkpoint
    #[arg(long, conflicts_with_all = ["preset", "config", "out", "force"])]
    resume: Option<PathBuf>,
    /// The preset's number of epochs; with --resume, the run's new length (extends a finished run:
    /// the lr, weight-decay and EMA schedules are stretched to it from the current step)
    #[arg(long)]
    epochs: Option<usize>,
    /// Replace the run files of an earlier run in --out (otherwise a non-empty folder is refused)
    #[arg(long)]
    force: bool,
    /// TOML file of overrides (any subset of `print-config --preset P`)
    #[arg(long)]
    config: Option<PathBuf>,
    /// Start from the weights of this checkpoint (`checkpoint import`, or another run's) instead
    /// of a random initialisation: continued pretraining on your own scans. The optimiser and
    /// schedules start anew
    #[arg(long, conflicts_with = "resume")]
    init: Option<PathBuf>,
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
    /// Matrix-product precision: auto (bf16 on CUDA, f32 on the CPU), f32 or bf16 (config key `precision`) [default: the config's, auto]
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

/// The first Ctrl-C lets the current optimiser step finish and writes a checkpoint; the second exits.
fn on_ctrl_c(rank: Option<usize>) {
    let _ = ctrlc::set_handler(move || {
        if brainssl_train::interrupt::request() {
            eprintln!("\nCtrl-C again: exiting now");
            std::process::exit(130);
        }
        if rank.is_none_or(|r| r == 0) {
            eprintln!("\nCtrl-C: finishing this step and writing a checkpoint (Ctrl-C again exits at once)");
        }
    });
}

pub fn run(a: PretrainArgs) -> Result<()> {
    let world = WorldInfo::from_env(|k| std::env::var(k).ok())?;
    // the launcher too: its ranks get the same signal and stop by themselves
    on_ctrl_c(
        world
            .as_ref()
            .map(|w| w.rendezvous.rank)
            .or(Some(1).filter(|_| a.nproc_per_node > 1)),
    );
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
    if a.epochs.is_some_and(|e| e == 0 || e > 1_000_000) {
        bail!("--epochs {}: use 1 to 1000000", a.epochs.unwrap_or(0));
    }
    let manifests = match (&a.resume, a.manifest.is_empty()) {
        (Some(run), true) => vec![RunPaths::new(run).manifest()],
        _ => a.manifest.clone(),
    };
    let mut manifest = Manifest::read_many(&manifests)?;
    // scans by absolute path: the run folder's copy and its data hash do not depend on the working folder
    for r in &mut manifest.rows {
        r.path = std::path::absolute(&r.path).with_context(|| format!("{}: cannot resolve", r.path.display()))?;
    }
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
    let lead = world.as_ref().is_none_or(|w| w.rendezvous.rank == 0);
    let (start, out) = match &a.resume {
        Some(dir) => {
            let latest = RunPaths::new(dir).latest();
            if let Ok(m) = brainssl_train::checkpoint::read_manifest(&latest) {
                let p = &m.progress;
                brainssl_train::session::same_data(dir, &data_hash(&manifest.rows), &m.data_hash)?;
                let target = a.epochs.unwrap_or(m.config.optim.epochs);
                if target < p.epochs_done {
                    bail!(
                        "--epochs {target}: {} has already trained {} epochs",
                        dir.display(),
                        p.epochs_done
                    );
                }
                if p.epochs_done >= target {
                    if lead {
                        println!(
                            "{} has finished its {} epochs: nothing to do (--epochs N trains it longer)",
                            dir.display(),
                            p.epochs_done
                        );
                    }
                    return Ok(());
                }
                if lead {
                    eprintln!(
                        "resuming {} at epoch {} step {} of {} epochs (checkpoint {}: {} steps done) on {} scans",
                        dir.display(),
                        p.epochs_done + 1,
                        p.epoch_steps_done,
                        target,
                        latest.display(),
                        p.micro_steps,
                        manifest.rows.len()
                    );
                }
            }
            (Start::Resume, dir.clone())
        }
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
    let opts = TrainOptions {
        force: a.force,
        epochs: if a.resume.is_some() { a.epochs } else { None },
        init: a.init.clone(),
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
    let mut curve: Vec<String> = summary.epoch_losses.iter().map(|l| format!("{l:.4}")).collect();
    if curve.len() > 8 {
        let n = curve.len();
        curve = [&curve[..3], &["…".to_string()], &curve[n - 3..]].concat();
    }
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
    /// The pretraining preset
    #[arg(long, value_parser = crate::choices::preset())]
    preset: String,
    /// TOML overrides of the preset
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
