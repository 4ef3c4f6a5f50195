//! What the learner loop records as it goes: losses, where the time went, and the policy lag.

use crate::learner::StepStats;
use gfn_common::TrajectoryBatch;
use serde::{Deserialize, Serialize};

/// Policy lag (learner version − trajectory version) over a stretch of steps.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LagStats {
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub mean: Option<f64>,
}

/// Where the time of the run went, in seconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct TimeSplit {
    pub sample: f64,
    pub prepare: f64,
    pub loss: f64,
    pub backward: f64,
    pub sync: f64,
    pub optimizer: f64,
    pub validation: f64,
}

impl TimeSplit {
    /// Adds one step's times.
    pub fn add(&mut self, s: &StepStats) {
        self.prepare += s.prepare.as_secs_f64();
        self.loss += s.forward.as_secs_f64();
        self.backward += s.backward.as_secs_f64();
        self.sync += s.sync.as_secs_f64();
        self.optimizer += s.optimizer.as_secs_f64();
    }
}

/// The loop's record of a run, carried over when it resumes from a checkpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainLog {
    /// Steps done.
    pub step: u64,
    /// The loss of every step.
    pub losses: Vec<f32>,
    pub time: TimeSplit,
    /// Seconds of training in earlier sessions of a resumed run.
    pub wall_before_s: f64,
    /// Distinct states evaluated, summed over this session's steps.
    pub rows: u64,
}

/// Running means between two validations.
#[derive(Debug, Default)]
pub(crate) struct Window {
    loss: (f64, u64),
    log_z: (f64, u64),
    lag_min: Option<u64>,
    lag_max: u64,
    lag_sum: u64,
    lag_n: u64,
}

impl Window {
    pub(crate) fn observe_batch(&mut self, version: u64, batch: &TrajectoryBatch) {
        for &v in &batch.versions {
            let lag = version.saturating_sub(v);
            self.lag_min = Some(self.lag_min.map_or(lag, |m| m.min(lag)));
            self.lag_max = self.lag_max.max(lag);
            self.lag_sum += lag;
            self.lag_n += 1;
        }
    }

    pub(crate) fn observe_step(&mut self, loss: f32, log_z: Option<f32>) {
        self.loss.0 += loss as f64;
        self.loss.1 += 1;
        if let Some(z) = log_z {
            self.log_z.0 += z as f64;
            self.log_z.1 += 1;
        }
    }

    pub(crate) fn mean_loss(&self) -> f64 {
        self.loss.0 / self.loss.1.max(1) as f64
    }

    pub(crate) fn mean_log_z(&self) -> Option<f64> {
        (self.log_z.1 > 0).then(|| self.log_z.0 / self.log_z.1 as f64)
    }

    pub(crate) fn lag(&self) -> LagStats {
        let seen = self.lag_n > 0;
        LagStats {
            min: self.lag_min,
            max: seen.then_some(self.lag_max),
            mean: seen.then(|| self.lag_sum as f64 / self.lag_n as f64),
        }
    }
}
