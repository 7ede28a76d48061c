//! The figures of runs and studies, built from what the runs wrote (logs, predictions, metrics) or
//! from typed study results: loss curves, collapse telemetry, ROC curves, confusion matrices, t-SNE
//! maps, PSD profiles and few-shot curves, all as SVG (see `brainssl_plot`).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use brainssl_downstream::study::FewShot;
use brainssl_eval::spectrum::PsdStudy;
use brainssl_eval::{auroc_binary, roc_curve, Predictions};
use brainssl_plot::{ConfusionMatrix, LineChart, ScatterChart, Series};

/// A figure with the caption that says what it shows.
pub struct Figure {
    /// File stem, unique within a run.
    pub name: String,
    pub caption: String,
    pub svg: String,
}

fn figure(name: &str, caption: impl Into<String>, svg: Result<String, String>) -> Result<Figure> {
    Ok(Figure {
        name: name.to_string(),
        caption: caption.into(),
        svg: svg.map_err(|e| anyhow!(e))?,
    })
}

/// The columns of a CSV file by name, values parsed where they are numbers (NaN elsewhere).
struct Columns {
    names: Vec<String>,
    values: Vec<Vec<f64>>,
}

impl Columns {
    fn read(path: &Path) -> Result<Self> {
        let mut r = csv::Reader::from_path(path).with_context(|| path.display().to_string())?;
        let names: Vec<String> = r
            .headers()
            .with_context(|| format!("{}: no header", path.display()))?
            .iter()
            .map(str::to_string)
            .collect();
        let mut values = vec![Vec::new(); names.len()];
        for (i, rec) in r.records().enumerate() {
            let rec = rec.with_context(|| format!("{}: line {}", path.display(), i + 2))?;
            for (c, col) in values.iter_mut().enumerate() {
                col.push(rec.get(c).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN));
            }
        }
        Ok(Self { names, values })
    }
    fn get(&self, name: &str) -> Option<&[f64]> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| self.values[i].as_slice())
    }
}

/// Whether a positive series spans enough decades to read better on a log axis.
fn wants_log(values: impl Iterator<Item = f64>) -> bool {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    lo.is_finite() && hi / lo > 20.0
}

/// What a pretraining log says in numbers: the per-epoch mean of the total loss.
pub struct PretrainingCurves {
    pub figures: Vec<Figure>,
    /// (epoch from 1, mean total loss)
    pub epoch_means: Vec<(f64, f64)>,
}

/// Per-epoch means of `values` (epochs in the log count from 0; reported from 1).
fn epoch_means(epoch: &[f64], values: &[f64]) -> Vec<(f64, f64)> {
    let n = epoch
        .iter()
        .filter(|e| e.is_finite())
        .fold(0.0f64, |a, &e| a.max(e + 1.0)) as usize;
    let mut sums = vec![(0.0, 0usize); n];
    for (&e, &v) in epoch.iter().zip(values) {
        if e.is_finite() && v.is_finite() {
            sums[e as usize].0 += v;
            sums[e as usize].1 += 1;
        }
    }
    sums.iter()
        .enumerate()
        .filter(|(_, s)| s.1 > 0)
        .map(|(e, s)| ((e + 1) as f64, s.0 / s.1 as f64))
        .collect()
}

