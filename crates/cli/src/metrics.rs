//! `brainssl metrics`: accuracy, F1 and AUROC of a prediction file (docs/evaluation.md#metrics).

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use brainssl_eval::{bootstrap, paired_auroc, Metrics, Predictions};
use clap::Args;

#[derive(Args)]
pub struct MetricsArgs {
    /// CSV with header `label,p0,p1,...` (one probability column per class); `subject_id` optional
    #[arg(long)]
    predictions: PathBuf,
    /// Print JSON with keys accuracy, macro_f1, f1_positive (binary only), auroc, balanced_accuracy,
    /// sensitivity, specificity, confusion_matrix
    #[arg(long)]
    json: bool,
    /// Bootstrap resamples of subjects for 95 % intervals (0: none)
    #[arg(long, default_value_t = 0)]
    bootstrap: usize,
    /// Seed of the bootstrap resamples
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// A second model's predictions on the same test rows: paired bootstrap of the AUROC difference
    /// (this file minus that one; --bootstrap resamples, 1000 if not given)
    #[arg(long)]
    versus: Option<PathBuf>,
}

/// More resamples than this add nothing to a 95 % interval and only cost time and memory.
const MAX_RESAMPLES: usize = 1_000_000;

pub fn run(a: MetricsArgs) -> Result<()> {
    if a.bootstrap > MAX_RESAMPLES {
        anyhow::bail!(
            "--bootstrap {} is beyond the {MAX_RESAMPLES} resamples this command takes (1000 give a stable 95 % interval)",
            a.bootstrap
        );
    }
    let p = Predictions::read(&a.predictions).map_err(|e| anyhow!(e))?;
    let m = Metrics::compute(&p.probs, &p.labels).map_err(|e| anyhow!("{}: {e}", a.predictions.display()))?;
    let ci = (a.bootstrap > 0).then(|| bootstrap(&p.probs, &p.labels, &p.groups, a.bootstrap, a.seed));
    let versus = match &a.versus {
        Some(path) => {
            let q = Predictions::read(path).map_err(|e| anyhow!(e))?;
            let resamples = if a.bootstrap > 0 { a.bootstrap } else { 1000 };
            Some(
                paired_auroc(&p, &q, resamples, a.seed)
                    .map_err(|e| anyhow!("{} vs {}: {e}", a.predictions.display(), path.display()))?,
            )
        }
        None => None,
    };
    if a.json {
        let mut v = serde_json::to_value(&m)?;
        if let Some(ci) = &ci {
            v["bootstrap_95"] = serde_json::to_value(ci)?;
        }
        if let Some(d) = &versus {
            v["versus"] = serde_json::to_value(d)?;
        }
        println!("{v}");
        return Ok(());
    }
    let row = |name: &str, v: f64, c: Option<(f64, f64)>| match c {
        Some((lo, hi)) => println!("{name:<18} {v:.4}  [{lo:.4}, {hi:.4}]"),
        None => println!("{name:<18} {v:.4}"),
    };
    println!("{} predictions, {} classes", p.labels.len(), p.probs[0].len());
    row("accuracy", m.accuracy, ci.as_ref().map(|c| c.accuracy));
    row("macro_f1", m.macro_f1, ci.as_ref().map(|c| c.macro_f1));
    if let Some(f) = m.f1_positive {
        row("f1_positive", f, ci.as_ref().and_then(|c| c.f1_positive));
    }
    row("auroc", m.auroc, ci.as_ref().map(|c| c.auroc));
    row("balanced_accuracy", m.balanced_accuracy, None);
    row("sensitivity", m.sensitivity, None);
    row("specificity", m.specificity, None);
    println!("confusion matrix (rows: true class, columns: predicted; binary: predicted 1 when p1 >= 0.5)");
    for (k, r) in m.confusion_matrix.iter().enumerate() {
        let cells: Vec<String> = r.iter().map(|v| format!("{v:>6}")).collect();
        println!("  {k:>3} {}", cells.join(""));
    }
    if let Some(c) = ci {
        println!(
            "(95 % bootstrap over subjects, {} resamples, {} skipped)",
            c.resamples, c.skipped
        );
    }
    if let Some(d) = versus {
        println!(
            "AUROC minus {}'s ({:.4}): {:+.4}  [{:+.4}, {:+.4}], higher in {:.1} % of {} paired resamples of subjects ({} skipped)",
            a.versus.as_ref().map(|v| v.display().to_string()).unwrap_or_default(),
            d.auroc_b,
            d.difference,
            d.interval.0,
            d.interval.1,
            100.0 * d.share_a_higher,
            d.resamples,
            d.skipped
        );
    }
    Ok(())
}
