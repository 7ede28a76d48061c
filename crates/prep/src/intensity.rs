//! Intensity statistics: NumPy-compatible linear percentiles, clipping and the per-volume z-score.

/// Percentiles `qs` (0..=100) of `data` with NumPy's default linear interpolation between order
/// statistics. Integer-valued data over a modest range (the usual uint8/int16 MR) is counted in a
/// histogram, O(n); anything else goes through selection on a copy.
pub fn percentiles(data: &[f32], qs: &[f64]) -> Vec<f64> {
    assert!(!data.is_empty(), "percentile of an empty array");
    let n = data.len();
    let ranks: Vec<(usize, f64)> = qs
        .iter()
        .map(|&q| {
            let vi = q.clamp(0.0, 100.0) / 100.0 * (n - 1) as f64;
            let lo = vi.floor() as usize;
            (lo.min(n - 1), vi - lo as f64)
        })
        .collect();
    let mut wanted: Vec<usize> = ranks.iter().flat_map(|&(k, _)| [k, (k + 1).min(n - 1)]).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let values = order_statistics(data, &wanted);
    let at = |k: usize| values[wanted.binary_search(&k).unwrap()];
    ranks
        .iter()
        .map(|&(k, t)| {
            let (a, b) = (at(k), at((k + 1).min(n - 1)));
            // NumPy's _lerp: symmetric form for accuracy near t = 1
            if t < 0.5 {
                a + (b - a) * t
            } else {
                b - (b - a) * (1.0 - t)
            }
        })
        .collect()
}

/// Values of rank `ks` (sorted, ascending, 0-based) in `data`.
fn order_statistics(data: &[f32], ks: &[usize]) -> Vec<f64> {
    let (mut lo, mut hi, mut integral) = (f32::INFINITY, f32::NEG_INFINITY, true);
    for &v in data {
        lo = lo.min(v);
        hi = hi.max(v);
        integral &= v.fract() == 0.0;
    }
    let span = hi as f64 - lo as f64;
    if integral && span <= (1 << 20) as f64 {
        let mut hist = vec![0u32; span as usize + 1];
        for &v in data {
            hist[(v - lo) as usize] += 1;
        }
        let mut out = Vec::with_capacity(ks.len());
        let (mut cum, mut bin) = (0usize, 0usize);
        for &k in ks {
            while cum + hist[bin] as usize <= k {
                cum += hist[bin] as usize;
                bin += 1;
            }
            out.push(lo as f64 + bin as f64);
        }
        return out;
    }
    let mut buf = data.to_vec();
    let mut out = vec![0.0; ks.len()];
    select_many(&mut buf, 0, ks, &mut out);
    out
}

/// Recursive multi-select: after the middle query is placed, the others live on either side.
fn select_many(buf: &mut [f32], base: usize, ks: &[usize], out: &mut [f64]) {
    if ks.is_empty() {
        return;
    }
    let mid = ks.len() / 2;
    let k = ks[mid] - base;
    let (left, pivot, right) = buf.select_nth_unstable_by(k, f32::total_cmp);
    out[mid] = *pivot as f64;
    let (out_l, out_r) = out.split_at_mut(mid);
    select_many(left, base, &ks[..mid], out_l);
    select_many(right, base + k + 1, &ks[mid + 1..], &mut out_r[1..]);
}

pub fn clip(data: &mut [f32], lo: f64, hi: f64) {
    let (lo, hi) = (lo as f32, hi as f32);
    for v in data.iter_mut() {
        *v = v.clamp(lo, hi);
    }
}

/// Mean and unbiased (N−1) standard deviation, accumulated in f64.
pub fn mean_std(data: &[f32]) -> (f64, f64) {
    let n = data.len() as f64;
    let mean = data.iter().map(|&v| v as f64).sum::<f64>() / n;
    let ss: f64 = data.iter().map(|&v| (v as f64 - mean).powi(2)).sum();
    (mean, if data.len() > 1 { (ss / (n - 1.0)).sqrt() } else { 0.0 })
}

/// SPEC 1.2 step 10: (x − mean)/(std + 1e-8), with std < 1e-8 replaced by 1.
pub fn zscore(data: &mut [f32]) {
    let (mean, mut std) = mean_std(data);
    if std < 1e-8 {
        std = 1.0;
    }
    let inv = 1.0 / (std + 1e-8);
    for v in data.iter_mut() {
        *v = ((*v as f64 - mean) * inv) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_numpy_known_values() {
        // numpy.percentile([1, 2, 3, 4], [1, 50, 99]) = [1.03, 2.5, 3.97]
        let p = percentiles(&[4.0, 1.0, 3.0, 2.0], &[1.0, 50.0, 99.0]);
        for (a, b) in p.iter().zip([1.03, 2.5, 3.97]) {
            assert!((a - b).abs() < 1e-12, "{p:?}");
        }
        // non-integral data takes the selection path: numpy.percentile([0.5, 0.25, 10.75, 3.5, 7.125], [1, 99])
        // = [0.26, 10.605]
        let p = percentiles(&[0.5, 0.25, 10.75, 3.5, 7.125], &[1.0, 99.0]);
        assert!((p[0] - 0.26).abs() < 1e-12 && (p[1] - 10.605).abs() < 1e-12, "{p:?}");
    }

    #[test]
    fn histogram_and_selection_paths_agree_with_sorting() {
        let mut r = crate::rng::Rng::new(3);
        let ints: Vec<f32> = (0..10_001).map(|_| (r.below(300) as f32) - 50.0).collect();
        let floats: Vec<f32> = ints.iter().map(|v| v + 0.25 * r.uniform() as f32).collect();
        for data in [ints, floats] {
            let mut s: Vec<f64> = data.iter().map(|&v| v as f64).collect();
            s.sort_by(f64::total_cmp);
            for q in [0.0, 1.0, 37.3, 99.0, 100.0] {
                let vi = q / 100.0 * (s.len() - 1) as f64;
                let (k, t) = (vi.floor() as usize, vi - vi.floor());
                let want = s[k] + (s[(k + 1).min(s.len() - 1)] - s[k]) * t;
                let got = percentiles(&data, &[q])[0];
                assert!((got - want).abs() < 1e-9, "q {q}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn zscore_is_unbiased_and_handles_constants() {
        let mut d = vec![1.0, 2.0, 3.0, 4.0];
        zscore(&mut d);
        // std (N-1) of 1..4 = 1.2909944
        assert!((d[0] as f64 + 1.5 / 1.2909944487358056).abs() < 1e-6);
        let mut c = vec![5.0; 10];
        zscore(&mut c);
        assert!(c.iter().all(|&v| v == 0.0));
    }
}
