//! Loss values against hand computations, identities between losses, and zero loss on the
//! exact solution (tabular estimators loaded with the true flows).

use gfn_common::{HyperGrid, Loss, RunConfig, SubTbWeighting, TrajectoryBatch};
use gfn_learner::inputs::StepInputs;
use gfn_learner::loss::{loss, LossConfig};
use gfn_nn::backend::{cpu_device, Cpu};
use gfn_nn::burn::module::Module;
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

fn batch(c: &RunConfig, trajs: &[&[u8]]) -> TrajectoryBatch {
    let grid = c.grid().unwrap();
    let reward = c.reward_fn().unwrap();
    let mut b = TrajectoryBatch::default();
    for a in trajs {
        let mut x = vec![0u16; c.ndim];
        TrajectoryBatch::terminal_state(c.ndim, a, &mut x);
        b.push(a, reward.log_reward(&x), 0);
    }
    b.validate(&grid).unwrap();
    b
}

fn eval(c: &RunConfig, net: &GflowNet<Cpu>, b: &TrajectoryBatch) -> f32 {
    let grid = c.grid().unwrap();
    let x = StepInputs::new(&grid, &c.reward_fn().unwrap(), b);
    let l = loss(
        net,
        None,
        &x,
        &LossConfig::new(&c.objective()),
        &grid,
        c.preprocessor(),
        &cpu_device(),
    );
    l.into_data().convert::<f32>().as_slice::<f32>().unwrap()[0]
}

fn zero_net(c: &RunConfig) -> GflowNet<Cpu> {
    let grid = c.grid().unwrap();
    GflowNet::new(
        &NetConfig::new(&c.model(), &grid),
        &mut SmallRng::seed_from_u64(0),
        &cpu_device(),
    )
}

const TRAJS: &[&[u8]] = &[&[0, 2], &[0, 1, 1, 2], &[2], &[1, 0, 0, 1, 2]];

#[test]
fn tb_by_hand_with_zero_tables() {
    // Zero tables: P_F uniform over allowed actions, P_B uniform over parents, logZ = 0.
    let c = cfg(Loss::Tb, |_| {});
    let b = batch(&c, &[&[0, 2]]);
    // (0,0) → (1,0) → exit: P_F = 1/3 · 1/3, P_B((0,0)|(1,0)) = 1, R(1,0) = R0 = 0.1.
    let r = (1f32 / 9.0).ln() - 0.1f32.ln();
    assert!((eval(&c, &zero_net(&c), &b) - r * r).abs() < 1e-5);
    // Uniform PB gives the same P_B here.
    let cu = cfg(Loss::Tb, |c| c.uniform_pb = true);
    assert!((eval(&cu, &zero_net(&cu), &b) - r * r).abs() < 1e-5);
}

#[test]
fn db_by_hand_with_zero_tables() {
    let c = cfg(Loss::Db, |_| {});
    let b = batch(&c, &[&[0, 2]]);
    // Transitions: (0,0)→(1,0): 0 + ln(1/3) − 0 − ln 1; exit at (1,0): 0 + ln(1/3) − ln 0.1.
    let r1 = (1f32 / 3.0).ln();
    let r2 = (1f32 / 3.0).ln() - 0.1f32.ln();
    let want = (r1 * r1 + r2 * r2) / 2.0;
    assert!((eval(&c, &zero_net(&c), &b) - want).abs() < 1e-5);
}

#[test]
fn zvar_by_hand() {
    let c = cfg(Loss::ZVar, |_| {});
    let b = batch(&c, &[&[0, 2], &[2]]);
    let z1 = (1f32 / 9.0).ln() - 0.1f32.ln();
    let z2 = (1f32 / 3.0).ln() - 0.6f32.ln(); // R(0,0) = R0 + R1 (outer ring)
    let m = (z1 + z2) / 2.0;
    let want = ((z1 - m).powi(2) + (z2 - m).powi(2)) / 2.0;
    assert!((eval(&c, &zero_net(&c), &b) - want).abs() < 1e-5);
}

#[test]
fn subtb_with_tb_weighting_and_zero_logf_equals_tb_sum() {
    let tb = cfg(Loss::Tb, |_| {});
    let sub = cfg(Loss::SubTb, |c| c.subtb_weighting = SubTbWeighting::Tb);
    let b = batch(&tb, TRAJS);
    // Same random-ish PF/PB tables in both nets (logF and logZ stay 0).
    let mut rng = SmallRng::seed_from_u64(5);
    let fill = |net: GflowNet<Cpu>, rng: &mut SmallRng| {
        let n = net.num_params();
        let v: Vec<f32> = (0..n)
            .map(|_| rand::Rng::random_range(rng, -1.0..1.0))
            .collect();
        params::load(net, &v).unwrap()
    };
    let mut net_tb = fill(zero_net(&tb), &mut rng);
    // Zero logZ, keep the PF/PB tables.
    let mut flat = params::flatten(&net_tb);
    *flat.last_mut().unwrap() = 0.0;
    net_tb = params::load(net_tb, &flat).unwrap();
    let mut sub_flat = params::flatten(&zero_net(&sub));
    let shared = flat.len() - 1; // PF and PB tables come first in both
    sub_flat[..shared].copy_from_slice(&flat[..shared]);
    let net_sub = params::load(zero_net(&sub), &sub_flat).unwrap();
    let tb_mean = eval(&tb, &net_tb, &b);
    let sub_sum = eval(&sub, &net_sub, &b);
    assert!(tb_mean > 0.1);
    assert!(
        (sub_sum - tb_mean * b.len() as f32).abs() < 1e-3 * sub_sum.max(1.0),
        "{sub_sum} vs {tb_mean}"
    );
}

