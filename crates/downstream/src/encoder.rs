//! Encoders for downstream use: from a pretraining checkpoint, or freshly initialised. Each owns its
//! variable store (paths as the reference's encoder: `patch_embed.proj.weight`, `blocks.N.…`).

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use brainssl_backend::tch::nn::VarStore;
use brainssl_backend::Device;
use brainssl_models::{VisionTransformer3d, VitConfig};
use brainssl_prep::Rng;
use brainssl_train::checkpoint::{self, load_store};

/// Which encoder of a pretraining checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointKey {
    /// The context encoder (the reference's default).
    Student,
    /// The JEPA EMA target encoder.
    Teacher,
}

impl std::str::FromStr for CheckpointKey {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "student" => Ok(CheckpointKey::Student),
            "teacher" => Ok(CheckpointKey::Teacher),
            other => bail!("unknown checkpoint key '{other}': use student or teacher"),
        }
    }
}

impl CheckpointKey {
    fn prefix(self) -> &'static str {
        match self {
            CheckpointKey::Student => "student.encoder.",
            CheckpointKey::Teacher => "teacher.",
        }
    }
}

pub struct Encoder {
    pub vs: VarStore,
    pub vit: VisionTransformer3d,
    pub cfg: VitConfig,
}

impl Encoder {
    /// The encoder of a `brainssl pretrain` checkpoint. Positional embeddings are rebuilt for any
    /// input grid, so the downstream resolution may differ from pretraining.
    pub fn load(path: &Path, key: CheckpointKey, device: Device) -> Result<Self> {
        let (tensors, manifest) = checkpoint::load(path)?;
        let prefix = key.prefix();
        if !tensors.keys().any(|k| k.starts_with(prefix)) {
            bail!("{}: no {key:?} encoder in this checkpoint", path.display());
        }
        let enc = Self::random(&manifest.config.encoder, 0, device);
        load_store(&enc.vs, "", &tensors, prefix).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        Ok(enc)
    }

    /// A randomly initialised encoder (training from scratch, or the random-encoder baseline).
    pub fn random(cfg: &VitConfig, seed: u64, device: Device) -> Self {
        let vs = VarStore::new(device);
        let vit = cfg.init(vs.root(), &mut Rng::new(seed));
        Encoder {
            vs,
            vit,
            cfg: cfg.clone(),
        }
    }

    /// Stops (or restarts) gradients into the encoder's variables.
    pub fn set_trainable(&mut self, trainable: bool) {
        if trainable {
            self.vs.unfreeze();
        } else {
            self.vs.freeze();
        }
    }
}
