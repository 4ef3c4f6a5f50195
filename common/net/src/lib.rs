//! The ZeroMQ transport of gfn, beside the wire codec it carries (`gfn_common::wire`): sockets
//! that send and receive messages ([`socket`]), and the adapters that put them behind the seams
//! between roles, so that each role's loop is the same in one process and across processes.
//!
//! Layout:
//! - [`socket`]: a ZeroMQ socket speaking the gfn protocol, with typed errors;
//! - [`sampler`]: a sampler's batch sink and weight subscription;
//! - [`learner`]: a learner's batch source and weight publisher.
//!
//! The buffer's ZeroMQ loop lives in its role crate (`gfn_buffer::net`), over these sockets.

pub mod learner;
pub mod sampler;
pub mod socket;

pub use socket::{Join, NetError, Socket};

use clap::Args;
use std::path::PathBuf;

/// The environment variable that carries the run token. A secret never goes on a command line,
/// where `ps` shows it to every user of the machine.
pub const TOKEN_VARIABLE: &str = "GFN_RUN_TOKEN";

/// The token of a run on loopback that names none.
const LOOPBACK_TOKEN: &str = "gfn-local";

/// Where the processes of a run meet, and how they recognise each other. The run token, shared
/// by every process of the run (messages carrying another are dropped), comes from the
/// environment variable `GFN_RUN_TOKEN` or from `--run_token_file`, never from the command line.
#[derive(Debug, Clone, Args)]
#[command(rename_all = "snake_case")]
pub struct NetArgs {
    /// A file holding the run token (readable by its owner only: mode 0600); otherwise the
    /// token is read from GFN_RUN_TOKEN.
    #[arg(long)]
    pub run_token_file: Option<PathBuf>,
    /// This process's number within its role (sampler or buffer index).
    #[arg(long, default_value_t = 0)]
    pub id: usize,
    /// Buffer endpoints where samplers push trajectories (one per buffer; sampler i uses i mod M).
    #[arg(long, value_delimiter = ',', default_value = "tcp://127.0.0.1:5555")]
    pub ingest: Vec<String>,
    /// Buffer endpoints where learners ask for batches (learner rank r uses r mod M).
    #[arg(long, value_delimiter = ',', default_value = "tcp://127.0.0.1:5556")]
    pub serve: Vec<String>,
    /// Where learner rank 0 publishes weights.
    #[arg(long, default_value = "tcp://127.0.0.1:5557")]
    pub weights: String,
    /// Interface a binding process listens on instead of its endpoint's host (`*` for all;
    /// only with a run token you keep private).
    #[arg(long)]
    pub bind_host: Option<String>,
    /// Seconds without hearing from the run after which a sampler or buffer stops.
    #[arg(long, default_value_t = 120)]
    pub idle_timeout: u64,
    /// Seconds after which a sampler sends an unacknowledged batch again and a learner asks
    /// again for a late reply (a buffer that died and was started again gets them).
    #[arg(long, default_value_t = 2,
          value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..=3600))]
    pub resend_after: u64,
}

/// Why the run token cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("--run_token_file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "--run_token_file {path}: others can read it (mode {mode:o}); make it 0600 (chmod 600)"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("the run token is empty")]
    Empty,
}

impl NetArgs {
    /// The run token: from `--run_token_file`, else from `GFN_RUN_TOKEN`, else the loopback
    /// default (a run that binds only to 127.0.0.1 needs no secret).
    pub fn run_token(&self) -> Result<String, TokenError> {
        let token = match &self.run_token_file {
            Some(path) => read_token_file(path)?,
            None => match std::env::var(TOKEN_VARIABLE) {
                Ok(t) => t,
                Err(_) => return Ok(LOOPBACK_TOKEN.to_string()),
            },
        };
        let token = token.trim().to_string();
        if token.is_empty() {
            return Err(TokenError::Empty);
        }
        Ok(token)
    }

    /// The address to bind for `endpoint`, with the host replaced by `--bind_host` if given.
    pub fn bind_address(&self, endpoint: &str) -> String {
        match (&self.bind_host, endpoint.rsplit_once(':')) {
            (Some(host), Some((_, port))) if endpoint.starts_with("tcp://") => {
                format!("tcp://{host}:{port}")
            }
            _ => endpoint.to_owned(),
        }
    }

    /// The entry of `list` for index `i` (round robin).
    pub fn pick(list: &[String], i: usize) -> &str {
        &list[i % list.len().max(1)]
    }
}

/// Reads a token file, refusing one that users other than its owner can read.
fn read_token_file(path: &std::path::Path) -> Result<String, TokenError> {
    let unreadable = |e: std::io::Error| TokenError::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(unreadable)?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(TokenError::Exposed {
                path: path.to_owned(),
                mode: mode & 0o777,
            });
        }
    }
    std::fs::read_to_string(path).map_err(unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Network flags with nothing set.
    fn bare() -> NetArgs {
        NetArgs {
            run_token_file: None,
            id: 0,
            ingest: vec![],
            serve: vec![],
            weights: String::new(),
            bind_host: None,
            idle_timeout: 1,
            resend_after: 2,
        }
    }

    #[test]
    fn bind_host_replaces_the_host_only() {
        let mut n = bare();
        assert_eq!(n.bind_address("tcp://node3:5555"), "tcp://node3:5555");
        n.bind_host = Some("*".into());
        assert_eq!(n.bind_address("tcp://node3:5555"), "tcp://*:5555");
        assert_eq!(n.bind_address("ipc:///tmp/x"), "ipc:///tmp/x");
    }

    #[test]
    fn a_token_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("gfn-token-{}", std::process::id()));
        std::fs::write(&path, "s3cret\n").unwrap();
        let args = NetArgs {
            run_token_file: Some(path.clone()),
            ..bare()
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            args.run_token(),
            Err(TokenError::Exposed { mode: 0o644, .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(args.run_token().unwrap(), "s3cret");
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(args.run_token(), Err(TokenError::Empty));
        std::fs::remove_file(&path).unwrap();
        let missing = NetArgs {
            run_token_file: Some(path),
            ..args
        };
        assert!(matches!(
            missing.run_token(),
            Err(TokenError::Unreadable { .. })
        ));
    }
}
