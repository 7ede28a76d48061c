//! `brainssl report RUN_DIR...`: one self-contained HTML page (figures inlined as SVG) and the same
//! content as Markdown, from the folders that `pretrain`, `probe`/`finetune`/`baseline`, `cv`,
//! `fewshot`, `tsne`, `psd` and `demo` write. Each folder is recognised by its files; a demo folder
//! is expanded into its runs. The page starts with a summary and a table of contents; every figure
//! sits under the heading of the run it belongs to. The figures the report draws itself go to
//! `<report>.figures/`, and the Markdown links to every figure relative to the report file.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine;
use brainssl_downstream::benchmark::BenchmarkResult;
use brainssl_downstream::seeds::SeedStudy;
use brainssl_downstream::study::{CrossValidation, FewShot, NOT_LEARNED_NOTE};
use brainssl_eval::spectrum::PsdStudy;
use brainssl_eval::table::escape_html;
use brainssl_eval::Table;
use clap::Args;

use crate::demo::DemoSummary;
use crate::figures::{self, Figure};

#[derive(Args)]
pub struct ReportArgs {
    /// Run folders (pretraining runs, classifier runs, cv, fewshot, tsne or psd outputs, a demo, study or benchmark folder)
    #[arg(required = true, num_args = 1..)]
    pub runs: Vec<PathBuf>,
    /// The HTML file (*.html); the Markdown copy <name>.md goes beside it, the figures it draws into <name>.figures/
    #[arg(long, default_value = "report.html")]
    pub out: PathBuf,
}

/// One heading of the report with what follows it.
struct Section {
    level: usize,
    title: String,
    id: String,
    html: String,
    md: String,
}

struct Report {
    sections: Vec<Section>,
    /// The report's own figures.
    figures: PathBuf,
    /// The folder of the report file, which Markdown links are relative to.
    base: PathBuf,
    /// One row per run: what it is and its headline result.
    overview: Table,
    /// Runs by kind, for the count printed at the end.
    kinds: Vec<&'static str>,
    /// The report's own figures, written at the end.
    pending: Vec<(PathBuf, String)>,
}

impl Report {
    fn section(&mut self, level: usize, title: String) {
        let mut id: String = title
            .to_lowercase()
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { '-' })
            .collect();
        id = id.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-");
        if self.sections.iter().any(|s| s.id == id) {
            id = format!("{id}-{}", self.sections.len());
        }
        self.sections.push(Section {
            level,
            title,
            id,
            html: String::new(),
            md: String::new(),
        });
    }
    fn current(&mut self) -> &mut Section {
        self.sections.last_mut().expect("a section is open")
    }
    fn para(&mut self, text: &str) {
        let s = self.current();
        let _ = writeln!(s.html, "<p>{}</p>", escape_html(text));
        let _ = writeln!(s.md, "{text}\n");
    }
    fn list(&mut self, items: &[String]) {
        let s = self.current();
        s.html.push_str("<ul>");
        for i in items {
            let _ = write!(s.html, "<li>{}</li>", escape_html(i));
            let _ = writeln!(s.md, "- {i}");
        }
        s.html.push_str("</ul>\n");
        s.md.push('\n');
    }
    fn table(&mut self, t: &Table) {
        let s = self.current();
        s.html.push_str(&t.to_html());
        let _ = writeln!(s.md, "{}", t.to_markdown());
    }
    /// A figure drawn by the report: named after its section (unique), inlined in the HTML, and
    /// written into the figures folder once the whole report has been built.
    fn figure(&mut self, fig: Figure) -> Result<()> {
        let id = self.current().id.clone();
        let path = self.figures.join(format!("{id}-{}.svg", fig.name));
        self.embed(&path, &fig.svg, &fig.caption)?;
        self.pending.push((path, fig.svg));
        Ok(())
    }
    /// A figure file a run wrote (SVG, or PNG from older runs).
    fn figure_file(&mut self, path: &Path, caption: &str) -> Result<()> {
        let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
        if path.extension().is_some_and(|e| e == "svg") {
            let svg = String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 SVG", path.display()))?;
            self.embed(path, &svg, caption)
        } else {
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            let link = relative_link(path, &self.base);
            let s = self.current();
            let _ = writeln!(
                s.html,
                "<figure><img src=\"data:image/png;base64,{b64}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
                escape_html(caption),
                escape_html(caption)
            );
            let _ = writeln!(s.md, "![{caption}]({link})\n");
            Ok(())
        }
    }
    fn embed(&mut self, path: &Path, svg: &str, caption: &str) -> Result<()> {
        let link = relative_link(path, &self.base);
        let body = svg.trim_start_matches(|c| c != '<');
        let body = body
            .strip_prefix("<?xml")
            .map_or(body, |rest| &rest[rest.find("?>").map_or(0, |i| i + 2)..]);
        let s = self.current();
        let _ = writeln!(
            s.html,
            "<figure>{}<figcaption>{}</figcaption></figure>",
            body.trim(),
            escape_html(caption)
        );
        let _ = writeln!(s.md, "![{caption}]({link})\n\n*{caption}*\n");
        Ok(())
    }
    fn overview_row(&mut self, kind: &'static str, run: &Path, headline: String) {
        let id = self.current().id.clone();
        self.overview
            .push(vec![format!("{}#{id}", run.display()), kind.into(), headline]);
        self.kinds.push(kind);
    }
}

