//! `gfn train`: the embedded pipeline. The sampler, buffer and learner roles run as threads of
//! one process, joined by bounded channels and a weight board; the learner runs on this thread.

use crate::checkpoint::{self, Checkpoint};
use crate::device::with_backend;
use crate::learn::{learn, Checkpointer, Leader, LearnOutcome, Resume};
use crate::metrics::{MetricsFile, Summary, Validation};
use crate::plot;
use crate::validate::Validator;
use anyhow::{Context, Result};
use crossbeam_channel::bounded;
use gfn_buffer::dump::{DumpWriter, EnvSpec};
use gfn_buffer::{Fifo, Recorder, ReplayBuffer, Store};
use gfn_common::pipe::{Delivery, Shutdown, WeightBoard};
use gfn_common::RunConfig;
use gfn_learner::{Learner, LocalSync};
use gfn_nn::backend::{init_cpu_threads, role_pool};
use gfn_nn::burn::tensor::backend::AutodiffBackend;
use gfn_nn::params;
use gfn_sampler::{Sampler, WeightPolicy};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::sync::{Arc, Mutex};
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
    /// Mean number of distinct states the learner evaluated per step.
    pub rows_per_step: f64,
}

/// The buffer store of a run: a FIFO queue on-policy, a replay buffer with `--replay_buffer_size`.
pub fn new_store(cfg: &RunConfig) -> Store {
    match cfg.replay_buffer_size {
        0 => Store::Fifo(Fifo::new(cfg.batch_size * 2)),
        n => {
            let mut rb = ReplayBuffer::new(n, cfg.replay_policy);
            rb.prioritized_sampling = cfg.prioritized_sampling;
            rb.max_times_sampled = cfg.max_times_sampled;
            Store::Replay(rb)
        }
    }
}

/// The recorder of a run: a dump writer with `--record`, else nothing.
pub fn new_recorder(cfg: &RunConfig, who: &str) -> Result<Recorder> {
    let Some(dir) = &cfg.record else {
        return Ok(Recorder::default());
    };
    let run_id = format!("{who}-seed{}-{}", cfg.seed, cfg.run_dir.display());
    let writer = DumpWriter::create(dir, EnvSpec::of(cfg), &run_id, DUMP_SEGMENT_BYTES)?;
    tracing::info!("recording trajectories into {}", dir.display());
    Ok(Recorder::new(Some(writer)))
}

/// Size at which a recording starts a new segment.
pub const DUMP_SEGMENT_BYTES: u64 = 64 << 20;

/// Creates the run folder with its config and an empty metrics file.
pub fn open_run_dir(cfg: &RunConfig) -> Result<MetricsFile> {
    open_run_dir_at(cfg, &[])
}

/// Like [`open_run_dir`], starting the metrics with `earlier` validations: a resumed run
/// rewrites those of its checkpoint, so that validations written after the checkpoint (and
/// made again) do not appear twice.
fn open_run_dir_at(cfg: &RunConfig, earlier: &[Validation]) -> Result<MetricsFile> {
    std::fs::create_dir_all(&cfg.run_dir)
        .with_context(|| format!("creating {}", cfg.run_dir.display()))?;
    std::fs::write(cfg.run_dir.join("config.toml"), cfg.to_toml()?)?;
    let path = cfg.run_dir.join("metrics.jsonl");
    let context = || format!("writing metrics in {}", cfg.run_dir.display());
    let mut file = MetricsFile::create(&path).with_context(context)?;
    for v in earlier {
        file.write("validation", v).with_context(context)?;
    }
    Ok(file)
}

/// The checkpoint to resume from, when `--resume` finds one.
fn resume_point(cfg: &RunConfig) -> Result<Option<Checkpoint>> {
    let (true, Some(dir)) = (cfg.resume, &cfg.checkpoint_dir) else {
        return Ok(None);
    };
    let Some(ck) = checkpoint::load(dir)? else {
        tracing::info!(
            "no checkpoint in {} yet: starting from scratch",
            dir.display()
        );
        return Ok(None);
    };
    checkpoint::check_compatible(&ck.config, cfg)?;
    tracing::info!(
        "resuming from the checkpoint at step {} in {}",
        ck.step,
        dir.display()
    );
    Ok(Some(ck))
}

/// Trains as configured and returns the report.
pub fn train(cfg: &RunConfig, opts: TrainOptions) -> Result<TrainReport> {
    cfg.validate()?;
    with_backend!(cfg.device, |L, device| train_on::<L>(cfg, opts, device))
}

