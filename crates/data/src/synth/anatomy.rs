//! A procedural head: analytic tissue model evaluated at any point in head coordinates (mm, RAS,
//! origin at the head centre). Random per subject; disease effects are explicit parameters so the
//! ground truth of every labelled task is known.

use brainssl_prep::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tissue {
    Background,
    Scalp,
    Skull,
    Csf,
    Gm,
    Wm,
    DeepGm,
    Lesion,
    /// A small focal lesion ([`Focal`]): a textured or smooth lesion, or a white-matter hyperintensity.
    Focal,
}

/// Tumour appearance, from WHO grade 2 (smooth, homogeneous) to grade 4 (necrosis, rim, texture).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tumour {
    pub centre: [f64; 3],
    pub radius: f64,
    /// 0 = low grade, 1 = intermediate (grade 3), 2 = high grade (grade 4)
    pub grade: u8,
    pub texture_seed: u64,
}

/// A small focal lesion in the white matter, replacing the tissue inside its sphere.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Focal {
    pub centre: [f64; 3],
    pub radius: f64,
    /// Amplitude of a zero-mean fine texture (value noise at [`FOCAL_TEXTURE_MM`]); 0 = smooth.
    pub texture: f64,
    pub texture_seed: u64,
    /// A white-matter hyperintensity (dark in T1, bright in T2 and FLAIR) rather than a lesion
    /// whose mean lies between grey and white matter in every contrast.
    pub hyperintense: bool,
}

/// Spatial scale of a focal lesion's texture (the value-noise lattice): under two voxels of the
/// tiny presets' 32 × 64 × 64 input (about 2.5 mm in-plane, 5 mm through the depth axis), so it is
/// near the top of the spectrum a model sees, yet coarse enough to survive the acquisitions'
/// 3.3-7.7 mm voxels and the resize (a 4 mm lattice was smoothed away).
pub const FOCAL_TEXTURE_MM: f64 = 6.0;

impl Focal {
    /// A lesion in the deep white matter of one hemisphere, above the ventricles.
    pub fn sample(rng: &mut Rng, radius: (f64, f64), texture: f64, hyperintense: bool) -> Self {
        let side = if rng.bernoulli(0.5) { 1.0 } else { -1.0 };
        Focal {
            centre: [
                side * rng.range(18.0, 26.0),
                rng.range(-20.0, 20.0),
                rng.range(22.0, 32.0),
            ],
            radius: rng.range(radius.0, radius.1),
            texture,
            texture_seed: rng.next_u64(),
            hyperintense,
        }
    }
}

/// Everything that defines one subject's anatomy.
#[derive(Debug, Clone)]
pub struct Anatomy {
    /// head ellipsoid semi-axes (x, y, z), mm
    pub head: [f64; 3],
    /// cortical folding: (direction, spatial frequency, phase, amplitude)
    pub folds: Vec<([f64; 3], f64, f64, f64)>,
    /// cortical ribbon thickness, as a fraction of the brain radius
    pub gm_thickness: f64,
    /// extra sulcal/subarachnoid CSF from atrophy, fraction of the brain radius
    pub sulcal_widening: f64,
    /// lateral ventricle scale
    pub ventricle_scale: f64,
    /// hippocampus-like structure scale
    pub hippocampus_scale: f64,
    pub tumour: Option<Tumour>,
    pub focal: Option<Focal>,
}

/// Disease severity: 0 healthy, ~0.35 MCI-like, 1 AD-like.
pub fn sample_anatomy(rng: &mut Rng, atrophy: f64, tumour_grade: Option<u8>) -> Anatomy {
    let head = [rng.range(70.0, 78.0), rng.range(88.0, 98.0), rng.range(78.0, 86.0)];
    let folds = (0..10)
        .map(|_| {
            let d = [rng.normal(), rng.normal(), rng.normal()];
            let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt().max(1e-9);
            (
                d.map(|c| c / n),
                rng.range(30.0, 55.0),
                rng.range(0.0, std::f64::consts::TAU),
                rng.range(0.5, 1.0),
            )
        })
        .collect();
    // age-like variation among healthy subjects overlaps mildly with disease
    let normal_var = rng.range(-0.1, 0.1);
    let a = (atrophy + normal_var * 0.5).max(0.0);
    let tumour = tumour_grade.map(|grade| {
        let side = if rng.bernoulli(0.5) { 1.0 } else { -1.0 };
        Tumour {
            centre: [
                side * rng.range(18.0, 32.0),
                rng.range(-25.0, 25.0),
                rng.range(0.0, 25.0),
            ],
            radius: rng.range(12.0, 20.0),
            grade,
            texture_seed: rng.next_u64(),
        }
    });
    Anatomy {
        head,
        folds,
        gm_thickness: 0.055 * (1.0 - 0.3 * a),
        sulcal_widening: 0.035 * a,
        ventricle_scale: 1.0 + 0.9 * a + rng.range(-0.08, 0.08),
        hippocampus_scale: 1.0 - 0.35 * a + rng.range(-0.04, 0.04),
        tumour,
        focal: None,
    }
}

