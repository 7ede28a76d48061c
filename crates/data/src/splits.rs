//! Subject-level splits: stratified k-fold, train/val/test fractions, few-shot samples, and the
//! import of the reference's released `subject_id,scan_uid` files (docs/preprocessing.md#splits).
//! Every split is checked to put no subject in two parts; a split that would is refused.

use crate::manifest::{Manifest, ManifestRow};
use anyhow::{bail, Context, Result};
use brainssl_prep::Rng;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// Subjects with their stratification label: the label of each subject's first row
/// (docs/preprocessing.md#splits).
pub fn subject_labels(rows: &[ManifestRow]) -> Vec<(String, i64)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in rows {
        if seen.insert(r.subject_id.clone()) {
            out.push((r.subject_id.clone(), r.label));
        }
    }
    out
}

/// Refuse any two parts that share a subject, naming a few of the shared ones.
pub fn check_disjoint(parts: &[(&str, &[ManifestRow])]) -> Result<()> {
    for (name, rows) in parts {
        let empty: Vec<&ManifestRow> = rows.iter().filter(|r| r.subject_id.trim().is_empty()).collect();
        if let Some(first) = empty.first() {
            bail!(
                "'{name}': {} row(s) have no subject_id (e.g. {}): subject-level splits and the leak check need one per scan",
                empty.len(),
                first.path.display()
            );
        }
    }
    // the same file under two names or two subjects is still one scan (a frame of it, for 4-D files)
    let key = |r: &ManifestRow| {
        (
            std::fs::canonicalize(&r.path).unwrap_or_else(|_| r.path.clone()),
            r.frame_index(),
        )
    };
    let mut seen: std::collections::HashMap<_, (&str, &str)> = std::collections::HashMap::new();
    for (name, rows) in parts {
        for r in rows.iter() {
            if let Some((other, subject)) = seen.insert(key(r), (name, &r.subject_id)) {
                if other != *name {
                    bail!(
                        "scan leak: {} is in '{other}' (subject {subject}) and in '{name}' (subject {})",
                        r.path.display(),
                        r.subject_id
                    );
                }
            }
        }
    }
    same_content_across(parts)?;
    for (i, (na, a)) in parts.iter().enumerate() {
        let sa: BTreeSet<&str> = a.iter().map(|r| r.subject_id.as_str()).collect();
        for (nb, b) in &parts[i + 1..] {
            let shared: Vec<&str> = b
                .iter()
                .map(|r| r.subject_id.as_str())
                .filter(|s| sa.contains(s))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if !shared.is_empty() {
                bail!(
                    "subject leak: {} subject(s) are in both '{na}' and '{nb}' (e.g. {})",
                    shared.len(),
                    shared.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
                );
            }
        }
    }
    Ok(())
}

/// BLAKE3 of a scan's bytes, remembered per (path, size, modification time) for this process:
/// cross-validation checks every fold, and each file is read once.
fn content_hash(p: &std::path::Path) -> Option<blake3::Hash> {
    use std::sync::{Mutex, OnceLock};
    type Memo =
        Mutex<std::collections::HashMap<(std::path::PathBuf, u64, Option<std::time::SystemTime>), blake3::Hash>>;
    static MEMO: OnceLock<Memo> = OnceLock::new();
    let meta = std::fs::metadata(p).ok()?;
    let id = (p.to_path_buf(), meta.len(), meta.modified().ok());
    let memo = MEMO.get_or_init(Default::default);
    if let Some(h) = memo.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
        return Some(*h);
    }
    let mut h = blake3::Hasher::new();
    crate::cache::hash_path(&mut h, p).ok()?;
    let h = h.finalize();
    memo.lock().unwrap_or_else(|e| e.into_inner()).insert(id, h);
    Some(h)
}

