//! Datasets for brainssl: manifests, folder indexing, subject-level splits (docs/preprocessing.md),
//! the cached, multi-threaded batch loader, and synthetic brains for demos and tests.

pub mod cache;
pub mod index;
pub mod labels;
pub mod loader;
pub mod manifest;
pub mod preflight;
pub mod splits;
pub mod synth;

pub use labels::LabelMap;
pub use manifest::{Manifest, ManifestRow, UNLABELLED};
