//! The ZeroMQ transport of gfn, beside the wire codec it carries (`gfn_common::wire`): sockets
//! that send and receive messages ([`socket`]), and the adapters that put them behind the seams
//! between roles, so that each role's loop is the same in one process and across processes.
//!
//! Layout:
//! - [`socket`]: a ZeroMQ socket speaking the gfn protocol, with typed errors;
//! - [`sampler`]: a sampler's batch sink and weight subscription;
//! - [`learner`]: a learner's batch source and weight publisher;
//! - [`buffer`]: the buffer's driver, between two ROUTER sockets and a `gfn_buffer::BufferCore`.

pub mod buffer;
pub mod learner;
pub mod sampler;
pub mod socket;

pub use socket::{Join, NetError, Socket};

use clap::Args;

/// Where the processes of a run meet, and how they recognise each other.
#[derive(Debug, Clone, Args)]
#[command(rename_all = "snake_case")]
pub struct NetArgs {
    /// Token shared by every process of the run; messages carrying another are dropped.
    #[arg(long, env = "GFN_RUN_TOKEN", default_value = "gfn-local")]
    pub run_token: String,
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
}

impl NetArgs {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_host_replaces_the_host_only() {
        let mut n = NetArgs {
            run_token: "t".into(),
            id: 0,
            ingest: vec![],
            serve: vec![],
            weights: String::new(),
            bind_host: None,
            idle_timeout: 1,
        };
        assert_eq!(n.bind_address("tcp://node3:5555"), "tcp://node3:5555");
        n.bind_host = Some("*".into());
        assert_eq!(n.bind_address("tcp://node3:5555"), "tcp://*:5555");
        assert_eq!(n.bind_address("ipc:///tmp/x"), "ipc:///tmp/x");
    }
}
