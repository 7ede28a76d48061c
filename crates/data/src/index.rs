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
    /// Follow symbolic links (each folder is still walked once: a link back into a folder already
    /// walked, such as `loop -> .`, is reported, not followed; a file reached twice is listed once).
    pub follow_links: bool,
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
            follow_links: false,
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

/// A scan and the mask found beside it.
pub type ScanAndMask = (PathBuf, Option<PathBuf>);

/// Name tokens of segmentations, label maps and atlases: not training scans.
const LABEL_WORDS: [&str; 10] = [
    "seg", "dseg", "aseg", "aparc", "label", "labels", "atlas", "parc", "mask", "lesion",
];

fn label_like_name(stem: &str) -> bool {
    let lower = stem.to_ascii_lowercase();
    lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|t| LABEL_WORDS.contains(&t))
}

/// Scans (NIfTI files and DICOM series folders) below `dir`, masks excluded, in sorted order, and
/// what was left out and why (links, FIFOs and devices, label maps by name, masks with no image).
/// Symbolic links are not followed unless `opts.follow_links` (they could lead out of `dir`, or
/// round in a loop); when they are, every folder is walked once, by its canonical path.
pub fn find_scans(dir: &Path, opts: &IndexOptions) -> Result<(Vec<ScanAndMask>, Vec<String>)> {
    let mut files = Vec::new();
    let mut left_out = Vec::new();
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut walked = std::collections::HashSet::from([canonical(dir)]);
    let mut listed: std::collections::HashMap<PathBuf, (PathBuf, bool)> = std::collections::HashMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut has_dicom = false;
        // sorted, real entries before links: which path of a file reached twice is kept (and so
        // the subject guessed from it) does not depend on the file system's listing order
        let mut entries = std::fs::read_dir(&d)
            .map_err(|e| anyhow::anyhow!("{}: {e}", d.display()))?
            .collect::<std::io::Result<Vec<_>>>()?;
        entries.sort_by_key(|e| (e.file_type().is_ok_and(|t| t.is_symlink()), e.file_name()));
        for e in entries {
            let p = e.path();
            if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                continue;
            }
            let mut kind = e.file_type()?;
            let linked = kind.is_symlink();
            if linked {
                if !opts.follow_links {
                    left_out.push(format!(
                        "{}: a symbolic link (not followed; --follow-links follows links)",
                        p.display()
                    ));
                    continue;
                }
                match std::fs::metadata(&p) {
                    Ok(m) => kind = m.file_type(),
                    Err(err) => {
                        left_out.push(format!("{}: a broken symbolic link ({err})", p.display()));
                        continue;
                    }
                }
            }
            let scan_like = nifti_stem(&p).is_some() || p.extension().is_some_and(|x| x.eq_ignore_ascii_case("dcm"));
            if kind.is_dir() {
                let c = canonical(&p);
                if walked.insert(c.clone()) {
                    stack.push(p);
                } else {
                    left_out.push(format!(
                        "{}: leads to {}, a folder already walked (a link loop or a second way in)",
                        p.display(),
                        c.display()
                    ));
                }
            } else if !kind.is_file() {
                if scan_like {
                    left_out.push(format!(
                        "{}: not a regular file (a FIFO, socket or device)",
                        p.display()
                    ));
                }
            } else if scan_like {
                if nifti_stem(&p).is_none() {
                    has_dicom = true;
                    continue;
                }
                // one path per file: the real one rather than a link to it
                match listed.entry(canonical(&p)) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert((p, linked));
                    }
                    std::collections::hash_map::Entry::Occupied(mut o) => {
                        let (first, first_linked) = o.get();
                        if *first_linked && !linked {
                            left_out.push(format!("{}: the same file as {}", first.display(), p.display()));
                            o.insert((p, linked));
                        } else {
                            left_out.push(format!("{}: the same file as {}", p.display(), first.display()));
                        }
                    }
                }
            }
        }
        if has_dicom && d != dir {
            files.push(d);
        }
    }
    files.extend(listed.into_values().map(|(p, _)| p));
    files.sort();
    let mask_of = |p: &Path| {
        nifti_stem(p).and_then(|s| {
            opts.mask_suffixes
                .iter()
                .find(|m| s.ends_with(m.as_str()))
                .map(|m| (s.clone(), m.clone()))
        })
    };
    let mut out = Vec::new();
    for f in &files {
        if let Some((stem, suffix)) = mask_of(f) {
            let image = stem[..stem.len() - suffix.len()].to_string();
            let has_image = ["nii.gz", "nii"]
                .iter()
                .any(|ext| f.with_file_name(format!("{image}.{ext}")).exists());
            if !has_image {
                left_out.push(format!(
                    "{}: a mask ({suffix}) with no image {image}.nii[.gz] beside it",
                    f.display()
                ));
            }
            continue;
        }
        if nifti_stem(f).is_some_and(|s| label_like_name(&s)) {
            left_out.push(format!(
                "{}: named like a segmentation, label map or atlas (not a scan to train on)",
                f.display()
            ));
            continue;
        }
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
    Ok((out, left_out))
}

