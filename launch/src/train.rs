//! `gfn train`: the embedded pipeline. The sampler, buffer and learner roles run as threads of
//! one process, joined by bounded channels and a weight board; the learner runs on this thread.

use crate::metrics::{MetricsFile, Summary, TimeSplit, Validation};
use crate::plot;
use crate::validate::Validator;
use anyhow::{Context, Result};
use crossbeam_channel::bounded;
use gfn_buffer::{ReplayBuffer, Selector};
use gfn_common::pipe::{Delivery, Shutdown, WeightBoard};
use gfn_common::RunConfig;
use gfn_learner::{Learner, LocalSync, StepStats};
use gfn_nn::backend::{cpu_device, flush_denormals, init_cpu_threads, Cpu, CpuAutodiff};
use gfn_nn::params;
use gfn_sampler::Sampler;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Arc;
use std::time::Instant;

/// Batches that may wait between two roles: enough to overlap them, small enough to bound memory.
const PIPE_DEPTH: usize = 4;

/// Options of `gfn train` that are not part of the run's configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrainOptions {
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Write metrics, config and plots to the run folder.
    pub write_files: bool,
}

/// Everything a finished run reports.
#[derive(Debug, Clone)]
pub struct TrainReport {
    pub summary: Summary,
    pub validations: Vec<Validation>,
    pub losses: Vec<f32>,
    /// Mean number of states the learner evaluated per step.
    pub rows_per_step: f64,
}

/// Trains as configured and returns the report. The configuration must be valid.
pub fn train(cfg: &RunConfig, opts: TrainOptions) -> Result<TrainReport> {
    cfg.validate()?;
    init_cpu_threads(cfg.threads);
    let device = cpu_device();
    let n_steps = cfg.n_iterations();
    let mut learner = Learner::<CpuAutodiff>::new(cfg, device)?;
    let mut validator = Validator::new(cfg)?;
    let mut sampler = Sampler::<Cpu>::new(cfg, 0, device)?;
    let mut files = if opts.write_files {
        std::fs::create_dir_all(&cfg.run_dir)
            .with_context(|| format!("creating {}", cfg.run_dir.display()))?;
        std::fs::write(cfg.run_dir.join("config.toml"), cfg.to_toml())?;
        Some(MetricsFile::create(&cfg.run_dir.join("metrics.jsonl"))?)
    } else {
        None
    };

    let board = Arc::new(WeightBoard::new(cfg.policy_lag as usize + 2));
    board.publish(learner.weights());
    let shutdown = Shutdown::default();
    let (to_buffer, buffer_in) = bounded(PIPE_DEPTH);
    let (to_learner, learner_in) = bounded::<Delivery>(PIPE_DEPTH);
    let selector = match cfg.replay_buffer_size {
        0 => Selector::OnPolicy,
        n => Selector::Replay(ReplayBuffer::new(n, cfg.replay_policy)),
    };

    let bar = progress_bar(opts.progress, n_steps);
    let start = Instant::now();
    let result = std::thread::scope(|scope| -> Result<_> {
        let sampler_thread = {
            let (board, shutdown, mut sink) = (board.clone(), shutdown.clone(), to_buffer);
            let (batch, lag) = (cfg.batch_size, cfg.policy_lag);
            std::thread::Builder::new()
                .name("sampler".into())
                .spawn_scoped(scope, move || {
                    flush_denormals();
                    gfn_sampler::run(
                        &mut sampler,
                        n_steps,
                        batch,
                        lag,
                        &board,
                        &mut sink,
                        &shutdown,
                    )
                })?
        };
        let buffer_thread = {
            let shutdown = shutdown.clone();
            let (batch, seed) = (cfg.batch_size, cfg.seed);
            std::thread::Builder::new()
                .name("buffer".into())
                .spawn_scoped(scope, move || {
                    gfn_buffer::run(selector, batch, seed, &buffer_in, &to_learner, &shutdown)
                })?
        };
        let outcome = learn(
            cfg,
            &mut learner,
            &mut validator,
            &learner_in,
            &board,
            &bar,
            files.as_mut(),
            start,
        );
        // Stop the other roles whatever happened here, then collect their statistics.
        shutdown.trigger();
        drop(learner_in);
        let sampler_stats = sampler_thread
            .join()
            .map_err(|_| anyhow::anyhow!("sampler thread panicked"))?;
        let _ = buffer_thread
            .join()
            .map_err(|_| anyhow::anyhow!("buffer thread panicked"))?;
        let (validations, losses, time, rows) = outcome?;
        Ok((validations, losses, time, sampler_stats, rows))
    });
    bar.finish_and_clear();
    let (validations, losses, mut time, sampler_stats, rows) = result?;
    let rows_per_step = rows as f64 / n_steps.max(1) as f64;
    time.sample = sampler_stats.sampling.as_secs_f64();
    let wall = start.elapsed().as_secs_f64();
    let trajectories = n_steps * cfg.batch_size as u64;
    let summary = Summary {
        steps: n_steps,
        trajectories,
        wall_s: wall,
        trajectories_per_s: trajectories as f64 / wall,
        steps_per_s: n_steps as f64 / wall,
        time,
        final_validation: validations.last().cloned().unwrap_or_default(),
        params_checksum: format!("{:016x}", params::checksum(&learner.weights().params)),
    };
    if let Some(f) = files.as_mut() {
        f.write("summary", &summary)?;
        if let Err(e) = plot::write_run_plots(
            cfg,
            &validations,
            &losses,
            &learner.inference_net(),
            &validator,
        ) {
            tracing::warn!("could not draw the plots: {e:#}");
        }
    }
    Ok(TrainReport {
        summary,
        validations,
        losses,
        rows_per_step,
    })
}

