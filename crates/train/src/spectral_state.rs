//! The amortised spectral term of SL-MAE (docs/method.md#spectral-schedule): which micro-steps
//! compute it, with what weight, and the cached value that other steps log.

use serde::{Deserialize, Serialize};

use crate::config::SpectralSchedule;
use crate::schedule::spectral_weight;

/// The last computed spectral loss and the λ_eff it was computed with (0 until the first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SpectralState {
    pub cached: f64,
    pub lambda: f64,
}

/// What one micro-step does with the spectral term.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpectralStep {
    /// λ_eff/n when this step computes the spectral loss (its gradient flows), else None.
    pub weight: Option<f64>,
    /// λ_eff of this step (the last one's on other steps).
    pub lambda: f64,
    /// The cached value and weight added to the logged loss on other steps.
    pub cached: f64,
    pub cached_weight: f64,
}

impl SpectralState {
    /// The plan for global micro-step `micro` of `epoch`.
    pub fn plan(&self, s: &SpectralSchedule, epoch: usize, micro: usize) -> SpectralStep {
        let on = s.coeff > 0.0 && epoch >= s.min_epoch && micro.is_multiple_of(s.every);
        let lambda = if on {
            spectral_weight(s.coeff, epoch, s.min_epoch, s.ramp_epochs)
        } else {
            self.lambda
        };
        SpectralStep {
            weight: on.then_some(lambda / s.every as f64),
            lambda,
            cached: self.cached,
            cached_weight: self.lambda / s.every as f64,
        }
    }

    /// Caches a computed value (spectral steps whose value was usable).
    pub fn record(&mut self, step: &SpectralStep, value: f64) {
        if step.weight.is_some() && value >= 0.0 {
            self.cached = value;
            self.lambda = step.lambda;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PretrainConfig;

    #[test]
    fn every_nth_step_from_min_epoch_with_a_ramp() {
        let s = PretrainConfig::preset("sl-mae").unwrap().spectral; // λ 1, n 10, from epoch 5, ramp 20
        let mut st = SpectralState::default();
        assert_eq!(st.plan(&s, 4, 0).weight, None);
        let p = st.plan(&s, 5, 20);
        assert_eq!(p.weight, Some(1.0 / 20.0 / 10.0));
        st.record(&p, 0.7);
        let q = st.plan(&s, 5, 21);
        assert_eq!((q.weight, q.cached, q.cached_weight), (None, 0.7, 1.0 / 20.0 / 10.0));
        assert_eq!(st.plan(&s, 30, 40).weight, Some(0.1));
    }
}
