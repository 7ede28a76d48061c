//! The EMA target encoder of JEPA (SPEC 4.6).
//!
//! The teacher is its own module on the plain (non-autodiff) device, with weights copied in: a
//! `no_grad` clone of the student would share lazily initialised parameters with it (PITFALLS).

use std::collections::HashMap;

use brainssl_backend::{Device, Tensor};
use brainssl_models::{map_params, named_params, VisionTransformer3d, VitConfig};
use brainssl_prep::rng::Rng;

/// θ_t ← m·θ_t + (1 − m)·θ_s for every parameter.
pub fn ema_update(teacher: VisionTransformer3d, student: &VisionTransformer3d, momentum: f64) -> VisionTransformer3d {
    let source: HashMap<String, Tensor<1>> = named_params(student)
        .into_iter()
        .map(|p| (p.path, p.value.flat().inner()))
        .collect();
    map_params(teacher, |path, t| {
        let s = source
            .get(path)
            .unwrap_or_else(|| panic!("teacher parameter {path} has no student twin"))
            .clone();
        if momentum == 0.0 {
            Some(s)
        } else {
            Some(t.mul_scalar(momentum) + s.mul_scalar(1.0 - momentum))
        }
    })
}

/// A teacher on `device` holding a copy of the student's weights.
pub fn teacher_of(config: &VitConfig, student: &VisionTransformer3d, device: &Device) -> VisionTransformer3d {
    // any initial values: every parameter is overwritten by the copy
    let blank = config.init(&mut Rng::new(0), device);
    ema_update(blank, student, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_models::VitSize;

    #[test]
    fn copy_then_average() {
        let mut cfg = VitConfig::sized(VitSize::Tiny);
        cfg.depth = 1;
        let device = Device::flex();
        let student = cfg.init(&mut Rng::new(1), &device.clone().autodiff());
        let teacher = teacher_of(&cfg, &student, &device);
        let vals = |m: &VisionTransformer3d| named_params(m).iter().map(|p| p.value.to_vec()).collect::<Vec<_>>();
        assert_eq!(vals(&teacher), vals(&student));
        let other = cfg.init(&mut Rng::new(2), &device.clone().autodiff());
        let mixed = ema_update(teacher, &other, 0.75);
        let (a, b, m) = (vals(&student), vals(&other), vals(&mixed));
        for k in [0, 3] {
            for i in 0..10 {
                assert!((m[k][i] - (0.75 * a[k][i] + 0.25 * b[k][i])).abs() < 1e-6);
            }
        }
        assert!(!named_params(&mixed)[0].value.flat().is_autodiff());
    }
}
