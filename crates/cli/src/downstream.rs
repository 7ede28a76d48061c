//! `brainssl probe`, `finetune`, `cv`, `fewshot`, `embed`, `predict` and `baseline`: the arguments
//! of downstream classification, parsed into the library's configs and studies, and their outputs.

use crate::choices::{self, Key, ModeChoice, Recipe, VAL_FRACTION};
use crate::output::{claim_file, claim_folder};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use brainssl_backend::{Device, DeviceSpec, PrecisionChoice};
use brainssl_data::{splits, LabelMap, Manifest, ManifestRow};
use brainssl_downstream::baseline::ResNetClassifier;
use brainssl_downstream::encoder::{CheckpointKey, Encoder};
use brainssl_downstream::fit::{Outcome, Splits};
use brainssl_downstream::probe::{run, train, Downstream};
use brainssl_downstream::study::{CrossValidation, FewShot};
use brainssl_downstream::{DownstreamConfig, Mode};
use brainssl_train::PretrainConfig;
use clap::Args;

#[derive(Args, Clone)]
pub struct EncoderArgs {
    /// Pretraining checkpoint (RUN/checkpoints/final.safetensors); omit with --from-scratch
    #[arg(long, required_unless_present = "from_scratch")]
    checkpoint: Option<PathBuf>,
    /// Train from a randomly initialised encoder of this pretraining preset's size
    #[arg(long, conflicts_with = "checkpoint", value_parser = choices::preset())]
    from_scratch: Option<String>,
    /// Which encoder of the checkpoint
    #[arg(long, value_enum, default_value = "student")]
    checkpoint_key: Key,
}

#[derive(Args, Clone)]
pub struct RecipeArgs {
    /// The training recipe
    #[arg(long, value_enum, default_value = "paper")]
    recipe: Recipe,
    /// Training epochs [default: the recipe's: 12 for encoders of the tiny presets' input, 400 otherwise]
    #[arg(long)]
    epochs: Option<usize>,
    /// TOML overrides of the downstream config (see the run folder's config.toml)
    #[arg(long)]
    config: Option<PathBuf>,
    /// cpu or cuda:N
    #[arg(long, default_value = "cpu")]
    pub(crate) device: DeviceSpec,
    /// Matrix-product precision: auto (bf16 on CUDA, f32 on the CPU), f32 or bf16 [default: the recipe's, auto]
    #[arg(long)]
    precision: Option<PrecisionChoice>,
    /// No progress bar
    #[arg(long)]
    pub(crate) quiet: bool,
}

/// Options of frozen probes only (`finetune` does not offer them).
#[derive(Args, Clone, Default)]
pub struct FrozenArgs {
    /// Run the encoder once per scan (evaluation-mode input, no augmentation) and train the
    /// classifier on the cached tokens; epochs then cost the classifier alone
    #[arg(long)]
    pub(crate) feature_cache: bool,
    /// Standardise each token channel with the frozen encoder's training-set mean and std (fixed,
    /// saved with the probe) before the classifier
    #[arg(long)]
    pub(crate) standardise_tokens: bool,
}

#[derive(Args, Clone)]
pub struct LabelArgs {
    /// Class names of text labels in class order, comma-separated, class 0 first (e.g. CN,AD makes
    /// AD the positive class 1); default: the names sorted
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
}

impl LabelArgs {
    /// Maps text labels over all `parts` at once, so every split numbers the classes alike, and
    /// says how.
    fn apply(&self, parts: &mut [&mut [ManifestRow]]) -> Result<Option<LabelMap>> {
        let names: Vec<String> = self.labels.iter().map(|n| n.trim().to_string()).collect();
        if names.iter().any(|n| n.is_empty()) {
            bail!("--labels {}: an empty class name", self.labels.join(","));
        }
        let map = LabelMap::apply(parts, &names)?;
        if let Some(m) = &map {
            let how = if self.labels.is_empty() {
                "names sorted; --labels sets the order"
            } else {
                "from --labels"
            };
            println!("labels: {} ({how})", m.describe());
        }
        Ok(map)
    }
}

