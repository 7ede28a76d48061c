//! The pretraining loop (SPEC 4.7 order of operations, SPEC 6 checkpoints and logs).
//!
//! Every random draw is a function of (seed, epoch, iteration): loader order and augmentation
//! (brainssl-data), masks (here), initial weights (seed). A run resumed from `latest` therefore
//! repeats exactly the steps an uninterrupted run takes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use brainssl_backend::{tensor, Device, Precision};
use brainssl_data::loader::Batch;
use brainssl_data::ManifestRow;
use brainssl_masks::MultiBlockMasker;
use brainssl_models::TokenIndex;
use brainssl_prep::Rng;

use crate::checkpoint;
use crate::data::TrainData;
use crate::log::{CsvLog, Row};
use crate::optim::zero_grads;
use crate::preview::write_preview;
use crate::reporter::Reporter;
use crate::schedule::{ema_momentum, RunSchedule};
use crate::session::{data_hash, RunPaths, Session, Start};
use crate::step::{micro_step, LossParts, StepPlan};

/// Masks draw from their own stream.
const MASK_STREAM: u64 = 0x6d61_736b;

pub struct TrainOptions {
    pub device: Device,
    pub start: Start,
    /// Stop (as if killed) after this many micro-steps of this process: for resume tests.
    pub halt_after_steps: Option<usize>,
    pub progress: bool,
}

#[derive(Debug, Clone)]
pub struct RunSummary {
    pub epoch_losses: Vec<f64>,
    pub micro_steps: usize,
    pub optimizer_steps: usize,
    pub nonfinite_losses: usize,
    pub seconds: f64,
    pub final_checkpoint: PathBuf,
}

/// What stays fixed over a run: schedules, masks, accumulation, precision.
struct RunPlan {
    schedule: RunSchedule,
    masker: MultiBlockMasker,
    accum: usize,
    precision: Precision,
    /// The checkpoint a failed run falls back to.
    latest: PathBuf,
}

/// Pretrains on `rows` into `out`, or resumes the run there.
pub fn pretrain(rows: Vec<ManifestRow>, out: &Path, opts: TrainOptions) -> Result<RunSummary> {
    let paths = RunPaths::new(out);
    let mut s = Session::open(opts.start, &paths, data_hash(&rows), opts.device)?;
    for d in [&paths.dir, &paths.checkpoints, &paths.previews] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    brainssl_scan::atomic_write(&paths.dir.join("config.toml"), s.cfg.to_toml().as_bytes())?;
    let data = TrainData::new(&s.cfg, rows, out, 1)?;
    let cfg = &s.cfg;
    let o = &cfg.optim;
    let plan = RunPlan {
        schedule: RunSchedule::new(
            [o.start_lr, o.lr, o.final_lr],
            [o.weight_decay, o.final_weight_decay],
            o.warmup_epochs,
            o.epochs,
            data.ipe,
            o.ipe_scale,
        ),
        masker: cfg.masker().context("mask")?,
        accum: cfg.accum_steps(1)?,
        precision: cfg.precision.resolve(opts.device),
        latest: paths.latest(),
    };
    let (start, epochs) = (s.progress.epochs_done, o.epochs);
    let mut log = CsvLog::open(&paths.log, cfg.objective, start)
        .with_context(|| format!("cannot write {}", paths.log.display()))?;
    let rep = Reporter::new(epochs.saturating_sub(start) * data.ipe, opts.progress);
    let started = Instant::now();
    let mut epoch_losses = Vec::new();
    let mut budget = opts.halt_after_steps;
    for epoch in start..epochs {
        let (mean, preview) = run_epoch(&mut s, &data, &plan, epoch, &mut log, &rep, &mut budget)?;
        epoch_losses.push(mean);
        end_epoch(&mut s, &paths, epoch, mean, preview, &rep)?;
    }
    rep.finish();
    s.save(&paths, "final", "final")?;
    Ok(RunSummary {
        epoch_losses,
        micro_steps: s.progress.micro_steps,
        optimizer_steps: s.progress.optimizer_steps,
        nonfinite_losses: s.progress.nonfinite_losses,
        seconds: started.elapsed().as_secs_f64(),
        final_checkpoint: checkpoint::paths(&paths.checkpoints, "final").0,
    })
}

