//! Power spectral density of volumes (docs/evaluation.md#psd-analysis, paper Figure 3): PSD = |FFT|²/N_vox over the
//! normalised radial frequency of the spectral loss (docs/method.md#spectral-loss: r / max r, with numpy's `fftfreq` per axis).

use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;
use serde::{Deserialize, Serialize};

use crate::table::Table;

/// |FFTn(v)|² / N for a row-major [T, H, W] volume, same layout.
pub fn power_spectrum(v: &[f32], [t, h, w]: [usize; 3]) -> Vec<f64> {
    let n = t * h * w;
    assert_eq!(v.len(), n, "volume does not match its shape");
    let mut data: Vec<Complex<f64>> = v.iter().map(|&x| Complex::new(x as f64, 0.0)).collect();
    let mut planner = FftPlanner::new();
    // along W (contiguous rows)
    let fw = planner.plan_fft_forward(w);
    for row in data.chunks_mut(w) {
        fw.process(row);
    }
    // along H and T through a gathered line buffer
    let mut line = Vec::new();
    for (len, stride, count) in [(h, w, t * w), (t, h * w, h * w)] {
        let f = planner.plan_fft_forward(len);
        line.resize(len, Complex::new(0.0, 0.0));
        for c in 0..count {
            let base = if stride == w { (c / w) * h * w + c % w } else { c };
            for (k, slot) in line.iter_mut().enumerate() {
                *slot = data[base + k * stride];
            }
            f.process(&mut line);
            for (k, val) in line.iter().enumerate() {
                data[base + k * stride] = *val;
            }
        }
    }
    data.iter().map(|c| c.norm_sqr() / n as f64).collect()
}

pub use brainssl_prep::frequency::normalised_radius as radius;

/// Mean PSD over bins with normalised radius ≥ `cutoff`, and the radial profile in `bins` equal-width
/// bins of [0, 1].
pub fn high_frequency_psd(psd: &[f64], radius: &[f64], cutoff: f64, bins: usize) -> (f64, Vec<f64>) {
    let (mut sum, mut count) = (0.0, 0usize);
    let mut prof = vec![0.0; bins];
    let mut pc = vec![0usize; bins];
    for (&p, &r) in psd.iter().zip(radius) {
        if r >= cutoff {
            sum += p;
            count += 1;
        }
        let b = ((r * bins as f64) as usize).min(bins - 1);
        prof[b] += p;
        pc[b] += 1;
    }
    let profile = prof
        .iter()
        .zip(&pc)
        .map(|(s, &c)| if c > 0 { s / c as f64 } else { f64::NAN })
        .collect();
    (sum / count.max(1) as f64, profile)
}

/// The spectral summary of one dataset: mean and spread of each scan's high-frequency PSD, and the
/// mean radial profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetPsd {
    pub name: String,
    pub scans: usize,
    pub mean_high_frequency: f64,
    /// Population standard deviation over scans.
    pub sd_high_frequency: f64,
    pub profile: Vec<f64>,
}

/// PSD of several datasets on one shape, cut-off and binning (paper Figure 3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PsdStudy {
    pub shape: [usize; 3],
    pub cutoff: f64,
    pub bins: usize,
    pub datasets: Vec<DatasetPsd>,
}

impl PsdStudy {
    pub fn new(shape: [usize; 3], cutoff: f64, bins: usize) -> Self {
        Self {
            shape,
            cutoff,
            bins,
            datasets: Vec::new(),
        }
    }

    /// Adds a dataset of `scans` volumes; `volume(i)` loads scan i (called from several threads).
    pub fn add<E: Send>(
        &mut self,
        name: &str,
        scans: usize,
        volume: impl Fn(usize) -> Result<Vec<f32>, E> + Sync,
    ) -> Result<&DatasetPsd, E> {
        let r = radius(self.shape);
        let per: Vec<(f64, Vec<f64>)> = (0..scans)
            .into_par_iter()
            .map(|i| {
                Ok(high_frequency_psd(
                    &power_spectrum(&volume(i)?, self.shape),
                    &r,
                    self.cutoff,
                    self.bins,
                ))
            })
            .collect::<Result<_, E>>()?;
        self.datasets.push(summarise(name, &per, self.bins));
        Ok(self.datasets.last().expect("just pushed"))
    }

    /// Centre of each radial bin, in normalised radius.
    pub fn bin_centres(&self) -> Vec<f64> {
        (0..self.bins).map(|b| (b as f64 + 0.5) / self.bins as f64).collect()
    }

