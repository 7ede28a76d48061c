//! Pretraining configuration: typed, validated, printable as TOML, with the presets of
//! docs/method.md#pretraining-presets.

use anyhow::Context;
use brainssl_backend::PrecisionChoice;
use brainssl_masks::{MaskConfig, MultiBlockMasker, TokenGrid};
use brainssl_models::{PredictorConfig, VitConfig, VitSize};
use brainssl_objectives::{SpectralLoss, VcrLoss};
use brainssl_prep::{AugmentConfig, PrepConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    Mae,
    SlMae,
    Jepa,
    VcrJepa,
}

/// Each objective's rules in one place: what it trains, when it clips, what it logs.
impl Objective {
    /// MAE and SL-MAE reconstruct voxels; JEPA and VCR-JEPA predict a teacher's embeddings.
    pub fn is_mae(self) -> bool {
        matches!(self, Objective::Mae | Objective::SlMae)
    }

    /// JEPA objectives regress an EMA teacher's embeddings.
    pub fn needs_teacher(self) -> bool {
        !self.is_mae()
    }

    /// Output width of the predictor/decoder: p³·C voxels (MAE) or the encoder width (JEPA).
    pub fn head_width(self, encoder: &VitConfig) -> usize {
        if self.is_mae() {
            encoder.patch * encoder.patch * encoder.tubelet * encoder.in_chans
        } else {
            encoder.embed_dim
        }
    }

    /// Whether gradients are clipped in `epoch` (docs/method.md#accumulation-and-clipping): MAE
    /// from the warm-up's end, JEPA after it.
    pub fn clips_in(self, epoch: usize, warmup_epochs: usize) -> bool {
        if self.is_mae() {
            epoch >= warmup_epochs
        } else {
            epoch > warmup_epochs
        }
    }

    /// Fewest volumes a micro-step can use: a trained VCR term's variance is over the batch.
    pub fn min_volumes(self, vcr_coeff: f64) -> usize {
        if self.needs_teacher() && vcr_coeff > 0.0 {
            2
        } else {
            1
        }
    }

    /// Whether the run writes MAE reconstruction previews.
    pub fn previews(self) -> bool {
        self.is_mae()
    }

    pub fn name(self) -> &'static str {
        match self {
            Objective::Mae => "mae",
            Objective::SlMae => "sl-mae",
            Objective::Jepa => "jepa",
            Objective::VcrJepa => "vcr-jepa",
        }
    }
}

/// Data pipeline of a run (docs/preprocessing.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub prep: PrepConfig,
    pub augment: Option<AugmentConfig>,
    /// Volumes per device per micro-step.
    pub batch_size: usize,
    pub workers: usize,
    /// Crop cache folder (relative to the run folder when not absolute); empty: no cache.
    pub cache_dir: String,
}

/// Optimisation (docs/method.md#optimisation): AdamW, warm-up + cosine lr, cosine weight decay,
/// accumulation, clipping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    pub epochs: usize,
    pub warmup_epochs: usize,
    pub start_lr: f64,
    pub lr: f64,
    pub final_lr: f64,
    pub weight_decay: f64,
    pub final_weight_decay: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    /// Global-norm clipping threshold per module (encoder; predictor/decoder); 0 disables.
    pub clip_grad: f64,
    /// Micro-steps per optimiser step.
    pub accum_steps: usize,
    /// When set, `accum_steps` is derived as effective_batch / (batch_size · devices), so fewer
    /// devices keep the optimiser batch of the reference run.
    pub effective_batch: Option<usize>,
    /// Multiplies the schedule length (the reference's ipe_scale).
    pub ipe_scale: f64,
}

/// EMA teacher momentum, linear from `start` to `end` over the run (docs/method.md#ema-teacher).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmaConfig {
    pub start: f64,
    pub end: f64,
    /// When set (and not 0), `start` is derived from the run's length instead: the start momentum
    /// that leaves this share of the teacher's random initialisation in the teacher at the end of
    /// the run. The reference's 0.998 over ~10⁵ steps leaves none; over a 240-step CPU run it would
    /// leave 79 %. Set it to 0 to use `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_share_at_end: Option<f64>,
}

