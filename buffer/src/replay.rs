//! A replay buffer of whole trajectories, as torchgfn's `ReplayBuffer`: a full buffer keeps the
//! newest (FIFO) or the highest-reward (prioritised) trajectories; sampling is uniform without
//! replacement.

use gfn_common::{HyperGrid, ReplayPolicy, TrajectoryBatch};
use rand::seq::index::{sample, sample_weighted};
use rand::Rng;

/// Stored trajectories, oldest first, with how often each was handed out.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReplayBuffer {
    capacity: usize,
    policy: ReplayPolicy,
    items: TrajectoryBatch,
    times_sampled: Vec<u32>,
    /// Sample in proportion to the reward (softmax of log-rewards) instead of uniformly.
    pub prioritized_sampling: bool,
    /// Remove a trajectory once it was handed out this often (0: never).
    pub max_times_sampled: u32,
}

impl ReplayBuffer {
    /// An empty buffer holding at most `capacity` trajectories.
    pub fn new(capacity: usize, policy: ReplayPolicy) -> Self {
        Self {
            capacity: capacity.max(1),
            policy,
            items: TrajectoryBatch::default(),
            times_sampled: vec![],
            prioritized_sampling: false,
            max_times_sampled: 0,
        }
    }

    /// Checks restored contents: one use count per trajectory, every trajectory valid.
    pub fn check(&self, grid: &HyperGrid) -> Result<(), String> {
        if self.capacity == 0 {
            return Err("replay buffer of capacity 0".into());
        }
        if self.times_sampled.len() != self.items.len() {
            return Err(format!(
                "replay buffer of {} trajectories with {} use counts",
                self.items.len(),
                self.times_sampled.len()
            ));
        }
        self.items.validate(grid).map_err(|e| e.to_string())
    }

    /// Most trajectories held at once.
    pub fn capacity(&self) -> usize {
        self.capacity
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
        self.times_sampled.resize(self.items.len(), 0);
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
        self.keep(&keep);
    }

    fn keep(&mut self, keep: &[usize]) {
        self.items = self.items.select(keep);
        self.times_sampled = keep.iter().map(|&i| self.times_sampled[i]).collect();
    }

    /// `n` trajectories drawn without replacement (all of them if fewer are stored): uniformly,
    /// or in proportion to `exp(log R)` with prioritised sampling. Trajectories handed out
    /// `max_times_sampled` times leave the buffer.
    pub fn sample(&mut self, n: usize, rng: &mut impl Rng) -> TrajectoryBatch {
        let len = self.items.len();
        let k = n.min(len);
        let picked = if self.prioritized_sampling {
            let max = self
                .items
                .log_rewards
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            let weights: Vec<f64> = self
                .items
                .log_rewards
                .iter()
                .map(|&l| ((l - max) as f64).exp().max(1e-300))
                .collect();
            sample_weighted(rng, len, |i| weights[i], k)
                .map(|ix| ix.into_vec())
                .unwrap_or_else(|_| sample(rng, len, k).into_vec())
        } else {
            sample(rng, len, k).into_vec()
        };
        let out = self.items.select(&picked);
        for &i in &picked {
            self.times_sampled[i] += 1;
        }
        if self.max_times_sampled > 0 {
            let keep: Vec<usize> = (0..len)
                .filter(|&i| self.times_sampled[i] < self.max_times_sampled)
                .collect();
            if keep.len() < len {
                self.keep(&keep);
            }
        }
        out
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
    fn restored_contents_are_checked() {
        // Actions [0, 2]: one step along the first axis of a 2-D grid, then exit.
        let grid = HyperGrid::new(2, 4).unwrap();
        let mut rb = ReplayBuffer::new(10, ReplayPolicy::Fifo);
        rb.add(&batch(&[1.0, 2.0]));
        assert!(rb.check(&grid).is_ok());
        // One use count per trajectory: a checkpoint with fewer is refused, not indexed past.
        rb.times_sampled.pop();
        assert!(rb.check(&grid).unwrap_err().contains("use counts"));
        rb.times_sampled.push(0);
        assert!(rb.check(&HyperGrid::new(1, 4).unwrap()).is_err());
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
    fn max_times_sampled_removes_trajectories() {
        let mut rb = ReplayBuffer::new(10, ReplayPolicy::Fifo);
        rb.max_times_sampled = 1;
        rb.add(&batch(&[0.0, 1.0, 2.0, 3.0]));
        let mut rng = SmallRng::seed_from_u64(1);
        let mut seen: Vec<f32> = rb.sample(2, &mut rng).log_rewards;
        assert_eq!(rb.len(), 2);
        seen.extend(rb.sample(5, &mut rng).log_rewards);
        seen.sort_by(f32::total_cmp);
        assert_eq!(
            seen,
            vec![0.0, 1.0, 2.0, 3.0],
            "each handed out exactly once"
        );
        assert!(rb.is_empty());
    }

    #[test]
    fn prioritized_sampling_prefers_high_rewards() {
        let mut rb = ReplayBuffer::new(10, ReplayPolicy::Fifo);
        rb.prioritized_sampling = true;
        rb.add(&batch(&[0.0, 5.0]));
        let mut rng = SmallRng::seed_from_u64(2);
        let high = (0..200)
            .filter(|_| rb.sample(1, &mut rng).log_rewards[0] == 5.0)
            .count();
        assert!(high > 190, "{high} of 200");
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
