//! The run configuration: one struct for the command line and for TOML config files.
//!
//! Flag names and defaults follow torchgfn's `train_hypergrid_ddp.py` where they make sense
//! (`--batch_size`, `--R0`, `--lr_Z`, `--subTB_lambda`, …). Config files use the field names
//! below; command-line flags override them.

use crate::env::{GridError, HyperGrid};
use crate::preprocess::Preprocessor;
use crate::presets::{RewardKwargs, RewardPreset};
use crate::reward::{Reward, RewardError, RewardKind};
use crate::tiered::{BitRange, DimPair, ParityCheck};
mod modes;
mod sections;
mod settings;

pub use modes::{refuse_role_flags, Mode};
pub use sections::{
    BufferSection, EnvSection, ModelSection, ObjectiveSection, OptimSection, Regression,
    RunSection, SamplingSection, ValidationSection,
};
pub use settings::Settings;

use clap::Parser;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Declares a string-named enum with `FromStr` (case-insensitive), `Display` and serde names.
macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $s, alias = $s)] $var),+ }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $(if s.eq_ignore_ascii_case($s) { return Ok(Self::$var); })+
                Err(format!("unknown {} `{}` (expected one of: {})", stringify!($name), s,
                    [$($s),+].join(", ")))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(Self::$var => $s),+ })
            }
        }
    };
}

named_enum! {
    /// The training objective.
    Loss {
        /// Flow matching (Bengio et al. 2021).
        Fm = "FM",
        /// Trajectory balance (Malkin et al. 2022).
        Tb = "TB",
        /// Detailed balance.
        Db = "DB",
        /// Sub-trajectory balance (Madan et al. 2023).
        SubTb = "SubTB",
        /// Log-partition variance.
        ZVar = "ZVar",
        /// Modified detailed balance (every state terminates).
        ModifiedDb = "ModifiedDB",
    }
}

named_enum! {
    /// The function applied to each balance residual t (torchgfn's `loss_fn`; Hu et al., ICLR
    /// 2025, "Beyond squared error"). Every one has g(0) = 0, g'(0) = 0 and g''(0) = 1 or 2.
    LossFn {
        /// t², torchgfn's default: the reverse KL (zero-forcing).
        Squared = "squared",
        /// t² / 2.
        HalfSquared = "half_squared",
        /// e^t + e^−t − 2: zero-forcing and zero-avoiding at once.
        ShiftedCosh = "shifted_cosh",
        /// (e^{αt} − αt − 1) / α² with α = `--linex_alpha` (α = 1: the forward KL).
        Linex = "linex",
    }
}

named_enum! {
    /// How SubTB weighs its sub-trajectories.
    SubTbWeighting {
        GeometricWithin = "geometric_within",
        Geometric = "geometric",
        Equal = "equal",
        EqualWithin = "equal_within",
        Tb = "TB",
        Db = "DB",
        ModifiedDb = "ModifiedDB",
    }
}

/// Where a role computes: the CPU, an NVIDIA GPU (builds with the `cuda` feature), or any GPU
/// through Vulkan, Metal or DirectX 12 (builds with the `wgpu` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Device {
    #[default]
    Cpu,
    /// The GPU with this index.
    Cuda(usize),
    /// A wgpu adapter: the best one, or the one with this index in the adapter list.
    Wgpu(Option<usize>),
}

impl FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("unknown device `{s}` (expected cpu, cuda, cuda:N, wgpu or wgpu:N)");
        let index = |prefix: &str, s: &str| s.strip_prefix(prefix).and_then(|i| i.parse().ok());
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            "wgpu" => Ok(Self::Wgpu(None)),
            other => index("cuda:", other)
                .map(Self::Cuda)
                .or_else(|| index("wgpu:", other).map(|i| Self::Wgpu(Some(i))))
                .ok_or_else(bad),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
            Self::Wgpu(None) => f.write_str("wgpu"),
            Self::Wgpu(Some(i)) => write!(f, "wgpu:{i}"),
        }
    }
}

