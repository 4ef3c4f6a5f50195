//! `gfn sample`: terminal states drawn from a checkpoint's trained forward policy, written as CSV
//! or `.npy` with each state's log reward and, where the grid is enumerable, the exact log
//! probability that the sampling policy ends there (`docs/sampling.md`).
//!
//! The draws are the sampler role's own rollouts ([`gfn_sampler::Sampler`]) on any device the
//! build has, so what `gfn sample` writes is what training sampled, minus the noise of noisy
//! layers (the mean policy, as validation measures it).

use crate::device::with_backend;
use crate::saved::{self, AtomicFile, SavedError};
use gfn_common::config::{ConfigError, SamplingSection};
use gfn_common::pipe::Shutdown;
use gfn_common::target::{distances, Target};
use gfn_common::{Device, HyperGrid, Reward, TrajectoryBatch};
use gfn_nn::burn::tensor::backend::{AutodiffBackend, Backend};
use gfn_sampler::{Sampler, SamplerSpec};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Trajectories rolled out together: memory stays flat for any `--n`, and a fixed chunk (not
/// one sized to the machine) keeps a seed's file the same from machine to machine.
pub const CHUNK: usize = 4096;

/// What to draw: `n` states with the policy at temperature `temperature`, mixed with `epsilon` of
/// the uniform policy, from the random streams of `seed`, on `device`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRequest {
    pub n: u64,
    pub seed: u64,
    pub temperature: f32,
    pub epsilon: f32,
    pub device: Device,
}

impl SampleRequest {
    /// The request as the sampler's settings, validated by the same rules as training's.
    fn sampling(&self) -> Result<SamplingSection, ConfigError> {
        if self.n == 0 {
            return Err(ConfigError::OutOfRange {
                flag: "--n",
                rule: "at least 1",
                value: "0".into(),
            });
        }
        let sampling = SamplingSection {
            seed: self.seed,
            epsilon: self.epsilon,
            temperature: self.temperature,
            policy_lag: 0,
            device: self.device,
        };
        sampling.validate()?;
        Ok(sampling)
    }
}

/// The output's format, chosen by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Header `x0,…,x{D-1},log_reward,log_pt`; `log_pt` empty where the grid is not enumerable.
    Csv,
    /// One little-endian float64 array `[n, D + 2]` with the CSV's columns; `log_pt` NaN where the
    /// grid is not enumerable.
    Npy,
}

impl Format {
    /// `.csv` or `.npy` (any case); `None` for anything else.
    pub fn of(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Self::Csv),
            "npy" => Some(Self::Npy),
            _ => None,
        }
    }
}

/// Why a sample was not written. Everything but a failing device or disk is the user's input.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error(transparent)]
    Saved(#[from] SavedError),
    /// A value out of range (`--n 0`, `--temperature 0`) or a device this build cannot use.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{}: the output's extension must be .csv or .npy", .0.display())]
    Format(PathBuf),
    /// The output cannot be written. The cause is not a `source`, so `{:#}` prints it once.
    #[error("{}: cannot write the sample: {cause}", path.display())]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
}

impl SampleError {
    /// Whether the user's input is at fault (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Self::Saved(e) => e.is_bad_input(),
            Self::Config(_) | Self::Format(_) | Self::Write { .. } => true,
        }
    }
}

/// What [`sample`] wrote, printed by `gfn sample` as JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SampleSummary {
    pub out: PathBuf,
    pub format: Format,
    pub n: u64,
    /// The checkpoint's step: the version of the policy sampled.
    pub step: u64,
    pub seed: u64,
    pub temperature: f32,
    pub epsilon: f32,
    pub device: String,
    /// Rows whose state is a mode of the reward.
    pub modes: u64,
    /// Distinct terminal states among the rows (where the grid is enumerable).
    pub distinct_states: Option<u64>,
    /// `ln Z` of the reward (where the grid is enumerable).
    pub log_z_true: Option<f64>,
    /// `Σ_x |P_T(x) − R(x)/Z|` of the sampling policy, exactly: with T = 1 and ε = 0, the final
    /// `exact_l1` of the run that wrote the checkpoint.
    pub exact_l1: Option<f64>,
    pub seconds: f64,
}

