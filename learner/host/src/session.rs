//! One learner session, the same for `gfn train`, `gfn replay` and every `gfn learner` replica:
//! the learner is built, resumed from its checkpoint (or given rank 0's first weights), run
//! through the step loop with rank 0's [`RunHost`], and finished into a report. A mode only
//! supplies its batch source, weight sink and gradient sync, so no mode can skip a step of it.
//!
//! Resuming mirrors checkpointing: [`RunHost`] writes what each seam snapshots (the learner's
//! parameters and optimizer, the loop's record, validation's visits, the batch source's own
//! bytes), and a session hands each piece back to the same seam, here and nowhere else.

use crate::checkpoint::{self, Checkpoint};
use crate::error::{CheckpointError, Error, Result};
use crate::host::{HostOptions, RunHost, TrainReport};
use gfn_common::pipe::Shutdown;
use gfn_common::seam::{BatchSource, SourceLosses, WeightSink};
use gfn_common::{Damaged, RunConfig};
use gfn_learner::{run_steps, GradientSync, Learner, LoopOutcome, Plan, Silent, TrainLog};
use gfn_nn::burn::tensor::backend::AutodiffBackend;

/// A learner with its loop record, its checkpoint (when resumed) and, on rank 0, its host.
pub struct Session<L: AutodiffBackend> {
    learner: Learner<L>,
    log: TrainLog,
    resumed: Option<Checkpoint>,
    /// Rank 0's host; the other replicas run [`Silent`].
    host: Option<RunHost>,
    plan: Plan,
}

/// What a mode adds to the report, known only once its other roles have stopped.
#[derive(Debug, Default)]
pub struct Finish {
    /// Seconds the samplers spent sampling, where they ran in this process.
    pub sampling_s: f64,
    /// The buffer's report, where the buffer ran in this process.
    pub buffer: Option<serde_json::Value>,
    /// What the batch source lost on the way.
    pub losses: SourceLosses,
    /// Weight bytes published to samplers in other processes, every copy counted.
    pub weight_bytes: Option<u64>,
}

impl<L: AutodiffBackend> Session<L> {
    /// Builds the learner and, with `--resume` and a checkpoint, restores it (rank 0 reads the
    /// file and every replica restores the same bytes); otherwise every replica starts from rank
    /// 0's weights. Rank 0 also opens the run folder.
    pub fn open(
        cfg: &RunConfig,
        opts: HostOptions,
        device: L::Device,
        sync: &mut impl GradientSync,
    ) -> Result<Self> {
        let mut learner = Learner::<L>::new(cfg, device)?;
        let resumed = load(cfg, sync)?;
        let log = match &resumed {
            Some(ck) => restore_learner(ck, &mut learner)?,
            None => {
                if sync.world_size() > 1 {
                    let mut params = learner.weights().params;
                    sync.broadcast(&mut params);
                    learner.load_weights(&params)?;
                }
                TrainLog::default()
            }
        };
        let host = match sync.rank() {
            0 => Some(RunHost::new(cfg, opts, resumed.as_ref())?),
            _ => None,
        };
        Ok(Self {
            learner,
            log,
            resumed,
            host,
            plan: Plan::for_run(cfg),
        })
    }

    /// The learner (its weights go to the samplers before the first step).
    pub fn learner(&self) -> &Learner<L> {
        &self.learner
    }

    /// Hands `source` the state it snapshotted into the checkpoint, if the session resumed one
    /// that holds any: the mirror of [`BatchSource::snapshot`].
    pub fn restore_source(&self, source: &mut impl BatchSource) -> Result<()> {
        let Some(bytes) = self.resumed.as_ref().and_then(|ck| ck.source.as_ref()) else {
            return Ok(());
        };
        source
            .restore(bytes)
            .map_err(|e| Error::Source(format!("the checkpoint's state of it: {e}")))
    }

    /// Runs the learner loop to the end of the budget, or until `stop` is set.
    pub fn run(
        &mut self,
        source: &mut impl BatchSource,
        sink: &mut impl WeightSink,
        sync: &mut impl GradientSync,
        stop: &Shutdown,
    ) -> Result<LoopOutcome> {
        let log = std::mem::take(&mut self.log);
        let outcome = match &mut self.host {
            Some(host) => run_steps(
                &mut self.learner,
                source,
                sink,
                sync,
                host,
                self.plan,
                log,
                stop,
            ),
            None => run_steps(
                &mut self.learner,
                source,
                sink,
                sync,
                &mut Silent,
                self.plan,
                log,
                stop,
            ),
        };
        Ok(outcome?)
    }

    /// The run's report on rank 0 (its summary line and plots written), `None` elsewhere.
    pub fn finish(self, outcome: LoopOutcome, finish: Finish) -> Result<Option<TrainReport>> {
        let Some(host) = self.host else {
            return Ok(None);
        };
        let report = host.finish(&self.learner, outcome, finish)?;
        Ok(Some(report))
    }
}

/// The checkpoint to continue from, when `--resume` finds one in `--checkpoint_dir` (read by
/// rank 0, shared with the other replicas through `sync`, so that every replica restores the
/// same state even where only rank 0 sees the folder).
fn load(cfg: &RunConfig, sync: &mut impl GradientSync) -> Result<Option<Checkpoint>> {
    let (true, Some(dir)) = (cfg.resume, &cfg.checkpoint_dir) else {
        return Ok(None);
    };
    let mut bytes = match sync.rank() {
        0 => checkpoint::read_bytes(dir)?.unwrap_or_default(),
        _ => vec![],
    };
    sync.broadcast_bytes(&mut bytes);
    if bytes.is_empty() {
        tracing::info!(
            "no checkpoint in {} yet: starting from scratch",
            dir.display()
        );
        return Ok(None);
    }
    let ck = checkpoint::decode(dir, &bytes)?;
    checkpoint::check_compatible(&ck.config, cfg)?;
    tracing::info!(
        "resuming from the checkpoint at step {} in {}",
        ck.step,
        dir.display()
    );
    Ok(Some(ck))
}

/// Puts the checkpointed parameters, optimizer state and step into `learner`, and returns the
/// loop's record to continue.
fn restore_learner<B: AutodiffBackend>(
    ck: &Checkpoint,
    learner: &mut Learner<B>,
) -> Result<TrainLog> {
    let damaged = |what: String| CheckpointError::Inconsistent(Damaged(what));
    ck.optim
        .check(ck.params.len())
        .map_err(CheckpointError::from)?;
    learner
        .restore(&ck.params, ck.optim.clone(), ck.step)
        .map_err(|e| damaged(e.to_string()))?;
    if ck.losses.len() as u64 != ck.step {
        return Err(damaged(format!("{} losses for {} steps", ck.losses.len(), ck.step)).into());
    }
    Ok(TrainLog {
        step: ck.step,
        losses: ck.losses.clone(),
        time: ck.time,
        wall_before_s: ck.wall_s,
        rows: 0,
    })
}