#[derive(Args)]
pub struct SplitArgs {
    /// Training manifest (with --val and --test, instead of --manifest)
    #[arg(long, requires_all = ["val", "test"], conflicts_with = "manifest")]
    train: Option<PathBuf>,
    /// Validation manifest: selects the reported epoch
    #[arg(long)]
    val: Option<PathBuf>,
    /// Test manifest: the reported metrics
    #[arg(long)]
    test: Option<PathBuf>,
    /// One manifest split by subject into train/val/test with --fractions
    #[arg(long, required_unless_present = "train")]
    manifest: Option<PathBuf>,
    /// Train, validation and test shares of --manifest's subjects (stratified by label)
    #[arg(long, value_delimiter = ',', default_value = "0.6,0.2,0.2")]
    fractions: Vec<f64>,
    /// Seed of the subject split
    #[arg(long, default_value_t = 42)]
    split_seed: u64,
    #[command(flatten)]
    labels: LabelArgs,
}

impl SplitArgs {
    /// A name for the task: the manifest's file stem, or the folder of the training manifest.
    pub(crate) fn name(&self) -> Option<String> {
        let stem = |p: &Path| {
            p.file_stem()
                .map(|s| s.to_string_lossy().trim_end_matches(".csv").to_string())
        };
        match (&self.manifest, &self.train) {
            (Some(m), _) => stem(m),
            (None, Some(t)) => t
                .parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .or_else(|| stem(t)),
            _ => None,
        }
    }

    /// Subject-disjoint train/val/test rows, and the map of their text labels.
    pub(crate) fn splits(&self) -> Result<(Splits, Option<LabelMap>)> {
        let (split, map) = match (&self.train, &self.manifest) {
            (Some(t), _) => {
                let mut s = Splits {
                    train: rows(t)?,
                    val: rows(self.val.as_ref().expect("clap"))?,
                    test: rows(self.test.as_ref().expect("clap"))?,
                };
                let map = self.labels.apply(&mut [&mut s.train, &mut s.val, &mut s.test])?;
                (s, map)
            }
            (None, Some(m)) => {
                if self.fractions.len() != 3 {
                    bail!("--fractions takes three numbers: train,val,test");
                }
                let f = [self.fractions[0], self.fractions[1], self.fractions[2]];
                let mut all = rows(m)?;
                let map = self.labels.apply(&mut [&mut all])?;
                let [train, val, test] =
                    splits::train_val_test(&all, f, self.split_seed).with_context(|| m.display().to_string())?;
                (Splits { train, val, test }, map)
            }
            _ => bail!("give --train/--val/--test or --manifest"),
        };
        splits::check_disjoint(&[("train", &split.train), ("val", &split.val), ("test", &split.test)])?;
        Ok((split, map))
    }
}

/// What `probe` and `finetune` share: the encoder, the recipe, the data and the output folder.
#[derive(Args)]
pub struct ClassifyArgs {
    #[command(flatten)]
    encoder: EncoderArgs,
    #[command(flatten)]
    recipe: RecipeArgs,
    #[command(flatten)]
    data: SplitArgs,
    /// Output folder: config.toml, log.csv, metrics.json, test_predictions.csv, best.safetensors
    #[arg(long)]
    out: PathBuf,
    /// Write into a non-empty --out, overwriting its files (others are kept)
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    run: ClassifyArgs,
    #[command(flatten)]
    frozen: FrozenArgs,
}

#[derive(Args)]
pub struct CvArgs {
    #[command(flatten)]
    encoder: EncoderArgs,
    #[command(flatten)]
    recipe: RecipeArgs,
    /// Frozen-probe options (with --mode frozen)
    #[command(flatten)]
    frozen: FrozenArgs,
    /// Frozen probe or fine-tuning
    #[arg(long, value_enum, default_value = "frozen")]
    mode: ModeChoice,
    /// Scans to cross-validate (split by subject, stratified by label)
    #[arg(long)]
    manifest: PathBuf,
    /// Number of folds; each is the test set once
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Fraction of each fold's training subjects kept for validation
    #[arg(long, default_value_t = VAL_FRACTION)]
    val_fraction: f64,
    /// Seed of the folds and of each fold's validation draw
    #[arg(long, default_value_t = 42)]
    split_seed: u64,
    #[command(flatten)]
    labels: LabelArgs,
    /// Output folder: one run folder per fold, cv.csv (per fold), cv.json and summary.{md,csv,json}
    #[arg(long)]
    out: PathBuf,
    /// Write into a non-empty --out, overwriting its files (others are kept)
    #[arg(long)]
    force: bool,
}

