//! NIfTI-1 and NIfTI-2 reading (`.nii`, `.nii.gz`, either byte order) and float32 NIfTI-1 writing.
//!
//! The NIfTI-1 header is parsed by the `nifti` crate; NIfTI-2 (which that crate rejects) is parsed
//! here. Voxel data is always decoded here, starting at `vox_offset`: the `nifti` crate reads from
//! byte 352 whenever the extension flag is 0, which shifts atlases that keep text in that gap.

use crate::error::{Result, ScanError};
use crate::geometry::{affine_to_quaternion, quaternion_to_affine, Affine};
use crate::volume::{sanitize, ScanMeta, Volume};
use rayon::prelude::*;
use std::io::{Read, Write};
use std::path::Path;

/// Header fields this project uses, in one form for both NIfTI versions.
#[derive(Debug, Clone)]
pub struct NiftiHeader {
    pub version: u8,
    pub big_endian: bool,
    /// dim[1..=dim[0]]
    pub dims: Vec<usize>,
    pub datatype: i16,
    pub pixdim: [f64; 8],
    pub vox_offset: u64,
    pub scl_slope: f64,
    pub scl_inter: f64,
    pub qform_code: i32,
    pub sform_code: i32,
    pub quatern: [f64; 3],
    pub qoffset: [f64; 3],
    pub srow: [[f64; 4]; 3],
}

impl NiftiHeader {
    /// The affine NIfTI says to use: the sform if its code is set, else the qform, else scaled pixdim
    /// (NIfTI "method 1": no flips). A set sform or qform that is unusable (non-finite, singular,
    /// implausible voxel sizes) falls back to the next, and the source says why; when nothing is
    /// usable the scan is refused rather than given a NaN or degenerate geometry.
    pub fn best_affine(&self, path: &Path) -> Result<(Affine, String)> {
        let mut notes: Vec<String> = Vec::new();
        // pixdim 0 (unset) means 1 mm, as readers commonly assume; anything else must be plausible
        let pix: Vec<Option<f64>> = (1..4)
            .map(|k| match self.pixdim[k] {
                0.0 => Some(1.0),
                v if v.is_finite() && (1e-3..=1e3).contains(&v.abs()) => Some(v.abs()),
                _ => None,
            })
            .collect();
        let pix_ok = pix.iter().all(Option::is_some);
        let pixdim = [0, 1, 2].map(|k| pix[k].unwrap_or(1.0));
        let pix_problem = || {
            format!(
                "voxel sizes (pixdim) {:?} are not within 0.001..1000 mm",
                &self.pixdim[1..4]
            )
        };
        if self.sform_code > 0 {
            let s = self.srow;
            let a = [s[0], s[1], s[2], [0.0, 0.0, 0.0, 1.0]];
            match crate::geometry::affine_problem(&a) {
                None => return Ok((a, "sform".into())),
                Some(why) => notes.push(format!("the sform {why}")),
            }
        }
        if self.qform_code > 0 {
            let q = self.quatern;
            let finite = q.iter().chain(&self.qoffset).all(|v| v.is_finite());
            let unit = q.iter().map(|v| v * v).sum::<f64>() <= 1.0 + 1e-6;
            if !finite || !unit {
                notes.push("the qform quaternion is not a rotation".into());
            } else if !pix_ok {
                notes.push(format!("the qform's {}", pix_problem()));
            } else {
                let qfac = if self.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
                let a = quaternion_to_affine(q, qfac, pixdim, self.qoffset);
                match crate::geometry::affine_problem(&a) {
                    None => {
                        let src = if notes.is_empty() {
                            "qform".into()
                        } else {
                            format!("qform ({})", notes.join("; "))
                        };
                        return Ok((a, src));
                    }
                    Some(why) => notes.push(format!("the qform {why}")),
                }
            }
        }
        if !pix_ok {
            notes.push(pix_problem());
            return Err(ScanError::invalid(
                path,
                format!("no usable geometry: {}", notes.join("; ")),
            ));
        }
        let mut a = crate::geometry::IDENTITY;
        for k in 0..3 {
            a[k][k] = pixdim[k];
        }
        let src = if notes.is_empty() {
            "pixdim".into()
        } else {
            format!("pixdim ({})", notes.join("; "))
        };
        Ok((a, src))
    }
}

/// The largest expansion DEFLATE can reach (about 1032:1); a header that needs more than this many
/// bytes per compressed byte cannot be telling the truth.
const MAX_GZIP_RATIO: usize = 1100;

