//! `brainssl demo`: the path built so far, on built-in synthetic brains, on a laptop CPU in a few
//! minutes: synth → subject-level split → pretrain tiny MAE and JEPA → frozen attentive probes
//! (pretrained against a random encoder), a fine-tuned probe and a supervised ResNet-50 on an atrophy
//! task, frozen probes on a tumour-grade task → embeddings, t-SNE, silhouette and NMI → a summary
//! table and an HTML report.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use brainssl_backend::burn::module::Module;
use brainssl_backend::Device;
use brainssl_data::splits;
use brainssl_data::synth::{generate, SynthConfig, SynthTask};
use brainssl_data::{Manifest, ManifestRow};
use brainssl_downstream::baseline::ResNetClassifier;
use brainssl_downstream::embed::embed_rows;
use brainssl_downstream::encoder::{load_encoder, random_encoder};
use brainssl_downstream::probe::{train, Downstream, Outcome, Splits};
use brainssl_downstream::{DownstreamConfig, Mode};
use brainssl_eval::cluster::{kmeans, nmi, silhouette, tsne, TsneConfig};
use brainssl_eval::plot::scatter_png;
use brainssl_models::VisionTransformer3d;
use brainssl_train::trainer::{pretrain, TrainOptions};
use brainssl_train::PretrainConfig;
use clap::Args;

use crate::commands::progress;

#[derive(Args)]
pub struct DemoArgs {
    /// Output folder
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Pretraining epochs per objective
    #[arg(long, default_value_t = 10)]
    pub pretrain_epochs: usize,
    /// Probe epochs per encoder
    #[arg(long, default_value_t = 15)]
    pub probe_epochs: usize,
    /// Epochs of the ResNet-50 baseline (about 25 s each on 2 cores)
    #[arg(long, default_value_t = 6)]
    pub baseline_epochs: usize,
    /// Epochs of the fine-tuned MAE probe
    #[arg(long, default_value_t = 8)]
    pub finetune_epochs: usize,
}

/// One evaluated encoder: probe outcome and clustering of its test+val embeddings.
struct Row {
    name: String,
    probe: Outcome,
    silhouette: f64,
    nmi: f64,
    silhouette_2d: f64,
}

fn analyse(
    name: &str,
    enc: &VisionTransformer3d,
    rows: &[ManifestRow],
    cfg: &DownstreamConfig,
    dir: &Path,
) -> Result<(f64, f64, f64)> {
    let (pooled, _) = embed_rows(enc, rows, &cfg.prep, 4, &Device::flex(), false)?;
    let x: Vec<Vec<f64>> = pooled.iter().map(|e| e.iter().map(|&v| v as f64).collect()).collect();
    let y: Vec<usize> = rows.iter().map(|r| r.label as usize).collect();
    let map = tsne(&x, &TsneConfig::default());
    scatter_png(&dir.join(format!("tsne-{name}.png")), &map, &y, 512).map_err(|e| anyhow!(e))?;
    let flat: Vec<Vec<f64>> = map.iter().map(|p| p.to_vec()).collect();
    Ok((
        silhouette(&x, &y),
        nmi(&y, &kmeans(&x, 2, 42, 10)),
        silhouette(&flat, &y),
    ))
}

