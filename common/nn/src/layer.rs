//! Affine layers, plain or noisy (factorised Gaussian, Fortunato et al. 2018).

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::Rng;

/// `y = x·W + b`, with `W` of shape `[in, out]`. A noisy layer adds `σ ⊙ ε` to `W` and `b`.
#[derive(Module, Debug)]
pub struct Layer<B: Backend> {
    pub weight: Param<Tensor<B, 2>>,
    pub bias: Param<Tensor<B, 1>>,
    pub sigma_weight: Option<Param<Tensor<B, 2>>>,
    pub sigma_bias: Option<Param<Tensor<B, 1>>>,
}

/// One draw of the noise of a noisy layer: `ε_W = f(ε_in) ⊗ f(ε_out)`, `ε_b = f(ε_out)`.
#[derive(Debug, Clone)]
pub struct LayerNoise<B: Backend> {
    pub weight: Tensor<B, 2>,
    pub bias: Tensor<B, 1>,
}

/// Uniform `U(−1/√fan_in, 1/√fan_in)` values from a host RNG, as PyTorch initialises `nn.Linear`.
fn uniform(rng: &mut impl Rng, n: usize, bound: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-bound..=bound)).collect()
}

fn param<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
}

impl<B: Backend> Layer<B> {
    /// A layer initialised from the host RNG, so that every backend starts from the same weights.
    pub fn new(
        d_in: usize,
        d_out: usize,
        noisy_sigma: Option<f32>,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Self {
        let bound = 1.0 / (d_in as f32).sqrt();
        let weight = param(uniform(rng, d_in * d_out, bound), [d_in, d_out], device);
        let bias = param(uniform(rng, d_out, bound), [d_out], device);
        let (sigma_weight, sigma_bias) = match noisy_sigma {
            Some(s) => (
                Some(param(
                    vec![s / (d_in as f32).sqrt(); d_in * d_out],
                    [d_in, d_out],
                    device,
                )),
                Some(param(
                    vec![s / (d_out as f32).sqrt(); d_out],
                    [d_out],
                    device,
                )),
            ),
            None => (None, None),
        };
        Self {
            weight,
            bias,
            sigma_weight,
            sigma_bias,
        }
    }

    /// A zero-initialised layer (the tables of tabular estimators).
    pub fn zeros(d_in: usize, d_out: usize, device: &B::Device) -> Self {
        Self {
            weight: param(vec![0.0; d_in * d_out], [d_in, d_out], device),
            bias: param(vec![0.0; d_out], [d_out], device),
            sigma_weight: None,
            sigma_bias: None,
        }
    }

    /// Whether this layer draws noise.
    pub fn is_noisy(&self) -> bool {
        self.sigma_weight.is_some()
    }

    /// `[in, out]`.
    pub fn dims(&self) -> [usize; 2] {
        self.weight.val().dims()
    }

    /// Draws fresh factorised noise for this layer.
    pub fn draw_noise(&self, rng: &mut impl Rng, device: &B::Device) -> LayerNoise<B> {
        let [d_in, d_out] = self.dims();
        let f = |z: f32| z.signum() * z.abs().sqrt();
        let mut normal = || {
            // Box–Muller: two uniforms give one standard normal.
            let u1: f32 = rng.random_range(f32::EPSILON..1.0);
            let u2: f32 = rng.random();
            f((-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos())
        };
        let e_in: Vec<f32> = (0..d_in).map(|_| normal()).collect();
        let e_out: Vec<f32> = (0..d_out).map(|_| normal()).collect();
        let mut w = Vec::with_capacity(d_in * d_out);
        for a in &e_in {
            w.extend(e_out.iter().map(|b| a * b));
        }
        LayerNoise {
            weight: Tensor::from_data(TensorData::new(w, [d_in, d_out]), device),
            bias: Tensor::from_data(TensorData::new(e_out, [d_out]), device),
        }
    }

    /// # Shapes
    /// `x: [rows, in]` → `[rows, out]`. `noise` is ignored by plain layers.
    pub fn forward(&self, x: Tensor<B, 2>, noise: Option<&LayerNoise<B>>) -> Tensor<B, 2> {
        let (mut w, mut b) = (self.weight.val(), self.bias.val());
        if let (Some(n), Some(sw), Some(sb)) = (noise, &self.sigma_weight, &self.sigma_bias) {
            w = w + sw.val() * n.weight.clone();
            b = b + sb.val() * n.bias.clone();
        }
        x.matmul(w) + b.unsqueeze::<2>()
    }
}
