//! AdamW as PyTorch computes it, with the reference's parameter groups and global-norm clipping
//! (docs/method.md#optimisation), on libtorch tensors.
//!
//! Written here rather than taken from libtorch's optimiser because the reference needs three
//! things together: a weight-decay value that changes every step, decay switched off by parameter
//! name and rank, and clipping by the global norm of each module. State is keyed by parameter path,
//! so checkpoints are readable and stable across runs.

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, bail, Result};
use brainssl_backend::{scalar, tch, tensor, to_vec, Device, Tensor};

/// First and second moments and the step count of one parameter (same shape and device).
#[derive(Debug)]
pub struct Moments {
    pub m: Tensor,
    pub v: Tensor,
    pub t: u64,
}

/// Whether a parameter is weight-decayed: not for biases and rank-1 tensors (norms, conv bias).
pub fn is_decayed(path: &str, shape: &[i64]) -> bool {
    !(path.ends_with("bias") || shape.len() == 1)
}

/// Parameters as (path, tensor), with gradients after a backward pass.
pub type Params = [(String, Tensor)];

/// How one step treats the parameters: norm groups by path prefix, each with an optional clipping
/// threshold, and a per-parameter lr multiplier (layer-wise decay).
pub struct StepRules<'a> {
    pub groups: &'a [&'a str],
    pub clips: &'a [Option<f64>],
    pub lr_scale: &'a dyn Fn(&str) -> f64,
}

/// Global L2 norm of the gradients of each group of parameter paths (by prefix), as
/// `clip_grad_norm_` computes it (parameters without a gradient count as zero).
pub fn group_norms(params: &Params, prefixes: &[&str]) -> Vec<f64> {
    prefixes
        .iter()
        .map(|prefix| {
            let norms: Vec<Tensor> = params
                .iter()
                .filter(|(path, p)| path.starts_with(prefix) && p.grad().defined())
                .map(|(_, p)| p.grad().norm())
                .collect();
            if norms.is_empty() {
                0.0
            } else {
                scalar(&Tensor::stack(&norms, 0).norm())
            }
        })
        .collect()
}

/// Zeroes every gradient (the next backward pass accumulates from zero).
pub fn zero_grads(params: &Params) {
    for (_, p) in params {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.detach_();
            let _ = g.zero_();
        }
    }
}

/// Outcome of one optimiser step.
#[derive(Debug, Clone, Default)]
pub struct StepReport {
    /// Gradient norm of each group before clipping.
    pub norms: Vec<f64>,
}

#[derive(Debug)]
pub struct AdamW {
    pub betas: (f64, f64),
    pub eps: f64,
    pub state: BTreeMap<String, Moments>,
}

impl AdamW {
    pub fn new(betas: (f64, f64), eps: f64) -> Self {
        AdamW {
            betas,
            eps,
            state: BTreeMap::new(),
        }
    }

    /// One step on every parameter that has a gradient, every group clipped to `clip` when set.
    pub fn step(
        &mut self,
        params: &Params,
        lr: f64,
        weight_decay: f64,
        groups: &[&str],
        clip: Option<f64>,
    ) -> StepReport {
        let clips = vec![clip; groups.len()];
        let rules = StepRules {
            groups,
            clips: &clips,
            lr_scale: &|_| 1.0,
        };
        self.step_with(params, lr, weight_decay, &rules)
    }

    /// [`AdamW::step`] with one clipping threshold per group and per-parameter lr multipliers.
    /// Clipping scales each group's gradients by max_norm/(norm + 1e-6) when that is below 1
    /// (PyTorch's `clip_grad_norm_`).
    pub fn step_with(&mut self, params: &Params, lr: f64, weight_decay: f64, rules: &StepRules) -> StepReport {
        let norms = group_norms(params, rules.groups);
        let clip_scale = |path: &str| -> f64 {
            rules
                .groups
                .iter()
                .zip(&norms)
                .zip(rules.clips)
                .find(|((prefix, _), _)| path.starts_with(**prefix))
                .and_then(|((_, n), max)| max.map(|m| (m / (n + 1e-6)).min(1.0)))
                .unwrap_or(1.0)
        };
        let (b1, b2) = self.betas;
        tch::no_grad(|| {
            for (path, p) in params {
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                let scale = clip_scale(path);
                if scale < 1.0 {
                    let _ = g.g_mul_scalar_(scale);
                }
                let s = self.state.entry(path.clone()).or_insert_with(|| Moments {
                    m: p.zeros_like(),
                    v: p.zeros_like(),
                    t: 0,
                });
                s.t += 1;
                let _ = s.m.lerp_(&g, 1.0 - b1);
                let _ = s.v.g_mul_scalar_(b2);
                let _ = s.v.addcmul_(&(&g * (1.0 - b2)), &g);
                let bc1 = 1.0 - b1.powi(s.t as i32);
                let bc2 = 1.0 - b2.powi(s.t as i32);
                let lr = lr * (rules.lr_scale)(path);
                let mut p = p.shallow_clone();
                if weight_decay > 0.0 && is_decayed(path, &p.size()) {
                    let _ = p.g_mul_scalar_(1.0 - lr * weight_decay);
                }
                let denom = s.v.sqrt() / bc2.sqrt() + self.eps;
                let _ = p.addcdiv_(&(&s.m * (-lr / bc1)), &denom);
            }
        });
        StepReport { norms }
    }

