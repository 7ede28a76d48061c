//! The CSV manifest (docs/preprocessing.md#manifest): `label, subject_id, contrast, nii_file_path,
//! xmin..zmax`, an optional `frame` (the volume of a 4-D file to use), other columns kept as they
//! are. Box columns hold inclusive foreground extremes in RAS+ axis order (x, y, z) after
//! reorientation (docs/preprocessing.md#foreground-box-and-margin); -1 or empty means "compute from
//! the scan".
//!
//! Labels are integers 0..C-1, text (`CN`, `AD`: mapped to integers by [`crate::labels::LabelMap`]
//! once every manifest of a run is read), or empty / absent for unlabelled scans, which
//! pretraining accepts and classification refuses.

use anyhow::{anyhow, bail, Context, Result};
use brainssl_prep::BoxIncl;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const BOX_COLUMNS: [&str; 6] = ["xmin", "xmax", "ymin", "ymax", "zmin", "zmax"];

#[derive(Debug, Clone, PartialEq)]
pub struct ManifestRow {
    /// Class index; [`UNLABELLED`] until a text label is mapped, or when the row has none.
    pub label: i64,
    /// The label as written when it is text (kept so manifests are written back as they were read).
    pub label_name: Option<String>,
    pub subject_id: String,
    pub contrast: String,
    pub path: PathBuf,
    pub bbox: Option<BoxIncl>,
    /// Volume of a 4-D file to read (the `frame` column).
    pub frame: Option<usize>,
    /// Columns this project does not interpret, in file order.
    pub extra: BTreeMap<String, String>,
}

impl ManifestRow {
    pub fn new(label: i64, subject_id: &str, contrast: &str, path: PathBuf) -> Self {
        ManifestRow {
            label,
            label_name: None,
            subject_id: subject_id.into(),
            contrast: contrast.into(),
            path,
            bbox: None,
            frame: None,
            extra: BTreeMap::new(),
        }
    }

    /// How the scan of this row is read.
    pub fn load_options(&self) -> brainssl_scan::LoadOptions {
        brainssl_scan::LoadOptions { frame: self.frame }
    }

    /// The volume this row is: its frame, 0 when it names none (a 3-D scan is frame 0 of itself).
    pub fn frame_index(&self) -> usize {
        self.frame.unwrap_or(0)
    }
}

/// The label of a row that has none (or whose text label is not mapped yet).
pub const UNLABELLED: i64 = -1;

