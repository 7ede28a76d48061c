//! The supervised training loop shared by probes, fine-tuning and the ResNet baseline (SPEC 5.2-5.3):
//! cross-entropy, AdamW, warm-up + cosine schedules, clipping after warm-up, validation on the full
//! validation set every epoch, the best epoch chosen by validation AUROC, test metrics from that
//! epoch's weights (D4). What a batch is (scans or cached tokens) is up to a [`Batches`] source.

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use brainssl_backend::burn::module::Module;
use brainssl_backend::burn::optim::GradientsParams;
use brainssl_backend::burn::tensor::activation::log_softmax;
use brainssl_backend::burn::tensor::Int;
use brainssl_backend::{Device, Tensor, TensorData};
use brainssl_data::ManifestRow;
use brainssl_eval::{bootstrap, Metrics};
use brainssl_prep::Rng;
use brainssl_train::checkpoint::module_tensors;
use brainssl_train::optim::AdamW;
use brainssl_train::schedule::RunSchedule;
use indicatif::ProgressBar;
use serde::Serialize;

use crate::config::DownstreamConfig;

/// What the loop needs from a model: logits for a training batch, probabilities in evaluation
/// mode, and how its parameters are clipped and scaled.
pub trait Classifier: Module + Clone {
    /// A batch as the model takes it: scans [B, 1, T, H, W] or encoder tokens [B, N, D].
    type Input;
    /// Logits [B, C] of a training batch `x` (on the autodiff device) in `epoch`.
    fn train_logits(&self, x: Self::Input, epoch: usize, rng: &mut Rng) -> Tensor<2>;
    /// Class probabilities [B, C] (called on the `valid()` model).
    fn probabilities(&self, x: Self::Input) -> Tensor<2>;
    /// Parameter path prefixes clipped separately, with their thresholds (0: no clipping).
    fn clip_groups(&self, cfg: &DownstreamConfig) -> Vec<(&'static str, f64)>;
    /// Learning-rate multiplier of a parameter (layer-wise decay).
    fn lr_scale(&self, _path: &str) -> f64 {
        1.0
    }
}

/// The held-out parts of a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Val,
    Test,
}

/// Where batches come from: shuffled training batches per epoch, evaluation batches in row order.
pub trait Batches<I> {
    /// Training batches per epoch (before accumulation).
    fn steps_per_epoch(&self) -> usize;
    /// The training batches of `epoch` with their labels; skipped samples are reported to `warn`.
    fn train<'a>(
        &'a self,
        epoch: usize,
        device: &'a Device,
        warn: &'a dyn Fn(String),
    ) -> Box<dyn Iterator<Item = (I, Vec<usize>)> + 'a>;
    /// Evaluation-mode batches of `part`, in row order. A sample that fails is an error: metrics
    /// over part of a split would be silently wrong.
    fn eval<'a>(&'a self, part: Part, device: &'a Device) -> Box<dyn Iterator<Item = Result<I>> + 'a>;
}

/// Train, validation and test rows (subject-disjoint).
pub struct Splits {
    pub train: Vec<ManifestRow>,
    pub val: Vec<ManifestRow>,
    pub test: Vec<ManifestRow>,
}

/// Test outcome of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub best_epoch: usize,
    pub val: Metrics,
    pub test: Metrics,
    /// lowest mean training loss of an epoch
    pub min_train_loss: f64,
}

impl Outcome {
    /// Whether the classifier fitted its training data at all. A loss that never leaves the chance
    /// level ln C means the outputs barely depend on the input (SPEC 3.4's probe does this on tiny
    /// encoders when the signal lies in a few tokens): probabilities near 1/C, accuracy and F1 at
    /// chance, and an AUROC that ranks by tiny differences.
    pub fn learned(&self, num_classes: usize) -> bool {
        self.min_train_loss < CHANCE_MARGIN * (num_classes as f64).ln()
    }
}

/// A training loss above this fraction of ln C counts as not learned (0.99 · ln 2 = 0.686).
const CHANCE_MARGIN: f64 = 0.99;

/// Mean cross-entropy of logits [B, C] against class indices.
pub(crate) fn cross_entropy(logits: Tensor<2>, labels: &[usize]) -> Tensor<1> {
    let [b, _] = logits.dims();
    let idx: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [b, 1]), &logits.device());
    log_softmax(logits, 1).gather(1, idx).mean().neg()
}

fn labels_of(rows: &[ManifestRow], classes: usize, what: &str) -> Result<()> {
    if let Some(r) = rows.iter().find(|r| r.label < 0 || r.label as usize >= classes) {
        bail!(
            "{what}: {} has label {}, outside 0..{classes}",
            r.path.display(),
            r.label
        );
    }
    Ok(())
}