/// Bytes of the header and voxel data of a NIfTI file, decompressed if it starts with the gzip magic
/// (whatever its extension). Only regular files are read, and a gzip stream is inflated only as far
/// as the header says the data reaches, so a small file cannot expand into gigabytes.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    regular_file(path)?;
    let raw = std::fs::read(path).map_err(|e| ScanError::io(path, e))?;
    if !(raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) {
        return Ok(raw);
    }
    let corrupt = |e: std::io::Error| ScanError::invalid(path, format!("gzip stream is corrupt or truncated ({e})"));
    let mut stream = flate2::read::MultiGzDecoder::new(&raw[..]);
    let mut out = Vec::new();
    (&mut stream).take(544).read_to_end(&mut out).map_err(corrupt)?;
    let h = parse_header(path, &out)?;
    let (_, _, end) = layout(path, &h)?;
    if end > raw.len().saturating_mul(MAX_GZIP_RATIO) {
        return Err(ScanError::invalid(
            path,
            format!(
                "the header describes {end} bytes of data, more than a {} byte gzip file can hold",
                raw.len()
            ),
        ));
    }
    // the first read may already reach past a small file's data
    out.truncate(end);
    out.reserve(end.saturating_sub(out.len()));
    stream
        .take(end.saturating_sub(out.len()) as u64)
        .read_to_end(&mut out)
        .map_err(corrupt)?;
    Ok(out)
}

/// The file's metadata if it is a regular file (FIFOs and devices would block or never end).
fn regular_file(path: &Path) -> Result<std::fs::Metadata> {
    let meta = std::fs::metadata(path).map_err(|e| ScanError::io(path, e))?;
    if !meta.is_file() {
        return Err(ScanError::invalid(
            path,
            "not a regular file (a FIFO, device or folder); NIfTI scans must be regular files",
        ));
    }
    Ok(meta)
}

/// The header of a NIfTI file, read without its voxels and checked: a regular file whose header
/// parses and whose data, as the header describes it, fits in the file (for gzip: could fit once
/// inflated).
pub fn read_header(path: &Path) -> Result<NiftiHeader> {
    let meta = regular_file(path)?;
    let mut f = std::fs::File::open(path).map_err(|e| ScanError::io(path, e))?;
    let mut magic = [0u8; 2];
    let gz = f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    let f = std::fs::File::open(path).map_err(|e| ScanError::io(path, e))?;
    let mut head = Vec::new();
    let read = if gz {
        flate2::read::MultiGzDecoder::new(f).take(544).read_to_end(&mut head)
    } else {
        f.take(544).read_to_end(&mut head)
    };
    read.map_err(|e| ScanError::invalid(path, format!("cannot read the header ({e})")))?;
    let h = parse_header(path, &head)?;
    nonzero_dims(path, &h)?;
    let (_, _, end) = layout(path, &h)?;
    let room = if gz {
        (meta.len() as usize).saturating_mul(MAX_GZIP_RATIO)
    } else {
        meta.len() as usize
    };
    if end > room {
        return Err(ScanError::invalid(
            path,
            format!(
                "the header describes {end} bytes of data, but the file has {} bytes",
                meta.len()
            ),
        ));
    }
    Ok(h)
}

/// Checks a NIfTI file without reading its voxels ([`read_header`]), and that `frame` picks one
/// volume of it: required for a 4-D file, in range.
pub fn check_nifti(path: &Path, frame: Option<usize>) -> Result<()> {
    let h = read_header(path)?;
    choose_frame(path, &h, frame).map(|_| ())
}

/// A header whose every axis has at least one voxel.
fn nonzero_dims(path: &Path, h: &NiftiHeader) -> Result<()> {
    if h.dims.is_empty() || h.dims.contains(&0) {
        return Err(ScanError::invalid(
            path,
            format!("invalid dimensions {:?} (a zero or missing axis)", h.dims),
        ));
    }
    Ok(())
}

/// Frames (volumes along the 4th axis) of a header; 1 for a 3-D file.
pub fn frames_of(h: &NiftiHeader) -> usize {
    h.dims.get(3).copied().unwrap_or(1)
}

/// The frame to read: the only one, or the requested one if it exists.
fn choose_frame(path: &Path, h: &NiftiHeader, frame: Option<usize>) -> Result<usize> {
    match (frames_of(h), frame) {
        (1, None) => Ok(0),
        (n, None) => Err(ScanError::invalid(
            path,
            format!(
                "4-D file with {n} frames: choose one (0..{}) with --frame, or with a 'frame' column in a manifest",
                n.saturating_sub(1)
            ),
        )),
        (n, Some(f)) if f >= n => Err(ScanError::invalid(
            path,
            format!(
                "frame {f} requested but the file has {n} frames (0..{})",
                n.saturating_sub(1)
            ),
        )),
        (_, Some(f)) => Ok(f),
    }
}

