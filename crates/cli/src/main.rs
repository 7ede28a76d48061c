//! `brainssl`: one binary, one subcommand per step of the path from scans to results.

mod analysis;
mod bench;
mod bench_train;
mod benchmark;
mod checkpoints;
mod choices;
mod commands;
mod demo;
mod downstream;
mod figures;
mod metrics;
mod output;
mod pretrain;
mod report;
mod study;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

// Preprocessing allocates and frees tens of MB per volume; mimalloc reuses that memory instead of
// returning it to the OS, which removes most page-fault time (measured: about 2x on decode/resize).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "brainssl",
    version,
    about = "Self-supervised foundation models for 3D brain MRI"
)]
struct Cli {
    /// Threads for data work and for libtorch's CPU kernels (default: all cores)
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Header and intensity summary of a scan (NIfTI file, DICOM file or DICOM series folder)
    Info {
        /// A NIfTI file, a DICOM file, or a folder holding one DICOM series
        path: PathBuf,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        /// Frame of a 4-D file
        #[arg(long)]
        frame: Option<usize>,
    },
    /// Evaluation-mode preprocessing (crop, resize, z-score) to a (T, S, S) float32 .npy, or .nii/.nii.gz for viewing
    Preprocess(commands::PreprocessArgs),
    /// Walk a folder of scans and write a manifest with foreground boxes
    Index(commands::IndexArgs),
    /// Subject-level splits: k-fold, train/val/test, few-shot, or import of released split files
    Split(commands::SplitArgs),
    /// Generate synthetic brains with known labels, plus a manifest
    Synth(commands::SynthArgs),
    /// Checkpoints of the reference implementation in and out
    Checkpoint {
        #[command(subcommand)]
        what: checkpoints::CheckpointCmd,
    },
    /// Benchmarks
    Bench {
        #[command(subcommand)]
        what: bench::BenchCmd,
    },
    /// Print a configuration as TOML: a pretraining preset's, a downstream recipe's, or the data
    /// pipeline's with neither
    PrintConfig {
        /// A pretraining preset
        #[arg(long, value_parser = choices::preset(), conflicts_with = "recipe")]
        preset: Option<String>,
        /// A downstream recipe (the keys `probe --config` / `finetune --config` override)
        #[arg(long, value_enum)]
        recipe: Option<choices::Recipe>,
        /// With --recipe: frozen probe or fine-tuning
        #[arg(long, value_enum, default_value = "frozen", requires = "recipe")]
        mode: choices::ModeChoice,
    },
    /// Self-supervised pretraining (MAE, SL-MAE, JEPA, VCR-JEPA) with checkpoints and resume
    Pretrain(pretrain::PretrainArgs),
    /// Frozen-encoder attentive probe: train the classifier, select by validation AUROC, test
    Probe(downstream::ProbeArgs),
    /// Fine-tune encoder and classifier, select by validation AUROC, test
    Finetune(downstream::ClassifyArgs),
    /// Supervised 3-D ResNet-50 baseline trained from scratch, selected by validation AUROC
    Baseline(downstream::BaselineArgs),
    /// Subject-level k-fold cross-validation of probe or fine-tuning, per-fold rows and mean ± std
    Cv(downstream::CvArgs),
    /// Few-shot study: fine-tune encoders on k subjects per class, test AUROC per k (Figure 5)
    Fewshot(downstream::FewShotArgs),
    /// Pretrain every objective from several seeds and probe each encoder against its controls
    /// (step-0 students, random encoders): mean ± sd over seeds and paired bootstrap intervals
    Study(study::StudyArgs),
    /// In-silico test of the paper's four claims: synthetic tasks with known ground truth, the
    /// multi-seed study on each, few-shot against a ResNet-50, one verdict per claim
    Benchmark(benchmark::BenchmarkArgs),
    /// Mean-pooled token embeddings of scans from a pretrained encoder
    Embed(downstream::EmbedArgs),
    /// Class probabilities of new scans from a trained classifier (probe, finetune or baseline)
    Predict(downstream::PredictArgs),
    /// t-SNE map of embeddings with silhouette and NMI in raw and 2-D space (Table 7)
    Tsne(analysis::TsneArgs),
    /// Mean high-frequency power spectral density per dataset, ratios and radial profiles (Figure 3)
    Psd(analysis::PsdArgs),
    /// One self-contained HTML report (and Markdown) from run folders
    Report(report::ReportArgs),
    /// Accuracy, macro F1, positive-class F1 and AUROC of a prediction CSV (label,p0,p1,...)
    Metrics(metrics::MetricsArgs),
    /// Trainable parameters of each module of a preset
    ModelInfo(pretrain::ModelInfoArgs),
    /// libtorch's version, CUDA availability and device names; checks a device with a matmul
    Devices {
        /// Device to check: cpu or cuda:N
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Run the demo on built-in synthetic data
    Demo(demo::DemoArgs),
}

/// mimalloc's `mi_option_purge_delay` (index 15 in the v2 and v3 headers the crate bundles).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // The loader frees and reallocates the same batch buffers every step; mimalloc's default returns
    // freed pages to the OS after 10 ms, and faulting them back in cost time (measured with perf on
    // the Burn version, whose activations were Rust allocations too). Keep them. libtorch's tensors
    // use its own allocator and are not affected.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    // `brainssl info X | head`: a closed pipe ends the process quietly, as it does any Unix tool
    // (Rust ignores SIGPIPE, and printing to a closed stdout would then panic)
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    if let Some(t) = cli.threads.or_else(share_of_cores) {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t.max(1))
            .build_global()
            .ok();
        brainssl_backend::set_threads(t.max(1));
    }
    if let Err(e) = run(cli.cmd) {
        // in a multi-rank job every rank reports: say whose error it is
        let whose = match (std::env::var("RANK"), std::env::var("WORLD_SIZE")) {
            (Ok(r), Ok(w)) if w != "1" => format!(" (rank {r}/{w})"),
            _ => String::new(),
        };
        eprintln!("error{whose}: {e:#}");
        std::process::exit(1);
    }
}

