//! `gfn bench-pipeline`: the multi-process pipeline on loopback. For 1, 2, 4, … samplers (in
//! processes of up to `--samplers_per_process`; by default one process for all, as the launchers
//! run one per node) feeding one buffer and K learners: trajectories/s into the learners,
//! learner steps/s, all-reduce time per step, the bytes per trajectory on the wire and the
//! weight bytes the learner sends per step.

use anyhow::{ensure, Context, Result};
use gfn_common::wire::{self, Message};
use gfn_common::{Device, RunConfig};
use gfn_nn::backend::{cpu_device, Cpu};
use gfn_sampler::Sampler;
use serde::Serialize;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// One measured pipeline layout.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineRow {
    pub samplers: usize,
    /// Processes the samplers run in (each subscribes to the weights once).
    pub sampler_processes: usize,
    pub learners: usize,
    pub trajectories_per_s: f64,
    /// Trajectories/s once running (see `Measured`).
    pub steady_trajectories_per_s: f64,
    pub steps_per_s: f64,
    pub allreduce_ms_per_step: f64,
    pub bytes_per_trajectory: f64,
    /// Weight bytes learner rank 0 sent per step, every copy counted.
    pub weight_bytes_per_step: f64,
}

/// What runs where: the grid, the batch, and the learners.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Height of the 4-D grid.
    pub height: usize,
    /// Trajectories per sampler batch and per learner step.
    pub batch_size: usize,
    /// Learner replicas (mpirun when more than one).
    pub learners: usize,
    /// Where the learners compute.
    pub learner_device: Device,
    /// Compute threads of each learner (CPU learners).
    pub learner_threads: usize,
    /// Where the samplers roll out.
    pub sampler_device: Device,
    /// Samplers per sampler process (`gfn sampler --samplers`): 1 is a process per sampler;
    /// `None` puts every sampler in one process, the launchers' one process per node.
    pub samplers_per_process: Option<usize>,
}

/// The sampler processes of `samplers` samplers at up to `per_process` each: the first id and
/// the count of each.
pub fn sampler_processes(samplers: usize, per_process: usize) -> Vec<(usize, usize)> {
    let per = per_process.max(1);
    (0..samplers)
        .step_by(per)
        .map(|first| (first, per.min(samplers - first)))
        .collect()
}

/// The benchmark's run: 4-D, R0 0.1, TB, no validation in the timed part.
pub fn bench_config(layout: &Layout, steps: u64) -> RunConfig {
    RunConfig {
        ndim: 4,
        height: layout.height,
        batch_size: layout.batch_size,
        n_trajectories: steps * layout.batch_size as u64,
        // Validate only at the first and last step (the largest interval a config can hold).
        validation_interval: i64::MAX as u64,
        validation_samples: 0,
        paper_window: 0,
        ..RunConfig::default()
    }
}