/// Figures of a pretraining run from its `log.csv`: the loss and its main term per micro-step and
/// per epoch, the auxiliary terms on their own axis (saying which enter the loss, from the run's
/// `coefficients`: spectral and VCR weights), and (JEPA objectives) the collapse telemetry. A log
/// without steps gives no figures.
pub fn pretraining(log: &Path, title: &str, coefficients: &[(&str, f64)]) -> Result<PretrainingCurves> {
    let c = Columns::read(log)?;
    let (Some(epoch), Some(loss)) = (c.get("epoch"), c.get("loss")) else {
        bail!(
            "{}: not a pretraining log (no 'epoch' and 'loss' columns)",
            log.display()
        );
    };
    let steps: Vec<f64> = (1..=loss.len()).map(|s| s as f64).collect();
    // a negative value marks a term this step did not compute (the log writes -1)
    let column = |name: &str| -> Option<Vec<f64>> {
        let v: Vec<f64> = c
            .get(name)?
            .iter()
            .map(|&x| if x >= 0.0 { x } else { f64::NAN })
            .collect();
        v.iter().any(|x| x.is_finite() && *x > 0.0).then_some(v)
    };
    let mut figures = Vec::new();
    if !loss.iter().any(|l| l.is_finite()) {
        return Ok(PretrainingCurves {
            figures,
            epoch_means: Vec::new(),
        });
    }
    let main = ["loss-mae", "loss-jepa"]
        .into_iter()
        .find_map(|m| Some((m, column(m)?)));
    let mut chart = LineChart::new(format!("{title}: training loss per micro-step"), "micro-step", "loss").integer_x();
    let mut all: Vec<f64> = loss.to_vec();
    chart = chart.series(Series::new(
        "total loss",
        steps.iter().copied().zip(loss.iter().copied()).collect(),
    ));
    if let Some((name, v)) = main.as_ref().filter(|(_, v)| v.as_slice() != loss) {
        all.extend(v.iter().copied());
        chart = chart.series(Series::new(
            *name,
            steps.iter().copied().zip(v.iter().copied()).collect(),
        ));
    }
    figures.push(figure(
        "loss-per-step",
        "Training loss of every micro-step: the total that is minimised and, where it differs, the reconstruction (MAE) or prediction (JEPA) term (log scale when they span more than a factor of 20).",
        chart.log_y(wants_log(all.into_iter())).svg(),
    )?);
    // auxiliary terms: in the loss when their coefficient is positive, logged only otherwise
    let weight = |term: &str| match term {
        "loss-spec" => coefficients.iter().find(|c| c.0 == "spectral").map(|c| c.1),
        _ => coefficients.iter().find(|c| c.0 == "vcr").map(|c| c.1),
    };
    let mut aux = LineChart::new(
        format!("{title}: auxiliary loss terms per micro-step"),
        "micro-step",
        "term value",
    )
    .integer_x();
    let (mut any, mut all, mut roles) = (false, Vec::new(), Vec::new());
    for term in ["loss-spec", "loss-reg", "reg-loss", "vcr-var", "vcr-cov"] {
        let Some(v) = column(term) else { continue };
        any = true;
        all.extend(v.iter().copied());
        let role = match weight(term) {
            Some(w) if w > 0.0 => format!("{term} (weight {w})"),
            Some(_) => format!("{term} (logged only)"),
            None => term.to_string(),
        };
        roles.push(role.clone());
        aux = aux.series(Series::new(role, steps.iter().copied().zip(v).collect()));
    }
    if any {
        figures.push(figure(
            "loss-terms",
            format!(
                "Auxiliary terms as logged, before weighting: {}. A term with weight 0 is computed for monitoring and does not enter the loss; the VCR regulariser's weight multiplies the variance and covariance terms together.",
                roles.join(", ")
            ),
            aux.log_y(wants_log(all.into_iter())).svg(),
        )?);
    }
    let epoch_means_total = epoch_means(epoch, loss);
    if epoch_means_total.len() >= 2 {
        let first = epoch_means_total[0].1;
        let last = epoch_means_total[epoch_means_total.len() - 1].1;
        let mut chart = LineChart::new(format!("{title}: mean loss per epoch"), "epoch", "mean loss")
            .integer_x()
            .series(Series::new("total loss", epoch_means_total.clone()).with_markers());
        if let Some((name, v)) = main.as_ref().filter(|(_, v)| v.as_slice() != loss) {
            chart = chart.series(Series::new(*name, epoch_means(epoch, v)).with_markers());
        }
        figures.push(figure(
            "loss-per-epoch",
            format!(
                "Mean training loss per epoch: from {first:.4} to {last:.4}, a change of {:+.1} % (the axis spans only the values: read the tick labels).",
                100.0 * (last - first) / first.abs().max(1e-12)
            ),
            chart.svg(),
        )?);
    }
    for (col, what, caption) in [
        (
            "target-std",
            "target std",
            "Standard deviation of the teacher's target features across tokens and volumes: a fall towards 0 means the targets collapse to a constant.",
        ),
        (
            "target-erank",
            "effective rank",
            "Effective rank of the teacher's target features (exp of the entropy of the normalised singular values): a fall towards 1 means the features collapse onto a few directions.",
        ),
    ] {
        let Some(v) = c.get(col) else { continue };
        let pts: Vec<(f64, f64)> = steps.iter().copied().zip(v.iter().copied()).filter(|p| p.1.is_finite()).collect();
        if pts.len() < 2 {
            continue;
        }
        figures.push(figure(
            col,
            caption,
            LineChart::new(format!("{title}: collapse telemetry, {what}"), "micro-step", what)
                .integer_x()
                .series(Series::new(what, pts).with_markers())
                .svg(),
        )?);
    }
    Ok(PretrainingCurves {
        figures,
        epoch_means: epoch_means_total,
    })
}

