//! Parameters by dotted path (`blocks.3.attn.qkv.weight`): for checkpoints, optimiser state, weight
//! decay groups and parameter counts.

use brainssl_backend::burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use brainssl_backend::Tensor;

/// One float parameter: its path, id, shape and value (a handle, not a copy).
#[derive(Debug, Clone)]
pub struct NamedParam {
    pub path: String,
    pub id: ParamId,
    pub shape: Vec<usize>,
    pub value: NamedValue,
}

/// A parameter tensor of any rank the models use.
#[derive(Debug, Clone)]
pub enum NamedValue {
    R1(Tensor<1>),
    R2(Tensor<2>),
    R3(Tensor<3>),
    R4(Tensor<4>),
    R5(Tensor<5>),
}

impl NamedValue {
    /// The value as a flat [n] tensor (row-major).
    pub fn flat(&self) -> Tensor<1> {
        match self {
            NamedValue::R1(t) => t.clone(),
            NamedValue::R2(t) => t.clone().flatten(0, 1),
            NamedValue::R3(t) => t.clone().flatten(0, 2),
            NamedValue::R4(t) => t.clone().flatten(0, 3),
            NamedValue::R5(t) => t.clone().flatten(0, 4),
        }
    }

    /// Host copy in row-major order.
    pub fn to_vec(&self) -> Vec<f32> {
        let data = match self {
            NamedValue::R1(t) => t.clone().into_data(),
            NamedValue::R2(t) => t.clone().into_data(),
            NamedValue::R3(t) => t.clone().into_data(),
            NamedValue::R4(t) => t.clone().into_data(),
            NamedValue::R5(t) => t.clone().into_data(),
        };
        data.convert::<f32>().try_to_vec::<f32>().expect("float parameter")
    }
}

#[derive(Default)]
struct Collector {
    path: Vec<String>,
    out: Vec<NamedParam>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let shape = value.dims().to_vec();
        let value = match D {
            1 => NamedValue::R1(value.reshape([shape[0]])),
            2 => NamedValue::R2(value.reshape([shape[0], shape[1]])),
            3 => NamedValue::R3(value.reshape([shape[0], shape[1], shape[2]])),
            4 => NamedValue::R4(value.reshape([shape[0], shape[1], shape[2], shape[3]])),
            5 => NamedValue::R5(value.reshape([shape[0], shape[1], shape[2], shape[3], shape[4]])),
            _ => panic!("parameters of rank {D} are not used by brainssl models"),
        };
        self.out.push(NamedParam {
            path: self.path.join("."),
            id: param.id,
            shape,
            value,
        });
    }
}

/// Every float parameter of `module` in visiting order.
pub fn named_params<M: Module>(module: &M) -> Vec<NamedParam> {
    let mut c = Collector::default();
    module.visit(&mut c);
    c.out
}

impl NamedParam {
    /// BatchNorm running statistics: state saved with the model, not trained.
    pub fn is_buffer(&self) -> bool {
        self.path.ends_with("running_mean") || self.path.ends_with("running_var")
    }
}

/// Number of trainable scalars (fixed positional embeddings and BatchNorm running statistics are
/// not parameters here).
pub fn count_params<M: Module>(module: &M) -> usize {
    named_params(module)
        .iter()
        .filter(|p| !p.is_buffer())
        .map(|p| p.shape.iter().product::<usize>())
        .sum()
}

/// Replaces parameter values by path with `f(path, current value) -> Option<new flat value>`;
/// the new value keeps the parameter's shape, id and gradient requirement.
pub fn map_params<M: Module, F: FnMut(&str, Tensor<1>) -> Option<Tensor<1>>>(module: M, f: F) -> M {
    let mut m = PathMapper { path: vec![], f };
    module.map(&mut m)
}

struct PathMapper<F> {
    path: Vec<String>,
    f: F,
}

impl<F: FnMut(&str, Tensor<1>) -> Option<Tensor<1>>> ModuleMapper for PathMapper<F> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let dims = tensor.dims();
        let n = dims.iter().product::<usize>();
        let path = self.path.join(".");
        match (self.f)(&path, tensor.clone().reshape([n])) {
            Some(new) => {
                assert_eq!(new.dims()[0], n, "{path}: new value has the wrong size");
                let require_grad = tensor.is_require_grad();
                let device = tensor.device();
                let mut new = new.reshape(dims);
                if device.is_autodiff() {
                    new = Tensor::from_inner(new.inner());
                }
                if require_grad {
                    new = new.require_grad();
                }
                Param::from_mapped_value(id, new, mapper)
            }
            None => Param::from_mapped_value(id, tensor, mapper),
        }
    }
}
