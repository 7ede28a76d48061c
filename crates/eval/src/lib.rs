//! Downstream evaluation that needs no deep-learning framework: metrics pooled over a whole split
//! (docs/evaluation.md#metrics) and the prediction files they are computed from.

pub mod cluster;
pub mod compare;
pub mod embeddings;
pub mod metrics;
pub mod predictions;
pub mod spectrum;
pub mod table;

pub use compare::{mean_auroc_difference, paired_auroc, pooled_auroc_difference, AurocDifference, Seeds};
pub use metrics::{auroc_binary, auroc_ovr_macro, bootstrap, roc_curve, Metrics};
pub use predictions::Predictions;
pub use table::Table;
