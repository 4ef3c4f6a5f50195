//! Complete checkpoints of a run: parameters, AdamW state (logZ included), the buffer's contents
//! where it runs in the same process, what validation has seen, the losses and metrics so far,
//! and the step.
//! Random streams are derived from (seed, step), so no generator state is needed: a run resumed
//! with `--policy_lag 0` continues exactly as the uninterrupted run.
//!
//! File: `checkpoint.gfnc` = `b"GFNCKPT\0"` | version u32 LE | CRC32 of the body u32 LE | body
//! (MessagePack). It is written to a temporary file, synced, and renamed over the old one, so a
//! crash leaves either the old or the new checkpoint, never a partial one.

use crate::error::{CheckpointError, Error, Result};
use crate::metrics::{TimeSplit, Validation};
use crate::validate::Visits;
use gfn_common::{LrSchedule, RunConfig};
use gfn_learner::adamw::FlatAdamW;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"GFNCKPT\0";
/// Version 2: the buffer's state is its own crate's encoding (`source`), for every mode.
const VERSION: u32 = 2;
const FILE: &str = "checkpoint.gfnc";

/// Everything needed to continue a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub config: RunConfig,
    /// Learner steps done (the weight version).
    pub step: u64,
    pub params: Vec<f32>,
    pub optim: FlatAdamW,
    /// The batch source's own state (an embedded buffer), as that source encoded it.
    #[serde(with = "serde_bytes_opt", default)]
    pub source: Option<Vec<u8>>,
    pub visits: Visits,
    pub losses: Vec<f32>,
    pub validations: Vec<Validation>,
    pub time: TimeSplit,
    pub wall_s: f64,
}

/// The checkpoint file in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Writes `ck` atomically into `dir`.
pub fn save(dir: &Path, ck: &Checkpoint) -> Result<()> {
    fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    // Named fields: metric records skip empty fields, which a positional encoding cannot.
    let body =
        rmp_serde::to_vec_named(ck).map_err(|e| CheckpointError::Unencodable(e.to_string()))?;
    let tmp = dir.join(format!("{FILE}.tmp"));
    let write = |f: &mut fs::File| -> std::io::Result<()> {
        f.write_all(MAGIC)?;
        f.write_all(&VERSION.to_le_bytes())?;
        f.write_all(&crc32fast::hash(&body).to_le_bytes())?;
        f.write_all(&body)?;
        f.sync_all()
    };
    fs::File::create(&tmp)
        .and_then(|mut f| write(&mut f))
        .map_err(Error::io(format!("writing {}", tmp.display())))?;
    fs::rename(&tmp, path(dir)).map_err(Error::io(format!("replacing {}", path(dir).display())))?;
    // Make the rename itself durable.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads the checkpoint in `dir`; `None` when there is none. A damaged file is an error.
pub fn load(dir: &Path) -> Result<Option<Checkpoint>> {
    match read_bytes(dir)? {
        Some(bytes) => decode(dir, &bytes).map(Some),
        None => Ok(None),
    }
}

/// The checkpoint file's bytes, unchecked (to hand them to other learner replicas).
pub fn read_bytes(dir: &Path) -> Result<Option<Vec<u8>>> {
    let p = path(dir);
    match fs::read(&p) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("reading {}", p.display()))(e)),
    }
}

/// Checks and decodes the bytes of the checkpoint file in `dir`.
pub fn decode(dir: &Path, bytes: &[u8]) -> Result<Checkpoint> {
    let path = path(dir);
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err(CheckpointError::Foreign { path }.into());
    }
    let found = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if found != VERSION {
        return Err(CheckpointError::Version {
            path,
            found,
            expected: VERSION,
        }
        .into());
    }
    let crc = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    if crc32fast::hash(&bytes[16..]) != crc {
        return Err(CheckpointError::Crc { path }.into());
    }
    rmp_serde::from_slice(&bytes[16..]).map_err(|e| {
        CheckpointError::Undecodable {
            path,
            message: e.to_string(),
        }
        .into()
    })
}

/// Optional bytes as MessagePack `bin` (compact), not as an array of integers.
mod serde_bytes_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&serde_bytes::Bytes::new(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Ok(Option::<serde_bytes::ByteBuf>::deserialize(d)?.map(|b| b.into_vec()))
    }
}

