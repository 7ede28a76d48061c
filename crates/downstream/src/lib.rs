//! Downstream evaluation (docs/evaluation.md): an encoder from a pretraining checkpoint (or none,
//! for training from scratch), an attentive classifier, frozen probes and fine-tuning with
//! selection by validation AUROC, k-fold cross-validation, and embeddings.

pub mod baseline;
pub mod benchmark;
pub mod claims;
pub mod config;
pub mod embed;
pub mod encoder;
pub mod fit;
pub mod predict;
pub mod probe;
pub mod seeds;
pub mod selection;
pub mod source;
pub mod standardise;
pub mod study;

pub use config::{DownstreamConfig, Mode};
