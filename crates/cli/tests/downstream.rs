//! End-to-end downstream path on tiny synthetic brains: pretrain → probe / finetune / cv → embed →
//! metrics, checking that every command's outputs agree with each other.

use std::path::Path;

mod common;
use common::{fails, ok};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn pretrain_probe_finetune_cv_embed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let syn = d.join("syn");
    ok(&["synth", "--out", s(&syn), "--subjects", "20", "--size", "40"]);
    let manifest = syn.join("manifest.csv");
    let small = d.join("small.toml");
    std::fs::write(
        &small,
        "[data]\nbatch_size = 4\nworkers = 1\n[data.prep]\ndepth = 16\nsize = 32\n[optim]\nepochs = 2\nwarmup_epochs = 1\n",
    )
    .unwrap();
    let run = d.join("pre");
    ok(&[
        "pretrain",
        "--preset",
        "tiny-jepa",
        "--manifest",
        s(&manifest),
        "--out",
        s(&run),
        "--config",
        s(&small),
        "--quiet",
    ]);
    let ckpt = run.join("checkpoints/final.safetensors");

    // frozen probe: outputs, and `metrics` on its predictions reproduces its test metrics
    let probe = d.join("probe");
    let out = ok(&[
        "probe",
        "--checkpoint",
        s(&ckpt),
        "--manifest",
        s(&manifest),
        "--out",
        s(&probe),
        "--epochs",
        "3",
        "--quiet",
    ]);
    assert!(out.contains("test accuracy"), "{out}");
    let log = std::fs::read_to_string(probe.join("log.csv")).unwrap();
    assert_eq!(log.lines().count(), 4, "{log}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(probe.join("metrics.json")).unwrap()).unwrap();
    // epochs are counted from 1 in the log, metrics.json and on the console alike
    let epochs: Vec<&str> = log.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(epochs, ["1", "2", "3"]);
    let best = saved["best_epoch"].as_u64().unwrap();
    assert!(
        (1..=3).contains(&best) && out.contains(&format!("best epoch {best} ")),
        "{best}: {out}"
    );
    let again: serde_json::Value = serde_json::from_str(
        ok(&[
            "metrics",
            "--predictions",
            s(&probe.join("test_predictions.csv")),
            "--json",
        ])
        .trim(),
    )
    .unwrap();
    for k in ["accuracy", "macro_f1", "f1_positive", "auroc"] {
        let (a, b) = (saved["test"][k].as_f64().unwrap(), again[k].as_f64().unwrap());
        assert!((a - b).abs() < 1e-6, "{k}: {a} vs {b}");
    }
    assert!(probe.join("best.safetensors").exists());

    // `predict` rebuilds the selected probe from its weights file and gives the test split (as
    // `split` draws it with the probe's seed) the probabilities the probe's own run wrote
    ok(&[
        "split",
        "--manifest",
        s(&manifest),
        "--fractions",
        "0.6,0.2,0.2",
        "--seed",
        "42",
        "--out",
        s(&d.join("parts")),
    ]);
    let predicted = d.join("predicted.csv");
    let said = ok(&[
        "predict",
        "--classifier",
        s(&probe.join("best.safetensors")),
        "--manifest",
        s(&d.join("parts/test.csv")),
        "--out",
        s(&predicted),
    ]);
    assert!(said.contains("scans →"), "{said}");
    let table = |p: &Path| -> Vec<Vec<String>> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| l.split(',').map(String::from).collect())
            .collect()
    };
    let (want, got) = (table(&probe.join("test_predictions.csv")), table(&predicted));
    assert_eq!(want.len(), got.len());
    for (w, g) in want.iter().zip(&got).skip(1) {
        assert_eq!(w[..3], g[..3], "subject, path and label");
        for (a, b) in w[3..].iter().zip(&g[3..]) {
            let (a, b): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
            assert!((a - b).abs() < 1e-5, "{w:?} vs {g:?}");
        }
    }
    // a weights file that is not a classifier's is refused by name
    let e = fails(&[
        "predict",
        "--classifier",
        s(&ckpt),
        "--scans",
        s(&manifest),
        "--out",
        s(&d.join("x.csv")),
    ]);
    assert!(e.contains("final.safetensors"), "{e}");

    // fine-tuning with the reference recipe (layer decay, encoder warm-up), and from scratch
    let ft = d.join("ft");
    ok(&[
        "finetune",
        "--checkpoint",
        s(&ckpt),
        "--manifest",
        s(&manifest),
        "--out",
        s(&ft),
        "--epochs",
        "3",
        "--recipe",
        "reference",
        "--quiet",
    ]);
    let cfg = std::fs::read_to_string(ft.join("config.toml")).unwrap();
    assert!(
        cfg.contains("layer_decay = 0.6") && cfg.contains("mode = \"finetune\""),
        "{cfg}"
    );
    let scratch = d.join("scratch");
    ok(&[
        "finetune",
        "--from-scratch",
        "tiny-mae",
        "--manifest",
        s(&manifest),
        "--out",
        s(&scratch),
        "--epochs",
        "1",
        "--quiet",
    ]);

    // the supervised ResNet-50 3-D baseline from scratch, same selection rule
    let rn = d.join("resnet");
    let out = ok(&[
        "baseline",
        "--manifest",
        s(&manifest),
        "--depth",
        "16",
        "--size",
        "32",
        "--epochs",
        "1",
        "--out",
        s(&rn),
        "--quiet",
    ]);
    assert!(
        out.contains("ResNet-50 3-D") && rn.join("metrics.json").exists(),
        "{out}"
    );
    // the ResNet too can be applied to scans given by path
    let scan = table(&rn.join("test_predictions.csv"))[1][1].clone();
    let said = ok(&[
        "predict",
        "--classifier",
        s(&rn.join("best.safetensors")),
        "--scans",
        &scan,
        "--out",
        s(&d.join("rn.csv")),
    ]);
    assert!(said.starts_with("1 scans"), "{said}");

    // 2-fold cross-validation: per-fold rows plus mean and std
    let cv = d.join("cv");
    let out = ok(&[
        "cv",
        "--checkpoint",
        s(&ckpt),
        "--manifest",
        s(&manifest),
        "--folds",
        "2",
        "--out",
        s(&cv),
        "--epochs",
        "2",
        "--quiet",
    ]);
    assert!(
        out.contains("| model | Acc (%) | balanced acc | F1 | AUROC | folds that learned |"),
        "{out}"
    );
    let cvj: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(cv.join("cv.json")).unwrap()).unwrap();
    assert_eq!(cvj["folds"].as_array().unwrap().len(), 2);
    let table = std::fs::read_to_string(cv.join("cv.csv")).unwrap();
    let names: Vec<&str> = table.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(names, ["0", "1", "mean", "std"]);

    // embeddings: one row per scan, width = encoder width (96 for tiny presets)
    let e = d.join("emb.csv");
    ok(&[
        "embed",
        "--checkpoint",
        s(&ckpt),
        "--manifest",
        s(&manifest),
        "--out",
        s(&e),
    ]);
    let text = std::fs::read_to_string(&e).unwrap();
    assert_eq!(text.lines().count(), 21);
    assert_eq!(text.lines().next().unwrap().split(',').count(), 3 + 96);
    // t-SNE and clustering metrics of those embeddings
    let ts = d.join("tsne");
    let table = ok(&["tsne", "--embeddings", s(&e), "--out", s(&ts), "--name", "tiny-jepa"]);
    assert!(table.contains("| tiny-jepa | 20 |"), "{table}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ts.join("metrics.json")).unwrap()).unwrap();
    for k in ["silhouette_raw", "nmi_raw", "silhouette_tsne", "nmi_tsne"] {
        let v = m[k].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&v), "{k} = {v}");
    }
    assert!(ts.join("tsne.svg").exists() && ts.join("tsne.csv").exists() && ts.join("table.json").exists());
    let npy = d.join("emb.npy");
    ok(&[
        "embed",
        "--checkpoint",
        s(&ckpt),
        "--manifest",
        s(&manifest),
        "--out",
        s(&npy),
    ]);
    assert!(d.join("emb.csv").exists());

    // PSD of two datasets: the one synthesised at 40² and upsampled has less high-frequency power
    let syn64 = d.join("syn64");
    ok(&["synth", "--out", s(&syn64), "--subjects", "6", "--size", "64"]);
    let psd = d.join("psd");
    let out = ok(&[
        "psd",
        "--manifest",
        s(&manifest),
        s(&syn64.join("manifest.csv")),
        "--names",
        "a,b",
        "--out",
        s(&psd),
        "--depth",
        "32",
        "--size",
        "48",
    ]);
    let ratio: f64 = out
        .lines()
        .find(|l| l.starts_with("ratio a / b"))
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ratio > 0.0 && ratio < 1.0, "{out}");
    assert!(psd.join("radial_psd.svg").exists() && psd.join("psd.csv").exists() && psd.join("psd.json").exists());

    // few-shot: k subjects per class from the pool, one draw each; an impossible k is skipped
    let fs = d.join("fewshot");
    let out = ok(&[
        "fewshot",
        "--checkpoint",
        s(&ckpt),
        "--names",
        "jepa",
        "--manifest",
        s(&manifest),
        "--k",
        "2,3,50",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--out",
        s(&fs),
        "--quiet",
    ]);
    assert!(out.contains("| jepa |") && out.contains("k = 3"), "{out}");
    let rows = std::fs::read_to_string(fs.join("fewshot.csv")).unwrap();
    assert_eq!(rows.lines().count(), 3, "{rows}");
    assert!(rows.lines().nth(1).unwrap().starts_with("jepa,2,0,"), "{rows}");

    // one report over every kind of output folder
    let html = d.join("report.html");
    let out = ok(&[
        "report",
        s(&run),
        s(&probe),
        s(&cv),
        s(&ts),
        s(&psd),
        s(&fs),
        "--out",
        s(&html),
    ]);
    // the cross-validation's two folds are classifier runs of their own, one level down
    assert!(
        out.contains("8 sections: 1 pretraining, 3 classifier, 1 cross-validation, 1 representations, 1 spectral analysis, 1 few-shot"),
        "{out}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    // self-contained: figures inline (loss curves, preview, ROC, confusion, t-SNE, PSD, few-shot)
    assert!(
        page.contains("<table>") && page.matches("<svg").count() >= 8,
        "inline figures"
    );
    assert!(!page.contains("src=\"") || page.matches("src=\"data:").count() == page.matches("src=\"").count());
    let summary_at = page.find("id=\"summary\"").unwrap();
    let contents_at = page.find("id=\"contents\"").unwrap();
    assert!(summary_at < contents_at && contents_at < page.find("id=\"pretraining-").unwrap());
    let md = std::fs::read_to_string(d.join("report.md")).unwrap();
    assert!(md.contains("## Cross-validation") && md.contains("| test |"), "{md}");
    // every Markdown figure link resolves from the report's folder
    let links: Vec<&str> = md
        .split("](")
        .skip(1)
        .map(|r| &r[..r.find(')').unwrap()])
        .filter(|l| l.ends_with(".svg"))
        .collect();
    assert!(links.len() >= 8, "{links:?}");
    for l in links {
        assert!(!l.starts_with('/'), "{l} is not relative");
        assert!(
            d.join(l.replace("%20", " ")).exists(),
            "{l} does not resolve from {}",
            d.display()
        );
    }
    assert!(fails(&["report", s(&syn), "--out", s(&html)]).contains("none of the folders"));

    // bad input: a missing checkpoint is named
    let err = fails(&[
        "probe",
        "--checkpoint",
        s(&d.join("nope.safetensors")),
        "--manifest",
        s(&manifest),
        "--out",
        s(&d.join("x")),
    ]);
    assert!(err.contains("nope.safetensors"), "{err}");
}

