//! `gfn learner`: one learner replica. Replicas form an MPI world (with the `mpi` feature):
//! rank 0's initial weights are broadcast, gradients are averaged every step, and rank 0
//! publishes the weights to the samplers, validates and writes the metrics.

use super::socket::{Join, Socket};
use super::NetArgs;
use crate::device::with_backend;
use crate::learn::{learn, BatchSource, Leader, WeightSink};
use crate::train::{conclude, finish, open_run_dir, progress_bar, TrainReport};
use crate::validate::Validator;
use anyhow::{bail, ensure, Result};
use gfn_common::pipe::{Delivery, Weights};
use gfn_common::wire::{Message, WireWeights};
use gfn_common::{HyperGrid, RunConfig};
use gfn_learner::{GradientSync, Learner};
use gfn_nn::backend::init_cpu_threads;
use gfn_nn::burn::tensor::backend::AutodiffBackend;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Rank 0's weight publisher; it re-sends the latest weights while waiting, so samplers that
/// join late (or missed a message) catch up.
struct Publisher {
    socket: Socket,
    latest: Option<Message>,
    last_sent: Instant,
}

impl Publisher {
    fn publish(&mut self, w: &Weights) {
        let msg = Message::Weights(WireWeights::from(w));
        if let Err(e) = self.socket.send(&msg, 0) {
            tracing::warn!("cannot publish weights: {e:#}");
        }
        self.latest = Some(msg);
        self.last_sent = Instant::now();
    }

    fn republish_if_quiet(&mut self) {
        if self.last_sent.elapsed() > Duration::from_millis(200) {
            if let Some(msg) = &self.latest {
                let _ = self.socket.send(msg, 0);
            }
            self.last_sent = Instant::now();
        }
    }
}

type SharedPublisher = Option<Rc<RefCell<Publisher>>>;

/// Malformed replies in a row before the learner gives up on its buffer.
const MAX_BAD_REPLIES: usize = 100;

struct PublisherSink(SharedPublisher);

impl WeightSink for PublisherSink {
    fn publish(&mut self, weights: Weights) {
        if let Some(p) = &self.0 {
            p.borrow_mut().publish(&weights);
        }
    }
}

/// Asks the buffer for this replica's share of each batch.
struct BufferClient {
    socket: Socket,
    n: u32,
    strict: bool,
    publisher: SharedPublisher,
    received: Vec<(String, u64)>,
    queued: Option<u64>,
    patience: Duration,
    /// To check replies before they reach the learner.
    grid: HyperGrid,
}

impl BufferClient {
    /// Sends one request and waits for its reply; `Ok(None)` on shutdown.
    fn request(&mut self, request: &Message) -> Result<Option<Message>> {
        let start = Instant::now();
        while !self.socket.send(request, 250)? {
            ensure!(
                start.elapsed() < self.patience,
                "the buffer does not take requests"
            );
        }
        loop {
            if let Some(p) = &self.publisher {
                p.borrow_mut().republish_if_quiet();
            }
            match self.socket.recv(100)? {
                Some((_, env)) => match env.body {
                    reply @ Message::Reply { .. } => return Ok(Some(reply)),
                    Message::Shutdown => return Ok(None),
                    _ => {}
                },
                None if start.elapsed() > self.patience => {
                    bail!("no batch from the buffer for {} s", self.patience.as_secs())
                }
                None => {}
            }
        }
    }
}

impl BatchSource for BufferClient {
    fn next_batch(&mut self, version: u64) -> Result<Option<Delivery>> {
        let min_version = if self.strict { version } else { 0 };
        let request = Message::Request {
            n: self.n,
            version,
            min_version,
        };
        // A malformed reply is dropped and the request sent again.
        for _ in 0..MAX_BAD_REPLIES {
            let Some(Message::Reply {
                batch,
                received,
                queued,
            }) = self.request(&request)?
            else {
                return Ok(None);
            };
            let problem = match batch.validate(&self.grid) {
                Err(e) => e.to_string(),
                Ok(()) if batch.len() != self.n as usize => {
                    format!("{} trajectories for a request of {}", batch.len(), self.n)
                }
                Ok(()) => {
                    self.received = received;
                    self.queued = Some(queued);
                    return Ok(Some(Delivery {
                        fresh: batch.clone(),
                        training: batch,
                    }));
                }
            };
            tracing::warn!("dropped a reply of the buffer: {problem}");
        }
        bail!("{MAX_BAD_REPLIES} malformed replies in a row from the buffer")
    }

