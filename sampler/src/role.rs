//! The sampler's loop: wait for suitable weights, roll out a batch, hand it on.

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
) -> SamplerStats {
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
        k += 1;
        if !sink.send(batch) {
            break;
        }
    }
    stats
}
