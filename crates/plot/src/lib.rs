//! Figures for runs and reports, written as SVG so that they need no font files, stay sharp at any
//! size and can be inlined into one self-contained HTML page. Charts are drawn with plotters; the
//! confusion matrix and image panels are plain SVG.

mod chart;
mod matrix;
mod panels;

pub use chart::{LineChart, ScatterChart, Series};
pub use matrix::ConfusionMatrix;
pub use panels::{GrayImage, PanelGrid};

/// Tableau-10: distinct colours for up to ten series or classes, then repeated.
pub const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// Text for SVG content and attributes.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
pub(crate) fn parse_svg(svg: &str) -> roxmltree::Document<'_> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not well-formed SVG: {e}\n{svg}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc
}

#[cfg(test)]
pub(crate) fn texts(doc: &roxmltree::Document) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.tag_name().name() == "text")
        .map(|n| {
            let t: String = n
                .descendants()
                .filter(|t| t.is_text())
                .filter_map(|t| t.text())
                .collect();
            t.trim().to_string()
        })
        .collect()
}
