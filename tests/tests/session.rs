//! `gfn train`, `gfn replay` and `gfn learner` reach the learner loop through one session
//! (`gfn_host::session::Session`): a [`RunObserver`] given to the session's options sees every
//! validation and the summary of each mode, the learner's with its buffer and sampler running
//! as threads of this process over `ipc://` sockets. A mode that built its own loop, or skipped
//! the session's host, would leave its observer empty.

use gfn_common::config::Mode;
use gfn_common::pipe::Shutdown;
use gfn_common::RunConfig;
use gfn_host::metrics::{Summary, Validation};
use gfn_host::{HostOptions, RunObserver, TrainReport};
use gfn_net::NetArgs;
use gfn_pipeline::roles;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Records the step of every validation and the summary's step count.
#[derive(Default)]
struct Seen {
    validations: Mutex<Vec<u64>>,
    finished: Mutex<Option<u64>>,
}

impl RunObserver for Seen {
    fn validation(&self, v: &Validation) {
        self.validations.lock().unwrap().push(v.step);
    }

    fn finished(&self, summary: &Summary) {
        *self.finished.lock().unwrap() = Some(summary.steps);
    }
}

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gfn-session-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 2-D H=8, 40 steps of 16, a validation every 10 steps.
fn config(run_dir: &Path) -> RunConfig {
    RunConfig {
        n_trajectories: 640,
        validation_interval: 10,
        validation_samples: 1000,
        hidden_dim: 32,
        run_dir: run_dir.to_owned(),
        tensorboard: false,
        ..RunConfig::default()
    }
}

/// Options that hand the run to a fresh observer, which is returned beside them.
fn observed() -> (HostOptions, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let opts = HostOptions {
        observer: Some(seen.clone()),
        ..HostOptions::default()
    };
    (opts, seen)
}

/// The observer saw each of the report's validations, in order, and its summary.
fn assert_saw(mode: &str, seen: &Seen, report: &TrainReport) {
    let steps: Vec<u64> = report.validations.iter().map(|v| v.step).collect();
    assert_eq!(steps, [1, 11, 21, 31, 40], "{mode}: the run's validations");
    assert_eq!(*seen.validations.lock().unwrap(), steps, "{mode}: observed");
    assert_eq!(*seen.finished.lock().unwrap(), Some(40), "{mode}: summary");
}

/// The three roles of a multi-process run, as threads of this process: the learner's report.
fn learner_with_threads(cfg: &RunConfig, opts: HostOptions) -> TrainReport {
    let flags = gfn_tests::ipc_net_flags();
    let flag = |name: &str| {
        let i = flags.iter().position(|f| f == name).unwrap();
        flags[i + 1].clone()
    };
    let net = NetArgs {
        run_token_file: None,
        id: 0,
        ingest: vec![flag("--ingest")],
        serve: vec![flag("--serve")],
        weights: flag("--weights"),
        bind_host: None,
        idle_timeout: 60,
        resend_after: 2,
    };
    let settings = |mode| cfg.clone().settings(mode).unwrap();
    let stop = Shutdown::default();
    let (buffer, sampler) = (settings(Mode::Buffer), settings(Mode::Sampler));
    std::thread::scope(|scope| {
        let buffer = scope.spawn(|| roles::buffer(&buffer, &net, None, &stop));
        let sampler = scope.spawn(|| roles::sampler(&sampler, &net, 1, &stop));
        let report = roles::learner(&settings(Mode::Learner), &net, opts, &stop);
        // The learner's end ends the other two; `stop` frees them if the learner failed.
        stop.trigger();
        buffer.join().unwrap().unwrap();
        sampler.join().unwrap().unwrap();
        report.unwrap().expect("rank 0's report")
    })
}

#[test]
fn every_mode_runs_the_learner_loop_through_the_one_session() {
    let dir = folder("modes");
    let recording = dir.join("recording");

    let (opts, seen) = observed();
    let cfg = RunConfig {
        record: Some(recording.clone()),
        ..config(&dir.join("train"))
    };
    let report = gfn_tests::train(&cfg, opts).unwrap();
    assert_saw("gfn train", &seen, &report);

    let (opts, seen) = observed();
    let cfg = config(&dir.join("replay"));
    let report = gfn_tests::replay(&cfg, &recording, opts, &Shutdown::default()).unwrap();
    assert_saw("gfn replay", &seen, &report);

    let (opts, seen) = observed();
    let report = learner_with_threads(&config(&dir.join("learner")), opts);
    assert_saw("gfn learner", &seen, &report);

    let _ = std::fs::remove_dir_all(&dir);
}
