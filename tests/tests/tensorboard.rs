//! TensorBoard's own reader (the `tensorboard` Python package, through
//! `python/read_tensorboard.py`) opens a run folder's event files and finds every numeric
//! field of every validation of `metrics.jsonl` at its step, the loss of every step, the
//! config and the plots; a run stopped and resumed leaves each step once. Built with
//! `--features python`.
#![cfg(feature = "python")]

use gfn_common::RunConfig;
use gfn_pipeline::HostOptions;
use gfn_tests::{read_metrics, train, train_until_first_checkpoint};
use serde_json::Value;
use std::path::Path;

/// The run folder's events as `python/read_tensorboard.py` reads them.
fn read_events(run_dir: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../python/read_tensorboard.py");
    let out = gfn_tests::python()
        .arg(script)
        .arg(run_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value at `step` of the one validation series tagged `group/field` (`summary/…` holds
/// the run's summary).
fn scalar_at(events: &Value, field: &str, step: u64) -> Option<f64> {
    let series = events["scalars"].as_object()?;
    let mut tagged = series.iter().filter(|(tag, _)| {
        tag.split_once('/')
            .is_some_and(|(group, rest)| group != "summary" && rest == field)
    });
    let (_, points) = tagged.next()?;
    assert!(tagged.next().is_none(), "two series end in {field}");
    let points = points.as_array()?;
    let at = points.iter().find(|p| p[0].as_u64() == Some(step))?;
    at[1].as_f64()
}

/// Every numeric field of every validation in `metrics.jsonl` is a scalar at its step, with
/// the value the JSONL holds (as a float32: TensorBoard stores scalars so); every validation
/// step appears once.
fn assert_events_match_metrics(run_dir: &Path, events: &Value) {
    let (validations, summary) = read_metrics(run_dir);
    assert!(!validations.is_empty() && summary.is_some());
    let mut compared = 0;
    for v in &validations {
        let step = v["step"].as_u64().unwrap();
        for (field, value) in v.as_object().unwrap() {
            let Some(x) = value.as_f64().filter(|_| field != "step") else {
                continue;
            };
            let got = scalar_at(events, field, step)
                .unwrap_or_else(|| panic!("{field} at step {step} is missing"));
            assert_eq!(got as f32, x as f32, "{field} at step {step}");
            compared += 1;
        }
    }
    let exact_l1 = &events["scalars"]["distribution/exact_l1"];
    assert_eq!(exact_l1.as_array().unwrap().len(), validations.len());
    assert!(
        compared >= 10 * validations.len(),
        "{compared} values compared"
    );
}

#[test]
fn tensorboard_reads_every_metric_of_a_run() {
    let dir = std::env::temp_dir().join(format!("gfn-tensorboard-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = RunConfig {
        n_trajectories: 16 * 200,
        validation_interval: 40,
        validation_samples: 1000,
        run_dir: dir.join("run"),
        ..RunConfig::default()
    };
    let files = HostOptions {
        progress: false,
        write_files: true,
        observer: None,
    };
    let report = train(&cfg, files.clone()).unwrap();
    let events = read_events(&cfg.run_dir);
    assert_events_match_metrics(&cfg.run_dir, &events);
    let losses = events["scalars"]["train/loss_per_step"].as_array().unwrap();
    assert_eq!(losses.len(), report.losses.len());
    assert_eq!(losses[9][1].as_f64().unwrap() as f32, report.losses[9]);
    for plot in ["plots/curves", "plots/loss", "plots/heatmap"] {
        let image = &events["images"][plot][0];
        assert!(image[1].as_u64().unwrap() > 100, "{plot}: {image}");
    }
    let config = events["text"]["config"][0].as_str().unwrap();
    assert!(config.contains("ndim = 2"), "{config}");

    // Stopped after its first checkpoint and resumed: the events are rewritten like the
    // metrics, each validation once.
    let resumed = RunConfig {
        checkpoint_dir: Some(dir.join("ckpt")),
        checkpoint_every: 50,
        run_dir: dir.join("resumed"),
        ..cfg
    };
    let first = train_until_first_checkpoint(&resumed, files.clone())
        .unwrap()
        .summary;
    assert!(first.stopped);
    train(
        &RunConfig {
            resume: true,
            ..resumed.clone()
        },
        files,
    )
    .unwrap();
    assert_events_match_metrics(&resumed.run_dir, &read_events(&resumed.run_dir));
    let _ = std::fs::remove_dir_all(&dir);
}
