//! A sampler's two sockets: trajectories out to its buffer ([`BufferSink`]), weights in from
//! learner rank 0 ([`receive_weights`]).

use crate::socket::{NetError, Socket};
use gfn_common::pipe::{Shutdown, WeightBoard};
use gfn_common::seam::{BatchSink, PipeError};
use gfn_common::wire::Message;
use gfn_common::TrajectoryBatch;
use std::time::{Duration, Instant};

/// Sends batches to a buffer, one in flight: the next batch is sampled only after the buffer
/// acknowledged the last, so a full buffer slows the sampler down (backpressure). A batch whose
/// acknowledgement is late is sent again (same number): if the buffer died and was started
/// again, the batch reaches the new one; if it was only full, it takes the batch once.
pub struct BufferSink {
    socket: Socket,
    shutdown: Shutdown,
    resend_after: Duration,
    next_seq: u64,
}

impl BufferSink {
    /// Sends over `socket` (a DEALER connected to a buffer's ingest endpoint) until `shutdown`,
    /// sending a batch again every `resend_after` until it is acknowledged.
    pub fn new(socket: Socket, shutdown: Shutdown, resend_after: Duration) -> Self {
        Self {
            socket,
            shutdown,
            resend_after,
            next_seq: 0,
        }
    }

    /// Sends `msg`, waiting for room until shutdown.
    fn send_once(&mut self, msg: &Message) -> Result<(), PipeError> {
        while !self.socket.send(msg, 250).map_err(transport)? {
            if self.shutdown.is_set() {
                return Err(PipeError::Closed);
            }
        }
        Ok(())
    }
}

fn transport(e: NetError) -> PipeError {
    PipeError::Transport(e.to_string())
}

impl BatchSink for BufferSink {
    fn send(&mut self, batch: TrajectoryBatch) -> Result<(), PipeError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let msg = Message::Trajectories { seq, batch };
        self.send_once(&msg)?;
        let mut sent = Instant::now();
        while !self.shutdown.is_set() {
            if let Some((_, env)) = self.socket.recv(250).map_err(transport)? {
                if env.body == (Message::Ack { seq }) {
                    return Ok(());
                }
            }
            if sent.elapsed() >= self.resend_after {
                tracing::debug!(
                    "batch {seq} not acknowledged for {:?}: sending it again",
                    self.resend_after
                );
                self.send_once(&msg)?;
                sent = Instant::now();
            }
        }
        Err(PipeError::Closed)
    }
}

/// Receives weights and the shutdown signal into `board` until the run ends or goes quiet for
/// `idle`. Weights of another size than `n_params` (another network) are dropped. Weights older
/// than the board's newest mean the learner resumed from a checkpoint: the board is rewound; the
/// newest version again is announced to the board (its learner still waits for data of it).
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
                            Some(l) if l.version == w.version => board.reannounce(),
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
