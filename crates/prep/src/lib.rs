//! Preprocessing and augmentations (docs/preprocessing.md), on plain `f32` buffers.
//! Every random draw comes from [`rng::Rng`], seeded by the caller.

pub mod augment;
pub mod foreground;
pub mod frequency;
pub mod intensity;
pub mod pipeline;
pub mod resize;
pub mod rng;

pub use augment::AugmentConfig;
pub use foreground::{ras_foreground, BoxIncl};
pub use pipeline::{crop_foreground, finish, preprocess_eval, Cropped, Layout, Mode, PrepConfig, Prepared};
pub use rng::Rng;
