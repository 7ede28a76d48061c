//! Scan I/O and geometry for brainssl. No deep-learning dependency: this crate builds and tests fast.
//!
//! `load_scan` is the one entry point the rest of the system uses: a NIfTI file, a DICOM file or a
//! folder holding one DICOM series becomes a [`Volume`] with its affine.

mod dicom_bounds;
pub mod dicom_io;
pub mod error;
pub mod folder;
pub mod geometry;
pub mod info;
pub mod nifti_io;
pub mod npy;
pub mod volume;

pub use error::{Result, ScanError};
pub use geometry::{Affine, AxisCodes, View3};
pub use volume::Volume;

use std::path::Path;

/// Options for reading a scan.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Frame of a 4-D NIfTI to read; a multi-frame file without it is an error.
    pub frame: Option<usize>,
}

/// Read any supported scan: `.nii`/`.nii.gz` (NIfTI-1 or -2), a `.dcm` file, or a DICOM series folder.
pub fn load_scan(path: &Path, opts: LoadOptions) -> Result<Volume> {
    if path.is_dir() {
        one_volume(path, opts)?;
        return dicom_io::read_dicom_dir(path);
    }
    if !path.exists() {
        return Err(ScanError::invalid(path, "no such file or folder"));
    }
    if dicom_io::looks_like_dicom(path) {
        one_volume(path, opts)?;
        return dicom_io::read_dicom_file(path);
    }
    nifti_io::read_nifti(path, opts.frame)
}

/// A DICOM file or series is one volume: only frame 0 (or none) can be asked of it.
fn one_volume(path: &Path, opts: LoadOptions) -> Result<()> {
    match opts.frame {
        Some(f) if f > 0 => Err(ScanError::invalid(
            path,
            format!("frame {f} requested, but a DICOM file or series is one volume (frame 0)"),
        )),
        _ => Ok(()),
    }
}

/// A fast check that `path` can be read as a scan, without reading its voxels: it exists, a NIfTI
/// file is a regular file with a sound header that fits the file (and `opts.frame` picks one of its
/// frames), a DICOM file is a regular file, a folder holds files. For pre-flight checks over whole
/// manifests.
pub fn check_scan(path: &Path, opts: LoadOptions) -> Result<()> {
    if path.is_dir() {
        one_volume(path, opts)?;
        let any = std::fs::read_dir(path)
            .map_err(|e| ScanError::io(path, e))?
            .flatten()
            .any(|e| e.file_type().is_ok_and(|t| t.is_file()));
        return if any {
            Ok(())
        } else {
            Err(ScanError::invalid(
                path,
                "a folder with no files (a DICOM series folder holds its slices)",
            ))
        };
    }
    if !path.exists() {
        return Err(ScanError::invalid(path, "no such file or folder"));
    }
    if dicom_io::looks_like_dicom(path) {
        one_volume(path, opts)?;
        let meta = std::fs::metadata(path).map_err(|e| ScanError::io(path, e))?;
        return if meta.is_file() {
            Ok(())
        } else {
            Err(ScanError::invalid(path, "not a regular file"))
        };
    }
    nifti_io::check_nifti(path, opts.frame)
}

/// How many volumes `path` holds along a 4th axis (1 for a 3-D scan, a DICOM file or a series),
/// read from the header alone.
pub fn frame_count(path: &Path) -> Result<usize> {
    if path.is_dir() || dicom_io::looks_like_dicom(path) {
        return Ok(1);
    }
    Ok(nifti_io::frames_of(&nifti_io::read_header(path)?))
}

/// Write bytes to `path` through a temporary file in the same folder and a rename, so readers never
/// see a half-written file and an interrupted run leaves the old file intact.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| ScanError::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| ScanError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| ScanError::io(&tmp, e))?;
    f.sync_all().ok();
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| ScanError::io(path, e))
}
