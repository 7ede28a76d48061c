//! Downstream recipes (docs/evaluation.md#recipes): the paper's default and the reference HEAD
//! preset.

use brainssl_backend::PrecisionChoice;
use brainssl_models::ClassifierConfig;
use brainssl_prep::{AugmentConfig, PrepConfig};

use crate::selection::Selection;
use serde::{Deserialize, Serialize};

/// Frozen encoder (only the classifier trains) or fine-tuning (both train).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Frozen,
    Finetune,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownstreamConfig {
    pub mode: Mode,
    pub seed: u64,
    /// Matrix-product precision: auto (bf16 on CUDA, f32 on the CPU), f32 or bf16.
    #[serde(default)]
    pub precision: PrecisionChoice,
    pub prep: PrepConfig,
    pub augment: Option<AugmentConfig>,
    pub batch_size: usize,
    pub workers: usize,
    pub classifier: ClassifierConfig,
    pub epochs: usize,
    pub warmup_epochs: usize,
    pub start_lr: f64,
    pub lr: f64,
    pub final_lr: f64,
    /// The cosine spans lr_schedule_factor · epochs (5 in the reference HEAD recipe: almost flat).
    pub lr_schedule_factor: f64,
    pub weight_decay: f64,
    pub final_weight_decay: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub clip_classifier: f64,
    pub clip_encoder: f64,
    pub accum_steps: usize,
    /// Layer-wise lr decay for a fine-tuned encoder (None: off).
    pub layer_decay: Option<f64>,
    /// Fine-tuning: epochs during which the encoder stays frozen (forced to 0 without a checkpoint).
    pub encoder_warmup: usize,
    /// Frozen probes only: run the encoder once per scan on evaluation-mode input and train the
    /// classifier on the cached tokens (no training augmentation; memory scans × N × D × 4 bytes).
    /// Each epoch then costs the classifier alone, so probes can train for hundreds of epochs on a CPU.
    #[serde(default)]
    pub feature_cache: bool,
    /// Frozen probes only: standardise each token channel with the frozen encoder's training-set
    /// mean and std before the classifier (see `standardise`). Off in the paper's recipe.
    #[serde(default)]
    pub standardise_tokens: bool,
    /// Which epoch is reported: `learned-auroc` (best validation AUROC among epochs whose training
    /// loss left chance) or `auroc` (best validation AUROC, the paper's rule).
    #[serde(default)]
    pub selection: Selection,
    /// Which encoder of a JEPA checkpoint: "student" (the context encoder, reference default) or "teacher".
    pub checkpoint_key: String,
    /// Names of the classes when the manifests use text labels (class k is `class_names[k]`);
    /// empty for integer labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_names: Vec<String>,
}

impl DownstreamConfig {
    /// The paper's recipe (docs/deviations.md#downstream-recipe): depth-1 classifier, no layer
    /// decay, no encoder warm-up. Sizes are the reference's 144×160×160; `tiny` shrinks the input
    /// to the tiny pretraining presets'.
    pub fn paper(mode: Mode, num_classes: usize, tiny: bool) -> Self {
        let (depth, size, batch, epochs) = if tiny { (32, 64, 4, 12) } else { (144, 160, 24, 400) };
        let (start_lr, lr, final_lr) = match mode {
            Mode::Frozen => (1e-5, 1e-4, 1e-6),
            Mode::Finetune => (1e-5, 1e-4, 1e-6),
        };
        DownstreamConfig {
            mode,
            seed: 1881,
            precision: PrecisionChoice::Auto,
            prep: PrepConfig {
                depth,
                size,
                ..PrepConfig::default()
            },
            augment: Some(AugmentConfig::downstream()),
            batch_size: batch,
            workers: 2,
            classifier: ClassifierConfig {
                depth: 1,
                heads: if tiny { 4 } else { 12 },
                num_classes,
            },
            epochs,
            warmup_epochs: if tiny { 1 } else { 2 },
            start_lr,
            lr: if tiny { 1e-3 } else { lr },
            final_lr,
            lr_schedule_factor: 1.0,
            weight_decay: 1e-3,
            final_weight_decay: 1e-4,
            betas: (0.9, 0.999),
            eps: 1e-6,
            clip_classifier: 1.0,
            clip_encoder: 1.0,
            accum_steps: 1,
            layer_decay: None,
            encoder_warmup: 0,
            feature_cache: false,
            standardise_tokens: false,
            selection: Selection::default(),
            checkpoint_key: "student".into(),
            class_names: Vec::new(),
        }
    }

