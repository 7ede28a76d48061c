//! Trilinear resize with aligned corners, the same map as `scipy.ndimage.zoom(order=1,
//! grid_mode=False)`: output index o samples input coordinate o·(n_in−1)/(n_out−1).
//! Done as three separable 1-D passes, each parallel over its outer axis.

use rayon::prelude::*;

/// (left index, weight of the right neighbour) for each output position along one axis.
fn taps(n_in: usize, n_out: usize) -> Vec<(usize, f32)> {
    let scale = if n_out > 1 { (n_in - 1) as f64 / (n_out - 1) as f64 } else { 0.0 };
    (0..n_out)
        .map(|o| {
            let x = o as f64 * scale;
            let i = (x.floor() as usize).min(n_in - 1);
            let i = if i + 1 >= n_in { n_in.saturating_sub(2).min(i) } else { i };
            let w = (x - i as f64).clamp(0.0, 1.0);
            (i, w as f32)
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
    dst.par_chunks_mut(m * inner).enumerate().for_each(|(o, block)| {
        let s = &src[o * n * inner..(o + 1) * n * inner];
        for (j, &(i, w)) in t.iter().enumerate() {
            let out = &mut block[j * inner..(j + 1) * inner];
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
    // Shrinking axes first keeps the intermediate arrays small.
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
        // size-1 axes: scipy maps every output to input 0
        let r = resize_trilinear(&[3.0], [1, 1, 1], [2, 1, 1]);
        assert_eq!(r, vec![3.0, 3.0]);
    }
}
