//! The wire protocol between processes: MessagePack (rmp-serde) messages in an envelope that
//! names the protocol version, the run and the sender. Only encoding and decoding live here; the
//! sockets are the transport's business.
//!
//! A message that is too large, does not parse, speaks another protocol version or belongs to
//! another run is an error value for the receiver to count and drop, never a panic.

use crate::pipe::Weights;
use crate::TrajectoryBatch;
use serde::{Deserialize, Serialize};

/// Version of this message format; peers with another version are refused. Version 2 numbers
/// batches and requests, so that a resent one is recognised.
pub const PROTOCOL_VERSION: u16 = 2;

/// Largest message a peer accepts (a weight update of a few million parameters fits).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Longest sender name accepted (names such as `sampler-12` are kept in reports).
pub const MAX_SENDER_BYTES: usize = 128;

/// What travels between processes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// Sampler → buffer: freshly sampled trajectories, the sampler's `seq`-th batch. A sampler
    /// sends a batch again when its acknowledgement is late (its buffer may have restarted); the
    /// number lets the buffer take it once.
    Trajectories { seq: u64, batch: TrajectoryBatch },
    /// Buffer → sampler: batch `seq` is stored; send the next one. A sampler keeps one batch in
    /// flight, so a full buffer slows samplers down instead of queueing stale data.
    Ack { seq: u64 },
    /// Learner → buffer: request `id`, `n` trajectories for the learner at weight version
    /// `version`; in strict on-policy mode only trajectories of at least `min_version` qualify.
    /// A learner asks again with the same id when the reply is late.
    Request {
        id: u64,
        n: u32,
        version: u64,
        min_version: u64,
    },
    /// Buffer → learner: the trajectories asked for by request `id`, how many trajectories the
    /// buffer has received from each sampler so far, and how many it holds now (its queue depth).
    Reply {
        id: u64,
        batch: TrajectoryBatch,
        received: Vec<(String, u64)>,
        queued: u64,
    },
    /// Learner → samplers: new weights.
    Weights(WireWeights),
    /// Liveness signal; carries nothing.
    Heartbeat,
    /// The run is over: stop.
    Shutdown,
}

impl Message {
    /// Short name of the message kind, for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Trajectories { .. } => "trajectories",
            Message::Ack { .. } => "ack",
            Message::Request { .. } => "request",
            Message::Reply { .. } => "reply",
            Message::Weights(_) => "weights",
            Message::Heartbeat => "heartbeat",
            Message::Shutdown => "shutdown",
        }
    }
}

/// Weights as little-endian `f32` bytes (MessagePack `bin`: 4 bytes a value, not 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireWeights {
    pub version: u64,
    #[serde(with = "serde_bytes")]
    pub params: Vec<u8>,
}

impl From<&Weights> for WireWeights {
    fn from(w: &Weights) -> Self {
        Self {
            version: w.version,
            params: w.params.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

impl WireWeights {
    /// The weights as floats; `None` if the byte count is not a multiple of 4.
    pub fn to_weights(&self) -> Option<Weights> {
        if !self.params.len().is_multiple_of(4) {
            return None;
        }
        let params = self
            .params
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Some(Weights {
            version: self.version,
            params,
        })
    }
}

/// A message with its routing facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub protocol: u16,
    /// The run token shared by every process of one run.
    pub run: String,
    /// Who sent it, e.g. `sampler-3`.
    pub sender: String,
    pub body: Message,
}

/// Why received bytes were dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message of {0} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("protocol version {got}, expected {PROTOCOL_VERSION}")]
    Version { got: u16 },
    #[error("message from another run (sender `{sender}`)")]
    ForeignRun { sender: String },
}

/// Encodes a message from `sender` of run `run`.
pub fn encode(run: &str, sender: &str, body: &Message) -> Vec<u8> {
    #[derive(Serialize)]
    struct EnvelopeRef<'a> {
        protocol: u16,
        run: &'a str,
        sender: &'a str,
        body: &'a Message,
    }
    let env = EnvelopeRef {
        protocol: PROTOCOL_VERSION,
        run,
        sender,
        body,
    };
    // Serialising plain data into a Vec cannot fail.
    rmp_serde::to_vec(&env).unwrap_or_default()
}