/// Draws `req.n` terminal states from the checkpoint in `from` and writes them to `out`, whole
/// or not at all. `None` when `stop` was set first (nothing is written).
pub fn sample(
    from: &Path,
    req: &SampleRequest,
    out: &Path,
    stop: &Shutdown,
) -> Result<Option<SampleSummary>, SampleError> {
    let start = Instant::now();
    let sampling = req.sampling()?;
    let format = Format::of(out).ok_or_else(|| SampleError::Format(out.to_owned()))?;
    let ck = saved::read(from)?;
    let env = ck.config.env();
    let unusable = |e: ConfigError| SampleError::Saved(SavedError::unusable(from, e));
    let grid = env.grid().map_err(unusable)?;
    let reward = env.reward_fn().map_err(unusable)?;
    let spec = SamplerSpec {
        env,
        model: ck.config.model(),
        sampling,
    };
    let write_err = |cause| SampleError::Write {
        path: out.to_owned(),
        cause,
    };
    // Refused before the draw, not after it: the rename at the end would fail.
    if out.is_dir() {
        return Err(write_err(std::io::ErrorKind::IsADirectory.into()));
    }
    let mut file = AtomicFile::create(out).map_err(write_err)?;
    let rows = Rows {
        format,
        grid: &grid,
        reward: &reward,
        n: req.n,
    };
    let drawn = with_backend!(req.device, |L, dev| {
        let mut sampler =
            Sampler::<<L as AutodiffBackend>::InnerBackend>::new(spec, 0, dev).map_err(unusable)?;
        sampler
            .set_weights(ck.step, &ck.params)
            .map_err(|e| SampleError::Saved(SavedError::unusable(from, e)))?;
        sampler.noise_off();
        draw(&mut sampler, &rows, &mut file, stop)
    })
    .map_err(write_err)?;
    let Some(drawn) = drawn else {
        return Ok(None);
    };
    file.commit().map_err(write_err)?;
    let target = drawn.p_t.as_ref().and_then(|_| Target::new(&grid, &reward));
    Ok(Some(SampleSummary {
        out: out.to_owned(),
        format,
        n: req.n,
        step: ck.step,
        seed: req.seed,
        temperature: req.temperature,
        epsilon: req.epsilon,
        device: req.device.to_string(),
        modes: drawn.modes,
        distinct_states: drawn.distinct,
        log_z_true: target.as_ref().map(|t| t.log_z),
        exact_l1: target
            .zip(drawn.p_t.as_ref())
            .map(|(t, p_t)| distances(&t.probs, p_t).l1),
        seconds: start.elapsed().as_secs_f64(),
    }))
}

/// What the draw saw, beside the rows it wrote.
struct Drawn {
    /// The exact terminal distribution of the sampling policy (where enumerable).
    p_t: Option<Vec<f64>>,
    modes: u64,
    distinct: Option<u64>,
}

/// Rolls out `rows.n` trajectories in chunks of [`CHUNK`] and writes their terminal states.
/// `Ok(None)` when `stop` is set between chunks.
fn draw<B: Backend>(
    sampler: &mut Sampler<B>,
    rows: &Rows,
    out: &mut impl Write,
    stop: &Shutdown,
) -> std::io::Result<Option<Drawn>> {
    let p_t = sampler.exact_terminal_distribution();
    let mut seen = p_t.as_ref().map(|p| vec![false; p.len()]);
    let (mut modes, mut distinct) = (0u64, 0u64);
    let mut x = vec![0u16; rows.grid.ndim()];
    let mut progress = Progress::new(rows.n);
    rows.header(out)?;
    let mut left = rows.n;
    while left > 0 {
        if stop.is_set() {
            return Ok(None);
        }
        let m = left.min(CHUNK as u64) as usize;
        let batch: TrajectoryBatch = sampler.sample(m);
        for (actions, log_reward, _) in batch.iter() {
            TrajectoryBatch::terminal_state(rows.grid.ndim(), actions, &mut x);
            modes += rows.reward.is_mode(&x) as u64;
            let log_pt = p_t.as_ref().map(|p| p[rows.grid.index(&x)].ln());
            if let Some(seen) = &mut seen {
                let first = !std::mem::replace(&mut seen[rows.grid.index(&x)], true);
                distinct += first as u64;
            }
            rows.row(out, &x, log_reward, log_pt)?;
        }
        left -= m as u64;
        progress.advance(rows.n - left);
    }
    Ok(Some(Drawn {
        distinct: seen.is_some().then_some(distinct),
        p_t,
        modes,
    }))
}

