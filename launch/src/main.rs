//! `gfn`: train GFlowNets on HyperGrid. This binary parses flags, refuses those that mean
//! nothing in the chosen mode ([`modes`]), and hands the run to `gfn-pipeline`.

use anyhow::Result;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use gfn_common::config::{refuse_role_flags, ConfigError, Mode, Settings};
use gfn_common::{Device, RunConfig};
use gfn_experiments::{bench, bench_buffer, bench_pipeline, reproduce};
use gfn_pipeline::export::{self, ExportError};
use gfn_pipeline::sample::{self, SampleError, SampleRequest};
use gfn_pipeline::{replay, roles, signals, train, HostOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gfn",
    version,
    about = "A distributed GFlowNet trainer for HyperGrid"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train in one process: sampler, buffer and learner threads.
    Train(TrainArgs),
    /// Train a learner offline from a recorded dump (`--record`), with no samplers.
    Replay(ReplayArgs),
    /// Run a paper's grid of configurations (a preset) over seeds; write a table and plots.
    Reproduce(ReproduceArgs),
    /// Look into recorded dumps.
    #[command(subcommand)]
    Dump(DumpCommand),
    /// Measure training throughput on the README's benchmark configurations.
    Bench(BenchArgs),
    /// Measure the multi-process pipeline on loopback with 1, 2, 4 samplers.
    BenchPipeline(PipelineArgs),
    /// Measure one buffer's message rate with its samplers and learner taken out of the loop.
    BenchBuffer(BufferBenchArgs),
    /// Run a sampler process: weights in over ZeroMQ, trajectories out to a buffer.
    Sampler(RoleArgs),
    /// Run a buffer process between samplers and learners.
    Buffer(RoleArgs),
    /// Run a learner replica (under `mpirun` for several, with the `mpi` feature).
    Learner(RoleArgs),
    /// Write a checkpoint's policy (PF, and PB, logF, logZ where the run has them) as a
    /// safetensors file (docs/export.md; `python/gfn_policy.py` loads it).
    Export {
        /// The run's `--checkpoint_dir`.
        #[arg(long)]
        from: PathBuf,
        /// The safetensors file to write (replaced whole, or left untouched on failure).
        #[arg(long)]
        out: PathBuf,
    },
    /// Draw terminal states from a checkpoint's trained forward policy into a CSV or .npy file,
    /// with their log reward and exact log P_T (docs/sampling.md).
    Sample(SampleArgs),
}

#[derive(Args)]
#[command(rename_all = "snake_case")]
struct SampleArgs {
    /// The run's `--checkpoint_dir` (a finished run's checkpoint holds its final parameters).
    #[arg(long)]
    from: PathBuf,
    /// Terminal states to draw.
    #[arg(long)]
    n: u64,
    /// The file to write, by extension: `.csv` (header x0,…,x{D-1},log_reward,log_pt) or `.npy`
    /// (float64 [n, D+2], the same columns). Replaced whole, or left untouched on failure.
    #[arg(long)]
    out: PathBuf,
    /// Seed of the draws: a seed gives the same file on every run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Softmax temperature of the policy (1: the trained policy).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Share of the uniform policy mixed in (0: the trained policy).
    #[arg(long, default_value_t = 0.0)]
    epsilon: f32,
    /// Where the rollouts run.
    #[arg(long, default_value_t = Device::Cpu)]
    device: Device,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
struct ReplayArgs {
    /// The recording to train on.
    #[arg(long)]
    from: PathBuf,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Args)]
#[command(rename_all = "snake_case")]
struct ReproduceArgs {
    /// Preset: a name under configs/presets (tb-paper, tb-paper-original, tb-paper-cosine,
    /// subtb-paper) or a TOML file.
    preset: String,
    /// Seeds per configuration (default: the preset's).
    #[arg(long)]
    seeds: Option<u64>,
    /// Fraction of each run's trajectory budget (1 = the paper's).
    #[arg(long, default_value_t = 1.0)]
    budget: f64,
    /// Runs at a time (1 to 256).
    #[arg(long, default_value_t = 1,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256))]
    jobs: usize,
    /// Results folder (default: results/<preset>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only the runs whose name (e.g. `4d-h12-r0_0.001-SubTB-tied/seed2`) contains one of
    /// these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Only every N-th run of the grid, starting at run I (`I/N`): to split a campaign across
    /// invocations or jobs that share the results folder.
    #[arg(long, value_parser = reproduce::parse_shard)]
    shard: Option<(usize, usize)>,
}

