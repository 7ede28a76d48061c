//! Representation analyses (docs/evaluation.md#representation-analysis): t-SNE, silhouette score and NMI of k-means clusters.
//!
//! t-SNE uses the exact O(n²) gradient, not the Barnes-Hut approximation: the paper's analysis has at
//! most 500 points (it subsamples), where the exact gradient costs about a second and has no
//! approximation error. Above `TsneConfig::max_exact` points, callers subsample (seeded).

use brainssl_prep::Rng;
use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Mean silhouette (Euclidean) of `labels`; a sample alone in its class scores 0 (as sklearn).
pub fn silhouette(x: &[Vec<f64>], labels: &[usize]) -> f64 {
    let n = x.len();
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let sizes: Vec<usize> = (0..k).map(|c| labels.iter().filter(|&&l| l == c).count()).collect();
    let mut total = 0.0;
    for i in 0..n {
        let mut sums = vec![0.0; k];
        for j in 0..n {
            if i != j {
                sums[labels[j]] += sq_dist(&x[i], &x[j]).sqrt();
            }
        }
        let own = labels[i];
        if sizes[own] <= 1 {
            continue;
        }
        let a = sums[own] / (sizes[own] - 1) as f64;
        let b = (0..k)
            .filter(|&c| c != own && sizes[c] > 0)
            .map(|c| sums[c] / sizes[c] as f64)
            .fold(f64::INFINITY, f64::min);
        if b.is_finite() {
            total += (b - a) / a.max(b);
        }
    }
    total / n as f64
}

fn entropy(counts: &[usize], n: usize) -> f64 {
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n as f64;
            -p * p.ln()
        })
        .sum()
}

/// Normalised mutual information with the arithmetic-mean normalisation (sklearn's default).
pub fn nmi(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len();
    let (ka, kb) = (a.iter().max().map_or(0, |m| m + 1), b.iter().max().map_or(0, |m| m + 1));
    let mut joint = vec![0usize; ka * kb];
    let (mut ca, mut cb) = (vec![0usize; ka], vec![0usize; kb]);
    for (&x, &y) in a.iter().zip(b) {
        joint[x * kb + y] += 1;
        ca[x] += 1;
        cb[y] += 1;
    }
    let (ha, hb) = (entropy(&ca, n), entropy(&cb, n));
    if ha == 0.0 && hb == 0.0 {
        return 1.0;
    }
    let mut mi = 0.0;
    for x in 0..ka {
        for y in 0..kb {
            let c = joint[x * kb + y];
            if c > 0 {
                let pxy = c as f64 / n as f64;
                mi += pxy * (pxy * n as f64 * n as f64 / (ca[x] as f64 * cb[y] as f64)).ln();
            }
        }
    }
    let denom = 0.5 * (ha + hb);
    if denom <= 0.0 {
        0.0
    } else {
        (mi / denom).clamp(0.0, 1.0)
    }
}

