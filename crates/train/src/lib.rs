//! Self-supervised pretraining (docs/method.md): configuration and presets, AdamW with the
//! reference's groups and clipping, schedules, the EMA teacher, checkpoints and the training loop.
//!
//! The loop (`trainer`) reads as the reference's order of operations; starting and resuming
//! (`session`), data (`data`), the amortised spectral term (`spectral_state`), progress (`reporter`)
//! and previews (`preview`) each live in their own module.

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod ema;
pub mod flops;
pub mod interrupt;
pub mod log;
pub mod optim;
pub mod parallel;
pub mod preview;
pub mod reference;
pub mod reporter;
pub mod schedule;
pub mod session;
pub mod spectral_state;
pub mod step;
pub mod telemetry;
pub mod torch_file;
pub mod trainer;

pub use config::{Objective, PretrainConfig, PRESETS};
