//! Content-addressed on-disk cache of the deterministic preprocessing stage (RAS+ foreground crop),
//! so later epochs skip NIfTI decompression, decoding and reorientation.
//!
//! Key: BLAKE3 of the scan's bytes (every file of a DICOM folder), the mask's bytes, the manifest
//! box, the margin and the format version. Integer-valued crops are stored losslessly as u8/i16;
//! others as f16 scaled into range (relative error ≤ 2⁻¹¹), or f32 with `lossless`.

use anyhow::{bail, Context, Result};
use brainssl_prep::foreground::ras_foreground;
use brainssl_prep::{crop_foreground, Cropped};
use brainssl_scan::{load_scan, LoadOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::manifest::ManifestRow;

const MAGIC: &[u8; 8] = b"BSSLCRP1";

/// Load a manifest row up to the cacheable stage: RAS+ view cropped to its box plus margin.
/// The box comes from the manifest, else from the row's `mask_path`, else from voxels != 0.
pub fn load_cropped(row: &ManifestRow, margin: usize) -> Result<Cropped> {
    let v = load_scan(&row.path, row.load_options())?;
    if v.meta.non_finite > 0 {
        eprintln!(
            "warning: {}: {} non-finite voxels set to 0",
            row.path.display(),
            v.meta.non_finite
        );
    }
    let fg = match row.bbox {
        Some(b) => b,
        None => {
            let mask = match row.extra.get("mask_path").filter(|m| !m.is_empty()) {
                Some(m) => Some(load_scan(Path::new(m), LoadOptions::default())?),
                None => None,
            };
            ras_foreground(&v, mask.as_ref()).map_err(|e| anyhow::anyhow!("{}: {e}", row.path.display()))?
        }
    };
    crop_foreground(&v, fg, margin).map_err(|e| anyhow::anyhow!("{}: {e}", row.path.display()))
}

#[derive(Debug, Clone)]
pub struct CropCache {
    pub dir: PathBuf,
    pub lossless: bool,
    /// Content keys already computed in this process, by file identity (path, size, mtime of the
    /// scan and mask): later epochs stat the files instead of hashing their bytes again.
    memo: Arc<Mutex<HashMap<String, String>>>,
}

/// Path, size and modification time of a file (or of every file of a DICOM folder).
fn identity(p: &Path, out: &mut String) {
    let mut one = |f: &Path| {
        let m = std::fs::metadata(f).ok();
        let mtime = m
            .as_ref()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        out.push_str(&format!("{}|{:?}|{:?};", f.display(), m.map(|m| m.len()), mtime));
    };
    if p.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        files.iter().for_each(|f| one(f));
    } else {
        one(p);
    }
}

/// The frame's part of a key: empty for 3-D scans, so their keys are those of earlier versions.
fn frame_key(row: &ManifestRow) -> String {
    row.frame.map(|f| format!("|frame {f}")).unwrap_or_default()
}

/// Feeds the bytes of a file (or of every file of a DICOM folder, with their names) to `h`.
pub(crate) fn hash_path(h: &mut blake3::Hasher, p: &Path) -> Result<()> {
    if p.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(p)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| f.is_file())
            .collect();
        files.sort();
        for f in files {
            h.update(f.file_name().unwrap_or_default().as_encoded_bytes());
            h.update_reader(std::fs::File::open(&f)?)
                .with_context(|| f.display().to_string())?;
        }
    } else {
        let f = std::fs::File::open(p).with_context(|| format!("{}: cannot open", p.display()))?;
        h.update_reader(f).with_context(|| p.display().to_string())?;
    }
    Ok(())
}