/// A path segment for a URL: every byte outside RFC 3986's unreserved set as %XX.
fn percent_encode(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `p` absolute, through the real path of its deepest existing ancestor (a file not written yet
/// resolves like its folder).
fn absolute(p: &Path) -> PathBuf {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut rest = Vec::new();
    let mut head = p.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(head) {
            return rest.iter().rev().fold(real, |acc: PathBuf, c| acc.join(c));
        }
        match (head.parent(), head.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                head = parent;
            }
            _ => return p,
        }
    }
}

/// `target` as a link relative to folder `base`: both made absolute and normalised, then the
/// shared prefix dropped and the rest of `base` climbed with `..`.
pub fn relative_link(target: &Path, base: &Path) -> String {
    let abs = |p: &Path| -> Vec<String> {
        let p = absolute(p);
        let mut parts: Vec<String> = Vec::new();
        for c in p.components() {
            match c {
                Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
                Component::ParentDir => {
                    parts.pop();
                }
                _ => {}
            }
        }
        parts
    };
    let (t, b) = (abs(target), abs(base));
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_string(); b.len() - common];
    parts.extend(t[common..].iter().cloned());
    parts.iter().map(|p| percent_encode(p)).collect::<Vec<_>>().join("/")
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    serde_json::from_str(&text).with_context(|| format!("{}: not the JSON brainssl writes there", path.display()))
}

fn name_of(dir: &Path) -> String {
    dir.file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned())
}

fn pretrain_section(r: &mut Report, dir: &Path, level: usize) -> Result<()> {
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let config: toml::Value =
        toml::from_str(&text).with_context(|| format!("{}: not a pretraining config", path.display()))?;
    let number = |table: &str, key: &str| {
        config
            .get(table)
            .and_then(|t| t.get(key))
            .and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
    };
    let objective = config
        .get("objective")
        .and_then(|v| v.as_str())
        .unwrap_or("?")
        .to_string();
    let coefficients: Vec<(&str, f64)> = [
        ("spectral", number("spectral", "coeff")),
        ("vcr", number("vcr", "reg_coeff")),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v?)))
    .collect();
    let name = name_of(dir);
    r.section(level, format!("Pretraining: {name}"));
    r.para(&format!(
        "Folder {}; objective {objective}; the run's settings are in its config.toml.",
        dir.display()
    ));
    let curves = figures::pretraining(&dir.join("log.csv"), &format!("{name} ({objective})"), &coefficients)?;
    if curves.figures.is_empty() {
        r.para("The log holds no training steps yet: no curves to draw.");
    }
    for f in curves.figures {
        r.figure(f)?;
    }
    if let Ok(rd) = std::fs::read_dir(dir.join("previews")) {
        let mut previews: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "svg" || e == "png"))
            .collect();
        previews.sort();
        if let Some(last) = previews.last() {
            r.figure_file(
                last,
                "The last preview: rows the input, the masked input (masked patches dark grey) and the MAE's reconstruction; columns the three mid-planes.",
            )?;
        }
    }
    let m = &curves.epoch_means;
    let headline = match (m.first(), m.last()) {
        (Some(a), Some(b)) if m.len() >= 2 => format!(
            "{objective}: mean loss per epoch {:.4} → {:.4} over {} epochs",
            a.1,
            b.1,
            m.len()
        ),
        (Some(a), _) => format!("{objective}: mean loss {:.4} (one epoch)", a.1),
        _ => format!("{objective}: no steps logged"),
    };
    r.overview_row("pretraining", dir, headline);
    Ok(())
}

