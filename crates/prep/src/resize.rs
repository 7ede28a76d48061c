//! Trilinear resize with aligned corners, the same map as `scipy.ndimage.zoom(order=1,
//! grid_mode=False)`: output index o samples input coordinate o·(n_in−1)/(n_out−1).
//! Done as three separable 1-D passes, each parallel over its outer axis.
//!
//! Parity detail: scipy computes the coordinate as o·((n_in−1)/(n_out−1)) in f64, and for some sizes
//! (58 → 48, say) the last one rounds to just above n_in−1. Its default mode="constant" then returns
//! cval = 0 for that output plane. The reference pipeline ran with that, so we reproduce it.

use rayon::prelude::*;

/// (left index, weight of the right neighbour) for each output position along one axis; None
/// where scipy's coordinate falls outside the input (see the module note).
fn taps(n_in: usize, n_out: usize) -> Vec<Option<(usize, f32)>> {
    let scale = if n_out > 1 {
        (n_in - 1) as f64 / (n_out - 1) as f64
    } else {
        0.0
    };
    (0..n_out)
        .map(|o| {
            let x = o as f64 * scale;
            if x > (n_in - 1) as f64 {
                return None;
            }
            let i = (x.floor() as usize).min(n_in - 1);
            let i = if i + 1 >= n_in {
                n_in.saturating_sub(2).min(i)
            } else {
                i
            };
            let w = (x - i as f64).clamp(0.0, 1.0);
            Some((i, w as f32))
        })
        .collect()
}

/// Resize along one axis of a C-order array viewed as [outer, n, inner].
fn resize_axis(src: &[f32], outer: usize, n: usize, inner: usize, m: usize) -> Vec<f32> {
    if n == m {
        return src.to_vec();
    }
    let t = taps(n, m);
    let mut dst = vec![0f32; outer * m * inner];
    if inner == 1 && n > 1 {
        // innermost axis: a scalar gather per output; taps as plain arrays, rows in batches
        let valid = t.iter().take_while(|x| x.is_some()).count();
        let idx: Vec<usize> = t[..valid].iter().map(|x| x.unwrap().0).collect();
        let wts: Vec<f32> = t[..valid].iter().map(|x| x.unwrap().1).collect();
        const ROWS: usize = 64;
        dst.par_chunks_mut(m * ROWS)
            .zip(src.par_chunks(n * ROWS))
            .for_each(|(outs, ss)| {
                for (out, s) in outs.chunks_exact_mut(m).zip(ss.chunks_exact(n)) {
                    for ((d, &i), &w) in out[..valid].iter_mut().zip(&idx).zip(&wts) {
                        let (a, b) = (s[i], s[i + 1]);
                        *d = a + (b - a) * w;
                    }
                }
            });
        return dst;
    }
    dst.par_chunks_mut(m * inner).enumerate().for_each(|(o, block)| {
        let s = &src[o * n * inner..(o + 1) * n * inner];
        for (j, tap) in t.iter().enumerate() {
            let out = &mut block[j * inner..(j + 1) * inner];
            let Some((i, w)) = *tap else {
                out.fill(0.0);
                continue;
            };
            let a = &s[i * inner..(i + 1) * inner];
            if n == 1 {
                out.copy_from_slice(a);
                continue;
            }
            let b = &s[(i + 1) * inner..(i + 2) * inner];
            for ((d, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *d = x + (y - x) * w;
            }
        }
    });
    dst
}

/// Resize a C-order [d0, d1, d2] array to `out`.
pub fn resize_trilinear(src: &[f32], shape: [usize; 3], out: [usize; 3]) -> Vec<f32> {
    assert_eq!(src.len(), shape.iter().product::<usize>());
    // innermost axis first, while rows are contiguous; the outer passes then move whole rows
    let a = resize_axis(src, shape[0] * shape[1], shape[2], 1, out[2]);
    let b = resize_axis(&a, shape[0], shape[1], out[2], out[1]);
    resize_axis(&b, 1, shape[0], out[1] * out[2], out[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_linear_functions_exactly() {
        // A trilinear map reproduces any affine function of the coordinates.
        let shape = [5, 7, 4];
        let f = |z: f64, y: f64, x: f64| 1.0 + 2.0 * z - 0.5 * y + 3.0 * x;
        let mut src = vec![0f32; 140];
        for z in 0..5 {
            for y in 0..7 {
                for x in 0..4 {
                    src[(z * 7 + y) * 4 + x] = f(z as f64, y as f64, x as f64) as f32;
                }
            }
        }
        let out = [9, 3, 6];
        let r = resize_trilinear(&src, shape, out);
        for z in 0..9 {
            for y in 0..3 {
                for x in 0..6 {
                    let want = f(z as f64 * 4.0 / 8.0, y as f64 * 6.0 / 2.0, x as f64 * 3.0 / 5.0);
                    assert!((r[(z * 3 + y) * 6 + x] as f64 - want).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn scipy_zoom_known_values() {
        // scipy.ndimage.zoom([0., 1., 4., 9.], 5/4, order=1, grid_mode=False)
        // = [0., 0.75, 2.5, 5.25, 9.]
        let r = resize_trilinear(&[0.0, 1.0, 4.0, 9.0], [1, 1, 4], [1, 1, 5]);
        for (a, b) in r.iter().zip([0.0, 0.75, 2.5, 5.25, 9.0]) {
            assert!((a - b).abs() < 1e-6, "{r:?}");
        }
        // scipy.ndimage.zoom(numpy.arange(58.), 48/58, order=1, grid_mode=False)[-1] == 0.0:
        // 47·(57/47) rounds to 57.000000000000007, outside the input, so mode="constant" gives 0
        let src: Vec<f32> = (0..58).map(|v| v as f32).collect();
        let r = resize_trilinear(&src, [1, 1, 58], [1, 1, 48]);
        assert_eq!(r[47], 0.0);
        assert!((r[46] - 46.0 * 57.0 / 47.0).abs() < 1e-4);
        // size-1 axes: scipy maps every output to input 0
        let r = resize_trilinear(&[3.0], [1, 1, 1], [2, 1, 1]);
        assert_eq!(r, vec![3.0, 3.0]);
    }
}
