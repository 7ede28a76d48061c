//! The per-micro-step CSV log of SPEC 6 (columns per objective, plus lr, wd, timings and status).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use crate::config::Objective;
use crate::step::LossParts;

pub fn header(objective: Objective) -> &'static str {
    if objective.is_mae() {
        "epoch,itr,loss,loss-mae,loss-spec,loss-reg,enc-grad-norm,pred-grad-norm,lr,wd,step-ms,vol-per-s,status"
    } else {
        "epoch,itr,loss,loss-jepa,reg-loss,vcr-var,vcr-cov,enc-grad-norm,pred-grad-norm,momentum,lr,wd,\
         target-std,target-erank,step-ms,vol-per-s,status"
    }
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
    objective: Objective,
}

impl CsvLog {
    /// Opens `path`; on resume keeps the header and the rows before step `from_itr` of epoch
    /// `from_epoch` only, so a resumed run's log reads like an uninterrupted one.
    pub fn open(path: &Path, objective: Objective, from_epoch: usize, from_itr: usize) -> std::io::Result<Self> {
        let mut kept = vec![header(objective).to_string()];
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
        Ok(CsvLog { file, objective })
    }

    pub fn write(&mut self, r: &Row) -> std::io::Result<()> {
        let p = r.parts;
        let [en, pn] = r.grad_norms;
        let line = if self.objective.is_mae() {
            format!(
                "{},{},{:.6},{:.6},{:.6},{:.6},{:.5},{:.5},{:.4e},{:.4e},{:.1},{:.2},{}",
                r.epoch,
                r.itr,
                p.total,
                p.main,
                p.spectral,
                0.0,
                en,
                pn,
                r.lr,
                r.wd,
                r.step_ms,
                r.volumes_per_s,
                r.status
            )
        } else {
            let (std, rank) = p
                .target_spread
                .map(|s| (format!("{:.5}", s.mean_std), format!("{:.3}", s.effective_rank)))
                .unwrap_or_default();
            format!(
                "{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.5},{:.5},{:.6},{:.4e},{:.4e},{},{},{:.1},{:.2},{}",
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
                r.step_ms,
                r.volumes_per_s,
                r.status
            )
        };
        writeln!(self.file, "{line}")?;
        self.file.flush()
    }
}
