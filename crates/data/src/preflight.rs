//! The check before a long run: every scan of a manifest exists, is a regular file (or a series
//! folder) and has a readable header whose data fits the file. All problems are reported at once,
//! so a user fixes a manifest in one pass instead of one failed run per bad file.

use rayon::prelude::*;

use crate::manifest::ManifestRow;

/// Rows that cannot be read: (row index, reason naming the file).
pub fn unreadable(rows: &[ManifestRow]) -> Vec<(usize, String)> {
    let mut bad: Vec<(usize, String)> = rows
        .par_iter()
        .enumerate()
        .filter_map(|(i, r)| {
            brainssl_scan::check_scan(&r.path, r.load_options())
                .err()
                .map(|e| (i, e.to_string()))
        })
        .collect();
    bad.sort_by_key(|b| b.0);
    bad
}

/// Err with every problem when more than `max_fraction` of the rows cannot be read; otherwise the
/// problems (to warn about; those scans are skipped when they fail to load).
pub fn check(rows: &[ManifestRow], max_fraction: f64) -> anyhow::Result<Vec<String>> {
    let bad = unreadable(rows);
    if bad.is_empty() {
        return Ok(Vec::new());
    }
    let allowed = (max_fraction * rows.len() as f64).floor() as usize;
    let lines: Vec<String> = bad.iter().map(|(_, why)| why.clone()).collect();
    if bad.len() > allowed {
        const SHOWN: usize = 20;
        let mut text = lines
            .iter()
            .take(SHOWN)
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n");
        if lines.len() > SHOWN {
            text.push_str(&format!("\n  … and {} more", lines.len() - SHOWN));
        }
        anyhow::bail!(
            "pre-flight: {} of {} scans cannot be read (allowed: {allowed}, run.max_unreadable_fraction = {max_fraction}):\n{text}",
            bad.len(),
            rows.len()
        );
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_at_once_and_a_tolerated_fraction_passes() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("a.nii");
        brainssl_scan::nifti_io::write_nifti(&good, &[1.0; 8], [2, 2, 2], &brainssl_scan::geometry::IDENTITY).unwrap();
        let rows: Vec<ManifestRow> = ["a.nii", "b.nii", "c.nii", "a.nii"]
            .iter()
            .map(|f| ManifestRow::new(0, f, "t1", dir.path().join(f)))
            .collect();
        let e = check(&rows, 0.0).unwrap_err().to_string();
        assert!(
            e.contains("2 of 4 scans") && e.contains("b.nii") && e.contains("c.nii"),
            "{e}"
        );
        assert!(!e.contains("a.nii:"), "{e}");
        let warned = check(&rows, 0.5).unwrap();
        assert_eq!(warned.len(), 2);
        assert!(check(&rows[..1], 0.0).unwrap().is_empty());
    }

    /// A 4-D scan needs its `frame` column: the pre-flight says so, and the loader reads the frame
    /// the row names.
    #[test]
    fn a_4d_scan_is_read_at_the_frame_its_row_names() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bold.nii.gz");
        // frame 0 is all zero but one voxel, frame 1 a 2³ cube of 7s in a 4³ volume
        let mut data = vec![0f32; 128];
        data[0] = 1.0;
        for (x, y, z) in (1..3).flat_map(|x| (1..3).flat_map(move |y| (1..3).map(move |z| (x, y, z)))) {
            data[64 + x + 4 * y + 16 * z] = 7.0;
        }
        brainssl_scan::nifti_io::write_nifti_frames(&p, &data, [4, 4, 4], 2, &brainssl_scan::geometry::IDENTITY)
            .unwrap();
        let mut row = ManifestRow::new(0, "s", "bold", p);
        let e = check(std::slice::from_ref(&row), 0.0).unwrap_err().to_string();
        assert!(e.contains("bold.nii.gz") && e.contains("'frame' column"), "{e}");
        row.frame = Some(1);
        assert!(check(std::slice::from_ref(&row), 0.0).unwrap().is_empty());
        let c = crate::cache::load_cropped(&row, 0).unwrap();
        assert_eq!(c.data, vec![7.0; 8], "frame 1's cube, cropped to its foreground");
    }
}
