//! The EMA target encoder of JEPA (docs/method.md#ema-teacher): its own frozen variable store,
//! updated in place from the student's encoder after every micro-step.

use brainssl_backend::tch::nn::VarStore;
use brainssl_backend::{tch, Device, Tensor};
use brainssl_models::{named_params, VisionTransformer3d, VitConfig};
use brainssl_prep::rng::Rng;

/// A frozen copy of an encoder; variable paths are the encoder's own (`blocks.0.…`).
pub struct Teacher {
    pub vs: VarStore,
    pub encoder: VisionTransformer3d,
    /// (teacher variable, student variable) pairs, in path order.
    pairs: Vec<(Tensor, Tensor)>,
}

impl Teacher {
    /// A teacher on `device` holding a copy of the student variables under `student_prefix`.
    pub fn copy_of(config: &VitConfig, student: &VarStore, student_prefix: &str, device: Device) -> Self {
        let mut vs = VarStore::new(device);
        // any initial values: every variable is overwritten by the copy below
        let encoder = config.init(vs.root(), &mut Rng::new(0));
        vs.freeze();
        let source: std::collections::HashMap<String, Tensor> = named_params(student)
            .into_iter()
            .filter_map(|(k, t)| k.strip_prefix(student_prefix).map(|k| (k.to_string(), t)))
            .collect();
        let pairs = named_params(&vs)
            .into_iter()
            .map(|(k, t)| {
                let s = source
                    .get(&k)
                    .unwrap_or_else(|| panic!("teacher variable {k} has no student twin"))
                    .shallow_clone();
                (t, s)
            })
            .collect();
        let teacher = Teacher { vs, encoder, pairs };
        teacher.update(0.0);
        teacher
    }

    /// θ_t ← m·θ_t + (1 − m)·θ_s for every variable.
    pub fn update(&self, momentum: f64) {
        tch::no_grad(|| {
            for (t, s) in &self.pairs {
                let mut t = t.shallow_clone();
                if momentum == 0.0 {
                    t.copy_(s);
                } else {
                    let _ = t.lerp_(s, 1.0 - momentum);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_backend::to_vec;
    use brainssl_models::VitSize;

    #[test]
    fn copy_then_average() {
        let mut cfg = VitConfig::sized(VitSize::Tiny);
        cfg.depth = 1;
        let student = VarStore::new(Device::Cpu);
        cfg.init(student.root() / "encoder", &mut Rng::new(1));
        let teacher = Teacher::copy_of(&cfg, &student, "encoder.", Device::Cpu);
        let vals = |vs: &VarStore, prefix: &str| {
            named_params(vs)
                .into_iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(_, t)| to_vec(&t))
                .collect::<Vec<_>>()
        };
        let a = vals(&student, "encoder.");
        assert_eq!(vals(&teacher.vs, ""), a);
        // move the student, then average: 0.75·teacher + 0.25·student
        let other = VarStore::new(Device::Cpu);
        cfg.init(other.root() / "encoder", &mut Rng::new(2));
        let b = vals(&other, "encoder.");
        tch::no_grad(|| {
            for ((_, s), (_, o)) in named_params(&student).iter().zip(named_params(&other).iter()) {
                s.shallow_clone().copy_(o);
            }
        });
        teacher.update(0.75);
        let m = vals(&teacher.vs, "");
        for k in [0, 3] {
            for i in 0..10 {
                assert!((m[k][i] - (0.75 * a[k][i] + 0.25 * b[k][i])).abs() < 1e-6);
            }
        }
        assert!(named_params(&teacher.vs).iter().all(|(_, t)| !t.requires_grad()));
    }
}
