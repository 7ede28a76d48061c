//! The pretraining loop (SPEC 4.7 order of operations, SPEC 6 checkpoints and logs).
//!
//! Every random draw is a function of (seed, epoch, iteration): loader order and augmentation
//! (brainssl-data), masks (here), initial weights (seed). A run resumed from `latest` therefore
//! repeats exactly the steps an uninterrupted run takes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use brainssl_backend::burn::module::Module;
use brainssl_backend::burn::optim::{GradientsAccumulator, GradientsParams};
use brainssl_backend::{Device, Tensor, TensorData};
use brainssl_data::cache::CropCache;
use brainssl_data::loader::{epoch_iter, Dataset, LoaderConfig};
use brainssl_data::ManifestRow;
use brainssl_models::{named_params, TokenIndex, VisionTransformer3d};
use brainssl_objectives::mosaic;
use brainssl_prep::Rng;
use indicatif::{ProgressBar, ProgressStyle};

use crate::checkpoint::{self, module_tensors, CheckpointManifest, FORMAT};
use crate::config::PretrainConfig;
use crate::ema::{ema_update, teacher_of};
use crate::log::{CsvLog, Row};
use crate::optim::AdamW;
use crate::preview::{write_png, Slices};
use crate::schedule::{ema_momentum, spectral_weight, RunSchedule};
use crate::step::{micro_step, LossParts, Shard, StepPlan, StepResult, Student};

/// Stream tags: masks and previews draw from their own generators.
const MASK_STREAM: u64 = 0x6d61_736b;
const PREVIEW_STREAM: u64 = 0x7072_6576;

pub struct TrainOptions {
    /// Plain devices, one data-parallel replica each (the first holds the optimiser and teacher).
    pub devices: Vec<Device>,
    pub resume: bool,
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

/// Files of a run folder.
pub struct RunPaths {
    pub dir: PathBuf,
    pub checkpoints: PathBuf,
    pub log: PathBuf,
    pub previews: PathBuf,
}

impl RunPaths {
    pub fn new(dir: &Path) -> Self {
        RunPaths {
            dir: dir.to_path_buf(),
            checkpoints: dir.join("checkpoints"),
            log: dir.join("log.csv"),
            previews: dir.join("previews"),
        }
    }
}

/// BLAKE3 over (path, size, label) of every row: a resumed run must see the same data.
pub fn data_hash(rows: &[ManifestRow]) -> String {
    let mut h = blake3::Hasher::new();
    for r in rows {
        let size = std::fs::metadata(&r.path).map(|m| m.len()).unwrap_or(0);
        h.update(format!("{}|{size}|{}\n", r.path.display(), r.label).as_bytes());
    }
    h.finalize().to_hex()[..16].to_string()
}

/// Progress counters saved in checkpoints.
#[derive(Debug, Clone, Default)]
struct Counters {
    epochs_done: usize,
    micro_steps: usize,
    optimizer_steps: usize,
    spectral_cached: f64,
    spectral_lambda: f64,
    nonfinite: usize,
    epoch_loss: f64,
}

struct State {
    student: Student,
    teacher: Option<VisionTransformer3d>,
    opt: AdamW,
    counters: Counters,
}

fn fresh_state(cfg: &PretrainConfig, device: &Device, base: &Device) -> State {
    let student = Student::init(cfg, &mut Rng::new(cfg.seed), device);
    let teacher = (!cfg.objective.is_mae()).then(|| teacher_of(&cfg.encoder, &student.encoder, base));
    State {
        student,
        teacher,
        opt: AdamW::new(cfg.optim.betas, cfg.optim.eps),
        counters: Counters::default(),
    }
}

/// Loads `latest` of a run; returns its config and state.
fn resume_state(paths: &RunPaths, device: &Device, base: &Device) -> Result<(PretrainConfig, State, String)> {
    let (file, _) = checkpoint::paths(&paths.checkpoints, "latest");
    let (tensors, m) = checkpoint::load(&file).map_err(|e| anyhow!(e))?;
    let cfg = m.config.clone();
    let blank = Student::init(&cfg, &mut Rng::new(0), device);
    let student =
        checkpoint::load_module(blank, &tensors, "student.").map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let teacher = if cfg.objective.is_mae() {
        None
    } else {
        let blank = cfg.encoder.init(&mut Rng::new(0), base);
        Some(checkpoint::load_module(blank, &tensors, "teacher.").map_err(|e| anyhow!("{}: {e}", file.display()))?)
    };
    let mut opt = AdamW::new(cfg.optim.betas, cfg.optim.eps);
    let moments = tensors
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("optim.").map(|k| (k.to_string(), v.clone())))
        .collect();
    opt.import(&moments, base)
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let counters = Counters {
        epochs_done: m.epochs_done,
        micro_steps: m.micro_steps,
        optimizer_steps: m.optimizer_steps,
        spectral_cached: m.spectral_cached,
        spectral_lambda: m.spectral_lambda,
        nonfinite: m.nonfinite_losses,
        epoch_loss: m.epoch_loss,
    };
    Ok((
        cfg,
        State {
            student,
            teacher,
            opt,
            counters,
        },
        m.data_hash,
    ))
}