fn ellipsoid(p: [f64; 3], c: [f64; 3], r: [f64; 3]) -> f64 {
    ((p[0] - c[0]) / r[0]).powi(2) + ((p[1] - c[1]) / r[1]).powi(2) + ((p[2] - c[2]) / r[2]).powi(2)
}

/// Smooth pseudo-random value noise in [-1, 1] at spatial scale `scale` mm.
pub fn value_noise(p: [f64; 3], scale: f64, seed: u64) -> f64 {
    let q = p.map(|c| c / scale);
    let f = q.map(f64::floor);
    let t = [0, 1, 2].map(|a| {
        let x = q[a] - f[a];
        x * x * (3.0 - 2.0 * x)
    });
    let hash = |i: i64, j: i64, k: i64| -> f64 {
        let mut s = seed
            ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (j as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            ^ (k as u64).wrapping_mul(0x1656_67B1_9E37_79F9);
        (brainssl_prep::rng::splitmix64(&mut s) >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    };
    let (i, j, k) = (f[0] as i64, f[1] as i64, f[2] as i64);
    let mut acc = 0.0;
    for c in 0..8 {
        let (a, b, d) = (c & 1, (c >> 1) & 1, (c >> 2) & 1);
        let w = (if a == 1 { t[0] } else { 1.0 - t[0] })
            * (if b == 1 { t[1] } else { 1.0 - t[1] })
            * (if d == 1 { t[2] } else { 1.0 - t[2] });
        acc += w * hash(i + a as i64, j + b as i64, k + d as i64);
    }
    acc
}

impl Anatomy {
    fn brain_axes(&self) -> [f64; 3] {
        self.head.map(|h| h - 15.0)
    }

    /// Folding term in [-1, 1] for a unit direction.
    fn fold(&self, u: [f64; 3]) -> f64 {
        let mut s = 0.0;
        let mut power = 0.0;
        for (d, f, ph, a) in &self.folds {
            s += a * (f * (u[0] * d[0] + u[1] * d[1] + u[2] * d[2]) + ph).sin();
            power += a * a;
        }
        // a sum of random waves has std sqrt(power/2); scale so gyri and sulci both reach ±1
        (s / (0.9 * power.sqrt())).clamp(-1.0, 1.0)
    }

    /// Tissue at point `p` and, for lesions, a [0, 1] appearance parameter.
    pub fn tissue(&self, p: [f64; 3]) -> (Tissue, f64) {
        let head = ellipsoid(p, [0.0; 3], self.head).sqrt();
        if head > 1.0 {
            return (Tissue::Background, 0.0);
        }
        let b = self.brain_axes();
        let rho = ellipsoid(p, [0.0; 3], b).sqrt();
        let scalp_inner = 1.0 - 5.0 / self.head[0];
        if head > scalp_inner {
            return (Tissue::Scalp, 0.0);
        }
        if rho > 1.0 + 3.0 / b[0] {
            return (Tissue::Skull, 0.0);
        }
        if let Some(t) = &self.tumour {
            let d = ellipsoid(p, t.centre, [t.radius; 3]).sqrt();
            if d < 1.0 {
                return (Tissue::Lesion, d);
            }
        }
        if let Some(f) = &self.focal {
            if ellipsoid(p, f.centre, [f.radius; 3]) < 1.0 {
                return (Tissue::Focal, 0.0);
            }
        }
        let u = {
            let q = [p[0] / b[0], p[1] / b[1], p[2] / b[2]];
            let n = rho.max(1e-9);
            q.map(|c| c / n)
        };
        let fold = self.fold(u);
        // pial surface: gyri bulge out, sulci cut in, atrophy widens the gap to the skull
        let pial = 1.0 - 0.02 - self.sulcal_widening * (1.0 + 0.5 * (1.0 - fold)) + 0.03 * fold;
        if rho > pial {
            return (Tissue::Csf, 0.0);
        }
        // deep structures
        let vs = self.ventricle_scale;
        for side in [-1.0, 1.0] {
            if ellipsoid(
                p,
                [side * 9.0 * vs.sqrt(), 2.0, 12.0],
                [4.5 * vs, 17.0 * vs.sqrt(), 6.5 * vs],
            ) < 1.0
            {
                return (Tissue::Csf, 0.0);
            }
            let hs = self.hippocampus_scale;
            let hc = [side * 26.0, -14.0, -14.0];
            if ellipsoid(p, hc, [4.5 * hs, 15.0 * hs, 4.5 * hs]) < 1.0 {
                return (Tissue::Gm, 0.0);
            }
            // the temporal horn fills the room the shrinking hippocampus leaves
            if ellipsoid(p, hc, [5.5, 16.0, 5.5]) < 1.0 {
                return (Tissue::Csf, 0.0);
            }
            if ellipsoid(p, [side * 10.0, -8.0, 2.0], [7.0, 10.0, 7.0]) < 1.0
                || ellipsoid(p, [side * 22.0, 6.0, 2.0], [5.0, 10.0, 8.0]) < 1.0
            {
                return (Tissue::DeepGm, 0.0);
            }
        }
        if ellipsoid(p, [0.0, -2.0, 4.0], [1.5 * vs, 10.0, 6.0 * vs.sqrt()]) < 1.0 {
            return (Tissue::Csf, 0.0);
        }
        // white matter reaches up into the gyri and recedes under the sulci
        let white = pial - self.gm_thickness - 0.14 * (1.0 - fold) / 2.0;
        // sulcal CSF: clefts down the middle of the deepest sulci, wider with atrophy
        if fold < -0.75 + 5.0 * self.sulcal_widening && rho > white + 0.02 {
            return (Tissue::Csf, 0.0);
        }
        if rho > white {
            return (Tissue::Gm, 0.0);
        }
        (Tissue::Wm, 0.0)
    }

    /// Inside the brain mask (what a skull-stripping tool would keep).
    pub fn in_brain(&self, p: [f64; 3]) -> bool {
        let b = self.brain_axes();
        ellipsoid(p, [0.0; 3], b).sqrt() <= 1.0
    }
}

/// Contrast of an acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contrast {
    T1,
    T2,
    Flair,
}

impl Contrast {
    pub fn name(self) -> &'static str {
        match self {
            Contrast::T1 => "T1",
            Contrast::T2 => "T2",
            Contrast::Flair => "FLAIR",
        }
    }
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "T1" | "T1W" => Contrast::T1,
            "T2" | "T2W" => Contrast::T2,
            "FLAIR" => Contrast::Flair,
            _ => anyhow::bail!("unknown contrast '{s}' (T1, T2, FLAIR)"),
        })
    }
    pub fn bids_suffix(self) -> &'static str {
        match self {
            Contrast::T1 => "T1w",
            Contrast::T2 => "T2w",
            Contrast::Flair => "FLAIR",
        }
    }
}

