//! Exact, differentiable 3-D DFT by per-axis matrix products.
//!
//! Burn 0.22.1's FFT takes power-of-two lengths only; our volumes are 144 and 160 deep/wide. A DFT
//! along one axis of length n is a product with the n×n cos and sin matrices, which autodiff handles
//! like any matmul; at these sizes it costs O(n) per voxel per axis.

use brainssl_backend::{Device, Tensor, TensorData};

/// cos(2πjk/n) and sin(2πjk/n) as [n, n] tensors (symmetric, so no transpose is needed).
fn dft_matrices(n: usize, device: &Device) -> (Tensor<2>, Tensor<2>) {
    let mut c = Vec::with_capacity(n * n);
    let mut s = Vec::with_capacity(n * n);
    for j in 0..n {
        for k in 0..n {
            // reduce jk mod n first: exact angles for large n
            let theta = 2.0 * std::f64::consts::PI * ((j * k) % n) as f64 / n as f64;
            c.push(theta.cos() as f32);
            s.push(theta.sin() as f32);
        }
    }
    let t = |v| Tensor::from_data(TensorData::new(v, [n, n]), device);
    (t(c), t(s))
}

/// Complex DFT along the last axis: (a + ib)·(C − iS) = (aC + bS) + i(bC − aS).
fn dft_last(re: Tensor<4>, im: Option<Tensor<4>>) -> (Tensor<4>, Tensor<4>) {
    let dims = re.dims();
    let n = dims[3];
    let rows = dims[0] * dims[1] * dims[2];
    let (c, s) = dft_matrices(n, &re.device());
    let flat = |x: Tensor<4>| x.reshape([rows, n]);
    let a = flat(re);
    let (out_re, out_im) = match im {
        None => (a.clone().matmul(c), a.matmul(s).neg()),
        Some(b) => {
            let b = flat(b);
            (
                a.clone().matmul(c.clone()) + b.clone().matmul(s.clone()),
                b.matmul(c) - a.matmul(s),
            )
        }
    };
    (out_re.reshape(dims), out_im.reshape(dims))
}

/// Unnormalised 3-D DFT of real volumes [B, T, H, W] over (T, H, W).
///
/// Returns (real, imaginary) in the axis order [B, H, W, T] (the order the passes leave); use
/// [`bins_layout`] to index bins.
pub fn dft3(x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
    let (re, im) = dft_last(x, None); // over W, layout [B, T, H, W]
    let (re, im) = dft_last(re.swap_dims(2, 3), Some(im.swap_dims(2, 3))); // over H, [B, T, W, H]
    dft_last(re.swap_dims(1, 3), Some(im.swap_dims(1, 3))) // over T, [B, H, W, T]
}

/// Position of bin (t, h, w) of a T×H×W spectrum in [`dft3`]'s output layout [H, W, T].
pub fn bins_layout(shape: [usize; 3], t: usize, h: usize, w: usize) -> usize {
    let [tn, _, wn] = shape;
    (h * wn + w) * tn + t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct O(N²) DFT in f64.
    fn naive(x: &[f64], [t, h, w]: [usize; 3], (ft, fh, fw): (usize, usize, usize)) -> (f64, f64) {
        let (mut re, mut im) = (0.0, 0.0);
        for a in 0..t {
            for b in 0..h {
                for c in 0..w {
                    let ph = 2.0
                        * std::f64::consts::PI
                        * ((a * ft) as f64 / t as f64 + (b * fh) as f64 / h as f64 + (c * fw) as f64 / w as f64);
                    let v = x[(a * h + b) * w + c];
                    re += v * ph.cos();
                    im -= v * ph.sin();
                }
            }
        }
        (re, im)
    }

    #[test]
    fn matches_a_direct_dft_for_odd_and_even_lengths() {
        let shape = [5, 6, 7];
        let n = 210;
        let mut state = 12345u64;
        let x: Vec<f64> = (0..2 * n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) as f64 / (1u64 << 31) as f64) - 0.5
            })
            .collect();
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let device = Device::flex();
        let (re, im) = dft3(Tensor::from_data(TensorData::new(xf, [2, 5, 6, 7]), &device));
        let re = re.into_data().try_to_vec::<f32>().unwrap();
        let im = im.into_data().try_to_vec::<f32>().unwrap();
        let mut worst = 0f64;
        for b in 0..2 {
            for t in 0..5 {
                for h in 0..6 {
                    for w in 0..7 {
                        let (r, i) = naive(&x[b * n..(b + 1) * n], shape, (t, h, w));
                        let k = b * n + bins_layout(shape, t, h, w);
                        worst = worst.max((re[k] as f64 - r).abs()).max((im[k] as f64 - i).abs());
                    }
                }
            }
        }
        assert!(worst < 2e-5, "max abs error {worst}");
    }
}
