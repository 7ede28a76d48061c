//! A checkpoint in the reference implementation's layout, written by PyTorch's torch.save from
//! modules built as the docs describe (tests/fixtures/reference_micro.pth.tar, made by
//! python/reference_checkpoint.py), imported: the encoder's tokens must equal PyTorch's forward
//! pass on the same input, an export must import back to the same tensors, and every way a file
//! can fail to fit the model is an error naming the key.

use std::path::{Path, PathBuf};

use brainssl_backend::{tensor, to_vec, Device};
use brainssl_downstream::encoder::{CheckpointKey, Encoder};
use brainssl_train::checkpoint::load_tensors;
use brainssl_train::reference::{export, import, ReferenceEncoder};
use brainssl_train::PretrainConfig;

const MICRO: &str = "[encoder]\nembed_dim = 24\ndepth = 1\nheads = 2\npatch = 4\ntubelet = 4\n\
                     [predictor]\nembed_dim = 12\ndepth = 1\nheads = 2\n[data.prep]\ndepth = 8\nsize = 8\n";

/// A host tensor: name, shape, values.
type Named = (String, Vec<usize>, Vec<f32>);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn micro() -> PretrainConfig {
    PretrainConfig::preset("tiny-jepa")
        .unwrap()
        .with_overrides(MICRO)
        .unwrap()
}

fn tokens(ckpt: &Path, key: CheckpointKey) -> Vec<f32> {
    let (x, shape) = brainssl_scan::npy::read_f32(&fixture("reference_micro_input.npy")).unwrap();
    let enc = Encoder::load(ckpt, key, Device::Cpu).unwrap();
    to_vec(&enc.vit.forward(&tensor(&x, &shape, Device::Cpu), None))
}

#[test]
fn an_imported_encoder_reproduces_pytorch_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let imported = dir.path().join("imported.safetensors");
    let report = import(
        &fixture("reference_micro.pth.tar"),
        &micro(),
        ReferenceEncoder::Encoder,
        &imported,
    )
    .unwrap();
    let said = report.notes.join("; ");
    assert!(
        said.contains("encoder: 16 tensors") && said.contains("teacher: 16 tensors"),
        "{said}"
    );
    assert!(said.contains("not imported: opt (48 tensors)"), "{said}");

    let (want, _) = brainssl_scan::npy::read_f32(&fixture("reference_micro_tokens.npy")).unwrap();
    let got = tokens(&imported, CheckpointKey::Student);
    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert_eq!(got.len(), want.len());
    assert!(worst < 1e-4, "largest difference from PyTorch's tokens: {worst}");
    // the target encoder has other weights: its tokens differ (so the comparison above can fail)
    let teacher = tokens(&imported, CheckpointKey::Teacher);
    assert!(teacher.iter().zip(&want).any(|(a, b)| (a - b).abs() > 1e-2));

    // export, import again: the same tensors
    let exported = dir.path().join("exported.pth.tar");
    export(&imported, &exported).unwrap();
    let again = dir.path().join("again.safetensors");
    import(&exported, &micro(), ReferenceEncoder::Encoder, &again).unwrap();
    let (a, _) = load_tensors(&imported).unwrap();
    let (b, _) = load_tensors(&again).unwrap();
    assert_eq!(a, b);
}

#[test]
fn files_that_do_not_fit_the_model_are_refused_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("reference_micro.pth.tar");
    let out = dir.path().join("x.safetensors");
    // the preset's own 96-wide encoder is not this checkpoint's
    let tiny = PretrainConfig::preset("tiny-jepa").unwrap();
    let e = format!(
        "{:#}",
        import(&src, &tiny, ReferenceEncoder::Encoder, &out).unwrap_err()
    );
    assert!(
        e.contains("reference_micro.pth.tar") && e.contains("pos_embed has shape [1, 8, 24]"),
        "{e}"
    );

    // altered copies of the fixture's encoder: positions zeroed, a key missing, a key too many
    let imported = dir.path().join("imported.safetensors");
    import(&src, &micro(), ReferenceEncoder::Encoder, &imported).unwrap();
    let (t, _) = load_tensors(&imported).unwrap();
    let encoder: Vec<Named> = t
        .iter()
        .filter_map(|(k, (s, v))| {
            k.strip_prefix("student.encoder.")
                .map(|k| (k.to_string(), s.clone(), v.clone()))
        })
        .collect();
    let write = |name: &str, edit: &dyn Fn(&mut Vec<Named>)| {
        let mut e = encoder.clone();
        edit(&mut e);
        let entries: Vec<_> = e
            .into_iter()
            .map(|(k, s, v)| ("encoder".to_string(), format!("module.backbone.{k}"), s, v))
            .collect();
        let p = dir.path().join(name);
        brainssl_train::torch_file::save(&p, &entries, 0).unwrap();
        p
    };
    let zero = write("zero.pth", &|e| {
        e.push(("pos_embed".into(), vec![1, 8, 24], vec![0.0; 192]))
    });
    let missing = write("missing.pth", &|e| e.retain(|(k, ..)| k != "blocks.0.norm1.weight"));
    let extra = write("extra.pth", &|e| e.push(("head.weight".into(), vec![2], vec![0.0; 2])));
    for (p, want) in [
        (zero, "not the fixed 3-D sin-cos table"),
        (missing, "missing tensor blocks.0.norm1.weight"),
        (extra, "encoder.head.weight"),
    ] {
        let e = format!(
            "{:#}",
            import(&p, &micro(), ReferenceEncoder::Encoder, &out).unwrap_err()
        );
        assert!(
            e.contains(want) && e.contains(p.file_name().unwrap().to_str().unwrap()),
            "{e}"
        );
    }
    // no predictor in the file: the head keeps its initialisation, and the report says so
    let lone = write("lone.pth", &|_| {});
    let r = import(&lone, &micro(), ReferenceEncoder::Encoder, &out).unwrap();
    assert!(
        r.notes.iter().any(|n| n.contains("random initialisation")),
        "{:?}",
        r.notes
    );
}