impl TryFrom<String> for Device {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Device> for String {
    fn from(d: Device) -> String {
        d.to_string()
    }
}

named_enum! {
    /// The nonlinearity after every hidden layer.
    Activation {
        /// max(x, 0): torchgfn's MLP.
        Relu = "relu",
        /// max(x, 0.01·x): PyTorch's `nn.LeakyReLU()`, the TB paper's MLP.
        LeakyRelu = "leaky_relu",
    }
}

named_enum! {
    /// How the learning rates (logZ's included) change over a run.
    LrSchedule {
        /// The same rates throughout: torchgfn's (no scheduler).
        Constant = "constant",
        /// Half a cosine from the set rates down to `lr_min_ratio` times them at the last step.
        Cosine = "cosine",
    }
}

/// The learning-rate multiplier at each optimizer step of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrScale {
    pub schedule: LrSchedule,
    /// The multiplier at the last step (cosine).
    pub min_ratio: f64,
    /// Steps in the run.
    pub steps: u64,
}

impl LrScale {
    /// The multiplier of every learning rate at step `step` (0-based); 1 at step 0.
    pub fn at(&self, step: u64) -> f64 {
        match self.schedule {
            LrSchedule::Constant => 1.0,
            LrSchedule::Cosine => {
                let progress = (step as f64 / self.steps.saturating_sub(1).max(1) as f64).min(1.0);
                let cos = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                self.min_ratio + (1.0 - self.min_ratio) * cos
            }
        }
    }
}

named_enum! {
    /// Which trajectories a replay buffer keeps when it is full.
    ReplayPolicy {
        /// Keep the newest.
        Fifo = "fifo",
        /// Keep the highest rewards.
        Prioritized = "prioritized",
    }
}

/// Largest `--hidden_dim`.
pub(crate) const MAX_WIDTH: usize = 1 << 16;
/// Largest `--validation_samples` and `--paper_window`.
pub(crate) const MAX_SAMPLES: usize = 100_000_000;
/// Largest `--policy_lag` (the pipeline keeps that many weight versions).
pub(crate) const MAX_POLICY_LAG: u64 = 100;

