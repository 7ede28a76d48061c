//! AdamW as PyTorch computes it, with the reference's parameter groups and global-norm clipping
//! (SPEC 4.7).
//!
//! Written here rather than taken from burn-optim because the reference needs three things that
//! optimiser lacks together: a weight-decay value that changes every step, decay switched off by
//! parameter name and rank, and clipping by the global norm over a module (burn clips per tensor).
//! State is keyed by parameter path, so checkpoints are readable and stable across runs.

use std::collections::{BTreeMap, HashMap};

use brainssl_backend::burn::module::{Module, ParamId};
use brainssl_backend::burn::optim::GradientsParams;
use brainssl_backend::{Device, Tensor, TensorData};
use brainssl_models::{map_params, named_params, NamedParam};

/// First and second moments (flat) and the step count of one parameter.
#[derive(Debug, Clone)]
pub struct Moments {
    pub m: Tensor<1>,
    pub v: Tensor<1>,
    pub t: u64,
}

/// Whether a parameter is weight-decayed: not for biases and rank-1 tensors (norms, conv bias).
pub fn is_decayed(path: &str, shape: &[usize]) -> bool {
    !(path.ends_with("bias") || shape.len() == 1)
}

#[derive(Debug, Clone)]
pub struct AdamW {
    pub betas: (f64, f64),
    pub eps: f64,
    pub state: BTreeMap<String, Moments>,
}

/// A gradient as a flat tensor, whatever the parameter's rank.
fn flat_grad(grads: &GradientsParams, p: &NamedParam) -> Option<Tensor<1>> {
    let id: ParamId = p.id;
    match p.shape.len() {
        1 => grads.get::<1>(id),
        2 => grads.get::<2>(id).map(|g| g.flatten(0, 1)),
        3 => grads.get::<3>(id).map(|g| g.flatten(0, 2)),
        4 => grads.get::<4>(id).map(|g| g.flatten(0, 3)),
        5 => grads.get::<5>(id).map(|g| g.flatten(0, 4)),
        r => panic!("{}: rank {r} parameters are not supported", p.path),
    }
}

/// Global L2 norm per group of parameter paths (by prefix), as `clip_grad_norm_` computes it.
pub fn group_norms(grads: &[(String, Tensor<1>)], prefixes: &[&str]) -> Vec<f64> {
    prefixes
        .iter()
        .map(|prefix| {
            let squares: Vec<Tensor<1>> = grads
                .iter()
                .filter(|(path, _)| path.starts_with(prefix))
                .map(|(_, g)| (g.clone() * g.clone()).sum())
                .collect();
            if squares.is_empty() {
                return 0.0;
            }
            (Tensor::cat(squares, 0).sum().into_scalar::<f32>() as f64).sqrt()
        })
        .collect()
}

/// Adds `more` into `acc` parameter by parameter (gradient accumulation without a module type bound).
pub fn add_grads<M: Module>(acc: &mut GradientsParams, mut more: GradientsParams, module: &M) {
    for p in named_params(module) {
        macro_rules! add {
            ($d:literal) => {{
                if let Some(b) = more.remove::<$d>(p.id) {
                    let sum = match acc.remove::<$d>(p.id) {
                        Some(a) => a + b,
                        None => b,
                    };
                    acc.register::<$d>(p.id, sum);
                }
            }};
        }
        match p.shape.len() {
            1 => add!(1),
            2 => add!(2),
            3 => add!(3),
            4 => add!(4),
            5 => add!(5),
            r => panic!("rank {r} parameter {}", p.path),
        }
    }
}

/// Outcome of one optimiser step.
#[derive(Debug, Clone, Default)]
pub struct StepReport {
    /// Gradient norm of each group before clipping.
    pub norms: Vec<f64>,
}

impl AdamW {
    pub fn new(betas: (f64, f64), eps: f64) -> Self {
        AdamW {
            betas,
            eps,
            state: BTreeMap::new(),
        }
    }

    /// One step on every parameter that has a gradient. `groups` are the path prefixes whose norms
    /// are reported and, when `clip` is set, clipped separately to that norm (PyTorch's coefficient
    /// max_norm/(norm + 1e-6), capped at 1).
    pub fn step<M: Module>(
        &mut self,
        module: M,
        grads: &GradientsParams,
        lr: f64,
        weight_decay: f64,
        groups: &[&str],
        clip: Option<f64>,
    ) -> (M, StepReport) {
        let clips = vec![clip; groups.len()];
        self.step_scaled(module, grads, lr, weight_decay, groups, &clips, &|_| 1.0)
    }

