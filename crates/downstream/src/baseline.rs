//! The supervised baseline (docs/evaluation.md#resnet-50-baseline): a 3-D ResNet-50 trained from
//! scratch with the same data pipeline, loop and selection rule (validation AUROC) as the probes.

use brainssl_backend::tch::nn::VarStore;
use brainssl_backend::{Device, Kind, Tensor};
use brainssl_models::named_params;
use brainssl_models::resnet::dropout_mask;
use brainssl_models::ResNet3d;
use brainssl_prep::Rng;

use crate::config::DownstreamConfig;
use crate::fit::Classifier;

/// ResNet-50 3-D (variables `net.…`) with its head dropout (0.1 in the reference).
pub struct ResNetClassifier {
    pub vs: VarStore,
    pub net: ResNet3d,
    pub dropout: f64,
}

impl ResNetClassifier {
    pub fn new(num_classes: usize, seed: u64, device: Device) -> Self {
        let vs = VarStore::new(device);
        let net = ResNet3d::resnet50(vs.root() / "net", num_classes, &mut Rng::new(seed));
        ResNetClassifier { vs, net, dropout: 0.1 }
    }
}

impl Classifier for ResNetClassifier {
    fn train_logits(&self, x: &Tensor, _epoch: usize, rng: &mut Rng) -> Tensor {
        let b = x.size()[0] as usize;
        let mask = (self.dropout > 0.0).then(|| dropout_mask(b, self.net.features(), self.dropout, rng, x.device()));
        self.net.forward(x, true, mask.as_ref())
    }

    fn probabilities(&self, x: &Tensor) -> Tensor {
        self.net.forward(x, false, None).softmax(1, Kind::Float)
    }

    fn variables(&self) -> Vec<(String, Tensor)> {
        named_params(&self.vs)
    }

    fn clip_groups(&self, cfg: &DownstreamConfig) -> Vec<(&'static str, f64)> {
        vec![("net.", cfg.clip_encoder)]
    }
}
