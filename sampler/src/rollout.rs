//! Batched rollouts of the forward policy.

mod device;

use gfn_common::config::{ConfigError, EnvSection, ModelSection, SamplingSection};
use gfn_common::dedup::Dedup;
use gfn_common::rng::{stream_rng, Stream};
use gfn_common::target::terminal_distribution;
use gfn_common::{Device, HyperGrid, Preprocessor, Reward, RunConfig, TrajectoryBatch};
use gfn_nn::burn::module::Module;
use gfn_nn::burn::tensor::backend::Backend;
use gfn_nn::params::{self, SizeMismatch};
use gfn_nn::policy::{encode, forward_probs_all_states, sampling_probs, Exploration};
use gfn_nn::{GflowNet, NetConfig};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Rolls out trajectories with a copy of the policy.
pub struct Sampler<B: Backend> {
    grid: HyperGrid,
    reward: Reward,
    pre: Preprocessor,
    net: GflowNet<B>,
    version: u64,
    temperature: f32,
    epsilon: f32,
    seed: u64,
    stream: u64,
    /// Batches sampled so far: the index of the next batch's random stream.
    batches: u64,
    /// Roll out with device tensors (GPUs) rather than host-side steps.
    on_device: bool,
    /// Draw the noisy layers' noise for each batch (training); off, the mean policy rolls out.
    noisy: bool,
    device: B::Device,
}

/// The sections of a run's configuration that a sampler needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerSpec {
    pub env: EnvSection,
    pub model: ModelSection,
    pub sampling: SamplingSection,
}

impl From<&RunConfig> for SamplerSpec {
    fn from(cfg: &RunConfig) -> Self {
        Self {
            env: cfg.env(),
            model: cfg.model(),
            sampling: cfg.sampling(),
        }
    }
}

impl<B: Backend> Sampler<B> {
    /// A sampler with its own random stream `stream` (one per sampler).
    pub fn new(
        spec: impl Into<SamplerSpec>,
        stream: u64,
        device: B::Device,
    ) -> Result<Self, ConfigError> {
        let SamplerSpec {
            env,
            model,
            sampling,
        } = spec.into();
        env.validate()?;
        let grid = env.grid()?;
        model.validate(&grid)?;
        sampling.validate()?;
        let net_cfg = NetConfig::new(&model, &grid);
        // Initial weights are replaced by the learner's before the first batch.
        let net = GflowNet::new(
            &net_cfg,
            &mut SmallRng::seed_from_u64(sampling.seed),
            &device,
        );
        Ok(Self {
            grid,
            reward: env.reward_fn()?,
            pre: model.preprocessor,
            net,
            version: 0,
            temperature: sampling.temperature,
            epsilon: sampling.epsilon,
            seed: sampling.seed,
            stream,
            batches: 0,
            on_device: sampling.device != Device::Cpu,
            noisy: true,
            device,
        })
    }

    /// Replaces the policy's parameters.
    pub fn set_weights(&mut self, version: u64, flat: &[f32]) -> Result<(), SizeMismatch> {
        // Cloning a module only copies tensor handles.
        let net = self.net.clone();
        self.net = params::load(net, flat)?;
        self.version = version;
        Ok(())
    }

    /// Rolls out the mean policy from now on: noisy layers without their noise, the policy that
    /// validation measures and whose exact terminal distribution `gfn sample` reports.
    pub fn noise_off(&mut self) {
        self.noisy = false;
    }

    /// Whether a batch draws fresh noise for noisy layers.
    fn draws_noise(&self) -> bool {
        self.noisy && self.net.is_noisy()
    }

    /// The exact law of the terminal states this sampler draws (its T and ε included), by
    /// dynamic programming over the grid, in canonical-index order. `None` when the grid is too
    /// large to enumerate, or when noisy layers draw fresh noise (a mixture over noise draws
    /// has no closed form: call [`Sampler::noise_off`] first).
    pub fn exact_terminal_distribution(&self) -> Option<Vec<f64>> {
        if self.draws_noise() {
            return None;
        }
        let explore = Exploration {
            temperature: self.temperature,
            epsilon: self.epsilon,
        };
        let probs =
            forward_probs_all_states(&self.net, None, &self.grid, self.pre, explore, &self.device)?;
        Some(terminal_distribution(&self.grid, &probs))
    }

    /// Number of parameters `set_weights` expects.
    pub fn num_params(&self) -> usize {
        self.net.num_params()
    }

    /// Weight version of the current policy.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Makes the next batch the `k`-th (a resumed run continues the same random streams).
    pub fn set_batch_index(&mut self, k: u64) {
        self.batches = k;
    }

    /// Samples `n` complete trajectories: on a GPU with [`Sampler::sample_on_device`], on the
    /// CPU with [`Sampler::sample_on_host`].
    pub fn sample(&mut self, n: usize) -> TrajectoryBatch {
        if self.on_device {
            self.sample_on_device(n)
        } else {
            self.sample_on_host(n)
        }
    }

