//! The data subcommands: info, preprocess, index, split, synth, print-config, demo.

use anyhow::{bail, Context, Result};
use brainssl_data::index::{index_dir, IndexOptions};
use brainssl_data::loader::LoaderConfig;
use brainssl_data::splits::{self, DEFAULT_UID_RULES};
use brainssl_data::synth::anatomy::Contrast;
use brainssl_data::synth::{generate, SynthConfig, SynthTask, TASK_NAMES};
use brainssl_data::Manifest;
use brainssl_prep::foreground::ras_foreground;
use brainssl_prep::{preprocess_eval, AugmentConfig, PrepConfig, Prepared};
use brainssl_scan::info::ScanInfo;
use brainssl_scan::{load_scan, LoadOptions};
use clap::Args;
use regex::Regex;
use serde::Serialize;
use std::path::{Path, PathBuf};

pub fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap()
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// `--names` for `items` (manifests, checkpoints): the names given, one per item, or `default` of
/// each item when none are given.
pub fn names_or<T>(given: &[String], items: &[T], what: &str, default: impl Fn(&T) -> String) -> Result<Vec<String>> {
    if given.is_empty() {
        Ok(items.iter().map(default).collect())
    } else if given.len() == items.len() {
        Ok(given.to_vec())
    } else {
        bail!("--names has {} entries for {} {what}", given.len(), items.len())
    }
}

/// Any scan's header and intensities; a 4-D file shows frame 0 unless `frame` picks another.
pub fn info(path: &Path, json: bool, frame: Option<usize>) -> Result<()> {
    let frames = brainssl_scan::frame_count(path)?;
    let frame = frame.or((frames > 1).then_some(0));
    let v = load_scan(path, LoadOptions { frame })?;
    let i = ScanInfo::of(&path.display().to_string(), &v, frames, frame);
    if json {
        println!("{}", serde_json::to_string_pretty(&i)?);
    } else {
        println!("{i}");
    }
    Ok(())
}

#[derive(Args)]
pub struct PreprocessArgs {
    /// NIfTI file, DICOM file or DICOM series folder
    pub input: PathBuf,
    /// Output: .npy (float32, C order, shape (T, S, S)) or .nii / .nii.gz
    #[arg(long)]
    pub out: PathBuf,
    /// T: output depth
    #[arg(long, default_value_t = 144)]
    pub depth: usize,
    /// S: output in-plane size
    #[arg(long, default_value_t = 160)]
    pub size: usize,
    /// Voxels kept around the brain's bounding box before the square crop
    #[arg(long, default_value_t = 6)]
    pub margin: usize,
    /// Brain mask (> 0 is foreground); default: voxels != 0
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Frame of a 4-D input
    #[arg(long)]
    pub frame: Option<usize>,
}

/// Evaluation-mode preprocessing of one scan, as `brainssl preprocess` and its benchmark run it:
/// foreground from `mask` (> 0) when given, else voxels != 0.
pub fn prepare_scan(input: &Path, mask: Option<&Path>, frame: Option<usize>, cfg: &PrepConfig) -> Result<Prepared> {
    cfg.validate().map_err(anyhow::Error::msg)?;
    let v = load_scan(input, LoadOptions { frame })?;
    if v.meta.non_finite > 0 {
        eprintln!(
            "warning: {}: {} non-finite voxels set to 0",
            input.display(),
            v.meta.non_finite
        );
    }
    let mask = mask.map(|m| load_scan(m, LoadOptions::default())).transpose()?;
    let fg = ras_foreground(&v, mask.as_ref()).map_err(|e| anyhow::anyhow!("{}: {e}", input.display()))?;
    preprocess_eval(&v, fg, cfg).map_err(|e| anyhow::anyhow!("{}: {e}", input.display()))
}

pub fn preprocess(a: PreprocessArgs) -> Result<()> {
    let cfg = PrepConfig {
        depth: a.depth,
        size: a.size,
        margin: a.margin,
        ..Default::default()
    };
    let p = prepare_scan(&a.input, a.mask.as_deref(), a.frame, &cfg)?;
    write_prepared(&a.out, &p)?;
    eprintln!(
        "{} → {} ({:?}, depth axis {:?}, clip [{:.4}, {:.4}])",
        a.input.display(),
        a.out.display(),
        p.shape,
        p.layout,
        p.clip.0,
        p.clip.1
    );
    Ok(())
}

