//! Host-side preparation of a training batch: the rows every network evaluates, masks, and the
//! index maps that let the losses gather per-transition values with a few tensor ops.
//!
//! Rows are the non-sink states of every trajectory in order: trajectory `n` contributes
//! `s_0 … s_{L_n−1}` (row `t` carries action `a_t`; the last action is exit).

use gfn_common::dedup::Dedup;
use gfn_common::{HyperGrid, Reward, TrajectoryBatch};

/// Everything the trajectory losses need, as flat host arrays.
#[derive(Debug, Clone, Default)]
pub struct StepInputs {
    /// Trajectories `N`.
    pub n: usize,
    /// Longest trajectory `T` (actions, exit included).
    pub t_max: usize,
    /// Rows `S = Σ L_n`.
    pub rows: usize,
    /// `[S, D]` coordinates.
    pub states: Vec<u16>,
    /// The `U` distinct states among the rows: the networks evaluate these only.
    pub distinct: Dedup,
    /// `[U, D+1]` forward actions that are NOT allowed at each distinct state.
    pub fwd_forbidden: Vec<bool>,
    /// `[U, D]` backward actions that are NOT allowed at each distinct state.
    pub bwd_forbidden: Vec<bool>,
    /// `[S]` action taken at each row.
    pub actions: Vec<i64>,
    /// `[S]` flat index `u·(D+1) + a_t` of the row's action in the `[U, D+1]` forward outputs.
    pub pf_index: Vec<i64>,
    /// `[S]` flat index `u·(D+1) + D` of the row's exit action.
    pub exit_index: Vec<i64>,
    /// `[J]` for each non-exit transition `s_t → s_{t+1}`: the row of `s_t`.
    pub src_rows: Vec<i64>,
    /// `[J]` the row of `s_{t+1}`.
    pub dst_rows: Vec<i64>,
    /// `[J]` the action `a_t` (backward action of `s_{t+1}` that undoes it).
    pub trans_actions: Vec<i64>,
    /// `[J]` flat index `u(s_{t+1})·D + a_t` of the transition's backward action in the
    /// `[U, D]` backward outputs.
    pub pb_index: Vec<i64>,
    /// `[S]` index of the row's transition in `0..J`, or `J` for exit rows (PB term 0).
    pub trans_of_row: Vec<i64>,
    /// `[S]` `log P_B` under the uniform backward policy (0 for exit rows).
    pub uniform_log_pb: Vec<f32>,
    /// `[N·T]` row of step `(n, t)`, or `S` (a zero pad) past the end.
    pub step_rows: Vec<i64>,
    /// `[N·(T+1)]` index into `[logF rows (S) ; log R (N) ; pad]` of node `(n, k)`: the row of
    /// `s_k` for `k < L_n`, `S + n` (the reward) for `k = L_n`, `S + N` past the end.
    pub node_index: Vec<i64>,
    /// `[N]` trajectory lengths.
    pub lengths: Vec<usize>,
    /// `[N]` `ln R(x)`.
    pub log_rewards: Vec<f32>,
    /// `[S]` `ln R(s)` of every row (ModifiedDB treats every state as terminal).
    pub row_log_rewards: Vec<f32>,
}