/// Probabilities of every row of `part` in evaluation mode, in row order.
fn predict<M: Classifier, S: Batches<M::Input>>(
    model: &M,
    source: &S,
    part: Part,
    device: &Device,
) -> Result<Vec<Vec<f64>>> {
    let model = model.valid();
    let mut out = Vec::new();
    for x in source.eval(part, device) {
        let p = model.probabilities(x?);
        let [_, c] = p.dims();
        let p = p
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .map_err(|e| anyhow!("{e:?}"))?;
        out.extend(p.chunks(c).map(|r| r.to_vec()));
    }
    Ok(out)
}

/// Writes `subject_id,path,label,p0,...` (the `metrics` command's input format).
pub fn write_predictions(path: &Path, rows: &[ManifestRow], probs: &[Vec<f64>]) -> Result<()> {
    let c = probs.first().map_or(0, |p| p.len());
    let mut text = format!(
        "subject_id,path,label,{}\n",
        (0..c).map(|k| format!("p{k}")).collect::<Vec<_>>().join(",")
    );
    for (r, p) in rows.iter().zip(probs) {
        let ps: Vec<String> = p.iter().map(|v| format!("{v:.8}")).collect();
        text.push_str(&format!(
            "{},{},{},{}\n",
            r.subject_id,
            r.path.display(),
            r.label,
            ps.join(",")
        ));
    }
    brainssl_scan::atomic_write(path, text.as_bytes()).with_context(|| path.display().to_string())
}

fn metrics_of(rows: &[ManifestRow], probs: &[Vec<f64>]) -> Result<Metrics> {
    if rows.len() != probs.len() {
        bail!("{} predictions for {} rows", probs.len(), rows.len());
    }
    let labels: Vec<usize> = rows.iter().map(|r| r.label as usize).collect();
    Metrics::compute(probs, &labels).map_err(|e| anyhow!(e))
}

