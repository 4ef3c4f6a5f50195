//! The published-quality bar on 2-D H=8 (R0 0.1, batch 128, 32,000 trajectories, seed 1): the
//! whole embedded pipeline (sampler, buffer and learner threads) trained to an exact L1. The
//! runs are bit-reproducible, so each bar sits at about twice what the loss reaches here
//! (2026-12-04, the same on two machines), with a floor for log Z. TB's run is the recorded
//! one of `replay.rs`, which checks its bar there instead of training it twice.

use gfn_common::{Loss, LossFn, RunConfig};
use gfn_pipeline::HostOptions;
use gfn_tests::train;

use gfn_tests::LOG_Z_2D8;

fn run(loss: Loss) -> gfn_host::metrics::Validation {
    run_with(loss, |_| {})
}

fn run_with(loss: Loss, f: impl Fn(&mut RunConfig)) -> gfn_host::metrics::Validation {
    let mut cfg = RunConfig {
        loss,
        batch_size: 128,
        n_trajectories: 32_000,
        seed: 1,
        validation_interval: 1_000,
        validation_samples: 0,
        ..RunConfig::default()
    };
    f(&mut cfg);
    train(&cfg, HostOptions::default())
        .unwrap()
        .summary
        .final_validation
}

/// A loss reaches an exact L1 of at most `l1_bar`, its estimate of log Z (logF(s0), or FM's
/// out-flow of s0) is within `log_z_bar` of the truth, and it finds the four modes.
fn converges(loss: Loss, l1_bar: f64, log_z_bar: f64) {
    bars(&loss.to_string(), run(loss), l1_bar, log_z_bar);
}

fn bars(loss: &str, v: gfn_host::metrics::Validation, l1_bar: f64, log_z_bar: f64) {
    let l1 = v.exact_l1.unwrap();
    assert!(l1 <= l1_bar, "{loss}: exact L1 {l1}");
    let z = v.log_z.unwrap();
    assert!((z - LOG_Z_2D8).abs() <= log_z_bar, "{loss}: logZ {z}");
    assert_eq!(v.modes_found, 4, "{loss}");
}

#[test]
fn db_converges() {
    // Measured: exact L1 0.0051, |log Z error| 0.0005.
    converges(Loss::Db, 0.011, 0.002);
}

#[test]
fn subtb_converges() {
    // Measured: exact L1 0.0160, |log Z error| 0.0032.
    converges(Loss::SubTb, 0.032, 0.0065);
}

#[test]
fn fm_converges() {
    // Measured: exact L1 0.0505, |log Z error| 0.0032.
    converges(Loss::Fm, 0.1, 0.0065);
}

/// TB with the regression losses of Hu et al. (ICLR 2025) on each residual. Measured: exact L1
/// 0.0085 and |log Z error| 0.0014 with linex (α = 1), 0.0705 and 0.0085 with shifted cosh,
/// against squared's 0.0152 and 0.0017. Shifted cosh is still falling at this budget (0.0100
/// at 64,000 trajectories); over seeds 0-4 it ends at 0.046-0.113 here.
#[test]
fn tb_trains_with_linex_and_shifted_cosh() {
    let with = |f: LossFn| run_with(Loss::Tb, |c| c.loss_fn = f);
    bars("TB linex", with(LossFn::Linex), 0.017, 0.003);
    bars("TB shifted_cosh", with(LossFn::ShiftedCosh), 0.14, 0.017);
}
