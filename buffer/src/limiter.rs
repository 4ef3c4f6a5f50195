//! A rate limiter between inserts and samples (Reverb's `SampleToInsertRatio`): the buffer keeps
//! `samples ≈ samples_per_insert × inserts` within an error margin, and samples nothing before it
//! holds `min_size` trajectories. Whichever side is ahead waits; the waits are counted.

use serde::{Deserialize, Serialize};

/// Inserts and samples so far, and the rule that relates them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimiter {
    pub samples_per_insert: f64,
    pub error: f64,
    pub min_size: u64,
    pub inserted: u64,
    pub sampled: u64,
    /// Batches that had to wait before being inserted (samplers ahead).
    pub insert_waits: u64,
    /// Requests that had to wait before being served (learners ahead).
    pub sample_waits: u64,
    /// Inserted trajectories the store dropped unserved (stale, or evicted): no sample is owed
    /// for them any more.
    #[serde(default)]
    pub discarded: u64,
}

impl RateLimiter {
    /// A limiter with ratio `samples_per_insert`, margin `error` (in samples) and minimum size.
    pub fn new(samples_per_insert: f64, error: f64, min_size: u64) -> Self {
        Self {
            samples_per_insert,
            error,
            min_size,
            inserted: 0,
            sampled: 0,
            insert_waits: 0,
            sample_waits: 0,
            discarded: 0,
        }
    }

    /// `samples_per_insert × inserts − samples`: positive when samples lag behind inserts.
    /// Discarded trajectories count as never inserted: a sample owed for data that can no longer
    /// be served would hold samplers back while the learner waits for fresh data.
    fn diff(&self) -> f64 {
        let kept = self.inserted.saturating_sub(self.discarded);
        self.samples_per_insert * kept as f64 - self.sampled as f64
    }

    /// Whether `n` more trajectories may go in now: while filling up to `min_size`, or while the
    /// samples owed stay within `samples_per_insert × min_size + error`.
    pub fn can_insert(&self, n: u64) -> bool {
        self.inserted + n <= self.min_size
            || self.diff() + self.samples_per_insert * n as f64
                <= self.samples_per_insert * self.min_size as f64 + self.error + 1e-9
    }

    /// Whether `n` trajectories may be sampled now: once `min_size` are in, and without taking
    /// more than owed beyond the margin.
    pub fn can_sample(&self, n: u64) -> bool {
        self.inserted >= self.min_size && self.diff() - n as f64 >= -self.error - 1e-9
    }

    /// Counts an insert.
    pub fn inserted(&mut self, n: u64) {
        self.inserted += n;
    }

    /// Counts a sample.
    pub fn sampled(&mut self, n: u64) {
        self.sampled += n;
    }

    /// Sets the count of inserted trajectories dropped unserved so far (it only grows).
    pub fn set_discarded(&mut self, total: u64) {
        self.discarded = self.discarded.max(total);
    }
}

/// The learner step before which each batch goes in, for a buffer that serves a learner
/// (`out` trajectories a step) whenever this limiter lets it and takes in a batch of `inp`
/// otherwise — the order the one-process buffer follows — over a run of `n_steps` steps.
/// Samplers use it to sample each batch with the weights it will be trained with.
pub fn insert_steps(limiter: &RateLimiter, inp: u64, out: u64, n_steps: u64) -> Vec<u64> {
    let mut l = limiter.clone();
    let (mut step, mut steps) = (0, vec![]);
    while step < n_steps {
        if l.can_sample(out) {
            l.sampled(out);
            step += 1;
        } else if l.can_insert(inp) {
            l.inserted(inp);
            steps.push(step);
        } else {
            break;
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_one_alternates_inserts_and_samples() {
        let mut r = RateLimiter::new(1.0, 0.0, 16);
        assert!(!r.can_sample(16), "nothing before min_size");
        assert!(r.can_insert(16));
        r.inserted(16);
        assert!(!r.can_insert(16), "samplers wait for the learner");
        assert!(r.can_sample(16));
        r.sampled(16);
        assert!(!r.can_sample(16), "the learner waits for samplers");
        assert!(r.can_insert(16));
    }

    #[test]
    fn batches_go_in_before_the_steps_the_ratio_implies() {
        let four = RateLimiter::new(4.0, 0.0, 16);
        assert_eq!(insert_steps(&four, 16, 16, 10), vec![0, 4, 8]);
        let one = RateLimiter::new(1.0, 0.0, 16);
        assert_eq!(insert_steps(&one, 16, 16, 4), vec![0, 1, 2, 3]);
        // A ratio of 2.5 needs a margin of a batch; then 1000 steps take 400 batches.
        let uneven = RateLimiter::new(2.5, 16.0, 16);
        let steps = insert_steps(&uneven, 16, 16, 1000);
        assert!(steps.len().abs_diff(400) <= 2, "{} batches", steps.len());
        assert!(insert_steps(&RateLimiter::new(2.5, 0.0, 16), 16, 16, 1000).len() < 10);
    }

    #[test]
    fn a_margin_lets_one_side_run_ahead() {
        let mut r = RateLimiter::new(2.0, 32.0, 16);
        r.inserted(16);
        assert!(r.can_insert(16), "within the margin");
        r.inserted(16);
        assert!(!r.can_insert(16));
        for _ in 0..3 {
            assert!(r.can_sample(16));
            r.sampled(16);
        }
        assert!(r.can_insert(16));
    }

    #[test]
    fn discarded_data_is_owed_no_samples() {
        let mut r = RateLimiter::new(1.0, 0.0, 16);
        r.inserted(32);
        r.sampled(16);
        assert!(!r.can_insert(16), "16 samples owed");
        r.set_discarded(16);
        assert!(r.can_insert(16), "the owed 16 were dropped as stale");
        assert!(!r.can_sample(16));
    }
}
