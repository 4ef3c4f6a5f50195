//! Metrics of a run: what is measured at each validation, and the JSONL file they go to.

use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// One validation: exact and sampled distances, logZ, modes and throughput so far.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Validation {
    pub step: u64,
    pub trajectories: u64,
    /// Terminal states visited during training so far (the TB paper's x axis).
    pub states_visited: u64,
    pub wall_s: f64,
    /// Mean loss since the previous validation.
    pub loss: f64,
    /// Exact `Σ|P_T − R/Z|` of the policy's terminal distribution (dynamic programming).
    pub exact_l1: Option<f64>,
    pub exact_jsd: Option<f64>,
    /// torchgfn-style sum-L1 and JSD of `validation_samples` fresh terminal states.
    pub sampled_l1: Option<f64>,
    pub sampled_jsd: Option<f64>,
    /// TB-paper metric: mean over states of `|p̂ − p|` for the last visited training states.
    pub paper_l1: Option<f64>,
    /// The model's log Z (logZ for TB, log F(s0) for DB/SubTB).
    pub log_z: Option<f64>,
    pub log_z_true: Option<f64>,
    pub log_z_error: Option<f64>,
    /// Mean of the logZ parameter (TB) over the learner steps since the previous validation.
    /// Averaging the iterates removes most of the step-to-step noise that lr_Z 0.1 leaves.
    #[serde(default)]
    pub log_z_mean: Option<f64>,
    #[serde(default)]
    pub log_z_mean_error: Option<f64>,
    pub modes_found: usize,
    pub n_modes: Option<usize>,
    /// Tiered rewards: distinct terminal states visited so far that pass tiers 0..=t, as
    /// `[["tier0", n], ...]` (the last is `modes_found` when the mode tier is the last).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers_found: Vec<(String, u64)>,
    /// Where neither enumeration nor a closed form gives `n_modes` and `log_z_true`: their
    /// estimates from uniformly drawn states (torchgfn's `mode_stats="approx"`).
    #[serde(default)]
    pub n_modes_estimate: Option<f64>,
    #[serde(default)]
    pub log_z_true_estimate: Option<f64>,
    /// Distinct terminal states among those visited in training so far: how far exploration
    /// has reached on grids too large for the exact metrics.
    #[serde(default)]
    pub distinct_states: u64,
    /// Mean log R of the terminal states visited since the previous validation.
    #[serde(default)]
    pub mean_log_reward: Option<f64>,
    pub trajectories_per_s: f64,
    /// Parameter checksum of every learner replica (identical when replicas agree).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checksums: Vec<String>,
    /// Policy lag in learner steps (min, mean, max) of the trajectories trained on since the
    /// previous validation.
    pub lag_min: Option<u64>,
    pub lag_mean: Option<f64>,
    pub lag_max: Option<u64>,
    /// Trajectories received so far from each sampler (multi-process runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_sampler: Vec<(String, u64)>,
    /// Trajectories/s received from each sampler since the previous validation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_sampler_rate: Vec<(String, f64)>,
    /// Batches or trajectories waiting between the buffer and the learner.
    pub queue_depth: Option<u64>,
}

pub use gfn_learner::TimeSplit;

/// The end of a run.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Summary {
    pub steps: u64,
    pub trajectories: u64,
    pub wall_s: f64,
    pub trajectories_per_s: f64,
    pub steps_per_s: f64,
    pub time: TimeSplit,
    pub final_validation: Validation,
    pub params_checksum: String,
    /// Where the learner computed: `cpu`, or the GPU (a wgpu adapter's name, backend, driver).
    #[serde(default)]
    pub device: String,
    /// Buffer restarts seen and the trajectories lost with them (multi-process runs).
    #[serde(default, skip_serializing_if = "is_default")]
    pub losses: gfn_common::seam::SourceLosses,
    /// The run stopped early on SIGINT or SIGTERM (a checkpoint holds where it got to).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
    /// The checkpoint step this session resumed from (`--resume`); absent for a run that
    /// started from scratch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<u64>,
    /// The buffer's report (inserts, samples, the rate limiter's counters), where the buffer
    /// runs in this process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer: Option<serde_json::Value>,
    /// Weight bytes rank 0 sent to the samplers, every copy counted (multi-process runs):
    /// in all, and per learner step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_bytes_per_step: Option<f64>,
}

/// A JSON-lines file: one `{"validation": …}` line per validation, one `{"summary": …}` at the end.
pub struct MetricsFile {
    out: BufWriter<File>,
}

impl MetricsFile {
    /// Creates (truncates) the file.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            out: BufWriter::new(File::create(path)?),
        })
    }

    /// Appends one record under `key` and flushes, so a crash loses nothing written.
    pub fn write<T: Serialize>(&mut self, key: &str, value: &T) -> std::io::Result<()> {
        let line = serde_json::json!({ key: value });
        writeln!(self.out, "{line}")?;
        self.out.flush()
    }
}

fn is_default<T: Default + PartialEq>(x: &T) -> bool {
    *x == T::default()
}