/// k-means (k-means++ seeding, Lloyd iterations), best of `n_init` seeded restarts by inertia.
pub fn kmeans(x: &[Vec<f64>], k: usize, seed: u64, n_init: usize) -> Vec<usize> {
    let n = x.len();
    let mut rng = Rng::new(seed);
    let mut best: Option<(f64, Vec<usize>)> = None;
    for _ in 0..n_init.max(1) {
        // k-means++
        let mut centres: Vec<Vec<f64>> = vec![x[rng.below(n as u64) as usize].clone()];
        while centres.len() < k {
            let d: Vec<f64> = x
                .iter()
                .map(|p| centres.iter().map(|c| sq_dist(p, c)).fold(f64::INFINITY, f64::min))
                .collect();
            let i = if d.iter().sum::<f64>() > 0.0 {
                rng.choose_weighted(&d)
            } else {
                rng.below(n as u64) as usize
            };
            centres.push(x[i].clone());
        }
        let mut assign = vec![0usize; n];
        for _ in 0..300 {
            let mut changed = false;
            for (i, p) in x.iter().enumerate() {
                let c = (0..k)
                    .min_by(|&a, &b| sq_dist(p, &centres[a]).total_cmp(&sq_dist(p, &centres[b])))
                    .unwrap_or(0);
                if c != assign[i] {
                    assign[i] = c;
                    changed = true;
                }
            }
            for (c, centre) in centres.iter_mut().enumerate() {
                let members: Vec<&Vec<f64>> = x.iter().zip(&assign).filter(|(_, &a)| a == c).map(|(p, _)| p).collect();
                if !members.is_empty() {
                    for (d, v) in centre.iter_mut().enumerate() {
                        *v = members.iter().map(|m| m[d]).sum::<f64>() / members.len() as f64;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let inertia: f64 = x.iter().zip(&assign).map(|(p, &c)| sq_dist(p, &centres[c])).sum();
        if best.as_ref().is_none_or(|(b, _)| inertia < *b) {
            best = Some((inertia, assign));
        }
    }
    best.map(|b| b.1).unwrap_or_default()
}

/// The first `k` principal-component scores of `x`.
pub fn pca(x: &[Vec<f64>], k: usize) -> Vec<Vec<f64>> {
    let (n, d) = (x.len(), x[0].len());
    let mean: Vec<f64> = (0..d).map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n as f64).collect();
    let c = DMatrix::from_fn(n, d, |i, j| x[i][j] - mean[j]);
    let eig = SymmetricEigen::new(c.transpose() * &c);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    (0..n)
        .map(|i| {
            order[..k]
                .iter()
                .map(|&j| {
                    // sign convention: largest-magnitude loading positive (deterministic output)
                    let v = eig.eigenvectors.column(j);
                    let s = if v.iter().fold(0.0f64, |m, &e| if e.abs() > m.abs() { e } else { m }) < 0.0 {
                        -1.0
                    } else {
                        1.0
                    };
                    s * c.row(i).iter().zip(v.iter()).map(|(a, b)| a * b).sum::<f64>()
                })
                .collect()
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct TsneConfig {
    pub perplexity: f64,
    pub iterations: usize,
    pub early_exaggeration: f64,
    pub exaggeration_iterations: usize,
    pub seed: u64,
    pub max_exact: usize,
}

impl Default for TsneConfig {
    /// sklearn's defaults (perplexity 30, PCA init, 1000 iterations, exaggeration 12 for 250) and
    /// the paper's seed 42.
    fn default() -> Self {
        TsneConfig {
            perplexity: 30.0,
            iterations: 1000,
            early_exaggeration: 12.0,
            exaggeration_iterations: 250,
            seed: 42,
            max_exact: 2000,
        }
    }
}

/// Conditional probabilities with per-point bandwidths matching the perplexity (binary search).
fn affinities(x: &[Vec<f64>], perplexity: f64) -> Vec<f64> {
    let n = x.len();
    let target = perplexity.min((n - 1) as f64 / 3.0).max(1.0).ln();
    let mut p = vec![0.0; n * n];
    for i in 0..n {
        let d: Vec<f64> = (0..n).map(|j| sq_dist(&x[i], &x[j])).collect();
        let (mut lo, mut hi, mut beta) = (0.0f64, f64::INFINITY, 1.0f64);
        for _ in 0..100 {
            let mut sum = 0.0;
            let mut weighted = 0.0;
            for j in 0..n {
                if j != i {
                    let e = (-d[j] * beta).exp();
                    sum += e;
                    weighted += d[j] * e;
                }
            }
            let sum = sum.max(1e-300);
            let h = sum.ln() + beta * weighted / sum;
            if (h - target).abs() < 1e-5 {
                break;
            }
            if h > target {
                lo = beta;
                beta = if hi.is_finite() { 0.5 * (beta + hi) } else { beta * 2.0 };
            } else {
                hi = beta;
                beta = 0.5 * (beta + lo);
            }
        }
        let mut sum = 0.0;
        for j in 0..n {
            if j != i {
                p[i * n + j] = (-d[j] * beta).exp();
                sum += p[i * n + j];
            }
        }
        for j in 0..n {
            p[i * n + j] /= sum.max(1e-300);
        }
    }
    // symmetrise
    let mut s = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            s[i * n + j] = ((p[i * n + j] + p[j * n + i]) / (2.0 * n as f64)).max(1e-12);
        }
    }
    s
}

/// 2-D t-SNE embedding (exact gradient, PCA initialisation scaled to std 1e-4, momentum 0.5 → 0.8,
/// gains, learning rate max(n / exaggeration / 4, 50)).
pub fn tsne(x: &[Vec<f64>], cfg: &TsneConfig) -> Vec<[f64; 2]> {
    let n = x.len();
    if n < 3 {
        return vec![[0.0, 0.0]; n];
    }
    let p = affinities(x, cfg.perplexity);
    let init = pca(x, 2);
    let std0 = (init.iter().map(|r| r[0] * r[0]).sum::<f64>() / n as f64)
        .sqrt()
        .max(1e-12);
    let mut y: Vec<[f64; 2]> = init.iter().map(|r| [r[0] / std0 * 1e-4, r[1] / std0 * 1e-4]).collect();
    let lr = (n as f64 / cfg.early_exaggeration / 4.0).max(50.0);
    let mut update = vec![[0.0; 2]; n];
    let mut gains = vec![[1.0; 2]; n];
    let mut q = vec![0.0; n * n];
    for it in 0..cfg.iterations {
        let exag = if it < cfg.exaggeration_iterations {
            cfg.early_exaggeration
        } else {
            1.0
        };
        let momentum = if it < cfg.exaggeration_iterations { 0.5 } else { 0.8 };
        let mut qsum = 0.0;
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    let dx = y[i][0] - y[j][0];
                    let dy = y[i][1] - y[j][1];
                    let w = 1.0 / (1.0 + dx * dx + dy * dy);
                    q[i * n + j] = w;
                    qsum += w;
                }
            }
        }
        for i in 0..n {
            let mut g = [0.0; 2];
            for j in 0..n {
                if i != j {
                    let w = q[i * n + j];
                    let m = (exag * p[i * n + j] - w / qsum) * w;
                    g[0] += 4.0 * m * (y[i][0] - y[j][0]);
                    g[1] += 4.0 * m * (y[i][1] - y[j][1]);
                }
            }
            for d in 0..2 {
                let same_sign = (g[d] > 0.0) == (update[i][d] > 0.0);
                gains[i][d] = if same_sign {
                    (gains[i][d] * 0.8f64).max(0.01)
                } else {
                    gains[i][d] + 0.2
                };
                update[i][d] = momentum * update[i][d] - lr * gains[i][d] * g[d];
            }
        }
        for i in 0..n {
            y[i][0] += update[i][0];
            y[i][1] += update[i][1];
        }
    }
    y
}

/// How well embeddings separate their classes, in the raw space and on a 2-D t-SNE map (the
/// paper's Table 7): silhouette of the labels, and NMI between the labels and a k-means clustering
/// with one cluster per class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Separation {
    pub n: usize,
    pub silhouette_raw: f64,
    pub nmi_raw: f64,
    pub silhouette_tsne: f64,
    pub nmi_tsne: f64,
    /// The t-SNE map, one point per embedding.
    pub map: Vec<[f64; 2]>,
}

