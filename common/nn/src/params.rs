//! Parameters as one flat vector: what crosses a thread or process boundary (weights to the
//! samplers, gradients to the all-reduce), and a checksum that proves replicas are identical.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

struct Flatten {
    out: Vec<f32>,
}

impl<B: Backend> ModuleVisitor<B> for Flatten {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        let data = p.val().into_data().convert::<f32>();
        self.out
            .extend_from_slice(data.as_slice::<f32>().unwrap_or(&[]));
    }
}

struct Load<'a> {
    src: &'a [f32],
    offset: usize,
}

impl<B: Backend> ModuleMapper<B> for Load<'_> {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, old, mapper) = p.consume();
        let (shape, device, grad) = (old.shape(), old.device(), old.is_require_grad());
        let n = shape.num_elements();
        let values = self.src[self.offset..self.offset + n].to_vec();
        self.offset += n;
        let mut t = Tensor::<B, D>::from_data(TensorData::new(values, shape), &device);
        if grad {
            t = t.require_grad();
        }
        Param::from_mapped_value(id, t, mapper)
    }
}

/// Every parameter of `module`, in declaration order.
pub fn flatten<B: Backend, M: Module<B>>(module: &M) -> Vec<f32> {
    let mut f = Flatten {
        out: Vec::with_capacity(module.num_params()),
    };
    module.visit(&mut f);
    f.out
}

/// Why a flat parameter vector does not fit a module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter vector has {got} values, the network has {expected}")]
pub struct SizeMismatch {
    pub expected: usize,
    pub got: usize,
}

/// Replaces every parameter of `module` with the values of `flat` (same order as [`flatten`]).
pub fn load<B: Backend, M: Module<B>>(module: M, flat: &[f32]) -> Result<M, SizeMismatch> {
    let expected = module.num_params();
    if flat.len() != expected {
        return Err(SizeMismatch {
            expected,
            got: flat.len(),
        });
    }
    Ok(module.map(&mut Load {
        src: flat,
        offset: 0,
    }))
}

/// FNV-1a over the bit patterns of the values: equal iff the parameters are bit-identical
/// (up to hash collisions).
pub fn checksum(values: &[f32]) -> u64 {
    values.iter().fold(0xcbf29ce484222325u64, |h, v| {
        v.to_bits()
            .to_le_bytes()
            .iter()
            .fold(h, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
    })
}
