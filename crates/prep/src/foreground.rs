//! Foreground bounding box and the margin crop (docs/preprocessing.md#foreground-box-and-margin).

use brainssl_scan::{AxisCodes, Volume};

/// Inclusive [lo, hi] voxel extremes per axis.
pub type BoxIncl = [(usize, usize); 3];

/// (i range, j range) of the kept voxels of one k-slab.
type SlabExtent = ((usize, usize), (usize, usize));

/// Extremes of the voxels where `keep` holds, in stored (i, j, k) order; None when there are none.
pub fn stored_box(data: &[f32], dims: [usize; 3], keep: impl Fn(f32) -> bool + Sync) -> Option<BoxIncl> {
    use rayon::prelude::*;
    let [ni, nj, nk] = dims;
    // per k-slab: (i range, j range) of kept voxels
    let per_k: Vec<Option<SlabExtent>> = data
        .par_chunks(ni * nj)
        .map(|slab| {
            let mut acc: Option<SlabExtent> = None;
            for (j, row) in slab.chunks(ni).enumerate() {
                let first = row.iter().position(|&v| keep(v));
                if let Some(i0) = first {
                    let i1 = row.iter().rposition(|&v| keep(v)).unwrap();
                    acc = Some(match acc {
                        None => ((i0, i1), (j, j)),
                        Some(((a, b), (c, _))) => ((a.min(i0), b.max(i1)), (c, j)),
                    });
                }
            }
            acc
        })
        .collect();
    let mut out: Option<BoxIncl> = None;
    for (k, s) in per_k.into_iter().enumerate().take(nk) {
        if let Some(((i0, i1), (j0, j1))) = s {
            out = Some(match out {
                None => [(i0, i1), (j0, j1), (k, k)],
                Some([(a, b), (c, d), (e, _)]) => [(a.min(i0), b.max(i1)), (c.min(j0), d.max(j1)), (e, k)],
            });
        }
    }
    out
}

/// The same box in RAS+ axis order (what `Volume::ras_view` presents).
pub fn box_to_ras(b: BoxIncl, dims: [usize; 3], codes: &AxisCodes) -> BoxIncl {
    let mut out = [(0, 0); 3];
    for a in 0..3 {
        let (lo, hi) = b[a];
        out[codes.world_axis[a]] = if codes.positive[a] {
            (lo, hi)
        } else {
            (dims[a] - 1 - hi, dims[a] - 1 - lo)
        };
    }
    out
}

/// [max(0, lo − m), min(n, hi + 1 + m)) per axis: a symmetric margin
/// (docs/deviations.md#foreground-margin).
pub fn margin_crop(b: BoxIncl, shape: [usize; 3], margin: usize) -> [(usize, usize); 3] {
    let mut out = [(0, 0); 3];
    for a in 0..3 {
        out[a] = (b[a].0.saturating_sub(margin), (b[a].1 + 1 + margin).min(shape[a]));
    }
    out
}

/// Foreground box of `vol` in RAS+ order: from `mask` (> 0) when given, else from voxels != 0.
pub fn ras_foreground(vol: &Volume, mask: Option<&Volume>) -> Result<BoxIncl, String> {
    let codes = vol.codes();
    let b = match mask {
        Some(m) => {
            if m.dims != vol.dims || m.codes() != codes {
                return Err(format!(
                    "mask grid ({:?}, {}) does not match the image grid ({:?}, {})",
                    m.dims,
                    m.codes().letters(),
                    vol.dims,
                    codes.letters()
                ));
            }
            stored_box(&m.data, m.dims, |v| v > 0.0).ok_or("the mask is empty (no voxel > 0)")?
        }
        None => stored_box(&vol.data, vol.dims, |v| v != 0.0).ok_or("empty foreground: every voxel is 0")?,
    };
    Ok(box_to_ras(b, vol.dims, &codes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_of_a_block_and_margin_is_symmetric() {
        let dims = [6, 5, 4];
        let mut d = vec![0f32; 120];
        for (i, j, k) in [(1, 2, 1), (3, 4, 2), (2, 1, 1)] {
            d[i + 6 * (j + 5 * k)] = 1.0;
        }
        let b = stored_box(&d, dims, |v| v != 0.0).unwrap();
        assert_eq!(b, [(1, 3), (1, 4), (1, 2)]);
        assert_eq!(margin_crop(b, dims, 1), [(0, 5), (0, 5), (0, 4)]);
        assert_eq!(
            margin_crop([(5, 5), (0, 0), (2, 2)], [20, 20, 20], 6),
            [(0, 12), (0, 7), (0, 9)]
        );
        assert!(stored_box(&[0.0; 8], [2, 2, 2], |v| v != 0.0).is_none());
    }

    #[test]
    fn ras_box_flips_and_permutes() {
        // stored axes: i runs L (x flipped), j runs S (z), k runs A (y): "LSA"
        let codes = AxisCodes {
            world_axis: [0, 2, 1],
            positive: [false, true, true],
        };
        let b = box_to_ras([(1, 2), (3, 4), (0, 5)], [10, 8, 6], &codes);
        assert_eq!(b, [(7, 8), (0, 5), (3, 4)]);
    }
}
