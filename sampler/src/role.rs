//! The sampler's loop: wait for fresh enough weights, roll out a batch, hand it on.

use crate::rollout::Sampler;
use gfn_common::pipe::{Shutdown, WeightBoard};
use gfn_common::TrajectoryBatch;
use gfn_nn::burn::tensor::backend::Backend;
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

/// What a sampler did.
#[derive(Debug, Clone, Default)]
pub struct SamplerStats {
    pub batches: u64,
    pub trajectories: u64,
    pub sampling: Duration,
    pub waiting: Duration,
}

/// Produces `n_batches` batches of `batch_size`. Batch `k` is sampled with weights of version at
/// least `k − policy_lag`, so the data, and hence the run, does not depend on thread timing.
pub fn run<B: Backend>(
    sampler: &mut Sampler<B>,
    n_batches: u64,
    batch_size: usize,
    policy_lag: u64,
    weights: &WeightBoard,
    sink: &mut impl BatchSink,
    shutdown: &Shutdown,
) -> SamplerStats {
    let mut stats = SamplerStats::default();
    for k in 0..n_batches {
        let t0 = Instant::now();
        // Exactly the version asked for, never a newer one: a newer one depends on timing.
        let wanted = k.saturating_sub(policy_lag);
        if sampler.version() != wanted || k == 0 {
            let Some(w) = weights.wait_for(wanted, shutdown) else {
                break;
            };
            if let Err(e) = sampler.set_weights(w.version, &w.params) {
                tracing::error!("sampler cannot use the published weights: {e}");
                break;
            }
        }
        let t1 = Instant::now();
        let batch = sampler.sample(batch_size);
        stats.waiting += t1 - t0;
        stats.sampling += t1.elapsed();
        stats.batches += 1;
        stats.trajectories += batch.len() as u64;
        if shutdown.is_set() || !sink.send(batch) {
            break;
        }
    }
    stats
}