fn mode_command(mode: Mode) -> &'static str {
    match mode {
        Mode::Frozen => "probe",
        Mode::Finetune => "finetune",
    }
}

fn rows(path: &Path) -> Result<Vec<ManifestRow>> {
    Ok(Manifest::read(path)?.rows)
}

/// Encoder, whether it is pretrained, and the pretraining config it came with.
fn encoder(a: &EncoderArgs, device: Device) -> Result<(Encoder, bool, PretrainConfig)> {
    match (&a.checkpoint, &a.from_scratch) {
        (Some(c), _) => {
            let m = brainssl_train::checkpoint::read_manifest(c)?;
            let enc = Encoder::load(c, a.checkpoint_key.key(), device)?;
            Ok((enc, true, m.config))
        }
        (None, Some(preset)) => {
            let cfg = PretrainConfig::preset(preset)?;
            Ok((Encoder::random(&cfg.encoder, cfg.seed, device), false, cfg))
        }
        _ => bail!("give --checkpoint or --from-scratch PRESET"),
    }
}

/// The recipe sized like the encoder's pretraining input, with overrides.
pub(crate) fn recipe(
    r: &RecipeArgs,
    f: &FrozenArgs,
    mode: Mode,
    classes: &Classes,
    pre: &PretrainConfig,
) -> Result<DownstreamConfig> {
    let mut c = r.recipe.config(mode, classes.count, pre.data.prep.size <= 64);
    c.class_names = classes.names.clone();
    c.prep.depth = pre.data.prep.depth;
    c.prep.size = pre.data.prep.size;
    c.classifier.heads = pre.encoder.heads;
    c.feature_cache |= f.feature_cache;
    c.standardise_tokens |= f.standardise_tokens;
    let mut c = overrides(c, r.config.as_deref(), r.epochs)?;
    if let Some(p) = r.precision {
        c.precision = p;
    }
    Ok(c)
}

/// `--config` (any subset of the downstream config's keys) and `--epochs` on top of a recipe.
fn overrides(mut c: DownstreamConfig, config: Option<&Path>, epochs: Option<usize>) -> Result<DownstreamConfig> {
    if let Some(path) = config {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut base = toml::Value::try_from(&c)?;
        let over: toml::Value = toml::from_str(&text).with_context(|| path.display().to_string())?;
        brainssl_train::config::merge_toml(&mut base, over);
        c = base
            .try_into()
            .with_context(|| format!("{}: invalid downstream config", path.display()))?;
    }
    if let Some(e) = epochs {
        c.set_epochs(e);
    }
    Ok(c)
}

/// The most classes a classifier head is built for: a larger label is a mistake, not a task.
const MAX_CLASSES: i64 = 1000;

/// The classes of a classification run: how many, and their names when the labels were text.
#[derive(Debug)]
pub(crate) struct Classes {
    pub(crate) count: usize,
    pub(crate) names: Vec<String>,
}

/// The classes C of labelled rows: labels must be 0..C-1 with every class present, and C at most
/// [`MAX_CLASSES`]; the first offending scan is named. With text labels C is the number of names.
pub(crate) fn classes_of(parts: &[&[ManifestRow]], map: Option<LabelMap>) -> Result<Classes> {
    let rows = || parts.iter().flat_map(|p| p.iter());
    if let Some(r) = rows().find(|r| r.label < 0 || r.label >= MAX_CLASSES) {
        bail!(
            "{}: label {} is outside 0..{} (classification needs labels 0..C-1; unlabelled rows (-1) cannot train a classifier)",
            r.path.display(),
            r.label,
            MAX_CLASSES - 1
        );
    }
    let c = match &map {
        Some(m) => m.names.len().max(2),
        None => rows().map(|r| r.label as usize + 1).max().unwrap_or(2).max(2),
    };
    let mut seen = vec![false; c];
    for r in rows() {
        seen[r.label as usize] = true;
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        match map.as_ref().and_then(|m| m.names.get(missing)) {
            Some(name) => bail!("class {missing} ('{name}') has no scan: every class needs scans"),
            None => bail!(
                "labels run up to {} but class {missing} has no scan: labels must be 0..C-1 (relabel, e.g. 1/2 as 0/1)",
                c - 1
            ),
        }
    }
    Ok(Classes {
        count: c,
        names: map.map(|m| m.names).unwrap_or_default(),
    })
}

