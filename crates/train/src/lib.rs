//! Self-supervised pretraining (SPEC 4, 6): configuration and presets, AdamW with the reference's
//! groups and clipping, schedules, the EMA teacher, checkpoints and the training loop.

pub mod config;
pub mod optim;
pub mod schedule;

pub use config::{Objective, PretrainConfig, PRESETS};
