//! The learner: the network on an autodiff backend, AdamW, and one training step.

use crate::inputs::StepInputs;
use crate::loss::{loss, LossConfig};
use gfn_common::config::ConfigError;
use gfn_common::pipe::Weights;
use gfn_common::{HyperGrid, Preprocessor, Reward, RunConfig, TrajectoryBatch};
use gfn_nn::burn::module::Module;
use gfn_nn::burn::module::{AutodiffModule, ModuleVisitor, Param};
use gfn_nn::burn::optim::adaptor::OptimizerAdaptor;
use gfn_nn::burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use gfn_nn::burn::tensor::backend::{AutodiffBackend, Backend};
use gfn_nn::burn::tensor::{Tensor, TensorData};
use gfn_nn::{params, GflowNet, NetConfig};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::time::{Duration, Instant};

/// Averages gradients across learner replicas. One process needs none ([`LocalSync`]); the
/// multi-process build all-reduces over MPI.
pub trait GradientSync {
    /// Number of replicas; with 1, gradients are not even flattened.
    fn world_size(&self) -> usize;
    /// Replaces `grads` by the mean over replicas.
    fn all_reduce_mean(&mut self, grads: &mut [f32]);
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
    /// Rows (states) evaluated by the networks.
    pub rows: usize,
}

type Adam<B> = OptimizerAdaptor<AdamW, GflowNet<B>, B>;

/// The training side of a run.
pub struct Learner<B: AutodiffBackend> {
    net: GflowNet<B>,
    optim: Adam<B>,
    optim_z: Adam<B>,
    lr: f64,
    lr_z: f64,
    loss: LossConfig,
    grid: HyperGrid,
    reward: Reward,
    pre: Preprocessor,
    rng: SmallRng,
    device: B::Device,
    version: u64,
}

