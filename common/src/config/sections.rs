//! The run configuration by concern. The command line and TOML files stay one flat set of
//! flags ([`RunConfig`], so that every shipped config and every flag name keeps working); each
//! concern is a section derived from it that validates itself, and each library constructor
//! takes only the sections it needs.

use super::{check, ConfigError, LrScale, RunConfig, MAX_POLICY_LAG, MAX_SAMPLES, MAX_WIDTH};
use super::{Activation, Device, Loss, LossFn, ReplayPolicy, SubTbWeighting};
use crate::env::HyperGrid;
use crate::preprocess::Preprocessor;
use crate::presets::{RewardSpec, DEFAULT_MODE_GAMMA};
use crate::reward::{Reward, RewardKind};
use crate::tiered::TieredParams;
use std::path::PathBuf;

/// The environment: the grid and its reward, every reward kwarg resolved (preset and
/// defaults applied). Recordings store it, so that a replay of another environment is refused.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EnvSection {
    pub ndim: usize,
    pub height: usize,
    pub reward: RewardKind,
    pub r0: f32,
    pub r1: f32,
    pub r2: f32,
    /// Absent from recordings made before it existed.
    #[serde(default = "default_mode_gamma")]
    pub mode_gamma: f64,
    /// The tiered rewards' other kwargs.
    #[serde(default)]
    pub tiered: Option<Box<TieredParams>>,
}

fn default_mode_gamma() -> f64 {
    DEFAULT_MODE_GAMMA
}

impl EnvSection {
    /// The grid.
    pub fn grid(&self) -> Result<HyperGrid, ConfigError> {
        Ok(HyperGrid::new(self.ndim, self.height)?)
    }

    /// The reward, as torchgfn defines it.
    pub fn spec(&self) -> RewardSpec {
        RewardSpec {
            kind: self.reward,
            r0: self.r0,
            r1: self.r1,
            r2: self.r2,
            mode_gamma: self.mode_gamma,
            tiered: self.tiered.as_deref().cloned(),
        }
    }

    /// The reward function, refused where it is 0 somewhere (log R = −inf).
    pub fn reward_fn(&self) -> Result<Reward, ConfigError> {
        let reward = Reward::from_spec(&self.spec(), self.ndim, self.height)?;
        reward.check_positive()?;
        Ok(reward)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.grid()?;
        self.reward_fn()?;
        Ok(())
    }
}

impl std::fmt::Display for EnvSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (d, h, kind) = (self.ndim, self.height, self.reward);
        match &self.tiered {
            Some(t) => write!(
                f,
                "{d}-D H={h}, {kind} reward (R0 {}, tier weights {:?})",
                self.r0,
                t.tier_weights()
            ),
            None => write!(
                f,
                "{d}-D H={h}, {kind} reward (R0 {}, R1 {}, R2 {})",
                self.r0, self.r1, self.r2
            ),
        }
    }
}

/// The estimators: which networks exist (they depend on the loss) and their shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelSection {
    pub loss: Loss,
    pub hidden_dim: usize,
    pub n_hidden: usize,
    pub activation: Activation,
    pub tied: bool,
    pub uniform_pb: bool,
    pub tabular: bool,
    /// The preprocessor in effect (explicit, or the default for the estimator kind).
    pub preprocessor: Preprocessor,
    pub n_noisy_layers: usize,
    pub noisy_std_init: f32,
}

