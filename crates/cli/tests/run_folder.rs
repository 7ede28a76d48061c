//! Run folders that cannot go wrong: one writer at a time, one overwrite policy, nothing left by a
//! failed start, Ctrl-C that checkpoints and resumes exactly, resume without a manifest, longer runs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{fails, ok, synth, write_file};

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

const SMALL: &str =
    "[data]\nbatch_size = 2\nworkers = 1\n[data.prep]\ndepth = 16\nsize = 32\n[optim]\nwarmup_epochs = 1\n";

fn config(dir: &Path, extra: &str) -> String {
    write_file(dir, "c.toml", &format!("{SMALL}{extra}"))
}

/// The log, which holds no timings: identical runs give identical bytes.
fn log_cols(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("log.csv"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn rows(run: &Path) -> usize {
    std::fs::read_to_string(run.join("log.csv")).map_or(0, |t| t.lines().count().saturating_sub(1))
}

/// Starts a pretraining and waits until it has logged `steps` steps.
fn started(manifest: &str, cfg: &str, run: &Path, epochs: &str, steps: usize) -> std::process::Child {
    let child = Command::new(env!("CARGO_BIN_EXE_brainssl"))
        .args([
            "--threads",
            "1",
            "pretrain",
            "--preset",
            "tiny-mae",
            "--manifest",
            manifest,
            "--config",
            cfg,
        ])
        .args(["--epochs", epochs, "--quiet", "--out"])
        .arg(run)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while rows(run) < steps {
        assert!(t.elapsed() < Duration::from_secs(120), "the run did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn ctrl_c_checkpoints_mid_epoch_and_the_resumed_run_matches_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = synth(dir.path(), 16);
    // 8 steps per epoch, two per optimiser step
    let cfg = config(dir.path(), "accum_steps = 2\n");
    let straight = dir.path().join("straight");
    ok(&[
        "--threads",
        "1",
        "pretrain",
        "--preset",
        "tiny-mae",
        "--manifest",
        &manifest,
        "--config",
        &cfg,
        "--epochs",
        "3",
        "--quiet",
        "--out",
        straight.to_str().unwrap(),
    ]);
    let run = dir.path().join("run");
    let child = started(&manifest, &cfg, &run, "3", 3);
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("interrupted: checkpoint") && err.contains("--resume"),
        "{err}"
    );
    let done = rows(&run);
    assert!(done < 24, "the run finished before the signal: {done} steps");
    // it stopped at an optimiser-step boundary
    assert_eq!(done % 2, 0, "{err}");
    // no --manifest: the run folder has its own
    let e = Command::new(env!("CARGO_BIN_EXE_brainssl"))
        .args(["--threads", "1", "pretrain", "--quiet", "--resume"])
        .arg(&run)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&e.stderr);
    assert!(e.status.success(), "{said}");
    assert!(
        said.contains(&format!("step {}", done % 8)) && said.contains("of 3 epochs"),
        "{said}"
    );
    assert_eq!(log_cols(&straight), log_cols(&run));
}

#[test]
fn a_second_writer_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = synth(dir.path(), 8);
    let cfg = config(dir.path(), "");
    let run = dir.path().join("run");
    let mut child = started(&manifest, &cfg, &run, "10000", 1);
    let e = fails(&["pretrain", "--resume", run.to_str().unwrap()]);
    assert!(
        e.contains("in use by pretrain") && e.contains(&child.id().to_string()),
        "{e}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // its holder is gone: the next start takes the lock over
    let again = run.join("checkpoints");
    assert!(again.exists());
}

#[test]
fn overwrite_policy_failed_starts_resume_messages_and_longer_runs() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = synth(dir.path(), 8);
    let cfg = config(dir.path(), "");
    let run = dir.path().join("run");
    let args = |epochs: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "pretrain",
            "--preset",
            "tiny-jepa",
            "--manifest",
            &manifest,
            "--config",
            &cfg,
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend([
            "--epochs".into(),
            epochs.into(),
            "--out".into(),
            run.to_str().unwrap().into(),
        ]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    // a failed start (every scan missing) leaves nothing behind
    let missing = dir.path().join("missing.csv");
    std::fs::write(
        &missing,
        "label,subject_id,contrast,nii_file_path\n0,a,t1,nope1.nii\n0,b,t1,nope2.nii\n",
    )
    .unwrap();
    let e = fails(&[
        "pretrain",
        "--preset",
        "tiny-jepa",
        "--manifest",
        missing.to_str().unwrap(),
        "--config",
        &cfg,
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(e.contains("pre-flight: 2 of 2 scans cannot be read"), "{e}");
    assert!(!run.exists(), "a failed start left {}", run.display());
    // resuming a folder without a checkpoint says so
    std::fs::create_dir_all(&run).unwrap();
    let e = fails(&["pretrain", "--resume", run.to_str().unwrap(), "--manifest", &manifest]);
    assert!(e.contains("has no checkpoint") && e.contains("--force"), "{e}");
    // a non-empty folder is refused; --force replaces the run files and keeps the rest
    std::fs::write(run.join("notes.txt"), "mine").unwrap();
    std::fs::write(run.join(".log.csv.tmp4242"), "half").unwrap();
    let e = fails(&refs(&args("2", &[])));
    assert!(e.contains("is not empty") && e.contains("--force"), "{e}");
    ok(&refs(&args("2", &["--force"])));
    assert!(run.join("notes.txt").exists() && run.join("manifest.csv").exists());
    assert!(
        !run.join(".log.csv.tmp4242").exists(),
        "a leftover temporary file survived"
    );
    assert_eq!(rows(&run), 8);
    let e = fails(&refs(&args("2", &[])));
    assert!(e.contains("already holds a run"), "{e}");
    // a finished run: nothing to do, or --epochs trains it longer
    let out = ok(&["pretrain", "--resume", run.to_str().unwrap()]);
    assert!(out.contains("nothing to do"), "{out}");
    let out = ok(&[
        "pretrain",
        "--resume",
        run.to_str().unwrap(),
        "--epochs",
        "3",
        "--quiet",
    ]);
    assert!(out.contains("done: 12 steps"), "{out}");
    assert_eq!(rows(&run), 12);
    let e = fails(&["pretrain", "--resume", run.to_str().unwrap(), "--epochs", "1"]);
    assert!(e.contains("already trained 3 epochs"), "{e}");
}

/// Every result folder follows one policy: a non-empty --out is refused unless --force.
#[test]
fn result_folders_are_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = synth(dir.path(), 4);
    let out = dir.path().join("psd");
    let args = |force: bool| {
        let mut v = vec![
            "psd",
            "--manifest",
            &manifest,
            &manifest,
            "--names",
            "a,b",
            "--depth",
            "16",
            "--size",
            "16",
            "--out",
        ];
        v.push(out.to_str().unwrap());
        if force {
            v.push("--force");
        }
        v.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    ok(&refs(&args(false)));
    let e = fails(&refs(&args(false)));
    assert!(e.contains("is not empty") && e.contains("--force"), "{e}");
    ok(&refs(&args(true)));
    assert!(
        !out.join(brainssl_scan::folder::LOCK_FILE).exists(),
        "the lock outlived the command"
    );
}
