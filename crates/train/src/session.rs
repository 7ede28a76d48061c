//! Starting or resuming a run: the trained state (student, teacher, optimiser, progress) and the
//! checkpoints that save and restore it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use brainssl_backend::Device;
use brainssl_data::ManifestRow;
use brainssl_prep::Rng;

use crate::checkpoint::{self, load_store, store_tensors, CheckpointManifest, Progress, FORMAT};
use crate::config::PretrainConfig;
use crate::ema::Teacher;
use crate::optim::AdamW;
use crate::step::Student;

/// How a run begins.
pub enum Start {
    /// A new run with this config in an empty run folder.
    Fresh(Box<PretrainConfig>),
    /// Continue the run in the folder from its `latest` checkpoint, with the config saved there.
    Resume,
}

/// Files of a run folder.
pub struct RunPaths {
    pub dir: PathBuf,
    pub checkpoints: PathBuf,
    pub log: PathBuf,
    pub previews: PathBuf,
}

impl RunPaths {
    pub fn new(dir: &Path) -> Self {
        RunPaths {
            dir: dir.to_path_buf(),
            checkpoints: dir.join("checkpoints"),
            log: dir.join("log.csv"),
            previews: dir.join("previews"),
        }
    }

    pub fn latest(&self) -> PathBuf {
        checkpoint::paths(&self.checkpoints, "latest").0
    }
}

/// BLAKE3 over (path, size, label) of every row: a resumed run must see the same data.
pub fn data_hash(rows: &[ManifestRow]) -> String {
    let mut h = blake3::Hasher::new();
    for r in rows {
        let size = std::fs::metadata(&r.path).map(|m| m.len()).unwrap_or(0);
        h.update(format!("{}|{size}|{}\n", r.path.display(), r.label).as_bytes());
    }
    h.finalize().to_hex()[..16].to_string()
}

/// Everything a checkpoint holds.
pub struct Session {
    pub cfg: PretrainConfig,
    pub student: Student,
    pub teacher: Option<Teacher>,
    pub opt: AdamW,
    pub progress: Progress,
    pub data_hash: String,
}

impl Session {
    /// A fresh run (refusing a folder that already holds one) or the resumed state of `paths`; the
    /// data must hash to `hash` on resume.
    pub fn open(start: Start, paths: &RunPaths, hash: String, device: Device) -> Result<Self> {
        match start {
            Start::Fresh(cfg) => {
                if paths.latest().exists() {
                    bail!(
                        "{} already holds a run: use --resume, or another --out",
                        paths.dir.display()
                    );
                }
                cfg.validate()?;
                Ok(Self::fresh(*cfg, hash, device))
            }
            Start::Resume => {
                let s =
                    Self::resume(paths, device).with_context(|| format!("cannot resume {}", paths.dir.display()))?;
                if s.data_hash != hash {
                    bail!(
                        "{}: the manifest's scans differ from those the run was trained on (data hash {hash} vs {})",
                        paths.dir.display(),
                        s.data_hash
                    );
                }
                Ok(s)
            }
        }
    }

    fn fresh(cfg: PretrainConfig, data_hash: String, device: Device) -> Self {
        let student = Student::init(&cfg, &mut Rng::new(cfg.seed), device);
        let teacher = cfg
            .objective
            .needs_teacher()
            .then(|| Teacher::copy_of(&cfg.encoder, &student.vs, "encoder.", device));
        Session {
            opt: AdamW::new(cfg.optim.betas, cfg.optim.eps),
            cfg,
            student,
            teacher,
            progress: Progress::default(),
            data_hash,
        }
    }

    fn resume(paths: &RunPaths, device: Device) -> Result<Self> {
        let file = paths.latest();
        let (tensors, m) = checkpoint::load(&file)?;
        let named = || file.display().to_string();
        let mut s = Self::fresh(m.config, m.data_hash, device);
        load_store(&s.student.vs, "", &tensors, "student.").with_context(named)?;
        if let Some(t) = &s.teacher {
            load_store(&t.vs, "", &tensors, "teacher.").with_context(named)?;
        }
        let moments: HashMap<_, _> = tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("optim.").map(|k| (k.to_string(), v.clone())))
            .collect();
        s.opt.import(&moments, device).with_context(named)?;
        s.progress = m.progress;
        Ok(s)
    }

    /// Writes checkpoint `stem` (weights, teacher, optimiser moments, manifest) atomically.
    pub fn save(&self, paths: &RunPaths, stem: &str, kind: &str) -> Result<()> {
        let mut tensors = store_tensors(&self.student.vs, "student.");
        if let Some(t) = &self.teacher {
            tensors.extend(store_tensors(&t.vs, "teacher."));
        }
        tensors.extend(
            self.opt
                .export()
                .into_iter()
                .map(|(k, s, v)| (format!("optim.{k}"), s, v)),
        );
        let manifest = CheckpointManifest {
            brainssl_version: env!("CARGO_PKG_VERSION").to_string(),
            format: FORMAT,
            kind: kind.to_string(),
            progress: self.progress.clone(),
            data_hash: self.data_hash.clone(),
            config: self.cfg.clone(),
        };
        checkpoint::save(&paths.checkpoints, stem, &tensors, &manifest)
    }
}