/// `print-config --recipe R`: the recipe at the paper's input size for a binary task (probe and
/// finetune size the input like the encoder's pretraining and count the classes of the data).
pub fn print_recipe(recipe: Recipe, mode: ModeChoice) -> Result<()> {
    let c = recipe.config(mode.mode(), 2, false);
    print!("{}", toml::to_string_pretty(&c)?);
    Ok(())
}

fn print_outcome(what: &str, o: &Outcome) {
    println!(
        "{what}: best epoch {} (val AUROC {:.4}); test accuracy {:.4}, macro F1 {:.4}{}, AUROC {:.4}",
        o.best_epoch + 1,
        o.val.auroc,
        o.test.accuracy,
        o.test.macro_f1,
        o.test
            .f1_positive
            .map(|f| format!(", positive F1 {f:.4}"))
            .unwrap_or_default(),
        o.test.auroc
    );
}

/// `brainssl probe`.
pub fn probe(a: ProbeArgs) -> Result<()> {
    classify(&a.run, &a.frozen, Mode::Frozen)
}

/// `brainssl finetune`.
pub fn finetune(a: ClassifyArgs) -> Result<()> {
    classify(&a, &FrozenArgs::default(), Mode::Finetune)
}

fn classify(a: &ClassifyArgs, frozen: &FrozenArgs, mode: Mode) -> Result<()> {
    let (enc_args, r, out) = (&a.encoder, &a.recipe, a.out.as_path());
    let (split, map) = a.data.splits()?;
    let _lock = claim_folder(out, a.force, mode_command(mode))?;
    let base = r.device.device()?;
    let (enc, pretrained, pre) = encoder(enc_args, base)?;
    let classes = classes_of(&[&split.train, &split.val, &split.test], map)?;
    let mut cfg = recipe(r, frozen, mode, &classes, &pre)?;
    cfg.checkpoint_key = enc_args.checkpoint_key.name().to_string();
    let o = run(&cfg, Downstream::new(&cfg, enc, pretrained)?, &split, out, !r.quiet)?;
    print_outcome(&out.display().to_string(), &o);
    println!("predictions: {}", out.join("test_predictions.csv").display());
    Ok(())
}

pub fn cv(a: CvArgs) -> Result<()> {
    let mode = a.mode.mode();
    let _lock = claim_folder(&a.out, a.force, "cv")?;
    let mut all = rows(&a.manifest)?;
    let map = a.labels.apply(&mut [&mut all])?;
    let base = a.recipe.device.device()?;
    let splits = splits::cv_splits(&all, a.folds, a.val_fraction, a.split_seed)
        .with_context(|| a.manifest.display().to_string())?;
    let classes = classes_of(&[&all], map)?;
    // the run folder of the checkpoint (RUN/checkpoints/final.safetensors → RUN)
    let model = match &a.encoder.checkpoint {
        Some(c) => c
            .ancestors()
            .nth(2)
            .and_then(|p| p.file_name())
            .map_or_else(|| c.display().to_string(), |n| n.to_string_lossy().into_owned()),
        None => format!("{} from scratch", a.encoder.from_scratch.as_deref().unwrap_or("?")),
    };
    let study = CrossValidation::run(
        &model,
        mode_command(mode),
        splits,
        classes.count,
        &a.out,
        |i, split, dir| {
            let (enc, pretrained, pre) = encoder(&a.encoder, base)?;
            let cfg = recipe(&a.recipe, &a.frozen, mode, &classes, &pre)?;
            let o = run(
                &cfg,
                Downstream::new(&cfg, enc, pretrained)?,
                split,
                dir,
                !a.recipe.quiet,
            )?;
            print_outcome(&format!("fold {i}"), &o);
            Ok(o)
        },
    )?;
    brainssl_scan::atomic_write(&a.out.join("cv.csv"), study.folds_table().to_csv().as_bytes())?;
    brainssl_scan::atomic_write(&a.out.join("cv.json"), serde_json::to_string_pretty(&study)?.as_bytes())?;
    let summary = study.summary_table();
    crate::output::write_table(&a.out, "summary", &summary)?;
    print!("{}", summary.to_markdown());
    Ok(())
}

