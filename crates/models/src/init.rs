//! Host-side parameter initialisation (SPEC 3.1): truncated normal for weights, constants for norms.

use brainssl_backend::burn::module::Param;
use brainssl_backend::{Device, Tensor, TensorData};
use brainssl_prep::rng::Rng;

/// N(0, std²) truncated at absolute ±2, as PyTorch's `trunc_normal_(std=0.02)` (a = −2, b = 2):
/// effectively untruncated at std 0.02, kept for other stds.
pub fn trunc_normal<const D: usize>(shape: [usize; D], std: f64, rng: &mut Rng, device: &Device) -> Param<Tensor<D>> {
    trunc_normal_scaled(shape, std, 1.0, rng, device)
}

/// [`trunc_normal`] multiplied by `scale` on the host, so the parameter stays a leaf of the graph.
pub fn trunc_normal_scaled<const D: usize>(
    shape: [usize; D],
    std: f64,
    scale: f64,
    rng: &mut Rng,
    device: &Device,
) -> Param<Tensor<D>> {
    let n: usize = shape.iter().product();
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let x = rng.normal() * std;
        if x.abs() <= 2.0 {
            v.push((x * scale) as f32);
        }
    }
    param(v, shape, device)
}

pub fn constant<const D: usize>(shape: [usize; D], value: f32, device: &Device) -> Param<Tensor<D>> {
    let n: usize = shape.iter().product();
    param(vec![value; n], shape, device)
}

/// A trainable parameter from host values.
pub fn param<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
}
