use crate::geometry::{spacing, to_ras, Affine, AxisCodes, View3};
use serde::Serialize;

/// A scalar 3-D scan as stored: voxel (i, j, k) at `i + ni·(j + nj·k)` (NIfTI order), intensities
/// with the file's scaling already applied, and the voxel → world (RAS+, mm) affine.
#[derive(Debug, Clone)]
pub struct Volume {
    pub data: Vec<f32>,
    pub dims: [usize; 3],
    pub affine: Affine,
    pub meta: ScanMeta,
}

/// What the file said about itself, kept for `brainssl info` and provenance.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ScanMeta {
    pub format: String,
    pub datatype: String,
    /// Where the affine came from: "sform", "qform", "pixdim" or "dicom".
    pub affine_source: String,
    /// Non-finite voxels that were replaced by 0.
    pub non_finite: usize,
    /// Original dims including any 4th axis.
    pub raw_dims: Vec<usize>,
}

impl Volume {
    pub fn spacing(&self) -> [f64; 3] {
        spacing(&self.affine)
    }

    pub fn codes(&self) -> AxisCodes {
        AxisCodes::from_affine(&self.affine).unwrap_or(AxisCodes {
            world_axis: [0, 1, 2],
            positive: [true; 3],
        })
    }

    pub fn view(&self) -> View3 {
        View3::fortran(self.dims)
    }

    /// Zero-copy RAS+ presentation: the view (axes x, y, z) and its affine.
    pub fn ras_view(&self) -> (View3, Affine) {
        to_ras(self.view(), &self.affine, &self.codes())
    }

    /// Materialised RAS+ copy, still in NIfTI (first index fastest) order.
    pub fn to_ras(&self) -> Volume {
        let (v, affine) = self.ras_view();
        // materialize gives C order over (x, y, z); reversing the axes gives NIfTI order.
        let data = v.permute([2, 1, 0]).materialize(&self.data);
        Volume {
            data,
            dims: v.shape,
            affine,
            meta: self.meta.clone(),
        }
    }

    /// Smallest and largest finite intensity.
    pub fn range(&self) -> (f32, f32) {
        self.data
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            })
    }

    pub fn get(&self, i: usize, j: usize, k: usize) -> f32 {
        self.data[i + self.dims[0] * (j + self.dims[1] * k)]
    }
}

/// Replace NaN and ±inf by 0 and count them, so one bad voxel cannot poison percentiles and z-scores.
pub fn sanitize(data: &mut [f32]) -> usize {
    let mut n = 0;
    for v in data.iter_mut() {
        if !v.is_finite() {
            *v = 0.0;
            n += 1;
        }
    }
    n
}
