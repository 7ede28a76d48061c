//! Frozen probes and fine-tuning (SPEC 5.2-5.3): cross-entropy, AdamW, warm-up + cosine schedules,
//! clipping after warm-up, validation on the full validation set every epoch, the best epoch chosen
//! by validation AUROC, test metrics from that epoch's weights (D4).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use brainssl_backend::burn;
use brainssl_backend::burn::module::Module;
use brainssl_backend::burn::optim::GradientsParams;
use brainssl_backend::burn::tensor::activation::{log_softmax, softmax};
use brainssl_backend::burn::tensor::Int;
use brainssl_backend::{Device, Tensor, TensorData};
use brainssl_data::loader::{epoch_iter, Dataset, LoaderConfig};
use brainssl_data::ManifestRow;
use brainssl_eval::{bootstrap, Metrics};
use brainssl_models::{AttentiveClassifier, VisionTransformer3d};
use brainssl_prep::Rng;
use brainssl_train::checkpoint::module_tensors;
use brainssl_train::optim::AdamW;
use brainssl_train::schedule::{CosineDecay, WarmupCosine};
use indicatif::ProgressBar;
use serde::Serialize;

use crate::config::{DownstreamConfig, Mode};

/// What the training loop needs from a model: logits for a training batch, probabilities in
/// evaluation mode, and how its parameters are clipped and scaled.
pub trait Classifier: Module + Clone {
    /// Logits [B, C] of a training batch `x` (on the autodiff device) in `epoch`.
    fn train_logits(&self, x: Tensor<5>, epoch: usize, rng: &mut Rng) -> Tensor<2>;
    /// Class probabilities [B, C] (called on the `valid()` model).
    fn probabilities(&self, x: Tensor<5>) -> Tensor<2>;
    /// Parameter path prefixes clipped separately, with their thresholds (0: no clipping).
    fn clip_groups(&self, cfg: &DownstreamConfig) -> Vec<(&'static str, f64)>;
    /// Learning-rate multiplier of a parameter (layer-wise decay).
    fn lr_scale(&self, _path: &str) -> f64 {
        1.0
    }
}

/// Encoder and attentive classifier; parameter paths `encoder.…`, `classifier.…`.
#[derive(Module, Debug)]
pub struct Downstream {
    pub encoder: VisionTransformer3d,
    pub classifier: AttentiveClassifier,
    /// The encoder runs frozen (no gradients) in epochs below this (usize::MAX: a frozen probe).
    #[module(skip)]
    pub frozen_epochs: usize,
    #[module(skip)]
    pub layer_decay: Option<f64>,
}

impl Downstream {
    /// A fresh classifier on `encoder` (already on the autodiff device) for `cfg`; without a
    /// pretrained encoder the encoder warm-up is 0 (SPEC 5.2).
    pub fn new(cfg: &DownstreamConfig, encoder: VisionTransformer3d, pretrained: bool) -> Result<Self> {
        let d = encoder.embed_dim();
        cfg.validate(d).map_err(|e| anyhow!(e))?;
        let device = encoder.patch_embed.weight.val().device();
        let classifier = cfg.classifier.init(d, &mut Rng::new(cfg.seed ^ 0x636c_6173), &device);
        let frozen_epochs = match cfg.mode {
            Mode::Frozen => usize::MAX,
            Mode::Finetune if pretrained => cfg.encoder_warmup,
            Mode::Finetune => 0,
        };
        Ok(Downstream {
            encoder,
            classifier,
            frozen_epochs,
            layer_decay: cfg.layer_decay,
        })
    }
}

impl Classifier for Downstream {
    fn train_logits(&self, x: Tensor<5>, epoch: usize, _rng: &mut Rng) -> Tensor<2> {
        let tokens = if epoch < self.frozen_epochs {
            // no graph through the encoder: it runs on the plain device
            let device = x.device();
            Tensor::from_inner(self.encoder.valid().forward(x.inner(), None)).to_device(&device)
        } else {
            self.encoder.forward(x, None)
        };
        self.classifier.forward(tokens)
    }

    fn probabilities(&self, x: Tensor<5>) -> Tensor<2> {
        softmax(self.classifier.forward(self.encoder.forward(x, None)), 1)
    }

    fn clip_groups(&self, cfg: &DownstreamConfig) -> Vec<(&'static str, f64)> {
        vec![("classifier.", cfg.clip_classifier), ("encoder.", cfg.clip_encoder)]
    }