/// The ranks of one node share its cores (as torchrun's workers do): each takes cores / ranks
/// threads unless --threads says otherwise.
fn share_of_cores() -> Option<usize> {
    let local: usize = std::env::var("LOCAL_WORLD_SIZE").ok()?.parse().ok()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (local > 1).then(|| (cores / local).max(1))
}

fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Info { path, json, frame } => commands::info(&path, json, frame),
        Cmd::Preprocess(a) => commands::preprocess(a),
        Cmd::Index(a) => commands::index(a),
        Cmd::Split(a) => commands::split(a),
        Cmd::Synth(a) => commands::synth(a),
        Cmd::Bench { what } => bench::run(what),
        Cmd::Checkpoint { what } => checkpoints::run(what),
        Cmd::PrintConfig { preset: Some(p), .. } => pretrain::print_preset(&p),
        Cmd::PrintConfig {
            recipe: Some(r), mode, ..
        } => downstream::print_recipe(r, mode),
        Cmd::PrintConfig { .. } => commands::print_config(),
        Cmd::Pretrain(a) => pretrain::run(a),
        Cmd::ModelInfo(a) => pretrain::model_info(a),
        Cmd::Metrics(a) => metrics::run(a),
        Cmd::Tsne(a) => analysis::run(a),
        Cmd::Report(a) => report::run(a),
        Cmd::Psd(a) => analysis::psd(a),
        Cmd::Probe(a) => downstream::probe(a),
        Cmd::Finetune(a) => downstream::finetune(a),
        Cmd::Cv(a) => downstream::cv(a),
        Cmd::Baseline(a) => downstream::baseline(a),
        Cmd::Embed(a) => downstream::embed(a),
        Cmd::Predict(a) => downstream::predict(a),
        Cmd::Fewshot(a) => downstream::fewshot(a),
        Cmd::Study(a) => study::study(a),
        Cmd::Benchmark(a) => benchmark::benchmark(a),
        Cmd::Devices { device } => commands::devices(&device),
        Cmd::Demo(a) => demo::demo(a),
    }
}
