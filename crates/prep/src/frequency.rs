//! Discrete Fourier frequencies of a volume's grid, shared by the spectral loss
//! (docs/method.md#spectral-loss) and the PSD analysis (docs/evaluation.md#psd-analysis), so both
//! use one definition of the normalised radius.

/// numpy's `fftfreq(n)`: k/n for k < ceil(n/2), then (k − n)/n, in cycles per sample.
pub fn fftfreq(n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| {
            let k = if k < n.div_ceil(2) {
                k as f64
            } else {
                k as f64 - n as f64
            };
            k / n as f64
        })
        .collect()
}

/// Radius sqrt(f_T² + f_H² + f_W²) of every bin divided by its maximum, row-major [T, H, W].
pub fn normalised_radius([t, h, w]: [usize; 3]) -> Vec<f64> {
    let (ft, fh, fw) = (fftfreq(t), fftfreq(h), fftfreq(w));
    let sq = |v: &[f64]| v.iter().map(|f| f * f).fold(0.0, f64::max);
    let rmax = (sq(&ft) + sq(&fh) + sq(&fw)).sqrt();
    let mut r = Vec::with_capacity(t * h * w);
    for a in &ft {
        for b in &fh {
            for c in &fw {
                r.push((a * a + b * b + c * c).sqrt() / rmax);
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fftfreq_matches_numpy() {
        assert_eq!(fftfreq(4), vec![0.0, 0.25, -0.5, -0.25]);
        assert_eq!(fftfreq(5), vec![0.0, 0.2, 0.4, -0.4, -0.2]);
    }

    #[test]
    fn radius_is_normalised() {
        let r = normalised_radius([4, 4, 4]);
        assert_eq!(r[0], 0.0);
        // bin (2,2,2) holds (−½, −½, −½): the maximum
        assert!((r[2 * 16 + 2 * 4 + 2] - 1.0).abs() < 1e-12);
    }
}
