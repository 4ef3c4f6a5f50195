//! What a buffer holds and hands out: a FIFO queue (each trajectory used once, on-policy) or a
//! replay buffer (uniform samples of the stored trajectories).

use crate::replay::ReplayBuffer;
use gfn_common::{Damaged, HyperGrid, TrajectoryBatch};
use rand::Rng;

/// A FIFO queue of trajectories, bounded: when full, the oldest are dropped (and counted).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fifo {
    queue: TrajectoryBatch,
    head: usize,
    capacity: usize,
    /// Trajectories dropped because the queue was full.
    pub evicted: u64,
    /// Trajectories dropped for being older than the learner accepts.
    pub stale: u64,
}

impl Fifo {
    /// A queue holding at most `capacity` trajectories.
    pub fn new(capacity: usize) -> Self {
        Self {
            queue: TrajectoryBatch::default(),
            head: 0,
            capacity: capacity.max(1),
            evicted: 0,
            stale: 0,
        }
    }

    /// Trajectories waiting.
    pub fn len(&self) -> usize {
        self.queue.len() - self.head
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a batch, dropping the oldest beyond capacity.
    pub fn push(&mut self, batch: &TrajectoryBatch) {
        self.queue.extend(batch);
        let excess = self.len().saturating_sub(self.capacity);
        self.head += excess;
        self.evicted += excess as u64;
        self.compact();
    }

    /// Takes the `n` oldest trajectories of version at least `min_version` and at most
    /// `max_version` (others at the head are dropped as stale); `None` until `n` such
    /// trajectories are waiting.
    pub fn take(
        &mut self,
        n: usize,
        min_version: u64,
        max_version: Option<u64>,
    ) -> Option<TrajectoryBatch> {
        let wanted = |v: u64| v >= min_version && max_version.is_none_or(|m| v <= m);
        while self.head < self.queue.len() && !wanted(self.queue.versions[self.head]) {
            self.head += 1;
            self.stale += 1;
        }
        if self.len() < n {
            self.compact();
            return None;
        }
        let picked: Vec<usize> = (self.head..self.head + n).collect();
        self.head += n;
        let out = self.queue.select(&picked);
        self.compact();
        Some(out)
    }

    /// Puts trajectories that were taken but not delivered back at the head, in their order.
    pub fn put_back(&mut self, batch: &TrajectoryBatch) {
        let mut queue = batch.clone();
        let rest: Vec<usize> = (self.head..self.queue.len()).collect();
        queue.extend(&self.queue.select(&rest));
        self.queue = queue;
        self.head = 0;
    }

    fn compact(&mut self) {
        if self.head > 0 && self.head * 2 >= self.queue.len() {
            let rest: Vec<usize> = (self.head..self.queue.len()).collect();
            self.queue = self.queue.select(&rest);
            self.head = 0;
        }
    }
}

/// The buffer's storage policy; serialisable, so checkpoints hold the buffer's contents.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Store {
    /// Each trajectory is used once, oldest first.
    Fifo(Fifo),
    /// Trajectories stay until evicted; the learner gets uniform samples.
    Replay(ReplayBuffer),
}

impl Store {
    /// Adds freshly sampled trajectories.
    pub fn insert(&mut self, batch: &TrajectoryBatch) {
        match self {
            Store::Fifo(q) => q.push(batch),
            Store::Replay(rb) => rb.add(batch),
        }
    }

    /// `n` trajectories for the learner, if available. FIFO respects the version bounds;
    /// replay samples as soon as it holds `n` trajectories.
    pub fn take(
        &mut self,
        n: usize,
        min_version: u64,
        max_version: Option<u64>,
        rng: &mut impl Rng,
    ) -> Option<TrajectoryBatch> {
        match self {
            Store::Fifo(q) => q.take(n, min_version, max_version),
            Store::Replay(rb) => (rb.len() >= n).then(|| rb.sample(n, rng)),
        }
    }

