//! Recorded buffer dumps: an append-only, segmented file format for trajectory batches.
//!
//! A recording is a folder of segments `segment-000000.gfnd`, `segment-000001.gfnd`, … and, once
//! closed cleanly, a `DONE` file. Each segment is
//!
//! ```text
//! b"GFNDUMP\0" | format version: u32 LE | header length: u32 LE | header (MessagePack) | CRC32 of the header: u32 LE
//! frame*       where frame = b"GFNF" | payload length: u32 LE | CRC32(length bytes ++ payload): u32 LE | payload
//! ```
//!
//! The header names the environment and the run; a payload is one MessagePack
//! [`TrajectoryBatch`]. A crash can only tear the last frame: the reader loads every complete
//! frame and reports the torn tail. A damaged frame (bad CRC, bad payload) is skipped and
//! reported; the reader resynchronises on the next frame marker, so one flipped byte loses one
//! frame.

use gfn_common::config::EnvSection;
use gfn_common::{HyperGrid, TrajectoryBatch};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

/// Version of the format written by this build.
pub const FORMAT_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"GFNDUMP\0";
const FRAME: &[u8; 4] = b"GFNF";
const FRAME_HEAD: usize = 12;
/// Largest frame payload a reader accepts.
const MAX_FRAME: usize = 256 << 20;

/// What every segment of a recording starts with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpHeader {
    pub env: EnvSection,
    pub run_id: String,
    pub segment: u32,
}

/// Why a recording cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not a gfn dump (bad magic bytes)")]
    NotADump(PathBuf),
    #[error("{path}: dump format version {found} is newer than this gfn reads ({FORMAT_VERSION}); use a newer gfn")]
    FutureVersion { path: PathBuf, found: u32 },
    #[error("{0}: the segment header is damaged")]
    BadHeader(PathBuf),
    #[error("{0}: no dump segments found")]
    Empty(PathBuf),
    #[error("{0} already holds a recording: record into another folder (or delete it)")]
    Exists(PathBuf),
    #[error("{path}: segment of another recording (run {found}, expected {expected})")]
    MixedRuns {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("the recording is of {recorded}, but this run is {wanted}: refusing to replay it")]
    OtherEnvironment {
        recorded: EnvSection,
        wanted: EnvSection,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DumpError + '_ {
    move |source| DumpError::Io {
        path: path.to_owned(),
        source,
    }
}

fn segment_path(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("segment-{index:06}.gfnd"))
}

/// Appends batches to a recording, rotating segments by size.
pub struct DumpWriter {
    dir: PathBuf,
    header: DumpHeader,
    segment_bytes: u64,
    file: BufWriter<File>,
    written: u64,
    frames: u64,
    trajectories: u64,
}