impl ModelSection {
    /// Checks the estimators against the grid they will see.
    pub fn validate(&self, grid: &HyperGrid) -> Result<(), ConfigError> {
        let (width, depth) = (self.hidden_dim, self.n_hidden);
        check(width > 0, "--hidden_dim", "at least 1", width)?;
        check(width <= MAX_WIDTH, "--hidden_dim", "at most 65536", width)?;
        check(depth > 0, "--n_hidden", "at least 1", depth)?;
        check(depth <= 64, "--n_hidden", "at most 64", depth)?;
        let noisy = self.n_noisy_layers;
        check(
            noisy <= depth,
            "--n_noisy_layers",
            "at most --n_hidden",
            noisy,
        )?;
        let sigma = self.noisy_std_init;
        let finite = sigma.is_finite() && sigma >= 0.0;
        check(finite, "--noisy_std_init", "a finite number >= 0", sigma)?;
        let pre = self.preprocessor;
        if self.tabular && pre != Preprocessor::Enum {
            return Err(ConfigError::TabularPreprocessor(pre));
        }
        if !self.tabular && pre == Preprocessor::Enum {
            return Err(ConfigError::EnumWithoutTabular);
        }
        let enumerable = grid.enumerable_states().is_some();
        if matches!(pre, Preprocessor::OneHot | Preprocessor::Enum) && !enumerable {
            return Err(ConfigError::TooLargeForPreprocessor(pre));
        }
        let incompatible = |yes: bool, why: &'static str| match yes {
            true => Err(ConfigError::Incompatible(why)),
            false => Ok(()),
        };
        incompatible(
            self.tabular && noisy > 0,
            "--n_noisy_layers needs MLP estimators, not --tabular",
        )?;
        incompatible(
            self.tabular && self.tied,
            "--tied shares an MLP trunk; tables have none",
        )?;
        incompatible(
            self.loss == Loss::Fm && self.uniform_pb,
            "--uniform_pb has no meaning with --loss FM (FM learns edge flows, no PB)",
        )
    }
}

/// The training objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObjectiveSection {
    pub loss: Loss,
    pub subtb_weighting: SubTbWeighting,
    pub subtb_lambda: f32,
    pub loss_fn: LossFn,
    pub linex_alpha: f32,
}

impl ObjectiveSection {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = self.subtb_lambda;
        let ok = l.is_finite() && l > 0.0;
        check(ok, "--subTB_lambda", "a finite number > 0", l)?;
        let a = self.linex_alpha;
        check(
            a.is_finite() && a != 0.0,
            "--linex_alpha",
            "finite and non-zero",
            a,
        )?;
        match self.loss_fn != LossFn::Linex && a != 1.0 {
            true => Err(ConfigError::Incompatible(
                "--linex_alpha has no meaning without --loss_fn linex",
            )),
            false => Ok(()),
        }
    }

    /// The function applied to each residual, with its parameter.
    pub fn regression(&self) -> Regression {
        match self.loss_fn {
            LossFn::Squared => Regression::Squared,
            LossFn::HalfSquared => Regression::HalfSquared,
            LossFn::ShiftedCosh => Regression::ShiftedCosh,
            LossFn::Linex => Regression::Linex {
                alpha: self.linex_alpha,
            },
        }
    }
}

/// A regression loss g applied to each balance residual t (see [`LossFn`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Regression {
    Squared,
    HalfSquared,
    ShiftedCosh,
    Linex { alpha: f32 },
}

impl Regression {
    /// Where exponentials are clamped (torchgfn's bound): e^80 is finite in float32.
    pub const EXP_CLAMP: f32 = 80.0;

    /// g(t) in float64, the reference the tensor version is tested against.
    pub fn value(&self, t: f64) -> f64 {
        let c = Self::EXP_CLAMP as f64;
        match *self {
            Self::Squared => t * t,
            Self::HalfSquared => 0.5 * t * t,
            Self::ShiftedCosh => {
                let t = t.clamp(-c, c);
                t.exp() + (-t).exp() - 2.0
            }
            Self::Linex { alpha } => {
                let a = alpha as f64;
                ((a * t).clamp(-c, c).exp() - a * t - 1.0) / (a * a)
            }
        }
    }
}

/// The optimizer and its learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimSection {
    pub lr: f64,
    pub lr_z: f64,
    pub weight_decay: f64,
    pub schedule: LrScale,
}

impl OptimSection {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |x: f64| x.is_finite() && x > 0.0;
        check(positive(self.lr), "--lr", "a finite number > 0", self.lr)?;
        check(
            positive(self.lr_z),
            "--lr_Z",
            "a finite number > 0",
            self.lr_z,
        )?;
        let wd = self.weight_decay;
        let ok = wd.is_finite() && wd >= 0.0;
        check(ok, "--weight_decay", "a finite number >= 0", wd)?;
        let m = self.schedule.min_ratio;
        check(
            (0.0..=1.0).contains(&m),
            "--lr_min_ratio",
            "between 0 and 1",
            m,
        )
    }
}

/// How samplers roll out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingSection {
    pub seed: u64,
    pub epsilon: f32,
    pub temperature: f32,
    pub policy_lag: u64,
    pub device: Device,
}

