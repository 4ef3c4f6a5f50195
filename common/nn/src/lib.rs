//! The policy network of gfn, as burn modules. This is the only crate that builds burn.
//!
//! Layout:
//! - [`layer`]: affine layers, plain or noisy;
//! - [`net`]: the GFlowNet estimators (PF, PB, logF, logZ) and their configuration;
//! - [`params`]: parameters as flat vectors, and checksums;
//! - [`policy`]: host-side helpers that turn states into network inputs and logits into
//!   masked log-probabilities;
//! - [`backend`]: concrete backends and CPU float settings;
//! - [`any_gpu`]: any GPU through wgpu (Vulkan, Metal, DirectX 12): adapters and their choice;
//! - `gpu_runtime`: the GPU backends' autotuning level, set before the first GPU is used.

pub mod any_gpu;
pub mod backend;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod gpu_runtime;
pub mod layer;
pub mod net;
pub mod params;
pub mod policy;

pub use burn;
pub use net::{GflowNet, Input, NetConfig, NetNoise, Outputs};
pub use rayon;
