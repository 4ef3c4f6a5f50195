//! Host-side glue between grid states and the network: encoding rows of states, turning logits
//! into masked probabilities, and evaluating the forward policy on the whole grid.

use crate::net::{GflowNet, Input, NetNoise};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use gfn_common::{HyperGrid, Preprocessor};

/// Value written over the logits of forbidden actions: `exp` of it is exactly 0 in f32, without
/// the NaNs that infinities bring into gradients.
pub const MASKED_LOGIT: f32 = -1e9;

/// Encodes `rows` states (flat, `D` coordinates each) as a network input.
pub fn encode<B: Backend>(
    grid: &HyperGrid,
    pre: Preprocessor,
    states: &[u16],
    device: &B::Device,
) -> Input<B> {
    let d = grid.ndim();
    let rows = states.len() / d;
    let width = pre
        .dim(grid)
        .filter(|_| pre != Preprocessor::Enum)
        .unwrap_or(0);
    let mut values = Vec::with_capacity(rows * width.max(1));
    for s in states.chunks_exact(d) {
        pre.encode(grid, s, &mut values);
    }
    Input::from_host(values, rows, width, device)
}

/// Encodes a `[rows, D]` tensor of coordinates where it lives, as [`encode`] does on the host.
pub fn encode_tensor<B: Backend>(
    grid: &HyperGrid,
    pre: Preprocessor,
    x: Tensor<B, 2, Int>,
) -> Input<B> {
    let [rows, d] = x.dims();
    let h = grid.height();
    let device = x.device();
    let index = |x: Tensor<B, 2, Int>| {
        let strides: Vec<i64> = (0..d).map(|k| grid.stride(k) as i64).collect();
        let strides = Tensor::<B, 1, Int>::from_data(TensorData::new(strides, [d]), &device);
        (x * strides.unsqueeze::<2>()).sum_dim(1).reshape([rows])
    };
    match pre {
        Preprocessor::KHot => Input::Dense(
            x.reshape([rows * d])
                .one_hot::<2>(h)
                .float()
                .reshape([rows, d * h]),
        ),
        Preprocessor::OneHot => {
            let n = grid.enumerable_states().unwrap_or(0);
            Input::Dense(index(x).one_hot::<2>(n).float())
        }
        Preprocessor::Identity => Input::Dense(x.float()),
        Preprocessor::Enum => Input::Index(index(x)),
    }
}

/// Sampling probabilities of one state's forward actions, written into `out`:
/// `softmax(masked logits / T)`, mixed with `ε` of the uniform distribution over allowed actions.
pub fn sampling_probs(
    logits: &[f32],
    mask: &[bool],
    temperature: f32,
    epsilon: f32,
    out: &mut [f32],
) {
    let max = logits
        .iter()
        .zip(mask)
        .filter(|(_, &m)| m)
        .map(|(&l, _)| l / temperature)
        .fold(f32::NEG_INFINITY, f32::max);
    let mut total = 0.0;
    for ((o, &l), &m) in out.iter_mut().zip(logits).zip(mask) {
        *o = if m {
            (l / temperature - max).exp()
        } else {
            0.0
        };
        total += *o;
    }
    let n_allowed = mask.iter().filter(|&&m| m).count() as f32;
    for (o, &m) in out.iter_mut().zip(mask) {
        let uniform = if m { 1.0 / n_allowed } else { 0.0 };
        *o = (1.0 - epsilon) * (*o / total) + epsilon * uniform;
    }
}

/// How sampling departs from the plain policy: the softmax temperature `T` and the share `ε` of
/// the uniform distribution over allowed actions mixed in (see [`sampling_probs`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exploration {
    pub temperature: f32,
    pub epsilon: f32,
}

impl Exploration {
    /// The plain policy: T = 1, ε = 0.
    pub const NONE: Self = Self {
        temperature: 1.0,
        epsilon: 0.0,
    };
}

