//! A buffer as a run's configuration describes it: the store, the rate limiter and the rules.

use crate::core::{BufferCore, BufferRules};
use crate::dump::DumpError;
use crate::limiter::RateLimiter;
use crate::recorder::Recorder;
use crate::replay::Diversity;
use crate::store::{Fifo, Store};
use crate::ReplayBuffer;
use gfn_common::config::ConfigError;
use gfn_common::config::{BufferSection, EnvSection};

/// Where a buffer runs: it changes how fast the learner may go relative to the samplers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hosting {
    /// `gfn train`: one sampler, one learner, one process. Without `--samples_per_insert` each
    /// inserted batch is sampled once (the data then does not depend on thread timing).
    Embedded,
    /// `gfn buffer`: any number of samplers and learners; without `--samples_per_insert` the
    /// learners take whatever is there.
    Process { id: u64 },
}

/// The buffer store of a run: a FIFO queue on-policy, a replay buffer with
/// `--replay_buffer_size`. `ndim` is the grid's (diversity compares terminal states).
pub fn new_store(cfg: &BufferSection, ndim: usize) -> Store {
    match cfg.replay_buffer_size {
        0 => Store::Fifo(Fifo::new(cfg.batch_size * 2)),
        n => {
            let mut rb = ReplayBuffer::new(n, cfg.replay_policy);
            rb.prioritized_sampling = cfg.prioritized_sampling;
            rb.max_times_sampled = cfg.max_times_sampled;
            if cfg.diverse_replay_buffer {
                rb.diversity = Some(Diversity {
                    cutoff: cfg.cutoff_distance,
                    p: cfg.p_norm_distance,
                    ndim,
                });
            }
            Store::Replay(rb)
        }
    }
}

/// The rate limiter of a run in `hosting`.
pub fn new_limiter(cfg: &BufferSection, hosting: Hosting) -> Option<RateLimiter> {
    let min_size = cfg.min_size_to_sample as u64;
    match (cfg.samples_per_insert, hosting) {
        (Some(spi), _) => Some(RateLimiter::new(spi, cfg.spi_error, min_size)),
        (None, Hosting::Embedded) => Some(RateLimiter::new(1.0, 0.0, cfg.batch_size as u64)),
        (None, Hosting::Process { .. }) => None,
    }
}

/// The buffer of a run on `env`, recording with `--record`.
pub fn new_core(
    cfg: &BufferSection,
    env: &EnvSection,
    hosting: Hosting,
) -> Result<BufferCore, BufferSetupError> {
    cfg.validate()?;
    let id = match hosting {
        Hosting::Embedded => 0,
        Hosting::Process { id } => id,
    };
    let rules = BufferRules {
        id,
        seed: cfg.seed,
        batch_size: cfg.batch_size,
        n_steps: cfg.n_steps,
        max_policy_lag: cfg.max_policy_lag,
        exact_versions: cfg.sync,
    };
    let who = match hosting {
        Hosting::Embedded => "train".to_string(),
        Hosting::Process { id } => format!("buffer-{id}"),
    };
    let recorder = Recorder::for_run(cfg, env, &who)?;
    Ok(BufferCore::new(
        rules,
        env.grid()?,
        new_store(cfg, env.ndim),
        new_limiter(cfg, hosting),
        recorder,
    ))
}

/// Why a buffer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BufferSetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Dump(#[from] DumpError),
}