#[derive(Subcommand)]
enum DumpCommand {
    /// Print a recording's header, frame and trajectory counts, version range and damage.
    Inspect {
        /// The recording's folder.
        dir: PathBuf,
    },
}

#[derive(Args)]
#[command(rename_all = "snake_case")]
struct BufferBenchArgs {
    /// Trajectories per batch, one measurement each.
    #[arg(long, value_delimiter = ',', default_value = "16,64,256",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096))]
    batch_size: Vec<usize>,
    /// Batches through the buffer per measurement.
    #[arg(long, default_value_t = 100_000,
          value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..=10_000_000))]
    batches: u64,
    /// Also write the rows to this file as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
#[command(rename_all = "snake_case")]
struct PipelineArgs {
    /// Sampler counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    samplers: Vec<usize>,
    /// Learner replicas (more than one needs mpirun and the `mpi` feature).
    #[arg(long, default_value_t = 1)]
    learners: usize,
    /// Learner steps per measurement (4-D, TB).
    #[arg(long, default_value_t = 2000)]
    steps: u64,
    /// Grid height.
    #[arg(long, default_value_t = 8)]
    height: usize,
    /// Trajectories per sampler batch and per learner step.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Where the learners compute.
    #[arg(long, default_value_t = Device::Cpu)]
    learner_device: Device,
    /// Compute threads of each learner on the CPU.
    #[arg(long, default_value_t = 1,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    learner_threads: usize,
    /// Where the samplers roll out.
    #[arg(long, default_value_t = Device::Cpu)]
    sampler_device: Device,
    /// Samplers per sampler process (default: all in one process, as launch/local.sh and
    /// launch/slurm.sh run one sampler process per node, which shares one weight subscription;
    /// 1 measures a process per sampler).
    #[arg(long,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    samplers_per_process: Option<usize>,
    /// Also write the rows to this file as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
struct RoleArgs {
    /// TOML file with run settings; flags given on the command line override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Buffer only: start out holding this recording (a dump), served to live learners.
    #[arg(long)]
    load: Option<PathBuf>,
    /// Sampler only: samplers in this process (ids --id to --id + N - 1), sharing one weight
    /// subscription: with one sampler process per node, the learner sends each weight version
    /// once per node.
    #[arg(long, default_value_t = 1)]
    samplers: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    net: gfn_net::NetArgs,
    #[command(flatten)]
    run: RunConfig,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
struct TrainArgs {
    /// TOML file with run settings; flags given on the command line override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    run: RunConfig,
}

#[derive(Args)]
#[command(rename_all = "snake_case")]
struct BenchArgs {
    /// Learner steps of the batch-16 configurations.
    #[arg(long, default_value_t = 2000)]
    steps_small: u64,
    /// Learner steps of the batch-512 configurations.
    #[arg(long, default_value_t = 50)]
    steps_large: u64,
    /// Learner steps of the 10-D H=128 configuration.
    #[arg(long, default_value_t = 200)]
    steps_huge: u64,
    /// Threads of the CPU kernels.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Where the sampler and learner compute.
    #[arg(long, default_value_t = Device::Cpu)]
    device: Device,
    /// Also write the table as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The settings of a run in `mode`: the config file (if any), overridden by flags given
/// explicitly, validated once (flags the mode cannot honour are refused); where the mode
/// computes, its `--device` is checked before anything runs.
fn mode_config(
    mode: Mode,
    config: &Option<PathBuf>,
    run: &RunConfig,
    matches: &ArgMatches,
) -> Result<Settings, ConfigError> {
    let cfg = merged_config(config, run, matches)?.settings(mode)?;
    if mode != Mode::Buffer {
        gfn_nn::backend::check_device(cfg.device)?;
    }
    Ok(cfg)
}

/// The config file (if any), overridden by flags given explicitly.
fn merged_config(
    config: &Option<PathBuf>,
    run: &RunConfig,
    matches: &ArgMatches,
) -> Result<RunConfig, ConfigError> {
    let Some(path) = config else {
        return Ok(run.clone());
    };
    let file = RunConfig::from_toml_file(path)?;
    let (mut merged, cli) = (file.to_table()?, run.to_table()?);
    for (key, value) in cli {
        if matches.value_source(&key) == Some(ValueSource::CommandLine) {
            merged.insert(key, value);
        }
    }
    // Flags left at their defaults may be absent from the table (None): keep the file's.
    merged
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::File {
            path: path.clone(),
            reason: e.message().to_string(),
        })
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            eprintln!("{}", text.lines().next().unwrap_or("invalid arguments"));
            return ExitCode::from(2);
        }
    };
    init_logging();
    match try_main(&matches) {
        // Stopped by SIGINT or SIGTERM, cleanly: 130 or 143, as shells expect.
        Ok(()) => signals::exit_code().map_or(ExitCode::SUCCESS, ExitCode::from),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(if is_bad_input(&e) { 2 } else { 1 })
        }
    }
}

