//! The pretraining loop (order of operations: docs/method.md#micro-step-order; checkpoints and
//! logs: docs/method.md#checkpoints-and-resume).
//!
//! Every random draw is a function of (seed, epoch, iteration, rank): loader order and augmentation
//! (brainssl-data), masks (here), initial weights (seed). A run resumed from `latest` therefore
//! repeats exactly the steps an uninterrupted run takes. With several ranks ([`DataParallel`]) each
//! trains on its share of every global batch with its own masks; rank 0 writes the run folder.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use brainssl_backend::{tensor, Device, Precision};
use brainssl_data::loader::Batch;
use brainssl_data::{Manifest, ManifestRow};
use brainssl_dist::Rendezvous;
use brainssl_masks::MultiBlockMasker;
use brainssl_models::TokenIndex;
use brainssl_prep::Rng;
use brainssl_scan::folder::{remove_leftover_temps, FolderLock};

use crate::checkpoint;
use crate::config::RankMasks;
use crate::data::TrainData;
use crate::log::{CsvLog, Row};
use crate::optim::zero_grads;
use crate::parallel::DataParallel;
use crate::preview::write_preview;
use crate::reporter::Reporter;
use crate::schedule::{ema_init_share, ema_momentum, RunSchedule};
use crate::session::{data_hash, RunPaths, Session, Start};
use crate::spectral_state::SpectralStep;
use crate::step::{micro_step, LossParts, StepPlan};
use brainssl_prep::Prepared;

/// Masks draw from their own stream.
const MASK_STREAM: u64 = 0x6d61_736b;

pub struct TrainOptions {
    pub device: Device,
    pub start: Start,
    /// This process's place in a multi-rank job (None: a single process).
    pub world: Option<Rendezvous>,
    /// Overrides the config's `dist.timeout_s`.
    pub dist_timeout: Option<Duration>,
    /// A fresh run replaces an earlier run's files in the folder.
    pub force: bool,
    /// On resume: train to this many epochs (extends a finished run).
    pub epochs: Option<usize>,
    /// A fresh run starts from this checkpoint's weights (see [`Session::init_from`]).
    pub init: Option<PathBuf>,
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
    /// Volumes trained on in this process's run, over all ranks.
    pub volumes: usize,
    /// Wall time of this process's epochs (loading, steps, checkpoints).
    pub seconds: f64,
    pub final_checkpoint: PathBuf,
}

/// What stays fixed over a run: schedules, masks, accumulation, precision.
struct RunPlan {
    schedule: RunSchedule,
    /// The EMA teacher's start momentum for this run's length (see `EmaConfig::start_for`).
    ema_start: f64,
    masker: MultiBlockMasker,
    accum: usize,
    precision: Precision,
    /// The checkpoint a failed run falls back to.
    latest: PathBuf,
    bucket_bytes: usize,
}

/// Pretrains on `rows` into `out`, or resumes the run there. Rank 0 holds the folder's lock, removes
/// temporary files that interrupted writes left, and undoes a fresh start that failed before its
/// first step.
pub fn pretrain(rows: Vec<ManifestRow>, out: &Path, opts: TrainOptions) -> Result<RunSummary> {
    let lead = opts.world.as_ref().is_none_or(|w| w.rank == 0);
    let paths = RunPaths::new(out);
    if !lead {
        return train(rows, &paths, opts);
    }
    let fresh = matches!(opts.start, Start::Fresh(_));
    let created = !out.exists();
    let lock = FolderLock::acquire(out, "pretrain")?;
    for d in [&paths.dir, &paths.checkpoints, &paths.previews] {
        remove_leftover_temps(d);
    }
    if fresh {
        if let Err(e) = paths.prepare_fresh(opts.force) {
            drop(lock);
            if created {
                let _ = std::fs::remove_dir_all(out);
            }
            return Err(e);
        }
    }
    let result = train(rows, &paths, opts);
    drop(lock);
    if result.is_err() && fresh {
        paths.undo_failed_start(created);
    }
    result
}

