//! Power spectral density of volumes (SPEC 5.10, paper Figure 3): PSD = |FFT|²/N_vox over the
//! normalised radial frequency of SPEC 4.2 (r / max r, with numpy's `fftfreq` per axis).

use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

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
}
