//! Build script shared by the crates that link libtorch (`build = "../../build/link_libtorch.rs"`).
//!
//! Their tests and binaries get an rpath to the libtorch they were built against, so they run
//! without LD_LIBRARY_PATH. With the `cuda` feature, `libtorch_cuda` is linked with --no-as-needed:
//! nothing references it by symbol, so the linker would drop it and CUDA would silently be absent.

pub fn main() {
    println!("cargo:rerun-if-env-changed=BRAINSSL_SKIP_CUDA_CHECK");
    // torch-sys (links = "tch") publishes its library folder to direct dependents
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        // the wheel's version.py sits beside lib/: report what this binary was built against
        let version = std::fs::read_to_string(std::path::Path::new(&lib).join("../version.py"))
            .ok()
            .and_then(|v| {
                v.lines().find_map(|l| {
                    l.strip_prefix("__version__ = '")
                        .map(|r| r.trim_end_matches('\'').to_string())
                })
            })
            .unwrap_or_else(|| "unknown".into());
        println!("cargo:rustc-env=BRAINSSL_LIBTORCH_VERSION={version}");
        println!("cargo:rustc-env=BRAINSSL_LIBTORCH_LIB={lib}");
        if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
            // libtorch_cuda links only with its CUDA libraries present (the nvidia-* wheels)
            let cudnn = std::path::Path::new(&lib).join("../../nvidia/cudnn/lib");
            if !cudnn.exists() && std::env::var_os("BRAINSSL_SKIP_CUDA_CHECK").is_none() {
                panic!(
                    "the cuda feature links libtorch_cuda, whose CUDA libraries (cuDNN, cuBLAS, ...) are not \
                     installed beside {lib}: run `make setup-full` (or point LIBTORCH at a full PyTorch 2.11 \
                     install; BRAINSSL_SKIP_CUDA_CHECK=1 skips this check)"
                );
            }
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,-ltorch,--as-needed");
        }
    }
}