impl Separation {
    /// Needs at least 4 points; labels are class indices.
    pub fn compute(x: &[Vec<f64>], labels: &[usize], cfg: &TsneConfig) -> Result<Self, String> {
        if x.len() < 4 || labels.len() != x.len() {
            return Err(format!("need at least 4 labelled embeddings (got {})", x.len()));
        }
        let k = labels.iter().max().map_or(1, |m| m + 1);
        let map = tsne(x, cfg);
        let flat: Vec<Vec<f64>> = map.iter().map(|p| p.to_vec()).collect();
        Ok(Self {
            n: x.len(),
            silhouette_raw: silhouette(x, labels),
            nmi_raw: nmi(labels, &kmeans(x, k, cfg.seed, 10)),
            silhouette_tsne: silhouette(&flat, labels),
            nmi_tsne: nmi(labels, &kmeans(&flat, k, cfg.seed, 10)),
            map,
        })
    }

    /// The table row of model `name`: n, silhouette and NMI, raw and on the map.
    pub fn row(&self, name: &str) -> Vec<String> {
        vec![
            name.to_string(),
            self.n.to_string(),
            format!("{:.3}", self.silhouette_raw),
            format!("{:.3}", self.nmi_raw),
            format!("{:.3}", self.silhouette_tsne),
            format!("{:.3}", self.nmi_tsne),
        ]
    }

