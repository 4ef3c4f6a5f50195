//! The learner role: turns training batches into gradient steps.
//!
//! Layout:
//! - [`adamw`]: AdamW on the flat parameter vector;
//! - [`inputs`]: host-side preparation of a batch (rows, masks, index maps);
//! - [`loss`]: the six objectives (TB, DB, SubTB with its weightings, FM, ZVar, ModifiedDB);
//! - [`learner`]: the [`Learner`] (network, AdamW, one step) and the [`GradientSync`] seam that
//!   the multi-process build fills with an MPI all-reduce;
//! - [`run`]: the learner's loop, the same in every mode; [`host`]: the hooks its host fills in
//!   (validation, metrics, checkpoints); [`log`]: what the loop records.

pub mod adamw;
pub mod host;
pub mod inputs;
pub mod learner;
pub mod log;
pub mod loss;
pub mod run;

pub use gfn_common::seam::{BatchSource, Nowhere, WeightSink};
pub use host::{LearnerHost, Silent, ValidationPoint};
pub use learner::{GradientSync, Learner, LearnerSpec, LocalSync, StepStats};
pub use log::{LagStats, TimeSplit, TrainLog};
pub use run::{run_steps, LearnError, LoopOutcome, Plan};
