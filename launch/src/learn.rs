//! The learner role's loop, shared by `gfn train` (channels, one process) and `gfn learner`
//! (ZeroMQ and MPI): take a batch, step, publish the weights, validate on rank 0.

use crate::checkpoint::{self, Checkpoint};
use crate::metrics::{MetricsFile, TimeSplit, Validation};
use crate::validate::Validator;
use anyhow::{Context, Result};
use gfn_buffer::Store;
use gfn_common::pipe::{Delivery, WeightBoard, Weights};
use gfn_common::RunConfig;
use gfn_learner::{GradientSync, Learner, StepStats};
use gfn_nn::backend::cpu_device;
use gfn_nn::burn::tensor::backend::AutodiffBackend;
use gfn_nn::params;
use indicatif::ProgressBar;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// Where the learner's training batches come from.
pub trait BatchSource {
    /// The next batch for a learner at weight version `version`; `None` when the source closed.
    fn next_batch(&mut self, version: u64) -> Result<Option<Delivery>>;
    /// Trajectories received so far from each sampler, when the source knows.
    fn per_sampler(&self) -> Vec<(String, u64)> {
        vec![]
    }
    /// Trajectories waiting at the source after the last batch, when it knows.
    fn queue_depth(&self) -> Option<u64> {
        None
    }
}

impl BatchSource for crossbeam_channel::Receiver<Delivery> {
    fn next_batch(&mut self, _version: u64) -> Result<Option<Delivery>> {
        Ok(self.recv().ok())
    }

    fn queue_depth(&self) -> Option<u64> {
        Some(self.len() as u64)
    }
}

/// Where rank 0 publishes new weights.
pub trait WeightSink {
    /// Makes `weights` available to the samplers.
    fn publish(&mut self, weights: Weights);
}

impl WeightSink for &WeightBoard {
    fn publish(&mut self, weights: Weights) {
        WeightBoard::publish(self, weights)
    }
}

/// What the loop produced.
pub struct LearnOutcome {
    pub validations: Vec<Validation>,
    pub losses: Vec<f32>,
    pub time: TimeSplit,
    /// Distinct states evaluated, summed over steps.
    pub rows: u64,
}

/// Rank-0 duties: validation, metrics, progress, checkpoints.
pub struct Leader<'a> {
    pub validator: &'a mut Validator,
    pub files: Option<&'a mut MetricsFile>,
    pub bar: &'a ProgressBar,
    pub checkpoint: Option<Checkpointer<'a>>,
}

/// Policy lag (learner version − trajectory version) since the last validation.
#[derive(Default)]
struct LagWindow {
    min: Option<u64>,
    max: u64,
    sum: u64,
    n: u64,
}

impl LagWindow {
    fn observe(&mut self, version: u64, batch: &gfn_common::TrajectoryBatch) {
        for &v in &batch.versions {
            let lag = version.saturating_sub(v);
            self.min = Some(self.min.map_or(lag, |m| m.min(lag)));
            self.max = self.max.max(lag);
            self.sum += lag;
            self.n += 1;
        }
    }
}

/// Trajectories/s of each sampler between two validations.
#[derive(Default)]
struct SamplerRates {
    last: Vec<(String, u64)>,
    last_s: f64,
}

impl SamplerRates {
    fn update(&mut self, now: &[(String, u64)], wall_s: f64) -> Vec<(String, f64)> {
        let dt = (wall_s - self.last_s).max(1e-9);
        let rates = now
            .iter()
            .map(|(who, n)| {
                let before = self
                    .last
                    .iter()
                    .find(|(w, _)| w == who)
                    .map_or(0, |(_, b)| *b);
                (who.clone(), n.saturating_sub(before) as f64 / dt)
            })
            .collect();
        self.last = now.to_vec();
        self.last_s = wall_s;
        rates
    }
}

/// Where and how often rank 0 writes checkpoints, and the buffer store they include.
pub struct Checkpointer<'a> {
    pub dir: &'a Path,
    pub every: u64,
    pub store: &'a Mutex<Store>,
}

/// The state of a run resumed from a checkpoint.
pub struct Resume {
    pub step: u64,
    pub losses: Vec<f32>,
    pub validations: Vec<Validation>,
    pub time: TimeSplit,
    pub wall_s: f64,
}

