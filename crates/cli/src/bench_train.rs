//! `brainssl bench train` and `bench embed`: median ms per training step (or per encoder forward
//! pass) and peak memory for each preset, beside the PyTorch baseline (`bench/torch_train_step.py`)
//! with the same shapes and thread count, in the same run. Each side runs in its own process, so
//! peak memory is its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use std::time::Duration;

use brainssl_backend::{Device, DeviceSpec};
use brainssl_dist::{cuda_peak_bytes, launch, reset_cuda_peak, WorldInfo};
use brainssl_train::bench::{matmul_tflops, median, time_embed, time_steps, StepTimes};
use brainssl_train::flops;
use brainssl_train::parallel::DataParallel;
use brainssl_train::PretrainConfig;
use clap::Args;

#[derive(Args)]
pub struct TrainBenchArgs {
    /// Comma-separated presets
    #[arg(long, default_value = "tiny-mae,tiny-sl-mae,tiny-jepa,tiny-vcr-jepa")]
    preset: String,
    /// Also time N data-parallel ranks (Gloo on the CPU, NCCL on GPUs) sharing the global batch
    /// and the threads, beside the one-process step
    #[arg(long, default_value_t = 1)]
    nproc_per_node: usize,
    #[command(flatten)]
    common: BenchArgs,
}

#[derive(Args)]
pub struct EmbedBenchArgs {
    /// Comma-separated presets whose encoder and input size are timed
    #[arg(long, default_value = "mae")]
    preset: String,
    #[command(flatten)]
    common: BenchArgs,
}

#[derive(Args, Clone)]
pub struct BenchArgs {
    /// TOML overrides applied to every preset
    #[arg(long)]
    config: Option<PathBuf>,
    /// Volumes per step on both sides (default: the preset's batch size; 1 for embed)
    #[arg(long)]
    batch_size: Option<usize>,
    /// Timed steps per preset (the median is reported)
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed steps first (allocator and kernel warm-up)
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Threads on both sides (CPU)
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// cpu or cuda:N (the same for PyTorch)
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Python with PyTorch for the baseline ("auto": .venv/bin/python when present, else python3;
    /// "none" skips it). The CPU-only set-up cannot import torch in Python: `make setup-full`.
    #[arg(long, default_value = "auto")]
    python: String,
    /// Internal: time one preset in this process and print JSON
    #[arg(long, hide = true)]
    one: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Train,
    Embed,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Train => "train",
            Mode::Embed => "embed",
        }
    }
}

/// Peak resident memory of this process (Linux), MiB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn config(preset: &str, a: &BenchArgs, mode: Mode) -> Result<PretrainConfig> {
    let mut cfg = crate::pretrain::build_config(preset, a.config.as_deref(), None)?;
    match (a.batch_size, mode) {
        (Some(b), _) => cfg.data.batch_size = b,
        (None, Mode::Embed) => cfg.data.batch_size = 1,
        (None, Mode::Train) => {}
    }
    Ok(cfg)
}

fn run_one(preset: &str, a: &BenchArgs, mode: Mode) -> Result<()> {
    let cfg = config(preset, a, mode)?;
    let world = WorldInfo::from_env(|k| std::env::var(k).ok())?;
    let spec = match (&world, a.device.parse::<DeviceSpec>()?) {
        (Some(w), DeviceSpec::Cuda(_)) => DeviceSpec::Cuda(w.rendezvous.local_rank),
        (_, s) => s,
    };
    let device = spec.device()?;
    let mut dp = match &world {
        Some(w) => DataParallel::join(&w.rendezvous, device, Duration::from_secs(cfg.dist.timeout_s))?,
        None => DataParallel::alone(),
    };
    if let Device::Cuda(i) = device {
        reset_cuda_peak(i);
    }
    let t: StepTimes = match mode {
        Mode::Train => time_steps(&cfg, a.warmup, a.steps, device, &mut dp)?,
        Mode::Embed => time_embed(&cfg, cfg.data.batch_size, a.warmup, a.steps, device),
    };
    if !dp.leads() {
        return Ok(());
    }
    let flops = match mode {
        Mode::Train => flops::train_step(&cfg, t.batch, t.tokens, t.context_tokens_mean),
        Mode::Embed => t.batch as f64 * flops::encoder_forward(&cfg.encoder, t.tokens as f64, t.tokens as f64),
    };
    let peak_gpu_mb = match device {
        Device::Cuda(i) => cuda_peak_bytes(i).map(|b| b as f64 / (1u64 << 20) as f64),
        _ => None,
    };
    let out = serde_json::json!({
        "flops": flops,
        "peak_gpu_mb": peak_gpu_mb,
        "median_ms": t.median(),
        "forward_backward_ms": median(&t.forward_backward_ms),
        "allreduce_ms": median(&t.allreduce_ms),
        "ms": t.ms,
        "peak_rss_mb": peak_rss_mb(),
        "batch": t.batch,
        "tokens": t.tokens,
        "context_tokens": t.context_tokens_mean,
    });
    println!("{out}");
    Ok(())
}

