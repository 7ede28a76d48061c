//! The encoder + attentive classifier (docs/method.md#attentive-classifier) as frozen probe or
//! fine-tuned model (docs/evaluation.md#frozen-and-fine-tuned), and the entry points that train it:
//! on scans, or for a frozen probe on cached encoder tokens.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use brainssl_backend::tch::nn::VarStore;
use brainssl_backend::{tch, Device, Kind, Tensor};
use brainssl_models::{named_params, AttentiveClassifier};
use brainssl_prep::Rng;

use crate::config::{DownstreamConfig, Mode};
use crate::embed::{token_moments, EmbedPlan};
use crate::encoder::Encoder;
use crate::fit::{fit, save_weights, Classifier, Outcome, Splits};
use crate::source::{ImageBatches, TokenBatches};
use crate::standardise::{Moments, TokenStandardiser};

/// Encoder and attentive classifier; saved names `encoder.…`, `classifier.…` (and `standardise.…`).
pub struct Downstream {
    pub encoder: Encoder,
    /// The classifier's (and the statistics') variables.
    pub head: VarStore,
    /// Frozen probes with `standardise_tokens`: fixed per-channel statistics (set by [`run`]).
    pub standardise: Option<TokenStandardiser>,
    pub classifier: AttentiveClassifier,
    /// The encoder runs without gradients in epochs below this (usize::MAX: a frozen probe).
    pub frozen_epochs: usize,
    pub layer_decay: Option<f64>,
}

impl Downstream {
    /// A fresh classifier on `encoder` for `cfg`; without a pretrained encoder the encoder warm-up
    /// is 0 (docs/evaluation.md#frozen-and-fine-tuned). A frozen probe's encoder takes no
    /// gradients.
    pub fn new(cfg: &DownstreamConfig, mut encoder: Encoder, pretrained: bool) -> Result<Self> {
        let d = encoder.vit.embed_dim();
        cfg.validate(d)?;
        let head = VarStore::new(encoder.vs.device());
        let classifier = cfg
            .classifier
            .init(head.root() / "classifier", d, &mut Rng::new(cfg.seed ^ 0x636c_6173));
        let frozen_epochs = match cfg.mode {
            Mode::Frozen => usize::MAX,
            Mode::Finetune if pretrained => cfg.encoder_warmup,
            Mode::Finetune => 0,
        };
        encoder.set_trainable(cfg.mode == Mode::Finetune);
        Ok(Downstream {
            encoder,
            head,
            standardise: None,
            classifier,
            frozen_epochs,
            layer_decay: cfg.layer_decay,
        })
    }

    /// Fixes the token statistics the classifier sees.
    pub fn set_standardiser(&mut self, moments: &Moments) {
        self.standardise = Some(TokenStandardiser::new(self.head.root() / "standardise", moments));
    }
}

fn standardised(s: Option<&TokenStandardiser>, tokens: Tensor) -> Tensor {
    match s {
        Some(s) => s.forward(&tokens),
        None => tokens,
    }
}

impl Classifier for Downstream {
    fn train_logits(&self, x: &Tensor, epoch: usize, _rng: &mut Rng) -> Tensor {
        let tokens = if epoch < self.frozen_epochs {
            tch::no_grad(|| self.encoder.vit.forward(x, None))
        } else {
            self.encoder.vit.forward(x, None)
        };
        self.classifier
            .forward(&standardised(self.standardise.as_ref(), tokens))
    }

    fn probabilities(&self, x: &Tensor) -> Tensor {
        let tokens = standardised(self.standardise.as_ref(), self.encoder.vit.forward(x, None));
        self.classifier.forward(&tokens).softmax(1, Kind::Float)
    }

    fn encoder_config(&self) -> Option<&brainssl_models::VitConfig> {
        Some(&self.encoder.cfg)
    }

    fn variables(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = named_params(&self.encoder.vs)
            .into_iter()
            .map(|(k, t)| (format!("encoder.{k}"), t))
            .collect();
        v.extend(named_params(&self.head));
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn clip_groups(&self, cfg: &DownstreamConfig) -> Vec<(&'static str, f64)> {
        vec![("classifier.", cfg.clip_classifier), ("encoder.", cfg.clip_encoder)]
    }

    fn lr_scale(&self, path: &str) -> f64 {
        let depth = self.encoder.vit.blocks.len();
        match self.layer_decay {
            Some(ld) if path.starts_with("encoder.") => ld.powi((depth + 1 - layer_id(path, depth)) as i32),
            _ => 1.0,
        }
    }
}

/// Layer id for layer-wise lr decay (docs/method.md#parameter-groups): patch embedding 0, block
/// i → i+1, the rest depth+1.
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

/// A frozen probe on cached tokens: the classifier of a [`Downstream`], fed encoder tokens [B, N, D].
pub struct TokenProbe<'a> {
    pub model: &'a Downstream,
}

