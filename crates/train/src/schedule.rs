//! Per-micro-step schedules (docs/method.md#schedules, docs/method.md#ema-teacher,
//! docs/method.md#spectral-schedule).

use std::f64::consts::PI;

/// Linear warm-up from `start` to `peak`, then cosine to `end` (the reference's WarmupCosineSchedule).
/// `s` counts micro-steps from 1.
#[derive(Debug, Clone, Copy)]
pub struct WarmupCosine {
    pub start: f64,
    pub peak: f64,
    pub end: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
}

impl WarmupCosine {
    pub fn at(&self, s: usize) -> f64 {
        let w = self.warmup_steps;
        if s < w {
            return self.start + (s as f64 / w as f64) * (self.peak - self.start);
        }
        let span = self.total_steps.saturating_sub(w).max(1) as f64;
        let progress = (s - w) as f64 / span;
        let v = self.end + (self.peak - self.end) * 0.5 * (1.0 + (PI * progress).cos());
        v.max(self.end)
    }
}

/// Cosine weight decay from `start` to `end` over `total_steps`, clamped toward `end`.
#[derive(Debug, Clone, Copy)]
pub struct CosineDecay {
    pub start: f64,
    pub end: f64,
    pub total_steps: usize,
}

impl CosineDecay {
    pub fn at(&self, s: usize) -> f64 {
        let progress = s as f64 / self.total_steps.max(1) as f64;
        let v = self.end + (self.start - self.end) * 0.5 * (1.0 + (PI * progress).cos());
        if self.end <= self.start {
            v.max(self.end)
        } else {
            v.min(self.end)
        }
    }
}

/// The lr and wd schedules of one run, both over `scale`·epochs·ipe micro-steps (`ipe_scale` in
/// pretraining, `lr_schedule_factor` downstream), the lr warming up over warmup_epochs·ipe.
#[derive(Debug, Clone, Copy)]
pub struct RunSchedule {
    pub lr: WarmupCosine,
    pub wd: CosineDecay,
}

impl RunSchedule {
    /// `lr` = [start, peak, end], `wd` = [start, end].
    pub fn new(lr: [f64; 3], wd: [f64; 2], warmup_epochs: usize, epochs: usize, ipe: usize, scale: f64) -> Self {
        let total = ((epochs * ipe) as f64 * scale).round() as usize;
        RunSchedule {
            lr: WarmupCosine {
                start: lr[0],
                peak: lr[1],
                end: lr[2],
                warmup_steps: warmup_epochs * ipe,
                total_steps: total,
            },
            wd: CosineDecay {
                start: wd[0],
                end: wd[1],
                total_steps: total,
            },
        }
    }

    /// (lr, wd) at micro-step `s` (counted from 1).
    pub fn at(&self, s: usize) -> (f64, f64) {
        (self.lr.at(s), self.wd.at(s))
    }
}

/// EMA momentum m_i = m0 + i·(m1 − m0)/total for micro-step i = 0, 1, …
pub fn ema_momentum(start: f64, end: f64, i: usize, total: usize) -> f64 {
    (start + i as f64 * (end - start) / total.max(1) as f64).min(end.max(start))
}

/// The share of its initialisation that an EMA teacher still holds after `total` updates with
/// [`ema_momentum`]: Π m_i, because each update scales the old weights by m_i.
pub fn ema_init_share(start: f64, end: f64, total: usize) -> f64 {
    (0..total)
        .map(|i| ema_momentum(start, end, i, total).ln())
        .sum::<f64>()
        .exp()
}

/// λ_eff (docs/method.md#spectral-schedule): λ·min(1, (epoch − min_epoch + 1)/ramp).
pub fn spectral_weight(coeff: f64, epoch: usize, min_epoch: usize, ramp_epochs: usize) -> f64 {
    if epoch < min_epoch {
        return 0.0;
    }
    coeff * (((epoch - min_epoch + 1) as f64) / ramp_epochs as f64).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lr_endpoints_match_the_reference_formula() {
        // JEPA HEAD: 1e-4 → 2e-4 → 1e-6, warm-up 30 of 300 epochs, 10 iterations per epoch
        let s = WarmupCosine {
            start: 1e-4,
            peak: 2e-4,
            end: 1e-6,
            warmup_steps: 300,
            total_steps: 3000,
        };
        assert!((s.at(1) - (1e-4 + 1e-4 / 300.0)).abs() < 1e-15);
        assert!((s.at(150) - 1.5e-4).abs() < 1e-15);
        assert!((s.at(300) - 2e-4).abs() < 1e-15);
        assert!((s.at(1650) - (1e-6 + (2e-4 - 1e-6) * 0.5)).abs() < 1e-15);
        assert!((s.at(3000) - 1e-6).abs() < 1e-15);
        // past the end the cosine rises again (as in the reference); never below the floor
        assert!(s.at(3300) >= 1e-6);
    }

    #[test]
    fn teacher_share_of_its_initialisation() {
        // the reference's 0.998 → 1 over a 240-step run leaves 79 % of the initialisation
        assert!(
            (ema_init_share(0.998, 1.0, 240) - 0.787).abs() < 0.002,
            "{}",
            ema_init_share(0.998, 1.0, 240)
        );
        // and over 2400 steps about 9 %
        assert!((ema_init_share(0.998, 1.0, 2400) - 0.091).abs() < 0.002);
        // a constant momentum m over n updates: m^n
        assert!((ema_init_share(0.9, 0.9, 10) - 0.9f64.powi(10)).abs() < 1e-12);
        let cfg = crate::config::EmaConfig {
            start: 0.998,
            end: 1.0,
            init_share_at_end: Some(0.01),
        };
        for total in [240, 2400] {
            let m0 = cfg.start_for(total);
            assert!((ema_init_share(m0, 1.0, total) - 0.01).abs() < 1e-6, "{total}: {m0}");
        }
        // ≈ 1 − 2·ln(100)/T for a ramp to 1
        assert!((cfg.start_for(240) - (1.0 - 2.0 * 100f64.ln() / 240.0)).abs() < 2e-3);
        let fixed = crate::config::EmaConfig {
            init_share_at_end: None,
            ..cfg
        };
        assert_eq!(fixed.start_for(240), 0.998);
    }

    #[test]
    fn weight_decay_and_momentum_endpoints() {
        let wd = CosineDecay {
            start: 0.005,
            end: 0.0005,
            total_steps: 100,
        };
        assert!((wd.at(0) - 0.005).abs() < 1e-15);
        assert!((wd.at(50) - 0.00275).abs() < 1e-15);
        assert!((wd.at(100) - 0.0005).abs() < 1e-15);
        assert_eq!(ema_momentum(0.998, 1.0, 0, 1000), 0.998);
        assert!((ema_momentum(0.998, 1.0, 500, 1000) - 0.999).abs() < 1e-15);
        assert_eq!(ema_momentum(0.998, 1.0, 5000, 1000), 1.0);
    }

    #[test]
    fn spectral_ramp() {
        assert_eq!(spectral_weight(1.0, 4, 5, 20), 0.0);
        assert_eq!(spectral_weight(1.0, 5, 5, 20), 0.05);
        assert_eq!(spectral_weight(1.0, 24, 5, 20), 1.0);
        assert_eq!(spectral_weight(1.0, 100, 5, 20), 1.0);
    }
}