impl CropCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CropCache {
            dir: dir.into(),
            lossless: false,
            memo: Arc::default(),
        }
    }

    pub fn key(&self, row: &ManifestRow, margin: usize) -> Result<String> {
        let mut id = format!("{:?}|{margin}|{}|{}|", row.bbox, self.lossless, frame_key(row));
        identity(&row.path, &mut id);
        if let Some(m) = row.extra.get("mask_path").filter(|m| !m.is_empty()) {
            identity(Path::new(m), &mut id);
        }
        if let Some(k) = self.memo.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return Ok(k.clone());
        }
        let key = self.content_key(row, margin)?;
        self.memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, key.clone());
        Ok(key)
    }

    fn content_key(&self, row: &ManifestRow, margin: usize) -> Result<String> {
        let mut h = blake3::Hasher::new();
        h.update(MAGIC);
        hash_path(&mut h, &row.path)?;
        if row.bbox.is_none() {
            if let Some(m) = row.extra.get("mask_path").filter(|m| !m.is_empty()) {
                hash_path(&mut h, Path::new(m))?;
            }
        }
        h.update(format!("{:?}|{margin}|{}{}", row.bbox, self.lossless, frame_key(row)).as_bytes());
        Ok(h.finalize().to_hex()[..32].to_string())
    }

    fn path_of(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{key}.crop"))
    }

    /// Cached crop, computing and storing it on a miss. A corrupt entry is recomputed.
    pub fn get(&self, row: &ManifestRow, margin: usize) -> Result<Cropped> {
        let key = self.key(row, margin)?;
        let p = self.path_of(&key);
        if let Ok(bytes) = std::fs::read(&p) {
            if let Ok(c) = decode(&bytes) {
                return Ok(c);
            }
        }
        let c = load_cropped(row, margin)?;
        let bytes = encode(&c, self.lossless);
        brainssl_scan::atomic_write(&p, &bytes)?;
        // Return what the cache holds, so a miss and a later hit give identical samples.
        decode(&bytes)
    }
}

pub fn encode(c: &Cropped, lossless: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + c.data.len() * 2);
    out.extend_from_slice(MAGIC);
    for s in c.shape {
        out.extend_from_slice(&(s as u64).to_le_bytes());
    }
    for row in c.affine {
        for v in row {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    let integral = c.data.iter().all(|v| v.fract() == 0.0);
    let (lo, hi) = c
        .data
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    if integral && lo >= 0.0 && hi <= 255.0 {
        out.push(0);
        out.extend(c.data.iter().map(|&v| v as u8));
    } else if integral && lo >= -32768.0 && hi <= 32767.0 {
        out.push(1);
        c.data
            .iter()
            .for_each(|&v| out.extend_from_slice(&(v as i16).to_le_bytes()));
    } else if !lossless {
        out.push(2);
        let maxabs = lo.abs().max(hi.abs()).max(f32::MIN_POSITIVE);
        let scale = if maxabs > 60000.0 { maxabs / 60000.0 } else { 1.0 };
        out.extend_from_slice(&scale.to_le_bytes());
        c.data
            .iter()
            .for_each(|&v| out.extend_from_slice(&half::f16::from_f32(v / scale).to_le_bytes()));
    } else {
        out.push(3);
        c.data.iter().for_each(|&v| out.extend_from_slice(&v.to_le_bytes()));
    }
    out
}

pub fn decode(b: &[u8]) -> Result<Cropped> {
    if b.len() < 8 + 24 + 128 + 1 || &b[..8] != MAGIC {
        bail!("not a brainssl cache entry");
    }
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    let shape = [u64_at(8), u64_at(16), u64_at(24)];
    let mut affine = [[0.0; 4]; 4];
    for (r, row) in affine.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = f64::from_le_bytes(b[32 + 8 * (4 * r + c)..40 + 8 * (4 * r + c)].try_into().unwrap());
        }
    }
    let n: usize = shape.iter().product();
    let body = &b[161..];
    let data: Vec<f32> = match b[160] {
        0 if body.len() == n => body.iter().map(|&v| v as f32).collect(),
        1 if body.len() == 2 * n => body
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32)
            .collect(),
        2 if body.len() == 4 + 2 * n => {
            let scale = f32::from_le_bytes(body[..4].try_into().unwrap());
            body[4..]
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32() * scale)
                .collect()
        }
        3 if body.len() == 4 * n => body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        _ => bail!("corrupt cache entry"),
    };
    Ok(Cropped { data, shape, affine })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip() {
        let affine = brainssl_scan::geometry::IDENTITY;
        for (data, exact) in [
            (vec![0.0, 3.0, 255.0, 7.0], true),
            (vec![-5.0, 3000.0, 1.0, 0.0], true),
            (vec![0.5, -1.25, 1e5, 3.3], false),
        ] {
            let c = Cropped {
                data: data.clone(),
                shape: [1, 2, 2],
                affine,
            };
            let back = decode(&encode(&c, false)).unwrap();
            for (a, b) in back.data.iter().zip(&data) {
                if exact {
                    assert_eq!(a, b);
                } else {
                    assert!((a - b).abs() <= b.abs() * 1e-3 + 0.05, "{a} {b}");
                }
            }
            assert_eq!(decode(&encode(&c, true)).unwrap().data, data);
        }
        assert!(decode(b"garbage").is_err());
    }
}
