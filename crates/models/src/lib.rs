//! Models of SPEC 3.1-3.3: the 3D Vision Transformer encoder and the two mask-token heads that sit on
//! it during pretraining (the JEPA predictor and the MAE decoder).
//!
//! Every parameter is drawn on the host from the project's seeded generator, so a model is a function
//! of (config, seed) on every backend.

pub mod classifier;
pub mod init;
pub mod layers;
pub mod named;
pub mod pos_embed;
pub mod predictor;
pub mod resnet;
pub mod tokens;
pub mod vit;

pub use classifier::{AttentiveClassifier, ClassifierConfig};
pub use named::{count_params, map_params, named_params, NamedParam, NamedValue};
pub use predictor::{MaskedPredictor, PredictorConfig};
pub use resnet::ResNet3d;
pub use tokens::{patchify, unpatchify, TokenIndex};
pub use vit::{VisionTransformer3d, VitConfig, VitSize};
