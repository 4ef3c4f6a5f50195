//! `gfn replay` and `gfn dump inspect`: training a learner offline from a recorded dump, with no
//! samplers, and describing a recording.

use crate::device::with_backend;
use anyhow::{Context, Result};
use gfn_buffer::dump::{Dump, DumpReport};
use gfn_buffer::recording::DumpSource;
use gfn_common::config::Settings;
use gfn_common::pipe::Shutdown;
use gfn_common::seam::Nowhere;
use gfn_common::RunConfig;
use gfn_host::session::{Finish, Session};
use gfn_host::{HostOptions, TrainReport};
use gfn_learner::LocalSync;
use gfn_nn::backend::{init_cpu_threads, role_pool};
use gfn_nn::burn::tensor::backend::AutodiffBackend;
use std::ops::RangeInclusive;
use std::path::Path;

/// Trains a fresh learner on the recording in `from` for the run's budget, stopping early once
/// `stop` is set. A recording of another environment is refused.
pub fn replay(
    cfg: &Settings,
    from: &Path,
    opts: HostOptions,
    stop: &Shutdown,
) -> Result<TrainReport> {
    with_backend!(cfg.device, |L, device| replay_on::<L>(
        cfg, from, opts, stop, device
    ))
}

fn replay_on<L: AutodiffBackend>(
    cfg: &RunConfig,
    from: &Path,
    opts: HostOptions,
    stop: &Shutdown,
    device: L::Device,
) -> Result<TrainReport> {
    let dump = Dump::read(from)?;
    dump.check_env(&cfg.env())?;
    describe(from, &dump);
    let mut source = DumpSource::new(&dump, cfg.batch_size)
        .with_context(|| format!("{}: the recording holds no trajectory", from.display()))?;
    init_cpu_threads(cfg.threads);
    let mut session = Session::<L>::open(cfg, opts, device, &mut LocalSync)?;
    session.restore_source(&mut source)?;
    let outcome = role_pool(cfg.threads)
        .install(|| session.run(&mut source, &mut Nowhere, &mut LocalSync, stop))?;
    tracing::info!("replayed {} epoch(s) of the recording", source.epochs);
    session
        .finish(outcome, Finish::default())?
        .context("rank 0 reports the run")
}

/// Logs what a recording holds, with a warning for anything lost (missing segments, frames the
/// `DONE` marker counts but the reader could not load).
pub(crate) fn describe(from: &Path, dump: &Dump) {
    let r: &DumpReport = &dump.report;
    if !r.missing_segments.is_empty() {
        tracing::warn!(
            "{}: segment(s) {} are missing; their trajectories are lost",
            from.display(),
            segment_runs(&r.missing_segments)
        );
    }
    if r.lost_frames() > 0 {
        tracing::warn!(
            "{}: {} of the {} frames recorded ({} trajectories) are lost",
            from.display(),
            r.lost_frames(),
            r.frames as u64 + r.lost_frames(),
            r.lost_trajectories()
        );
    }
    tracing::info!(
        "{}: {} frames, {} trajectories in {} segment(s){}{}{}",
        from.display(),
        r.frames,
        r.trajectories,
        r.segments,
        if r.done {
            ""
        } else {
            ", not closed (no DONE marker)"
        },
        if r.damaged.is_empty() {
            String::new()
        } else {
            format!(", {} damaged frame(s) skipped", r.damaged.len())
        },
        if r.truncated.is_empty() {
            ""
        } else {
            ", torn last frame skipped"
        },
    );
}

/// `gfn dump inspect`: the header, counts, version range and any damage, as text.
pub fn inspect(dir: &Path) -> Result<String> {
    let dump = Dump::read(dir)?;
    let (h, r) = (&dump.header, &dump.report);
    let mut s = format!("recording {}\n", dir.display());
    s += &format!("run id        {}\n", h.run_id);
    s += &format!(
        "environment   {}-D H={} reward {} R0={} R1={} R2={}\n",
        h.env.ndim, h.env.height, h.env.reward, h.env.r0, h.env.r1, h.env.r2
    );
    s += &format!(
        "format        version {}\n",
        gfn_buffer::dump::FORMAT_VERSION
    );
    s += &format!("segments      {}\n", r.segments);
    s += &format!("frames        {}\n", r.frames);
    s += &format!("trajectories  {}\n", r.trajectories);
    s += &match r.versions {
        Some((a, b)) => format!("versions      {a}..={b}\n"),
        None => "versions      -\n".into(),
    };
    s += &format!(
        "closed        {}\n",
        if r.done { "yes (DONE)" } else { "no" }
    );
    s += &format!("damaged       {}\n", r.damaged.len());
    for (path, at) in &r.damaged {
        s += &format!("  {} at byte {at}\n", path.display());
    }
    s += &match r.closed_with {
        Some(c) => format!(
            "recorded      {} frames, {} trajectories, {} segment(s); {} frame(s), {} \
             trajectories lost\n",
            c.frames,
            c.trajectories,
            c.segments,
            r.lost_frames(),
            r.lost_trajectories()
        ),
        None => "recorded      - (no readable DONE marker)\n".into(),
    };
    s += &format!("missing       {}\n", segment_runs(&r.missing_segments));
    s += &format!("torn tails    {}\n", r.truncated.len());
    for path in &r.truncated {
        s += &format!("  {}\n", path.display());
    }
    Ok(s)
}

/// Runs of segment numbers as `1, 4-7`, or `none`.
fn segment_runs(runs: &[RangeInclusive<u32>]) -> String {
    if runs.is_empty() {
        return "none".into();
    }
    let show = |r: &RangeInclusive<u32>| match r.start() == r.end() {
        true => r.start().to_string(),
        false => format!("{}-{}", r.start(), r.end()),
    };
    runs.iter().map(show).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::segment_runs;

    #[test]
    fn segment_runs_read_as_numbers_and_ranges() {
        assert_eq!(segment_runs(&[]), "none");
        assert_eq!(segment_runs(&[1..=1, 4..=7]), "1, 4-7");
    }
}
