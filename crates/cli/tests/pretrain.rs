//! End-to-end tests of pretraining on tiny synthetic brains: every objective learns, a killed run
//! resumes to the same losses, bad runs fail with clear errors.

use std::path::Path;

mod common;
use common::{fails, ok, synth};

/// Tiny volumes (16×32×32, 32 tokens) so each run takes seconds in a debug build.
const SMALL: &str = "[data]\nbatch_size = 4\nworkers = 1\n[data.prep]\ndepth = 16\nsize = 32\n";

fn write_overrides(dir: &Path, extra: &str) -> String {
    common::write_file(dir, "overrides.toml", &format!("{SMALL}{extra}"))
}

/// (epoch, main loss column, status) of every logged step.
fn log_rows(run: &Path) -> Vec<(usize, f64, String)> {
    let text = std::fs::read_to_string(run.join("log.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[3].parse().unwrap(),
                f.last().unwrap().to_string(),
            )
        })
        .collect()
}

fn epoch_mean(rows: &[(usize, f64, String)], epoch: usize) -> f64 {
    let v: Vec<f64> = rows.iter().filter(|r| r.0 == epoch).map(|r| r.1).collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn every_tiny_objective_trains_logs_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = synth(dir.path(), 16);
    let cfg = write_overrides(dir.path(), "[optim]\nepochs = 8\nwarmup_epochs = 1\nlr = 2e-3\n");
    for preset in ["tiny-mae", "tiny-sl-mae", "tiny-jepa", "tiny-vcr-jepa"] {
        let run = dir.path().join(preset);
        let out = ok(&[
            "pretrain",
            "--preset",
            preset,
            "--manifest",
            &manifest,
            "--out",
            run.to_str().unwrap(),
            "--config",
            &cfg,
            "--quiet",
        ]);
        assert!(out.contains("done: 32 steps"), "{preset}: {out}");
        let rows = log_rows(&run);
        assert_eq!(rows.len(), 32, "{preset}");
        assert!(rows.iter().all(|r| r.1.is_finite() && r.2 == "ok"), "{preset}");
        let first = (epoch_mean(&rows, 0) + epoch_mean(&rows, 1)) / 2.0;
        let last = (epoch_mean(&rows, 6) + epoch_mean(&rows, 7)) / 2.0;
        assert!(last < first, "{preset}: main loss did not fall ({first} → {last})");
        for f in [
            "checkpoints/latest.safetensors",
            "checkpoints/final.json",
            "config.toml",
        ] {
            assert!(run.join(f).exists(), "{preset}: no {f}");
        }
        if preset.ends_with("mae") {
            assert!(run.join("previews/epoch-0008.svg").exists(), "{preset}: no preview");
        }
        if preset == "tiny-sl-mae" {
            // spectral steps (every 2nd from epoch 1, 4 steps per epoch) log the spectral loss, others −1
            let text = std::fs::read_to_string(run.join("log.csv")).unwrap();
            let spec: Vec<f64> = text
                .lines()
                .skip(1)
                .map(|l| l.split(',').nth(4).unwrap().parse().unwrap())
                .collect();
            assert!(spec[..4].iter().all(|&s| s == -1.0));
            assert!(spec[4..].iter().step_by(2).all(|&s| s > 0.0) && spec[5..].iter().step_by(2).all(|&s| s == -1.0));
        }
    }
}