/// Relative signal of a tissue; lesions depend on grade and position inside the lesion.
pub fn signal(anat: &Anatomy, t: Tissue, lesion_r: f64, p: [f64; 3], c: Contrast) -> f64 {
    use Contrast::*;
    use Tissue::*;
    let base = |t: Tissue| match (t, c) {
        (Background, _) => 0.0,
        (Scalp, T1) => 1.1,
        (Scalp, T2) => 0.7,
        (Scalp, Flair) => 0.8,
        (Skull, _) => 0.08,
        (Csf, T1) => 0.18,
        (Csf, T2) => 1.0,
        (Csf, Flair) => 0.1,
        (Gm, T1) => 0.62,
        (Gm, T2) => 0.68,
        (Gm, Flair) => 0.75,
        (DeepGm, T1) => 0.75,
        (DeepGm, T2) => 0.55,
        (DeepGm, Flair) => 0.65,
        (Wm, T1) => 1.0,
        (Wm, T2) => 0.45,
        (Wm, Flair) => 0.55,
        (Lesion | Focal, _) => 0.0,
    };
    if t == Focal {
        let f = anat.focal.as_ref().expect("focal tissue without a focal lesion");
        let mean = if f.hyperintense {
            match c {
                T1 => 0.6,
                T2 => 0.9,
                Flair => 1.0,
            }
        } else {
            (base(Gm) + base(Wm)) / 2.0
        };
        return mean + f.texture * value_noise(p, FOCAL_TEXTURE_MM, f.texture_seed);
    }
    if t != Lesion {
        return base(t);
    }
    let tm = anat.tumour.as_ref().expect("lesion without tumour");
    let oedema = match c {
        T1 => 0.5,
        T2 => 0.85,
        Flair => 1.0,
    };
    match tm.grade {
        // grade 2: smooth, homogeneous, slightly darker centre
        0 => oedema * (0.95 - 0.05 * (1.0 - lesion_r)),
        // grade 3: heterogeneous, no necrosis, faint partial rim
        1 => {
            let tex = value_noise(p, 3.0, tm.texture_seed);
            let rim = if lesion_r > 0.8 && p[2] > tm.centre[2] {
                0.15
            } else {
                0.0
            };
            oedema * (0.85 + 0.18 * tex) + rim
        }
        // grade 4: necrotic core, enhancing rim, high-frequency texture
        _ => {
            let tex = value_noise(p, 1.5, tm.texture_seed) + 0.5 * value_noise(p, 0.8, tm.texture_seed ^ 1);
            if lesion_r < 0.45 {
                base(Csf) * 0.9 + 0.05 * tex
            } else if lesion_r < 0.62 {
                1.35 + 0.15 * tex
            } else {
                oedema * (0.8 + 0.25 * tex)
            }
        }
    }
}
