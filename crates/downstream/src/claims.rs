//! The paper's four claims as comparisons of mean test AUROC, each with a two-level bootstrap
//! interval (seeds or few-shot draws, then test subjects) and one plain verdict per claim
//! (docs/evaluation.md#claims-benchmark):
//!
//! 1. spectral-loss MAE beats plain MAE where the label lives in high-frequency structure;
//! 2. VCR-JEPA beats plain JEPA where the label spans several independent findings;
//! 3. the MAE family beats the JEPA family;
//! 4. SSL encoders fine-tuned on 16 labelled subjects per class beat a ResNet-50 trained from scratch.
//!
//! Each claim has one primary comparison, which alone decides its verdict; the other rows show
//! where else the effect does or does not appear.

use anyhow::{anyhow, bail, Result};
use brainssl_eval::table::Table;
use brainssl_eval::{pooled_auroc_difference, AurocDifference, Predictions, Seeds};
use serde::{Deserialize, Serialize};

use crate::seeds::{test_predictions, EncoderKind, TaskResult};
use crate::study::FewShot;

/// An interval inside ±this (AUROC) counts as "no effect worth the name".
pub const EQUIVALENCE_MARGIN: f64 = 0.03;
/// Both sides at or above this mean AUROC: the task is too easy to tell them apart.
pub const CEILING: f64 = 0.97;
/// Both sides at or below this: neither found the signal, so there is no effect to compare.
pub const FLOOR: f64 = 0.55;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The 95 % interval lies above 0.
    Supported,
    /// The interval lies below 0 (the opposite holds), or inside ±[`EQUIVALENCE_MARGIN`].
    NotSupported,
    /// The interval spans 0 and reaches beyond the margin: this scale cannot tell.
    Undecided,
}

impl Verdict {
    /// The verdict an interval supports, and why.
    pub fn of(d: &AurocDifference) -> (Self, &'static str) {
        let (lo, hi) = d.interval;
        if lo.is_nan() || hi.is_nan() {
            (Verdict::Undecided, "no interval: every bootstrap draw held one class")
        } else if lo > 0.0 && hi < EQUIVALENCE_MARGIN {
            (
                Verdict::Supported,
                "the 95 % interval lies above 0, though within +0.03: a small effect",
            )
        } else if lo > 0.0 {
            (Verdict::Supported, "the 95 % interval lies above 0")
        } else if d.auroc_a.min(d.auroc_b) >= CEILING {
            (
                Verdict::Undecided,
                "both sides at the ceiling (mean AUROC ≥ 0.97): too easy to tell them apart",
            )
        } else if d.auroc_a.max(d.auroc_b) <= FLOOR {
            (
                Verdict::Undecided,
                "both sides near chance (mean AUROC ≤ 0.55): neither found the signal",
            )
        } else if hi < 0.0 {
            (
                Verdict::NotSupported,
                "the 95 % interval lies below 0: the opposite holds here",
            )
        } else if lo > -EQUIVALENCE_MARGIN && hi < EQUIVALENCE_MARGIN {
            (
                Verdict::NotSupported,
                "the 95 % interval lies within ±0.03: no effect of that size",
            )
        } else {
            (Verdict::Undecided, "the 95 % interval spans 0")
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Verdict::Supported => "supported",
            Verdict::NotSupported => "not supported",
            Verdict::Undecided => "undecided at this scale",
        }
    }
}

/// One comparison of a claim: side `a` against side `b` on one test set (or pooled over several).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClaimRow {
    /// The task, "all tasks (pooled)", or the few-shot k.
    pub test: String,
    pub a: String,
    pub b: String,
    /// Runs on each side (seeds, or seeds × draws).
    pub runs: [usize; 2],
    pub difference: AurocDifference,
    pub primary: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claim {
    pub number: usize,
    pub statement: String,
    /// How the runs are resampled, in words.
    pub resampling: String,
    pub rows: Vec<ClaimRow>,
    /// Mean test AUROC of the controls on the primary test set ("step-0 students 0.71, …"), so a
    /// win of one objective over another can be read against untrained encoders.
    #[serde(default)]
    pub controls: String,
    pub verdict: Verdict,
    pub reason: String,
}

