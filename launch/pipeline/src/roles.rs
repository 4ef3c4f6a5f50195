//! The roles as processes: `gfn sampler`, `gfn buffer` and `gfn learner` over ZeroMQ. Each
//! runs its role crate's loop with the `gfn-net` adapters as its pipes.

use crate::device::with_backend;
use anyhow::{ensure, Context, Result};
use gfn_buffer::dump::Dump;
use gfn_buffer::net::{serve, write_report, BufferSockets};
use gfn_buffer::{new_core, BufferReport, Hosting};
use gfn_common::config::Settings;
use gfn_common::pipe::{Shutdown, WeightBoard};
use gfn_common::RunConfig;
use gfn_host::session::{Finish, Session};
use gfn_host::{HostOptions, TrainReport};
use gfn_learner::{GradientSync, Learner};
use gfn_net::learner::{BufferClient, Publisher, PublisherSink};
use gfn_net::sampler::{receive_weights, BufferSink};
use gfn_net::{Join, NetArgs, Socket};
use gfn_nn::backend::init_cpu_threads;
use gfn_nn::burn::tensor::backend::{AutodiffBackend, Backend};
use gfn_sampler::{Sampler, SamplerStats, WeightPolicy};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

/// Runs `count` samplers (ids `--id` to `--id + count − 1`) until the learner ends the run, the
/// run goes quiet, or `stop` is set. They share one weight subscription and one board, so the
/// learner sends each version once to this process however many samplers it holds (one
/// process per node keeps the learner's fan-out at the node count); each sampler takes the
/// newest version (or, with `--sync`, the exact one) when it starts a batch, and sends to its
/// own buffer (`--ingest`, sampler i to buffer i mod M).
pub fn sampler(
    cfg: &Settings,
    net: &NetArgs,
    count: usize,
    stop: &Shutdown,
) -> Result<SamplerStats> {
    ensure!(count >= 1, "--samplers must be at least 1");
    with_backend!(cfg.device, |L, device| sampler_on::<
        <L as AutodiffBackend>::InnerBackend,
    >(cfg, net, count, stop, device))
}

/// One sampler of this process: its id, its rollouts and its socket to its buffer.
struct SamplerSeat<B: Backend> {
    id: usize,
    sampler: Sampler<B>,
    to_buffer: Socket,
}

fn sampler_on<B: Backend>(
    cfg: &RunConfig,
    net: &NetArgs,
    count: usize,
    stop: &Shutdown,
    device: B::Device,
) -> Result<SamplerStats> {
    init_cpu_threads(cfg.threads);
    let ctx = zmq::Context::new();
    let token = net.run_token()?;
    let name = |id: usize| format!("sampler-{id}");
    let open = |kind, endpoint: &str, id| {
        Socket::open(&ctx, kind, Join::Connect, endpoint, &token, &name(id))
    };
    let sub = open(zmq::SUB, &net.weights, net.id)?;
    let mut seats = Vec::with_capacity(count);
    for id in net.id..net.id + count {
        let buffer = NetArgs::pick(&net.ingest, id);
        tracing::info!(
            "{}: weights from {}, trajectories to {buffer}",
            name(id),
            net.weights
        );
        seats.push(SamplerSeat {
            id,
            sampler: Sampler::<B>::new(cfg, id as u64, device.clone())?,
            to_buffer: open(zmq::DEALER, buffer, id)?,
        });
    }
    let board = WeightBoard::new(4);
    // Strict on-policy samples batch k with weights k; otherwise the newest weights.
    let policy = match cfg.sync {
        true => WeightPolicy::exact(0),
        false => WeightPolicy::Latest,
    };
    let idle = Duration::from_secs(net.idle_timeout);
    let resend = Duration::from_secs(net.resend_after);
    let n_params = seats[0].sampler.num_params();
    let results = std::thread::scope(|scope| {
        let (b, s) = (&board, stop.clone());
        scope.spawn(move || receive_weights(sub, b, n_params, &s, idle));
        let running: Vec<_> = seats
            .into_iter()
            .map(|mut seat| {
                let (board, policy) = (&board, &policy);
                scope.spawn(move || {
                    let mut sink = BufferSink::new(seat.to_buffer, stop.clone(), resend);
                    let stats = gfn_sampler::run(
                        &mut seat.sampler,
                        0,
                        None,
                        cfg.batch_size,
                        policy,
                        board,
                        &mut sink,
                        stop,
                    );
                    // One sampler that fails ends the others and the subscription.
                    if stats.is_err() {
                        stop.trigger();
                    }
                    (seat.id, stats)
                })
            })
            .collect();
        let results: Vec<_> = running.into_iter().map(|t| t.join()).collect();
        stop.trigger();
        results
    });
    let mut total = SamplerStats::default();
    for result in results {
        let (id, stats) = result.map_err(|_| anyhow::anyhow!("a sampler thread panicked"))?;
        let stats = stats.with_context(|| format!("{} stopped", name(id)))?;
        tracing::info!(
            "{}: sent {} trajectories in {} batches",
            name(id),
            stats.trajectories,
            stats.batches
        );
        total.add(&stats);
    }
    Ok(total)
}