impl Classifier for TokenProbe<'_> {
    fn train_logits(&self, x: &Tensor, _epoch: usize, _rng: &mut Rng) -> Tensor {
        let m = self.model;
        m.classifier
            .forward(&standardised(m.standardise.as_ref(), x.shallow_clone()))
    }

    fn probabilities(&self, x: &Tensor) -> Tensor {
        self.train_logits(x, 0, &mut Rng::new(0)).softmax(1, Kind::Float)
    }

    fn variables(&self) -> Vec<(String, Tensor)> {
        named_params(&self.model.head)
    }

    fn clip_groups(&self, cfg: &DownstreamConfig) -> Vec<(&'static str, f64)> {
        vec![("classifier.", cfg.clip_classifier)]
    }
}

/// Trains a model that takes scans on `splits` (augmented training input), saves the selected
/// epoch's weights as `best.safetensors` and evaluates them on the test split.
pub fn train<M: Classifier>(
    cfg: &DownstreamConfig,
    model: &M,
    splits: &Splits,
    out: &Path,
    device: Device,
    progress: bool,
) -> Result<Outcome> {
    let o = fit(
        cfg,
        model,
        &ImageBatches::new(cfg, splits),
        splits,
        out,
        device,
        progress,
    )?;
    save_weights(&out.join("best.safetensors"), model, cfg, o.best_epoch)?;
    Ok(o)
}

/// A probe or fine-tuning run of `model`. Frozen probes may cache the encoder's tokens
/// (`feature_cache`, see [`TokenBatches`]) and standardise them with training-set statistics
/// (`standardise_tokens`). The saved weights hold encoder, statistics and classifier either way.
pub fn run(
    cfg: &DownstreamConfig,
    mut model: Downstream,
    splits: &Splits,
    out: &Path,
    progress: bool,
) -> Result<Outcome> {
    let frozen = cfg.mode == Mode::Frozen;
    let device = model.encoder.vs.device();
    if !(cfg.feature_cache && frozen) {
        if cfg.standardise_tokens && frozen {
            let plan = EmbedPlan {
                prep: &cfg.prep,
                batch_size: cfg.batch_size,
                precision: cfg.precision.resolve(device),
            };
            let m = token_moments(&model.encoder, &splits.train, plan)?;
            model.set_standardiser(&m);
        }
        return train(cfg, &model, splits, out, device, progress);
    }
    let started = Instant::now();
    let tokens = TokenBatches::new(&model.encoder, cfg, splits)?;
    if progress {
        eprintln!(
            "cached the frozen encoder's tokens of {} scans ({:.1} MB) in {:.1} s",
            splits.train.len() + splits.val.len() + splits.test.len(),
            tokens.bytes() as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
    }
    if cfg.standardise_tokens {
        model.set_standardiser(&tokens.train_moments());
    }
    let o = fit(
        cfg,
        &TokenProbe { model: &model },
        &tokens,
        splits,
        out,
        device,
        progress,
    )?;
    save_weights(&out.join("best.safetensors"), &model, cfg, o.best_epoch)?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_ids_follow_the_reference() {
        assert_eq!(layer_id("encoder.patch_embed.weight", 12), 0);
        assert_eq!(layer_id("encoder.blocks.0.attn.qkv.weight", 12), 1);
        assert_eq!(layer_id("encoder.blocks.11.mlp.fc2.bias", 12), 12);
        assert_eq!(layer_id("encoder.norm.weight", 12), 13);
    }
}

#[cfg(test)]
mod learning {
    use super::*;
    use crate::fit::cross_entropy;
    use brainssl_backend::{scalar, tensor};
    use brainssl_models::ClassifierConfig;
    use brainssl_train::optim::{zero_grads, AdamW};

    /// The classifier, loss and optimiser learn a separable problem: tokens carry the class in a pattern.
    #[test]
    fn classifier_learns_separable_tokens() {
        let vs = VarStore::new(Device::Cpu);
        let model = ClassifierConfig {
            depth: 1,
            heads: 2,
            num_classes: 2,
        }
        .init(vs.root(), 8, &mut Rng::new(1));
        let params = named_params(&vs);
        let mut opt = AdamW::new((0.9, 0.999), 1e-6);
        let mut rng = Rng::new(2);
        let (mut first, mut last) = (f64::NAN, f64::NAN);
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
            let x = tensor(&v, &[8, 5, 8], Device::Cpu);
            zero_grads(&params);
            let loss = cross_entropy(&model.forward(&x), &labels);
            let value = scalar(&loss);
            if step == 0 {
                first = value;
            }
            last = value;
            loss.backward();
            opt.step(&params, 1e-3, 0.0, &[""], Some(1.0));
        }
        assert!(last < 0.1 * first, "loss {first} → {last}");
    }
}
#[cfg(test)]
mod cache {
    use super::*;
    use brainssl_data::synth::{generate, SynthConfig, SynthTask};
    use brainssl_train::PretrainConfig;

