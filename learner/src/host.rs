//! What a learner's host does around the loop: validation, metrics, progress and checkpoints on
//! rank 0, nothing on the other replicas. Every hook defaults to nothing, so a replica or a test
//! implements only what it needs.

use crate::learner::Learner;
use crate::log::{LagStats, TrainLog};
use gfn_common::pipe::Delivery;
use gfn_nn::burn::tensor::backend::AutodiffBackend;

/// A host's failure (writing metrics or a checkpoint): it ends the run.
pub type HostError = Box<dyn std::error::Error + Send + Sync>;

/// Everything the loop knows at a validation step.
pub struct ValidationPoint<'a, B: AutodiffBackend> {
    /// Steps done (the learner's version).
    pub step: u64,
    pub learner: &'a Learner<B>,
    /// Every replica's parameter checksum, in rank order.
    pub checksums: Vec<u64>,
    /// Trajectories trained on so far, all replicas together.
    pub trajectories: u64,
    /// Seconds of training so far, earlier sessions of a resumed run included.
    pub wall_s: f64,
    /// Mean loss since the previous validation.
    pub loss: f64,
    /// Mean of the logZ parameter since the previous validation (TB).
    pub log_z_mean: Option<f64>,
    pub lag: LagStats,
    /// Trajectories received from each sampler, when the source knows.
    pub per_sampler: Vec<(String, u64)>,
    /// Trajectories waiting at the source.
    pub queue_depth: Option<u64>,
}

/// The host of a learner loop.
pub trait LearnerHost<B: AutodiffBackend> {
    /// A batch arrived, before the step on it (rank 0 counts the visited states).
    fn observe(&mut self, _delivery: &Delivery) {}
    /// A step was taken; `steps` are done.
    fn stepped(&mut self, _steps: u64) {}
    /// A validation step (on rank 0 only; every replica joined in the checksums).
    fn validate(&mut self, _at: ValidationPoint<'_, B>) -> Result<(), HostError> {
        Ok(())
    }
    /// Whether a checkpoint is due once `steps` are done.
    fn checkpoint_due(&self, _steps: u64) -> bool {
        false
    }
    /// Writes a checkpoint of the learner, the loop's log and the batch source's own state.
    fn checkpoint(
        &mut self,
        _learner: &Learner<B>,
        _log: &TrainLog,
        _source: Option<Vec<u8>>,
    ) -> Result<(), HostError> {
        Ok(())
    }
}

/// The host of a replica other than rank 0: it does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl<B: AutodiffBackend> LearnerHost<B> for Silent {}
