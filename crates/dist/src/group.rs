//! A c10d process group (Gloo or NCCL) behind a safe handle.

use std::ffi::{c_char, c_int, c_longlong, c_void, CStr, CString};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use brainssl_backend::{to_vec_f64, Device, Tensor};

use crate::world::Rendezvous;

#[repr(C)]
struct RawGroup {
    _private: [u8; 0],
}

extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn bssl_group_new(
        backend: *const c_char,
        host: *const c_char,
        port: c_int,
        rank: c_int,
        world: c_int,
        serve_store: c_int,
        timeout_ms: c_longlong,
        gloo_host: *const c_char,
        err: *mut c_char,
        errlen: usize,
    ) -> *mut RawGroup;
    fn bssl_has_nccl() -> c_int;
    fn bssl_allreduce_sum(g: *mut RawGroup, t: *mut *mut c_void, n: usize, err: *mut c_char, errlen: usize) -> c_int;
    fn bssl_broadcast(
        g: *mut RawGroup,
        t: *mut *mut c_void,
        n: usize,
        root: c_int,
        err: *mut c_char,
        errlen: usize,
    ) -> c_int;
    fn bssl_barrier(g: *mut RawGroup, err: *mut c_char, errlen: usize) -> c_int;
    fn bssl_group_free(g: *mut RawGroup);
    fn bssl_cuda_peak_bytes(dev: c_int) -> c_longlong;
    fn bssl_cuda_reset_peak(dev: c_int);
}

/// Peak bytes held by tensors on CUDA device `index` since the last [`reset_cuda_peak`] (what
/// `torch.cuda.max_memory_allocated` reports); None without CUDA.
pub fn cuda_peak_bytes(index: usize) -> Option<u64> {
    // SAFETY: a query of libtorch's allocator; -1 when unavailable
    let v = unsafe { bssl_cuda_peak_bytes(index as c_int) };
    (v >= 0).then_some(v as u64)
}

pub fn reset_cuda_peak(index: usize) {
    // SAFETY: as above
    unsafe { bssl_cuda_reset_peak(index as c_int) }
}

const ERR_LEN: usize = 2048;

/// Which c10d backend carries the collectives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collective {
    /// CPU tensors, TCP between ranks.
    Gloo,
    /// CUDA tensors, one GPU per rank.
    Nccl,
}

impl Collective {
    /// NCCL for CUDA devices, Gloo for the CPU (as DDP chooses).
    pub fn for_device(device: Device) -> Self {
        match device {
            Device::Cpu => Collective::Gloo,
            _ => Collective::Nccl,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Collective::Gloo => "gloo",
            Collective::Nccl => "nccl",
        }
    }

    /// Whether this binary can form groups of this kind.
    pub fn available(self) -> bool {
        match self {
            Collective::Gloo => true,
            // SAFETY: a constant query
            Collective::Nccl => unsafe { bssl_has_nccl() == 1 },
        }
    }
}

/// One rank's membership of a process group. Collectives fail (never hang) after `timeout`.
pub struct ProcessGroup {
    raw: *mut RawGroup,
    pub rank: usize,
    pub world: usize,
    pub kind: Collective,
    /// Where the tensors of this group's collectives must live.
    pub device: Device,
    pub timeout: Duration,
}

// SAFETY: the c10d backend is thread-safe for issuing collectives; the handle is only used by the
// thread that owns the value (collectives take &self but are issued from the training loop).
unsafe impl Send for ProcessGroup {}

fn error_text(buf: &[c_char]) -> String {
    // SAFETY: the shim always NUL-terminates within the buffer
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

impl ProcessGroup {
    /// Joins the group at `rv` (rank 0 serves the store); waits at most `timeout` for the others.
    pub fn join(rv: &Rendezvous, kind: Collective, device: Device, timeout: Duration) -> Result<Self> {
        if !kind.available() {
            bail!("this brainssl was built without CUDA, so it has no NCCL: build with --features cuda");
        }
        let backend = CString::new(kind.name())?;
        let host = CString::new(rv.master_addr.as_str()).context("MASTER_ADDR")?;
        let bind = CString::new(rv.gloo_bind.clone().unwrap_or_default())?;
        let mut err = vec![0 as c_char; ERR_LEN];
        // SAFETY: all pointers are valid NUL-terminated strings or a buffer of ERR_LEN bytes
        let raw = unsafe {
            bssl_group_new(
                backend.as_ptr(),
                host.as_ptr(),
                rv.master_port as c_int,
                rv.rank as c_int,
                rv.world as c_int,
                rv.serves_store as c_int,
                timeout.as_millis().min(i64::MAX as u128) as c_longlong,
                bind.as_ptr(),
                err.as_mut_ptr(),
                ERR_LEN,
            )
        };
        if raw.is_null() {
            bail!(
                "rank {} of {} could not join the {} group at {}:{} within {:?}: {}",
                rv.rank,
                rv.world,
                kind.name(),
                rv.master_addr,
                rv.master_port,
                timeout,
                error_text(&err)
            );
        }
        Ok(ProcessGroup {
            raw,
            rank: rv.rank,
            world: rv.world,
            kind,
            device,
            timeout,
        })
    }

    fn call(&self, what: &str, f: impl FnOnce(*mut c_char) -> c_int) -> Result<()> {
        let mut err = vec![0 as c_char; ERR_LEN];
        if f(err.as_mut_ptr()) != 0 {
            bail!(
                "rank {} of {}: {what} failed (another rank may have died or hung; timeout {:?}): {}",
                self.rank,
                self.world,
                self.timeout,
                error_text(&err)
            );
        }
        Ok(())
    }

    fn pointers(tensors: &[&Tensor]) -> Vec<*mut c_void> {
        tensors.iter().map(|t| t.as_ptr() as *mut c_void).collect()
    }

    /// In-place sum over ranks of each tensor (contiguous, on [`Self::device`]); the tensors are
    /// reduced concurrently.
    pub fn all_reduce_sum(&self, tensors: &[&Tensor]) -> Result<()> {
        let mut p = Self::pointers(tensors);
        // SAFETY: the pointers are live at::Tensor handles owned by tch for the call's duration
        self.call("all-reduce", |e| unsafe {
            bssl_allreduce_sum(self.raw, p.as_mut_ptr(), p.len(), e, ERR_LEN)
        })
    }

    /// Every rank's tensors take rank `root`'s values.
    pub fn broadcast(&self, tensors: &[&Tensor], root: usize) -> Result<()> {
        let mut p = Self::pointers(tensors);
        // SAFETY: as in all_reduce_sum
        self.call("broadcast", |e| unsafe {
            bssl_broadcast(self.raw, p.as_mut_ptr(), p.len(), root as c_int, e, ERR_LEN)
        })
    }

    pub fn barrier(&self) -> Result<()> {
        // SAFETY: a valid group handle
        self.call("barrier", |e| unsafe { bssl_barrier(self.raw, e, ERR_LEN) })
    }

    /// Sums host numbers over ranks (small control values: counts, losses).
    pub fn sum_f64(&self, values: &mut [f64]) -> Result<()> {
        let t = Tensor::from_slice(values).to_device(self.device);
        self.all_reduce_sum(&[&t])?;
        values.copy_from_slice(&to_vec_f64(&t));
        Ok(())
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: raw came from bssl_group_new and is freed once
        unsafe { bssl_group_free(self.raw) }
    }
}