    /// A cached, standardised probe's saved weights (encoder, statistics, classifier), loaded
    /// again and run on the scans as a whole model, reproduce its test predictions: the cached
    /// tokens are the encoder's evaluation-mode output and the statistics travel with the probe.
    #[test]
    fn cached_probe_weights_reproduce_its_predictions() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SynthConfig {
            size: 32,
            ..SynthConfig::new(SynthTask::Ad, 12, 3)
        };
        let m = generate(&cfg, dir.path(), &indicatif::ProgressBar::hidden()).unwrap();
        let split = Splits {
            train: m.rows[..6].to_vec(),
            val: m.rows[6..9].to_vec(),
            test: m.rows[9..].to_vec(),
        };
        let mut dcfg = DownstreamConfig::paper(Mode::Frozen, 2, true);
        (dcfg.prep.depth, dcfg.prep.size, dcfg.epochs, dcfg.workers) = (16, 32, 4, 1);
        (dcfg.feature_cache, dcfg.standardise_tokens) = (true, true);
        let vit = PretrainConfig::preset("tiny-mae").unwrap().encoder;
        dcfg.classifier.heads = vit.heads;
        let fresh = || Downstream::new(&dcfg, Encoder::random(&vit, 5, Device::Cpu), false).unwrap();
        let out = dir.path().join("probe");
        run(&dcfg, fresh(), &split, &out, false).unwrap();

        let (tensors, _) = brainssl_train::checkpoint::load_tensors(&out.join("best.safetensors")).unwrap();
        let mut loaded = fresh();
        loaded.set_standardiser(&Moments::new(vit.embed_dim));
        let n = brainssl_train::checkpoint::load_store(&loaded.encoder.vs, "", &tensors, "encoder.").unwrap()
            + brainssl_train::checkpoint::load_store(&loaded.head, "", &tensors, "").unwrap();
        assert_eq!(n, tensors.len(), "every saved tensor was loaded");
        let stats = brainssl_backend::to_vec(&loaded.standardise.as_ref().unwrap().inv_std);
        assert!(
            stats.iter().all(|&v| v.is_finite() && v > 0.0 && v != 1e6),
            "statistics were saved"
        );
        let images = ImageBatches::new(&dcfg, &split);
        let mut again = Vec::new();
        for x in crate::fit::Batches::eval(&images, crate::fit::Part::Test, Device::Cpu) {
            again.extend(brainssl_backend::to_vec(&tch::no_grad(|| {
                loaded.probabilities(&x.unwrap())
            })));
        }
        let saved = std::fs::read_to_string(out.join("test_predictions.csv")).unwrap();
        let p1: Vec<f64> = saved
            .lines()
            .skip(1)
            .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(p1.len(), split.test.len());
        for (i, p) in p1.iter().enumerate() {
            assert!((p - again[2 * i + 1] as f64).abs() < 1e-5, "{p1:?} vs {again:?}");
        }
        // the selected classifier differs from a fresh one: the probe trained
        let last_layer = |d: &Downstream| brainssl_backend::to_vec(&d.classifier.linear3.weight);
        assert_ne!(last_layer(&fresh()), last_layer(&loaded));
    }

    #[test]
    fn cache_and_standardisation_refuse_fine_tuning() {
        let mut c = DownstreamConfig::paper(Mode::Finetune, 2, true);
        c.feature_cache = true;
        assert!(c.validate(96).unwrap_err().to_string().contains("frozen"));
        c.feature_cache = false;
        c.standardise_tokens = true;
        assert!(c.validate(96).unwrap_err().to_string().contains("frozen"));
    }
}
