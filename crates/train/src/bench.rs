//! Timing of whole training steps (forward, backward, clipping, AdamW, EMA) on a synthetic batch,
//! for `brainssl bench train`. No data loading: it measures the model code only.

use std::time::Instant;

use brainssl_backend::{autocast, synchronize, tensor, Device};
use brainssl_models::TokenIndex;
use brainssl_prep::Rng;
use serde::Serialize;

use crate::config::PretrainConfig;
use crate::ema::Teacher;
use crate::optim::{zero_grads, AdamW};
use crate::parallel::DataParallel;
use crate::spectral_state::SpectralStep;
use crate::step::{micro_step, StepPlan, Student};

#[derive(Debug, Clone, Serialize)]
pub struct StepTimes {
    /// Milliseconds of each timed step (after warm-up), in order.
    pub ms: Vec<f64>,
    /// Of which forward + loss + backward (the rest: clipping, AdamW, EMA).
    pub forward_backward_ms: Vec<f64>,
    /// Of which the gradient all-reduce (data-parallel ranks; empty for one process).
    pub allreduce_ms: Vec<f64>,
    pub batch: usize,
    pub tokens: usize,
    pub context_tokens_mean: f64,
}

/// Median of a sample (NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

impl StepTimes {
    pub fn median(&self) -> f64 {
        median(&self.ms)
    }
}

/// Times the encoder's forward pass (no gradients) on whole volumes of `cfg`'s size, `batch` at a time.
pub fn time_embed(cfg: &PretrainConfig, batch: usize, warmup: usize, steps: usize, device: Device) -> StepTimes {
    let mut rng = Rng::new(cfg.seed);
    let vs = brainssl_backend::tch::nn::VarStore::new(device);
    let encoder = cfg.encoder.init(vs.root(), &mut rng);
    let (t, s) = (cfg.data.prep.depth, cfg.data.prep.size);
    let data: Vec<f32> = (0..batch * t * s * s).map(|_| rng.normal() as f32).collect();
    let x = tensor(&data, &[batch, 1, t, s, s], device);
    let precision = cfg.precision.resolve(device);
    let mut ms = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        synchronize(device);
        let start = Instant::now();
        let h = brainssl_backend::tch::no_grad(|| autocast(precision, || encoder.forward(&x, None)));
        std::hint::black_box(brainssl_backend::scalar(&h.sum(brainssl_backend::Kind::Float)));
        synchronize(device);
        if i >= warmup {
            ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let tokens = cfg.encoder.grid(t, s).iter().product();
    StepTimes {
        forward_backward_ms: ms.clone(),
        allreduce_ms: Vec::new(),
        ms,
        batch,
        tokens,
        context_tokens_mean: tokens as f64,
    }
}

/// Runs `warmup + steps` full steps; SL-MAE steps are all spectral (the costly kind). With several
/// ranks in `dp`, each step averages the gradients over them before the optimiser step.
pub fn time_steps(
    cfg: &PretrainConfig,
    warmup: usize,
    steps: usize,
    device: Device,
    dp: &mut DataParallel,
) -> anyhow::Result<StepTimes> {
    let mut rng = Rng::new(cfg.seed);
    let student = Student::init(cfg, &mut rng, device);
    let teacher = cfg
        .objective
        .needs_teacher()
        .then(|| Teacher::copy_of(&cfg.encoder, &student.vs, "encoder.", device));
    let mut opt = AdamW::new(cfg.optim.betas, cfg.optim.eps);
    let (t, s, b) = (cfg.data.prep.depth, cfg.data.prep.size, cfg.data.batch_size);
    let data: Vec<f32> = (0..b * t * s * s).map(|_| rng.normal() as f32).collect();
    let x = tensor(&data, &[b, 1, t, s, s], device);
    let grid = cfg.encoder.grid(t, s);
    let masker = cfg.masker().expect("valid mask config");
    let precision = cfg.precision.resolve(device);
    let weight = cfg.spectral.coeff / cfg.spectral.every as f64;
    let (mut ms, mut fb, mut ar) = (Vec::with_capacity(steps), Vec::with_capacity(steps), Vec::new());
    let mut ctx_total = 0usize;
    for i in 0..warmup + steps {
        let m = masker.sample(b, &mut rng);
        let (ctx, tgt) = (TokenIndex::from_rows(&m.context), TokenIndex::from_rows(&m.target));
        let plan = StepPlan {
            ctx: &ctx,
            tgt: &tgt,
            spectral: SpectralStep {
                weight: (cfg.spectral.coeff > 0.0).then_some(weight),
                lambda: cfg.spectral.coeff,
                cached: 0.0,
                cached_weight: 0.0,
            },
            accum_steps: 1,
            telemetry: false,
            precision,
        };
        synchronize(device);
        let start = Instant::now();
        let parts = micro_step(cfg, &student, teacher.as_ref().map(|t| &t.encoder), &x, &plan);
        assert!(parts.backward, "finite loss on random data");
        synchronize(device);
        let fb_ms = start.elapsed().as_secs_f64() * 1e3;
        if dp.world > 1 {
            let t = Instant::now();
            dp.average_grads(&student.params, cfg.dist.bucket_mib << 20)?;
            synchronize(device);
            if i >= warmup {
                ar.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        let clip = (cfg.optim.clip_grad > 0.0).then_some(cfg.optim.clip_grad);
        opt.step(
            &student.params,
            cfg.optim.lr,
            cfg.optim.weight_decay,
            &["encoder.", "head."],
            clip,
        );
        zero_grads(&student.params);
        if let Some(t) = &teacher {
            t.update(cfg.ema.start);
        }
        synchronize(device);
        if i >= warmup {
            ms.push(start.elapsed().as_secs_f64() * 1e3);
            fb.push(fb_ms);
            ctx_total += ctx.len();
        }
    }
    Ok(StepTimes {
        ms,
        forward_backward_ms: fb,
        allreduce_ms: ar,
        batch: b,
        tokens: grid.iter().product(),
        context_tokens_mean: ctx_total as f64 / steps.max(1) as f64,
    })
}
