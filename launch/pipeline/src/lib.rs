//! How gfn's roles are put together into runs. The loops live in the role crates (the sampler's
//! in `gfn-sampler`, the buffer's state machine in `gfn-buffer`, the learner's in
//! `gfn-learner`); this crate only picks the pipes between them and the backend.
//!
//! Layout:
//! - [`train`]: `gfn train`, every role in one process over channels;
//! - [`roles`]: `gfn sampler`, `gfn buffer` and `gfn learner`, each role its own process over
//!   ZeroMQ (learner replicas over MPI with the `mpi` feature);
//! - [`replay`]: `gfn replay` (a learner fed by a recording) and `gfn dump inspect`;
//! - [`signals`]: SIGINT and SIGTERM as a clean stop;
//! - [`saved`]: a run's checkpoint read back for the commands below, files written atomically;
//! - [`export`]: `gfn export`, a checkpoint's estimators as a safetensors file;
//! - [`sample`]: `gfn sample`, terminal states drawn from a checkpoint's policy.

pub mod device;
pub mod export;
#[cfg(feature = "mpi")]
pub mod mpi_sync;
pub mod replay;
pub mod roles;
pub mod sample;
pub mod saved;
pub mod signals;
pub mod train;

pub use gfn_host::{HostOptions, TrainReport};