#[test]
fn three_class_probe_from_scratch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let syn = d.join("syn");
    ok(&[
        "synth",
        "--out",
        s(&syn),
        "--task",
        "tumor-grade-3",
        "--subjects",
        "15",
        "--size",
        "40",
    ]);
    let manifest = syn.join("manifest.csv");
    let cfg = d.join("small.toml");
    std::fs::write(&cfg, "batch_size = 4\n[prep]\ndepth = 16\nsize = 32\n").unwrap();
    let out = d.join("probe");
    ok(&[
        "probe",
        "--from-scratch",
        "tiny-mae",
        "--manifest",
        s(&manifest),
        "--fractions",
        "0.4,0.3,0.3",
        "--out",
        s(&out),
        "--epochs",
        "1",
        "--config",
        s(&cfg),
        "--quiet",
    ]);
    let p = std::fs::read_to_string(out.join("test_predictions.csv")).unwrap();
    assert!(p.lines().next().unwrap().ends_with("p0,p1,p2"), "{p}");
    // probabilities sum to one; one-vs-rest AUROC, no positive-class F1
    for line in p.lines().skip(1) {
        let sum: f64 = line.split(',').skip(3).map(|v| v.parse::<f64>().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-5, "{line}");
    }
    let v: serde_json::Value = serde_json::from_str(
        ok(&[
            "metrics",
            "--predictions",
            s(&out.join("test_predictions.csv")),
            "--json",
        ])
        .trim(),
    )
    .unwrap();
    assert!(v.get("f1_positive").is_none() && v["auroc"].as_f64().is_some(), "{v}");
}

