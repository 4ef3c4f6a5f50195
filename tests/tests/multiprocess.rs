//! Real processes on 127.0.0.1: `gfn buffer`, `gfn sampler` and `gfn learner` (under `mpirun`
//! with the `mpi` feature). The binary is the one cargo built next to this test.

use gfn_common::RunConfig;
use gfn_pipeline::HostOptions;
use gfn_tests::train;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn gfn() -> PathBuf {
    gfn_tests::gfn_binary()
}

/// Kills every child on drop, so a failing test leaves no process behind.
#[derive(Default)]
struct Procs(Vec<(String, Child)>);

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Procs {
    fn spawn(&mut self, name: &str, cmd: &mut Command) {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.0.push((name.into(), child));
    }

    fn kill(&mut self, name: &str) {
        let (_, c) = self.0.iter_mut().find(|(n, _)| n == name).unwrap();
        c.kill().unwrap(); // SIGKILL
        c.wait().unwrap();
    }
}

/// The run token of these tests' processes: in their environment, never on a command line.
const TOKEN: &str = "multiprocess-test";

fn role(role: &str, net: &[String], run: &[&str], extra: &[&str]) -> Command {
    let mut c = Command::new(gfn());
    c.env(gfn_net::TOKEN_VARIABLE, TOKEN);
    c.arg(role).args(net).args(run).args(extra);
    c
}

/// Starts a buffer and `samplers` samplers for a run; returns them with the network flags.
fn start_buffer_and_samplers(
    run: &[&str],
    run_dir: &[&str],
    samplers: usize,
) -> (Procs, Vec<String>) {
    let net = gfn_tests::ipc_net_flags();
    let mut procs = Procs::default();
    procs.spawn("buffer", &mut role("buffer", &net, run, run_dir));
    for i in 0..samplers {
        procs.spawn(
            &format!("sampler-{i}"),
            &mut role("sampler", &net, run, &["--id", &i.to_string()]),
        );
    }
    (procs, net)
}

fn read_metrics(dir: &Path) -> (Vec<Value>, Value) {
    let (validations, summary) = gfn_tests::read_metrics(dir);
    (validations, summary.expect("the run wrote its summary"))
}