/// Runs learner steps up to `n_steps` (from the resumed step, else 0). Every replica calls this;
/// `leader` is `Some` on rank 0 only.
#[allow(clippy::too_many_arguments)]
pub fn learn<B: AutodiffBackend>(
    cfg: &RunConfig,
    learner: &mut Learner<B>,
    source: &mut impl BatchSource,
    sink: &mut impl WeightSink,
    sync: &mut impl GradientSync,
    mut leader: Option<Leader<'_>>,
    n_steps: u64,
    start: Instant,
    resume: Option<Resume>,
) -> Result<LearnOutcome> {
    gfn_nn::backend::flush_denormals();
    let grid = cfg.grid()?;
    let resume = resume.unwrap_or(Resume {
        step: 0,
        losses: vec![],
        validations: vec![],
        time: TimeSplit::default(),
        wall_s: 0.0,
    });
    let first_step = resume.step;
    let wall = |start: Instant| resume.wall_s + start.elapsed().as_secs_f64();
    let mut out = LearnOutcome {
        validations: resume.validations.clone(),
        losses: resume.losses.clone(),
        time: resume.time,
        rows: 0,
    };
    let mut loss_since = (0.0f64, 0u64);
    let mut log_z_since = (0.0f64, 0u64);
    let mut lag = LagWindow::default();
    let mut rates = SamplerRates::default();
    let mut trajectories = first_step * cfg.batch_size as u64;
    if let Some(leader) = leader.as_mut() {
        leader.bar.set_position(first_step);
    }
    for step in first_step..n_steps {
        let delivery = source
            .next_batch(learner.version())?
            .context("the buffer stopped before the run ended")?;
        delivery
            .training
            .validate(&grid)
            .context("invalid training batch")?;
        lag.observe(learner.version(), &delivery.training);
        let stats: StepStats = learner.step(&delivery.training, sync);
        trajectories += delivery.training.len() as u64 * sync.world_size() as u64;
        add_time(&mut out.time, &stats);
        out.rows += stats.rows as u64;
        out.losses.push(stats.loss);
        loss_since.0 += stats.loss as f64;
        loss_since.1 += 1;
        if let Some(z) = learner.log_z_param() {
            log_z_since.0 += z as f64;
            log_z_since.1 += 1;
        }
        if !stats.loss.is_finite() {
            anyhow::bail!(
                "the loss became {} at step {step}; try a lower --lr or --lr_Z",
                stats.loss
            );
        }
        let validating = step % cfg.validation_interval == 0 || step + 1 == n_steps;
        // Every replica takes part in the checksum gather; rank 0 does the rest.
        let checksums =
            validating.then(|| sync.gather(params::checksum(&learner.weights().params)));
        if let Some(leader) = leader.as_mut() {
            leader.validator.observe(&delivery.fresh);
            leader.bar.inc(1);
            if let Some(checksums) = checksums {
                let t = Instant::now();
                let net = learner.cpu_net();
                let log_z_mean = (log_z_since.1 > 0).then(|| log_z_since.0 / log_z_since.1 as f64);
                let mut v = leader.validator.validate(
                    &net,
                    learner.log_z_estimate(),
                    log_z_mean,
                    step,
                    &cpu_device(),
                );
                out.time.validation += t.elapsed().as_secs_f64();
                v.step = step + 1;
                v.trajectories = trajectories;
                v.wall_s = wall(start);
                v.loss = loss_since.0 / loss_since.1.max(1) as f64;
                v.trajectories_per_s = v.trajectories as f64 / v.wall_s;
                v.checksums = checksums.iter().map(|c| format!("{c:016x}")).collect();
                v.lag_min = lag.min;
                v.lag_max = (lag.n > 0).then_some(lag.max);
                v.lag_mean = (lag.n > 0).then(|| lag.sum as f64 / lag.n as f64);
                v.per_sampler = source.per_sampler();
                v.per_sampler_rate = rates.update(&v.per_sampler, v.wall_s);
                v.queue_depth = source.queue_depth();
                lag = LagWindow::default();
                loss_since = (0.0, 0);
                log_z_since = (0.0, 0);
                report(&v, leader.bar);
                if let Some(f) = leader.files.as_deref_mut() {
                    f.write("validation", &v)?;
                }
                out.validations.push(v);
            }
            // Before the new weights go out: with policy lag 0 nothing else has moved yet, so
            // the checkpoint is a consistent cut of the whole pipeline.
            if let Some(ck) = &leader.checkpoint {
                if (step + 1) % ck.every == 0 && step + 1 < n_steps {
                    let saved = Checkpoint {
                        config: cfg.clone(),
                        step: step + 1,
                        params: learner.weights().params,
                        optim: learner.optimizer().clone(),
                        store: ck.store.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                        visits: leader.validator.visits().clone(),
                        losses: out.losses.clone(),
                        validations: out.validations.clone(),
                        time: out.time,
                        wall_s: wall(start),
                    };
                    checkpoint::save(ck.dir, &saved)?;
                }
            }
        }
        if sync.rank() == 0 {
            sink.publish(learner.weights());
        }
    }
    Ok(out)
}

fn add_time(t: &mut TimeSplit, s: &StepStats) {
    t.prepare += s.prepare.as_secs_f64();
    t.loss += s.forward.as_secs_f64();
    t.backward += s.backward.as_secs_f64();
    t.sync += s.sync.as_secs_f64();
    t.optimizer += s.optimizer.as_secs_f64();
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.4}"))
}

fn report(v: &Validation, bar: &ProgressBar) {
    let lag = match (v.lag_min, v.lag_mean, v.lag_max) {
        (Some(a), Some(m), Some(b)) if b > 0 => format!(" lag {a}/{m:.1}/{b}"),
        _ => String::new(),
    };
    let line = format!(
        "step {} traj {} loss {:.4} exact_l1 {} sampled_l1 {} paper_l1 {} logZ {} (err {}) modes {}/{} traj/s {:.0}{lag}",
        v.step,
        v.trajectories,
        v.loss,
        fmt_opt(v.exact_l1),
        fmt_opt(v.sampled_l1),
        v.paper_l1.map_or_else(|| "-".into(), |x| format!("{x:.2e}")),
        fmt_opt(v.log_z),
        fmt_opt(v.log_z_error),
        v.modes_found,
        v.n_modes.map_or_else(|| "?".into(), |n| n.to_string()),
        v.trajectories_per_s,
    );
    bar.suspend(|| tracing::info!("{line}"));
    bar.set_message(format!("L1 {}", fmt_opt(v.exact_l1)));
}
