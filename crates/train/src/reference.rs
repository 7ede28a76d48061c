//! Checkpoints of the reference implementation in and out. The reference saves, with `torch.save`,
//! a dict with `encoder`, `predictor` and `target_encoder` state dicts (keys behind `module.` and
//! `backbone.` prefixes, a fixed `pos_embed` among them), `opt`, `epoch` and scalars. brainssl's
//! names below those prefixes are the reference's (docs/method.md#checkpoint-layout), so an import
//! is a change of prefix plus checks: every variable of the preset's model must be found with its
//! shape, every tensor of the imported parts must find a variable, and a stored `pos_embed` must be
//! the fixed sin-cos table the model rebuilds (a table left at zero, or made for another input
//! size, is an error, not a silent mismatch).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use brainssl_backend::Device;
use brainssl_models::pos_embed::sincos_3d;
use brainssl_prep::Rng;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{
    self, load_store, store_tensors, unexpected_tensors, CheckpointManifest, HostTensors, Progress, FORMAT,
};
use crate::config::PretrainConfig;
use crate::ema::Teacher;
use crate::step::Student;

/// Which of the reference's encoders becomes brainssl's (student) encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceEncoder {
    /// The context encoder (`encoder`), which the reference evaluates.
    Encoder,
    /// The EMA target encoder (`target_encoder`).
    TargetEncoder,
}

impl ReferenceEncoder {
    fn key(self) -> &'static str {
        match self {
            ReferenceEncoder::Encoder => "encoder",
            ReferenceEncoder::TargetEncoder => "target_encoder",
        }
    }
}

/// The prefixes DistributedDataParallel and the reference's wrappers put before module names.
const WRAPPERS: [&str; 2] = ["module.", "backbone."];

fn unwrap_name(mut k: &str) -> &str {
    while let Some(rest) = WRAPPERS.iter().find_map(|w| k.strip_prefix(w)) {
        k = rest;
    }
    k
}

