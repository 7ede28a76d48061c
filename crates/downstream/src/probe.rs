//! The encoder + attentive classifier of SPEC 3.4-3.5 as frozen probe or fine-tuned model, and the
//! entry points that train it: on scans, or for a frozen probe on cached encoder tokens.

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Result};
use brainssl_backend::burn;
use brainssl_backend::burn::module::Module;
use brainssl_backend::burn::tensor::activation::softmax;
use brainssl_backend::{Device, Tensor};
use brainssl_models::{AttentiveClassifier, VisionTransformer3d};
use brainssl_prep::Rng;

use crate::config::{DownstreamConfig, Mode};
use crate::embed::token_moments;
use crate::fit::{fit, save_weights, Classifier, Outcome, Splits};
use crate::source::{ImageBatches, TokenBatches};
use crate::standardise::TokenStandardiser;

/// Encoder and attentive classifier; parameter paths `encoder.…`, `classifier.…`.
#[derive(Module, Debug)]
pub struct Downstream {
    pub encoder: VisionTransformer3d,
    /// Frozen probes with `standardise_tokens`: fixed per-channel statistics (set by [`run`]).
    pub standardise: Option<TokenStandardiser>,
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
            standardise: None,
            classifier,
            frozen_epochs,
            layer_decay: cfg.layer_decay,
        })
    }
}

impl Classifier for Downstream {
    type Input = Tensor<5>;

    fn train_logits(&self, x: Tensor<5>, epoch: usize, _rng: &mut Rng) -> Tensor<2> {
        let tokens = if epoch < self.frozen_epochs {
            // no graph through the encoder: it runs on the plain device
            let device = x.device();
            Tensor::from_inner(self.encoder.valid().forward(x.inner(), None)).to_device(&device)
        } else {
            self.encoder.forward(x, None)
        };
        self.classifier.forward(standardised(&self.standardise, tokens))
    }

