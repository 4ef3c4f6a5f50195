//! The GFlowNet objectives, with the semantics of torchgfn (see the project README).
//!
//! Trajectory objectives share one formulation. With `d_t = log P_F(a_t|s_t) − log P_B(s_t|s_{t+1})`
//! (the exit step has no P_B term), `C_k = Σ_{t<k} d_t`, and node values `F_k = log F(s_k)` for
//! `k < L` and `F_L = log R(x)`, let `A_k = F_k − C_k`. The balance residual of the
//! sub-trajectory from node `t` to node `e` is then `A_t − A_e`: TB is `(0, L)` with `F_0 = log Z`,
//! DB the consecutive pairs, SubTB every pair with a weighting.

use crate::inputs::StepInputs;
use gfn_common::config::{ObjectiveSection, Regression};
use gfn_common::{HyperGrid, Loss, Preprocessor, SubTbWeighting};
use gfn_nn::burn::tensor::activation::log_softmax;
use gfn_nn::burn::tensor::backend::Backend;
use gfn_nn::burn::tensor::{Bool, Int, Tensor, TensorData};
use gfn_nn::policy::{encode, MASKED_LOGIT};
use gfn_nn::{GflowNet, NetNoise};

/// The loss settings of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossConfig {
    pub loss: Loss,
    pub weighting: SubTbWeighting,
    pub lambda: f32,
    /// g, applied to every residual before the weighting or mean.
    pub regression: Regression,
}

impl LossConfig {
    /// The loss of the run's objective.
    pub fn new(objective: &ObjectiveSection) -> Self {
        Self {
            loss: objective.loss,
            weighting: objective.subtb_weighting,
            lambda: objective.subtb_lambda,
            regression: objective.regression(),
        }
    }
}

fn ints<B: Backend, const D: usize>(
    v: &[i64],
    shape: [usize; D],
    dev: &B::Device,
) -> Tensor<B, D, Int> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), dev)
}

fn floats<B: Backend, const D: usize>(
    v: &[f32],
    shape: [usize; D],
    dev: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), dev)
}

fn bools<B: Backend, const D: usize>(
    v: &[bool],
    shape: [usize; D],
    dev: &B::Device,
) -> Tensor<B, D, Bool> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), dev)
}

/// `values[index]`, where `index == values.len()` reads a zero.
fn gather_padded<B: Backend>(values: Tensor<B, 1>, index: &[i64], dev: &B::Device) -> Tensor<B, 1> {
    let padded = Tensor::cat(vec![values, Tensor::zeros([1], dev)], 0);
    padded.select(0, ints(index, [index.len()], dev))
}

/// g(t) elementwise: the tensor form of [`Regression::value`], exponents clamped as torchgfn
/// clamps them so that a wild residual gives a large finite loss, not infinity.
pub fn regress<B: Backend, const D: usize>(g: Regression, t: Tensor<B, D>) -> Tensor<B, D> {
    let c = Regression::EXP_CLAMP;
    match g {
        Regression::Squared => t.powi_scalar(2),
        Regression::HalfSquared => t.powi_scalar(2) * 0.5,
        Regression::ShiftedCosh => {
            let t = t.clamp(-c, c);
            t.clone().exp() + t.neg().exp() - 2.0
        }
        Regression::Linex { alpha } => {
            let at = t * alpha;
            (at.clone().clamp(-c, c).exp() - at - 1.0) / (alpha * alpha)
        }
    }
}

/// `log Σ exp` over dimension 1 of `[rows, k]` → `[rows]`.
fn logsumexp<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 1> {
    let rows = x.dims()[0];
    let m = x.clone().max_dim(1).detach();
    ((x - m.clone()).exp().sum_dim(1).log() + m).reshape([rows])
}

/// Per-row quantities of a trajectory batch.
struct RowTerms<B: Backend> {
    /// `[S]` `log P_F(a_t | s_t)`.
    log_pf: Tensor<B, 1>,
    /// `[S]` `log P_B(s_t | s_{t+1})`, 0 on exit rows.
    log_pb: Tensor<B, 1>,
    /// `[S]` `log P_F(exit | s_t)`.
    log_pf_exit: Tensor<B, 1>,
    /// `[S]` `log F(s_t)` when the net has logF.
    logf: Option<Tensor<B, 1>>,
}