    /// The reference HEAD recipe (`vitb16_mri_eval.yaml`): depth 2, layer decay 0.6, encoder warm-up
    /// 10, lr 1e-6 → 1e-5 → 1e-6 with lr_schedule_factor 5, accumulation 2.
    pub fn reference(mode: Mode, num_classes: usize, tiny: bool) -> Self {
        let mut c = Self::paper(mode, num_classes, tiny);
        c.classifier.depth = 2;
        c.layer_decay = Some(0.6);
        c.encoder_warmup = if tiny { 2 } else { 10 };
        (c.start_lr, c.lr, c.final_lr) = (1e-6, 1e-5, 1e-6);
        c.lr_schedule_factor = 5.0;
        c.accum_steps = 2;
        c
    }

    /// The ResNet-50 baseline's recipe (docs/evaluation.md#resnet-50-baseline, the reference's
    /// historical config): lr 1e-6 → 1e-4 → 1e-7, warm-up 5 epochs (1 at tiny size), batch 16 (4),
    /// no accumulation, clipping 1.0 after warm-up.
    pub fn resnet(num_classes: usize, tiny: bool) -> Self {
        let mut c = Self::paper(Mode::Finetune, num_classes, tiny);
        (c.start_lr, c.lr, c.final_lr) = (1e-6, 1e-4, 1e-7);
        c.warmup_epochs = if tiny { 1 } else { 5 };
        c.batch_size = if tiny { 4 } else { 16 };
        c.epochs = if tiny { 12 } else { 180 };
        c
    }

    /// A shorter or longer run of the same recipe: the warm-up is cut to fit a run shorter than it.
    pub fn set_epochs(&mut self, epochs: usize) {
        self.epochs = epochs;
        self.warmup_epochs = self.warmup_epochs.min(epochs);
    }

    pub fn validate(&self, embed_dim: usize) -> anyhow::Result<()> {
        self.classifier.validate(embed_dim)?;
        self.prep.validate().map_err(anyhow::Error::msg)?;
        if self.batch_size == 0 || self.epochs == 0 || self.accum_steps == 0 {
            anyhow::bail!("batch_size, epochs and accum_steps must be positive");
        }
        if self.warmup_epochs > self.epochs {
            anyhow::bail!("warmup_epochs exceeds epochs");
        }
        if self.batch_size > 4096 || self.epochs > 100_000 || self.accum_steps > 65_536 {
            anyhow::bail!("batch_size is at most 4096, epochs at most 100000 and accum_steps at most 65536");
        }
        if self.lr_schedule_factor < 1.0 {
            anyhow::bail!("lr_schedule_factor must be >= 1");
        }
        if let Some(d) = self.layer_decay {
            if !(0.0..=1.0).contains(&d) || d == 0.0 {
                anyhow::bail!("layer_decay must lie in (0, 1]");
            }
        }
        if (self.feature_cache || self.standardise_tokens) && self.mode != Mode::Frozen {
            anyhow::bail!(
                "feature_cache and standardise_tokens apply to frozen probes only (the encoder must not change)"
            );
        }
        if !self.class_names.is_empty() && self.class_names.len() != self.classifier.num_classes {
            anyhow::bail!(
                "{} class names for {} classes",
                self.class_names.len(),
                self.classifier.num_classes
            );
        }
        if !matches!(self.checkpoint_key.as_str(), "student" | "teacher") {
            anyhow::bail!("checkpoint_key must be 'student' or 'teacher'");
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }
}