fn classifier_section(r: &mut Report, dir: &Path, level: usize, tsne: Option<PathBuf>) -> Result<()> {
    let m: serde_json::Value = read_json(&dir.join("metrics.json"))?;
    let name = name_of(dir);
    r.section(level, format!("Classifier: {name}"));
    let names: Vec<String> = m["class_names"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let learned = m["learned"].as_bool().unwrap_or(true);
    let epoch = m["best_epoch"].as_u64().unwrap_or(0);
    r.para(&format!(
        "Folder {}; reported epoch {epoch} (chosen on the validation split){}.",
        dir.display(),
        if names.is_empty() {
            String::new()
        } else {
            format!(
                "; classes {}",
                names
                    .iter()
                    .enumerate()
                    .map(|(k, n)| format!("{k} = {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    ));
    let f = |part: &str, k: &str| {
        m[part][k]
            .as_f64()
            .map(|v| format!("{v:.3}"))
            .unwrap_or_else(|| "–".into())
    };
    let ci = |k: &str| {
        m["test_bootstrap_95"][k]
            .as_array()
            .and_then(|a| Some(format!("[{:.3}, {:.3}]", a.first()?.as_f64()?, a.get(1)?.as_f64()?)))
            .unwrap_or_default()
    };
    let mut t = Table::new(
        "",
        &[
            "split",
            "accuracy",
            "balanced accuracy",
            "sensitivity",
            "specificity",
            "macro F1",
            "positive F1",
            "AUROC",
            "AUROC 95 % CI",
        ],
    );
    for part in ["val", "test"] {
        let label = if part == "val" {
            format!("val (epoch {epoch}{})", if learned { "" } else { " †" })
        } else {
            "test".into()
        };
        t.push(vec![
            label,
            f(part, "accuracy"),
            f(part, "balanced_accuracy"),
            f(part, "sensitivity"),
            f(part, "specificity"),
            f(part, "macro_f1"),
            f(part, "f1_positive"),
            f(part, "auroc"),
            if part == "test" { ci("auroc") } else { String::new() },
        ]);
    }
    if !learned {
        t.note(NOT_LEARNED_NOTE);
    }
    r.table(&t);
    r.figure(figures::roc(&dir.join("test_predictions.csv"), &names, &name)?)?;
    if let Some(c) = figures::confusion(&m, &names, &name)? {
        r.figure(c)?;
    }
    if let Some(p) = tsne {
        r.figure_file(
            &p,
            "t-SNE map of this encoder's pooled embeddings of the held-out (validation and test) scans, coloured by class.",
        )?;
    }
    r.overview_row(
        "classifier",
        dir,
        format!(
            "test AUROC {} {}{}",
            f("test", "auroc"),
            ci("auroc"),
            if learned {
                ""
            } else {
                " † did not leave the chance loss"
            }
        ),
    );
    Ok(())
}

fn cv_section(r: &mut Report, dir: &Path, level: usize) -> Result<()> {
    let cv: CrossValidation = read_json(&dir.join("cv.json"))?;
    r.section(level, format!("Cross-validation: {}", name_of(dir)));
    r.para(&format!(
        "Folder {}; one classifier run per fold in fold0, fold1, ...",
        dir.display()
    ));
    let summary = cv.summary_table();
    r.table(&summary);
    r.table(&cv.folds_table());
    r.overview_row("cross-validation", dir, format!("AUROC {}", summary.rows[0][4]));
    // each fold is a classifier run of its own, with its curves
    for i in 0..cv.folds.len() {
        let fold_dir = dir.join(format!("fold{i}"));
        if fold_dir.join("metrics.json").exists() {
            classifier_section(r, &fold_dir, level + 1, None)?;
        }
    }
    Ok(())
}

fn fewshot_section(r: &mut Report, dir: &Path, level: usize) -> Result<()> {
    let fs: FewShot = read_json(&dir.join("fewshot.json"))?;
    r.section(level, format!("Few-shot: {}", name_of(dir)));
    r.para(&format!("Folder {}; models {}.", dir.display(), fs.models.join(", ")));
    r.table(&fs.summary_table());
    if dir.join("fewshot.svg").exists() {
        r.figure_file(
            &dir.join("fewshot.svg"),
            "Mean test AUROC over the draws against the number of labelled subjects per class.",
        )?;
    }
    let headline = match fs.ks.last() {
        Some(&k) => {
            fs.models
                .iter()
                .map(|m| {
                    let v = fs.aurocs(m, k);
                    format!("{m} {:.3}", v.iter().sum::<f64>() / v.len().max(1) as f64)
                })
                .collect::<Vec<_>>()
                .join(", ")
                + &format!(" (mean test AUROC at k = {k})")
        }
        None => "no k could be drawn".into(),
    };
    r.overview_row("few-shot", dir, headline);
    Ok(())
}

fn tsne_section(r: &mut Report, dir: &Path, level: usize) -> Result<()> {
    let t: Table = read_json(&dir.join("table.json"))?;
    r.section(level, format!("Representations: {}", name_of(dir)));
    r.table(&t);
    r.figure_file(&dir.join("tsne.svg"), "t-SNE map of the embeddings, coloured by class.")?;
    let headline = t
        .rows
        .first()
        .map(|row| format!("silhouette {} (raw)", row[2]))
        .unwrap_or_default();
    r.overview_row("representations", dir, headline);
    Ok(())
}

fn psd_section(r: &mut Report, dir: &Path, level: usize) -> Result<()> {
    let study: PsdStudy = read_json(&dir.join("psd.json"))?;
    r.section(level, format!("Spectral analysis: {}", name_of(dir)));
    r.table(&study.table());
    r.figure_file(
        &dir.join("radial_psd.svg"),
        "Mean radial power spectral density per dataset against normalised radial frequency (log scale); the dashed line is the cut-off above which power counts as high frequency.",
    )?;
    let ratios = study
        .ratios()
        .iter()
        .map(|(n, v)| format!("{v:.3} vs {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    r.overview_row("spectral analysis", dir, format!("high-frequency PSD ratio {ratios}"));
    Ok(())
}

/// A multi-seed study: its tables per task; its run folders are listed, not expanded.
fn study_section(r: &mut Report, dir: &Path, level: usize) -> Result<()> {
    let study: SeedStudy = read_json(&dir.join("study.json"))?;
    r.section(level, format!("Multi-seed study: {}", name_of(dir)));
    r.para(&format!(
        "Folder {}; pretraining seeds {:?}, random-encoder seeds {:?}; {} pretraining runs, one probe folder per encoder, seed and task.",
        dir.display(),
        study.seeds,
        study.random_seeds,
        study.pretraining.len()
    ));
    let mut headline = Vec::new();
    for t in &study.tasks {
        r.table(&t.groups_table());
        r.table(&t.comparisons_table());
        let higher = t.higher_count();
        headline.push(format!(
            "{}: {higher} of {} comparisons higher",
            t.task,
            t.comparisons.len()
        ));
    }
    r.overview_row("multi-seed study", dir, headline.join("; "));
    Ok(())
}

/// The claims benchmark: one verdict per claim, its tables; run folders listed, not expanded.
fn benchmark_section(r: &mut Report, dir: &Path, level: usize) -> Result<()> {
    let b: BenchmarkResult = read_json(&dir.join("benchmark.json"))?;
    r.section(level, format!("Claims benchmark: {}", name_of(dir)));
    r.para(&format!(
        "Folder {}; pretraining seeds {:?}, random-encoder seeds {:?}; {} synthetic populations; {:.0} s. \
         Synthetic tasks with known ground truth (docs/evaluation.md#claims-benchmark): read the intervals.",
        dir.display(),
        b.study.seeds,
        b.study.random_seeds,
        b.populations.len(),
        b.seconds
    ));
    r.list(&b.headlines());
    for t in b.tables() {
        r.table(&t);
    }
    let verdicts: Vec<String> = b
        .claims
        .iter()
        .map(|c| format!("claim {}: {}", c.number, c.verdict.label()))
        .collect();
    r.overview_row("claims benchmark", dir, verdicts.join("; "));
    Ok(())
}

/// The demo's summary, then each of its runs one level down.
fn demo_section(r: &mut Report, dir: &Path) -> Result<()> {
    let summary: DemoSummary = read_json(&dir.join("summary.json"))?;
    r.section(2, format!("Demo: {}", name_of(dir)));
    r.overview_row(
        "demo",
        dir,
        format!("{} tasks: verdicts and tables in its section", summary.verdicts.len()),
    );
    r.para(&summary.intro);
    r.list(&summary.verdicts);
    for t in &summary.tables {
        r.table(t);
    }
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| dir.display().to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .filter(|p| summary.detailed_runs.is_empty() || summary.detailed_runs.contains(&name_of(p)))
        .collect();
    // the order of the pipeline: pretraining, probes, fine-tuning, the baseline, then analyses
    let rank = |p: &PathBuf| {
        let n = name_of(p);
        ["pretrain-", "-probe-", "-finetune-", "-baseline-", ""]
            .iter()
            .position(|k| n.contains(k))
            .unwrap_or(4)
    };
    subs.sort_by_key(|p| (rank(p), p.clone()));
    for s in subs {
        // a probe folder `{task}-probe-{encoder}` owns the t-SNE map `analysis/tsne-{task}-{encoder}.svg`
        let tsne = name_of(&s)
            .split_once("-probe-")
            .map(|(task, enc)| dir.join("analysis").join(format!("tsne-{task}-{enc}.svg")))
            .filter(|p| p.exists());
        run_section(r, &s, 3, tsne)?;
    }
    Ok(())
}

/// Adds the sections of `dir`; false when it is no brainssl output folder.
fn run_section(r: &mut Report, dir: &Path, level: usize, tsne: Option<PathBuf>) -> Result<bool> {
    let has = |f: &str| dir.join(f).exists();
    if has("summary.json") && level == 2 && has("analysis") {
        demo_section(r, dir)?;
    } else if has("config.toml") && has("log.csv") && has("checkpoints") {
        pretrain_section(r, dir, level)?;
    } else if has("metrics.json") && has("test_predictions.csv") {
        classifier_section(r, dir, level, tsne)?;
    } else if has("benchmark.json") && level == 2 {
        benchmark_section(r, dir, level)?;
    } else if has("study.json") && level == 2 {
        study_section(r, dir, level)?;
    } else if has("cv.json") {
        cv_section(r, dir, level)?;
    } else if has("fewshot.json") {
        fewshot_section(r, dir, level)?;
    } else if has("tsne.svg") && has("table.json") {
        tsne_section(r, dir, level)?;
    } else if has("psd.json") {
        psd_section(r, dir, level)?;
    } else {
        return Ok(false);
    }
    Ok(true)
}

const STYLE: &str = "body{font-family:sans-serif;max-width:62em;margin:2em auto;padding:0 1em;line-height:1.4}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:right}\
td:first-child,th:first-child{text-align:left}caption{text-align:left;font-weight:bold;padding:.3em 0}\
figure{margin:1.5em 0}figure svg,figure img{max-width:100%;height:auto}figcaption{color:#444;font-size:90%}\
p.note{color:#555;font-size:90%}nav li{margin:.1em 0}h2{border-bottom:1px solid #ddd;margin-top:2em}";

pub fn run(a: ReportArgs) -> Result<()> {
    if a.out.extension().is_none_or(|e| e != "html") {
        bail!(
            "{}: --out names the HTML file (*.html); the Markdown copy goes beside it",
            a.out.display()
        );
    }
    let figures_dir = a.out.with_extension("figures");
    let base = a
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut r = Report {
        sections: Vec::new(),
        figures: figures_dir.clone(),
        base,
        overview: Table::new("", &["run", "kind", "headline result"]),
        kinds: Vec::new(),
        pending: Vec::new(),
    };
    for dir in &a.runs {
        if !dir.is_dir() {
            bail!("{}: not a folder", dir.display());
        }
        if !run_section(&mut r, dir, 2, None)? {
            eprintln!("warning: {}: not a brainssl output folder, skipped", dir.display());
        }
    }
    if r.kinds.is_empty() {
        bail!("none of the folders holds brainssl outputs");
    }
    // the summary first: every run with its headline, linked to its section
    let mut html = String::new();
    let mut md = String::from("# brainssl report\n\n");
    let _ = write!(html, "<h1>brainssl report</h1>\n<p>brainssl {}</p>\n<h2 id=\"summary\">Summary</h2>\n<table><thead><tr><th>run</th><th>kind</th><th>headline result</th></tr></thead><tbody>\n", env!("CARGO_PKG_VERSION"));
    let mut summary = r.overview.clone();
    for row in &r.overview.rows {
        let (run, id) = row[0].rsplit_once('#').expect("run#id");
        let _ = writeln!(
            html,
            "<tr><td><a href=\"#{id}\">{}</a></td><td>{}</td><td>{}</td></tr>",
            escape_html(run),
            escape_html(&row[1]),
            escape_html(&row[2])
        );
    }
    for row in &mut summary.rows {
        let (run, id) = row[0]
            .rsplit_once('#')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .expect("run#id");
        row[0] = format!("[{run}](#{id})");
    }
    html.push_str("</tbody></table>\n");
    let _ = write!(md, "## Summary\n\n{}\n", summary.to_markdown());
    // the table of contents
    html.push_str("<nav><h2 id=\"contents\">Contents</h2>\n<ul>\n");
    md.push_str("## Contents\n\n");
    for s in &r.sections {
        let indent = if s.level > 2 { "  " } else { "" };
        let _ = writeln!(
            html,
            "<li style=\"margin-left:{}em\"><a href=\"#{}\">{}</a></li>",
            2 * (s.level - 2),
            s.id,
            escape_html(&s.title)
        );
        let _ = writeln!(md, "{indent}- [{}](#{})", s.title, s.id);
    }
    html.push_str("</ul></nav>\n");
    md.push('\n');
    for s in &r.sections {
        let _ = writeln!(
            html,
            "<h{l} id=\"{}\">{}</h{l}>\n{}",
            s.id,
            escape_html(&s.title),
            s.html,
            l = s.level
        );
        let _ = write!(
            md,
            "<a id=\"{}\"></a>\n\n{} {}\n\n{}\n",
            s.id,
            "#".repeat(s.level),
            s.title,
            s.md
        );
    }
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>brainssl report</title><style>{STYLE}</style></head><body>\n{html}</body></html>\n"
    );
    std::fs::create_dir_all(&figures_dir).with_context(|| figures_dir.display().to_string())?;
    for (path, svg) in &r.pending {
        brainssl_scan::atomic_write(path, svg.as_bytes())?;
    }
    brainssl_scan::atomic_write(&a.out, page.as_bytes())?;
    brainssl_scan::atomic_write(&a.out.with_extension("md"), md.as_bytes())?;
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for k in &r.kinds {
        match counts.iter_mut().find(|c| c.0 == *k) {
            Some(c) => c.1 += 1,
            None => counts.push((k, 1)),
        }
    }
    println!(
        "report: {} ({} section{}: {}; Markdown beside it)",
        a.out.display(),
        r.sections.len(),
        if r.sections.len() == 1 { "" } else { "s" },
        counts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_relative_to_the_report_folder() {
        let d = tempfile::tempdir().unwrap();
        let (report, run) = (d.path().join("out"), d.path().join("runs/a b/previews"));
        std::fs::create_dir_all(&report).unwrap();
        std::fs::create_dir_all(&run).unwrap();
        let fig = run.join("epoch-0001.svg");
        std::fs::write(&fig, "<svg/>").unwrap();
        assert_eq!(relative_link(&fig, &report), "../runs/a%20b/previews/epoch-0001.svg");
        let odd = d.path().join("a#1 %x");
        std::fs::create_dir_all(&odd).unwrap();
        assert_eq!(relative_link(&odd.join("f.svg"), &report), "../a%231%20%25x/f.svg");
        // a figure not written yet resolves through its existing ancestors
        let own = report.join("report.figures/x.svg");
        assert_eq!(relative_link(&own, &report), "report.figures/x.svg");
        let dotted = d.path().join("out/../runs/a b/previews/epoch-0001.svg");
        assert_eq!(relative_link(&dotted, &report), "../runs/a%20b/previews/epoch-0001.svg");
        assert_eq!(relative_link(&fig, &run), "epoch-0001.svg");
    }
}
