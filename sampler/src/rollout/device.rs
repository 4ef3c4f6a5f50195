//! Rollouts that stay on the device: states, masks and action choices are tensors for the whole
//! batch, so a GPU gets one upload of random numbers and one download of the actions per batch
//! instead of a round trip per step.

use super::Sampler;
use gfn_common::rng::{stream_rng, Stream};
use gfn_common::TrajectoryBatch;
use gfn_nn::burn::tensor::activation::log_softmax;
use gfn_nn::burn::tensor::backend::Backend;
use gfn_nn::burn::tensor::{Bool, Int, Tensor, TensorData};
use gfn_nn::policy::{encode_tensor, MASKED_LOGIT};
use rand::Rng;

/// Steps between checks (a device sync) of whether every trajectory has exited.
const DONE_CHECK_EVERY: usize = 8;

impl<B: Backend> Sampler<B> {
    /// Samples `n` trajectories with every step on the device. Actions are drawn by the Gumbel-max
    /// trick from `T`-tempered, `ε`-mixed probabilities, with Gumbel noise drawn on the host from
    /// the sampler's random stream, so a seed gives the same trajectories on every backend (up to
    /// the backends' float rounding).
    pub fn sample_on_device(&mut self, n: usize) -> TrajectoryBatch {
        let (d, a, h) = (self.grid.ndim(), self.grid.n_actions(), self.grid.height());
        let (t_max, exit, dev) = (self.grid.max_length(), a - 1, &self.device);
        let mut rng = stream_rng(self.seed, Stream::Sampler(self.stream), self.batches);
        self.batches += 1;
        let noise = self
            .draws_noise()
            .then(|| self.net.draw_noise(&mut rng, dev));
        let gumbel: Vec<f32> = (0..t_max * n * a)
            .map(|_| {
                let u: f32 = rng.random_range(f32::MIN_POSITIVE..1.0);
                -(-u.ln()).ln()
            })
            .collect();
        let gumbel = Tensor::<B, 3>::from_data(TensorData::new(gumbel, [t_max, n, a]), dev);
        let can_exit = Tensor::<B, 2, Int>::ones([n, 1], dev).equal_elem(1);
        let mut x = Tensor::<B, 2, Int>::zeros([n, d], dev);
        let mut done: Tensor<B, 1, Bool> = Tensor::<B, 1, Int>::zeros([n], dev).equal_elem(1);
        let mut taken = Vec::with_capacity(t_max);
        for t in 0..t_max {
            let input = encode_tensor(&self.grid, self.pre, x.clone());
            let logits = self.net.forward(&input, noise.as_ref(), false, false).pf;
            let allowed = Tensor::cat(
                vec![x.clone().lower_elem(h as i64 - 1), can_exit.clone()],
                1,
            );
            let forbidden = allowed.clone().bool_not();
            let log_p = log_softmax(
                logits
                    .div_scalar(self.temperature)
                    .mask_fill(forbidden.clone(), MASKED_LOGIT),
                1,
            );
            let score = if self.epsilon > 0.0 {
                let allowed = allowed.float();
                let uniform = allowed.clone() / allowed.sum_dim(1);
                (log_p.exp() * (1.0 - self.epsilon) + uniform * self.epsilon)
                    .clamp_min(1e-30)
                    .log()
                    .mask_fill(forbidden, MASKED_LOGIT)
            } else {
                log_p
            };
            let g = gumbel.clone().slice([t..t + 1, 0..n, 0..a]).reshape([n, a]);
            let action = (score + g).argmax(1).reshape([n]);
            // Finished trajectories record `a`, a value no action has.
            taken.push(action.clone().mask_fill(done.clone(), a as i64));
            let live = done.clone().bool_not().int().reshape([n, 1]);
            let step = action.clone().one_hot::<2>(a).slice([0..n, 0..d]);
            x = x + step * live;
            done = done.bool_or(action.equal_elem(exit as i64));
            if (t + 1) % DONE_CHECK_EVERY == 0 && all_true(done.clone()) {
                break;
            }
        }
        let steps = taken.len();
        let taken = Tensor::stack::<2>(taken, 0).into_data().convert::<i64>();
        let taken = taken.as_slice::<i64>().unwrap_or(&[]);
        let mut batch = TrajectoryBatch::default();
        let (mut actions, mut state) = (Vec::with_capacity(t_max), vec![0u16; d]);
        for i in 0..n {
            actions.clear();
            state.iter_mut().for_each(|c| *c = 0);
            for t in 0..steps {
                match taken.get(t * n + i).map(|&v| v as usize) {
                    Some(act) if act < exit => {
                        actions.push(act as u8);
                        state[act] += 1;
                    }
                    _ => {
                        actions.push(exit as u8);
                        break;
                    }
                }
            }
            batch.push(&actions, self.reward.log_reward(&state), self.version);
        }
        batch
    }
}

fn all_true<B: Backend>(t: Tensor<B, 1, Bool>) -> bool {
    // Through integers: backends store booleans differently.
    let min = t.int().min().into_data().convert::<i64>();
    min.as_slice::<i64>().ok().and_then(|v| v.first().copied()) == Some(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gfn_nn::backend::{cpu_device, Cpu};

    #[test]
    fn all_true_reads_a_bool_tensor() {
        let bools = |v: &[i64]| {
            Tensor::<Cpu, 1, Int>::from_data(TensorData::new(v.to_vec(), [v.len()]), &cpu_device())
                .equal_elem(1)
        };
        assert!(all_true(bools(&[1, 1, 1])));
        assert!(!all_true(bools(&[1, 0, 1])));
    }
}
