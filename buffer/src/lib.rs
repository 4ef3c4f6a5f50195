//! The buffer role: the only state between samplers and learners.
//!
//! Layout:
//! - [`replay`]: the replay buffer (FIFO or reward-prioritised capacity, uniform sampling);
//! - [`role`]: the role loop, which turns each inserted batch into one training batch.

pub mod replay;
pub mod role;

pub use replay::ReplayBuffer;
pub use role::{run, BufferStats, Selector};
