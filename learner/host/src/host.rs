//! [`RunHost`]: rank 0's side of a learner loop. It validates, writes `metrics.jsonl`, moves the
//! progress bar, writes checkpoints, and at the end the summary and the plots.

use crate::checkpoint::{self, Checkpoint};
use crate::error::{CheckpointError, Error, Result};
use crate::metrics::{MetricsFile, Summary, Validation};
use crate::plot;
use crate::session::Finish;
use crate::tensorboard::RunEvents;
use crate::validate::Validator;
use gfn_common::pipe::Delivery;
use gfn_common::RunConfig;
use gfn_learner::host::HostError;
use gfn_learner::{Learner, LearnerHost, LoopOutcome, TrainLog, ValidationPoint};
use gfn_nn::backend::cpu_device;
use gfn_nn::burn::tensor::backend::AutodiffBackend;
use gfn_nn::params;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Options of a run that are not part of its configuration.
#[derive(Clone, Default)]
pub struct HostOptions {
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Write metrics, config and plots to the run folder.
    pub write_files: bool,
    /// A program's own window on the run (rank 0's side), beside the files: every validation
    /// and the summary as they are made, whatever the mode.
    pub observer: Option<Arc<dyn RunObserver>>,
}

impl std::fmt::Debug for HostOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostOptions")
            .field("progress", &self.progress)
            .field("write_files", &self.write_files)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// What a program embedding gfn sees of a run as it goes, to send to its own tracker. Called
/// on rank 0 after the record is written to the run folder; every method defaults to nothing.
/// A resumed run calls [`RunObserver::validation`] only for the validations it makes itself.
pub trait RunObserver: Send + Sync {
    /// A validation, as written to `metrics.jsonl`.
    fn validation(&self, _v: &Validation) {}
    /// The run's summary, as written to `metrics.jsonl` (also for a stopped run).
    fn finished(&self, _summary: &Summary) {}
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

/// Rank 0's host: validation, metrics, progress and checkpoints.
pub struct RunHost {
    cfg: RunConfig,
    validator: Validator,
    files: Option<MetricsFile>,
    /// TensorBoard's copy of the metrics (with `files`, unless `--tensorboard false`).
    events: Option<RunEvents>,
    bar: ProgressBar,
    checkpoints: Option<(PathBuf, u64)>,
    validations: Vec<Validation>,
    rates: SamplerRates,
    /// Seconds spent validating in this session.
    validation_s: f64,
    /// The checkpoint's step, when this session resumed one.
    resumed_from: Option<u64>,
    observer: Option<Arc<dyn RunObserver>>,
}

impl RunHost {
    /// The host of a run, continuing `resumed` when given: its validations are written again
    /// (so that those made after the checkpoint do not appear twice) and validation goes on from
    /// what it had seen.
    pub fn new(cfg: &RunConfig, opts: HostOptions, resumed: Option<&Checkpoint>) -> Result<Self> {
        let mut validator = Validator::new(&cfg.env(), cfg.preprocessor(), &cfg.validation())?;
        let earlier = resumed.map_or(&[][..], |ck| &ck.validations[..]);
        if let Some(ck) = resumed {
            validator
                .restore(ck.visits.clone())
                .map_err(CheckpointError::Inconsistent)?;
        }
        let files = match opts.write_files {
            true => Some(open_run_dir(cfg, earlier)?),
            false => None,
        };
        let events = match opts.write_files && cfg.tensorboard {
            true => Some(RunEvents::open(cfg, earlier).map_err(events_error(cfg))?),
            false => None,
        };
        let bar = progress_bar(opts.progress, cfg.n_iterations());
        bar.set_position(resumed.map_or(0, |ck| ck.step));
        Ok(Self {
            cfg: cfg.clone(),
            validator,
            files,
            events,
            bar,
            checkpoints: cfg
                .checkpoint_dir
                .clone()
                .map(|dir| (dir, cfg.checkpoint_every)),
            validations: earlier.to_vec(),
            rates: SamplerRates::default(),
            validation_s: 0.0,
            resumed_from: resumed.map(|ck| ck.step),
            observer: opts.observer,
        })
    }

