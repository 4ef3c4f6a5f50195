//! The sampler role: rolls out batches of trajectories with the current forward policy and
//! hands them on. Inference only: the network lives on a plain (non-autodiff) backend.
//!
//! Layout:
//! - [`rollout`]: the [`Sampler`], which turns weights into trajectory batches;
//! - [`role`]: the role loop, the same whether its pipes are channels or sockets.

pub mod role;
pub mod rollout;

pub use gfn_common::seam::BatchSink;
pub use role::{run, SamplerError, SamplerStats, WeightPolicy};
pub use rollout::{Sampler, SamplerSpec};