impl EmaConfig {
    /// The start momentum of a run of `total` teacher updates, at least [`MIN_FITTED_MOMENTUM`]:
    /// a run too short to reach the share keeps more of its initialisation rather than a teacher
    /// that copies the student (the printed share says how much). 0 turns the fitting off.
    pub fn start_for(&self, total: usize) -> f64 {
        let Some(target) = self.init_share_at_end.filter(|w| *w > 0.0) else {
            return self.start;
        };
        // the share falls as the start momentum falls: bisect on [0, end]
        let (mut lo, mut hi) = (0.0, self.end);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if crate::schedule::ema_init_share(mid, self.end, total) > target {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        (0.5 * (lo + hi)).max(MIN_FITTED_MOMENTUM.min(self.end))
    }
}

/// The lowest start momentum `ema.init_share_at_end` picks (runs under ~90 updates reach it).
pub const MIN_FITTED_MOMENTUM: f64 = 0.9;

/// When and how strongly the spectral loss acts (docs/method.md#spectral-schedule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpectralSchedule {
    /// λ; 0 disables the spectral term (plain MAE).
    pub coeff: f64,
    /// Spectral steps are every n-th micro-step, weighted λ_eff/n.
    pub every: usize,
    pub min_epoch: usize,
    /// λ ramps linearly over this many epochs (hard-coded 20 in the reference).
    pub ramp_epochs: usize,
    pub loss: SpectralLoss,
}

/// VCR regulariser (docs/method.md#vcr-jepa); `reg_coeff` 0 logs it without training on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VcrConfig {
    pub reg_coeff: f64,
    pub loss: VcrLoss,
}

/// Checkpointing, logging and failure handling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// A periodic checkpoint every this many epochs (0: none); `latest` is written every epoch.
    pub periodic_every: usize,
    /// Non-finite losses tolerated over the run (each skips its step) before the run aborts.
    pub max_nonfinite: usize,
    /// MAE: a PNG of input / masked input / reconstruction every this many epochs (0: none).
    pub preview_every: usize,
    /// JEPA: collapse telemetry every this many micro-steps (0: none).
    pub telemetry_every: usize,
    /// Fraction of the manifest's scans that may be unreadable (pre-flight) or fail to load in an
    /// epoch before the run fails; those scans are skipped with a warning. 0: any failure fails.
    #[serde(default)]
    pub max_unreadable_fraction: f64,
}

/// Whose masks a data-parallel rank uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RankMasks {
    /// Each rank draws its own (as the reference's per-rank mask collators do).
    #[default]
    Own,
    /// Every rank draws rank 0's: with reference masks (one per batch) a run then equals one
    /// process with the whole batch, which is how the equivalence is checked.
    Shared,
}

/// Data parallelism over c10d (several ranks: `--nproc-per-node`, torchrun or srun).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistConfig {
    /// Seconds the rendezvous and every collective wait for the other ranks before the run fails
    /// (a rank that died or hangs).
    pub timeout_s: u64,
    /// Gradients are averaged in flattened buckets of this many MiB.
    pub bucket_mib: usize,
    pub rank_masks: RankMasks,
}