    fn per_sampler(&self) -> Vec<(String, u64)> {
        self.received.clone()
    }

    fn queue_depth(&self) -> Option<u64> {
        self.queued
    }
}

/// This process's replica synchroniser: MPI when built with it, else a world of one.
#[cfg(feature = "mpi")]
fn replica_sync() -> Result<crate::mpi_sync::MpiSync> {
    crate::mpi_sync::MpiSync::init()
}

#[cfg(not(feature = "mpi"))]
fn replica_sync() -> Result<gfn_learner::LocalSync> {
    Ok(gfn_learner::LocalSync)
}

/// Runs one learner replica; rank 0 returns the run's report.
pub fn run(cfg: &RunConfig, net: &NetArgs, progress: bool) -> Result<Option<TrainReport>> {
    cfg.validate()?;
    with_backend!(cfg.device, |L, device| run_on::<L>(
        cfg, net, progress, device
    ))
}

fn run_on<L: AutodiffBackend>(
    cfg: &RunConfig,
    net: &NetArgs,
    progress: bool,
    device: L::Device,
) -> Result<Option<TrainReport>> {
    let mut sync = replica_sync()?;
    let (rank, world) = (sync.rank(), sync.world_size());
    ensure!(
        cfg.batch_size.is_multiple_of(world),
        "--batch_size {} is not divisible by the {world} learners",
        cfg.batch_size
    );
    init_cpu_threads(cfg.threads);
    let me = format!("learner-{rank}");
    let mut learner = Learner::<L>::new(cfg, device)?;
    let mut params = learner.weights().params;
    sync.broadcast(&mut params);
    learner.load_weights(&params)?;

    let ctx = zmq::Context::new();
    let publisher = if rank == 0 {
        let socket = Socket::open(
            &ctx,
            zmq::PUB,
            Join::Bind,
            &net.bind_address(&net.weights),
            &net.run_token,
            &me,
        )?;
        let p = Rc::new(RefCell::new(Publisher {
            socket,
            latest: None,
            last_sent: Instant::now(),
        }));
        p.borrow_mut().publish(&learner.weights());
        Some(p)
    } else {
        None
    };
    let buffer = NetArgs::pick(&net.serve, rank);
    let socket = Socket::open(
        &ctx,
        zmq::DEALER,
        Join::Connect,
        buffer,
        &net.run_token,
        &me,
    )?;
    let mut source = BufferClient {
        socket,
        n: (cfg.batch_size / world) as u32,
        strict: cfg.sync,
        publisher: publisher.clone(),
        received: vec![],
        queued: None,
        patience: Duration::from_secs(net.idle_timeout),
        grid: cfg.grid()?,
    };
    let mut sink = PublisherSink(publisher.clone());
    tracing::info!("{me} of {world}: batches from {buffer}");

    let n_steps = cfg.n_iterations();
    let mut validator = Validator::new(cfg)?;
    let mut files = if rank == 0 {
        Some(open_run_dir(cfg)?)
    } else {
        None
    };
    let bar = progress_bar(progress && rank == 0, n_steps);
    let start = Instant::now();
    let leader = (rank == 0).then_some(Leader {
        validator: &mut validator,
        files: files.as_mut(),
        bar: &bar,
        checkpoint: None,
    });
    let outcome = learn(
        cfg,
        &mut learner,
        &mut source,
        &mut sink,
        &mut sync,
        leader,
        n_steps,
        start,
        None,
    );
    bar.finish_and_clear();
    // Whatever happened, tell the other roles the run is over.
    let _ = source.socket.send(&Message::Shutdown, 500);
    if let Some(p) = &publisher {
        for _ in 0..5 {
            let _ = p.borrow().socket.send(&Message::Shutdown, 0);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let outcome = outcome?;
    if rank != 0 {
        return Ok(None);
    }
    let trajectories = n_steps * cfg.batch_size as u64;
    let report = finish(&learner, outcome, 0.0, start, trajectories);
    conclude(cfg, files.as_mut(), &report, &learner, &validator)?;
    Ok(Some(report))
}
