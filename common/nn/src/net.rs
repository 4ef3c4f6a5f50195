//! The estimators of a GFlowNet as one burn module: PF, PB and logF (MLPs or tables, optionally
//! sharing one trunk) and the scalar logZ.

use crate::layer::{Layer, LayerNoise};
use burn::module::{Module, Param};
use burn::tensor::activation::{leaky_relu, relu};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use gfn_common::config::ModelSection;
use gfn_common::{Activation, HyperGrid, Loss};
use rand::Rng;

/// PyTorch's default `nn.LeakyReLU` slope, as in the TB paper's MLP.
pub const LEAKY_RELU_SLOPE: f64 = 0.01;

/// Shape of a [`GflowNet`], derived from the run configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConfig {
    /// Encoded state width; for tables, the number of states.
    pub input_dim: usize,
    pub ndim: usize,
    pub hidden_dim: usize,
    pub n_hidden: usize,
    pub activation: Activation,
    pub tied: bool,
    pub tabular: bool,
    pub n_noisy_layers: usize,
    pub noisy_std_init: f32,
    /// A learned backward policy.
    pub learned_pb: bool,
    /// A state-flow estimator (DB, SubTB).
    pub logf: bool,
    /// A learned log-partition scalar (TB).
    pub log_z: bool,
}

impl NetConfig {
    /// The estimators a loss needs, as torchgfn's `set_up_gflownet` builds them.
    pub fn new(model: &ModelSection, grid: &HyperGrid) -> Self {
        let input_dim = if model.tabular {
            grid.enumerable_states().unwrap_or(0)
        } else {
            model.preprocessor.dim(grid).unwrap_or(1)
        };
        let flow_matching = model.loss == Loss::Fm;
        Self {
            input_dim,
            ndim: grid.ndim(),
            hidden_dim: model.hidden_dim,
            n_hidden: model.n_hidden,
            activation: model.activation,
            tied: model.tied,
            tabular: model.tabular,
            n_noisy_layers: model.n_noisy_layers,
            noisy_std_init: model.noisy_std_init,
            learned_pb: !flow_matching && !model.uniform_pb,
            logf: matches!(model.loss, Loss::Db | Loss::SubTb),
            log_z: model.loss == Loss::Tb,
        }
    }
}

/// Hidden layers, each followed by a ReLU (or a leaky ReLU).
#[derive(Module, Debug)]
pub struct Trunk<B: Backend> {
    pub layers: Vec<Layer<B>>,
    /// The leaky ReLU's slope below zero; 0 for a ReLU.
    pub negative_slope: f64,
}

/// One estimator: an own trunk (absent when tied or tabular) and an output layer. For tables the
/// output layer's weight is the table, one row per state.
#[derive(Module, Debug)]
pub struct Estimator<B: Backend> {
    pub trunk: Option<Trunk<B>>,
    pub head: Layer<B>,
}

/// PF, PB, logF and logZ.
#[derive(Module, Debug)]
pub struct GflowNet<B: Backend> {
    pub shared: Option<Trunk<B>>,
    pub pf: Estimator<B>,
    pub pb: Option<Estimator<B>>,
    pub logf: Option<Estimator<B>>,
    pub log_z: Option<Param<Tensor<B, 1>>>,
    pub tabular: bool,
}

/// Network input: encoded states, or state indices for tables.
#[derive(Debug, Clone)]
pub enum Input<B: Backend> {
    /// `[rows, input_dim]`.
    Dense(Tensor<B, 2>),
    /// `[rows]` canonical indices.
    Index(Tensor<B, 1, Int>),
}

impl<B: Backend> Input<B> {
    /// Builds the input from host rows: dense features (`width` a row) or indices (`width` 0).
    pub fn from_host(values: Vec<f32>, rows: usize, width: usize, device: &B::Device) -> Self {
        if width == 0 {
            let idx: Vec<i64> = values.iter().map(|&v| v as i64).collect();
            Input::Index(Tensor::from_data(TensorData::new(idx, [rows]), device))
        } else {
            Input::Dense(Tensor::from_data(
                TensorData::new(values, [rows, width]),
                device,
            ))
        }
    }
}

/// Noise for every noisy layer, in forward order: PF's, then PB's.
#[derive(Debug, Clone, Default)]
pub struct NetNoise<B: Backend> {
    pub pf: Vec<LayerNoise<B>>,
    pub pb: Vec<LayerNoise<B>>,
}