#[derive(Args)]
pub struct EmbedArgs {
    /// Pretraining checkpoint
    #[arg(long)]
    checkpoint: PathBuf,
    /// Which encoder of the checkpoint
    #[arg(long, value_enum, default_value = "student")]
    checkpoint_key: Key,
    /// Scans to embed (a manifest)
    #[arg(long, required_unless_present = "scans", conflicts_with = "scans")]
    manifest: Option<PathBuf>,
    /// Or scan files / DICOM folders directly (no labels: -1)
    #[arg(long, num_args = 1..)]
    scans: Vec<PathBuf>,
    #[command(flatten)]
    labels: LabelArgs,
    /// E.csv (ids, label and the embedding per row) or E.npy ([n, D] float32, with E.csv beside it for ids)
    #[arg(long)]
    out: PathBuf,
    /// Overwrite an existing --out
    #[arg(long)]
    force: bool,
    /// Also write each scan's token grid [N, D] as .npy into this folder
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// Scans per forward pass
    #[arg(long, default_value_t = 4)]
    batch_size: usize,
    /// cpu or cuda:N
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Matrix-product precision: auto (bf16 on CUDA, f32 on the CPU), f32 or bf16
    #[arg(long, default_value = "auto")]
    precision: PrecisionChoice,
}

pub fn embed(a: EmbedArgs) -> Result<()> {
    claim_file(&a.out, a.force)?;
    let base = a.device.device()?;
    let m = brainssl_train::checkpoint::read_manifest(&a.checkpoint)?;
    let enc = Encoder::load(&a.checkpoint, a.checkpoint_key.key(), base)?;
    let rows = match &a.manifest {
        Some(p) => {
            let mut r = rows(p)?;
            a.labels.apply(&mut [&mut r])?;
            r
        }
        None => scan_rows(&a.scans),
    };
    let plan = brainssl_downstream::embed::EmbedPlan {
        prep: &m.config.data.prep,
        batch_size: a.batch_size,
        precision: a.precision.resolve(base),
    };
    let (pooled, grids) = brainssl_downstream::embed::embed_rows(&enc, &rows, plan, a.tokens.is_some())?;
    let d = pooled.first().map_or(0, |p| p.len());
    let mut csv = String::from("subject_id,path,label");
    let npy = a.out.extension().is_some_and(|e| e == "npy");
    if !npy {
        for k in 0..d {
            csv.push_str(&format!(",e{k}"));
        }
    }
    csv.push('\n');
    for (r, e) in rows.iter().zip(&pooled) {
        csv.push_str(&format!("{},{},{}", r.subject_id, r.path.display(), r.label));
        if !npy {
            for v in e {
                csv.push_str(&format!(",{v:.6}"));
            }
        }
        csv.push('\n');
    }
    if npy {
        let flat: Vec<f32> = pooled.concat();
        brainssl_scan::npy::write_f32(&a.out, &flat, &[rows.len(), d])?;
        brainssl_scan::atomic_write(&a.out.with_extension("csv"), csv.as_bytes())?;
    } else {
        brainssl_scan::atomic_write(&a.out, csv.as_bytes())?;
    }
    if let Some(dir) = &a.tokens {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        let grid = m.config.encoder.grid(m.config.data.prep.depth, m.config.data.prep.size);
        let n = grid.iter().product::<usize>();
        for (i, g) in grids.iter().enumerate() {
            brainssl_scan::npy::write_f32(&dir.join(format!("{i:05}.npy")), g, &[n, d])?;
        }
    }
    println!("{} embeddings of width {d} → {}", rows.len(), a.out.display());
    Ok(())
}

