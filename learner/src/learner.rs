//! The learner: the network on an autodiff backend, AdamW on the flat parameters, one step.

use crate::adamw::{FlatAdamW, ParamGroup};
use crate::inputs::StepInputs;
use crate::loss::{loss, LossConfig};
use gfn_common::config::{
    ConfigError, EnvSection, LrScale, ModelSection, ObjectiveSection, OptimSection,
};
use gfn_common::pipe::Weights;
use gfn_common::rng::{stream_rng, Stream};
use gfn_common::{HyperGrid, Preprocessor, Reward, RunConfig, TrajectoryBatch};
use gfn_nn::backend::{cpu_device, Cpu};
use gfn_nn::burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use gfn_nn::burn::optim::GradientsParams;
use gfn_nn::burn::tensor::backend::{AutodiffBackend, Backend};
use gfn_nn::burn::tensor::Tensor;
use gfn_nn::{params, GflowNet, NetConfig};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::time::{Duration, Instant};

/// Keeps learner replicas identical: gradient averaging, the initial broadcast, and checksum
/// gathering. One process needs none of it ([`LocalSync`]); the multi-process build uses MPI.
pub trait GradientSync {
    /// Number of replicas.
    fn world_size(&self) -> usize;
    /// Replaces `grads` by the mean over replicas.
    fn all_reduce_mean(&mut self, grads: &mut [f32]);
    /// This replica's rank; rank 0 publishes weights and validates.
    fn rank(&self) -> usize {
        0
    }
    /// Overwrites `params` with rank 0's values.
    fn broadcast(&mut self, _params: &mut [f32]) {}
    /// Every replica's `value`, in rank order.
    fn gather(&mut self, value: u64) -> Vec<u64> {
        vec![value]
    }
    /// Overwrites `bytes` with rank 0's (a checkpoint read by rank 0 only).
    fn broadcast_bytes(&mut self, _bytes: &mut Vec<u8>) {}
    /// Whether any replica was asked to stop: all of them then stop at the same step.
    fn agree_to_stop(&mut self, mine: bool) -> bool {
        mine
    }
}

/// A single learner: nothing to synchronise.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalSync;

impl GradientSync for LocalSync {
    fn world_size(&self) -> usize {
        1
    }
    fn all_reduce_mean(&mut self, _grads: &mut [f32]) {}
}

/// Where the time of one step went, and its loss.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepStats {
    pub loss: f32,
    pub prepare: Duration,
    pub forward: Duration,
    pub backward: Duration,
    pub sync: Duration,
    pub optimizer: Duration,
    /// Distinct states evaluated by the networks.
    pub rows: usize,
}

/// The training side of a run.
pub struct Learner<B: AutodiffBackend> {
    net: GflowNet<B>,
    /// The same network on the CPU, for validation and plots whatever the learner's device.
    cpu_net: GflowNet<Cpu>,
    /// The authoritative copy of the parameters, in module order.
    params: Vec<f32>,
    optim: FlatAdamW,
    schedule: LrScale,
    loss: LossConfig,
    grid: HyperGrid,
    reward: Reward,
    pre: Preprocessor,
    seed: u64,
    device: B::Device,
    version: u64,
}

/// The sections of a run's configuration that a learner needs.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnerSpec {
    pub env: EnvSection,
    pub model: ModelSection,
    pub objective: ObjectiveSection,
    pub optim: OptimSection,
    /// Seeds the initial weights and the noise of noisy layers.
    pub seed: u64,
}

impl From<&RunConfig> for LearnerSpec {
    fn from(cfg: &RunConfig) -> Self {
        Self {
            env: cfg.env(),
            model: cfg.model(),
            objective: cfg.objective(),
            optim: cfg.optim(),
            seed: cfg.seed,
        }
    }
}

impl<B: AutodiffBackend> Learner<B> {
    /// A learner with fresh weights drawn from the run's seed.
    pub fn new(spec: impl Into<LearnerSpec>, device: B::Device) -> Result<Self, ConfigError> {
        let LearnerSpec {
            env,
            model,
            objective,
            optim,
            seed,
        } = spec.into();
        env.validate()?;
        let grid = env.grid()?;
        model.validate(&grid)?;
        objective.validate()?;
        optim.validate()?;
        let net_cfg = NetConfig::new(&model, &grid);
        let net = GflowNet::new(&net_cfg, &mut SmallRng::seed_from_u64(seed), &device);
        let cpu_net = GflowNet::new(&net_cfg, &mut SmallRng::seed_from_u64(seed), &cpu_device());
        let params = params::flatten(&net);
        let n = params.len();
        // logZ, when present, is the last parameter: its own learning rate and no decay.
        let n_net = n - net.log_z.is_some() as usize;
        let mut groups = vec![ParamGroup {
            range: 0..n_net,
            lr: optim.lr,
            weight_decay: optim.weight_decay,
        }];
        if n_net < n {
            groups.push(ParamGroup {
                range: n_net..n,
                lr: optim.lr_z,
                weight_decay: 0.0,
            });
        }
        Ok(Self {
            net,
            cpu_net,
            params,
            optim: FlatAdamW::new(n, groups),
            schedule: optim.schedule,
            loss: LossConfig::new(&objective),
            grid,
            reward: env.reward_fn()?,
            pre: model.preprocessor,
            seed,
            device,
            version: 0,
        })
    }

    /// The grid the learner trains on.
    pub fn grid(&self) -> &HyperGrid {
        &self.grid
    }

