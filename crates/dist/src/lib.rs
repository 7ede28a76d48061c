//! Data parallelism on the engine PyTorch DDP stands on: libtorch's c10d, through a small C++ shim
//! (`cpp/c10d_shim.cpp`). Ranks meet at a `TCPStore`, form a Gloo (CPU) or NCCL (CUDA) process
//! group, and average gradients in flattened buckets.
//!
//! - [`world`]: who this process is: `torchrun`'s and SLURM's environment, or our own launcher's;
//! - [`launch`]: `--nproc-per-node N`, starting N local ranks like `torchrun --standalone`;
//! - [`ProcessGroup`]: the collectives; [`GradBuckets`]: gradient averaging.
//!
//! The shim also answers libtorch's CUDA allocator statistics ([`cuda_peak_bytes`]), which tch does
//! not expose either.

mod buckets;
mod group;
pub mod launch;
pub mod world;

pub use buckets::GradBuckets;
pub use group::{cuda_peak_bytes, reset_cuda_peak, Collective, ProcessGroup};
pub use world::{Rendezvous, WorldInfo};
