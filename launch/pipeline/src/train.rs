//! `gfn train`: the embedded pipeline. The sampler runs on its own thread; the buffer
//! ([`ChannelBuffer`]) and the learner run on this one, joined to the sampler by a bounded
//! channel and a weight board.

use crate::device::with_backend;
use anyhow::{Context, Result};
use crossbeam_channel::bounded;
use gfn_buffer::limiter::insert_steps;
use gfn_buffer::{new_core, ChannelBuffer, Hosting};
use gfn_common::config::Settings;
use gfn_common::pipe::{Shutdown, WeightBoard};
use gfn_common::RunConfig;
use gfn_host::session::{Finish, Session};
use gfn_host::{HostOptions, TrainReport};
use gfn_learner::LocalSync;
use gfn_nn::backend::{init_cpu_threads, role_pool};
use gfn_nn::burn::tensor::backend::AutodiffBackend;
use gfn_sampler::{Sampler, WeightPolicy};
use std::sync::Arc;

/// Batches that may wait between the sampler and the buffer: enough to overlap them, small
/// enough to bound memory.
const PIPE_DEPTH: usize = 4;

/// Trains as configured and returns the report.
pub fn train(cfg: &Settings, opts: HostOptions) -> Result<TrainReport> {
    train_until(cfg, opts, &Shutdown::default())
}

/// [`train`], stopping early (with a checkpoint, under `--checkpoint_dir`) once `stop` is set.
pub fn train_until(cfg: &Settings, opts: HostOptions, stop: &Shutdown) -> Result<TrainReport> {
    with_backend!(cfg.device, |L, device| train_on::<L>(
        cfg, opts, stop, device
    ))
}

/// Which weights each batch is sampled with: exactly `--policy_lag` versions behind the step
/// that first trains on it, which the rate limiter decides when each batch is sampled several
/// times.
fn weight_policy(cfg: &RunConfig, limiter: Option<&gfn_buffer::RateLimiter>) -> WeightPolicy {
    let steps = match (cfg.samples_per_insert, limiter) {
        (Some(_), Some(l)) => {
            let b = cfg.batch_size as u64;
            Some(Arc::from(insert_steps(l, b, b, cfg.n_iterations())))
        }
        _ => None,
    };
    WeightPolicy::Exact {
        lag: cfg.policy_lag,
        steps,
    }
}

/// [`train`] with the learner on backend `L` and the sampler on its inference backend.
fn train_on<L: AutodiffBackend>(
    cfg: &RunConfig,
    opts: HostOptions,
    stop: &Shutdown,
    device: L::Device,
) -> Result<TrainReport> {
    init_cpu_threads(cfg.threads);
    let mut sampler = Sampler::<L::InnerBackend>::new(cfg, 0, device.clone())?;
    // Before the run folder: a refused recording must not leave an emptied metrics file.
    let core = new_core(&cfg.buffer(), &cfg.env(), Hosting::Embedded)?;
    let policy = weight_policy(cfg, core.state().limiter.as_ref());
    let mut session = Session::<L>::open(cfg, opts, device, &mut LocalSync)?;
    let (to_buffer, inbox) = bounded(PIPE_DEPTH);
    let mut buffer = ChannelBuffer::new(core, inbox, cfg.batch_size);
    session.restore_source(&mut buffer)?;
    let first_batch = buffer.core().state().report.inserted_batches;
    let n_batches = match &policy {
        WeightPolicy::Exact { steps: Some(s), .. } => s.len() as u64,
        _ => cfg.n_iterations(),
    };
    let board = WeightBoard::new(cfg.policy_lag as usize + 2);
    board.publish(session.learner().weights());
    let sampler_stop = Shutdown::default();
    let (outcome, sampler_stats, buffer_report) = std::thread::scope(|scope| -> Result<_> {
        let (board, thread_stop, policy) = (&board, sampler_stop.clone(), &policy);
        let (batch, threads) = (cfg.batch_size, cfg.threads);
        let sampler_thread = std::thread::Builder::new()
            .name("sampler".into())
            .spawn_scoped(scope, move || {
                let mut sink = to_buffer;
                role_pool(threads).install(|| {
                    gfn_sampler::run(
                        &mut sampler,
                        first_batch,
                        Some(n_batches),
                        batch,
                        policy,
                        board,
                        &mut sink,
                        &thread_stop,
                    )
                })
            })?;
        let outcome = role_pool(cfg.threads)
            .install(|| session.run(&mut buffer, &mut &*board, &mut LocalSync, stop));
        // Stop the sampler whatever happened here (closing the channel wakes it), then collect
        // its statistics. A sampler failure comes first: it is why the learner ran dry.
        sampler_stop.trigger();
        let report = serde_json::to_value(buffer.finish()).ok();
        let sampler_stats = sampler_thread
            .join()
            .map_err(|_| anyhow::anyhow!("sampler thread panicked"))?
            .context("the sampler stopped")?;
        Ok((outcome, sampler_stats, report))
    })?;
    let finish = Finish {
        sampling_s: sampler_stats.sampling.as_secs_f64(),
        buffer: buffer_report,
        ..Finish::default()
    };
    session
        .finish(outcome?, finish)?
        .context("rank 0 reports the run")
}
