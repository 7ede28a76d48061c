//! One micro-step of each objective on one device: forward, loss, backward (SPEC 4.1-4.5, 7).

use brainssl_backend::burn;
use brainssl_backend::burn::module::Module;
use brainssl_backend::burn::optim::GradientsParams;
use brainssl_backend::{Device, Tensor, TensorData};
use brainssl_models::{MaskedPredictor, TokenIndex, VisionTransformer3d};
use brainssl_objectives::{jepa_targets, mae_targets, mosaic, power_loss};

use crate::config::{Objective, PretrainConfig};
use crate::telemetry::{spread, Spread};

/// The trained modules: the encoder and its predictor (JEPA) or decoder (MAE). Parameter paths
/// are `encoder.…` and `head.…`.
#[derive(Module, Debug)]
pub struct Student {
    pub encoder: VisionTransformer3d,
    pub head: MaskedPredictor,
}

impl Student {
    pub fn init(cfg: &PretrainConfig, rng: &mut brainssl_prep::Rng, device: &Device) -> Self {
        let encoder = cfg.encoder.init(rng, device);
        let d = cfg.encoder.embed_dim;
        let out = if cfg.objective.is_mae() {
            cfg.encoder.patch * cfg.encoder.patch * cfg.encoder.tubelet * cfg.encoder.in_chans
        } else {
            d
        };
        let head = cfg.predictor.init(d, out, rng, device);
        Student { encoder, head }
    }
}

/// What one micro-step does besides the data: masks and the spectral decision.
pub struct StepPlan<'a> {
    pub ctx: &'a TokenIndex,
    pub tgt: &'a TokenIndex,
    /// λ_eff/n when this is a spectral step (SPEC 4.3), else None.
    pub spectral_weight: Option<f64>,
    /// The cached spectral value and its weight, added to the logged loss on other steps.
    pub cached_spectral: f64,
    pub cached_weight: f64,
    pub accum_steps: usize,
    pub telemetry: bool,
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
}

/// The volumes of one replica's micro-step: [B, 1, T, S, S] row-major.
#[derive(Clone, Copy)]
pub struct Shard<'a> {
    pub data: &'a [f32],
    pub shape: [usize; 5],
}

pub struct StepResult {
    pub parts: LossParts,
    /// None when the loss was not finite: no backward ran.
    pub grads: Option<GradientsParams>,
}

fn scalar(t: &Tensor<1>) -> f64 {
    t.clone().into_scalar::<f32>() as f64
}

/// Forward and backward of one shard `x` = [B, 1, T, S, S] on the student's device. The teacher
/// (JEPA) lives on the plain `base` device.
pub fn micro_step(
    cfg: &PretrainConfig,
    student: &Student,
    teacher: Option<&VisionTransformer3d>,
    shard: Shard,
    plan: &StepPlan,
    device: &Device,
    base: &Device,
) -> StepResult {
    let Shard { data, shape } = shard;
    let x = Tensor::<5>::from_data(TensorData::new(data.to_vec(), shape), device);
    let [_, _, t, s, _] = shape;
    let grid = cfg.encoder.grid(t, s);
    let p = cfg.encoder.patch;
    let mut parts = LossParts {
        spectral: -1.0,
        ..Default::default()
    };
    let z = student.encoder.forward(x.clone(), Some(plan.ctx));
    let loss = match cfg.objective {
        Objective::Mae | Objective::SlMae => {
            let pred = student.head.forward(z, plan.ctx, plan.tgt, grid);
            let l_main = power_loss(pred.clone(), mae_targets(x.clone(), p, plan.tgt), cfg.loss_exp);
            parts.main = scalar(&l_main);
            parts.total = parts.main + plan.cached_weight * plan.cached_spectral;
            match plan.spectral_weight {
                Some(w) => {
                    let recon = mosaic(x.clone(), pred, plan.ctx, plan.tgt, p);
                    let l_spec = cfg.spectral.loss.forward(recon, x);
                    let v = scalar(&l_spec);
                    // SPEC 4.2 step 8: NaN, ±Inf or > 1e3 is replaced by a constant 0
                    if v.is_finite() && v <= 1e3 {
                        parts.spectral = v;
                        parts.total = parts.main + w * v;
                        l_main + l_spec.mul_scalar(w)
                    } else {
                        parts.spectral = 0.0;
                        parts.total = parts.main;
                        l_main
                    }
                }
                None => l_main,
            }
        }
        Objective::Jepa | Objective::VcrJepa => {
            let teacher = teacher.expect("JEPA needs a teacher");
            let x_plain = Tensor::<5>::from_data(TensorData::new(data.to_vec(), shape), base);
            let h = jepa_targets(teacher.forward(x_plain, None), plan.tgt);
            if plan.telemetry {
                parts.target_spread = Some(spread(h.clone()));
            }
            let h = Tensor::from_inner(h).to_device(device);
            let pred = student.head.forward(z.clone(), plan.ctx, plan.tgt, grid);
            let l_main = power_loss(pred, h.clone(), cfg.loss_exp);
            parts.main = scalar(&l_main);
            // VCR on [context ; detached targets], always computed and logged (SPEC 4.5)
            let terms = cfg.vcr.loss.forward(Tensor::cat(vec![z, h.detach()], 1));
            parts.vcr_var = scalar(&terms.variance);
            parts.vcr_cov = scalar(&terms.covariance);
            parts.vcr = scalar(&terms.total);
            parts.total = parts.main + cfg.vcr.reg_coeff * parts.vcr;
            if cfg.vcr.reg_coeff > 0.0 {
                l_main + terms.total.mul_scalar(cfg.vcr.reg_coeff)
            } else {
                l_main
            }
        }
    };
    if !parts.total.is_finite() {
        return StepResult { parts, grads: None };
    }
    let loss = if plan.accum_steps > 1 {
        loss.div_scalar(plan.accum_steps as f64)
    } else {
        loss
    };
    let grads = GradientsParams::from_grads(loss.backward(), student);
    StepResult {
        parts,
        grads: Some(grads),
    }
}