    /// Grows a FIFO so that `n` more trajectories fit without evicting any (a preloaded
    /// recording must be served whole); a replay buffer keeps its capacity.
    pub fn reserve(&mut self, n: usize) {
        if let Store::Fifo(q) = self {
            q.capacity = q.capacity.max(q.len() + n);
        }
    }

    /// Returns trajectories that were taken but could not be delivered.
    pub fn put_back(&mut self, batch: &TrajectoryBatch) {
        match self {
            Store::Fifo(q) => q.put_back(batch),
            Store::Replay(rb) => rb.add(batch),
        }
    }

    /// Whether `n` more trajectories should be taken in now: a FIFO queue with room for all of
    /// them (a full one would evict unused data; an empty one always takes a batch), a replay
    /// buffer always.
    pub fn has_room_for(&self, n: usize) -> bool {
        match self {
            Store::Fifo(q) => q.is_empty() || q.len() + n <= q.capacity,
            Store::Replay(_) => true,
        }
    }

    /// Most trajectories held at once: larger requests can never be served.
    pub fn capacity(&self) -> usize {
        match self {
            Store::Fifo(q) => q.capacity,
            Store::Replay(rb) => rb.capacity(),
        }
    }

    /// Checks restored contents (a checkpoint): every trajectory valid on `grid`, positions
    /// and counters consistent.
    pub fn check(&self, grid: &HyperGrid) -> Result<(), Damaged> {
        match self {
            Store::Fifo(q) => {
                if q.capacity == 0 {
                    return Err(Damaged::new("FIFO of capacity 0"));
                }
                if q.head > q.queue.len() {
                    return Err(Damaged(format!(
                        "FIFO head {} beyond {} trajectories",
                        q.head,
                        q.queue.len()
                    )));
                }
                q.queue.validate(grid).map_err(|e| Damaged(e.to_string()))
            }
            Store::Replay(rb) => rb.check(grid),
        }
    }

    /// Trajectories dropped without being handed out: (evicted, stale). A replay buffer
    /// evicts data that may have been sampled already, so it counts none.
    pub fn discarded(&self) -> (u64, u64) {
        match self {
            Store::Fifo(q) => (q.evicted, q.stale),
            Store::Replay(_) => (0, 0),
        }
    }

    /// Trajectories held.
    pub fn len(&self) -> usize {
        match self {
            Store::Fifo(q) => q.len(),
            Store::Replay(rb) => rb.len(),
        }
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(versions: &[u64]) -> TrajectoryBatch {
        let mut b = TrajectoryBatch::default();
        for &v in versions {
            b.push(&[1], v as f32, v);
        }
        b
    }

    #[test]
    fn restored_contents_are_checked() {
        let grid = HyperGrid::new(1, 4).unwrap();
        let mut q = Fifo::new(10);
        q.push(&batch(&[0, 1, 2]));
        assert!(Store::Fifo(q.clone()).check(&grid).is_ok());
        q.head = 4;
        assert!(Store::Fifo(q.clone())
            .check(&grid)
            .unwrap_err()
            .0
            .contains("head"));
        q.head = 0;
        q.queue.actions[0] = 7; // not an action of a 1-D grid
        assert!(Store::Fifo(q).check(&grid).is_err());
    }

    #[test]
    fn fifo_hands_out_in_order_once() {
        let mut q = Fifo::new(100);
        q.push(&batch(&[0, 1, 2]));
        assert!(q.take(4, 0, None).is_none());
        assert_eq!(q.take(2, 0, None).unwrap().versions, vec![0, 1]);
        q.push(&batch(&[3]));
        assert_eq!(q.take(2, 0, None).unwrap().versions, vec![2, 3]);
        assert!(q.is_empty());
    }

    #[test]
    fn fifo_drops_stale_and_evicts_oldest() {
        let mut q = Fifo::new(3);
        q.push(&batch(&[0, 1, 2, 3, 4]));
        assert_eq!(q.evicted, 2);
        assert_eq!(q.take(1, 4, None).unwrap().versions, vec![4]);
        assert_eq!(q.stale, 2);
    }
}
