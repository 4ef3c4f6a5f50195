//! `gfn reproduce <preset>`: runs a paper's grid of configurations over several seeds and writes
//! a results folder with a Markdown table and PNG plots. A campaign survives interruption:
//! finished runs are not rerun, and each run checkpoints as it goes and resumes from its
//! checkpoint, so a session ending or a Slurm time limit costs minutes, not the run. Its runs
//! can be split across invocations or jobs (`--only`, `--shard`) into one results folder.

use crate::claims::{self, cell, mean_sd, Claim, ConfigRuns};
use anyhow::{bail, Context, Result};
use gfn_common::config::{ConfigError, Mode, Settings};
use gfn_common::pipe::Shutdown;
use gfn_common::{Loss, LossFn, RunConfig};
use gfn_host::metrics::Validation;
use gfn_host::plot::{log_bands, Series};
use gfn_pipeline::train::train_until;
use gfn_pipeline::HostOptions;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One `-`-separated option of a variant's name after its loss: `uniform_pb`, `tied`,
/// `lag<N>` (`--policy_lag N`, for studies of what sampling behind the learner costs) or a
/// regression loss (`shifted_cosh`, `linex`, `half_squared`: `--loss_fn`).
fn apply_option(cfg: &mut RunConfig, option: &str) -> Result<()> {
    match option {
        "uniform_pb" => cfg.uniform_pb = true,
        "tied" => cfg.tied = true,
        _ => match (
            option.strip_prefix("lag").map(str::parse::<u64>),
            option.parse::<LossFn>(),
        ) {
            (Some(Ok(lag)), _) => cfg.policy_lag = lag,
            (_, Ok(f)) => cfg.loss_fn = f,
            _ => {
                bail!("unknown variant option `{option}` (uniform_pb, tied, lag<N> or a --loss_fn)")
            }
        },
    }
    Ok(())
}

/// A grid of runs: every environment × R0 × variant × seed, on top of `base` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub seeds: u64,
    /// `[ndim, height]` pairs.
    pub envs: Vec<(usize, usize)>,
    #[serde(rename = "R0")]
    pub r0: Vec<f32>,
    /// `LOSS[-uniform_pb][-tied]`, e.g. `TB-uniform_pb`, `SubTB-tied`.
    pub variants: Vec<String>,
    pub base: toml::Table,
    /// Settings of one variant on top of `base`, e.g. `[overrides.FM] lr = 1e-4`.
    #[serde(default)]
    pub overrides: BTreeMap<String, toml::Table>,
    /// The paper's claims that the results are checked against.
    #[serde(default = "claims::default_claims")]
    pub claims: Vec<Claim>,
}

/// One configuration of the grid (all its seeds).
#[derive(Debug, Clone)]
pub struct GridPoint {
    pub name: String,
    pub env: (usize, usize),
    pub r0: f32,
    pub variant: String,
    pub config: RunConfig,
}

