//! What `brainssl info` reports about a scan.

use crate::volume::Volume;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ScanInfo {
    pub path: String,
    pub format: String,
    pub datatype: String,
    pub dims: [usize; 3],
    pub raw_dims: Vec<usize>,
    pub voxel_size_mm: [f64; 3],
    pub orientation: String,
    pub affine_source: String,
    pub affine: [[f64; 4]; 4],
    pub min: f32,
    pub max: f32,
    pub mean: f64,
    pub nonzero_fraction: f64,
    pub non_finite_voxels: usize,
    /// Volumes along a 4th axis (1 for a 3-D scan).
    pub frames: usize,
    /// The frame whose voxels the intensity figures describe, for a 4-D file.
    pub frame: Option<usize>,
}

impl ScanInfo {
    /// What `v` (frame `frame` of a file with `frames` frames) shows.
    pub fn of(path: &str, v: &Volume, frames: usize, frame: Option<usize>) -> Self {
        let (min, max) = v.range();
        let n = v.data.len().max(1) as f64;
        ScanInfo {
            path: path.to_string(),
            format: v.meta.format.clone(),
            datatype: v.meta.datatype.clone(),
            dims: v.dims,
            raw_dims: v.meta.raw_dims.clone(),
            voxel_size_mm: v.spacing(),
            orientation: v.codes().letters(),
            affine_source: v.meta.affine_source.clone(),
            affine: v.affine,
            min,
            max,
            mean: v.data.iter().map(|&x| x as f64).sum::<f64>() / n,
            nonzero_fraction: v.data.iter().filter(|&&x| x != 0.0).count() as f64 / n,
            non_finite_voxels: v.meta.non_finite,
            frames,
            frame,
        }
    }
}

impl std::fmt::Display for ScanInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c] = self.voxel_size_mm;
        writeln!(f, "file         {}", self.path)?;
        writeln!(f, "format       {} ({})", self.format, self.datatype)?;
        writeln!(
            f,
            "dims         {} x {} x {}  (stored {:?})",
            self.dims[0], self.dims[1], self.dims[2], self.raw_dims
        )?;
        if self.frames > 1 {
            writeln!(
                f,
                "frames       {} (figures below: frame {}; choose another with --frame)",
                self.frames,
                self.frame.unwrap_or(0)
            )?;
        }
        writeln!(f, "voxel size   {a:.4} x {b:.4} x {c:.4} mm")?;
        writeln!(
            f,
            "orientation  {} (affine from {})",
            self.orientation, self.affine_source
        )?;
        for (i, r) in self.affine.iter().enumerate() {
            let label = if i == 0 { "affine" } else { "" };
            writeln!(
                f,
                "{label:<12} [{:>10.4} {:>10.4} {:>10.4} {:>10.4}]",
                r[0] + 0.0,
                r[1] + 0.0,
                r[2] + 0.0,
                r[3] + 0.0 // + 0.0 prints -0.0 as 0.0
            )?;
        }
        writeln!(
            f,
            "intensity    min {} max {} mean {:.4}",
            self.min, self.max, self.mean
        )?;
        write!(f, "nonzero      {:.2} %", 100.0 * self.nonzero_fraction)?;
        if self.non_finite_voxels > 0 {
            write!(
                f,
                "\nwarning      {} non-finite voxels were set to 0",
                self.non_finite_voxels
            )?;
        }
        Ok(())
    }
}