/// A label cell: an integer, text, or nothing.
fn parse_label(s: &str) -> Result<(i64, Option<String>)> {
    if s.is_empty() {
        return Ok((UNLABELLED, None));
    }
    match s.parse::<f64>() {
        Ok(v) if v.fract() == 0.0 && v.abs() < 1e15 => Ok((v as i64, None)),
        Ok(v) if v.is_finite() => bail!("label '{s}' is a number but not an integer ({v})"),
        Ok(_) => bail!("label '{s}' is not a usable class"),
        Err(_) => Ok((UNLABELLED, Some(s.to_string()))),
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    pub rows: Vec<ManifestRow>,
    pub extra_columns: Vec<String>,
}

fn parse_box(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<BoxIncl>> {
    let mut v = [0i64; 6];
    for (k, c) in BOX_COLUMNS.iter().enumerate() {
        let s = get(c).unwrap_or_default();
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("nan") {
            return Ok(None);
        }
        let x: f64 = s.parse().map_err(|_| anyhow!("column {c}: '{s}' is not a number"))?;
        if x < 0.0 {
            return Ok(None);
        }
        v[k] = x as i64;
    }
    let b = [
        (v[0] as usize, v[1] as usize),
        (v[2] as usize, v[3] as usize),
        (v[4] as usize, v[5] as usize),
    ];
    if b.iter().any(|(lo, hi)| lo > hi) {
        bail!("bounding box {v:?} has a minimum above its maximum");
    }
    Ok(Some(b))
}

/// Extra columns that hold paths (resolved and written like `nii_file_path`).
pub const PATH_COLUMNS: [&str; 1] = ["mask_path"];

/// `a/./b/../c` → `a/c`, without touching the file system (paths need not exist).
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

impl Manifest {
    /// Read a manifest; relative scan paths are taken relative to the manifest's folder.
    pub fn read(path: &Path) -> Result<Manifest> {
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(false)
            .from_path(path)
            .with_context(|| format!("{}: cannot open manifest", path.display()))?;
        let headers: Vec<String> = rdr.headers()?.iter().map(|h| h.trim().to_string()).collect();
        let col = |name: &str| headers.iter().position(|h| h == name);
        let label_col = col("label");
        let path_col = col("nii_file_path")
            .ok_or_else(|| anyhow!("{}: manifest has no 'nii_file_path' column", path.display()))?;
        let known = ["label", "subject_id", "contrast", "nii_file_path", "frame"];
        let extra_columns: Vec<String> = headers
            .iter()
            .filter(|h| !known.contains(&h.as_str()) && !BOX_COLUMNS.contains(&h.as_str()))
            .cloned()
            .collect();
        let base = path.parent().unwrap_or(Path::new("."));
        let mut rows = Vec::new();
        for (i, rec) in rdr.records().enumerate() {
            let line = i + 2;
            let rec = rec.with_context(|| format!("{}: line {line}", path.display()))?;
            let get = |name: &str| col(name).and_then(|c| rec.get(c)).map(|s| s.to_string());
            let ctx = || format!("{}: line {line}", path.display());
            let label_s = label_col.and_then(|c| rec.get(c)).unwrap_or("").trim();
            let (label, label_name) = parse_label(label_s).with_context(ctx)?;
            let frame_s = get("frame").unwrap_or_default();
            let frame = match frame_s.trim() {
                "" => None,
                f => Some(
                    f.parse::<usize>()
                        .map_err(|_| anyhow!("{}: frame '{f}' is not a frame index (0, 1, ...)", ctx()))?,
                ),
            };
            let p = PathBuf::from(rec.get(path_col).unwrap_or("").trim());
            if p.as_os_str().is_empty() {
                bail!("{}: empty nii_file_path", ctx());
            }
            let p = if p.is_absolute() { p } else { base.join(p) };
            let bbox = parse_box(&get).with_context(ctx)?;
            let extra = extra_columns
                .iter()
                .map(|c| {
                    let v = get(c).unwrap_or_default();
                    // path columns resolve against the manifest's folder, as nii_file_path does
                    let v = if PATH_COLUMNS.contains(&c.as_str())
                        && !v.trim().is_empty()
                        && Path::new(v.trim()).is_relative()
                    {
                        base.join(v.trim()).display().to_string()
                    } else {
                        v
                    };
                    (c.clone(), v)
                })
                .collect();
            rows.push(ManifestRow {
                label,
                label_name,
                subject_id: get("subject_id").unwrap_or_default().trim().to_string(),
                contrast: get("contrast").unwrap_or_default().trim().to_string(),
                path: p,
                bbox,
                frame,
                extra,
            });
        }
        Ok(Manifest { rows, extra_columns })
    }

    /// Concatenate manifests in order (the reference's loader reads a list of CSVs).
    pub fn read_many(paths: &[PathBuf]) -> Result<Manifest> {
        let mut out = Manifest::default();
        for p in paths {
            let m = Manifest::read(p)?;
            for c in m.extra_columns {
                if !out.extra_columns.contains(&c) {
                    out.extra_columns.push(c);
                }
            }
            out.rows.extend(m.rows);
        }
        Ok(out)
    }

    /// Writes the manifest at `path`. Scan and mask paths (which in memory are relative to the
    /// working folder, or absolute) are written relative to the manifest's own folder when they lie
    /// below it and absolute otherwise, so that [`Manifest::read`] finds them from anywhere.
    pub fn write(&self, path: &Path) -> Result<()> {
        let base = std::path::absolute(
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        )
        .with_context(|| format!("{}: cannot resolve its folder", path.display()))?;
        let portable = |p: &Path| -> String {
            let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
            let abs = normalise(&abs);
            match abs.strip_prefix(normalise(&base)) {
                Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
                _ => abs.display().to_string(),
            }
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["label", "subject_id", "contrast", "nii_file_path"];
        header.extend(BOX_COLUMNS);
        let frames = self.rows.iter().any(|r| r.frame.is_some());
        if frames {
            header.push("frame");
        }
        header.extend(self.extra_columns.iter().map(|s| s.as_str()));
        w.write_record(&header)?;
        for r in &self.rows {
            let label = match (&r.label_name, r.label) {
                (Some(name), _) => name.clone(),
                (None, UNLABELLED) => String::new(),
                (None, l) => l.to_string(),
            };
            let mut rec = vec![label, r.subject_id.clone(), r.contrast.clone(), portable(&r.path)];
            match r.bbox {
                Some(b) => rec.extend(b.iter().flat_map(|(lo, hi)| [lo.to_string(), hi.to_string()])),
                None => rec.extend(std::iter::repeat_n("-1".to_string(), 6)),
            }
            if frames {
                rec.push(r.frame.map(|f| f.to_string()).unwrap_or_default());
            }
            rec.extend(self.extra_columns.iter().map(|c| {
                let v = r.extra.get(c).cloned().unwrap_or_default();
                if PATH_COLUMNS.contains(&c.as_str()) && !v.is_empty() {
                    portable(Path::new(&v))
                } else {
                    v
                }
            }));
            w.write_record(&rec)?;
        }
        let bytes = w.into_inner().map_err(|e| anyhow!("{e}"))?;
        brainssl_scan::atomic_write(path, &bytes)?;
        Ok(())
    }

    pub fn subjects(&self) -> Vec<String> {
        let mut s: Vec<String> = self.rows.iter().map(|r| r.subject_id.clone()).collect();
        s.sort();
        s.dedup();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_reference_schema_and_keeps_extra_columns() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        std::fs::write(
            &p,
            "label,subject_id,contrast,date_acquired,subject_sex,nii_file_path,xmin,xmax,ymin,ymax,zmin,zmax\n\
             1,033_S_0513,T1,2007-05-31,M,scans/a.nii.gz,0,255,0,255,0,165\n\
             0,033_S_0514,T2,2008-01-01,F,/abs/b.nii,NaN,NaN,NaN,NaN,NaN,NaN\n",
        )
        .unwrap();
        let m = Manifest::read(&p).unwrap();
        assert_eq!(m.rows.len(), 2);
        assert_eq!(m.rows[0].bbox, Some([(0, 255), (0, 255), (0, 165)]));
        assert_eq!(m.rows[0].path, dir.path().join("scans/a.nii.gz"));
        assert_eq!(m.rows[1].bbox, None);
        assert_eq!(m.extra_columns, vec!["date_acquired", "subject_sex"]);
        let out = dir.path().join("o.csv");
        m.write(&out).unwrap();
        let back = Manifest::read(&out).unwrap();
        assert_eq!(back.rows[0].extra["subject_sex"], "M");
        assert_eq!(back.rows[1].bbox, None);
        assert_eq!(back.rows[0].bbox, m.rows[0].bbox);
    }

    #[test]
    fn bad_rows_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.csv");
        for (row, what) in [
            ("1.5,b.nii,", "not an integer"),
            ("inf,b.nii,", "not a usable class"),
            ("1,b.nii,x", "frame 'x'"),
        ] {
            std::fs::write(&p, format!("label,nii_file_path,frame\n1,a.nii,\n{row}\n")).unwrap();
            let e = format!("{:#}", Manifest::read(&p).unwrap_err());
            assert!(e.contains("bad.csv") && e.contains("line 3") && e.contains(what), "{e}");
        }
    }

    /// Text labels and frames survive a round trip; empty labels and a missing label column mean
    /// unlabelled scans, which pretraining needs.
    #[test]
    fn text_labels_unlabelled_rows_and_frames() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        std::fs::write(
            &p,
            "label,subject_id,nii_file_path,frame\nAD,s1,a.nii,2\n,s2,b.nii,\n1,s3,c.nii,\n",
        )
        .unwrap();
        let m = Manifest::read(&p).unwrap();
        let got: Vec<_> = m
            .rows
            .iter()
            .map(|r| (r.label, r.label_name.as_deref(), r.frame))
            .collect();
        assert_eq!(
            got,
            [
                (UNLABELLED, Some("AD"), Some(2)),
                (UNLABELLED, None, None),
                (1, None, None)
            ]
        );
        assert_eq!(m.rows[0].load_options().frame, Some(2));
        let out = dir.path().join("o.csv");
        m.write(&out).unwrap();
        let back = Manifest::read(&out).unwrap();
        assert_eq!(back.rows, m.rows);
        std::fs::write(&p, "subject_id,nii_file_path\ns,a.nii\n").unwrap();
        assert_eq!(Manifest::read(&p).unwrap().rows[0].label, UNLABELLED);
    }
}

#[cfg(test)]
mod portable_paths {
    use super::*;

    /// Written anywhere, read from anywhere: paths below the manifest's folder are written relative
    /// to it, others absolute; mask paths too.
    #[test]
    fn written_paths_resolve_against_the_manifest_folder() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("bids");
        let inside = data.join("sub-01/anat/t1.nii.gz");
        let outside = dir.path().join("elsewhere/t1.nii.gz");
        let mut a = ManifestRow::new(0, "01", "t1", inside.clone());
        a.extra.insert(
            "mask_path".into(),
            data.join("sub-01/anat/./mask.nii.gz").display().to_string(),
        );
        let b = ManifestRow::new(1, "02", "t1", outside.clone());
        let m = Manifest {
            rows: vec![a, b],
            extra_columns: vec!["mask_path".into()],
        };
        let at = data.join("manifest.csv");
        m.write(&at).unwrap();
        let text = std::fs::read_to_string(&at).unwrap();
        assert!(
            text.contains(",sub-01/anat/t1.nii.gz,") && text.contains(",sub-01/anat/mask.nii.gz"),
            "{text}"
        );
        assert!(text.contains(&outside.display().to_string()), "{text}");
        let back = Manifest::read(&at).unwrap();
        assert_eq!(back.rows[0].path, inside);
        assert_eq!(back.rows[1].path, outside);
        assert_eq!(
            PathBuf::from(&back.rows[0].extra["mask_path"]),
            data.join("sub-01/anat/mask.nii.gz")
        );
        // a split written one folder down still finds the same files
        let split = dir.path().join("splits/train.csv");
        back.write(&split).unwrap();
        let again = Manifest::read(&split).unwrap();
        assert_eq!(normalise(&again.rows[0].path), inside);
        assert!(std::fs::read_to_string(&split)
            .unwrap()
            .contains(&inside.display().to_string()));
    }
}
