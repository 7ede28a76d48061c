//! `brainssl checkpoint import | export`: checkpoints of the reference implementation (torch.save)
//! in and out, for users who bring weights trained with it or take ours back to it.

use std::path::PathBuf;

use anyhow::Result;
use brainssl_train::reference::{self, ReferenceEncoder};
use clap::{Args, Subcommand, ValueEnum};

use crate::output::claim_file;
use crate::pretrain::build_config;

#[derive(Subcommand)]
pub enum CheckpointCmd {
    /// A reference checkpoint (torch.save of encoder / predictor / target_encoder state dicts) as a
    /// brainssl checkpoint that embed, probe, finetune and `pretrain --init` accept
    Import(ImportArgs),
    /// A brainssl checkpoint in the reference's layout (torch.save; loads with torch.load)
    Export(ExportArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyArg {
    /// the context encoder
    Encoder,
    /// the EMA target encoder
    #[value(name = "target_encoder")]
    TargetEncoder,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The reference's .pth.tar / .pt file
    src: PathBuf,
    /// The pretraining preset whose architecture the checkpoint has (see `brainssl print-config`)
    #[arg(long, value_parser = crate::choices::preset())]
    preset: String,
    /// TOML overrides of the preset (architecture or input size that differ from it)
    #[arg(long)]
    config: Option<PathBuf>,
    /// Which reference encoder becomes brainssl's encoder
    #[arg(long, value_enum, default_value = "encoder")]
    key: KeyArg,
    /// The brainssl checkpoint to write (.safetensors)
    #[arg(long)]
    out: PathBuf,
    /// Overwrite an existing --out
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    /// A brainssl checkpoint (RUN/checkpoints/final.safetensors)
    src: PathBuf,
    /// The file to write (.pth.tar)
    #[arg(long)]
    out: PathBuf,
    /// Overwrite an existing --out
    #[arg(long)]
    force: bool,
}

pub fn run(cmd: CheckpointCmd) -> Result<()> {
    match cmd {
        CheckpointCmd::Import(a) => {
            claim_file(&a.out, a.force)?;
            let cfg = build_config(&a.preset, a.config.as_deref(), None)?;
            let key = match a.key {
                KeyArg::Encoder => ReferenceEncoder::Encoder,
                KeyArg::TargetEncoder => ReferenceEncoder::TargetEncoder,
            };
            let report = reference::import(&a.src, &cfg, key, &a.out)?;
            for n in &report.notes {
                println!("{n}");
            }
            println!("→ {}", a.out.display());
        }
        CheckpointCmd::Export(a) => {
            claim_file(&a.out, a.force)?;
            let n = reference::export(&a.src, &a.out)?;
            println!("{n} tensors → {}", a.out.display());
        }
    }
    Ok(())
}
