//! Accuracy, macro F1, positive-class F1 and AUROC pooled over a split (docs/evaluation.md#metrics), with bootstrap 95 %
//! intervals that resample subjects.

use brainssl_prep::Rng;
use serde::Serialize;

/// The ROC curve of `scores` for `positive` labels: (false-positive rate, true-positive rate) from
/// (0, 0) to (1, 1), one point per distinct score, taken in decreasing order (sklearn's `roc_curve`
/// without dropping collinear points). None when only one class is present.
pub fn roc_curve(scores: &[f64], positive: &[bool]) -> Option<Vec<(f64, f64)>> {
    let p = positive.iter().filter(|&&b| b).count();
    let n = positive.len() - p;
    if p == 0 || n == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut pts = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    for (i, &k) in order.iter().enumerate() {
        if positive[k] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_tie = order.get(i + 1).is_none_or(|&next| scores[next] != scores[k]);
        if last_of_tie {
            pts.push((fp as f64 / n as f64, tp as f64 / p as f64));
        }
    }
    Some(pts)
}

/// Binary AUROC of `scores` for `positive` labels: the trapezoidal area under the ROC curve with one
/// point per distinct score, so tied scores count one half (as sklearn's `roc_auc_score`).
/// None when only one class is present.
pub fn auroc_binary(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut prev_tp, mut prev_fp) = (0usize, 0usize);
    let mut area = 0.0;
    let mut i = 0;
    while i < order.len() {
        // consume every sample with this score before adding a ROC point
        let s = scores[order[i]];
        while i < order.len() && scores[order[i]] == s {
            if positive[order[i]] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        area += (fp - prev_fp) as f64 * (tp + prev_tp) as f64 / 2.0;
        (prev_tp, prev_fp) = (tp, fp);
    }
    Some(area / (n_pos * n_neg) as f64)
}

/// One-vs-rest macro AUROC over classes 0..C; None if some class is absent from the labels.
pub fn auroc_ovr_macro(probs: &[Vec<f64>], labels: &[usize]) -> Option<f64> {
    let c = probs.first()?.len();
    let mut total = 0.0;
    for k in 0..c {
        let scores: Vec<f64> = probs.iter().map(|p| p[k]).collect();
        let pos: Vec<bool> = labels.iter().map(|&l| l == k).collect();
        total += auroc_binary(&scores, &pos)?;
    }
    Some(total / c as f64)
}

/// Index of the largest probability; the first one on ties (numpy's argmax).
pub fn argmax(p: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in p.iter().enumerate() {
        if *v > p[best] {
            best = i;
        }
    }
    best
}

/// Predicted classes (docs/evaluation.md#metrics): for two classes ŷ = 1[p1 ≥ 0.5], so a score of exactly ½ is
/// positive; for more classes the argmax (first on ties).
pub fn decide(probs: &[Vec<f64>]) -> Vec<usize> {
    probs
        .iter()
        .map(|p| {
            if p.len() == 2 {
                usize::from(p[1] >= 0.5)
            } else {
                argmax(p)
            }
        })
        .collect()
}

/// Confusion matrix [true class][predicted class] over classes 0..c (sklearn's layout).
pub fn confusion(pred: &[usize], labels: &[usize], c: usize) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0usize; c]; c];
    for (&p, &l) in pred.iter().zip(labels) {
        m[l][p] += 1;
    }
    m
}

/// Recall of class `k` (its sensitivity, one against the rest) and its specificity; NaN when undefined.
fn recall_and_specificity(m: &[Vec<usize>], k: usize) -> (f64, f64) {
    let total: usize = m.iter().flatten().sum();
    let row: usize = m[k].iter().sum();
    let col: usize = m.iter().map(|r| r[k]).sum();
    let tp = m[k][k];
    let (fneg, fp) = (row - tp, col - tp);
    let tn = total - tp - fneg - fp;
    let ratio = |a: usize, b: usize| {
        if a + b == 0 {
            f64::NAN
        } else {
            a as f64 / (a + b) as f64
        }
    };
    (ratio(tp, fneg), ratio(tn, fp))
}