impl SamplingSection {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let e = self.epsilon;
        check((0.0..=1.0).contains(&e), "--epsilon", "in [0, 1]", e)?;
        let t = self.temperature;
        let ok = t.is_finite() && t > 0.0;
        check(ok, "--temperature", "a finite number > 0", t)?;
        let lag = self.policy_lag;
        check(lag <= MAX_POLICY_LAG, "--policy_lag", "at most 100", lag)
    }
}

/// What a buffer keeps and how fast it lets data through.
#[derive(Debug, Clone, PartialEq)]
pub struct BufferSection {
    pub seed: u64,
    /// Trajectories per learner step, all replicas together.
    pub batch_size: usize,
    /// Learner steps in the run (the trajectory budget).
    pub n_steps: u64,
    pub replay_buffer_size: usize,
    pub replay_policy: ReplayPolicy,
    pub prioritized_sampling: bool,
    pub max_times_sampled: u32,
    pub diverse_replay_buffer: bool,
    pub cutoff_distance: f64,
    pub p_norm_distance: u32,
    pub samples_per_insert: Option<f64>,
    pub spi_error: f64,
    /// Trajectories held before any is served.
    pub min_size_to_sample: usize,
    pub sync: bool,
    pub max_policy_lag: Option<u64>,
    /// Where to record what comes in, and who records (for the dump's run id).
    pub record: Option<PathBuf>,
    pub run_dir: PathBuf,
}

impl BufferSection {
    /// The store and the rate limiter must be able to serve.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let size = self.replay_buffer_size;
        let ok = size == 0 || size >= self.batch_size;
        let rule = "0 (no replay) or at least --batch_size";
        check(ok, "--replay_buffer_size", rule, size)?;
        let c = self.cutoff_distance;
        check(c.is_finite(), "--cutoff_distance", "a finite number", c)?;
        let p = self.p_norm_distance;
        check(
            (1..=64).contains(&p),
            "--p_norm_distance",
            "between 1 and 64",
            p,
        )?;
        let e = self.spi_error;
        let ok = e.is_finite() && e >= 0.0;
        check(ok, "--spi_error", "a finite number >= 0", e)?;
        if self.diverse_replay_buffer && size == 0 {
            return Err(ConfigError::Incompatible(
                "--diverse_replay_buffer needs a replay buffer (--replay_buffer_size)",
            ));
        }
        if self.sync && size > 0 {
            return Err(ConfigError::Incompatible(
                "--sync uses each trajectory once: it cannot go with --replay_buffer_size",
            ));
        }
        let Some(spi) = self.samples_per_insert else {
            return Ok(());
        };
        let ok = spi.is_finite() && spi > 0.0;
        check(ok, "--samples_per_insert", "a finite number > 0", spi)?;
        if size == 0 && spi != 1.0 {
            return Err(ConfigError::Incompatible(
                "without a replay buffer each trajectory is used once: --samples_per_insert \
                 other than 1 needs --replay_buffer_size",
            ));
        }
        let min_size = self.min_size_to_sample;
        if size > 0 && min_size > size {
            return Err(ConfigError::Incompatible(
                "--min_size_to_sample is larger than the replay buffer could ever hold",
            ));
        }
        let batch = self.batch_size as u64;
        if super::limiter_stalls(spi, e, min_size as u64, batch) {
            return Err(ConfigError::Incompatible(
                "with these --samples_per_insert, --spi_error and --min_size_to_sample, batches \
                 of --batch_size could neither go in nor come out (raise --spi_error)",
            ));
        }
        Ok(())
    }
}

/// What validation measures and how often.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidationSection {
    pub seed: u64,
    pub interval: u64,
    pub samples: usize,
    pub paper_window: usize,
}

impl ValidationSection {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let i = self.interval;
        check(i > 0, "--validation_interval", "at least 1", i)?;
        let (s, w) = (self.samples, self.paper_window);
        check(
            s <= MAX_SAMPLES,
            "--validation_samples",
            "at most 100000000",
            s,
        )?;
        check(w <= MAX_SAMPLES, "--paper_window", "at most 100000000", w)
    }
}

/// The run itself: budget, seed, threads, device, files.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSection {
    pub seed: u64,
    pub batch_size: usize,
    pub n_trajectories: u64,
    pub threads: usize,
    pub device: Device,
    pub record: Option<PathBuf>,
    pub checkpoint_dir: Option<PathBuf>,
    pub checkpoint_every: u64,
    pub resume: bool,
    pub run_dir: PathBuf,
}

