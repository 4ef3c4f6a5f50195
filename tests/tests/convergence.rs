//! The published-quality bar on 2-D H=8 (R0 0.1, batch 128, 32,000 trajectories, seed 1): the
//! whole embedded pipeline (sampler, buffer and learner threads) trained to an exact L1.

use gfn_common::{Loss, RunConfig};
use gfn_pipeline::HostOptions;
use gfn_tests::train;

const LOG_Z_2D8: f64 = 3.1091;

fn run(loss: Loss) -> gfn_host::metrics::Validation {
    let cfg = RunConfig {
        loss,
        batch_size: 128,
        n_trajectories: 32_000,
        seed: 1,
        validation_interval: 1_000,
        validation_samples: 0,
        ..RunConfig::default()
    };
    train(&cfg, HostOptions::default())
        .unwrap()
        .summary
        .final_validation
}

#[test]
fn tb_reaches_the_reference_accuracy() {
    let v = run(Loss::Tb);
    let l1 = v.exact_l1.unwrap();
    let z = v.log_z.unwrap();
    assert!(l1 <= 0.02, "exact L1 {l1}");
    assert!((z - LOG_Z_2D8).abs() <= 0.02, "logZ {z}");
    assert_eq!(v.modes_found, 4);
}

/// A loss reaches exact L1 ≤ 0.1, and its estimate of log Z (logF(s0), or FM's out-flow of s0)
/// is within 0.05 of the truth.
fn converges(loss: Loss) {
    let v = run(loss);
    let l1 = v.exact_l1.unwrap();
    assert!(l1 <= 0.1, "exact L1 {l1}");
    let z = v.log_z.unwrap();
    assert!((z - LOG_Z_2D8).abs() <= 0.05, "logZ {z}");
}

#[test]
fn db_converges() {
    converges(Loss::Db);
}

#[test]
fn subtb_converges() {
    converges(Loss::SubTb);
}

#[test]
fn fm_converges() {
    converges(Loss::Fm);
}