/// Text labels: `pretrain` ignores them (and unlabelled rows), a probe maps them through the
/// order `--labels` gives, prints and stores the map, and then reproduces, metric for metric, the
/// probe of the same manifest with the integer labels that order stands for.
#[test]
fn text_labels_map_to_the_classes_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifest = common::synth(d, 12);
    let ints = std::fs::read_to_string(&manifest).unwrap();
    let text: String = ints
        .lines()
        .enumerate()
        .map(|(i, l)| match (i, l.split_once(',')) {
            (0, _) | (_, None) => format!("{l}\n"),
            (_, Some((label, rest))) => format!("{},{rest}\n", if label == "1" { "AD" } else { "CN" }),
        })
        .collect();
    let text_manifest = d.join("syn/text.csv");
    std::fs::write(&text_manifest, &text).unwrap();
    // one unlabelled row: pretraining needs no labels
    let unlabelled = d.join("syn/unlabelled.csv");
    std::fs::write(&unlabelled, text.replacen("\nAD,", "\n,", 1)).unwrap();
    let small = d.join("small.toml");
    std::fs::write(
        &small,
        "[data]\nbatch_size = 4\nworkers = 1\n[data.prep]\ndepth = 16\nsize = 32\n[optim]\nepochs = 1\nwarmup_epochs = 0\n",
    )
    .unwrap();
    ok(&[
        "pretrain",
        "--preset",
        "tiny-mae",
        "--manifest",
        s(&unlabelled),
        "--out",
        s(&d.join("pre")),
        "--config",
        s(&small),
        "--quiet",
    ]);
    let cfg = d.join("probe.toml");
    std::fs::write(&cfg, "batch_size = 4\n[prep]\ndepth = 16\nsize = 32\n").unwrap();
    let probe = |m: &Path, out: &str, extra: &[&str]| {
        let out = d.join(out);
        let mut args = vec![
            "probe",
            "--from-scratch",
            "tiny-mae",
            "--manifest",
            s(m),
            "--out",
            s(&out),
            "--epochs",
            "1",
            "--config",
            s(&cfg),
            "--quiet",
        ];
        args.extend(extra);
        let said = ok(&args);
        let metrics: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
        (said, metrics, std::fs::read_to_string(out.join("config.toml")).unwrap())
    };
    let (_, want, _) = probe(Path::new(&manifest), "ints", &[]);
    let (said, got, config) = probe(&text_manifest, "text", &["--labels", "CN,AD"]);
    assert!(said.contains("labels: 0 = CN, 1 = AD (from --labels)"), "{said}");
    assert_eq!(got["class_names"], serde_json::json!(["CN", "AD"]));
    let names = config.split("class_names").nth(1).unwrap_or_default();
    assert!(
        names.find("\"CN\"") < names.find("\"AD\"") && names.contains("\"AD\""),
        "{config}"
    );
    assert_eq!(got["test"], want["test"]);
    // the default order is sorted: AD is class 0, so the positive class flips
    let (said, _, _) = probe(&text_manifest, "sorted", &[]);
    assert!(said.contains("labels: 0 = AD, 1 = CN (names sorted"), "{said}");
    // a name the order does not list, and text labels in a classifier manifest with an empty one
    let e = fails(&[
        "probe",
        "--from-scratch",
        "tiny-mae",
        "--manifest",
        s(&text_manifest),
        "--labels",
        "CN,MCI",
        "--out",
        s(&d.join("bad")),
    ]);
    assert!(e.contains("label 'AD' is not one of the classes CN,MCI"), "{e}");
    let e = fails(&[
        "probe",
        "--from-scratch",
        "tiny-mae",
        "--manifest",
        s(&unlabelled),
        "--out",
        s(&d.join("bad2")),
    ]);
    assert!(e.contains("unlabelled"), "{e}");
}