impl RunSection {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let b = self.batch_size;
        check(b > 0, "--batch_size", "at least 1", b)?;
        check(b <= 1 << 20, "--batch_size", "at most 1048576", b)?;
        let n = self.n_trajectories;
        check(n > 0, "--n_trajectories", "at least 1", n)?;
        let t = self.threads;
        check(t > 0, "--threads", "at least 1", t)?;
        check(t <= 1024, "--threads", "at most 1024", t)?;
        let every = self.checkpoint_every;
        check(every > 0, "--checkpoint_every", "at least 1", every)?;
        if self.resume && self.checkpoint_dir.is_none() {
            return Err(ConfigError::Incompatible("--resume needs --checkpoint_dir"));
        }
        Ok(())
    }
}

impl RunConfig {
    /// The environment section.
    pub fn env(&self) -> EnvSection {
        let spec = self
            .reward_kwargs()
            .resolve(self.reward, self.reward_preset, self.ndim);
        EnvSection {
            ndim: self.ndim,
            height: self.height,
            reward: spec.kind,
            r0: spec.r0,
            r1: spec.r1,
            r2: spec.r2,
            mode_gamma: spec.mode_gamma,
            tiered: spec.tiered.map(Box::new),
        }
    }

    /// The estimators section.
    pub fn model(&self) -> ModelSection {
        ModelSection {
            loss: self.loss,
            hidden_dim: self.hidden_dim,
            n_hidden: self.n_hidden,
            activation: self.activation,
            tied: self.tied,
            uniform_pb: self.uniform_pb,
            tabular: self.tabular,
            preprocessor: self.preprocessor(),
            n_noisy_layers: self.n_noisy_layers,
            noisy_std_init: self.noisy_std_init,
        }
    }

    /// The objective section.
    pub fn objective(&self) -> ObjectiveSection {
        ObjectiveSection {
            loss: self.loss,
            subtb_weighting: self.subtb_weighting,
            subtb_lambda: self.subtb_lambda,
            loss_fn: self.loss_fn,
            linex_alpha: self.linex_alpha,
        }
    }

    /// The optimizer section.
    pub fn optim(&self) -> OptimSection {
        OptimSection {
            lr: self.lr,
            lr_z: self.lr_z,
            weight_decay: self.weight_decay,
            schedule: self.lr_scale(),
        }
    }

    /// The sampling section.
    pub fn sampling(&self) -> SamplingSection {
        SamplingSection {
            seed: self.seed,
            epsilon: self.epsilon,
            temperature: self.temperature,
            policy_lag: self.policy_lag,
            device: self.device,
        }
    }

    /// The buffer section.
    pub fn buffer(&self) -> BufferSection {
        BufferSection {
            seed: self.seed,
            batch_size: self.batch_size,
            n_steps: self.n_iterations(),
            replay_buffer_size: self.replay_buffer_size,
            replay_policy: self.replay_policy,
            prioritized_sampling: self.prioritized_sampling,
            max_times_sampled: self.max_times_sampled,
            diverse_replay_buffer: self.diverse_replay_buffer,
            cutoff_distance: self.cutoff_distance,
            p_norm_distance: self.p_norm_distance,
            samples_per_insert: self.samples_per_insert,
            spi_error: self.spi_error,
            min_size_to_sample: self.min_size_to_sample.unwrap_or(self.batch_size),
            sync: self.sync,
            max_policy_lag: self.max_policy_lag,
            record: self.record.clone(),
            run_dir: self.run_dir.clone(),
        }
    }

    /// The validation section.
    pub fn validation(&self) -> ValidationSection {
        ValidationSection {
            seed: self.seed,
            interval: self.validation_interval,
            samples: self.validation_samples,
            paper_window: self.paper_window,
        }
    }

    /// The run section.
    pub fn run(&self) -> RunSection {
        RunSection {
            seed: self.seed,
            batch_size: self.batch_size,
            n_trajectories: self.n_trajectories,
            threads: self.threads,
            device: self.device,
            record: self.record.clone(),
            checkpoint_dir: self.checkpoint_dir.clone(),
            checkpoint_every: self.checkpoint_every,
            resume: self.resume,
            run_dir: self.run_dir.clone(),
        }
    }
}
