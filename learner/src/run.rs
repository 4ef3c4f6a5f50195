//! The learner's loop, the same in `gfn train` (a channel buffer), `gfn learner` (a buffer over
//! ZeroMQ, replicas over MPI) and `gfn replay` (a recording): take a batch, step, validate and
//! checkpoint through the host, publish the weights.

use crate::host::{LearnerHost, ValidationPoint};
use crate::learner::{GradientSync, Learner};
use crate::log::{TrainLog, Window};
use gfn_common::pipe::Shutdown;
use gfn_common::seam::{BatchSource, PipeError, WeightSink};
use gfn_nn::burn::tensor::backend::AutodiffBackend;
use gfn_nn::params;
use std::time::Instant;

/// Which steps to run, and how often to validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Steps in the whole run.
    pub n_steps: u64,
    /// Validate when `step % validation_interval == 0` and at the last step.
    pub validation_interval: u64,
    /// Trajectories per step, all replicas together.
    pub batch_size: u64,
}

impl Plan {
    /// The plan of a run as configured.
    pub fn for_run(cfg: &gfn_common::RunConfig) -> Self {
        Self {
            n_steps: cfg.n_iterations(),
            validation_interval: cfg.validation_interval,
            batch_size: cfg.batch_size as u64,
        }
    }
}

/// How the loop ended.
#[derive(Debug)]
pub struct LoopOutcome {
    pub log: TrainLog,
    /// A stop was asked for (SIGINT, SIGTERM) before the last step; a checkpoint was written if
    /// the host keeps them.
    pub stopped: bool,
}

/// Why the loop could not finish.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error("the batch source: {0}")]
    Source(#[from] PipeError),
    #[error("the buffer stopped before the run ended (step {0})")]
    SourceEnded(u64),
    #[error("invalid training batch: {0}")]
    InvalidBatch(String),
    #[error("the loss became {loss} at step {step}; try a lower --lr or --lr_Z")]
    NotFinite { step: u64, loss: f32 },
    #[error("{0}")]
    Host(crate::host::HostError),
}

/// Runs learner steps from `log.step` up to `plan.n_steps`, or until `stop` is set. Every
/// replica calls this with its own `host` (rank 0's validates and checkpoints); `sink` is used
/// on rank 0 only. The stop is agreed on by all replicas, so they leave at the same step.
#[allow(clippy::too_many_arguments)]
pub fn run_steps<B: AutodiffBackend>(
    learner: &mut Learner<B>,
    source: &mut impl BatchSource,
    sink: &mut impl WeightSink,
    sync: &mut impl GradientSync,
    host: &mut impl LearnerHost<B>,
    plan: Plan,
    mut log: TrainLog,
    stop: &Shutdown,
) -> Result<LoopOutcome, LearnError> {
    gfn_nn::backend::flush_denormals();
    let start = Instant::now();
    let grid = *learner.grid();
    let mut window = Window::default();
    let world = sync.world_size() as u64;
    let mut trajectories = log.step * plan.batch_size;
    let mut stopped = false;
    for step in log.step..plan.n_steps {
        // A source gives up waiting once a stop is asked for. Whether to go on is agreed by all
        // replicas after each has its batch: one that stops while another steps would leave
        // that one waiting in the all-reduce forever.
        let delivery = match stop.is_set() {
            true => None,
            false => source.next_batch(learner.version())?,
        };
        if sync.agree_to_stop(delivery.is_none()) {
            if delivery.is_none() && !stop.is_set() {
                return Err(LearnError::SourceEnded(step));
            }
            stopped = true;
            break;
        }
        let Some(delivery) = delivery else {
            return Err(LearnError::SourceEnded(step));
        };
        delivery
            .training
            .validate(&grid)
            .map_err(|e| LearnError::InvalidBatch(e.to_string()))?;
        window.observe_batch(learner.version(), &delivery.training);
        host.observe(&delivery);
        let stats = learner.step(&delivery.training, sync);
        trajectories += delivery.training.len() as u64 * world;
        log.time.add(&stats);
        log.rows += stats.rows as u64;
        log.losses.push(stats.loss);
        log.step = step + 1;
        window.observe_step(stats.loss, learner.log_z_param());
        if !stats.loss.is_finite() {
            return Err(LearnError::NotFinite {
                step,
                loss: stats.loss,
            });
        }
        host.stepped(log.step);
        if step % plan.validation_interval == 0 || step + 1 == plan.n_steps {
            // Every replica takes part in the checksum gather; rank 0's host does the rest.
            let checksums = sync.gather(params::checksum(&learner.weights().params));
            let at = ValidationPoint {
                step: log.step,
                learner,
                checksums,
                trajectories,
                wall_s: log.wall_before_s + start.elapsed().as_secs_f64(),
                loss: window.mean_loss(),
                log_z_mean: window.mean_log_z(),
                lag: window.lag(),
                per_sampler: source.per_sampler(),
                queue_depth: source.queue_depth(),
            };
            host.validate(at).map_err(LearnError::Host)?;
            window = Window::default();
        }
        // Before the new weights go out: with policy lag 0 nothing else has moved yet, so the
        // checkpoint is a consistent cut of the whole pipeline. The last step always writes
        // one, so that `gfn sample` and `gfn export` read the final parameters.
        if host.checkpoint_due(log.step) || log.step == plan.n_steps {
            checkpoint(host, learner, &log, source, start)?;
        }
        if sync.rank() == 0 {
            sink.publish(learner.weights());
        }
    }
    if stopped {
        checkpoint(host, learner, &log, source, start)?;
    }
    log.wall_before_s += start.elapsed().as_secs_f64();
    Ok(LoopOutcome { log, stopped })
}

/// Hands the host a checkpoint with the wall time of this session included.
fn checkpoint<B: AutodiffBackend>(
    host: &mut impl LearnerHost<B>,
    learner: &Learner<B>,
    log: &TrainLog,
    source: &impl BatchSource,
    start: Instant,
) -> Result<(), LearnError> {
    let mut at = log.clone();
    at.wall_before_s += start.elapsed().as_secs_f64();
    host.checkpoint(learner, &at, source.snapshot())
        .map_err(LearnError::Host)
}