/// Voxels per frame, frames, and the end offset of the voxel data, with every product and sum
/// checked (a header may claim any dimensions and offset).
fn layout(path: &Path, h: &NiftiHeader) -> Result<(usize, usize, usize)> {
    let overflow = || ScanError::invalid(path, format!("dimensions {:?} overflow", h.dims));
    let width = datatype_info(h.datatype)
        .ok_or_else(|| ScanError::invalid(path, unsupported_datatype(h.datatype)))?
        .1;
    let product = |d: &[usize]| d.iter().try_fold(1usize, |a, &x| a.checked_mul(x));
    let nvox = product(&h.dims[..h.dims.len().min(3)]).ok_or_else(overflow)?;
    let extra = product(h.dims.get(3..).unwrap_or(&[])).ok_or_else(overflow)?;
    let need = nvox
        .checked_mul(extra)
        .and_then(|n| n.checked_mul(width))
        .ok_or_else(overflow)?;
    let min_offset = if h.version == 1 { 352 } else { 544 };
    let off = usize::try_from(h.vox_offset).unwrap_or(usize::MAX).max(min_offset);
    let end = off
        .checked_add(need)
        .ok_or_else(|| ScanError::invalid(path, format!("vox_offset {} is beyond any file", h.vox_offset)))?;
    Ok((nvox, extra, end))
}

fn rd<const N: usize>(b: &[u8], off: usize, be: bool) -> [u8; N] {
    let mut a: [u8; N] = b[off..off + N].try_into().unwrap();
    if be {
        a.reverse();
    }
    a
}

fn parse_v2(b: &[u8], be: bool) -> NiftiHeader {
    let i16_ = |o| i16::from_le_bytes(rd(b, o, be));
    let i32_ = |o| i32::from_le_bytes(rd(b, o, be));
    let i64_ = |o| i64::from_le_bytes(rd(b, o, be));
    let f64_ = |o| f64::from_le_bytes(rd(b, o, be));
    let ndim = i64_(16).clamp(0, 7) as usize;
    let dims = (1..=ndim).map(|k| i64_(16 + 8 * k).max(0) as usize).collect();
    let mut pixdim = [0.0; 8];
    for (k, p) in pixdim.iter_mut().enumerate() {
        *p = f64_(104 + 8 * k);
    }
    let row = |o: usize| [f64_(o), f64_(o + 8), f64_(o + 16), f64_(o + 24)];
    NiftiHeader {
        version: 2,
        big_endian: be,
        dims,
        datatype: i16_(12),
        pixdim,
        vox_offset: i64_(168).max(0) as u64,
        scl_slope: f64_(176),
        scl_inter: f64_(184),
        qform_code: i32_(344),
        sform_code: i32_(348),
        quatern: [f64_(352), f64_(360), f64_(368)],
        qoffset: [f64_(376), f64_(384), f64_(392)],
        srow: [row(400), row(432), row(464)],
    }
}

fn parse_v1(path: &Path, b: &[u8]) -> Result<NiftiHeader> {
    let h = nifti::NiftiHeader::from_reader(&b[..348])
        .map_err(|e| ScanError::invalid(path, format!("invalid NIfTI-1 header ({e})")))?;
    if &h.magic != b"n+1\0" {
        return Err(ScanError::invalid(
            path,
            "NIfTI-1 header/image pairs (.hdr/.img, magic 'ni1') are not supported; convert to .nii",
        ));
    }
    let ndim = (h.dim[0] as usize).min(7);
    let f = |x: f32| x as f64;
    Ok(NiftiHeader {
        version: 1,
        big_endian: h.endianness == nifti::Endianness::Big,
        dims: (1..=ndim)
            .map(|k| h.dim[k] as i16 as isize)
            .map(|d| d.max(0) as usize)
            .collect(),
        datatype: h.datatype,
        pixdim: h.pixdim.map(f),
        vox_offset: h.vox_offset.max(0.0) as u64,
        scl_slope: f(h.scl_slope),
        scl_inter: f(h.scl_inter),
        qform_code: h.qform_code as i32,
        sform_code: h.sform_code as i32,
        quatern: [f(h.quatern_b), f(h.quatern_c), f(h.quatern_d)],
        qoffset: [f(h.quatern_x), f(h.quatern_y), f(h.quatern_z)],
        srow: [h.srow_x.map(f), h.srow_y.map(f), h.srow_z.map(f)],
    })
}