/// A tensor of any floating-point type as float32 values.
fn floats(t: &pytorch_reader::Tensor) -> Result<Vec<f32>> {
    use pytorch_reader::DType;
    let b = t.read()?;
    Ok(match t.dtype() {
        DType::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        DType::F64 => b
            .chunks_exact(8)
            .map(|c| f64::from_ne_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        DType::F16 => b
            .chunks_exact(2)
            .map(|c| half::f16::from_ne_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::BF16 => b
            .chunks_exact(2)
            .map(|c| half::bf16::from_ne_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => bail!("{}: {other:?} is not a floating-point type", t.name),
    })
}

/// The reference file's state dicts by top-level key (floating-point tensors, names unwrapped).
fn read_parts(src: &Path) -> Result<HashMap<String, HostTensors>> {
    let r = pytorch_reader::PytorchReader::new(src)
        .map_err(|e| anyhow!("{}: not a readable torch.save file ({e})", src.display()))?;
    let mut parts: HashMap<String, HostTensors> = HashMap::new();
    for (key, t) in r.tensors() {
        let (top, rest) = key.split_once('.').unwrap_or((key.as_str(), ""));
        let part = parts.entry(top.to_string()).or_default();
        if matches!(
            t.dtype(),
            pytorch_reader::DType::F32
                | pytorch_reader::DType::F64
                | pytorch_reader::DType::F16
                | pytorch_reader::DType::BF16
        ) {
            let values = floats(t).with_context(|| src.display().to_string())?;
            part.insert(unwrap_name(rest).to_string(), (t.shape().to_vec(), values));
        }
    }
    Ok(parts)
}

/// Checks and removes a stored fixed positional table `name` of a [`grid`] × `dim` model.
fn take_pos_embed(part: &mut HostTensors, name: &str, grid: [usize; 3], dim: usize, what: &str) -> Result<()> {
    let Some((shape, values)) = part.remove(name) else {
        return Ok(());
    };
    let n = grid.iter().product::<usize>();
    if shape.iter().product::<usize>() != n * dim || shape.last() != Some(&dim) {
        bail!(
            "{what}.{name} has shape {shape:?}, but the preset's input makes {n} tokens of width {dim} (grid {grid:?}): \
             import with the preset (or --config) of the input size the model was trained on"
        );
    }
    let want = sincos_3d(grid, dim, true);
    let worst = values
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    if worst > 1e-4 {
        bail!(
            "{what}.{name} is not the fixed 3-D sin-cos table (largest difference {worst:.3e}; all zero: {}): \
             a learned or uninitialised positional table cannot be imported",
            values.iter().all(|&v| v == 0.0)
        );
    }
    Ok(())
}

/// Loads `part` into the variables of `vs` under `under`, and refuses tensors no variable takes.
fn load_part(vs: &brainssl_backend::tch::nn::VarStore, under: &str, part: &HostTensors, what: &str) -> Result<usize> {
    let unexpected = unexpected_tensors(part, &[(vs, under, "")]);
    if let Some(k) = unexpected.first() {
        bail!(
            "{what}.{k} (and {} more) has no place in the preset's model: wrong preset, or not a checkpoint of this architecture",
            unexpected.len() - 1
        );
    }
    load_store(vs, under, part, "").with_context(|| format!("{what} does not fit the preset's model"))
}

/// What an import wrote and left out, for the user to read.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub notes: Vec<String>,
}

/// Converts the reference checkpoint `src` into a brainssl checkpoint `dst` for the model of `cfg`.
pub fn import(src: &Path, cfg: &PretrainConfig, key: ReferenceEncoder, dst: &Path) -> Result<ImportReport> {
    cfg.validate()?;
    let mut parts = read_parts(src)?;
    let named = |e: anyhow::Error| e.context(src.display().to_string());
    let mut report = ImportReport::default();
    let grid = cfg.encoder.grid(cfg.data.prep.depth, cfg.data.prep.size);
    let student = Student::init(cfg, &mut Rng::new(cfg.seed), Device::Cpu);
    let main = key.key();
    let mut enc = parts.remove(main).ok_or_else(|| {
        let found: Vec<&String> = parts.keys().collect();
        anyhow!("{}: no '{main}' state dict (found: {found:?})", src.display())
    })?;
    take_pos_embed(&mut enc, "pos_embed", grid, cfg.encoder.embed_dim, main).map_err(named)?;
    let n = load_part(&student.vs, "encoder.", &enc, main).map_err(named)?;
    report.notes.push(format!("encoder: {n} tensors from '{main}'"));
    match parts.remove("predictor") {
        Some(mut head) => {
            take_pos_embed(
                &mut head,
                "predictor_pos_embed",
                grid,
                cfg.predictor.embed_dim,
                "predictor",
            )
            .map_err(named)?;
            let n = load_part(&student.vs, "head.", &head, "predictor").map_err(named)?;
            report.notes.push(format!("head: {n} tensors from 'predictor'"));
        }
        None => report
            .notes
            .push("head: no 'predictor' in the file, so it keeps its random initialisation".into()),
    }
    let mut tensors = store_tensors(&student.vs, "student.");
    if cfg.objective.needs_teacher() {
        let teacher = Teacher::copy_of(&cfg.encoder, &student.vs, "encoder.", Device::Cpu);
        match parts
            .remove("target_encoder")
            .filter(|_| key == ReferenceEncoder::Encoder)
        {
            Some(mut t) => {
                take_pos_embed(&mut t, "pos_embed", grid, cfg.encoder.embed_dim, "target_encoder").map_err(named)?;
                let n = load_part(&teacher.vs, "", &t, "target_encoder").map_err(named)?;
                report.notes.push(format!("teacher: {n} tensors from 'target_encoder'"));
            }
            None => report.notes.push("teacher: a copy of the imported encoder".into()),
        }
        tensors.extend(store_tensors(&teacher.vs, "teacher."));
    }
    let mut left: Vec<String> = parts
        .iter()
        .map(|(k, t)| format!("{k} ({} tensors)", t.len()))
        .collect();
    left.sort();
    if !left.is_empty() {
        report.notes.push(format!("not imported: {}", left.join(", ")));
    }
    let manifest = CheckpointManifest {
        brainssl_version: env!("CARGO_PKG_VERSION").to_string(),
        format: FORMAT,
        kind: "imported".into(),
        progress: Progress::default(),
        data_hash: String::new(),
        config: cfg.clone(),
    };
    checkpoint::save_tensors(dst, &tensors, &serde_json::to_string_pretty(&manifest)?)?;
    Ok(report)
}

/// Writes the brainssl checkpoint `src` in the reference's layout: `encoder`, `predictor` and
/// (JEPA) `target_encoder` state dicts behind `module.backbone.`, each encoder with its fixed
/// `pos_embed` [1, N, D] for the configured input, and `epoch`. Optimiser moments are left out.
pub fn export(src: &Path, dst: &Path) -> Result<usize> {
    let (tensors, m) = checkpoint::load(src)?;
    let cfg = &m.config;
    let grid = cfg.encoder.grid(cfg.data.prep.depth, cfg.data.prep.size);
    let n = grid.iter().product::<usize>();
    let mut out: Vec<(String, String, Vec<usize>, Vec<f32>)> = Vec::new();
    for (k, (shape, values)) in &tensors {
        let (group, rest) = if let Some(r) = k.strip_prefix("student.encoder.") {
            ("encoder", r)
        } else if let Some(r) = k.strip_prefix("student.head.") {
            ("predictor", r)
        } else if let Some(r) = k.strip_prefix("teacher.") {
            ("target_encoder", r)
        } else {
            continue;
        };
        out.push((
            group.into(),
            format!("module.backbone.{rest}"),
            shape.clone(),
            values.clone(),
        ));
    }
    let groups: Vec<String> = out.iter().map(|t| t.0.clone()).collect();
    for g in ["encoder", "target_encoder"] {
        if groups.iter().any(|x| x == g) {
            let d = cfg.encoder.embed_dim;
            out.push((
                g.into(),
                "module.backbone.pos_embed".into(),
                vec![1, n, d],
                sincos_3d(grid, d, true),
            ));
        }
    }
    if groups.iter().any(|x| x == "predictor") {
        let d = cfg.predictor.embed_dim;
        out.push((
            "predictor".into(),
            "module.backbone.predictor_pos_embed".into(),
            vec![1, n, d],
            sincos_3d(grid, d, true),
        ));
    }
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    crate::torch_file::save(dst, &out, m.progress.epochs_done as i64)?;
    Ok(out.len())
}
