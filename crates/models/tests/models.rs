//! Parameter counts (docs/method.md#parameter-counts), names in the reference layout, and the
//! layers against independent formulas (convolution as patches × weights, attention as materialised
//! softmax).

use brainssl_backend::tch::nn::VarStore;
use brainssl_backend::{autocast, scalar, tensor, to_vec, Device, Kind, Precision, Tensor};
use brainssl_models::layers::sdpa;
use brainssl_models::{
    count_params, named_params, patchify, ClassifierConfig, PredictorConfig, ResNet3d, TokenIndex, VitConfig, VitSize,
};
use brainssl_prep::rng::Rng;

fn store() -> VarStore {
    VarStore::new(Device::Cpu)
}

fn randn(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
    tensor(&v, shape, Device::Cpu)
}

fn max_abs(t: &Tensor) -> f64 {
    scalar(&t.abs().max())
}

#[test]
fn reference_parameter_counts() {
    let mut rng = Rng::new(0);
    let vs = store();
    let vit = VitConfig::sized(VitSize::Base);
    vit.init(vs.root() / "encoder", &mut rng);
    assert_eq!(count_params(&vs, "encoder."), 85_449_984);
    assert_eq!(count_params(&vs, "encoder.patch_embed."), 393_984);
    PredictorConfig::reference(6).init(vs.root() / "predictor", 768, 768, &mut rng);
    assert_eq!(count_params(&vs, "predictor."), 11_238_912);
    PredictorConfig::reference(8).init(vs.root() / "decoder", 768, 512, &mut rng);
    assert_eq!(count_params(&vs, "decoder."), 14_689_280);
    // attentive classifier on ViT-Base, 2 classes (docs/method.md#attentive-classifier)
    for (depth, want) in [(1, 7_255_010), (2, 14_342_882)] {
        let vs = store();
        let c = ClassifierConfig {
            depth,
            heads: 12,
            num_classes: 2,
        };
        c.init(vs.root(), 768, &mut rng);
        assert_eq!(count_params(&vs, ""), want, "depth {depth}");
    }
}

#[test]
fn resnet50_3d_matches_pytorch_parameter_count_and_shapes() {
    let vs = store();
    let m = ResNet3d::resnet50(vs.root(), 2, &mut Rng::new(0));
    // the same network built in PyTorch from docs/method.md#resnet-50-baseline (1 channel,
    // 2 classes, Conv3d/BatchNorm3d)
    assert_eq!(count_params(&vs, ""), 46_159_170);
    let names: Vec<String> = named_params(&vs).into_iter().map(|(k, _)| k).collect();
    for k in [
        "conv1.weight",
        "layer1.0.downsample.0.weight",
        "layer4.2.bn3.running_var",
        "fc.bias",
    ] {
        assert!(names.iter().any(|n| n == k), "no {k}");
    }
    let x = Tensor::ones([2, 1, 16, 32, 32], (Kind::Float, Device::Cpu));
    assert_eq!(m.forward(&x, false, None).size(), vec![2, 2]);
    // training mode updates the running statistics
    let before = to_vec(&m.bn1.running_mean);
    let _ = m.forward(&randn(&[2, 1, 16, 32, 32], 1), true, None);
    assert_ne!(before, to_vec(&m.bn1.running_mean));
}

#[test]
fn classifier_outputs_logits_per_volume_and_ignores_token_order() {
    let vs = store();
    let c = ClassifierConfig {
        depth: 2,
        heads: 2,
        num_classes: 3,
    };
    let clf = c.init(vs.root(), 16, &mut Rng::new(5));
    let x = Tensor::ones([4, 7, 16], (Kind::Float, Device::Cpu));
    assert_eq!(clf.forward(&x).size(), vec![4, 3]);
    // a single query: the pooled vector is invariant to the order of the tokens
    let x = randn(&[1, 7, 16], 6);
    let perm = TokenIndex::Shared(vec![6, 2, 0, 5, 1, 3, 4]);
    let d = clf.forward(&x) - clf.forward(&perm.gather(&x));
    assert!(max_abs(&d) < 1e-5);
}