/// Parse the header at the start of `bytes` (already decompressed).
pub fn parse_header(path: &Path, bytes: &[u8]) -> Result<NiftiHeader> {
    if bytes.len() < 348 {
        return Err(ScanError::invalid(
            path,
            format!("not a NIfTI file: only {} bytes, a header needs 348", bytes.len()),
        ));
    }
    let le = i32::from_le_bytes(bytes[0..4].try_into().unwrap());
    let be = i32::from_be_bytes(bytes[0..4].try_into().unwrap());
    match (le, be) {
        (348, _) | (_, 348) => parse_v1(path, bytes),
        (540, _) | (_, 540) => {
            if bytes.len() < 540 {
                return Err(ScanError::invalid(path, "truncated NIfTI-2 header"));
            }
            if &bytes[4..8] != b"n+2\0" {
                return Err(ScanError::invalid(
                    path,
                    "NIfTI-2 header with unsupported magic (expected 'n+2')",
                ));
            }
            Ok(parse_v2(bytes, be == 540))
        }
        _ => Err(ScanError::invalid(
            path,
            "not a NIfTI file: header size field is neither 348 (NIfTI-1) nor 540 (NIfTI-2)",
        )),
    }
}

/// Name and byte width of each supported scalar datatype code.
fn datatype_info(code: i16) -> Option<(&'static str, usize)> {
    Some(match code {
        2 => ("uint8", 1),
        4 => ("int16", 2),
        8 => ("int32", 4),
        16 => ("float32", 4),
        64 => ("float64", 8),
        256 => ("int8", 1),
        512 => ("uint16", 2),
        768 => ("uint32", 4),
        1024 => ("int64", 8),
        1280 => ("uint64", 8),
        _ => return None,
    })
}

fn unsupported_datatype(code: i16) -> String {
    let name = match code {
        32 => "complex64",
        1792 => "complex128",
        2048 => "complex256",
        128 => "RGB24",
        2304 => "RGBA32",
        1536 => "float128",
        1 => "binary",
        _ => "unknown",
    };
    format!("unsupported NIfTI datatype {code} ({name}); brainssl reads scalar integer and float volumes")
}

fn decode(bytes: &[u8], code: i16, be: bool, slope: f64, inter: f64, out: &mut [f32]) {
    const CHUNK: usize = 1 << 16;
    let scaled = !(slope == 1.0 && inter == 0.0);
    // Branches are hoisted out of the per-voxel loop so each variant compiles to a tight loop.
    macro_rules! conv {
        ($t:ty, $n:expr) => {
            out.par_chunks_mut(CHUNK)
                .zip(bytes.par_chunks(CHUNK * $n))
                .for_each(|(o, b)| {
                    let vals = b.chunks_exact($n).map(|c| {
                        let a: [u8; $n] = c.try_into().unwrap();
                        if be {
                            <$t>::from_be_bytes(a)
                        } else {
                            <$t>::from_le_bytes(a)
                        }
                    });
                    if scaled {
                        o.iter_mut()
                            .zip(vals)
                            .for_each(|(o, v)| *o = (v as f64 * slope + inter) as f32);
                    } else {
                        o.iter_mut().zip(vals).for_each(|(o, v)| *o = v as f32);
                    }
                })
        };
    }
    match code {
        2 => conv!(u8, 1),
        4 => conv!(i16, 2),
        8 => conv!(i32, 4),
        16 => conv!(f32, 4),
        64 => conv!(f64, 8),
        256 => conv!(i8, 1),
        512 => conv!(u16, 2),
        768 => conv!(u32, 4),
        1024 => conv!(i64, 8),
        1280 => conv!(u64, 8),
        _ => unreachable!("checked by datatype_info"),
    }
}

