//! JEPA targets and the power loss shared by MAE (e = 2) and JEPA (e = 1) (docs/method.md#mae,
//! docs/method.md#jepa).

use brainssl_backend::{Kind, Tensor};
use brainssl_models::layers::{full, layer_norm_plain};
use brainssl_models::TokenIndex;

/// mean(|pred − target|^e) / e, in float32.
pub fn power_loss(pred: &Tensor, target: &Tensor, exp: f64) -> Tensor {
    let d = (full(pred) - full(target)).abs();
    let d = if exp == 1.0 {
        d
    } else if exp == 2.0 {
        d.square()
    } else {
        d.pow_tensor_scalar(exp)
    };
    d.mean(Kind::Float) / exp
}

/// Teacher output [B, N, D] → parameter-free LayerNorm (eps 1e-5) → gathered at the targets.
pub fn jepa_targets(teacher_out: &Tensor, tgt: &TokenIndex) -> Tensor {
    tgt.gather(&layer_norm_plain(teacher_out, 1e-5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_backend::{scalar, tensor, to_vec, Device};

    #[test]
    fn power_loss_closed_forms() {
        let a = tensor(&[1.0, -2.0, 3.0, 0.5], &[1, 2, 2], Device::Cpu);
        let z = a.zeros_like();
        assert!((scalar(&power_loss(&a, &z, 1.0)) - 6.5 / 4.0).abs() < 1e-6);
        let l2 = scalar(&power_loss(&a, &z, 2.0));
        assert!((l2 - (1.0 + 4.0 + 9.0 + 0.25) / 4.0 / 2.0).abs() < 1e-6);
        let l3 = scalar(&power_loss(&a, &z, 3.0));
        assert!((l3 - (1.0 + 8.0 + 27.0 + 0.125) / 4.0 / 3.0).abs() < 1e-5);
    }

    #[test]
    fn targets_are_layer_normalised_per_token() {
        let h = tensor(&[1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 14.0], &[1, 2, 4], Device::Cpu);
        let t = to_vec(&jepa_targets(&h, &TokenIndex::Shared(vec![1])));
        // token 1: mean 11, biased var 3 → (x − 11)/sqrt(3 + 1e-5)
        let s = (3.0f64 + 1e-5).sqrt();
        for (v, x) in t.iter().zip([10.0, 10.0, 10.0, 14.0]) {
            assert!((*v as f64 - (x - 11.0) / s).abs() < 1e-5);
        }
    }
}
