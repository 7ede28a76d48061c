//! Variables of a store by dotted path (`blocks.3.attn.qkv.weight`), sorted: for checkpoints,
//! optimiser state, weight-decay groups and parameter counts. A sorted list makes every loop over
//! parameters (norms, updates, saving) visit them in the same order on every run.

use brainssl_backend::tch::nn::VarStore;
use brainssl_backend::Tensor;

/// BatchNorm running statistics: state saved with the model, not trained.
pub fn is_buffer(path: &str) -> bool {
    path.ends_with("running_mean") || path.ends_with("running_var")
}

/// Every variable of `vs` (parameters and buffers) as (path, handle), sorted by path.
pub fn named_params(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The variables whose path starts with `prefix`, prefix stripped.
pub fn params_under(vs: &VarStore, prefix: &str) -> Vec<(String, Tensor)> {
    named_params(vs)
        .into_iter()
        .filter_map(|(k, t)| k.strip_prefix(prefix).map(|k| (k.to_string(), t)))
        .collect()
}

/// Number of trainable scalars under `prefix` (fixed positional embeddings are not variables and
/// BatchNorm running statistics are not parameters).
pub fn count_params(vs: &VarStore, prefix: &str) -> usize {
    params_under(vs, prefix)
        .iter()
        .filter(|(k, _)| !is_buffer(k))
        .map(|(_, t)| t.numel())
        .sum()
}
