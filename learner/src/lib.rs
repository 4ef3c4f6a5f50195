//! The learner role: turns training batches into gradient steps.
//!
//! Layout:
//! - [`adamw`]: AdamW on the flat parameter vector;
//! - [`inputs`]: host-side preparation of a batch (rows, masks, index maps);
//! - [`loss`]: the six objectives (TB, DB, SubTB with its weightings, FM, ZVar, ModifiedDB);
//! - [`learner`]: the [`Learner`] (network, AdamW, one step) and the [`GradientSync`] seam that
//!   the multi-process build fills with an MPI all-reduce.

pub mod adamw;
pub mod inputs;
pub mod learner;
pub mod loss;

pub use learner::{GradientSync, Learner, LocalSync, StepStats};