/// F1 of class `k`: 2TP/(2TP + FP + FN), 0 when the class is neither predicted nor present.
fn f1_of(pred: &[usize], labels: &[usize], k: usize) -> f64 {
    let mut tp = 0usize;
    let mut fp = 0usize;
    let mut fneg = 0usize;
    for (&p, &l) in pred.iter().zip(labels) {
        match (p == k, l == k) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fneg += 1,
            _ => {}
        }
    }
    let d = 2 * tp + fp + fneg;
    if d == 0 {
        0.0
    } else {
        2.0 * tp as f64 / d as f64
    }
}

/// Metrics of one split. `auroc` is binary on p1 for 2 classes, else one-vs-rest macro. Decisions
/// follow [`decide`]. For two classes `sensitivity` and `specificity` are those of class 1; for
/// more, the one-vs-rest means over the classes present in the labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub accuracy: f64,
    pub macro_f1: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f1_positive: Option<f64>,
    pub auroc: f64,
    /// Mean recall over the classes present in the labels (sklearn's `balanced_accuracy_score`).
    pub balanced_accuracy: f64,
    pub sensitivity: f64,
    pub specificity: f64,
    /// [true class][predicted class]
    pub confusion_matrix: Vec<Vec<usize>>,
}

impl Metrics {
    /// Metrics of class probabilities [n][C] against labels in 0..C. Macro F1 averages over the
    /// classes present in the labels or the predictions (sklearn's default label set).
    pub fn compute(probs: &[Vec<f64>], labels: &[usize]) -> Result<Metrics, String> {
        let n = labels.len();
        if n == 0 || probs.len() != n {
            return Err("no predictions".into());
        }
        let c = probs[0].len();
        let pred = decide(probs);
        let accuracy = pred.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / n as f64;
        let present: Vec<usize> = (0..c).filter(|k| labels.contains(k) || pred.contains(k)).collect();
        let macro_f1 = present.iter().map(|&k| f1_of(&pred, labels, k)).sum::<f64>() / present.len() as f64;
        let (f1_positive, auroc) = if c == 2 {
            let p1: Vec<f64> = probs.iter().map(|p| p[1]).collect();
            let pos: Vec<bool> = labels.iter().map(|&l| l == 1).collect();
            let auc =
                auroc_binary(&p1, &pos).ok_or("AUROC needs both classes among the labels; only one is present")?;
            (Some(f1_of(&pred, labels, 1)), auc)
        } else {
            let missing: Vec<usize> = (0..c).filter(|k| !labels.contains(k)).collect();
            if !missing.is_empty() {
                return Err(format!(
                    "one-vs-rest AUROC needs every class among the labels; missing {missing:?}"
                ));
            }
            (None, auroc_ovr_macro(probs, labels).expect("every class present"))
        };
        let confusion_matrix = confusion(&pred, labels, c);
        let in_labels: Vec<usize> = (0..c).filter(|k| labels.contains(k)).collect();
        let per_class: Vec<(f64, f64)> = in_labels
            .iter()
            .map(|&k| recall_and_specificity(&confusion_matrix, k))
            .collect();
        let mean = |f: fn(&(f64, f64)) -> f64| per_class.iter().map(f).sum::<f64>() / per_class.len() as f64;
        let balanced_accuracy = mean(|r| r.0);
        let (sensitivity, specificity) = if c == 2 {
            recall_and_specificity(&confusion_matrix, 1)
        } else {
            (balanced_accuracy, mean(|r| r.1))
        };
        Ok(Metrics {
            accuracy,
            macro_f1,
            f1_positive,
            auroc,
            balanced_accuracy,
            sensitivity,
            specificity,
            confusion_matrix,
        })
    }
}

/// 95 % percentile interval of each metric over `resamples` bootstrap draws of the groups (subjects):
/// every row of a drawn subject enters. Draws where AUROC is undefined are skipped and counted.
#[derive(Debug, Clone, Serialize)]
pub struct Intervals {
    pub accuracy: (f64, f64),
    pub macro_f1: (f64, f64),
    pub f1_positive: Option<(f64, f64)>,
    pub auroc: (f64, f64),
    pub resamples: usize,
    pub skipped: usize,
}