/// Decodes and checks received bytes against the expected run.
pub fn decode(bytes: &[u8], run: &str) -> Result<Envelope, WireError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge(bytes.len()));
    }
    let env: Envelope =
        rmp_serde::from_slice(bytes).map_err(|e| WireError::Malformed(e.to_string()))?;
    if env.protocol != PROTOCOL_VERSION {
        return Err(WireError::Version { got: env.protocol });
    }
    if env.sender.len() > MAX_SENDER_BYTES {
        return Err(WireError::Malformed(format!(
            "sender name of {} bytes (at most {MAX_SENDER_BYTES})",
            env.sender.len()
        )));
    }
    if env.run != run {
        return Err(WireError::ForeignRun { sender: env.sender });
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> TrajectoryBatch {
        let mut b = TrajectoryBatch::default();
        b.push(&[0, 1, 0, 0, 1, 2], -1.5, 7);
        b.push(&[2], -0.5, 7);
        b
    }

    #[test]
    fn every_message_round_trips() {
        let w = Weights {
            version: 3,
            params: vec![1.5, -2.0, 0.0],
        };
        for m in [
            Message::Trajectories {
                seq: 3,
                batch: batch(),
            },
            Message::Request {
                id: 7,
                n: 16,
                version: 4,
                min_version: 4,
            },
            Message::Reply {
                id: 7,
                batch: batch(),
                received: vec![("sampler-0".into(), 12)],
                queued: 3,
            },
            Message::Weights((&w).into()),
            Message::Heartbeat,
            Message::Ack { seq: 3 },
            Message::Shutdown,
        ] {
            let bytes = encode("run-a", "sampler-1", &m);
            let env = decode(&bytes, "run-a").unwrap();
            assert_eq!(env.body, m);
            assert_eq!(env.sender, "sampler-1");
        }
        let wire = WireWeights::from(&w);
        assert_eq!(wire.params.len(), 12);
        assert_eq!(wire.to_weights().unwrap(), w);
    }

    #[test]
    fn foreign_and_broken_messages_are_errors() {
        let bytes = encode("run-a", "x", &Message::Heartbeat);
        assert!(matches!(
            decode(&bytes, "run-b"),
            Err(WireError::ForeignRun { .. })
        ));
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1], "run-a"),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            decode(b"\xff\x00garbage", "run-a"),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            decode(&vec![0u8; MAX_MESSAGE_BYTES + 1], "run-a"),
            Err(WireError::TooLarge(_))
        ));
        let long_name = encode(
            "run-a",
            &"s".repeat(MAX_SENDER_BYTES + 1),
            &Message::Heartbeat,
        );
        assert!(matches!(
            decode(&long_name, "run-a"),
            Err(WireError::Malformed(_))
        ));
        let mut env = decode(&bytes, "run-a").unwrap();
        env.protocol = 99;
        let other = rmp_serde::to_vec(&env).unwrap();
        assert_eq!(decode(&other, "run-a"), Err(WireError::Version { got: 99 }));
        assert!(WireWeights {
            version: 0,
            params: vec![0; 5]
        }
        .to_weights()
        .is_none());
    }

    #[test]
    fn a_trajectory_is_small_on_the_wire() {
        let mut b = TrajectoryBatch::default();
        for _ in 0..64 {
            b.push(&[0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 4], -2.3, 1234);
        }
        let bytes = encode("r", "s", &Message::Trajectories { seq: 0, batch: b }).len();
        assert!(bytes / 64 < 32, "{} bytes per trajectory", bytes / 64);
    }
}
