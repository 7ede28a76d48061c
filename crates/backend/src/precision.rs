//! Mixed precision without autocast: matrix products run in the scope's compute kind (bf16 or f32)
//! while parameters, optimiser state, layer norms, losses and statistics stay float32.
//!
//! libtorch's autocast on the CPU and in bf16 is not reachable through tch, so the layers that
//! autocast would lower (linear, convolution, attention) ask [`compute_kind`] and cast their inputs;
//! everything else promotes back to float32. Gradients reach the float32 master weights through the
//! casts.

use std::cell::Cell;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

/// Compute precision of the matrix products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    F32,
    Bf16,
}

/// The configured choice: `auto` is bf16 on CUDA and f32 on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrecisionChoice {
    #[default]
    Auto,
    F32,
    Bf16,
}

impl PrecisionChoice {
    pub fn resolve(self, device: Device) -> Precision {
        match self {
            PrecisionChoice::F32 => Precision::F32,
            PrecisionChoice::Bf16 => Precision::Bf16,
            PrecisionChoice::Auto if device.is_cuda() => Precision::Bf16,
            PrecisionChoice::Auto => Precision::F32,
        }
    }
}

impl std::str::FromStr for PrecisionChoice {
    type Err = crate::BackendError;
    fn from_str(s: &str) -> Result<Self, crate::BackendError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(PrecisionChoice::Auto),
            "f32" | "fp32" | "float32" => Ok(PrecisionChoice::F32),
            "bf16" | "bfloat16" => Ok(PrecisionChoice::Bf16),
            other => Err(crate::BackendError::UnknownPrecision(other.to_string())),
        }
    }
}

impl Precision {
    pub fn kind(self) -> Kind {
        match self {
            Precision::F32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
        }
    }
}

thread_local! {
    static COMPUTE: Cell<Kind> = const { Cell::new(Kind::Float) };
}

/// Runs `f` with matrix products in `precision` on this thread (scopes nest and restore).
pub fn autocast<T>(precision: Precision, f: impl FnOnce() -> T) -> T {
    let before = COMPUTE.with(|c| c.replace(precision.kind()));
    struct Restore(Kind);
    impl Drop for Restore {
        fn drop(&mut self) {
            COMPUTE.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(before);
    f()
}

/// The kind matrix products use in the current scope (float32 outside any [`autocast`]).
pub fn compute_kind() -> Kind {
    COMPUTE.with(|c| c.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_auto_resolves_by_device() {
        assert_eq!(compute_kind(), Kind::Float);
        autocast(Precision::Bf16, || {
            assert_eq!(compute_kind(), Kind::BFloat16);
            autocast(Precision::F32, || assert_eq!(compute_kind(), Kind::Float));
            assert_eq!(compute_kind(), Kind::BFloat16);
        });
        assert_eq!(compute_kind(), Kind::Float);
        assert_eq!(PrecisionChoice::Auto.resolve(Device::Cpu), Precision::F32);
        assert_eq!(PrecisionChoice::Auto.resolve(Device::Cuda(0)), Precision::Bf16);
        assert_eq!("BF16".parse::<PrecisionChoice>().unwrap(), PrecisionChoice::Bf16);
        assert!("fp8".parse::<PrecisionChoice>().is_err());
    }
}
