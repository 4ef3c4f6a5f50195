//! What every gfn role shares.
//!
//! Layout:
//! - [`env`]: the HyperGrid environment (states, masks, canonical index);
//! - [`dedup`]: distinct states of a batch, evaluated once;
//! - [`reward`]: reward functions and modes; [`tiered`]: torchgfn's compositional rewards;
//!   [`presets`]: reward kwargs and torchgfn's difficulty presets;
//! - [`rng`]: random streams derived from (seed, stream, index);
//! - [`preprocess`]: state encodings for the networks;
//! - [`trajectory`]: compact trajectory batches, the unit of data between roles;
//! - [`pipe`]: in-process pipes between roles (weights board, stop flag);
//! - [`seam`]: the traits at each seam between roles, and their error;
//! - [`target`]: the true distribution, the exact terminal distribution of a policy, distances;
//! - [`config`]: the run configuration (command line and TOML);
//! - [`wire`]: the messages between processes and their envelope;
//! - [`tfevents`]: TensorBoard event files (scalars, text, images).

pub mod config;
pub mod damaged;
pub mod dedup;
pub mod env;
pub mod partition;
pub mod pipe;
pub mod preprocess;
pub mod presets;
pub mod reward;
pub mod rng;
pub mod seam;
pub mod target;
pub mod tfevents;
pub mod tiered;
pub mod trajectory;
pub mod wire;

pub use config::{
    Activation, Device, Loss, LossFn, LrSchedule, ReplayPolicy, RunConfig, SubTbWeighting,
};
pub use damaged::Damaged;
pub use env::HyperGrid;
pub use preprocess::Preprocessor;
pub use presets::{RewardKwargs, RewardPreset, RewardSpec};
pub use reward::{Reward, RewardKind};
pub use trajectory::TrajectoryBatch;
