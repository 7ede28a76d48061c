//! DICOM to volume: a folder holding one series of single-frame slices, or one Enhanced (multi-frame)
//! object. Slices are ordered by position along the slice normal, rescaled with their own
//! slope/intercept, and the affine is built from ImagePositionPatient / ImageOrientationPatient and
//! converted from DICOM's LPS to RAS.

use crate::error::{Result, ScanError};
use crate::geometry::Affine;
use crate::volume::{sanitize, ScanMeta, Volume};
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use dicom_pixeldata::{ConvertOptions, ModalityLutOption, PixelDecoder};
use std::path::{Path, PathBuf};

/// `.dcm` extension, or the "DICM" magic after the 128-byte preamble.
pub fn looks_like_dicom(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("dcm")) {
        return true;
    }
    // opening a FIFO would block until a writer appears
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut buf = [0u8; 132];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .is_ok()
        && &buf[128..132] == b"DICM"
}

/// Open a DICOM file. Files padded with zeros after the pixel data (which some archives write and
/// pydicom tolerates) are cut at the end of the pixel data element and parsed again.
fn open(path: &Path) -> Result<DefaultDicomObject> {
    // element lengths are checked against the file before the library allocates for them
    let bytes = std::fs::read(path).map_err(|e| ScanError::io(path, e))?;
    crate::dicom_bounds::check_lengths(&bytes).map_err(|e| ScanError::invalid(path, format!("corrupt DICOM: {e}")))?;
    drop(bytes);
    match OpenFileOptions::new().open_file(path) {
        Ok(o) => Ok(o),
        Err(first) => {
            let bytes = std::fs::read(path).map_err(|e| ScanError::io(path, e))?;
            let end = pixel_data_end(&bytes)
                .filter(|&end| end < bytes.len() && bytes[end..].iter().all(|&b| b == 0))
                .ok_or_else(|| ScanError::invalid(path, format!("cannot parse DICOM ({first})")))?;
            let start = if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
                128
            } else {
                0
            };
            OpenFileOptions::new()
                .from_reader(&bytes[start..end])
                .map_err(|e| ScanError::invalid(path, format!("cannot parse DICOM ({e})")))
        }
    }
}

/// Byte offset just past a native (not encapsulated) little-endian PixelData element.
fn pixel_data_end(b: &[u8]) -> Option<usize> {
    let tag = [0xE0u8, 0x7F, 0x10, 0x00];
    let find = |pat: &[u8]| b.windows(pat.len()).rposition(|w| w == pat);
    let u32_at = |o: usize| {
        b.get(o..o + 4)
            .map(|s| u32::from_le_bytes(s.try_into().unwrap()) as usize)
    };
    for vr in [b"OW", b"OB"] {
        let pat = [&tag[..], &vr[..]].concat();
        if let Some(p) = find(&pat) {
            let len = u32_at(p + 8)?;
            return (len != 0xFFFF_FFFF).then_some(p + 12 + len);
        }
    }
    let p = find(&tag)?;
    let len = u32_at(p + 4)?;
    (len != 0xFFFF_FFFF).then_some(p + 8 + len)
}

/// One 2-D image with its geometry.
struct Slice {
    position: Option<[f64; 3]>,
    orientation: Option<[f64; 6]>,
    pixel_spacing: [f64; 2],
    thickness: Option<f64>,
    rows: usize,
    cols: usize,
    pixels: Vec<f32>,
}

fn floats(obj: &InMemDicomObject, tag: dicom_object::Tag) -> Option<Vec<f64>> {
    obj.get(tag).and_then(|e| e.to_multi_float64().ok())
}

fn float(obj: &InMemDicomObject, tag: dicom_object::Tag) -> Option<f64> {
    floats(obj, tag).and_then(|v| v.first().copied())
}

fn text(obj: &InMemDicomObject, tag: dicom_object::Tag) -> Option<String> {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim().trim_end_matches('\0').to_string())
}

/// First item of a sequence attribute.
fn item(obj: &InMemDicomObject, tag: dicom_object::Tag) -> Option<&InMemDicomObject> {
    obj.get(tag).and_then(|e| e.items()).and_then(|i| i.first())
}

/// Value of `tag` inside sequence `seq`, looked up in the per-frame group first, then the shared one.
fn functional(
    frame: Option<&InMemDicomObject>,
    shared: Option<&InMemDicomObject>,
    seq: dicom_object::Tag,
    tag: dicom_object::Tag,
) -> Option<Vec<f64>> {
    [frame, shared]
        .into_iter()
        .flatten()
        .find_map(|g| item(g, seq).and_then(|s| floats(s, tag)))
}

