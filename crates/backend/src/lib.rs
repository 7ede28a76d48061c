//! The one place brainssl meets libtorch (through tch): device names, compute precision, and copies
//! between host vectors and tensors. Everything above this crate names devices with [`DeviceSpec`] and
//! reads tensors back with [`to_vec`], so the rest of the code does not depend on tch's spelling.

mod precision;

use std::str::FromStr;

pub use precision::{autocast, compute_kind, Precision, PrecisionChoice};
pub use tch;
pub use tch::{Device, Kind, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("unknown device '{0}': use cpu or cuda[:N]")]
    Unknown(String),
    #[error("unknown precision '{0}': use auto, f32 or bf16")]
    UnknownPrecision(String),
    #[error("{0} asked for, but this brainssl was built without CUDA: rebuild with `--features cuda` (see README)")]
    NoCudaBuild(String),
    #[error("{0} asked for, but libtorch sees no CUDA device (driver, CUDA_VISIBLE_DEVICES?)")]
    NoCudaDevice(String),
    #[error("{0} asked for, but only {1} CUDA device(s) are visible")]
    NoSuchDevice(String, usize),
}

/// A device as a user names it on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
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
            "cpu" if index == 0 => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(index)),
            _ => Err(BackendError::Unknown(s.clone())),
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl DeviceSpec {
    /// The libtorch device, or an error saying why it is not available.
    pub fn device(self) -> Result<Device, BackendError> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(i) => {
                let name = self.to_string();
                if !cfg!(feature = "cuda") && !tch::Cuda::is_available() {
                    return Err(BackendError::NoCudaBuild(name));
                }
                let n = tch::Cuda::device_count().max(0) as usize;
                if n == 0 {
                    return Err(BackendError::NoCudaDevice(name));
                }
                if i >= n {
                    return Err(BackendError::NoSuchDevice(name, n));
                }
                // the reference runs cuDNN without autotuning, so kernels do not vary between runs
                tch::Cuda::cudnn_set_benchmark(false);
                Ok(Device::Cuda(i))
            }
        }
    }

    pub fn of(device: Device) -> DeviceSpec {
        match device {
            Device::Cuda(i) => DeviceSpec::Cuda(i),
            _ => DeviceSpec::Cpu,
        }
    }
}

/// The PyTorch version of the libtorch this binary was built against, and its library folder.
pub fn libtorch_build() -> (&'static str, &'static str) {
    (
        option_env!("BRAINSSL_LIBTORCH_VERSION").unwrap_or("unknown"),
        option_env!("BRAINSSL_LIBTORCH_LIB").unwrap_or("unknown"),
    )
}

/// The name of CUDA device `index` from the driver (libcuda), when it can be asked.
pub fn cuda_device_name(index: usize) -> Option<String> {
    type Init = unsafe extern "C" fn(u32) -> i32;
    type Get = unsafe extern "C" fn(*mut i32, i32) -> i32;
    type Name = unsafe extern "C" fn(*mut std::os::raw::c_char, i32, i32) -> i32;
    // SAFETY: the driver API's cuInit, cuDeviceGet and cuDeviceGetName with their documented
    // signatures; the name buffer outlives the call and is NUL-terminated by the driver.
    unsafe {
        let lib = libloading::Library::new("libcuda.so.1").ok()?;
        let init: libloading::Symbol<Init> = lib.get(b"cuInit").ok()?;
        let get: libloading::Symbol<Get> = lib.get(b"cuDeviceGet").ok()?;
        let name: libloading::Symbol<Name> = lib.get(b"cuDeviceGetName").ok()?;
        if init(0) != 0 {
            return None;
        }
        let mut dev = 0i32;
        if get(&mut dev, index as i32) != 0 {
            return None;
        }
        let mut buf = [0 as std::os::raw::c_char; 256];
        if name(buf.as_mut_ptr(), buf.len() as i32, dev) != 0 {
            return None;
        }
        Some(std::ffi::CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned())
    }
}

/// Whether this binary links libtorch_cuda (the `cuda` feature).
pub fn built_with_cuda() -> bool {
    cfg!(feature = "cuda")
}

/// CPU threads for libtorch's intra-op pool (0 keeps libtorch's default: one per core).
pub fn set_threads(threads: usize) {
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
}

/// A float32 tensor of `shape` holding `data` (row-major), on `device`.
pub fn tensor(data: &[f32], shape: &[usize], device: Device) -> Tensor {
    let n: usize = shape.iter().product();
    assert_eq!(data.len(), n, "{} values for shape {shape:?}", data.len());
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(data).view(dims.as_slice()).to_device(device)
}

/// An int64 index tensor on `device`.
pub fn indices(idx: &[usize], device: Device) -> Tensor {
    let v: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    Tensor::from_slice(&v).to_device(device)
}

/// `t` flattened on the host as `kind`.
fn host_flat(t: &Tensor, kind: Kind) -> Tensor {
    t.detach().to_device(Device::Cpu).to_kind(kind).contiguous().view(-1)
}

/// Row-major float32 host copy of any float tensor (any device, any float kind).
pub fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&host_flat(t, Kind::Float)).expect("a float tensor converts to f32")
}

/// Row-major float64 host copy of any float tensor.
pub fn to_vec_f64(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&host_flat(t, Kind::Double)).expect("a float tensor converts to f64")
}

/// The value of a one-element tensor as f64.
pub fn scalar(t: &Tensor) -> f64 {
    t.detach().to_kind(Kind::Double).double_value(&[])
}

/// Shape as usizes.
pub fn dims(t: &Tensor) -> Vec<usize> {
    t.size().iter().map(|&d| d as usize).collect()
}

/// Waits for queued device work (a no-op on the CPU).
pub fn synchronize(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_and_print() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("CUDA:1".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(1));
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert!("tpu:0".parse::<DeviceSpec>().is_err());
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
        assert!("vulkan:0".parse::<DeviceSpec>().is_err());
        assert_eq!(DeviceSpec::Cuda(3).to_string(), "cuda:3");
        if !built_with_cuda() {
            let e = DeviceSpec::Cuda(0).device().unwrap_err().to_string();
            assert!(e.contains("--features cuda") && !e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn host_copies_round_trip_and_differentiate() {
        let data: Vec<f32> = (0..16).map(|v| v as f32 * 0.5).collect();
        let t = tensor(&data, &[2, 1, 2, 2, 2], Device::Cpu);
        assert_eq!(dims(&t), vec![2, 1, 2, 2, 2]);
        assert_eq!(to_vec(&t), data);
        // d/dx sum(x²) = 2x
        let x = t.set_requires_grad(true);
        x.square().sum(Kind::Float).backward();
        for (g, v) in to_vec(&x.grad()).iter().zip(&data) {
            assert!((g - 2.0 * v).abs() < 1e-6);
        }
        assert_eq!(scalar(&Tensor::from(2.5f32)), 2.5);
    }
}
