//! A replay buffer of whole trajectories, as torchgfn's `ReplayBuffer`: a full buffer keeps the
//! newest (FIFO) or the highest-reward (prioritised) trajectories; sampling is uniform without
//! replacement.

use gfn_common::{Damaged, HyperGrid, ReplayPolicy, TrajectoryBatch};
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
    /// Keep a full buffer diverse (`--diverse_replay_buffer`); capacity is then prioritised.
    #[serde(default)]
    pub diversity: Option<Diversity>,
}

/// torchgfn's `NormBasedDiversePrioritizedReplayBuffer`: once the buffer is full, a new
/// trajectory gets in only if its reward is at least the buffer's lowest and its terminal state
/// is farther than `cutoff` (p-norm) from every better one in its batch and every stored one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Diversity {
    /// Distances at or below this are "the same place" (a negative cutoff filters nothing).
    pub cutoff: f64,
    /// The p of the p-norm between terminal states.
    pub p: u32,
    /// Grid dimension (the length of a terminal state).
    pub ndim: usize,
}

impl Diversity {
    fn terminal(&self, actions: &[u8]) -> Vec<u16> {
        let mut out = vec![0u16; self.ndim];
        TrajectoryBatch::terminal_state(self.ndim, actions, &mut out);
        out
    }

    fn distance(&self, a: &[u16], b: &[u16]) -> f64 {
        let p = self.p.max(1) as f64;
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64 - y as f64).abs().powf(p))
            .sum::<f64>()
            .powf(1.0 / p)
    }

    /// The trajectories of `batch` that may enter `stored` (a full buffer), best first.
    fn admit(&self, stored: &TrajectoryBatch, batch: &TrajectoryBatch) -> Vec<usize> {
        let floor = stored
            .log_rewards
            .iter()
            .copied()
            .fold(f32::INFINITY, f32::min);
        let mut order: Vec<usize> = (0..batch.len())
            .filter(|&i| batch.log_rewards[i] >= floor)
            .collect();
        order.sort_by(|&a, &b| batch.log_rewards[b].total_cmp(&batch.log_rewards[a]));
        if self.cutoff < 0.0 {
            return order;
        }
        let offsets = batch.offsets();
        let state = |i: usize| self.terminal(&batch.actions[offsets[i]..offsets[i + 1]]);
        let stored_offsets = stored.offsets();
        let stored_states: Vec<Vec<u16>> = (0..stored.len())
            .map(|i| self.terminal(&stored.actions[stored_offsets[i]..stored_offsets[i + 1]]))
            .collect();
        let mut kept: Vec<(usize, Vec<u16>)> = vec![];
        for i in order {
            let s = state(i);
            let near = |other: &Vec<u16>| self.distance(&s, other) <= self.cutoff;
            if kept.iter().any(|(_, k)| near(k)) || stored_states.iter().any(near) {
                continue;
            }
            kept.push((i, s));
        }
        kept.into_iter().map(|(i, _)| i).collect()
    }
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
            diversity: None,
        }
    }

    /// Checks restored contents: one use count per trajectory, every trajectory valid.
    pub fn check(&self, grid: &HyperGrid) -> Result<(), Damaged> {
        if self.capacity == 0 {
            return Err(Damaged::new("replay buffer of capacity 0"));
        }
        if self.times_sampled.len() != self.items.len() {
            return Err(Damaged(format!(
                "replay buffer of {} trajectories with {} use counts",
                self.items.len(),
                self.times_sampled.len()
            )));
        }
        self.items
            .validate(grid)
            .map_err(|e| Damaged(e.to_string()))
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

    /// Adds a batch, then evicts down to capacity. A full diverse buffer first keeps only the
    /// trajectories that add something new.
    pub fn add(&mut self, batch: &TrajectoryBatch) {
        match &self.diversity {
            Some(d) if self.items.len() >= self.capacity => {
                let admitted = batch.select(&d.admit(&self.items, batch));
                self.items.extend(&admitted);
            }
            _ => self.items.extend(batch),
        }
        self.times_sampled.resize(self.items.len(), 0);
        if self.items.len() <= self.capacity {
            return;
        }
        let n = self.items.len();
        let prioritized = self.policy == ReplayPolicy::Prioritized || self.diversity.is_some();
        let keep: Vec<usize> = match prioritized {
            false => (n - self.capacity..n).collect(),
            true => {
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
        assert!(rb.check(&grid).unwrap_err().0.contains("use counts"));
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

    /// A trajectory of a 2-D grid ending at (x, 0): x steps along the first axis, then exit.
    fn to_x(b: &mut TrajectoryBatch, x: usize, log_reward: f32) {
        let mut actions = vec![0u8; x];
        actions.push(2);
        b.push(&actions, log_reward, 0);
    }

    #[test]
    fn a_full_diverse_buffer_keeps_rewarding_and_distinct_states() {
        let mut rb = ReplayBuffer::new(2, ReplayPolicy::Fifo);
        rb.diversity = Some(Diversity {
            cutoff: 1.5,
            p: 2,
            ndim: 2,
        });
        let mut first = TrajectoryBatch::default();
        to_x(&mut first, 0, 1.0);
        to_x(&mut first, 5, 2.0);
        rb.add(&first);
        assert_eq!(rb.len(), 2, "filling up takes everything");
        let mut next = TrajectoryBatch::default();
        to_x(&mut next, 1, 9.0); // 1 away from x=0: too close to a stored state
        to_x(&mut next, 3, 8.0); // far from both: admitted
        to_x(&mut next, 4, 7.0); // 1 away from x=3, a better one of its batch
        to_x(&mut next, 9, 0.5); // below the buffer's lowest reward
        rb.add(&next);
        assert_eq!(rb.contents().log_rewards, vec![2.0, 8.0]);
        // A negative cutoff filters by reward only.
        rb.diversity.as_mut().unwrap().cutoff = -1.0;
        rb.add(&next);
        assert_eq!(rb.contents().log_rewards, vec![9.0, 8.0]);
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
