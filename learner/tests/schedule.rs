//! The learning-rate schedule reaches the optimizer: a cosine run to zero stops moving at its
//! last step, while a constant run keeps moving.

use gfn_common::{LrSchedule, RunConfig, TrajectoryBatch};
use gfn_learner::{Learner, LocalSync};
use gfn_nn::backend::{cpu_device, CpuAutodiff};

fn batch(c: &RunConfig) -> TrajectoryBatch {
    let reward = c.reward_fn().unwrap();
    let mut b = TrajectoryBatch::default();
    for a in [&[0u8, 1, 2][..], &[1, 1, 0, 2], &[2]] {
        let mut x = vec![0u16; c.ndim];
        TrajectoryBatch::terminal_state(c.ndim, a, &mut x);
        b.push(a, reward.log_reward(&x), 0);
    }
    b.validate(&c.grid().unwrap()).unwrap();
    b
}

/// How far each of the run's steps moves the parameters (largest change of one value).
fn step_sizes(schedule: LrSchedule) -> Vec<f32> {
    let c = RunConfig {
        ndim: 2,
        height: 4,
        hidden_dim: 8,
        batch_size: 3,
        n_trajectories: 9,
        lr_schedule: schedule,
        ..RunConfig::default()
    };
    let mut learner = Learner::<CpuAutodiff>::new(&c, cpu_device()).unwrap();
    let b = batch(&c);
    (0..c.n_iterations())
        .map(|_| {
            let before = learner.weights().params;
            learner.step(&b, &mut LocalSync);
            let after = learner.weights().params;
            before
                .iter()
                .zip(&after)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max)
        })
        .collect()
}

#[test]
fn cosine_to_zero_freezes_the_last_step() {
    let cosine = step_sizes(LrSchedule::Cosine);
    let constant = step_sizes(LrSchedule::Constant);
    assert_eq!(cosine.len(), 3);
    // Step 0 runs at the full rate in both; Adam's first step moves logZ by exactly lr_Z.
    assert_eq!(cosine[0], constant[0]);
    assert!((cosine[0] - 0.1).abs() < 1e-5, "{cosine:?}");
    // Step 1 is at half the rate (Adam's step is proportional to it), and the last at none.
    assert!(
        (cosine[1] / constant[1] - 0.5).abs() < 1e-3,
        "{cosine:?} {constant:?}"
    );
    assert_eq!(cosine[2], 0.0, "{cosine:?}");
    assert!(constant[2] > 0.0, "{constant:?}");
}
