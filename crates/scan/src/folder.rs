//! Output folders that two writers cannot share: an exclusive lock file, and the removal of
//! temporary files that interrupted [`crate::atomic_write`]s left behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Result, ScanError};

/// The lock file's name inside the folder it guards.
pub const LOCK_FILE: &str = ".brainssl.lock";

/// Held while a command writes a folder; removed when dropped.
#[derive(Debug)]
pub struct FolderLock {
    path: PathBuf,
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Whether process `pid` runs on this machine (Linux: /proc/PID exists).
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

impl FolderLock {
    /// Takes `dir`'s lock for `what` (e.g. "pretrain"), creating `dir`. A lock held by a live process
    /// is refused, naming it; one left by a process of this machine that no longer runs is taken over.
    pub fn acquire(dir: &Path, what: &str) -> Result<FolderLock> {
        std::fs::create_dir_all(dir).map_err(|e| ScanError::io(dir, e))?;
        let path = dir.join(LOCK_FILE);
        let me = format!("{} {} {what}\n", std::process::id(), host());
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    f.write_all(me.as_bytes()).map_err(|e| ScanError::io(&path, e))?;
                    return Ok(FolderLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let mut f = text.split_whitespace();
                    let pid = f.next().and_then(|p| p.parse::<u32>().ok());
                    let their_host = f.next().unwrap_or("").to_string();
                    let their_what = f.collect::<Vec<_>>().join(" ");
                    let stale = pid.is_some_and(|p| their_host == host() && !alive(p));
                    if !stale {
                        return Err(ScanError::invalid(
                            dir,
                            format!(
                                "in use by {} (process {} on {}); if that process is gone, remove {}",
                                if their_what.is_empty() {
                                    "another command"
                                } else {
                                    &their_what
                                },
                                pid.map_or("?".to_string(), |p| p.to_string()),
                                if their_host.is_empty() { "?" } else { &their_host },
                                path.display()
                            ),
                        ));
                    }
                    std::fs::remove_file(&path).map_err(|e| ScanError::io(&path, e))?;
                }
                Err(e) => return Err(ScanError::io(&path, e)),
            }
        }
        Err(ScanError::invalid(dir, "cannot take the folder's lock"))
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes the temporary files of interrupted atomic writes (`.NAME.tmpPID`) in `dir` (not below);
/// call it while holding the folder's lock. Returns how many were removed.
pub fn remove_leftover_temps(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let is_temp = name.starts_with('.')
            && name
                .rsplit_once(".tmp")
                .is_some_and(|(_, pid)| !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()));
        if is_temp && e.file_type().is_ok_and(|t| t.is_file()) && std::fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}

/// Whether `dir` holds anything besides its lock file (a missing folder is empty).
pub fn has_contents(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name() != LOCK_FILE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_and_a_dead_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let lock = FolderLock::acquire(&run, "pretrain").unwrap();
        let err = FolderLock::acquire(&run, "probe").unwrap_err().to_string();
        assert!(
            err.contains("in use by pretrain") && err.contains(&std::process::id().to_string()),
            "{err}"
        );
        drop(lock);
        assert!(!run.join(LOCK_FILE).exists());
        // a holder that no longer runs: pid 2^22+1 is above Linux's pid_max default
        std::fs::write(run.join(LOCK_FILE), format!("4194305 {} pretrain\n", host())).unwrap();
        let again = FolderLock::acquire(&run, "pretrain").unwrap();
        assert!(std::fs::read_to_string(run.join(LOCK_FILE))
            .unwrap()
            .starts_with(&std::process::id().to_string()));
        drop(again);
        // another machine's lock is never assumed stale
        std::fs::write(run.join(LOCK_FILE), "4194305 some-other-host pretrain\n").unwrap();
        assert!(FolderLock::acquire(&run, "pretrain").is_err());
    }

    #[test]
    fn leftover_temporaries_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            ".latest.safetensors.tmp123",
            ".log.csv.tmp9",
            "keep.tmp1",
            ".keep.tmpx",
            "log.csv",
        ] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        assert_eq!(remove_leftover_temps(dir.path()), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(left, [".keep.tmpx", "keep.tmp1", "log.csv"]);
        assert!(has_contents(dir.path()));
        assert!(!has_contents(&dir.path().join("missing")));
    }
}
