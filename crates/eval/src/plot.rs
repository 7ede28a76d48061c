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

/// Line plot of several series over a shared x grid, y linear or on a log10 scale (non-positive
/// values are then skipped), series coloured in palette order.
pub fn lines_png(path: &Path, x: &[f64], series: &[Vec<f64>], side: usize, log_y: bool) -> Result<(), String> {
    let mut img = vec![255u8; side * side * 3];
    let margin = side / 16;
    let ly: Vec<Vec<Option<f64>>> = series
        .iter()
        .map(|s| {
            s.iter()
                .map(|&v| match log_y {
                    true => (v > 0.0 && v.is_finite()).then(|| v.log10()),
                    false => v.is_finite().then_some(v),
                })
                .collect()
        })
        .collect();
    let all: Vec<f64> = ly.iter().flatten().flatten().copied().collect();
    if all.is_empty() {
        return Err("nothing to plot".into());
    }
    let (ylo, yhi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let (xlo, xhi) = (x[0], x[x.len() - 1]);
    let span = (side - 2 * margin - 1) as f64;
    let px = |v: f64| margin as f64 + (v - xlo) / (xhi - xlo).max(1e-12) * span;
    let py = |v: f64| (side - margin - 1) as f64 - (v - ylo) / (yhi - ylo).max(1e-12) * span;
    let mut put = |x: i64, y: i64, c: [u8; 3]| {
        if x >= 0 && y >= 0 && (x as usize) < side && (y as usize) < side {
            let i = (y as usize * side + x as usize) * 3;
            img[i..i + 3].copy_from_slice(&c);
        }
    };
    for k in margin..side - margin {
        put(k as i64, (side - margin) as i64, [0, 0, 0]);
        put((margin - 1) as i64, k as i64, [0, 0, 0]);
    }
    for (si, s) in ly.iter().enumerate() {
        let c = PALETTE[si % PALETTE.len()];
        for i in 1..s.len() {
            if let (Some(a), Some(b)) = (s[i - 1], s[i]) {
                let (x0, y0, x1, y1) = (px(x[i - 1]), py(a), px(x[i]), py(b));
                let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
                for t in 0..=steps {
                    let f = t as f64 / steps as f64;
                    let (xx, yy) = (x0 + f * (x1 - x0), y0 + f * (y1 - y0));
                    for d in [-1i64, 0, 1] {
                        put(xx.round() as i64, yy.round() as i64 + d, c);
                    }
                }
            }
        }
    }
    let bytes = png_rgb(side, side, &img)?;
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}
