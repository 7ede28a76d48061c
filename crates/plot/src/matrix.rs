//! A confusion matrix as SVG: rows are true classes, columns predicted ones; each cell shows its
//! count and its share of the row (the per-class recall on the diagonal), shaded by that share.

use std::fmt::Write as _;

use crate::escape;

#[derive(Clone, Debug)]
pub struct ConfusionMatrix {
    pub title: String,
    pub class_names: Vec<String>,
    /// counts[true][predicted]
    pub counts: Vec<Vec<u64>>,
}

impl ConfusionMatrix {
    pub fn svg(&self) -> Result<String, String> {
        let c = self.class_names.len();
        if c == 0 || self.counts.len() != c || self.counts.iter().any(|r| r.len() != c) {
            return Err(format!(
                "{}: a {c}-class confusion matrix needs {c} rows of {c} counts",
                self.title
            ));
        }
        let cell = 74;
        let label_w = 10
            + 8 * self
                .class_names
                .iter()
                .map(|n| n.chars().count())
                .max()
                .unwrap_or(1)
                .max(4) as i64;
        let (left, top) = (40 + label_w, 84);
        let title_w = 20 + 9 * self.title.chars().count() as i64;
        let (w, h) = ((left + cell * c as i64 + 30).max(title_w), top + cell * c as i64 + 60);
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif">"#
        );
        let _ = write!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
        let _ = write!(
            s,
            r#"<text x="{}" y="24" font-size="17" text-anchor="middle">{}</text>"#,
            w / 2,
            escape(&self.title)
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="54" font-size="14" text-anchor="middle">predicted class</text>"#,
            left + cell * c as i64 / 2
        );
        let mid = top + cell * c as i64 / 2;
        let _ = write!(
            s,
            r#"<text x="16" y="{mid}" font-size="14" text-anchor="middle" transform="rotate(-90 16 {mid})">true class</text>"#
        );
        for (i, name) in self.class_names.iter().enumerate() {
            let x = left + cell * i as i64 + cell / 2;
            let _ = write!(
                s,
                r#"<text x="{x}" y="{}" font-size="13" text-anchor="middle">{}</text>"#,
                top - 6,
                escape(name)
            );
            let y = top + cell * i as i64 + cell / 2 + 5;
            let _ = write!(
                s,
                r#"<text x="{}" y="{y}" font-size="13" text-anchor="end">{}</text>"#,
                left - 8,
                escape(name)
            );
        }
        for (i, row) in self.counts.iter().enumerate() {
            let total: u64 = row.iter().sum();
            for (j, &n) in row.iter().enumerate() {
                let share = if total > 0 { n as f64 / total as f64 } else { 0.0 };
                let shade = |full: f64| (255.0 - share * (255.0 - full)).round() as u8;
                let (x, y) = (left + cell * j as i64, top + cell * i as i64);
                let _ = write!(
                    s,
                    r#"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="rgb({},{},{})" stroke="rgb(136,136,136)"/>"#,
                    shade(31.0),
                    shade(119.0),
                    shade(180.0)
                );
                let ink = if share > 0.55 { "white" } else { "black" };
                let _ = write!(
                    s,
                    r#"<text x="{}" y="{}" font-size="16" text-anchor="middle" fill="{ink}">{n}</text>"#,
                    x + cell / 2,
                    y + cell / 2
                );
                let pct = if total > 0 {
                    format!("{:.0} %", 100.0 * share)
                } else {
                    "–".into()
                };
                let _ = write!(
                    s,
                    r#"<text x="{}" y="{}" font-size="11" text-anchor="middle" fill="{ink}">{pct}</text>"#,
                    x + cell / 2,
                    y + cell / 2 + 17
                );
            }
        }
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="middle" fill="rgb(85,85,85)">percent of the true class's scans</text>"#,
            left + cell * c as i64 / 2,
            top + cell * c as i64 + 22
        );
        s.push_str("</svg>\n");
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_svg, texts};

    #[test]
    fn cells_show_counts_and_row_shares_under_class_names() {
        let m = ConfusionMatrix {
            title: "test split".into(),
            class_names: vec!["CN".into(), "AD & MCI".into()],
            counts: vec![vec![9, 1], vec![3, 7]],
        };
        let svg = m.svg().unwrap();
        let doc = parse_svg(&svg);
        let t = texts(&doc);
        for want in [
            "test split",
            "predicted class",
            "true class",
            "CN",
            "AD & MCI",
            "9",
            "90 %",
            "30 %",
            "70 %",
        ] {
            assert!(t.iter().any(|s| s == want), "{want} missing from {t:?}");
        }
        let bad = ConfusionMatrix {
            counts: vec![vec![1]],
            ..m
        };
        assert!(bad.svg().is_err());
    }
}
