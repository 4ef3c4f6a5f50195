//! A replay buffer of whole trajectories, as torchgfn's `ReplayBuffer`: a full buffer keeps the
//! newest (FIFO) or the highest-reward (prioritised) trajectories; sampling is uniform without
//! replacement.

use gfn_common::{ReplayPolicy, TrajectoryBatch};
use rand::seq::index::sample;
use rand::Rng;

/// Stored trajectories, oldest first.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReplayBuffer {
    capacity: usize,
    policy: ReplayPolicy,
    items: TrajectoryBatch,
}

impl ReplayBuffer {
    /// An empty buffer holding at most `capacity` trajectories.
    pub fn new(capacity: usize, policy: ReplayPolicy) -> Self {
        Self {
            capacity: capacity.max(1),
            policy,
            items: TrajectoryBatch::default(),
        }
    }

    /// Number of stored trajectories.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds a batch, then evicts down to capacity.
    pub fn add(&mut self, batch: &TrajectoryBatch) {
        self.items.extend(batch);
        if self.items.len() <= self.capacity {
            return;
        }
        let n = self.items.len();
        let keep: Vec<usize> = match self.policy {
            ReplayPolicy::Fifo => (n - self.capacity..n).collect(),
            ReplayPolicy::Prioritized => {
                // Stable ascending sort by reward, keep the top `capacity` (newest win ties).
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&a, &b| {
                    self.items.log_rewards[a].total_cmp(&self.items.log_rewards[b])
                });
                let mut top = order[n - self.capacity..].to_vec();
                top.sort_unstable();
                top
            }
        };
        self.items = self.items.select(&keep);
    }

    /// `n` trajectories drawn uniformly without replacement (all of them if fewer are stored).
    pub fn sample(&self, n: usize, rng: &mut impl Rng) -> TrajectoryBatch {
        let len = self.items.len();
        let picked = sample(rng, len, n.min(len)).into_vec();
        self.items.select(&picked)
    }

    /// Every stored trajectory.
    pub fn contents(&self) -> &TrajectoryBatch {
        &self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, SeedableRng};

    fn batch(rewards: &[f32]) -> TrajectoryBatch {
        let mut b = TrajectoryBatch::default();
        for (i, &r) in rewards.iter().enumerate() {
            b.push(&[0, 2], r, i as u64);
        }
        b
    }

    #[test]
    fn fifo_keeps_the_newest() {
        let mut rb = ReplayBuffer::new(3, ReplayPolicy::Fifo);
        rb.add(&batch(&[1.0, 2.0]));
        rb.add(&batch(&[3.0, 4.0]));
        assert_eq!(rb.contents().log_rewards, vec![2.0, 3.0, 4.0]);
    }

    #[test]
    fn prioritized_keeps_the_highest_rewards() {
        let mut rb = ReplayBuffer::new(2, ReplayPolicy::Prioritized);
        rb.add(&batch(&[5.0, -1.0, 3.0]));
        rb.add(&batch(&[0.0]));
        assert_eq!(rb.contents().log_rewards, vec![5.0, 3.0]);
    }

    #[test]
    fn sampling_is_without_replacement() {
        let mut rb = ReplayBuffer::new(10, ReplayPolicy::Fifo);
        rb.add(&batch(&[0.0, 1.0, 2.0, 3.0, 4.0]));
        let mut rng = SmallRng::seed_from_u64(0);
        let s = rb.sample(5, &mut rng);
        let mut r = s.log_rewards.clone();
        r.sort_by(f32::total_cmp);
        assert_eq!(r, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(rb.sample(50, &mut rng).len(), 5);
    }
}