    fn probabilities(&self, x: Tensor<5>) -> Tensor<2> {
        let tokens = standardised(&self.standardise, self.encoder.forward(x, None));
        softmax(self.classifier.forward(tokens), 1)
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

/// A frozen probe on cached tokens: only the classifier, fed encoder tokens [B, N, D].
#[derive(Module, Debug)]
pub struct TokenProbe {
    pub standardise: Option<TokenStandardiser>,
    pub classifier: AttentiveClassifier,
}

impl Classifier for TokenProbe {
    type Input = Tensor<3>;

    fn train_logits(&self, x: Tensor<3>, _epoch: usize, _rng: &mut Rng) -> Tensor<2> {
        self.classifier.forward(standardised(&self.standardise, x))
    }

    fn probabilities(&self, x: Tensor<3>) -> Tensor<2> {
        softmax(self.classifier.forward(standardised(&self.standardise, x)), 1)
    }

    fn clip_groups(&self, cfg: &DownstreamConfig) -> Vec<(&'static str, f64)> {
        vec![("classifier.", cfg.clip_classifier)]
    }
}

/// Trains a model that takes scans on `splits` (augmented training input), saves the selected
/// epoch's weights as `best.safetensors` and evaluates them on the test split.
pub fn train<M: Classifier<Input = Tensor<5>>>(
    cfg: &DownstreamConfig,
    model: M,
    splits: &Splits,
    out: &Path,
    base: &Device,
    progress: bool,
) -> Result<Outcome> {
    let (o, best) = fit(cfg, model, &ImageBatches::new(cfg, splits), splits, out, base, progress)?;
    save_weights(&out.join("best.safetensors"), &best, cfg, o.best_epoch)?;
    Ok(o)
}

fn standardised(s: &Option<TokenStandardiser>, tokens: Tensor<3>) -> Tensor<3> {
    match s {
        Some(s) => s.forward(tokens),
        None => tokens,
    }
}

/// A probe or fine-tuning run of `model`. Frozen probes may cache the encoder's tokens
/// (`feature_cache`, see [`TokenBatches`]) and standardise them with training-set statistics
/// (`standardise_tokens`). The saved weights hold encoder, statistics and classifier either way.
pub fn run(
    cfg: &DownstreamConfig,
    mut model: Downstream,
    splits: &Splits,
    out: &Path,
    base: &Device,
    progress: bool,
) -> Result<Outcome> {
    let frozen = cfg.mode == Mode::Frozen;
    let device = model.encoder.patch_embed.weight.val().device();
    if !(cfg.feature_cache && frozen) {
        if cfg.standardise_tokens && frozen {
            let m = token_moments(&model.encoder.valid(), &splits.train, &cfg.prep, cfg.batch_size, base)?;
            model.standardise = Some(TokenStandardiser::new(&m, &device));
        }
        return train(cfg, model, splits, out, base, progress);
    }
    let started = Instant::now();
    let tokens = TokenBatches::new(&model.encoder.valid(), cfg, splits, base)?;
    if progress {
        eprintln!(
            "cached the frozen encoder's tokens of {} scans ({:.1} MB) in {:.1} s",
            splits.train.len() + splits.val.len() + splits.test.len(),
            tokens.bytes() as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
    }
    let standardise = cfg
        .standardise_tokens
        .then(|| TokenStandardiser::new(&tokens.train_moments(), &device));
    let Downstream {
        encoder,
        classifier,
        frozen_epochs,
        layer_decay,
        ..
    } = model;
    let probe = TokenProbe {
        standardise,
        classifier,
    };
    let (o, best) = fit(cfg, probe, &tokens, splits, out, base, progress)?;
    let whole = Downstream {
        encoder,
        standardise: best.standardise,
        classifier: best.classifier,
        frozen_epochs,
        layer_decay,
    };
    save_weights(&out.join("best.safetensors"), &whole, cfg, o.best_epoch)?;
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
        assert_eq!(layer_id("encoder.norm.gamma", 12), 13);
    }
}

#[cfg(test)]
mod learning {
    use super::*;
    use crate::fit::cross_entropy;
    use brainssl_backend::burn::optim::GradientsParams;
    use brainssl_backend::TensorData;
    use brainssl_models::ClassifierConfig;
    use brainssl_train::optim::AdamW;

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
            task: SynthTask::Ad,
            subjects: 12,
            sessions: 1,
            size: 32,
            seed: 3,
            keep_skull: false,
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
        let base = Device::flex();
        let fresh = || Downstream::new(&dcfg, crate::encoder::random_encoder(&vit, 5, &base), false).unwrap();
        let out = dir.path().join("probe");
        run(
            &dcfg,
            Downstream::new(
                &dcfg,
                crate::encoder::random_encoder(&vit, 5, &base.clone().autodiff()),
                false,
            )
            .unwrap(),
            &split,
            &out,
            &base,
            false,
        )
        .unwrap();

        let (tensors, _) = brainssl_train::checkpoint::load_tensors(&out.join("best.safetensors")).unwrap();
        let mut blank = fresh();
        blank.standardise = Some(TokenStandardiser::new(
            &crate::standardise::Moments::new(vit.embed_dim),
            &base,
        ));
        let loaded = brainssl_train::checkpoint::load_module(blank, &tensors, "").unwrap();
        let stats = loaded
            .standardise
            .as_ref()
            .unwrap()
            .inv_std
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(
            stats.iter().all(|&v| v.is_finite() && v > 0.0 && v != 1e6),
            "statistics were saved"
        );
        let images = ImageBatches::new(&dcfg, &split);
        let mut again = Vec::new();
        for x in crate::fit::Batches::eval(&images, crate::fit::Part::Test, &base) {
            again.extend(
                loaded
                    .probabilities(x.unwrap())
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap(),
            );
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
        let last_layer = |d: &Downstream| {
            d.classifier
                .linear3
                .weight
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        assert_ne!(last_layer(&fresh()), last_layer(&loaded));
    }

    #[test]
    fn cache_and_standardisation_refuse_fine_tuning() {
        let mut c = DownstreamConfig::paper(Mode::Finetune, 2, true);
        c.feature_cache = true;
        assert!(c.validate(96).unwrap_err().contains("frozen"));
        c.feature_cache = false;
        c.standardise_tokens = true;
        assert!(c.validate(96).unwrap_err().contains("frozen"));
    }
}