/// Every setting of a training run.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[command(rename_all = "snake_case")]
pub struct RunConfig {
    /// Random seed; runs with the same seed and settings are identical.
    #[arg(long, default_value_t = 4444)]
    pub seed: u64,
    /// Grid dimension D.
    #[arg(long, default_value_t = 2)]
    pub ndim: usize,
    /// Grid side H (coordinates 0..H-1).
    #[arg(long, default_value_t = 8)]
    pub height: usize,
    /// Reward family: original, cosine, sparse, deceptive, bitwise_xor, multiplicative_coprime
    /// or conditional_multiscale (docs/rewards.md).
    #[arg(long, default_value_t = RewardKind::Original)]
    pub reward: RewardKind,
    /// torchgfn's difficulty preset of the reward's kwargs: easy, medium, hard, challenging or
    /// impossible (flags and config keys override its values).
    #[arg(long)]
    pub reward_preset: Option<RewardPreset>,
    /// Base reward (default 0.1, or the preset's; must be > 0).
    #[arg(long = "R0")]
    #[serde(alias = "R0")]
    pub r0: Option<f32>,
    /// Outer-ring bonus (default 0.5, or the preset's).
    #[arg(long = "R1")]
    #[serde(alias = "R1")]
    pub r1: Option<f32>,
    /// Thin-band bonus (default 2.0, or the preset's).
    #[arg(long = "R2")]
    #[serde(alias = "R2")]
    pub r2: Option<f32>,
    /// Cosine reward: how close to the peak a mode is (default 0.8, or the preset's).
    #[arg(long)]
    pub mode_gamma: Option<f64>,
    /// Tiered rewards: the weight of each tier, comma-separated (default 1,10,100).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub tier_weights: Option<Vec<f64>>,
    /// bitwise_xor: the constrained dimensions, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub dims_constrained: Option<Vec<usize>>,
    /// bitwise_xor: each tier's inclusive bit window low:high, comma-separated
    /// (default 0:5,0:7,0:9).
    #[arg(long, value_delimiter = ',')]
    pub bits_per_tier: Option<Vec<BitRange>>,
    /// bitwise_xor: each tier's parity system {A = [[..]], c = [..]} ({} for even parity);
    /// config file only.
    #[arg(skip)]
    pub parity_checks: Option<Vec<ParityCheck>>,
    /// multiplicative_coprime: the allowed primes, comma-separated (default 2,3,5).
    #[arg(long, value_delimiter = ',')]
    pub primes: Option<Vec<u64>>,
    /// multiplicative_coprime: each tier's exponent cap, comma-separated (default 2 each).
    #[arg(long, value_delimiter = ',')]
    pub exponent_caps: Option<Vec<u32>>,
    /// multiplicative_coprime, conditional_multiscale: the constrained dimensions,
    /// comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub active_dims: Option<Vec<usize>>,
    /// multiplicative_coprime: pairs i:j of active dimensions that share no prime,
    /// comma-separated (default none).
    #[arg(long, value_delimiter = ',')]
    pub coprime_pairs: Option<Vec<DimPair>>,
    /// multiplicative_coprime: each tier's target lcm, comma-separated, 0 for none (default
    /// none).
    #[arg(long, value_delimiter = ',')]
    pub target_lcms: Option<Vec<u64>>,
    /// conditional_multiscale: the digit base B; --height must be a power of it (default 4).
    #[arg(long)]
    pub base: Option<u32>,
    /// conditional_multiscale: digit values that pass a tier (default B/2).
    #[arg(long)]
    pub filter_width: Option<u32>,
    /// conditional_multiscale: the seed of the shift coefficients (torchgfn's `seed`,
    /// default 42).
    #[arg(long)]
    pub reward_seed: Option<u64>,
    /// conditional_multiscale: each tier's modulus of the digit sum, comma-separated, 0 for
    /// none (default none).
    #[arg(long, value_delimiter = ',')]
    pub cross_dim_mods: Option<Vec<u32>>,
    /// Loss: FM, TB, DB, SubTB, ZVar or ModifiedDB.
    #[arg(long, default_value_t = Loss::Tb)]
    pub loss: Loss,
    /// SubTB weighting: geometric_within, geometric, equal, equal_within, TB, DB, ModifiedDB.
    #[arg(long = "subTB_weighting", default_value_t = SubTbWeighting::GeometricWithin)]
    #[serde(alias = "subTB_weighting")]
    pub subtb_weighting: SubTbWeighting,
    /// SubTB lambda.
    #[arg(long = "subTB_lambda", default_value_t = 0.9)]
    #[serde(alias = "subTB_lambda")]
    pub subtb_lambda: f32,
    /// Regression loss on each balance residual: squared, half_squared, shifted_cosh or linex.
    #[arg(long, default_value_t = LossFn::Squared)]
    pub loss_fn: LossFn,
    /// Linex's α (non-zero; with `--loss_fn linex`).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub linex_alpha: f32,
    /// Trajectories per learner step.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Total trajectory budget; the run makes ceil(n_trajectories / batch_size) steps.
    #[arg(long, default_value_t = 1_000_000)]
    pub n_trajectories: u64,
    /// Learning rate of the networks.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Learning rate of logZ (TB).
    #[arg(long = "lr_Z", default_value_t = 0.1)]
    #[serde(alias = "lr_Z")]
    pub lr_z: f64,
    /// AdamW decoupled weight decay of the networks (logZ gets none).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// How the learning rates change over the run: constant (torchgfn) or cosine.
    #[arg(long, default_value_t = LrSchedule::Constant)]
    pub lr_schedule: LrSchedule,
    /// The last step's learning rates as a fraction of the set ones (cosine schedule).
    #[arg(long, default_value_t = 0.0)]
    pub lr_min_ratio: f64,
    /// Width of the hidden layers.
    #[arg(long, default_value_t = 256)]
    pub hidden_dim: usize,
    /// Number of hidden layers (Linear + activation), the input projection included.
    #[arg(long, default_value_t = 2)]
    pub n_hidden: usize,
    /// Nonlinearity after each hidden layer: relu or leaky_relu (slope 0.01).
    #[arg(long, default_value_t = Activation::Relu)]
    pub activation: Activation,
    /// PB and logF share the trunk of PF.
    #[arg(long)]
    pub tied: bool,
    /// Fixed uniform backward policy instead of a learned PB.
    #[arg(long)]
    pub uniform_pb: bool,
    /// Lookup tables instead of MLPs (needs the enum preprocessor, the default with --tabular).
    #[arg(long)]
    pub tabular: bool,
    /// State encoding: khot, onehot, identity or enum (default: khot, enum with --tabular).
    #[arg(long)]
    pub preprocessor: Option<Preprocessor>,
    /// Noisy layers at the output end of PF (and PB), noise resampled every step.
    #[arg(long, default_value_t = 0)]
    pub n_noisy_layers: usize,
    /// Initial sigma of the noisy output layer.
    #[arg(long, default_value_t = 0.5)]
    pub noisy_std_init: f32,
    /// Probability of a uniformly random allowed action while sampling.
    #[arg(long, default_value_t = 0.0)]
    pub epsilon: f32,
    /// Sampling temperature (logits are divided by it).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Replay buffer capacity in trajectories; 0 hands each batch to the learner once.
    #[arg(long, default_value_t = 0)]
    pub replay_buffer_size: usize,
    /// What a full replay buffer keeps: fifo (newest) or prioritized (highest reward).
    #[arg(long, default_value_t = ReplayPolicy::Fifo)]
    pub replay_policy: ReplayPolicy,
    /// Replay: sample in proportion to the reward instead of uniformly.
    #[arg(long)]
    pub prioritized_sampling: bool,
    /// Replay: remove a trajectory after it was handed out this often (0: never).
    #[arg(long, default_value_t = 0)]
    pub max_times_sampled: u32,
    /// Replay: keep a full buffer diverse (torchgfn's norm-based diverse prioritised buffer): a
    /// new trajectory needs at least the lowest stored reward and a terminal state farther than
    /// `--cutoff_distance` from every better one.
    #[arg(long)]
    pub diverse_replay_buffer: bool,
    /// Diverse replay: terminal states this close (p-norm) count as the same.
    #[arg(long, default_value_t = 0.1)]
    pub cutoff_distance: f64,
    /// Diverse replay: the p of the p-norm distance.
    #[arg(long, default_value_t = 2)]
    pub p_norm_distance: u32,
    /// Keep trajectories sampled ≈ this × trajectories inserted; the side that is ahead waits
    /// (unset: one sample per insert in one process, no limit across processes).
    #[arg(long)]
    pub samples_per_insert: Option<f64>,
    /// Margin of the samples-per-insert ratio, in trajectories.
    #[arg(long, default_value_t = 0.0)]
    pub spi_error: f64,
    /// Trajectories the buffer holds before it serves any (default: one batch).
    #[arg(long)]
    pub min_size_to_sample: Option<usize>,
    /// How many weight versions the sampler may lag behind the learner (0: strict on-policy;
    /// 1 overlaps sampling with learning). Runs stay reproducible for any value.
    #[arg(long, default_value_t = 0)]
    pub policy_lag: u64,
    /// Strict on-policy across processes: samplers sample batch k with weights k, the buffer
    /// hands each trajectory out once, and learners only take trajectories of their version.
    #[arg(long)]
    pub sync: bool,
    /// Drop trajectories more than this many weight versions older than the learner.
    #[arg(long)]
    pub max_policy_lag: Option<u64>,
    /// Validate every this many steps (and at the last step).
    #[arg(long, default_value_t = 100)]
    pub validation_interval: u64,
    /// Terminal states drawn from the policy per validation for the sampled metrics.
    #[arg(long, default_value_t = 200_000)]
    pub validation_samples: usize,
    /// Visited training states in the TB paper's moving-window L1.
    #[arg(long, default_value_t = 200_000)]
    pub paper_window: usize,
    /// Threads of the CPU backend's matrix kernels.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Where the sampler and learner compute: cpu, cuda or cuda:N (NVIDIA GPU N; a build with
    /// the `cuda` feature), wgpu or wgpu:N (any GPU through Vulkan, Metal or DirectX 12; a
    /// build with the `wgpu` feature).
    #[arg(long, default_value_t = Device::Cpu)]
    pub device: Device,
    /// Record every trajectory batch the buffer receives into this folder (a dump).
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Folder for checkpoints (written atomically every `--checkpoint_every` steps and after the
    /// last step).
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Steps between checkpoints (with `--checkpoint_dir`).
    #[arg(long, default_value_t = 1000)]
    pub checkpoint_every: u64,
    /// Continue from the checkpoint in `--checkpoint_dir`, if there is one.
    #[arg(long)]
    pub resume: bool,
    /// Folder for the metrics file, the config and the plots.
    #[arg(long, default_value = "runs/latest")]
    pub run_dir: PathBuf,
    /// Also write the metrics, the config and the plots as TensorBoard event files in the run
    /// folder (`--tensorboard false` to turn off).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub tensorboard: bool,
}

#[derive(Parser)]
struct DefaultsOnly {
    #[command(flatten)]
    config: RunConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        DefaultsOnly::parse_from(["gfn"]).config
    }
}

