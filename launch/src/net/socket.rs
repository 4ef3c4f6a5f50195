//! The ZeroMQ transport: sockets that send and receive [`Message`]s. Roles never see bytes;
//! received messages that are malformed, oversized or foreign are counted, logged and dropped.

use anyhow::{Context, Result};
use gfn_common::wire::{self, Envelope, Message, MAX_MESSAGE_BYTES};

/// Messages a socket may queue per peer before a sender blocks (backpressure, not memory growth).
pub const HIGH_WATER_MARK: i32 = 4;

/// A ZeroMQ socket speaking the gfn protocol.
pub struct Socket {
    socket: zmq::Socket,
    run: String,
    me: String,
    /// Received messages that were dropped (malformed, foreign, oversized).
    pub dropped: u64,
}

/// How a socket joins its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    Bind,
    Connect,
}

impl Socket {
    /// Opens a socket of `kind` bound or connected to `endpoint`.
    pub fn open(
        ctx: &zmq::Context,
        kind: zmq::SocketType,
        join: Join,
        endpoint: &str,
        run: &str,
        me: &str,
    ) -> Result<Self> {
        let socket = ctx.socket(kind).context("creating a ZeroMQ socket")?;
        socket.set_sndhwm(HIGH_WATER_MARK)?;
        socket.set_rcvhwm(HIGH_WATER_MARK)?;
        socket.set_linger(200)?;
        socket.set_maxmsgsize(MAX_MESSAGE_BYTES as i64)?;
        if kind == zmq::SUB {
            socket.set_subscribe(b"")?;
        }
        match join {
            Join::Bind => socket
                .bind(endpoint)
                .with_context(|| format!("binding {endpoint}"))?,
            Join::Connect => socket
                .connect(endpoint)
                .with_context(|| format!("connecting to {endpoint}"))?,
        }
        Ok(Self {
            socket,
            run: run.to_owned(),
            me: me.to_owned(),
            dropped: 0,
        })
    }

    /// A poll item for waiting on several sockets at once.
    pub fn poll_item(&self, events: zmq::PollEvents) -> zmq::PollItem<'_> {
        self.socket.as_poll_item(events)
    }

    /// Sends a message; waits at most `timeout_ms` for room (`Ok(false)` if there was none).
    pub fn send(&self, body: &Message, timeout_ms: i32) -> Result<bool> {
        self.send_parts(None, body, timeout_ms)
    }

    /// Sends a message to the peer `identity` of a ROUTER socket.
    pub fn send_to(&self, identity: &[u8], body: &Message, timeout_ms: i32) -> Result<bool> {
        self.send_parts(Some(identity), body, timeout_ms)
    }

    fn send_parts(&self, identity: Option<&[u8]>, body: &Message, timeout_ms: i32) -> Result<bool> {
        let bytes = wire::encode(&self.run, &self.me, body);
        if self.socket.poll(zmq::POLLOUT, timeout_ms as i64)? == 0 {
            return Ok(false);
        }
        let sent = match identity {
            Some(id) => self.socket.send_multipart([id, &bytes[..]], zmq::DONTWAIT),
            None => self.socket.send(bytes, zmq::DONTWAIT),
        };
        match sent {
            Ok(()) => Ok(true),
            Err(zmq::Error::EAGAIN) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits up to `timeout_ms` for a valid message; `None` on timeout. The identity frame of a
    /// ROUTER socket comes back with it.
    pub fn recv(&mut self, timeout_ms: i64) -> Result<Option<(Vec<u8>, Envelope)>> {
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms.max(0) as u64);
        loop {
            let left = deadline
                .saturating_duration_since(std::time::Instant::now())
                .as_millis() as i64;
            if self.socket.poll(zmq::POLLIN, left)? == 0 {
                return Ok(None);
            }
            let mut parts = self.socket.recv_multipart(zmq::DONTWAIT)?;
            let Some(payload) = parts.pop() else { continue };
            let identity = parts.into_iter().next().unwrap_or_default();
            match wire::decode(&payload, &self.run) {
                Ok(env) => return Ok(Some((identity, env))),
                Err(e) => {
                    self.dropped += 1;
                    tracing::warn!(
                        "{}: dropped a message ({} dropped so far): {e}",
                        self.me,
                        self.dropped
                    );
                }
            }
        }
    }
}
