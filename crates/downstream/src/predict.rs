//! A trained classifier (`RUN/best.safetensors` of `probe`, `finetune` or `baseline`) applied to
//! new scans: the model is rebuilt from the architecture and recipe saved with its weights, every
//! saved tensor must find its variable (and the other way round), and scans go through the
//! recipe's evaluation-mode preprocessing, as the test split did.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use brainssl_backend::tch::nn::VarStore;
use brainssl_backend::{Device, Precision};
use brainssl_data::ManifestRow;
use brainssl_models::VitConfig;
use brainssl_train::checkpoint::{load_store, load_tensors, unexpected_tensors, HostTensors};
use serde::Deserialize;

use crate::baseline::ResNetClassifier;
use crate::config::DownstreamConfig;
use crate::encoder::Encoder;
use crate::fit::{predict, Part, Splits};
use crate::probe::Downstream;
use crate::source::ImageBatches;
use crate::standardise::Moments;

/// What `save_weights` stores beside the tensors.
#[derive(Deserialize)]
struct SavedMeta {
    config: DownstreamConfig,
    #[serde(default)]
    encoder: Option<VitConfig>,
    best_epoch: usize,
}

/// A classifier read back from its weights file.
pub enum TrainedModel {
    /// ViT encoder and attentive classifier (frozen probe or fine-tuned).
    Vit(Box<Downstream>),
    /// The supervised ResNet-50 3-D.
    ResNet(ResNetClassifier),
}

pub struct Trained {
    pub cfg: DownstreamConfig,
    pub model: TrainedModel,
    /// The selected epoch (counted from 1) whose weights these are.
    pub best_epoch: usize,
}

/// Copies every tensor into the variable that carries its name (`stores`: each var store with the
/// prefix its variables are saved under, as `load_store` takes them); a variable without a tensor,
/// a tensor without a variable or a shape that differs is an error naming it.
fn load_exactly(stores: &[(&VarStore, &str, &str)], tensors: &HostTensors, path: &Path) -> Result<()> {
    let mut problems: Vec<String> = unexpected_tensors(tensors, stores)
        .into_iter()
        .map(|k| format!("unexpected tensor {k}"))
        .collect();
    for (vs, under, prefix) in stores {
        if let Err(e) = load_store(vs, under, tensors, prefix) {
            problems.push(e.to_string());
        }
    }
    if !problems.is_empty() {
        bail!(
            "{}: the weights do not fit the saved architecture: {}",
            path.display(),
            problems.join("; ")
        );
    }
    Ok(())
}

impl Trained {
    /// Rebuilds the classifier saved at `path` on `device`.
    pub fn load(path: &Path, device: Device) -> Result<Trained> {
        let (tensors, json) = load_tensors(path)?;
        let meta: SavedMeta = serde_json::from_str(&json)
            .map_err(|e| anyhow!("{}: not a classifier's weights file ({e})", path.display()))?;
        let cfg = meta.config;
        let classes = cfg.classifier.num_classes;
        let model = if tensors.keys().any(|k| k.starts_with("net.")) {
            let m = ResNetClassifier::new(classes, cfg.seed, device);
            load_exactly(&[(&m.vs, "", "")], &tensors, path)?;
            TrainedModel::ResNet(m)
        } else {
            let enc_cfg = meta.encoder.ok_or_else(|| {
                anyhow!(
                    "{}: saved without its encoder's architecture (by an earlier brainssl): train the classifier again",
                    path.display()
                )
            })?;
            let mut m = Downstream::new(&cfg, Encoder::random(&enc_cfg, 0, device), true)?;
            if tensors.keys().any(|k| k.starts_with("standardise.")) {
                m.set_standardiser(&Moments::new(enc_cfg.embed_dim));
            }
            load_exactly(&[(&m.encoder.vs, "", "encoder."), (&m.head, "", "")], &tensors, path)?;
            TrainedModel::Vit(Box::new(m))
        };
        Ok(Trained {
            cfg,
            model,
            best_epoch: meta.best_epoch,
        })
    }

    /// Class probabilities of `rows`, in row order, with the recipe's evaluation-mode input.
    pub fn predict(&self, rows: &[ManifestRow], device: Device, precision: Precision) -> Result<Vec<Vec<f64>>> {
        let splits = Splits {
            train: Vec::new(),
            val: Vec::new(),
            test: rows.to_vec(),
        };
        let source = ImageBatches::new(&self.cfg, &splits);
        let probs = match &self.model {
            TrainedModel::Vit(m) => predict(m.as_ref(), &source, Part::Test, device, precision)?,
            TrainedModel::ResNet(m) => predict(m, &source, Part::Test, device, precision)?,
        };
        if probs.len() != rows.len() {
            bail!("{} of {} scans could be read", probs.len(), rows.len());
        }
        Ok(probs)
    }
}