/// Starts one learner (no `mpirun`).
fn spawn_learner(net: &[String], run: &[&str], run_dir: &[&str]) -> Child {
    role("learner", net, run, run_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until the learner has written a validation past `step`.
fn wait_for_step(dir: &Path, step: u64) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(300) {
        let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap_or_default();
        let reached = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|l| l["validation"]["step"].as_u64())
            .any(|s| s > step);
        if reached {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the learner never reached step {step}");
}

fn wait_ok(mut learner: Child, limit: Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = learner.try_wait().unwrap() {
            assert!(
                status.success(),
                "learner failed: {status} (under mpirun, the binary needs --features mpi)"
            );
            return;
        }
        if start.elapsed() > limit {
            let _ = learner.kill();
            panic!("learner did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sync_mode_reproduces_gfn_train_step_by_step() {
    let dir = std::env::temp_dir().join(format!("gfn-sync-{}", std::process::id()));
    let run = [
        "--n_trajectories",
        "960",
        "--batch_size",
        "16",
        "--validation_interval",
        "1",
        "--seed",
        "11",
    ];
    let cfg = RunConfig {
        n_trajectories: 960,
        batch_size: 16,
        validation_interval: 1,
        seed: 11,
        ..RunConfig::default()
    };
    let embedded: Vec<f64> = train(&cfg, HostOptions::default())
        .unwrap()
        .validations
        .iter()
        .map(|v| v.loss)
        .collect();

    let run_dir = ["--run_dir", dir.to_str().unwrap()];
    let run = [&run[..], &["--sync"]].concat();
    let (_procs, net) = start_buffer_and_samplers(&run, &run_dir, 1);
    let learner = spawn_learner(&net, &run, &run_dir);
    wait_ok(learner, Duration::from_secs(120));
    let (validations, _) = read_metrics(&dir);
    let distributed: Vec<f64> = validations
        .iter()
        .map(|v| v["loss"].as_f64().unwrap())
        .collect();
    assert_eq!(distributed.len(), embedded.len());
    for (step, (a, b)) in embedded.iter().zip(&distributed).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * a.abs().max(1.0),
            "step {step}: gfn train {a}, processes {b}"
        );
    }
    assert!(
        validations.iter().all(|v| v["lag_max"].as_u64() == Some(0)),
        "strict on-policy has no lag"
    );
}

#[test]
fn samplers_join_and_die_without_stopping_the_learner() {
    let dir = std::env::temp_dir().join(format!("gfn-churn-{}", std::process::id()));
    let run = [
        "--n_trajectories",
        "64000",
        "--batch_size",
        "16",
        "--validation_interval",
        "200",
        "--max_policy_lag",
        "20",
    ];
    let run_dir = ["--run_dir", dir.to_str().unwrap()];
    let (mut procs, net) = start_buffer_and_samplers(&run, &run_dir, 3);
    let learner = spawn_learner(&net, &run, &run_dir);
    // Act on the learner's progress, not on wall time, so a slow or fast machine sees the same.
    wait_for_step(&dir, 1000);
    procs.spawn(
        "sampler-3",
        &mut role("sampler", &net, &run, &["--id", "3"]),
    );
    wait_for_step(&dir, 2000);
    procs.kill("sampler-0");
    wait_ok(learner, Duration::from_secs(300));
    let (validations, summary) = read_metrics(&dir);
    assert_eq!(summary["steps"].as_u64(), Some(4000), "training finished");
    let count = |v: &Value, who: &str| -> u64 {
        v["per_sampler"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p[0] == who)
            .map_or(0, |p| p[1].as_u64().unwrap())
    };
    let first = &validations[1];
    let last = validations.last().unwrap();
    assert_eq!(count(first, "sampler-3"), 0, "sampler-3 had not joined yet");
    assert!(
        count(last, "sampler-3") > 0,
        "sampler-3 contributed after joining"
    );
    // sampler-0 stopped contributing when it was killed: its count froze before the end.
    let frozen = validations
        .iter()
        .rev()
        .take(3)
        .map(|v| count(v, "sampler-0"))
        .collect::<Vec<_>>();
    assert!(
        frozen.windows(2).all(|w| w[0] == w[1]),
        "sampler-0 kept sending after SIGKILL: {frozen:?}"
    );
    assert!(count(last, "sampler-0") > 0);
    // The rates show the change: sampler-3 has a rate only once it joined, sampler-0 none at the end.
    let rate = |v: &Value, who: &str| -> f64 {
        v["per_sampler_rate"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p[0] == who)
            .map_or(0.0, |p| p[1].as_f64().unwrap())
    };
    assert_eq!(rate(first, "sampler-3"), 0.0);
    assert!(rate(last, "sampler-3") > 0.0);
    assert_eq!(rate(last, "sampler-0"), 0.0);
    assert!(validations
        .iter()
        .all(|v| v["queue_depth"].as_u64().is_some()));
    for v in &validations {
        if let Some(lag) = v["lag_max"].as_u64() {
            assert!(lag <= 20, "policy lag {lag} above --max_policy_lag");
        }
    }
    assert!(last["exact_l1"].as_f64().unwrap() < 0.2);
}

#[test]
fn a_buffer_killed_and_started_again_is_rejoined() {
    let dir = std::env::temp_dir().join(format!("gfn-buffer-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = [
        "--n_trajectories",
        "32000",
        "--batch_size",
        "16",
        "--validation_interval",
        "100",
    ];
    let run_dir = ["--run_dir", dir.to_str().unwrap()];
    let (mut procs, net) = start_buffer_and_samplers(&run, &run_dir, 2);
    let learner = spawn_learner(&net, &run, &run_dir);
    wait_for_step(&dir, 500);
    procs.kill("buffer"); // SIGKILL: its queue and pending requests are lost
    procs.spawn("buffer", &mut role("buffer", &net, &run, &run_dir));
    // Samplers send their unacknowledged batch again and the learner asks again: the run goes
    // on with the new buffer and trains its whole budget.
    wait_ok(learner, Duration::from_secs(300));
    let (validations, summary) = read_metrics(&dir);
    assert_eq!(summary["steps"].as_u64(), Some(2000), "training finished");
    let steps: Vec<u64> = validations
        .iter()
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    assert!(summary["final_validation"]["exact_l1"].as_f64().unwrap() < 0.3);
    assert_eq!(summary["losses"]["buffer_restarts"], 1, "{summary}");
    assert!(summary["losses"]["trajectories_lost"].as_u64().is_some());
}

/// 10^4 junk messages at a buffer's two sockets and at a sampler's weight subscription, and
/// three peers that hold the token, ask for batches and never read the answers: an honest
/// sampler and learner still finish their run. Every message goes to 127.0.0.1, in bounded
/// numbers.
#[test]
fn junk_and_peers_that_never_read_do_not_stop_a_run() {
    use gfn_common::wire::{encode, Message, WireWeights};
    use gfn_common::TrajectoryBatch;
    use gfn_net::{Join, Socket};
    use rand::{Rng, SeedableRng};
    let dir = std::env::temp_dir().join(format!("gfn-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = ["--n_trajectories", "3200", "--batch_size", "16"];
    let run_dir = ["--run_dir", dir.to_str().unwrap()];
    let net = gfn_tests::ipc_net_flags();
    let flag = |name: &str| net[net.iter().position(|f| f == name).unwrap() + 1].clone();
    let ctx = zmq::Context::new();
    // Junk weights: a fake publisher holds the weights endpoint while the sampler starts.
    let fake = ctx.socket(zmq::PUB).unwrap();
    fake.bind(&flag("--weights")).unwrap();
    let mut procs = Procs::default();
    procs.spawn("buffer", &mut role("buffer", &net, &run, &run_dir));
    procs.spawn(
        "sampler-0",
        &mut role("sampler", &net, &run, &["--id", "0"]),
    );
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    let mut bad_batch = TrajectoryBatch::default();
    bad_batch.push(&[9, 2], 0.0, 0);
    // Random bytes, messages of another run, and nonsense with the run's token.
    let mut junk = |i: usize| -> Vec<u8> {
        match i % 4 {
            0 => (0..rng.random_range(0..300))
                .map(|_| rng.random())
                .collect(),
            1 => encode("another-run", "x", &Message::Heartbeat),
            2 => encode(
                TOKEN,
                "x",
                &Message::Trajectories {
                    seq: i as u64,
                    batch: bad_batch.clone(),
                },
            ),
            _ => encode(
                TOKEN,
                "x",
                &Message::Weights(WireWeights {
                    version: i as u64,
                    params: vec![1, 2, 3],
                }),
            ),
        }
    };
    let ingest = ctx.socket(zmq::DEALER).unwrap();
    ingest.connect(&flag("--ingest")).unwrap();
    let serve = ctx.socket(zmq::DEALER).unwrap();
    serve.connect(&flag("--serve")).unwrap();
    let sent = |s: &zmq::Socket, bytes: Vec<u8>| s.send(bytes, zmq::DONTWAIT).is_ok();
    let mut delivered = 0;
    for i in 0..10_000 {
        let target = [&ingest, &serve, &fake][i % 3];
        delivered += sent(target, junk(i)) as usize;
    }
    assert!(delivered > 1_000, "only {delivered} junk messages went out");
    drop(fake); // the real learner takes the weights endpoint
                // Three peers with the token ask and never read.
    let greedy: Vec<Socket> = (0..3)
        .map(|k| {
            let s = Socket::open(
                &ctx,
                zmq::DEALER,
                Join::Connect,
                &flag("--serve"),
                TOKEN,
                &format!("greedy-{k}"),
            )
            .unwrap();
            for id in 0..50 {
                let ask = Message::Request {
                    id,
                    n: 16,
                    version: 0,
                    min_version: 0,
                };
                let _ = s.send(&ask, 0);
            }
            s
        })
        .collect();
    let learner = spawn_learner(&net, &run, &run_dir);
    wait_ok(learner, Duration::from_secs(180));
    let (_, summary) = read_metrics(&dir);
    assert_eq!(
        summary["steps"].as_u64(),
        Some(200),
        "the honest run finished"
    );
    let report = buffer_report(&dir);
    assert!(
        report["dropped"].as_u64().unwrap() > 100,
        "junk counted: {report}"
    );
    assert!(
        report["invalid"].as_u64().unwrap() > 100,
        "bad batches counted: {report}"
    );
    drop(greedy);
}

#[cfg(feature = "mpi")]
#[test]
fn two_learners_under_mpirun_stay_identical_and_converge() {
    let dir = std::env::temp_dir().join(format!("gfn-mpi-{}", std::process::id()));
    let run = [
        "--n_trajectories",
        "16000",
        "--batch_size",
        "64",
        "--validation_interval",
        "50",
    ];
    let run_dir = ["--run_dir", dir.to_str().unwrap()];
    let (_procs, net) = start_buffer_and_samplers(&run, &run_dir, 3);
    let mut mpirun = Command::new("mpirun");
    mpirun
        .env(gfn_net::TOKEN_VARIABLE, TOKEN)
        .args(["--allow-run-as-root", "--oversubscribe", "-n", "2"])
        .arg(gfn())
        .arg("learner")
        .args(&net)
        .args(run)
        .args(run_dir)
        .arg("--quiet");
    let learner = mpirun
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ok(learner, Duration::from_secs(300));
    let (validations, summary) = read_metrics(&dir);
    for v in &validations {
        let sums = v["checksums"].as_array().unwrap();
        assert_eq!(sums.len(), 2);
        assert_eq!(sums[0], sums[1], "replicas diverged at step {}", v["step"]);
    }
    let l1 = summary["final_validation"]["exact_l1"].as_f64().unwrap();
    assert!(l1 <= 0.05, "exact L1 {l1}");
}

#[test]
fn with_one_sample_per_insert_every_recorded_trajectory_is_used_once() {
    let dir = std::env::temp_dir().join(format!("gfn-spi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let record = dir.join("recording");
    let run = [
        "--n_trajectories",
        "3200",
        "--batch_size",
        "16",
        "--validation_interval",
        "50",
        "--samples_per_insert",
        "1",
    ];
    let buffer_flags = [
        "--run_dir",
        dir.to_str().unwrap(),
        "--record",
        record.to_str().unwrap(),
    ];
    let (_procs, net) = start_buffer_and_samplers(&run, &buffer_flags, 3);
    let run_dir = ["--run_dir", dir.to_str().unwrap()];
    let learner = spawn_learner(&net, &run, &run_dir);
    wait_ok(learner, Duration::from_secs(120));
    let report = buffer_report(&dir);
    assert_eq!(report["inserted"], 3200, "{report}");
    assert_eq!(report["served"], 3200, "{report}");
    let limiter = &report["limiter"];
    assert_eq!(limiter["inserted"], limiter["sampled"]);
    let dump = gfn_buffer::dump::Dump::read(&record).unwrap();
    assert_eq!(dump.report.trajectories, 3200, "recorded = inserted = used");
    assert!(dump.report.done);
}

/// The buffer's report, written when the learner's shutdown reaches it.
fn buffer_report(dir: &Path) -> Value {
    let path = dir.join("buffer-0.json");
    let start = Instant::now();
    while !path.exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn hostile_messages_do_not_stop_the_buffer() {
    use gfn_common::wire::Message;
    use gfn_common::TrajectoryBatch;
    use gfn_net::{Join, Socket};
    let dir = std::env::temp_dir().join(format!("gfn-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = ["--n_trajectories", "1600", "--batch_size", "16"];
    let run_dir = ["--run_dir", dir.to_str().unwrap()];
    let (_procs, net) = start_buffer_and_samplers(&run, &run_dir, 1);
    let flag = |name: &str| net[net.iter().position(|f| f == name).unwrap() + 1].clone();
    let ctx = zmq::Context::new();
    let open = |endpoint: &str| {
        Socket::open(
            &ctx,
            zmq::DEALER,
            Join::Connect,
            endpoint,
            TOKEN,
            "intruder",
        )
        .unwrap()
    };
    // Requests the buffer can never serve: before the fix, the first one blocked every learner.
    let requests = open(&flag("--serve"));
    for n in [1_000_000, 0] {
        let request = Message::Request {
            id: 0,
            n,
            version: 0,
            min_version: 0,
        };
        assert!(requests.send(&request, 5_000).unwrap());
    }
    // A batch that is not a trajectory of this grid (action 9 on a 2-D grid).
    let mut bad = TrajectoryBatch::default();
    bad.push(&[9, 2], 0.0, 0);
    let ingest = open(&flag("--ingest"));
    let bad = Message::Trajectories { seq: 0, batch: bad };
    assert!(ingest.send(&bad, 5_000).unwrap());
    std::thread::sleep(Duration::from_millis(500));
    let learner = spawn_learner(&net, &run, &run_dir);
    wait_ok(learner, Duration::from_secs(120));
    let (_, summary) = read_metrics(&dir);
    assert_eq!(summary["steps"].as_u64(), Some(100), "training finished");
    let report = buffer_report(&dir);
    assert_eq!(
        report["invalid"], 3,
        "two requests and one batch dropped: {report}"
    );
}

#[test]
fn a_buffer_serves_a_recording_to_a_live_learner_without_samplers() {
    let dir = std::env::temp_dir().join(format!("gfn-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let record = dir.join("recording");
    let cfg = RunConfig {
        n_trajectories: 3200,
        batch_size: 64,
        validation_interval: 1000,
        record: Some(record.clone()),
        ..RunConfig::default()
    };
    train(&cfg, HostOptions::default()).unwrap();
    let run = [
        "--n_trajectories",
        "3200",
        "--batch_size",
        "64",
        "--validation_interval",
        "10",
    ];
    let buffer_flags = [
        "--run_dir",
        dir.to_str().unwrap(),
        "--load",
        record.to_str().unwrap(),
    ];
    let (_procs, net) = start_buffer_and_samplers(&run, &buffer_flags, 0);
    let run_dir = ["--run_dir", dir.to_str().unwrap()];
    let learner = spawn_learner(&net, &run, &run_dir);
    wait_ok(learner, Duration::from_secs(120));
    let (validations, summary) = read_metrics(&dir);
    assert_eq!(summary["steps"], 50);
    let first = validations[0]["exact_l1"].as_f64().unwrap();
    let last = summary["final_validation"]["exact_l1"].as_f64().unwrap();
    // Measured 1.39 -> 0.65 (2026-12-05); a learner that ignored its batches stays near 1.39.
    assert!(
        last < 0.6 * first,
        "the learner learned from the recording: {first} -> {last}"
    );
}

/// A learner on a wgpu adapter (lavapipe in CI) among CPU samplers and a CPU buffer.
#[cfg(feature = "wgpu")]
#[test]
fn a_wgpu_learner_trains_among_cpu_processes() {
    let dir = std::env::temp_dir().join(format!("gfn-wgpu-learner-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = [
        "--n_trajectories",
        "3200",
        "--batch_size",
        "32",
        "--validation_interval",
        "50",
    ];
    let run_dir = ["--run_dir", dir.to_str().unwrap()];
    let (_procs, net) = start_buffer_and_samplers(&run, &run_dir, 1);
    let mut learner = role("learner", &net, &run, &run_dir);
    learner.args(["--device", "wgpu", "--quiet"]);
    let learner = learner
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ok(learner, Duration::from_secs(300));
    let (validations, summary) = read_metrics(&dir);
    assert_eq!(summary["steps"], 100);
    assert!(
        summary["device"].as_str().unwrap().starts_with("wgpu:"),
        "{summary}"
    );
    let first = validations[0]["exact_l1"].as_f64().unwrap();
    let last = summary["final_validation"]["exact_l1"].as_f64().unwrap();
    // The same run on the CPU in one process: 1.38 -> 0.19 (2026-12-05).
    assert!(
        last < 0.5 * first,
        "the wgpu learner learned: {first} -> {last}"
    );
}

/// Three samplers in one process share one weight subscription: all three feed the run, and
/// the learner sends each weight version once instead of three times (`weight_bytes_per_step`
/// against the same samplers as three processes).
#[test]
fn samplers_of_one_process_share_one_copy_of_the_weights() {
    let run = [
        "--n_trajectories",
        "3200",
        "--batch_size",
        "32",
        "--validation_interval",
        "50",
        "--hidden_dim",
        "64",
    ];
    let weight_bytes = |layout: &[(usize, usize)]| {
        let dir = std::env::temp_dir().join(format!(
            "gfn-shared-weights-{}-{}",
            std::process::id(),
            layout.len()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let net = gfn_tests::ipc_net_flags();
        let run_dir = ["--run_dir", dir.to_str().unwrap()];
        let mut procs = Procs::default();
        procs.spawn("buffer", &mut role("buffer", &net, &run, &run_dir));
        for &(first, count) in layout {
            let (first, count) = (first.to_string(), count.to_string());
            let flags = ["--id", &first, "--samplers", &count];
            procs.spawn(
                &format!("samplers-{first}"),
                &mut role("sampler", &net, &run, &flags),
            );
        }
        wait_ok(
            spawn_learner(&net, &run, &run_dir),
            Duration::from_secs(120),
        );
        let (validations, summary) = read_metrics(&dir);
        assert_eq!(summary["steps"], 100);
        // Every sampler sent trajectories (`per_sampler`: [name, trajectories] pairs).
        let seen = validations.last().unwrap()["per_sampler"].clone();
        for id in 0..3 {
            let name = format!("sampler-{id}");
            let fed = seen.as_array().unwrap().iter().any(|pair| {
                pair[0].as_str() == Some(name.as_str()) && pair[1].as_u64().unwrap_or(0) > 0
            });
            assert!(fed, "{name} fed the run: {seen}");
        }
        summary["weight_bytes_per_step"].as_f64().unwrap()
    };
    let shared = weight_bytes(&[(0, 3)]);
    let separate = weight_bytes(&[(0, 1), (1, 1), (2, 1)]);
    assert!(shared > 0.0);
    assert!(
        separate > 2.0 * shared,
        "three subscribers cost about three copies: {separate} against {shared}"
    );
}

/// Peak resident memory of a live process in MiB (`VmHWM`), or `None` once it has gone.
fn peak_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Under load: 32 samplers (one process) push into one buffer while one learner trains on
/// batches of 256 on one thread: the samplers deliver the whole budget within the first steps
/// (measured: 26,624 trajectories received for 25,600 trained) and wait on backpressure. The
/// run finishes, nothing is rejected or lost, the learner trains exactly its budget (the buffer
/// takes nothing past it), and every process's peak memory stays bounded.
#[test]
fn thirty_two_samplers_on_one_buffer_and_a_slow_learner() {
    let dir = std::env::temp_dir().join(format!("gfn-load-32-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = [
        "--ndim",
        "4",
        "--n_trajectories",
        "25600",
        "--batch_size",
        "256",
        "--validation_interval",
        "50",
        "--validation_samples",
        "0",
    ];
    let net = gfn_tests::ipc_net_flags();
    let run_dir = ["--run_dir", dir.to_str().unwrap()];
    let mut procs = Procs::default();
    procs.spawn("buffer", &mut role("buffer", &net, &run, &run_dir));
    let samplers = ["--id", "0", "--samplers", "32"];
    procs.spawn("samplers", &mut role("sampler", &net, &run, &samplers));
    let mut learner = spawn_learner(&net, &run, &run_dir);
    let mut pids: Vec<(String, u32)> = procs.0.iter().map(|(n, c)| (n.clone(), c.id())).collect();
    pids.push(("learner".into(), learner.id()));
    let mut peak = vec![0f64; pids.len()];
    let start = Instant::now();
    let status = loop {
        for (i, (_, pid)) in pids.iter().enumerate() {
            peak[i] = peak[i].max(peak_mib(*pid).unwrap_or(0.0));
        }
        if let Some(status) = learner.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(240), "the run hung");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "learner failed: {status}");
    let (_, summary) = read_metrics(&dir);
    assert_eq!(summary["steps"], 100);
    let report = buffer_report(&dir);
    assert_eq!(report["served"], 25600, "{report}");
    for field in ["invalid", "dropped", "undeliverable"] {
        assert_eq!(report[field], 0, "{field}: {report}");
    }
    let received: u64 = report["received"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(received >= 25600, "{report}");
    assert_eq!(report["inserted"], 25600, "the budget, no more: {report}");
    // Measured peaks (2026-12-05): buffer 9.4 MiB, the 32 samplers 103 MiB, learner 34 MiB.
    let bounds = [64.0, 400.0, 160.0];
    for (((name, _), mib), bound) in pids.iter().zip(&peak).zip(bounds) {
        assert!(*mib > 0.0 && *mib < bound, "{name}: peak {mib:.0} MiB");
    }
}
