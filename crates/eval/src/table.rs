//! One table type for every result that is shown as a table: rendered to Markdown (summaries and
//! the report), HTML (the report) and CSV (for other tools), and stored as JSON so that the report
//! reads the values rather than parsing Markdown back.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Shown above the table (may be empty).
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Footnotes, shown below the table.
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, columns: &[&str]) -> Self {
        Self {
            title: title.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            ..Self::default()
        }
    }

    /// Appends a row; it must have one cell per column.
    pub fn push(&mut self, row: Vec<String>) {
        assert_eq!(
            row.len(),
            self.columns.len(),
            "table '{}': a row of {} cells for {} columns",
            self.title,
            row.len(),
            self.columns.len()
        );
        self.rows.push(row);
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// A GitHub-flavoured Markdown table, with the title in bold above it and the notes below.
    pub fn to_markdown(&self) -> String {
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let mut s = String::new();
        if !self.title.is_empty() {
            let _ = write!(s, "**{}**\n\n", self.title);
        }
        let _ = writeln!(
            s,
            "| {} |",
            self.columns.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
        );
        let _ = writeln!(s, "|{}", "---|".repeat(self.columns.len()));
        for r in &self.rows {
            let _ = writeln!(s, "| {} |", r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | "));
        }
        for n in &self.notes {
            let _ = write!(s, "\n{n}\n");
        }
        s
    }

    /// An HTML table with the title as its caption and the notes after it.
    pub fn to_html(&self) -> String {
        let mut s = String::from("<table>");
        if !self.title.is_empty() {
            let _ = write!(s, "<caption>{}</caption>", escape_html(&self.title));
        }
        s.push_str("<thead><tr>");
        for c in &self.columns {
            let _ = write!(s, "<th>{}</th>", escape_html(c));
        }
        s.push_str("</tr></thead><tbody>\n");
        for r in &self.rows {
            s.push_str("<tr>");
            for c in r {
                let _ = write!(s, "<td>{}</td>", escape_html(c));
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</tbody></table>\n");
        for n in &self.notes {
            let _ = writeln!(s, "<p class=\"note\">{}</p>", escape_html(n));
        }
        s
    }

    /// CSV with the columns as header (title and notes are left out).
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.columns).expect("in-memory CSV");
        for r in &self.rows {
            w.write_record(r).expect("in-memory CSV");
        }
        String::from_utf8(w.into_inner().expect("in-memory CSV")).expect("UTF-8 cells")
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a table serialises")
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}

pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `mean ± sd` with `digits` decimals.
pub fn format_mean_sd(mean: f64, sd: f64, digits: usize) -> String {
    format!("{mean:.digits$} ± {sd:.digits$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new("frozen probes", &["encoder", "AUROC"]);
        t.push(vec!["mae | big".into(), "0.910".into()]);
        t.push(vec!["<random>".into(), "0.5".into()]);
        t.note("† did not learn");
        t
    }

    #[test]
    fn markdown_escapes_pipes_and_keeps_the_shape() {
        let md = sample().to_markdown();
        assert_eq!(
            md,
            "**frozen probes**\n\n| encoder | AUROC |\n|---|---|\n| mae \\| big | 0.910 |\n| <random> | 0.5 |\n\n† did not learn\n"
        );
    }

    #[test]
    fn html_escapes_and_csv_quotes() {
        let h = sample().to_html();
        assert!(
            h.contains("<caption>frozen probes</caption>") && h.contains("<td>&lt;random&gt;</td>"),
            "{h}"
        );
        assert!(h.contains("<p class=\"note\">† did not learn</p>"));
        let mut t = Table::new("", &["a", "b"]);
        t.push(vec!["x,y".into(), "say \"hi\"".into()]);
        assert_eq!(t.to_csv(), "a,b\n\"x,y\",\"say \"\"hi\"\"\"\n");
    }

    #[test]
    fn json_round_trip() {
        let t = sample();
        assert_eq!(Table::from_json(&t.to_json()).unwrap(), t);
    }

    #[test]
    #[should_panic(expected = "a row of 1 cells for 2 columns")]
    fn rows_must_fit_the_columns() {
        Table::new("t", &["a", "b"]).push(vec!["x".into()]);
    }
}