/// Probabilities `P_F(·|s)` of every grid state under `explore` (the plain policy with
/// [`Exploration::NONE`]), in canonical order, `D + 1` values a state. `None` if the grid is too
/// large to enumerate.
pub fn forward_probs_all_states<B: Backend>(
    net: &GflowNet<B>,
    noise: Option<&NetNoise<B>>,
    grid: &HyperGrid,
    pre: Preprocessor,
    explore: Exploration,
    device: &B::Device,
) -> Option<Vec<f32>> {
    const CHUNK: usize = 8192;
    let n = grid.enumerable_states()?;
    let (d, a) = (grid.ndim(), grid.n_actions());
    let mut probs = Vec::with_capacity(n * a);
    let mut states = Vec::with_capacity(CHUNK * d);
    let mut state = vec![0u16; d];
    let mut mask = vec![false; a];
    for start in (0..n).step_by(CHUNK) {
        let end = (start + CHUNK).min(n);
        states.clear();
        for i in start..end {
            grid.state_of(i, &mut state);
            states.extend_from_slice(&state);
        }
        let input = encode::<B>(grid, pre, &states, device);
        let logits = net
            .forward(&input, noise, false, false)
            .pf
            .into_data()
            .convert::<f32>();
        let logits = logits.as_slice::<f32>().ok()?;
        let mut row = vec![0f32; a];
        for (k, s) in states.chunks_exact(d).enumerate() {
            grid.forward_mask(s, &mut mask);
            let (t, e) = (explore.temperature, explore.epsilon);
            sampling_probs(&logits[k * a..(k + 1) * a], &mask, t, e, &mut row);
            probs.extend_from_slice(&row);
        }
    }
    Some(probs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_encoding_matches_the_host_encoding() {
        use crate::backend::{cpu_device, Cpu};
        let grid = HyperGrid::new(3, 4).unwrap();
        let states: Vec<u16> = vec![0, 0, 0, 1, 2, 3, 3, 3, 3, 2, 0, 1];
        let ints: Vec<i64> = states.iter().map(|&c| c as i64).collect();
        let dev = cpu_device();
        let host_values = |input: Input<Cpu>| -> Vec<f32> {
            match input {
                Input::Dense(t) => t.into_data().convert::<f32>().to_vec().unwrap(),
                Input::Index(t) => t.into_data().convert::<f32>().to_vec().unwrap(),
            }
        };
        for pre in [
            Preprocessor::KHot,
            Preprocessor::OneHot,
            Preprocessor::Identity,
            Preprocessor::Enum,
        ] {
            let x = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(ints.clone(), [4, 3]), &dev);
            assert_eq!(
                host_values(encode_tensor(&grid, pre, x)),
                host_values(encode::<Cpu>(&grid, pre, &states, &dev)),
                "{pre}"
            );
        }
    }

    #[test]
    fn sampling_probs_mask_temperature_and_epsilon() {
        let mut p = [0f32; 3];
        sampling_probs(&[0.0, 5.0, 0.0], &[true, false, true], 1.0, 0.0, &mut p);
        assert_eq!(p, [0.5, 0.0, 0.5]);
        sampling_probs(
            &[(2f32).ln(), 0.0, 0.0],
            &[true, true, false],
            1.0,
            0.0,
            &mut p,
        );
        assert!((p[0] - 2.0 / 3.0).abs() < 1e-6);
        sampling_probs(
            &[(2f32).ln(), 0.0, 0.0],
            &[true, true, false],
            1e6,
            0.0,
            &mut p,
        );
        assert!((p[0] - 0.5).abs() < 1e-4, "a high temperature flattens");
        sampling_probs(&[100.0, 0.0, 0.0], &[true, true, true], 1.0, 0.3, &mut p);
        assert!((p[1] - 0.1).abs() < 1e-6 && (p[0] - 0.8).abs() < 1e-6);
    }
}
