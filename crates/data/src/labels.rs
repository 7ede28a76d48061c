//! Text labels (`CN`, `MCI`, `AD`) as class indices. The map is built over every manifest of a run
//! at once, so a test set that lacks a class still numbers the others as the training set does; it
//! is printed and stored with the run, and `--labels` fixes the order where the default (sorted
//! names) is not the one wanted, e.g. to make `AD` the positive class 1 of a binary task.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::manifest::{ManifestRow, UNLABELLED};

/// Class names: class k is `names[k]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelMap {
    pub names: Vec<String>,
}

impl LabelMap {
    /// Gives every text-labelled row of `parts` its class index. `order` lists the class names,
    /// class 0 first; empty means the sorted distinct names. `None` when the rows carry integer
    /// labels (or none). Mixed integer and text labels, a name missing from `order`, or an `order`
    /// for integer labels are errors naming the scan.
    pub fn apply(parts: &mut [&mut [ManifestRow]], order: &[String]) -> Result<Option<LabelMap>> {
        let rows = || parts.iter().flat_map(|p| p.iter());
        let text = rows().find(|r| r.label_name.is_some());
        let integer = rows().find(|r| r.label_name.is_none() && r.label != UNLABELLED);
        match (text, integer) {
            (Some(t), Some(i)) => bail!(
                "{} has the text label '{}' but {} the integer label {}: use one kind of label in all manifests",
                t.path.display(),
                t.label_name.as_deref().unwrap_or_default(),
                i.path.display(),
                i.label
            ),
            (None, Some(i)) if !order.is_empty() => bail!(
                "--labels names the classes of text labels, but the labels are integers (e.g. {} has {})",
                i.path.display(),
                i.label
            ),
            (None, _) => return Ok(None),
            (Some(_), None) => {}
        }
        let names: Vec<String> = if order.is_empty() {
            let mut n: Vec<String> = rows().filter_map(|r| r.label_name.clone()).collect();
            n.sort();
            n.dedup();
            n
        } else {
            let mut seen = std::collections::BTreeSet::new();
            if let Some(d) = order.iter().find(|n| !seen.insert(n.as_str())) {
                bail!("--labels lists '{d}' twice");
            }
            order.to_vec()
        };
        for part in parts.iter_mut() {
            for r in part.iter_mut() {
                if let Some(name) = &r.label_name {
                    let Some(k) = names.iter().position(|n| n == name) else {
                        bail!(
                            "{}: label '{name}' is not one of the classes {}",
                            r.path.display(),
                            names.join(",")
                        );
                    };
                    r.label = k as i64;
                }
            }
        }
        Ok(Some(LabelMap { names }))
    }

    /// `0 = AD, 1 = CN`.
    pub fn describe(&self) -> String {
        self.names
            .iter()
            .enumerate()
            .map(|(k, n)| format!("{k} = {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn rows(labels: &[&str]) -> Vec<ManifestRow> {
        labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut r = ManifestRow::new(UNLABELLED, &format!("s{i}"), "t1", PathBuf::from(format!("{l}{i}.nii")));
                match l.parse::<i64>() {
                    Ok(v) => r.label = v,
                    Err(_) if l.is_empty() => {}
                    Err(_) => r.label_name = Some(l.to_string()),
                }
                r
            })
            .collect()
    }

    #[test]
    fn one_map_over_all_parts_in_sorted_or_given_order() {
        let (mut train, mut test) = (rows(&["CN", "AD", "MCI", ""]), rows(&["MCI"]));
        let m = LabelMap::apply(&mut [&mut train, &mut test], &[]).unwrap().unwrap();
        assert_eq!(m.names, ["AD", "CN", "MCI"]);
        assert_eq!(m.describe(), "0 = AD, 1 = CN, 2 = MCI");
        let got: Vec<i64> = train.iter().chain(&test).map(|r| r.label).collect();
        // the test set's lone MCI is class 2 as in training; the unlabelled row stays unlabelled
        assert_eq!(got, [1, 0, 2, UNLABELLED, 2]);

        let order: Vec<String> = ["CN", "MCI", "AD"].map(String::from).to_vec();
        let m = LabelMap::apply(&mut [&mut train], &order).unwrap().unwrap();
        assert_eq!(m.names, order);
        assert_eq!(train.iter().map(|r| r.label).collect::<Vec<_>>(), [0, 2, 1, UNLABELLED]);
    }

    #[test]
    fn integer_labels_pass_through_and_mixtures_are_refused() {
        let mut ints = rows(&["0", "1", ""]);
        assert_eq!(LabelMap::apply(&mut [&mut ints], &[]).unwrap(), None);
        assert_eq!(ints.iter().map(|r| r.label).collect::<Vec<_>>(), [0, 1, UNLABELLED]);
        let e = LabelMap::apply(&mut [&mut ints], &["AD".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("integers") && e.contains("00.nii"), "{e}");

        let (mut a, mut b) = (rows(&["AD"]), rows(&["1"]));
        let e = LabelMap::apply(&mut [&mut a, &mut b], &[]).unwrap_err().to_string();
        assert!(
            e.contains("AD0.nii") && e.contains("10.nii") && e.contains("one kind"),
            "{e}"
        );

        let mut t = rows(&["AD", "CN"]);
        let e = LabelMap::apply(&mut [&mut t], &["AD".into()]).unwrap_err().to_string();
        assert!(e.contains("CN1.nii") && e.contains("'CN'"), "{e}");
        let e = LabelMap::apply(&mut [&mut t], &["AD".into(), "AD".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("twice"), "{e}");
    }
}