    /// Mean high-frequency PSD of the first dataset over each other's.
    pub fn ratios(&self) -> Vec<(String, f64)> {
        let Some(first) = self.datasets.first() else {
            return Vec::new();
        };
        self.datasets[1..]
            .iter()
            .map(|d| (d.name.clone(), first.mean_high_frequency / d.mean_high_frequency))
            .collect()
    }

    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!("mean PSD at normalised radius ≥ {}", self.cutoff),
            &[
                "dataset",
                "scans",
                "mean high-frequency PSD",
                "sd",
                "ratio to the first",
            ],
        );
        let first = self.datasets.first().map(|d| d.mean_high_frequency);
        for d in &self.datasets {
            t.push(vec![
                d.name.clone(),
                d.scans.to_string(),
                format!("{:.4e}", d.mean_high_frequency),
                format!("{:.2e}", d.sd_high_frequency),
                first
                    .map(|f| format!("{:.3}", f / d.mean_high_frequency))
                    .unwrap_or_default(),
            ]);
        }
        t
    }

    /// The radial profiles: one row per bin, one column per dataset.
    pub fn profile_table(&self) -> Table {
        let mut cols = vec!["radius".to_string()];
        cols.extend(self.datasets.iter().map(|d| d.name.clone()));
        let mut t = Table {
            title: "mean radial PSD".into(),
            columns: cols,
            ..Table::default()
        };
        for (b, c) in self.bin_centres().iter().enumerate() {
            let mut row = vec![format!("{c:.4}")];
            row.extend(self.datasets.iter().map(|d| format!("{:.6e}", d.profile[b])));
            t.push(row);
        }
        t
    }
}

fn summarise(name: &str, per: &[(f64, Vec<f64>)], bins: usize) -> DatasetPsd {
    let n = per.len().max(1) as f64;
    let mean = per.iter().map(|p| p.0).sum::<f64>() / n;
    let sd = (per.iter().map(|p| (p.0 - mean).powi(2)).sum::<f64>() / n).sqrt();
    DatasetPsd {
        name: name.to_string(),
        scans: per.len(),
        mean_high_frequency: mean,
        sd_high_frequency: sd,
        profile: (0..bins).map(|b| per.iter().map(|p| p.1[b]).sum::<f64>() / n).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parseval_and_a_single_frequency() {
        // Parseval: Σ|F|²/N = Σ v²
        let shape = [4, 6, 5];
        let v: Vec<f32> = (0..120).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
        let psd = power_spectrum(&v, shape);
        let energy: f64 = v.iter().map(|&x| (x as f64).powi(2)).sum();
        assert!((psd.iter().sum::<f64>() - energy).abs() < 1e-9 * energy);
        // cos(2π·2·w/5) along W only: power at (0,0,±2), each N/4 · ... = N·¼ for amplitude 1
        let v: Vec<f32> = (0..120)
            .map(|i| (2.0 * std::f64::consts::PI * 2.0 * (i % 5) as f64 / 5.0).cos() as f32)
            .collect();
        let psd = power_spectrum(&v, shape);
        let n = 120.0;
        assert!((psd[2] - n / 4.0).abs() < 1e-4 && (psd[3] - n / 4.0).abs() < 1e-4);
        assert!(psd
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 2 && *i != 3)
            .all(|(_, p)| *p < 1e-6));
    }

    #[test]
    fn radius_is_normalised() {
        let r = radius([4, 4, 4]);
        assert_eq!(r[0], 0.0);
        // bin (2,2,2) holds (−½, −½, −½): the maximum
        assert!((r[2 * 16 + 2 * 4 + 2] - 1.0).abs() < 1e-12);
        let (hf, prof) = high_frequency_psd(&vec![1.0; 64], &r, 0.3, 10);
        assert_eq!(hf, 1.0);
        assert_eq!(prof.len(), 10);
    }

    #[test]
    fn psd_study_ranks_noise_above_a_constant_and_reports_ratios() {
        let shape = [4, 8, 8];
        let mut study = PsdStudy::new(shape, 0.3, 8);
        let noise = |i: usize| -> Result<Vec<f32>, String> {
            let mut r = brainssl_prep::Rng::new(i as u64);
            Ok((0..256).map(|_| r.normal() as f32).collect())
        };
        study.add("noise", 3, noise).unwrap();
        // a constant holds all its power at frequency 0, below any cut-off
        study.add("flat", 2, |_| Ok::<_, String>(vec![1.0; 256])).unwrap();
        let [n, f] = [&study.datasets[0], &study.datasets[1]];
        assert_eq!((n.scans, f.scans), (3, 2));
        assert!(
            n.mean_high_frequency > 0.1 && f.mean_high_frequency == 0.0,
            "{n:?} {f:?}"
        );
        assert_eq!(f.sd_high_frequency, 0.0);
        assert!(study.ratios()[0].1.is_infinite());
        assert_eq!(study.table().rows.len(), 2);
        assert_eq!(study.profile_table().rows.len(), 8);
        let err = study.add("bad", 2, |i| {
            if i == 1 {
                Err("scan 1 unreadable".to_string())
            } else {
                Ok(vec![0.0; 256])
            }
        });
        assert_eq!(err.unwrap_err(), "scan 1 unreadable");
    }
}