/// Refuse two files with identical bytes in different parts (a copy of a scan under another name
/// and subject). Only files whose sizes collide across parts are read, so this costs a stat per
/// scan unless many scans have the same size (uncompressed NIfTI of one shape: then each of those
/// is hashed once). Unreadable files are left to the pre-flight check.
fn same_content_across(parts: &[(&str, &[ManifestRow])]) -> Result<()> {
    use rayon::prelude::*;
    let size = |p: &std::path::Path| -> Option<u64> {
        let m = std::fs::metadata(p).ok()?;
        if m.is_dir() {
            let files = std::fs::read_dir(p).ok()?;
            Some(
                files
                    .flatten()
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum(),
            )
        } else {
            Some(m.len())
        }
    };
    // (part index, row) by (size, frame)
    type Group<'a> = Vec<(usize, &'a ManifestRow)>;
    let mut by_size: BTreeMap<(u64, usize), Group> = BTreeMap::new();
    for (k, (_, rows)) in parts.iter().enumerate() {
        for r in rows.iter() {
            if let Some(n) = size(&r.path) {
                by_size.entry((n, r.frame_index())).or_default().push((k, r));
            }
        }
    }
    let suspects: Vec<(usize, &ManifestRow)> = by_size
        .into_values()
        .filter(|g| g.iter().any(|(k, _)| *k != g[0].0))
        .flatten()
        .collect();
    let hashes: Vec<Option<blake3::Hash>> = suspects.par_iter().map(|(_, r)| content_hash(&r.path)).collect();
    let mut seen: std::collections::HashMap<(blake3::Hash, usize), (usize, &ManifestRow)> =
        std::collections::HashMap::new();
    for ((k, r), h) in suspects.iter().zip(hashes) {
        let Some(h) = h else { continue };
        if let Some((k0, r0)) = seen.insert((h, r.frame_index()), (*k, r)) {
            if k0 != *k {
                bail!(
                    "scan leak: {} ('{}', subject {}) and {} ('{}', subject {}) have identical content",
                    r0.path.display(),
                    parts[k0].0,
                    r0.subject_id,
                    r.path.display(),
                    parts[*k].0,
                    r.subject_id
                );
            }
        }
    }
    Ok(())
}

/// Subjects of each class, each list shuffled with `rng`, classes in ascending label order.
fn shuffled_by_class(rows: &[ManifestRow], rng: &mut Rng) -> BTreeMap<i64, Vec<String>> {
    let mut by: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (s, l) in subject_labels(rows) {
        by.entry(l).or_default().push(s);
    }
    for v in by.values_mut() {
        rng.shuffle(v);
    }
    by
}

fn rows_of(rows: &[ManifestRow], subjects: &BTreeSet<String>) -> Vec<ManifestRow> {
    rows.iter()
        .filter(|r| subjects.contains(&r.subject_id))
        .cloned()
        .collect()
}

fn require_subjects(rows: &[ManifestRow]) -> Result<()> {
    if let Some(i) = rows.iter().position(|r| r.subject_id.is_empty()) {
        bail!(
            "row {} ({}) has no subject_id; subject-level splits need one on every row",
            i + 1,
            rows[i].path.display()
        );
    }
    Ok(())
}

/// Stratified k-fold over subjects: fold f is the test part of split f. Subjects of each class are
/// dealt round-robin after a seeded shuffle, continuing across classes so fold sizes stay even.
pub fn stratified_kfold(rows: &[ManifestRow], k: usize, seed: u64) -> Result<Vec<Vec<ManifestRow>>> {
    require_subjects(rows)?;
    if k < 2 {
        bail!("k-fold needs k >= 2 (got {k})");
    }
    let mut rng = Rng::new(seed);
    let by = shuffled_by_class(rows, &mut rng);
    let n_subj: usize = by.values().map(Vec::len).sum();
    if n_subj < k {
        bail!("{n_subj} subjects cannot fill {k} folds");
    }
    let mut folds: Vec<BTreeSet<String>> = vec![BTreeSet::new(); k];
    let mut next = 0;
    for subjects in by.values() {
        for s in subjects {
            folds[next % k].insert(s.clone());
            next += 1;
        }
    }
    let parts: Vec<Vec<ManifestRow>> = folds.iter().map(|f| rows_of(rows, f)).collect();
    let named: Vec<(String, &[ManifestRow])> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("fold{i}"), p.as_slice()))
        .collect();
    check_disjoint(&named.iter().map(|(n, p)| (n.as_str(), *p)).collect::<Vec<_>>())?;
    Ok(parts)
}

/// The k splits of cross-validation: split f tests on fold f of [`stratified_kfold`] and trains on
/// the other folds, less a stratified validation share `val_fraction` (seed `seed + f`) that
/// selects the reported epoch. Each split is [train, val, test], subject-disjoint.
pub fn cv_splits(rows: &[ManifestRow], k: usize, val_fraction: f64, seed: u64) -> Result<Vec<[Vec<ManifestRow>; 3]>> {
    if !(0.0..1.0).contains(&val_fraction) {
        bail!("the validation fraction must be in [0, 1) (got {val_fraction})");
    }
    let folds = stratified_kfold(rows, k, seed)?;
    let mut out = Vec::with_capacity(k);
    for (f, test) in folds.iter().enumerate() {
        let rest: Vec<ManifestRow> = folds
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != f)
            .flat_map(|(_, part)| part.iter().cloned())
            .collect();
        let [train, val, _] = train_val_test(&rest, [1.0 - val_fraction, val_fraction, 0.0], seed + f as u64)?;
        check_disjoint(&[("train", &train), ("val", &val), ("test", test)])?;
        out.push([train, val, test.clone()]);
    }
    Ok(out)
}

