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

/// round(x) for 0 <= x < 2²² by the float trick: adding 2²³ leaves the integer in the low mantissa
/// bits. Branch-free and vectorisable, unlike a saturating float-to-int cast.
#[inline]
fn small_index(x: f32) -> usize {
    ((x + 8_388_608.0).to_bits() - 0x4B00_0000) as usize
}

/// Values of rank `ks` (sorted, ascending, 0-based) in `data`.
fn order_statistics(data: &[f32], ks: &[usize]) -> Vec<f64> {
    const MAGIC: f32 = 12_582_912.0;
    // Eight independent lanes let this loop vectorise. Adding and subtracting 1.5·2²³ rounds to
    // an integer with plain SSE2 arithmetic (fract() is a libm call on baseline x86-64); values
    // beyond 2²² fail the test and take the float path, which is exact too.
    let (mut lo8, mut hi8, mut int8) = ([f32::INFINITY; 8], [f32::NEG_INFINITY; 8], [true; 8]);
    let chunks = data.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            let v = c[l];
            lo8[l] = if v < lo8[l] { v } else { lo8[l] };
            hi8[l] = if v > hi8[l] { v } else { hi8[l] };
            int8[l] &= (v + MAGIC) - MAGIC == v;
        }
    }
    let (mut lo, mut hi, mut integral) = (f32::INFINITY, f32::NEG_INFINITY, int8.iter().all(|&b| b));
    for l in 0..8 {
        lo = lo.min(lo8[l]);
        hi = hi.max(hi8[l]);
    }
    for &v in tail {
        lo = lo.min(v);
        hi = hi.max(v);
        integral &= (v + MAGIC) - MAGIC == v;
    }
    let span = hi as f64 - lo as f64;
    if integral && span <= (1 << 20) as f64 {
        // four interleaved histograms: MR background is mostly one value, and one counter would
        // serialise every increment on the same memory location
        let nb = span as usize + 1;
        let mut h4 = vec![0u32; 4 * nb];
        let quads = data.chunks_exact(4);
        let rest = quads.remainder();
        for q in quads {
            for (l, &v) in q.iter().enumerate() {
                h4[l * nb + small_index(v - lo)] += 1;
            }
        }
        for &v in rest {
            h4[small_index(v - lo)] += 1;
        }
        let hist: Vec<u32> = (0..nb)
            .map(|b| h4[b] + h4[nb + b] + h4[2 * nb + b] + h4[3 * nb + b])
            .collect();
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
    // Floats: a coarse histogram says which bins hold the wanted ranks; only the values of those
    // bins are copied and selected, so the work is two passes plus a small selection.
    const BINS: usize = 1 << 16;
    let scale = if hi > lo {
        ((BINS - 1) as f64 / (hi as f64 - lo as f64)) as f32
    } else {
        0.0
    };
    // any monotone map to bins will do: round-to-nearest of the scaled offset
    let bin_of = |v: f32| small_index(((v - lo) * scale).max(0.0)).min(BINS - 1);
    let mut hist = vec![0u32; BINS];
    for &v in data {
        hist[bin_of(v)] += 1;
    }
    let mut starts = vec![0usize; BINS + 1];
    for b in 0..BINS {
        starts[b + 1] = starts[b] + hist[b] as usize;
    }
    let wanted_bins: Vec<usize> = ks.iter().map(|&k| starts.partition_point(|&s| s <= k) - 1).collect();
    // pool_of[bin] = 1 + index of that bin's pool, 0 for bins nobody asked for
    let mut pool_of = vec![0u8; BINS];
    let mut pools: Vec<Vec<f32>> = Vec::new();
    for &b in &wanted_bins {
        if pool_of[b] == 0 {
            pools.push(Vec::with_capacity(hist[b] as usize));
            pool_of[b] = pools.len() as u8;
        }
    }
    for &v in data {
        let p = pool_of[bin_of(v)];
        if p != 0 {
            pools[p as usize - 1].push(v);
        }
    }
    ks.iter()
        .zip(&wanted_bins)
        .map(|(&k, &b)| {
            let pool = &mut pools[pool_of[b] as usize - 1];
            *pool.select_nth_unstable_by(k - starts[b], f32::total_cmp).1 as f64
        })
        .collect()
}

pub fn clip(data: &mut [f32], lo: f64, hi: f64) {
    let (lo, hi) = (lo as f32, hi as f32);
    for v in data.iter_mut() {
        *v = v.clamp(lo, hi);
    }
}

/// Mean and unbiased (N−1) standard deviation in one pass: f64 sums of values shifted by the
/// first value (which keeps the sum of squares well conditioned), eight lanes to vectorise.
pub fn mean_std(data: &[f32]) -> (f64, f64) {
    let n = data.len();
    if n == 0 {
        return (f64::NAN, 0.0);
    }
    let k = data[0] as f64;
    let (mut s8, mut q8) = ([0f64; 8], [0f64; 8]);
    let chunks = data.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            let d = c[l] as f64 - k;
            s8[l] += d;
            q8[l] += d * d;
        }
    }
    let (mut s, mut q): (f64, f64) = (s8.iter().sum(), q8.iter().sum());
    for &v in tail {
        let d = v as f64 - k;
        s += d;
        q += d * d;
    }
    let nf = n as f64;
    let mean = k + s / nf;
    let var = if n > 1 {
        ((q - s * s / nf) / (nf - 1.0)).max(0.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// The z-score (docs/preprocessing.md#z-score): (x − mean)/(std + 1e-8), with std < 1e-8
/// replaced by 1.
pub fn zscore(data: &mut [f32]) {
    let (mean, mut std) = mean_std(data);
    if std < 1e-8 {
        std = 1.0;
    }
    let (m, inv) = (mean as f32, (1.0 / (std + 1e-8)) as f32);
    for v in data.iter_mut() {
        *v = (*v - m) * inv;
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
