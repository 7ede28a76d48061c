//! Links libtorch like every tch crate (the shared script) and compiles the c10d shim against the
//! headers of the same torch wheel. Gloo's own headers are not in the wheel: `make setup` unpacks
//! them (headers only, nothing linked) from Debian's libgloo-dev into .venv/gloo/include.

#[path = "../../build/link_libtorch.rs"]
mod link_libtorch;

use std::path::PathBuf;

fn main() {
    link_libtorch::main();
    println!("cargo:rerun-if-changed=cpp/c10d_shim.cpp");
    println!("cargo:rerun-if-env-changed=BRAINSSL_GLOO_INCLUDE");
    let lib = PathBuf::from(std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys publishes its library folder"));
    let torch = lib.parent().expect("lib/ sits in the torch folder").to_path_buf();
    let gloo = std::env::var_os("BRAINSSL_GLOO_INCLUDE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/gloo/include"));
    if !gloo.join("gloo/config.h").exists() {
        panic!(
            "gloo's headers are not at {} (BRAINSSL_GLOO_INCLUDE): run `make setup` (scripts/setup-libtorch.sh), \
             which unpacks them from Debian's libgloo-dev",
            gloo.display()
        );
    }
    let mut b = cc::Build::new();
    b.cpp(true)
        .file("cpp/c10d_shim.cpp")
        .include(torch.join("include"))
        .include(torch.join("include/torch/csrc/api/include"))
        .include(&gloo)
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .define("USE_C10D_GLOO", None)
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .warnings(false);
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        let nvidia = torch.join("../nvidia");
        for header in [
            "nccl/include/nccl.h",
            "cu13/include/crt/host_config.h",
            "cu13/include/nv/target",
        ] {
            if !nvidia.join(header).exists() {
                panic!(
                    "the NCCL process group compiles against {}, which is missing: run `make setup-full` \
                     (the nvidia-nccl and cuda-toolkit[nvcc,cccl] wheels)",
                    nvidia.join(header).display()
                );
            }
        }
        b.define("USE_C10D_NCCL", None)
            .define("BRAINSSL_NCCL", None)
            .define("USE_CUDA", None)
            .include(nvidia.join("nccl/include"))
            .include(nvidia.join("cu13/include"));
    }
    b.compile("brainssl_c10d");
    // the shim's symbols live in libtorch_cpu (Gloo, TCPStore) and libtorch_cuda (NCCL)
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        println!("cargo:rustc-link-lib=dylib=c10_cuda");
    }
}