fn row_terms<B: Backend>(
    net: &GflowNet<B>,
    noise: Option<&NetNoise<B>>,
    x: &StepInputs,
    grid: &HyperGrid,
    pre: Preprocessor,
    dev: &B::Device,
) -> RowTerms<B> {
    // The networks see each distinct state once; flat indices gather the rows' values.
    let (s, u, d, a) = (x.rows, x.distinct.len(grid), grid.ndim(), grid.n_actions());
    let input = encode::<B>(grid, pre, &x.distinct.unique, dev);
    let out = net.forward(&input, noise, true, true);
    let pf = out
        .pf
        .mask_fill(bools(&x.fwd_forbidden, [u, a], dev), MASKED_LOGIT);
    let log_pf_all = log_softmax(pf, 1).reshape([u * a]);
    let log_pf = log_pf_all.clone().select(0, ints(&x.pf_index, [s], dev));
    let log_pf_exit = log_pf_all.select(0, ints(&x.exit_index, [s], dev));
    let j = x.n_transitions();
    let log_pb = match out.pb {
        Some(pb) if j > 0 => {
            let pb = log_softmax(
                pb.mask_fill(bools(&x.bwd_forbidden, [u, d], dev), MASKED_LOGIT),
                1,
            )
            .reshape([u * d]);
            let per_transition = pb.select(0, ints(&x.pb_index, [j], dev));
            gather_padded(per_transition, &x.trans_of_row, dev)
        }
        Some(_) => Tensor::zeros([s], dev),
        None => floats(&x.uniform_log_pb, [s], dev),
    };
    let logf = out
        .logf
        .map(|f| f.select(0, ints(&x.distinct.row_of, [s], dev)));
    RowTerms {
        log_pf,
        log_pb,
        log_pf_exit,
        logf,
    }
}

/// The loss of one training batch, as a one-element tensor.
pub fn loss<B: Backend>(
    net: &GflowNet<B>,
    noise: Option<&NetNoise<B>>,
    x: &StepInputs,
    cfg: &LossConfig,
    grid: &HyperGrid,
    pre: Preprocessor,
    dev: &B::Device,
) -> Tensor<B, 1> {
    if cfg.loss == Loss::Fm {
        return flow_matching(net, noise, x, grid, pre, cfg.regression, dev);
    }
    let terms = row_terms(net, noise, x, grid, pre, dev);
    let (n, t) = (x.n, x.t_max);
    let log_r = floats::<B, 1>(&x.log_rewards, [n], dev);
    let diff = terms.log_pf.clone() - terms.log_pb.clone();
    // [N, T] per-step log P_F − log P_B, zero past each trajectory's end.
    let steps = gather_padded(diff, &x.step_rows, dev).reshape([n, t]);
    let total = steps.clone().sum_dim(1).reshape([n]);
    let g = cfg.regression;
    match cfg.loss {
        Loss::Tb => {
            let log_z = net.log_z_value().unwrap_or_else(|| Tensor::zeros([1], dev));
            regress(g, total + log_z - log_r).mean()
        }
        Loss::ZVar => {
            let zeta = total - log_r;
            let centred = zeta.clone() - zeta.mean();
            regress(g, centred).mean()
        }
        Loss::ModifiedDb => modified_db(&terms, x, g, dev),
        Loss::Db | Loss::SubTb => {
            let weighting = if cfg.loss == Loss::Db {
                None
            } else {
                Some(cfg.weighting)
            };
            let logf = terms
                .logf
                .clone()
                .unwrap_or_else(|| Tensor::zeros([x.rows], dev));
            balance(logf, log_r, steps, x, (weighting, cfg.lambda, g), dev)
        }
        Loss::Fm => unreachable!("handled above"),
    }
}

/// DB (`weighting` None: mean over transitions) and SubTB with a weighting and its lambda, each
/// residual through `g`.
fn balance<B: Backend>(
    logf: Tensor<B, 1>,
    log_r: Tensor<B, 1>,
    steps: Tensor<B, 2>,
    x: &StepInputs,
    (weighting, lambda, g): (Option<SubTbWeighting>, f32, Regression),
    dev: &B::Device,
) -> Tensor<B, 1> {
    let (n, t) = (x.n, x.t_max);
    let nodes = Tensor::cat(vec![logf, log_r], 0);
    let f = gather_padded(nodes, &x.node_index, dev).reshape([n, t + 1]);
    // C = steps · U with U[j, k] = 1 for j < k: prefix sums of the steps.
    let mut upper = vec![0f32; t * (t + 1)];
    for j in 0..t {
        for k in j + 1..=t {
            upper[j * (t + 1) + k] = 1.0;
        }
    }
    let c = steps.matmul(floats(&upper, [t, t + 1], dev));
    let a = f - c;
    match weighting {
        None | Some(SubTbWeighting::Db | SubTbWeighting::ModifiedDb) => {
            let r = a.clone().slice([0..n, 0..t]) - a.slice([0..n, 1..t + 1]);
            let w = consecutive_weights(x, weighting);
            (regress(g, r) * floats(&w, [n, t], dev)).sum()
        }
        Some(weighting) => {
            let r = a.clone().reshape([n, t + 1, 1]) - a.reshape([n, 1, t + 1]);
            let w = subtrajectory_weights(x, weighting, lambda);
            (regress(g, r) * floats(&w, [n, t + 1, t + 1], dev)).sum()
        }
    }
}

