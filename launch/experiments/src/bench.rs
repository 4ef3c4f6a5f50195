//! `gfn bench`: iterations/s and trajectories/s of full training steps, the time split, and the
//! learner's achieved GFLOP/s against the same device's measured SGEMM rate.

use anyhow::Result;
use gfn_common::config::{Mode, Settings};
use gfn_common::{Device, Loss, RunConfig};
use gfn_nn::backend::init_cpu_threads;
use gfn_pipeline::device::sgemm_gflops;
use gfn_pipeline::train::train;
use gfn_pipeline::HostOptions;
use serde::Serialize;

/// Learner steps of the untimed run before each timed one on a GPU.
const GPU_WARMUP_STEPS: u64 = 30;

/// One benchmark row.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub name: String,
    pub steps: u64,
    pub steps_per_s: f64,
    pub trajectories_per_s: f64,
    pub sample_ms: f64,
    pub loss_ms: f64,
    pub backward_ms: f64,
    pub optimizer_ms: f64,
    pub learner_gflops: f64,
    pub sgemm_gflops: f64,
}

/// Forward FLOPs of one MLP on one state: `2 Σ in·out` over its layers.
fn mlp_flops(cfg: &RunConfig, input: usize, output: usize) -> f64 {
    let h = cfg.hidden_dim as f64;
    2.0 * (input as f64 * h + (cfg.n_hidden as f64 - 1.0) * h * h + h * output as f64)
}

/// Runs one configuration for `steps` learner steps and reports throughput.
pub fn bench_config(name: &str, cfg: &Settings, sgemm: f64) -> Result<BenchRow> {
    let report = train(cfg, HostOptions::default())?;
    let s = &report.summary;
    let busy = s.wall_s - s.time.validation;
    let steps = s.steps as f64;
    let grid = cfg.grid()?;
    let input = cfg.preprocessor().dim(&grid).unwrap_or(1);
    let per_row = mlp_flops(cfg, input, grid.n_actions())
        + if cfg.uniform_pb || cfg.loss == Loss::Fm {
            0.0
        } else {
            mlp_flops(cfg, input, grid.ndim())
        };
    let rows = report.rows_per_step;
    let learner_s = s.time.loss + s.time.backward + s.time.optimizer;
    Ok(BenchRow {
        name: name.into(),
        steps: s.steps,
        steps_per_s: steps / busy,
        trajectories_per_s: steps * cfg.batch_size as f64 / busy,
        sample_ms: 1e3 * s.time.sample / steps,
        loss_ms: 1e3 * s.time.loss / steps,
        backward_ms: 1e3 * s.time.backward / steps,
        optimizer_ms: 1e3 * s.time.optimizer / steps,
        learner_gflops: 3.0 * per_row * rows * steps / learner_s / 1e9,
        sgemm_gflops: sgemm,
    })
}

/// Learner steps of each kind of benchmark configuration.
#[derive(Debug, Clone, Copy)]
pub struct BenchSteps {
    /// 4-D H=8 batch 16.
    pub small: u64,
    /// 4-D H=16 batch 512.
    pub large: u64,
    /// 10-D H=128 batch 16: about 10^21 states, today's large HyperGrid.
    pub huge: u64,
}

/// The benchmark configurations of the README: 4-D H=8 batch 16, 4-D H=16 batch 512 and
/// 10-D H=128 batch 16, TB.
pub fn run(steps: BenchSteps, threads: usize, device: Device) -> Result<Vec<BenchRow>> {
    init_cpu_threads(threads);
    // The ceiling of the device the runs use: a GPU needs larger products to reach its rate.
    let (n, reps) = match device {
        Device::Cpu => (1024, 10),
        _ => (4096, 20),
    };
    let sgemm = gfn_nn::backend::role_pool(threads).install(|| sgemm_gflops(device, n, reps))?;
    tracing::info!("SGEMM {n}^3 on {device}, {threads} thread(s): {sgemm:.1} GFLOP/s");
    let base = RunConfig {
        loss: Loss::Tb,
        validation_samples: 0,
        // Validate only at the first and last step (the largest interval a config can hold).
        validation_interval: i64::MAX as u64,
        paper_window: 0,
        threads,
        device,
        ..RunConfig::default()
    };
    let mut rows = vec![];
    let record = std::env::temp_dir().join(format!("gfn-bench-record-{}", std::process::id()));
    let BenchSteps { small, large, huge } = steps;
    for (name, lag, (ndim, height), batch, steps) in [
        ("4-D H=8 batch 16 TB", 0, (4, 8), 16, small),
        ("4-D H=8 batch 16 TB, --record", 0, (4, 8), 16, small),
        ("4-D H=8 batch 16 TB, policy_lag 1", 1, (4, 8), 16, small),
        ("4-D H=16 batch 512 TB", 0, (4, 16), 512, large),
        (
            "4-D H=16 batch 512 TB, policy_lag 1",
            1,
            (4, 16),
            512,
            large,
        ),
        ("10-D H=128 batch 16 TB", 0, (10, 128), 16, huge),
    ] {
        let cfg = RunConfig {
            ndim,
            height,
            batch_size: batch,
            policy_lag: lag,
            n_trajectories: steps * batch as u64,
            record: name.ends_with("--record").then(|| record.clone()),
            ..base.clone()
        };
        let name = match device {
            Device::Cpu => name.to_string(),
            gpu => format!("{name} ({gpu})"),
        };
        if device != Device::Cpu {
            // A GPU compiles and autotunes each kernel at its first use: an untimed short run
            // first keeps that out of the measured one.
            let warm = RunConfig {
                n_trajectories: GPU_WARMUP_STEPS * batch as u64,
                record: None,
                ..cfg.clone()
            };
            train(&warm.settings(Mode::Train)?, HostOptions::default())?;
        }
        let row = bench_config(&name, &cfg.settings(Mode::Train)?, sgemm)?;
        tracing::info!(
            "{name}: {:.1} it/s, {:.0} traj/s",
            row.steps_per_s,
            row.trajectories_per_s
        );
        rows.push(row);
    }
    let _ = std::fs::remove_dir_all(&record);
    Ok(rows)
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[BenchRow]) -> String {
    let mut s = String::from(
        "| config | it/s | traj/s | sample ms/it | loss ms/it | backward ms/it | optimizer ms/it | learner GFLOP/s | SGEMM GFLOP/s |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {:.1} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} |\n",
            r.name,
            r.steps_per_s,
            r.trajectories_per_s,
            r.sample_ms,
            r.loss_ms,
            r.backward_ms,
            r.optimizer_ms,
            r.learner_gflops,
            r.sgemm_gflops
        );
    }
    s
}