/// Whether `e` is the user's input at fault (exit code 2: a refused flag or config, a damaged
/// or foreign dump or checkpoint, a missing token) rather than the run or the machine (1).
fn is_bad_input(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ConfigError>().is_some()
        || e.downcast_ref::<gfn_buffer::dump::DumpError>().is_some()
        || e.downcast_ref::<gfn_buffer::setup::BufferSetupError>()
            .is_some()
        || e.downcast_ref::<gfn_net::TokenError>().is_some()
        || e.downcast_ref::<gfn_host::Error>()
            .is_some_and(gfn_host::Error::is_bad_input)
        || e.downcast_ref::<ExportError>()
            .is_some_and(ExportError::is_bad_input)
        || e.downcast_ref::<SampleError>()
            .is_some_and(SampleError::is_bad_input)
}

fn try_main(matches: &ArgMatches) -> Result<()> {
    let cli = Cli::from_arg_matches(matches)?;
    let (name, sub) = matches.subcommand().unwrap_or(("", matches));
    match cli.command {
        Command::Train(args) => train_command(args, sub),
        Command::Sampler(args) | Command::Buffer(args) | Command::Learner(args) => {
            role_command(name, args, sub)
        }
        Command::Replay(args) => replay_command(args, sub),
        Command::Reproduce(args) => reproduce_command(args),
        Command::Dump(DumpCommand::Inspect { dir }) => {
            print!("{}", replay::inspect(&dir)?);
            Ok(())
        }
        Command::BenchPipeline(args) => bench_pipeline_command(args),
        Command::BenchBuffer(args) => {
            let rows = bench_buffer::run(&args.batch_size, args.batches)?;
            println!("{}", bench_buffer::markdown(&rows));
            if let Some(path) = args.json {
                std::fs::write(path, serde_json::to_string_pretty(&rows)?)?;
            }
            Ok(())
        }
        Command::Export { from, out } => export_command(&from, &out),
        Command::Sample(args) => sample_command(args),
        Command::Bench(args) => bench_command(args),
    }
}

fn train_command(args: TrainArgs, sub: &ArgMatches) -> Result<()> {
    let cfg = mode_config(Mode::Train, &args.config, &args.run, sub)?;
    tracing::info!(
        "training {} on {}-D H={} R0={} for {} trajectories (batch {}), run folder {}",
        cfg.loss,
        cfg.ndim,
        cfg.height,
        cfg.env().r0,
        cfg.n_trajectories,
        cfg.batch_size,
        cfg.run_dir.display()
    );
    let stop = signals::install();
    let report = train::train_until(&cfg, host_options(args.quiet), &stop)?;
    println!("{}", serde_json::to_string_pretty(&report.summary)?);
    Ok(())
}