impl StepInputs {
    /// Prepares a validated batch.
    pub fn new(grid: &HyperGrid, reward: &Reward, batch: &TrajectoryBatch) -> Self {
        let (d, a) = (grid.ndim(), grid.n_actions());
        let n = batch.len();
        let lengths: Vec<usize> = batch.lengths.iter().map(|&l| l as usize).collect();
        let t_max = lengths.iter().copied().max().unwrap_or(0);
        let s_total: usize = lengths.iter().sum();
        let mut x = StepInputs {
            n,
            t_max,
            rows: s_total,
            lengths,
            log_rewards: batch.log_rewards.clone(),
            ..Default::default()
        };
        x.states.reserve(s_total * d);
        let mut state = vec![0u16; d];
        let mut row = 0usize;
        for (actions, _, _) in batch.iter() {
            state.iter_mut().for_each(|c| *c = 0);
            for (t, &act) in actions.iter().enumerate() {
                x.states.extend_from_slice(&state);
                x.row_log_rewards.push(reward.log_reward(&state));
                x.actions.push(act as i64);
                if t + 1 < actions.len() {
                    state[act as usize] += 1;
                    x.trans_of_row.push(x.src_rows.len() as i64);
                    x.src_rows.push(row as i64);
                    x.dst_rows.push(row as i64 + 1);
                    x.trans_actions.push(act as i64);
                    x.uniform_log_pb.push(-(grid.n_parents(&state) as f32).ln());
                } else {
                    x.trans_of_row.push(-1);
                    x.uniform_log_pb.push(0.0);
                }
                row += 1;
            }
        }
        x.distinct = Dedup::new(grid, &x.states);
        let (mut fmask, mut bmask) = (vec![false; a], vec![false; d]);
        for u in x.distinct.unique.chunks_exact(d) {
            grid.forward_mask(u, &mut fmask);
            grid.backward_mask(u, &mut bmask);
            x.fwd_forbidden.extend(fmask.iter().map(|m| !m));
            x.bwd_forbidden.extend(bmask.iter().map(|m| !m));
        }
        let row_of = &x.distinct.row_of;
        let (a64, d64) = (a as i64, d as i64);
        x.pf_index = row_of
            .iter()
            .zip(&x.actions)
            .map(|(u, act)| u * a64 + act)
            .collect();
        x.exit_index = row_of.iter().map(|u| u * a64 + a64 - 1).collect();
        x.pb_index = x
            .dst_rows
            .iter()
            .zip(&x.trans_actions)
            .map(|(&dst, act)| row_of[dst as usize] * d64 + act)
            .collect();
        let j = x.src_rows.len() as i64;
        x.trans_of_row
            .iter_mut()
            .filter(|v| **v < 0)
            .for_each(|v| *v = j);
        let (s, nn) = (s_total as i64, n as i64);
        x.step_rows = vec![s; n * t_max];
        x.node_index = vec![s + nn; n * (t_max + 1)];
        let mut start = 0usize;
        for (i, &l) in x.lengths.iter().enumerate() {
            for t in 0..l {
                x.step_rows[i * t_max + t] = (start + t) as i64;
                x.node_index[i * (t_max + 1) + t] = (start + t) as i64;
            }
            x.node_index[i * (t_max + 1) + l] = s + i as i64;
            start += l;
        }
        x
    }

    /// Number of non-exit transitions `J`.
    pub fn n_transitions(&self) -> usize {
        self.src_rows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gfn_common::RewardKind;

    #[test]
    fn index_maps_of_a_small_batch() {
        let grid = HyperGrid::new(2, 4).unwrap();
        let reward = Reward::new(RewardKind::Original, 4, 0.1, 0.5, 2.0).unwrap();
        let mut b = TrajectoryBatch::default();
        b.push(&[0, 1, 2], -1.0, 0); // (0,0) → (1,0) → (1,1) → exit
        b.push(&[2], -2.0, 0); // exit at the origin
        let x = StepInputs::new(&grid, &reward, &b);
        assert_eq!((x.n, x.t_max, x.rows, x.n_transitions()), (2, 3, 4, 2));
        assert_eq!(x.states, vec![0, 0, 1, 0, 1, 1, 0, 0]);
        assert_eq!(x.distinct.row_of, vec![0, 1, 2, 0]);
        assert_eq!(x.actions, vec![0, 1, 2, 2]);
        assert_eq!(x.src_rows, vec![0, 1]);
        assert_eq!(x.dst_rows, vec![1, 2]);
        assert_eq!(x.trans_of_row, vec![0, 1, 2, 2]);
        assert_eq!(x.step_rows, vec![0, 1, 2, 3, 4, 4]);
        assert_eq!(x.node_index, vec![0, 1, 2, 4, 3, 5, 6, 6]);
        // (1,0) has one parent, (1,1) two.
        assert_eq!(x.uniform_log_pb[0], 0.0);
        assert!((x.uniform_log_pb[1] + 2f32.ln()).abs() < 1e-7);
        // Distinct states (0,0), (1,0), (1,1): masks and flat indices are per distinct state.
        assert_eq!(x.fwd_forbidden.len(), 3 * 3);
        assert_eq!(&x.fwd_forbidden[..3], &[false, false, false]);
        assert_eq!(&x.bwd_forbidden[..4], &[true, true, false, true]);
        assert_eq!(x.pf_index, vec![0, 4, 8, 2]);
        assert_eq!(x.exit_index, vec![2, 5, 8, 2]);
        assert_eq!(x.pb_index, vec![2, 5]);
    }
}
