//! The values an option may take, as clap value enums and parsers: clap lists them in `--help`
//! and refuses anything else before a command starts.

use brainssl_downstream::encoder::CheckpointKey;
use brainssl_downstream::{DownstreamConfig, Mode};
use clap::builder::PossibleValuesParser;
use clap::ValueEnum;

/// `--preset` / `--from-scratch`: the pretraining presets.
pub fn preset() -> PossibleValuesParser {
    PossibleValuesParser::new(brainssl_train::PRESETS)
}

/// `--recipe`: the downstream training recipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Recipe {
    /// The paper's: a depth-1 attentive classifier, no layer-wise lr decay, no encoder warm-up
    Paper,
    /// The reference code's: depth 2, layer decay 0.6, a frozen-encoder warm-up when fine-tuning
    Reference,
}

/// `--checkpoint-key`: which encoder of a pretraining checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Key {
    /// The context encoder (the reference evaluates this one)
    Student,
    /// The EMA target encoder of JEPA runs
    Teacher,
}

impl Recipe {
    /// The recipe's downstream config for `classes` classes (`tiny`: the tiny presets' input size).
    pub fn config(self, mode: Mode, classes: usize, tiny: bool) -> DownstreamConfig {
        match self {
            Recipe::Paper => DownstreamConfig::paper(mode, classes, tiny),
            Recipe::Reference => DownstreamConfig::reference(mode, classes, tiny),
        }
    }
}

impl Key {
    pub fn key(self) -> CheckpointKey {
        match self {
            Key::Student => CheckpointKey::Student,
            Key::Teacher => CheckpointKey::Teacher,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Key::Student => "student",
            Key::Teacher => "teacher",
        }
    }
}

/// `cv --mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeChoice {
    /// A frozen encoder; only the classifier trains (the probe)
    #[value(alias = "probe")]
    Frozen,
    /// Encoder and classifier train
    Finetune,
}

impl ModeChoice {
    pub fn mode(self) -> Mode {
        match self {
            ModeChoice::Frozen => Mode::Frozen,
            ModeChoice::Finetune => Mode::Finetune,
        }
    }
}

/// The validation share of a training part, everywhere a command draws one (`split --kfold`, `cv`).
pub const VAL_FRACTION: f64 = 0.2;
