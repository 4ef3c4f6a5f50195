//! Compact trajectory batches: what samplers produce, buffers store and learners consume.
//!
//! A HyperGrid trajectory is fully determined by its actions (it starts at the origin and each
//! non-exit action increments one coordinate), so a batch stores only the flat action sequences,
//! their lengths and the terminal log-rewards, plus the weight version that produced it.

use crate::env::HyperGrid;
use serde::{Deserialize, Serialize};

/// A batch of complete trajectories, stored as flat arrays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrajectoryBatch {
    /// Number of actions of each trajectory, exit included (`1..=max_length`).
    pub lengths: Vec<u16>,
    /// Concatenated actions; each trajectory ends with the exit action `D`.
    pub actions: Vec<u8>,
    /// `ln R(x)` of each trajectory's terminal state.
    pub log_rewards: Vec<f32>,
    /// Weight version of the policy that sampled each trajectory.
    pub versions: Vec<u64>,
}

/// Why a batch does not describe valid trajectories of a grid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch arrays disagree: {lengths} lengths, {rewards} rewards, {versions} versions, {actions} actions for {expected} expected")]
    Shape {
        lengths: usize,
        rewards: usize,
        versions: usize,
        actions: usize,
        expected: usize,
    },
    #[error("trajectory {0} is not a valid HyperGrid trajectory")]
    Invalid(usize),
}

impl TrajectoryBatch {
    /// Number of trajectories.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// Whether the batch holds no trajectory.
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// Total number of actions (transitions), exits included.
    pub fn n_transitions(&self) -> usize {
        self.actions.len()
    }

    /// Appends one trajectory.
    pub fn push(&mut self, actions: &[u8], log_reward: f32, version: u64) {
        self.lengths.push(actions.len() as u16);
        self.actions.extend_from_slice(actions);
        self.log_rewards.push(log_reward);
        self.versions.push(version);
    }

    /// Appends every trajectory of `other`.
    pub fn extend(&mut self, other: &TrajectoryBatch) {
        self.lengths.extend_from_slice(&other.lengths);
        self.actions.extend_from_slice(&other.actions);
        self.log_rewards.extend_from_slice(&other.log_rewards);
        self.versions.extend_from_slice(&other.versions);
    }

    /// Iterates over `(actions, log_reward, version)` of each trajectory.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f32, u64)> + '_ {
        let mut start = 0usize;
        self.lengths.iter().enumerate().map(move |(i, &l)| {
            let a = &self.actions[start..start + l as usize];
            start += l as usize;
            (a, self.log_rewards[i], self.versions[i])
        })
    }

    /// Builds a batch from the chosen trajectories of `self`, in the given order.
    pub fn select(&self, indices: &[usize]) -> TrajectoryBatch {
        let offsets = self.offsets();
        let mut out = TrajectoryBatch::default();
        for &i in indices {
            let a = &self.actions[offsets[i]..offsets[i + 1]];
            out.push(a, self.log_rewards[i], self.versions[i]);
        }
        out
    }

    /// Start of each trajectory in `actions`, plus the total at the end.
    pub fn offsets(&self) -> Vec<usize> {
        let mut o = Vec::with_capacity(self.len() + 1);
        let mut acc = 0;
        o.push(0);
        for &l in &self.lengths {
            acc += l as usize;
            o.push(acc);
        }
        o
    }

    /// Checks that the arrays agree and that every trajectory is valid on `grid`: non-exit
    /// actions stay inside the grid and exactly the last action is the exit.
    /// Data from the network or disk goes through this before a learner sees it.
    pub fn validate(&self, grid: &HyperGrid) -> Result<(), BatchError> {
        let expected: usize = self.lengths.iter().map(|&l| l as usize).sum();
        if self.log_rewards.len() != self.len()
            || self.versions.len() != self.len()
            || self.actions.len() != expected
        {
            return Err(BatchError::Shape {
                lengths: self.len(),
                rewards: self.log_rewards.len(),
                versions: self.versions.len(),
                actions: self.actions.len(),
                expected,
            });
        }
        let exit = grid.exit_action() as u8;
        let mut state = vec![0u16; grid.ndim()];
        for (i, (actions, log_r, _)) in self.iter().enumerate() {
            state.iter_mut().for_each(|c| *c = 0);
            let ok = !actions.is_empty()
                && actions.len() <= grid.max_length()
                && !log_r.is_nan()
                && actions[..actions.len() - 1].iter().all(|&a| {
                    let fine = a < exit && grid.forward_allowed(&state, a as usize);
                    if fine {
                        state[a as usize] += 1;
                    }
                    fine
                })
                && actions[actions.len() - 1] == exit;
            if !ok {
                return Err(BatchError::Invalid(i));
            }
        }
        Ok(())
    }

    /// Terminal state of trajectory `actions` on a grid of `ndim` dimensions.
    pub fn terminal_state(ndim: usize, actions: &[u8], out: &mut [u16]) {
        out[..ndim].iter_mut().for_each(|c| *c = 0);
        for &a in &actions[..actions.len().saturating_sub(1)] {
            out[a as usize] += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TrajectoryBatch {
        let mut b = TrajectoryBatch::default();
        b.push(&[0, 1, 0, 2], -1.0, 3);
        b.push(&[2], -2.0, 4);
        b
    }

    #[test]
    fn iterates_and_selects() {
        let b = sample();
        let v: Vec<_> = b.iter().collect();
        assert_eq!(v[0].0, &[0, 1, 0, 2]);
        assert_eq!(v[1], (&[2u8][..], -2.0, 4));
        let s = b.select(&[1, 1, 0]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.actions, vec![2, 2, 0, 1, 0, 2]);
        let mut x = [0u16; 2];
        TrajectoryBatch::terminal_state(2, &[0, 1, 0, 2], &mut x);
        assert_eq!(x, [2, 1]);
    }

    #[test]
    fn validation_rejects_bad_trajectories() {
        let g = HyperGrid::new(2, 3).unwrap();
        assert!(sample().validate(&g).is_ok());
        let mut b = sample();
        b.actions[3] = 0; // no exit at the end
        assert_eq!(b.validate(&g), Err(BatchError::Invalid(0)));
        let mut b = TrajectoryBatch::default();
        b.push(&[0, 0, 0, 2], 0.0, 0); // leaves the grid (H = 3)
        assert_eq!(b.validate(&g), Err(BatchError::Invalid(0)));
        let mut b = sample();
        b.versions.pop();
        assert!(matches!(b.validate(&g), Err(BatchError::Shape { .. })));
    }
}