fn write_prepared(out: &Path, p: &brainssl_prep::Prepared) -> Result<()> {
    let name = out.to_string_lossy();
    if name.ends_with(".nii") || name.ends_with(".nii.gz") {
        // memory order (t, h, w) C-order = NIfTI (w, h, t)
        brainssl_scan::nifti_io::write_nifti(out, &p.data, [p.shape[2], p.shape[1], p.shape[0]], &p.affine)?;
    } else if name.ends_with(".npy") {
        brainssl_scan::npy::write_f32(out, &p.data, &p.shape)?;
    } else {
        bail!("{}: output must end in .npy, .nii or .nii.gz", out.display());
    }
    Ok(())
}

#[derive(Args)]
pub struct IndexArgs {
    /// Folder of scans (NIfTI files and DICOM series folders, at any depth)
    pub dir: PathBuf,
    /// The manifest to write (paths in it are relative to its folder)
    #[arg(long)]
    pub out: PathBuf,
    /// Regex whose first group (or whole match) in the file name is the subject id
    #[arg(long)]
    pub subject_regex: Option<String>,
    /// Mask naming rule: `<stem><suffix>.nii[.gz]` is the mask of `<stem>.nii[.gz]` (repeatable)
    #[arg(long)]
    pub mask_suffix: Vec<String>,
    /// Label written on every row
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub label: i64,
    /// Fail if any scan cannot be read (default: list and skip it)
    #[arg(long)]
    pub strict: bool,
    /// Follow symbolic links, also out of DIR (each folder and file is still indexed once)
    #[arg(long)]
    pub follow_links: bool,
}

pub fn index(a: IndexArgs) -> Result<()> {
    let mut o = IndexOptions {
        label: a.label,
        follow_links: a.follow_links,
        ..Default::default()
    };
    if let Some(r) = a.subject_regex {
        o.subject_regex = Regex::new(&r).with_context(|| format!("--subject-regex '{r}'"))?;
    }
    if !a.mask_suffix.is_empty() {
        o.mask_suffixes = a.mask_suffix;
    }
    let pb = progress(0, "indexing");
    let (m, errors, warnings) = index_dir(&a.dir, &o, &pb)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    pb.finish_and_clear();
    for e in &errors {
        eprintln!("skipped: {e}");
    }
    if a.strict && !errors.is_empty() {
        bail!("{} scan(s) could not be indexed", errors.len());
    }
    m.write(&a.out)?;
    let masks = m
        .rows
        .iter()
        .filter(|r| r.extra.get("mask_path").is_some_and(|p| !p.is_empty()))
        .count();
    eprintln!(
        "{} scans of {} subjects ({masks} with a mask), {} skipped → {}",
        m.rows.len(),
        m.subjects().len(),
        errors.len(),
        a.out.display()
    );
    Ok(())
}

