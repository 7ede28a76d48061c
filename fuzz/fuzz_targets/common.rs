//! The readers take paths: each input is written to a per-process file in /dev/shm (memory).

pub fn scratch(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::path::Path::new("/dev/shm").join(format!("brainssl-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}
