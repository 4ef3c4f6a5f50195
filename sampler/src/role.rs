//! The sampler's loop: wait for suitable weights, roll out a batch, hand it on.

use crate::rollout::Sampler;
use gfn_common::pipe::{Shutdown, WeightBoard};
use gfn_common::TrajectoryBatch;
use gfn_nn::burn::tensor::backend::Backend;
use gfn_nn::params::SizeMismatch;
use std::time::{Duration, Instant};

/// Where finished batches go: a channel in one process, a socket between processes.
pub trait BatchSink {
    /// Hands a batch on; `false` means the receiver is gone and the sampler should stop.
    fn send(&mut self, batch: TrajectoryBatch) -> bool;
}

impl BatchSink for crossbeam_channel::Sender<TrajectoryBatch> {
    fn send(&mut self, batch: TrajectoryBatch) -> bool {
        crossbeam_channel::Sender::send(self, batch).is_ok()
    }
}

/// Which weights a batch is sampled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightPolicy {
    /// Batch `k` uses exactly version `k − lag`: the data does not depend on timing.
    Exact { lag: u64 },
    /// Each batch uses the newest weights published so far (asynchronous samplers).
    Latest,
}

/// What a sampler did.
#[derive(Debug, Clone, Default)]
pub struct SamplerStats {
    pub batches: u64,
    pub trajectories: u64,
    pub sampling: Duration,
    pub waiting: Duration,
}

/// Produces batches `first_batch..n_batches` of `batch_size` (until `shutdown` when `None`).
/// Fails if published weights do not fit the sampler's network.
#[allow(clippy::too_many_arguments)]
pub fn run<B: Backend>(
    sampler: &mut Sampler<B>,
    first_batch: u64,
    n_batches: Option<u64>,
    batch_size: usize,
    policy: WeightPolicy,
    weights: &WeightBoard,
    sink: &mut impl BatchSink,
    shutdown: &Shutdown,
) -> Result<SamplerStats, SizeMismatch> {
    let mut stats = SamplerStats::default();
    let mut k = first_batch;
    sampler.set_batch_index(first_batch);
    while n_batches.is_none_or(|n| k < n) && !shutdown.is_set() {
        let t0 = Instant::now();
        let wanted = match policy {
            WeightPolicy::Exact { lag } => k.saturating_sub(lag),
            WeightPolicy::Latest => weights.latest().map_or(0, |w| w.version),
        };
        if sampler.version() != wanted || k == first_batch {
            let Some(w) = weights.wait_for(wanted, shutdown) else {
                break;
            };
            sampler.set_weights(w.version, &w.params)?;
        }
        let t1 = Instant::now();
        let batch = sampler.sample(batch_size);
        stats.waiting += t1 - t0;
        stats.sampling += t1.elapsed();
        stats.batches += 1;
        stats.trajectories += batch.len() as u64;
        k += 1;
        if !sink.send(batch) {
            break;
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gfn_common::pipe::Weights;
    use gfn_common::RunConfig;
    use gfn_nn::backend::{cpu_device, Cpu};

    fn sampler() -> Sampler<Cpu> {
        let cfg = RunConfig {
            ndim: 2,
            height: 4,
            hidden_dim: 8,
            ..RunConfig::default()
        };
        Sampler::new(&cfg, 0, cpu_device()).unwrap()
    }

    fn run_with(params: Vec<f32>) -> Result<SamplerStats, SizeMismatch> {
        let mut sampler = sampler();
        let board = WeightBoard::new(2);
        board.publish(Weights { version: 0, params });
        let (tx, rx) = crossbeam_channel::unbounded();
        let policy = WeightPolicy::Exact { lag: 0 };
        let stats = run(
            &mut sampler,
            0,
            Some(1),
            4,
            policy,
            &board,
            &mut { tx },
            &Shutdown::default(),
        );
        assert_eq!(
            rx.try_iter().count() as u64,
            stats.as_ref().map_or(0, |s| s.batches)
        );
        stats
    }

    #[test]
    fn weights_of_another_network_stop_the_sampler_with_an_error() {
        let n = sampler().num_params();
        assert_eq!(run_with(vec![0.0; n]).unwrap().batches, 1);
        let err = run_with(vec![0.0; n + 1]).unwrap_err();
        assert_eq!((err.expected, err.got), (n, n + 1));
    }
}