impl Claim {
    fn new(number: usize, statement: &str, resampling: &str, rows: Vec<ClaimRow>) -> Result<Self> {
        let primary = rows
            .iter()
            .find(|r| r.primary)
            .ok_or_else(|| anyhow!("claim {number} has no primary comparison"))?;
        let (verdict, reason) = Verdict::of(&primary.difference);
        Ok(Claim {
            number,
            statement: statement.into(),
            resampling: resampling.into(),
            rows,
            controls: String::new(),
            verdict,
            reason: reason.into(),
        })
    }

    /// "Claim 1 (…): supported (…)".
    pub fn headline(&self) -> String {
        let p = self.rows.iter().find(|r| r.primary).expect("a claim has a primary row");
        format!(
            "Claim {}: {}: {}. {} vs {} on {}: {}; {}",
            self.number,
            self.statement,
            self.verdict.label(),
            p.a,
            p.b,
            p.test,
            p.difference.with_interval(),
            self.reason
        )
    }

    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!("Claim {}: {} ({})", self.number, self.statement, self.verdict.label()),
            &[
                "test set",
                "a",
                "b",
                "runs a / b",
                "mean test AUROC a",
                "b",
                "a − b [95 % CI]",
                "reading",
            ],
        );
        for r in &self.rows {
            let d = &r.difference;
            t.push(vec![
                format!("{}{}", r.test, if r.primary { " (primary)" } else { "" }),
                r.a.clone(),
                r.b.clone(),
                format!("{} / {}", r.runs[0], r.runs[1]),
                format!("{:.3}", d.auroc_a),
                format!("{:.3}", d.auroc_b),
                d.with_interval(),
                Verdict::of(d).0.label().into(),
            ]);
        }
        t.note(format!(
            "Verdict from the primary row only: supported when its 95 % interval lies above 0; not supported \
             when it lies below 0 or within ±{EQUIVALENCE_MARGIN}; otherwise undecided at this scale. {} \
             The other rows are read the same way, without correction for their number.",
            self.resampling
        ));
        if !self.controls.is_empty() {
            t.note(format!("Controls on the primary test set: {}.", self.controls));
        }
        t
    }
}

/// The benchmark tasks by role in the claims (names as in the study's task results).
pub struct ClaimTasks {
    /// The label lives in local high-frequency texture (claim 1's primary task).
    pub high_frequency: String,
    /// Several independent findings make the label (claim 2's primary task).
    pub multi_factor: String,
    /// Every test set, each a row of every claim.
    pub all: Vec<String>,
    /// The test sets pooled for claim 3: one per population (two test sets of the same subjects
    /// would count that population twice and hide their covariance).
    pub pooled: Vec<String>,
}

/// Test predictions of every run of `groups` on `task`: group by group, each in seed order, so
/// that run i of two such lists shares a seed (and so an initialisation) when the groups do.
fn predictions(task: &TaskResult, groups: &[&str]) -> Result<Vec<Predictions>> {
    let mut out = Vec::new();
    for name in groups {
        let g = task
            .groups
            .iter()
            .find(|g| g.name == *name)
            .ok_or_else(|| anyhow!("task {} has no encoder group {name}", task.task))?;
        let mut runs = g.runs.clone();
        runs.sort_by_key(|r| r.seed);
        for r in runs {
            out.push(r.test_predictions()?);
        }
    }
    Ok(out)
}

/// Side `a` against side `b` on the tasks named (pooled when several). Every group is one block of
/// runs in seed order; run i of every block shares seed i.
fn compare(
    tasks: &[&TaskResult],
    (a, b): (&[&str], &[&str]),
    test: String,
    primary: bool,
    resamples: usize,
) -> Result<ClaimRow> {
    let mut sides = Vec::new();
    for t in tasks {
        sides.push((predictions(t, a)?, predictions(t, b)?));
    }
    let refs: Vec<(&[Predictions], &[Predictions])> = sides.iter().map(|(x, y)| (&x[..], &y[..])).collect();
    let seeds = Seeds::Blocks {
        a: a.len(),
        b: b.len(),
        resample: false,
    };
    let difference = pooled_auroc_difference(&refs, seeds, resamples, 0xc1a1).map_err(|e| anyhow!(e))?;
    Ok(ClaimRow {
        test,
        a: a.join(" + "),
        b: b.join(" + "),
        runs: [sides[0].0.len(), sides[0].1.len()],
        difference,
        primary,
    })
}

