//! Offline replay: a recorded `gfn train` run (2-D H=8, TB) trains a fresh learner with TB, and
//! with DB on the same dump, to an exact L1 of at most 0.05.

use gfn_common::{Loss, RunConfig};
use gfn_pipeline::replay::{inspect, replay};
use gfn_pipeline::train::train;
use gfn_pipeline::HostOptions;

#[test]
fn a_recorded_run_replays_with_tb_and_db() {
    let dir = std::env::temp_dir().join(format!("gfn-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let base = RunConfig {
        batch_size: 128,
        n_trajectories: 32_000,
        validation_interval: 1_000,
        validation_samples: 0,
        seed: 1,
        ..RunConfig::default()
    };
    let recorded = RunConfig {
        record: Some(dir.clone()),
        ..base.clone()
    };
    train(&recorded, HostOptions::default()).unwrap();
    let text = inspect(&dir).unwrap();
    assert!(
        text.contains("trajectories  32000") && text.contains("closed        yes"),
        "{text}"
    );
    assert!(
        text.contains("32000 trajectories") && text.contains("0 frame(s), 0 trajectories lost"),
        "{text}"
    );

    for loss in [Loss::Tb, Loss::Db] {
        let cfg = RunConfig {
            loss,
            seed: 2,
            ..base.clone()
        };
        let l1 = replay(&cfg, &dir, HostOptions::default(), &Default::default())
            .unwrap()
            .summary
            .final_validation
            .exact_l1
            .unwrap();
        assert!(l1 <= 0.05, "{loss} replay: exact L1 {l1}");
    }
    let other = RunConfig { height: 9, ..base };
    let err = replay(&other, &dir, HostOptions::default(), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("refusing"), "{err}");
}
