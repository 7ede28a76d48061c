//! Downstream evaluation that needs no deep-learning framework: metrics pooled over a whole split
//! (D4) and the prediction files they are computed from.

pub mod cluster;
pub mod compare;
pub mod metrics;
pub mod plot;
pub mod predictions;
pub mod spectrum;

pub use compare::{paired_auroc, AurocDifference};
pub use metrics::{auroc_binary, auroc_ovr_macro, bootstrap, Metrics};
pub use predictions::Predictions;