pub fn bootstrap(probs: &[Vec<f64>], labels: &[usize], groups: &[String], resamples: usize, seed: u64) -> Intervals {
    let mut samples: Vec<Metrics> = Vec::with_capacity(resamples);
    let mut skipped = 0;
    for rows in subject_draws(groups, resamples, seed) {
        let p: Vec<Vec<f64>> = rows.iter().map(|&i| probs[i].clone()).collect();
        let l: Vec<usize> = rows.iter().map(|&i| labels[i]).collect();
        match Metrics::compute(&p, &l) {
            Ok(m) => samples.push(m),
            Err(_) => skipped += 1,
        }
    }
    let interval = |f: &dyn Fn(&Metrics) -> f64| interval95(samples.iter().map(f).collect());
    let binary = samples.first().is_some_and(|m| m.f1_positive.is_some());
    Intervals {
        accuracy: interval(&|m| m.accuracy),
        macro_f1: interval(&|m| m.macro_f1),
        f1_positive: binary.then(|| interval(&|m| m.f1_positive.unwrap_or(f64::NAN))),
        auroc: interval(&|m| m.auroc),
        resamples,
        skipped,
    }
}

/// `resamples` seeded bootstrap draws of whole subjects: each draw picks as many subjects as there
/// are, with replacement, and lists the rows of every subject picked.
pub fn subject_draws(groups: &[String], resamples: usize, seed: u64) -> impl Iterator<Item = Vec<usize>> {
    let mut ids: Vec<&String> = groups.iter().collect();
    ids.sort();
    ids.dedup();
    let rows_of: Vec<Vec<usize>> = ids
        .iter()
        .map(|id| (0..groups.len()).filter(|&i| &groups[i] == *id).collect())
        .collect();
    let mut rng = Rng::new(seed);
    let n = groups.len();
    (0..resamples).map(move |_| {
        let mut rows = Vec::with_capacity(n);
        for _ in 0..rows_of.len() {
            rows.extend_from_slice(&rows_of[rng.below(rows_of.len() as u64) as usize]);
        }
        rows
    })
}

/// 2.5th and 97.5th percentiles (nearest rank) of `v`; NaN when empty.
pub(crate) fn interval95(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (q(0.025), q(0.975))
}