/// Mean encoded size of one trajectory in a `Trajectories` message of a batch of the run.
pub fn bytes_per_trajectory(cfg: &RunConfig) -> Result<f64> {
    let mut sampler = Sampler::<Cpu>::new(cfg, 0, cpu_device())?;
    let batch = sampler.sample(cfg.batch_size);
    let n = batch.len() as f64;
    Ok(wire::encode(
        "0123456789abcdef0123456789abcdef",
        "sampler-0",
        &Message::Trajectories { seq: 0, batch },
    )
    .len() as f64
        / n)
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Has the child killed when this process ends, however it ends: a benchmark killed by a time
/// limit leaves no samplers or learners running (or holding its output pipe open).
#[cfg(target_os = "linux")]
fn dies_with_parent(c: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child's own settings.
    unsafe {
        c.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn dies_with_parent(_: &mut Command) {}

struct Kill(Vec<Child>);

impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs one layout and reads the learner's summary.
fn measure(
    gfn: &Path,
    cfg_flags: &[String],
    samplers: usize,
    layout: &Layout,
    dir: &Path,
) -> Result<Measured> {
    let learners = layout.learners;
    let learner_device = [
        "--device".to_string(),
        layout.learner_device.to_string(),
        "--threads".to_string(),
        layout.learner_threads.to_string(),
    ];
    let sampler_device = ["--device".to_string(), layout.sampler_device.to_string()];
    let net: Vec<String> = vec![
        "--ingest".into(),
        format!("tcp://127.0.0.1:{}", free_port()?),
        "--serve".into(),
        format!("tcp://127.0.0.1:{}", free_port()?),
        "--weights".into(),
        format!("tcp://127.0.0.1:{}", free_port()?),
        "--run_dir".into(),
        dir.display().to_string(),
    ];
    // Every process of the run gets the token in its environment, never on its command line.
    let token = format!("bench-{}", std::process::id());
    let command = |program: &Path| {
        let mut c = Command::new(program);
        c.env("GFN_RUN_TOKEN", &token);
        dies_with_parent(&mut c);
        c
    };
    let quiet = |c: &mut Command| -> Result<Child> {
        Ok(c.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?)
    };
    let mut others = Kill(vec![]);
    others.0.push(quiet(
        command(gfn).arg("buffer").args(&net).args(cfg_flags),
    )?);
    for (first, count) in
        sampler_processes(samplers, layout.samplers_per_process.unwrap_or(samplers))
    {
        others.0.push(quiet(
            command(gfn)
                .arg("sampler")
                .args(["--id", &first.to_string()])
                .args(["--samplers", &count.to_string()])
                .args(&net)
                .args(cfg_flags)
                .args(&sampler_device),
        )?);
    }
    let status = if learners > 1 {
        command(Path::new("mpirun"))
            .args([
                "--allow-run-as-root",
                "--oversubscribe",
                "-n",
                &learners.to_string(),
            ])
            .arg(gfn)
            .arg("learner")
            .arg("--quiet")
            .args(&net)
            .args(cfg_flags)
            .args(&learner_device)
            .stdout(Stdio::null())
            .status()?
    } else {
        command(gfn)
            .arg("learner")
            .arg("--quiet")
            .args(&net)
            .args(cfg_flags)
            .args(&learner_device)
            .stdout(Stdio::null())
            .status()?
    };
    ensure!(status.success(), "learner failed with {status}");
    let text = std::fs::read_to_string(dir.join("metrics.jsonl"))?;
    read_metrics(&text)
}

/// What one layout's learner reported.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Measured {
    /// Trajectories/s over the whole run, start-up included.
    trajectories_per_s: f64,
    /// Trajectories/s between the first validation (after step 1) and the last: without the
    /// processes' start, the first batch's wait, and kernel compilation on a GPU. One of the
    /// two validations is inside that span; half the validation time is taken off for it.
    steady_trajectories_per_s: f64,
    steps_per_s: f64,
    allreduce_ms_per_step: f64,
    weight_bytes_per_step: f64,
}

/// Reads the learner's `metrics.jsonl`: its validations and its summary.
fn read_metrics(text: &str) -> Result<Measured> {
    let records: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect();
    let summary = records
        .iter()
        .find_map(|l| l.get("summary"))
        .context("no summary in the learner's metrics")?;
    let validations: Vec<&serde_json::Value> =
        records.iter().filter_map(|l| l.get("validation")).collect();
    let field = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    let steps = field(summary, "steps").max(1.0);
    let steady = match (validations.first(), validations.last()) {
        (Some(a), Some(b)) if field(b, "step") > field(a, "step") => {
            let span = field(b, "wall_s")
                - field(a, "wall_s")
                - summary["time"]["validation"].as_f64().unwrap_or(0.0) / 2.0;
            (field(b, "trajectories") - field(a, "trajectories")) / span.max(1e-9)
        }
        _ => field(summary, "trajectories_per_s"),
    };
    Ok(Measured {
        trajectories_per_s: field(summary, "trajectories_per_s"),
        steady_trajectories_per_s: steady,
        steps_per_s: field(summary, "steps_per_s"),
        allreduce_ms_per_step: 1e3 * summary["time"]["sync"].as_f64().unwrap_or(0.0) / steps,
        weight_bytes_per_step: field(summary, "weight_bytes_per_step"),
    })
}

/// Measures every sampler count in `layout`.
pub fn run(sampler_counts: &[usize], layout: &Layout, steps: u64) -> Result<Vec<PipelineRow>> {
    let gfn = std::env::current_exe()?;
    let cfg = bench_config(layout, steps);
    let learners = layout.learners;
    let flags: Vec<String> = [
        "--ndim",
        "4",
        "--height",
        &layout.height.to_string(),
        "--batch_size",
        &layout.batch_size.to_string(),
        "--n_trajectories",
        &cfg.n_trajectories.to_string(),
        "--validation_interval",
        "1000000000",
        "--validation_samples",
        "0",
        "--paper_window",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let bytes = bytes_per_trajectory(&cfg)?;
    let mut rows = vec![];
    for &s in sampler_counts {
        let dir =
            std::env::temp_dir().join(format!("gfn-bench-pipeline-{}-{s}", std::process::id()));
        let m = measure(&gfn, &flags, s, layout, &dir)?;
        let processes = sampler_processes(s, layout.samplers_per_process.unwrap_or(s)).len();
        tracing::info!(
            "{s} sampler(s) in {processes} process(es), {learners} learner(s): {:.0} traj/s \
             ({:.0} steady), {:.1} steps/s, {:.0} weight bytes/step",
            m.trajectories_per_s,
            m.steady_trajectories_per_s,
            m.steps_per_s,
            m.weight_bytes_per_step
        );
        rows.push(PipelineRow {
            samplers: s,
            sampler_processes: processes,
            learners,
            trajectories_per_s: m.trajectories_per_s,
            steady_trajectories_per_s: m.steady_trajectories_per_s,
            steps_per_s: m.steps_per_s,
            allreduce_ms_per_step: m.allreduce_ms_per_step,
            bytes_per_trajectory: bytes,
            weight_bytes_per_step: m.weight_bytes_per_step,
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(rows)
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[PipelineRow]) -> String {
    let mut s = String::from("| samplers | sampler processes | learners | traj/s into learners | steady traj/s | learner steps/s | all-reduce ms/step | bytes/trajectory | weight bytes/step |\n|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.1} | {:.3} | {:.1} | {:.0} |\n",
            r.samplers,
            r.sampler_processes,
            r.learners,
            r.trajectories_per_s,
            r.steady_trajectories_per_s,
            r.steps_per_s,
            r.allreduce_ms_per_step,
            r.bytes_per_trajectory,
            r.weight_bytes_per_step
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steady_rate_leaves_out_the_start_and_half_the_validation_time() {
        let text = r#"{"validation": {"step": 1, "trajectories": 512, "wall_s": 3.0}}
{"validation": {"step": 101, "trajectories": 51712, "wall_s": 5.5}}
{"summary": {"steps": 101, "trajectories_per_s": 9402.2, "steps_per_s": 18.4,
 "time": {"validation": 1.0, "sync": 0.202}}}"#
            .replace("\n ", " ");
        let m = read_metrics(&text).unwrap();
        // 51,200 trajectories in 2.5 s, less half of the 1 s spent validating.
        assert!((m.steady_trajectories_per_s - 25_600.0).abs() < 1e-6);
        assert_eq!(m.trajectories_per_s, 9402.2);
        assert!((m.allreduce_ms_per_step - 2.0).abs() < 1e-9);
    }

    #[test]
    fn samplers_are_split_into_processes_of_at_most_the_given_size() {
        assert_eq!(sampler_processes(8, 1).len(), 8);
        assert_eq!(sampler_processes(8, 8), [(0, 8)]);
        assert_eq!(sampler_processes(5, 2), [(0, 2), (2, 2), (4, 1)]);
        assert_eq!(sampler_processes(3, 0), [(0, 1), (1, 1), (2, 1)]);
    }

    #[test]
    fn one_validation_falls_back_on_the_whole_run_and_no_summary_is_an_error() {
        let text = r#"{"validation": {"step": 1, "trajectories": 512, "wall_s": 3.0}}
{"summary": {"steps": 1, "trajectories_per_s": 170.0, "steps_per_s": 0.3, "time": {}}}"#;
        assert_eq!(read_metrics(text).unwrap().steady_trajectories_per_s, 170.0);
        let err = read_metrics(r#"{"validation": {"step": 1}}"#).unwrap_err();
        assert!(err.to_string().contains("no summary"), "{err}");
    }
}
