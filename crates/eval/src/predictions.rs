//! Prediction files: CSV with a header `label,p0,p1,...` (one probability column per class, in
//! order), optionally `subject_id` (bootstrap groups) and any other columns.

use std::path::Path;

/// Rows of a prediction file.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub labels: Vec<usize>,
    pub probs: Vec<Vec<f64>>,
    /// Subject of each row; the row number when the file has no `subject_id`.
    pub groups: Vec<String>,
}

impl Predictions {
    pub fn read(path: &Path) -> Result<Predictions, String> {
        let at = |e: String| format!("{}: {e}", path.display());
        let mut r = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(path)
            .map_err(|e| at(e.to_string()))?;
        let header = r.headers().map_err(|e| at(e.to_string()))?.clone();
        let col = |name: &str| header.iter().position(|h| h == name);
        let label = col("label").ok_or_else(|| at("no 'label' column".into()))?;
        let mut prob_cols = Vec::new();
        while let Some(i) = col(&format!("p{}", prob_cols.len())) {
            prob_cols.push(i);
        }
        if prob_cols.len() < 2 {
            return Err(at(format!(
                "need probability columns p0, p1, ... (one per class); found {}",
                if prob_cols.is_empty() {
                    "none".to_string()
                } else {
                    "only p0".to_string()
                }
            )));
        }
        if let Some(extra) = header.iter().find(|h| {
            h.strip_prefix('p')
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| n >= prob_cols.len())
        }) {
            return Err(at(format!("column {extra} without p{} before it", prob_cols.len())));
        }
        let subject = col("subject_id");
        let c = prob_cols.len();
        let mut out = Predictions {
            labels: vec![],
            probs: vec![],
            groups: vec![],
        };
        for (i, rec) in r.records().enumerate() {
            let line = i + 2;
            let rec = rec.map_err(|e| at(format!("line {line}: {e}")))?;
            let l: usize = rec[label]
                .parse()
                .map_err(|_| at(format!("line {line}: label '{}' is not a class index", &rec[label])))?;
            if l >= c {
                return Err(at(format!("line {line}: label {l} but only {c} probability columns")));
            }
            let mut p = Vec::with_capacity(c);
            for (k, &j) in prob_cols.iter().enumerate() {
                let v: f64 = rec[j]
                    .parse()
                    .map_err(|_| at(format!("line {line}: p{k} '{}' is not a number", &rec[j])))?;
                if !v.is_finite() {
                    return Err(at(format!("line {line}: p{k} is not finite ({v})")));
                }
                if v < 0.0 {
                    return Err(at(format!("line {line}: p{k} is negative ({v})")));
                }
                p.push(v);
            }
            out.labels.push(l);
            out.probs.push(p);
            out.groups.push(match subject {
                Some(s) => rec[s].to_string(),
                None => format!("row{line}"),
            });
        }
        if out.labels.is_empty() {
            return Err(at("no rows".into()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Predictions, String> {
        let dir = std::env::temp_dir().join(format!("brainssl-pred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!(
            "{:x}.csv",
            text.len() * 7919 + text.bytes().map(|b| b as usize).sum::<usize>()
        ));
        std::fs::write(&p, text).unwrap();
        Predictions::read(&p)
    }

    #[test]
    fn reads_labels_probabilities_and_subjects() {
        let p = read("subject_id,label,p0,p1\na,0,0.8,0.2\nb,1,0.3,0.7\n").unwrap();
        assert_eq!(p.labels, vec![0, 1]);
        assert_eq!(p.probs[1], vec![0.3, 0.7]);
        assert_eq!(p.groups, vec!["a", "b"]);
    }

    #[test]
    fn clear_errors() {
        assert!(read("y,p0,p1\n0,0.5,0.5\n").unwrap_err().contains("no 'label' column"));
        assert!(read("label,p0\n0,1.0\n").unwrap_err().contains("only p0"));
        assert!(read("label,p0,p2\n0,1.0,0\n").unwrap_err().contains("only p0"));
        assert!(read("label,p0,p1\n0,NaN,0.5\n")
            .unwrap_err()
            .contains("line 2: p0 is not finite"));
        assert!(read("label,p0,p1\n0,inf,0.5\n").unwrap_err().contains("not finite"));
        assert!(read("label,p0,p1\n2,0.5,0.5\n")
            .unwrap_err()
            .contains("label 2 but only 2"));
        assert!(read("label,p0,p1\n").unwrap_err().contains("no rows"));
        assert!(read("label,p0,p1,p3\n0,0.5,0.5,0\n")
            .unwrap_err()
            .contains("p3 without p2"));
    }
}