    /// The report of a finished (or stopped) run, with what the mode adds (`finish`): writes
    /// its summary line and plots.
    pub fn finish<B: AutodiffBackend>(
        mut self,
        learner: &Learner<B>,
        outcome: LoopOutcome,
        finish: Finish,
    ) -> Result<TrainReport> {
        let Finish {
            sampling_s,
            buffer: source,
            losses,
            weight_bytes,
        } = finish;
        self.bar.finish_and_clear();
        let LoopOutcome { log, stopped } = outcome;
        let mut time = log.time;
        time.sample = sampling_s;
        time.validation += self.validation_s;
        let wall = log.wall_before_s;
        let steps = log.step;
        let trajectories = steps * self.cfg.batch_size as u64;
        let summary = Summary {
            steps,
            trajectories,
            wall_s: wall,
            trajectories_per_s: trajectories as f64 / wall.max(1e-9),
            steps_per_s: steps as f64 / wall.max(1e-9),
            time,
            final_validation: self.validations.last().cloned().unwrap_or_default(),
            params_checksum: format!("{:016x}", params::checksum(&learner.weights().params)),
            device: gfn_nn::backend::check_device(self.cfg.device)
                .unwrap_or_else(|e| e.to_string()),
            stopped,
            resumed_from: self.resumed_from,
            buffer: source,
            losses,
            weight_bytes,
            weight_bytes_per_step: weight_bytes.map(|b| b as f64 / steps.max(1) as f64),
        };
        let report = TrainReport {
            summary,
            validations: std::mem::take(&mut self.validations),
            rows_per_step: log.rows as f64 / log.losses.len().max(1) as f64,
            losses: log.losses,
        };
        if let Some(f) = self.files.as_mut() {
            let what = format!("writing the summary in {}", self.cfg.run_dir.display());
            f.write("summary", &report.summary)
                .map_err(Error::io(what))?;
            self.write_plots(&report, learner);
        }
        if let Some(events) = self.events.as_mut() {
            if let Err(e) = events.finish(&report, &self.cfg.run_dir) {
                let dir = self.cfg.run_dir.display();
                tracing::warn!("could not write the final TensorBoard events in {dir}: {e}");
            }
        }
        if let Some(observer) = &self.observer {
            observer.finished(&report.summary);
        }
        Ok(report)
    }

    /// Draws the run's plots; a failure is logged, not fatal.
    fn write_plots<B: AutodiffBackend>(&self, report: &TrainReport, learner: &Learner<B>) {
        let net = learner.cpu_net();
        let (v, losses) = (&report.validations, &report.losses);
        if let Err(e) = plot::write_run_plots(&self.cfg, v, losses, &net, &self.validator) {
            let dir = self.cfg.run_dir.display();
            tracing::warn!("could not draw the plots in {dir}: {e:#}");
        }
    }

    fn record(&mut self, v: Validation) -> Result<()> {
        report(&v, &self.bar);
        if let Some(f) = self.files.as_mut() {
            let what = format!("writing metrics in {}", self.cfg.run_dir.display());
            f.write("validation", &v).map_err(Error::io(what))?;
        }
        if let Some(events) = self.events.as_mut() {
            events.validation(&v).map_err(events_error(&self.cfg))?;
        }
        if let Some(observer) = &self.observer {
            observer.validation(&v);
        }
        self.validations.push(v);
        Ok(())
    }
}

impl<B: AutodiffBackend> LearnerHost<B> for RunHost {
    fn observe(&mut self, delivery: &Delivery) {
        self.validator.observe(&delivery.fresh);
    }

    fn stepped(&mut self, steps: u64) {
        self.bar.set_position(steps);
    }

