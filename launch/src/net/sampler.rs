//! `gfn sampler`: subscribes to the learner's weights and sends trajectory batches to a buffer.
//! The rollout loop is `gfn_sampler::run`, the same as in `gfn train`.

use super::socket::{Join, Socket};
use super::NetArgs;
use crate::device::with_backend;
use anyhow::{Context, Result};
use gfn_common::pipe::{Shutdown, WeightBoard};
use gfn_common::wire::Message;
use gfn_common::{RunConfig, TrajectoryBatch};
use gfn_nn::backend::init_cpu_threads;
use gfn_nn::burn::tensor::backend::{AutodiffBackend, Backend};
use gfn_sampler::{BatchSink, Sampler, SamplerStats, WeightPolicy};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sends batches to a buffer, one in flight: the next batch is sampled only after the buffer
/// acknowledged the last, so a full buffer slows the sampler down (backpressure).
struct BufferSink {
    socket: Socket,
    shutdown: Shutdown,
}

impl BufferSink {
    fn try_send(&mut self, batch: TrajectoryBatch) -> anyhow::Result<bool> {
        let msg = Message::Trajectories(batch);
        while !self.socket.send(&msg, 250)? {
            if self.shutdown.is_set() {
                return Ok(false);
            }
        }
        while !self.shutdown.is_set() {
            if let Some((_, env)) = self.socket.recv(250)? {
                if env.body == Message::Ack {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

impl BatchSink for BufferSink {
    fn send(&mut self, batch: TrajectoryBatch) -> bool {
        self.try_send(batch).unwrap_or_else(|e| {
            tracing::error!("cannot send trajectories: {e:#}");
            false
        })
    }
}

/// Receives weights and the shutdown signal into `board` until the run ends or goes quiet.
/// Weights of another size than `n_params` (another network) are dropped.
fn receive_weights(
    mut sub: Socket,
    board: &WeightBoard,
    n_params: usize,
    shutdown: &Shutdown,
    idle: Duration,
) {
    let mut last_heard = Instant::now();
    while !shutdown.is_set() {
        match sub.recv(200) {
            Ok(Some((_, env))) => {
                last_heard = Instant::now();
                match env.body {
                    Message::Weights(w) => match w.to_weights() {
                        Some(w) if w.params.len() != n_params => tracing::warn!(
                            "dropped weights of {} parameters (this network has {n_params})",
                            w.params.len()
                        ),
                        Some(w) => {
                            if board.latest().is_none_or(|l| l.version < w.version) {
                                board.publish(w);
                            }
                        }
                        None => tracing::warn!("dropped weights with a partial value"),
                    },
                    Message::Shutdown => shutdown.trigger(),
                    _ => {}
                }
            }
            Ok(None) if last_heard.elapsed() > idle => {
                tracing::warn!("no weights for {} s, stopping", idle.as_secs());
                shutdown.trigger();
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!("weights socket failed: {e:#}");
                shutdown.trigger();
            }
        }
    }
}

/// Runs one sampler until the learner ends the run.
pub fn run(cfg: &RunConfig, net: &NetArgs) -> Result<SamplerStats> {
    cfg.validate()?;
    with_backend!(cfg.device, |L, device| run_on::<
        <L as AutodiffBackend>::InnerBackend,
    >(cfg, net, device))
}

fn run_on<B: Backend>(cfg: &RunConfig, net: &NetArgs, device: B::Device) -> Result<SamplerStats> {
    init_cpu_threads(cfg.threads);
    let me = format!("sampler-{}", net.id);
    let ctx = zmq::Context::new();
    let buffer = NetArgs::pick(&net.ingest, net.id);
    let sub = Socket::open(
        &ctx,
        zmq::SUB,
        Join::Connect,
        &net.weights,
        &net.run_token,
        &me,
    )?;
    let to_buffer = Socket::open(
        &ctx,
        zmq::DEALER,
        Join::Connect,
        buffer,
        &net.run_token,
        &me,
    )?;
    tracing::info!(
        "{me}: weights from {}, trajectories to {buffer}",
        net.weights
    );
    let board = Arc::new(WeightBoard::new(4));
    let shutdown = Shutdown::default();
    let mut sampler = Sampler::<B>::new(cfg, net.id as u64, device)?;
    let policy = if cfg.sync {
        WeightPolicy::Exact { lag: 0 }
    } else {
        WeightPolicy::Latest
    };
    let idle = Duration::from_secs(net.idle_timeout);
    let stats = std::thread::scope(|scope| {
        let (b, s, n_params) = (board.clone(), shutdown.clone(), sampler.num_params());
        scope.spawn(move || receive_weights(sub, &b, n_params, &s, idle));
        let mut sink = BufferSink {
            socket: to_buffer,
            shutdown: shutdown.clone(),
        };
        let stats = gfn_sampler::run(
            &mut sampler,
            0,
            None,
            cfg.batch_size,
            policy,
            &board,
            &mut sink,
            &shutdown,
        );
        shutdown.trigger();
        stats
    })
    .context("the sampler cannot use the published weights")?;
    tracing::info!(
        "{me}: sent {} trajectories in {} batches",
        stats.trajectories,
        stats.batches
    );
    Ok(stats)
}