/// What a forward pass computes.
#[derive(Debug, Clone)]
pub struct Outputs<B: Backend> {
    /// PF logits (FM: log edge flows), `[rows, D+1]`.
    pub pf: Tensor<B, 2>,
    /// PB logits, `[rows, D]`, when requested and learned.
    pub pb: Option<Tensor<B, 2>>,
    /// `log F(s)`, `[rows]`, when requested and present.
    pub logf: Option<Tensor<B, 1>>,
}

impl<B: Backend> Trunk<B> {
    fn new(cfg: &NetConfig, noisy_tail: usize, rng: &mut impl Rng, device: &B::Device) -> Self {
        let layers = (0..cfg.n_hidden)
            .map(|i| {
                let d_in = if i == 0 {
                    cfg.input_dim
                } else {
                    cfg.hidden_dim
                };
                // The input projection is never noisy.
                let noisy = i > 0 && i + noisy_tail >= cfg.n_hidden;
                Layer::new(
                    d_in,
                    cfg.hidden_dim,
                    noisy.then_some(cfg.noisy_std_init),
                    rng,
                    device,
                )
            })
            .collect();
        let negative_slope = match cfg.activation {
            Activation::Relu => 0.0,
            Activation::LeakyRelu => LEAKY_RELU_SLOPE,
        };
        Self {
            layers,
            negative_slope,
        }
    }

    fn forward<'a>(
        &self,
        mut x: Tensor<B, 2>,
        noise: &mut impl Iterator<Item = &'a LayerNoise<B>>,
    ) -> Tensor<B, 2>
    where
        B: 'a,
    {
        for layer in &self.layers {
            let n = if layer.is_noisy() { noise.next() } else { None };
            x = layer.forward(x, n);
            x = if self.negative_slope == 0.0 {
                relu(x)
            } else {
                leaky_relu(x, self.negative_slope)
            };
        }
        x
    }
}

impl<B: Backend> Estimator<B> {
    fn new(
        cfg: &NetConfig,
        d_out: usize,
        noisy: bool,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Self {
        if cfg.tabular {
            return Self {
                trunk: None,
                head: Layer::zeros(cfg.input_dim, d_out, device),
            };
        }
        let n_noisy = if noisy { cfg.n_noisy_layers } else { 0 };
        let trunk = (!cfg.tied).then(|| Trunk::new(cfg, n_noisy.saturating_sub(1), rng, device));
        let sigma = (n_noisy > 0).then_some(cfg.noisy_std_init);
        let head = Layer::new(cfg.hidden_dim, d_out, sigma, rng, device);
        Self { trunk, head }
    }

    fn layers(&self) -> impl Iterator<Item = &Layer<B>> {
        self.trunk
            .iter()
            .flat_map(|t| t.layers.iter())
            .chain(std::iter::once(&self.head))
    }

    fn draw_noise(&self, rng: &mut impl Rng, device: &B::Device) -> Vec<LayerNoise<B>> {
        self.layers()
            .filter(|l| l.is_noisy())
            .map(|l| l.draw_noise(rng, device))
            .collect()
    }

    /// `hidden` is the shared trunk's output when tied, else the raw input.
    fn forward(
        &self,
        input: &Input<B>,
        hidden: Option<&Tensor<B, 2>>,
        noise: &[LayerNoise<B>],
    ) -> Tensor<B, 2> {
        let mut noise = noise.iter();
        match input {
            Input::Index(idx) => {
                self.head.weight.val().select(0, idx.clone())
                    + self.head.bias.val().unsqueeze::<2>()
            }
            Input::Dense(x) => {
                let h = match (&self.trunk, hidden) {
                    (Some(t), _) => t.forward(x.clone(), &mut noise),
                    (None, Some(h)) => h.clone(),
                    (None, None) => x.clone(),
                };
                let n = if self.head.is_noisy() {
                    noise.next()
                } else {
                    None
                };
                self.head.forward(h, n)
            }
        }
    }
}

impl<B: Backend> GflowNet<B> {
    /// Builds the estimators with weights drawn from `rng` (PyTorch's default initialisation;
    /// logZ starts at 0, tables at 0).
    pub fn new(cfg: &NetConfig, rng: &mut impl Rng, device: &B::Device) -> Self {
        let shared = (cfg.tied && !cfg.tabular).then(|| Trunk::new(cfg, 0, rng, device));
        let pf = Estimator::new(cfg, cfg.ndim + 1, true, rng, device);
        let pb = cfg
            .learned_pb
            .then(|| Estimator::new(cfg, cfg.ndim, true, rng, device));
        let logf = cfg.logf.then(|| Estimator::new(cfg, 1, false, rng, device));
        let log_z = cfg.log_z.then(|| {
            Param::from_tensor(Tensor::from_data(TensorData::new(vec![0f32], [1]), device))
        });
        Self {
            shared,
            pf,
            pb,
            logf,
            log_z,
            tabular: cfg.tabular,
        }
    }