/// Read a NIfTI volume. A 4-D file must have one frame, or `frame` must pick one.
pub fn read_nifti(path: &Path, frame: Option<usize>) -> Result<Volume> {
    let bytes = read_maybe_gz(path)?;
    let h = parse_header(path, &bytes)?;
    let (dtname, width) =
        datatype_info(h.datatype).ok_or_else(|| ScanError::invalid(path, unsupported_datatype(h.datatype)))?;
    nonzero_dims(path, &h)?;
    let mut dims3 = [1usize; 3];
    for (k, d) in h.dims.iter().take(3).enumerate() {
        dims3[k] = *d;
    }
    let (nvox, extra, end) = layout(path, &h)?;
    if h.dims.iter().skip(4).any(|&d| d != 1) {
        return Err(ScanError::invalid(
            path,
            format!("{}-D data {:?} is not a scalar volume", h.dims.len(), h.dims),
        ));
    }
    let chosen = choose_frame(path, &h, frame)?;
    // checked in `layout`: nvox · extra · width does not overflow
    let need = nvox * extra * width;
    let off = end - need;
    if end > bytes.len() {
        return Err(ScanError::invalid(
            path,
            format!(
                "truncated: {need} bytes of voxel data expected from offset {off}, but the (decompressed) file has {} bytes",
                bytes.len()
            ),
        ));
    }
    let start = off + chosen * nvox * width;
    let (slope, inter) = if h.scl_slope == 0.0 || !h.scl_slope.is_finite() {
        (1.0, 0.0)
    } else {
        (h.scl_slope, if h.scl_inter.is_finite() { h.scl_inter } else { 0.0 })
    };
    let mut data = vec![0f32; nvox];
    decode(
        &bytes[start..start + nvox * width],
        h.datatype,
        h.big_endian,
        slope,
        inter,
        &mut data,
    );
    // unscaled integers cannot be NaN or infinite
    let float_data = matches!(h.datatype, 16 | 64);
    let non_finite = if float_data || slope != 1.0 || inter != 0.0 {
        sanitize(&mut data)
    } else {
        0
    };
    let (affine, src) = h.best_affine(path)?;
    Ok(Volume {
        data,
        dims: dims3,
        affine,
        meta: ScanMeta {
            format: format!("NIfTI-{}{}", h.version, if h.big_endian { " (big-endian)" } else { "" }),
            datatype: dtname.to_string(),
            affine_source: src,
            non_finite,
            raw_dims: h.dims.clone(),
        },
    })
}

/// Write a float32 NIfTI-1 file (gzip-compressed when the name ends in `.gz`), atomically.
pub fn write_nifti(path: &Path, data: &[f32], dims: [usize; 3], affine: &Affine) -> Result<()> {
    write_nifti_frames(path, data, dims, 1, affine)
}