fn frames_f32(path: &Path, obj: &DefaultDicomObject) -> Result<Vec<Vec<f32>>> {
    let decoded = obj
        .decode_pixel_data()
        .map_err(|e| ScanError::invalid(path, format!("cannot decode pixel data ({e})")))?;
    if decoded.samples_per_pixel() != 1 {
        return Err(ScanError::invalid(
            path,
            "colour DICOM images are not supported; MR volumes are greyscale",
        ));
    }
    let opts = ConvertOptions::new().with_modality_lut(ModalityLutOption::None);
    (0..decoded.number_of_frames())
        .map(|f| {
            decoded
                .to_vec_frame_with_options::<f32>(f, &opts)
                .map_err(|e| ScanError::invalid(path, format!("cannot convert frame {f} ({e})")))
        })
        .collect()
}

fn read_slices(path: &Path) -> Result<(Vec<Slice>, Option<String>)> {
    let obj = open(path)?;
    let rows = obj.get(tags::ROWS).and_then(|e| e.to_int::<u32>().ok()).unwrap_or(0) as usize;
    let cols = obj.get(tags::COLUMNS).and_then(|e| e.to_int::<u32>().ok()).unwrap_or(0) as usize;
    if rows == 0 || cols == 0 {
        return Err(ScanError::invalid(
            path,
            "DICOM object without image (Rows/Columns missing or zero)",
        ));
    }
    let series = text(&obj, tags::SERIES_INSTANCE_UID);
    let frames = frames_f32(path, &obj)?;
    let shared = item(&obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    let per_frame = obj
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items());
    let mut out = Vec::with_capacity(frames.len());
    for (f, mut pixels) in frames.into_iter().enumerate() {
        let fg = per_frame.and_then(|p| p.get(f));
        let enhanced = per_frame.is_some();
        let get = |seq, tag| {
            if enhanced {
                functional(fg, shared, seq, tag)
            } else {
                floats(&obj, tag)
            }
        };
        let position = get(tags::PLANE_POSITION_SEQUENCE, tags::IMAGE_POSITION_PATIENT);
        let orientation = get(tags::PLANE_ORIENTATION_SEQUENCE, tags::IMAGE_ORIENTATION_PATIENT);
        let spacing = get(tags::PIXEL_MEASURES_SEQUENCE, tags::PIXEL_SPACING);
        let thickness = get(tags::PIXEL_MEASURES_SEQUENCE, tags::SLICE_THICKNESS)
            .and_then(|v| v.first().copied())
            .or_else(|| float(&obj, tags::SPACING_BETWEEN_SLICES))
            .or_else(|| float(&obj, tags::SLICE_THICKNESS));
        let slope =
            get(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, tags::RESCALE_SLOPE).and_then(|v| v.first().copied());
        let inter =
            get(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, tags::RESCALE_INTERCEPT).and_then(|v| v.first().copied());
        let (slope, inter) = (slope.unwrap_or(1.0), inter.unwrap_or(0.0));
        if slope != 1.0 || inter != 0.0 {
            for v in pixels.iter_mut() {
                *v = (*v as f64 * slope + inter) as f32;
            }
        }
        let spacing = spacing
            .filter(|s| s.len() >= 2 && s[0] > 0.0 && s[1] > 0.0)
            .unwrap_or(vec![1.0, 1.0]);
        out.push(Slice {
            position: position.filter(|p| p.len() >= 3).map(|p| [p[0], p[1], p[2]]),
            orientation: orientation.filter(|o| o.len() >= 6).map(|o| o[..6].try_into().unwrap()),
            pixel_spacing: [spacing[0], spacing[1]],
            thickness,
            rows,
            cols,
            pixels,
        });
    }
    Ok((out, series))
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Stack slices into a volume, ordered along the slice normal; `origin` names the source in errors.
/// Frames of one multi-frame object without plane geometry (`in_file_order`) keep their stored order
/// and get an axis-aligned affine from the pixel spacing and slice spacing.
fn stack(origin: &Path, mut slices: Vec<Slice>, format: &str, in_file_order: bool) -> Result<Volume> {
    let (rows, cols) = (slices[0].rows, slices[0].cols);
    let thickness = slices[0].thickness;
    let located = slices.iter().all(|s| s.position.is_some() && s.orientation.is_some());
    if !located && !in_file_order {
        return Err(ScanError::invalid(
            origin,
            "ImagePositionPatient/ImageOrientationPatient missing: cannot order the slices",
        ));
    }
    if !located {
        for (k, s) in slices.iter_mut().enumerate() {
            s.orientation = Some([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
            s.position = Some([0.0, 0.0, k as f64 * thickness.filter(|t| *t > 0.0).unwrap_or(1.0)]);
        }
    }
    let iop = slices[0].orientation.unwrap();
    for s in &slices {
        if s.rows != rows || s.cols != cols {
            return Err(ScanError::invalid(
                origin,
                "slices differ in size; the folder mixes series",
            ));
        }
        if s.orientation
            .unwrap()
            .iter()
            .zip(iop.iter())
            .any(|(a, b)| (a - b).abs() > 1e-3)
        {
            return Err(ScanError::invalid(
                origin,
                "slices differ in orientation; the folder mixes series",
            ));
        }
    }
    let pos = |s: &Slice| s.position.unwrap();
    // IOP is stored as decimal strings with few digits; normalise so spacing is not skewed.
    let unit = |v: [f64; 3]| {
        let n = dot(v, v).sqrt();
        if n > 0.0 {
            v.map(|c| c / n)
        } else {
            v
        }
    };
    let row_dir = unit([iop[0], iop[1], iop[2]]);
    let col_dir = unit([iop[3], iop[4], iop[5]]);
    let normal = cross(row_dir, col_dir);
    slices.sort_by(|a, b| dot(pos(a), normal).total_cmp(&dot(pos(b), normal)));
    let n = slices.len();
    let k_vec = if n > 1 {
        let d: Vec<f64> = slices
            .windows(2)
            .map(|w| dot(pos(&w[1]), normal) - dot(pos(&w[0]), normal))
            .collect();
        let mut sorted = d.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        if median <= 1e-6 || d.iter().any(|&x| x <= 1e-6) {
            return Err(ScanError::invalid(
                origin,
                "two slices share a position (several echoes, phases or series in one folder?)",
            ));
        }
        if d.iter().any(|&x| (x - median).abs() > 0.2 * median) {
            return Err(ScanError::invalid(
                origin,
                format!(
                    "uneven slice spacing (median {median:.3} mm, range {:.3}..{:.3}): missing slices?",
                    sorted[0],
                    sorted[sorted.len() - 1]
                ),
            ));
        }
        let (p0, p1) = (pos(&slices[0]), pos(&slices[n - 1]));
        [0, 1, 2].map(|c| (p1[c] - p0[c]) / (n - 1) as f64)
    } else {
        let t = thickness.filter(|t| *t > 0.0).unwrap_or(1.0);
        normal.map(|c| c * t)
    };
    let [dr, dc] = slices[0].pixel_spacing;
    let p0 = pos(&slices[0]);
    // LPS → RAS: negate the x and y rows.
    let flip = [-1.0, -1.0, 1.0];
    let mut affine: Affine = crate::geometry::IDENTITY;
    for r in 0..3 {
        affine[r][0] = flip[r] * row_dir[r] * dc;
        affine[r][1] = flip[r] * col_dir[r] * dr;
        affine[r][2] = flip[r] * k_vec[r];
        affine[r][3] = flip[r] * p0[r];
    }
    if let Some(why) = crate::geometry::affine_problem(&affine) {
        return Err(ScanError::invalid(
            origin,
            format!("the geometry from ImagePositionPatient / ImageOrientationPatient / PixelSpacing {why}"),
        ));
    }
    let mut data = Vec::with_capacity(rows * cols * n);
    for s in slices {
        data.extend_from_slice(&s.pixels);
    }
    let non_finite = sanitize(&mut data);
    Ok(Volume {
        data,
        dims: [cols, rows, n],
        affine,
        meta: ScanMeta {
            format: format.to_string(),
            datatype: "dicom".into(),
            affine_source: if located {
                "dicom"
            } else {
                "dicom (no plane geometry: axis-aligned default)"
            }
            .into(),
            non_finite,
            raw_dims: vec![cols, rows, n],
        },
    })
}

/// One DICOM file: an Enhanced multi-frame object or a single slice.
pub fn read_dicom_file(path: &Path) -> Result<Volume> {
    let (slices, _) = read_slices(path)?;
    let format = if slices.len() > 1 {
        "DICOM multi-frame"
    } else {
        "DICOM single slice"
    };
    stack(path, slices, format, true)
}

/// A folder of single-frame files from one series.
pub fn read_dicom_dir(dir: &Path) -> Result<Volume> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ScanError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            !name.starts_with('.') && name != "DICOMDIR"
        })
        .filter(|p| looks_like_dicom(p))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ScanError::invalid(dir, "folder holds no DICOM files"));
    }
    let parsed: Vec<(Vec<Slice>, Option<String>)> = {
        use rayon::prelude::*;
        files.par_iter().map(|f| read_slices(f)).collect::<Result<_>>()?
    };
    let mut series: Vec<String> = parsed.iter().filter_map(|(_, s)| s.clone()).collect();
    series.sort();
    series.dedup();
    if series.len() > 1 {
        return Err(ScanError::invalid(
            dir,
            format!(
                "folder holds {} series ({}); point brainssl at a folder with one",
                series.len(),
                series.join(", ")
            ),
        ));
    }
    let slices: Vec<Slice> = parsed.into_iter().flat_map(|(s, _)| s).collect();
    stack(dir, slices, "DICOM series", false)
}