impl Default for DistConfig {
    fn default() -> Self {
        DistConfig {
            timeout_s: 600,
            bucket_mib: 25,
            rank_masks: RankMasks::Own,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainConfig {
    pub objective: Objective,
    pub seed: u64,
    /// Matrix-product precision: auto (bf16 on CUDA, f32 on the CPU), f32 or bf16. Weights,
    /// optimiser state, layer norms, losses, VCR statistics and the EMA stay float32.
    #[serde(default)]
    pub precision: PrecisionChoice,
    /// Loss exponent: 2 (½·MSE) for MAE, 1 (L1) for JEPA.
    pub loss_exp: f64,
    pub data: DataConfig,
    pub encoder: VitConfig,
    /// JEPA predictor or MAE decoder.
    pub predictor: PredictorConfig,
    pub mask: MaskConfig,
    pub optim: OptimConfig,
    pub ema: EmaConfig,
    pub spectral: SpectralSchedule,
    pub vcr: VcrConfig,
    pub run: RunConfig,
    #[serde(default)]
    pub dist: DistConfig,
}

pub const PRESETS: [&str; 8] = [
    "mae",
    "sl-mae",
    "jepa",
    "vcr-jepa",
    "tiny-mae",
    "tiny-sl-mae",
    "tiny-jepa",
    "tiny-vcr-jepa",
];

fn spectral_off() -> SpectralSchedule {
    SpectralSchedule {
        coeff: 0.0,
        every: 10,
        min_epoch: 500_000,
        ramp_epochs: 20,
        loss: SpectralLoss::default(),
    }
}

impl PretrainConfig {
    /// The multi-block masker over this config's token grid.
    pub fn masker(&self) -> anyhow::Result<MultiBlockMasker> {
        let g = self.encoder.grid(self.data.prep.depth, self.data.prep.size);
        MultiBlockMasker::new(
            self.mask.clone(),
            TokenGrid {
                t: g[0],
                h: g[1],
                w: g[2],
            },
        )
        .map_err(anyhow::Error::msg)
    }

    /// A named preset. Reference presets carry the reference code's values (ViT-Base, 160³ JEPA,
    /// 144³ MAE; docs/method.md#pretraining-presets); tiny presets run the same code at CPU size.
    pub fn preset(name: &str) -> anyhow::Result<Self> {
        let (tiny, base) = match name.strip_prefix("tiny-") {
            Some(b) => (true, b),
            None => (false, name),
        };
        let objective = match base {
            "mae" => Objective::Mae,
            "sl-mae" => Objective::SlMae,
            "jepa" => Objective::Jepa,
            "vcr-jepa" => Objective::VcrJepa,
            _ => anyhow::bail!("unknown preset '{name}': use one of {}", PRESETS.join(", ")),
        };
        let mut c = Self::reference(objective);
        if tiny {
            c.shrink_to_tiny();
        }
        c.validate()?;
        Ok(c)
    }

    fn reference(objective: Objective) -> Self {
        let mae = objective.is_mae();
        let side = if mae { 144 } else { 160 };
        let (epochs, warmup, lrs, batch, effective) = match objective {
            Objective::Mae | Objective::SlMae => (700, 5, (1e-4, 5e-4, 5e-5), 10, 160),
            Objective::Jepa => (300, 30, (1e-4, 2e-4, 1e-6), 24, 192),
            Objective::VcrJepa => (1000, 5, (3e-5, 1e-4, 5e-6), 16, 256),
        };
        let spectral = if objective == Objective::SlMae {
            SpectralSchedule {
                coeff: 1.0,
                every: 10,
                min_epoch: 5,
                ramp_epochs: 20,
                loss: SpectralLoss::default(),
            }
        } else {
            spectral_off()
        };
        PretrainConfig {
            objective,
            seed: 1881,
            precision: PrecisionChoice::Auto,
            loss_exp: if mae { 2.0 } else { 1.0 },
            data: DataConfig {
                prep: PrepConfig {
                    depth: side,
                    size: side,
                    ..PrepConfig::default()
                },
                augment: Some(AugmentConfig::default()),
                batch_size: batch,
                workers: 4,
                cache_dir: "crop-cache".into(),
            },
            encoder: VitConfig::sized(VitSize::Base),
            predictor: PredictorConfig::reference(if mae { 8 } else { 6 }),
            mask: MaskConfig::default(),
            optim: OptimConfig {
                epochs,
                warmup_epochs: warmup,
                start_lr: lrs.0,
                lr: lrs.1,
                final_lr: lrs.2,
                weight_decay: 0.005,
                final_weight_decay: 0.0005,
                betas: (0.9, 0.975),
                eps: 1e-8,
                clip_grad: 1.0,
                accum_steps: 2,
                effective_batch: Some(effective),
                ipe_scale: 1.0,
            },
            ema: EmaConfig {
                start: 0.998,
                end: 1.0,
                init_share_at_end: None,
            },
            spectral,
            vcr: VcrConfig {
                reg_coeff: if objective == Objective::VcrJepa { 0.25 } else { 0.0 },
                loss: VcrLoss::default(),
            },
            run: RunConfig {
                periodic_every: 20,
                max_nonfinite: 20,
                preview_every: if mae { 10 } else { 0 },
                telemetry_every: if mae { 0 } else { 50 },
                max_unreadable_fraction: 0.0,
            },
            dist: DistConfig::default(),
        }
    }

    /// CPU size: 32×64×64 volumes (256 tokens), a 4-block 96-wide encoder, 2-block 64-wide head,
    /// short schedules. Masks, losses and schedules keep the reference code path.
    fn shrink_to_tiny(&mut self) {
        self.data.prep.depth = 32;
        self.data.prep.size = 64;
        self.data.batch_size = 4;
        self.data.workers = 2;
        self.encoder.embed_dim = 96;
        self.encoder.depth = 4;
        self.encoder.heads = 4;
        self.predictor.embed_dim = 64;
        self.predictor.depth = 2;
        self.predictor.heads = 4;
        // Schedules fitted to a run of a few hundred steps at batch 4 (docs/method.md#cpu-presets):
        // - peak lr: the reference's peak × 2, which keeps its ratio between objectives (MAE 5e-4,
        //   JEPA 2e-4, VCR-JEPA 1e-4 there) with MAE at the 1e-3 that tiny MAE runs learn with;
        // - the EMA teacher's start momentum from the run's length, so that it keeps 1 % of its
        //   random initialisation at the end (0.998 over 240 steps kept 79 %);
        // - VCR's variance and covariance are statistics over the batch: 8 volumes, not 4;
        // - warm-up: 1 of 12 epochs, about the reference JEPA's 10 % of the run.
        let peak = match self.objective {
            Objective::Mae | Objective::SlMae => 1e-3,
            Objective::Jepa => 4e-4,
            Objective::VcrJepa => 2e-4,
        };
        if self.objective == Objective::VcrJepa {
            self.data.batch_size = 8;
        }
        self.ema.init_share_at_end = Some(0.01);
        let o = &mut self.optim;
        o.epochs = 12;
        o.warmup_epochs = 1;
        (o.start_lr, o.lr, o.final_lr) = (peak / 10.0, peak, peak / 100.0);
        o.accum_steps = 1;
        o.effective_batch = None;
        if self.spectral.coeff > 0.0 {
            self.spectral.min_epoch = 1;
            self.spectral.every = 2;
            self.spectral.ramp_epochs = 2;
        }
        self.run.periodic_every = 0;
        self.run.preview_every = if self.objective.is_mae() { 4 } else { 0 };
        self.run.telemetry_every = if self.objective.is_mae() { 0 } else { 5 };
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.encoder.validate().context("encoder")?;
        self.predictor.validate()?;
        self.data
            .prep
            .validate()
            .map_err(anyhow::Error::msg)
            .context("data.prep")?;
        let (t, s, p) = (self.data.prep.depth, self.data.prep.size, self.encoder.patch);
        if t % p != 0 || s % p != 0 {
            anyhow::bail!("volume {t}x{s}x{s} is not a multiple of the patch size {p}");
        }
        if self.data.batch_size == 0 {
            anyhow::bail!("data.batch_size must be positive");
        }
        if self.vcr.reg_coeff > 0.0 && self.data.batch_size < 2 {
            anyhow::bail!("VCR needs data.batch_size >= 2 (its variance is over the batch)");
        }
        let o = &self.optim;
        if o.epochs == 0 || o.accum_steps == 0 {
            anyhow::bail!("optim.epochs and optim.accum_steps must be positive");
        }
        if self.data.batch_size > 4096 || o.epochs > 1_000_000 || o.accum_steps > 65_536 || self.data.workers > 1024 {
            anyhow::bail!(
                "data.batch_size is at most 4096, optim.epochs at most 1000000, optim.accum_steps at most 65536 \
                 and data.workers at most 1024"
            );
        }
        if o.warmup_epochs > o.epochs {
            anyhow::bail!("optim.warmup_epochs exceeds optim.epochs");
        }
        if !(0.0..1.0).contains(&o.betas.0) || !(0.0..1.0).contains(&o.betas.1) {
            anyhow::bail!("optim.betas must lie in [0, 1)");
        }
        if [
            o.start_lr,
            o.lr,
            o.final_lr,
            o.weight_decay,
            o.final_weight_decay,
            o.clip_grad,
        ]
        .iter()
        .any(|v| !v.is_finite() || *v < 0.0)
        {
            anyhow::bail!("learning rates, weight decays and clip_grad must be finite and >= 0");
        }
        if o.ipe_scale <= 0.0 {
            anyhow::bail!("optim.ipe_scale must be positive");
        }
        if self.ema.init_share_at_end.is_some_and(|w| !(0.0..1.0).contains(&w)) {
            anyhow::bail!("ema.init_share_at_end must lie in [0, 1) (0: use ema.start)");
        }
        if !(0.0..=1.0).contains(&self.ema.start) || !(0.0..=1.0).contains(&self.ema.end) {
            anyhow::bail!("ema momenta must lie in [0, 1]");
        }
        if self.spectral.every == 0 || self.spectral.ramp_epochs == 0 {
            anyhow::bail!("spectral.every and spectral.ramp_epochs must be positive");
        }
        self.spectral.loss.validate()?;
        if self.loss_exp <= 0.0 {
            anyhow::bail!("loss_exp must be positive");
        }
        if self.spectral.coeff > 0.0 && !self.objective.is_mae() {
            anyhow::bail!("the spectral loss applies to MAE objectives only");
        }
        if !(0.0..=1.0).contains(&self.run.max_unreadable_fraction) {
            anyhow::bail!("run.max_unreadable_fraction must be within 0..1");
        }
        if self.dist.timeout_s == 0 || self.dist.bucket_mib == 0 {
            anyhow::bail!("dist.timeout_s and dist.bucket_mib must be positive");
        }
        if self.dist.timeout_s > 86_400 || self.dist.bucket_mib > 4096 {
            anyhow::bail!("dist.timeout_s is at most 86400 and dist.bucket_mib at most 4096");
        }
        Ok(())
    }

    /// Micro-steps per optimiser step for `devices` data-parallel ranks.
    pub fn accum_steps(&self, devices: usize) -> anyhow::Result<usize> {
        match self.optim.effective_batch {
            None => Ok(self.optim.accum_steps),
            Some(eff) => {
                let per_step = self.data.batch_size * devices;
                if eff % per_step != 0 || eff < per_step {
                    anyhow::bail!(
                        "optim.effective_batch {eff} is not a multiple of batch_size {} x {devices} device(s)",
                        self.data.batch_size
                    );
                }
                Ok(eff / per_step)
            }
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// Applies a TOML file of overrides (any subset of the keys) on top of this config.
    pub fn with_overrides(&self, overrides: &str) -> anyhow::Result<Self> {
        let mut base = toml::Value::try_from(self)?;
        let over: toml::Value = toml::from_str(overrides).context("overrides")?;
        merge_toml(&mut base, over);
        let cfg: PretrainConfig = base.try_into().context("overrides")?;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Deep merge of TOML tables: keys of `over` replace those of `base`, nested tables key by key.
pub fn merge_toml(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge_toml(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_validates_and_round_trips_through_toml() {
        for name in PRESETS {
            let c = PretrainConfig::preset(name).unwrap();
            let back: PretrainConfig = toml::from_str(&c.to_toml()).unwrap();
            assert_eq!(back, c, "{name}");
        }
    }

    #[test]
    fn reference_values() {
        let j = PretrainConfig::preset("jepa").unwrap();
        assert_eq!((j.data.prep.depth, j.data.prep.size), (160, 160));
        assert_eq!(j.encoder.embed_dim, 768);
        assert_eq!((j.optim.lr, j.optim.warmup_epochs, j.optim.epochs), (2e-4, 30, 300));
        assert_eq!(j.accum_steps(4).unwrap(), 2);
        assert_eq!(j.accum_steps(2).unwrap(), 4);
        let s = PretrainConfig::preset("sl-mae").unwrap();
        assert_eq!((s.data.prep.depth, s.predictor.depth), (144, 8));
        assert_eq!((s.spectral.coeff, s.spectral.every, s.spectral.min_epoch), (1.0, 10, 5));
        assert_eq!(PretrainConfig::preset("mae").unwrap().spectral.coeff, 0.0);
        assert_eq!(PretrainConfig::preset("vcr-jepa").unwrap().vcr.reg_coeff, 0.25);
    }

    #[test]
    fn overrides_merge_and_reject_typos() {
        let c = PretrainConfig::preset("tiny-mae").unwrap();
        let o = c.with_overrides("seed = 3\n[optim]\nepochs = 2\n").unwrap();
        assert_eq!((o.seed, o.optim.epochs, o.optim.lr), (3, 2, c.optim.lr));
        assert!(c.with_overrides("[optim]\nepoch = 2\n").is_err());
        assert!(c.with_overrides("[data]\nbatch_size = 0\n").is_err());
        // absurd sizes are refused before anything allocates
        assert!(c.with_overrides("[data]\nbatch_size = 100000\n").is_err());
        assert!(c.with_overrides("[optim]\nepochs = 18446744073709551615\n").is_err());
        assert!(c.with_overrides("[run]\nmax_unreadable_fraction = 1.5\n").is_err());
        assert!(c.with_overrides("[dist]\ntimeout_s = 0\n").is_err());
        let bf = c.with_overrides("precision = \"bf16\"\n").unwrap();
        assert_eq!(bf.precision, PrecisionChoice::Bf16);
        assert!(c.with_overrides("precision = \"fp8\"\n").is_err());
    }
}
