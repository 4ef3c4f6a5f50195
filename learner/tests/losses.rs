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

// ---------------------------------------------------------------------------------------------
// Hand computations with non-trivial tables.
//
// A tabular net's flat parameters follow the declaration order of `GflowNet`, `Estimator` and
// `Layer` (weight `[states, out]` then bias): the PF table `[n, D+1]` and its bias `[D+1]`; with
// a learned backward policy the PB table `[n, D]` and its bias `[D]`; for DB and SubTB the logF
// table `[n, 1]` and its bias `[1]`; for TB logZ. Row `i` of a table belongs to the state with
// canonical index `i`. The reference below reads the same flat vector and recomputes every loss
// in f64 from the formulas of torchgfn (docs/hypergrid-reference.md §4), without the library.

/// A net for `c` whose every parameter is drawn uniformly from (−1, 1), and those parameters.
fn random_net(c: &RunConfig, seed: u64) -> (GflowNet<Cpu>, Vec<f32>) {
    let net = zero_net(c);
    let mut rng = SmallRng::seed_from_u64(seed);
    let flat: Vec<f32> = (0..net.num_params())
        .map(|_| rand::Rng::random_range(&mut rng, -1.0..1.0))
        .collect();
    (params::load(net, &flat).unwrap(), flat)
}

/// The estimators of a tabular net, read from its flat parameters.
struct Reference {
    height: usize,
    ndim: usize,
    pf_table: Vec<f64>,
    pf_bias: Vec<f64>,
    /// Table and bias; `None` for a uniform backward policy.
    pb: Option<(Vec<f64>, Vec<f64>)>,
    /// Table and bias.
    logf: Option<(Vec<f64>, f64)>,
    log_z: Option<f64>,
}

impl Reference {
    fn new(c: &RunConfig, flat: &[f32]) -> Self {
        let (h, d) = (c.height, c.ndim);
        let n = h.pow(d as u32);
        let mut at = 0usize;
        let mut take = |k: usize| -> Vec<f64> {
            at += k;
            flat[at - k..at].iter().map(|&v| v as f64).collect()
        };
        let pf_table = take(n * (d + 1));
        let pf_bias = take(d + 1);
        let pb = (c.loss != Loss::Fm && !c.uniform_pb).then(|| (take(n * d), take(d)));
        let logf = matches!(c.loss, Loss::Db | Loss::SubTb).then(|| (take(n), take(1)[0]));
        let log_z = (c.loss == Loss::Tb).then(|| take(1)[0]);
        assert_eq!(at, flat.len(), "layout of the flat parameters");
        Self {
            height: h,
            ndim: d,
            pf_table,
            pf_bias,
            pb,
            logf,
            log_z,
        }
    }

    fn index(&self, s: &[usize]) -> usize {
        s.iter().fold(0, |i, &c| i * self.height + c)
    }

    /// Raw PF output (FM: the log edge flow) of action `a` at `s`.
    fn u(&self, s: &[usize], a: usize) -> f64 {
        self.pf_table[self.index(s) * (self.ndim + 1) + a] + self.pf_bias[a]
    }

    /// `log P_F(a | s)`: softmax over the allowed actions (coordinates below H−1, and exit).
    fn log_pf(&self, s: &[usize], a: usize) -> f64 {
        let allowed: Vec<usize> = (0..self.ndim)
            .filter(|&k| s[k] + 1 < self.height)
            .chain([self.ndim])
            .collect();
        assert!(allowed.contains(&a));
        let logits: Vec<f64> = allowed.iter().map(|&k| self.u(s, k)).collect();
        self.u(s, a) - logsumexp(&logits)
    }

    /// `log P_B(s − e_k | s)`: softmax over the coordinates above 0, or uniform.
    fn log_pb(&self, s: &[usize], k: usize) -> f64 {
        let allowed: Vec<usize> = (0..self.ndim).filter(|&j| s[j] > 0).collect();
        assert!(allowed.contains(&k));
        match &self.pb {
            None => -(allowed.len() as f64).ln(),
            Some((table, bias)) => {
                let logit = |j: usize| table[self.index(s) * self.ndim + j] + bias[j];
                let logits: Vec<f64> = allowed.iter().map(|&j| logit(j)).collect();
                logit(k) - logsumexp(&logits)
            }
        }
    }

