//! Line and scatter charts with labelled axes, ticks, a title and a legend (plotters, SVG backend).

use std::ops::Range;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use crate::PALETTE;

/// One named curve of a [`LineChart`].
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Dashed and grey: a reference line (chance, a bound), not a result.
    pub reference: bool,
    /// Draw a marker at every point (few points, e.g. per-epoch means or a k sweep).
    pub markers: bool,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            reference: false,
            markers: false,
        }
    }
    pub fn with_markers(mut self) -> Self {
        self.markers = true;
        self
    }
    pub fn reference(mut self) -> Self {
        self.reference = true;
        self
    }
}

/// Curves over a shared pair of axes. Points that are not finite (or not positive on a log axis)
/// are left out rather than drawn at a made-up value.
#[derive(Clone, Debug)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_y: bool,
    pub series: Vec<Series>,
    /// Fixed axis ranges (e.g. 0..1 for ROC curves); otherwise the data's range with a margin.
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    /// The x values are counts (steps, epochs, k): ticks only at whole numbers.
    pub integer_x: bool,
    pub size: (u32, u32),
}

impl LineChart {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_y: false,
            series: Vec::new(),
            x_range: None,
            y_range: None,
            integer_x: false,
            size: (640, 400),
        }
    }
    pub fn integer_x(mut self) -> Self {
        self.integer_x = true;
        self
    }
    pub fn log_y(mut self, on: bool) -> Self {
        self.log_y = on;
        self
    }
    pub fn series(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }
    pub fn ranges(mut self, x: (f64, f64), y: (f64, f64)) -> Self {
        self.x_range = Some(x);
        self.y_range = Some(y);
        self
    }

    fn kept(&self, s: &Series) -> Vec<(f64, f64)> {
        s.points
            .iter()
            .copied()
            .filter(|&(x, y)| x.is_finite() && y.is_finite() && (!self.log_y || y > 0.0))
            .collect()
    }

    /// The chart as an SVG document; an error when no series has a point to draw.
    pub fn svg(&self) -> Result<String, String> {
        let all: Vec<(f64, f64)> = self.series.iter().flat_map(|s| self.kept(s)).collect();
        if all.is_empty() {
            return Err(format!("{}: nothing to plot", self.title));
        }
        // a small margin on x too, so that end markers are not cut in half by the frame
        let xr = self
            .x_range
            .unwrap_or_else(|| padded(all.iter().map(|p| p.0), 0.02, false));
        let yr = self
            .y_range
            .unwrap_or_else(|| padded(all.iter().map(|p| p.1), 0.05, self.log_y));
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, self.size).into_drawing_area();
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            let corner = emptiest_corner(&all, xr, yr, self.log_y);
            if self.log_y {
                self.draw(&root, xr.0..xr.1, (yr.0..yr.1).log_scale(), yr, corner)?;
            } else {
                self.draw(&root, xr.0..xr.1, yr.0..yr.1, yr, corner)?;
            }
            root.present().map_err(|e| e.to_string())?;
        }
        Ok(out)
    }

    fn draw<Y>(
        &self,
        root: &DrawingArea<SVGBackend, plotters::coord::Shift>,
        xr: Range<f64>,
        y: Y,
        yr: (f64, f64),
        corner: SeriesLabelPosition,
    ) -> Result<(), String>
    where
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let err = |e: DrawingAreaErrorKind<_>| e.to_string();
        let span = xr.end - xr.start;
        let integer_x = self.integer_x;
        let x_ticks = if integer_x {
            (span.round() as usize + 1).clamp(2, 11)
        } else {
            10
        };
        let x_plain = ticker(xr.start, xr.end, false);
        let y_tick = ticker(yr.0, yr.1, self.log_y);
        let x_tick = move |v: &f64| {
            if !integer_x {
                x_plain(v)
            } else if (v - v.round()).abs() < 1e-6 * span.max(1.0) {
                format!("{}", v.round() as i64)
            } else {
                String::new()
            }
        };
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(xr, y)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_labels(x_ticks)
            .x_label_formatter(&x_tick)
            .y_label_formatter(&y_tick)
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(215, 215, 215))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        let mut named = false;
        let mut colour_index = 0;
        for s in &self.series {
            let pts = self.kept(s);
            let colour = if s.reference {
                RGBColor(120, 120, 120)
            } else {
                let (r, g, b) = PALETTE[colour_index % PALETTE.len()];
                colour_index += 1;
                RGBColor(r, g, b)
            };
            let style = colour.stroke_width(2);
            let anno = if s.reference {
                chart
                    .draw_series(DashedLineSeries::new(pts.clone(), 6, 4, style))
                    .map_err(err)?
            } else {
                chart.draw_series(LineSeries::new(pts.clone(), style)).map_err(err)?
            };
            if !s.name.is_empty() {
                named = true;
                let dashed = s.reference;
                anno.label(s.name.as_str()).legend(move |(x, y)| {
                    // a dashed sample for reference lines, as they are drawn
                    let ((a0, a1), (b0, b1)) = if dashed {
                        ((0, 6), (10, 16))
                    } else {
                        ((0, 10), (10, 20))
                    };
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(a0, 0), (a1, 0)], colour.stroke_width(2))
                        + PathElement::new(vec![(b0, 0), (b1, 0)], colour.stroke_width(2))
                });
            }
            // a series of a few points would be hard to see as a line alone
            if s.markers || pts.len() < 4 {
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                    .map_err(err)?;
            }
        }
        if named {
            chart
                .configure_series_labels()
                .position(corner)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(160, 160, 160))
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(err)?;
        }
        Ok(())
    }
}

