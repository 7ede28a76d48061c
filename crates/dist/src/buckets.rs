//! Gradient averaging in flattened buckets: each bucket is one contiguous buffer that the
//! gradients of consecutive parameters are copied into, all-reduced in one call (all buckets in
//! flight at once), divided by the world size and copied back, as DDP's reducer does.

use anyhow::Result;
use brainssl_backend::{Kind, Tensor};

use crate::group::ProcessGroup;

struct Bucket {
    flat: Tensor,
    /// (parameter index, offset, element count)
    members: Vec<(usize, i64, i64)>,
}

/// The bucket layout for one parameter list.
pub struct GradBuckets {
    buckets: Vec<Bucket>,
}

impl GradBuckets {
    /// Buckets of at most `bucket_bytes` (a parameter larger than that gets a bucket of its own),
    /// in parameter order; every parameter must be float32.
    pub fn new(params: &[(String, Tensor)], bucket_bytes: usize) -> Result<Self> {
        let mut buckets = Vec::new();
        let mut members = Vec::new();
        let mut len = 0i64;
        let device = params.first().map(|(_, p)| p.device());
        let close = |members: &mut Vec<(usize, i64, i64)>, len: &mut i64, buckets: &mut Vec<Bucket>| {
            if !members.is_empty() {
                let flat = Tensor::zeros([*len], (Kind::Float, device.expect("non-empty")));
                buckets.push(Bucket {
                    flat,
                    members: std::mem::take(members),
                });
                *len = 0;
            }
        };
        for (i, (name, p)) in params.iter().enumerate() {
            if p.kind() != Kind::Float {
                anyhow::bail!("parameter {name} is {:?}; gradient buckets hold float32", p.kind());
            }
            let n = p.numel() as i64;
            if len > 0 && ((len + n) as usize) * 4 > bucket_bytes {
                close(&mut members, &mut len, &mut buckets);
            }
            members.push((i, len, n));
            len += n;
        }
        close(&mut members, &mut len, &mut buckets);
        Ok(GradBuckets { buckets })
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Replaces every parameter's gradient by its mean over the group's ranks. A parameter without
    /// a gradient counts as zero (and gets the mean).
    pub fn average(&self, params: &[(String, Tensor)], group: &ProcessGroup) -> Result<()> {
        for b in &self.buckets {
            for &(i, off, n) in &b.members {
                let g = params[i].1.grad();
                let mut slot = b.flat.narrow(0, off, n);
                if g.defined() {
                    slot.copy_(&g.reshape([-1]));
                } else {
                    let _ = slot.zero_();
                }
            }
        }
        let flats: Vec<&Tensor> = self.buckets.iter().map(|b| &b.flat).collect();
        group.all_reduce_sum(&flats)?;
        let scale = 1.0 / group.world as f64;
        for b in &self.buckets {
            let _ = b.flat.shallow_clone().f_mul_scalar_(scale)?;
            for &(i, off, n) in &b.members {
                let p = &params[i].1;
                let mut g = p.grad();
                let mean = b.flat.narrow(0, off, n).reshape(p.size());
                if g.defined() {
                    g.copy_(&mean);
                } else {
                    // the parameter took no part in this rank's graph: give it the others' gradient
                    (p * 0.0).sum(Kind::Float).backward();
                    p.grad().copy_(&mean);
                }
            }
        }
        Ok(())
    }
}