#[test]
fn paths_and_initialisation_follow_the_reference() {
    let mut cfg = VitConfig::sized(VitSize::Tiny);
    cfg.depth = 3;
    let vs = store();
    cfg.init(vs.root(), &mut Rng::new(7));
    let params = named_params(&vs);
    let find = |p: &str| {
        params
            .iter()
            .find(|n| n.0 == p)
            .map(|n| n.1.shallow_clone())
            .unwrap_or_else(|| panic!("no {p}"))
    };
    assert_eq!(find("blocks.0.attn.qkv.weight").size(), vec![576, 192]);
    assert_eq!(find("patch_embed.proj.weight").size(), vec![192, 1, 8, 8, 8]);
    assert_eq!(to_vec(&find("norm.weight")), vec![1.0; 192]);
    let std = |t: &Tensor| {
        let v = to_vec(t);
        (v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
    };
    // weights 0.02; output projections of block l scaled by 1/sqrt(2l)
    assert!((std(&find("blocks.0.attn.qkv.weight")) - 0.02).abs() < 5e-4);
    let fc2_3 = std(&find("blocks.2.mlp.fc2.weight"));
    assert!((fc2_3 - 0.02 / 6f64.sqrt()).abs() < 3e-4, "{fc2_3}");
    assert!(to_vec(&find("blocks.1.attn.proj.bias")).iter().all(|&b| b == 0.0));
    // same seed, same model
    let again = store();
    cfg.init(again.root(), &mut Rng::new(7));
    let b = named_params(&again);
    for (x, y) in params.iter().zip(&b) {
        assert_eq!(x.0, y.0);
        assert_eq!(to_vec(&x.1), to_vec(&y.1));
    }
}

#[test]
fn tubelet_embedding_is_patches_times_the_conv_weight() {
    let mut cfg = VitConfig::sized(VitSize::Tiny);
    (cfg.embed_dim, cfg.heads, cfg.depth, cfg.patch, cfg.tubelet) = (12, 3, 1, 4, 4);
    let vs = store();
    let enc = cfg.init(vs.root(), &mut Rng::new(3));
    let x = randn(&[2, 1, 8, 12, 8], 11);
    let ours = enc.patch_embed.forward(&x);
    // each token is its 4×4×4 cube (depth-major) times the kernel flattened the same way, plus bias
    let w = enc.patch_embed.weight.reshape([12, 64]);
    let want = patchify(&x, 4).matmul(&w.transpose(0, 1)) + &enc.patch_embed.bias;
    assert_eq!(ours.size(), vec![2, 12, 12]);
    assert!(max_abs(&(ours - want)) < 1e-5);
}

#[test]
fn attention_equals_the_materialised_softmax() {
    let (q, k, v) = (
        randn(&[2, 3, 5, 4], 1),
        randn(&[2, 3, 7, 4], 2),
        randn(&[2, 3, 7, 4], 3),
    );
    let scores = q.matmul(&k.transpose(-2, -1)) / 2.0;
    let want = scores.softmax(-1, Kind::Float).matmul(&v);
    assert!(max_abs(&(sdpa(&q, &k, &v) - want)) < 1e-5);
}

#[test]
fn encoder_and_heads_shapes() {
    let mut cfg = VitConfig::sized(VitSize::Tiny);
    (cfg.embed_dim, cfg.heads, cfg.depth, cfg.patch, cfg.tubelet) = (24, 2, 2, 4, 4);
    let mut rng = Rng::new(1);
    let vs = store();
    let enc = cfg.init(vs.root() / "encoder", &mut rng);
    let grid = cfg.grid(8, 12);
    assert_eq!(grid, [2, 3, 3]);
    let x = randn(&[2, 1, 8, 12, 12], 4);
    assert_eq!(enc.forward(&x, None).size(), vec![2, 18, 24]);
    let ctx = TokenIndex::Shared(vec![0, 2, 5, 7, 9]);
    let tgt = TokenIndex::Shared(vec![1, 3, 4]);
    let z = enc.forward(&x, Some(&ctx));
    assert_eq!(z.size(), vec![2, 5, 24]);
    let mut pc = PredictorConfig::reference(1);
    (pc.embed_dim, pc.heads) = (16, 2);
    let dec = pc.init(vs.root() / "head", 24, 64, &mut rng);
    assert_eq!(dec.forward(&z, &ctx, &tgt, grid).size(), vec![2, 3, 64]);
    let per_ctx = TokenIndex::PerSample(vec![vec![0, 2, 5, 7, 9], vec![1, 3, 4, 6, 8]]);
    let per_tgt = TokenIndex::PerSample(vec![vec![1, 3, 4], vec![0, 2, 5]]);
    let z = enc.forward(&x, Some(&per_ctx));
    assert_eq!(dec.forward(&z, &per_ctx, &per_tgt, grid).size(), vec![2, 3, 64]);
    // bf16 matrix products stay close to float32, and the outputs stay float32
    let f32_out = enc.forward(&x, None);
    let bf16_out = autocast(Precision::Bf16, || enc.forward(&x, None));
    assert_eq!(bf16_out.kind(), Kind::Float);
    let rel = max_abs(&(&bf16_out - &f32_out)) / max_abs(&f32_out);
    assert!(rel < 0.05, "bf16 vs f32: {rel}");
}
