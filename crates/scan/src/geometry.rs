//! Voxel-to-world geometry: affines, orientation codes and the axis permutation + flips that bring a
//! volume to RAS+ (docs/preprocessing.md#orientation). Reorientation never resamples, so voxel
//! values are untouched.

/// Row-major 4x4 voxel (i, j, k, 1) → world (x, y, z, 1) matrix in millimetres, RAS+ world.
pub type Affine = [[f64; 4]; 4];

pub const IDENTITY: Affine = [
    [1.0, 0.0, 0.0, 0.0],
    [0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
];

/// Why an affine cannot map voxels to millimetres, if it cannot: a non-finite entry, or a voxel
/// volume (|det| of the 3×3 part) outside 1e-9..1e12 mm³ (singular, or absurdly scaled).
pub fn affine_problem(a: &Affine) -> Option<String> {
    if a.iter().flatten().any(|v| !v.is_finite()) {
        return Some("has non-finite entries".into());
    }
    let m = |r: usize, c: usize| a[r][c];
    let det = m(0, 0) * (m(1, 1) * m(2, 2) - m(1, 2) * m(2, 1)) - m(0, 1) * (m(1, 0) * m(2, 2) - m(1, 2) * m(2, 0))
        + m(0, 2) * (m(1, 0) * m(2, 1) - m(1, 1) * m(2, 0));
    if !(1e-9..=1e12).contains(&det.abs()) {
        return Some(format!(
            "is singular or absurdly scaled (voxel volume {:.3e} mm³)",
            det.abs()
        ));
    }
    None
}

pub fn matmul(a: &Affine, b: &Affine) -> Affine {
    let mut out = [[0.0; 4]; 4];
    for (r, row) in out.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = (0..4).map(|k| a[r][k] * b[k][c]).sum();
        }
    }
    out
}

/// Voxel spacing = length of each column of the 3x3 part.
pub fn spacing(a: &Affine) -> [f64; 3] {
    let mut s = [0.0; 3];
    for (c, v) in s.iter_mut().enumerate() {
        *v = (0..3).map(|r| a[r][c] * a[r][c]).sum::<f64>().sqrt();
    }
    s
}

fn det3(m: &[[f64; 3]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

fn inv3(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let d = det3(m);
    if d.abs() < 1e-12 || !d.is_finite() {
        return None;
    }
    let mut inv = [[0.0; 3]; 3];
    for (r, row) in inv.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            // cofactor of (c, r) for the adjugate
            let (r1, r2) = ((c + 1) % 3, (c + 2) % 3);
            let (c1, c2) = ((r + 1) % 3, (r + 2) % 3);
            *v = (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / d;
        }
    }
    Some(inv)
}

/// Nearest orthogonal matrix (polar factor) of the column-normalised 3x3 part, by Newton iteration
/// R ← (R + R⁻ᵀ)/2. This is what makes the axis assignment robust for oblique acquisitions.
fn polar_rotation(a: &Affine) -> Option<[[f64; 3]; 3]> {
    let sp = spacing(a);
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            if sp[j] == 0.0 {
                return None;
            }
            r[i][j] = a[i][j] / sp[j];
        }
    }
    for _ in 0..50 {
        let inv = inv3(&r)?;
        let mut next = [[0.0; 3]; 3];
        let mut delta: f64 = 0.0;
        for i in 0..3 {
            for j in 0..3 {
                next[i][j] = 0.5 * (r[i][j] + inv[j][i]);
                delta = delta.max((next[i][j] - r[i][j]).abs());
            }
        }
        r = next;
        if delta < 1e-12 {
            break;
        }
    }
    Some(r)
}

/// For each voxel axis: the world axis it runs along (0 = x, 1 = y, 2 = z) and whether it runs in the
/// positive (R, A, S) direction. Assignment is greedy on the largest absolute entry of the polar factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisCodes {
    pub world_axis: [usize; 3],
    pub positive: [bool; 3],
}