    fn validate(&mut self, at: ValidationPoint<'_, B>) -> Result<(), HostError> {
        let t = Instant::now();
        let net = at.learner.cpu_net();
        let estimate = at.learner.log_z_estimate();
        // The validation stream is keyed by the 0-based step, as it always was.
        let step = at.step - 1;
        let mut v = self
            .validator
            .validate(&net, estimate, at.log_z_mean, step, &cpu_device());
        v.step = at.step;
        v.trajectories = at.trajectories;
        v.wall_s = at.wall_s;
        v.loss = at.loss;
        v.trajectories_per_s = v.trajectories as f64 / v.wall_s.max(1e-9);
        v.checksums = at.checksums.iter().map(|c| format!("{c:016x}")).collect();
        (v.lag_min, v.lag_max, v.lag_mean) = (at.lag.min, at.lag.max, at.lag.mean);
        v.per_sampler_rate = self.rates.update(&at.per_sampler, v.wall_s);
        v.per_sampler = at.per_sampler;
        v.queue_depth = at.queue_depth;
        self.validation_s += t.elapsed().as_secs_f64();
        self.record(v)?;
        Ok(())
    }

    fn checkpoint_due(&self, steps: u64) -> bool {
        self.checkpoints
            .as_ref()
            .is_some_and(|(_, every)| steps.is_multiple_of(*every))
    }

    fn checkpoint(
        &mut self,
        learner: &Learner<B>,
        log: &TrainLog,
        source: Option<Vec<u8>>,
    ) -> Result<(), HostError> {
        let Some((dir, _)) = &self.checkpoints else {
            return Ok(());
        };
        let mut time = log.time;
        time.validation += self.validation_s;
        let saved = Checkpoint {
            config: self.cfg.clone(),
            step: log.step,
            params: learner.weights().params,
            optim: learner.optimizer().clone(),
            source,
            visits: self.validator.visits().clone(),
            losses: log.losses.clone(),
            validations: self.validations.clone(),
            time,
            wall_s: log.wall_before_s,
        };
        checkpoint::save(dir, &saved)?;
        tracing::debug!("checkpoint at step {} in {}", log.step, dir.display());
        Ok(())
    }
}

fn events_error(cfg: &RunConfig) -> impl FnOnce(std::io::Error) -> Error {
    Error::io(format!(
        "writing TensorBoard events in {}",
        cfg.run_dir.display()
    ))
}

/// Creates the run folder with its config and a metrics file that starts with `earlier`
/// validations.
pub fn open_run_dir(cfg: &RunConfig, earlier: &[Validation]) -> Result<MetricsFile> {
    std::fs::create_dir_all(&cfg.run_dir)
        .map_err(Error::io(format!("creating {}", cfg.run_dir.display())))?;
    let config = cfg.run_dir.join("config.toml");
    std::fs::write(&config, cfg.to_toml()?)
        .map_err(Error::io(format!("writing {}", config.display())))?;
    let path = cfg.run_dir.join("metrics.jsonl");
    let context = || Error::io(format!("writing metrics in {}", cfg.run_dir.display()));
    let mut file = MetricsFile::create(&path).map_err(context())?;
    for v in earlier {
        file.write("validation", v).map_err(context())?;
    }
    Ok(file)
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
        let before = |who: &str| {
            self.last
                .iter()
                .find(|(w, _)| w == who)
                .map_or(0, |(_, b)| *b)
        };
        let rates = now
            .iter()
            .map(|(who, n)| (who.clone(), n.saturating_sub(before(who)) as f64 / dt))
            .collect();
        self.last = now.to_vec();
        self.last_s = wall_s;
        rates
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

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.4}"))
}

/// One log line per validation (above the progress bar).
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
        match (v.n_modes, v.n_modes_estimate) {
            (Some(n), _) => n.to_string(),
            (None, Some(e)) => format!("~{e:.3e}"),
            (None, None) => "?".into(),
        },
        v.trajectories_per_s,
    );
    bar.suspend(|| tracing::info!("{line}"));
    bar.set_message(format!("L1 {}", fmt_opt(v.exact_l1)));
}