    /// Samples `n` trajectories that advance together; each step evaluates the distinct states
    /// of the trajectories that have not exited yet, and the host picks the actions.
    pub fn sample_on_host(&mut self, n: usize) -> TrajectoryBatch {
        let (d, a) = (self.grid.ndim(), self.grid.n_actions());
        let exit = self.grid.exit_action();
        let mut rng = stream_rng(self.seed, Stream::Sampler(self.stream), self.batches);
        self.batches += 1;
        let noise = self
            .draws_noise()
            .then(|| self.net.draw_noise(&mut rng, &self.device));
        let mut states = vec![0u16; n * d];
        let mut actions: Vec<Vec<u8>> = vec![Vec::with_capacity(self.grid.max_length()); n];
        let mut active: Vec<usize> = (0..n).collect();
        let mut rows = Vec::with_capacity(n * d);
        let (mut mask, mut probs) = (vec![false; a], vec![0f32; a]);
        while !active.is_empty() {
            rows.clear();
            for &i in &active {
                rows.extend_from_slice(&states[i * d..(i + 1) * d]);
            }
            // Trajectories of a batch share states (all start at the origin): evaluate each once.
            let distinct = Dedup::new(&self.grid, &rows);
            let input = encode::<B>(&self.grid, self.pre, &distinct.unique, &self.device);
            let logits = self.net.forward(&input, noise.as_ref(), false, false).pf;
            let logits = logits.into_data().convert::<f32>();
            let logits = logits.as_slice::<f32>().unwrap_or(&[]);
            let mut still = Vec::with_capacity(active.len());
            for (k, &i) in active.iter().enumerate() {
                let s = &mut states[i * d..(i + 1) * d];
                self.grid.forward_mask(s, &mut mask);
                let u = distinct.row_of[k] as usize;
                let row = logits.get(u * a..(u + 1) * a).unwrap_or(&[]);
                if row.len() == a {
                    sampling_probs(row, &mask, self.temperature, self.epsilon, &mut probs);
                } else {
                    // Cannot happen with a well-formed network; exit rather than index out of range.
                    probs
                        .iter_mut()
                        .enumerate()
                        .for_each(|(j, p)| *p = (j == exit) as u8 as f32);
                }
                let action = categorical(&probs, &mut rng);
                actions[i].push(action as u8);
                if action == exit {
                    continue;
                }
                s[action] += 1;
                still.push(i);
            }
            active = still;
        }
        let mut batch = TrajectoryBatch::default();
        for (i, acts) in actions.iter().enumerate() {
            let x = &states[i * d..(i + 1) * d];
            batch.push(acts, self.reward.log_reward(x), self.version);
        }
        batch
    }
}

/// Draws an index from a probability vector (the last allowed entry absorbs rounding).
fn categorical(probs: &[f32], rng: &mut impl Rng) -> usize {
    let u: f32 = rng.random();
    let mut acc = 0.0;
    let mut last = probs.len() - 1;
    for (j, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            acc += p;
            last = j;
            if u < acc {
                return j;
            }
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use gfn_nn::backend::{cpu_device, Cpu};

    #[test]
    fn samples_valid_trajectories_reproducibly() {
        let cfg = RunConfig {
            ndim: 3,
            height: 4,
            epsilon: 0.2,
            ..RunConfig::default()
        };
        let mut a = Sampler::<Cpu>::new(&cfg, 0, cpu_device()).unwrap();
        let mut b = Sampler::<Cpu>::new(&cfg, 0, cpu_device()).unwrap();
        let (x, y) = (a.sample(64), b.sample(64));
        assert_eq!(x, y);
        assert_eq!(x.len(), 64);
        x.validate(&cfg.grid().unwrap()).unwrap();
        let mut c = Sampler::<Cpu>::new(&cfg, 1, cpu_device()).unwrap();
        assert_ne!(c.sample(64), x, "another stream gives other trajectories");
    }

    #[test]
    fn device_rollouts_are_valid_and_reproducible() {
        let cfg = RunConfig {
            ndim: 3,
            height: 4,
            ..RunConfig::default()
        };
        let (grid, dev) = (cfg.grid().unwrap(), cpu_device());
        let mut a = Sampler::<Cpu>::new(&cfg, 3, dev).unwrap();
        let mut b = Sampler::<Cpu>::new(&cfg, 3, dev).unwrap();
        let x = a.sample_on_device(64);
        x.validate(&grid).unwrap();
        assert_eq!(x, b.sample_on_device(64));
        // ε and T each change the first batch of the same stream; it stays valid.
        for (epsilon, temperature) in [(0.5, 1.0), (0.0, 2.0)] {
            let mut c = Sampler::<Cpu>::new(
                &RunConfig {
                    epsilon,
                    temperature,
                    ..cfg.clone()
                },
                3,
                dev,
            )
            .unwrap();
            let y = c.sample_on_device(64);
            y.validate(&grid).unwrap();
            assert_ne!(y, x, "epsilon {epsilon}, temperature {temperature}");
        }
    }

    #[test]
    fn categorical_respects_zeros() {
        let mut rng = SmallRng::seed_from_u64(3);
        for _ in 0..1000 {
            let j = categorical(&[0.0, 0.5, 0.0, 0.5], &mut rng);
            assert!(j == 1 || j == 3);
        }
    }
}