fn train(rows: Vec<ManifestRow>, paths: &RunPaths, opts: TrainOptions) -> Result<RunSummary> {
    let out = paths.dir.as_path();
    let fresh = matches!(opts.start, Start::Fresh(_));
    let mut s = Session::open(opts.start, paths, data_hash(&rows), opts.device, opts.epochs)?;
    let lead = opts.world.as_ref().is_none_or(|w| w.rank == 0);
    if let Some(init) = opts.init.as_ref().filter(|_| fresh) {
        let notes = s.init_from(init)?;
        if lead {
            eprintln!("initialised from {}: {}", init.display(), notes.join("; "));
        }
    }
    let unreadable = if lead {
        brainssl_data::preflight::check(&rows, s.cfg.run.max_unreadable_fraction)?
    } else {
        Vec::new()
    };
    let mut dp = match &opts.world {
        None => DataParallel::alone(),
        Some(rv) => {
            let timeout = opts.dist_timeout.unwrap_or(Duration::from_secs(s.cfg.dist.timeout_s));
            DataParallel::join(rv, opts.device, timeout)?
        }
    };
    let mut stores = vec![&s.student.vs];
    stores.extend(s.teacher.as_ref().map(|t| &t.vs));
    dp.same_weights(&stores)?;
    if lead {
        for d in [&paths.dir, &paths.checkpoints, &paths.previews] {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        brainssl_scan::atomic_write(&paths.dir.join("config.toml"), s.cfg.to_toml().as_bytes())?;
        if fresh {
            stored_manifest(&rows).write(&paths.manifest())?;
        }
    }
    let data = TrainData::new(&s.cfg, rows, out, dp.rank, dp.world)?;
    // previews show one fixed scan in evaluation mode, so that epochs compare like with like
    let previews = lead && s.cfg.objective.previews() && s.cfg.run.preview_every > 0;
    let preview = previews
        .then(|| (0..data.ds.rows.len()).find_map(|i| data.ds.prepared(i).ok()))
        .flatten();
    if previews && preview.is_none() {
        eprintln!("warning: no scan could be read in evaluation mode for the previews: none will be written");
    }
    let cfg = &s.cfg;
    let o = &cfg.optim;
    let schedule = RunSchedule::new(
        [o.start_lr, o.lr, o.final_lr],
        [o.weight_decay, o.final_weight_decay],
        o.warmup_epochs,
        o.epochs,
        data.ipe,
        o.ipe_scale,
    );
    let ema_start = cfg.ema.start_for(schedule.lr.total_steps);
    if lead && opts.progress && !cfg.objective.is_mae() {
        eprintln!(
            "EMA teacher: momentum {ema_start:.4} → {} over {} steps; it keeps {:.1} % of its initialisation at the end of the run",
            cfg.ema.end,
            schedule.lr.total_steps,
            100.0 * ema_init_share(ema_start, cfg.ema.end, schedule.lr.total_steps)
        );
    }
    let plan = RunPlan {
        schedule,
        ema_start,
        masker: cfg.masker().context("mask")?,
        accum: cfg.accum_steps(dp.world)?,
        precision: cfg.precision.resolve(opts.device),
        latest: paths.latest(),
        bucket_bytes: cfg.dist.bucket_mib << 20,
    };
    let (start, epochs, first) = (s.progress.epochs_done, o.epochs, s.progress.epoch_steps_done);
    let mut log = if lead {
        let log = CsvLog::open(&paths.log, cfg.objective, start, first)
            .with_context(|| format!("cannot write {}", paths.log.display()))?;
        Some(log)
    } else {
        None
    };
    let steps_left = (epochs.saturating_sub(start) * data.ipe).saturating_sub(first);
    let mut rep = Reporter::new(steps_left, opts.progress && lead).for_rank(dp.rank, dp.world);
    if paths.dir.exists() {
        rep = rep.with_warnings_file(&paths.dir.join("warnings.log"));
    }
    for why in &unreadable {
        rep.warn(format!(
            "pre-flight: {why} (tolerated by run.max_unreadable_fraction; skipped when loaded)"
        ));
    }
    let started = Instant::now();
    let mut epoch_losses = Vec::new();
    let mut budget = opts.halt_after_steps;
    let mut volumes = 0usize;
    for epoch in start..epochs {
        let mut ctx = EpochContext {
            volumes: &mut volumes,
            data: &data,
            plan: &plan,
            log: log.as_mut(),
            rep: &rep,
            dp: &mut dp,
            paths,
        };
        let mean = run_epoch(&mut s, &mut ctx, epoch, &mut budget)?;
        epoch_losses.push(mean);
        s.progress.epochs_done = epoch + 1;
        s.progress.epoch_loss = mean;
        (
            s.progress.epoch_steps_done,
            s.progress.epoch_loss_sum,
            s.progress.epoch_loss_n,
        ) = (0, 0.0, 0);
        if lead {
            end_epoch(&s, paths, epoch, mean, preview.as_ref(), &rep)?;
        }
        let mut stop = [crate::interrupt::requested() as u8 as f64];
        dp.sum(&mut stop)?;
        if stop[0] > 0.0 && epoch + 1 < epochs {
            rep.finish();
            bail!("{}", interrupted_message(paths, epoch + 1, 0));
        }
    }
    rep.finish();
    if lead {
        s.save(paths, "final", "final")?;
    }
    Ok(RunSummary {
        epoch_losses,
        micro_steps: s.progress.micro_steps,
        optimizer_steps: s.progress.optimizer_steps,
        nonfinite_losses: s.progress.nonfinite_losses,
        volumes,
        seconds: started.elapsed().as_secs_f64(),
        final_checkpoint: checkpoint::paths(&paths.checkpoints, "final").0,
    })
}

/// What an epoch works with besides the trained state.
struct EpochContext<'a> {
    data: &'a TrainData,
    plan: &'a RunPlan,
    /// Rank 0's log (None on other ranks).
    log: Option<&'a mut CsvLog>,
    rep: &'a Reporter,
    dp: &'a mut DataParallel,
    /// Volumes of the steps that ran, over all ranks.
    volumes: &'a mut usize,
    paths: &'a RunPaths,
}

