//! `brainssl tsne`: t-SNE map, silhouette and NMI of embeddings in raw and 2-D space (Table 7).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use brainssl_eval::cluster::{kmeans, nmi, silhouette, tsne, TsneConfig};
use brainssl_eval::plot::scatter_png;
use brainssl_prep::Rng;
use clap::Args;

#[derive(Args)]
pub struct TsneArgs {
    /// Embeddings CSV from `brainssl embed` (subject_id,path,label,e0,...)
    #[arg(long)]
    embeddings: PathBuf,
    /// Output folder: tsne.csv, tsne.png and the clustering metrics
    #[arg(long)]
    out: PathBuf,
    /// Write into a non-empty --out, overwriting its files (others are kept)
    #[arg(long)]
    force: bool,
    #[arg(long, default_value_t = 30.0)]
    perplexity: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Random subsample (seeded) above this many points, as the reference's plot
    #[arg(long, default_value_t = 500)]
    max_points: usize,
    /// Name of the row in the table
    #[arg(long, default_value = "model")]
    name: String,
}

pub fn run(a: TsneArgs) -> Result<()> {
    let _lock = crate::output::claim_folder(&a.out, a.force, "tsne")?;
    let mut r = csv::Reader::from_path(&a.embeddings).with_context(|| a.embeddings.display().to_string())?;
    let named = |what: &str| format!("{}: {what}", a.embeddings.display());
    let header = r.headers().with_context(|| named("no header"))?.clone();
    let label_col = header
        .iter()
        .position(|h| h == "label")
        .with_context(|| named("no 'label' column"))?;
    let first = header
        .iter()
        .position(|h| h == "e0")
        .with_context(|| named("no embedding columns e0, e1, ... (write them with `brainssl embed --out E.csv`)"))?;
    let (mut x, mut y, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: line {}", a.embeddings.display(), i + 2))?;
        let l: i64 = rec[label_col]
            .parse()
            .with_context(|| named(&format!("line {}: bad label", i + 2)))?;
        if l < 0 {
            bail!(
                "{}: line {}: rows need labels for silhouette and NMI",
                a.embeddings.display(),
                i + 2
            );
        }
        let e: Vec<f64> = rec
            .iter()
            .skip(first)
            .map(|v| v.parse::<f64>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("{}: line {}: bad embedding value", a.embeddings.display(), i + 2))?;
        x.push(e);
        y.push(l as usize);
        ids.push(format!("{},{}", &rec[0], &rec[1]));
    }
    if x.len() < 4 {
        bail!("{}: need at least 4 embeddings", a.embeddings.display());
    }
    if x.len() > a.max_points {
        let mut idx: Vec<usize> = (0..x.len()).collect();
        Rng::new(a.seed).shuffle(&mut idx);
        idx.truncate(a.max_points);
        idx.sort();
        x = idx.iter().map(|&i| x[i].clone()).collect();
        y = idx.iter().map(|&i| y[i]).collect();
        ids = idx.iter().map(|&i| ids[i].clone()).collect();
    }
    let k = y.iter().max().map_or(1, |m| m + 1);
    let cfg = TsneConfig {
        perplexity: a.perplexity,
        seed: a.seed,
        ..TsneConfig::default()
    };
    let map = tsne(&x, &cfg);
    let flat: Vec<Vec<f64>> = map.iter().map(|p| p.to_vec()).collect();
    let m = serde_json::json!({
        "n": x.len(),
        "silhouette_raw": silhouette(&x, &y),
        "nmi_raw": nmi(&y, &kmeans(&x, k, a.seed, 10)),
        "silhouette_tsne": silhouette(&flat, &y),
        "nmi_tsne": nmi(&y, &kmeans(&flat, k, a.seed, 10)),
    });
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    let mut coords = String::from("subject_id,path,label,x,y\n");
    for ((id, l), p) in ids.iter().zip(&y).zip(&map) {
        coords.push_str(&format!("{id},{l},{:.6},{:.6}\n", p[0], p[1]));
    }
    brainssl_scan::atomic_write(&a.out.join("tsne.csv"), coords.as_bytes())?;
    brainssl_scan::atomic_write(
        &a.out.join("metrics.json"),
        serde_json::to_string_pretty(&m)?.as_bytes(),
    )?;
    scatter_png(&a.out.join("tsne.png"), &map, &y, 512).map_err(anyhow::Error::msg)?;
    let f = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
    let table = format!(
        "| model | n | silhouette (raw) | NMI (raw) | silhouette (t-SNE) | NMI (t-SNE) |\n|---|---|---|---|---|---|\n| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
        a.name,
        x.len(),
        f("silhouette_raw"),
        f("nmi_raw"),
        f("silhouette_tsne"),
        f("nmi_tsne")
    );
    brainssl_scan::atomic_write(&a.out.join("table.md"), table.as_bytes())?;
    print!("{table}");
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
    /// Output folder: the per-dataset table, the ratio and the radial plot
    #[arg(long)]
    pub out: PathBuf,
    /// Write into a non-empty --out, overwriting its files (others are kept)
    #[arg(long)]
    pub force: bool,
    #[arg(long, default_value_t = 144)]
    pub depth: usize,
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
    use brainssl_eval::spectrum::{high_frequency_psd, power_spectrum, radius};
    use rayon::prelude::*;
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
    let shape = [a.depth, a.size, a.size];
    let r = radius(shape);
    let mut summary = String::from("dataset,scans,mean_high_frequency_psd,std\n");
    let mut profiles = Vec::new();
    let mut means = Vec::new();
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
        let per: Vec<(f64, Vec<f64>)> = (0..ds.rows.len())
            .into_par_iter()
            .map(|i| {
                let v = ds.sample(i, false, &mut Rng::new(0))?;
                Ok(high_frequency_psd(&power_spectrum(&v, shape), &r, a.cutoff, a.bins))
            })
            .collect::<Result<_>>()?;
        let n = per.len() as f64;
        let mean = per.iter().map(|p| p.0).sum::<f64>() / n;
        let std = (per.iter().map(|p| (p.0 - mean).powi(2)).sum::<f64>() / n).sqrt();
        let prof: Vec<f64> = (0..a.bins)
            .map(|b| per.iter().map(|p| p.1[b]).sum::<f64>() / n)
            .collect();
        summary.push_str(&format!("{name},{},{mean:.6e},{std:.6e}\n", per.len()));
        println!(
            "{name}: {} scans, mean PSD at radius >= {}: {mean:.4e} (std {std:.2e})",
            per.len(),
            a.cutoff
        );
        means.push(mean);
        profiles.push(prof);
    }
    for i in 1..means.len() {
        println!("ratio {} / {}: {:.3}", names[0], names[i], means[0] / means[i]);
    }
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    brainssl_scan::atomic_write(&a.out.join("psd.csv"), summary.as_bytes())?;
    let centres: Vec<f64> = (0..a.bins).map(|b| (b as f64 + 0.5) / a.bins as f64).collect();
    let mut prof = format!("radius,{}\n", names.join(","));
    for (b, c) in centres.iter().enumerate() {
        let vals: Vec<String> = profiles.iter().map(|p| format!("{:.6e}", p[b])).collect();
        prof.push_str(&format!("{c:.4},{}\n", vals.join(",")));
    }
    brainssl_scan::atomic_write(&a.out.join("radial_psd.csv"), prof.as_bytes())?;
    brainssl_eval::plot::lines_png(&a.out.join("radial_psd.png"), &centres, &profiles, 512, true)
        .map_err(anyhow::Error::msg)?;
    Ok(())
}
