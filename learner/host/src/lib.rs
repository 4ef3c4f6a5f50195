//! The host of a learner loop on rank 0: what a run measures, writes and keeps, apart from the
//! loop itself (`gfn_learner::run_steps`) and from how processes are wired (`gfn-launch`).
//!
//! Layout:
//! - [`host`]: [`RunHost`], the [`gfn_learner::LearnerHost`] of rank 0 (validation, metrics,
//!   progress, checkpoints) and the report of a finished run;
//! - [`validate`]: exact and sampled metrics;
//! - [`metrics`]: metric records and the JSONL file;
//! - [`checkpoint`]: complete, atomically written checkpoints and `--resume`;
//! - [`error`]: what can go wrong, typed (bad input apart from failures of the machine);
//! - [`plot`]: PNG plots;
//! - [`session`]: one learner session for every mode (build, resume, loop, finish);
//! - [`tensorboard`]: the run's metrics, config and plots as TensorBoard events.

pub mod checkpoint;
pub mod error;
pub mod host;
pub mod metrics;
pub mod plot;
pub mod session;
pub mod tensorboard;
pub mod validate;

pub use error::{CheckpointError, Error};
pub use host::{progress_bar, HostOptions, RunHost, RunObserver, TrainReport};
