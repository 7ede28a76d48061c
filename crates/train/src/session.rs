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

    /// The scans a run trains on, stored at its start so `--resume` needs no manifest.
    pub fn manifest(&self) -> PathBuf {
        self.dir.join("manifest.csv")
    }

    /// The files a run writes (a crop cache and anything else in the folder are left alone).
    fn run_files(&self) -> [PathBuf; 7] {
        [
            self.dir.join("config.toml"),
            self.manifest(),
            self.log.clone(),
            self.dir.join("timing.csv"),
            self.dir.join("warnings.log"),
            self.checkpoints.clone(),
            self.previews.clone(),
        ]
    }

    /// Before a fresh run: the folder must be empty, or `force` removes an earlier run's files.
    pub fn prepare_fresh(&self, force: bool) -> Result<()> {
        if !brainssl_scan::folder::has_contents(&self.dir) {
            return Ok(());
        }
        if !force {
            let what = if self.latest().exists() {
                "already holds a run"
            } else {
                "is not empty"
            };
            bail!(
                "{} {what}: use --resume {} to continue a run, another --out, or --force to replace its run files",
                self.dir.display(),
                self.dir.display()
            );
        }
        self.remove_run_files()
    }

    fn remove_run_files(&self) -> Result<()> {
        for p in self.run_files() {
            let r = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else if p.exists() {
                std::fs::remove_file(&p)
            } else {
                Ok(())
            };
            r.with_context(|| format!("cannot remove {}", p.display()))?;
        }
        Ok(())
    }

    /// After a start that failed before its first step: remove what it wrote, and the folder if
    /// the start created it.
    pub fn undo_failed_start(&self, created_folder: bool) {
        let steps_logged = std::fs::read_to_string(&self.log).map_or(0, |t| t.lines().count().saturating_sub(1));
        if steps_logged > 0 || self.latest().exists() {
            return;
        }
        if created_folder {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            let _ = self.remove_run_files();
        }
    }
}

/// BLAKE3 over (path, size, label, frame when set) of every row: a resumed run must see the same
/// data (rows without a frame hash as before frames existed).
pub fn data_hash(rows: &[ManifestRow]) -> String {
    let mut h = blake3::Hasher::new();
    for r in rows {
        let size = std::fs::metadata(&r.path).map(|m| m.len()).unwrap_or(0);
        let frame = r.frame.map(|f| format!("|frame {f}")).unwrap_or_default();
        h.update(format!("{}|{size}|{}{frame}\n", r.path.display(), r.label).as_bytes());
    }
    h.finalize().to_hex()[..16].to_string()
}

/// A resumed run must see the scans it was trained on.
pub fn same_data(run: &Path, hash: &str, trained: &str) -> Result<()> {
    if hash != trained {
        bail!(
            "{}: the manifest's scans differ from those the run was trained on (data hash {hash} vs {trained})",
            run.display()
        );
    }
    Ok(())
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
    /// A fresh run or the resumed state of `paths`; the data must hash to `hash` on resume.
    /// `epochs` on resume sets a new length (a finished run trains on).
    pub fn open(start: Start, paths: &RunPaths, hash: String, device: Device, epochs: Option<usize>) -> Result<Self> {
        match start {
            Start::Fresh(cfg) => {
                cfg.validate()?;
                Ok(Self::fresh(*cfg, hash, device))
            }
            Start::Resume => {
                if !paths.latest().exists() {
                    bail!(
                        "{} has no checkpoint ({} is missing): the run stopped before its first epoch ended, or this \
                         is not a run folder; start it afresh with --preset … --out {} --force",
                        paths.dir.display(),
                        paths.latest().display(),
                        paths.dir.display()
                    );
                }
                let mut s =
                    Self::resume(paths, device).with_context(|| format!("cannot resume {}", paths.dir.display()))?;
                if let Some(n) = epochs {
                    if n < s.progress.epochs_done {
                        bail!(
                            "--epochs {n}: {} has already trained {} epochs",
                            paths.dir.display(),
                            s.progress.epochs_done
                        );
                    }
                    s.cfg.optim.epochs = n;
                }
                same_data(&paths.dir, &hash, &s.data_hash)?;
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

    /// Takes the weights of checkpoint `init` (`checkpoint import`, or another run) into a fresh
    /// run: the encoder must have this config's architecture; the head is taken when the file has
    /// one of the same names and shapes (else it keeps its initialisation), the teacher when the
    /// file has one (else it copies the encoder). Optimiser, schedules and progress start anew.
    /// Returns what was taken, for the user.
    pub fn init_from(&mut self, init: &Path) -> Result<Vec<String>> {
        let (tensors, m) = checkpoint::load(init)?;
        let named = || init.display().to_string();
        if m.config.encoder != self.cfg.encoder {
            bail!(
                "{}: its encoder is {:?}, this run's is {:?}: use the preset (or --config) it was trained with",
                init.display(),
                m.config.encoder,
                self.cfg.encoder
            );
        }
        let device = self.student.vs.device();
        let n = load_store(&self.student.vs, "encoder.", &tensors, "student.encoder.").with_context(named)?;
        let mut notes = vec![format!("encoder: {n} tensors")];
        // the head is taken whole or not at all (a failed load overwrites nothing)
        match load_store(&self.student.vs, "head.", &tensors, "student.head.") {
            Ok(n) => notes.push(format!("head: {n} tensors")),
            Err(_) => notes.push(
                "head: not in the file with this objective's shapes, so it starts from its initialisation".into(),
            ),
        }
        if self.teacher.is_some() {
            self.teacher = Some(Teacher::copy_of(
                &self.cfg.encoder,
                &self.student.vs,
                "encoder.",
                device,
            ));
            if tensors.keys().any(|k| k.starts_with("teacher.")) {
                let t = self.teacher.as_ref().expect("set above");
                let n = load_store(&t.vs, "", &tensors, "teacher.").with_context(named)?;
                notes.push(format!("teacher: {n} tensors"));
            } else {
                notes.push("teacher: a copy of the encoder".into());
            }
        }
        Ok(notes)
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
