//! The supervised baseline of SPEC 3.6 / 5.8: a 3-D ResNet-50 trained from scratch with the same
//! data pipeline, loop and selection rule (validation AUROC) as the probes.

use brainssl_backend::burn;
use brainssl_backend::burn::module::Module;
use brainssl_backend::burn::tensor::activation::softmax;
use brainssl_backend::{Device, Tensor};
use brainssl_models::resnet::dropout_mask;
use brainssl_models::ResNet3d;
use brainssl_prep::Rng;

use crate::config::DownstreamConfig;
use crate::fit::Classifier;

/// ResNet-50 3-D with its head dropout (0.1 in the reference).
#[derive(Module, Debug)]
pub struct ResNetClassifier {
    pub net: ResNet3d,
    #[module(skip)]
    pub dropout: f64,
}

impl ResNetClassifier {
    pub fn new(num_classes: usize, seed: u64, device: &Device) -> Self {
        ResNetClassifier {
            net: ResNet3d::resnet50(num_classes, &mut Rng::new(seed), device),
            dropout: 0.1,
        }
    }
}

impl Classifier for ResNetClassifier {
    type Input = Tensor<5>;

    fn train_logits(&self, x: Tensor<5>, _epoch: usize, rng: &mut Rng) -> Tensor<2> {
        let b = x.dims()[0];
        let width = self.net.fc.weight.dims()[0];
        let mask = (self.dropout > 0.0).then(|| dropout_mask(b, width, self.dropout, rng, &x.device()));
        self.net.forward(x, mask)
    }

    fn probabilities(&self, x: Tensor<5>) -> Tensor<2> {
        softmax(self.net.forward(x, None), 1)
    }

    fn clip_groups(&self, cfg: &DownstreamConfig) -> Vec<(&'static str, f64)> {
        vec![("net.", cfg.clip_encoder)]
    }
}