#[cfg(test)]
mod tests {
    #[test]
    fn roc_curve_matches_sklearns_documented_example() {
        // sklearn.metrics.roc_curve docs: y = [1, 1, 2, 2], scores [0.1, 0.4, 0.35, 0.8], pos_label 2
        // give fpr [0, 0, 0.5, 0.5, 1] and tpr [0, 0.5, 0.5, 1, 1] (drop_intermediate keeps them all)
        let pos = [false, false, true, true];
        let roc = roc_curve(&[0.1, 0.4, 0.35, 0.8], &pos).unwrap();
        assert_eq!(roc, vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]);
        // ties make one diagonal step; the area under the points is the AUROC
        let scores = [0.5, 0.5, 0.2, 0.9, 0.5];
        let pos = [true, false, false, true, true];
        let roc = roc_curve(&scores, &pos).unwrap();
        let area: f64 = roc
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum();
        assert!((area - auroc_binary(&scores, &pos).unwrap()).abs() < 1e-12);
        assert_eq!(roc.len(), 4);
        assert!(roc_curve(&[0.1], &[true]).is_none());
    }

    use super::*;

    fn binary(p1: &[f64]) -> Vec<Vec<f64>> {
        p1.iter().map(|&p| vec![1.0 - p, p]).collect()
    }

    #[test]
    fn auroc_without_ties() {
        // sklearn's documentation example: 0.75
        let auc = auroc_binary(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert!((auc - 0.75).abs() < 1e-12);
    }

    #[test]
    fn auroc_counts_ties_as_one_half() {
        // positives {0.5, 0.9, 0.5}, negatives {0.5, 0.2}: pairs 0.5+1+1+1+0.5+1 of 6
        let auc = auroc_binary(&[0.5, 0.5, 0.2, 0.9, 0.5], &[false, true, false, true, true]).unwrap();
        assert!((auc - 5.0 / 6.0).abs() < 1e-12);
        // all scores tied: 0.5
        assert_eq!(auroc_binary(&[0.3; 4], &[true, false, true, false]), Some(0.5));
        assert_eq!(auroc_binary(&[0.1, 0.2], &[true, true]), None);
    }

    #[test]
    fn binary_metrics_by_hand() {
        // labels 0 0 1 1 1, p1 0.2 0.6 0.7 0.4 0.9 → predictions 0 1 1 0 1
        let probs = binary(&[0.2, 0.6, 0.7, 0.4, 0.9]);
        let m = Metrics::compute(&probs, &[0, 0, 1, 1, 1]).unwrap();
        assert!((m.accuracy - 0.6).abs() < 1e-12);
        // class 1: TP 2, FP 1, FN 1 → 4/6; class 0: TP 1, FP 1, FN 1 → 2/4
        assert!((m.f1_positive.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.macro_f1 - (2.0 / 3.0 + 0.5) / 2.0).abs() < 1e-12);
        // pairs (pos > neg): 0.7>{0.2,0.6}, 0.4>{0.2}, 0.9>{0.2,0.6} = 5 of 6
        assert!((m.auroc - 5.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn a_score_of_one_half_is_positive_and_clinical_metrics_by_hand() {
        // the binary rule ŷ = 1[p1 ≥ 0.5]; labels 0 0 1 1 1, p1 0.5 0.2 0.5 0.9 0.1 → predictions 1 0 1 1 0
        let m = Metrics::compute(&binary(&[0.5, 0.2, 0.5, 0.9, 0.1]), &[0, 0, 1, 1, 1]).unwrap();
        assert_eq!(m.confusion_matrix, vec![vec![1, 1], vec![1, 2]]);
        assert!((m.accuracy - 0.6).abs() < 1e-12);
        // sensitivity TP/(TP+FN) = 2/3, specificity TN/(TN+FP) = 1/2, balanced (2/3 + 1/2)/2
        assert!((m.sensitivity - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.specificity - 0.5).abs() < 1e-12);
        assert!((m.balanced_accuracy - 7.0 / 12.0).abs() < 1e-12);
        // sklearn with the same rule: f1_score(pos) = 2·2/(2·2 + 1 + 1) = 2/3
        assert!((m.f1_positive.unwrap() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn multiclass_one_vs_rest_macro() {
        let probs = vec![
            vec![0.7, 0.2, 0.1],
            vec![0.2, 0.5, 0.3],
            vec![0.1, 0.3, 0.6],
            vec![0.3, 0.4, 0.3],
            vec![0.5, 0.25, 0.25],
            vec![0.2, 0.2, 0.6],
        ];
        let labels = [0, 1, 2, 2, 1, 2];
        let m = Metrics::compute(&probs, &labels).unwrap();
        // class 0: scores .7 .2 .1 .3 .5 .2, positive row 0 → 1.0
        // class 1: positives rows 1 (.5), 4 (.25); negatives .2 .3 .4 .2 → (4 + 2)/8 = 0.75
        // class 2: positives .6 .3 .6; negatives .1 .3 .25 → (3 + 2.5 + 3)/9
        let want = (1.0 + 0.75 + 8.5 / 9.0) / 3.0;
        assert!((m.auroc - want).abs() < 1e-12, "{}", m.auroc);
        assert_eq!(m.f1_positive, None);
        // predictions 0 1 2 1 0 2: correct 0, 1, 2, 5
        assert!((m.accuracy - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(m.confusion_matrix, vec![vec![1, 0, 0], vec![1, 1, 0], vec![0, 1, 2]]);
        // recalls 1, 1/2, 2/3 (sklearn's balanced_accuracy_score: 0.7222)
        assert!((m.balanced_accuracy - (1.0 + 0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn errors_for_single_class() {
        let e = Metrics::compute(&binary(&[0.2, 0.9]), &[1, 1]).unwrap_err();
        assert!(e.contains("only one"), "{e}");
        let probs = vec![vec![0.5, 0.3, 0.2], vec![0.1, 0.8, 0.1]];
        assert!(Metrics::compute(&probs, &[0, 1]).unwrap_err().contains("missing [2]"));
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_estimate() {
        let p1: Vec<f64> = (0..40)
            .map(|i| (i as f64 / 40.0 + if i % 2 == 0 { 0.3 } else { 0.0 }).min(1.0))
            .collect();
        let labels: Vec<usize> = (0..40).map(|i| i % 2).collect();
        let probs = binary(&p1);
        let groups: Vec<String> = (0..40).map(|i| format!("s{}", i / 2)).collect();
        let a = bootstrap(&probs, &labels, &groups, 300, 7);
        let b = bootstrap(&probs, &labels, &groups, 300, 7);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        let m = Metrics::compute(&probs, &labels).unwrap();
        assert!(a.auroc.0 <= m.auroc && m.auroc <= a.auroc.1, "{a:?} vs {}", m.auroc);
        assert!(a.accuracy.0 < a.accuracy.1);
    }
}
