//! Finite-difference checks of the gradients of every loss on tabular estimators: the
//! autodiff gradient with respect to the flat parameters against central differences of the
//! loss, with the squared residual and with each regression loss (`--loss_fn`). The regression
//! losses themselves against their definitions and hand-derived derivatives.

use gfn_common::config::Regression;
use gfn_common::{Loss, LossFn, RunConfig, SubTbWeighting, TrajectoryBatch};
use gfn_learner::inputs::StepInputs;
use gfn_learner::loss::{loss, regress, LossConfig};
use gfn_nn::backend::{Cpu, CpuAutodiff};
use gfn_nn::burn::module::{Module, ModuleVisitor, Param};
use gfn_nn::burn::tensor::backend::{AutodiffBackend, Backend};
use gfn_nn::burn::tensor::Tensor;
use gfn_nn::{params, GflowNet, NetConfig};
use rand::{rngs::SmallRng, SeedableRng};

fn cfg(loss: Loss, f: impl Fn(&mut RunConfig)) -> RunConfig {
    let mut c = RunConfig {
        ndim: 2,
        height: 3,
        tabular: true,
        loss,
        ..RunConfig::default()
    };
    f(&mut c);
    c.validate().unwrap();
    c
}

const TRAJS: &[&[u8]] = &[&[0, 2], &[0, 1, 1, 2], &[2], &[1, 0, 0, 1, 2]];

fn inputs(c: &RunConfig) -> StepInputs {
    let grid = c.grid().unwrap();
    let reward = c.reward_fn().unwrap();
    let mut b = TrajectoryBatch::default();
    for a in TRAJS {
        let mut x = vec![0u16; c.ndim];
        TrajectoryBatch::terminal_state(c.ndim, a, &mut x);
        b.push(a, reward.log_reward(&x), 0);
    }
    b.validate(&grid).unwrap();
    StepInputs::new(&grid, &reward, &b)
}

/// A zero-initialised tabular net of `c` on backend `B`.
fn zero_net<B: Backend>(c: &RunConfig) -> GflowNet<B> {
    let grid = c.grid().unwrap();
    GflowNet::new(
        &NetConfig::new(&c.model(), &grid),
        &mut SmallRng::seed_from_u64(0),
        &Default::default(),
    )
}

/// A tabular net of `c` on backend `B` holding `flat`.
fn net<B: Backend>(c: &RunConfig, flat: &[f32]) -> GflowNet<B> {
    params::load(zero_net(c), flat).unwrap()
}

fn loss_of<B: Backend>(c: &RunConfig, net: &GflowNet<B>, x: &StepInputs) -> Tensor<B, 1> {
    let grid = c.grid().unwrap();
    loss(
        net,
        None,
        x,
        &LossConfig::new(&c.objective()),
        &grid,
        c.preprocessor(),
        &Default::default(),
    )
}

/// The loss at `flat`, on the inference backend.
fn value(c: &RunConfig, flat: &[f32], x: &StepInputs) -> f64 {
    let l = loss_of(c, &net::<Cpu>(c, flat), x);
    l.into_data().convert::<f32>().as_slice::<f32>().unwrap()[0] as f64
}

/// Gradients of every parameter in module order (zeros where a parameter gets none).
struct Grads<'a> {
    grads: &'a <CpuAutodiff as AutodiffBackend>::Gradients,
    out: Vec<f32>,
}

impl ModuleVisitor<CpuAutodiff> for Grads<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<CpuAutodiff, D>>) {
        let t = p.val();
        match t.grad(self.grads) {
            Some(g) => self.out.extend(g.into_data().to_vec::<f32>().unwrap()),
            None => self
                .out
                .extend(std::iter::repeat_n(0.0, t.shape().num_elements())),
        }
    }
}

/// The autodiff gradient of the loss with respect to the flat parameters.
fn gradient(c: &RunConfig, flat: &[f32], x: &StepInputs) -> Vec<f32> {
    let net = net::<CpuAutodiff>(c, flat);
    let grads = loss_of(c, &net, x).backward();
    let mut v = Grads {
        grads: &grads,
        out: vec![],
    };
    net.visit(&mut v);
    assert_eq!(v.out.len(), flat.len());
    v.out
}

/// Compares the autodiff gradient with central differences at every parameter (at most 60 on
/// this grid) of a net filled with values from (−1, 1). The f32 differences with ε = 10⁻² agree
/// to about 2·10⁻⁴ here, where gradients reach 12.
fn check(c: &RunConfig, seed: u64) {
    const EPS: f32 = 1e-2;
    let x = inputs(c);
    let n = zero_net::<Cpu>(c).num_params();
    let mut rng = SmallRng::seed_from_u64(seed);
    let flat: Vec<f32> = (0..n)
        .map(|_| rand::Rng::random_range(&mut rng, -1.0..1.0))
        .collect();
    let analytic = gradient(c, &flat, &x);
    let what = match c.loss {
        Loss::SubTb => format!("SubTB {}", c.subtb_weighting),
        l => format!("{l} uniform_pb={}", c.uniform_pb),
    };
    let what = format!("{what} {:?}", c.objective().regression());
    let mut nonzero = 0;
    for (i, &g) in analytic.iter().enumerate() {
        let mut p = flat.clone();
        p[i] = flat[i] + EPS;
        let up = value(c, &p, &x);
        p[i] = flat[i] - EPS;
        let down = value(c, &p, &x);
        let fd = (up - down) / (2.0 * EPS as f64);
        let g = g as f64;
        assert!(
            (g - fd).abs() <= 1e-3 + 2e-3 * fd.abs(),
            "{what}: parameter {i}: autodiff {g}, finite difference {fd}"
        );
        nonzero += (fd.abs() > 1e-2) as usize;
    }
    assert!(nonzero >= 5, "{what}: only {nonzero} non-zero gradients");
}