impl AxisCodes {
    pub fn from_affine(a: &Affine) -> Option<Self> {
        let mut r = polar_rotation(a)?;
        let mut world_axis = [usize::MAX; 3];
        let mut positive = [true; 3];
        for _ in 0..3 {
            let (mut bi, mut bj, mut best) = (0, 0, -1.0);
            for (i, row) in r.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    if v.abs() > best {
                        (bi, bj, best) = (i, j, v.abs());
                    }
                }
            }
            world_axis[bj] = bi;
            positive[bj] = r[bi][bj] > 0.0;
            for v in r[bi].iter_mut() {
                *v = 0.0;
            }
            for row in r.iter_mut() {
                row[bj] = 0.0;
            }
        }
        Some(AxisCodes { world_axis, positive })
    }

    /// Three-letter code such as "RAS" or "LAS": the direction each voxel axis increases towards.
    pub fn letters(&self) -> String {
        (0..3)
            .map(|a| {
                let (p, n) = [('R', 'L'), ('A', 'P'), ('S', 'I')][self.world_axis[a]];
                if self.positive[a] {
                    p
                } else {
                    n
                }
            })
            .collect()
    }

    pub fn is_ras(&self) -> bool {
        self.world_axis == [0, 1, 2] && self.positive == [true; 3]
    }
}

/// A strided window on a dense buffer: element (a, b, c) lives at `offset + a·s0 + b·s1 + c·s2`.
/// Crops, permutations and flips compose here without copying; `materialize` copies once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View3 {
    pub offset: isize,
    pub shape: [usize; 3],
    pub strides: [isize; 3],
}

impl View3 {
    /// Dense buffer whose first index varies fastest (NIfTI's storage order).
    pub fn fortran(shape: [usize; 3]) -> Self {
        View3 {
            offset: 0,
            shape,
            strides: [1, shape[0] as isize, (shape[0] * shape[1]) as isize],
        }
    }