/// What an interrupted run says: where it stopped and how to go on.
fn interrupted_message(paths: &RunPaths, epoch: usize, step: usize) -> String {
    format!(
        "interrupted: checkpoint {} holds epoch {} step {step}; continue with: brainssl pretrain --resume {}",
        paths.latest().display(),
        epoch + 1,
        paths.dir.display()
    )
}

/// One micro-step summed over ranks: what steers the loop, so every rank decides alike.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    /// ranks whose loss was finite and backpropagated
    ran: f64,
    /// sum of their losses
    loss: f64,
    /// ranks whose loss was not finite
    nonfinite: f64,
    /// ranks that computed a usable spectral value, and the sum of those values
    spectral_n: f64,
    spectral: f64,
    /// ranks asked to stop (Ctrl-C)
    stop: f64,
    /// scans that failed to load in this step's batches
    failed: f64,
}

impl Tally {
    /// This rank's step: its loss parts (None when its batch was unusable) and the number of its
    /// scans that failed to load.
    fn of(parts: Option<&LossParts>, spectral: &SpectralStep, failed: usize) -> Self {
        let stop = crate::interrupt::requested() as u8 as f64;
        let failed = failed as f64;
        let Some(p) = parts else {
            return Tally {
                stop,
                failed,
                ..Tally::default()
            };
        };
        let spectral_used = p.backward && spectral.weight.is_some() && p.spectral >= 0.0;
        Tally {
            ran: p.backward as u8 as f64,
            loss: if p.backward { p.total } else { 0.0 },
            nonfinite: (!p.backward) as u8 as f64,
            spectral_n: spectral_used as u8 as f64,
            spectral: if spectral_used { p.spectral } else { 0.0 },
            stop,
            failed,
        }
    }

    fn summed(self, dp: &DataParallel) -> Result<Self> {
        let mut v = [
            self.ran,
            self.loss,
            self.nonfinite,
            self.spectral_n,
            self.spectral,
            self.stop,
            self.failed,
        ];
        dp.sum(&mut v)?;
        Ok(Tally {
            ran: v[0],
            loss: v[1],
            nonfinite: v[2],
            spectral_n: v[3],
            spectral: v[4],
            stop: v[5],
            failed: v[6],
        })
    }
}

