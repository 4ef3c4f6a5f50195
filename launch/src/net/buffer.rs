//! `gfn buffer`: receives trajectories from any number of samplers and serves batches to
//! learners (both over ROUTER sockets), from a FIFO queue or a replay buffer. Each sampler has
//! one batch in flight: the buffer acknowledges a batch once it has room for it.

use super::socket::{Join, Socket};
use super::NetArgs;
use crate::train::new_store;
use anyhow::{ensure, Result};
use gfn_buffer::buffer_rng;
use gfn_common::wire::Message;
use gfn_common::RunConfig;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// A learner's request waiting for data.
struct Pending {
    identity: Vec<u8>,
    n: usize,
    min_version: u64,
}

/// What a buffer process did.
#[derive(Debug, Default)]
pub struct BufferReport {
    pub received: BTreeMap<String, u64>,
    pub served: u64,
    pub invalid: u64,
    pub dropped: u64,
}

/// Runs one buffer until a learner says the run is over or nothing is heard for the idle timeout.
pub fn run(cfg: &RunConfig, net: &NetArgs) -> Result<BufferReport> {
    cfg.validate()?;
    ensure!(
        net.id < net.ingest.len() && net.id < net.serve.len(),
        "--id {} has no --ingest/--serve endpoint",
        net.id
    );
    let me = format!("buffer-{}", net.id);
    let ctx = zmq::Context::new();
    let bind = |ep: &str| net.bind_address(ep);
    let mut ingest = Socket::open(
        &ctx,
        zmq::ROUTER,
        Join::Bind,
        &bind(&net.ingest[net.id]),
        &net.run_token,
        &me,
    )?;
    let mut serve = Socket::open(
        &ctx,
        zmq::ROUTER,
        Join::Bind,
        &bind(&net.serve[net.id]),
        &net.run_token,
        &me,
    )?;
    tracing::info!(
        "{me}: samplers send to {}, learners ask at {}",
        net.ingest[net.id],
        net.serve[net.id]
    );
    let grid = cfg.grid()?;
    let mut store = new_store(cfg);
    let mut recorder = crate::train::new_recorder(cfg, &me)?;
    let mut takes = 0u64;
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut parked: VecDeque<(Vec<u8>, gfn_common::TrajectoryBatch)> = VecDeque::new();
    let mut report = BufferReport::default();
    let mut last_heard = Instant::now();
    let idle = Duration::from_secs(net.idle_timeout);
    'run: loop {
        let (in_ready, req_ready) = {
            let mut items = [ingest.poll_item(zmq::POLLIN), serve.poll_item(zmq::POLLIN)];
            zmq::poll(&mut items, 100)?;
            (items[0].is_readable(), items[1].is_readable())
        };
        if in_ready {
            while let Some((identity, env)) = ingest.recv(0)? {
                last_heard = Instant::now();
                match env.body {
                    Message::Trajectories(batch) => match batch.validate(&grid) {
                        Ok(()) => {
                            let count = report.received.entry(env.sender.clone()).or_insert(0);
                            if *count == 0 {
                                tracing::info!("{me}: {} joined", env.sender);
                            }
                            *count += batch.len() as u64;
                            parked.push_back((identity, batch));
                        }
                        Err(e) => {
                            report.invalid += 1;
                            tracing::warn!("{me}: dropped a batch from {}: {e}", env.sender);
                            ingest.send_to(&identity, &Message::Ack, 100)?;
                        }
                    },
                    other => tracing::debug!("{me}: ignored {} from {}", other.kind(), env.sender),
                }
            }
        }
        // A full FIFO acknowledges nothing, so samplers wait instead of producing trajectories
        // that would be evicted unused (backpressure, not memory growth).
        while store.has_room() {
            let Some((identity, batch)) = parked.pop_front() else {
                break;
            };
            recorder.record(&batch);
            store.insert(&batch);
            ingest.send_to(&identity, &Message::Ack, 100)?;
        }
        if req_ready {
            while let Some((identity, env)) = serve.recv(0)? {
                last_heard = Instant::now();
                match env.body {
                    Message::Request {
                        n,
                        version,
                        min_version,
                    } => {
                        let oldest = cfg
                            .max_policy_lag
                            .map_or(0, |lag| version.saturating_sub(lag));
                        pending.push_back(Pending {
                            identity,
                            n: n as usize,
                            min_version: min_version.max(oldest),
                        });
                    }
                    Message::Shutdown => break 'run,
                    other => tracing::debug!("{me}: ignored {} from {}", other.kind(), env.sender),
                }
            }
        }
        while let Some(p) = pending.front() {
            let Some(batch) = store.take(
                p.n,
                p.min_version,
                &mut buffer_rng(cfg.seed, net.id as u64, takes),
            ) else {
                break;
            };
            takes += 1;
            report.served += batch.len() as u64;
            let received = report
                .received
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            let queued = store.len() as u64;
            serve.send_to(
                &p.identity,
                &Message::Reply {
                    batch,
                    received,
                    queued,
                },
                1000,
            )?;
            pending.pop_front();
        }
        if last_heard.elapsed() > idle {
            tracing::warn!("{me}: nothing heard for {} s, stopping", net.idle_timeout);
            break;
        }
    }
    recorder.finish();
    report.dropped = ingest.dropped + serve.dropped;
    tracing::info!(
        "{me}: served {} trajectories, dropped {} messages and {} invalid batches",
        report.served,
        report.dropped,
        report.invalid
    );
    Ok(report)
}