/// The README's first command, shrunk: every stage runs, the summary states the comparison with
/// the random encoder per task, and the report inlines its figures.
#[test]
fn demo_runs_every_stage() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let text = ok(&[
        "demo",
        "--out",
        s(&out),
        "--atrophy-subjects",
        "10",
        "--tumour-subjects",
        "10",
        "--pretrain-epochs",
        "1",
        "--probe-epochs",
        "2",
        "--finetune-epochs",
        "1",
        "--baseline-epochs",
        "1",
        "--seeds",
        "2",
    ]);
    assert!(text.contains("demo finished"), "{text}");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for needle in [
        "atrophy: ",
        "tumour: ",
        "comparisons with the paired 95 % interval above 0 (mean test AUROC over 2 seeds",
        "mae vs init",
        "vcr-jepa vs random",
        "| sl-mae",
        "| vcr-jepa",
        "| init | step-0 student | 2 |",
        "| random | random init | 2 |",
        "ResNet-50",
    ] {
        assert!(summary.contains(needle), "{needle} missing from\n{summary}");
    }
    for run in [
        "atrophy-probe-jepa-seed0",
        "atrophy-probe-jepa-seed1",
        "atrophy-probe-init-seed1",
        "tumour-probe-random-seed1001",
        "atrophy-finetune-mae",
        "tumour-finetune-mae",
    ] {
        assert!(out.join(run).join("metrics.json").exists(), "{run}");
    }
    assert!(out
        .join("pretrain-vcr-jepa-seed1/checkpoints/final.safetensors")
        .exists());
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("data:image/png;base64,"));
    assert!(
        html.contains("<caption>atrophy: frozen probes, mean ± sd over seeds"),
        "summary tables rendered"
    );
    // each probe's t-SNE map sits in that probe's section, after its heading
    let section = html.find("id=\"classifier-atrophy-probe-jepa-seed0\"").unwrap();
    let next = section
        + html[section..]
            .find("<h3 id=\"classifier-atrophy-probe-mae-seed0\"")
            .unwrap();
    assert!(
        html[section..next].contains("atrophy-jepa-seed0: t-SNE"),
        "t-SNE under its run"
    );
    // the first seed's runs in full, the others only in the study tables
    assert!(!html.contains("id=\"classifier-atrophy-probe-jepa-seed1\""));
    let study: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("study.json")).unwrap()).unwrap();
    assert_eq!(
        study["tasks"][0]["comparisons"].as_array().unwrap().len(),
        8,
        "4 objectives × 2 controls"
    );
    assert!(html[section..next].contains("normal (n = "), "legend names the classes");
}

