//! One micro-step of each objective: forward, loss, backward (docs/method.md#objectives,
//! docs/method.md#micro-step-order).

use brainssl_backend::tch::nn::VarStore;
use brainssl_backend::{autocast, scalar, tch, Device, Precision, Tensor};
use brainssl_models::{named_params, MaskedPredictor, TokenIndex, VisionTransformer3d};
use brainssl_objectives::{jepa_targets, mae_targets, mosaic, power_loss};
use brainssl_prep::Rng;

use crate::config::{Objective, PretrainConfig};
use crate::spectral_state::SpectralStep;
use crate::telemetry::{spread, Spread};

/// The trained modules: the encoder and its predictor (JEPA) or decoder (MAE), in one store with
/// paths `encoder.…` and `head.…`.
pub struct Student {
    pub vs: VarStore,
    pub encoder: VisionTransformer3d,
    pub head: MaskedPredictor,
    /// Trainable variables in path order (what the optimiser steps).
    pub params: Vec<(String, Tensor)>,
}

impl Student {
    pub fn init(cfg: &PretrainConfig, rng: &mut Rng, device: Device) -> Self {
        let vs = VarStore::new(device);
        let encoder = cfg.encoder.init(vs.root() / "encoder", rng);
        let out = cfg.objective.head_width(&cfg.encoder);
        let head = cfg.predictor.init(vs.root() / "head", cfg.encoder.embed_dim, out, rng);
        let params = named_params(&vs);
        Student {
            vs,
            encoder,
            head,
            params,
        }
    }
}

/// What one micro-step does besides the data: masks, the spectral decision, precision.
pub struct StepPlan<'a> {
    pub ctx: &'a TokenIndex,
    pub tgt: &'a TokenIndex,
    pub spectral: SpectralStep,
    pub accum_steps: usize,
    pub telemetry: bool,
    pub precision: Precision,
}

/// Logged scalars of one micro-step (undivided by accumulation).
#[derive(Debug, Clone, Default)]
pub struct LossParts {
    pub total: f64,
    /// ½·MSE (MAE) or L1 (JEPA)
    pub main: f64,
    /// Spectral loss when computed this step (−1 otherwise), as the reference logs it.
    pub spectral: f64,
    pub vcr_var: f64,
    pub vcr_cov: f64,
    pub vcr: f64,
    pub target_spread: Option<Spread>,
    /// Whether the loss was finite and its gradient was accumulated.
    pub backward: bool,
    /// A spectral value that was NaN, infinite or above 1e3 and was replaced by 0
    /// (docs/method.md#spectral-loss).
    pub spectral_replaced: Option<f64>,
}

