//! Self-supervised pretraining (SPEC 4, 6): configuration and presets, AdamW with the reference's
//! groups and clipping, schedules, the EMA teacher, checkpoints and the training loop.

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod ema;
pub mod log;
pub mod optim;
pub mod preview;
pub mod schedule;
pub mod step;
pub mod telemetry;
pub mod trainer;

pub use config::{Objective, PretrainConfig, PRESETS};
