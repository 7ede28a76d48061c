//! Minimal PNG scatter plots (t-SNE maps coloured by label), without a plotting stack.

use std::path::Path;

/// Tableau-10 colours, one per class.
const PALETTE: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// Encodes an RGB image as PNG bytes.
pub fn png_rgb(width: usize, height: usize, rgb: &[u8]) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, width as u32, height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| e.to_string())?;
        w.write_image_data(rgb).map_err(|e| e.to_string())?;
    }
    Ok(bytes)
}

/// Scatter of 2-D points coloured by label, on a white square with a margin and a frame.
pub fn scatter_png(path: &Path, points: &[[f64; 2]], labels: &[usize], side: usize) -> Result<(), String> {
    let mut img = vec![255u8; side * side * 3];
    let margin = side / 16;
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for p in points {
        for d in 0..2 {
            lo[d] = lo[d].min(p[d]);
            hi[d] = hi[d].max(p[d]);
        }
    }
    let span = side - 2 * margin;
    let to_px = |v: f64, d: usize| margin + (((v - lo[d]) / (hi[d] - lo[d]).max(1e-12)) * (span - 1) as f64) as usize;
    let put = |x: usize, y: usize, c: [u8; 3], img: &mut Vec<u8>| {
        if x < side && y < side {
            let i = (y * side + x) * 3;
            img[i..i + 3].copy_from_slice(&c);
        }
    };
    for k in margin - 2..side - margin + 2 {
        for (x, y) in [
            (k, margin - 2),
            (k, side - margin + 1),
            (margin - 2, k),
            (side - margin + 1, k),
        ] {
            put(x, y, [0, 0, 0], &mut img);
        }
    }
    for (p, &l) in points.iter().zip(labels) {
        let (cx, cy) = (to_px(p[0], 0), side - 1 - to_px(p[1], 1));
        for dy in 0..5 {
            for dx in 0..5 {
                put(cx + dx - 2, cy + dy - 2, PALETTE[l % PALETTE.len()], &mut img);
            }
        }
    }
    let bytes = png_rgb(side, side, &img)?;
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}