/// Forward and backward of a batch `x` = [B, 1, T, S, S] (on the student's device). The gradient of
/// loss / accum_steps accumulates into the student's variables; a non-finite loss runs no backward.
pub fn micro_step(
    cfg: &PretrainConfig,
    student: &Student,
    teacher: Option<&VisionTransformer3d>,
    x: &Tensor,
    plan: &StepPlan,
) -> LossParts {
    let s = x.size();
    let grid = cfg.encoder.grid(s[2] as usize, s[3] as usize);
    let p = cfg.encoder.patch;
    let mut parts = LossParts {
        spectral: -1.0,
        ..Default::default()
    };
    let loss = autocast(plan.precision, || {
        let z = student.encoder.forward(x, Some(plan.ctx));
        match cfg.objective {
            Objective::Mae | Objective::SlMae => {
                let pred = student.head.forward(&z, plan.ctx, plan.tgt, grid);
                let l_main = power_loss(&pred, &mae_targets(x, p, plan.tgt), cfg.loss_exp);
                parts.main = scalar(&l_main);
                let sp = &plan.spectral;
                parts.total = parts.main + sp.cached_weight * sp.cached;
                match sp.weight {
                    Some(w) => {
                        let recon = mosaic(x, &pred, plan.ctx, plan.tgt, p);
                        let l_spec = cfg.spectral.loss.forward(&recon, x);
                        let v = scalar(&l_spec);
                        // NaN, ±Inf or > 1e3 is replaced by a constant 0
                        // (docs/method.md#spectral-loss)
                        if v.is_finite() && v <= 1e3 {
                            parts.spectral = v;
                            parts.total = parts.main + w * v;
                            l_main + l_spec * w
                        } else {
                            parts.spectral = 0.0;
                            parts.spectral_replaced = Some(v);
                            parts.total = parts.main;
                            l_main
                        }
                    }
                    None => l_main,
                }
            }
            Objective::Jepa | Objective::VcrJepa => {
                let teacher = teacher.expect("JEPA needs a teacher");
                let h = tch::no_grad(|| jepa_targets(&teacher.forward(x, None), plan.tgt));
                if plan.telemetry {
                    parts.target_spread = Some(spread(&h));
                }
                let pred = student.head.forward(&z, plan.ctx, plan.tgt, grid);
                let l_main = power_loss(&pred, &h, cfg.loss_exp);
                parts.main = scalar(&l_main);
                parts.total = parts.main;
                if s[0] < 2 {
                    // its variance is over the batch: not defined for one volume (logged as NaN)
                    (parts.vcr_var, parts.vcr_cov, parts.vcr) = (f64::NAN, f64::NAN, f64::NAN);
                    return l_main;
                }
                // VCR on [context ; detached targets] in float32, computed and logged even at
                // coefficient 0 (docs/method.md#vcr-jepa)
                let trained = cfg.vcr.reg_coeff > 0.0;
                // logged only: no graph through the context embeddings
                let z = if trained { z } else { z.detach() };
                let terms = cfg.vcr.loss.forward(&Tensor::cat(&[z, h], 1));
                parts.vcr_var = scalar(&terms.variance);
                parts.vcr_cov = scalar(&terms.covariance);
                parts.vcr = scalar(&terms.total);
                if trained {
                    parts.total += cfg.vcr.reg_coeff * parts.vcr;
                    l_main + terms.total * cfg.vcr.reg_coeff
                } else {
                    l_main
                }
            }
        }
    });
    if parts.total.is_finite() {
        (loss / plan.accum_steps as f64).backward();
        parts.backward = true;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ema::Teacher;
    use crate::optim::{group_norms, zero_grads};
    use brainssl_backend::tensor;

    fn small(preset: &str) -> PretrainConfig {
        let mut cfg = PretrainConfig::preset(preset).unwrap();
        (cfg.data.prep.depth, cfg.data.prep.size) = (16, 32);
        cfg
    }

    fn batch(b: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..b * 16 * 32 * 32).map(|_| rng.normal() as f32).collect()
    }

    /// A fresh student (and teacher) and fixed masks over the 2×4×4 grid of 16×32×32 volumes.
    struct Fixture {
        student: Student,
        teacher: Option<Teacher>,
        ctx: TokenIndex,
        tgt: TokenIndex,
    }

    impl Fixture {
        fn new(cfg: &PretrainConfig) -> Self {
            let student = Student::init(cfg, &mut Rng::new(3), Device::Cpu);
            let teacher = cfg
                .objective
                .needs_teacher()
                .then(|| Teacher::copy_of(&cfg.encoder, &student.vs, "encoder.", Device::Cpu));
            Fixture {
                student,
                teacher,
                ctx: TokenIndex::Shared((0..20).collect()),
                tgt: TokenIndex::Shared((20..32).collect()),
            }
        }

        /// One micro-step on `data` ([b, 1, 16, 32, 32]); `spectral`: the spectral weight, if any.
        fn step(
            &self,
            cfg: &PretrainConfig,
            data: &[f32],
            b: usize,
            accum: usize,
            spectral: Option<f64>,
            precision: Precision,
        ) -> LossParts {
            let plan = StepPlan {
                ctx: &self.ctx,
                tgt: &self.tgt,
                spectral: SpectralStep {
                    weight: spectral,
                    lambda: 1.0,
                    cached: 0.0,
                    cached_weight: 0.0,
                },
                accum_steps: accum,
                telemetry: false,
                precision,
            };
            let x = tensor(data, &[b, 1, 16, 32, 32], Device::Cpu);
            micro_step(cfg, &self.student, self.teacher.as_ref().map(|t| &t.encoder), &x, &plan)
        }
    }

    /// Loss and the two group gradient norms of one step on `data` from a fresh student.
    fn one_step(cfg: &PretrainConfig, data: &[f32], b: usize, precision: Precision) -> (f64, [f64; 2]) {
        let f = Fixture::new(cfg);
        let parts = f.step(cfg, data, b, 1, (cfg.spectral.coeff > 0.0).then_some(0.5), precision);
        assert!(parts.backward);
        let n = group_norms(&f.student.params, &["encoder.", "head."]);
        (parts.total, [n[0], n[1]])
    }

    /// bf16 matrix products with float32 weights, norms and losses: the loss within 1 % and each
    /// module's gradient norm within 5 % of the float32 step, for every objective.
    #[test]
    fn bf16_steps_stay_close_to_f32_for_every_objective() {
        let data = batch(4, 11);
        for preset in ["tiny-mae", "tiny-sl-mae", "tiny-jepa", "tiny-vcr-jepa"] {
            let cfg = small(preset);
            let (l32, g32) = one_step(&cfg, &data, 4, Precision::F32);
            let (l16, g16) = one_step(&cfg, &data, 4, Precision::Bf16);
            let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-12);
            assert!(rel(l16, l32) < 0.01, "{preset}: loss bf16 {l16} vs f32 {l32}");
            for k in 0..2 {
                assert!(
                    rel(g16[k], g32[k]) < 0.05,
                    "{preset}: grad norm {k} bf16 {} vs f32 {}",
                    g16[k],
                    g32[k]
                );
            }
        }
    }

    /// Gradient accumulation: two micro-steps on halves with accum 2 give the whole batch's gradient
    /// (the MAE and JEPA losses are means over equal halves).
    #[test]
    fn accumulated_halves_equal_the_whole_batch() {
        let data = batch(4, 12);
        let half = data.len() / 2;
        for preset in ["tiny-mae", "tiny-jepa"] {
            let cfg = small(preset);
            let f = Fixture::new(&cfg);
            let student = &f.student;
            let run = |d: &[f32], b: usize, accum: usize| {
                f.step(&cfg, d, b, accum, None, Precision::F32);
            };
            let grads = || -> Vec<Tensor> { student.params.iter().map(|(_, p)| p.grad().copy()).collect() };
            zero_grads(&student.params);
            run(&data, 4, 1);
            let full = grads();
            zero_grads(&student.params);
            run(&data[..half], 2, 2);
            run(&data[half..], 2, 2);
            for ((path, _), (a, b)) in student.params.iter().zip(full.iter().zip(grads())) {
                let scale = scalar(&a.abs().max()).max(1e-12);
                let diff = scalar(&(a - b).abs().max());
                assert!(diff <= 1e-4 * scale, "{preset} {path}: {diff} vs scale {scale}");
            }
        }
    }
}