impl DumpWriter {
    /// Starts a recording in `dir` (created if needed). A folder that already holds a
    /// recording is refused: recordings are never overwritten.
    pub fn create(
        dir: &Path,
        env: EnvSection,
        run_id: &str,
        segment_bytes: u64,
    ) -> Result<Self, DumpError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        for entry in fs::read_dir(dir).map_err(io(dir))?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".gfnd") || name == "DONE" {
                return Err(DumpError::Exists(dir.to_owned()));
            }
        }
        let header = DumpHeader {
            env,
            run_id: run_id.to_owned(),
            segment: 0,
        };
        let (file, written) = Self::open_segment(dir, &header)?;
        Ok(Self {
            dir: dir.to_owned(),
            header,
            segment_bytes: segment_bytes.max(1024),
            file,
            written,
            frames: 0,
            trajectories: 0,
        })
    }

    fn open_segment(dir: &Path, header: &DumpHeader) -> Result<(BufWriter<File>, u64), DumpError> {
        let path = segment_path(dir, header.segment);
        let mut file = BufWriter::new(File::create(&path).map_err(io(&path))?);
        let body = rmp_serde::to_vec(header).unwrap_or_default();
        let mut head = Vec::with_capacity(body.len() + 20);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        head.extend_from_slice(&(body.len() as u32).to_le_bytes());
        head.extend_from_slice(&body);
        head.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        file.write_all(&head).map_err(io(&path))?;
        Ok((file, head.len() as u64))
    }

    /// Appends one batch as a frame and flushes it to the OS.
    pub fn write(&mut self, batch: &TrajectoryBatch) -> Result<(), DumpError> {
        if self.written >= self.segment_bytes {
            self.file.flush().map_err(io(&self.dir))?;
            self.header.segment += 1;
            (self.file, self.written) = Self::open_segment(&self.dir, &self.header)?;
        }
        let payload = rmp_serde::to_vec(batch).unwrap_or_default();
        let len = (payload.len() as u32).to_le_bytes();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&len);
        crc.update(&payload);
        let path = segment_path(&self.dir, self.header.segment);
        self.file.write_all(FRAME).map_err(io(&path))?;
        self.file.write_all(&len).map_err(io(&path))?;
        self.file
            .write_all(&crc.finalize().to_le_bytes())
            .map_err(io(&path))?;
        self.file.write_all(&payload).map_err(io(&path))?;
        self.file.flush().map_err(io(&path))?;
        self.written += (FRAME_HEAD + payload.len()) as u64;
        self.frames += 1;
        self.trajectories += batch.len() as u64;
        Ok(())
    }

    /// Closes the recording: syncs the last segment and writes the `DONE` marker.
    pub fn finish(mut self) -> Result<(), DumpError> {
        self.file.flush().map_err(io(&self.dir))?;
        self.file.get_ref().sync_all().map_err(io(&self.dir))?;
        let done = self.dir.join("DONE");
        let text = format!(
            "frames {}\ntrajectories {}\nsegments {}\n",
            self.frames,
            self.trajectories,
            self.header.segment + 1
        );
        fs::write(&done, text).map_err(io(&done))
    }
}

/// What reading a recording found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DumpReport {
    pub segments: usize,
    pub frames: usize,
    pub trajectories: usize,
    /// `(segment file, byte offset)` of each damaged frame that was skipped.
    pub damaged: Vec<(PathBuf, u64)>,
    /// Segments whose last frame was torn (incomplete).
    pub truncated: Vec<PathBuf>,
    /// Runs of segment numbers absent from 0 to the last one found or counted by `DONE`
    /// (deleted files).
    pub missing_segments: Vec<RangeInclusive<u32>>,
    /// Whether the recording was closed cleanly.
    pub done: bool,
    /// What the `DONE` marker says was written (none if absent or unreadable).
    pub closed_with: Option<DoneCounts>,
    /// Smallest and largest policy version of the recorded trajectories.
    pub versions: Option<(u64, u64)>,
}

/// The counts a clean close writes to `DONE`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DoneCounts {
    pub frames: u64,
    pub trajectories: u64,
    pub segments: u32,
}

impl DoneCounts {
    /// Parses `DONE`'s `key value` lines; `None` unless all three counts are there.
    fn parse(text: &str) -> Option<Self> {
        let value = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
        };
        Some(Self {
            frames: value("frames ")?,
            trajectories: value("trajectories ")?,
            segments: u32::try_from(value("segments ")?).ok()?,
        })
    }
}

impl DumpReport {
    /// Frames the `DONE` marker counts but the reader did not load (deleted, damaged or torn).
    pub fn lost_frames(&self) -> u64 {
        self.closed_with
            .map_or(0, |c| c.frames.saturating_sub(self.frames as u64))
    }

    /// Trajectories the `DONE` marker counts but the reader did not load.
    pub fn lost_trajectories(&self) -> u64 {
        self.closed_with.map_or(0, |c| {
            c.trajectories.saturating_sub(self.trajectories as u64)
        })
    }
}