/// `benchmark`, shrunk: every task, the study, the few-shot sweep and four claims with verdicts;
/// the cross-contrast task tests the T2 and FLAIR scans of the subjects whose T1 the reference
/// task tests; the report shows the claims.
#[test]
fn benchmark_tests_four_claims() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    #[rustfmt::skip]
    let text = ok(&[
        "benchmark", "--out", s(&out), "--subjects", "12", "--contrast-subjects", "10",
        "--few-shot-subjects", "30", "--k", "3", "--draws", "1", "--seeds", "2",
        "--pretrain-epochs", "1", "--probe-epochs", "2", "--finetune-epochs", "1",
        "--baseline-epochs", "1", "--resamples", "50",
    ]);
    for needle in [
        "Claim 1: spectral-loss MAE",
        "Claim 2: VCR-JEPA",
        "Claim 3: the MAE family",
        "Claim 4: sl-mae",
        "k = 3 per class (primary)",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    let b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("benchmark.json")).unwrap()).unwrap();
    let claims = b["claims"].as_array().unwrap();
    assert_eq!(claims.len(), 4);
    for c in claims {
        let v = c["verdict"].as_str().unwrap();
        assert!(["supported", "not-supported", "undecided"].contains(&v), "{v}");
        assert_eq!(
            c["rows"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["primary"] == true)
                .count(),
            1
        );
    }
    let tasks = b["study"]["tasks"].as_array().unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t["task"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "texture",
            "tumour",
            "multi-factor",
            "mci",
            "contrast-T2-FLAIR",
            "contrast-T1"
        ]
    );
    assert_eq!(
        tasks[4]["test_scans"].as_u64().unwrap(),
        2 * tasks[5]["test_scans"].as_u64().unwrap()
    );
    for f in [
        "claims.md",
        "claim1.csv",
        "claim4.json",
        "fewshot/resnet50-k3-draw0/metrics.json",
        "data/contrast/manifest.csv",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let contrasts = std::fs::read_to_string(out.join("data/contrast/manifest.csv")).unwrap();
    assert!(
        ["T1", "T2", "FLAIR"]
            .iter()
            .all(|c| contrasts.contains(&format!(",{c},"))),
        "{contrasts}"
    );
    // the claims again from the run folders, training nothing
    let claims_md = std::fs::read_to_string(out.join("claims.md")).unwrap();
    std::fs::remove_file(out.join("claims.md")).unwrap();
    ok(&["benchmark", "--out", s(&out), "--claims-only", "--resamples", "50"]);
    assert_eq!(std::fs::read_to_string(out.join("claims.md")).unwrap(), claims_md);
    let html = dir.path().join("r.html");
    ok(&["report", s(&out), "--out", s(&html)]);
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(html.contains("Claims benchmark") && html.contains("Claim 4: sl-mae"));
}