#[derive(Args)]
pub struct SplitArgs {
    /// The manifest to split (by subject, stratified by label)
    #[arg(long)]
    pub manifest: PathBuf,
    /// Output folder for the split manifests
    #[arg(long)]
    pub out: PathBuf,
    /// Stratified k-fold: fold{i}_{train,val,test}.csv, test = fold i
    #[arg(long)]
    pub kfold: Option<usize>,
    /// Fraction of each k-fold training part kept for validation
    #[arg(long, default_value_t = crate::choices::VAL_FRACTION)]
    pub val_fraction: f64,
    /// train,val,test fractions → train.csv, val.csv, test.csv
    #[arg(long, value_delimiter = ',')]
    pub fractions: Option<Vec<f64>>,
    /// k subjects per class → fewshot_k{K}_seed{S}.csv
    #[arg(long)]
    pub few_shot: Option<usize>,
    /// Released split files (subject_id,scan_uid) to join with the manifest on scan_uid
    #[arg(long = "import", num_args = 1..)]
    pub import: Vec<PathBuf>,
    /// Extra scan_uid regex tried before the defaults (repeatable)
    #[arg(long)]
    pub uid_regex: Vec<String>,
    /// Seed of the subject shuffle behind every split
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

fn write_rows(m: &Manifest, rows: Vec<brainssl_data::ManifestRow>, path: &Path) -> Result<()> {
    let n = rows.len();
    Manifest {
        rows,
        extra_columns: m.extra_columns.clone(),
    }
    .write(path)?;
    eprintln!("{n:>6} rows → {}", path.display());
    Ok(())
}

pub fn split(a: SplitArgs) -> Result<()> {
    let mut m = Manifest::read(&a.manifest)?;
    // stratification needs classes; the files keep the text labels as written
    if let Some(map) = brainssl_data::LabelMap::apply(&mut [&mut m.rows], &[])? {
        eprintln!("labels: {} (text labels, for stratification)", map.describe());
    }
    std::fs::create_dir_all(&a.out)?;
    let modes = [
        a.kfold.is_some(),
        a.fractions.is_some(),
        a.few_shot.is_some(),
        !a.import.is_empty(),
    ];
    if modes.iter().filter(|x| **x).count() != 1 {
        bail!("choose exactly one of --kfold, --fractions, --few-shot, --import");
    }
    if let Some(k) = a.kfold {
        let named = || a.manifest.display().to_string();
        let splits = splits::cv_splits(&m.rows, k, a.val_fraction, a.seed).with_context(named)?;
        for (i, [train, val, test]) in splits.into_iter().enumerate() {
            write_rows(&m, train, &a.out.join(format!("fold{i}_train.csv")))?;
            write_rows(&m, val, &a.out.join(format!("fold{i}_val.csv")))?;
            write_rows(&m, test, &a.out.join(format!("fold{i}_test.csv")))?;
        }
    } else if let Some(f) = a.fractions {
        if f.len() != 3 {
            bail!("--fractions takes three numbers: train,val,test");
        }
        let [train, val, test] = splits::train_val_test(&m.rows, [f[0], f[1], f[2]], a.seed)
            .with_context(|| a.manifest.display().to_string())?;
        write_rows(&m, train, &a.out.join("train.csv"))?;
        write_rows(&m, val, &a.out.join("val.csv"))?;
        write_rows(&m, test, &a.out.join("test.csv"))?;
    } else if let Some(k) = a.few_shot {
        let rows = splits::few_shot(&m.rows, k, a.seed).with_context(|| a.manifest.display().to_string())?;
        write_rows(&m, rows, &a.out.join(format!("fewshot_k{k}_seed{}.csv", a.seed)))?;
    } else {
        let mut rules = Vec::new();
        for r in a
            .uid_regex
            .iter()
            .map(String::as_str)
            .chain(DEFAULT_UID_RULES.iter().copied())
        {
            rules.push(Regex::new(r).with_context(|| format!("uid regex '{r}'"))?);
        }
        let mut parts = Vec::new();
        for f in &a.import {
            let (rows, cov) = splits::import_split(f, &m, &rules)?;
            eprintln!("{}: {cov}", f.display());
            let stem = f.file_stem().unwrap_or_default().to_string_lossy().to_string();
            parts.push((stem, rows));
        }
        let named: Vec<(&str, &[brainssl_data::ManifestRow])> =
            parts.iter().map(|(n, r)| (n.as_str(), r.as_slice())).collect();
        splits::check_disjoint(&named)?;
        for (stem, rows) in parts {
            write_rows(&m, rows, &a.out.join(format!("{stem}.csv")))?;
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct SynthArgs {
    /// Output folder: one folder per subject and manifest.csv
    #[arg(long)]
    pub out: PathBuf,
    /// The label the brains carry: atrophy (ad), subtle atrophy (mci), tumour grade (2 or 3
    /// classes), a smooth or finely textured region (texture), a majority of three
    /// independent findings (multi-factor), or none; docs/preprocessing.md#synthetic-brains
    #[arg(long, default_value = "ad", value_parser = clap::builder::PossibleValuesParser::new(TASK_NAMES))]
    pub task: String,
    /// Number of synthetic subjects (classes alternate)
    #[arg(long, default_value_t = 20)]
    pub subjects: usize,
    /// Scans per subject (sessions of one anatomy, each with its own noise and bias field)
    #[arg(long, default_value_t = 1)]
    pub sessions: usize,
    /// In-plane matrix size
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Seed of every random draw of the generator
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write whole heads instead of skull-stripped brains
    #[arg(long)]
    pub keep_skull: bool,
    /// Contrast of each session in turn, e.g. T1,T2,FLAIR [default: T1 first, then random]
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(["T1", "T2", "FLAIR"]))]
    pub contrasts: Vec<String>,
}

pub fn synth(a: SynthArgs) -> Result<()> {
    let cfg = SynthConfig {
        task: SynthTask::parse(&a.task)?,
        subjects: a.subjects,
        sessions: a.sessions,
        size: a.size,
        seed: a.seed,
        keep_skull: a.keep_skull,
        contrasts: a.contrasts.iter().map(|c| Contrast::parse(c)).collect::<Result<_>>()?,
    };
    let pb = progress(0, "synth");
    let t = std::time::Instant::now();
    let m = generate(&cfg, &a.out, &pb)?;
    pb.finish_and_clear();
    eprintln!(
        "{} scans of {} subjects in {:.2} s → {}",
        m.rows.len(),
        a.subjects,
        t.elapsed().as_secs_f64(),
        a.out.join("manifest.csv").display()
    );
    Ok(())
}

#[derive(Serialize)]
struct DataConfig {
    preprocessing: PrepConfig,
    augmentation: AugmentConfig,
    loader: LoaderConfig,
}

pub fn print_config() -> Result<()> {
    let c = DataConfig {
        preprocessing: PrepConfig::default(),
        augmentation: AugmentConfig::default(),
        loader: LoaderConfig::default(),
    };
    print!("{}", toml::to_string_pretty(&c)?);
    Ok(())
}

/// libtorch's build, CUDA availability and device names, and a 256x256 matmul on the chosen device
/// checked against the host.
pub fn devices(spec: &str) -> Result<()> {
    use brainssl_backend::{tch, tensor, to_vec, DeviceSpec};
    let (version, lib) = brainssl_backend::libtorch_build();
    println!("libtorch {version} ({lib})");
    let cuda = if brainssl_backend::built_with_cuda() {
        "linked"
    } else {
        "not linked (CPU build; `--features cuda` links it)"
    };
    println!("libtorch_cuda: {cuda}");
    let n_cuda = tch::Cuda::device_count().max(0) as usize;
    println!(
        "CUDA available: {}; {n_cuda} device(s); cuDNN {}",
        tch::Cuda::is_available(),
        if tch::Cuda::cudnn_is_available() {
            "available"
        } else {
            "not available"
        }
    );
    for i in 0..n_cuda {
        let name = brainssl_backend::cuda_device_name(i).unwrap_or_else(|| "(name unknown)".into());
        println!("  cuda:{i}: {name}");
    }
    println!("CPU threads (intra-op): {}", tch::get_num_threads());
    let spec: DeviceSpec = spec.parse()?;
    let device = spec.device()?;
    let n = 256;
    let a: Vec<f32> = (0..n * n).map(|i| ((i * 7919) % 101) as f32 / 101.0 - 0.5).collect();
    let t = std::time::Instant::now();
    let x = tensor(&a, &[n, n], device);
    let y = to_vec(&x.matmul(&x.transpose(0, 1)));
    let dt = t.elapsed();
    // reference on the host, in f64
    let mut max_err = 0f64;
    for i in (0..n).step_by(17) {
        for j in (0..n).step_by(13) {
            let want: f64 = (0..n).map(|k| a[i * n + k] as f64 * a[j * n + k] as f64).sum();
            max_err = max_err.max((y[i * n + j] as f64 - want).abs());
        }
    }
    println!(
        "{spec}: {n}x{n} matmul in {:.1} ms, max abs error {max_err:.2e} against f64 on the host",
        dt.as_secs_f64() * 1e3
    );
    if max_err > 1e-2 {
        bail!("{spec}: results disagree with the host ({max_err:.2e})");
    }
    Ok(())
}
