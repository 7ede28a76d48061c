//! `brainssl tsne`: t-SNE map, silhouette and NMI of embeddings in raw and 2-D space (Table 7).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use brainssl_eval::cluster::{Separation, TsneConfig};
use brainssl_eval::embeddings::Embeddings;
use brainssl_eval::spectrum::PsdStudy;
use brainssl_eval::Table;
use brainssl_prep::Rng;
use clap::Args;

#[derive(Args)]
pub struct TsneArgs {
    /// Embeddings CSV from `brainssl embed` (subject_id,path,label,e0,...)
    #[arg(long)]
    embeddings: PathBuf,
    /// Output folder: tsne.csv, tsne.svg, metrics.json and the table (Markdown, CSV, JSON)
    #[arg(long)]
    out: PathBuf,
    /// Write into a non-empty --out, overwriting its files (others are kept)
    #[arg(long)]
    force: bool,
    /// t-SNE perplexity: about the number of neighbours each point attends to
    #[arg(long, default_value_t = 30.0)]
    perplexity: f64,
    /// Seed of the subsample, the t-SNE initialisation's noise and k-means
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Random subsample (seeded) above this many points, as the reference's plot
    #[arg(long, default_value_t = 500)]
    max_points: usize,
    /// Name of the row in the table
    #[arg(long, default_value = "model")]
    name: String,
    /// Class names for the legend, comma-separated, in label order 0, 1, ... (default: "class 0", ...)
    #[arg(long, value_delimiter = ',')]
    class_names: Vec<String>,
}

pub fn run(a: TsneArgs) -> Result<()> {
    let _lock = crate::output::claim_folder(&a.out, a.force, "tsne")?;
    let e = Embeddings::read(&a.embeddings).map_err(anyhow::Error::msg)?;
    if let Some(i) = e.labels.iter().position(|&l| l < 0) {
        bail!(
            "{}: line {}: rows need labels for silhouette and NMI",
            a.embeddings.display(),
            i + 2
        );
    }
    if e.len() < 4 {
        bail!("{}: need at least 4 embeddings", a.embeddings.display());
    }
    let e = e.subsample(a.max_points, a.seed);
    let y: Vec<usize> = e.labels.iter().map(|&l| l as usize).collect();
    let cfg = TsneConfig {
        perplexity: a.perplexity,
        seed: a.seed,
        ..TsneConfig::default()
    };
    let sep =
        Separation::compute(&e.vectors, &y, &cfg).map_err(|m| anyhow::anyhow!("{}: {m}", a.embeddings.display()))?;
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    let mut coords = Table::new("", &["subject_id", "path", "label", "x", "y"]);
    for (i, p) in sep.map.iter().enumerate() {
        coords.push(vec![
            e.subject_ids[i].clone(),
            e.paths[i].clone(),
            y[i].to_string(),
            format!("{:.6}", p[0]),
            format!("{:.6}", p[1]),
        ]);
    }
    brainssl_scan::atomic_write(&a.out.join("tsne.csv"), coords.to_csv().as_bytes())?;
    let m = serde_json::json!({
        "n": sep.n,
        "silhouette_raw": sep.silhouette_raw,
        "nmi_raw": sep.nmi_raw,
        "silhouette_tsne": sep.silhouette_tsne,
        "nmi_tsne": sep.nmi_tsne,
        "class_names": a.class_names,
    });
    brainssl_scan::atomic_write(
        &a.out.join("metrics.json"),
        serde_json::to_string_pretty(&m)?.as_bytes(),
    )?;
    let svg = crate::figures::tsne(
        &sep.map,
        &y,
        &a.class_names,
        &format!("{}: t-SNE of {} embeddings", a.name, sep.n),
    )?;
    brainssl_scan::atomic_write(&a.out.join("tsne.svg"), svg.as_bytes())
        .with_context(|| a.out.join("tsne.svg").display().to_string())?;
    let mut table = Table::new("separation of the classes", &Separation::columns());
    table.push(sep.row(&a.name));
    crate::output::write_table(&a.out, "table", &table)?;
    print!("{}", table.to_markdown());
    Ok(())
}

#[derive(Args)]
pub struct PsdArgs {
    /// One manifest per dataset (two or more)
    #[arg(long, required = true, num_args = 1..)]
    pub manifest: Vec<PathBuf>,
    /// Dataset names, comma-separated, in manifest order (default: file stems)
    #[arg(long, value_delimiter = ',')]
    pub names: Vec<String>,
    /// Output folder: psd.md and psd.csv (per dataset, with ratios), psd.json (values and profiles), radial_psd.csv and radial_psd.svg
    #[arg(long)]
    pub out: PathBuf,
    /// Write into a non-empty --out, overwriting its files (others are kept)
    #[arg(long)]
    pub force: bool,
    /// Slices of each preprocessed volume
    #[arg(long, default_value_t = 144)]
    pub depth: usize,
    /// Height and width of each preprocessed volume
    #[arg(long, default_value_t = 160)]
    pub size: usize,
    /// Normalised radius from which a bin counts as high frequency
    #[arg(long, default_value_t = 0.3)]
    pub cutoff: f64,
    /// Radial bins of the profile
    #[arg(long, default_value_t = 40)]
    pub bins: usize,
}

/// `brainssl psd`: mean high-frequency PSD per dataset, ratios and radial profiles (Figure 3).
pub fn psd(a: PsdArgs) -> Result<()> {
    let _lock = crate::output::claim_folder(&a.out, a.force, "psd")?;
    use brainssl_data::loader::Dataset;
    if a.manifest.len() < 2 {
        bail!("give two or more --manifest files (one per dataset)");
    }
    let names = crate::commands::names_or(&a.names, &a.manifest, "manifests", |p| {
        p.file_stem().unwrap_or_default().to_string_lossy().to_string()
    })?;
    let prep = brainssl_prep::PrepConfig {
        depth: a.depth,
        size: a.size,
        ..Default::default()
    };
    let mut study = PsdStudy::new([a.depth, a.size, a.size], a.cutoff, a.bins);
    for (m, name) in a.manifest.iter().zip(&names) {
        let rows = brainssl_data::Manifest::read(m)?.rows;
        if rows.is_empty() {
            bail!("{}: no scans", m.display());
        }
        let ds = Dataset {
            rows,
            prep: prep.clone(),
            augment: None,
            cache: None,
        };
        let d = study.add(name, ds.rows.len(), |i| ds.sample(i, false, &mut Rng::new(0)))?;
        println!(
            "{name}: {} scans, mean PSD at radius >= {}: {:.4e} (std {:.2e})",
            d.scans, a.cutoff, d.mean_high_frequency, d.sd_high_frequency
        );
    }
    for (other, r) in study.ratios() {
        println!("ratio {} / {other}: {r:.3}", names[0]);
    }
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    let table = study.table();
    brainssl_scan::atomic_write(&a.out.join("psd.md"), table.to_markdown().as_bytes())?;
    brainssl_scan::atomic_write(&a.out.join("psd.csv"), table.to_csv().as_bytes())?;
    brainssl_scan::atomic_write(&a.out.join("radial_psd.csv"), study.profile_table().to_csv().as_bytes())?;
    brainssl_scan::atomic_write(
        &a.out.join("psd.json"),
        serde_json::to_string_pretty(&study)?.as_bytes(),
    )?;
    let svg = crate::figures::psd(&study)?;
    brainssl_scan::atomic_write(&a.out.join("radial_psd.svg"), svg.as_bytes())
        .with_context(|| a.out.display().to_string())?;
    Ok(())
}
