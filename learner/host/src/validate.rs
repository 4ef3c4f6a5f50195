//! Validation: the exact terminal distribution of the policy beside torchgfn's sampled
//! metrics, the TB paper's moving-window L1 over visited states, logZ and modes found.

use crate::metrics::Validation;
use gfn_common::config::{EnvSection, ValidationSection};
use gfn_common::partition::{closed_form, uniform_estimate, Estimate, Partition, ESTIMATE_SAMPLES};
use gfn_common::rng::{stream_rng, Stream};
use gfn_common::target::{distances, histogram, terminal_distribution, Target};
use gfn_common::Damaged;
use gfn_common::{HyperGrid, Preprocessor, Reward, TrajectoryBatch};
use gfn_nn::burn::tensor::backend::Backend;
use gfn_nn::policy::{forward_probs_all_states, Exploration};
use gfn_nn::GflowNet;
use rand::Rng;
use std::collections::{HashSet, VecDeque};

/// Keeps what validation needs between calls: the target, the window of visited states and the
/// modes found so far.
pub struct Validator {
    grid: HyperGrid,
    reward: Reward,
    pre: Preprocessor,
    target: Option<Target>,
    /// ln Z and the mode count without enumeration, where the grid is too large for `target`
    /// and the reward factorises (original, deceptive).
    partition: Option<Partition>,
    /// ln Z and the mode count from uniform draws, where neither enumeration nor a closed form
    /// gives them.
    estimate: Option<Estimate>,
    window_size: usize,
    samples: usize,
    seed: u64,
    visits: Visits,
}

/// What the validator has seen of the training run; checkpoints save it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Visits {
    window: VecDeque<usize>,
    window_counts: Vec<u32>,
    modes_found: HashSet<Vec<u16>>,
    visited: u64,
    /// Keys ([`HyperGrid::state_key`]) of the distinct terminal states visited.
    #[serde(default)]
    distinct: HashSet<u128>,
    /// Σ log R and the count of the terminal states visited since the previous validation.
    #[serde(default)]
    log_reward_sum: f64,
    #[serde(default)]
    log_reward_count: u64,
    /// Tiered rewards: `tier_counts[t]` distinct terminal states visited that pass tiers 0..=t.
    #[serde(default)]
    tier_counts: Vec<u64>,
}

impl Validator {
    /// Enumerates the grid when it is small enough; otherwise only modes and loss are reported.
    /// `pre` is the networks' state encoding.
    pub fn new(
        env: &EnvSection,
        pre: Preprocessor,
        cfg: &ValidationSection,
    ) -> Result<Self, gfn_common::config::ConfigError> {
        let grid = env.grid()?;
        let reward = env.reward_fn()?;
        let target = Target::new(&grid, &reward);
        let n = target.as_ref().map_or(0, |t| t.probs.len());
        let partition = match target {
            Some(_) => None,
            None => closed_form(&grid, &reward),
        };
        let tiers = reward.n_tiers().unwrap_or(0);
        let estimate = (target.is_none() && partition.is_none())
            .then(|| uniform_estimate(&grid, &reward, ESTIMATE_SAMPLES));
        Ok(Self {
            grid,
            reward,
            pre,
            target,
            partition,
            estimate,
            window_size: cfg.paper_window,
            visits: Visits {
                // Grows as needed: --paper_window may be far larger than a run visits.
                window: VecDeque::with_capacity(cfg.paper_window.min(1 << 20)),
                window_counts: vec![0; n],
                tier_counts: vec![0; tiers],
                ..Default::default()
            },
            samples: cfg.samples,
            seed: cfg.seed,
        })
    }

    /// The true distribution, when enumerable.
    pub fn target(&self) -> Option<&Target> {
        self.target.as_ref()
    }

    /// Counts the terminal states of freshly sampled trajectories.
    pub fn observe(&mut self, fresh: &TrajectoryBatch) {
        let mut x = vec![0u16; self.grid.ndim()];
        for (actions, log_reward, _) in fresh.iter() {
            TrajectoryBatch::terminal_state(self.grid.ndim(), actions, &mut x);
            self.visits.visited += 1;
            // A state seen before is already counted, in its tiers and among the modes.
            if self.visits.distinct.insert(self.grid.state_key(&x)) {
                let passed = self.reward.tiers_passed(&x).unwrap_or(0);
                for count in self.visits.tier_counts.iter_mut().take(passed) {
                    *count += 1;
                }
                if self.reward.is_mode(&x) {
                    self.visits.modes_found.insert(x.clone());
                }
            }
            self.visits.log_reward_sum += log_reward as f64;
            self.visits.log_reward_count += 1;
            if self.target.is_some() && self.window_size > 0 {
                let i = self.grid.index(&x);
                self.visits.window.push_back(i);
                self.visits.window_counts[i] += 1;
                if self.visits.window.len() > self.window_size {
                    if let Some(old) = self.visits.window.pop_front() {
                        self.visits.window_counts[old] -= 1;
                    }
                }
            }
        }
    }

