//! The supervised training loop shared by probes, fine-tuning and the ResNet baseline
//! (docs/evaluation.md#training-loop): cross-entropy, AdamW, warm-up + cosine schedules, clipping
//! after warm-up, validation on the full validation set every epoch, the best epoch chosen by
//! validation AUROC, test metrics from that epoch's weights, pooled over the split
//! (docs/evaluation.md#metrics). What a batch is (scans or cached tokens) is up to a [`Batches`]
//! source.

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use brainssl_backend::{autocast, indices, scalar, tch, to_vec_f64, Device, Kind, Precision, Tensor};
use brainssl_data::ManifestRow;
use brainssl_eval::{bootstrap, Metrics};
use brainssl_prep::Rng;
use brainssl_train::optim::{zero_grads, AdamW, StepRules};
use brainssl_train::reporter::Reporter;
use brainssl_train::schedule::RunSchedule;
use serde::Serialize;

use crate::config::DownstreamConfig;
use crate::selection::{left_chance, Selector};

/// What the loop needs from a model: logits for a training batch, probabilities in evaluation
/// mode, its variables, and how its parameters are clipped and scaled.
pub trait Classifier {
    /// Logits [B, C] of a training batch `x` (scans [B, 1, T, H, W] or encoder tokens [B, N, D]) in `epoch`.
    fn train_logits(&self, x: &Tensor, epoch: usize, rng: &mut Rng) -> Tensor;
    /// Class probabilities [B, C] in evaluation mode (called without gradients).
    fn probabilities(&self, x: &Tensor) -> Tensor;
    /// Every variable (parameters and buffers) with its saved name, in name order.
    fn variables(&self) -> Vec<(String, Tensor)>;
    /// Parameter path prefixes clipped separately, with their thresholds (0: no clipping).
    fn clip_groups(&self, cfg: &DownstreamConfig) -> Vec<(&'static str, f64)>;
    /// Learning-rate multiplier of a parameter (layer-wise decay).
    fn lr_scale(&self, _path: &str) -> f64 {
        1.0
    }
    /// The encoder's architecture, saved with the weights so that `predict` can rebuild the model
    /// (None: the ResNet-50 baseline, whose size the recipe fixes).
    fn encoder_config(&self) -> Option<&brainssl_models::VitConfig> {
        None
    }
    /// The variables the optimiser steps: those that take gradients.
    fn trainable(&self) -> Vec<(String, Tensor)> {
        self.variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect()
    }
}

/// The held-out parts of a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Val,
    Test,
}

/// Where batches come from: shuffled training batches per epoch, evaluation batches in row order.
pub trait Batches {
    /// Training batches per epoch (before accumulation).
    fn steps_per_epoch(&self) -> usize;
    /// The training batches of `epoch` with their labels; skipped samples are reported to `warn`.
    fn train<'a>(
        &'a self,
        epoch: usize,
        device: Device,
        warn: &'a dyn Fn(String),
    ) -> Box<dyn Iterator<Item = (Tensor, Vec<usize>)> + 'a>;
    /// Evaluation-mode batches of `part`, in row order. A sample that fails is an error: metrics
    /// over part of a split would be silently wrong.
    fn eval<'a>(&'a self, part: Part, device: Device) -> Box<dyn Iterator<Item = Result<Tensor>> + 'a>;
}

/// Train, validation and test rows (subject-disjoint).
#[derive(Clone, Debug)]
pub struct Splits {
    pub train: Vec<ManifestRow>,
    pub val: Vec<ManifestRow>,
    pub test: Vec<ManifestRow>,
}

/// Test outcome of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The reported epoch (0-based), chosen by the config's [`crate::selection::Selection`] rule.
    pub best_epoch: usize,
    pub val: Metrics,
    pub test: Metrics,
    /// Mean training loss of the reported epoch.
    pub train_loss: f64,
    /// Lowest mean training loss of any epoch.
    pub min_train_loss: f64,
}

impl Outcome {
    /// Whether the reported classifier fitted its training data at all. A loss that never leaves
    /// the chance level ln C means the outputs barely depend on the input (the attentive probe does
    /// this on tiny encoders when the signal lies in a few tokens): probabilities near 1/C,
    /// accuracy and F1 at chance, and an AUROC that ranks by tiny differences.
    pub fn learned(&self, num_classes: usize) -> bool {
        left_chance(self.train_loss, num_classes)
    }
}

