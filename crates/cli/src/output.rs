//! One overwrite policy for every command that writes results: a non-empty output folder (or an
//! existing output file) is refused unless `--force`, and a folder is locked while a command writes
//! it, so two commands never interleave their files.

use std::path::Path;

use anyhow::{bail, Result};
use brainssl_scan::folder::{has_contents, FolderLock};

/// Takes `dir` for `command`: creates it, locks it, and refuses it when it already holds files
/// unless `force` (then its files are overwritten and others kept).
pub fn claim_folder(dir: &Path, force: bool, command: &str) -> Result<FolderLock> {
    let had = has_contents(dir);
    let lock = FolderLock::acquire(dir, command)?;
    if had && !force {
        bail!(
            "{} is not empty: choose another --out, or add --force to overwrite its files",
            dir.display()
        );
    }
    brainssl_scan::folder::remove_leftover_temps(dir);
    Ok(lock)
}

/// Refuses an existing output file unless `force`.
pub fn claim_file(path: &Path, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!(
            "{} exists: choose another --out, or add --force to overwrite it",
            path.display()
        );
    }
    Ok(())
}

/// Writes `table` as `dir/{stem}.md`, `.csv` and `.json` (the report reads the JSON).
pub fn write_table(dir: &Path, stem: &str, table: &brainssl_eval::Table) -> Result<()> {
    brainssl_scan::atomic_write(&dir.join(format!("{stem}.md")), table.to_markdown().as_bytes())?;
    brainssl_scan::atomic_write(&dir.join(format!("{stem}.csv")), table.to_csv().as_bytes())?;
    brainssl_scan::atomic_write(&dir.join(format!("{stem}.json")), table.to_json().as_bytes())?;
    Ok(())
}
