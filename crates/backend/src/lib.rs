//! The one place brainssl touches Burn's backend selection, so a Burn upgrade changes few files.
//!
//! Burn 0.22 picks the backend from the `Device` at run time; which backends exist is decided at build
//! time by this crate's features: Flex (CPU) always, `cuda` and `vulkan` when enabled.

use std::str::FromStr;

pub use burn;
pub use burn::tensor::{Device, Tensor, TensorData};

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("unknown device '{0}': use cpu, cuda[:N] or vulkan[:N]")]
    Unknown(String),
    #[error("this brainssl was built without the {0} backend; rebuild with `--features {0}`")]
    NotCompiled(&'static str),
}

/// A device as a user names it on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
    Vulkan(usize),
}

impl FromStr for DeviceSpec {
    type Err = BackendError;
    fn from_str(s: &str) -> Result<Self, BackendError> {
        let s = s.trim().to_ascii_lowercase();
        let (kind, index) = match s.split_once(':') {
            Some((k, i)) => (k, i.parse::<usize>().map_err(|_| BackendError::Unknown(s.clone()))?),
            None => (s.as_str(), 0),
        };
        match kind {
            "cpu" | "flex" if index == 0 => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(index)),
            "vulkan" => Ok(DeviceSpec::Vulkan(index)),
            _ => Err(BackendError::Unknown(s.clone())),
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
            DeviceSpec::Vulkan(i) => write!(f, "vulkan:{i}"),
        }
    }
}

impl DeviceSpec {
    /// The Burn device, or an error saying how to build a binary that has it.
    pub fn device(self) -> Result<Device, BackendError> {
        match self {
            DeviceSpec::Cpu => Ok(Device::flex()),
            #[cfg(feature = "cuda")]
            DeviceSpec::Cuda(i) => Ok(Device::cuda(i)),
            #[cfg(not(feature = "cuda"))]
            DeviceSpec::Cuda(_) => Err(BackendError::NotCompiled("cuda")),
            #[cfg(feature = "vulkan")]
            DeviceSpec::Vulkan(i) => Ok(Device::vulkan(burn::tensor::DeviceKind::DiscreteGpu(i))),
            #[cfg(not(feature = "vulkan"))]
            DeviceSpec::Vulkan(_) => Err(BackendError::NotCompiled("vulkan")),
        }
    }
}

/// `--devices cuda:0,cuda:1` for data-parallel runs.
pub fn parse_devices(s: &str) -> Result<Vec<DeviceSpec>, BackendError> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(DeviceSpec::from_str)
        .collect()
}

/// Backends this binary was built with.
pub fn compiled_backends() -> Vec<&'static str> {
    let mut v = vec!["cpu (flex)"];
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    if cfg!(feature = "vulkan") {
        v.push("vulkan");
    }
    v
}

/// A loader batch ([B, 1, T, S, S], C order) as a tensor on `device`.
pub fn volume_batch(data: Vec<f32>, shape: [usize; 5], device: &Device) -> Tensor<5> {
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "batch data does not match its shape"
    );
    Tensor::from_data(TensorData::new(data, shape), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_and_print() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("CUDA:1".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(1));
        assert_eq!("vulkan".parse::<DeviceSpec>().unwrap(), DeviceSpec::Vulkan(0));
        assert!("tpu:0".parse::<DeviceSpec>().is_err());
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
        assert_eq!(
            parse_devices("cuda:0, cuda:1").unwrap(),
            vec![DeviceSpec::Cuda(0), DeviceSpec::Cuda(1)]
        );
        assert_eq!(DeviceSpec::Cuda(3).to_string(), "cuda:3");
        if !cfg!(feature = "cuda") {
            let e = DeviceSpec::Cuda(0).device().unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
    }

    #[test]
    fn batches_reach_the_cpu_backend_intact_and_differentiate() {
        let device = DeviceSpec::Cpu.device().unwrap();
        let data: Vec<f32> = (0..2 * 8).map(|v| v as f32 * 0.5).collect();
        let t = volume_batch(data.clone(), [2, 1, 2, 2, 2], &device);
        assert_eq!(t.dims(), [2, 1, 2, 2, 2]);
        assert_eq!(t.clone().into_data().try_to_vec::<f32>().unwrap(), data);
        // d/dx sum(x²) = 2x on an autodiff device
        let ad = device.autodiff();
        let x = volume_batch(data.clone(), [2, 1, 2, 2, 2], &ad).require_grad();
        let grads = x.clone().powi_scalar(2).sum().backward();
        let g = x.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
        for (a, b) in g.iter().zip(&data) {
            assert!((a - 2.0 * b).abs() < 1e-6);
        }
    }
}