    /// [`AdamW::step`] with one clipping threshold per group and a per-parameter lr multiplier
    /// (layer-wise lr decay).
    #[allow(clippy::too_many_arguments)]
    pub fn step_scaled<M: Module>(
        &mut self,
        module: M,
        grads: &GradientsParams,
        lr: f64,
        weight_decay: f64,
        groups: &[&str],
        clips: &[Option<f64>],
        lr_scale: &dyn Fn(&str) -> f64,
    ) -> (M, StepReport) {
        let params = named_params(&module);
        let flat: Vec<(String, Tensor<1>)> = params
            .iter()
            .filter_map(|p| flat_grad(grads, p).map(|g| (p.path.clone(), g)))
            .collect();
        let norms = group_norms(&flat, groups);
        let scale_of = |path: &str| -> f64 {
            groups
                .iter()
                .zip(&norms)
                .zip(clips)
                .find(|((prefix, _), _)| path.starts_with(**prefix))
                .and_then(|((_, n), max)| max.map(|m| (m / (n + 1e-6)).min(1.0)))
                .unwrap_or(1.0)
        };
        let shapes: HashMap<&str, &[usize]> = params.iter().map(|p| (p.path.as_str(), p.shape.as_slice())).collect();
        let grads: HashMap<String, Tensor<1>> = flat.into_iter().collect();
        let (b1, b2) = self.betas;
        let eps = self.eps;
        let state = &mut self.state;
        let module = map_params(module, |path, value| {
            let g = grads.get(path)?.clone();
            let scale = scale_of(path);
            let g = if scale < 1.0 { g.mul_scalar(scale) } else { g };
            let p = value.inner();
            let moments = state.entry(path.to_string()).or_insert_with(|| Moments {
                m: p.zeros_like(),
                v: p.zeros_like(),
                t: 0,
            });
            moments.t += 1;
            moments.m = moments.m.clone().mul_scalar(b1) + g.clone().mul_scalar(1.0 - b1);
            moments.v = moments.v.clone().mul_scalar(b2) + (g.clone() * g).mul_scalar(1.0 - b2);
            let bc1 = 1.0 - b1.powi(moments.t as i32);
            let bc2 = 1.0 - b2.powi(moments.t as i32);
            let lr = lr * lr_scale(path);
            let decay = if is_decayed(path, shapes[path]) {
                weight_decay
            } else {
                0.0
            };
            let p = if decay > 0.0 { p.mul_scalar(1.0 - lr * decay) } else { p };
            let denom = moments.v.clone().div_scalar(bc2).sqrt().add_scalar(eps);
            let update = moments.m.clone().div_scalar(bc1) / denom;
            Some(p - update.mul_scalar(lr))
        });
        (module, StepReport { norms })
    }

    /// Moments as named host arrays (`m.<path>`, `v.<path>`, `t.<path>`) for a checkpoint.
    pub fn export(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut out = Vec::with_capacity(self.state.len() * 3);
        for (path, s) in &self.state {
            let n = s.m.dims()[0];
            let host = |t: &Tensor<1>| t.clone().into_data().convert::<f32>().try_to_vec::<f32>().expect("f32");
            out.push((format!("m.{path}"), vec![n], host(&s.m)));
            out.push((format!("v.{path}"), vec![n], host(&s.v)));
            // step counts below 2^24 are exact in f32; store as two halves to be safe beyond
            out.push((
                format!("t.{path}"),
                vec![2],
                vec![(s.t >> 24) as f32, (s.t & 0xFF_FFFF) as f32],
            ));
        }
        out
    }