#[derive(Args)]
pub struct PredictArgs {
    /// A trained classifier: DIR/best.safetensors of probe, finetune or baseline
    #[arg(long)]
    classifier: PathBuf,
    /// Scans to classify (a manifest; text labels are numbered as the classifier's classes)
    #[arg(long, required_unless_present = "scans", conflicts_with = "scans")]
    manifest: Option<PathBuf>,
    /// Or scan files / DICOM folders directly (label -1)
    #[arg(long, num_args = 1..)]
    scans: Vec<PathBuf>,
    /// Output CSV (subject_id,path,label,p0,...: the input format of `metrics`)
    #[arg(long)]
    out: PathBuf,
    /// Overwrite an existing --out
    #[arg(long)]
    force: bool,
    /// cpu or cuda:N
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Matrix-product precision: auto (bf16 on CUDA, f32 on the CPU), f32 or bf16
    #[arg(long, default_value = "auto")]
    precision: PrecisionChoice,
}

/// `brainssl predict`: a trained classifier on new scans.
pub fn predict(a: PredictArgs) -> Result<()> {
    claim_file(&a.out, a.force)?;
    let device = a.device.device()?;
    let trained = brainssl_downstream::predict::Trained::load(&a.classifier, device)?;
    let names = &trained.cfg.class_names;
    let mut rows = match &a.manifest {
        Some(p) => rows(p)?,
        None => scan_rows(&a.scans),
    };
    if let Some(r) = rows.iter().find(|r| r.label_name.is_some()) {
        if names.is_empty() {
            bail!(
                "{} has the text label '{}', but {} was trained on integer labels: give the labels as the integers it knows",
                r.path.display(),
                r.label_name.as_deref().unwrap_or_default(),
                a.classifier.display()
            );
        }
        LabelMap::apply(&mut [&mut rows], names)?;
    }
    let classes = (0..trained.cfg.classifier.num_classes)
        .map(|k| match names.get(k) {
            Some(n) => format!("p{k} = {n}"),
            None => format!("p{k}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let probs = trained.predict(&rows, device, a.precision.resolve(device))?;
    brainssl_downstream::fit::write_predictions(&a.out, &rows, &probs)?;
    println!(
        "{} scans → {} ({classes}; the classifier of epoch {})",
        rows.len(),
        a.out.display(),
        trained.best_epoch
    );
    Ok(())
}

/// Rows for scans given by path: subject id = file stem, no label.
fn scan_rows(scans: &[PathBuf]) -> Vec<ManifestRow> {
    scans
        .iter()
        .map(|p| {
            ManifestRow::new(
                brainssl_data::UNLABELLED,
                &p.file_stem().unwrap_or_default().to_string_lossy(),
                "",
                p.clone(),
            )
        })
        .collect()
}

#[derive(Args)]
pub struct FewShotArgs {
    /// Pretraining checkpoints, one per SSL model to compare
    #[arg(long, required = true, num_args = 1..)]
    checkpoint: Vec<PathBuf>,
    /// Model names, comma-separated, in checkpoint order (default: the run folder names)
    #[arg(long, value_delimiter = ',')]
    names: Vec<String>,
    #[command(flatten)]
    recipe: RecipeArgs,
    /// One manifest: split by subject into a training pool, validation and test (--fractions)
    #[arg(long)]
    manifest: PathBuf,
    /// Pool, validation and test shares of the manifest's subjects (stratified by label)
    /// Pool, validation and test shares of the manifest's subjects (stratified by label)
    #[arg(long, value_delimiter = ',', default_value = "0.6,0.2,0.2")]
    fractions: Vec<f64>,
    /// Subjects per class drawn from the pool
    #[arg(long, value_delimiter = ',', default_value = "16,32,64")]
    k: Vec<usize>,
    /// Draws per k (seeds split_seed + k + i, as random_state = seed + k in the reference)
    #[arg(long, default_value_t = 3)]
    seeds: usize,
    /// Seed of the pool/val/test split; the draws use split_seed + k + i
    #[arg(long, default_value_t = 42)]
    split_seed: u64,
    #[command(flatten)]
    labels: LabelArgs,
    /// Also train the supervised ResNet-50 3-D on every draw (the paper's Figure 5 baseline)
    #[arg(long)]
    baseline: bool,
    /// Output folder: one run folder per model, k and draw, fewshot.csv (per run), fewshot.json, summary.{md,csv,json}, fewshot.svg
    #[arg(long)]
    out: PathBuf,
    /// Write into a non-empty --out, overwriting its files (others are kept)
    #[arg(long)]
    force: bool,
}

/// `brainssl fewshot`: fine-tune each SSL encoder on k subjects per class (several draws), test AUROC
/// per k on the full validation-selected test split (the paper's Figure 5).
pub fn fewshot(a: FewShotArgs) -> Result<()> {
    if a.fractions.len() != 3 {
        bail!("--fractions takes three numbers: pool,val,test");
    }
    let _lock = claim_folder(&a.out, a.force, "fewshot")?;
    let mut names = crate::commands::names_or(&a.names, &a.checkpoint, "checkpoints", |c| {
        c.ancestors()
            .nth(2)
            .and_then(|p| p.file_name())
            .map_or_else(|| c.display().to_string(), |n| n.to_string_lossy().to_string())
    })?;
    let mut all = rows(&a.manifest)?;
    let map = a.labels.apply(&mut [&mut all])?;
    let [pool, val, test] =
        splits::train_val_test(&all, [a.fractions[0], a.fractions[1], a.fractions[2]], a.split_seed)
            .with_context(|| a.manifest.display().to_string())?;
    splits::check_disjoint(&[("pool", &pool), ("val", &val), ("test", &test)])?;
    let base = a.recipe.device.device()?;
    let classes = classes_of(&[&all], map)?;
    // each checkpoint's manifest once (its header only: no tensors are decoded)
    let manifests = a
        .checkpoint
        .iter()
        .map(|c| brainssl_train::checkpoint::read_manifest(c))
        .collect::<Result<Vec<_>>>()?;
    if a.baseline {
        names.push("resnet50".into());
    }
    let mut draws = Vec::new();
    for &k in &a.k {
        match splits::few_shot_draws(&pool, k, a.seeds, a.split_seed) {
            Ok(d) => draws.push((k, d)),
            Err(e) => eprintln!("warning: k = {k} skipped: {e:#}"),
        }
    }
    if draws.is_empty() {
        bail!("no k could be drawn from the pool ({} scans)", pool.len());
    }
    let study = FewShot::run(
        &names,
        &draws,
        &val,
        &test,
        classes.count,
        &a.out,
        |m, split, dir| match a.checkpoint.get(m) {
            Some(ckpt) => {
                let enc = Encoder::load(ckpt, CheckpointKey::Student, base)?;
                let cfg = recipe(
                    &a.recipe,
                    &FrozenArgs::default(),
                    Mode::Finetune,
                    &classes,
                    &manifests[m].config,
                )?;
                run(&cfg, Downstream::new(&cfg, enc, true)?, split, dir, !a.recipe.quiet)
            }
            None => {
                // the baseline sees the same input size as the first SSL model
                let prep = &manifests[0].config.data.prep;
                let mut cfg = DownstreamConfig::resnet(classes.count, prep.size <= 64);
                (cfg.prep.depth, cfg.prep.size) = (prep.depth, prep.size);
                let mut cfg = overrides(cfg, a.recipe.config.as_deref(), a.recipe.epochs)?;
                cfg.class_names = classes.names.clone();
                let model = ResNetClassifier::new(classes.count, cfg.seed, base);
                train(&cfg, &model, split, dir, base, !a.recipe.quiet)
            }
        },
        |r| {
            println!(
                "{} k = {} draw {}: test AUROC {:.3}",
                r.model, r.k, r.draw, r.result.auroc
            )
        },
    )?;
    std::fs::create_dir_all(&a.out)?;
    brainssl_scan::atomic_write(&a.out.join("fewshot.csv"), study.runs_table().to_csv().as_bytes())?;
    brainssl_scan::atomic_write(
        &a.out.join("fewshot.json"),
        serde_json::to_string_pretty(&study)?.as_bytes(),
    )?;
    let summary = study.summary_table();
    crate::output::write_table(&a.out, "summary", &summary)?;
    if study.ks.len() >= 2 {
        let svg = crate::figures::fewshot(&study)?;
        brainssl_scan::atomic_write(&a.out.join("fewshot.svg"), svg.as_bytes())
            .with_context(|| a.out.display().to_string())?;
    }
    print!("{}", summary.to_markdown());
    Ok(())
}

#[derive(Args)]
pub struct BaselineArgs {
    #[command(flatten)]
    data: SplitArgs,
    /// Slices of the input (the paper's downstream input is 144 x 160 x 160)
    #[arg(long, default_value_t = 144)]
    depth: usize,
    /// Height and width of the input (the paper's 160)
    #[arg(long, default_value_t = 160)]
    size: usize,
    /// Training epochs [default: the recipe's: 12 for inputs of 64 or less, 400 otherwise]
    #[arg(long)]
    epochs: Option<usize>,
    /// TOML overrides of the downstream config
    #[arg(long)]
    config: Option<PathBuf>,
    /// cpu or cuda:N
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Output folder: config.toml, log.csv, metrics.json, test_predictions.csv, best.safetensors
    #[arg(long)]
    out: PathBuf,
    /// Write into a non-empty --out, overwriting its files (others are kept)
    #[arg(long)]
    force: bool,
    /// No progress bar
    #[arg(long)]
    quiet: bool,
}

/// `brainssl baseline`: the supervised 3-D ResNet-50 from scratch, same pipeline and selection rule.
pub fn baseline(a: BaselineArgs) -> Result<()> {
    let (split, map) = a.data.splits()?;
    let _lock = claim_folder(&a.out, a.force, "baseline")?;
    let base = a.device.device()?;
    let classes = classes_of(&[&split.train, &split.val, &split.test], map)?;
    let mut cfg = DownstreamConfig::resnet(classes.count, a.size <= 64);
    (cfg.prep.depth, cfg.prep.size) = (a.depth, a.size);
    let mut cfg = overrides(cfg, a.config.as_deref(), a.epochs)?;
    cfg.class_names = classes.names;
    let model = ResNetClassifier::new(classes.count, cfg.seed, base);
    let o = train(&cfg, &model, &split, &a.out, base, !a.quiet)?;
    print_outcome(&format!("{} (ResNet-50 3-D)", a.out.display()), &o);
    Ok(())
}

#[cfg(test)]
mod label_tests {
    use super::*;

    fn rows(labels: &[i64]) -> Vec<ManifestRow> {
        labels
            .iter()
            .enumerate()
            .map(|(i, &l)| ManifestRow::new(l, &format!("s{i}"), "t1", PathBuf::from(format!("scan{i}.nii"))))
            .collect()
    }

    #[test]
    fn labels_must_be_zero_to_c_minus_one_and_sane() {
        assert_eq!(classes_of(&[&rows(&[0, 1, 1]), &rows(&[0])], None).unwrap().count, 2);
        assert_eq!(classes_of(&[&rows(&[0, 2, 1])], None).unwrap().count, 3);
        let e = classes_of(&[&rows(&[1, 2, 2])], None).unwrap_err().to_string();
        assert!(e.contains("class 0 has no scan"), "{e}");
        let e = classes_of(&[&rows(&[0, 1_000_000])], None).unwrap_err().to_string();
        assert!(e.contains("scan1.nii") && e.contains("outside 0..999"), "{e}");
        let e = classes_of(&[&rows(&[0, -1])], None).unwrap_err().to_string();
        assert!(e.contains("unlabelled"), "{e}");
        // with text labels C is the number of names, and a named class without scans is named
        let three = LabelMap {
            names: ["CN", "MCI", "AD"].map(String::from).to_vec(),
        };
        let named = classes_of(&[&rows(&[0, 2, 1])], Some(three.clone())).unwrap();
        assert_eq!((named.count, named.names), (3, three.names.clone()));
        let e = classes_of(&[&rows(&[0, 1])], Some(three)).unwrap_err().to_string();
        assert!(e.contains("class 2 ('AD')"), "{e}");
    }
}