/// A whole recording in memory.
#[derive(Debug, Clone)]
pub struct Dump {
    pub header: DumpHeader,
    pub batches: Vec<TrajectoryBatch>,
    pub report: DumpReport,
}

impl Dump {
    /// Reads every segment of the recording in `dir`.
    pub fn read(dir: &Path) -> Result<Self, DumpError> {
        let mut paths: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(io(dir))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "gfnd"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(DumpError::Empty(dir.to_owned()));
        }
        let mut header: Option<DumpHeader> = None;
        let mut batches = vec![];
        let marker = dir.join("DONE");
        let mut report = DumpReport {
            segments: paths.len(),
            done: marker.exists(),
            closed_with: fs::read_to_string(&marker)
                .ok()
                .and_then(|t| DoneCounts::parse(&t)),
            ..Default::default()
        };
        let mut numbers = std::collections::BTreeSet::new();
        for path in &paths {
            let bytes = fs::read(path).map_err(io(path))?;
            let (h, start) = read_header(path, &bytes)?;
            numbers.insert(h.segment);
            if let Some(first) = &header {
                if first.run_id != h.run_id || first.env != h.env {
                    return Err(DumpError::MixedRuns {
                        path: path.clone(),
                        found: h.run_id,
                        expected: first.run_id.clone(),
                    });
                }
            } else {
                header = Some(h.clone());
            }
            let grid = HyperGrid::new(h.env.ndim, h.env.height)
                .map_err(|_| DumpError::BadHeader(path.clone()))?;
            read_frames(path, &bytes, start, &grid, &mut batches, &mut report);
        }
        // A deleted last segment leaves no gap: the DONE marker knows how many there were.
        let counted = report.closed_with.map_or(0, |c| c.segments);
        report.missing_segments = gaps(&numbers, counted);
        report.frames = batches.len();
        report.trajectories = batches.iter().map(|b| b.len()).sum();
        report.versions = batches
            .iter()
            .flat_map(|b| b.versions.iter().copied())
            .fold(None, |acc: Option<(u64, u64)>, v| {
                Some(acc.map_or((v, v), |(a, b)| (a.min(v), b.max(v))))
            });
        Ok(Self {
            header: header.unwrap_or_else(|| unreachable!("at least one segment")),
            batches,
            report,
        })
    }

    /// Refuses a recording of another environment than `env`.
    pub fn check_env(&self, env: &EnvSection) -> Result<(), DumpError> {
        if self.header.env != *env {
            return Err(DumpError::OtherEnvironment {
                recorded: self.header.env.clone(),
                wanted: env.clone(),
            });
        }
        Ok(())
    }
}