    pub fn columns() -> [&'static str; 6] {
        [
            "model",
            "n",
            "silhouette (raw)",
            "NMI (raw)",
            "silhouette (t-SNE)",
            "NMI (t-SNE)",
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(seed: u64, per: usize, dim: usize, sep: f64) -> (Vec<Vec<f64>>, Vec<usize>) {
        let mut rng = Rng::new(seed);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for c in 0..3 {
            for _ in 0..per {
                x.push(
                    (0..dim)
                        .map(|d| if d == c { sep } else { 0.0 } + rng.normal())
                        .collect(),
                );
                y.push(c);
            }
        }
        (x, y)
    }

    #[test]
    fn silhouette_by_hand() {
        // 1-D points 0, 1 (class 0) and 4, 5 (class 1): (3.5/4.5 + 2.5/3.5) · 2 / 4
        let x = vec![vec![0.0], vec![1.0], vec![4.0], vec![5.0]];
        let want = (3.5 / 4.5 + 2.5 / 3.5) / 2.0;
        assert!((silhouette(&x, &[0, 0, 1, 1]) - want).abs() < 1e-12);
    }

    #[test]
    fn nmi_by_hand() {
        assert!((nmi(&[0, 0, 1, 1], &[1, 1, 0, 0]) - 1.0).abs() < 1e-12);
        assert!(nmi(&[0, 0, 1, 1], &[0, 1, 0, 1]).abs() < 1e-12);
        // a = [0,0,1,1], b = [0,0,0,1]: joint p(0,0) = ½, p(1,0) = p(1,1) = ¼
        let (a, b) = ([0, 0, 1, 1], [0, 0, 0, 1]);
        let mi: f64 = 0.5 * (0.5f64 / (0.5 * 0.75)).ln()
            + 0.25 * (0.25f64 / (0.5 * 0.75)).ln()
            + 0.25 * (0.25f64 / (0.5 * 0.25)).ln();
        let ha = 2f64.ln();
        let hb = -(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln());
        assert!((nmi(&a, &b) - mi / (0.5 * (ha + hb))).abs() < 1e-12);
    }

    #[test]
    fn kmeans_recovers_separated_blobs() {
        let (x, y) = blobs(1, 30, 5, 10.0);
        let c = kmeans(&x, 3, 0, 5);
        assert!((nmi(&y, &c) - 1.0).abs() < 1e-12);
        assert!(silhouette(&x, &y) > 0.7);
    }

    #[test]
    fn tsne_keeps_blobs_apart_and_is_seeded() {
        let (x, y) = blobs(2, 25, 10, 8.0);
        let cfg = TsneConfig {
            iterations: 500,
            ..TsneConfig::default()
        };
        let a = tsne(&x, &cfg);
        let flat: Vec<Vec<f64>> = a.iter().map(|p| p.to_vec()).collect();
        assert!(silhouette(&flat, &y) > 0.6, "{}", silhouette(&flat, &y));
        assert!((nmi(&y, &kmeans(&flat, 3, 0, 5)) - 1.0).abs() < 1e-12);
        assert_eq!(tsne(&x, &cfg), a);
    }

    #[test]
    fn separation_of_two_distant_blobs_is_near_perfect() {
        let mut r = Rng::new(3);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..30 {
            let c = i % 2;
            x.push((0..5).map(|_| r.normal() * 0.1 + 10.0 * c as f64).collect::<Vec<f64>>());
            y.push(c);
        }
        let s = Separation::compute(
            &x,
            &y,
            &TsneConfig {
                perplexity: 5.0,
                ..TsneConfig::default()
            },
        )
        .unwrap();
        assert_eq!((s.n, s.map.len()), (30, 30));
        assert!(s.silhouette_raw > 0.9 && (s.nmi_raw - 1.0).abs() < 1e-9, "{s:?}");
        assert!(s.silhouette_tsne > 0.5, "{s:?}");
        assert_eq!(s.row("m").len(), Separation::columns().len());
        assert!(Separation::compute(&x[..3], &y[..3], &TsneConfig::default()).is_err());
    }
}
