//! Checkpoints: one safetensors file (weights, teacher, optimiser moments; the manifest in its
//! metadata) plus the same manifest as JSON beside it. Both are written atomically (temporary file +
//! rename), the weights first, so a reader never sees a half-written checkpoint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use brainssl_backend::tch::nn::VarStore;
use brainssl_backend::{dims, tch, tensor, to_vec, Device};
use brainssl_models::named_params;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::config::PretrainConfig;
use crate::spectral_state::SpectralState;

/// Named host tensors: name → (shape, row-major values).
pub type HostTensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// Where training stood when a checkpoint was written: everything a resumed run continues from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Epochs completed; a resumed run starts at this epoch index.
    pub epochs_done: usize,
    pub micro_steps: usize,
    pub optimizer_steps: usize,
    /// SL-MAE: the cached spectral loss value and λ_eff (docs/method.md#spectral-schedule).
    pub spectral: SpectralState,
    pub nonfinite_losses: usize,
    /// Mean training loss of the last completed epoch.
    pub epoch_loss: f64,
    /// An interrupted epoch: steps of epoch `epochs_done` already taken (0 at an epoch boundary),
    /// and the running sum and count of their logged losses.
    #[serde(default)]
    pub epoch_steps_done: usize,
    #[serde(default)]
    pub epoch_loss_sum: f64,
    #[serde(default)]
    pub epoch_loss_n: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointManifest {
    pub brainssl_version: String,
    pub format: u32,
    /// latest, periodic or final
    pub kind: String,
    pub progress: Progress,
    /// BLAKE3 over (path, size, label) of the manifest rows.
    pub data_hash: String,
    pub config: PretrainConfig,
}

/// 2: libtorch layout and the reference implementation's names (format 1 was the Burn layout).
pub const FORMAT: u32 = 2;

/// Every variable of `vs` as host arrays, names prefixed by `prefix`, in path order.
pub fn store_tensors(vs: &VarStore, prefix: &str) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    named_params(vs)
        .into_iter()
        .map(|(k, t)| (format!("{prefix}{k}"), dims(&t), to_vec(&t)))
        .collect()
}

/// Overwrites every variable of `vs` whose path starts with `under` by the tensor named
/// `prefix + path without under`; missing names and shape mismatches are errors, and then nothing
/// is overwritten (no partial loads). Returns how many variables were loaded.
pub fn load_store(vs: &VarStore, under: &str, tensors: &HostTensors, prefix: &str) -> Result<usize> {
    let mut errors = Vec::new();
    let mut pairs = Vec::new();
    for (path, var) in named_params(vs) {
        let Some(rest) = path.strip_prefix(under) else { continue };
        let name = format!("{prefix}{rest}");
        match tensors.get(&name) {
            None => errors.push(format!("missing tensor {name}")),
            Some((shape, _)) if *shape != dims(&var) => {
                errors.push(format!("{name}: shape {shape:?}, the model expects {:?}", dims(&var)))
            }
            Some((shape, values)) => pairs.push((var, shape, values)),
        }
    }
    if !errors.is_empty() {
        return Err(anyhow!(errors.join("; ")));
    }
    tch::no_grad(|| {
        for (var, shape, values) in &pairs {
            var.shallow_clone().copy_(&tensor(values, shape, Device::Cpu));
        }
    });
    Ok(pairs.len())
}

/// The tensors that no variable of `stores` would take, sorted: each store is (var store, `under`,
/// `prefix`) as [`load_store`] reads it. A checkpoint with such tensors is not of this model.
pub fn unexpected_tensors<'a>(tensors: &'a HostTensors, stores: &[(&VarStore, &str, &str)]) -> Vec<&'a String> {
    let expected: std::collections::HashSet<String> = stores
        .iter()
        .flat_map(|(vs, under, prefix)| {
            named_params(vs)
                .into_iter()
                .filter_map(move |(k, _)| k.strip_prefix(under).map(|rest| format!("{prefix}{rest}")))
        })
        .collect();
    let mut out: Vec<&String> = tensors.keys().filter(|k| !expected.contains(*k)).collect();
    out.sort();
    out
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
) -> Result<()> {
    let json = serde_json::to_string_pretty(manifest)?;
    let (st, js) = paths(dir, stem);
    save_tensors(&st, tensors, &json)?;
    brainssl_scan::atomic_write(&js, json.as_bytes()).map_err(|e| anyhow!("{}: {e}", js.display()))?;
    Ok(())
}