/// The name of class k: the run's text label, or the number.
fn class_name(names: &[String], k: usize) -> String {
    names.get(k).cloned().unwrap_or_else(|| format!("class {k}"))
}

/// ROC curves of a run's test predictions: one curve for two classes (p1 against class 1), one
/// curve per class against the rest for more.
pub fn roc(predictions: &Path, names: &[String], title: &str) -> Result<Figure> {
    let p = Predictions::read(predictions).map_err(|e| anyhow!(e))?;
    let c = p.probs.first().map_or(0, Vec::len);
    let mut chart = LineChart::new(
        format!("{title}: ROC on the test split"),
        "false-positive rate (1 − specificity)",
        "true-positive rate (sensitivity)",
    )
    .ranges((-0.02, 1.02), (-0.02, 1.02));
    chart.size = (560, 480);
    let classes: Vec<usize> = if c == 2 { vec![1] } else { (0..c).collect() };
    for k in classes {
        let scores: Vec<f64> = p.probs.iter().map(|r| r[k]).collect();
        let pos: Vec<bool> = p.labels.iter().map(|&l| l == k).collect();
        let Some(curve) = roc_curve(&scores, &pos) else {
            continue;
        };
        let area = auroc_binary(&scores, &pos).unwrap_or(f64::NAN);
        let label = if c == 2 {
            format!("{} vs {} (AUROC {area:.3})", class_name(names, 1), class_name(names, 0))
        } else {
            format!("{} vs rest (AUROC {area:.3})", class_name(names, k))
        };
        chart = chart.series(Series::new(label, curve));
    }
    chart = chart.series(Series::new("chance", vec![(0.0, 0.0), (1.0, 1.0)]).reference());
    figure(
        "roc",
        format!(
            "ROC curve of the test predictions ({} scans) of the reported epoch; the dashed diagonal is chance.",
            p.labels.len()
        ),
        chart.svg(),
    )
}

/// The confusion matrix of the test split, from `metrics.json`.
pub fn confusion(metrics: &serde_json::Value, names: &[String], title: &str) -> Result<Option<Figure>> {
    let Some(rows) = metrics["test"]["confusion_matrix"].as_array() else {
        return Ok(None);
    };
    let counts: Vec<Vec<u64>> = rows
        .iter()
        .map(|r| {
            r.as_array()
                .map(|r| r.iter().filter_map(|v| v.as_u64()).collect())
                .unwrap_or_default()
        })
        .collect();
    let m = ConfusionMatrix {
        title: format!("{title}: test confusion matrix"),
        class_names: (0..counts.len()).map(|k| class_name(names, k)).collect(),
        counts,
    };
    let rule = if m.class_names.len() == 2 {
        "class 1 when p1 ≥ 0.5"
    } else {
        "the most probable class"
    };
    Ok(Some(figure(
        "confusion",
        format!("Confusion matrix of the test split; the decision is {rule}. Each cell: scans, and their share of the true class."),
        m.svg(),
    )?))
}

/// A t-SNE map coloured by class.
pub fn tsne(map: &[[f64; 2]], labels: &[usize], names: &[String], title: &str) -> Result<String> {
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let mut chart = ScatterChart::new(title, "t-SNE 1", "t-SNE 2");
    for c in 0..k {
        let pts: Vec<(f64, f64)> = map
            .iter()
            .zip(labels)
            .filter(|(_, &l)| l == c)
            .map(|(p, _)| (p[0], p[1]))
            .collect();
        chart = chart.group(class_name(names, c), pts);
    }
    chart.svg().map_err(|e| anyhow!(e))
}