/// Weights of the length-1 residuals `(t, t+1)`, `[N, T]`.
fn consecutive_weights(x: &StepInputs, weighting: Option<SubTbWeighting>) -> Vec<f32> {
    let (n, t) = (x.n, x.t_max);
    let total: usize = x.lengths.iter().sum();
    let mut w = vec![0f32; n * t];
    for (i, &l) in x.lengths.iter().enumerate() {
        let value = match weighting {
            None => 1.0 / total as f32,
            Some(SubTbWeighting::Db) => 1.0,
            _ => 1.0 / (l * n) as f32,
        };
        w[i * t..i * t + l].iter_mut().for_each(|v| *v = value);
    }
    w
}

/// Weights of every sub-trajectory `(start, end)`, `[N, T+1, T+1]`, zero unless
/// `0 ≤ start < end ≤ L_n`.
pub fn subtrajectory_weights(x: &StepInputs, weighting: SubTbWeighting, lambda: f32) -> Vec<f32> {
    let (n, t) = (x.n, x.t_max);
    let lam = lambda as f64;
    let mut w = vec![0f32; n * (t + 1) * (t + 1)];
    let mut count_by_len = vec![0usize; t + 1];
    for &l in &x.lengths {
        for (i, count) in count_by_len.iter_mut().enumerate().take(l + 1).skip(1) {
            *count += l + 1 - i;
        }
    }
    let total: usize = count_by_len.iter().sum();
    for (k, &l) in x.lengths.iter().enumerate() {
        let within = (0..l)
            .map(|j| (l - j) as f64 * lam.powi(j as i32))
            .sum::<f64>();
        for start in 0..l {
            for end in start + 1..=l {
                let i = end - start;
                let value = match weighting {
                    SubTbWeighting::GeometricWithin => lam.powi(i as i32 - 1) / (n as f64 * within),
                    SubTbWeighting::Geometric => {
                        let norm = if (lam - 1.0).abs() < 1e-12 {
                            1.0 / t as f64
                        } else {
                            (1.0 - lam) / (1.0 - lam.powi(t as i32))
                        };
                        norm * lam.powi(i as i32 - 1) / count_by_len[i] as f64
                    }
                    SubTbWeighting::Equal => 1.0 / total as f64,
                    SubTbWeighting::EqualWithin => 2.0 / ((l * (l + 1)) as f64 * n as f64),
                    SubTbWeighting::Tb => (start == 0 && end == l) as u8 as f64,
                    SubTbWeighting::Db => (i == 1) as u8 as f64,
                    SubTbWeighting::ModifiedDb => (i == 1) as u8 as f64 / (l * n) as f64,
                };
                w[(k * (t + 1) + start) * (t + 1) + end] = value as f32;
            }
        }
    }
    w
}

/// ModifiedDB over the non-exit transitions (every state is terminal).
fn modified_db<B: Backend>(
    terms: &RowTerms<B>,
    x: &StepInputs,
    g: Regression,
    dev: &B::Device,
) -> Tensor<B, 1> {
    let j = x.n_transitions();
    if j == 0 {
        return terms.log_pf.clone().sum() * 0.0;
    }
    let src = ints::<B, 1>(&x.src_rows, [j], dev);
    let dst = ints::<B, 1>(&x.dst_rows, [j], dev);
    let log_r = floats::<B, 1>(&x.row_log_rewards, [x.rows], dev);
    let pb = terms.log_pb.clone().select(0, src.clone());
    let r = log_r.clone().select(0, src.clone())
        + terms.log_pf.clone().select(0, src.clone())
        + terms.log_pf_exit.clone().select(0, dst.clone())
        - log_r.select(0, dst)
        - pb
        - terms.log_pf_exit.clone().select(0, src);
    regress(g, r).mean()
}