/// One safetensors file of f32 tensors with `json` under the metadata key `brainssl`, atomically.
pub fn save_tensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)], json: &str) -> Result<()> {
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
                .map_err(|e| anyhow!("{name}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = HashMap::from([("brainssl".to_string(), json.to_string())]);
    let blob = safetensors::serialize(views, Some(meta))?;
    brainssl_scan::atomic_write(path, &blob).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Reads a checkpoint's tensors and manifest (from the safetensors metadata, the authoritative copy).
pub fn load(path: &Path) -> Result<(HostTensors, CheckpointManifest)> {
    let (tensors, json) = load_tensors(path)?;
    Ok((tensors, parse_manifest(path, &json)?))
}

/// A checkpoint's manifest alone, from the safetensors header: no tensor is read.
pub fn read_manifest(path: &Path) -> Result<CheckpointManifest> {
    use std::io::Read;
    let bad = |e: String| anyhow!("{}: not a brainssl checkpoint ({e})", path.display());
    let mut file = std::fs::File::open(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let size = file.metadata().map_err(|e| anyhow!("{}: {e}", path.display()))?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|e| bad(e.to_string()))?;
    let n = u64::from_le_bytes(len);
    if n > size.saturating_sub(8) {
        return Err(bad(format!("a header of {n} bytes in a {size}-byte file")));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header).map_err(|e| bad(e.to_string()))?;
    let header: serde_json::Value = serde_json::from_slice(&header).map_err(|e| bad(e.to_string()))?;
    let json = header["__metadata__"]["brainssl"]
        .as_str()
        .ok_or_else(|| bad("no brainssl metadata".into()))?;
    parse_manifest(path, json)
}

/// The manifest JSON of `path`, refusing other formats by name.
fn parse_manifest(path: &Path, json: &str) -> Result<CheckpointManifest> {
    let bad = |e: String| anyhow!("{}: not a brainssl checkpoint ({e})", path.display());
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    match value.get("format").and_then(|f| f.as_u64()) {
        Some(f) if f == FORMAT as u64 => {}
        Some(f) => {
            bail!(
                "{}: checkpoint format {f}, this build reads {FORMAT} (format 1 is the Burn version's layout: retrain, \
                 or use the brainssl release that wrote it)",
                path.display()
            )
        }
        None => return Err(bad("no format".into())),
    }
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

/// Reads any file written by [`save_tensors`] (pretraining checkpoints, probe weights): tensors and
/// the JSON stored under the metadata key `brainssl`.
pub fn load_tensors(path: &Path) -> Result<(HostTensors, String)> {
    let bytes = std::fs::read(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let bad = |e: String| anyhow!("{}: not a brainssl weights file ({e})", path.display());
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
        let (a, b) = (VarStore::new(Device::Cpu), VarStore::new(Device::Cpu));
        cfg.encoder.init(a.root() / "encoder", &mut Rng::new(1));
        cfg.encoder.init(b.root(), &mut Rng::new(2));
        let manifest = CheckpointManifest {
            brainssl_version: "test".into(),
            format: FORMAT,
            kind: "latest".into(),
            progress: Progress {
                epochs_done: 3,
                micro_steps: 30,
                optimizer_steps: 30,
                spectral: SpectralState {
                    cached: 0.5,
                    lambda: 0.1,
                },
                nonfinite_losses: 0,
                epoch_loss: 1.25,
                epoch_steps_done: 4,
                epoch_loss_sum: 2.5,
                epoch_loss_n: 4,
            },
            data_hash: "abc".into(),
            config: cfg.clone(),
        };
        save(dir.path(), "latest", &store_tensors(&a, "student."), &manifest).unwrap();
        let (tensors, back) = load(&dir.path().join("latest.safetensors")).unwrap();
        assert_eq!(back, manifest);
        assert_eq!(read_manifest(&dir.path().join("latest.safetensors")).unwrap(), manifest);
        assert!(tensors.contains_key("student.encoder.blocks.0.attn.qkv.weight"));
        // into another store, under another prefix: a change of prefix only
        let n = load_store(&b, "", &tensors, "student.encoder.").unwrap();
        assert_eq!(n, named_params(&b).len());
        let strip = |v: Vec<(String, Vec<usize>, Vec<f32>)>, p: &str| {
            v.into_iter()
                .map(|(k, s, x)| (k.trim_start_matches(p).to_string(), s, x))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            strip(store_tensors(&b, ""), ""),
            strip(store_tensors(&a, ""), "encoder.")
        );
        // a model of another shape is refused with the tensor named
        let mut other = VitConfig::sized(VitSize::Tiny);
        other.depth = 2;
        let c = VarStore::new(Device::Cpu);
        other.init(c.root(), &mut Rng::new(0));
        let before = store_tensors(&c, "");
        let err = load_store(&c, "", &tensors, "student.encoder.").unwrap_err();
        assert!(err.to_string().contains("blocks.1"), "{err}");
        // and nothing of it was overwritten: a failed load is no partial load
        assert_eq!(store_tensors(&c, ""), before);
        // every tensor of the checkpoint has a variable in the model it was saved from; the deeper
        // model's extra block has none there
        assert!(unexpected_tensors(&tensors, &[(&a, "", "student.")]).is_empty());
        let deeper: HostTensors = store_tensors(&c, "student.encoder.")
            .into_iter()
            .map(|(k, s, v)| (k, (s, v)))
            .collect();
        let extra = unexpected_tensors(&deeper, &[(&a, "", "student.")]);
        assert!(
            !extra.is_empty() && extra.iter().all(|k| k.starts_with("student.encoder.blocks.1.")),
            "{extra:?}"
        );
        // corrupt files are named
        std::fs::write(dir.path().join("bad.safetensors"), b"nonsense").unwrap();
        assert!(load(&dir.path().join("bad.safetensors"))
            .unwrap_err()
            .to_string()
            .contains("bad.safetensors"));
        assert!(read_manifest(&dir.path().join("bad.safetensors"))
            .unwrap_err()
            .to_string()
            .contains("bad.safetensors"));
    }
}
