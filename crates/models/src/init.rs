//! Host-side parameter initialisation: every value is drawn from the project's seeded generator on
//! the host and copied into the variable store, so a model is a function of (config, seed) on every
//! device and thread count.

use brainssl_backend::tch::nn::Path;
use brainssl_backend::{tensor, Device, Tensor};
use brainssl_prep::rng::Rng;

/// `n` draws of N(0, std²) truncated at absolute ±2 (PyTorch's `trunc_normal_(std, a=-2, b=2)`), each
/// multiplied by `scale`.
pub fn trunc_normal(n: usize, std: f64, scale: f64, rng: &mut Rng) -> Vec<f32> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let x = rng.normal() * std;
        if x.abs() <= 2.0 {
            v.push((x * scale) as f32);
        }
    }
    v
}

/// `n` draws of U(−bound, bound) (PyTorch's default Linear/Conv initialisation).
pub fn uniform(n: usize, bound: f64, rng: &mut Rng) -> Vec<f32> {
    (0..n).map(|_| rng.range(-bound, bound) as f32).collect()
}

/// A trainable variable `name` under `p` holding `values` in `shape`.
pub fn param(p: &Path, name: &str, values: &[f32], shape: &[usize]) -> Tensor {
    p.var_copy(name, &tensor(values, shape, Device::Cpu))
}

/// A trainable variable filled with `value`.
pub fn constant(p: &Path, name: &str, shape: &[usize], value: f32) -> Tensor {
    let n: usize = shape.iter().product();
    param(p, name, &vec![value; n], shape)
}