/// The output's layout: a header, then one row per terminal state.
struct Rows<'a> {
    format: Format,
    grid: &'a HyperGrid,
    reward: &'a Reward,
    n: u64,
}

impl Rows<'_> {
    fn columns(&self) -> usize {
        self.grid.ndim() + 2
    }

    fn header(&self, out: &mut impl Write) -> std::io::Result<()> {
        match self.format {
            Format::Csv => {
                let names: Vec<String> = (0..self.grid.ndim()).map(|d| format!("x{d}")).collect();
                writeln!(out, "{},log_reward,log_pt", names.join(","))
            }
            Format::Npy => out.write_all(&npy_header(self.n, self.columns())),
        }
    }

    /// One state: coordinates, `log R` (as the sampler computed it, in f32) and `log P_T`. Both
    /// formats write numbers that read back to the same value (Rust's shortest round-trip form).
    fn row(
        &self,
        out: &mut impl Write,
        x: &[u16],
        log_reward: f32,
        log_pt: Option<f64>,
    ) -> std::io::Result<()> {
        match self.format {
            Format::Csv => {
                for c in x {
                    write!(out, "{c},")?;
                }
                match log_pt {
                    Some(p) => writeln!(out, "{log_reward},{p}"),
                    None => writeln!(out, "{log_reward},"),
                }
            }
            Format::Npy => {
                let values = x.iter().map(|&c| c as f64);
                let tail = [log_reward as f64, log_pt.unwrap_or(f64::NAN)];
                for v in values.chain(tail) {
                    out.write_all(&v.to_le_bytes())?;
                }
                Ok(())
            }
        }
    }
}

/// The header of a version 1.0 `.npy` file holding a C-ordered little-endian float64 array of
/// shape `[rows, cols]`: magic, header length, and a Python dict literal padded with spaces and
/// a newline so that the data starts at a multiple of 64 bytes (NumPy's format specification).
pub fn npy_header(rows: u64, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let unpadded = 10 + dict.len() + 1;
    let len = dict.len() + 1 + (64 - unpadded % 64) % 64;
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(10 + len - 1, b' ');
    out.push(b'\n');
    out
}

/// Logs how far a long draw has come, at most every two seconds.
struct Progress {
    total: u64,
    last: Instant,
}

impl Progress {
    fn new(total: u64) -> Self {
        Self {
            total,
            last: Instant::now(),
        }
    }

    fn advance(&mut self, done: u64) {
        if self.last.elapsed().as_secs_f64() >= 2.0 && done < self.total {
            self.last = Instant::now();
            tracing::info!("drew {done} of {} terminal states", self.total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_headers_align_the_data_to_64_bytes() {
        for (rows, cols) in [(1, 3), (200_000, 4), (u64::MAX, 12)] {
            let h = npy_header(rows, cols);
            assert_eq!(h.len() % 64, 0, "{rows} x {cols}");
            assert_eq!(&h[..8], b"\x93NUMPY\x01\x00");
            let len = u16::from_le_bytes([h[8], h[9]]) as usize;
            assert_eq!(len + 10, h.len());
            let dict = std::str::from_utf8(&h[10..]).unwrap();
            assert!(dict.ends_with('\n'));
            assert!(dict.contains(&format!("'shape': ({rows}, {cols})")));
        }
    }

    #[test]
    fn the_format_follows_the_extension() {
        assert_eq!(Format::of(Path::new("a/b.csv")), Some(Format::Csv));
        assert_eq!(Format::of(Path::new("b.NPY")), Some(Format::Npy));
        assert_eq!(Format::of(Path::new("b.txt")), None);
        assert_eq!(Format::of(Path::new("csv")), None);
    }

    #[test]
    fn bad_requests_are_refused_before_anything_is_read() {
        let ok = SampleRequest {
            n: 1,
            seed: 0,
            temperature: 1.0,
            epsilon: 0.0,
            device: Device::Cpu,
        };
        assert!(ok.sampling().is_ok());
        for bad in [
            SampleRequest { n: 0, ..ok },
            SampleRequest {
                temperature: 0.0,
                ..ok
            },
            SampleRequest { epsilon: 1.5, ..ok },
        ] {
            assert!(bad.sampling().is_err(), "{bad:?}");
        }
    }
}