    /// Moments as named host arrays (`m.<path>`, `v.<path>`, `t.<path>`) for a checkpoint.
    pub fn export(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut out = Vec::with_capacity(self.state.len() * 3);
        for (path, s) in &self.state {
            let shape: Vec<usize> = s.m.size().iter().map(|&d| d as usize).collect();
            out.push((format!("m.{path}"), shape.clone(), to_vec(&s.m)));
            out.push((format!("v.{path}"), shape, to_vec(&s.v)));
            // step counts below 2^24 are exact in f32; store as two halves to be safe beyond
            out.push((
                format!("t.{path}"),
                vec![2],
                vec![(s.t >> 24) as f32, (s.t & 0xFF_FFFF) as f32],
            ));
        }
        out
    }

    /// Restores moments written by [`AdamW::export`] onto `device`.
    pub fn import(&mut self, tensors: &HashMap<String, (Vec<usize>, Vec<f32>)>, device: Device) -> Result<()> {
        self.state.clear();
        for (name, (shape, m)) in tensors {
            let Some(path) = name.strip_prefix("m.") else { continue };
            let get = |prefix: &str| {
                tensors
                    .get(&format!("{prefix}.{path}"))
                    .ok_or_else(|| anyhow!("optimiser state for {path} lacks '{prefix}'"))
            };
            let (_, v) = get("v")?;
            let (_, t) = get("t")?;
            if v.len() != m.len() || t.len() != 2 {
                bail!("optimiser state for {path} is malformed");
            }
            self.state.insert(
                path.to_string(),
                Moments {
                    m: tensor(m, shape, device),
                    v: tensor(v, shape, device),
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
    use brainssl_backend::Kind;

    fn toy() -> Vec<(String, Tensor)> {
        let w = tensor(&[0.5, -1.0, 2.0, 0.25], &[2, 2], Device::Cpu).set_requires_grad(true);
        let b = tensor(&[0.1, -0.2], &[2], Device::Cpu).set_requires_grad(true);
        vec![("weight".into(), w), ("bias".into(), b)]
    }

    /// loss = Σ c·w + d·Σ b², gradients c and 2·d·b.
    fn backward(params: &[(String, Tensor)], c: [f32; 4], d: f64) {
        zero_grads(params);
        let c = tensor(&c, &[2, 2], Device::Cpu);
        let loss = (&params[0].1 * c).sum(Kind::Float) + params[1].1.square().sum(Kind::Float) * d;
        loss.backward();
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
        let params = toy();
        let mut opt = AdamW::new((0.9, 0.975), 1e-8);
        let (lr, wd) = (0.1, 0.05);
        let steps = [[1.0f32, -2.0, 0.5, 3.0], [0.5, 1.0, -1.0, 2.0], [-1.0, 0.25, 0.5, 0.0]];
        let mut bias_grads = vec![vec![]; 2];
        for c in steps {
            let b = to_vec(&params[1].1);
            for i in 0..2 {
                bias_grads[i].push(2.0 * 0.5 * b[i] as f64);
            }
            backward(&params, c, 0.5);
            opt.step(&params, lr, wd, &[""], None);
        }
        let w = to_vec(&params[0].1);
        for (i, p0) in [0.5, -1.0, 2.0, 0.25].iter().enumerate() {
            let gs: Vec<f64> = steps.iter().map(|c| c[i] as f64).collect();
            let want = reference(*p0, &gs, lr, wd, (0.9, 0.975), 1e-8);
            assert!((w[i] as f64 - want).abs() < 1e-5, "weight {i}: {} vs {want}", w[i]);
        }
        // the bias is not decayed
        let b = to_vec(&params[1].1);
        for (i, p0) in [0.1, -0.2].iter().enumerate() {
            let want = reference(*p0, &bias_grads[i], lr, 0.0, (0.9, 0.975), 1e-8);
            assert!((b[i] as f64 - want).abs() < 1e-5, "bias {i}: {} vs {want}", b[i]);
        }
        assert_eq!(opt.state["weight"].t, 3);
    }

    #[test]
    fn clips_by_the_global_norm_of_each_group() {
        let params = toy();
        // weight grads (3, 4, 0, 0): norm 5; bias grads 2·d·b = (0, 0) with d = 0
        backward(&params, [3.0, 4.0, 0.0, 0.0], 0.0);
        // eps = 1 makes the first Adam step depend on the gradient's scale
        let mut opt = AdamW::new((0.9, 0.999), 1.0);
        let report = opt.step(&params, 1.0, 0.0, &["weight", "bias"], Some(1.0));
        assert!((report.norms[0] - 5.0).abs() < 1e-5 && report.norms[1] == 0.0);
        let w = to_vec(&params[0].1);
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
        let params = toy();
        backward(&params, [1.0, 2.0, 3.0, 4.0], 1.0);
        let mut opt = AdamW::new((0.9, 0.975), 1e-8);
        opt.step(&params, 0.1, 0.0, &[""], None);
        let map: HashMap<String, (Vec<usize>, Vec<f32>)> =
            opt.export().into_iter().map(|(k, s, v)| (k, (s, v))).collect();
        let mut back = AdamW::new((0.9, 0.975), 1e-8);
        back.import(&map, Device::Cpu).unwrap();
        assert_eq!(back.state.len(), 2);
        assert_eq!(back.state["bias"].t, 1);
        assert_eq!(back.state["weight"].m.size(), vec![2, 2]);
        assert_eq!(to_vec(&back.state["weight"].v), to_vec(&opt.state["weight"].v));
    }
}
