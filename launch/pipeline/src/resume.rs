//! Continuing a run from its checkpoint. Rank 0 reads the file and hands its bytes to the other
//! learner replicas, so that every replica restores the same state even where only rank 0 sees
//! the checkpoint folder.

use anyhow::{anyhow, Result};
use gfn_common::RunConfig;
use gfn_host::checkpoint::{self, Checkpoint};
use gfn_learner::{GradientSync, Learner, TrainLog};
use gfn_nn::burn::tensor::backend::AutodiffBackend;

/// The checkpoint to continue from, when `--resume` finds one in `--checkpoint_dir` (read by
/// rank 0, shared with the other replicas through `sync`).
pub fn load(cfg: &RunConfig, sync: &mut impl GradientSync) -> Result<Option<Checkpoint>> {
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
pub fn restore<B: AutodiffBackend>(ck: &Checkpoint, learner: &mut Learner<B>) -> Result<TrainLog> {
    let damaged = |what: String| anyhow!("the checkpoint is inconsistent: {what}");
    ck.optim.check(ck.params.len()).map_err(damaged)?;
    learner
        .restore(&ck.params, ck.optim.clone(), ck.step)
        .map_err(|e| damaged(e.to_string()))?;
    if ck.losses.len() as u64 != ck.step {
        return Err(damaged(format!(
            "{} losses for {} steps",
            ck.losses.len(),
            ck.step
        )));
    }
    Ok(TrainLog {
        step: ck.step,
        losses: ck.losses.clone(),
        time: ck.time,
        wall_before_s: ck.wall_s,
        rows: 0,
    })
}
