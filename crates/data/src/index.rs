//! `brainssl index`: walk a folder of scans and write a manifest with foreground boxes.

use crate::manifest::{Manifest, ManifestRow};
use anyhow::Result;
use brainssl_prep::foreground::ras_foreground;
use brainssl_scan::{load_scan, LoadOptions};
use rayon::prelude::*;
use regex::Regex;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// Capture group 1 (or the whole match) is the subject id; no match → file name up to the first '_'.
    pub subject_regex: Regex,
    /// A file `<stem><suffix>.nii[.gz]` is the mask of `<stem>.nii[.gz]`, and is not indexed as a scan.
    pub mask_suffixes: Vec<String>,
    pub label: i64,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            subject_regex: Regex::new(
                r"(sub-[A-Za-z0-9]+|\d{3}_S_\d{4}|OAS3\d{4}|IXI\d{3}|BraTS-[A-Za-z]+-\d{5}|UCSF-PDGM-\d+)",
            )
            .unwrap(),
            mask_suffixes: vec![
                "_brainmask".into(),
                "_brain_mask".into(),
                "_betmask".into(),
                "_mask".into(),
            ],
            label: 0,
        }
    }
}

fn nifti_stem(p: &Path) -> Option<String> {
    let name = p.file_name()?.to_string_lossy().to_string();
    name.strip_suffix(".nii.gz")
        .or_else(|| name.strip_suffix(".nii"))
        .map(str::to_string)
}

/// Contrast from common naming conventions (BIDS suffixes, BraTS and UCSF names, vendor words).
pub fn guess_contrast(name: &str) -> &'static str {
    let n = name.to_ascii_lowercase();
    let has = |k: &str| n.split(|c: char| !c.is_ascii_alphanumeric()).any(|t| t == k);
    let contains = |k: &str| n.contains(k);
    if contains("flair") || has("t2f") {
        "FLAIR"
    } else if has("t1c") || has("t1ce") || has("t1gd") || contains("t1c_") || contains("post") {
        "T1c"
    } else if has("t2") || contains("t2w") {
        "T2"
    } else if has("t1") || has("t1n") || contains("mprage") || contains("t1w") || contains("spgr") {
        "T1"
    } else if has("pd") || has("pdw") {
        "PD"
    } else if has("adc") {
        "ADC"
    } else if has("dwi") {
        "DWI"
    } else {
        "unknown"
    }
}

/// Scans (NIfTI files and DICOM series folders) below `dir`, masks excluded, in sorted order.
pub fn find_scans(dir: &Path, opts: &IndexOptions) -> Result<Vec<(PathBuf, Option<PathBuf>)>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut has_dicom = false;
        for e in std::fs::read_dir(&d).map_err(|e| anyhow::anyhow!("{}: {e}", d.display()))? {
            let p = e?.path();
            if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if nifti_stem(&p).is_some() {
                files.push(p);
            } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("dcm")) {
                has_dicom = true;
            }
        }
        if has_dicom && d != dir {
            files.push(d);
        }
    }
    files.sort();
    let is_mask = |p: &Path| nifti_stem(p).is_some_and(|s| opts.mask_suffixes.iter().any(|m| s.ends_with(m.as_str())));
    let mut out = Vec::new();
    for f in files.iter().filter(|f| !is_mask(f)) {
        let mask = nifti_stem(f).and_then(|stem| {
            opts.mask_suffixes.iter().find_map(|suf| {
                ["nii.gz", "nii"]
                    .iter()
                    .map(|ext| f.with_file_name(format!("{stem}{suf}.{ext}")))
                    .find(|m| m.exists())
            })
        });
        out.push((f.clone(), mask));
    }
    Ok(out)
}

pub fn subject_of(path: &Path, re: &Regex) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if let Some(c) = re.captures(&name) {
        return c.get(1).or_else(|| c.get(0)).unwrap().as_str().to_string();
    }
    name.split('_')
        .next()
        .unwrap_or(&name)
        .trim_end_matches(".gz")
        .trim_end_matches(".nii")
        .to_string()
}

/// Index result: the manifest and the scans that could not be used, each with its reason.
pub fn index_dir(
    dir: &Path,
    opts: &IndexOptions,
    progress: &indicatif::ProgressBar,
) -> Result<(Manifest, Vec<String>)> {
    let scans = find_scans(dir, opts)?;
    progress.set_length(scans.len() as u64);
    let results: Vec<std::result::Result<ManifestRow, String>> = scans
        .par_iter()
        .map(|(p, mask)| {
            let r = (|| {
                let v = load_scan(p, LoadOptions::default()).map_err(|e| e.to_string())?;
                let m = match mask {
                    Some(m) => Some(load_scan(m, LoadOptions::default()).map_err(|e| e.to_string())?),
                    None => None,
                };
                let b = ras_foreground(&v, m.as_ref()).map_err(|e| format!("{}: {e}", p.display()))?;
                let name = p.file_name().unwrap_or_default().to_string_lossy().to_string();
                let mut row = ManifestRow::new(
                    opts.label,
                    &subject_of(p, &opts.subject_regex),
                    guess_contrast(&name),
                    p.clone(),
                );
                row.bbox = Some(b);
                if let Some(m) = mask {
                    row.extra.insert("mask_path".into(), m.display().to_string());
                }
                Ok(row)
            })();
            progress.inc(1);
            r
        })
        .collect();
    let mut m = Manifest {
        rows: vec![],
        extra_columns: vec!["mask_path".into()],
    };
    let mut errors = vec![];
    for r in results {
        match r {
            Ok(row) => m.rows.push(row),
            Err(e) => errors.push(e),
        }
    }
    Ok((m, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_and_subject_guesses() {
        assert_eq!(guess_contrast("sub-01_ses-1_T1w.nii.gz"), "T1");
        assert_eq!(guess_contrast("BraTS-GLI-00001-000-t2f.nii.gz"), "FLAIR");
        assert_eq!(guess_contrast("BraTS-GLI-00001-000-t1c.nii.gz"), "T1c");
        assert_eq!(guess_contrast("UCSF-PDGM-0018_T2_bias.nii.gz"), "T2");
        assert_eq!(guess_contrast("ADNI_MPRAGE_I1234.nii"), "T1");
        assert_eq!(guess_contrast("scan.nii"), "unknown");
        let o = IndexOptions::default();
        assert_eq!(subject_of(Path::new("sub-A12_T1w.nii.gz"), &o.subject_regex), "sub-A12");
        assert_eq!(
            subject_of(Path::new("ADNI_033_S_0513_MR.nii"), &o.subject_regex),
            "033_S_0513"
        );
        assert_eq!(
            subject_of(Path::new("patient7_flair.nii"), &o.subject_regex),
            "patient7"
        );
    }
}
