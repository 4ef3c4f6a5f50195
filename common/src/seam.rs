//! The seams between roles: where a sampler's batches go ([`BatchSink`]), where a learner's
//! batches come from ([`BatchSource`]), and where its weights go ([`WeightSink`]). In one process
//! they are channels; between processes, sockets (the `gfn-net` crate); offline, a recording.
//! Each reports a typed [`PipeError`], so a role can tell a finished run from a broken pipe.

use crate::pipe::{Delivery, Weights};
use crate::TrajectoryBatch;

/// Why a pipe between roles could not do its job.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PipeError {
    /// The other side is gone or ended the run: stop quietly.
    #[error("the other side of the pipe closed")]
    Closed,
    /// Nothing came for too long.
    #[error("{what}: nothing for {secs} s")]
    Timeout { what: &'static str, secs: u64 },
    /// The peer keeps sending what cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// The transport itself failed (a socket error).
    #[error("transport: {0}")]
    Transport(String),
}

/// Where finished batches go: a channel in one process, a socket between processes.
pub trait BatchSink {
    /// Hands a batch on. [`PipeError::Closed`] means the run is over and the sampler stops.
    fn send(&mut self, batch: TrajectoryBatch) -> Result<(), PipeError>;
}

impl BatchSink for crossbeam_channel::Sender<TrajectoryBatch> {
    fn send(&mut self, batch: TrajectoryBatch) -> Result<(), PipeError> {
        crossbeam_channel::Sender::send(self, batch).map_err(|_| PipeError::Closed)
    }
}

/// Where the learner's training batches come from.
pub trait BatchSource {
    /// The next batch for a learner at weight version `version`; `Ok(None)` when the run ended.
    fn next_batch(&mut self, version: u64) -> Result<Option<Delivery>, PipeError>;
    /// Trajectories received so far from each sampler, when the source knows.
    fn per_sampler(&self) -> Vec<(String, u64)> {
        vec![]
    }
    /// Trajectories waiting at the source after the last batch, when it knows.
    fn queue_depth(&self) -> Option<u64> {
        None
    }
    /// What the source lost on the way (a buffer that died with trajectories in its queue).
    fn losses(&self) -> SourceLosses {
        SourceLosses::default()
    }
    /// The source's own state for a checkpoint (an embedded buffer's contents), encoded by the
    /// crate that owns it; `None` when the source keeps nothing worth saving.
    fn snapshot(&self) -> Option<Vec<u8>> {
        None
    }
    /// Continues from bytes that [`BatchSource::snapshot`] wrote: the mirror of a checkpoint.
    /// A source that snapshots nothing refuses any bytes: they were written by another kind of
    /// source (another mode's checkpoint).
    fn restore(&mut self, bytes: &[u8]) -> Result<(), PipeError> {
        Err(PipeError::Invalid(format!(
            "this batch source keeps no state, but the checkpoint holds {} bytes of one \
             (written by another mode?)",
            bytes.len()
        )))
    }
}

/// Trajectories a batch source knows were lost, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceLosses {
    /// Times the buffer was seen to start over (it died and was started again).
    pub buffer_restarts: u64,
    /// Trajectories the buffer held when it was last heard from before each restart: at least
    /// that many were lost with it.
    pub trajectories_lost: u64,
}

/// Where learner rank 0 publishes new weights.
pub trait WeightSink {
    /// Makes `weights` available to the samplers.
    fn publish(&mut self, weights: Weights);
}

impl WeightSink for &crate::pipe::WeightBoard {
    fn publish(&mut self, weights: Weights) {
        crate::pipe::WeightBoard::publish(self, weights)
    }
}

/// Offline training publishes weights to nobody.
#[derive(Debug, Default, Clone, Copy)]
pub struct Nowhere;

impl WeightSink for Nowhere {
    fn publish(&mut self, _weights: Weights) {}
}