/// Stratified train/val/test by subject with the given fractions (summing to 1).
pub fn train_val_test(rows: &[ManifestRow], fractions: [f64; 3], seed: u64) -> Result<[Vec<ManifestRow>; 3]> {
    require_subjects(rows)?;
    let sum: f64 = fractions.iter().sum();
    if fractions.iter().any(|f| *f < 0.0) || (sum - 1.0).abs() > 1e-6 {
        bail!("split fractions {fractions:?} must be non-negative and sum to 1");
    }
    let mut rng = Rng::new(seed);
    let by = shuffled_by_class(rows, &mut rng);
    let mut parts: [BTreeSet<String>; 3] = Default::default();
    for subjects in by.values() {
        let n = subjects.len();
        let n_train = (fractions[0] * n as f64).round() as usize;
        let n_val = ((fractions[1] * n as f64).round() as usize).min(n - n_train.min(n));
        for (i, s) in subjects.iter().enumerate() {
            let p = if i < n_train {
                0
            } else if i < n_train + n_val {
                1
            } else {
                2
            };
            parts[p].insert(s.clone());
        }
    }
    let out = parts.map(|p| rows_of(rows, &p));
    check_disjoint(&[("train", &out[0]), ("val", &out[1]), ("test", &out[2])])?;
    Ok(out)
}

/// k subjects per class from a pool (docs/evaluation.md#few-shot), seeded; all rows of a chosen
/// subject come along.
pub fn few_shot(rows: &[ManifestRow], k: usize, seed: u64) -> Result<Vec<ManifestRow>> {
    require_subjects(rows)?;
    let mut rng = Rng::new(seed);
    let by = shuffled_by_class(rows, &mut rng);
    let mut chosen = BTreeSet::new();
    for (label, subjects) in &by {
        if subjects.len() < k {
            bail!(
                "class {label} has {} subjects, fewer than the {k} asked for",
                subjects.len()
            );
        }
        chosen.extend(subjects[..k].iter().cloned());
    }
    Ok(rows_of(rows, &chosen))
}

/// The few-shot training sets of one k: `draws` independent draws of k subjects per class from the
/// pool, draw i seeded `seed + k + i` (the reference's `random_state = seed + k`, one per draw).
pub fn few_shot_draws(pool: &[ManifestRow], k: usize, draws: usize, seed: u64) -> Result<Vec<Vec<ManifestRow>>> {
    (0..draws)
        .map(|i| few_shot(pool, k, seed + k as u64 + i as u64))
        .collect()
}

/// Default scan_uid rules (docs/preprocessing.md#splits), tried in order on the file name.
pub const DEFAULT_UID_RULES: &[&str] = &[
    r"BraTS-[A-Za-z]+-\d{5}-\d{3}",
    r"OAS3\d{4}_d\d{4}(?:_run-\d{2})?_[A-Za-z0-9]+",
    r"I\d+",
];

/// scan_uid of a path: first match of the rules on the file name, else the file stem.
pub fn scan_uid(path: &Path, rules: &[Regex]) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    for r in rules {
        if let Some(m) = r.find(&name) {
            return m.as_str().to_string();
        }
    }
    let stem = name.trim_end_matches(".gz").trim_end_matches(".nii");
    stem.to_string()
}

/// How many split-file rows found a scan, and which did not.
#[derive(Debug)]
pub struct Coverage {
    pub split_rows: usize,
    pub matched_rows: usize,
    pub manifest_rows_selected: usize,
    pub missing_uids: Vec<String>,
    pub subject_mismatches: usize,
}

impl std::fmt::Display for Coverage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = 100.0 * self.matched_rows as f64 / self.split_rows.max(1) as f64;
        write!(
            f,
            "{} of {} split rows found a scan ({pct:.1} %), {} manifest rows selected, {} missing",
            self.matched_rows,
            self.split_rows,
            self.manifest_rows_selected,
            self.missing_uids.len()
        )?;
        if self.subject_mismatches > 0 {
            write!(
                f,
                "; {} rows took the split file's subject_id over the manifest's",
                self.subject_mismatches
            )?;
        }
        Ok(())
    }
}

