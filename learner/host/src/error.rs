//! What can go wrong around a learner loop on rank 0, typed so that a caller (the command line)
//! can tell bad input (a damaged or foreign checkpoint, a refused setting: exit code 2) from a
//! failure of the machine (a folder it cannot write).

use gfn_common::config::ConfigError;
use gfn_common::Damaged;
use gfn_learner::LearnError;
use std::path::PathBuf;

/// A checkpoint that cannot be written, read or resumed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{}: not a gfn checkpoint", path.display())]
    Foreign { path: PathBuf },
    #[error("{}: checkpoint version {found}, this gfn reads {expected}", path.display())]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{}: the checkpoint is damaged (CRC mismatch)", path.display())]
    Crc { path: PathBuf },
    #[error("decoding {}: {message}", path.display())]
    Undecodable { path: PathBuf, message: String },
    #[error("encoding the checkpoint: {0}")]
    Unencodable(String),
    /// A checkpoint of another run (another loss, network, seed, …).
    #[error("{0}: refusing to resume")]
    OtherRun(String),
    /// The checkpoint decodes, but its parts contradict each other or the run.
    #[error("the checkpoint is inconsistent: {0}")]
    Inconsistent(#[from] Damaged),
}

impl CheckpointError {
    /// Whether the checkpoint itself is at fault (rather than the machine): damaged, foreign
    /// or of another run.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::Unencodable(_))
    }
}

/// A failure of rank 0's host or of a learner session.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Learn(#[from] LearnError),
    #[error("the batch source: {0}")]
    Source(String),
    /// Rank 0's first weights do not fit this replica's network.
    #[error("the learner replicas' networks differ: {0}")]
    Replicas(#[from] gfn_nn::params::SizeMismatch),
    #[error("drawing {what}: {message}")]
    Plot { what: String, message: String },
}

impl Error {
    /// An I/O failure while doing `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }

    /// Whether the error is bad input (a damaged or foreign checkpoint, a refused setting).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Self::Checkpoint(e) => e.is_bad_input(),
            Self::Config(_) | Self::Source(_) => true,
            _ => false,
        }
    }
}

/// The result of the host's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;
