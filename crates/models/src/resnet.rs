//! The supervised baseline (docs/method.md#resnet-50-baseline): a 3-D ResNet-50 (bottleneck blocks
//! [3, 4, 6, 3], expansion 4), trained from scratch. PyTorch's default initialisation (uniform
//! ±1/sqrt(fan_in) for convolutions and the linear head, BatchNorm (1, 0)), drawn on the host from
//! the seeded generator. Names follow torchvision's ResNet (`conv1`, `bn1`, `layer1.0.conv1`,
//! `…downsample.0`, `fc`).

use brainssl_backend::tch::nn::Path;
use brainssl_backend::{tensor, Device, Tensor};
use brainssl_prep::rng::Rng;

use crate::init::{constant, param, uniform};
use crate::layers::{full, lowered, Linear};

/// Convolution without bias.
#[derive(Debug)]
pub struct Conv3d {
    pub weight: Tensor,
    pub stride: i64,
    pub padding: i64,
}

fn conv(p: Path, cin: usize, cout: usize, k: usize, stride: usize, pad: usize, rng: &mut Rng) -> Conv3d {
    let fan_in = cin * k * k * k;
    let w = uniform(cout * fan_in, 1.0 / (fan_in as f64).sqrt(), rng);
    Conv3d {
        weight: param(&p, "weight", &w, &[cout, cin, k, k, k]),
        stride: stride as i64,
        padding: pad as i64,
    }
}

impl Conv3d {
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (s, p) = (self.stride, self.padding);
        lowered(x).conv3d(&lowered(&self.weight), None::<&Tensor>, [s; 3], [p; 3], [1; 3], 1)
    }
}

/// BatchNorm3d with running statistics (momentum 0.1, eps 1e-5); the statistics are buffers.
#[derive(Debug)]
pub struct BatchNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
}

fn bn(p: Path, c: usize) -> BatchNorm {
    BatchNorm {
        weight: constant(&p, "weight", &[c], 1.0),
        bias: constant(&p, "bias", &[c], 0.0),
        running_mean: p.zeros_no_train("running_mean", &[c as i64]),
        running_var: p.ones_no_train("running_var", &[c as i64]),
    }
}

impl BatchNorm {
    /// Batch statistics (and a running-statistics update) in training, running statistics otherwise.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        full(x).batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            0.1,
            1e-5,
            true,
        )
    }
}

#[derive(Debug)]
pub struct Bottleneck {
    pub conv1: Conv3d,
    pub bn1: BatchNorm,
    pub conv2: Conv3d,
    pub bn2: BatchNorm,
    pub conv3: Conv3d,
    pub bn3: BatchNorm,
    pub downsample: Option<(Conv3d, BatchNorm)>,
}

impl Bottleneck {
    fn new(p: Path, cin: usize, planes: usize, stride: usize, rng: &mut Rng) -> Self {
        let out = planes * 4;
        let downsample = (stride != 1 || cin != out).then(|| {
            let d = &p / "downsample";
            (conv(&d / 0, cin, out, 1, stride, 0, rng), bn(&d / 1, out))
        });
        Bottleneck {
            conv1: conv(&p / "conv1", cin, planes, 1, 1, 0, rng),
            bn1: bn(&p / "bn1", planes),
            conv2: conv(&p / "conv2", planes, planes, 3, stride, 1, rng),
            bn2: bn(&p / "bn2", planes),
            conv3: conv(&p / "conv3", planes, out, 1, 1, 0, rng),
            bn3: bn(&p / "bn3", out),
            downsample,
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let h = self.bn1.forward(&self.conv1.forward(x), train).relu();
        let h = self.bn2.forward(&self.conv2.forward(&h), train).relu();
        let h = self.bn3.forward(&self.conv3.forward(&h), train);
        let skip = match &self.downsample {
            Some((c, b)) => b.forward(&c.forward(x), train),
            None => full(x),
        };
        (h + skip).relu()
    }
}

/// ResNet-50 3-D: stem Conv3d(1→64, 7, stride 2, pad 3) + BN + ReLU + MaxPool3d(3, 2, 1), stages of
/// 64/128/256/512 planes (strides 1/2/2/2), global average pooling, Dropout(0.1), Linear(2048 → C).
#[derive(Debug)]
pub struct ResNet3d {
    pub conv1: Conv3d,
    pub bn1: BatchNorm,
    pub blocks: Vec<Bottleneck>,
    pub fc: Linear,
}

impl ResNet3d {
    /// `layers`: blocks per stage, [3, 4, 6, 3] for ResNet-50.
    pub fn new(p: Path, layers: [usize; 4], num_classes: usize, rng: &mut Rng) -> Self {
        let conv1 = conv(&p / "conv1", 1, 64, 7, 2, 3, rng);
        let mut blocks = Vec::new();
        let mut cin = 64;
        for (stage, (&n, planes)) in layers.iter().zip([64, 128, 256, 512]).enumerate() {
            for b in 0..n {
                let stride = if b == 0 && stage > 0 { 2 } else { 1 };
                let name = format!("layer{}", stage + 1);
                blocks.push(Bottleneck::new(&p / name.as_str() / b, cin, planes, stride, rng));
                cin = planes * 4;
            }
        }
        let bound = 1.0 / (cin as f64).sqrt();
        let fcp = &p / "fc";
        let fc = Linear {
            weight: param(
                &fcp,
                "weight",
                &uniform(cin * num_classes, bound, rng),
                &[num_classes, cin],
            ),
            bias: param(&fcp, "bias", &uniform(num_classes, bound, rng), &[num_classes]),
        };
        ResNet3d {
            conv1,
            bn1: bn(&p / "bn1", 64),
            blocks,
            fc,
        }
    }

    pub fn resnet50(p: Path, num_classes: usize, rng: &mut Rng) -> Self {
        Self::new(p, [3, 4, 6, 3], num_classes, rng)
    }

    /// Width of the pooled features (2048 for ResNet-50).
    pub fn features(&self) -> usize {
        self.fc.weight.size()[1] as usize
    }

    /// Logits [B, C]; `train` uses batch statistics, `dropout_mask` ([B, 2048], already scaled by
    /// 1/(1−p)) applies in training.
    pub fn forward(&self, x: &Tensor, train: bool, dropout_mask: Option<&Tensor>) -> Tensor {
        let h = self.bn1.forward(&self.conv1.forward(x), train).relu();
        let mut h = h.max_pool3d([3; 3], [2; 3], [1; 3], [1; 3], false);
        for b in &self.blocks {
            h = b.forward(&h, train);
        }
        let pooled = h.mean_dim([2i64, 3, 4].as_slice(), false, None);
        let pooled = match dropout_mask {
            Some(m) => pooled * m,
            None => pooled,
        };
        full(&self.fc.forward(&pooled))
    }
}

/// Inverted-dropout mask [B, D] with keep probability 1 − p, from the seeded generator.
pub fn dropout_mask(b: usize, d: usize, p: f64, rng: &mut Rng, device: Device) -> Tensor {
    let keep = 1.0 - p;
    let v: Vec<f32> = (0..b * d)
        .map(|_| if rng.uniform() < keep { (1.0 / keep) as f32 } else { 0.0 })
        .collect();
    tensor(&v, &[b, d], device)
}
