//! This process's part in a data-parallel run: one rank of a c10d process group, or alone.
//!
//! Ranks hold identical weights (rank 0's are broadcast at the start), each trains on its own share
//! of every global batch, and their gradients are averaged before clipping and the optimiser step,
//! so every rank takes the same step. The scalars that steer the loop (which steps ran, losses,
//! non-finite counts, spectral values) are summed over ranks every micro-step, so all ranks make
//! the same decisions and none waits at a collective the others skipped.

use std::time::Duration;

use anyhow::Result;
use brainssl_backend::tch::nn::VarStore;
use brainssl_backend::{tch, Device, Tensor};
use brainssl_dist::{Collective, GradBuckets, ProcessGroup, Rendezvous};

pub struct DataParallel {
    pub rank: usize,
    pub world: usize,
    group: Option<ProcessGroup>,
    buckets: Option<GradBuckets>,
}

impl DataParallel {
    /// A single process.
    pub fn alone() -> Self {
        DataParallel {
            rank: 0,
            world: 1,
            group: None,
            buckets: None,
        }
    }

    /// Joins the group at `rv` with NCCL for CUDA devices and Gloo for the CPU.
    pub fn join(rv: &Rendezvous, device: Device, timeout: Duration) -> Result<Self> {
        let group = ProcessGroup::join(rv, Collective::for_device(device), device, timeout)?;
        Ok(DataParallel {
            rank: group.rank,
            world: group.world,
            group: Some(group),
            buckets: None,
        })
    }

    /// Whether this process is in a process group (possibly of one rank).
    pub fn grouped(&self) -> bool {
        self.group.is_some()
    }

    /// Rank 0 alone writes logs, previews and checkpoints.
    pub fn leads(&self) -> bool {
        self.rank == 0
    }

    /// Sums `values` over ranks in place.
    pub fn sum(&self, values: &mut [f64]) -> Result<()> {
        match &self.group {
            Some(g) => g.sum_f64(values),
            None => Ok(()),
        }
    }

    /// Every rank takes rank 0's values of every variable of `stores`.
    pub fn same_weights(&self, stores: &[&VarStore]) -> Result<()> {
        let Some(g) = &self.group else { return Ok(()) };
        for vs in stores {
            let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
            vars.sort_by(|a, b| a.0.cmp(&b.0));
            let ts: Vec<&Tensor> = vars.iter().map(|(_, t)| t).collect();
            tch::no_grad(|| g.broadcast(&ts, 0))?;
        }
        Ok(())
    }

    /// Replaces each gradient by its mean over ranks, in buckets of `bucket_bytes`.
    pub fn average_grads(&mut self, params: &[(String, Tensor)], bucket_bytes: usize) -> Result<()> {
        let Some(g) = &self.group else { return Ok(()) };
        if self.buckets.is_none() {
            self.buckets = Some(GradBuckets::new(params, bucket_bytes)?);
        }
        let buckets = self.buckets.as_ref().expect("built above");
        tch::no_grad(|| buckets.average(params, g))
    }

    /// Waits for every rank.
    pub fn barrier(&self) -> Result<()> {
        match &self.group {
            Some(g) => g.barrier(),
            None => Ok(()),
        }
    }
}
