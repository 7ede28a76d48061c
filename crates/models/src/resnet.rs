//! The supervised baseline of SPEC 3.6: a 3-D ResNet-50 (bottleneck blocks [3, 4, 6, 3], expansion
//! 4), trained from scratch. PyTorch's default initialisation (uniform ±1/sqrt(fan_in) for
//! convolutions and the linear head, BatchNorm (1, 0)), drawn on the host from the seeded generator.

use brainssl_backend::burn;
use brainssl_backend::burn::module::Module;
use brainssl_backend::burn::nn::conv::Conv3d;
use brainssl_backend::burn::nn::{BatchNorm, BatchNormConfig, Linear, PaddingConfig3d};
use brainssl_backend::burn::tensor::activation::relu;
use brainssl_backend::{Device, Tensor, TensorData};
use brainssl_prep::rng::Rng;

use crate::init::param;

fn uniform(n: usize, bound: f64, rng: &mut Rng) -> Vec<f32> {
    (0..n).map(|_| rng.range(-bound, bound) as f32).collect()
}

fn conv(cin: usize, cout: usize, k: usize, stride: usize, pad: usize, rng: &mut Rng, device: &Device) -> Conv3d {
    let fan_in = cin * k * k * k;
    let w = uniform(cout * fan_in, 1.0 / (fan_in as f64).sqrt(), rng);
    Conv3d {
        weight: param(w, [cout, cin, k, k, k], device),
        bias: None,
        stride: [stride; 3],
        kernel_size: [k; 3],
        dilation: [1; 3],
        groups: 1,
        padding: PaddingConfig3d::Explicit(pad, pad, pad),
    }
}

fn bn(c: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(c).init(device)
}

/// 1-D max pooling (kernel 3, stride 2, padding 1) along `dim` of a 5-D tensor, from strided
/// views: out[i] = max(x[2i−1], x[2i], x[2i+1]) with −∞ outside. Max pooling is separable, so three
/// of these are MaxPool3d(3, 2, 1), which Burn 0.22 lacks.
fn max_pool_axis(x: Tensor<5>, dim: usize) -> Tensor<5> {
    let n = x.dims()[dim];
    let out = n.div_ceil(2);
    // pad to length 2·out + 2 with −inf: one in front, the rest behind
    let len = 2 * out + 2;
    let mut pads = [(0usize, 0usize); 5];
    pads[dim] = (1, len - n - 1);
    let shape = x.dims();
    let device = x.device();
    let neg = |size: usize| {
        let mut s = shape;
        s[dim] = size;
        Tensor::<5>::full(s, f32::NEG_INFINITY, &device)
    };
    let y = Tensor::cat(vec![neg(pads[dim].0), x, neg(pads[dim].1)], dim);
    // even and odd positions as separate views: reshape the axis to [len/2, 2]
    let pick = |t: Tensor<5>, start: usize| {
        let t = t.narrow(dim, start, 2 * out);
        let mut s6 = [0usize; 6];
        let d = t.dims();
        let mut j = 0;
        for (i, &v) in d.iter().enumerate() {
            if i == dim {
                s6[j] = out;
                s6[j + 1] = 2;
                j += 2;
            } else {
                s6[j] = v;
                j += 1;
            }
        }
        t.reshape(s6).narrow(dim + 1, 0, 1).reshape({
            let mut s5 = d;
            s5[dim] = out;
            s5
        })
    };
    pick(y.clone(), 0).max_pair(pick(y.clone(), 1)).max_pair(pick(y, 2))
}

pub fn max_pool3d_k3s2p1(x: Tensor<5>) -> Tensor<5> {
    max_pool_axis(max_pool_axis(max_pool_axis(x, 2), 3), 4)
}

#[derive(Module, Debug)]
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
    fn new(cin: usize, planes: usize, stride: usize, rng: &mut Rng, device: &Device) -> Self {
        let out = planes * 4;
        let downsample =
            (stride != 1 || cin != out).then(|| (conv(cin, out, 1, stride, 0, rng, device), bn(out, device)));
        Bottleneck {
            conv1: conv(cin, planes, 1, 1, 0, rng, device),
            bn1: bn(planes, device),
            conv2: conv(planes, planes, 3, stride, 1, rng, device),
            bn2: bn(planes, device),
            conv3: conv(planes, out, 1, 1, 0, rng, device),
            bn3: bn(out, device),
            downsample,
        }
    }

    fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let h = relu(self.bn1.forward(self.conv1.forward(x.clone())));
        let h = relu(self.bn2.forward(self.conv2.forward(h)));
        let h = self.bn3.forward(self.conv3.forward(h));
        let skip = match &self.downsample {
            Some((c, b)) => b.forward(c.forward(x)),
            None => x,
        };
        relu(h + skip)
    }
}

