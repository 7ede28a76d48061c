//! Grayscale image panels in a labelled grid (e.g. input / masked input / reconstruction × three
//! planes), each drawn at its own pixel aspect ratio, embedded as PNG in one SVG file.

use std::fmt::Write as _;

use base64::Engine;

use crate::escape;

/// An 8-bit grayscale image, row-major, first row on top.
#[derive(Clone, Debug)]
pub struct GrayImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
    /// Height of one pixel relative to its width (e.g. slice spacing over in-plane spacing).
    pub pixel_aspect: f64,
}

impl GrayImage {
    fn png(&self) -> Result<Vec<u8>, String> {
        let mut bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().map_err(|e| e.to_string())?;
            w.write_image_data(&self.pixels).map_err(|e| e.to_string())?;
        }
        Ok(bytes)
    }
}

/// Rows × columns of images with a title, row labels on the left and column labels on top.
#[derive(Clone, Debug)]
pub struct PanelGrid {
    pub title: String,
    pub row_labels: Vec<String>,
    pub col_labels: Vec<String>,
    /// panels[row][col]
    pub panels: Vec<Vec<GrayImage>>,
    pub note: String,
    /// On-screen pixels per image pixel (the images are small; browsers scale them without smoothing).
    pub scale: f64,
}

impl PanelGrid {
    pub fn svg(&self) -> Result<String, String> {
        let rows = self.panels.len();
        let cols = self.col_labels.len();
        if rows != self.row_labels.len() || self.panels.iter().any(|r| r.len() != cols) {
            return Err(format!(
                "{}: {rows} rows of panels for {} row labels and {cols} columns",
                self.title,
                self.row_labels.len()
            ));
        }
        // a column is as wide as its widest panel, a row as tall as its tallest
        let size = |im: &GrayImage| {
            (
                im.width as f64 * self.scale,
                im.height as f64 * im.pixel_aspect * self.scale,
            )
        };
        let col_w: Vec<f64> = (0..cols)
            .map(|c| self.panels.iter().map(|r| size(&r[c]).0).fold(0.0, f64::max))
            .collect();
        let row_h: Vec<f64> = self
            .panels
            .iter()
            .map(|r| r.iter().map(|p| size(p).1).fold(0.0, f64::max))
            .collect();
        let label_w = 16.0 + 7.5 * self.row_labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
        let (left, top, gap) = (label_w, 62.0, 6.0);
        let w = left + col_w.iter().sum::<f64>() + gap * cols as f64 + 10.0;
        let h = top + row_h.iter().sum::<f64>() + gap * rows as f64 + 30.0;
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="sans-serif">"#
        );
        let _ = write!(s, r#"<rect width="{w:.0}" height="{h:.0}" fill="white"/>"#);
        let _ = write!(
            s,
            r#"<text x="{:.0}" y="22" font-size="16" text-anchor="middle">{}</text>"#,
            w / 2.0,
            escape(&self.title)
        );
        let mut x = left;
        for (c, label) in self.col_labels.iter().enumerate() {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle">{}</text>"#,
                x + col_w[c] / 2.0,
                top - 10.0,
                escape(label)
            );
            x += col_w[c] + gap;
        }
        let mut y = top;
        for (r, row) in self.panels.iter().enumerate() {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="end">{}</text>"#,
                left - 8.0,
                y + row_h[r] / 2.0 + 4.0,
                escape(&self.row_labels[r])
            );
            let mut x = left;
            for (c, im) in row.iter().enumerate() {
                let (pw, ph) = size(im);
                let b64 = base64::engine::general_purpose::STANDARD.encode(im.png()?);
                let _ = write!(
                    s,
                    r#"<image x="{:.1}" y="{:.1}" width="{pw:.1}" height="{ph:.1}" preserveAspectRatio="none" style="image-rendering:pixelated" href="data:image/png;base64,{b64}"/>"#,
                    x + (col_w[c] - pw) / 2.0,
                    y + (row_h[r] - ph) / 2.0
                );
                x += col_w[c] + gap;
            }
            y += row_h[r] + gap;
        }
        if !self.note.is_empty() {
            let _ = write!(
                s,
                r#"<text x="{left:.1}" y="{:.1}" font-size="11" fill="rgb(85,85,85)">{}</text>"#,
                h - 10.0,
                escape(&self.note)
            );
        }
        s.push_str("</svg>\n");
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_svg, texts};

    #[test]
    fn panels_keep_their_aspect_and_carry_labels() {
        let im = |w, h, a| GrayImage {
            width: w,
            height: h,
            pixels: vec![128; w * h],
            pixel_aspect: a,
        };
        let g = PanelGrid {
            title: "epoch 3".into(),
            row_labels: vec!["input".into(), "reconstruction".into()],
            col_labels: vec!["axial".into(), "coronal".into()],
            panels: vec![
                vec![im(64, 64, 1.0), im(64, 32, 2.0)],
                vec![im(64, 64, 1.0), im(64, 32, 2.0)],
            ],
            note: "depth stretched ×2".into(),
            scale: 3.0,
        };
        let svg = g.svg().unwrap();
        let doc = parse_svg(&svg);
        let t = texts(&doc);
        for want in [
            "epoch 3",
            "input",
            "reconstruction",
            "axial",
            "coronal",
            "depth stretched ×2",
        ] {
            assert!(t.iter().any(|s| s == want), "{want} missing from {t:?}");
        }
        // a 64 × 32 panel with pixels twice as tall as wide is drawn square, 3 screen pixels per pixel
        let images: Vec<_> = doc.descendants().filter(|n| n.tag_name().name() == "image").collect();
        assert_eq!(images.len(), 4);
        assert_eq!(images[1].attribute("width"), Some("192.0"));
        assert_eq!(images[1].attribute("height"), Some("192.0"));
        let mut bad = g.clone();
        bad.row_labels.pop();
        assert!(bad.svg().is_err());
    }
}