/// A configuration that cannot be run, with the flag to blame.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Grid(#[from] GridError),
    #[error(transparent)]
    Reward(#[from] RewardError),
    #[error("{flag} must be {rule} (got {value})")]
    OutOfRange {
        flag: &'static str,
        rule: &'static str,
        value: String,
    },
    #[error("--tabular needs the enum preprocessor (got --preprocessor {0})")]
    TabularPreprocessor(Preprocessor),
    #[error("the enum preprocessor only works with --tabular")]
    EnumWithoutTabular,
    #[error("--preprocessor {0} needs a grid small enough to enumerate")]
    TooLargeForPreprocessor(Preprocessor),
    #[error("{0}")]
    Incompatible(&'static str),
    #[error("cannot read config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    /// The configured device cannot be used by this build or on this machine.
    #[error("{0}")]
    Unavailable(String),
    /// A flag that the chosen command cannot honour.
    #[error("{flag} has no meaning in {mode}: {why}")]
    NotInMode {
        flag: &'static str,
        mode: &'static str,
        why: &'static str,
    },
    /// Learner replicas split each batch evenly.
    #[error("--batch_size {batch} is not divisible by the {learners} learners")]
    UnevenBatch { batch: usize, learners: usize },
    /// The configuration has a value TOML cannot hold (a non-UTF-8 path).
    #[error("the configuration cannot be written as TOML: {0}")]
    NotToml(String),
}

pub(crate) fn check(
    ok: bool,
    flag: &'static str,
    rule: &'static str,
    value: impl ToString,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            flag,
            rule,
            value: value.to_string(),
        })
    }
}