/// [`train`] with the learner on backend `L` and the sampler on its inference backend.
fn train_on<L: AutodiffBackend>(
    cfg: &RunConfig,
    opts: TrainOptions,
    device: L::Device,
) -> Result<TrainReport> {
    init_cpu_threads(cfg.threads);
    let n_steps = cfg.n_iterations();
    let mut learner = Learner::<L>::new(cfg, device.clone())?;
    let mut validator = Validator::new(cfg)?;
    let mut sampler = Sampler::<L::InnerBackend>::new(cfg, 0, device)?;
    let checkpoint = resume_point(cfg)?;
    let mut store = new_store(cfg);
    let mut resume = None;
    if let Some(ck) = checkpoint {
        let damaged = |what: String| anyhow::anyhow!("the checkpoint is inconsistent: {what}");
        ck.store
            .check(&cfg.grid()?)
            .map_err(|e| damaged(format!("its buffer: {e}")))?;
        ck.optim.check(ck.params.len()).map_err(damaged)?;
        learner.restore(&ck.params, ck.optim, ck.step)?;
        validator.restore(ck.visits).map_err(damaged)?;
        store = ck.store;
        resume = Some(Resume {
            step: ck.step,
            losses: ck.losses,
            validations: ck.validations,
            time: ck.time,
            wall_s: ck.wall_s,
        });
    }
    let first_step = resume.as_ref().map_or(0, |r| r.step);
    // Before the run folder: a refused recording must not leave an emptied metrics file.
    let mut recorder = new_recorder(cfg, "train")?;
    let mut files = if opts.write_files {
        let earlier = resume.as_ref().map_or(&[][..], |r| &r.validations[..]);
        Some(open_run_dir_at(cfg, earlier)?)
    } else {
        None
    };

    let board = Arc::new(WeightBoard::new(cfg.policy_lag as usize + 2));
    board.publish(learner.weights());
    let shutdown = Shutdown::default();
    let (to_buffer, buffer_in) = bounded(PIPE_DEPTH);
    let (to_learner, mut learner_in) = bounded::<Delivery>(PIPE_DEPTH);
    let store = Mutex::new(store);

    let bar = progress_bar(opts.progress, n_steps);
    let start = Instant::now();
    let result = std::thread::scope(|scope| -> Result<_> {
        let sampler_thread = {
            let (board, shutdown, mut sink) = (board.clone(), shutdown.clone(), to_buffer);
            let (batch, threads) = (cfg.batch_size, cfg.threads);
            let policy = WeightPolicy::Exact {
                lag: cfg.policy_lag,
            };
            std::thread::Builder::new()
                .name("sampler".into())
                .spawn_scoped(scope, move || {
                    role_pool(threads).install(|| {
                        gfn_sampler::run(
                            &mut sampler,
                            first_step,
                            Some(n_steps),
                            batch,
                            policy,
                            &board,
                            &mut sink,
                            &shutdown,
                        )
                    })
                })?
        };
        let buffer_thread = {
            let (shutdown, store) = (shutdown.clone(), &store);
            let (batch, seed) = (cfg.batch_size, cfg.seed);
            std::thread::Builder::new()
                .name("buffer".into())
                .spawn_scoped(scope, move || {
                    let stats = gfn_buffer::run(
                        store,
                        first_step,
                        &mut recorder,
                        batch,
                        seed,
                        &buffer_in,
                        &to_learner,
                        &shutdown,
                    );
                    recorder.finish();
                    stats
                })?
        };
        let checkpoint = cfg.checkpoint_dir.as_deref().map(|dir| Checkpointer {
            dir,
            every: cfg.checkpoint_every,
            store: &store,
        });
        let leader = Leader {
            validator: &mut validator,
            files: files.as_mut(),
            bar: &bar,
            checkpoint,
        };
        let mut sink = &*board;
        let outcome = role_pool(cfg.threads).install(|| {
            learn(
                cfg,
                &mut learner,
                &mut learner_in,
                &mut sink,
                &mut LocalSync,
                Some(leader),
                n_steps,
                start,
                resume,
            )
        });
        // Stop the other roles whatever happened here, then collect their statistics.
        shutdown.trigger();
        drop(learner_in);
        // A sampler failure comes first: it is why the learner ran out of batches.
        let sampler_stats = sampler_thread
            .join()
            .map_err(|_| anyhow::anyhow!("sampler thread panicked"))?
            .context("the sampler cannot use the published weights")?;
        buffer_thread
            .join()
            .map_err(|_| anyhow::anyhow!("buffer thread panicked"))?;
        Ok((outcome?, sampler_stats.sampling.as_secs_f64()))
    });
    bar.finish_and_clear();
    let (outcome, sampling) = result?;
    let report = finish(
        &learner,
        outcome,
        sampling,
        start,
        n_steps * cfg.batch_size as u64,
    );
    conclude(cfg, files.as_mut(), &report, &learner, &validator)?;
    Ok(report)
}

/// Writes the summary line and the plots of a finished run, when it writes files.
pub fn conclude(
    cfg: &RunConfig,
    files: Option<&mut MetricsFile>,
    report: &TrainReport,
    learner: &Learner<impl AutodiffBackend>,
    validator: &Validator,
) -> Result<()> {
    if let Some(f) = files {
        f.write("summary", &report.summary)?;
        write_plots(cfg, report, learner, validator);
    }
    Ok(())
}

/// Builds the report of a finished run.
pub fn finish(
    learner: &Learner<impl AutodiffBackend>,
    outcome: LearnOutcome,
    sampling_s: f64,
    start: Instant,
    trajectories: u64,
) -> TrainReport {
    let LearnOutcome {
        validations,
        losses,
        mut time,
        rows,
    } = outcome;
    time.sample = sampling_s;
    let wall = start.elapsed().as_secs_f64();
    let steps = losses.len() as u64;
    let summary = Summary {
        steps,
        trajectories,
        wall_s: wall,
        trajectories_per_s: trajectories as f64 / wall,
        steps_per_s: steps as f64 / wall,
        time,
        final_validation: validations.last().cloned().unwrap_or_default(),
        params_checksum: format!("{:016x}", params::checksum(&learner.weights().params)),
    };
    TrainReport {
        summary,
        validations,
        losses,
        rows_per_step: rows as f64 / steps.max(1) as f64,
    }
}

/// Draws the run's plots; a failure is logged, not fatal.
pub fn write_plots(
    cfg: &RunConfig,
    report: &TrainReport,
    learner: &Learner<impl AutodiffBackend>,
    validator: &Validator,
) {
    if let Err(e) = plot::write_run_plots(
        cfg,
        &report.validations,
        &report.losses,
        &learner.cpu_net(),
        validator,
    ) {
        tracing::warn!(
            "could not draw the plots in {}: {e:#}",
            Path::new(&cfg.run_dir).display()
        );
    }
}

/// A progress bar on stderr, or a hidden one.
pub fn progress_bar(show: bool, n: u64) -> ProgressBar {
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