/// Flow matching on the visited states: in-flow from the parents against out-flow (exit
/// included), plus reward matching on the terminal states. The network's outputs are log edge
/// flows, evaluated on the visited states and their parents.
fn flow_matching<B: Backend>(
    net: &GflowNet<B>,
    noise: Option<&NetNoise<B>>,
    x: &StepInputs,
    grid: &HyperGrid,
    pre: Preprocessor,
    g: Regression,
    dev: &B::Device,
) -> Tensor<B, 1> {
    let fm = FlowRows::new(x, grid);
    let (d, a) = (grid.ndim(), grid.n_actions());
    let u_rows = fm.states.len() / d;
    let input = encode::<B>(grid, pre, &fm.states, dev);
    let u = net.forward(&input, noise, false, false).pf; // [U, D+1]
    let (k, n) = (fm.visited.len(), x.n);
    // Reward matching: the exit edge of each terminal state against log R.
    let exit_idx: Vec<i64> = fm
        .terminal
        .iter()
        .map(|&r| r * a as i64 + (a as i64 - 1))
        .collect();
    let flat = u.clone().reshape([u_rows * a]);
    let exit_flow = flat.clone().select(0, ints(&exit_idx, [n], dev));
    let rm = regress(g, exit_flow - floats(&x.log_rewards, [n], dev)).mean();
    if k == 0 {
        return rm;
    }
    let out_logits = u
        .select(0, ints(&fm.visited, [k], dev))
        .mask_fill(bools(&fm.visited_forbidden, [k, a], dev), MASKED_LOGIT);
    let in_logits = flat
        .select(0, ints(&fm.parent_edges, [k * d], dev))
        .reshape([k, d])
        .mask_fill(bools(&fm.parent_missing, [k, d], dev), MASKED_LOGIT);
    let fm_loss = regress(g, logsumexp(in_logits) - logsumexp(out_logits)).mean();
    fm_loss + rm
}

/// Rows for flow matching: unique states (visited ones and their parents) and index maps.
struct FlowRows {
    /// `[U, D]` unique states.
    states: Vec<u16>,
    /// `[K]` unique row of each visited non-initial state (with repeats).
    visited: Vec<i64>,
    /// `[K, D+1]` forward actions not allowed at the visited state.
    visited_forbidden: Vec<bool>,
    /// `[K·D]` flat index `row(parent_d)·(D+1) + d` of the edge from parent `d` (0 if none).
    parent_edges: Vec<i64>,
    /// `[K, D]` parent `d` does not exist.
    parent_missing: Vec<bool>,
    /// `[N]` unique row of each terminal state.
    terminal: Vec<i64>,
}

impl FlowRows {
    fn new(x: &StepInputs, grid: &HyperGrid) -> Self {
        let (d, a) = (grid.ndim(), grid.n_actions());
        let mut rows = std::collections::HashMap::<Vec<u16>, i64>::new();
        let mut me = FlowRows {
            states: vec![],
            visited: vec![],
            visited_forbidden: vec![],
            parent_edges: vec![],
            parent_missing: vec![],
            terminal: vec![],
        };
        let mut row_of = |s: &[u16], states: &mut Vec<u16>| -> i64 {
            *rows.entry(s.to_vec()).or_insert_with(|| {
                states.extend_from_slice(s);
                (states.len() / d - 1) as i64
            })
        };
        let mut start = 0usize;
        let mut mask = vec![false; a];
        let mut parent = vec![0u16; d];
        for &l in &x.lengths {
            for t in 0..l {
                let s = &x.states[(start + t) * d..(start + t + 1) * d];
                let r = row_of(s, &mut me.states);
                if t + 1 == l {
                    me.terminal.push(r);
                }
                if t == 0 {
                    continue;
                }
                me.visited.push(r);
                grid.forward_mask(s, &mut mask);
                me.visited_forbidden.extend(mask.iter().map(|m| !m));
                for dim in 0..d {
                    if s[dim] == 0 {
                        me.parent_edges.push(0);
                        me.parent_missing.push(true);
                    } else {
                        parent.copy_from_slice(s);
                        parent[dim] -= 1;
                        let pr = row_of(&parent, &mut me.states);
                        me.parent_edges.push(pr * a as i64 + dim as i64);
                        me.parent_missing.push(false);
                    }
                }
            }
            start += l;
        }
        me
    }
}