/// `gfn sampler`, `gfn buffer` and `gfn learner` (`name`): one role in this process.
fn role_command(name: &str, args: RoleArgs, sub: &ArgMatches) -> Result<()> {
    let mode = match name {
        "sampler" => Mode::Sampler,
        "buffer" => Mode::Buffer,
        _ => Mode::Learner,
    };
    let cfg = mode_config(mode, &args.config, &args.run, sub)?;
    refuse_role_flags(mode, args.load.is_some(), args.samplers)?;
    let stop = signals::install();
    match mode {
        Mode::Sampler => {
            roles::sampler(&cfg, &args.net, args.samplers, &stop)?;
        }
        Mode::Buffer => {
            roles::buffer(&cfg, &args.net, args.load.as_deref(), &stop)?;
        }
        _ => {
            let opts = host_options(args.quiet);
            if let Some(report) = roles::learner(&cfg, &args.net, opts, &stop)? {
                println!("{}", serde_json::to_string_pretty(&report.summary)?);
            }
        }
    }
    Ok(())
}

fn replay_command(args: ReplayArgs, sub: &ArgMatches) -> Result<()> {
    let cfg = mode_config(Mode::Replay, &args.train.config, &args.train.run, sub)?;
    let stop = signals::install();
    let opts = host_options(args.train.quiet);
    let report = replay::replay(&cfg, &args.from, opts, &stop)?;
    println!("{}", serde_json::to_string_pretty(&report.summary)?);
    Ok(())
}

fn reproduce_command(args: ReproduceArgs) -> Result<()> {
    let stem = Path::new(&args.preset)
        .file_stem()
        .map_or(args.preset.clone(), |s| s.to_string_lossy().into_owned());
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("results").join(stem));
    let campaign = reproduce::Campaign {
        seeds: args.seeds,
        budget: args.budget,
        jobs: args.jobs,
        only: args.only,
        shard: args.shard,
    };
    let stop = signals::install();
    let table = reproduce::run(&args.preset, &campaign, &out, &stop)?;
    print!("{}", std::fs::read_to_string(&table)?);
    Ok(())
}

fn bench_pipeline_command(args: PipelineArgs) -> Result<()> {
    if args.learner_threads != 1 && args.learner_device != Device::Cpu {
        return Err(ConfigError::NotInMode {
            flag: "--learner_threads",
            mode: "bench-pipeline with a GPU learner",
            why: "it sets the CPU learner's kernel threads",
        }
        .into());
    }
    gfn_nn::backend::check_device(args.learner_device)?;
    gfn_nn::backend::check_device(args.sampler_device)?;
    let layout = bench_pipeline::Layout {
        height: args.height,
        batch_size: args.batch_size,
        learners: args.learners,
        learner_device: args.learner_device,
        learner_threads: args.learner_threads,
        sampler_device: args.sampler_device,
        samplers_per_process: args.samplers_per_process,
    };
    let rows = bench_pipeline::run(&args.samplers, &layout, args.steps)?;
    println!("{}", bench_pipeline::markdown(&rows));
    if let Some(path) = args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)?;
    }
    Ok(())
}

fn export_command(from: &Path, out: &Path) -> Result<()> {
    let done = export::export(from, out)?;
    tracing::info!(
        "wrote {} tensors of the checkpoint at step {} to {}",
        done.tensors.len(),
        done.step,
        out.display()
    );
    Ok(())
}

fn sample_command(args: SampleArgs) -> Result<()> {
    let request = SampleRequest {
        n: args.n,
        seed: args.seed,
        temperature: args.temperature,
        epsilon: args.epsilon,
        device: args.device,
    };
    let stop = signals::install();
    match sample::sample(&args.from, &request, &args.out, &stop)? {
        Some(summary) => println!("{}", serde_json::to_string_pretty(&summary)?),
        // Nothing was written: a script that goes on to read the file must not see success.
        None => anyhow::bail!(
            "stopped before the last draw: {} not written",
            args.out.display()
        ),
    }
    Ok(())
}

fn bench_command(args: BenchArgs) -> Result<()> {
    gfn_nn::backend::check_device(args.device)?;
    let steps = bench::BenchSteps {
        small: args.steps_small,
        large: args.steps_large,
        huge: args.steps_huge,
    };
    let rows = bench::run(steps, args.threads, args.device)?;
    println!("{}", bench::markdown(&rows));
    if let Some(path) = args.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)?;
    }
    Ok(())
}

/// Files and a progress bar (unless `--quiet`), for the commands that train.
fn host_options(quiet: bool) -> HostOptions {
    HostOptions {
        progress: !quiet,
        write_files: true,
        observer: None,
    }
}
