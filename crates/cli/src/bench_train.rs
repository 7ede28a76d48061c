//! `brainssl bench train`: median ms per training step and peak memory for each preset, beside the
//! PyTorch baseline (`bench/torch_train_step.py`) with the same shapes and thread count, same run.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use brainssl_backend::DeviceSpec;
use brainssl_train::bench::time_steps;
use clap::Args;

#[derive(Args)]
pub struct TrainBenchArgs {
    /// Comma-separated presets
    #[arg(long, default_value = "tiny-mae,tiny-sl-mae,tiny-jepa,tiny-vcr-jepa")]
    preset: String,
    /// TOML overrides applied to every preset (e.g. a smaller batch for reference sizes)
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, default_value_t = 20)]
    steps: usize,
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Threads on both sides (CPU)
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// cpu, cuda:N or vulkan:N (PyTorch gets cpu or cuda:N)
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Python with PyTorch for the baseline; "none" skips it
    #[arg(long, default_value = "python3")]
    python: String,
    /// Internal: time one preset in this process and print JSON
    #[arg(long, hide = true)]
    one: bool,
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

fn run_one(a: &TrainBenchArgs) -> Result<()> {
    let cfg = crate::pretrain::build_config(&a.preset, a.config.as_deref(), None)?;
    let device = a.device.parse::<DeviceSpec>()?.device()?;
    let t = time_steps(&cfg, a.warmup, a.steps, &device);
    let out = serde_json::json!({
        "median_ms": t.median(),
        "forward_backward_ms": brainssl_train::bench::median(&t.forward_backward_ms),
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

pub fn run(a: TrainBenchArgs) -> Result<()> {
    if a.one {
        return run_one(&a);
    }
    let exe = std::env::current_exe()?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/torch_train_step.py");
    println!(
        "| preset | batch | tokens (context) | brainssl ms/step (fwd+bwd) | PyTorch ms/step | ratio | brainssl peak MB | PyTorch peak MB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for preset in a.preset.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let cfg = crate::pretrain::build_config(preset, a.config.as_deref(), None)?;
        let mut cmd = Command::new(&exe);
        cmd.args([
            "--threads",
            &a.threads.to_string(),
            "bench",
            "train",
            "--one",
            "--preset",
            preset,
        ])
        .args([
            "--steps",
            &a.steps.to_string(),
            "--warmup",
            &a.warmup.to_string(),
            "--device",
            &a.device,
        ])
        .env("RAYON_NUM_THREADS", a.threads.to_string());
        if let Some(c) = &a.config {
            cmd.arg("--config").arg(c);
        }
        let rust = json_of(cmd.output()?, "brainssl")?;
        let torch = if a.python == "none" {
            None
        } else {
            let e = &cfg.encoder;
            let p = &cfg.predictor;
            let dev = if a.device.starts_with("cuda") {
                a.device.clone()
            } else {
                "cpu".into()
            };
            let args: Vec<String> = vec![
                script.display().to_string(),
                "--objective".into(),
                cfg.objective.name().into(),
                "--batch".into(),
                cfg.data.batch_size.to_string(),
                "--depth".into(),
                cfg.data.prep.depth.to_string(),
                "--size".into(),
                cfg.data.prep.size.to_string(),
                "--patch".into(),
                e.patch.to_string(),
                "--dim".into(),
                e.embed_dim.to_string(),
                "--enc-depth".into(),
                e.depth.to_string(),
                "--heads".into(),
                e.heads.to_string(),
                "--pred-dim".into(),
                p.embed_dim.to_string(),
                "--pred-depth".into(),
                p.depth.to_string(),
                "--pred-heads".into(),
                p.heads.to_string(),
                "--steps".into(),
                a.steps.to_string(),
                "--warmup".into(),
                a.warmup.to_string(),
                "--threads".into(),
                a.threads.to_string(),
                "--device".into(),
                dev,
            ];
            match Command::new(&a.python)
                .args(&args)
                .env("OMP_NUM_THREADS", a.threads.to_string())
                .output()
            {
                Ok(o) => match json_of(o, "PyTorch baseline") {
                    Ok(j) => Some(j),
                    Err(e) => {
                        eprintln!("{e}");
                        None
                    }
                },
                Err(e) => {
                    eprintln!(
                        "PyTorch baseline not run ({}: {e}); pass --python with torch installed",
                        a.python
                    );
                    None
                }
            }
        };
        let rm = rust["median_ms"].as_f64().unwrap_or(f64::NAN);
        let (tm, tp) = torch
            .as_ref()
            .map(|j| {
                (
                    j["median_ms"].as_f64().unwrap_or(f64::NAN),
                    j["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
                )
            })
            .unwrap_or((f64::NAN, f64::NAN));
        let ratio = if tm.is_finite() {
            format!("{:.2}x", rm / tm)
        } else {
            "-".into()
        };
        println!(
            "| {preset} | {} | {} ({:.0}) | {rm:.1} ({:.1}) | {} | {ratio} | {:.0} | {} |",
            rust["batch"],
            rust["tokens"],
            rust["context_tokens"].as_f64().unwrap_or(0.0),
            rust["forward_backward_ms"].as_f64().unwrap_or(f64::NAN),
            if tm.is_finite() { format!("{tm:.1}") } else { "-".into() },
            rust["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
            if tp.is_finite() { format!("{tp:.0}") } else { "-".into() },
        );
    }
    Ok(())
}
