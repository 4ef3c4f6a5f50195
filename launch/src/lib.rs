//! The gfn command line as a library: the embedded trainer, validation, metrics, plots and the
//! benchmark. `src/main.rs` is a thin wrapper; the integration tests call these directly.
//!
//! Layout:
//! - [`train`]: `gfn train`, the sampler, buffer and learner roles as threads of one process;
//! - [`learn`]: the learner role's loop, shared by one-process and multi-process runs;
//! - [`net`]: the multi-process roles over ZeroMQ (and MPI with the `mpi` feature);
//! - [`replay`]: `gfn replay` (offline training from a dump) and `gfn dump inspect`;
//! - [`checkpoint`]: complete, atomically written checkpoints and `--resume`;
//! - [`reproduce`]: `gfn reproduce`, a paper's grid over seeds, its table and plots;
//! - [`validate`]: exact and sampled metrics;
//! - [`metrics`]: metric records and the JSONL file;
//! - [`plot`]: PNG plots;
//! - [`bench`]: `gfn bench`; [`bench_pipeline`]: `gfn bench-pipeline`.

pub mod bench;
pub mod bench_pipeline;
pub mod checkpoint;
mod device;
pub mod learn;
pub mod metrics;
#[cfg(feature = "mpi")]
pub mod mpi_sync;
pub mod net;
pub mod plot;
pub mod replay;
pub mod reproduce;
pub mod train;
pub mod validate;
