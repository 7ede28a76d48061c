//! Models on libtorch (docs/method.md#model): the 3D Vision Transformer encoder, the two mask-token
//! heads that sit on it during pretraining (the JEPA predictor and the MAE decoder), the attentive
//! classifier and the ResNet-50 3-D baseline.
//!
//! Modules hold handles to variables of a `tch::nn::VarStore`, created under a path with the
//! reference implementation's names, so a state dict maps to and from the reference by a prefix.
//! Every parameter is drawn on the host from the project's seeded generator (`init`).

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
pub use named::{count_params, named_params, params_under};
pub use predictor::{MaskedPredictor, PredictorConfig};
pub use resnet::ResNet3d;
pub use tokens::{patchify, unpatchify, TokenIndex};
pub use vit::{VisionTransformer3d, VitConfig, VitSize};