impl RunConfig {
    /// Reads a TOML config file; missing fields take their defaults, unknown fields are errors.
    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        let err = |reason: String| ConfigError::File {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        toml::from_str(&text).map_err(|e| err(e.message().replace('\n', " ")))
    }

    /// The configuration as TOML, as saved next to a run's metrics.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::NotToml(e.to_string()))
    }

    /// The configuration as a TOML table (to merge or compare settings).
    pub fn to_table(&self) -> Result<toml::Table, ConfigError> {
        toml::Table::try_from(self).map_err(|e| ConfigError::NotToml(e.to_string()))
    }

    /// The grid of this run.
    pub fn grid(&self) -> Result<HyperGrid, ConfigError> {
        self.env().grid()
    }

    /// The reward function of this run.
    pub fn reward_fn(&self) -> Result<Reward, ConfigError> {
        self.env().reward_fn()
    }

    /// The reward kwargs this configuration sets (flags and config keys).
    pub fn reward_kwargs(&self) -> RewardKwargs {
        RewardKwargs {
            r0: self.r0,
            r1: self.r1,
            r2: self.r2,
            mode_gamma: self.mode_gamma,
            tier_weights: self.tier_weights.clone(),
            dims_constrained: self.dims_constrained.clone(),
            bits_per_tier: self.bits_per_tier.clone(),
            parity_checks: self.parity_checks.clone(),
            primes: self.primes.clone(),
            exponent_caps: self.exponent_caps.clone(),
            active_dims: self.active_dims.clone(),
            coprime_pairs: self.coprime_pairs.clone(),
            target_lcms: self.target_lcms.clone(),
            base: self.base,
            filter_width: self.filter_width,
            reward_seed: self.reward_seed,
            cross_dim_mods: self.cross_dim_mods.clone(),
        }
    }

    /// The preprocessor in effect (explicit, or the default for the estimator kind).
    pub fn preprocessor(&self) -> Preprocessor {
        self.preprocessor.unwrap_or(if self.tabular {
            Preprocessor::Enum
        } else {
            Preprocessor::KHot
        })
    }

    /// The settings that decide what a run computes, with those a resumed run may change (its
    /// budget, where it writes, how often it validates and checkpoints, its threads) set to
    /// their defaults: a checkpoint resumes only under the same ones.
    pub fn defining(&self) -> RunConfig {
        let d = RunConfig::default();
        RunConfig {
            n_trajectories: d.n_trajectories,
            run_dir: d.run_dir,
            checkpoint_dir: d.checkpoint_dir,
            checkpoint_every: d.checkpoint_every,
            resume: d.resume,
            record: d.record,
            threads: d.threads,
            validation_interval: d.validation_interval,
            validation_samples: d.validation_samples,
            tensorboard: d.tensorboard,
            ..self.with_reward_in_effect()
        }
    }

    /// This configuration with R0, R1, R2 and mode_gamma as they take effect: a checkpoint or a
    /// run folder written when they were plain numbers (0.1 by default) matches an unset flag
    /// of the same value.
    pub fn with_reward_in_effect(&self) -> RunConfig {
        let env = self.env();
        RunConfig {
            r0: Some(env.r0),
            r1: Some(env.r1),
            r2: Some(env.r2),
            mode_gamma: Some(env.mode_gamma),
            ..self.clone()
        }
    }

    /// Number of learner steps: `ceil(n_trajectories / batch_size)`.
    pub fn n_iterations(&self) -> u64 {
        self.n_trajectories.div_ceil(self.batch_size.max(1) as u64)
    }

    /// The learning-rate multiplier over this run's steps.
    pub fn lr_scale(&self) -> LrScale {
        LrScale {
            schedule: self.lr_schedule,
            min_ratio: self.lr_min_ratio,
            steps: self.n_iterations(),
        }
    }

    /// Checks every setting, section by section; the error names the offending flag.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.run().validate()?;
        self.reward_kwargs().refuse_foreign(self.reward)?;
        let env = self.env();
        env.validate()?;
        self.model().validate(&env.grid()?)?;
        self.objective().validate()?;
        self.optim().validate()?;
        self.sampling().validate()?;
        self.buffer().validate()?;
        self.validation().validate()?;
        // TOML integers are signed 64-bit: larger values could not be saved with the run.
        for (flag, value) in [
            ("--seed", self.seed),
            ("--n_trajectories", self.n_trajectories),
            ("--validation_interval", self.validation_interval),
            ("--checkpoint_every", self.checkpoint_every),
            ("--max_policy_lag", self.max_policy_lag.unwrap_or(0)),
            ("--replay_buffer_size", self.replay_buffer_size as u64),
            (
                "--min_size_to_sample",
                self.min_size_to_sample.unwrap_or(0) as u64,
            ),
        ] {
            check(value <= i64::MAX as u64, flag, "at most 2^63 - 1", value)?;
        }
        Ok(())
    }
}