fn save_checkpoint(
    cfg: &PretrainConfig,
    st: &State,
    paths: &RunPaths,
    stem: &str,
    kind: &str,
    hash: &str,
) -> Result<()> {
    let mut tensors = module_tensors(&st.student, "student.");
    if let Some(t) = &st.teacher {
        tensors.extend(module_tensors(t, "teacher."));
    }
    tensors.extend(
        st.opt
            .export()
            .into_iter()
            .map(|(k, s, v)| (format!("optim.{k}"), s, v)),
    );
    let c = &st.counters;
    let manifest = CheckpointManifest {
        brainssl_version: env!("CARGO_PKG_VERSION").to_string(),
        format: FORMAT,
        kind: kind.to_string(),
        epochs_done: c.epochs_done,
        micro_steps: c.micro_steps,
        optimizer_steps: c.optimizer_steps,
        spectral_cached: c.spectral_cached,
        spectral_lambda: c.spectral_lambda,
        nonfinite_losses: c.nonfinite,
        epoch_loss: c.epoch_loss,
        data_hash: hash.to_string(),
        config: cfg.clone(),
    };
    checkpoint::save(&paths.checkpoints, stem, &tensors, &manifest).map_err(|e| anyhow!(e))
}

/// Averages replicas' gradients on the first device (the all-reduce of data parallelism).
fn average_grads(mut all: Vec<GradientsParams>, student: &Student, device: &Device) -> GradientsParams {
    if all.len() == 1 {
        return all.pop().expect("one");
    }
    let world = all.len() as f64;
    let mut out = GradientsParams::new();
    for p in named_params(student) {
        macro_rules! avg {
            ($d:literal) => {{
                let mut sum: Option<Tensor<$d>> = None;
                for g in all.iter_mut() {
                    if let Some(t) = g.remove::<$d>(p.id) {
                        let t = t.to_device(device);
                        sum = Some(match sum {
                            Some(s) => s + t,
                            None => t,
                        });
                    }
                }
                if let Some(s) = sum {
                    out.register::<$d>(p.id, s.div_scalar(world));
                }
            }};
        }
        match p.shape.len() {
            1 => avg!(1),
            2 => avg!(2),
            3 => avg!(3),
            4 => avg!(4),
            5 => avg!(5),
            r => panic!("rank {r} parameter {}", p.path),
        }
    }
    out
}

/// Mean of the replicas' logged scalars.
fn mean_parts(parts: &[LossParts]) -> LossParts {
    let n = parts.len() as f64;
    let avg = |f: fn(&LossParts) -> f64| parts.iter().map(f).sum::<f64>() / n;
    LossParts {
        total: avg(|p| p.total),
        main: avg(|p| p.main),
        spectral: avg(|p| p.spectral),
        vcr_var: avg(|p| p.vcr_var),
        vcr_cov: avg(|p| p.vcr_cov),
        vcr: avg(|p| p.vcr),
        target_spread: parts[0].target_spread,
    }
}

