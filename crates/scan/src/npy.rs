//! Minimal NumPy `.npy` (format 1.0) for float32 C-order arrays: the output format external tools
//! and the Python reference read.

use crate::error::{Result, ScanError};
use std::path::Path;

pub fn encode_f32(data: &[f32], shape: &[usize]) -> Vec<u8> {
    assert_eq!(data.len(), shape.iter().product::<usize>());
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // magic(6) + version(2) + len(2) + header + '\n' must be a multiple of 64
    let pad = (64 - (10 + header.len() + 1) % 64) % 64;
    header.push_str(&" ".repeat(pad));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

pub fn write_f32(path: &Path, data: &[f32], shape: &[usize]) -> Result<()> {
    crate::atomic_write(path, &encode_f32(data, shape))
}

/// Read a little-endian float32 or float64 C-order `.npy` as f32 with its shape.
pub fn read_f32(path: &Path) -> Result<(Vec<f32>, Vec<usize>)> {
    let b = std::fs::read(path).map_err(|e| ScanError::io(path, e))?;
    let bad = |m: &str| ScanError::invalid(path, format!("not a supported .npy file: {m}"));
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(bad("missing magic"));
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 => (u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize, 12),
        _ => return Err(bad("unknown version")),
    };
    let header = std::str::from_utf8(&b[start..start + hlen]).map_err(|_| bad("header is not text"))?;
    if header.contains("'fortran_order': True") {
        return Err(bad("Fortran order"));
    }
    let width = if header.contains("'<f4'") {
        4
    } else if header.contains("'<f8'") {
        8
    } else {
        return Err(bad("dtype is not <f4 or <f8"));
    };
    let s = header
        .split("'shape': (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let shape: Vec<usize> = s
        .split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.trim().parse().unwrap_or(0))
        .collect();
    let n: usize = shape.iter().product();
    let body = &b[start + hlen..];
    if body.len() < n * width {
        return Err(bad("truncated data"));
    }
    let data = if width == 4 {
        body.chunks_exact(4)
            .take(n)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    } else {
        body.chunks_exact(8)
            .take(n)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect()
    };
    Ok((data, shape))
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_alignment() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let data: Vec<f32> = (0..24).map(|v| v as f32 / 3.0).collect();
        super::write_f32(&p, &data, &[2, 3, 4]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!((bytes.len() - 24 * 4) % 64, 0);
        let (d, s) = super::read_f32(&p).unwrap();
        assert_eq!((d, s), (data, vec![2, 3, 4]));
    }
}
