//! Parameter counts of SPEC 3.1-3.3 and the tubelet embedding against Burn's Conv3d.

use brainssl_backend::burn::tensor::module::conv3d;
use brainssl_backend::burn::tensor::ops::ConvOptions;
use brainssl_backend::{Device, Tensor, TensorData};
use brainssl_models::{
    count_params, named_params, ClassifierConfig, PredictorConfig, ResNet3d, TokenIndex, VitConfig, VitSize,
};
use brainssl_prep::rng::Rng;

#[test]
fn reference_parameter_counts() {
    let device = Device::flex();
    let mut rng = Rng::new(0);
    let vit = VitConfig::sized(VitSize::Base);
    let enc = vit.init(&mut rng, &device);
    assert_eq!(count_params(&enc), 85_449_984);
    assert_eq!(count_params(&enc.patch_embed), 393_984);
    let pred = PredictorConfig::reference(6).init(768, 768, &mut rng, &device);
    assert_eq!(count_params(&pred), 11_238_912);
    let dec = PredictorConfig::reference(8).init(768, 512, &mut rng, &device);
    assert_eq!(count_params(&dec), 14_689_280);
    // SPEC 3.4: attentive classifier on ViT-Base, 2 classes
    for (depth, want) in [(1, 7_255_010), (2, 14_342_882)] {
        let c = ClassifierConfig {
            depth,
            heads: 12,
            num_classes: 2,
        };
        assert_eq!(count_params(&c.init(768, &mut rng, &device)), want, "depth {depth}");
    }
}

#[test]
fn resnet50_3d_matches_pytorch_parameter_count_and_shapes() {
    let device = Device::flex();
    let m = ResNet3d::resnet50(2, &mut Rng::new(0), &device);
    // the same network built in PyTorch from SPEC 3.6 (1 channel, 2 classes, Conv3d/BatchNorm3d)
    assert_eq!(count_params(&m), 46_159_170);
    let y = m.forward(Tensor::<5>::ones([2, 1, 16, 32, 32], &device), None);
    assert_eq!(y.dims(), [2, 2]);
}

#[test]
fn classifier_outputs_logits_per_volume() {
    let device = Device::flex();
    let c = ClassifierConfig {
        depth: 2,
        heads: 2,
        num_classes: 3,
    };
    let clf = c.init(16, &mut Rng::new(5), &device);
    let x = Tensor::<3>::ones([4, 7, 16], &device);
    assert_eq!(clf.forward(x.clone()).dims(), [4, 3]);
    // a single query: the pooled vector is invariant to the order of the tokens
    let mut rng = Rng::new(6);
    let v: Vec<f32> = (0..7 * 16).map(|_| rng.normal() as f32).collect();
    let x = Tensor::<3>::from_data(TensorData::new(v, [1, 7, 16]), &device);
    let perm = TokenIndex::Shared(vec![6, 2, 0, 5, 1, 3, 4]);
    let a = clf.forward(x.clone());
    let b = clf.forward(perm.gather(x));
    assert!((a - b).abs().max().into_scalar::<f32>() < 1e-5);
}

#[test]
fn paths_and_initialisation() {
    let device = Device::flex();
    let mut cfg = VitConfig::sized(VitSize::Tiny);
    cfg.depth = 3;
    let enc = cfg.init(&mut Rng::new(7), &device);
    let params = named_params(&enc);
    let find = |p: &str| params.iter().find(|n| n.path == p).unwrap_or_else(|| panic!("no {p}"));
    assert_eq!(find("blocks.0.attn.qkv.weight").shape, vec![192, 576]);
    assert_eq!(find("norm.gamma").value.to_vec(), vec![1.0; 192]);
    let std = |v: &[f32]| (v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
    // weights 0.02; output projections of block l scaled by 1/sqrt(2l)
    assert!((std(&find("blocks.0.attn.qkv.weight").value.to_vec()) - 0.02).abs() < 5e-4);
    let fc2_3 = std(&find("blocks.2.mlp.fc2.weight").value.to_vec());
    assert!((fc2_3 - 0.02 / 6f64.sqrt()).abs() < 3e-4, "{fc2_3}");
    assert!(find("blocks.1.attn.proj.bias").value.to_vec().iter().all(|&b| b == 0.0));
    // same seed, same model
    let again = named_params(&cfg.init(&mut Rng::new(7), &device));
    assert_eq!(again[5].value.to_vec(), params[5].value.to_vec());
}

#[test]
fn tubelet_embedding_is_the_reference_conv3d() {
    let device = Device::flex();
    let mut cfg = VitConfig::sized(VitSize::Tiny);
    cfg.embed_dim = 12;
    cfg.heads = 3;
    cfg.depth = 1;
    cfg.patch = 4;
    cfg.tubelet = 4;
    let enc = cfg.init(&mut Rng::new(3), &device);
    let mut rng = Rng::new(11);
    let x: Vec<f32> = (0..2 * 8 * 12 * 8).map(|_| rng.normal() as f32).collect();
    let x = Tensor::<5>::from_data(TensorData::new(x, [2, 1, 8, 12, 8]), &device);
    let ours = enc.patch_embed.forward(brainssl_models::patchify(x.clone(), 4));
    let w = enc.patch_embed.weight.val().transpose().reshape([12, 1, 4, 4, 4]);
    let b = enc.patch_embed.bias.as_ref().unwrap().val();
    let conv = conv3d(x, w, Some(b), ConvOptions::new([4, 4, 4], [0, 0, 0], [1, 1, 1], 1));
    assert_eq!(conv.dims(), [2, 12, 2, 3, 2]);
    let conv = conv.reshape([2, 12, 12]).swap_dims(1, 2);
    let diff = (ours - conv).abs().max().into_scalar::<f32>();
    assert!(diff < 1e-5, "{diff}");
}

#[test]
fn encoder_and_heads_shapes() {
    let device = Device::flex();
    let mut cfg = VitConfig::sized(VitSize::Tiny);
    cfg.embed_dim = 24;
    cfg.heads = 2;
    cfg.depth = 2;
    cfg.patch = 4;
    cfg.tubelet = 4;
    let mut rng = Rng::new(1);
    let enc = cfg.init(&mut rng, &device);
    let grid = cfg.grid(8, 12);
    assert_eq!(grid, [2, 3, 3]);
    let x = Tensor::<5>::zeros([2, 1, 8, 12, 12], &device);
    assert_eq!(enc.forward(x.clone(), None).dims(), [2, 18, 24]);
    let ctx = TokenIndex::Shared(vec![0, 2, 5, 7, 9]);
    let tgt = TokenIndex::Shared(vec![1, 3, 4]);
    let z = enc.forward(x, Some(&ctx));
    assert_eq!(z.dims(), [2, 5, 24]);
    let mut pc = PredictorConfig::reference(1);
    pc.embed_dim = 16;
    pc.heads = 2;
    let dec = pc.init(24, 64, &mut rng, &device);
    assert_eq!(dec.forward(z, &ctx, &tgt, grid).dims(), [2, 3, 64]);
}