    /// What was seen so far (for checkpoints).
    pub fn visits(&self) -> &Visits {
        &self.visits
    }

    /// Restores what was seen before a checkpoint.
    pub fn restore(&mut self, visits: Visits) -> Result<(), Damaged> {
        let n = self.visits.window_counts.len();
        let counted: u64 = visits.window_counts.iter().map(|&c| c as u64).sum();
        if visits.window_counts.len() != n
            || visits.window.iter().any(|&i| i >= n)
            || counted != visits.window.len() as u64
            || !(visits.tier_counts.is_empty()
                || visits.tier_counts.len() == self.visits.tier_counts.len())
        {
            return Err(Damaged(format!(
                "the saved visits do not fit this grid and reward ({} counts for {n} states, a \
                 window of {}, {} tier counts for {} tiers)",
                visits.window_counts.len(),
                visits.window.len(),
                visits.tier_counts.len(),
                self.visits.tier_counts.len()
            )));
        }
        let tiers = self.visits.tier_counts.len();
        self.visits = visits;
        // A checkpoint from before tier counts existed counts from here on.
        self.visits.tier_counts.resize(tiers, 0);
        Ok(())
    }

    /// Terminal states visited so far.
    pub fn visited(&self) -> u64 {
        self.visits.visited
    }

    /// The policy's exact terminal distribution (`None` when the grid is not enumerable).
    pub fn exact_distribution<B: Backend>(
        &self,
        net: &GflowNet<B>,
        device: &B::Device,
    ) -> Option<Vec<f64>> {
        self.target.as_ref()?;
        let probs =
            forward_probs_all_states(net, None, &self.grid, self.pre, Exploration::NONE, device)?;
        Some(terminal_distribution(&self.grid, &probs))
    }

    /// Measures the policy `net` (noise off) at learner step `step`, with the model's log Z
    /// estimate `log_z` and the mean `log_z_mean` of logZ since the previous validation.
    pub fn validate<B: Backend>(
        &mut self,
        net: &GflowNet<B>,
        log_z: Option<f32>,
        log_z_mean: Option<f64>,
        step: u64,
        device: &B::Device,
    ) -> Validation {
        let visits = &mut self.visits;
        let mean_log_reward = (visits.log_reward_count > 0)
            .then(|| visits.log_reward_sum / visits.log_reward_count as f64);
        (visits.log_reward_sum, visits.log_reward_count) = (0.0, 0);
        let mut v = Validation {
            states_visited: self.visits.visited,
            distinct_states: self.visits.distinct.len() as u64,
            mean_log_reward,
            modes_found: self.visits.modes_found.len(),
            tiers_found: (self.visits.tier_counts.iter().enumerate())
                .map(|(t, &n)| (format!("tier{t}"), n))
                .collect(),
            n_modes_estimate: self.estimate.map(|e| e.n_modes),
            log_z_true_estimate: self.estimate.map(|e| e.log_z),
            log_z: log_z.map(|z| z as f64),
            log_z_mean,
            ..Default::default()
        };
        let Some(target) = &self.target else {
            if let Some(p) = &self.partition {
                v.n_modes = p.n_modes.and_then(|n| usize::try_from(n).ok());
                v.log_z_true = Some(p.log_z);
                v.log_z_error = v.log_z.map(|z| (z - p.log_z).abs());
                v.log_z_mean_error = v.log_z_mean.map(|z| (z - p.log_z).abs());
            }
            return v;
        };
        v.n_modes = Some(target.modes.len());
        v.log_z_true = Some(target.log_z);
        v.log_z_error = v.log_z.map(|z| (z - target.log_z).abs());
        v.log_z_mean_error = v.log_z_mean.map(|z| (z - target.log_z).abs());
        if let Some(p_t) = self.exact_distribution(net, device) {
            let exact = distances(&target.probs, &p_t);
            v.exact_l1 = Some(exact.l1);
            v.exact_jsd = Some(exact.jsd);
            if self.samples > 0 {
                let mut rng = stream_rng(self.seed, Stream::Validation, step);
                let draws = sample_indices(&p_t, self.samples, &mut rng);
                let sampled = distances(&target.probs, &histogram(draws, p_t.len()));
                v.sampled_l1 = Some(sampled.l1);
                v.sampled_jsd = Some(sampled.jsd);
            }
        }
        if !self.visits.window.is_empty() {
            let n = self.visits.window.len() as f64;
            let l1: f64 = target
                .probs
                .iter()
                .zip(&self.visits.window_counts)
                .map(|(&p, &c)| (c as f64 / n - p).abs())
                .sum();
            v.paper_l1 = Some(l1 / target.probs.len() as f64);
        }
        v
    }
}

