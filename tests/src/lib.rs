//! Cross-role and cross-process integration tests of gfn (see `tests/`), and their helpers.

use gfn_common::config::Mode;
use gfn_common::pipe::Shutdown;
use gfn_common::target::{distances, histogram, terminal_distribution};
use gfn_common::{HyperGrid, RunConfig, TrajectoryBatch};
use gfn_nn::backend::{cpu_device, Cpu};
use gfn_nn::policy::{forward_probs_all_states, Exploration};
use gfn_nn::{params, GflowNet, NetConfig};
use gfn_pipeline::{HostOptions, TrainReport};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The `gfn` binary cargo built next to the running test (`cargo test --workspace` builds it).
pub fn gfn_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("gfn"))
        .unwrap_or_default();
    assert!(
        bin.exists(),
        "build the gfn binary first (cargo test --workspace builds it): {}",
        bin.display()
    );
    bin
}

/// The Python interpreter of the tests built with `--features python` (`GFN_PYTHON`, made by
/// `.ci/run` with `python/requirements.txt`).
pub fn python() -> std::process::Command {
    let python = std::env::var_os("GFN_PYTHON")
        .expect("GFN_PYTHON names a Python with python/requirements.txt installed (see .ci/run)");
    std::process::Command::new(python)
}

/// log Z of 2-D H=8 with the original reward at R0 0.1 (the reference configuration's grid).
pub const LOG_Z_2D8: f64 = 3.1091;

/// `gfn train` in this process, on a configuration the test built: validated here, as the
/// command line validates its own.
pub fn train(cfg: &RunConfig, opts: HostOptions) -> anyhow::Result<TrainReport> {
    gfn_pipeline::train::train(&cfg.clone().settings(Mode::Train)?, opts)
}

/// [`train`] stopped (as by SIGTERM) as soon as its first checkpoint is on disk: the stop
/// writes another checkpoint at the step it stops at. `cfg` must set a checkpoint folder.
pub fn train_until_first_checkpoint(
    cfg: &RunConfig,
    opts: HostOptions,
) -> anyhow::Result<TrainReport> {
    let ckpt = cfg.checkpoint_dir.clone().expect("a checkpoint folder");
    let stop = Shutdown::default();
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.is_set() {
                if matches!(gfn_host::checkpoint::load(&ckpt), Ok(Some(_))) {
                    stop.trigger();
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let settings = cfg.clone().settings(Mode::Train)?;
    let report = gfn_pipeline::train::train_until(&settings, opts, &stop);
    stop.trigger();
    let _ = watcher.join();
    report
}

/// `gfn replay --from dir` in this process (see [`train`]).
pub fn replay(
    cfg: &RunConfig,
    dir: &Path,
    opts: HostOptions,
    stop: &Shutdown,
) -> anyhow::Result<TrainReport> {
    gfn_pipeline::replay::replay(&cfg.clone().settings(Mode::Replay)?, dir, opts, stop)
}

/// The validations of a run's `metrics.jsonl` in `dir`, and its summary once written. Lines that
/// do not parse (one being written) are skipped.
pub fn read_metrics(dir: &Path) -> (Vec<serde_json::Value>, Option<serde_json::Value>) {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap_or_default();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let validations = lines
        .iter()
        .filter_map(|l| l.get("validation").cloned())
        .collect();
    let summary = lines.iter().find_map(|l| l.get("summary").cloned());
    (validations, summary)
}

/// A random, non-uniform policy for `cfg` as flat parameters, and its exact terminal
/// distribution (dynamic programming on the CPU): what rollouts of it must follow.
pub fn random_policy(cfg: &RunConfig) -> (Vec<f32>, Vec<f64>) {
    let grid = cfg.grid().unwrap();
    let dev = cpu_device();
    let net: GflowNet<Cpu> = GflowNet::new(
        &NetConfig::new(&cfg.model(), &grid),
        &mut SmallRng::seed_from_u64(9),
        &dev,
    );
    let mut rng = SmallRng::seed_from_u64(10);
    let flat: Vec<f32> = params::flatten(&net)
        .iter()
        .map(|_| rng.random_range(-0.3..0.3))
        .collect();
    let net = params::load(net, &flat).unwrap();
    let probs = forward_probs_all_states(
        &net,
        None,
        &grid,
        cfg.preprocessor(),
        Exploration::NONE,
        &dev,
    )
    .unwrap();
    (flat, terminal_distribution(&grid, &probs))
}

/// The L1 distance between the terminal states of `batch` (valid on `grid`) and `exact`.
pub fn rollout_l1(batch: &TrajectoryBatch, grid: &HyperGrid, exact: &[f64]) -> f64 {
    batch.validate(grid).unwrap();
    let mut x = vec![0u16; grid.ndim()];
    let idx: Vec<usize> = batch
        .iter()
        .map(|(a, _, _)| {
            TrajectoryBatch::terminal_state(grid.ndim(), a, &mut x);
            grid.index(&x)
        })
        .collect();
    distances(exact, &histogram(idx, exact.len())).l1
}

/// Polls `ready` every 20 ms for up to five minutes (tests act on observed events, not on
/// fixed sleeps).
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < Duration::from_secs(300), "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM to a child process (what Slurm sends at a time limit).
pub fn terminate(child: &std::process::Child) {
    let pid = child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The network flags of one multi-process test run: `ipc://` endpoints in a folder of its own.
/// Tests run side by side, and a free TCP port picked and released by one can be taken by
/// another before its buffer binds it; a socket file in a private folder cannot.
pub fn ipc_net_flags() -> Vec<String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("gfn-ipc-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let at = |name: &str| format!("ipc://{}", dir.join(name).display());
    [
        ("--ingest", at("ingest")),
        ("--serve", at("serve")),
        ("--weights", at("weights")),
        ("--idle_timeout", "60".to_string()),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_string(), value])
    .collect()
}
