//! The buffer role: the only state between samplers and learners.
//!
//! Layout:
//! - [`core`]: the buffer's state machine (store, rate limiter, budget, stale data, peers),
//!   free of any transport;
//! - [`channel`]: its driver in one process (crossbeam); [`net`]: its driver between processes
//!   (ZeroMQ sockets from `gfn-net`);
//! - [`setup`]: a buffer as the run's configuration describes it;
//! - [`store`]: the storage policies a buffer serves from (FIFO queue or replay);
//! - [`replay`]: the replay buffer (FIFO, reward-prioritised or diverse capacity);
//! - [`limiter`]: the samples-per-insert rate limiter;
//! - [`recorder`] and [`dump`]: recordings, the segmented file format with CRC-checked frames;
//! - [`recording`]: [`recording::DumpSource`], which serves a recording to an offline learner.

pub mod channel;
pub mod core;
pub mod dump;
pub mod limiter;
pub mod net;
pub mod recorder;
pub mod recording;
pub mod replay;
pub mod setup;
pub mod store;

pub use channel::ChannelBuffer;
pub use core::{buffer_rng, BufferCore, BufferReport, CoreState, Output, Peer, Refusal};
pub use limiter::RateLimiter;
pub use recorder::Recorder;
pub use replay::ReplayBuffer;
pub use setup::{new_core, new_store, Hosting};
pub use store::{Fifo, Store};
