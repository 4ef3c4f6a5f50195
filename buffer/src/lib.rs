//! The buffer role: the only state between samplers and learners.
//!
//! Layout:
//! - [`dump`]: recorded dumps, the segmented file format with CRC-checked frames;
//! - [`limiter`]: the samples-per-insert rate limiter;
//! - [`replay`]: the replay buffer (FIFO or reward-prioritised capacity, uniform sampling);
//! - [`store`]: the storage policies a buffer serves from (FIFO queue or replay);
//! - [`role`]: the embedded role loop, which turns each inserted batch into one training batch.

pub mod dump;
pub mod limiter;
pub mod replay;
pub mod role;
pub mod store;

pub use limiter::RateLimiter;
pub use replay::ReplayBuffer;
pub use role::{buffer_rng, run, BufferStats, Recorder};
pub use store::{Fifo, Store};