/// ResNet-50 3-D: stem Conv3d(1→64, 7, stride 2, pad 3) + BN + ReLU + MaxPool3d(3, 2, 1), stages of
/// 64/128/256/512 planes (strides 1/2/2/2), global average pooling, Dropout(0.1), Linear(2048 → C).
#[derive(Module, Debug)]
pub struct ResNet3d {
    pub stem: Conv3d,
    pub stem_bn: BatchNorm,
    pub blocks: Vec<Bottleneck>,
    pub fc: Linear,
}

impl ResNet3d {
    /// `layers`: blocks per stage, [3, 4, 6, 3] for ResNet-50.
    pub fn new(layers: [usize; 4], num_classes: usize, rng: &mut Rng, device: &Device) -> Self {
        let stem = conv(1, 64, 7, 2, 3, rng, device);
        let mut blocks = Vec::new();
        let mut cin = 64;
        for (stage, (&n, planes)) in layers.iter().zip([64, 128, 256, 512]).enumerate() {
            for b in 0..n {
                let stride = if b == 0 && stage > 0 { 2 } else { 1 };
                blocks.push(Bottleneck::new(cin, planes, stride, rng, device));
                cin = planes * 4;
            }
        }
        let bound = 1.0 / (cin as f64).sqrt();
        let fc = Linear {
            weight: param(uniform(cin * num_classes, bound, rng), [cin, num_classes], device),
            bias: Some(param(uniform(num_classes, bound, rng), [num_classes], device)),
        };
        ResNet3d {
            stem,
            stem_bn: bn(64, device),
            blocks,
            fc,
        }
    }

    pub fn resnet50(num_classes: usize, rng: &mut Rng, device: &Device) -> Self {
        Self::new([3, 4, 6, 3], num_classes, rng, device)
    }

    /// Logits [B, C]; `dropout_mask` ([B, 2048], already scaled by 1/(1−p)) applies in training.
    pub fn forward(&self, x: Tensor<5>, dropout_mask: Option<Tensor<2>>) -> Tensor<2> {
        let mut h = max_pool3d_k3s2p1(relu(self.stem_bn.forward(self.stem.forward(x))));
        for b in &self.blocks {
            h = b.forward(h);
        }
        let [bsz, c, _, _, _] = h.dims();
        let pooled = h.mean_dims(&[2, 3, 4]).reshape([bsz, c]);
        let pooled = match dropout_mask {
            Some(m) => pooled * m,
            None => pooled,
        };
        self.fc.forward(pooled)
    }
}

/// Inverted-dropout mask [B, D] with keep probability 1 − p, from the seeded generator.
pub fn dropout_mask(b: usize, d: usize, p: f64, rng: &mut Rng, device: &Device) -> Tensor<2> {
    let keep = 1.0 - p;
    let v: Vec<f32> = (0..b * d)
        .map(|_| if rng.uniform() < keep { (1.0 / keep) as f32 } else { 0.0 })
        .collect();
    Tensor::from_data(TensorData::new(v, [b, d]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_pool_matches_a_direct_window_max() {
        let device = Device::flex();
        let mut rng = Rng::new(3);
        let shape = [1, 1, 5, 4, 7];
        let v: Vec<f32> = (0..140).map(|_| rng.normal() as f32).collect();
        let x = Tensor::<5>::from_data(TensorData::new(v.clone(), shape), &device);
        let y = max_pool3d_k3s2p1(x);
        assert_eq!(y.dims(), [1, 1, 3, 2, 4]);
        let y = y.into_data().try_to_vec::<f32>().unwrap();
        let at = |z: i64, h: i64, w: i64| {
            if z < 0 || h < 0 || w < 0 || z >= 5 || h >= 4 || w >= 7 {
                f32::NEG_INFINITY
            } else {
                v[((z * 4 + h) * 7 + w) as usize]
            }
        };
        for oz in 0..3i64 {
            for oh in 0..2i64 {
                for ow in 0..4i64 {
                    let mut m = f32::NEG_INFINITY;
                    for dz in -1..=1 {
                        for dh in -1..=1 {
                            for dw in -1..=1 {
                                m = m.max(at(2 * oz + dz, 2 * oh + dh, 2 * ow + dw));
                            }
                        }
                    }
                    assert_eq!(y[((oz * 2 + oh) * 4 + ow) as usize], m);
                }
            }
        }
    }
}