/// `n` independent draws from a distribution (inverse CDF; the same law as fresh rollouts of
/// the policy, whose terminal distribution `probs` is).
pub fn sample_indices(probs: &[f64], n: usize, rng: &mut impl Rng) -> Vec<usize> {
    let mut cdf = Vec::with_capacity(probs.len());
    let mut acc = 0.0;
    for &p in probs {
        acc += p;
        cdf.push(acc);
    }
    (0..n)
        .map(|_| {
            let u: f64 = rng.random::<f64>() * acc;
            cdf.partition_point(|&c| c <= u).min(probs.len() - 1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gfn_common::RunConfig;

    #[test]
    fn restored_visits_must_fit_the_grid() {
        let cfg = RunConfig::default();
        let mut v = Validator::new(&cfg.env(), cfg.preprocessor(), &cfg.validation()).unwrap();
        let mut fresh = TrajectoryBatch::default();
        fresh.push(&[0, 1, 2], 0.0, 0);
        v.observe(&fresh);
        let saved = v.visits().clone();
        assert!(v.restore(saved.clone()).is_ok());
        let mut out_of_range = saved.clone();
        out_of_range.window[0] = 1 << 20;
        assert!(v.restore(out_of_range).is_err());
        let mut miscounted = saved.clone();
        miscounted.window_counts[0] += 1;
        assert!(v.restore(miscounted).is_err());
        let mut other_grid = saved;
        other_grid.window_counts.push(0);
        assert!(v.restore(other_grid).is_err());
    }

    /// Tier counts count each distinct state once, in exactly the tiers it passes.
    #[test]
    fn tier_counts_count_distinct_states_in_the_tiers_they_pass() {
        let cfg = RunConfig {
            ndim: 3,
            height: 64,
            reward: gfn_common::RewardKind::BitwiseXor,
            ..RunConfig::default()
        };
        let mut v = Validator::new(&cfg.env(), cfg.preprocessor(), &cfg.validation()).unwrap();
        let mut fresh = TrajectoryBatch::default();
        // The origin has even parity on every bit plane: it passes all three tiers (a mode).
        // [1, 0, 0] has odd parity on plane 0: it passes none. Each is visited twice.
        for _ in 0..2 {
            fresh.push(&[3], 0.0, 0);
            fresh.push(&[0, 3], 0.0, 0);
        }
        v.observe(&fresh);
        let seen = v.visits();
        assert_eq!((seen.distinct.len(), seen.modes_found.len()), (2, 1));
        assert_eq!(seen.tier_counts, [1, 1, 1]);
    }

    /// Resident memory of this process in MiB.
    #[cfg(target_os = "linux")]
    fn rss_mib() -> f64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib / 1024.0
    }

    /// What validation keeps grows with the distinct states a run visits. The worst case on
    /// 10-D H=128, a million trajectories that all end on distinct mode states, stays far
    /// below the 1 GB a 10^6-trajectory run may use (measured 2026-12-06: 118 MiB).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_million_distinct_modes_fit_in_bounded_memory() {
        use rand::{Rng, SeedableRng};
        let cfg = RunConfig {
            ndim: 10,
            height: 128,
            ..RunConfig::default()
        };
        let mut v = Validator::new(&cfg.env(), cfg.preprocessor(), &cfg.validation()).unwrap();
        let before = rss_mib();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(5);
        let n = 1_000_000;
        let mut actions = Vec::with_capacity(256);
        for _ in 0..n / 10_000 {
            let mut fresh = TrajectoryBatch::default();
            for _ in 0..10_000 {
                actions.clear();
                // Every coordinate in the thin band's lower half (13..=25 on H=128): a mode.
                for d in 0..10u8 {
                    let x = rng.random_range(13..=25);
                    actions.extend(std::iter::repeat_n(d, x));
                }
                actions.push(10);
                fresh.push(&actions, 0.0, 0);
            }
            v.observe(&fresh);
        }
        let grown = rss_mib() - before;
        let found = v.visits().modes_found.len();
        // 13^10 band states in the lower half: repeats among 10^6 draws are a handful.
        assert!(
            found > n - 100 && v.visits().distinct.len() == found,
            "{found}"
        );
        eprintln!("validation state for {found} distinct modes: {grown:.0} MiB");
        assert!(grown < 400.0, "{grown:.0} MiB for {found} distinct modes");
    }
}
