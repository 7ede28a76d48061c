//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::process::{Command, Output};

pub fn brainssl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brainssl"))
        .args(args)
        .output()
        .expect("run brainssl")
}

pub fn ok(args: &[&str]) -> String {
    success_text(brainssl(args), args)
}

pub fn success_text(o: Output, args: &[&str]) -> String {
    assert!(
        o.status.success(),
        "brainssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn fails(args: &[&str]) -> String {
    failure_text(brainssl(args), args)
}

pub fn failure_text(o: Output, args: &[&str]) -> String {
    assert!(!o.status.success(), "brainssl {args:?} should fail");
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!e.contains("panicked"), "panic instead of an error: {e}");
    e
}

/// Synthetic brains (40³) for `subjects` subjects in DIR/syn; returns the manifest's path.
pub fn synth(dir: &std::path::Path, subjects: usize) -> String {
    let out = dir.join("syn");
    ok(&[
        "synth",
        "--out",
        out.to_str().unwrap(),
        "--subjects",
        &subjects.to_string(),
        "--size",
        "40",
    ]);
    out.join("manifest.csv").to_str().unwrap().to_string()
}

/// Writes `text` to DIR/NAME and returns its path (config overrides for a test).
pub fn write_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}