/// Writes input / masked input / reconstruction of one volume with the current weights.
fn write_preview(cfg: &PretrainConfig, student: &Student, volume: &[f32], epoch: usize, path: &Path) -> Result<()> {
    let model = student.valid();
    let [t, s] = [cfg.data.prep.depth, cfg.data.prep.size];
    let device = named_params(&model.encoder)[0].value.flat().device();
    let x = Tensor::<5>::from_data(TensorData::new(volume.to_vec(), [1, 1, t, s, s]), &device);
    let grid = cfg.encoder.grid(t, s);
    let masker = cfg.masker().map_err(|e| anyhow!(e))?;
    let m = masker.sample(1, &mut Rng::for_item(cfg.seed ^ PREVIEW_STREAM, epoch as u64, 0));
    let (ctx, tgt) = (TokenIndex::from_rows(&m.context), TokenIndex::from_rows(&m.target));
    let z = model.encoder.forward(x.clone(), Some(&ctx));
    let pred = model.head.forward(z, &ctx, &tgt, grid);
    let masked = mosaic(x.clone(), pred.zeros_like(), &ctx, &tgt, cfg.encoder.patch);
    let recon = mosaic(x, pred, &ctx, &tgt, cfg.encoder.patch);
    let host = |v: Tensor<5>| v.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32");
    let (masked, recon) = (host(masked), host(recon));
    let shape = [t, s, s];
    write_png(
        path,
        &[
            Slices { data: volume, shape },
            Slices { data: &masked, shape },
            Slices { data: &recon, shape },
        ],
    )
    .map_err(|e| anyhow!(e))
}