/// Trains `model` (on the autodiff device of `base`) on `source`'s batches, selects the epoch by
/// validation AUROC and evaluates it on the test split. Writes `config.toml`, `log.csv`,
/// `test_predictions.csv` and `metrics.json` into `out`; returns the outcome and the selected
/// model (the caller saves its weights).
pub fn fit<M: Classifier, S: Batches<M::Input>>(
    cfg: &DownstreamConfig,
    mut model: M,
    source: &S,
    splits: &Splits,
    out: &Path,
    base: &Device,
    progress: bool,
) -> Result<(Outcome, M)> {
    let c = cfg.classifier.num_classes;
    for (rows, what) in [(&splits.train, "train"), (&splits.val, "val"), (&splits.test, "test")] {
        if rows.is_empty() {
            bail!("the {what} split is empty");
        }
        labels_of(rows, c, what)?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    brainssl_scan::atomic_write(&out.join("config.toml"), cfg.to_toml().as_bytes())?;
    let device = base.clone().autodiff();
    let mut rng = Rng::new(cfg.seed ^ 0x6472_6f70);

    let ipe = source.steps_per_epoch();
    let schedule = RunSchedule::new(
        [cfg.start_lr, cfg.lr, cfg.final_lr],
        [cfg.weight_decay, cfg.final_weight_decay],
        cfg.warmup_epochs,
        cfg.epochs,
        ipe,
        cfg.lr_schedule_factor,
    );
    let mut opt = AdamW::new(cfg.betas, cfg.eps);
    let mut log = "epoch,train_loss,val_accuracy,val_macro_f1,val_f1_positive,val_auroc,lr,seconds\n".to_string();
    let pb = if progress {
        ProgressBar::new(cfg.epochs as u64)
    } else {
        ProgressBar::hidden()
    };
    let warn = |m: String| pb.println(format!("warning: {m}"));
    let mut best: Option<(f64, usize, M, Metrics)> = None;
    let mut min_train_loss = f64::INFINITY;
    let mut micro = 0usize;
    for epoch in 0..cfg.epochs {
        let started = Instant::now();
        let (mut loss_sum, mut loss_n) = (0.0, 0usize);
        let mut acc: Option<GradientsParams> = None;
        let mut pending = 0usize;
        let mut lr = cfg.start_lr;
        for (itr, (x, labels)) in source.train(epoch, &device, &warn).enumerate() {
            let (step_lr, wd) = schedule.at(micro + 1);
            lr = step_lr;
            micro += 1;
            let loss = cross_entropy(model.train_logits(x, epoch, &mut rng), &labels);
            let value = loss.clone().into_scalar::<f32>() as f64;
            if !value.is_finite() {
                warn(format!("non-finite loss at epoch {epoch} step {itr}: step skipped"));
                continue;
            }
            loss_sum += value;
            loss_n += 1;
            let loss = if cfg.accum_steps > 1 {
                loss.div_scalar(cfg.accum_steps as f64)
            } else {
                loss
            };
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            acc = Some(match acc.take() {
                None => grads,
                Some(mut a) => {
                    brainssl_train::optim::add_grads(&mut a, grads, &model);
                    a
                }
            });
            pending += 1;
            if pending == cfg.accum_steps {
                let grads = acc.take().expect("accumulated");
                let clip_on = epoch > cfg.warmup_epochs;
                let groups = model.clip_groups(cfg);
                let prefixes: Vec<&str> = groups.iter().map(|g| g.0).collect();
                let clips: Vec<Option<f64>> = groups.iter().map(|g| (clip_on && g.1 > 0.0).then_some(g.1)).collect();
                let scaled = model.clone();
                let scale = |path: &str| scaled.lr_scale(path);
                model = opt.step_scaled(model, &grads, lr, wd, &prefixes, &clips, &scale).0;
                pending = 0;
            }
        }
        // leftover accumulation carries into the next epoch, as in the reference (SPEC 5.2)
        let m = metrics_of(&splits.val, &predict(&model, source, Part::Val, base)?)?;
        let train_loss = if loss_n > 0 { loss_sum / loss_n as f64 } else { f64::NAN };
        min_train_loss = min_train_loss.min(train_loss);
        log.push_str(&format!(
            "{epoch},{train_loss:.6},{:.6},{:.6},{},{:.6},{lr:.4e},{:.2}\n",
            m.accuracy,
            m.macro_f1,
            m.f1_positive.map(|f| format!("{f:.6}")).unwrap_or_default(),
            m.auroc,
            started.elapsed().as_secs_f64()
        ));
        brainssl_scan::atomic_write(&out.join("log.csv"), log.as_bytes())?;
        if best.as_ref().is_none_or(|(a, ..)| m.auroc > *a) {
            best = Some((m.auroc, epoch, model.clone(), m.clone()));
        }
        pb.set_message(format!(
            "epoch {} loss {train_loss:.4} val AUROC {:.4}",
            epoch + 1,
            m.auroc
        ));
        pb.inc(1);
    }
    pb.finish_and_clear();
    let (_, best_epoch, best_model, val) = best.ok_or_else(|| anyhow!("no epoch ran"))?;
    let probs = predict(&best_model, source, Part::Test, base)?;
    write_predictions(&out.join("test_predictions.csv"), &splits.test, &probs)?;
    let test = metrics_of(&splits.test, &probs)?;
    let labels: Vec<usize> = splits.test.iter().map(|r| r.label as usize).collect();
    let groups: Vec<String> = splits.test.iter().map(|r| r.subject_id.clone()).collect();
    let ci = bootstrap(&probs, &labels, &groups, 1000, cfg.seed);
    let outcome = Outcome {
        best_epoch,
        val,
        test,
        min_train_loss,
    };
    if !outcome.learned(c) {
        eprintln!(
            "warning: {}: the training loss never fell below {min_train_loss:.4} (chance: ln {c} = {:.4}); \
             the classifier did not fit its training data. Its probabilities stay near 1/{c}, so accuracy \
             and F1 mean little, and its AUROC rests on tiny differences. Try more epochs or a higher lr \
             (frozen probes: --standardise-tokens)",
            out.display(),
            (c as f64).ln()
        );
    }
    let json = serde_json::json!({
        "best_epoch": best_epoch,
        "val": outcome.val,
        "test": outcome.test,
        "test_bootstrap_95": ci,
        "min_train_loss": min_train_loss,
        "learned": outcome.learned(c),
    });
    brainssl_scan::atomic_write(
        &out.join("metrics.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    Ok((outcome, best_model))
}

/// Saves `model`'s tensors with the recipe and the selected epoch as metadata.
pub fn save_weights<M: Module>(path: &Path, model: &M, cfg: &DownstreamConfig, epoch: usize) -> Result<()> {
    let mut tensors = module_tensors(model, "");
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let meta = serde_json::json!({ "config": cfg, "best_epoch": epoch, "brainssl_version": env!("CARGO_PKG_VERSION") });
    brainssl_train::checkpoint::save_tensors(path, &tensors, &meta.to_string()).map_err(|e| anyhow!(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_closed_form() {
        let d = Device::flex();
        let logits = Tensor::<2>::from_data(TensorData::new(vec![2.0f32, 0.0, 0.0, 1.0], [2, 2]), &d);
        let l = cross_entropy(logits, &[0, 0]).into_scalar::<f32>() as f64;
        // −½[log σ(2) + log σ(−1)] with σ the logistic function
        let want = -0.5 * ((1.0 / (1.0 + (-2f64).exp())).ln() + (1.0 / (1.0 + 1f64.exp())).ln());
        assert!((l - want).abs() < 1e-6, "{l} vs {want}");
    }

    #[test]
    fn learned_means_the_loss_left_chance() {
        let m = Metrics {
            accuracy: 0.5,
            macro_f1: 0.5,
            f1_positive: None,
            auroc: 0.5,
        };
        let at = |loss: f64| Outcome {
            best_epoch: 0,
            val: m.clone(),
            test: m.clone(),
            min_train_loss: loss,
        };
        // ln 2 = 0.6931, ln 3 = 1.0986
        assert!(!at(0.6929).learned(2) && at(0.60).learned(2));
        assert!(!at(1.095).learned(3) && at(0.69).learned(3));
        assert!(!at(f64::NAN).learned(2), "no finite loss: not learned");
    }
}