/// The rows as a manifest (with their extra columns) for the run folder.
fn stored_manifest(rows: &[ManifestRow]) -> Manifest {
    let mut extra_columns: Vec<String> = Vec::new();
    for r in rows {
        for k in r.extra.keys() {
            if !extra_columns.contains(k) {
                extra_columns.push(k.clone());
            }
        }
    }
    Manifest {
        rows: rows.to_vec(),
        extra_columns,
    }
}

/// One epoch of micro-steps; returns the mean logged loss.
fn run_epoch(s: &mut Session, cx: &mut EpochContext, epoch: usize, budget: &mut Option<usize>) -> Result<f64> {
    let (data, plan, rep) = (cx.data, cx.plan, cx.rep);
    // a partial accumulation never crosses an epoch boundary (the reference zeroes gradients)
    zero_grads(&s.student.params);
    // an interrupted epoch resumes with its running loss
    let first = s.progress.epoch_steps_done;
    let (mut loss_sum, mut loss_n, mut pending) = (s.progress.epoch_loss_sum, s.progress.epoch_loss_n, 0usize);
    let mut failed: Vec<String> = Vec::new();
    // over all ranks
    let mut failed_total = 0usize;
    for (itr, batch) in data.epoch(epoch, first) {
        for (i, why) in &batch.failures {
            rep.warn(format!(
                "skipped scan {} in epoch {epoch}: {why}",
                data.ds.rows[*i].path.display()
            ));
            failed.push(why.clone());
        }
        let started = Instant::now();
        let micro = epoch * data.ipe + itr;
        let (lr, wd) = plan.schedule.at(micro + 1);
        let usable = batch.shape[0] >= s.cfg.objective.min_volumes(s.cfg.vcr.reg_coeff);
        // every rank plans the spectral term alike, whether or not its batch is usable
        let spectral = s.progress.spectral.plan(&s.cfg.spectral, epoch, micro);
        let parts = if usable {
            Some(forward_backward(
                s,
                plan,
                &batch,
                (epoch, itr, micro),
                spectral,
                cx.dp.rank,
            ))
        } else {
            rep.warn(format!(
                "epoch {epoch} step {itr}: only {} usable scans, step skipped",
                batch.shape[0]
            ));
            None
        };
        let t = Tally::of(parts.as_ref(), &spectral, batch.failures.len()).summed(cx.dp)?;
        failed_total += t.failed as usize;
        if t.ran == 0.0 && t.nonfinite == 0.0 {
            // no rank had a usable batch
            rep.step(String::new());
            continue;
        }
        if t.spectral_n > 0.0 {
            s.progress.spectral.record(&spectral, t.spectral / t.spectral_n);
        }
        let mut parts = parts.unwrap_or_else(|| LossParts {
            spectral: -1.0,
            ..Default::default()
        });
        if let Some(v) = parts.spectral_replaced {
            rep.warn(format!("epoch {epoch} step {itr}: spectral loss {v} replaced by 0"));
        }
        // the logged loss is the mean over the ranks that ran (components stay this rank's)
        parts.total = if t.ran > 0.0 { t.loss / t.ran } else { f64::NAN };
        let mut status = "ok";
        if t.ran > 0.0 {
            pending += 1;
            loss_sum += parts.total;
            loss_n += 1;
        }
        if t.nonfinite > 0.0 {
            s.progress.nonfinite_losses += t.nonfinite as usize;
            status = if t.ran > 0.0 {
                "partly-nonfinite"
            } else {
                "skipped-nonfinite"
            };
            rep.warn(format!(
                "non-finite loss at epoch {epoch} step {itr} ({} so far, limit {})",
                s.progress.nonfinite_losses, s.cfg.run.max_nonfinite
            ));
        }
        let mut grad_norms = [0.0; 2];
        if (itr + 1).is_multiple_of(plan.accum) && pending > 0 {
            cx.dp.average_grads(&s.student.params, plan.bucket_bytes)?;
            let o = &s.cfg.optim;
            let clip = (o.clip_grad > 0.0 && s.cfg.objective.clips_in(epoch, o.warmup_epochs)).then_some(o.clip_grad);
            let report = s.opt.step(&s.student.params, lr, wd, &["encoder.", "head."], clip);
            zero_grads(&s.student.params);
            grad_norms = [report.norms[0], report.norms[1]];
            s.progress.optimizer_steps += 1;
            pending = 0;
        }
        let momentum = ema_momentum(plan.ema_start, s.cfg.ema.end, micro, plan.schedule.lr.total_steps);
        if let Some(t) = &s.teacher {
            t.update(momentum);
        }
        s.progress.micro_steps = micro + 1;
        let step_s = started.elapsed().as_secs_f64();
        let nb = batch.shape[0] * cx.dp.world;
        *cx.volumes += nb;
        if let Some(log) = cx.log.as_deref_mut() {
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
        }
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
        // Ctrl-C: stop at an optimiser-step boundary inside the epoch (its last step ends the epoch)
        if t.stop > 0.0 && pending == 0 && itr + 1 < data.ipe {
            s.progress.epoch_steps_done = itr + 1;
            (s.progress.epoch_loss_sum, s.progress.epoch_loss_n) = (loss_sum, loss_n);
            if cx.dp.leads() {
                s.save(cx.paths, "latest", "latest")?;
            }
            rep.finish();
            bail!("{}", interrupted_message(cx.paths, epoch, itr + 1));
        }
    }
    let allowed = (s.cfg.run.max_unreadable_fraction * data.ds.rows.len() as f64).floor() as usize;
    if failed_total > allowed && loss_n > 0 {
        rep.finish();
        let first = failed
            .first()
            .map(|w| format!("; the first here: {w}"))
            .unwrap_or_default();
        bail!(
            "epoch {epoch}: {failed_total} of {} scans failed to load (allowed: {allowed}, run.max_unreadable_fraction = {}){first}",
            data.ds.rows.len(),
            s.cfg.run.max_unreadable_fraction
        );
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
    Ok(loss_sum / loss_n as f64)
}

/// Masks and the micro-step itself for one batch at (epoch, itr, micro).
fn forward_backward(
    s: &Session,
    plan: &RunPlan,
    batch: &Batch,
    (epoch, itr, micro): (usize, usize, usize),
    spectral: SpectralStep,
    rank: usize,
) -> LossParts {
    let cfg = &s.cfg;
    let stream = match cfg.dist.rank_masks {
        RankMasks::Own => rank as u64,
        RankMasks::Shared => 0,
    };
    // rank 0 draws what a single process draws
    let key = (cfg.seed ^ MASK_STREAM).wrapping_add(stream.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut rng = Rng::for_item(key, epoch as u64, itr as u64);
    let m = plan.masker.sample(batch.shape[0], &mut rng);
    let (ctx, tgt) = (TokenIndex::from_rows(&m.context), TokenIndex::from_rows(&m.target));
    let step = StepPlan {
        ctx: &ctx,
        tgt: &tgt,
        spectral,
        accum_steps: plan.accum,
        telemetry: cfg.run.telemetry_every > 0 && micro.is_multiple_of(cfg.run.telemetry_every),
        precision: plan.precision,
    };
    let x = tensor(&batch.data, &batch.shape, s.student.vs.device());
    micro_step(cfg, &s.student, s.teacher.as_ref().map(|t| &t.encoder), &x, &step)
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

/// Checkpoints (latest, periodic) and the preview after `epoch` (rank 0).
fn end_epoch(
    s: &Session,
    paths: &RunPaths,
    epoch: usize,
    mean: f64,
    preview: Option<&Prepared>,
    rep: &Reporter,
) -> Result<()> {
    s.save(paths, "latest", "latest")?;
    let run = &s.cfg.run;
    if run.periodic_every > 0 && (epoch + 1).is_multiple_of(run.periodic_every) {
        s.save(paths, &format!("epoch-{:04}", epoch + 1), "periodic")?;
    }
    let last = epoch + 1 == s.cfg.optim.epochs;
    if let Some(v) =
        preview.filter(|_| run.preview_every > 0 && ((epoch + 1).is_multiple_of(run.preview_every) || last))
    {
        let figure = paths.previews.join(format!("epoch-{:04}.svg", epoch + 1));
        write_preview(&s.cfg, &s.student, v, epoch, &figure)?;
    }
    rep.line(format!("epoch {}/{}: loss {mean:.5}", epoch + 1, s.cfg.optim.epochs));
    Ok(())
}