fn json_of(out: std::process::Output, what: &str) -> Result<serde_json::Value> {
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().ok_or_else(|| anyhow!("{what}: no output"))?;
    serde_json::from_str(line).with_context(|| format!("{what}: {line}"))
}

/// The interpreter for the PyTorch side, or None to skip it.
fn python(choice: &str) -> Option<String> {
    match choice {
        "none" => None,
        "auto" => {
            let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
            Some(if venv.exists() {
                venv.display().to_string()
            } else {
                "python3".into()
            })
        }
        other => Some(other.into()),
    }
}

/// The matrix-product precision `cfg` runs in on `device` (the PyTorch side autocasts to match).
fn precision_name(cfg: &PretrainConfig, device: &str) -> &'static str {
    let dev = device
        .parse::<DeviceSpec>()
        .ok()
        .and_then(|d| d.device().ok())
        .unwrap_or(Device::Cpu);
    match cfg.precision.resolve(dev) {
        brainssl_backend::Precision::Bf16 => "bf16",
        brainssl_backend::Precision::F32 => "f32",
    }
}

/// The PyTorch baseline of one preset, or None (with the reason on stderr).
fn torch_side(cfg: &PretrainConfig, a: &BenchArgs, mode: Mode) -> Option<serde_json::Value> {
    let py = python(&a.python)?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/torch_train_step.py");
    let (e, p) = (&cfg.encoder, &cfg.predictor);
    let dev = if a.device.starts_with("cuda") {
        a.device.as_str()
    } else {
        "cpu"
    };
    let args: Vec<String> = [
        ("--objective", cfg.objective.name().to_string()),
        ("--mode", mode.name().into()),
        ("--batch", cfg.data.batch_size.to_string()),
        ("--depth", cfg.data.prep.depth.to_string()),
        ("--size", cfg.data.prep.size.to_string()),
        ("--patch", e.patch.to_string()),
        ("--dim", e.embed_dim.to_string()),
        ("--enc-depth", e.depth.to_string()),
        ("--heads", e.heads.to_string()),
        ("--pred-dim", p.embed_dim.to_string()),
        ("--pred-depth", p.depth.to_string()),
        ("--pred-heads", p.heads.to_string()),
        ("--steps", a.steps.to_string()),
        ("--warmup", a.warmup.to_string()),
        ("--threads", a.threads.to_string()),
        ("--device", dev.into()),
        ("--precision", precision_name(cfg, &a.device).into()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect();
    match Command::new(&py)
        .arg(&script)
        .args(&args)
        .env("OMP_NUM_THREADS", a.threads.to_string())
        .output()
    {
        Ok(o) => json_of(o, "PyTorch baseline").map_err(|e| eprintln!("{e}")).ok(),
        Err(e) => {
            eprintln!("PyTorch baseline not run ({py}: {e}); pass --python with torch installed");
            None
        }
    }
}

/// Arguments of a `--one` timing process for `preset` with `batch` volumes and `threads` threads.
fn one_args(preset: &str, a: &BenchArgs, mode: Mode, batch: usize, threads: usize) -> Vec<String> {
    let mut v: Vec<String> = [
        "--threads",
        &threads.to_string(),
        "bench",
        mode.name(),
        "--one",
        "--preset",
        preset,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (k, val) in [
        ("--steps", a.steps.to_string()),
        ("--warmup", a.warmup.to_string()),
        ("--device", a.device.clone()),
        ("--batch-size", batch.to_string()),
    ] {
        v.extend([k.to_string(), val]);
    }
    if let Some(c) = &a.config {
        v.extend(["--config".to_string(), c.display().to_string()]);
    }
    v
}

/// Rank 0's timing of `preset` over `n` local ranks, each with its share of the global batch and
/// of the threads.
fn time_ranks(exe: &Path, preset: &str, a: &BenchArgs, cfg: &PretrainConfig, n: usize) -> Result<serde_json::Value> {
    let b = cfg.data.batch_size;
    if !b.is_multiple_of(n) {
        bail!("--nproc-per-node {n} must divide the batch of {b} (--batch-size)");
    }
    let threads = (a.threads / n).max(1);
    let args = one_args(preset, a, Mode::Train, b / n, threads);
    let port = launch::free_port()?;
    let children: Vec<_> = (0..n)
        .map(|r| {
            launch::rank_command(exe, &args, r, n, port)
                .env("RAYON_NUM_THREADS", threads.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
        })
        .collect::<std::io::Result<_>>()?;
    let mut outs = Vec::new();
    for c in children {
        outs.push(c.wait_with_output()?);
    }
    for (r, o) in outs.iter().enumerate().skip(1) {
        if !o.status.success() {
            bail!(
                "rank {r} failed: {}",
                String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
            );
        }
    }
    json_of(outs.swap_remove(0), "brainssl rank 0")
}

fn run(presets: &str, a: &BenchArgs, mode: Mode, nproc: usize) -> Result<()> {
    let exe = std::env::current_exe()?;
    let mut ranks_rows = Vec::new();
    let (unit, part) = match mode {
        Mode::Train => ("ms/step", " (fwd+bwd)"),
        Mode::Embed => ("ms/batch", ""),
    };
    // the denominator of MFU: this device's measured matrix-product rate in the run's precision
    let first = presets
        .split(',')
        .map(str::trim)
        .find(|p| !p.is_empty())
        .unwrap_or("tiny-mae");
    let device = a.device.parse::<DeviceSpec>()?.device()?;
    let precision = config(first, a, mode)?.precision.resolve(device);
    let n = if device == Device::Cpu { 2048 } else { 8192 };
    let peak = matmul_tflops(device, n, precision);
    let memory = if device == Device::Cpu {
        "peak RSS MB"
    } else {
        "peak GPU MB"
    };
    println!(
        "matrix products {n}x{n} ({precision:?}) on {}: {peak:.2} TFLOP/s measured; MFU = model FLOPs / time / that",
        a.device
    );
    println!();
    println!(
        "| preset | batch | tokens (context) | brainssl {unit}{part} | PyTorch {unit} | ratio | brainssl vol/s | PyTorch vol/s | MFU brainssl / PyTorch | brainssl {memory} | PyTorch {memory} |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for preset in presets.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let cfg = config(preset, a, mode)?;
        let mut cmd = Command::new(&exe);
        cmd.args(one_args(preset, a, mode, cfg.data.batch_size, a.threads))
            .env("RAYON_NUM_THREADS", a.threads.to_string());
        let rust = json_of(cmd.output()?, "brainssl")?;
        if nproc > 1 {
            let ranks = time_ranks(&exe, preset, a, &cfg, nproc)?;
            ranks_rows.push((
                preset.to_string(),
                cfg.data.batch_size,
                rust["median_ms"].as_f64(),
                ranks,
            ));
        }
        let torch = torch_side(&cfg, a, mode);
        let num = |j: &serde_json::Value, k: &str| j[k].as_f64().unwrap_or(f64::NAN);
        let rm = num(&rust, "median_ms");
        let mem_key = if device == Device::Cpu {
            "peak_rss_mb"
        } else {
            "peak_gpu_mb"
        };
        let (tm, tp) = torch
            .as_ref()
            .map(|j| (num(j, "median_ms"), num(j, mem_key)))
            .unwrap_or((f64::NAN, f64::NAN));
        let mfu = |ms: f64| num(&rust, "flops") / (ms * 1e-3) / (peak * 1e12);
        let b = cfg.data.batch_size as f64;
        let opt = |v: f64, digits: usize| {
            if v.is_finite() {
                format!("{v:.digits$}")
            } else {
                "-".into()
            }
        };
        let rust_ms = match mode {
            Mode::Train => format!("{rm:.1} ({:.1})", num(&rust, "forward_backward_ms")),
            Mode::Embed => format!("{rm:.1}"),
        };
        println!(
            "| {preset} | {} | {} ({:.0}) | {rust_ms} | {} | {} | {:.2} | {} | {:.1}% / {} | {:.0} | {} |",
            rust["batch"],
            rust["tokens"],
            num(&rust, "context_tokens"),
            opt(tm, 1),
            if tm.is_finite() {
                format!("{:.2}x", rm / tm)
            } else {
                "-".into()
            },
            1e3 * b / rm,
            opt(1e3 * b / tm, 2),
            100.0 * mfu(rm),
            if tm.is_finite() {
                format!("{:.1}%", 100.0 * mfu(tm))
            } else {
                "-".into()
            },
            num(&rust, mem_key),
            opt(tp, 0),
        );
    }
    if !ranks_rows.is_empty() {
        println!();
        println!(
            "| preset | global batch | 1 process ms/step | {nproc} ranks ms/step | of which all-reduce ms | 1 process vol/s | {nproc} ranks vol/s | time, ranks / 1 process |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for (preset, b, one, ranks) in ranks_rows {
            let one = one.unwrap_or(f64::NAN);
            let rm = ranks["median_ms"].as_f64().unwrap_or(f64::NAN);
            let ar = ranks["allreduce_ms"].as_f64().unwrap_or(f64::NAN);
            println!(
                "| {preset} | {b} ({nproc} x {}) | {one:.1} | {rm:.1} | {ar:.2} | {:.2} | {:.2} | {:.2}x |",
                b / nproc,
                1e3 * b as f64 / one,
                1e3 * b as f64 / rm,
                rm / one
            );
        }
    }
    Ok(())
}

pub fn train(a: TrainBenchArgs) -> Result<()> {
    if a.common.one {
        return run_one(&a.preset, &a.common, Mode::Train);
    }
    run(&a.preset, &a.common, Mode::Train, a.nproc_per_node)
}

pub fn embed(a: EmbedBenchArgs) -> Result<()> {
    if a.common.one {
        return run_one(&a.preset, &a.common, Mode::Embed);
    }
    run(&a.preset, &a.common, Mode::Embed, 1)
}

#[derive(Args)]
pub struct ParityArgs {
    /// Comma-separated presets
    #[arg(long, default_value = "tiny-mae,tiny-sl-mae,tiny-jepa,tiny-vcr-jepa")]
    preset: String,
    /// The device compared with the CPU: cuda:N
    #[arg(long, default_value = "cuda:0")]
    device: String,
    /// Largest relative gradient difference that passes (cuDNN convolutions may use TF32)
    #[arg(long, default_value_t = 1e-2)]
    tolerance: f64,
}

/// Prints one row per preset; fails when a preset is outside the tolerance.
pub fn parity(a: ParityArgs) -> Result<()> {
    let device = a.device.parse::<DeviceSpec>()?.device()?;
    println!(
        "| preset | loss cpu | loss {} | max rel. grad diff | grad norms cpu (enc, head) | on {} | verdict |",
        a.device, a.device
    );
    println!("|---|---|---|---|---|---|---|");
    let mut bad = Vec::new();
    for preset in a.preset.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let cfg = crate::pretrain::build_config(preset, None, None)?;
        let p = brainssl_train::bench::parity(&cfg, device);
        let loss_rel = (p.loss_device - p.loss_cpu).abs() / p.loss_cpu.abs().max(1e-12);
        let ok = p.grad_rel_max <= a.tolerance && loss_rel <= a.tolerance;
        if !ok {
            bad.push(preset.to_string());
        }
        println!(
            "| {preset} | {:.6} | {:.6} | {:.2e} | {:.4}, {:.4} | {:.4}, {:.4} | {} |",
            p.loss_cpu,
            p.loss_device,
            p.grad_rel_max,
            p.norms_cpu[0],
            p.norms_cpu[1],
            p.norms_device[0],
            p.norms_device[1],
            if ok { "ok" } else { "DIFFERS" }
        );
    }
    if !bad.is_empty() {
        bail!(
            "{} differ(s) from the CPU beyond {}: {}",
            bad.len(),
            a.tolerance,
            bad.join(", ")
        );
    }
    Ok(())
}
