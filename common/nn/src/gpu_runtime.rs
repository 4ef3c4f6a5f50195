//! The GPU backends' run-time settings, made once before the first GPU is used.
//!
//! burn-cuda and burn-wgpu autotune a kernel the first time they meet a shape: they compile
//! and time every candidate kernel. At cubecl's default level that is far too much for gfn's
//! small networks, whose learner shapes change from step to step. On an H200 (2026-12-04), one
//! matrix-product shape of a 4-D H=16 batch-512 run was still being tuned after 80 s, so not
//! one step finished in 100 s, and the 2-D H=8 reference run took over two minutes, against
//! a quarter of a second on one CPU core. gfn therefore asks for cubecl's minimal level, the
//! one CI uses on lavapipe; `CUBECL_AUTOTUNE_LEVEL` (minimal, balanced, extensive, full) still
//! chooses another.

use cubecl_runtime::config::autotune::AutotuneLevel;
use cubecl_runtime::config::{CubeClRuntimeConfig, RuntimeConfig};
use std::sync::Once;

/// The environment variable through which cubecl takes its autotuning level.
const AUTOTUNE_LEVEL_VAR: &str = "CUBECL_AUTOTUNE_LEVEL";

/// Sets cubecl's autotuning level (see the module's documentation) unless the environment
/// names one. Call it before the first GPU tensor; later calls do nothing.
pub(crate) fn configure() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os(AUTOTUNE_LEVEL_VAR).is_some() {
            return;
        }
        // The settings cubecl would load itself (cubecl.toml, its environment variables),
        // with the level replaced.
        let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
        config.autotune.level = AutotuneLevel::Minimal;
        // cubecl refuses (panics) once it has read its settings, which happens only when a
        // GPU was used before this call: then its own settings stay.
        if std::panic::catch_unwind(|| CubeClRuntimeConfig::set(config)).is_err() {
            tracing::warn!("cubecl's settings were read before gfn could set its autotuning level");
        }
    });
}