    /// Draws fresh noise for every noisy layer (empty when there is none).
    pub fn draw_noise(&self, rng: &mut impl Rng, device: &B::Device) -> NetNoise<B> {
        NetNoise {
            pf: self.pf.draw_noise(rng, device),
            pb: self
                .pb
                .as_ref()
                .map(|e| e.draw_noise(rng, device))
                .unwrap_or_default(),
        }
    }

    /// Whether any layer is noisy.
    pub fn is_noisy(&self) -> bool {
        self.pf.layers().any(|l| l.is_noisy())
    }

    /// Current value of logZ, when the net has one.
    pub fn log_z_value(&self) -> Option<Tensor<B, 1>> {
        self.log_z.as_ref().map(|p| p.val())
    }

    /// # Shapes
    /// `input`: `rows` states → PF logits `[rows, D+1]`; PB logits `[rows, D]` and logF `[rows]`
    /// when `with_pb` / `with_logf` and the estimator exists.
    pub fn forward(
        &self,
        input: &Input<B>,
        noise: Option<&NetNoise<B>>,
        with_pb: bool,
        with_logf: bool,
    ) -> Outputs<B> {
        let hidden = match (&self.shared, input) {
            (Some(t), Input::Dense(x)) => Some(t.forward(x.clone(), &mut std::iter::empty())),
            _ => None,
        };
        let (pf_noise, pb_noise) = noise.map(|n| (&n.pf[..], &n.pb[..])).unwrap_or((&[], &[]));
        let pf = self.pf.forward(input, hidden.as_ref(), pf_noise);
        let pb = match (&self.pb, with_pb) {
            (Some(e), true) => Some(e.forward(input, hidden.as_ref(), pb_noise)),
            _ => None,
        };
        let logf = match (&self.logf, with_logf) {
            (Some(e), true) => {
                let out = e.forward(input, hidden.as_ref(), &[]);
                let rows = out.dims()[0];
                Some(out.reshape([rows]))
            }
            _ => None,
        };
        Outputs { pf, pb, logf }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{cpu_device, Cpu};
    use crate::params;
    use burn::module::Module;
    use gfn_common::RunConfig;
    use rand::{rngs::SmallRng, SeedableRng};

    fn net(f: impl Fn(&mut RunConfig)) -> GflowNet<Cpu> {
        let mut cfg = RunConfig::default();
        f(&mut cfg);
        let grid = cfg.grid().unwrap();
        GflowNet::new(
            &NetConfig::new(&cfg.model(), &grid),
            &mut SmallRng::seed_from_u64(0),
            &cpu_device(),
        )
    }

    #[test]
    fn parameter_counts_match_torchgfn() {
        assert_eq!(net(|c| c.n_hidden = 3).num_params(), 273_158);
        assert_eq!(net(|c| c.tied = true).num_params(), 71_430);
        assert_eq!(
            net(|c| {
                c.n_hidden = 3;
                c.uniform_pb = true
            })
            .num_params(),
            136_708
        );
        assert_eq!(
            net(|c| {
                c.n_hidden = 3;
                c.loss = Loss::Db
            })
            .num_params(),
            409_350
        );
        assert_eq!(
            net(|c| {
                c.n_hidden = 3;
                c.loss = Loss::Fm
            })
            .num_params(),
            136_707
        );
    }

    #[test]
    fn flat_parameters_round_trip() {
        let a = net(|c| c.n_noisy_layers = 2);
        let b = net(|c| {
            c.n_noisy_layers = 2;
            c.seed = 1
        });
        let fa = params::flatten(&a);
        let b = params::load(b.no_grad(), &fa).unwrap();
        assert_eq!(params::flatten(&b), fa);
        assert_eq!(
            params::checksum(&params::flatten(&b)),
            params::checksum(&fa)
        );
        assert!(params::load(b, &fa[1..]).is_err());
    }

    /// PF of a one-hidden-layer net by hand: `act(x·W1 + b1)·W2 + b2`.
    fn pf_by_hand(net: &GflowNet<Cpu>, x: &[f32], slope: f32) -> Vec<f32> {
        let flat = |t: Tensor<Cpu, 2>| t.into_data().to_vec::<f32>().unwrap();
        let flat1 = |t: Tensor<Cpu, 1>| t.into_data().to_vec::<f32>().unwrap();
        let trunk = &net.pf.trunk.as_ref().unwrap().layers[0];
        let (w1, b1) = (flat(trunk.weight.val()), flat1(trunk.bias.val()));
        let (w2, b2) = (
            flat(net.pf.head.weight.val()),
            flat1(net.pf.head.bias.val()),
        );
        let (n_in, n_hid, n_out) = (x.len(), b1.len(), b2.len());
        let hidden: Vec<f32> = (0..n_hid)
            .map(|j| {
                let z = b1[j] + (0..n_in).map(|i| x[i] * w1[i * n_hid + j]).sum::<f32>();
                if z > 0.0 {
                    z
                } else {
                    slope * z
                }
            })
            .collect();
        (0..n_out)
            .map(|k| {
                b2[k]
                    + (0..n_hid)
                        .map(|j| hidden[j] * w2[j * n_out + k])
                        .sum::<f32>()
            })
            .collect()
    }

    #[test]
    fn activations_match_a_hand_computed_forward() {
        let dev = cpu_device();
        for (activation, slope) in [(Activation::Relu, 0.0), (Activation::LeakyRelu, 0.01)] {
            let n = net(|c| {
                c.n_hidden = 1;
                c.activation = activation
            });
            let grid = RunConfig::default().grid().unwrap();
            let input = crate::policy::encode::<Cpu>(&grid, Default::default(), &[3, 5], &dev);
            let Input::Dense(x) = &input else {
                panic!("KHot input is dense")
            };
            let x = x.clone().into_data().to_vec::<f32>().unwrap();
            let got = n.forward(&input, None, false, false).pf;
            let got = got.into_data().to_vec::<f32>().unwrap();
            let want = pf_by_hand(&n, &x, slope);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{activation}: {got:?} vs {want:?}");
            }
        }
        // The leaky slope changes the output (some pre-activations are negative).
        let relu = net(|c| c.n_hidden = 1);
        let grid = RunConfig::default().grid().unwrap();
        let input = crate::policy::encode::<Cpu>(&grid, Default::default(), &[3, 5], &dev);
        let Input::Dense(x) = &input else {
            panic!("KHot input is dense")
        };
        let x = x.clone().into_data().to_vec::<f32>().unwrap();
        assert_ne!(pf_by_hand(&relu, &x, 0.0), pf_by_hand(&relu, &x, 0.01));
    }

    #[test]
    fn tied_and_tabular_forward_shapes() {
        let dev = cpu_device();
        for f in [
            (|c: &mut RunConfig| {
                c.tied = true;
                c.loss = Loss::SubTb
            }) as fn(&mut RunConfig),
            |c| {
                c.tabular = true;
                c.loss = Loss::Db
            },
            |c| c.n_noisy_layers = 2,
        ] {
            let mut cfg = RunConfig::default();
            f(&mut cfg);
            let grid = cfg.grid().unwrap();
            let n = net(f);
            let states = [0u16, 0, 3, 4, 7, 7];
            let input = crate::policy::encode::<Cpu>(&grid, cfg.preprocessor(), &states, &dev);
            let noise = n.draw_noise(&mut SmallRng::seed_from_u64(1), &dev);
            let out = n.forward(&input, Some(&noise), true, true);
            assert_eq!(out.pf.dims(), [3, 3]);
            assert_eq!(out.pb.map(|t| t.dims()), Some([3, 2]));
            assert_eq!(
                out.logf.map(|t| t.dims()),
                cfg.loss.ne(&Loss::Tb).then_some([3])
            );
        }
    }
}