type LearnOutcome = (Vec<Validation>, Vec<f32>, TimeSplit, u64);

/// The learner's loop: one step per delivered batch, weights published after each step.
#[allow(clippy::too_many_arguments)]
fn learn(
    cfg: &RunConfig,
    learner: &mut Learner<CpuAutodiff>,
    validator: &mut Validator,
    inbox: &crossbeam_channel::Receiver<Delivery>,
    board: &WeightBoard,
    bar: &ProgressBar,
    mut files: Option<&mut MetricsFile>,
    start: Instant,
) -> Result<LearnOutcome> {
    flush_denormals();
    let grid = cfg.grid()?;
    let n_steps = cfg.n_iterations();
    let mut time = TimeSplit::default();
    let (mut validations, mut losses) = (Vec::new(), Vec::with_capacity(n_steps as usize));
    let mut loss_since = (0.0f64, 0u64);
    let mut sync = LocalSync;
    let mut rows = 0u64;
    for step in 0..n_steps {
        let delivery = inbox
            .recv()
            .context("the buffer stopped before the run ended")?;
        delivery
            .training
            .validate(&grid)
            .context("invalid training batch")?;
        let stats: StepStats = learner.step(&delivery.training, &mut sync);
        board.publish(learner.weights());
        validator.observe(&delivery.fresh);
        rows += stats.rows as u64;
        time.prepare += stats.prepare.as_secs_f64();
        time.loss += stats.forward.as_secs_f64();
        time.backward += stats.backward.as_secs_f64();
        time.sync += stats.sync.as_secs_f64();
        time.optimizer += stats.optimizer.as_secs_f64();
        losses.push(stats.loss);
        loss_since.0 += stats.loss as f64;
        loss_since.1 += 1;
        if !stats.loss.is_finite() {
            anyhow::bail!(
                "the loss became {} at step {step}; try a lower --lr or --lr_Z",
                stats.loss
            );
        }
        bar.inc(1);
        if step % cfg.validation_interval == 0 || step + 1 == n_steps {
            let t = Instant::now();
            let net = learner.inference_net();
            let mut v = validator.validate(&net, learner.log_z_estimate(), &cpu_device());
            time.validation += t.elapsed().as_secs_f64();
            v.step = step + 1;
            v.trajectories = (step + 1) * cfg.batch_size as u64;
            v.wall_s = start.elapsed().as_secs_f64();
            v.loss = loss_since.0 / loss_since.1.max(1) as f64;
            v.trajectories_per_s = v.trajectories as f64 / v.wall_s;
            loss_since = (0.0, 0);
            report(&v, bar);
            if let Some(f) = files.as_deref_mut() {
                f.write("validation", &v)?;
            }
            validations.push(v);
        }
    }
    Ok((validations, losses, time, rows))
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.4}"))
}

fn report(v: &Validation, bar: &ProgressBar) {
    let line = format!(
        "step {} traj {} loss {:.4} exact_l1 {} sampled_l1 {} paper_l1 {} logZ {} (err {}) modes {}/{} traj/s {:.0}",
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

fn progress_bar(show: bool, n: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(n);
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} steps {per_sec} {msg} ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
