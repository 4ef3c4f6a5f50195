//! gfn's experiments, built on the embedded pipeline and the role processes.
//!
//! Layout:
//! - [`reproduce`]: `gfn reproduce`, a paper's grid over seeds, its table and plots;
//! - [`claims`]: each paper's claims, checked against a grid's results;
//! - [`lag_cost`]: the lag study's claim, what sampling behind the learner costs;
//! - [`bench`]: `gfn bench`, training throughput on the README's configurations;
//! - [`bench_pipeline`]: `gfn bench-pipeline`, the multi-process pipeline on loopback;
//! - [`bench_buffer`]: `gfn bench-buffer`, one buffer's message rate without its peers.

pub mod bench;
pub mod bench_buffer;
pub mod bench_pipeline;
pub mod claims;
pub mod lag_cost;
pub mod reproduce;