/// Mean radial PSD per dataset, on a log axis.
pub fn psd(study: &PsdStudy) -> Result<String> {
    let x = study.bin_centres();
    let mut chart = LineChart::new(
        "mean radial power spectral density",
        "normalised radial frequency",
        "mean PSD (log scale)",
    )
    .log_y(true);
    for d in &study.datasets {
        chart = chart.series(Series::new(
            format!("{} ({} scans)", d.name, d.scans),
            x.iter().copied().zip(d.profile.iter().copied()).collect(),
        ));
    }
    // the cut-off as a vertical line over the profiles' range
    let values = study
        .datasets
        .iter()
        .flat_map(|d| d.profile.iter().copied())
        .filter(|v| *v > 0.0 && v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    if lo < hi {
        let cut = study.cutoff;
        chart = chart
            .series(Series::new(format!("high-frequency cut-off ({cut})"), vec![(cut, lo), (cut, hi)]).reference());
    }
    chart.svg().map_err(|e| anyhow!(e))
}

/// Mean test AUROC against k per model, with markers at the measured k.
pub fn fewshot(study: &FewShot) -> Result<String> {
    let mut chart = LineChart::new(
        "few-shot: test AUROC against labelled subjects per class",
        "subjects per class (k)",
        "test AUROC (mean over draws)",
    )
    .integer_x();
    for m in &study.models {
        let pts: Vec<(f64, f64)> = study
            .ks
            .iter()
            .map(|&k| {
                let v = study.aurocs(m, k);
                (k as f64, v.iter().sum::<f64>() / v.len().max(1) as f64)
            })
            .collect();
        chart = chart.series(Series::new(m.clone(), pts).with_markers());
    }
    chart.svg().map_err(|e| anyhow!(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretraining_figures_include_parts_epochs_and_telemetry() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.csv");
        let mut text = String::from("epoch,itr,loss,loss-jepa,reg-loss,target-std,target-erank,status\n");
        for e in 0..3 {
            for i in 0..4 {
                let l = 1.0 / (1 + e * 4 + i) as f64;
                let tele = if i == 0 {
                    format!("{:.3},{:.3}", 0.5 - 0.1 * e as f64, 20.0 - e as f64)
                } else {
                    ",".into()
                };
                text.push_str(&format!("{e},{i},{l},{l},0,{tele},ok\n"));
            }
        }
        std::fs::write(&log, text).unwrap();
        let curves = pretraining(&log, "jepa", &[("vcr", 0.0)]).unwrap();
        let figs = &curves.figures;
        let names: Vec<&str> = figs.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["loss-per-step", "loss-per-epoch", "target-std", "target-erank"]);
        // loss-jepa equals the total and reg-loss is all zero: neither is drawn
        assert!(figs[0].svg.contains("total loss") && !figs[0].svg.contains("loss-jepa"));
        assert!(figs[1].caption.contains("from 0.5208 to 0.0963"), "{}", figs[1].caption);
        assert_eq!(curves.epoch_means.len(), 3);
        // -1 marks a term not computed; a positive weight puts a term in the loss
        let text =
            "epoch,itr,loss,loss-mae,loss-spec,status\n0,0,1.0,0.9,-1,ok\n0,1,0.9,0.8,1.5,ok\n1,0,0.8,0.7,-1,ok\n";
        std::fs::write(&log, text).unwrap();
        let c = pretraining(&log, "sl-mae", &[("spectral", 0.5)]).unwrap();
        let terms = c.figures.iter().find(|f| f.name == "loss-terms").unwrap();
        assert!(
            terms.caption.contains("loss-spec (weight 0.5)") && !terms.svg.contains(">-1<"),
            "{}",
            terms.caption
        );
        std::fs::write(&log, "epoch,itr,loss,status\n").unwrap();
        assert!(pretraining(&log, "empty", &[]).unwrap().figures.is_empty());
    }

    #[test]
    fn roc_and_confusion_name_the_classes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.csv");
        std::fs::write(
            &p,
            "subject_id,path,label,p0,p1\na,x,0,0.9,0.1\nb,y,1,0.2,0.8\nc,z,1,0.6,0.4\n",
        )
        .unwrap();
        let names = vec!["CN".to_string(), "AD".to_string()];
        let f = roc(&p, &names, "probe").unwrap();
        assert!(f.svg.contains("AD vs CN (AUROC 1.000)"), "{}", f.svg);
        let m = serde_json::json!({"test": {"confusion_matrix": [[1, 0], [1, 1]]}});
        let c = confusion(&m, &names, "probe").unwrap().unwrap();
        assert!(c.svg.contains(">CN<") && c.svg.contains("50 %"));
        assert!(confusion(&serde_json::json!({}), &names, "x").unwrap().is_none());
    }
}