/// The runs of numbers missing from `found` within `0..max(counted, last found + 1)`, in
/// time linear in `found` (a header or marker may claim any number).
fn gaps(found: &std::collections::BTreeSet<u32>, counted: u32) -> Vec<RangeInclusive<u32>> {
    let mut gaps = vec![];
    let mut next = 0u32;
    for &n in found {
        if n > next {
            gaps.push(next..=n - 1);
        }
        next = n.saturating_add(1);
    }
    if counted > next {
        gaps.push(next..=counted - 1);
    }
    gaps
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_header(path: &Path, bytes: &[u8]) -> Result<(DumpHeader, usize), DumpError> {
    if bytes.get(..8) != Some(&MAGIC[..]) {
        return Err(DumpError::NotADump(path.to_owned()));
    }
    let version = u32_at(bytes, 8).ok_or_else(|| DumpError::BadHeader(path.to_owned()))?;
    if version > FORMAT_VERSION {
        return Err(DumpError::FutureVersion {
            path: path.to_owned(),
            found: version,
        });
    }
    let len = u32_at(bytes, 12).ok_or_else(|| DumpError::BadHeader(path.to_owned()))? as usize;
    let body = bytes
        .get(16..16 + len)
        .ok_or_else(|| DumpError::BadHeader(path.to_owned()))?;
    let crc = u32_at(bytes, 16 + len).ok_or_else(|| DumpError::BadHeader(path.to_owned()))?;
    if crc != crc32fast::hash(body) {
        return Err(DumpError::BadHeader(path.to_owned()));
    }
    let header = rmp_serde::from_slice(body).map_err(|_| DumpError::BadHeader(path.to_owned()))?;
    Ok((header, 20 + len))
}

/// Decodes the frame at `at`, if it is whole and intact: `Ok(Some((batch, next)))`; `Ok(None)`
/// when the bytes end inside it (torn); `Err(())` when it is damaged.
#[allow(clippy::result_unit_err)]
fn frame_at(
    bytes: &[u8],
    at: usize,
    grid: &HyperGrid,
) -> Result<Option<(TrajectoryBatch, usize)>, ()> {
    if bytes.len() < at + FRAME_HEAD {
        return Ok(None);
    }
    if &bytes[at..at + 4] != FRAME {
        return Err(());
    }
    let len = u32_at(bytes, at + 4).ok_or(())? as usize;
    let crc = u32_at(bytes, at + 8).ok_or(())?;
    if len > MAX_FRAME {
        return Err(());
    }
    let Some(payload) = bytes.get(at + FRAME_HEAD..at + FRAME_HEAD + len) else {
        return Ok(None);
    };
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[at + 4..at + 8]);
    h.update(payload);
    if h.finalize() != crc {
        return Err(());
    }
    let batch: TrajectoryBatch = rmp_serde::from_slice(payload).map_err(|_| ())?;
    batch.validate(grid).map_err(|_| ())?;
    Ok(Some((batch, at + FRAME_HEAD + len)))
}

/// The start of the next intact frame after `at`, if any.
fn next_intact(bytes: &[u8], at: usize, grid: &HyperGrid) -> Option<usize> {
    (at + 1..bytes.len().saturating_sub(3))
        .find(|&i| &bytes[i..i + 4] == FRAME && matches!(frame_at(bytes, i, grid), Ok(Some(_))))
}