/// Points in named groups (classes), each in its own colour, with a legend.
#[derive(Clone, Debug)]
pub struct ScatterChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub groups: Vec<(String, Vec<(f64, f64)>)>,
    pub size: (u32, u32),
}

impl ScatterChart {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            groups: Vec::new(),
            size: (560, 520),
        }
    }
    pub fn group(mut self, name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        self.groups.push((name.into(), points));
        self
    }

    /// The chart as SVG; the axes extend 6 % beyond the points so that none sits on the frame.
    pub fn svg(&self) -> Result<String, String> {
        let all: Vec<(f64, f64)> = self
            .groups
            .iter()
            .flat_map(|g| g.1.iter().copied())
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        if all.is_empty() {
            return Err(format!("{}: nothing to plot", self.title));
        }
        let xr = padded(all.iter().map(|p| p.0), 0.06, false);
        let yr = padded(all.iter().map(|p| p.1), 0.06, false);
        let mut out = String::new();
        {
            let err = |e: DrawingAreaErrorKind<_>| e.to_string();
            let root = SVGBackend::with_string(&mut out, self.size).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(&self.title, ("sans-serif", 18))
                .margin(14)
                .x_label_area_size(44)
                .y_label_area_size(60)
                .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc(&self.x_label)
                .y_desc(&self.y_label)
                .x_label_formatter(&ticker(xr.0, xr.1, false))
                .y_label_formatter(&ticker(yr.0, yr.1, false))
                .light_line_style(RGBColor(240, 240, 240))
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 14))
                .draw()
                .map_err(err)?;
            for (i, (name, pts)) in self.groups.iter().enumerate() {
                let (r, g, b) = PALETTE[i % PALETTE.len()];
                let colour = RGBColor(r, g, b);
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 4, colour.mix(0.8).filled())))
                    .map_err(err)?
                    .label(format!("{name} (n = {})", pts.len()))
                    .legend(move |(x, y)| Circle::new((x + 8, y), 4, colour.filled()));
            }
            chart
                .configure_series_labels()
                .position(emptiest_corner(&all, xr, yr, false))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(160, 160, 160))
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(err)?;
            root.present().map_err(err)?;
        }
        Ok(out)
    }
}

/// The range of `values` widened by `pad` of its span on each side (a flat range by one unit); on a
/// log axis the margin is multiplicative.
fn padded(values: impl Iterator<Item = f64>, pad: f64, log: bool) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if log {
        let (l, h) = (lo.log10(), hi.log10());
        let m = ((h - l) * pad).max(0.05);
        return (10f64.powf(l - m), 10f64.powf(h + m));
    }
    if hi - lo < 1e-12 {
        return (lo - 1.0, hi + 1.0);
    }
    let m = (hi - lo) * pad;
    (lo - m, hi + m)
}

