//! Which epoch a run reports (docs/evaluation.md#selection; the reference chooses by validation
//! AUROC). On a small validation set an epoch whose classifier never left the chance loss can still
//! win on AUROC by tiny differences between near-½ probabilities; the default rule only considers
//! epochs that learned.

use serde::{Deserialize, Serialize};

use brainssl_eval::Metrics;

/// A training loss at or above this fraction of ln C counts as not learned (0.99 · ln 2 = 0.686).
pub const CHANCE_MARGIN: f64 = 0.99;

/// Whether a mean training loss left the chance level of `classes` classes.
pub fn left_chance(train_loss: f64, classes: usize) -> bool {
    train_loss < CHANCE_MARGIN * (classes as f64).ln()
}

/// The rule that picks the reported epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// Best validation AUROC among the epochs whose training loss left chance; when none did, the
    /// best overall, reported as not learned.
    #[default]
    LearnedAuroc,
    /// Best validation AUROC over all epochs (the paper's and the reference's rule).
    Auroc,
}

/// One epoch's claim to be reported, with its weights.
pub struct Candidate<W> {
    pub epoch: usize,
    pub train_loss: f64,
    pub val: Metrics,
    pub weights: W,
}

/// Keeps the best epoch under a [`Selection`] rule as epochs arrive (strictly better AUROC wins,
/// so the earliest of equal epochs stays).
pub struct Selector<W> {
    rule: Selection,
    classes: usize,
    learned: Option<Candidate<W>>,
    any: Option<Candidate<W>>,
}

impl<W: Clone> Selector<W> {
    pub fn new(rule: Selection, classes: usize) -> Self {
        Selector {
            rule,
            classes,
            learned: None,
            any: None,
        }
    }

    /// Offers an epoch; `weights` is called only when this epoch becomes a best one.
    pub fn offer(&mut self, epoch: usize, train_loss: f64, val: &Metrics, weights: impl FnOnce() -> W) {
        let better = |slot: &Option<Candidate<W>>| slot.as_ref().is_none_or(|b| val.auroc > b.val.auroc);
        let to_any = better(&self.any);
        let to_learned =
            self.rule == Selection::LearnedAuroc && left_chance(train_loss, self.classes) && better(&self.learned);
        if !(to_any || to_learned) {
            return;
        }
        let w = weights();
        let candidate = |w: W| Candidate {
            epoch,
            train_loss,
            val: val.clone(),
            weights: w,
        };
        if to_learned {
            self.learned = Some(candidate(w.clone()));
        }
        if to_any {
            self.any = Some(candidate(w));
        }
    }

    /// The reported epoch (None before any epoch).
    pub fn finish(self) -> Option<Candidate<W>> {
        self.learned.or(self.any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::LN_2;

    fn val(auroc: f64) -> Metrics {
        Metrics {
            accuracy: 0.5,
            macro_f1: 0.5,
            f1_positive: None,
            auroc,
            balanced_accuracy: 0.5,
            sensitivity: 0.5,
            specificity: 0.5,
            confusion_matrix: vec![],
        }
    }

    fn run(rule: Selection, epochs: &[(f64, f64)]) -> Candidate<usize> {
        let mut s = Selector::new(rule, 2);
        for (e, &(loss, auc)) in epochs.iter().enumerate() {
            s.offer(e, loss, &val(auc), || e);
        }
        s.finish().unwrap()
    }

    #[test]
    fn an_untrained_epoch_cannot_win_by_a_lucky_auroc() {
        // epoch 1 sits at ln 2 with the best AUROC; epoch 2 learned
        let epochs = [(LN_2, 0.70), (LN_2 - 2e-4, 1.00), (0.55, 0.90), (0.50, 0.85)];
        let chosen = run(Selection::LearnedAuroc, &epochs);
        assert_eq!((chosen.epoch, chosen.weights), (2, 2));
        assert!(left_chance(chosen.train_loss, 2));
        // the paper's rule takes the best AUROC whatever the loss
        assert_eq!(run(Selection::Auroc, &epochs).epoch, 1);
        // nothing learned: the best overall, which then reports as not learned
        let stuck = run(
            Selection::LearnedAuroc,
            &[(LN_2, 0.6), (LN_2 - 1e-4, 0.8), (LN_2 + 1e-4, 0.7)],
        );
        assert_eq!(stuck.epoch, 1);
        assert!(!left_chance(stuck.train_loss, 2));
        // ties keep the earliest
        assert_eq!(run(Selection::Auroc, &[(0.5, 0.8), (0.4, 0.8)]).epoch, 0);
        assert!(!left_chance(f64::NAN, 2) && left_chance(0.69, 3));
    }
}