fn read_frames(
    path: &Path,
    bytes: &[u8],
    mut at: usize,
    grid: &HyperGrid,
    out: &mut Vec<TrajectoryBatch>,
    report: &mut DumpReport,
) {
    while at < bytes.len() {
        match frame_at(bytes, at, grid) {
            Ok(Some((batch, next))) => {
                out.push(batch);
                at = next;
            }
            result => {
                // A frame that runs past the end is a torn tail only if no intact frame
                // follows; otherwise its length field is damaged.
                let next = next_intact(bytes, at, grid);
                if result.is_ok() && next.is_none() {
                    tracing::warn!("{}: the last frame is incomplete (torn write); loaded the frames before it", path.display());
                    report.truncated.push(path.to_owned());
                    return;
                }
                tracing::warn!("{}: damaged frame at byte {at}, skipped", path.display());
                report.damaged.push((path.to_owned(), at as u64));
                match next {
                    Some(i) => at = i,
                    None => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gfn_common::RunConfig;

    fn env() -> EnvSection {
        EnvSection {
            ndim: 2,
            height: 8,
            reward: gfn_common::RewardKind::Original,
            r0: 0.1,
            r1: 0.5,
            r2: 2.0,
            mode_gamma: 0.8,
            tiered: None,
        }
    }

    /// A header written before the environment had `mode_gamma` and the tiered kwargs still
    /// reads, as the same environment.
    #[test]
    fn headers_of_older_recordings_still_read() {
        #[derive(Serialize)]
        struct OldEnv {
            ndim: usize,
            height: usize,
            reward: gfn_common::RewardKind,
            r0: f32,
            r1: f32,
            r2: f32,
        }
        #[derive(Serialize)]
        struct OldHeader {
            env: OldEnv,
            run_id: String,
            segment: u32,
        }
        let old = OldHeader {
            env: OldEnv {
                ndim: 2,
                height: 8,
                reward: gfn_common::RewardKind::Original,
                r0: 0.1,
                r1: 0.5,
                r2: 2.0,
            },
            run_id: "run-0".into(),
            segment: 3,
        };
        let header: DumpHeader = rmp_serde::from_slice(&rmp_serde::to_vec(&old).unwrap()).unwrap();
        assert_eq!(header.env, env());
        assert_eq!((header.run_id.as_str(), header.segment), ("run-0", 3));
    }

    fn batch(k: u64) -> TrajectoryBatch {
        let mut b = TrajectoryBatch::default();
        for i in 0..5 {
            b.push(&[0, 1, (i % 2) as u8, 2], -1.0 - i as f32, k);
        }
        b
    }

    fn record(dir: &Path, n: u64, segment_bytes: u64) {
        let mut w = DumpWriter::create(dir, env(), "run-1", segment_bytes).unwrap();
        for k in 0..n {
            w.write(&batch(k)).unwrap();
        }
        w.finish().unwrap();
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gfn-dump-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn round_trip_with_rotation() {
        let dir = tmp("rt");
        record(&dir, 200, 2048);
        let d = Dump::read(&dir).unwrap();
        assert!(d.report.segments > 1, "segments rotate by size");
        assert_eq!(d.batches.len(), 200);
        assert_eq!(d.batches[137], batch(137));
        assert_eq!(d.report.versions, Some((0, 199)));
        assert!(d.report.done && d.report.damaged.is_empty() && d.report.truncated.is_empty());
        assert!(d.report.missing_segments.is_empty());
        let closed = d.report.closed_with.unwrap();
        assert_eq!((closed.frames, closed.trajectories), (200, 200 * 5));
        assert_eq!(closed.segments as usize, d.report.segments);
        assert_eq!(d.report.lost_frames(), 0);
        // Recording again into the same folder is refused, and the recording is untouched.
        let again = DumpWriter::create(&dir, env(), "run-2", 2048);
        assert!(matches!(again, Err(DumpError::Exists(_))));
        assert_eq!(Dump::read(&dir).unwrap().batches.len(), 200);
    }

    #[test]
    fn a_deleted_middle_segment_is_reported() {
        let dir = tmp("gap");
        record(&dir, 200, 2048);
        fs::remove_file(segment_path(&dir, 1)).unwrap();
        let d = Dump::read(&dir).unwrap();
        assert_eq!(d.report.missing_segments, vec![1..=1]);
        assert!(d.batches.len() < 200);
        assert_eq!(d.report.lost_frames(), 200 - d.batches.len() as u64);
    }

    #[test]
    fn a_deleted_last_segment_is_reported() {
        let dir = tmp("tail");
        record(&dir, 200, 2048);
        let segments = Dump::read(&dir).unwrap().report.segments as u32;
        fs::remove_file(segment_path(&dir, segments - 1)).unwrap();
        let d = Dump::read(&dir).unwrap();
        assert_eq!(d.report.missing_segments, vec![segments - 1..=segments - 1]);
        assert!(d.report.lost_frames() > 0);
        assert_eq!(d.report.lost_trajectories(), 5 * d.report.lost_frames());
        // An unreadable marker counts nothing, rather than failing the read.
        fs::write(dir.join("DONE"), "frames many\n").unwrap();
        let d = Dump::read(&dir).unwrap();
        assert!(d.report.done && d.report.closed_with.is_none());
        assert!(d.report.missing_segments.is_empty() && d.report.lost_frames() == 0);
        // A marker claiming billions of segments costs nothing to report.
        fs::write(
            dir.join("DONE"),
            "frames 1\ntrajectories 5\nsegments 4000000000\n",
        )
        .unwrap();
        let d = Dump::read(&dir).unwrap();
        assert_eq!(
            d.report.missing_segments,
            vec![segments - 1..=3_999_999_999]
        );
    }

    #[test]
    fn gaps_are_runs() {
        let found = [0u32, 3, 4, 9].into_iter().collect();
        assert_eq!(gaps(&found, 0), vec![1..=2, 5..=8]);
        assert_eq!(gaps(&found, 12), vec![1..=2, 5..=8, 10..=11]);
        assert!(gaps(&[u32::MAX].into_iter().collect(), 0) == vec![0..=u32::MAX - 1]);
        assert!(gaps(&Default::default(), 0).is_empty());
    }

    #[test]
    fn a_torn_last_frame_loses_only_itself() {
        let dir = tmp("torn");
        record(&dir, 10, 1 << 20);
        let seg = segment_path(&dir, 0);
        let bytes = fs::read(&seg).unwrap();
        fs::write(&seg, &bytes[..bytes.len() - 7]).unwrap();
        let d = Dump::read(&dir).unwrap();
        assert_eq!(d.batches.len(), 9);
        assert_eq!(d.report.truncated, vec![seg]);
    }

    #[test]
    fn a_flipped_byte_loses_one_frame() {
        let dir = tmp("flip");
        record(&dir, 10, 1 << 20);
        let seg = segment_path(&dir, 0);
        let mut bytes = fs::read(&seg).unwrap();
        // Flip a byte in the middle of the file: inside some frame.
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        fs::write(&seg, &bytes).unwrap();
        let d = Dump::read(&dir).unwrap();
        assert_eq!(d.batches.len(), 9, "exactly one frame lost");
        assert_eq!(d.report.damaged.len(), 1);
        // Every other batch is intact and in order.
        let ks: Vec<u64> = d.batches.iter().map(|b| b.versions[0]).collect();
        assert!(ks.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn any_flipped_byte_of_a_frame_loses_only_that_frame() {
        let dir = tmp("every-byte");
        record(&dir, 6, 1 << 20);
        let seg = segment_path(&dir, 0);
        let clean = fs::read(&seg).unwrap();
        // Frame 2 of 6: find its marker.
        let starts: Vec<usize> = (0..clean.len() - 3)
            .filter(|&i| &clean[i..i + 4] == FRAME)
            .collect();
        let (from, to) = (starts[2], starts[3]);
        for i in from..to {
            let mut bytes = clean.clone();
            bytes[i] ^= 0x01;
            fs::write(&seg, &bytes).unwrap();
            let d = Dump::read(&dir).unwrap();
            let ks: Vec<u64> = d.batches.iter().map(|b| b.versions[0]).collect();
            assert_eq!(
                ks,
                vec![0, 1, 3, 4, 5],
                "flipped byte {} of frame 2",
                i - from
            );
            assert_eq!(d.report.damaged.len(), 1);
        }
    }

    #[test]
    fn future_versions_and_other_files_are_refused() {
        let dir = tmp("future");
        record(&dir, 2, 1 << 20);
        let seg = segment_path(&dir, 0);
        let mut bytes = fs::read(&seg).unwrap();
        bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        fs::write(&seg, &bytes).unwrap();
        let err = Dump::read(&dir).unwrap_err().to_string();
        assert!(err.contains("format version 2 is newer"), "{err}");
        fs::write(&seg, b"not a dump at all").unwrap();
        assert!(matches!(Dump::read(&dir), Err(DumpError::NotADump(_))));
        assert!(matches!(
            Dump::read(&tmp("none")),
            Err(DumpError::Io { .. })
        ));
    }

    #[test]
    fn another_environment_is_refused() {
        let dir = tmp("env");
        record(&dir, 1, 1 << 20);
        let d = Dump::read(&dir).unwrap();
        let cfg = RunConfig {
            height: 9,
            ..RunConfig::default()
        };
        let err = d.check_env(&cfg.env()).unwrap_err().to_string();
        assert!(err.contains("2-D H=8") && err.contains("2-D H=9"), "{err}");
        assert!(d.check_env(&RunConfig::default().env()).is_ok());
    }
}