    fn lr_scale(&self, path: &str) -> f64 {
        let depth = self.encoder.blocks.len();
        match self.layer_decay {
            Some(ld) if path.starts_with("encoder.") => ld.powi((depth + 1 - layer_id(path, depth)) as i32),
            _ => 1.0,
        }
    }
}

/// Train, validation and test rows (subject-disjoint).
pub struct Splits {
    pub train: Vec<ManifestRow>,
    pub val: Vec<ManifestRow>,
    pub test: Vec<ManifestRow>,
}

/// Test outcome of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub best_epoch: usize,
    pub val: Metrics,
    pub test: Metrics,
}

/// Layer id for layer-wise lr decay (SPEC 5.2): patch embedding 0, block i → i+1, the rest depth+1.
fn layer_id(path: &str, depth: usize) -> usize {
    let rest = path.strip_prefix("encoder.").unwrap_or(path);
    if rest.starts_with("patch_embed") {
        0
    } else if let Some(b) = rest.strip_prefix("blocks.") {
        b.split('.')
            .next()
            .and_then(|i| i.parse::<usize>().ok())
            .map_or(depth + 1, |i| i + 1)
    } else {
        depth + 1
    }
}

/// Mean cross-entropy of logits [B, C] against class indices.
fn cross_entropy(logits: Tensor<2>, labels: &[usize]) -> Tensor<1> {
    let [b, _] = logits.dims();
    let idx: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [b, 1]), &logits.device());
    log_softmax(logits, 1).gather(1, idx).mean().neg()
}

fn labels_of(rows: &[ManifestRow], classes: usize, what: &str) -> Result<()> {
    if let Some(r) = rows.iter().find(|r| r.label < 0 || r.label as usize >= classes) {
        bail!(
            "{what}: {} has label {}, outside 0..{classes}",
            r.path.display(),
            r.label
        );
    }
    Ok(())
}

/// Probabilities of every row in evaluation mode, in row order. A scan that fails to load is an
/// error: metrics over part of a split would be silently wrong.
pub fn predict<M: Classifier>(
    model: &M,
    rows: &[ManifestRow],
    cfg: &DownstreamConfig,
    device: &Device,
) -> Result<Vec<Vec<f64>>> {
    let ds = Arc::new(Dataset {
        rows: rows.to_vec(),
        prep: cfg.prep.clone(),
        augment: None,
        cache: None,
    });
    let loader = LoaderConfig {
        batch_size: cfg.batch_size,
        shuffle: false,
        drop_last: false,
        training: false,
        workers: cfg.workers.max(1),
        prefetch: 2,
        seed: cfg.seed,
    };
    let model = model.valid();
    let mut out = Vec::with_capacity(rows.len());
    for batch in epoch_iter(ds.clone(), &loader, 0) {
        if let Some((i, why)) = batch.failures.first() {
            bail!("{}: {why}", ds.rows[*i].path.display());
        }
        let x = Tensor::<5>::from_data(TensorData::new(batch.data, batch.shape), device);
        let p = model
            .probabilities(x)
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .map_err(|e| anyhow!("{e:?}"))?;
        let c = p.len() / batch.shape[0];
        out.extend(p.chunks(c).map(|r| r.to_vec()));
    }
    Ok(out)
}

/// Writes `subject_id,path,label,p0,...` (the `metrics` command's input format).
pub fn write_predictions(path: &Path, rows: &[ManifestRow], probs: &[Vec<f64>]) -> Result<()> {
    let c = probs.first().map_or(0, |p| p.len());
    let mut text = format!(
        "subject_id,path,label,{}\n",
        (0..c).map(|k| format!("p{k}")).collect::<Vec<_>>().join(",")
    );
    for (r, p) in rows.iter().zip(probs) {
        let ps: Vec<String> = p.iter().map(|v| format!("{v:.8}")).collect();
        text.push_str(&format!(
            "{},{},{},{}\n",
            r.subject_id,
            r.path.display(),
            r.label,
            ps.join(",")
        ));
    }
    brainssl_scan::atomic_write(path, text.as_bytes()).with_context(|| path.display().to_string())
}

fn metrics_of(rows: &[ManifestRow], probs: &[Vec<f64>]) -> Result<Metrics> {
    let labels: Vec<usize> = rows.iter().map(|r| r.label as usize).collect();
    Metrics::compute(probs, &labels).map_err(|e| anyhow!(e))
}