impl<B: AutodiffBackend> Learner<B> {
    /// A learner with fresh weights drawn from the run's seed.
    pub fn new(cfg: &RunConfig, device: B::Device) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let grid = cfg.grid()?;
        let net = GflowNet::new(
            &NetConfig::from_run(cfg, &grid),
            &mut SmallRng::seed_from_u64(cfg.seed),
            &device,
        );
        let adam = |wd: f64| {
            AdamWConfig::new()
                .with_beta_1(0.9)
                .with_beta_2(0.999)
                .with_epsilon(1e-8)
                .with_weight_decay(wd as f32)
                .init::<B, GflowNet<B>>()
        };
        Ok(Self {
            net,
            optim: adam(cfg.weight_decay),
            optim_z: adam(0.0),
            lr: cfg.lr,
            lr_z: cfg.lr_z,
            loss: LossConfig::from_run(cfg),
            grid,
            reward: cfg.reward_fn()?,
            pre: cfg.preprocessor(),
            rng: SmallRng::seed_from_u64(cfg.seed ^ 0x1EA2_4E42),
            device,
            version: 0,
        })
    }

    /// Number of optimizer steps taken: the version of the current weights.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The current weights, flat, for the samplers.
    pub fn weights(&self) -> Weights {
        Weights {
            version: self.version,
            params: params::flatten(&self.net),
        }
    }

    /// Replaces the weights (all replicas start from rank 0's).
    pub fn load_weights(&mut self, flat: &[f32]) -> Result<(), params::SizeMismatch> {
        self.net = params::load(self.net.clone(), flat)?;
        Ok(())
    }

    /// The network without autodiff, for evaluation.
    pub fn inference_net(&self) -> GflowNet<B::InnerBackend> {
        self.net.valid()
    }

    /// Current logZ (TB), or logF(s0) for DB/SubTB, the model's estimate of log Z.
    pub fn log_z_estimate(&self) -> Option<f32> {
        let net = self.net.valid();
        if let Some(z) = net.log_z_value() {
            return Some(scalar(z));
        }
        net.logf.as_ref()?;
        let s0 = vec![0u16; self.grid.ndim()];
        let input = gfn_nn::policy::encode(&self.grid, self.pre, &s0, &self.device);
        net.forward(&input, None, false, true).logf.map(scalar)
    }

    /// One step: evaluate the loss on `batch`, back-propagate, average gradients across
    /// replicas and apply AdamW. The batch must be valid for the run's grid.
    pub fn step(&mut self, batch: &TrajectoryBatch, sync: &mut impl GradientSync) -> StepStats {
        let mut stats = StepStats::default();
        let t0 = Instant::now();
        let inputs = StepInputs::new(&self.grid, &self.reward, batch);
        stats.rows = inputs.rows;
        let noise = self
            .net
            .is_noisy()
            .then(|| self.net.draw_noise(&mut self.rng, &self.device));
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
        stats.loss = scalar(value.clone());
        let t2 = Instant::now();
        let mut grads = value.backward();
        let z_grads = match &self.net.log_z {
            Some(p) => GradientsParams::from_params(&mut grads, &self.net, &[p.id]),
            None => GradientsParams::new(),
        };
        let mut net_grads = GradientsParams::from_grads(grads, &self.net);
        let t3 = Instant::now();
        let mut z_grads = z_grads;
        if sync.world_size() > 1 {
            (net_grads, z_grads) = self.all_reduce(net_grads, z_grads, sync);
        }
        let t4 = Instant::now();
        self.net = self.optim.step(self.lr, self.net.clone(), net_grads);
        if !z_grads.is_empty() {
            self.net = self.optim_z.step(self.lr_z, self.net.clone(), z_grads);
        }
        self.version += 1;
        let t5 = Instant::now();
        stats.prepare = t1 - t0;
        stats.forward = t2 - t1;
        stats.backward = t3 - t2;
        stats.sync = t4 - t3;
        stats.optimizer = t5 - t4;
        stats
    }

    /// Flattens both gradient sets in module order, averages them across replicas, and
    /// rebuilds them. Parameters without a gradient get zeros on every replica alike.
    fn all_reduce(
        &self,
        net_grads: GradientsParams,
        z_grads: GradientsParams,
        sync: &mut impl GradientSync,
    ) -> (GradientsParams, GradientsParams) {
        let z_id = self.net.log_z.as_ref().map(|p| p.id);
        let mut flat = GradFlatten::<B> {
            net: &net_grads,
            z: &z_grads,
            out: vec![],
            _b: Default::default(),
        };
        self.net.visit(&mut flat);
        let mut values = flat.out;
        sync.all_reduce_mean(&mut values);
        let mut rebuild = GradRebuild::<B> {
            src: &values,
            offset: 0,
            z_id,
            net: GradientsParams::new(),
            z: GradientsParams::new(),
            _b: Default::default(),
        };
        self.net.visit(&mut rebuild);
        (rebuild.net, rebuild.z)
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

struct GradFlatten<'a, B: AutodiffBackend> {
    net: &'a GradientsParams,
    z: &'a GradientsParams,
    out: Vec<f32>,
    _b: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for GradFlatten<'_, B> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        let g = self
            .net
            .get::<B::InnerBackend, D>(p.id)
            .or_else(|| self.z.get::<B::InnerBackend, D>(p.id));
        match g {
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

struct GradRebuild<'a, B: AutodiffBackend> {
    src: &'a [f32],
    offset: usize,
    z_id: Option<gfn_nn::burn::module::ParamId>,
    net: GradientsParams,
    z: GradientsParams,
    _b: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for GradRebuild<'_, B> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        let v = p.val();
        let shape = v.shape();
        let n = shape.num_elements();
        let values = self.src[self.offset..self.offset + n].to_vec();
        self.offset += n;
        let t =
            Tensor::<B::InnerBackend, D>::from_data(TensorData::new(values, shape), &v.device());
        if Some(p.id) == self.z_id {
            self.z.register::<B::InnerBackend, D>(p.id, t);
        } else {
            self.net.register::<B::InnerBackend, D>(p.id, t);
        }
    }
}