#[test]
fn a_killed_run_resumes_to_the_same_losses() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = synth(dir.path(), 8);
    // two micro-steps per optimiser step: accumulation state must not leak across the kill
    let cfg = write_overrides(dir.path(), "[optim]\nepochs = 3\nwarmup_epochs = 1\naccum_steps = 2\n");
    for preset in ["tiny-sl-mae", "tiny-vcr-jepa"] {
        let (a, b) = (
            dir.path().join(format!("{preset}-a")),
            dir.path().join(format!("{preset}-b")),
        );
        let common = ["--preset", preset, "--manifest", &manifest, "--config", &cfg, "--quiet"];
        ok(&[&["pretrain", "--out", a.to_str().unwrap()][..], &common[..]].concat());
        // killed in the middle of epoch 2 (2 steps per epoch): latest holds epoch 1
        let e = fails(
            &[
                &["pretrain", "--out", b.to_str().unwrap(), "--halt-after-steps", "3"][..],
                &common[..],
            ]
            .concat(),
        );
        assert!(e.contains("halted"), "{e}");
        ok(&[
            "pretrain",
            "--resume",
            b.to_str().unwrap(),
            "--manifest",
            &manifest,
            "--quiet",
        ]);
        // the logs are byte for byte identical (timings live in timing.csv)
        let log = |run: &Path| std::fs::read(run.join("log.csv")).unwrap();
        assert_eq!(log(&a), log(&b), "{preset}");
        let timed = std::fs::read_to_string(b.join("timing.csv")).unwrap();
        assert_eq!(
            timed.lines().count(),
            std::fs::read_to_string(b.join("log.csv")).unwrap().lines().count()
        );
        // a finished run refuses to be overwritten
        let e = fails(&[&["pretrain", "--out", a.to_str().unwrap()][..], &common[..]].concat());
        assert!(e.contains("already holds a run"), "{e}");
    }
    // resuming with other scans is refused
    let other = dir.path().join("other");
    ok(&[
        "synth",
        "--out",
        other.to_str().unwrap(),
        "--subjects",
        "8",
        "--size",
        "40",
        "--seed",
        "5",
    ]);
    let run = dir.path().join("tiny-sl-mae-b");
    let e = fails(&[
        "pretrain",
        "--resume",
        run.to_str().unwrap(),
        "--manifest",
        other.join("manifest.csv").to_str().unwrap(),
    ]);
    assert!(e.contains("data hash"), "{e}");
}

#[test]
fn non_finite_losses_skip_steps_then_abort() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = synth(dir.path(), 8);
    // an absurd learning rate blows the weights up after the first step
    let cfg = write_overrides(
        dir.path(),
        "[optim]\nepochs = 3\nwarmup_epochs = 0\nstart_lr = 1e30\nlr = 1e30\nfinal_lr = 1e30\n[run]\nmax_nonfinite = 1\n",
    );
    let run = dir.path().join("run");
    let e = failing_tiny_mae(&manifest, &run, &cfg);
    assert!(e.contains("non-finite losses (limit run.max_nonfinite = 1)"), "{e}");
    let rows = log_rows(&run);
    assert_eq!(rows.iter().filter(|r| r.2 == "skipped-nonfinite").count(), 2);
}

#[test]
fn model_info_and_print_config_for_presets() {
    let jepa = ok(&["model-info", "--preset", "jepa"]);
    assert!(jepa.contains("85,449,984") && jepa.contains("11,238,912"), "{jepa}");
    assert!(jepa.contains("20x20x20 = 8000 tokens"), "{jepa}");
    let mae = ok(&["model-info", "--preset", "sl-mae"]);
    assert!(mae.contains("14,689,280") && mae.contains("18x18x18"), "{mae}");
    let toml_text = ok(&["print-config", "--preset", "vcr-jepa"]);
    assert!(
        toml_text.contains("objective = \"vcr-jepa\"") && toml_text.contains("reg_coeff = 0.25"),
        "{toml_text}"
    );
    // choices are listed and bad values refused before a command starts
    let e = fails(&["print-config", "--preset", "nope"]);
    assert!(
        e.contains("invalid value 'nope'") && e.contains("possible values: mae, sl-mae"),
        "{e}"
    );
    let e = fails(&[
        "probe",
        "--from-scratch",
        "tiny-mae",
        "--manifest",
        "m.csv",
        "--out",
        "o",
        "--recipe",
        "hf",
    ]);
    assert!(
        e.contains("invalid value 'hf'") && e.contains("paper, reference"),
        "{e}"
    );
    let e = fails(&[
        "cv",
        "--from-scratch",
        "tiny-mae",
        "--manifest",
        "m.csv",
        "--out",
        "o",
        "--mode",
        "x",
    ]);
    assert!(e.contains("frozen, finetune"), "{e}");
    let e = fails(&[
        "embed",
        "--checkpoint",
        "c",
        "--scans",
        "s",
        "--out",
        "o",
        "--device",
        "tpu",
    ]);
    assert!(e.contains("unknown device 'tpu'"), "{e}");
    let recipe: toml::Value =
        toml::from_str(&ok(&["print-config", "--recipe", "reference", "--mode", "finetune"])).unwrap();
    assert_eq!(recipe["layer_decay"].as_float(), Some(0.6));
    assert_eq!(recipe["mode"].as_str(), Some("finetune"));
    // only the flags a command accepts: the frozen-probe options are not offered by finetune
    assert!(!ok(&["finetune", "--help"]).contains("--feature-cache"));
    let help = ok(&["probe", "--help"]);
    assert!(
        help.contains("--feature-cache") && help.contains("--standardise-tokens"),
        "{help}"
    );
    assert!(
        help.contains("- teacher: The EMA target encoder") && help.contains("[default: paper]"),
        "{help}"
    );
}

