//! The run's TensorBoard events, written beside `metrics.jsonl` (unless `--tensorboard
//! false`): every numeric field of each validation as a scalar at its step, tagged
//! `group/field` with the JSONL's field names; the config as text; at the end, the loss of
//! every step, the summary's throughput and time split, and the plots as images.

use crate::host::TrainReport;
use crate::metrics::Validation;
use gfn_common::tfevents::EventWriter;
use gfn_common::RunConfig;
use serde_json::Value;
use std::io;
use std::path::Path;

/// The plots of a finished run that go to TensorBoard, by file name.
const PLOTS: &[&str] = &["curves", "loss", "heatmap"];

/// The event file of one session of a run.
pub struct RunEvents {
    writer: EventWriter,
}

impl RunEvents {
    /// Starts the run's events in `cfg.run_dir` (which exists). Like `metrics.jsonl`, they are
    /// rewritten from the start: earlier event files go, and `earlier` (a resumed run's
    /// validations) are written again, so that no step appears twice.
    pub fn open(cfg: &RunConfig, earlier: &[Validation]) -> io::Result<Self> {
        for entry in std::fs::read_dir(&cfg.run_dir)?.flatten() {
            if entry.file_name().to_string_lossy().contains(".tfevents.") {
                std::fs::remove_file(entry.path())?;
            }
        }
        let mut events = Self {
            writer: EventWriter::create(&cfg.run_dir)?,
        };
        let toml = cfg.to_toml().unwrap_or_else(|e| e.to_string());
        // Markdown: indented text keeps the TOML's lines.
        let text: String = toml.lines().map(|l| format!("    {l}\n")).collect();
        events.writer.text(0, "config", &text)?;
        for v in earlier {
            events.validation(v)?;
        }
        Ok(events)
    }

    /// A validation's scalars at its step.
    pub fn validation(&mut self, v: &Validation) -> io::Result<()> {
        self.writer.scalars(v.step, &validation_scalars(v))
    }

    /// The end of the run: the loss of every step, the summary and the plots found in
    /// `run_dir`.
    pub fn finish(&mut self, report: &TrainReport, run_dir: &Path) -> io::Result<()> {
        for (i, loss) in report.losses.iter().enumerate() {
            let tag = "train/loss_per_step".to_string();
            self.writer.scalars(i as u64 + 1, &[(tag, *loss as f64)])?;
        }
        let summary = serde_json::to_value(&report.summary).unwrap_or_default();
        let mut values = numbers("summary", &summary);
        values.extend(numbers("summary/time", &summary["time"]));
        let step = report.summary.steps;
        self.writer.scalars(step, &values)?;
        for name in PLOTS {
            let path = run_dir.join(format!("{name}.png"));
            if let Ok(png) = std::fs::read(&path) {
                self.writer.png(step, &format!("plots/{name}"), &png)?;
            }
        }
        Ok(())
    }
}

/// Every numeric field of a validation but its step, as `group/field`; the per-sampler
/// lists as `pipeline/field/sampler`.
pub fn validation_scalars(v: &Validation) -> Vec<(String, f64)> {
    let Ok(Value::Object(fields)) = serde_json::to_value(v) else {
        return vec![];
    };
    let mut out = vec![];
    for (field, value) in &fields {
        match value {
            Value::Number(n) if field != "step" => {
                let tag = format!("{}/{field}", group(field));
                out.extend(n.as_f64().map(|x| (tag, x)));
            }
            // `[[name, value], …]`: trajectories (or their rate) per sampler.
            Value::Array(pairs) => {
                for pair in pairs {
                    if let (Some(who), Some(x)) = (pair[0].as_str(), pair[1].as_f64()) {
                        out.push((format!("{}/{field}/{who}", group(field)), x));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The numeric fields of a JSON object, tagged `prefix/field`.
fn numbers(prefix: &str, object: &Value) -> Vec<(String, f64)> {
    let Value::Object(fields) = object else {
        return vec![];
    };
    let numeric = fields.iter().filter_map(|(k, v)| Some((k, v.as_f64()?)));
    numeric.map(|(k, x)| (format!("{prefix}/{k}"), x)).collect()
}

/// The TensorBoard section of a validation field.
fn group(field: &str) -> &'static str {
    match field {
        "exact_l1" | "exact_jsd" | "sampled_l1" | "sampled_jsd" | "paper_l1" => "distribution",
        "modes_found" | "n_modes" | "n_modes_estimate" | "tiers_found" | "distinct_states"
        | "mean_log_reward" => "modes",
        "lag_min" | "lag_mean" | "lag_max" | "queue_depth" | "per_sampler" | "per_sampler_rate" => {
            "pipeline"
        }
        f if f.starts_with("log_z") => "log_z",
        _ => "train",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_numeric_field_but_the_step_is_a_scalar() {
        let v = Validation {
            step: 7,
            exact_l1: Some(0.25),
            log_z: Some(3.0),
            modes_found: 4,
            loss: 1.5,
            per_sampler: vec![("sampler-1".into(), 32)],
            ..Validation::default()
        };
        let scalars = validation_scalars(&v);
        let get = |tag: &str| scalars.iter().find(|(t, _)| t == tag).map(|(_, x)| *x);
        assert_eq!(get("distribution/exact_l1"), Some(0.25));
        assert_eq!(get("log_z/log_z"), Some(3.0));
        assert_eq!(get("modes/modes_found"), Some(4.0));
        assert_eq!(get("train/loss"), Some(1.5));
        assert_eq!(get("pipeline/per_sampler/sampler-1"), Some(32.0));
        assert!(get("train/step").is_none(), "the step is the x axis");
        // Absent metrics (null in the JSONL) are not invented.
        assert!(get("distribution/sampled_l1").is_none());
    }
}