/// Trains `model` (on the autodiff device of `base`) and evaluates it on the test split.
pub fn train<M: Classifier>(
    cfg: &DownstreamConfig,
    mut model: M,
    splits: &Splits,
    out: &Path,
    base: &Device,
    progress: bool,
) -> Result<Outcome> {
    let c = cfg.classifier.num_classes;
    for (rows, what) in [(&splits.train, "train"), (&splits.val, "val"), (&splits.test, "test")] {
        if rows.is_empty() {
            bail!("the {what} split is empty");
        }
        labels_of(rows, c, what)?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    brainssl_scan::atomic_write(&out.join("config.toml"), cfg.to_toml().as_bytes())?;
    let device = base.clone().autodiff();
    let base = base.clone();
    let mut rng = Rng::new(cfg.seed ^ 0x6472_6f70);

    let ds = Arc::new(Dataset {
        rows: splits.train.clone(),
        prep: cfg.prep.clone(),
        augment: cfg.augment.clone(),
        cache: None,
    });
    let loader = LoaderConfig {
        batch_size: cfg.batch_size,
        shuffle: true,
        drop_last: false,
        training: true,
        workers: cfg.workers.max(1),
        prefetch: 2,
        seed: cfg.seed,
    };
    let ipe = ds.batches(&loader, 0).len();
    let total = ((cfg.epochs * ipe) as f64 * cfg.lr_schedule_factor).round() as usize;
    let lrs = WarmupCosine {
        start: cfg.start_lr,
        peak: cfg.lr,
        end: cfg.final_lr,
        warmup_steps: cfg.warmup_epochs * ipe,
        total_steps: total,
    };
    let wds = CosineDecay {
        start: cfg.weight_decay,
        end: cfg.final_weight_decay,
        total_steps: total,
    };
    let mut opt = AdamW::new(cfg.betas, cfg.eps);
    let mut log = "epoch,train_loss,val_accuracy,val_macro_f1,val_f1_positive,val_auroc,lr,seconds\n".to_string();
    let pb = if progress {
        ProgressBar::new(cfg.epochs as u64)
    } else {
        ProgressBar::hidden()
    };
    let mut best: Option<(f64, usize, M, Metrics)> = None;
    let mut micro = 0usize;
    for epoch in 0..cfg.epochs {
        let started = Instant::now();
        let (mut loss_sum, mut loss_n) = (0.0, 0usize);
        let mut acc: Option<GradientsParams> = None;
        let mut pending = 0usize;
        let mut lr = cfg.start_lr;
        for (itr, batch) in epoch_iter(ds.clone(), &loader, epoch as u64).enumerate() {
            for (i, why) in &batch.failures {
                pb.println(format!(
                    "warning: skipped {} in epoch {epoch}: {why}",
                    ds.rows[*i].path.display()
                ));
            }
            if batch.shape[0] == 0 {
                continue;
            }
            lr = lrs.at(micro + 1);
            let wd = wds.at(micro + 1);
            micro += 1;
            let labels: Vec<usize> = batch.labels.iter().map(|&l| l as usize).collect();
            let x = Tensor::<5>::from_data(TensorData::new(batch.data, batch.shape), &device);
            let loss = cross_entropy(model.train_logits(x, epoch, &mut rng), &labels);
            let value = loss.clone().into_scalar::<f32>() as f64;
            if !value.is_finite() {
                pb.println(format!(
                    "warning: non-finite loss at epoch {epoch} step {itr}: step skipped"
                ));
                continue;
            }
            loss_sum += value;
            loss_n += 1;
            let loss = if cfg.accum_steps > 1 {
                loss.div_scalar(cfg.accum_steps as f64)
            } else {
                loss
            };
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            acc = Some(match acc.take() {
                None => grads,
                Some(mut a) => {
                    brainssl_train::optim::add_grads(&mut a, grads, &model);
                    a
                }
            });
            pending += 1;
            if pending == cfg.accum_steps {
                let grads = acc.take().expect("accumulated");
                let clip_on = epoch > cfg.warmup_epochs;
                let groups = model.clip_groups(cfg);
                let prefixes: Vec<&str> = groups.iter().map(|g| g.0).collect();
                let clips: Vec<Option<f64>> = groups.iter().map(|g| (clip_on && g.1 > 0.0).then_some(g.1)).collect();
                let scaled = model.clone();
                let scale = |path: &str| scaled.lr_scale(path);
                model = opt.step_scaled(model, &grads, lr, wd, &prefixes, &clips, &scale).0;
                pending = 0;
            }
        }
        // leftover accumulation carries into the next epoch, as in the reference (SPEC 5.2)
        let probs = predict(&model, &splits.val, cfg, &base)?;
        let m = metrics_of(&splits.val, &probs)?;
        let train_loss = if loss_n > 0 { loss_sum / loss_n as f64 } else { f64::NAN };
        log.push_str(&format!(
            "{epoch},{train_loss:.6},{:.6},{:.6},{},{:.6},{lr:.4e},{:.1}\n",
            m.accuracy,
            m.macro_f1,
            m.f1_positive.map(|f| format!("{f:.6}")).unwrap_or_default(),
            m.auroc,
            started.elapsed().as_secs_f64()
        ));
        brainssl_scan::atomic_write(&out.join("log.csv"), log.as_bytes())?;
        if best.as_ref().is_none_or(|(a, ..)| m.auroc > *a) {
            best = Some((m.auroc, epoch, model.clone(), m.clone()));
        }
        pb.set_message(format!(
            "epoch {} loss {train_loss:.4} val AUROC {:.4}",
            epoch + 1,
            m.auroc
        ));
        pb.inc(1);
    }
    pb.finish_and_clear();
    let (_, best_epoch, best_model, val) = best.ok_or_else(|| anyhow!("no epoch ran"))?;
    let mut tensors = module_tensors(&best_model, "");
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    save_weights(&out.join("best.safetensors"), &tensors, cfg, best_epoch)?;
    let probs = predict(&best_model, &splits.test, cfg, &base)?;
    write_predictions(&out.join("test_predictions.csv"), &splits.test, &probs)?;
    let test = metrics_of(&splits.test, &probs)?;
    let labels: Vec<usize> = splits.test.iter().map(|r| r.label as usize).collect();
    let groups: Vec<String> = splits.test.iter().map(|r| r.subject_id.clone()).collect();
    let ci = bootstrap(&probs, &labels, &groups, 1000, cfg.seed);
    let outcome = Outcome { best_epoch, val, test };
    let json = serde_json::json!({ "best_epoch": best_epoch, "val": outcome.val, "test": outcome.test, "test_bootstrap_95": ci });
    brainssl_scan::atomic_write(
        &out.join("metrics.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    Ok(outcome)
}

fn save_weights(
    path: &Path,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    cfg: &DownstreamConfig,
    epoch: usize,
) -> Result<()> {
    let meta = serde_json::json!({ "config": cfg, "best_epoch": epoch, "brainssl_version": env!("CARGO_PKG_VERSION") });
    brainssl_train::checkpoint::save_tensors(path, tensors, &meta.to_string()).map_err(|e| anyhow!(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_ids_follow_the_reference() {
        assert_eq!(layer_id("encoder.patch_embed.weight", 12), 0);
        assert_eq!(layer_id("encoder.blocks.0.attn.qkv.weight", 12), 1);
        assert_eq!(layer_id("encoder.blocks.11.mlp.fc2.bias", 12), 12);
        assert_eq!(layer_id("encoder.norm.gamma", 12), 13);
    }

    #[test]
    fn cross_entropy_closed_form() {
        let d = Device::flex();
        let logits = Tensor::<2>::from_data(TensorData::new(vec![2.0f32, 0.0, 0.0, 1.0], [2, 2]), &d);
        let l = cross_entropy(logits, &[0, 0]).into_scalar::<f32>() as f64;
        // −½[log σ(2) + log σ(−1)] with σ the logistic function
        let want = -0.5 * ((1.0 / (1.0 + (-2f64).exp())).ln() + (1.0 / (1.0 + 1f64.exp())).ln());
        assert!((l - want).abs() < 1e-6, "{l} vs {want}");
    }
}

#[cfg(test)]
mod learning {
    use super::*;
    use brainssl_models::ClassifierConfig;

    /// The classifier, loss and optimiser learn a separable problem: tokens carry the class in a pattern.
    #[test]
    fn classifier_learns_separable_tokens() {
        let device = Device::flex().autodiff();
        let clf = ClassifierConfig {
            depth: 1,
            heads: 2,
            num_classes: 2,
        }
        .init(8, &mut Rng::new(1), &device);
        let mut model = clf;
        let mut opt = AdamW::new((0.9, 0.999), 1e-6);
        let mut rng = Rng::new(2);
        let mut last = f64::NAN;
        let mut first = f64::NAN;
        for step in 0..150 {
            let labels: Vec<usize> = (0..8).map(|i| (i + step) % 2).collect();
            let mut v = Vec::new();
            for &l in &labels {
                for _ in 0..5 {
                    // a pattern across features (a constant offset would vanish in the LayerNorm)
                    for k in 0..8 {
                        let sign = if (k < 4) == (l == 1) { 1.0 } else { -1.0 };
                        v.push(sign + 0.3 * rng.normal() as f32);
                    }
                }
            }
            let x = Tensor::<3>::from_data(TensorData::new(v, [8, 5, 8]), &device);
            let loss = cross_entropy(model.forward(x), &labels);
            let value = loss.clone().into_scalar::<f32>() as f64;
            if step == 0 {
                first = value;
            }
            last = value;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = opt.step(model, &grads, 1e-3, 0.0, &[""], Some(1.0)).0;
        }
        assert!(last < 0.1 * first, "loss {first} → {last}");
    }
}