/// Inner join of a released split file (`subject_id,scan_uid`) with a manifest on scan_uid.
/// A session uid (BraTS) selects every scan of that session. Rows take the split's subject_id.
pub fn import_split(split_csv: &Path, manifest: &Manifest, rules: &[Regex]) -> Result<(Vec<ManifestRow>, Coverage)> {
    let mut rdr = csv::Reader::from_path(split_csv)
        .with_context(|| format!("{}: cannot open split file", split_csv.display()))?;
    let headers: Vec<String> = rdr.headers()?.iter().map(|s| s.trim().to_string()).collect();
    let (si, ui) = match (
        headers.iter().position(|h| h == "subject_id"),
        headers.iter().position(|h| h == "scan_uid"),
    ) {
        (Some(a), Some(b)) => (a, b),
        _ => bail!("{}: split file needs columns subject_id,scan_uid", split_csv.display()),
    };
    let mut by_uid: HashMap<String, Vec<&ManifestRow>> = HashMap::new();
    for r in &manifest.rows {
        by_uid.entry(scan_uid(&r.path, rules)).or_default().push(r);
    }
    let mut out = Vec::new();
    let mut cov = Coverage {
        split_rows: 0,
        matched_rows: 0,
        manifest_rows_selected: 0,
        missing_uids: vec![],
        subject_mismatches: 0,
    };
    for rec in rdr.records() {
        let rec = rec.with_context(|| split_csv.display().to_string())?;
        let (subj, uid) = (rec.get(si).unwrap_or("").trim(), rec.get(ui).unwrap_or("").trim());
        cov.split_rows += 1;
        match by_uid.get(uid) {
            Some(rows) => {
                cov.matched_rows += 1;
                for r in rows {
                    let mut r = (*r).clone();
                    if !r.subject_id.is_empty() && r.subject_id != subj {
                        cov.subject_mismatches += 1;
                    }
                    r.subject_id = subj.to_string();
                    out.push(r);
                }
            }
            None => cov.missing_uids.push(uid.to_string()),
        }
    }
    cov.manifest_rows_selected = out.len();
    Ok((out, cov))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn rows(n_subj: usize, scans: usize) -> Vec<ManifestRow> {
        let mut v = Vec::new();
        for s in 0..n_subj {
            for k in 0..scans {
                v.push(ManifestRow::new(
                    (s % 3 == 0) as i64,
                    &format!("S{s:03}"),
                    "T1",
                    PathBuf::from(format!("I{}{k}.nii", 100 + s)),
                ));
            }
        }
        v
    }

    #[test]
    fn cv_splits_test_every_subject_once_and_hold_out_a_validation_share() {
        let r = rows(40, 2);
        let splits = cv_splits(&r, 4, 0.2, 7).unwrap();
        assert_eq!(splits.len(), 4);
        let mut tested: Vec<String> = splits
            .iter()
            .flat_map(|[_, _, t]| t.iter().map(|x| x.subject_id.clone()))
            .collect();
        tested.sort();
        tested.dedup();
        assert_eq!(
            tested.len(),
            subject_labels(&r).len(),
            "every subject is tested exactly once"
        );
        for [train, val, test] in &splits {
            check_disjoint(&[("train", train), ("val", val), ("test", test)]).unwrap();
            assert_eq!(train.len() + val.len() + test.len(), r.len());
            let share = val.len() as f64 / (train.len() + val.len()) as f64;
            assert!((share - 0.2).abs() < 0.1, "validation share {share}");
        }
        assert_eq!(splits, cv_splits(&r, 4, 0.2, 7).unwrap());
        assert!(cv_splits(&r, 4, 1.0, 7).is_err());
    }

    #[test]
    fn few_shot_draws_are_k_per_class_and_differ_between_draws() {
        let r = rows(40, 2);
        let d = few_shot_draws(&r, 3, 2, 42).unwrap();
        assert_eq!(d.len(), 2);
        for draw in &d {
            let subjects = subject_labels(draw);
            assert_eq!(subjects.len(), 6);
            assert_eq!(subjects.iter().filter(|(_, l)| *l == 1).count(), 3);
        }
        assert_ne!(d[0], d[1]);
        assert_eq!(d[0], few_shot(&r, 3, 45).unwrap());
        assert!(few_shot_draws(&r, 100, 2, 42).is_err());
    }

    #[test]
    fn kfold_is_stratified_disjoint_complete_and_seeded() {
        let r = rows(50, 3);
        let folds = stratified_kfold(&r, 5, 42).unwrap();
        assert_eq!(folds.iter().map(Vec::len).sum::<usize>(), r.len());
        for f in &folds {
            let subj = subject_labels(f);
            assert_eq!(subj.len(), 10);
            let pos = subj.iter().filter(|(_, l)| *l == 1).count();
            assert!((3..=4).contains(&pos), "{pos}");
        }
        assert_eq!(folds, stratified_kfold(&r, 5, 42).unwrap());
        assert_ne!(folds, stratified_kfold(&r, 5, 43).unwrap());
    }

    #[test]
    fn fractions_and_few_shot() {
        let r = rows(40, 2);
        let [a, b, c] = train_val_test(&r, [0.7, 0.15, 0.15], 1).unwrap();
        assert_eq!(a.len() + b.len() + c.len(), r.len());
        assert!(check_disjoint(&[("a", &a), ("b", &b), ("c", &c)]).is_ok());
        let fs = few_shot(&r, 4, 9).unwrap();
        let subj = subject_labels(&fs);
        assert_eq!(subj.len(), 8);
        assert_eq!(subj.iter().filter(|(_, l)| *l == 1).count(), 4);
        assert!(few_shot(&r, 20, 9).is_err());
    }

    #[test]
    fn leaks_are_refused() {
        let r = rows(4, 2);
        let e = check_disjoint(&[("train", &r[..3]), ("test", &r[3..])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("S001"), "{e}");
        // an empty subject id anywhere, and one file under two subjects (and two spellings) across splits
        let mut blank = r.clone();
        blank[3].subject_id = " ".into();
        let e = check_disjoint(&[("train", &blank[..3]), ("test", &blank[3..])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'test'") && e.contains("no subject_id"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        let f = dir.path().join("a/scan.nii");
        std::fs::write(&f, b"x").unwrap();
        let mut one = ManifestRow::new(0, "S1", "t1", f.clone());
        let mut two = ManifestRow::new(1, "S2", "t1", dir.path().join("a/../a/./scan.nii"));
        let e = check_disjoint(&[
            ("train", std::slice::from_ref(&one)),
            ("test", std::slice::from_ref(&two)),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("scan leak") && e.contains("subject S1") && e.contains("subject S2"),
            "{e}"
        );
        // two frames of one 4-D file are two scans; no frame is frame 0
        two.frame = Some(1);
        assert!(check_disjoint(&[("train", &[one.clone()]), ("test", &[two.clone()])]).is_ok());
        two.frame = Some(0);
        assert!(check_disjoint(&[("train", &[one.clone()]), ("test", &[two.clone()])]).is_err());
        two.frame = None;
        // a copy under another name: same bytes; a file of the same size but other bytes is no leak
        let copy = dir.path().join("copy.nii");
        std::fs::write(&copy, b"x").unwrap();
        std::fs::write(dir.path().join("other.nii"), b"y").unwrap();
        two.path = copy;
        let e = check_disjoint(&[("train", &[one.clone()]), ("test", &[two.clone()])])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("identical content") && e.contains("copy.nii") && e.contains("'test'"),
            "{e}"
        );
        assert!(check_disjoint(&[("train", &[one.clone(), two.clone()])]).is_ok());
        (one.path, two.path) = (dir.path().join("a/scan.nii"), dir.path().join("other.nii"));
        assert!(check_disjoint(&[("train", &[one]), ("test", &[two])]).is_ok());
    }

    #[test]
    fn import_joins_on_uid_and_reports_coverage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("split.csv");
        std::fs::write(
            &p,
            "subject_id,scan_uid\n002_S_0001,I1000\n002_S_0002,I1020\n002_S_0003,I999999\n",
        )
        .unwrap();
        let m = Manifest {
            rows: rows(3, 1),
            extra_columns: vec![],
        };
        let rules: Vec<Regex> = DEFAULT_UID_RULES.iter().map(|r| Regex::new(r).unwrap()).collect();
        assert_eq!(scan_uid(Path::new("/x/ADNI_I1000_T1.nii.gz"), &rules), "I1000");
        assert_eq!(
            scan_uid(Path::new("BraTS-GLI-00001-000-t1c.nii.gz"), &rules),
            "BraTS-GLI-00001-000"
        );
        let (sel, cov) = import_split(&p, &m, &rules).unwrap();
        assert_eq!(sel.len(), 2);
        assert_eq!(sel[0].subject_id, "002_S_0001");
        assert_eq!(cov.missing_uids, vec!["I999999"]);
        assert_eq!(cov.matched_rows, 2);
    }
}
