//! Embedding files written by `brainssl embed`: `subject_id,path,label,e0,e1,...`.

use std::path::Path;

use brainssl_prep::Rng;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Embeddings {
    pub subject_ids: Vec<String>,
    pub paths: Vec<String>,
    pub labels: Vec<i64>,
    pub vectors: Vec<Vec<f64>>,
}

impl Embeddings {
    /// Reads an embeddings CSV; every error names the file (and the line where there is one).
    pub fn read(path: &Path) -> Result<Self, String> {
        let named = |what: String| format!("{}: {what}", path.display());
        let mut r = csv::Reader::from_path(path).map_err(|e| named(e.to_string()))?;
        let header = r.headers().map_err(|e| named(format!("no header ({e})")))?.clone();
        let col = |name: &str| header.iter().position(|h| h == name);
        let (Some(subject), Some(file), Some(label)) = (col("subject_id"), col("path"), col("label")) else {
            return Err(named("needs the columns subject_id, path and label".into()));
        };
        let first = col("e0").ok_or_else(|| {
            named("no embedding columns e0, e1, ... (write them with `brainssl embed --out E.csv`)".into())
        })?;
        let mut e = Embeddings::default();
        for (i, rec) in r.records().enumerate() {
            let line = i + 2;
            let rec = rec.map_err(|err| named(format!("line {line}: {err}")))?;
            let l: i64 = rec[label]
                .parse()
                .map_err(|_| named(format!("line {line}: label '{}' is not an integer", &rec[label])))?;
            let v: Vec<f64> = rec
                .iter()
                .skip(first)
                .map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite()))
                .collect::<Option<_>>()
                .ok_or_else(|| named(format!("line {line}: an embedding value is not a finite number")))?;
            if e.vectors.first().is_some_and(|f| f.len() != v.len()) {
                return Err(named(format!(
                    "line {line}: {} values, the first row has {}",
                    v.len(),
                    e.vectors[0].len()
                )));
            }
            e.subject_ids.push(rec[subject].to_string());
            e.paths.push(rec[file].to_string());
            e.labels.push(l);
            e.vectors.push(v);
        }
        Ok(e)
    }

    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// At most `max` rows, drawn without replacement (seeded), kept in file order.
    pub fn subsample(self, max: usize, seed: u64) -> Self {
        if self.len() <= max {
            return self;
        }
        let mut idx: Vec<usize> = (0..self.len()).collect();
        Rng::new(seed).shuffle(&mut idx);
        idx.truncate(max);
        idx.sort();
        let pick = |v: &Vec<String>| idx.iter().map(|&i| v[i].clone()).collect();
        Embeddings {
            subject_ids: pick(&self.subject_ids),
            paths: pick(&self.paths),
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            vectors: idx.iter().map(|&i| self.vectors[i].clone()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_checks_and_subsamples() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.csv");
        let rows: String = (0..10)
            .map(|i| format!("s{i},/x/{i}.nii,{},{i}.5,-1\n", i % 2))
            .collect();
        std::fs::write(&p, format!("subject_id,path,label,e0,e1\n{rows}")).unwrap();
        let e = Embeddings::read(&p).unwrap();
        assert_eq!(e.len(), 10);
        assert_eq!(e.vectors[3], vec![3.5, -1.0]);
        assert_eq!(e.labels[3], 1);
        let s = e.clone().subsample(4, 1);
        assert_eq!(s.len(), 4);
        assert_eq!(s, e.clone().subsample(4, 1));
        assert!(s.subject_ids.windows(2).all(|w| w[0] < w[1]), "file order kept");
        std::fs::write(&p, "subject_id,path,label,e0\ns,p,1,nan\n").unwrap();
        let err = Embeddings::read(&p).unwrap_err();
        assert!(err.contains("e.csv") && err.contains("line 2"), "{err}");
        std::fs::write(&p, "subject_id,path,label\ns,p,1\n").unwrap();
        assert!(Embeddings::read(&p).unwrap_err().contains("e0, e1"));
    }
}
