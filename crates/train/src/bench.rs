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

/// The rate of `n`×`n` by `n`×`n` matrix products on `device` in `precision`, TFLOP/s (median of
/// 10 after 3 warm-up products): the denominator of model FLOP utilisation.
pub fn matmul_tflops(device: Device, n: i64, precision: brainssl_backend::Precision) -> f64 {
    let kind = match precision {
        brainssl_backend::Precision::Bf16 => brainssl_backend::Kind::BFloat16,
        _ => brainssl_backend::Kind::Float,
    };
    let a = brainssl_backend::Tensor::randn([n, n], (kind, device));
    let b = brainssl_backend::Tensor::randn([n, n], (kind, device));
    let mut ms = Vec::new();
    for i in 0..13 {
        synchronize(device);
        let start = Instant::now();
        let c = a.matmul(&b);
        synchronize(device);
        std::hint::black_box(&c);
        if i >= 3 {
            ms.push(start.elapsed().as_secs_f64());
        }
    }
    2.0 * (n as f64).powi(3) / median(&ms) / 1e12
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
        if dp.grouped() {
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

/// One step computed on the CPU and on another device from the same weights, data and masks.
#[derive(Debug, Clone, Serialize)]
pub struct Parity {
    pub loss_cpu: f64,
    pub loss_device: f64,
    /// Largest |g_device − g_cpu| / max |g_cpu| over the trained tensors.
    pub grad_rel_max: f64,
    /// Per module (encoder, head): gradient norms on the CPU and the device.
    pub norms_cpu: [f64; 2],
    pub norms_device: [f64; 2],
}

/// Forward and backward of one float32 micro-step of `cfg` on the CPU and on `device`.
pub fn parity(cfg: &PretrainConfig, device: Device) -> Parity {
    let (t, s, b) = (cfg.data.prep.depth, cfg.data.prep.size, cfg.data.batch_size);
    let data: Vec<f32> = {
        let mut rng = Rng::new(cfg.seed ^ 0x70a1);
        (0..b * t * s * s).map(|_| rng.normal() as f32).collect()
    };
    let m = cfg
        .masker()
        .expect("valid mask config")
        .sample(b, &mut Rng::new(cfg.seed ^ 0x3a5c));
    let (ctx, tgt) = (TokenIndex::from_rows(&m.context), TokenIndex::from_rows(&m.target));
    let run = |dev: Device| {
        let student = Student::init(cfg, &mut Rng::new(cfg.seed), dev);
        let teacher = cfg
            .objective
            .needs_teacher()
            .then(|| Teacher::copy_of(&cfg.encoder, &student.vs, "encoder.", dev));
        let plan = StepPlan {
            ctx: &ctx,
            tgt: &tgt,
            spectral: SpectralStep {
                weight: (cfg.spectral.coeff > 0.0).then_some(cfg.spectral.coeff / cfg.spectral.every as f64),
                lambda: cfg.spectral.coeff,
                cached: 0.0,
                cached_weight: 0.0,
            },
            accum_steps: 1,
            telemetry: false,
            precision: brainssl_backend::Precision::F32,
        };
        let x = tensor(&data, &[b, 1, t, s, s], dev);
        let parts = micro_step(cfg, &student, teacher.as_ref().map(|t| &t.encoder), &x, &plan);
        let norms = crate::optim::group_norms(&student.params, &["encoder.", "head."]);
        let grads: Vec<Vec<f32>> = student
            .params
            .iter()
            .map(|(_, p)| brainssl_backend::to_vec(&p.grad()))
            .collect();
        (parts.total, [norms[0], norms[1]], grads)
    };
    let (loss_cpu, norms_cpu, g_cpu) = run(Device::Cpu);
    let (loss_device, norms_device, g_dev) = run(device);
    let grad_rel_max = g_cpu
        .iter()
        .zip(&g_dev)
        .map(|(a, b)| {
            let scale = a.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-12);
            a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) as f64 / scale as f64
        })
        .fold(0.0, f64::max);
    Parity {
        loss_cpu,
        loss_device,
        grad_rel_max,
        norms_cpu,
        norms_device,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPU against itself is exact: the comparison sees the same weights, data and masks.
    #[test]
    fn parity_of_the_cpu_with_itself_is_exact() {
        let mut cfg = PretrainConfig::preset("tiny-jepa").unwrap();
        (cfg.data.prep.depth, cfg.data.prep.size, cfg.data.batch_size) = (16, 32, 2);
        let p = parity(&cfg, Device::Cpu);
        assert_eq!(p.loss_cpu, p.loss_device);
        assert_eq!(p.grad_rel_max, 0.0);
        assert!(p.norms_cpu[0] > 0.0 && p.norms_cpu[1] > 0.0);
    }
}
