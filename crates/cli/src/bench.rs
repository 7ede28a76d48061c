//! `brainssl bench preprocess`: evaluation-mode preprocessing throughput against the Python baseline
//! (`python/preprocessing_reference.py`: nibabel + numpy + scipy), same files, sizes and thread count, one run.

use anyhow::{bail, Context, Result};
use brainssl_prep::PrepConfig;
use clap::Subcommand;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Median ms per pretraining step and peak memory per preset, brainssl vs PyTorch
    Train(crate::bench_train::TrainBenchArgs),
    /// Encoder forward passes (no gradients) on whole volumes, brainssl vs PyTorch: volumes/s
    Embed(crate::bench_train::EmbedBenchArgs),
    /// One float32 training step (forward and backward) on a device against the same step on the CPU
    Parity(crate::bench_train::ParityArgs),
    /// Volumes/s of evaluation-mode preprocessing, brainssl vs the Python baseline
    Preprocess {
        /// Folder of NIfTI scans to time (its label, mask and 4-D files are left out)
        #[arg(long)]
        data: PathBuf,
        /// Slices of the output volume
        #[arg(long, default_value_t = 144)]
        depth: usize,
        /// Height and width of the output volume
        #[arg(long, default_value_t = 160)]
        size: usize,
        /// Threads on both sides (brainssl: rayon pool; Python: worker processes)
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Passes over the files
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Python interpreter with nibabel, numpy and scipy; "none" skips the baseline
        #[arg(long, default_value = "python3")]
        python: String,
    },
}

/// Scans to benchmark: the anatomical volumes of the folder (labels, masks and multi-frame files excluded).
fn bench_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let skip = ["label", "seg", "mask", "lesion", "gap_offset", "4d", "nifti2"];
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read benchmark folder", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy().to_string();
            (n.ends_with(".nii") || n.ends_with(".nii.gz")) && !skip.iter().any(|s| n.contains(s))
        })
        .collect();
    v.sort();
    if v.is_empty() {
        bail!("{}: no NIfTI scans to benchmark", dir.display());
    }
    Ok(v)
}

/// Exactly what `brainssl preprocess` runs, minus writing the output.
fn one(path: &Path, cfg: &PrepConfig) -> Result<()> {
    std::hint::black_box(crate::commands::prepare_scan(path, None, None, cfg)?.data);
    Ok(())
}

pub fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Train(a) => crate::bench_train::train(a),
        BenchCmd::Embed(a) => crate::bench_train::embed(a),
        BenchCmd::Parity(a) => crate::bench_train::parity(a),
        BenchCmd::Preprocess {
            data,
            depth,
            size,
            threads,
            repeat,
            python,
        } => preprocess(&data, depth, size, threads, repeat, &python),
    }
}

fn preprocess(data: &Path, depth: usize, size: usize, threads: usize, repeat: usize, python: &str) -> Result<()> {
    let files = bench_files(data)?;
    let cfg = PrepConfig {
        depth,
        size,
        ..Default::default()
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build()?;
    let jobs: Vec<&PathBuf> = (0..repeat.max(1)).flat_map(|_| files.iter()).collect();
    eprintln!(
        "{} scans x {} passes, output {depth}x{size}x{size}, {threads} thread(s)",
        files.len(),
        repeat.max(1)
    );
    pool.install(|| one(&files[0], &cfg))?; // warm-up
    let t = Instant::now();
    pool.install(|| jobs.par_iter().try_for_each(|f| one(f, &cfg)))?;
    let rust_s = t.elapsed().as_secs_f64();
    let rust_rate = jobs.len() as f64 / rust_s;

    let mut py_rate = None;
    if python != "none" {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../python/preprocessing_reference.py");
        let out = std::process::Command::new(python)
            .arg(&script)
            .args([
                "bench",
                "--depth",
                &depth.to_string(),
                "--size",
                &size.to_string(),
                "--threads",
                &threads.to_string(),
                "--repeat",
                &repeat.max(1).to_string(),
            ])
            .args(&files)
            .env("OMP_NUM_THREADS", "1")
            .env("OPENBLAS_NUM_THREADS", "1")
            .env("MKL_NUM_THREADS", "1")
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let j: serde_json::Value = serde_json::from_slice(&o.stdout).context("baseline output")?;
                let n = j["volumes"].as_f64().unwrap_or(0.0);
                py_rate = Some(n / j["seconds"].as_f64().unwrap_or(f64::NAN));
            }
            Ok(o) => eprintln!(
                "baseline failed ({}): {}",
                python,
                String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
            ),
            Err(e) => eprintln!("baseline not run ({python}: {e}); install numpy, scipy and nibabel or pass --python"),
        }
    }
    println!("| implementation | threads | volumes | volumes/s | ratio |");
    println!("|---|---|---|---|---|");
    println!(
        "| brainssl (Rust) | {threads} | {} | {rust_rate:.2} | {} |",
        jobs.len(),
        py_rate.map(|p| format!("{:.1}x", rust_rate / p)).unwrap_or("-".into())
    );
    if let Some(p) = py_rate {
        println!(
            "| nibabel + numpy + scipy | {threads} | {} | {p:.2} | 1.0x |",
            jobs.len()
        );
    }
    Ok(())
}
