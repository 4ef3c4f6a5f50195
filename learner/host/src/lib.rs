//! The host of a learner loop on rank 0: what a run measures, writes and keeps, apart from the
//! loop itself (`gfn_learner::run_steps`) and from how processes are wired (`gfn-launch`).
//!
//! Layout:
//! - [`host`]: [`RunHost`], the [`gfn_learner::LearnerHost`] of rank 0 (validation, metrics,
//!   progress, checkpoints) and the report of a finished run;
//! - [`validate`]: exact and sampled metrics;
//! - [`metrics`]: metric records and the JSONL file;
//! - [`checkpoint`]: complete, atomically written checkpoints and `--resume`;
//! - [`plot`]: PNG plots.

pub mod checkpoint;
pub mod host;
pub mod metrics;
pub mod plot;
pub mod validate;

pub use host::{progress_bar, HostOptions, RunHost, TrainReport};
