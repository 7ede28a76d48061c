//! `brainssl report RUN_DIR...`: one self-contained HTML page (images inlined) plus the same tables
//! as Markdown, from the folders that `pretrain`, `probe`/`finetune`, `cv`, `tsne`, `psd` and `demo`
//! write. Each folder is recognised by its files; a demo folder is expanded into its runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine;
use clap::Args;

#[derive(Args)]
pub struct ReportArgs {
    /// Run folders (pretraining runs, probe/finetune runs, cv, tsne or psd outputs, a demo folder)
    #[arg(required = true, num_args = 1..)]
    pub runs: Vec<PathBuf>,
    /// The HTML file; report.md is written beside it
    #[arg(long, default_value = "report.html")]
    pub out: PathBuf,
}

#[derive(Default)]
struct Report {
    html: String,
    md: String,
}

impl Report {
    fn heading(&mut self, text: &str) {
        let _ = writeln!(self.html, "<h2>{}</h2>", escape(text));
        let _ = write!(self.md, "\n## {text}\n\n");
    }
    fn para(&mut self, text: &str) {
        let _ = writeln!(self.html, "<p>{}</p>", escape(text));
        let _ = writeln!(self.md, "{text}\n");
    }
    /// A Markdown table, also rendered as an HTML table.
    fn table(&mut self, md: &str) {
        let _ = writeln!(self.md, "{}\n", md.trim_end());
        self.html.push_str("<table>\n");
        for (i, line) in md.lines().filter(|l| l.starts_with('|')).enumerate() {
            if i == 1 {
                continue; // the |---| separator
            }
            let tag = if i == 0 { "th" } else { "td" };
            self.html.push_str("<tr>");
            for cell in line.trim().trim_matches('|').split('|') {
                let _ = write!(self.html, "<{tag}>{}</{tag}>", escape(cell.trim()));
            }
            self.html.push_str("</tr>\n");
        }
        self.html.push_str("</table>\n");
    }
    /// Markdown of paragraphs, `###` headings, `-` items and tables, as written by the demo.
    fn markdown(&mut self, md: &str) {
        for block in md.split("\n\n").map(str::trim).filter(|b| !b.is_empty()) {
            if block.starts_with('|') {
                self.table(block);
            } else if let Some(h) = block.strip_prefix("### ") {
                let _ = writeln!(self.html, "<h3>{}</h3>", escape(h));
                let _ = write!(self.md, "### {h}\n\n");
            } else {
                for line in block.lines() {
                    self.para(line.trim_start_matches("- "));
                }
            }
        }
    }
    fn image(&mut self, path: &Path, caption: &str) -> Result<()> {
        let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let _ = writeln!(
            self.html,
            "<figure><img src=\"data:image/png;base64,{b64}\"><figcaption>{}</figcaption></figure>",
            escape(caption)
        );
        let _ = writeln!(self.md, "![{caption}]({})\n", path.display());
        Ok(())
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Per-epoch means of column `col` of a pretraining log.
fn epoch_means(log: &Path, col: usize) -> Result<Vec<f64>> {
    let text = std::fs::read_to_string(log).with_context(|| log.display().to_string())?;
    let mut sums: Vec<(f64, usize)> = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(e), Some(v)) = (
            f.first().and_then(|e| e.parse::<usize>().ok()),
            f.get(col).and_then(|v| v.parse::<f64>().ok()),
        ) else {
            continue;
        };
        if sums.len() <= e {
            sums.resize(e + 1, (0.0, 0));
        }
        if v.is_finite() && v >= 0.0 {
            sums[e].0 += v;
            sums[e].1 += 1;
        }
    }
    Ok(sums
        .iter()
        .map(|(s, n)| if *n > 0 { s / *n as f64 } else { f64::NAN })
        .collect())
}

fn pretrain_section(r: &mut Report, dir: &Path, scratch: &Path) -> Result<()> {
    let config = std::fs::read_to_string(dir.join("config.toml"))?;
    let objective = config
        .lines()
        .find(|l| l.starts_with("objective"))
        .unwrap_or("objective = ?")
        .to_string();
    r.heading(&format!("Pretraining: {} ({objective})", dir.display()));
    let log = dir.join("log.csv");
    let main = epoch_means(&log, 3)?;
    let x: Vec<f64> = (1..=main.len()).map(|e| e as f64).collect();
    let mut rows = String::from("| epoch | main loss |\n|---|---|\n");
    for (e, v) in main.iter().enumerate() {
        let _ = writeln!(rows, "| {} | {v:.4} |", e + 1);
    }
    if main.len() >= 2 {
        let png = scratch.join(format!("curve-{}.png", sanitize(dir)));
        brainssl_eval::plot::lines_png(&png, &x, std::slice::from_ref(&main), 400, false)
            .map_err(anyhow::Error::msg)?;
        r.image(&png, "per-epoch mean of the main loss (½·MSE for MAE, L1 for JEPA)")?;
    }
    r.table(&rows);
    let previews = dir.join("previews");
    if let Ok(rd) = std::fs::read_dir(&previews) {
        let mut pngs: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        pngs.sort();
        if let Some(last) = pngs.last() {
            r.image(
                last,
                "rows: input, masked input, reconstruction; columns: three mid-planes",
            )?;
        }
    }
    Ok(())
}