/// Whether a volume holds a handful of integer values (a label map), and how many.
fn label_map_values(data: &[f32]) -> Option<usize> {
    let mut seen: Vec<f32> = Vec::new();
    for &v in data {
        if v.fract() != 0.0 {
            return None;
        }
        if !seen.contains(&v) {
            seen.push(v);
            if seen.len() > 16 {
                return None;
            }
        }
    }
    // a binary or few-valued integer volume; a constant one is an error elsewhere
    (seen.len() >= 2).then_some(seen.len())
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

/// Index result: the manifest, the files left out (each with its reason) and warnings about the
/// scans kept.
pub fn index_dir(
    dir: &Path,
    opts: &IndexOptions,
    progress: &indicatif::ProgressBar,
) -> Result<(Manifest, Vec<String>, Vec<String>)> {
    let (scans, left_out) = find_scans(dir, opts)?;
    progress.set_length(scans.len() as u64);
    let warnings = std::sync::Mutex::new(Vec::<String>::new());
    let results: Vec<std::result::Result<ManifestRow, String>> = scans
        .par_iter()
        .map(|(p, mask)| {
            let r = (|| {
                let v = load_scan(p, LoadOptions::default()).map_err(|e| e.to_string())?;
                if let Some(n) = label_map_values(&v.data) {
                    return Err(format!(
                        "{}: holds only {n} distinct integer values, like a label map or segmentation (left out)",
                        p.display()
                    ));
                }
                let m = match mask {
                    Some(m) => Some(load_scan(m, LoadOptions::default()).map_err(|e| e.to_string())?),
                    None => None,
                };
                let b = ras_foreground(&v, m.as_ref()).map_err(|e| format!("{}: {e}", p.display()))?;
                // the foreground box spans the whole volume: the background is not zero
                // (the box is in RAS+ axis order, a permutation of the voxel axes)
                let mut extents: Vec<usize> = b.iter().map(|(lo, hi)| hi + 1 - lo).collect();
                let mut dims = v.dims.to_vec();
                extents.sort_unstable();
                dims.sort_unstable();
                let whole = m.is_none() && b.iter().all(|(lo, _)| *lo == 0) && extents == dims;
                if whole {
                    warnings.lock().unwrap().push(format!(
                        "{}: the foreground (voxels != 0) covers the whole volume, so cropping does nothing: \
                         probably not skull-stripped (give a mask, or a box in the manifest)",
                        p.display()
                    ));
                }
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
    let mut errors = left_out;
    for r in results {
        match r {
            Ok(row) => m.rows.push(row),
            Err(e) => errors.push(e),
        }
    }
    let mut warnings = warnings.into_inner().unwrap();
    warnings.sort();
    Ok((m, errors, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `index` leaves out, and says so: links (a loop among them), FIFOs, label maps by name
    /// and by content, masks with no image; and a warning for a scan that is all foreground.
    #[test]
    fn links_fifos_label_maps_and_orphan_masks_are_left_out_and_reported() {
        use brainssl_scan::geometry::IDENTITY;
        use brainssl_scan::nifti_io::write_nifti;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("data");
        std::fs::create_dir_all(d.join("sub-01")).unwrap();
        // a brain: zero background around a varied foreground
        let brain: Vec<f32> = (0..8 * 8 * 8)
            .map(|i| {
                let (x, y, z) = (i % 8, (i / 8) % 8, i / 64);
                if (2..6).contains(&x) && (2..6).contains(&y) && (2..6).contains(&z) {
                    (i % 37) as f32 + 0.5
                } else {
                    0.0
                }
            })
            .collect();
        write_nifti(&d.join("sub-01/sub-01_T1w.nii.gz"), &brain, [8, 8, 8], &IDENTITY).unwrap();
        // not skull-stripped: no zero background
        let head: Vec<f32> = (0..512).map(|i| 1.5 + (i % 11) as f32).collect();
        write_nifti(&d.join("sub-01/sub-01_T2w.nii.gz"), &head, [8, 8, 8], &IDENTITY).unwrap();
        let labels: Vec<f32> = (0..512).map(|i| (i % 4) as f32).collect();
        write_nifti(&d.join("sub-01/sub-01_dseg.nii.gz"), &labels, [8, 8, 8], &IDENTITY).unwrap();
        write_nifti(&d.join("sub-01/sub-01_FLAIR.nii.gz"), &labels, [8, 8, 8], &IDENTITY).unwrap();
        write_nifti(&d.join("sub-01/sub-02_brainmask.nii.gz"), &labels, [8, 8, 8], &IDENTITY).unwrap();
        std::os::unix::fs::symlink(&d, d.join("loop")).unwrap();
        std::os::unix::fs::symlink("/etc", d.join("outside")).unwrap();
        assert!(std::process::Command::new("mkfifo")
            .arg(d.join("pipe.nii"))
            .status()
            .unwrap()
            .success());
        let (m, left_out, warnings) =
            index_dir(&d, &IndexOptions::default(), &indicatif::ProgressBar::hidden()).unwrap();
        let kept: Vec<String> = m
            .rows
            .iter()
            .map(|r| r.path.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(kept, ["sub-01_T1w.nii.gz", "sub-01_T2w.nii.gz"]);
        let said = left_out.join("\n");
        for (what, why) in [
            ("loop", "symbolic link"),
            ("outside", "symbolic link"),
            ("pipe.nii", "not a regular file"),
            ("sub-01_dseg.nii.gz", "segmentation"),
            ("sub-01_FLAIR.nii.gz", "4 distinct integer values"),
            ("sub-02_brainmask.nii.gz", "no image"),
        ] {
            assert!(
                left_out.iter().any(|l| l.contains(what) && l.contains(why)),
                "{what}: {said}"
            );
        }
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("sub-01_T2w") && warnings[0].contains("not skull-stripped"));
    }

    /// With --follow-links: links are walked, but every folder once and every file once, so a
    /// `loop -> .` link cannot repeat the scans and a link into the tree cannot list them twice.
    #[test]
    fn followed_links_walk_each_folder_and_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let (d, out) = (dir.path().join("data"), dir.path().join("elsewhere"));
        std::fs::create_dir_all(d.join("a")).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        for f in [d.join("a/s1_T1w.nii"), out.join("s2_T1w.nii")] {
            std::fs::write(f, b"").unwrap();
        }
        std::os::unix::fs::symlink(&d, d.join("a/loop")).unwrap();
        std::os::unix::fs::symlink(&out, d.join("ext")).unwrap();
        std::os::unix::fs::symlink(d.join("a/s1_T1w.nii"), d.join("again_T1w.nii")).unwrap();
        std::os::unix::fs::symlink(d.join("gone"), d.join("broken.nii")).unwrap();
        let opts = IndexOptions {
            follow_links: true,
            ..IndexOptions::default()
        };
        let (found, left_out) = find_scans(&d, &opts).unwrap();
        let names: Vec<String> = found
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        let said = left_out.join("\n");
        // the real file is kept, the link to it reported
        assert_eq!(names, ["s1_T1w.nii", "s2_T1w.nii"], "{said}");
        for (what, why) in [("loop", "already walked"), ("broken.nii", "broken"), ("same file", "")] {
            assert!(
                left_out.iter().any(|l| l.contains(what) && l.contains(why)),
                "{what}: {said}"
            );
        }
        // without the option nothing outside is reached
        let (found, _) = find_scans(&d, &IndexOptions::default()).unwrap();
        assert_eq!(found.len(), 1);
    }

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
