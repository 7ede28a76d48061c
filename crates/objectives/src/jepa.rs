//! JEPA targets and the power loss shared by MAE (e = 2) and JEPA (e = 1) (SPEC 4.1, 4.4).

use brainssl_backend::Tensor;
use brainssl_models::layers::layer_norm_plain;
use brainssl_models::TokenIndex;

/// mean(|pred − target|^e) / e.
pub fn power_loss(pred: Tensor<3>, target: Tensor<3>, exp: f64) -> Tensor<1> {
    let d = (pred - target).abs();
    let d = if exp == 1.0 {
        d
    } else if exp == 2.0 {
        d.clone() * d
    } else {
        d.powf_scalar(exp)
    };
    d.mean().div_scalar(exp)
}

/// Teacher output [B, N, D] → parameter-free LayerNorm (eps 1e-5) → gathered at the targets.
pub fn jepa_targets(teacher_out: Tensor<3>, tgt: &TokenIndex) -> Tensor<3> {
    tgt.gather(layer_norm_plain(teacher_out, 1e-5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_backend::{Device, TensorData};

    #[test]
    fn power_loss_closed_forms() {
        let d = Device::flex();
        let a = Tensor::<3>::from_data(TensorData::new(vec![1.0f32, -2.0, 3.0, 0.5], [1, 2, 2]), &d);
        let z = Tensor::<3>::zeros([1, 2, 2], &d);
        let l1 = power_loss(a.clone(), z.clone(), 1.0).into_scalar::<f32>();
        assert!((l1 - 6.5 / 4.0).abs() < 1e-6);
        let l2 = power_loss(a, z, 2.0).into_scalar::<f32>();
        assert!((l2 - (1.0 + 4.0 + 9.0 + 0.25) / 4.0 / 2.0).abs() < 1e-6);
    }

    #[test]
    fn targets_are_layer_normalised_per_token() {
        let d = Device::flex();
        let h = Tensor::<3>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 14.0], [1, 2, 4]),
            &d,
        );
        let t = jepa_targets(h, &TokenIndex::Shared(vec![1]))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        // token 1: mean 11, biased var 3 → (x − 11)/sqrt(3 + 1e-5)
        let s = (3.0f64 + 1e-5).sqrt();
        for (v, x) in t.iter().zip([10.0, 10.0, 10.0, 14.0]) {
            assert!((*v as f64 - (x - 11.0) / s).abs() < 1e-5);
        }
    }
}