/// Mean cross-entropy of logits [B, C] against class indices.
pub(crate) fn cross_entropy(logits: &Tensor, labels: &[usize]) -> Tensor {
    let idx = indices(labels, logits.device());
    logits
        .to_kind(Kind::Float)
        .log_softmax(1, Kind::Float)
        .gather(1, &idx.unsqueeze(1), false)
        .mean(Kind::Float)
        .neg()
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
pub(crate) fn predict<M: Classifier, S: Batches>(
    model: &M,
    source: &S,
    part: Part,
    device: Device,
    precision: Precision,
) -> Result<Vec<Vec<f64>>> {
    let mut out = Vec::new();
    for x in source.eval(part, device) {
        let x = x?;
        let p = tch::no_grad(|| autocast(precision, || model.probabilities(&x)));
        let c = p.size()[1] as usize;
        out.extend(to_vec_f64(&p).chunks(c).map(|r| r.to_vec()));
    }
    Ok(out)
}

/// The variables training changes: parameters that take gradients and BatchNorm statistics (a
/// frozen encoder and fixed token statistics stay as they are).
fn changing<M: Classifier>(model: &M) -> Vec<(String, Tensor)> {
    model
        .variables()
        .into_iter()
        .filter(|(k, t)| t.requires_grad() || brainssl_models::named::is_buffer(k))
        .collect()
}

/// Device copies of what training changes: the weights of the epoch chosen so far.
fn snapshot<M: Classifier>(model: &M) -> Vec<Tensor> {
    tch::no_grad(|| changing(model).iter().map(|(_, t)| t.detach().copy()).collect())
}

fn restore<M: Classifier>(model: &M, saved: &[Tensor]) {
    tch::no_grad(|| {
        for ((_, t), s) in changing(model).iter().zip(saved) {
            t.shallow_clone().copy_(s);
        }
    });
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

/// Trains `model` on `source`'s batches, selects the epoch by validation AUROC and evaluates it on
/// the test split. Writes `config.toml`, `log.csv`, `test_predictions.csv` and `metrics.json` into
/// `out`; returns the outcome, with the selected epoch's weights restored into `model` (the caller
/// saves them).
pub fn fit<M: Classifier, S: Batches>(
    cfg: &DownstreamConfig,
    model: &M,
    source: &S,
    splits: &Splits,
    out: &Path,
    device: Device,
    progress: bool,
) -> Result<Outcome> {
    let c = cfg.classifier.num_classes;
    for (rows, what) in [(&splits.train, "train"), (&splits.val, "val"), (&splits.test, "test")] {
        if rows.is_empty() {
            bail!("the {what} split is empty");
        }
        labels_of(rows, c, what)?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    brainssl_scan::atomic_write(&out.join("config.toml"), cfg.to_toml().as_bytes())?;
    let mut rng = Rng::new(cfg.seed ^ 0x6472_6f70);
    let precision = cfg.precision.resolve(device);

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
    let rep = Reporter::new(cfg.epochs, progress);
    let warn = |m: String| rep.warn(m);
    let params = model.trainable();
    let groups = model.clip_groups(cfg);
    let prefixes: Vec<&str> = groups.iter().map(|g| g.0).collect();
    let scale = |path: &str| model.lr_scale(path);
    let mut selector = Selector::new(cfg.selection, c);
    let mut min_train_loss = f64::INFINITY;
    let mut micro = 0usize;
    let mut pending = 0usize;
    zero_grads(&params);
    for epoch in 0..cfg.epochs {
        let started = Instant::now();
        let (mut loss_sum, mut loss_n) = (0.0, 0usize);
        let mut lr = cfg.start_lr;
        for (itr, (x, labels)) in source.train(epoch, device, &warn).enumerate() {
            let (step_lr, wd) = schedule.at(micro + 1);
            lr = step_lr;
            micro += 1;
            let loss = autocast(precision, || {
                cross_entropy(&model.train_logits(&x, epoch, &mut rng), &labels)
            });
            let value = scalar(&loss);
            if !value.is_finite() {
                warn(format!("non-finite loss at epoch {epoch} step {itr}: step skipped"));
                continue;
            }
            loss_sum += value;
            loss_n += 1;
            (loss / cfg.accum_steps as f64).backward();
            pending += 1;
            if pending == cfg.accum_steps {
                let clip_on = epoch > cfg.warmup_epochs;
                let clips: Vec<Option<f64>> = groups.iter().map(|g| (clip_on && g.1 > 0.0).then_some(g.1)).collect();
                let rules = StepRules {
                    groups: &prefixes,
                    clips: &clips,
                    lr_scale: &scale,
                };
                opt.step_with(&params, lr, wd, &rules);
                zero_grads(&params);
                pending = 0;
            }
        }
        // leftover accumulation carries into the next epoch, as in the reference
        // (docs/method.md#accumulation-and-clipping)
        let m = metrics_of(&splits.val, &predict(model, source, Part::Val, device, precision)?)?;
        if loss_n == 0 {
            rep.finish();
            bail!(
                "{}: epoch {}: no training batch gave a finite loss (all scans failed to load, or every loss \
                 was NaN/inf); nothing to report",
                out.display(),
                epoch + 1
            );
        }
        let train_loss = loss_sum / loss_n as f64;
        min_train_loss = min_train_loss.min(train_loss);
        log.push_str(&format!(
            "{},{train_loss:.6},{:.6},{:.6},{},{:.6},{lr:.4e},{:.2}\n",
            epoch + 1,
            m.accuracy,
            m.macro_f1,
            m.f1_positive.map(|f| format!("{f:.6}")).unwrap_or_default(),
            m.auroc,
            started.elapsed().as_secs_f64()
        ));
        brainssl_scan::atomic_write(&out.join("log.csv"), log.as_bytes())?;
        // shared, not copied, when one epoch is best under both of the selector's slots
        selector.offer(epoch, train_loss, &m, || std::rc::Rc::new(snapshot(model)));
        rep.step(format!(
            "epoch {} loss {train_loss:.4} val AUROC {:.4}",
            epoch + 1,
            m.auroc
        ));
    }
    rep.finish();
    let chosen = selector.finish().ok_or_else(|| anyhow!("no epoch ran"))?;
    restore(model, &chosen.weights);
    let best_epoch = chosen.epoch;
    let probs = predict(model, source, Part::Test, device, precision)?;
    write_predictions(&out.join("test_predictions.csv"), &splits.test, &probs)?;
    let test = metrics_of(&splits.test, &probs)?;
    let labels: Vec<usize> = splits.test.iter().map(|r| r.label as usize).collect();
    let groups: Vec<String> = splits.test.iter().map(|r| r.subject_id.clone()).collect();
    let ci = bootstrap(&probs, &labels, &groups, 1000, cfg.seed);
    let outcome = Outcome {
        best_epoch,
        val: chosen.val,
        test,
        train_loss: chosen.train_loss,
        min_train_loss,
    };
    if !outcome.learned(c) {
        rep.warn(format!(
            "{}: the reported epoch {} has training loss {:.4} (chance: ln {c} = {:.4}; lowest of any epoch \
             {min_train_loss:.4}): the classifier did not fit its training data. Its probabilities stay near \
             1/{c}, so accuracy and F1 mean little, and its AUROC rests on tiny differences. Try more epochs \
             or a higher lr (frozen probes: --standardise-tokens)",
            out.display(),
            best_epoch + 1,
            outcome.train_loss,
            (c as f64).ln()
        ));
    }
    let json = serde_json::json!({
        // epochs are counted from 1 in every file and message
        "best_epoch": best_epoch + 1,
        "selection": cfg.selection,
        "val": outcome.val,
        "test": outcome.test,
        "test_bootstrap_95": ci,
        "train_loss": outcome.train_loss,
        "min_train_loss": min_train_loss,
        "learned": outcome.learned(c),
        "class_names": cfg.class_names,
    });
    brainssl_scan::atomic_write(
        &out.join("metrics.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    Ok(outcome)
}

/// Saves `model`'s variables with the recipe and the selected epoch as metadata.
pub fn save_weights<M: Classifier>(path: &Path, model: &M, cfg: &DownstreamConfig, epoch: usize) -> Result<()> {
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = model
        .variables()
        .iter()
        .map(|(k, t)| (k.clone(), brainssl_backend::dims(t), brainssl_backend::to_vec(t)))
        .collect();
    let meta = serde_json::json!({
        "config": cfg,
        "encoder": model.encoder_config(),
        "best_epoch": epoch + 1,
        "brainssl_version": env!("CARGO_PKG_VERSION"),
    });
    brainssl_train::checkpoint::save_tensors(path, &tensors, &meta.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_closed_form() {
        let logits = brainssl_backend::tensor(&[2.0, 0.0, 0.0, 1.0], &[2, 2], Device::Cpu);
        let l = scalar(&cross_entropy(&logits, &[0, 0]));
        // −½[log σ(2) + log σ(−1)] with σ the logistic function
        let want = -0.5 * ((1.0 / (1.0 + (-2f64).exp())).ln() + (1.0 / (1.0 + 1f64.exp())).ln());
        assert!((l - want).abs() < 1e-6, "{l} vs {want}");
    }

    #[test]
    fn learned_refers_to_the_reported_epoch() {
        let m = Metrics::compute(&[vec![0.6, 0.4], vec![0.3, 0.7]], &[0, 1]).unwrap();
        let at = |loss: f64, min: f64| Outcome {
            best_epoch: 0,
            val: m.clone(),
            test: m.clone(),
            train_loss: loss,
            min_train_loss: min,
        };
        // ln 2 = 0.6931, ln 3 = 1.0986; a low loss in another epoch does not count
        assert!(!at(0.6929, 0.2).learned(2) && at(0.60, 0.60).learned(2));
        assert!(!at(1.095, 0.5).learned(3) && at(0.69, 0.69).learned(3));
        assert!(!at(f64::NAN, f64::NAN).learned(2), "no finite loss: not learned");
    }
}
