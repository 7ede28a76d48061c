//! Checkpoints: one safetensors file (weights, teacher, optimiser moments; the manifest in its
//! metadata) plus the same manifest as JSON beside it. Both are written atomically (temporary file +
//! rename), the weights first, so a reader never sees a half-written checkpoint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use brainssl_backend::burn::module::Module;
use brainssl_backend::{Tensor, TensorData};
use brainssl_models::{map_params, named_params};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::config::PretrainConfig;

/// Named host tensors: name → (shape, row-major values).
pub type HostTensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// Where training stood when the checkpoint was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointManifest {
    pub brainssl_version: String,
    pub format: u32,
    /// latest, periodic or final
    pub kind: String,
    /// Epochs completed; a resumed run starts at this epoch index.
    pub epochs_done: usize,
    pub micro_steps: usize,
    pub optimizer_steps: usize,
    /// SL-MAE: the cached spectral loss value and λ_eff (SPEC 4.3); restored on resume.
    pub spectral_cached: f64,
    pub spectral_lambda: f64,
    pub nonfinite_losses: usize,
    /// Mean training loss of the last completed epoch.
    pub epoch_loss: f64,
    /// BLAKE3 over (path, size, label) of the manifest rows.
    pub data_hash: String,
    pub config: PretrainConfig,
}

pub const FORMAT: u32 = 1;

/// Every float parameter of `module` as host arrays, names prefixed by `prefix`.
pub fn module_tensors<M: Module>(module: &M, prefix: &str) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    named_params(module)
        .into_iter()
        .map(|p| (format!("{prefix}{}", p.path), p.shape.clone(), p.value.to_vec()))
        .collect()
}

/// Replaces every parameter of `module` by the tensor named `prefix + path`; missing names and shape
/// mismatches are errors (no silent partial loads).
pub fn load_module<M: Module>(module: M, tensors: &HostTensors, prefix: &str) -> Result<M, String> {
    let mut errors = Vec::new();
    let module = map_params(module, |path, current| {
        let name = format!("{prefix}{path}");
        match tensors.get(&name) {
            None => {
                errors.push(format!("missing tensor {name}"));
                None
            }
            Some((_, values)) if values.len() != current.dims()[0] => {
                errors.push(format!(
                    "{name}: {} values, the model expects {}",
                    values.len(),
                    current.dims()[0]
                ));
                None
            }
            Some((_, values)) => Some(Tensor::from_data(
                TensorData::new(values.clone(), [values.len()]),
                &current.device(),
            )),
        }
    });
    if errors.is_empty() {
        Ok(module)
    } else {
        Err(errors.join("; "))
    }
}

/// Paths of a checkpoint called `stem` in `dir`: (`stem.safetensors`, `stem.json`).
pub fn paths(dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{stem}.safetensors")),
        dir.join(format!("{stem}.json")),
    )
}

pub fn save(
    dir: &Path,
    stem: &str,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    manifest: &CheckpointManifest,
) -> Result<(), String> {
    let json = serde_json::to_string_pretty(manifest).map_err(|e| e.to_string())?;
    let (st, js) = paths(dir, stem);
    save_tensors(&st, tensors, &json)?;
    brainssl_scan::atomic_write(&js, json.as_bytes()).map_err(|e| format!("{}: {e}", js.display()))?;
    Ok(())
}

/// One safetensors file of f32 tensors with `json` under the metadata key `brainssl`, atomically.
pub fn save_tensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)], json: &str) -> Result<(), String> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            TensorView::new(Dtype::F32, shape.clone(), b)
                .map(|v| (name.clone(), v))
                .map_err(|e| format!("{name}: {e}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let meta = HashMap::from([("brainssl".to_string(), json.to_string())]);
    let blob = safetensors::serialize(views, Some(meta)).map_err(|e| e.to_string())?;
    brainssl_scan::atomic_write(path, &blob).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads a checkpoint's tensors and manifest (from the safetensors metadata, the authoritative copy).
pub fn load(path: &Path) -> Result<(HostTensors, CheckpointManifest), String> {
    let (tensors, json) = load_tensors(path)?;
    let bad = |e: String| format!("{}: not a brainssl checkpoint ({e})", path.display());
    let manifest: CheckpointManifest = serde_json::from_str(&json).map_err(|e| bad(e.to_string()))?;
    if manifest.format != FORMAT {
        return Err(bad(format!("format {} (this build reads {FORMAT})", manifest.format)));
    }
    Ok((tensors, manifest))
}

/// Reads any file written by [`save_tensors`] (pretraining checkpoints, probe weights): tensors and
/// the JSON stored under the metadata key `brainssl`.
pub fn load_tensors(path: &Path) -> Result<(HostTensors, String), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = |e: String| format!("{}: not a brainssl weights file ({e})", path.display());
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("brainssl"))
        .cloned()
        .ok_or_else(|| bad("no brainssl metadata".into()))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!("{name} is {:?}, expected F32", view.dtype())));
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        tensors.insert(name, (view.shape().to_vec(), values));
    }
    Ok((tensors, json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_backend::Device;
    use brainssl_models::{VitConfig, VitSize};
    use brainssl_prep::rng::Rng;

    #[test]
    fn save_load_round_trip_restores_the_model() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = PretrainConfig::preset("tiny-mae").unwrap();
        cfg.encoder = VitConfig {
            depth: 1,
            ..VitConfig::sized(VitSize::Tiny)
        };
        let device = Device::flex();
        let a = cfg.encoder.init(&mut Rng::new(1), &device);
        let b = cfg.encoder.init(&mut Rng::new(2), &device);
        let manifest = CheckpointManifest {
            brainssl_version: "test".into(),
            format: FORMAT,
            kind: "latest".into(),
            epochs_done: 3,
            micro_steps: 30,
            optimizer_steps: 30,
            spectral_cached: 0.5,
            spectral_lambda: 0.1,
            nonfinite_losses: 0,
            epoch_loss: 1.25,
            data_hash: "abc".into(),
            config: cfg,
        };
        save(dir.path(), "latest", &module_tensors(&a, "encoder."), &manifest).unwrap();
        let (tensors, back) = load(&dir.path().join("latest.safetensors")).unwrap();
        assert_eq!(back, manifest);
        let b = load_module(b, &tensors, "encoder.").unwrap();
        assert_eq!(module_tensors(&b, ""), module_tensors(&a, ""));
        // a model of another shape is refused with the tensor named
        let mut other = VitConfig::sized(VitSize::Tiny);
        other.depth = 2;
        let err = load_module(other.init(&mut Rng::new(0), &device), &tensors, "encoder.").unwrap_err();
        assert!(err.contains("blocks.1"), "{err}");
        // corrupt files are named
        std::fs::write(dir.path().join("bad.safetensors"), b"nonsense").unwrap();
        assert!(load(&dir.path().join("bad.safetensors"))
            .unwrap_err()
            .contains("bad.safetensors"));
    }
}