    /// Dense buffer whose last index varies fastest (NumPy's default, our tensor layout).
    pub fn c_order(shape: [usize; 3]) -> Self {
        View3 {
            offset: 0,
            shape,
            strides: [(shape[1] * shape[2]) as isize, shape[2] as isize, 1],
        }
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// New axis `k` is old axis `order[k]`.
    pub fn permute(&self, order: [usize; 3]) -> Self {
        View3 {
            offset: self.offset,
            shape: order.map(|o| self.shape[o]),
            strides: order.map(|o| self.strides[o]),
        }
    }

    pub fn flip(&self, axis: usize) -> Self {
        let mut v = *self;
        if v.shape[axis] > 0 {
            v.offset += (v.shape[axis] as isize - 1) * v.strides[axis];
        }
        v.strides[axis] = -v.strides[axis];
        v
    }

    /// Half-open ranges per axis; the caller guarantees `lo <= hi <= shape`.
    pub fn crop(&self, ranges: [(usize, usize); 3]) -> Self {
        let mut v = *self;
        for (a, (lo, hi)) in ranges.into_iter().enumerate() {
            assert!(lo <= hi && hi <= self.shape[a], "crop range out of bounds");
            v.offset += lo as isize * v.strides[a];
            v.shape[a] = hi - lo;
        }
        v
    }

    /// Copy into a new C-order buffer. A source contiguous along the last axis is copied row by
    /// row; any other permutation is gathered in 16³ tiles so both sides stay in cache.
    pub fn materialize<T: Copy + Send + Sync + Default>(&self, src: &[T]) -> Vec<T> {
        use rayon::prelude::*;
        const TILE: usize = 16;
        let [n0, n1, n2] = self.shape;
        let mut out = vec![T::default(); n0 * n1 * n2];
        if out.is_empty() {
            return out;
        }
        let v = *self;
        let plane = n1 * n2;
        if v.strides[2] == 1 {
            out.par_chunks_mut(plane).enumerate().for_each(|(a, p)| {
                let base_a = v.offset + a as isize * v.strides[0];
                for (b, row) in p.chunks_mut(n2).enumerate() {
                    let s = (base_a + b as isize * v.strides[1]) as usize;
                    row.copy_from_slice(&src[s..s + n2]);
                }
            });
            return out;
        }
        out.par_chunks_mut(TILE * plane).enumerate().for_each(|(ta, chunk)| {
            let a0 = ta * TILE;
            let na = chunk.len() / plane;
            for b0 in (0..n1).step_by(TILE) {
                for c0 in (0..n2).step_by(TILE) {
                    let c1 = (c0 + TILE).min(n2);
                    for da in 0..na {
                        let base_a = v.offset + (a0 + da) as isize * v.strides[0];
                        for b in b0..(b0 + TILE).min(n1) {
                            let start = base_a + b as isize * v.strides[1] + c0 as isize * v.strides[2];
                            let row = &mut chunk[da * plane + b * n2 + c0..da * plane + b * n2 + c1];
                            gather(row, src, start, v.strides[2]);
                        }
                    }
                }
            }
        });
        out
    }
}

/// dst[t] = src[start + t·stride]; iterator stepping avoids a bounds check per element.
fn gather<T: Copy>(dst: &mut [T], src: &[T], start: isize, stride: isize) {
    let n = dst.len();
    if n == 0 {
        return;
    }
    let start = start as usize;
    if stride >= 0 {
        let s = stride as usize;
        for (d, x) in dst
            .iter_mut()
            .zip(src[start..=start + (n - 1) * s].iter().step_by(s.max(1)))
        {
            *d = *x;
        }
    } else {
        let s = stride.unsigned_abs();
        let lo = start - (n - 1) * s;
        for (d, x) in dst.iter_mut().zip(src[lo..=start].iter().rev().step_by(s)) {
            *d = *x;
        }
    }
}

/// The view and affine that present a volume of `shape` (in voxel-axis order) in RAS+ axis order.
/// World axis w of the result is the voxel axis assigned to w, flipped where it runs L, P or I.
pub fn to_ras(view: View3, affine: &Affine, codes: &AxisCodes) -> (View3, Affine) {
    let mut order = [0usize; 3];
    for a in 0..3 {
        order[codes.world_axis[a]] = a;
    }
    let mut v = view.permute(order);
    // T maps new voxel index → old voxel index (homogeneous), so new affine = old · T.
    let mut t = [[0.0; 4]; 4];
    t[3][3] = 1.0;
    for (w, &a) in order.iter().enumerate() {
        if codes.positive[a] {
            t[a][w] = 1.0;
        } else {
            v = v.flip(w);
            t[a][w] = -1.0;
            t[a][3] = view.shape[a] as f64 - 1.0;
        }
    }
    (v, matmul(affine, &t))
}

/// Affine of a crop starting at voxel `lo` of a volume with affine `a`.
pub fn shift_origin(a: &Affine, lo: [usize; 3]) -> Affine {
    let mut t = IDENTITY;
    for (k, l) in lo.iter().enumerate() {
        t[k][3] = *l as f64;
    }
    matmul(a, &t)
}

/// Unit quaternion (b, c, d), qfac and spacing of the rotation part, as NIfTI's qform stores it.
pub fn affine_to_quaternion(a: &Affine) -> ([f64; 3], f64, [f64; 3]) {
    let sp = spacing(a);
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            r[i][j] = if sp[j] > 0.0 {
                a[i][j] / sp[j]
            } else {
                f64::from(i == j)
            };
        }
    }
    let mut qfac = 1.0;
    if det3(&r) < 0.0 {
        qfac = -1.0;
        for row in r.iter_mut() {
            row[2] = -row[2];
        }
    }
    let r = polar_rotation(&[
        [r[0][0], r[0][1], r[0][2], 0.0],
        [r[1][0], r[1][1], r[1][2], 0.0],
        [r[2][0], r[2][1], r[2][2], 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ])
    .unwrap_or([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
    let trace = r[0][0] + r[1][1] + r[2][2];
    let (qa, qb, qc, qd);
    if trace > 0.0 {
        let s = (trace + 1.0).sqrt() * 2.0;
        qa = 0.25 * s;
        qb = (r[2][1] - r[1][2]) / s;
        qc = (r[0][2] - r[2][0]) / s;
        qd = (r[1][0] - r[0][1]) / s;
    } else if r[0][0] > r[1][1] && r[0][0] > r[2][2] {
        let s = (1.0 + r[0][0] - r[1][1] - r[2][2]).sqrt() * 2.0;
        qa = (r[2][1] - r[1][2]) / s;
        qb = 0.25 * s;
        qc = (r[0][1] + r[1][0]) / s;
        qd = (r[0][2] + r[2][0]) / s;
    } else if r[1][1] > r[2][2] {
        let s = (1.0 + r[1][1] - r[0][0] - r[2][2]).sqrt() * 2.0;
        qa = (r[0][2] - r[2][0]) / s;
        qb = (r[0][1] + r[1][0]) / s;
        qc = 0.25 * s;
        qd = (r[1][2] + r[2][1]) / s;
    } else {
        let s = (1.0 + r[2][2] - r[0][0] - r[1][1]).sqrt() * 2.0;
        qa = (r[1][0] - r[0][1]) / s;
        qb = (r[0][2] + r[2][0]) / s;
        qc = (r[1][2] + r[2][1]) / s;
        qd = 0.25 * s;
    }
    let sign = if qa < 0.0 { -1.0 } else { 1.0 };
    ([qb * sign, qc * sign, qd * sign], qfac, sp)
}

/// NIfTI qform: rotation from the quaternion (b, c, d), scaled by pixdim, with qfac on the k axis.
pub fn quaternion_to_affine(bcd: [f64; 3], qfac: f64, pixdim: [f64; 3], offset: [f64; 3]) -> Affine {
    let [b, c, d] = bcd;
    let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
    let r = [
        [
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
        ],
        [
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
        ],
        [
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - c * c - b * b,
        ],
    ];
    let scale = [pixdim[0], pixdim[1], pixdim[2] * qfac];
    let mut out = IDENTITY;
    for i in 0..3 {
        for j in 0..3 {
            out[i][j] = r[i][j] * scale[j];
        }
        out[i][3] = offset[i];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(x: f64, y: f64, z: f64) -> Affine {
        [
            [x, 0.0, 0.0, 0.0],
            [0.0, y, 0.0, 0.0],
            [0.0, 0.0, z, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    }

    #[test]
    fn codes_of_simple_affines() {
        assert_eq!(AxisCodes::from_affine(&diag(1.0, 1.0, 1.0)).unwrap().letters(), "RAS");
        assert_eq!(AxisCodes::from_affine(&diag(-2.0, 1.0, 3.0)).unwrap().letters(), "LAS");
        // i runs anterior, j runs inferior, k runs left: "AIL"
        let a = [
            [0.0, 0.0, -1.0, 0.0],
            [1.0, 0.0, 0.0, 0.0],
            [0.0, -1.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        assert_eq!(AxisCodes::from_affine(&a).unwrap().letters(), "AIL");
    }

    #[test]
    fn oblique_affine_picks_dominant_axes() {
        let t: f64 = 20f64.to_radians();
        let a = [
            [t.cos(), -t.sin(), 0.0, 0.0],
            [t.sin(), t.cos(), 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        assert_eq!(AxisCodes::from_affine(&a).unwrap().letters(), "RAS");
    }

    #[test]
    fn to_ras_maps_the_same_world_points() {
        // "AIL" storage with spacing 2, 3, 4 and an origin
        let a = [
            [0.0, 0.0, -4.0, 10.0],
            [2.0, 0.0, 0.0, -5.0],
            [0.0, -3.0, 0.0, 7.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let shape = [4, 5, 6];
        let data: Vec<u32> = (0..120).collect();
        let codes = AxisCodes::from_affine(&a).unwrap();
        let (v, na) = to_ras(View3::fortran(shape), &a, &codes);
        assert!(AxisCodes::from_affine(&na).unwrap().is_ras());
        assert_eq!(spacing(&na), [4.0, 2.0, 3.0]);
        let out = v.materialize(&data);
        let world = |aff: &Affine, p: [usize; 3]| -> [f64; 3] {
            let mut w = [0.0; 3];
            for (r, x) in w.iter_mut().enumerate() {
                *x = aff[r][3] + (0..3).map(|c| aff[r][c] * p[c] as f64).sum::<f64>();
            }
            w
        };
        for x in 0..v.shape[0] {
            for y in 0..v.shape[1] {
                for z in 0..v.shape[2] {
                    let val = out[(x * v.shape[1] + y) * v.shape[2] + z] as usize;
                    let (i, j, k) = (val % 4, (val / 4) % 5, val / 20);
                    assert_eq!(world(&na, [x, y, z]), world(&a, [i, j, k]));
                }
            }
        }
    }

    #[test]
    fn quaternion_round_trip() {
        let t: f64 = 0.3;
        let a = [
            [t.cos() * 1.5, 0.0, t.sin() * 2.0, 1.0],
            [0.0, 1.2, 0.0, 2.0],
            [-t.sin() * 1.5, 0.0, t.cos() * 2.0, 3.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        for m in [a, matmul(&a, &diag(1.0, 1.0, -1.0))] {
            let (q, qfac, sp) = affine_to_quaternion(&m);
            let back = quaternion_to_affine(q, qfac, sp, [m[0][3], m[1][3], m[2][3]]);
            for i in 0..3 {
                for j in 0..4 {
                    assert!((back[i][j] - m[i][j]).abs() < 1e-9, "{back:?} vs {m:?}");
                }
            }
        }
    }
}