    /// Number of optimizer steps taken: the version of the current weights.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The current weights, flat, for the samplers.
    pub fn weights(&self) -> Weights {
        Weights {
            version: self.version,
            params: self.params.clone(),
        }
    }

    /// Replaces the weights (all replicas start from rank 0's).
    pub fn load_weights(&mut self, flat: &[f32]) -> Result<(), params::SizeMismatch> {
        self.net = params::load(self.net.clone(), flat)?;
        self.params = flat.to_vec();
        Ok(())
    }

    /// The optimizer's state (moments and step count), for checkpoints.
    pub fn optimizer(&self) -> &FlatAdamW {
        &self.optim
    }

    /// Restores a checkpointed state: parameters, optimizer and the step count.
    pub fn restore(
        &mut self,
        params: &[f32],
        optim: FlatAdamW,
        version: u64,
    ) -> Result<(), params::SizeMismatch> {
        if optim.check(params.len()).is_err() {
            return Err(params::SizeMismatch {
                expected: params.len(),
                got: optim.m.len(),
            });
        }
        self.load_weights(params)?;
        self.optim = optim;
        self.version = version;
        Ok(())
    }

    /// The current network on the CPU, without autodiff, for evaluation.
    pub fn cpu_net(&self) -> GflowNet<Cpu> {
        params::load(self.cpu_net.clone(), &self.params).expect("parameter count is fixed")
    }

    /// The current value of the logZ parameter (TB), read from the flat parameters.
    pub fn log_z_param(&self) -> Option<f32> {
        // logZ, when present, is the last parameter.
        self.net.log_z.as_ref().and(self.params.last().copied())
    }

    /// The model's estimate of log Z: logZ (TB), logF(s0) (DB, SubTB), or the log of the total
    /// edge flow out of s0 (FM); none for ZVar and ModifiedDB.
    pub fn log_z_estimate(&self) -> Option<f32> {
        if let Some(z) = self.log_z_param() {
            return Some(z);
        }
        let net = self.net.valid();
        let flow_matching = self.loss.loss == gfn_common::Loss::Fm;
        if net.logf.is_none() && !flow_matching {
            return None;
        }
        let s0 = vec![0u16; self.grid.ndim()];
        let input = gfn_nn::policy::encode(&self.grid, self.pre, &s0, &self.device);
        let out = net.forward(&input, None, false, true);
        if flow_matching {
            // Every forward edge of s0 (exit included) is allowed.
            let data = out.pf.into_data().convert::<f32>();
            let flows = data.as_slice::<f32>().ok()?;
            let max = flows.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = flows.iter().map(|f| (f - max).exp()).sum();
            return Some(max + sum.ln());
        }
        out.logf.map(scalar)
    }

    /// One step: evaluate the loss on `batch`, back-propagate, average gradients across
    /// replicas and apply AdamW. The batch must be valid for the run's grid.
    pub fn step(&mut self, batch: &TrajectoryBatch, sync: &mut impl GradientSync) -> StepStats {
        let mut stats = StepStats::default();
        let t0 = Instant::now();
        let inputs = StepInputs::new(&self.grid, &self.reward, batch);
        stats.rows = inputs.distinct.len(&self.grid);
        let mut rng = stream_rng(self.seed, Stream::Learner, self.version);
        let noise = self
            .net
            .is_noisy()
            .then(|| self.net.draw_noise(&mut rng, &self.device));
        let t1 = Instant::now();
        let value = loss(
            &self.net,
            noise.as_ref(),
            &inputs,
            &self.loss,
            &self.grid,
            self.pre,
            &self.device,
        );
        let t2 = Instant::now();
        let grads = GradientsParams::from_grads(value.backward(), &self.net);
        let mut flat = flatten_grads::<B>(&self.net, &grads);
        // Read after the gradients: on a GPU this adds no synchronisation of its own.
        stats.loss = scalar(value);
        let t3 = Instant::now();
        if sync.world_size() > 1 {
            sync.all_reduce_mean(&mut flat);
        }
        let t4 = Instant::now();
        let scale = self.schedule.at(self.version);
        self.optim.step(&mut self.params, &flat, scale);
        self.net = params::load(self.net.clone(), &self.params).expect("parameter count is fixed");
        self.version += 1;
        let t5 = Instant::now();
        stats.prepare = t1 - t0;
        stats.forward = t2 - t1;
        stats.backward = t3 - t2;
        stats.sync = t4 - t3;
        stats.optimizer = t5 - t4;
        stats
    }
}

fn scalar<B: Backend>(t: Tensor<B, 1>) -> f32 {
    t.into_data()
        .convert::<f32>()
        .as_slice::<f32>()
        .ok()
        .and_then(|s| s.first().copied())
        .unwrap_or(f32::NAN)
}

/// Every gradient in module order (zeros for parameters without one).
fn flatten_grads<B: AutodiffBackend>(net: &GflowNet<B>, grads: &GradientsParams) -> Vec<f32> {
    let mut f = GradFlatten::<B> {
        grads,
        out: Vec::with_capacity(net.num_params()),
        _b: Default::default(),
    };
    net.visit(&mut f);
    f.out
}

struct GradFlatten<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    out: Vec<f32>,
    _b: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for GradFlatten<'_, B> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        match self.grads.get::<B::InnerBackend, D>(p.id) {
            Some(t) => {
                let data = t.into_data().convert::<f32>();
                self.out
                    .extend_from_slice(data.as_slice::<f32>().unwrap_or(&[]));
            }
            None => self
                .out
                .extend(std::iter::repeat_n(0.0, p.val().shape().num_elements())),
        }
    }
}
