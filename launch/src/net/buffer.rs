//! `gfn buffer`: receives trajectories from any number of samplers and serves batches to
//! learners (both over ROUTER sockets), from a FIFO queue or a replay buffer. Each sampler has
//! one batch in flight: the buffer acknowledges a batch once it has room for it (and, with
//! `--samples_per_insert`, once the rate limiter lets it in).

use super::socket::{Join, Socket};
use super::NetArgs;
use crate::train::new_store;
use anyhow::{ensure, Result};
use gfn_buffer::dump::Dump;
use gfn_buffer::{buffer_rng, RateLimiter, Store};
use gfn_common::wire::Message;
use gfn_common::RunConfig;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

/// Most batches of one peer held before their Ack: a sampler has one in flight, so more come
/// only from a peer that ignores the protocol.
const MAX_PARKED_PER_PEER: usize = 16;
use std::time::{Duration, Instant};

/// A learner's request waiting for data.
struct Pending {
    identity: Vec<u8>,
    n: usize,
    min_version: u64,
}

/// What a buffer process did; written to `buffer-<id>.json` in the run folder at the end.
#[derive(Debug, Default, serde::Serialize)]
pub struct BufferReport {
    /// Trajectories received from each sampler.
    pub received: BTreeMap<String, u64>,
    /// Trajectories inserted into the store (recorded, with `--record`).
    pub inserted: u64,
    /// Trajectories handed to learners.
    pub served: u64,
    /// Trajectories preloaded from a recording (`--load`).
    pub loaded: u64,
    /// Batches and requests rejected as invalid.
    pub invalid: u64,
    /// Messages dropped (malformed, foreign, oversized).
    pub dropped: u64,
    /// The rate limiter at the end (with `--samples_per_insert`).
    pub limiter: Option<RateLimiter>,
}

/// Runs one buffer until a learner says the run is over or nothing is heard for the idle timeout.
/// With `load`, the buffer starts out holding the recording in that folder.
pub fn run(cfg: &RunConfig, net: &NetArgs, load: Option<&Path>) -> Result<BufferReport> {
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
    let mut report = BufferReport::default();
    if let Some(dir) = load {
        let dump = Dump::read(dir)?;
        dump.check_env(cfg)?;
        crate::replay::describe(dir, &dump);
        if let Store::Fifo(_) = store {
            // The queue must hold the whole recording, or loading would evict most of it.
            let room = dump.report.trajectories + 2 * cfg.batch_size;
            store = Store::Fifo(gfn_buffer::Fifo::new(room));
        }
        for b in &dump.batches {
            store.insert(b);
            report.loaded += b.len() as u64;
        }
        tracing::info!(
            "{me}: serving {} recorded trajectories from {}",
            report.loaded,
            dir.display()
        );
    }
    let mut recorder = crate::train::new_recorder(cfg, &me)?;
    let min_size = cfg.min_size_to_sample.unwrap_or(cfg.batch_size) as u64;
    let budget = cfg.n_iterations() * cfg.batch_size as u64;
    let mut limiter = cfg
        .samples_per_insert
        .map(|spi| RateLimiter::new(spi, cfg.spi_error, min_size));
    if let Some(l) = limiter.as_mut() {
        // A preloaded recording counts as inserted.
        l.inserted(report.loaded);
    }
    // Items that already waited once, so that each wait is counted once.
    let (mut insert_waiting, mut sample_waiting) = (false, false);
    let mut takes = 0u64;
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut parked: VecDeque<(Vec<u8>, gfn_common::TrajectoryBatch)> = VecDeque::new();
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
                    Message::Trajectories(_)
                        if parked.iter().filter(|(id, _)| *id == identity).count()
                            >= MAX_PARKED_PER_PEER =>
                    {
                        // A sampler waits for its Ack before sending more: only a peer that
                        // ignores the protocol gets here.
                        report.invalid += 1;
                        tracing::warn!(
                            "{me}: dropped a batch from {}: too many unacknowledged batches",
                            env.sender
                        );
                    }
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
        // The rate limiter holds samplers back the same way when they run ahead of the learners.
        while let Some((_, batch)) = parked.front() {
            let n = batch.len() as u64;
            // A FIFO hands each trajectory out once: beyond the run's budget nobody would use it.
            // Trajectories dropped as stale or evicted do not count against it.
            let kept = report.inserted.saturating_sub(store.discarded());
            let beyond_budget = matches!(store, Store::Fifo(_)) && kept + n > budget;
            if beyond_budget
                || !store.has_room_for(n as usize)
                || limiter.as_ref().is_some_and(|l| !l.can_insert(n))
            {
                if !insert_waiting {
                    insert_waiting = true;
                    if let Some(l) = limiter.as_mut() {
                        l.insert_waits += 1;
                    }
                }
                break;
            }
            insert_waiting = false;
            let Some((identity, batch)) = parked.pop_front() else {
                break;
            };
            recorder.record(&batch);
            store.insert(&batch);
            report.inserted += n;
            if let Some(l) = limiter.as_mut() {
                l.inserted(n);
            }
            ingest.send_to(&identity, &Message::Ack, 100)?;
        }
        if req_ready {
            while let Some((identity, env)) = serve.recv(0)? {
                last_heard = Instant::now();
                match env.body {
                    Message::Request { n, .. } if n == 0 || n as usize > store.capacity() => {
                        report.invalid += 1;
                        tracing::warn!(
                            "{me}: dropped a request for {n} trajectories from {} (this buffer \
                             holds at most {}; is its --batch_size the learner's?)",
                            env.sender,
                            store.capacity()
                        );
                    }
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
            if limiter.as_ref().is_some_and(|l| !l.can_sample(p.n as u64)) {
                if !sample_waiting {
                    sample_waiting = true;
                    if let Some(l) = limiter.as_mut() {
                        l.sample_waits += 1;
                    }
                }
                break;
            }
            sample_waiting = false;
            let Some(batch) = store.take(
                p.n,
                p.min_version,
                &mut buffer_rng(cfg.seed, net.id as u64, takes),
            ) else {
                break;
            };
            takes += 1;
            report.served += batch.len() as u64;
            if let Some(l) = limiter.as_mut() {
                l.sampled(batch.len() as u64);
            }
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
    report.limiter = limiter;
    if std::fs::create_dir_all(&cfg.run_dir).is_ok() {
        let path = cfg.run_dir.join(format!("{me}.json"));
        if let Err(e) = std::fs::write(&path, serde_json::to_string_pretty(&report)?) {
            tracing::warn!("{me}: cannot write {}: {e}", path.display());
        }
    }
    tracing::info!(
        "{me}: served {} trajectories, dropped {} messages and {} invalid batches",
        report.served,
        report.dropped,
        report.invalid
    );
    Ok(report)
}