/// Refuses to resume a checkpoint of a different run (another loss, network, seed, …): the
/// two configurations must agree on [`RunConfig::defining`].
pub fn check_compatible(saved: &RunConfig, now: &RunConfig) -> Result<()> {
    let (saved_run, this_run) = (saved.defining(), now.defining());
    if saved_run != this_run {
        return Err(other_run(first_difference(&saved_run, &this_run)?));
    }
    // A schedule is laid out over the planned steps: another budget would bend it mid-run.
    if now.lr_schedule != LrSchedule::Constant && saved.n_trajectories != now.n_trajectories {
        return Err(other_run(format!(
            "the checkpoint's learning-rate schedule ({}) spans n_trajectories = {}, this run \
             has {}",
            now.lr_schedule, saved.n_trajectories, now.n_trajectories
        )));
    }
    Ok(())
}

/// The first setting in which two configurations differ, in words.
fn first_difference(saved: &RunConfig, now: &RunConfig) -> Result<String> {
    let (a, b) = (saved.to_table()?, now.to_table()?);
    let keys = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
    for key in keys {
        let (then, now) = (a.get(key), b.get(key));
        if then != now {
            let show = |v: Option<_>| v.map_or("nothing".to_string(), ToString::to_string);
            return Ok(format!(
                "the checkpoint was written with {key} = {}, this run has {}",
                show(then),
                show(now)
            ));
        }
    }
    // Equal tables of unequal settings: a float that TOML prints the same (NaN cannot occur).
    Ok("the checkpoint was written with other settings".into())
}

fn other_run(why: String) -> Error {
    CheckpointError::OtherRun(why).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            config: RunConfig::default(),
            step: 7,
            params: vec![1.0, 2.0, 3.0],
            optim: FlatAdamW::new(3, vec![]),
            source: Some(vec![1, 2, 3]),
            visits: Visits::default(),
            losses: vec![0.5; 7],
            validations: vec![Validation {
                step: 1,
                checksums: vec![],
                ..Default::default()
            }],
            time: TimeSplit::default(),
            wall_s: 1.5,
        }
    }

    #[test]
    fn a_crash_mid_write_leaves_the_previous_checkpoint() {
        let dir = std::env::temp_dir().join(format!("gfn-ckpt-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert!(load(&dir).unwrap().is_none());
        save(&dir, &sample()).unwrap();
        // A crash while writing the next one leaves only a partial temporary file behind.
        fs::write(dir.join(format!("{FILE}.tmp")), b"GFNCKPT\0partial").unwrap();
        let back = load(&dir).unwrap().unwrap();
        assert_eq!((back.step, back.params), (7, vec![1.0, 2.0, 3.0]));
        assert_eq!(back.source, Some(vec![1, 2, 3]));
        // A checkpoint damaged on disk is an error, never a silent load.
        let mut bytes = fs::read(path(&dir)).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(path(&dir), &bytes).unwrap();
        assert!(load(&dir).unwrap_err().to_string().contains("damaged"));
        fs::write(path(&dir), &bytes[..20]).unwrap();
        assert!(load(&dir).is_err());
    }

    #[test]
    fn another_run_is_refused() {
        let saved = RunConfig::default();
        let longer = RunConfig {
            n_trajectories: 5,
            run_dir: "elsewhere".into(),
            ..RunConfig::default()
        };
        assert!(check_compatible(&saved, &longer).is_ok());
        let other = RunConfig {
            loss: gfn_common::Loss::Db,
            ..RunConfig::default()
        };
        assert!(check_compatible(&saved, &other)
            .unwrap_err()
            .to_string()
            .contains("loss"));
        // Under a schedule the budget is part of the run.
        let cosine = RunConfig {
            lr_schedule: LrSchedule::Cosine,
            ..RunConfig::default()
        };
        let cosine_longer = RunConfig {
            lr_schedule: LrSchedule::Cosine,
            ..longer
        };
        assert!(check_compatible(&cosine, &cosine_longer)
            .unwrap_err()
            .to_string()
            .contains("schedule"));
        assert!(check_compatible(&cosine, &cosine).is_ok());
    }
}
