//! Fixed 3-D sin-cos positional embedding (docs/method.md#positional-embedding), rebuilt for any
//! token grid.
//!
//! Columns are [depth | height | width]; each part is all sines then all cosines. With "uniform
//! power" every axis gets 2·ceil(D/6) columns and the concatenation is truncated to D.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use std::cell::RefCell;

use brainssl_backend::{tensor, Device, Tensor};

/// Token grid of a volume: (depth, height, width) in tokens.
pub type Grid = [usize; 3];

/// 1-D embedding of position `p` with `width` columns: sin(p·ω_i) then cos(p·ω_i), ω_i = 10000^(−2i/width).
fn sincos_1d(p: f64, width: usize, out: &mut Vec<f32>) {
    let half = width / 2;
    let omega = |i: usize| 1.0 / 10000f64.powf(i as f64 / half as f64);
    out.extend((0..half).map(|i| (p * omega(i)).sin() as f32));
    out.extend((0..half).map(|i| (p * omega(i)).cos() as f32));
}

/// Row-major [N, dim] table in token order t·H·W + h·W + w.
pub fn sincos_3d(grid: Grid, dim: usize, uniform_power: bool) -> Vec<f32> {
    let [gt, gh, gw] = grid;
    let (wd, wh, ww) = if uniform_power {
        let a = 2 * dim.div_ceil(6);
        (a, a, a)
    } else {
        (dim / 2, dim / 4, dim / 4)
    };
    let mut table = Vec::with_capacity(gt * gh * gw * dim);
    let mut row = Vec::with_capacity(wd + wh + ww);
    for t in 0..gt {
        for h in 0..gh {
            for w in 0..gw {
                row.clear();
                sincos_1d(t as f64, wd, &mut row);
                sincos_1d(h as f64, wh, &mut row);
                sincos_1d(w as f64, ww, &mut row);
                table.extend_from_slice(&row[..dim]);
            }
        }
    }
    table
}

type Key = (Grid, usize);

fn host_table(grid: Grid, dim: usize) -> Arc<Vec<f32>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Arc<Vec<f32>>>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    cache
        .entry((grid, dim))
        .or_insert_with(|| Arc::new(sincos_3d(grid, dim, true)))
        .clone()
}

thread_local! {
    /// Device copies, per thread (tensors are not shared across threads): one upload per grid.
    static DEVICE_CACHE: RefCell<HashMap<(Grid, usize, Device), Tensor>> = RefCell::new(HashMap::new());
}

/// The table as a [1, N, dim] float32 constant on `device` (no gradient), memoised per grid.
pub fn pos_embed_tensor(grid: Grid, dim: usize, device: Device) -> Tensor {
    DEVICE_CACHE.with(|c| {
        c.borrow_mut()
            .entry((grid, dim, device))
            .or_insert_with(|| {
                let n = grid.iter().product::<usize>();
                tensor(&host_table(grid, dim), &[1, n, dim], device)
            })
            .shallow_clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_closed_form_for_vit_base() {
        let dim = 768;
        let grid = [18, 20, 20];
        let table = sincos_3d(grid, dim, true);
        assert_eq!(table.len(), 7200 * dim);
        // token (t, h, w) = (5, 7, 11); depth columns 0..256, height 256..512, width 512..768
        let (t, h, w) = (5.0f64, 7.0, 11.0);
        let tok = (5 * 20 + 7) * 20 + 11;
        let row = &table[tok * dim..(tok + 1) * dim];
        for i in 0..128 {
            let om = 1.0 / 10000f64.powf(i as f64 / 128.0);
            for (base, p) in [(0, t), (256, h), (512, w)] {
                assert!((row[base + i] as f64 - (p * om).sin()).abs() < 1e-6);
                assert!((row[base + 128 + i] as f64 - (p * om).cos()).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn truncates_when_dim_is_not_a_multiple_of_six() {
        // vit_large: 1024 columns, 342 per axis (1026), last two width columns dropped
        let table = sincos_3d([2, 2, 2], 1024, true);
        assert_eq!(table.len(), 8 * 1024);
        let tok = 7; // (1, 1, 1)
        let om = |i: usize| 1.0 / 10000f64.powf(i as f64 / 171.0);
        // first width column: sin(1·ω_0) = sin 1
        assert!((table[tok * 1024 + 684] as f64 - 1f64.sin()).abs() < 1e-6);
        // last kept column is width cos index 168 (684 + 171 + 168 = 1023)
        assert!((table[tok * 1024 + 1023] as f64 - om(168).cos()).abs() < 1e-6);
    }

    #[test]
    fn non_uniform_split_gives_half_and_quarters() {
        let table = sincos_3d([3, 1, 1], 16, false);
        // depth has 8 columns: sin(2·ω_0) at column 0 of token 2, cos at column 4
        assert!((table[2 * 16] as f64 - 2f64.sin()).abs() < 1e-6);
        assert!((table[2 * 16 + 4] as f64 - 2f64.cos()).abs() < 1e-6);
        // height (4 columns) at position 0: sines 0, cosines 1
        assert_eq!(&table[2 * 16 + 8..2 * 16 + 12], &[0.0, 0.0, 1.0, 1.0]);
    }
}
