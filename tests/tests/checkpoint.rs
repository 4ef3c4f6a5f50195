//! Checkpoints: a run killed with SIGKILL (several times, each right after a checkpoint
//! appears, so also while the next one is being written) and resumed with `--resume` ends where
//! the uninterrupted run with the same seed ends, and every checkpoint on disk is whole.

use gfn_common::RunConfig;
use gfn_host::checkpoint;
use gfn_pipeline::HostOptions;
use gfn_tests::train;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn a_killed_and_resumed_run_ends_like_the_uninterrupted_one() {
    let base = RunConfig {
        n_trajectories: 48_000,
        batch_size: 16,
        seed: 3,
        validation_interval: 500,
        ..RunConfig::default()
    };
    let whole_report = train(&base, HostOptions::default()).unwrap();
    let whole = whole_report.summary;

    let root = std::env::temp_dir().join(format!("gfn-ckpt-{}", std::process::id()));
    let (ckpt, run) = (root.join("ckpt"), root.join("run"));
    let _ = std::fs::remove_dir_all(&root);
    let args = |resume: bool| {
        let mut c = Command::new(gfn_tests::gfn_binary());
        c.args([
            "train",
            "--quiet",
            "--n_trajectories",
            "48000",
            "--batch_size",
            "16",
            "--seed",
            "3",
        ]);
        c.args(["--validation_interval", "500", "--checkpoint_every", "50"]);
        c.arg("--checkpoint_dir")
            .arg(&ckpt)
            .arg("--run_dir")
            .arg(&run);
        if resume {
            c.arg("--resume");
        }
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    // Each kill comes right after a new checkpoint is seen on disk, so it may land in the
    // middle of writing the next one.
    let mut last_step = 0;
    for i in 0..3 {
        let mut child = args(i > 0).spawn().unwrap();
        let start = std::time::Instant::now();
        loop {
            let step = checkpoint::load(&ckpt)
                .ok()
                .flatten()
                .map_or(0, |ck| ck.step);
            if step > last_step {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "no new checkpoint"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        assert!(!child.wait().unwrap().success(), "killed before the end");
        // Whatever the moment of the kill, the checkpoint on disk loads and moves forward.
        let ck = checkpoint::load(&ckpt).unwrap().unwrap();
        assert!(
            ck.step > last_step,
            "checkpoint went back from {last_step} to {}",
            ck.step
        );
        last_step = ck.step;
    }
    assert!(last_step > 0, "no checkpoint was written before the kills");
    let status = args(true).status().unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let summary: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|l| l.get("summary").cloned())
        .unwrap();
    let resumed_l1 = summary["final_validation"]["exact_l1"].as_f64().unwrap();
    let whole_l1 = whole.final_validation.exact_l1.unwrap();
    assert!(
        (resumed_l1 - whole_l1).abs() <= 0.01,
        "resumed {resumed_l1} vs uninterrupted {whole_l1}"
    );
    // The metrics hold each validation once, in order, however often the run was resumed.
    let steps: Vec<u64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|l| l["validation"]["step"].as_u64())
        .collect();
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "steps {steps:?}");
    let whole_steps: Vec<u64> = whole_report.validations.iter().map(|v| v.step).collect();
    assert_eq!(steps, whole_steps);
    // With policy lag 0 the continuation is exact.
    assert_eq!(
        summary["params_checksum"].as_str().unwrap(),
        whole.params_checksum
    );
}

/// Every piece of state a checkpoint holds at once: a policy lag (weights kept one version
/// back), a replay buffer behind a samples-per-insert limiter, noisy layers (their noise
/// stream) and a cosine learning-rate schedule (its step). A run stopped right after its
/// first checkpoint and resumed must end with the uninterrupted run's exact parameters.
#[test]
fn resume_is_bit_identical_with_lag_replay_limiter_noise_and_cosine() {
    let root = std::env::temp_dir().join(format!("gfn-ckpt-all-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let base = RunConfig {
        n_trajectories: 16 * 300,
        batch_size: 16,
        seed: 11,
        policy_lag: 1,
        replay_buffer_size: 200,
        samples_per_insert: Some(2.0),
        n_noisy_layers: 1,
        lr_schedule: gfn_common::LrSchedule::Cosine,
        validation_interval: 100,
        run_dir: root.join("whole"),
        ..RunConfig::default()
    };
    let whole = train(&base, HostOptions::default()).unwrap().summary;

    let ckpt = root.join("ckpt");
    let stopped = RunConfig {
        checkpoint_dir: Some(ckpt.clone()),
        checkpoint_every: 40,
        run_dir: root.join("resumed"),
        ..base.clone()
    };
    let first = gfn_tests::train_until_first_checkpoint(&stopped, HostOptions::default())
        .unwrap()
        .summary;
    assert!(first.stopped && first.steps < whole.steps, "stopped early");

    let resumed = RunConfig {
        resume: true,
        ..stopped
    };
    let resumed = train(&resumed, HostOptions::default()).unwrap().summary;
    assert_eq!(resumed.resumed_from, Some(first.steps));
    assert_eq!(resumed.steps, whole.steps);
    assert_eq!(resumed.params_checksum, whole.params_checksum);
    let _ = std::fs::remove_dir_all(&root);
}