/// Tick labels for an axis over [lo, hi]: on a linear axis as many decimals as the tick spacing
/// needs (so neighbouring ticks never print alike), in scientific notation for very large or
/// small magnitudes; on a log axis each decade as it is (0.01, 1, 1e-5).
fn ticker(lo: f64, hi: f64, log: bool) -> impl Fn(&f64) -> String {
    let step = (hi - lo).abs() / 10.0;
    let magnitude = lo.abs().max(hi.abs());
    move |&v: &f64| {
        if log {
            return if (1e-3..1e5).contains(&v.abs()) {
                trim(format!("{v:.3}"))
            } else {
                format!("{v:.0e}")
            };
        }
        if v.abs() < step * 1e-6 {
            return "0".into();
        }
        if !(1e-3..1e5).contains(&magnitude) {
            let digits = ((magnitude / step.max(f64::MIN_POSITIVE)).log10().ceil().max(1.0) as usize).min(6);
            return format!("{v:.digits$e}");
        }
        let decimals = (1.0 - step.log10().floor()).clamp(0.0, 9.0) as usize;
        trim(format!("{v:.decimals$}"))
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The corner of the plot area with the fewest points, for the legend.
fn emptiest_corner(points: &[(f64, f64)], xr: (f64, f64), yr: (f64, f64), log_y: bool) -> SeriesLabelPosition {
    let fy = |y: f64| if log_y { y.max(f64::MIN_POSITIVE).log10() } else { y };
    let (ylo, yhi) = (fy(yr.0), fy(yr.1));
    let rel = |p: &(f64, f64)| {
        (
            (p.0 - xr.0) / (xr.1 - xr.0).max(1e-300),
            (fy(p.1) - ylo) / (yhi - ylo).max(1e-300),
        )
    };
    let count = |right: bool, top: bool| {
        points
            .iter()
            .map(rel)
            .filter(|&(x, y)| (if right { x > 0.6 } else { x < 0.4 }) && (if top { y > 0.7 } else { y < 0.3 }))
            .count()
    };
    [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::LowerLeft, false, false),
    ]
    .into_iter()
    .min_by_key(|(_, r, t)| count(*r, *t))
    .map(|c| c.0)
    .expect("four corners")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_svg, texts};

    #[test]
    fn line_chart_has_title_axis_labels_ticks_and_legend() {
        let svg = LineChart::new("loss per step", "step", "loss")
            .series(Series::new("total", vec![(1.0, 0.9), (2.0, 0.5), (3.0, 0.4)]))
            .series(Series::new("chance", vec![(1.0, 0.69), (3.0, 0.69)]).reference())
            .svg()
            .unwrap();
        let doc = parse_svg(&svg);
        let t = texts(&doc);
        for want in ["loss per step", "step", "loss", "total", "chance"] {
            assert!(t.iter().any(|s| s == want), "{want} missing from {t:?}");
        }
        // tick labels: numbers along both axes
        assert!(t.iter().filter(|s| s.parse::<f64>().is_ok()).count() >= 6, "{t:?}");
    }

    #[test]
    fn log_axis_drops_non_positive_values_and_labels_decades() {
        let svg = LineChart::new("psd", "radius", "power")
            .log_y(true)
            .series(Series::new(
                "a",
                vec![(0.0, 100.0), (0.5, 1.0), (1.0, 0.0), (1.5, 0.01)],
            ))
            .svg()
            .unwrap();
        let t = texts(&parse_svg(&svg));
        assert!(t.iter().any(|s| s == "1" || s == "10" || s == "100"), "{t:?}");
        let empty = LineChart::new("x", "a", "b")
            .log_y(true)
            .series(Series::new("a", vec![(0.0, -1.0)]))
            .svg();
        assert!(empty.unwrap_err().contains("nothing to plot"));
    }

    #[test]
    fn scatter_names_each_group_with_its_count_and_keeps_points_inside_the_axes() {
        let svg = ScatterChart::new("t-SNE", "t-SNE 1", "t-SNE 2")
            .group("CN", vec![(0.0, 0.0), (1.0, 1.0)])
            .group("AD", vec![(5.0, 5.0)])
            .svg()
            .unwrap();
        let doc = parse_svg(&svg);
        let t = texts(&doc);
        assert!(
            t.contains(&"CN (n = 2)".to_string()) && t.contains(&"AD (n = 1)".to_string()),
            "{t:?}"
        );
        let (lo, hi) = padded([0.0, 10.0].into_iter(), 0.06, false);
        assert!((lo + 0.6).abs() < 1e-12 && (hi - 10.6).abs() < 1e-12);
    }

    #[test]
    fn ticks_carry_the_digits_their_spacing_needs() {
        // a flat curve: 0.61314 to 0.61316 needs six decimals to tell the ticks apart
        let t = ticker(0.61314, 0.61316, false);
        assert_eq!(
            (t(&0.613142), t(&0.613144)),
            ("0.613142".to_string(), "0.613144".to_string())
        );
        let t = ticker(0.0, 10.0, false);
        assert_eq!(
            (t(&2.0), t(&2.5), t(&1e-12)),
            ("2".to_string(), "2.5".to_string(), "0".to_string())
        );
        assert_eq!(ticker(0.0, 2e6, false)(&1.5e6), "1.5e6");
        // log axes: decades as they are, tiny ones in scientific notation, never "0"
        let l = ticker(1e-12, 1e4, true);
        assert_eq!(
            (l(&1e-12), l(&0.01), l(&1000.0)),
            ("1e-12".to_string(), "0.01".to_string(), "1000".to_string())
        );
    }

    #[test]
    fn the_legend_goes_where_the_points_are_not() {
        let pts = [(0.9, 0.9), (0.95, 0.95), (0.1, 0.9), (0.9, 0.1)];
        assert!(matches!(
            emptiest_corner(&pts, (0.0, 1.0), (0.0, 1.0), false),
            SeriesLabelPosition::LowerLeft
        ));
    }
}