    /// Restores moments written by [`AdamW::export`].
    pub fn import(&mut self, tensors: &HashMap<String, (Vec<usize>, Vec<f32>)>, device: &Device) -> Result<(), String> {
        self.state.clear();
        for (name, (shape, m)) in tensors {
            let Some(path) = name.strip_prefix("m.") else { continue };
            let get = |prefix: &str| {
                tensors
                    .get(&format!("{prefix}.{path}"))
                    .ok_or_else(|| format!("optimiser state for {path} lacks '{prefix}'"))
            };
            let (_, v) = get("v")?;
            let (_, t) = get("t")?;
            if v.len() != m.len() || t.len() != 2 {
                return Err(format!("optimiser state for {path} is malformed"));
            }
            let tensor = |x: &Vec<f32>| Tensor::from_data(TensorData::new(x.clone(), shape.clone()), device);
            self.state.insert(
                path.to_string(),
                Moments {
                    m: tensor(m),
                    v: tensor(v),
                    t: ((t[0] as u64) << 24) | t[1] as u64,
                },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brainssl_backend::burn;
    use brainssl_backend::burn::module::Param;

    #[derive(Module, Debug)]
    struct Toy {
        weight: Param<Tensor<2>>,
        bias: Param<Tensor<1>>,
    }

    fn toy(device: &Device) -> Toy {
        let w = Tensor::from_data(TensorData::new(vec![0.5f32, -1.0, 2.0, 0.25], [2, 2]), device);
        let b = Tensor::from_data(TensorData::new(vec![0.1f32, -0.2], [2]), device);
        Toy {
            weight: Param::from_tensor(w),
            bias: Param::from_tensor(b),
        }
    }

    /// loss = Σ c·w + Σ d·b², gradients c and 2·d·b.
    fn grads_of(t: &Toy, c: [f32; 4], d: f32) -> GradientsParams {
        let device = t.weight.val().device();
        let c = Tensor::<2>::from_data(TensorData::new(c.to_vec(), [2, 2]), &device);
        let b = t.bias.val();
        let loss = (t.weight.val() * c).sum() + (b.clone() * b).sum().mul_scalar(d);
        GradientsParams::from_grads(loss.backward(), t)
    }

    /// PyTorch's AdamW on one scalar, in f64.
    fn reference(p0: f64, grads: &[f64], lr: f64, wd: f64, (b1, b2): (f64, f64), eps: f64) -> f64 {
        let (mut p, mut m, mut v) = (p0, 0.0, 0.0);
        for (t, g) in grads.iter().enumerate() {
            let t = t as i32 + 1;
            p *= 1.0 - lr * wd;
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            p -= lr * (m / (1.0 - b1.powi(t))) / ((v / (1.0 - b2.powi(t))).sqrt() + eps);
        }
        p
    }

    #[test]
    fn matches_pytorch_adamw_with_decay_groups() {
        let device = Device::flex().autodiff();
        let mut t = toy(&device);
        let mut opt = AdamW::new((0.9, 0.975), 1e-8);
        let (lr, wd) = (0.1, 0.05);
        let steps = [[1.0f32, -2.0, 0.5, 3.0], [0.5, 1.0, -1.0, 2.0], [-1.0, 0.25, 0.5, 0.0]];
        let mut bias_grads = vec![vec![]; 2];
        for c in steps {
            let b = t.bias.val().into_data().try_to_vec::<f32>().unwrap();
            for i in 0..2 {
                bias_grads[i].push(2.0 * 0.5 * b[i] as f64);
            }
            let g = grads_of(&t, c, 0.5);
            t = opt.step(t, &g, lr, wd, &[""], None).0;
        }
        let w = t.weight.val().into_data().try_to_vec::<f32>().unwrap();
        for (i, p0) in [0.5, -1.0, 2.0, 0.25].iter().enumerate() {
            let gs: Vec<f64> = steps.iter().map(|c| c[i] as f64).collect();
            let want = reference(*p0, &gs, lr, wd, (0.9, 0.975), 1e-8);
            assert!((w[i] as f64 - want).abs() < 1e-5, "weight {i}: {} vs {want}", w[i]);
        }
        // the bias is not decayed
        let b = t.bias.val().into_data().try_to_vec::<f32>().unwrap();
        for (i, p0) in [0.1, -0.2].iter().enumerate() {
            let want = reference(*p0, &bias_grads[i], lr, 0.0, (0.9, 0.975), 1e-8);
            assert!((b[i] as f64 - want).abs() < 1e-5, "bias {i}: {} vs {want}", b[i]);
        }
        assert_eq!(opt.state["weight"].t, 3);
    }

    #[test]
    fn clips_by_the_global_norm_of_each_group() {
        let device = Device::flex().autodiff();
        let t = toy(&device);
        // weight grads (3, 4, 0, 0): norm 5; bias grads 2·d·b = (0, 0) with d = 0
        let g = grads_of(&t, [3.0, 4.0, 0.0, 0.0], 0.0);
        // eps = 1 makes the first Adam step depend on the gradient's scale
        let mut opt = AdamW::new((0.9, 0.999), 1.0);
        let (t2, report) = opt.step(t, &g, 1.0, 0.0, &["weight", "bias"], Some(1.0));
        assert!((report.norms[0] - 5.0).abs() < 1e-5 && report.norms[1] == 0.0);
        let w = t2.weight.val().into_data().try_to_vec::<f32>().unwrap();
        // clipped gradient (0.6, 0.8): update g/(|g| + 1)
        let scale = 1.0 / (5.0 + 1e-6);
        for (i, (p0, g)) in [(0.5, 3.0), (-1.0, 4.0)].iter().enumerate() {
            let gc = g * scale;
            let want = p0 - gc / (gc + 1.0);
            assert!((w[i] as f64 - want).abs() < 1e-5, "{} vs {want}", w[i]);
        }
    }

    #[test]
    fn state_round_trips() {
        let device = Device::flex().autodiff();
        let t = toy(&device);
        let g = grads_of(&t, [1.0, 2.0, 3.0, 4.0], 1.0);
        let mut opt = AdamW::new((0.9, 0.975), 1e-8);
        opt.step(t, &g, 0.1, 0.0, &[""], None);
        let map: HashMap<String, (Vec<usize>, Vec<f32>)> =
            opt.export().into_iter().map(|(k, s, v)| (k, (s, v))).collect();
        let mut back = AdamW::new((0.9, 0.975), 1e-8);
        back.import(&map, &Device::flex()).unwrap();
        assert_eq!(back.state.len(), 2);
        assert_eq!(back.state["bias"].t, 1);
        let host = |t: &Tensor<1>| t.clone().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(host(&back.state["weight"].v), host(&opt.state["weight"].v));
    }
}