/// One epoch of micro-steps; returns the mean logged loss and a volume for the preview.
fn run_epoch(
    s: &mut Session,
    data: &TrainData,
    plan: &RunPlan,
    epoch: usize,
    log: &mut CsvLog,
    rep: &Reporter,
    budget: &mut Option<usize>,
) -> Result<(f64, Option<Vec<f32>>)> {
    // a partial accumulation never crosses an epoch boundary (the reference zeroes gradients)
    zero_grads(&s.student.params);
    let (mut loss_sum, mut loss_n, mut pending) = (0.0, 0usize, 0usize);
    let mut preview = None;
    let mut failed: Vec<String> = Vec::new();
    for (itr, batch) in data.epoch(epoch).enumerate() {
        for (i, why) in &batch.failures {
            rep.warn(format!(
                "skipped scan {} in epoch {epoch}: {why}",
                data.ds.rows[*i].path.display()
            ));
            failed.push(why.clone());
        }
        if batch.shape[0] < s.cfg.objective.min_volumes(s.cfg.vcr.reg_coeff) {
            rep.warn(format!(
                "epoch {epoch} step {itr}: only {} usable scans, step skipped",
                batch.shape[0]
            ));
            rep.step(String::new());
            continue;
        }
        if preview.is_none() && s.cfg.objective.previews() {
            let vox: usize = batch.shape[2..].iter().product();
            preview = Some(batch.data[..vox].to_vec());
        }
        let started = Instant::now();
        let micro = epoch * data.ipe + itr;
        let (lr, wd) = plan.schedule.at(micro + 1);
        let parts = forward_backward(s, plan, &batch, epoch, itr, micro);
        if let Some(v) = parts.spectral_replaced {
            rep.warn(format!("epoch {epoch} step {itr}: spectral loss {v} replaced by 0"));
        }
        let mut status = "ok";
        if parts.backward {
            pending += 1;
            loss_sum += parts.total;
            loss_n += 1;
        } else {
            s.progress.nonfinite_losses += 1;
            status = "skipped-nonfinite";
            rep.warn(format!(
                "non-finite loss at epoch {epoch} step {itr} ({} so far, limit {})",
                s.progress.nonfinite_losses, s.cfg.run.max_nonfinite
            ));
        }
        let mut grad_norms = [0.0; 2];
        if (itr + 1).is_multiple_of(plan.accum) && pending > 0 {
            let o = &s.cfg.optim;
            let clip = (o.clip_grad > 0.0 && s.cfg.objective.clips_in(epoch, o.warmup_epochs)).then_some(o.clip_grad);
            let report = s.opt.step(&s.student.params, lr, wd, &["encoder.", "head."], clip);
            zero_grads(&s.student.params);
            grad_norms = [report.norms[0], report.norms[1]];
            s.progress.optimizer_steps += 1;
            pending = 0;
        }
        let momentum = ema_momentum(s.cfg.ema.start, s.cfg.ema.end, micro, plan.schedule.lr.total_steps);
        if let Some(t) = &s.teacher {
            t.update(momentum);
        }
        s.progress.micro_steps = micro + 1;
        let step_s = started.elapsed().as_secs_f64();
        let nb = batch.shape[0];
        log.write(&Row {
            epoch,
            itr,
            parts: &parts,
            grad_norms,
            momentum,
            lr,
            wd,
            step_ms: step_s * 1e3,
            volumes_per_s: nb as f64 / step_s,
            status,
        })?;
        rep.step(progress_message(s, &parts, epoch, lr, nb as f64 / step_s));
        if s.progress.nonfinite_losses > s.cfg.run.max_nonfinite {
            rep.finish();
            bail!(
                "aborted: {} non-finite losses (limit run.max_nonfinite = {}); the last checkpoint is {}",
                s.progress.nonfinite_losses,
                s.cfg.run.max_nonfinite,
                plan.latest.display()
            );
        }
        if let Some(left) = budget {
            *left -= 1;
            if *left == 0 {
                rep.finish();
                bail!("halted (--halt-after-steps)");
            }
        }
    }
    if loss_n == 0 {
        rep.finish();
        let first = failed.first().map(|w| format!("; the first: {w}")).unwrap_or_default();
        bail!(
            "epoch {epoch}: no training step ran ({} scans failed to load of {}, {} non-finite losses so far{first}); \
             nothing was saved for this epoch",
            failed.len(),
            data.ds.rows.len(),
            s.progress.nonfinite_losses
        );
    }
    Ok((loss_sum / loss_n as f64, preview))
}