pub fn demo(a: DemoArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let data = a.out.join("synth-ad");
    let cfg = SynthConfig {
        task: SynthTask::Ad,
        subjects: 48,
        sessions: 1,
        size: 64,
        seed: a.seed,
        keep_skull: false,
    };
    let pb = progress(0, "synth");
    let m = generate(&cfg, &data, &pb)?;
    pb.finish_and_clear();
    eprintln!(
        "1/5 synthesised {} brains (atrophy vs normal) → {}",
        m.rows.len(),
        data.join("manifest.csv").display()
    );

    let [train_rows, val, test] = splits::train_val_test(&m.rows, [0.6, 0.2, 0.2], a.seed)?;
    splits::check_disjoint(&[("train", &train_rows), ("val", &val), ("test", &test)])?;
    let splits_dir = a.out.join("splits");
    for (name, rows) in [("train", &train_rows), ("val", &val), ("test", &test)] {
        Manifest {
            rows: rows.clone(),
            extra_columns: m.extra_columns.clone(),
        }
        .write(&splits_dir.join(format!("{name}.csv")))?;
    }
    eprintln!(
        "2/5 subject-level split: {} / {} / {} scans → {}",
        train_rows.len(),
        val.len(),
        test.len(),
        splits_dir.display()
    );

    let base = Device::flex();
    let mut checkpoints = Vec::new();
    for preset in ["tiny-mae", "tiny-jepa"] {
        let mut pc = PretrainConfig::preset(preset).map_err(|e| anyhow!(e))?;
        pc.optim.epochs = a.pretrain_epochs;
        pc.seed = a.seed;
        let run = a.out.join(format!("pretrain-{preset}"));
        if run.exists() {
            std::fs::remove_dir_all(&run)?;
        }
        let opts = TrainOptions {
            devices: vec![base.clone()],
            resume: false,
            halt_after_steps: None,
            progress: true,
        };
        // pretraining sees the training subjects only (labels unused)
        let s = pretrain(&pc, train_rows.clone(), &run, &opts)?;
        eprintln!(
            "3/5 pretrained {preset}: {} steps in {:.0} s, loss {:.3} → {:.3} → {}",
            s.micro_steps,
            s.seconds,
            s.epoch_losses.first().copied().unwrap_or(f64::NAN),
            s.epoch_losses.last().copied().unwrap_or(f64::NAN),
            run.display()
        );
        checkpoints.push((preset.trim_start_matches("tiny-").to_string(), s.final_checkpoint));
    }

    let split = Splits {
        train: train_rows,
        val: val.clone(),
        test: test.clone(),
    };
    let mut dcfg = DownstreamConfig::paper(Mode::Frozen, 2, true);
    dcfg.epochs = a.probe_epochs;
    let heldout: Vec<ManifestRow> = val.iter().chain(&test).cloned().collect();
    let analysis = a.out.join("analysis");
    std::fs::create_dir_all(&analysis)?;
    let mut rows = Vec::new();
    let device = base.clone().autodiff();
    let random = PretrainConfig::preset("tiny-mae").map_err(|e| anyhow!(e))?;
    // fresh encoders for each task: pretrained (student encoders) and a random one
    let encoders = || -> Result<Vec<(String, VisionTransformer3d, bool)>> {
        let mut v = Vec::new();
        for (name, ckpt) in &checkpoints {
            v.push((name.clone(), load_encoder(ckpt, "student", &device)?.1, true));
        }
        v.push((
            "random".into(),
            random_encoder(&random.encoder, a.seed + 7, &device),
            false,
        ));
        Ok(v)
    };
    for (name, enc, pretrained) in encoders()? {
        dcfg.classifier.heads = enc.blocks[0].attn.heads;
        let dir = a.out.join(format!("probe-{name}"));
        let plain = enc.valid();
        let o = train(
            &dcfg,
            Downstream::new(&dcfg, enc, pretrained)?,
            &split,
            &dir,
            &base,
            true,
        )?;
        let (sil, n, sil2) = analyse(&name, &plain, &heldout, &dcfg, &analysis)?;
        eprintln!(
            "4/5 frozen probe on {name}: test AUROC {:.3} (best epoch {}) → {}",
            o.test.auroc,
            o.best_epoch + 1,
            dir.display()
        );
        rows.push(Row {
            name,
            probe: o,
            silhouette: sil,
            nmi: n,
            silhouette_2d: sil2,
        });
    }

    // the supervised baseline: ResNet-50 3-D from scratch on the same split, same selection rule
    let mut rcfg = DownstreamConfig::resnet(2, true);
    rcfg.epochs = a.baseline_epochs;
    let rdir = a.out.join("baseline-resnet50");
    let o = train(
        &rcfg,
        ResNetClassifier::new(2, a.seed, &device),
        &split,
        &rdir,
        &base,
        true,
    )?;
    eprintln!(
        "4/5 ResNet-50 3-D from scratch: test AUROC {:.3} (best epoch {}) → {}",
        o.test.auroc,
        o.best_epoch + 1,
        rdir.display()
    );
    let resnet = o;

    // fine-tuning the MAE encoder on the same task (paper recipe, encoder trains)
    let mut fcfg = DownstreamConfig::paper(Mode::Finetune, 2, true);
    fcfg.epochs = a.finetune_epochs;
    let (_, mae) = load_encoder(&checkpoints[0].1, "student", &device)?;
    fcfg.classifier.heads = mae.blocks[0].attn.heads;
    let fdir = a.out.join("finetune-mae");
    let finetuned = train(&fcfg, Downstream::new(&fcfg, mae, true)?, &split, &fdir, &base, true)?;
    eprintln!(
        "4/5 fine-tuned mae: test AUROC {:.3} → {}",
        finetuned.test.auroc,
        fdir.display()
    );

    // a second task for the same encoders: tumour grade (low vs high), frozen probes
    let tdata = a.out.join("synth-tumour-grade");
    let tcfg = SynthConfig {
        task: SynthTask::TumorGrade,
        subjects: 40,
        sessions: 1,
        size: 64,
        seed: a.seed + 1,
        keep_skull: false,
    };
    let pb = progress(0, "synth");
    let tm = generate(&tcfg, &tdata, &pb)?;
    pb.finish_and_clear();
    let [ttrain, tval, ttest] = splits::train_val_test(&tm.rows, [0.6, 0.2, 0.2], a.seed)?;
    let tsplit = Splits {
        train: ttrain,
        val: tval,
        test: ttest,
    };
    let mut tumour = Vec::new();
    for (name, enc, pretrained) in encoders()? {
        dcfg.classifier.heads = enc.blocks[0].attn.heads;
        let dir = a.out.join(format!("tumour-probe-{name}"));
        let o = train(
            &dcfg,
            Downstream::new(&dcfg, enc, pretrained)?,
            &tsplit,
            &dir,
            &base,
            true,
        )?;
        eprintln!(
            "4/5 tumour grade, frozen probe on {name}: test AUROC {:.3} → {}",
            o.test.auroc,
            dir.display()
        );
        tumour.push((name, o));
    }

    // spectral content of the two synthetic datasets (SPEC 5.10, Figure 3)
    crate::analysis::psd(crate::analysis::PsdArgs {
        manifest: vec![data.join("manifest.csv"), tdata.join("manifest.csv")],
        names: vec!["atrophy".into(), "tumour".into()],
        out: a.out.join("psd"),
        depth: 64,
        size: 64,
        cutoff: 0.3,
        bins: 40,
    })?;

    let mut table = String::from(
        "| encoder (frozen) | val AUROC | test AUROC | test acc (%) | test macro F1 | silhouette | NMI | silhouette (t-SNE) |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        table.push_str(&format!(
            "| {} | {:.3} | {:.3} | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            r.name,
            r.probe.val.auroc,
            r.probe.test.auroc,
            100.0 * r.probe.test.accuracy,
            r.probe.test.macro_f1,
            r.silhouette,
            r.nmi,
            r.silhouette_2d
        ));
    }
    table.push_str(&format!(
        "| ResNet-50 3-D (supervised, from scratch) | {:.3} | {:.3} | {:.1} | {:.3} | – | – | – |\n",
        resnet.val.auroc,
        resnet.test.auroc,
        100.0 * resnet.test.accuracy,
        resnet.test.macro_f1
    ));
    table.push_str(&format!(
        "| mae (fine-tuned) | {:.3} | {:.3} | {:.1} | {:.3} | – | – | – |\n",
        finetuned.val.auroc,
        finetuned.test.auroc,
        100.0 * finetuned.test.accuracy,
        finetuned.test.macro_f1
    ));
    table.push_str("\nTumour grade (low vs high, synthetic), frozen probes:\n\n| encoder (frozen) | val AUROC | test AUROC | test acc (%) | test macro F1 |\n|---|---|---|---|---|\n");
    for (name, o) in &tumour {
        table.push_str(&format!(
            "| {name} | {:.3} | {:.3} | {:.1} | {:.3} |\n",
            o.val.auroc,
            o.test.auroc,
            100.0 * o.test.accuracy,
            o.test.macro_f1
        ));
    }
    brainssl_scan::atomic_write(&a.out.join("summary.md"), table.as_bytes())?;
    eprintln!(
        "5/5 embeddings of {} held-out scans: t-SNE maps → {}",
        heldout.len(),
        analysis.display()
    );
    println!("{table}");
    let html = a.out.join("report.html");
    crate::report::run(crate::report::ReportArgs {
        runs: vec![a.out.clone()],
        out: html.clone(),
    })?;
    println!(
        "demo finished in {:.0} s: report {}, runs in {}",
        started.elapsed().as_secs_f64(),
        html.display(),
        a.out.display()
    );
    Ok(())
}