const SEED_RESAMPLING: &str = "Each bootstrap draw resamples the pretraining seeds (paired: runs of one seed share \
     their initialisation) and then the test subjects.";

/// "step-0 students 0.712, random encoders 0.655" on `task`.
fn controls(task: &TaskResult) -> String {
    task.groups
        .iter()
        .filter(|g| g.kind != EncoderKind::Pretrained)
        .map(|g| {
            let name = match g.kind {
                EncoderKind::StepZero => "step-0 students",
                _ => "random encoders",
            };
            format!("{name} {:.3}", g.test_auroc().0)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Claims 1-3 from the multi-seed study's frozen probes. Objectives are the study's group names
/// `mae`, `sl-mae`, `jepa` and `vcr-jepa`.
pub fn encoder_claims(tasks: &[TaskResult], roles: &ClaimTasks, resamples: usize) -> Result<Vec<Claim>> {
    let task = |name: &str| {
        tasks
            .iter()
            .find(|t| t.task == name)
            .ok_or_else(|| anyhow!("the study has no task {name}"))
    };
    let per_task = |a: &[&str], b: &[&str], primary: &str| -> Result<Vec<ClaimRow>> {
        let mut rows = vec![compare(&[task(primary)?], (a, b), primary.into(), true, resamples)?];
        for name in roles.all.iter().filter(|n| *n != primary) {
            rows.push(compare(&[task(name)?], (a, b), name.clone(), false, resamples)?);
        }
        Ok(rows)
    };
    let mut c1 = Claim::new(
        1,
        "spectral-loss MAE beats MAE where the label lives in high-frequency structure",
        SEED_RESAMPLING,
        per_task(&["sl-mae"], &["mae"], &roles.high_frequency)?,
    )?;
    c1.controls = format!("{}: {}", roles.high_frequency, controls(task(&roles.high_frequency)?));
    let mut c2 = Claim::new(
        2,
        "VCR-JEPA beats JEPA where the label spans several independent findings",
        SEED_RESAMPLING,
        per_task(&["vcr-jepa"], &["jepa"], &roles.multi_factor)?,
    )?;
    c2.controls = format!("{}: {}", roles.multi_factor, controls(task(&roles.multi_factor)?));
    let families: (&[&str], &[&str]) = (&["mae", "sl-mae"], &["jepa", "vcr-jepa"]);
    let pooled: Vec<&TaskResult> = roles.pooled.iter().map(|n| task(n)).collect::<Result<_>>()?;
    let mut rows = vec![compare(
        &pooled,
        families,
        format!("pooled over {}", roles.pooled.join(", ")),
        true,
        resamples,
    )?];
    for name in &roles.all {
        rows.push(compare(&[task(name)?], families, name.clone(), false, resamples)?);
    }
    let c3 = Claim::new(
        3,
        "the MAE family (MAE, SL-MAE) beats the JEPA family (JEPA, VCR-JEPA)",
        &format!(
            "{SEED_RESAMPLING} One seed draw serves MAE and SL-MAE (and JEPA and VCR-JEPA): the objectives \
             are fixed, the seeds random. The pooled row is the mean over its test sets of each set's \
             difference, one seed draw for all of them."
        ),
        rows,
    )?;
    Ok(vec![c1, c2, c3])
}

/// Claim 4 from a few-shot sweep whose models are `{objective}-seed{s}` and `baseline`: every
/// objective against the baseline at every k, the first objective at `primary_k` deciding. Runs
/// are paired by training draw (every model trains on the same draws); the SSL side's seeds are
/// blocks drawn again in each resample.
pub fn few_shot_claim(
    fs: &FewShot,
    objectives: &[String],
    baseline: &str,
    primary_k: usize,
    resamples: usize,
) -> Result<Claim> {
    let runs = |model: &dyn Fn(&str) -> bool, k: usize| -> Result<Vec<Predictions>> {
        fs.runs
            .iter()
            .filter(|r| r.k == k && model(&r.model))
            .map(|r| test_predictions(&r.result.dir))
            .collect()
    };
    if objectives.is_empty() || !fs.ks.contains(&primary_k) {
        bail!("claim 4 needs an SSL objective and a few-shot run at k = {primary_k}");
    }
    let mut rows = Vec::new();
    for &k in &fs.ks {
        let b = runs(&|m: &str| m == baseline, k)?;
        for (i, o) in objectives.iter().enumerate() {
            let prefix = format!("{o}-seed");
            let a = runs(&|m: &str| m.starts_with(&prefix), k)?;
            if a.is_empty() || b.is_empty() {
                bail!("no few-shot runs of {o} or {baseline} at k = {k}");
            }
            // runs come model by model (seed by seed), each in draw order
            let seeds = Seeds::Blocks {
                a: a.len() / b.len(),
                b: 1,
                resample: true,
            };
            let difference =
                pooled_auroc_difference(&[(&a, &b)], seeds, resamples, 0xf5 + k as u64).map_err(|e| anyhow!(e))?;
            rows.push(ClaimRow {
                test: format!("k = {k} per class"),
                a: o.clone(),
                b: baseline.into(),
                runs: [a.len(), b.len()],
                difference,
                primary: k == primary_k && i == 0,
            });
        }
    }
    Claim::new(
        4,
        &format!(
            "{} fine-tuned on {primary_k} labelled subjects per class beats a ResNet-50 trained from scratch",
            objectives[0]
        ),
        "Each bootstrap draw resamples the training draws (one draw for both sides: every model trains on \
         the same subjects), the SSL side's pretraining seeds, then the test subjects. The baseline starts \
         from one initialisation in every run.",
        rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeds::{EncoderGroup, EncoderKind, ProbeRun};
    use crate::study::{FewShotRun, RunResult};
    use std::path::Path;

    fn diff(lo: f64, hi: f64) -> AurocDifference {
        AurocDifference {
            auroc_a: 0.7,
            auroc_b: 0.6,
            difference: (lo + hi) / 2.0,
            interval: (lo, hi),
            share_a_higher: 0.5,
            resamples: 100,
            skipped: 0,
        }
    }

    #[test]
    fn verdicts_follow_the_interval() {
        assert_eq!(Verdict::of(&diff(0.01, 0.2)).0, Verdict::Supported);
        assert!(Verdict::of(&diff(0.005, 0.02)).1.contains("small effect"));
        assert_eq!(Verdict::of(&diff(-0.2, -0.01)).0, Verdict::NotSupported);
        assert_eq!(Verdict::of(&diff(-0.02, 0.025)).0, Verdict::NotSupported);
        assert_eq!(Verdict::of(&diff(-0.1, 0.2)).0, Verdict::Undecided);
        assert_eq!(Verdict::of(&diff(-0.02, 0.05)).0, Verdict::Undecided);
        assert_eq!(Verdict::of(&diff(f64::NAN, f64::NAN)).0, Verdict::Undecided);
        let at = |a: f64, b: f64| AurocDifference {
            auroc_a: a,
            auroc_b: b,
            ..diff(-0.01, 0.01)
        };
        assert_eq!(Verdict::of(&at(0.99, 0.98)).0, Verdict::Undecided, "ceiling");
        assert_eq!(Verdict::of(&at(0.52, 0.5)).0, Verdict::Undecided, "floor");
        assert_eq!(Verdict::of(&at(0.8, 0.79)).0, Verdict::NotSupported);
    }

    /// Writes a prediction set: `good` runs rank every positive above every negative, the others
    /// score every scan 0.5.
    fn write(dir: &Path, good: bool) {
        std::fs::create_dir_all(dir).unwrap();
        let mut csv = String::from("label,p0,p1,subject_id\n");
        for i in 0..20 {
            let l = i % 2;
            let p1 = if good { 0.2 + 0.6 * l as f64 } else { 0.5 };
            csv.push_str(&format!("{l},{},{p1},sub-{i:02}\n", 1.0 - p1));
        }
        std::fs::write(dir.join("test_predictions.csv"), csv).unwrap();
    }

    fn group(root: &Path, task: &str, name: &str, good: bool) -> EncoderGroup {
        EncoderGroup {
            name: name.into(),
            kind: EncoderKind::Pretrained,
            runs: (0..3)
                .rev()
                .map(|seed| {
                    let dir = root.join(format!("{task}-{name}-{seed}"));
                    write(&dir, good);
                    ProbeRun {
                        seed,
                        val_auroc: 0.5,
                        test_auroc: if good { 1.0 } else { 0.5 },
                        test_accuracy: 0.5,
                        learned: true,
                        dir,
                    }
                })
                .collect(),
        }
    }

    /// A study where SL-MAE separates the classes on the texture task only, VCR-JEPA on none:
    /// claim 1 is supported, claim 2 not (a difference of exactly 0), claim 3 pooled is supported
    /// by SL-MAE's lead on one task of two.
    #[test]
    fn claims_read_the_studys_prediction_files() {
        let dir = tempfile::tempdir().unwrap();
        let task = |name: &str, sl_good: bool| TaskResult {
            task: name.into(),
            test_scans: 20,
            groups: vec![
                group(dir.path(), name, "mae", false),
                group(dir.path(), name, "sl-mae", sl_good),
                group(dir.path(), name, "jepa", false),
                group(dir.path(), name, "vcr-jepa", false),
            ],
            comparisons: vec![],
        };
        let tasks = vec![task("texture", true), task("multi-factor", false)];
        let roles = ClaimTasks {
            high_frequency: "texture".into(),
            multi_factor: "multi-factor".into(),
            all: vec!["texture".into(), "multi-factor".into()],
            pooled: vec!["texture".into(), "multi-factor".into()],
        };
        let claims = encoder_claims(&tasks, &roles, 200).unwrap();
        assert_eq!(claims.len(), 3);
        assert_eq!(claims[0].verdict, Verdict::Supported, "{}", claims[0].headline());
        assert_eq!(claims[0].rows[0].difference.interval, (0.5, 0.5));
        assert_eq!(claims[0].rows[1].test, "multi-factor");
        // both at chance: nothing to compare, whatever the interval
        assert_eq!(claims[1].verdict, Verdict::Undecided, "{}", claims[1].reason);
        assert_eq!(claims[1].rows[0].difference.difference, 0.0);
        // pooled: (mae + sl-mae)/2 − (jepa + vcr)/2 = 0.25 on texture, 0 on multi-factor
        let pooled = &claims[2].rows[0];
        assert_eq!((pooled.runs, pooled.difference.difference), ([6, 6], 0.125));
        assert_eq!(claims[2].verdict, Verdict::Supported);
        assert_eq!(claims[2].rows.len(), 3);
        assert_eq!(claims[0].table().rows.len(), 2);
        assert!(
            encoder_claims(&tasks[..1], &roles, 10).is_err(),
            "a missing task is an error"
        );
    }

    #[test]
    fn few_shot_claim_compares_every_objective_with_the_baseline_at_every_k() {
        let dir = tempfile::tempdir().unwrap();
        let mut fs = FewShot {
            models: vec![],
            ks: vec![16, 32],
            runs: vec![],
        };
        for &k in &fs.ks.clone() {
            for (model, good) in [
                ("sl-mae-seed0", true),
                ("sl-mae-seed1", true),
                ("vcr-jepa-seed0", false),
                ("resnet50", false),
            ] {
                for draw in 0..2 {
                    let d = dir.path().join(format!("{model}-k{k}-draw{draw}"));
                    write(&d, good);
                    fs.runs.push(FewShotRun {
                        model: model.into(),
                        k,
                        draw,
                        train_scans: 2 * k,
                        result: RunResult {
                            accuracy: 0.5,
                            balanced_accuracy: 0.5,
                            macro_f1: 0.5,
                            f1_positive: None,
                            auroc: 0.5,
                            epoch: 1,
                            learned: true,
                            dir: d,
                        },
                    });
                }
            }
        }
        let objectives = vec!["sl-mae".to_string(), "vcr-jepa".to_string()];
        let c = few_shot_claim(&fs, &objectives, "resnet50", 16, 100).unwrap();
        assert_eq!(c.rows.len(), 4);
        assert_eq!(c.rows[0].runs, [4, 2]);
        assert!(c.rows[0].primary && !c.rows[1].primary && !c.rows[2].primary);
        assert_eq!(c.verdict, Verdict::Supported);
        assert_eq!(c.rows[1].difference.difference, 0.0);
        assert!(few_shot_claim(&fs, &objectives, "resnet50", 64, 10).is_err());
    }
}