/// Masks, spectral decision and the micro-step itself for one batch.
fn forward_backward(
    s: &mut Session,
    plan: &RunPlan,
    batch: &Batch,
    epoch: usize,
    itr: usize,
    micro: usize,
) -> LossParts {
    let cfg = &s.cfg;
    let mut rng = Rng::for_item(cfg.seed ^ MASK_STREAM, epoch as u64, itr as u64);
    let m = plan.masker.sample(batch.shape[0], &mut rng);
    let (ctx, tgt) = (TokenIndex::from_rows(&m.context), TokenIndex::from_rows(&m.target));
    let spectral = s.progress.spectral.plan(&cfg.spectral, epoch, micro);
    let step = StepPlan {
        ctx: &ctx,
        tgt: &tgt,
        spectral,
        accum_steps: plan.accum,
        telemetry: cfg.run.telemetry_every > 0 && micro.is_multiple_of(cfg.run.telemetry_every),
        precision: plan.precision,
    };
    let x = tensor(&batch.data, &batch.shape, s.student.vs.device());
    let parts = micro_step(cfg, &s.student, s.teacher.as_ref().map(|t| &t.encoder), &x, &step);
    if parts.backward {
        s.progress.spectral.record(&spectral, parts.spectral);
    }
    parts
}

fn progress_message(s: &Session, parts: &LossParts, epoch: usize, lr: f64, vol_per_s: f64) -> String {
    let components = if s.cfg.objective.is_mae() {
        format!("mae {:.4} spec {:.3}", parts.main, s.progress.spectral.cached)
    } else {
        format!("jepa {:.4} vcr {:.3}", parts.main, parts.vcr)
    };
    format!(
        "ep {}/{} loss {:.4} ({components}) lr {lr:.2e} {vol_per_s:.1} vol/s",
        epoch + 1,
        s.cfg.optim.epochs,
        parts.total
    )
}

/// Checkpoints (latest, periodic) and the preview after `epoch`.
fn end_epoch(
    s: &mut Session,
    paths: &RunPaths,
    epoch: usize,
    mean: f64,
    preview: Option<Vec<f32>>,
    rep: &Reporter,
) -> Result<()> {
    s.progress.epochs_done = epoch + 1;
    s.progress.epoch_loss = mean;
    s.save(paths, "latest", "latest")?;
    let run = &s.cfg.run;
    if run.periodic_every > 0 && (epoch + 1).is_multiple_of(run.periodic_every) {
        s.save(paths, &format!("epoch-{:04}", epoch + 1), "periodic")?;
    }
    let last = epoch + 1 == s.cfg.optim.epochs;
    if let Some(v) =
        preview.filter(|_| run.preview_every > 0 && ((epoch + 1).is_multiple_of(run.preview_every) || last))
    {
        let png = paths.previews.join(format!("epoch-{:04}.png", epoch + 1));
        write_preview(&s.cfg, &s.student, &v, epoch, &png)?;
    }
    rep.line(format!("epoch {}/{}: loss {mean:.5}", epoch + 1, s.cfg.optim.epochs));
    Ok(())
}