#[test]
fn tb_gradient() {
    check(&cfg(Loss::Tb, |_| {}), 1);
    check(&cfg(Loss::Tb, |c| c.uniform_pb = true), 2);
}

#[test]
fn db_gradient() {
    check(&cfg(Loss::Db, |_| {}), 3);
}

#[test]
fn subtb_gradient_for_every_weighting() {
    for w in [
        SubTbWeighting::GeometricWithin,
        SubTbWeighting::Geometric,
        SubTbWeighting::Equal,
        SubTbWeighting::EqualWithin,
        SubTbWeighting::Tb,
        SubTbWeighting::Db,
        SubTbWeighting::ModifiedDb,
    ] {
        check(&cfg(Loss::SubTb, |c| c.subtb_weighting = w), 4);
    }
}

#[test]
fn fm_gradient() {
    check(&cfg(Loss::Fm, |_| {}), 5);
}

#[test]
fn modified_db_gradient() {
    check(&cfg(Loss::ModifiedDb, |_| {}), 6);
    check(&cfg(Loss::ModifiedDb, |c| c.uniform_pb = true), 7);
}

#[test]
fn zvar_gradient() {
    check(&cfg(Loss::ZVar, |_| {}), 8);
}

const LOSSES: [Loss; 6] = [
    Loss::Tb,
    Loss::Db,
    Loss::SubTb,
    Loss::Fm,
    Loss::ModifiedDb,
    Loss::ZVar,
];

#[test]
fn every_loss_takes_every_regression_loss() {
    for (i, loss) in LOSSES.into_iter().enumerate() {
        for (f, alpha) in [
            (LossFn::ShiftedCosh, 1.0),
            (LossFn::Linex, 1.0),
            (LossFn::Linex, -0.5),
        ] {
            let c = cfg(loss, |c| {
                c.loss_fn = f;
                c.linex_alpha = alpha;
            });
            check(&c, 20 + i as u64);
        }
    }
}

/// Every loss reduces g(residual) linearly (means and weighted sums), so halving g halves it:
/// a loss that squared its residuals itself instead of calling g would not halve.
#[test]
fn half_squared_is_half_of_squared_in_every_loss() {
    for loss in LOSSES {
        let squared = cfg(loss, |_| {});
        let half = cfg(loss, |c| c.loss_fn = LossFn::HalfSquared);
        let x = inputs(&squared);
        let n = zero_net::<Cpu>(&squared).num_params();
        let mut rng = SmallRng::seed_from_u64(30);
        let flat: Vec<f32> = (0..n)
            .map(|_| rand::Rng::random_range(&mut rng, -1.0..1.0))
            .collect();
        let (a, b) = (value(&squared, &flat, &x), value(&half, &flat, &x));
        assert!(a > 1e-3, "{loss}: a loss to halve ({a})");
        assert!(
            (b - 0.5 * a).abs() <= 1e-6 * a,
            "{loss}: {b} against half of {a}"
        );
    }
}

/// A function of one real, written out by hand.
type Scalar = fn(f64) -> f64;

/// g and g' by hand: t², t²/2, e^t + e^−t − 2 and (e^{αt} − αt − 1)/α², with derivatives 2t,
/// t, e^t − e^−t and (e^{αt} − 1)/α; exponents clamped at ±80 (constant, so zero slope, beyond).
#[test]
fn regression_losses_follow_their_definitions() {
    let ts = [-100.0f64, -3.0, -0.5, 0.0, 0.25, 1.5, 4.0, 100.0];
    let cases: [(Regression, Scalar, Scalar); 5] = [
        (Regression::Squared, |t| t * t, |t| 2.0 * t),
        (Regression::HalfSquared, |t| t * t / 2.0, |t| t),
        (
            Regression::ShiftedCosh,
            |t| {
                let t = t.clamp(-80.0, 80.0);
                t.exp() + (-t).exp() - 2.0
            },
            |t| match t.abs() > 80.0 {
                true => 0.0,
                false => t.exp() - (-t).exp(),
            },
        ),
        (
            Regression::Linex { alpha: 1.0 },
            |t| t.clamp(-80.0, 80.0).exp() - t - 1.0,
            |t| t.clamp(-80.0, 80.0).exp() * (t.abs() <= 80.0) as u8 as f64 - 1.0,
        ),
        (
            Regression::Linex { alpha: -0.5 },
            |t| ((-0.5 * t).clamp(-80.0, 80.0).exp() + 0.5 * t - 1.0) / 0.25,
            |t| ((-0.5 * t).exp() - 1.0) / -0.5,
        ),
    ];
    for (g, value_of, slope_of) in cases {
        assert_eq!(g.value(0.0), 0.0, "{g:?}: g(0)");
        let t = Tensor::<CpuAutodiff, 1>::from_floats(
            ts.map(|t| t as f32).as_slice(),
            &Default::default(),
        )
        .require_grad();
        let y = regress(g, t.clone());
        let grads = y.clone().sum().backward();
        let values = y.into_data().to_vec::<f32>().unwrap();
        let slopes = t.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        for (i, &t) in ts.iter().enumerate() {
            let (want, got) = (value_of(t), values[i] as f64);
            assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                "{g:?} g({t}) = {got}, want {want}"
            );
            assert!(
                (g.value(t) - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{g:?}: value({t})"
            );
            let (want, got) = (slope_of(t), slopes[i] as f64);
            assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                "{g:?} g'({t}) = {got}, want {want}"
            );
        }
    }
}