    fn logf(&self, s: &[usize]) -> f64 {
        let (table, bias) = self.logf.as_ref().unwrap();
        table[self.index(s)] + bias
    }

    /// The original reward, `R0 + R1·[every |s_d/(H−1) − 0.5| > 0.25] + R2·[every one in
    /// (0.3, 0.4)]`, with the default (R0, R1, R2) = (0.1, 0.5, 2).
    fn log_r(&self, s: &[usize]) -> f64 {
        let a = |c: usize| (c as f64 / (self.height - 1) as f64 - 0.5).abs();
        let ring = s.iter().all(|&c| a(c) > 0.25);
        let band = s.iter().all(|&c| a(c) > 0.3 && a(c) < 0.4);
        (0.1 + 0.5 * ring as u8 as f64 + 2.0 * band as u8 as f64).ln()
    }

    /// Per-step terms of one trajectory (its actions, exit last).
    fn trajectory(&self, actions: &[u8]) -> Traj {
        let mut s = vec![0usize; self.ndim];
        let mut t = Traj::default();
        for (i, &a) in actions.iter().enumerate() {
            let a = a as usize;
            t.states.push(s.clone());
            t.pf.push(self.log_pf(&s, a));
            if i + 1 < actions.len() {
                s[a] += 1;
                t.pb.push(self.log_pb(&s, a));
            } else {
                assert_eq!(a, self.ndim, "the last action is exit");
                t.pb.push(0.0);
            }
        }
        t.log_r = self.log_r(t.states.last().unwrap());
        t
    }
}

#[derive(Default)]
struct Traj {
    /// `s_0 … s_{L−1}`.
    states: Vec<Vec<usize>>,
    /// `log P_F(a_t | s_t)`, `t < L` (the last is the exit).
    pf: Vec<f64>,
    /// `log P_B(s_t | s_{t+1})`, `t < L−1`, then 0 for the exit.
    pb: Vec<f64>,
    log_r: f64,
}