/// Whether a samples-per-insert limiter (Reverb's rule, as the buffer applies it) reaches a
/// state where a batch of `batch` trajectories can neither be inserted nor sampled. Simulated
/// over enough events to reach its steady state.
pub fn limiter_stalls(spi: f64, error: f64, min_size: u64, batch: u64) -> bool {
    let (mut inserted, mut sampled) = (0u64, 0u64);
    let owed = |i: u64, s: u64| spi * i as f64 - s as f64;
    for _ in 0..10_000 {
        let can_sample =
            inserted >= min_size && owed(inserted, sampled) - batch as f64 >= -error - 1e-9;
        let can_insert = inserted + batch <= min_size
            || owed(inserted, sampled) + spi * batch as f64 <= spi * min_size as f64 + error + 1e-9;
        if can_sample {
            sampled += batch;
        } else if can_insert {
            inserted += batch;
        } else {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let c = RunConfig::default();
        assert_eq!(c.batch_size, 16);
        assert_eq!(c.loss, Loss::Tb);
        c.validate().unwrap();
        assert_eq!(c.n_iterations(), 62_500);
    }

    #[test]
    fn toml_round_trip_and_aliases() {
        let c = RunConfig {
            seed: 7,
            loss: Loss::SubTb,
            ..RunConfig::default()
        };
        let back: RunConfig = toml::from_str(&c.to_toml().unwrap()).unwrap();
        assert_eq!(back, c);
        let t: RunConfig = toml::from_str("R0 = 0.01\nloss = \"DB\"\nlr_Z = 0.5").unwrap();
        assert_eq!((t.r0, t.loss, t.lr_z), (Some(0.01), Loss::Db, 0.5));
        assert!(toml::from_str::<RunConfig>("no_such_flag = 1").is_err());
    }

    #[test]
    fn reward_kwargs_presets_and_overrides() {
        // A preset fills the kwargs it has; explicit keys override them.
        let text = "reward = \"multiplicative_coprime\"\nreward_preset = \"medium\"\nndim = 4\n\
                    height = 16\nR0 = 0.001\nexponent_caps = [1, 1, 2, 2]\n";
        let c: RunConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        let Some(crate::tiered::TieredParams::MultiplicativeCoprime {
            primes,
            exponent_caps,
            active_dims,
            ..
        }) = c.env().tiered.as_deref().cloned()
        else {
            panic!("{:?}", c.env())
        };
        assert_eq!(primes, vec![2, 3, 5, 7]);
        assert_eq!(exponent_caps, vec![1, 1, 2, 2]);
        assert_eq!(active_dims, vec![0, 1, 2, 3], "first 5 dims, clamped to 4");
        assert_eq!(c.env().r0, 0.001);
        // Every kwarg round-trips through TOML, parity systems included.
        let text = "reward = \"bitwise_xor\"\nndim = 3\nheight = 8\ntier_weights = [1.0, 2.0]\n\
                    bits_per_tier = [[0, 1], [0, 2]]\ndims_constrained = [0, 2]\n\
                    parity_checks = [{}, { A = [[1, 1]], c = [1] }]\n";
        let c: RunConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        let back: RunConfig = toml::from_str(&c.to_toml().unwrap()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.env(), c.env());
        // Kwargs the reward does not read are refused, naming the flag.
        let bad = |text: &str| {
            let c: RunConfig = toml::from_str(text).unwrap();
            c.validate().unwrap_err().to_string()
        };
        assert!(bad("primes = [2, 3]").contains("--primes"));
        assert!(bad("reward = \"cosine\"\nbase = 4").contains("--base"));
        assert!(bad("reward = \"bitwise_xor\"\nR1 = 0.3").contains("--R1"));
        assert!(bad("mode_gamma = 0.9").contains("--mode_gamma"));
        assert!(bad("reward = \"conditional_multiscale\"\nheight = 8").contains("power"));
        assert!(bad("reward = \"bitwise_xor\"\ndims_constrained = [2]").contains("dimension 2"));
        assert!(bad("reward = \"bitwise_xor\"\ntier_weights = [1.0]").contains("bits_per_tier"));
        assert!(bad("reward = \"multiplicative_coprime\"\nprimes = [1]").contains("--primes"));
        assert!(
            bad("reward = \"bitwise_xor\"\ntier_weights = [-1.0, 1.0, 1.0]")
                .contains("--tier_weights")
        );
        let cross = "reward = \"conditional_multiscale\"\nheight = 16\ntier_weights = [1.0]\n\
                     cross_dim_mods = [3]";
        assert!(bad(cross).contains("--cross_dim_mods"));
        let parity = "reward = \"bitwise_xor\"\nparity_checks = [{ A = [[1]], c = [0] }, {}, {}]";
        assert!(bad(parity).contains("parity_checks tier 0"));
        assert!(toml::from_str::<RunConfig>("reward_preset = \"trivial\"").is_err());
    }

    /// Checkpoints store the configuration: one written when R0, R1 and R2 were plain numbers
    /// still reads, and resumes a run that leaves them at their defaults.
    #[test]
    fn older_configurations_still_read_and_match() {
        #[derive(Serialize)]
        struct Old {
            seed: u64,
            r0: f32,
            r1: f32,
            r2: f32,
        }
        let old = Old {
            seed: 4444,
            r0: 0.1,
            r1: 0.5,
            r2: 2.0,
        };
        let bytes = rmp_serde::to_vec_named(&old).unwrap();
        let back: RunConfig = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back.r0, Some(0.1));
        assert_eq!(back.defining(), RunConfig::default().defining());
        let changed = RunConfig {
            r0: Some(0.01),
            ..RunConfig::default()
        };
        assert_ne!(back.defining(), changed.defining());
    }

    #[test]
    fn devices_parse_and_round_trip() {
        assert_eq!("cpu".parse(), Ok(Device::Cpu));
        assert_eq!("CUDA".parse(), Ok(Device::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(Device::Cuda(3)));
        assert_eq!("wgpu".parse(), Ok(Device::Wgpu(None)));
        assert_eq!("WGPU:2".parse(), Ok(Device::Wgpu(Some(2))));
        assert_eq!(Device::Wgpu(Some(2)).to_string(), "wgpu:2");
        for bad in ["cuda:", "cuda:x", "tpu", "cuda:-1", "wgpu:", "wgpu:a"] {
            assert!(bad.parse::<Device>().unwrap_err().contains(bad), "{bad}");
        }
        let c = RunConfig {
            device: Device::Cuda(1),
            ..RunConfig::default()
        };
        let back: RunConfig = toml::from_str(&c.to_toml().unwrap()).unwrap();
        assert_eq!(back.device, Device::Cuda(1));
        assert!(toml::from_str::<RunConfig>("device = \"gpu:1\"").is_err());
    }

    #[test]
    fn bad_values_name_the_flag() {
        let bad = |f: fn(&mut RunConfig)| {
            let mut c = RunConfig::default();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(bad(|c| c.ndim = 0).contains("--ndim"));
        assert!(bad(|c| c.height = 1).contains("--height"));
        assert!(bad(|c| c.r0 = Some(0.0)).contains("--R0"));
        assert!(bad(|c| c.batch_size = 0).contains("--batch_size"));
        assert!(bad(|c| {
            c.tabular = true;
            c.preprocessor = Some(Preprocessor::KHot)
        })
        .contains("--tabular"));
        assert!(bad(|c| c.height = 40_000).contains("65535"));
        assert!(bad(|c| c.hidden_dim = 1 << 20).contains("--hidden_dim"));
        assert!(bad(|c| c.paper_window = usize::MAX).contains("--paper_window"));
        assert!(bad(|c| c.validation_samples = usize::MAX).contains("--validation_samples"));
        assert!(bad(|c| c.policy_lag = u64::MAX).contains("--policy_lag"));
        assert!(bad(|c| c.samples_per_insert = Some(f64::NAN)).contains("--samples_per_insert"));
        assert!(bad(|c| c.spi_error = -1.0).contains("--spi_error"));
        assert!(bad(|c| c.lr_min_ratio = 1.5).contains("--lr_min_ratio"));
        assert!(bad(|c| c.lr_min_ratio = f64::NAN).contains("--lr_min_ratio"));
        // Limiters that would stall, and buffer settings that cannot serve.
        assert!(bad(|c| {
            c.replay_buffer_size = 64;
            c.samples_per_insert = Some(0.25)
        })
        .contains("--spi_error"));
        assert!(bad(|c| c.samples_per_insert = Some(4.0)).contains("--replay_buffer_size"));
        assert!(bad(|c| c.diverse_replay_buffer = true).contains("--replay_buffer_size"));
        assert!(bad(|c| {
            c.sync = true;
            c.replay_buffer_size = 64
        })
        .contains("--sync"));
        assert!(!limiter_stalls(4.0, 0.0, 16, 16));
        assert!(!limiter_stalls(1.0, 0.0, 16, 16));
        assert!(!limiter_stalls(0.25, 16.0, 16, 16));
        // A replay buffer smaller than a batch could never serve one.
        assert!(bad(|c| c.replay_buffer_size = 8).contains("--replay_buffer_size"));
        // TOML holds signed 64-bit integers: a larger seed would be lost from config.toml.
        assert!(bad(|c| c.seed = u64::MAX).contains("--seed"));
        let c = RunConfig {
            seed: i64::MAX as u64,
            ..RunConfig::default()
        };
        assert!(c.validate().is_ok());
        assert_eq!(c.to_table().unwrap()["seed"].as_integer(), Some(i64::MAX));
        assert!("XX".parse::<Loss>().unwrap_err().contains("TB"));
        assert_eq!("subtb".parse::<Loss>(), Ok(Loss::SubTb));
    }

    #[test]
    fn cosine_schedule_falls_from_one_to_the_floor() {
        let c = RunConfig {
            n_trajectories: 160,
            lr_schedule: LrSchedule::Cosine,
            lr_min_ratio: 0.1,
            ..RunConfig::default()
        };
        let s = c.lr_scale();
        assert_eq!(s.steps, 10);
        assert_eq!(s.at(0), 1.0);
        assert!((s.at(9) - 0.1).abs() < 1e-12, "{}", s.at(9));
        // Halfway the cosine is at half its swing.
        let mid = LrScale { steps: 3, ..s }.at(1);
        assert!((mid - 0.55).abs() < 1e-12, "{mid}");
        assert!((1..10).all(|t| s.at(t) < s.at(t - 1)));
        // Past the last step it stays at the floor.
        assert_eq!(s.at(50), s.at(9));
        let constant = RunConfig::default().lr_scale();
        assert!([0, 1, 62_499].iter().all(|&t| constant.at(t) == 1.0));
        assert_eq!("COSINE".parse(), Ok(LrSchedule::Cosine));
        let t: RunConfig = toml::from_str("lr_schedule = \"cosine\"\nlr_min_ratio = 0.01").unwrap();
        assert_eq!((t.lr_schedule, t.lr_min_ratio), (LrSchedule::Cosine, 0.01));
    }

    #[test]
    fn every_shipped_config_file_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let c = RunConfig::from_toml_file(&path).unwrap();
                c.validate()
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 2, "found {n} config files in {}", dir.display());
        let quickstart = RunConfig::from_toml_file(&dir.join("quickstart.toml")).unwrap();
        assert_eq!(quickstart.lr_schedule, LrSchedule::Cosine);
    }
}