/// Pretrains on `rows` into `out` (or resumes the run there). `cfg` is ignored on resume: the
/// checkpoint's config is used.
pub fn pretrain(cfg: &PretrainConfig, rows: Vec<ManifestRow>, out: &Path, opts: &TrainOptions) -> Result<RunSummary> {
    let paths = RunPaths::new(out);
    let world = opts.devices.len().max(1);
    let base = opts.devices.first().cloned().unwrap_or_else(Device::flex);
    let device = base.clone().autodiff();
    let hash = data_hash(&rows);
    let (cfg, mut st) = if opts.resume {
        let (cfg, st, saved_hash) =
            resume_state(&paths, &device, &base).with_context(|| format!("cannot resume {}", out.display()))?;
        if saved_hash != hash {
            bail!(
                "{}: the manifest's scans differ from those the run was trained on (data hash {hash} vs {saved_hash})",
                out.display()
            );
        }
        (cfg, st)
    } else {
        if paths.checkpoints.join("latest.safetensors").exists() {
            bail!("{} already holds a run: use --resume, or another --out", out.display());
        }
        cfg.validate().map_err(|e| anyhow!(e))?;
        (cfg.clone(), fresh_state(cfg, &device, &base))
    };
    for d in [&paths.dir, &paths.checkpoints, &paths.previews] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    brainssl_scan::atomic_write(&paths.dir.join("config.toml"), cfg.to_toml().as_bytes())?;

    let accum = cfg.accum_steps(world).map_err(|e| anyhow!(e))?;
    let b = cfg.data.batch_size;
    let cache = (!cfg.data.cache_dir.is_empty()).then(|| {
        let d = PathBuf::from(&cfg.data.cache_dir);
        CropCache::new(if d.is_absolute() { d } else { out.join(d) })
    });
    let ds = Arc::new(Dataset {
        rows,
        prep: cfg.data.prep.clone(),
        augment: cfg.data.augment.clone(),
        cache,
    });
    let loader = LoaderConfig {
        batch_size: b * world,
        shuffle: true,
        drop_last: true,
        training: true,
        workers: cfg.data.workers.max(1),
        prefetch: 2,
        seed: cfg.seed,
    };
    let ipe = ds.batches(&loader, 0).len();
    if ipe == 0 {
        bail!(
            "the manifest has {} scans, fewer than one batch of {} ({} per device x {world})",
            ds.rows.len(),
            b * world,
            b
        );
    }
    let o = &cfg.optim;
    let schedule = RunSchedule::new(
        [o.start_lr, o.lr, o.final_lr],
        [o.weight_decay, o.final_weight_decay],
        o.warmup_epochs,
        o.epochs,
        ipe,
        o.ipe_scale,
    );
    let total = schedule.lr.total_steps;
    let [t, s] = [cfg.data.prep.depth, cfg.data.prep.size];
    let masker = cfg.masker().map_err(|e| anyhow!("mask: {e}"))?;
    let start_epoch = st.counters.epochs_done;
    let mut log = CsvLog::open(&paths.log, cfg.objective, start_epoch)
        .with_context(|| format!("cannot write {}", paths.log.display()))?;
    let devices: Vec<Device> = if opts.devices.is_empty() {
        vec![base.clone()]
    } else {
        opts.devices.clone()
    };

    let pb = if opts.progress {
        ProgressBar::new(((o.epochs - start_epoch.min(o.epochs)) * ipe) as u64)
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let mut epoch_losses = Vec::new();
    let mut steps_here = 0usize;
    let mut last_grad_norms = [0.0; 2];
    for epoch in start_epoch..o.epochs {
        // a partial accumulation never crosses an epoch boundary (the reference zeroes gradients)
        let mut acc = GradientsAccumulator::<Student>::new();
        let mut pending = 0usize;
        let (mut loss_sum, mut loss_n) = (0.0, 0usize);
        let mut preview_volume: Option<Vec<f32>> = None;
        let replicas: Vec<Student> = devices[1..]
            .iter()
            .map(|d| st.student.clone().fork(&d.clone().autodiff()))
            .collect();
        let mut replicas = replicas;
        for (itr, batch) in epoch_iter(ds.clone(), &loader, epoch as u64).enumerate() {
            let step_start = Instant::now();
            let micro = epoch * ipe + itr;
            let (lr, wd) = schedule.at(micro + 1);
            for (i, why) in &batch.failures {
                pb.println(format!(
                    "warning: skipped scan {} in epoch {epoch}: {why}",
                    ds.rows[*i].path.display()
                ));
            }
            let nb = batch.shape[0];
            let per = nb / world;
            let min_per = if cfg.vcr.reg_coeff > 0.0 || !cfg.objective.is_mae() {
                2
            } else {
                1
            };
            if per < min_per {
                pb.println(format!(
                    "warning: epoch {epoch} step {itr}: only {nb} usable scans, step skipped"
                ));
                pb.inc(1);
                continue;
            }
            let vox = t * s * s;
            // masks: one draw per replica from the step's generator
            let mut rng = Rng::for_item(cfg.seed ^ MASK_STREAM, epoch as u64, itr as u64);
            let masks: Vec<_> = (0..world).map(|_| masker.sample(per, &mut rng)).collect();
            let spectral_step =
                cfg.spectral.coeff > 0.0 && epoch >= cfg.spectral.min_epoch && micro.is_multiple_of(cfg.spectral.every);
            let lambda = if spectral_step {
                spectral_weight(
                    cfg.spectral.coeff,
                    epoch,
                    cfg.spectral.min_epoch,
                    cfg.spectral.ramp_epochs,
                )
            } else {
                st.counters.spectral_lambda
            };
            let telemetry = cfg.run.telemetry_every > 0 && micro.is_multiple_of(cfg.run.telemetry_every);
            let indices: Vec<(TokenIndex, TokenIndex)> = masks
                .iter()
                .map(|m| (TokenIndex::from_rows(&m.context), TokenIndex::from_rows(&m.target)))
                .collect();
            let plan = |r: usize| StepPlan {
                ctx: &indices[r].0,
                tgt: &indices[r].1,
                spectral_weight: spectral_step.then_some(lambda / cfg.spectral.every as f64),
                cached_spectral: st.counters.spectral_cached,
                cached_weight: st.counters.spectral_lambda / cfg.spectral.every as f64,
                accum_steps: accum,
                telemetry: telemetry && r == 0,
            };
            let shard = |r: usize| Shard {
                data: &batch.data[r * per * vox..(r + 1) * per * vox],
                shape: [per, 1, t, s, s],
            };
            if preview_volume.is_none() && cfg.objective.is_mae() {
                preview_volume = Some(batch.data[..vox].to_vec());
            }
            let results: Vec<StepResult> = if world == 1 {
                vec![micro_step(
                    &cfg,
                    &st.student,
                    st.teacher.as_ref(),
                    shard(0),
                    &plan(0),
                    &device,
                    &base,
                )]
            } else {
                let teacher = st.teacher.as_ref();
                std::thread::scope(|sc| {
                    let handles: Vec<_> = (0..world)
                        .map(|r| {
                            let model = if r == 0 { &st.student } else { &replicas[r - 1] };
                            let (dev, plan, cfg) = (devices[r].clone(), plan(r), &cfg);
                            let teacher = teacher.map(|t| if r == 0 { t.clone() } else { t.clone().fork(&dev) });
                            sc.spawn(move || {
                                micro_step(
                                    cfg,
                                    model,
                                    teacher.as_ref(),
                                    shard(r),
                                    &plan,
                                    &dev.clone().autodiff(),
                                    &dev,
                                )
                            })
                        })
                        .collect();
                    handles.into_iter().map(|h| h.join().expect("replica thread")).collect()
                })
            };
            let parts = mean_parts(&results.iter().map(|r| r.parts.clone()).collect::<Vec<_>>());
            let finite = results.iter().all(|r| r.grads.is_some());
            let mut status = "ok";
            let mut grad_norms = [0.0; 2];
            if finite {
                let grads = average_grads(
                    results.into_iter().filter_map(|r| r.grads).collect(),
                    &st.student,
                    &base,
                );
                acc.accumulate(&st.student, grads);
                pending += 1;
                if spectral_step && parts.spectral >= 0.0 {
                    st.counters.spectral_cached = parts.spectral;
                    st.counters.spectral_lambda = lambda;
                }
                loss_sum += parts.total;
                loss_n += 1;
            } else {
                st.counters.nonfinite += 1;
                status = "skipped-nonfinite";
                pb.println(format!(
                    "warning: non-finite loss at epoch {epoch} step {itr} ({} so far, limit {})",
                    st.counters.nonfinite, cfg.run.max_nonfinite
                ));
            }
            if (itr + 1) % accum == 0 && pending > 0 {
                let clip_on = if cfg.objective.is_mae() {
                    epoch >= o.warmup_epochs
                } else {
                    epoch > o.warmup_epochs
                };
                let clip = (o.clip_grad > 0.0 && clip_on).then_some(o.clip_grad);
                let grads = acc.grads();
                // a clone shares the parameter tensors; the step replaces them
                let (student, report) = st
                    .opt
                    .step(st.student.clone(), &grads, lr, wd, &["encoder.", "head."], clip);
                st.student = student;
                grad_norms = [report.norms[0], report.norms[1]];
                last_grad_norms = grad_norms;
                st.counters.optimizer_steps += 1;
                pending = 0;
                for (r, d) in devices[1..].iter().enumerate() {
                    replicas[r] = st.student.clone().fork(&d.clone().autodiff());
                }
            }
            let momentum = ema_momentum(cfg.ema.start, cfg.ema.end, micro, total);
            if let Some(teacher) = st.teacher.take() {
                st.teacher = Some(ema_update(teacher, &st.student.encoder, momentum));
            }
            st.counters.micro_steps = micro + 1;
            let step_s = step_start.elapsed().as_secs_f64();
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
            let components = if cfg.objective.is_mae() {
                format!("mae {:.4} spec {:.3}", parts.main, st.counters.spectral_cached)
            } else {
                format!("jepa {:.4} vcr {:.3}", parts.main, parts.vcr)
            };
            pb.set_message(format!(
                "ep {}/{} loss {:.4} ({components}) lr {lr:.2e} {:.1} vol/s",
                epoch + 1,
                o.epochs,
                parts.total,
                nb as f64 / step_s
            ));
            pb.inc(1);
            if st.counters.nonfinite > cfg.run.max_nonfinite {
                pb.finish_and_clear();
                bail!(
                    "aborted: {} non-finite losses (limit run.max_nonfinite = {}); the last checkpoint is {}",
                    st.counters.nonfinite,
                    cfg.run.max_nonfinite,
                    paths.checkpoints.join("latest.safetensors").display()
                );
            }
            steps_here += 1;
            if opts.halt_after_steps == Some(steps_here) {
                pb.finish_and_clear();
                bail!("halted after {steps_here} steps (--halt-after-steps)");
            }
        }
        let mean = if loss_n > 0 { loss_sum / loss_n as f64 } else { f64::NAN };
        epoch_losses.push(mean);
        st.counters.epochs_done = epoch + 1;
        st.counters.epoch_loss = mean;
        save_checkpoint(&cfg, &st, &paths, "latest", "latest", &hash)?;
        if cfg.run.periodic_every > 0 && (epoch + 1) % cfg.run.periodic_every == 0 {
            save_checkpoint(&cfg, &st, &paths, &format!("epoch-{:04}", epoch + 1), "periodic", &hash)?;
        }
        let last = epoch + 1 == o.epochs;
        if let Some(v) =
            preview_volume.filter(|_| cfg.run.preview_every > 0 && ((epoch + 1) % cfg.run.preview_every == 0 || last))
        {
            let png = paths.previews.join(format!("epoch-{:04}.png", epoch + 1));
            write_preview(&cfg, &st.student, &v, epoch, &png)?;
        }
        pb.println(format!(
            "epoch {}/{}: loss {mean:.5} (grad norms {:.3} / {:.3})",
            epoch + 1,
            o.epochs,
            last_grad_norms[0],
            last_grad_norms[1]
        ));
    }
    pb.finish_and_clear();
    save_checkpoint(&cfg, &st, &paths, "final", "final", &hash)?;
    Ok(RunSummary {
        epoch_losses,
        micro_steps: st.counters.micro_steps,
        optimizer_steps: st.counters.optimizer_steps,
        nonfinite_losses: st.counters.nonfinite,
        seconds: started.elapsed().as_secs_f64(),
        final_checkpoint: checkpoint::paths(&paths.checkpoints, "final").0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Data parallelism: averaging two replicas' gradients on half batches equals the gradient of
    /// the whole batch (MAE's loss is a mean over equal halves).
    #[test]
    fn averaged_replica_gradients_equal_the_full_batch_gradient() {
        let mut cfg = PretrainConfig::preset("tiny-mae").unwrap();
        cfg.data.prep.depth = 16;
        cfg.data.prep.size = 32;
        let base = Device::flex();
        let device = base.clone().autodiff();
        let student = Student::init(&cfg, &mut Rng::new(3), &device);
        let mut rng = Rng::new(4);
        let vox = 16 * 32 * 32;
        let data: Vec<f32> = (0..4 * vox).map(|_| rng.normal() as f32).collect();
        let (ctx, tgt) = (
            TokenIndex::Shared((0..20).collect()),
            TokenIndex::Shared((20..32).collect()),
        );
        let plan = StepPlan {
            ctx: &ctx,
            tgt: &tgt,
            spectral_weight: None,
            cached_spectral: 0.0,
            cached_weight: 0.0,
            accum_steps: 1,
            telemetry: false,
        };
        let run = |d: &[f32], b: usize| {
            micro_step(
                &cfg,
                &student,
                None,
                Shard {
                    data: d,
                    shape: [b, 1, 16, 32, 32],
                },
                &plan,
                &device,
                &base,
            )
            .grads
            .unwrap()
        };
        let full = run(&data, 4);
        let halves = vec![run(&data[..2 * vox], 2), run(&data[2 * vox..], 2)];
        let avg = average_grads(halves, &student, &base);
        let params = named_params(&student);
        assert!(params.len() > 20);
        for p in params.iter().filter(|p| p.shape.len() == 2) {
            let a = full.get::<2>(p.id).unwrap();
            let b = avg.get::<2>(p.id).unwrap();
            let scale = a.clone().abs().max().into_scalar::<f32>().max(1e-12);
            let diff = (a - b).abs().max().into_scalar::<f32>();
            assert!(diff <= 1e-4 * scale, "{}: {diff} vs scale {scale}", p.path);
        }
    }
}
