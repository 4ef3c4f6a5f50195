//! A sampler's two sockets: trajectories out to its buffer ([`BufferSink`]), weights in from
//! learner rank 0 ([`receive_weights`]).

use crate::socket::{NetError, Socket};
use gfn_common::pipe::{Shutdown, WeightBoard};
use gfn_common::seam::{BatchSink, PipeError};
use gfn_common::wire::Message;
use gfn_common::TrajectoryBatch;
use std::time::{Duration, Instant};

/// Sends batches to a buffer, one in flight: the next batch is sampled only after the buffer
/// acknowledged the last, so a full buffer slows the sampler down (backpressure).
pub struct BufferSink {
    socket: Socket,
    shutdown: Shutdown,
}

impl BufferSink {
    /// Sends over `socket` (a DEALER connected to a buffer's ingest endpoint) until `shutdown`.
    pub fn new(socket: Socket, shutdown: Shutdown) -> Self {
        Self { socket, shutdown }
    }
}

fn transport(e: NetError) -> PipeError {
    PipeError::Transport(e.to_string())
}

impl BatchSink for BufferSink {
    fn send(&mut self, batch: TrajectoryBatch) -> Result<(), PipeError> {
        let msg = Message::Trajectories(batch);
        while !self.socket.send(&msg, 250).map_err(transport)? {
            if self.shutdown.is_set() {
                return Err(PipeError::Closed);
            }
        }
        while !self.shutdown.is_set() {
            if let Some((_, env)) = self.socket.recv(250).map_err(transport)? {
                if env.body == Message::Ack {
                    return Ok(());
                }
            }
        }
        Err(PipeError::Closed)
    }
}

/// Receives weights and the shutdown signal into `board` until the run ends or goes quiet for
/// `idle`. Weights of another size than `n_params` (another network) are dropped. Weights older
/// than the board's newest mean the learner resumed from a checkpoint: the board is rewound.
pub fn receive_weights(
    mut sub: Socket,
    board: &WeightBoard,
    n_params: usize,
    shutdown: &Shutdown,
    idle: Duration,
) {
    let mut last_heard = Instant::now();
    while !shutdown.is_set() {
        match sub.recv(200) {
            Ok(Some((_, env))) => {
                last_heard = Instant::now();
                match env.body {
                    Message::Weights(w) => match w.to_weights() {
                        Some(w) if w.params.len() != n_params => tracing::warn!(
                            "dropped weights of {} parameters (this network has {n_params})",
                            w.params.len()
                        ),
                        Some(w) => match board.latest() {
                            Some(l) if l.version == w.version => {}
                            Some(l) if l.version > w.version => board.rewind(w),
                            _ => board.publish(w),
                        },
                        None => tracing::warn!("dropped weights with a partial value"),
                    },
                    Message::Shutdown => shutdown.trigger(),
                    _ => {}
                }
            }
            Ok(None) if last_heard.elapsed() > idle => {
                tracing::warn!("no weights for {} s, stopping", idle.as_secs());
                shutdown.trigger();
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!("weights socket failed: {e}");
                shutdown.trigger();
            }
        }
    }
}