/// [`write_nifti`] for `frames` volumes of `dims` one after another (a 4-D file; `frames` = 1: 3-D).
pub fn write_nifti_frames(path: &Path, data: &[f32], dims: [usize; 3], frames: usize, affine: &Affine) -> Result<()> {
    assert_eq!(
        data.len(),
        dims.iter().product::<usize>() * frames,
        "data length must match dims and frames"
    );
    if frames > i16::MAX as usize {
        return Err(ScanError::invalid(path, "more frames than NIfTI-1's limit of 32767"));
    }
    if dims.iter().any(|&d| d > i16::MAX as usize) {
        return Err(ScanError::invalid(path, "a dimension exceeds NIfTI-1's limit of 32767"));
    }
    let mut h = vec![0u8; 352];
    let put = |h: &mut Vec<u8>, off: usize, b: &[u8]| h[off..off + b.len()].copy_from_slice(b);
    put(&mut h, 0, &348i32.to_le_bytes());
    let ndim = if frames > 1 { 4 } else { 3 };
    let dim: [i16; 8] = [
        ndim,
        dims[0] as i16,
        dims[1] as i16,
        dims[2] as i16,
        frames as i16,
        1,
        1,
        1,
    ];
    for (k, d) in dim.iter().enumerate() {
        put(&mut h, 40 + 2 * k, &d.to_le_bytes());
    }
    put(&mut h, 70, &16i16.to_le_bytes()); // float32
    put(&mut h, 72, &32i16.to_le_bytes()); // bitpix
    let (q, qfac, sp) = affine_to_quaternion(affine);
    let pixdim = [
        qfac as f32,
        sp[0] as f32,
        sp[1] as f32,
        sp[2] as f32,
        1.0,
        1.0,
        1.0,
        1.0,
    ];
    for (k, p) in pixdim.iter().enumerate() {
        put(&mut h, 76 + 4 * k, &p.to_le_bytes());
    }
    put(&mut h, 108, &352f32.to_le_bytes()); // vox_offset
    put(&mut h, 112, &1f32.to_le_bytes()); // scl_slope
    h[123] = 2; // xyzt_units: mm
    let descrip = b"brainssl";
    put(&mut h, 148, descrip);
    put(&mut h, 252, &1i16.to_le_bytes()); // qform_code: scanner
    put(&mut h, 254, &1i16.to_le_bytes()); // sform_code: scanner
    for (k, v) in q.iter().enumerate() {
        put(&mut h, 256 + 4 * k, &(*v as f32).to_le_bytes());
    }
    for k in 0..3 {
        put(&mut h, 268 + 4 * k, &(affine[k][3] as f32).to_le_bytes());
    }
    for r in 0..3 {
        for c in 0..4 {
            put(&mut h, 280 + 16 * r + 4 * c, &(affine[r][c] as f32).to_le_bytes());
        }
    }
    put(&mut h, 344, b"n+1\0");
    let mut payload = h;
    payload.reserve(data.len() * 4);
    for v in data {
        payload.extend_from_slice(&v.to_le_bytes());
    }
    let gz = path.extension().is_some_and(|e| e == "gz");
    let bytes = if gz {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(4));
        enc.write_all(&payload).map_err(|e| ScanError::io(path, e))?;
        enc.finish().map_err(|e| ScanError::io(path, e))?
    } else {
        payload
    };
    crate::atomic_write(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let dims = [5, 4, 3];
        let data: Vec<f32> = (0..60).map(|v| v as f32 * 0.5 - 3.0).collect();
        let affine = [
            [0.0, 0.0, -2.0, 10.0],
            [1.5, 0.0, 0.0, -4.0],
            [0.0, -1.0, 0.0, 3.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        for name in ["a.nii", "a.nii.gz"] {
            let p = dir.path().join(name);
            write_nifti(&p, &data, dims, &affine).unwrap();
            let v = read_nifti(&p, None).unwrap();
            assert_eq!(v.dims, dims);
            assert_eq!(v.data, data);
            for r in 0..3 {
                for c in 0..4 {
                    assert!((v.affine[r][c] - affine[r][c]).abs() < 1e-6);
                }
            }
            assert_eq!(v.codes().letters(), "AIL");
        }
    }

    #[test]
    fn a_4d_file_needs_a_frame_and_gives_the_one_chosen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bold.nii");
        let data: Vec<f32> = (0..16).map(|i| i as f32).collect();
        write_nifti_frames(&p, &data, [2, 2, 2], 2, &crate::geometry::IDENTITY).unwrap();
        let b = std::fs::read(&p).unwrap();
        assert_eq!(
            &b[40..50],
            &[4, 0, 2, 0, 2, 0, 2, 0, 2, 0],
            "dim[0..=4] of a 4-D header"
        );
        assert_eq!(crate::frame_count(&p).unwrap(), 2);
        for e in [
            read_nifti(&p, None).unwrap_err().to_string(),
            check_nifti(&p, None).unwrap_err().to_string(),
        ] {
            assert!(
                e.contains("bold.nii") && e.contains("2 frames") && e.contains("'frame' column"),
                "{e}"
            );
        }
        let e = check_nifti(&p, Some(2)).unwrap_err().to_string();
        assert!(e.contains("frame 2") && e.contains("0..1"), "{e}");
        check_nifti(&p, Some(1)).unwrap();
        let v = read_nifti(&p, Some(1)).unwrap();
        assert_eq!(v.dims, [2, 2, 2]);
        assert_eq!(v.data, data[8..].to_vec());
    }

    #[test]
    fn garbage_and_truncation_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("junk.nii");
        std::fs::write(&p, b"hello world").unwrap();
        let e = read_nifti(&p, None).unwrap_err().to_string();
        assert!(e.contains("junk.nii") && e.contains("not a NIfTI"), "{e}");

        let good = dir.path().join("g.nii");
        write_nifti(&good, &[1.0; 64], [4, 4, 4], &crate::geometry::IDENTITY).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let cut = dir.path().join("cut.nii");
        std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
        let e = read_nifti(&cut, None).unwrap_err().to_string();
        assert!(e.contains("cut.nii") && e.contains("truncated"), "{e}");

        let gz = dir.path().join("cut.nii.gz");
        write_nifti(&gz, &[1.0; 4096], [16, 16, 16], &crate::geometry::IDENTITY).unwrap();
        let bytes = std::fs::read(&gz).unwrap();
        std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
        let e = read_nifti(&gz, None).unwrap_err().to_string();
        assert!(e.contains("cut.nii.gz"), "{e}");
    }

    /// A valid 2×2×2 float32 file's bytes, patched by `edit`, written to `name`.
    fn patched(dir: &Path, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> std::path::PathBuf {
        let p = dir.join(name);
        write_nifti(&p, &[1.0; 8], [2, 2, 2], &crate::geometry::IDENTITY).unwrap();
        let mut b = read_maybe_gz(&p).unwrap();
        edit(&mut b);
        std::fs::write(&p, &b).unwrap();
        p
    }

    #[test]
    fn hostile_offsets_and_dimensions_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        for (name, offset) in [("far.nii", 1e20f32), ("inf.nii", f32::INFINITY), ("nan.nii", f32::NAN)] {
            let p = patched(dir.path(), name, |b| b[108..112].copy_from_slice(&offset.to_le_bytes()));
            match read_nifti(&p, None) {
                // NaN is treated as the minimum offset 352, where this file's data is
                Ok(v) => assert!(offset.is_nan() && v.data == vec![1.0; 8]),
                Err(e) => assert!(e.to_string().contains(name), "{e}"),
            }
        }
        // 32767⁴ voxels of f64 overflow usize
        let p = patched(dir.path(), "huge.nii", |b| {
            b[40..42].copy_from_slice(&4i16.to_le_bytes());
            for k in 1..=4 {
                b[40 + 2 * k..42 + 2 * k].copy_from_slice(&32767i16.to_le_bytes());
            }
            b[70..72].copy_from_slice(&64i16.to_le_bytes());
        });
        let e = read_nifti(&p, Some(0)).unwrap_err().to_string();
        assert!(
            e.contains("huge.nii") && (e.contains("overflow") || e.contains("truncated")),
            "{e}"
        );
        // NIfTI-2 with 2^32 × 2^32 × 1 voxels
        let mut h = vec![0u8; 544];
        h[0..4].copy_from_slice(&540i32.to_le_bytes());
        h[4..8].copy_from_slice(b"n+2\0");
        h[12..14].copy_from_slice(&16i16.to_le_bytes());
        for (k, d) in [3i64, 1 << 32, 1 << 32, 1].iter().enumerate() {
            h[16 + 8 * k..24 + 8 * k].copy_from_slice(&d.to_le_bytes());
        }
        h[168..176].copy_from_slice(&544i64.to_le_bytes());
        let p = dir.path().join("v2.nii");
        std::fs::write(&p, &h).unwrap();
        let e = read_nifti(&p, None).unwrap_err().to_string();
        assert!(e.contains("v2.nii") && e.contains("overflow"), "{e}");
    }

    #[test]
    fn gzip_is_inflated_only_as_far_as_the_header_needs() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let plain = patched(dir.path(), "small.nii", |_| {});
        // the valid file followed by 64 MB of zeros, compressed to a few tens of kB
        let mut bytes = std::fs::read(&plain).unwrap();
        let end = bytes.len();
        bytes.resize(end + (64 << 20), 0);
        let gz = dir.path().join("bomb.nii.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&bytes).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read_maybe_gz(&gz).unwrap().len(), end, "stops where the data ends");
        assert_eq!(read_nifti(&gz, None).unwrap().data, vec![1.0; 8]);
        // a header that claims more data than the compressed file could hold is refused at once
        let mut claim = std::fs::read(&plain).unwrap();
        for k in 1..=3 {
            claim[40 + 2 * k..42 + 2 * k].copy_from_slice(&4000i16.to_le_bytes());
        }
        let liar = dir.path().join("liar.nii.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&claim).unwrap();
        std::fs::write(&liar, enc.finish().unwrap()).unwrap();
        let e = read_nifti(&liar, None).unwrap_err().to_string();
        assert!(e.contains("liar.nii.gz") && e.contains("more than"), "{e}");
    }

    #[test]
    fn devices_and_folders_are_refused() {
        for p in ["/dev/zero", "/dev/null", "/tmp"] {
            let e = read_nifti(Path::new(p), None).unwrap_err().to_string();
            assert!(e.contains(p) && e.contains("not a regular file"), "{e}");
        }
    }

    #[test]
    fn zero_dimension_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("z.nii");
        write_nifti(&p, &[1.0; 8], [2, 2, 2], &crate::geometry::IDENTITY).unwrap();
        let mut b = std::fs::read(&p).unwrap();
        b[42..44].copy_from_slice(&0i16.to_le_bytes());
        std::fs::write(&p, &b).unwrap();
        let e = read_nifti(&p, None).unwrap_err().to_string();
        assert!(e.contains("zero"), "{e}");
        // a 4-D header with 0 frames: the header check refuses it too (a fuzzer found it panicking
        // while the frame message was formatted)
        b[42..44].copy_from_slice(&2i16.to_le_bytes());
        b[40..42].copy_from_slice(&4i16.to_le_bytes());
        b[48..50].copy_from_slice(&0i16.to_le_bytes());
        std::fs::write(&p, &b).unwrap();
        for e in [
            check_nifti(&p, None).unwrap_err().to_string(),
            crate::frame_count(&p).unwrap_err().to_string(),
        ] {
            assert!(e.contains("z.nii") && e.contains("zero"), "{e}");
        }
    }
}

