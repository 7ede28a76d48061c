//! Timing of whole training steps (forward, backward, clipping, AdamW, EMA) on a synthetic batch,
//! for `brainssl bench train`. No data loading: it measures the model code only.

use std::time::Instant;

use brainssl_backend::Device;
use brainssl_models::TokenIndex;
use brainssl_prep::Rng;
use serde::Serialize;

use crate::config::PretrainConfig;
use crate::ema::{ema_update, teacher_of};
use crate::optim::AdamW;
use crate::step::{micro_step, Shard, StepPlan, Student};

#[derive(Debug, Clone, Serialize)]
pub struct StepTimes {
    /// Milliseconds of each timed step (after warm-up), in order.
    pub ms: Vec<f64>,
    /// Of which forward + loss + backward (the rest: clipping, AdamW, EMA).
    pub forward_backward_ms: Vec<f64>,
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

/// Runs `warmup + steps` full steps; SL-MAE steps are all spectral (the costly kind).
pub fn time_steps(cfg: &PretrainConfig, warmup: usize, steps: usize, base: &Device) -> StepTimes {
    let device = base.clone().autodiff();
    let mut rng = Rng::new(cfg.seed);
    let mut student = Student::init(cfg, &mut rng, &device);
    let mut teacher = (!cfg.objective.is_mae()).then(|| teacher_of(&cfg.encoder, &student.encoder, base));
    let mut opt = AdamW::new(cfg.optim.betas, cfg.optim.eps);
    let (t, s, b) = (cfg.data.prep.depth, cfg.data.prep.size, cfg.data.batch_size);
    let data: Vec<f32> = (0..b * t * s * s).map(|_| rng.normal() as f32).collect();
    let grid = cfg.encoder.grid(t, s);
    let masker = cfg.masker().expect("valid mask config");
    let mut ms = Vec::with_capacity(steps);
    let mut fb = Vec::with_capacity(steps);
    let mut ctx_total = 0usize;
    for i in 0..warmup + steps {
        let m = masker.sample(b, &mut rng);
        let (ctx, tgt) = (TokenIndex::from_rows(&m.context), TokenIndex::from_rows(&m.target));
        let plan = StepPlan {
            ctx: &ctx,
            tgt: &tgt,
            spectral_weight: (cfg.spectral.coeff > 0.0).then_some(cfg.spectral.coeff / cfg.spectral.every as f64),
            cached_spectral: 0.0,
            cached_weight: 0.0,
            accum_steps: 1,
            telemetry: false,
        };
        let start = Instant::now();
        let r = micro_step(
            cfg,
            &student,
            teacher.as_ref(),
            Shard {
                data: &data,
                shape: [b, 1, t, s, s],
            },
            &plan,
            &device,
            base,
        );
        let grads = r.grads.expect("finite loss on random data");
        let _ = base.sync();
        let fb_ms = start.elapsed().as_secs_f64() * 1e3;
        let clip = (cfg.optim.clip_grad > 0.0).then_some(cfg.optim.clip_grad);
        student = opt
            .step(
                student,
                &grads,
                cfg.optim.lr,
                cfg.optim.weight_decay,
                &["encoder.", "head."],
                clip,
            )
            .0;
        if let Some(tt) = teacher.take() {
            teacher = Some(ema_update(tt, &student.encoder, cfg.ema.start));
        }
        // wait for queued device work (no-op on the CPU backend)
        let _ = base.sync();
        if i >= warmup {
            ms.push(start.elapsed().as_secs_f64() * 1e3);
            fb.push(fb_ms);
            ctx_total += ctx.len();
        }
    }
    StepTimes {
        ms,
        forward_backward_ms: fb,
        batch: b,
        tokens: grid.iter().product(),
        context_tokens_mean: ctx_total as f64 / steps.max(1) as f64,
    }
}