impl Preset {
    /// Reads a preset: a path, or a name under `configs/presets/`.
    pub fn load(name_or_path: &str) -> Result<Self> {
        let path = if Path::new(name_or_path).exists() {
            PathBuf::from(name_or_path)
        } else {
            Path::new("configs/presets").join(format!("{name_or_path}.toml"))
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading preset {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing preset {}", path.display()))
    }

    /// `[base]` with the variant's overrides, as a run configuration.
    fn variant_base(&self, variant: &str) -> Result<RunConfig> {
        let mut table = self.base.clone();
        if let Some(extra) = self.overrides.get(variant) {
            table.extend(extra.clone());
        }
        table.try_into().with_context(|| {
            format!(
                "the preset's [base] with [overrides.{variant}] is not a valid run configuration"
            )
        })
    }

    /// Every grid point, with its trajectory budget scaled by `budget`.
    pub fn points(&self, budget: f64) -> Result<Vec<GridPoint>> {
        if let Some(name) = self.overrides.keys().find(|k| !self.variants.contains(k)) {
            bail!("[overrides.{name}] names no variant of the preset");
        }
        let mut out = vec![];
        for &(ndim, height) in &self.envs {
            for &r0 in &self.r0 {
                for variant in &self.variants {
                    let base = self.variant_base(variant)?;
                    let mut parts = variant.split('-');
                    let loss: Loss = parts
                        .next()
                        .unwrap_or("")
                        .parse()
                        .map_err(anyhow::Error::msg)?;
                    let mut cfg = RunConfig {
                        ndim,
                        height,
                        r0: Some(r0),
                        loss,
                        ..base.clone()
                    };
                    for flag in parts {
                        apply_option(&mut cfg, flag)
                            .with_context(|| format!("in the variant `{variant}`"))?;
                    }
                    cfg.n_trajectories = ((base.n_trajectories as f64 * budget).round() as u64)
                        .max(cfg.batch_size as u64);
                    // About 50 validations per run, whatever the budget.
                    cfg.validation_interval = (cfg.n_iterations() / 50).max(1);
                    cfg.validate()?;
                    let name = format!("{ndim}d-h{height}-r0_{r0}-{variant}");
                    out.push(GridPoint {
                        name,
                        env: (ndim, height),
                        r0,
                        variant: variant.clone(),
                        config: cfg,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// The final validation and the curve of one finished run.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub validations: Vec<Validation>,
    pub wall_s: f64,
}

/// A finished run's results: none while its metrics file has no summary line. Lines that do not
/// parse (a damaged file) are skipped with a warning, not taken as an unfinished run.
fn read_run(dir: &Path) -> Option<RunResult> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).ok()?;
    let mut validations = vec![];
    let mut wall_s = None;
    let mut skipped = 0;
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            skipped += 1;
            continue;
        };
        if let Some(x) = v.get("validation") {
            match serde_json::from_value(x.clone()) {
                Ok(x) => validations.push(x),
                Err(_) => skipped += 1,
            }
        }
        // A run stopped by a signal writes a summary too; it is not finished.
        if let Some(s) = v.get("summary").filter(|s| s["stopped"] != true) {
            wall_s = s["wall_s"].as_f64();
        }
    }
    let wall_s = wall_s?;
    if skipped > 0 {
        tracing::warn!(
            "{}: skipped {skipped} damaged metrics line(s)",
            dir.display()
        );
    }
    Some(RunResult {
        validations,
        wall_s,
    })
}

/// Refuses a results folder whose finished run was made with other settings (another budget,
/// another preset): its results would be reported as this grid's.
fn check_same_settings(cfg: &RunConfig) -> Result<()> {
    let path = cfg.run_dir.join("config.toml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(()); // an older run folder without its configuration
    };
    // Through RunConfig, so that settings added since the run was made read as their defaults.
    let saved: RunConfig =
        toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    let (saved, now) = (
        saved.with_reward_in_effect().to_table()?,
        cfg.with_reward_in_effect().to_table()?,
    );
    let show = |v: Option<&toml::Value>| v.map_or("nothing".into(), |v| v.to_string());
    for key in saved.keys().chain(now.keys()) {
        // Where and how often a run checkpoints does not change its results.
        let free = [
            "run_dir",
            "threads",
            "checkpoint_dir",
            "checkpoint_every",
            "resume",
        ];
        if free.contains(&key.as_str()) || saved.get(key) == now.get(key) {
            continue;
        }
        bail!(
            "{} holds a finished run with {key} = {}, but this grid has {key} = {}: \
             use another --out",
            cfg.run_dir.display(),
            show(saved.get(key)),
            show(now.get(key))
        );
    }
    Ok(())
}

/// Which runs of a grid an invocation does, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// Seeds per configuration (default: the preset's).
    pub seeds: Option<u64>,
    /// Fraction of each run's trajectory budget.
    pub budget: f64,
    /// Runs at a time.
    pub jobs: usize,
    /// Only runs whose name (`4d-h12-r0_0.001-SubTB-tied/seed2`) contains one of these.
    pub only: Vec<String>,
    /// Only the runs `i`, `i + n`, `i + 2n`, … of the grid, as `(i, n)`.
    pub shard: Option<(usize, usize)>,
}

/// Checkpoints per run: a run interrupted loses at most a tenth of itself.
const CHECKPOINTS_PER_RUN: u64 = 10;

impl Campaign {
    fn check(&self) -> Result<()> {
        let bad = |flag, rule, value: String| ConfigError::OutOfRange { flag, rule, value };
        if !(self.budget > 0.0 && self.budget.is_finite()) {
            let value = self.budget.to_string();
            return Err(bad("--budget", "a finite fraction > 0", value).into());
        }
        if !(1..=256).contains(&self.jobs) {
            return Err(bad("--jobs", "between 1 and 256", self.jobs.to_string()).into());
        }
        if let Some((i, n)) = self.shard {
            if n == 0 || i >= n {
                return Err(bad("--shard", "I/N with I < N", format!("{i}/{n}")).into());
            }
        }
        Ok(())
    }

    /// Whether the `index`-th run of the grid, named `name`, is this invocation's.
    fn selects(&self, index: usize, name: &str) -> bool {
        let in_shard = self.shard.is_none_or(|(i, n)| index % n == i);
        let named = self.only.is_empty() || self.only.iter().any(|o| name.contains(o.as_str()));
        in_shard && named
    }
}

/// Parses `--shard I/N`.
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s.split_once('/').ok_or("expected I/N, e.g. 0/3")?;
    let num = |x: &str| x.trim().parse::<usize>().map_err(|e| format!("{x}: {e}"));
    Ok((num(i)?, num(n)?))
}

/// A run of the grid as it is trained: checkpointing into its own folder and resuming there.
fn run_config(point: &GridPoint, seed: u64, out: &Path) -> RunConfig {
    let run_dir = out.join(&point.name).join(format!("seed{seed}"));
    RunConfig {
        seed,
        checkpoint_dir: Some(run_dir.join("checkpoint")),
        checkpoint_every: (point.config.n_iterations() / CHECKPOINTS_PER_RUN).max(1),
        resume: true,
        run_dir,
        ..point.config.clone()
    }
}

/// Runs the selected runs of the grid (skipping finished ones, resuming interrupted ones) with
/// `jobs` at a time until done or `stop` is set, then writes the results of every finished run.
pub fn run(preset_name: &str, campaign: &Campaign, out: &Path, stop: &Shutdown) -> Result<PathBuf> {
    campaign.check()?;
    let preset = Preset::load(preset_name)?;
    let seeds = campaign.seeds.unwrap_or(preset.seeds).max(1);
    let points = preset.points(campaign.budget)?;
    let mut todo = vec![];
    let runs = points
        .iter()
        .flat_map(|p| (0..seeds).map(move |seed| (p, seed)));
    for (index, (p, seed)) in runs.enumerate() {
        let cfg = run_config(p, seed, out);
        if read_run(&cfg.run_dir).is_some() {
            check_same_settings(&cfg)?;
        } else if campaign.selects(index, &format!("{}/seed{seed}", p.name)) {
            todo.push((p.name.clone(), cfg.settings(Mode::Train)?));
        }
    }
    tracing::info!(
        "{}: {} configurations × {seeds} seeds, {} runs to do here",
        preset_name,
        points.len(),
        todo.len()
    );
    // Popped from the back: the grid's order.
    todo.reverse();
    let queue = Mutex::new(todo);
    let failures = Mutex::new(vec![]);
    std::thread::scope(|scope| {
        for _ in 0..campaign.jobs {
            scope.spawn(|| loop {
                if stop.is_set() {
                    break;
                }
                let Some((name, cfg)) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop()
                else {
                    break;
                };
                if let Err(e) = run_one(&name, &cfg, stop) {
                    failures
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(format!("{name} seed {}: {e:#}", cfg.seed));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_default();
    if !failures.is_empty() {
        bail!("{} run(s) failed: {}", failures.len(), failures.join("; "));
    }
    if stop.is_set() {
        tracing::warn!("stopped: the same command resumes the campaign where it stopped");
    }
    write_results(preset_name, &preset.claims, &points, out)
}

/// Every finished run of a configuration in the results folder, by seed, whatever `--seeds` this
/// invocation had: a second invocation that adds seeds to part of a grid (`--seeds 3 --only
/// 2d-`) must not shrink the report of the rest. Each is checked against the settings its seed
/// would be run with, so a run of another grid is refused rather than averaged in.
fn finished_seeds(point: &GridPoint, out: &Path) -> Result<Vec<RunResult>> {
    let mut seeds: Vec<u64> = match std::fs::read_dir(out.join(&point.name)) {
        Ok(entries) => entries
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()?
                    .strip_prefix("seed")?
                    .parse()
                    .ok()
            })
            .collect(),
        Err(_) => vec![],
    };
    seeds.sort_unstable();
    let mut runs = vec![];
    for seed in seeds {
        let cfg = run_config(point, seed, out);
        if let Some(run) = read_run(&cfg.run_dir) {
            check_same_settings(&cfg)?;
            runs.push(run);
        }
    }
    Ok(runs)
}

/// One run, resumed from its checkpoint if it has one; a finished run's checkpoint is deleted
/// (its results are in its metrics).
fn run_one(name: &str, cfg: &Settings, stop: &Shutdown) -> Result<()> {
    if read_run(&cfg.run_dir).is_some() {
        return Ok(()); // finished meanwhile by another invocation on the same folder
    }
    tracing::info!("running {name} seed {}", cfg.seed);
    let opts = HostOptions {
        progress: false,
        write_files: true,
        observer: None,
    };
    let report = train_until(cfg, opts, stop)?;
    if !report.summary.stopped {
        if let Some(dir) = &cfg.checkpoint_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    Ok(())
}

/// Writes `results.md` and the plots for a finished grid. Long on purpose: it writes the
/// sections of one document top to bottom, in the order a reader sees them.
fn write_results(
    preset: &str,
    claims: &[Claim],
    points: &[GridPoint],
    out: &Path,
) -> Result<PathBuf> {
    let mut md = format!("# {preset}: results\n\nMean ± standard deviation of the final validation over the finished seeds of each configuration (their number in the seeds column).\n\n");
    md += "| configuration | seeds | exact L1 | paper L1 (mean) | sampled L1 | \\|log Z − log Z*\\| | \\|mean log Z − log Z*\\| | modes found | trajectories to exact L1 ≤ 0.5 / 0.2 / 0.1 | wall s |\n|---|---|---|---|---|---|---|---|---|---|\n";
    let mut configs: Vec<ConfigRuns> = vec![];
    for p in points {
        let runs = finished_seeds(p, out)?;
        let last: Vec<&Validation> = runs.iter().filter_map(|r| r.validations.last()).collect();
        let col = |f: fn(&Validation) -> Option<f64>| -> Vec<f64> {
            last.iter()
                .filter_map(|v| f(v))
                .filter(|x| x.is_finite())
                .collect()
        };
        let reach = |level: f64| -> String {
            let t: Vec<f64> = runs
                .iter()
                .filter_map(|r| {
                    r.validations
                        .iter()
                        .find(|v| v.exact_l1.is_some_and(|l| l <= level))
                        .map(|v| v.trajectories as f64)
                })
                .collect();
            if t.len() < runs.len() || t.is_empty() {
                "–".into()
            } else {
                format!("{:.0}", mean_sd(&t).0)
            }
        };
        let modes = last.first().map_or("–".into(), |v| {
            let found: Vec<f64> = last.iter().map(|v| v.modes_found as f64).collect();
            format!(
                "{:.1} / {}",
                mean_sd(&found).0,
                v.n_modes.map_or("?".into(), |n| n.to_string())
            )
        });
        let wall: Vec<f64> = runs.iter().map(|r| r.wall_s).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} |",
            p.name,
            runs.len(),
            cell(&col(|v| v.exact_l1)),
            cell(&col(|v| v.paper_l1)),
            cell(&col(|v| v.sampled_l1)),
            cell(&col(|v| v.log_z_error)),
            cell(&col(|v| v.log_z_mean_error)),
            modes,
            reach(0.5),
            reach(0.2),
            reach(0.1),
            match wall.is_empty() {
                true => "–".to_string(),
                false => format!("{:.0}", mean_sd(&wall).0),
            },
        );
        configs.push(ConfigRuns {
            env: p.env,
            r0: p.r0,
            variant: p.variant.clone(),
            runs: runs.into_iter().map(|r| r.validations).collect(),
        });
    }
    md += &claims::report(claims, &configs);
    md += "\nPlots: `l1-<D>d-h<H>-r0_<R0>.png` (exact L1 against states visited per variant: the mean over seeds, in a band from the lowest to the highest seed), `l1-wall-<D>d-h<H>-r0_<R0>.png` (the same against wall-clock seconds) and `modes-<D>d-h<H>-r0_<R0>.png`; 2-D runs also have `heatmap.png` in their run folders.\n";
    let table = out.join("results.md");
    std::fs::create_dir_all(out)?;
    std::fs::write(&table, md)?;
    write_plots(out, &configs)?;
    Ok(table)
}

/// For each environment and R0, `l1-….png` (against states visited), `l1-wall-….png` (against
/// wall-clock seconds) and `modes-….png`: one line per variant, the mean over seeds, in a band
/// from the lowest to the highest seed.
fn write_plots(out: &Path, configs: &[ConfigRuns]) -> Result<()> {
    let mut groups: BTreeMap<((usize, usize), String), Vec<&ConfigRuns>> = BTreeMap::new();
    for c in configs.iter().filter(|c| !c.runs.is_empty()) {
        groups
            .entry((c.env, format!("{}", c.r0)))
            .or_default()
            .push(c);
    }
    type Pick = fn(&Validation) -> Option<f64>;
    type Along = fn(&Validation) -> f64;
    let visited: (&str, Along) = ("states visited", |v| v.states_visited as f64);
    let wall: (&str, Along) = ("wall-clock s", |v| v.wall_s);
    type Plot<'a> = (&'a str, &'a str, &'a str, Pick, (&'a str, Along));
    let plots: [Plot; 3] = [
        ("l1", "exact L1", "exact L1 (sum)", |v| v.exact_l1, visited),
        (
            "l1-wall",
            "exact L1",
            "exact L1 (sum)",
            |v| v.exact_l1,
            wall,
        ),
        (
            "modes",
            "modes found",
            "modes found",
            |v| Some(v.modes_found as f64),
            visited,
        ),
    ];
    for (((d, h), r0), group) in groups {
        for (file, what, y_label, pick, (x_label, along)) in plots {
            let series: Vec<Series> = group
                .iter()
                .map(|c| Series::spread(&c.variant, &spread(&c.runs, along, pick)))
                .collect();
            log_bands(
                &out.join(format!("{file}-{d}d-h{h}-r0_{r0}.png")),
                &format!("{d}-D H={h}, R0={r0}: {what} (mean, band: min-max over seeds)"),
                x_label,
                y_label,
                &series,
            )?;
        }
    }
    Ok(())
}

/// `(x, mean, min, max)` over seeds of a validation value, `x` the mean of `along` (states
/// visited or wall-clock seconds; validations align across the seeds of a grid).
fn spread(
    runs: &[Vec<Validation>],
    along: fn(&Validation) -> f64,
    pick: fn(&Validation) -> Option<f64>,
) -> Vec<[f64; 4]> {
    let n = runs.iter().map(|r| r.len()).min().unwrap_or(0);
    (0..n)
        .filter_map(|i| {
            let x = runs.iter().map(|r| along(&r[i])).sum::<f64>() / runs.len() as f64;
            let ys: Vec<f64> = runs.iter().filter_map(|r| pick(&r[i])).collect();
            let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (!ys.is_empty()).then(|| [x, mean_sd(&ys).0, lo, hi])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_run_of_other_settings_is_refused() {
        let dir = std::env::temp_dir().join(format!("gfn-same-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = RunConfig {
            run_dir: dir.clone(),
            ..RunConfig::default()
        };
        // No config.toml: an older folder, accepted.
        check_same_settings(&cfg).unwrap();
        std::fs::write(dir.join("config.toml"), cfg.to_toml().unwrap()).unwrap();
        check_same_settings(&cfg).unwrap();
        // A setting added later (absent from the file) reads as its default.
        let full = cfg.to_toml().unwrap();
        let old = full.replace("activation = \"relu\"\n", "");
        assert!(old.len() < full.len(), "the activation line was removed");
        std::fs::write(dir.join("config.toml"), old).unwrap();
        check_same_settings(&cfg).unwrap();
        let bigger = RunConfig {
            n_trajectories: cfg.n_trajectories * 2,
            ..cfg.clone()
        };
        let err = check_same_settings(&bigger).unwrap_err().to_string();
        assert!(
            err.contains("n_trajectories = 1000000") && err.contains("2000000"),
            "{err}"
        );
        // A run saved when R1 was a plain number matches a grid that leaves R1 to the reward's
        // default of the same value, and no other.
        for (saved_r1, same) in [(0.5, true), (0.7, false)] {
            let saved = RunConfig {
                r1: Some(saved_r1),
                ..cfg.clone()
            };
            std::fs::write(dir.join("config.toml"), saved.to_toml().unwrap()).unwrap();
            assert_eq!(
                check_same_settings(&cfg).is_ok(),
                same,
                "saved R1 {saved_r1}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_metrics_line_does_not_unfinish_a_run() {
        let dir = std::env::temp_dir().join(format!("gfn-damaged-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let validation = serde_json::json!({ "validation": Validation::default() }).to_string();
        let lines = format!("{validation}\n{{\"valid\n{{\"summary\":{{\"wall_s\":2.5}}}}\n");
        std::fs::write(dir.join("metrics.jsonl"), lines).unwrap();
        let run = read_run(&dir).expect("a summary line makes the run finished");
        assert_eq!((run.validations.len(), run.wall_s), (1, 2.5));
        std::fs::write(dir.join("metrics.jsonl"), validation).unwrap();
        assert!(read_run(&dir).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_report_takes_every_finished_seed_of_a_configuration() {
        let out = std::env::temp_dir().join(format!("gfn-seeds-{}", std::process::id()));
        let point = GridPoint {
            name: "2d-h8-r0_0.1-TB".into(),
            env: (2, 8),
            r0: 0.1,
            variant: "TB".into(),
            config: RunConfig::default(),
        };
        let write = |seed: u64, cfg: &RunConfig, finished: bool| {
            let dir = out.join(&point.name).join(format!("seed{seed}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("config.toml"), cfg.to_toml().unwrap()).unwrap();
            let summary = if finished {
                "{\"summary\":{\"wall_s\":1.0}}"
            } else {
                ""
            };
            std::fs::write(dir.join("metrics.jsonl"), summary).unwrap();
        };
        // Seeds 0 and 4 finished, 1 still running: seed 4 counts though a `--seeds 3` grid
        // would not run it.
        for (seed, finished) in [(0, true), (1, false), (4, true)] {
            write(seed, &run_config(&point, seed, &out), finished);
        }
        std::fs::create_dir_all(out.join(&point.name).join("seedling")).unwrap();
        assert_eq!(finished_seeds(&point, &out).unwrap().len(), 2);
        // A finished run of another budget is refused, not averaged in.
        let other = RunConfig {
            n_trajectories: 7,
            ..run_config(&point, 5, &out)
        };
        write(5, &other, true);
        assert!(finished_seeds(&point, &out).is_err());
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn a_campaign_splits_into_shards_and_names() {
        let c = |only: &[&str], shard: Option<(usize, usize)>| Campaign {
            seeds: None,
            budget: 1.0,
            jobs: 1,
            only: only.iter().map(|s| s.to_string()).collect(),
            shard,
        };
        let names = [
            "4d-h12-r0_0.001-TB-tied/seed0",
            "2d-h12-r0_0.001-TB-tied/seed1",
        ];
        let picked = |c: &Campaign| -> Vec<usize> {
            (0..6)
                .filter(|&i| c.selects(i, names[i % 2]))
                .collect::<Vec<_>>()
        };
        assert_eq!(picked(&c(&[], None)), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(picked(&c(&[], Some((1, 3)))), vec![1, 4]);
        assert_eq!(picked(&c(&["4d-"], None)), vec![0, 2, 4]);
        assert!(picked(&c(&["2d-", "nothing"], Some((0, 2)))).is_empty());
        assert_eq!(parse_shard("2/5"), Ok((2, 5)));
        assert!(parse_shard("2").is_err() && parse_shard("a/5").is_err());
        assert!(c(&[], Some((3, 3))).check().is_err());
        assert!(c(&[], Some((0, 0))).check().is_err());
        assert!(c(&[], Some((2, 3))).check().is_ok());
    }

    #[test]
    fn every_shipped_preset_is_a_valid_grid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/presets");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let preset = Preset::load(path.to_str().unwrap()).unwrap();
            let points = preset.points(1.0).unwrap();
            assert!(!points.is_empty(), "{}", path.display());
            n += 1;
        }
        assert!(n >= 3, "presets found: {n}");
    }

    #[test]
    fn overrides_apply_to_their_variant_only() {
        let text = r#"
            seeds = 1
            envs = [[2, 8]]
            R0 = [0.1]
            variants = ["TB", "FM"]
            [base]
            n_trajectories = 3200
            activation = "leaky_relu"
            [overrides.FM]
            lr = 1e-4
        "#;
        let preset: Preset = toml::from_str(text).unwrap();
        let points = preset.points(1.0).unwrap();
        let lr = |name: &str| points.iter().find(|p| p.variant == name).unwrap().config.lr;
        assert_eq!((lr("TB"), lr("FM")), (1e-3, 1e-4));
        assert!(points
            .iter()
            .all(|p| p.config.activation == gfn_common::Activation::LeakyRelu));

        let typo: Preset = toml::from_str(&text.replace("overrides.FM", "overrides.DB")).unwrap();
        let err = typo.points(1.0).unwrap_err().to_string();
        assert!(err.contains("[overrides.DB] names no variant"), "{err}");
        let bad: Preset = toml::from_str(&text.replace("lr = 1e-4", "lr = \"fast\"")).unwrap();
        let err = format!("{:#}", bad.points(1.0).unwrap_err());
        assert!(err.contains("[overrides.FM]"), "{err}");
    }

    #[test]
    fn variant_names_set_their_options() {
        let preset = |variants: &str| -> Preset {
            toml::from_str(&format!(
                "seeds = 1\nenvs = [[2, 8]]\nR0 = [0.1]\nvariants = {variants}\n[base]\n"
            ))
            .unwrap()
        };
        let points = preset(r#"["TB-lag4-linex", "DB-tied-uniform_pb-lag0"]"#)
            .points(1.0)
            .unwrap();
        let (tb, db) = (&points[0].config, &points[1].config);
        assert_eq!((tb.loss, tb.policy_lag, tb.tied), (Loss::Tb, 4, false));
        assert_eq!((tb.loss_fn, db.loss_fn), (LossFn::Linex, LossFn::Squared));
        assert_eq!((db.loss, db.policy_lag), (Loss::Db, 0));
        assert!(db.tied && db.uniform_pb);
        assert_eq!(points[0].name, "2d-h8-r0_0.1-TB-lag4-linex");
        for bad in [r#"["TB-lagx"]"#, r#"["TB-lag"]"#, r#"["TB-fast"]"#] {
            let err = format!("{:#}", preset(bad).points(1.0).unwrap_err());
            assert!(err.contains("unknown variant option"), "{bad}: {err}");
        }
        let err = format!("{:#}", preset(r#"["TB-lag1000"]"#).points(1.0).unwrap_err());
        assert!(err.contains("--policy_lag"), "{err}");
    }
}