#[cfg(test)]
mod check_tests {
    use super::*;

    /// The pre-flight check reads no voxels, yet catches what reading would fail on.
    #[test]
    fn check_scan_accepts_sound_files_and_names_the_problem_of_others() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("g.nii");
        write_nifti(&good, &[1.0; 64], [4, 4, 4], &crate::geometry::IDENTITY).unwrap();
        crate::check_scan(&good, Default::default()).unwrap();
        let gz = dir.path().join("g.nii.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&std::fs::read(&good).unwrap()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        crate::check_scan(&gz, Default::default()).unwrap();
        // truncated: the header promises 256 bytes of voxels
        let cut = dir.path().join("cut.nii");
        let b = std::fs::read(&good).unwrap();
        std::fs::write(&cut, &b[..b.len() - 10]).unwrap();
        let e = crate::check_scan(&cut, Default::default()).unwrap_err().to_string();
        assert!(e.contains("cut.nii") && e.contains("but the file has"), "{e}");
        let e = crate::check_scan(&dir.path().join("none.nii"), Default::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such file"), "{e}");
        let e = crate::check_scan(Path::new("/dev/zero"), Default::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        // a FIFO is refused at once, not waited on (and load_scan does not block on it either)
        let fifo = dir.path().join("f.nii");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let e = crate::check_scan(&fifo, Default::default()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let e = crate::load_scan(&fifo, Default::default()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let empty = dir.path().join("series");
        std::fs::create_dir(&empty).unwrap();
        assert!(crate::check_scan(&empty, Default::default())
            .unwrap_err()
            .to_string()
            .contains("no files"));
        // a DICOM series is one volume: frame 0 or none
        std::fs::write(empty.join("slice.dcm"), b"x").unwrap();
        let e = crate::check_scan(&empty, crate::LoadOptions { frame: Some(1) })
            .unwrap_err()
            .to_string();
        assert!(e.contains("one volume"), "{e}");
        crate::check_scan(&empty, crate::LoadOptions { frame: Some(0) }).unwrap();
    }
}

#[cfg(test)]
mod geometry_tests {
    use super::*;

    fn patched(dir: &Path, name: &str, edit: impl Fn(&mut Vec<u8>)) -> std::path::PathBuf {
        let p = dir.join(name);
        let mut a = crate::geometry::IDENTITY;
        (a[0][0], a[1][1], a[2][2]) = (2.0, 2.0, 3.0);
        write_nifti(&p, &[1.0; 8], [2, 2, 2], &a).unwrap();
        let mut b = std::fs::read(&p).unwrap();
        edit(&mut b);
        std::fs::write(&p, &b).unwrap();
        p
    }

    fn f32_at(b: &mut [u8], off: usize, v: f32) {
        b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// NIfTI-1 offsets: pixdim 76, qform_code 252, sform_code 254, srow_x 280.
    #[test]
    fn unusable_sforms_fall_back_and_unusable_geometry_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // a NaN in the sform: the qform (which write_nifti also sets) takes over, and says why
        let p = patched(dir.path(), "nan.nii", |b| f32_at(b, 280, f32::NAN));
        let v = read_nifti(&p, None).unwrap();
        assert!(
            v.meta.affine_source.starts_with("qform (the sform has non-finite"),
            "{}",
            v.meta.affine_source
        );
        assert!(v.affine.iter().flatten().all(|x| x.is_finite()));
        assert!((v.affine[2][2] - 3.0).abs() < 1e-6);
        // a singular sform and no qform: pixdim, with the reason
        let no_q = |b: &mut Vec<u8>| {
            for k in 0..12 {
                f32_at(b, 280 + 4 * k, 0.0);
            }
            b[252..254].copy_from_slice(&0i16.to_le_bytes());
        };
        let p = patched(dir.path(), "singular.nii", no_q);
        let v = read_nifti(&p, None).unwrap();
        assert!(
            v.meta.affine_source.starts_with("pixdim (the sform is singular"),
            "{}",
            v.meta.affine_source
        );
        // and implausible voxel sizes on top: nothing usable is left
        let p = patched(dir.path(), "tiny.nii", |b| {
            no_q(b);
            f32_at(b, 80, 1e-30);
        });
        let e = read_nifti(&p, None).unwrap_err().to_string();
        assert!(
            e.contains("tiny.nii") && e.contains("no usable geometry") && e.contains("pixdim"),
            "{e}"
        );
    }
}