#[test]
fn bench_train_prints_a_row_per_preset() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_overrides(dir.path(), "");
    let out = ok(&[
        "bench",
        "train",
        "--preset",
        "tiny-mae,tiny-vcr-jepa",
        "--config",
        &cfg,
        "--steps",
        "2",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--python",
        "none",
    ]);
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("| tiny-")).collect();
    assert_eq!(rows.len(), 2, "{out}");
    // batch 4, 16x32x32 input: 2 x 4 x 4 = 32 tokens
    assert!(rows[0].starts_with("| tiny-mae | 4 | 32 ("), "{out}");
}

/// The error of a tiny-mae pretraining run that must fail.
fn failing_tiny_mae(manifest: &str, run: &Path, cfg: &str) -> String {
    fails(&[
        "pretrain",
        "--preset",
        "tiny-mae",
        "--manifest",
        manifest,
        "--out",
        run.to_str().unwrap(),
        "--config",
        cfg,
        "--quiet",
    ])
}

/// Every scan gone: the run fails with a summary instead of "done: 0 steps" and random weights.
#[test]
fn a_run_where_no_scan_loads_fails_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = synth(dir.path(), 8);
    let mut removed = 0;
    for entry in std::fs::read_dir(dir.path().join("syn")).unwrap() {
        let sub = entry.unwrap().path();
        if sub.is_dir() {
            for f in std::fs::read_dir(&sub).unwrap() {
                std::fs::remove_file(f.unwrap().path()).unwrap();
                removed += 1;
            }
        }
    }
    assert!(removed >= 8);
    let cfg = write_overrides(dir.path(), "[optim]\nepochs = 2\n");
    let run = dir.path().join("run");
    let e = failing_tiny_mae(&manifest, &run, &cfg);
    assert!(e.contains("pre-flight: 8 of 8 scans cannot be read"), "{e}");
    assert!(!run.join("checkpoints/final.safetensors").exists());
}

/// A bad scan among good ones: refused up front by default, listed; tolerated by
/// run.max_unreadable_fraction with warnings that reach stderr and the run's warnings.log; a scan
/// whose header is sound but whose data is cut fails at load and counts against the same fraction.
#[test]
fn unreadable_scans_are_refused_up_front_or_tolerated_within_a_fraction() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = synth(dir.path(), 8);
    let scans: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path().join("syn"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()))
        .filter(|p| p.to_string_lossy().ends_with("_T1w.nii.gz"))
        .collect();
    assert_eq!(scans.len(), 8);
    std::fs::remove_file(&scans[0]).unwrap();
    let cfg = write_overrides(dir.path(), "[optim]\nepochs = 1\n");
    let run = dir.path().join("strict");
    let e = failing_tiny_mae(&manifest, &run, &cfg);
    assert!(
        e.contains("pre-flight: 1 of 8 scans") && e.contains(scans[0].to_str().unwrap()),
        "{e}"
    );
    let lenient = write_overrides(
        dir.path(),
        "[optim]\nepochs = 1\n[run]\nmax_unreadable_fraction = 0.25\n",
    );
    let run = dir.path().join("lenient");
    let o = common::brainssl(&[
        "pretrain",
        "--preset",
        "tiny-mae",
        "--manifest",
        &manifest,
        "--out",
        run.to_str().unwrap(),
        "--config",
        &lenient,
        "--quiet",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("warning: pre-flight"), "{err}");
    let log = std::fs::read_to_string(run.join("warnings.log")).unwrap();
    assert!(log.contains("pre-flight") && log.contains("skipped scan"), "{log}");
    // cut a second scan's data (its header still promises all of it): 2 of 8 fail, above 0.2
    let bytes = std::fs::read(&scans[1]).unwrap();
    std::fs::write(&scans[1], &bytes[..bytes.len() / 2]).unwrap();
    let tight = write_overrides(
        dir.path(),
        "[optim]\nepochs = 1\n[run]\nmax_unreadable_fraction = 0.2\n",
    );
    let e = failing_tiny_mae(&manifest, &dir.path().join("tight"), &tight);
    assert!(e.contains("epoch 0: 2 of 8 scans failed to load (allowed: 1"), "{e}");
}
