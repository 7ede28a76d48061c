//! Pretraining losses (docs/method.md#objectives): MAE, the spectral loss of SL-MAE, JEPA and VCR.
//!
//! Pure tensor functions of model outputs, computed in float32 whatever the matrix-product precision;
//! schedules, caching and weighting live in the trainer.

pub mod jepa;
pub mod mae;
pub mod spectral;
pub mod vcr;

pub use jepa::{jepa_targets, power_loss};
pub use mae::{mae_targets, mosaic};
pub use spectral::{high_pass_mask, SpectralLoss};
pub use vcr::{VcrLoss, VcrTerms};
