//! Encoders for downstream use: from a pretraining checkpoint, or freshly initialised.

use std::path::Path;

use anyhow::{anyhow, Result};
use brainssl_backend::Device;
use brainssl_models::{VisionTransformer3d, VitConfig};
use brainssl_prep::Rng;
use brainssl_train::checkpoint;

/// The encoder of a `brainssl pretrain` checkpoint (`student` = the context encoder, or the JEPA
/// `teacher`), with its config. Positional embeddings are rebuilt for any input grid, so the
/// downstream resolution may differ from pretraining.
pub fn load_encoder(path: &Path, key: &str, device: &Device) -> Result<(VitConfig, VisionTransformer3d)> {
    let (tensors, manifest) = checkpoint::load(path).map_err(|e| anyhow!(e))?;
    let cfg = manifest.config.encoder.clone();
    let prefix = match key {
        "student" => "student.encoder.",
        "teacher" => "teacher.",
        other => return Err(anyhow!("unknown checkpoint key '{other}': use student or teacher")),
    };
    if !tensors.keys().any(|k| k.starts_with(prefix)) {
        return Err(anyhow!("{}: no '{key}' encoder in this checkpoint", path.display()));
    }
    let blank = cfg.init(&mut Rng::new(0), device);
    let enc = checkpoint::load_module(blank, &tensors, prefix).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok((cfg, enc))
}

/// A randomly initialised encoder (training from scratch, or the random-encoder baseline).
pub fn random_encoder(cfg: &VitConfig, seed: u64, device: &Device) -> VisionTransformer3d {
    cfg.init(&mut Rng::new(seed), device)
}
