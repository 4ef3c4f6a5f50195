//! Stopping and resuming: SIGTERM (a Slurm time limit) to `gfn train` leaves a checkpoint from
//! which `--resume` ends exactly where the uninterrupted run ends; a `gfn learner` killed with
//! SIGKILL after a checkpoint continues from it with `--resume` while its buffer and sampler
//! keep running. Every kill waits for an observed event (a checkpoint, a validation), never for
//! a fixed time.

use gfn_host::checkpoint;
use gfn_tests::wait_until;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn gfn() -> Command {
    let mut c = Command::new(gfn_tests::gfn_binary());
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gfn-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn metrics(dir: &Path) -> (Vec<Value>, Option<Value>) {
    gfn_tests::read_metrics(dir)
}

fn validated_past(dir: &Path, step: u64) -> bool {
    metrics(dir)
        .0
        .iter()
        .any(|v| v["step"].as_u64().is_some_and(|s| s > step))
}

fn checksum(summary: &Value) -> String {
    summary["params_checksum"].as_str().unwrap().to_string()
}

fn finish(mut child: Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("did not finish within five minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_leaves_a_checkpoint_that_resumes_exactly() {
    let root = temp("sigterm");
    let run = |dir: &Path, ck: Option<&Path>, resume: bool| {
        let mut c = gfn();
        c.args([
            "train",
            "--quiet",
            "--n_trajectories",
            "24000",
            "--seed",
            "9",
        ]);
        c.args(["--validation_interval", "100"]);
        c.arg("--run_dir").arg(dir);
        if let Some(ck) = ck {
            // Far more than the run: only the stop itself writes a checkpoint.
            c.args(["--checkpoint_every", "1000000"])
                .arg("--checkpoint_dir")
                .arg(ck);
        }
        if resume {
            c.arg("--resume");
        }
        c
    };
    let whole_dir = root.join("whole");
    assert!(finish(run(&whole_dir, None, false).spawn().unwrap()).success());
    let whole = metrics(&whole_dir).1.unwrap();

    let (dir, ck) = (root.join("run"), root.join("ck"));
    let child = run(&dir, Some(&ck), false).spawn().unwrap();
    wait_until("a validation past step 200", || validated_past(&dir, 200));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = finish(child);
    assert_eq!(status.code(), Some(143), "SIGTERM exits with 128 + 15");
    let saved = checkpoint::load(&ck)
        .unwrap()
        .expect("SIGTERM wrote a checkpoint");
    assert!(saved.step > 200 && saved.step < 1500, "step {}", saved.step);
    let stopped = metrics(&dir).1.expect("a stopped run writes its summary");
    assert_eq!(stopped["stopped"], true);

    assert!(finish(run(&dir, Some(&ck), true).spawn().unwrap()).success());
    let (validations, summary) = metrics(&dir);
    let summary = summary.unwrap();
    assert_eq!(summary["steps"], 1500);
    assert_eq!(
        summary["resumed_from"], saved.step,
        "resumed from the checkpoint"
    );
    assert_eq!(
        checksum(&summary),
        checksum(&whole),
        "the resumed run ends exactly"
    );
    let steps: Vec<u64> = validations
        .iter()
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert!(
        steps.windows(2).all(|w| w[0] < w[1]),
        "each validation once: {steps:?}"
    );
}

/// Kills every child on drop, so a failing test leaves no process behind.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A buffer, one sampler and a learner; the learner is killed after its first checkpoint and
/// started again with `--resume`. Returns the metrics of the finished run, and the step of the
/// checkpoint the learner was started again from.
fn killed_learner_run(name: &str, sync: bool, kill: bool) -> (Vec<Value>, Value, Option<u64>) {
    let root = temp(name);
    let (dir, ck) = (root.join("run"), root.join("ck"));
    let net = gfn_tests::ipc_net_flags();
    let mut run: Vec<String> = ["--n_trajectories", "3200", "--seed", "4"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    run.extend(["--validation_interval", "20"].map(String::from));
    if sync {
        run.push("--sync".into());
    }
    let role = |role: &str| {
        let mut c = gfn();
        // The token from the environment, never on a command line.
        c.env("GFN_RUN_TOKEN", name).arg(role).args(&net).args(&run);
        c.arg("--run_dir").arg(&dir);
        c
    };
    let procs = Procs(vec![
        role("buffer").spawn().unwrap(),
        role("sampler").spawn().unwrap(),
    ]);
    let learner = |resume: bool| {
        let mut c = role("learner");
        c.args(["--quiet", "--checkpoint_every", "50"])
            .arg("--checkpoint_dir")
            .arg(&ck);
        if resume {
            c.arg("--resume");
        }
        c.spawn().unwrap()
    };
    let mut first = learner(false);
    let mut resumed_from = None;
    if kill {
        wait_until("a checkpoint", || {
            checkpoint::load(&ck)
                .ok()
                .flatten()
                .is_some_and(|c| c.step >= 50)
        });
        first.kill().unwrap(); // SIGKILL
        let status = first.wait().unwrap();
        assert!(
            !status.success(),
            "the learner had finished before the kill"
        );
        resumed_from = checkpoint::load(&ck).unwrap().map(|c| c.step);
        first = learner(true);
    }
    assert!(finish(first).success(), "the learner failed");
    drop(procs);
    let (validations, summary) = metrics(&dir);
    (
        validations,
        summary.expect("the run finished"),
        resumed_from,
    )
}

#[test]
fn a_killed_learner_resumes_from_its_checkpoint_and_trains_the_full_budget() {
    let (validations, summary, resumed_from) = killed_learner_run("learner-kill", false, true);
    assert_eq!(summary["steps"], 200, "the full budget");
    // A learner that ignored its checkpoint would also train 200 steps and validate each once.
    let resumed_from = resumed_from.expect("a checkpoint before the kill");
    assert!(resumed_from >= 50, "checkpoint step {resumed_from}");
    assert_eq!(summary["resumed_from"], resumed_from, "resumed from it");
    let steps: Vec<u64> = validations
        .iter()
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (0..200)
        .filter(|s| s % 20 == 0 || *s == 199)
        .map(|s| s + 1)
        .collect();
    assert_eq!(steps, expected, "each validation step once");
}

#[test]
fn with_sync_a_resumed_learner_ends_like_the_uninterrupted_run() {
    let (_, whole, _) = killed_learner_run("learner-sync-whole", true, false);
    let (_, resumed, _) = killed_learner_run("learner-sync-kill", true, true);
    assert_eq!(resumed["steps"], 200);
    assert_eq!(checksum(&resumed), checksum(&whole));
}