#[test]
fn geometric_within_weights_sum_to_one() {
    let c = cfg(Loss::SubTb, |_| {});
    let grid = c.grid().unwrap();
    let x = StepInputs::new(&grid, &c.reward_fn().unwrap(), &batch(&c, TRAJS));
    for lambda in [0.3f32, 0.9, 1.0] {
        for w in [
            SubTbWeighting::GeometricWithin,
            SubTbWeighting::Geometric,
            SubTbWeighting::Equal,
            SubTbWeighting::EqualWithin,
        ] {
            let s: f32 = gfn_learner::loss::subtrajectory_weights(&x, w, lambda)
                .iter()
                .sum();
            assert!((s - 1.0).abs() < 1e-5, "{w} λ={lambda}: {s}");
        }
    }
    // Brute force for one weight: L = 5 (last trajectory), length-2 sub-trajectory.
    let w = gfn_learner::loss::subtrajectory_weights(&x, SubTbWeighting::GeometricWithin, 0.9);
    let t = x.t_max;
    let l = 5usize;
    let denom: f64 = (0..l).map(|j| (l - j) as f64 * 0.9f64.powi(j as i32)).sum();
    let want = 0.9 / (4.0 * denom);
    let got = w[(3 * (t + 1)) * (t + 1) + 2] as f64;
    assert!((got - want).abs() < 1e-7, "{got} vs {want}");
}

/// Tables holding the exact flows of the target with a uniform backward policy.
fn exact_tables(c: &RunConfig) -> Vec<f32> {
    let grid: HyperGrid = c.grid().unwrap();
    let reward = c.reward_fn().unwrap();
    let (n, d, a) = (
        grid.enumerable_states().unwrap(),
        grid.ndim(),
        grid.n_actions(),
    );
    let mut s = vec![0u16; d];
    // F(s) = R(s) + Σ_children F(s') / n_parents(s'), children have larger indices.
    let mut flow = vec![0f64; n];
    for i in (0..n).rev() {
        grid.state_of(i, &mut s);
        let mut f = reward.reward(&s) as f64;
        for dim in 0..d {
            if (s[dim] as usize) < grid.height() - 1 {
                let j = i + grid.stride(dim);
                let mut child = s.clone();
                child[dim] += 1;
                f += flow[j] / grid.n_parents(&child) as f64;
            }
        }
        flow[i] = f;
    }
    let mut pf = vec![crate_masked(); n * a];
    for i in 0..n {
        grid.state_of(i, &mut s);
        for dim in 0..d {
            if (s[dim] as usize) < grid.height() - 1 {
                let mut child = s.clone();
                child[dim] += 1;
                let j = i + grid.stride(dim);
                pf[i * a + dim] = (flow[j] / grid.n_parents(&child) as f64).ln() as f32;
            }
        }
        pf[i * a + d] = (reward.reward(&s) as f64).ln() as f32;
    }
    // Edge flows as logits: log-softmax turns them into P_F; FM reads them as log edge flows.
    let mut out = pf;
    out.extend(vec![0f32; a]); // PF bias
    let net = zero_net(c);
    if net.pb.is_some() {
        out.extend(vec![0f32; n * d + d]);
    }
    if net.logf.is_some() {
        out.extend(flow.iter().map(|f| f.ln() as f32));
        out.push(0.0);
    }
    if net.log_z.is_some() {
        out.push(flow[0].ln() as f32);
    }
    out
}

fn crate_masked() -> f32 {
    -30.0
}

#[test]
fn every_loss_vanishes_on_the_exact_solution() {
    for loss_kind in [
        Loss::Tb,
        Loss::Db,
        Loss::SubTb,
        Loss::ZVar,
        Loss::ModifiedDb,
        Loss::Fm,
    ] {
        let c = cfg(loss_kind, |c| c.height = 4);
        let net = params::load(zero_net(&c), &exact_tables(&c)).unwrap();
        let b = batch(
            &c,
            &[
                &[0, 2],
                &[0, 1, 1, 2],
                &[2],
                &[1, 0, 0, 1, 1, 0, 2],
                &[1, 1, 1, 2],
            ],
        );
        let value = eval(&c, &net, &b);
        assert!(value.abs() < 1e-6, "{loss_kind}: {value}");
        // And a wrong solution does not.
        let wrong = zero_net(&c);
        assert!(eval(&c, &wrong, &b) > 1e-3, "{loss_kind} on zero tables");
    }
}