fn logsumexp(x: &[f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

fn assert_close(got: f32, want: f64, what: &str) {
    let err = (got as f64 - want).abs();
    assert!(
        err <= 1e-4 * want.abs().max(1.0),
        "{what}: got {got}, want {want}"
    );
}

/// Residual of the sub-trajectory of `len` actions from `s_start` (torchgfn's SubTB): pred
/// `log F(s_t) + Σ log P_F`; target `log R(x) + Σ log P_B` when it ends with the exit, else
/// `log F(s_{t+i}) + Σ log P_B`.
fn subtb_residual(r: &Reference, t: &Traj, start: usize, len: usize) -> f64 {
    let end = start + len;
    let pred = r.logf(&t.states[start]) + t.pf[start..end].iter().sum::<f64>();
    let target = if end == t.states.len() {
        t.log_r + t.pb[start..end - 1].iter().sum::<f64>()
    } else {
        r.logf(&t.states[end]) + t.pb[start..end].iter().sum::<f64>()
    };
    pred - target
}

/// SubTB with reduction "sum", as the script runs it (§4.5).
fn subtb_by_hand(r: &Reference, trajs: &[Traj], w: SubTbWeighting, lambda: f64) -> f64 {
    let n = trajs.len() as f64;
    let t_max = trajs.iter().map(|t| t.states.len()).max().unwrap();
    // Every (trajectory, start, length) with its squared residual.
    let mut subs = vec![];
    for (k, t) in trajs.iter().enumerate() {
        let l = t.states.len();
        for start in 0..l {
            for len in 1..=l - start {
                subs.push((k, start, len, subtb_residual(r, t, start, len).powi(2)));
            }
        }
    }
    let weighted = |weight: &dyn Fn(usize, usize, usize) -> f64| -> f64 {
        subs.iter()
            .map(|&(k, start, len, r2)| weight(trajs[k].states.len(), start, len) * r2)
            .sum()
    };
    match w {
        SubTbWeighting::GeometricWithin => weighted(&|l, _, i| {
            let denom: f64 = (0..l).map(|j| (l - j) as f64 * lambda.powi(j as i32)).sum();
            lambda.powi(i as i32 - 1) / (n * denom)
        }),
        SubTbWeighting::Geometric => (1..=t_max)
            .map(|i| {
                let of_len: Vec<f64> = subs.iter().filter(|s| s.2 == i).map(|s| s.3).collect();
                let mean = of_len.iter().sum::<f64>() / of_len.len() as f64;
                (1.0 - lambda) * lambda.powi(i as i32 - 1) / (1.0 - lambda.powi(t_max as i32))
                    * mean
            })
            .sum(),
        SubTbWeighting::Equal => subs.iter().map(|s| s.3).sum::<f64>() / subs.len() as f64,
        SubTbWeighting::EqualWithin => weighted(&|l, _, _| 2.0 / ((l * (l + 1)) as f64 * n)),
        SubTbWeighting::ModifiedDb => weighted(&|l, _, i| (i == 1) as u8 as f64 / (l as f64 * n)),
        SubTbWeighting::Db => weighted(&|_, _, i| (i == 1) as u8 as f64),
        SubTbWeighting::Tb => trajs
            .iter()
            .map(|t| {
                let z = r.logf(&t.states[0]) + t.pf.iter().sum::<f64>()
                    - t.pb.iter().sum::<f64>()
                    - t.log_r;
                z * z
            })
            .sum(),
    }
}

#[test]
fn subtb_by_hand_with_nonzero_logf_for_every_weighting() {
    for w in [
        SubTbWeighting::GeometricWithin,
        SubTbWeighting::Geometric,
        SubTbWeighting::Equal,
        SubTbWeighting::EqualWithin,
        SubTbWeighting::Tb,
        SubTbWeighting::Db,
        SubTbWeighting::ModifiedDb,
    ] {
        for lambda in [0.9f32, 0.5] {
            let c = cfg(Loss::SubTb, |c| {
                c.subtb_weighting = w;
                c.subtb_lambda = lambda;
            });
            let (net, flat) = random_net(&c, 11);
            let r = Reference::new(&c, &flat);
            // The logF table is not trivial.
            let (table, _) = r.logf.as_ref().unwrap();
            assert!(table.iter().any(|v| v.abs() > 0.5));
            let trajs: Vec<Traj> = TRAJS.iter().map(|a| r.trajectory(a)).collect();
            let want = subtb_by_hand(&r, &trajs, w, lambda as f64);
            assert!(want > 0.1, "{w}: {want}");
            assert_close(
                eval(&c, &net, &batch(&c, TRAJS)),
                want,
                &format!("{w} λ={lambda}"),
            );
        }
    }
}

#[test]
fn db_by_hand_with_nonzero_logf() {
    // DB: mean over every transition (exit included) of
    // (log F(s) + log P_F(a|s) − log F(s') − log P_B(s|s'))², log R(x) in place of log F(s_f).
    let c = cfg(Loss::Db, |_| {});
    let (net, flat) = random_net(&c, 12);
    let r = Reference::new(&c, &flat);
    let mut sq = vec![];
    for a in TRAJS {
        let t = r.trajectory(a);
        let l = t.states.len();
        for i in 0..l {
            let next = if i + 1 < l {
                r.logf(&t.states[i + 1])
            } else {
                t.log_r
            };
            sq.push((r.logf(&t.states[i]) + t.pf[i] - next - t.pb[i]).powi(2));
        }
    }
    let want = sq.iter().sum::<f64>() / sq.len() as f64;
    assert_close(eval(&c, &net, &batch(&c, TRAJS)), want, "DB");
}

#[test]
fn tb_and_zvar_by_hand_with_random_tables() {
    for uniform_pb in [false, true] {
        let c = cfg(Loss::Tb, |c| c.uniform_pb = uniform_pb);
        let (net, flat) = random_net(&c, 13);
        let r = Reference::new(&c, &flat);
        let zeta: Vec<f64> = TRAJS
            .iter()
            .map(|a| {
                let t = r.trajectory(a);
                t.pf.iter().sum::<f64>() - t.pb.iter().sum::<f64>() - t.log_r
            })
            .collect();
        let log_z = r.log_z.unwrap();
        assert!(log_z.abs() > 0.01);
        let n = zeta.len() as f64;
        let tb = zeta.iter().map(|z| (log_z + z).powi(2)).sum::<f64>() / n;
        assert_close(eval(&c, &net, &batch(&c, TRAJS)), tb, "TB");

        let c = cfg(Loss::ZVar, |c| c.uniform_pb = uniform_pb);
        // ZVar's net is TB's without logZ: same tables.
        let net = params::load(zero_net(&c), &flat[..flat.len() - 1]).unwrap();
        let mean = zeta.iter().sum::<f64>() / n;
        let zvar = zeta.iter().map(|z| (z - mean).powi(2)).sum::<f64>() / n;
        assert_close(eval(&c, &net, &batch(&c, TRAJS)), zvar, "ZVar");
    }
}

#[test]
fn modified_db_by_hand() {
    // Over the non-exit transitions s →a→ s': mean of
    // ([log R(s) + log P_F(a|s) + log P_F(exit|s')] − [log R(s') + log P_B(s|s') + log P_F(exit|s)])².
    for uniform_pb in [false, true] {
        let c = cfg(Loss::ModifiedDb, |c| c.uniform_pb = uniform_pb);
        let (net, flat) = random_net(&c, 14);
        let r = Reference::new(&c, &flat);
        let exit = c.ndim;
        let mut sq = vec![];
        for a in TRAJS {
            let t = r.trajectory(a);
            for i in 0..t.states.len() - 1 {
                let (s, s1) = (&t.states[i], &t.states[i + 1]);
                let pred = r.log_r(s) + t.pf[i] + r.log_pf(s1, exit);
                let target = r.log_r(s1) + t.pb[i] + r.log_pf(s, exit);
                sq.push((pred - target).powi(2));
            }
        }
        assert_eq!(sq.len(), 8);
        let want = sq.iter().sum::<f64>() / sq.len() as f64;
        assert!(want > 0.1);
        assert_close(
            eval(&c, &net, &batch(&c, TRAJS)),
            want,
            &format!("ModifiedDB uniform_pb={uniform_pb}"),
        );
    }
}

#[test]
fn fm_by_hand() {
    // u(s, a) is the raw PF output. For every visited non-initial state s (repeats and terminal
    // states included): in(s) = logsumexp_d u(s − e_d, d) over the parents, out(s) =
    // logsumexp over the allowed forward actions, exit included; fm = mean (in − out)².
    // Reward matching over the terminal states (s0 when a trajectory exits at once):
    // rm = mean (u(x, exit) − log R(x))². Loss = fm + rm.
    let c = cfg(Loss::Fm, |_| {});
    let (net, flat) = random_net(&c, 15);
    let r = Reference::new(&c, &flat);
    let (d, h) = (c.ndim, c.height);
    let (mut fm, mut rm) = (vec![], vec![]);
    for a in TRAJS {
        let states = r.trajectory(a).states;
        for s in &states[1..] {
            let incoming: Vec<f64> = (0..d)
                .filter(|&k| s[k] > 0)
                .map(|k| {
                    let mut p = s.clone();
                    p[k] -= 1;
                    r.u(&p, k)
                })
                .collect();
            let outgoing: Vec<f64> = (0..d)
                .filter(|&k| s[k] + 1 < h)
                .chain([d])
                .map(|k| r.u(s, k))
                .collect();
            fm.push((logsumexp(&incoming) - logsumexp(&outgoing)).powi(2));
        }
        let x = states.last().unwrap();
        rm.push((r.u(x, d) - r.log_r(x)).powi(2));
    }
    assert_eq!((fm.len(), rm.len()), (8, 4));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let want = mean(&fm) + mean(&rm);
    assert!(mean(&fm) > 0.01 && mean(&rm) > 0.01);
    assert_close(eval(&c, &net, &batch(&c, TRAJS)), want, "FM");
}
