//! The sampler's loop: wait for suitable weights, roll out a batch, hand it on.

use crate::rollout::Sampler;
use gfn_common::pipe::{Shutdown, WeightBoard};
use gfn_common::seam::{BatchSink, PipeError};
use gfn_nn::burn::tensor::backend::Backend;
use gfn_nn::params::SizeMismatch;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which weights a batch is sampled with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightPolicy {
    /// Batch `k` uses exactly version `step(k) − lag`, where `step(k)` is the learner step that
    /// first trains on it: `k` itself, or `steps[k]` when the buffer samples each batch several
    /// times (`--samples_per_insert`). The data then does not depend on timing.
    Exact { lag: u64, steps: Option<Arc<[u64]>> },
    /// Each batch uses the newest weights published so far (asynchronous samplers).
    Latest,
}

impl WeightPolicy {
    /// One batch per learner step, `lag` versions behind.
    pub fn exact(lag: u64) -> Self {
        Self::Exact { lag, steps: None }
    }

    /// The version batch `k` is sampled with (the newest published, asked of `latest` only
    /// then, for [`WeightPolicy::Latest`]).
    fn version_for(&self, k: u64, latest: impl FnOnce() -> u64) -> u64 {
        match self {
            Self::Exact { lag, steps: None } => k.saturating_sub(*lag),
            Self::Exact {
                lag,
                steps: Some(s),
            } => s
                .get(k as usize)
                .or(s.last())
                .copied()
                .unwrap_or(0)
                .saturating_sub(*lag),
            Self::Latest => latest(),
        }
    }

    /// The batch to sample next after the learner went back to `version` (a checkpoint): the
    /// first batch that uses it.
    fn batch_after_rewind(&self, version: u64, k: u64) -> u64 {
        match self {
            Self::Exact { lag, steps: None } => version + lag,
            Self::Exact {
                lag,
                steps: Some(s),
            } => s.partition_point(|&step| step.saturating_sub(*lag) < version) as u64,
            Self::Latest => k,
        }
    }
}

/// What a sampler did.
#[derive(Debug, Clone, Default)]
pub struct SamplerStats {
    pub batches: u64,
    pub trajectories: u64,
    pub sampling: Duration,
    pub waiting: Duration,
    /// Times the learner went back to a checkpoint and the sampler followed it.
    pub rewinds: u64,
}

impl SamplerStats {
    /// Adds another sampler's counts and times (samplers of one process).
    pub fn add(&mut self, other: &SamplerStats) {
        self.batches += other.batches;
        self.trajectories += other.trajectories;
        self.sampling += other.sampling;
        self.waiting += other.waiting;
        self.rewinds += other.rewinds;
    }
}

/// Why a sampler stopped early.
#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    #[error("the published weights do not fit this sampler's network: {0}")]
    Weights(#[from] SizeMismatch),
    #[error("cannot hand batches on: {0}")]
    Sink(PipeError),
}

/// Produces batches `first_batch..n_batches` of `batch_size` (until `shutdown` when `None`).
/// Fails if published weights do not fit the sampler's network or the sink breaks; a sink that
/// closed ends the loop quietly.
#[allow(clippy::too_many_arguments)]
pub fn run<B: Backend>(
    sampler: &mut Sampler<B>,
    first_batch: u64,
    n_batches: Option<u64>,
    batch_size: usize,
    policy: &WeightPolicy,
    weights: &WeightBoard,
    sink: &mut impl BatchSink,
    shutdown: &Shutdown,
) -> Result<SamplerStats, SamplerError> {
    let mut stats = SamplerStats::default();
    let mut k = first_batch;
    sampler.set_batch_index(first_batch);
    while n_batches.is_none_or(|n| k < n) && !shutdown.is_set() {
        let t0 = Instant::now();
        let wanted = policy.version_for(k, || weights.latest().map_or(0, |w| w.version));
        if sampler.version() != wanted || k == first_batch {
            let Some(w) = weights.wait_for(wanted, shutdown) else {
                break;
            };
            if w.version < wanted {
                // The learner resumed from a checkpoint, or still waits for data of a version
                // this sampler already sent (the learner that took it died): sample it again.
                let again = w.version == sampler.version();
                k = policy.batch_after_rewind(w.version, k);
                sampler.set_batch_index(k);
                stats.rewinds += 1;
                match again {
                    true => tracing::debug!("the learner waits at version {}: again", w.version),
                    false => tracing::info!("the learner went back to version {}", w.version),
                }
            }
            sampler.set_weights(w.version, &w.params)?;
        }
        let t1 = Instant::now();
        let batch = sampler.sample(batch_size);
        stats.waiting += t1 - t0;
        stats.sampling += t1.elapsed();
        stats.batches += 1;
        stats.trajectories += batch.len() as u64;
        k += 1;
        match sink.send(batch) {
            Ok(()) => {}
            Err(PipeError::Closed) => break,
            Err(e) => return Err(SamplerError::Sink(e)),
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

    fn run_with(params: Vec<f32>) -> Result<SamplerStats, SamplerError> {
        let mut sampler = sampler();
        let board = WeightBoard::new(2);
        board.publish(Weights { version: 0, params });
        let (tx, rx) = crossbeam_channel::unbounded();
        let stats = run(
            &mut sampler,
            0,
            Some(1),
            4,
            &WeightPolicy::exact(0),
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
        let Err(SamplerError::Weights(err)) = run_with(vec![0.0; n + 1]) else {
            panic!("weights of another size were used");
        };
        assert_eq!((err.expected, err.got), (n, n + 1));
    }

    #[test]
    fn scheduled_batches_use_the_version_of_their_first_step() {
        // Four samples per insert: batch k is first trained on at step 4k.
        let steps: Arc<[u64]> = (0..10).map(|k| 4 * k).collect();
        let p = WeightPolicy::Exact {
            lag: 1,
            steps: Some(steps),
        };
        assert_eq!(p.version_for(0, || 99), 0);
        assert_eq!(p.version_for(3, || 99), 11);
        assert_eq!(p.batch_after_rewind(11, 7), 3);
        assert_eq!(WeightPolicy::exact(0).batch_after_rewind(5, 9), 5);
        assert_eq!(WeightPolicy::Latest.version_for(3, || 42), 42);
    }
}