/// Runs one buffer until a learner says the run is over, nothing is heard for the idle timeout,
/// or `stop` is set. With `load`, the buffer starts out holding the recording in that folder.
pub fn buffer(
    cfg: &Settings,
    net: &NetArgs,
    load: Option<&Path>,
    stop: &Shutdown,
) -> Result<BufferReport> {
    ensure!(
        net.id < net.ingest.len() && net.id < net.serve.len(),
        "--id {} has no --ingest/--serve endpoint",
        net.id
    );
    let id = net.id as u64;
    let me = format!("buffer-{id}");
    let mut core = new_core(&cfg.buffer(), &cfg.env(), Hosting::Process { id })?;
    if let Some(dir) = load {
        let dump = Dump::read(dir)?;
        dump.check_env(&cfg.env())?;
        crate::replay::describe(dir, &dump);
        for b in &dump.batches {
            core.preload(b);
        }
        let loaded = core.report().loaded;
        tracing::info!(
            "{me}: serving {loaded} recorded trajectories from {}",
            dir.display()
        );
    }
    let ctx = zmq::Context::new();
    let token = net.run_token()?;
    let bind = |ep: &str| {
        let address = net.bind_address(ep);
        Socket::open(&ctx, zmq::ROUTER, Join::Bind, &address, &token, &me)
    };
    let mut sockets = BufferSockets {
        ingest: bind(&net.ingest[net.id])?,
        serve: bind(&net.serve[net.id])?,
    };
    tracing::info!(
        "{me}: samplers send to {}, learners ask at {}",
        net.ingest[net.id],
        net.serve[net.id]
    );
    let idle = Duration::from_secs(net.idle_timeout);
    let ending = serve(&mut core, &mut sockets, idle, stop);
    let report = core.finish();
    write_report(&cfg.run_dir, id, &report);
    tracing::info!(
        "{me}: served {} trajectories, dropped {} messages and {} invalid batches ({ending:?})",
        report.served,
        report.dropped,
        report.invalid
    );
    ending?;
    Ok(report)
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

/// Runs one learner replica until the run's budget is trained or `stop` is set; rank 0 returns
/// the run's report.
pub fn learner(
    cfg: &Settings,
    net: &NetArgs,
    opts: HostOptions,
    stop: &Shutdown,
) -> Result<Option<TrainReport>> {
    with_backend!(cfg.device, |L, device| learner_on::<L>(
        cfg, net, opts, stop, device
    ))
}

fn learner_on<L: AutodiffBackend>(
    cfg: &Settings,
    net: &NetArgs,
    opts: HostOptions,
    stop: &Shutdown,
    device: L::Device,
) -> Result<Option<TrainReport>> {
    let mut sync = replica_sync()?;
    let (rank, world) = (sync.rank(), sync.world_size());
    let batch = cfg.batch_per_learner(world)?;
    init_cpu_threads(cfg.threads);
    let mut session = Session::<L>::open(cfg, opts, device, &mut sync)?;
    let mut pipes = LearnerPipes::open(cfg, net, (rank, world), batch, session.learner(), stop)?;
    session.restore_source(&mut pipes.client)?;
    let mut sink = PublisherSink(pipes.publisher.clone());
    let result = session
        .run(&mut pipes.client, &mut sink, &mut sync, stop)
        .and_then(|outcome| {
            let losses = gfn_common::seam::BatchSource::losses(&pipes.client);
            let finish = Finish {
                losses,
                weight_bytes: pipes.publisher.as_ref().map(|p| p.borrow().bytes_out()),
                ..Finish::default()
            };
            session.finish(outcome, finish)
        });
    // A finished or failed run ends the other roles; a stopped one leaves them waiting for the
    // learner to resume.
    if !stop.is_set() {
        pipes.shutdown();
    }
    Ok(result?)
}

/// A learner replica's sockets: its buffer, and on rank 0 the weight publisher.
struct LearnerPipes {
    client: BufferClient,
    publisher: Option<Rc<RefCell<Publisher>>>,
}

impl LearnerPipes {
    fn open<B: AutodiffBackend>(
        cfg: &RunConfig,
        net: &NetArgs,
        (rank, world): (usize, usize),
        batch: usize,
        learner: &Learner<B>,
        stop: &Shutdown,
    ) -> Result<Self> {
        let me = format!("learner-{rank}");
        let ctx = zmq::Context::new();
        let token = net.run_token()?;
        let publisher = match rank {
            0 => {
                let address = net.bind_address(&net.weights);
                let socket = Socket::open(&ctx, zmq::XPUB, Join::Bind, &address, &token, &me)?;
                let p = Rc::new(RefCell::new(Publisher::new(socket)));
                gfn_common::seam::WeightSink::publish(
                    &mut PublisherSink(Some(p.clone())),
                    learner.weights(),
                );
                Some(p)
            }
            _ => None,
        };
        let buffer = NetArgs::pick(&net.serve, rank);
        let socket = Socket::open(&ctx, zmq::DEALER, Join::Connect, buffer, &token, &me)?;
        let client = BufferClient::new(
            socket,
            batch as u32,
            cfg.sync,
            publisher.clone(),
            Duration::from_secs(net.idle_timeout),
            Duration::from_secs(net.resend_after),
            cfg.grid()?,
        )
        .stopping_on(stop.clone());
        tracing::info!("{me} of {world}: batches from {buffer}");
        Ok(Self { client, publisher })
    }

    fn shutdown(&self) {
        self.client.shutdown();
        if let Some(p) = &self.publisher {
            p.borrow().shutdown();
        }
    }
}