fn sanitize(p: &Path) -> String {
    p.display()
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn probe_section(r: &mut Report, dir: &Path) -> Result<()> {
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json"))?)?;
    r.heading(&format!("Classification: {}", dir.display()));
    let f = |k: &str, part: &str| {
        m[part][k]
            .as_f64()
            .map(|v| format!("{v:.3}"))
            .unwrap_or_else(|| "–".into())
    };
    let ci = |k: &str| {
        m["test_bootstrap_95"][k]
            .as_array()
            .map(|a| {
                format!(
                    "[{:.3}, {:.3}]",
                    a[0].as_f64().unwrap_or(f64::NAN),
                    a[1].as_f64().unwrap_or(f64::NAN)
                )
            })
            .unwrap_or_default()
    };
    let mut t = String::from(
        "| split | accuracy | balanced accuracy | sensitivity | specificity | macro F1 | positive F1 | AUROC | AUROC 95 % CI |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let learned = if m["learned"].as_bool().unwrap_or(true) {
        ""
    } else {
        ", did not leave the chance loss (†)"
    };
    for (part, label) in [
        (
            "val",
            format!("val (epoch {}{learned})", m["best_epoch"].as_u64().unwrap_or(0)),
        ),
        ("test", "test".to_string()),
    ] {
        let _ = writeln!(
            t,
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} |",
            f("accuracy", part),
            f("balanced_accuracy", part),
            f("sensitivity", part),
            f("specificity", part),
            f("macro_f1", part),
            f("f1_positive", part),
            f("auroc", part),
            if part == "test" { ci("auroc") } else { String::new() }
        );
    }
    r.table(&t);
    if let Some(cm) = m["test"]["confusion_matrix"].as_array() {
        let c = cm.len();
        let mut t = format!(
            "| test: true class ↓, predicted → | {} |\n|---|{}\n",
            (0..c).map(|k| k.to_string()).collect::<Vec<_>>().join(" | "),
            "---|".repeat(c)
        );
        for (k, row) in cm.iter().enumerate() {
            let cells: Vec<String> = row
                .as_array()
                .map(|r| r.iter().map(|v| v.to_string()).collect())
                .unwrap_or_default();
            let _ = writeln!(t, "| {k} | {} |", cells.join(" | "));
        }
        r.table(&t);
    }
    Ok(())
}

fn section(r: &mut Report, dir: &Path, scratch: &Path) -> Result<bool> {
    let has = |f: &str| dir.join(f).exists();
    if has("config.toml") && has("log.csv") && has("checkpoints") {
        pretrain_section(r, dir, scratch)?;
    } else if has("metrics.json") && has("test_predictions.csv") {
        probe_section(r, dir)?;
    } else if has("cv.md") {
        r.heading(&format!("Cross-validation: {}", dir.display()));
        r.table(&std::fs::read_to_string(dir.join("cv.md"))?);
    } else if has("tsne.png") && has("table.md") {
        r.heading(&format!("Representations: {}", dir.display()));
        r.table(&std::fs::read_to_string(dir.join("table.md"))?);
        r.image(&dir.join("tsne.png"), "t-SNE map coloured by label")?;
    } else if has("radial_psd.png") {
        r.heading(&format!("Spectral analysis: {}", dir.display()));
        r.para(&std::fs::read_to_string(dir.join("psd.csv"))?.replace('\n', "; "));
        r.image(
            &dir.join("radial_psd.png"),
            "mean radial PSD per dataset (log scale), manifest order: blue, orange, green",
        )?;
    } else if has("summary.md") {
        r.heading(&format!("Demo: {}", dir.display()));
        r.markdown(&std::fs::read_to_string(dir.join("summary.md"))?);
        let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        subs.sort();
        for s in subs {
            section(r, &s, scratch)?;
        }
        let analysis = dir.join("analysis");
        if let Ok(rd) = std::fs::read_dir(&analysis) {
            let mut pngs: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "png"))
                .collect();
            pngs.sort();
            for p in pngs {
                let name = p.file_stem().unwrap_or_default().to_string_lossy().to_string();
                r.image(&p, &format!("{name}: held-out embeddings coloured by label"))?;
            }
        }
    } else {
        return Ok(false);
    }
    Ok(true)
}

pub fn run(a: ReportArgs) -> Result<()> {
    let scratch = a.out.with_extension("figures");
    std::fs::create_dir_all(&scratch).with_context(|| scratch.display().to_string())?;
    let mut r = Report::default();
    r.md.push_str("# brainssl report\n");
    let mut used = 0;
    for dir in &a.runs {
        if !dir.is_dir() {
            bail!("{}: not a folder", dir.display());
        }
        if section(&mut r, dir, &scratch)? {
            used += 1;
        } else {
            eprintln!("warning: {}: not a brainssl output folder, skipped", dir.display());
        }
    }
    if used == 0 {
        bail!("none of the folders holds brainssl outputs");
    }
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>brainssl report</title><style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #bbb;padding:.3em .6em;text-align:right}}img{{max-width:100%}}figcaption{{color:#555;font-size:90%}}</style></head><body><h1>brainssl report</h1>\n<p>brainssl {}</p>\n{}</body></html>\n",
        env!("CARGO_PKG_VERSION"),
        r.html
    );
    brainssl_scan::atomic_write(&a.out, html.as_bytes())?;
    brainssl_scan::atomic_write(&a.out.with_extension("md"), r.md.as_bytes())?;
    println!(
        "report: {} ({used} section{}; Markdown beside it)",
        a.out.display(),
        if used == 1 { "" } else { "s" }
    );
    Ok(())
}
