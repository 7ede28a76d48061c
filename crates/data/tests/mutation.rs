//! A seeded mutation battery for the manifest parser: valid manifests with inserted separators,
//! quotes, newlines, extreme numbers and deletions. Every outcome is a manifest or an error naming
//! the file; never a panic.

use brainssl_testkit::{battery_size, keep, mutate_text, Rng};

#[test]
fn no_mutated_manifest_panics_the_parser() {
    let dir = tempfile::tempdir().unwrap();
    let base = "label,subject_id,contrast,nii_file_path,xmin,xmax,ymin,ymax,zmin,zmax,mask_path\n\
                0,S1,t1,a.nii.gz,1,20,2,30,0,9,a_mask.nii.gz\n\
                1,S2,t2,sub/b.nii,-1,-1,-1,-1,-1,-1,\n\
                0,S3,flair,/abs/c.nii,3,4,5,6,7,8,x.nii\n";
    let text_labels = base.replace("\n0,", "\nCN,").replace("\n1,", "\nAD,");
    let (cases, seed) = battery_size(3000);
    let mut rng = Rng::new(0x6d61_6e69_6665_7374 ^ seed);
    let mut errors = 0;
    for case in 0..cases {
        let name = format!("m{case}.csv");
        let p = dir.path().join(&name);
        let text = mutate_text(if case % 2 == 0 { base } else { &text_labels }, &mut rng);
        std::fs::write(&p, &text).unwrap();
        keep("manifest", &name, text.as_bytes());
        // parse, then map the labels (text labels, mixtures, unlabelled rows) and check for leaks
        let r = std::panic::catch_unwind(|| {
            brainssl_data::Manifest::read(&p).and_then(|mut m| {
                brainssl_data::LabelMap::apply(&mut [&mut m.rows], &[])
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                brainssl_data::splits::check_disjoint(&[("all", &m.rows)])
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                Ok(m.rows.len())
            })
        });
        match r.unwrap_or_else(|_| panic!("case {case} panicked")) {
            Ok(_) => {}
            Err(e) => {
                errors += 1;
                let text = format!("{e:#}");
                assert!(text.contains(&p.display().to_string()), "case {case}: {text}");
            }
        }
    }
    assert!(errors > cases / 10 && errors < cases, "{errors} errors of {cases}");
}
