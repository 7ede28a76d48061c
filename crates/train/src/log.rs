//! The per-micro-step CSV log (docs/method.md#run-logs; columns per objective, plus lr, wd and
//! status) and, beside it, `timing.csv` (ms per step, volumes/s): the log holds only what a run
//! computes, so identical runs (and a resumed run against an uninterrupted one) have byte-identical
//! logs.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use crate::config::Objective;
use crate::step::LossParts;

pub fn header(objective: Objective) -> &'static str {
    if objective.is_mae() {
        "epoch,itr,loss,loss-mae,loss-spec,loss-reg,enc-grad-norm,pred-grad-norm,lr,wd,status"
    } else {
        "epoch,itr,loss,loss-jepa,reg-loss,vcr-var,vcr-cov,enc-grad-norm,pred-grad-norm,momentum,lr,wd,\
         target-std,target-erank,status"
    }
}

const TIMING_HEADER: &str = "epoch,itr,step-ms,vol-per-s";

/// Rewrites `path` with its header and only the rows before step `from_itr` of epoch `from_epoch`.
fn cut_back(path: &Path, header: &str, from_epoch: usize, from_itr: usize) -> std::io::Result<File> {
    let mut kept = vec![header.to_string()];
    if from_epoch > 0 || from_itr > 0 {
        if let Ok(f) = File::open(path) {
            for line in BufReader::new(f).lines().skip(1) {
                let line = line?;
                let mut f = line.split(',').map(|v| v.parse::<usize>().ok());
                let (epoch, itr) = (f.next().flatten(), f.next().flatten());
                let before = match (epoch, itr) {
                    (Some(e), Some(i)) => e < from_epoch || (e == from_epoch && i < from_itr),
                    _ => false,
                };
                if before {
                    kept.push(line);
                }
            }
        }
    }
    let mut file = File::create(path)?;
    for line in kept {
        writeln!(file, "{line}")?;
    }
    Ok(file)
}

/// One logged micro-step.
pub struct Row<'a> {
    pub epoch: usize,
    pub itr: usize,
    pub parts: &'a LossParts,
    pub grad_norms: [f64; 2],
    pub momentum: f64,
    pub lr: f64,
    pub wd: f64,
    pub step_ms: f64,
    pub volumes_per_s: f64,
    pub status: &'a str,
}

pub struct CsvLog {
    file: File,
    timing: File,
    objective: Objective,
}

impl CsvLog {
    /// Opens `path`; on resume keeps the header and the rows before step `from_itr` of epoch
    /// `from_epoch` only, so a resumed run's log reads like an uninterrupted one.
    pub fn open(path: &Path, objective: Objective, from_epoch: usize, from_itr: usize) -> std::io::Result<Self> {
        let file = cut_back(path, header(objective), from_epoch, from_itr)?;
        let timing = cut_back(&path.with_file_name("timing.csv"), TIMING_HEADER, from_epoch, from_itr)?;
        Ok(CsvLog {
            file,
            timing,
            objective,
        })
    }

    pub fn write(&mut self, r: &Row) -> std::io::Result<()> {
        let p = r.parts;
        let [en, pn] = r.grad_norms;
        let line = if self.objective.is_mae() {
            format!(
                "{},{},{:.6},{:.6},{:.6},{:.6},{:.5},{:.5},{:.4e},{:.4e},{}",
                r.epoch, r.itr, p.total, p.main, p.spectral, 0.0, en, pn, r.lr, r.wd, r.status
            )
        } else {
            let (std, rank) = p
                .target_spread
                .map(|s| (format!("{:.5}", s.mean_std), format!("{:.3}", s.effective_rank)))
                .unwrap_or_default();
            format!(
                "{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.5},{:.5},{:.6},{:.4e},{:.4e},{},{},{}",
                r.epoch,
                r.itr,
                p.total,
                p.main,
                p.vcr,
                p.vcr_var,
                p.vcr_cov,
                en,
                pn,
                r.momentum,
                r.lr,
                r.wd,
                std,
                rank,
                r.status
            )
        };
        writeln!(self.file, "{line}")?;
        writeln!(
            self.timing,
            "{},{},{:.1},{:.2}",
            r.epoch, r.itr, r.step_ms, r.volumes_per_s
        )?;
        self.file.flush()?;
        self.timing.flush()
    }
}
