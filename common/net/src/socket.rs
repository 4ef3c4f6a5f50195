//! The ZeroMQ transport: sockets that send and receive [`Message`]s. Roles never see bytes;
//! received messages that are malformed, oversized or foreign are counted and dropped, and the
//! warning about them is rate-limited so that a flood cannot fill a disk.

use gfn_common::wire::{self, Envelope, Message, MAX_MESSAGE_BYTES};
use std::time::{Duration, Instant};

/// Messages a socket may queue per peer before a sender blocks (backpressure, not memory growth).
pub const HIGH_WATER_MARK: i32 = 4;

/// At most one warning about dropped messages per this interval, with the count since the last.
const DROP_WARNING_EVERY: Duration = Duration::from_secs(5);

/// A transport failure.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{what}: {source}")]
    Zmq {
        what: String,
        #[source]
        source: zmq::Error,
    },
    /// A ROUTER socket's peer is no longer connected.
    #[error("the peer is gone")]
    Unreachable,
}

fn zmq_err(what: impl Into<String>) -> impl FnOnce(zmq::Error) -> NetError {
    let what = what.into();
    move |source| NetError::Zmq { what, source }
}

/// A ZeroMQ socket speaking the gfn protocol.
pub struct Socket {
    socket: zmq::Socket,
    run: String,
    me: String,
    /// Received messages that were dropped (malformed, foreign, oversized).
    pub dropped: u64,
    dropped_warned: u64,
    last_warning: Option<Instant>,
}

/// How a socket joins its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    Bind,
    Connect,
}

impl Socket {
    /// Opens a socket of `kind` bound or connected to `endpoint`. A ROUTER socket reports sends
    /// to a peer that is gone as [`NetError::Unreachable`] instead of dropping them silently.
    pub fn open(
        ctx: &zmq::Context,
        kind: zmq::SocketType,
        join: Join,
        endpoint: &str,
        run: &str,
        me: &str,
    ) -> Result<Self, NetError> {
        let mut socket = ctx.socket(kind).map_err(zmq_err("creating a socket"))?;
        let opt = zmq_err("setting socket options");
        if kind == zmq::XPUB {
            count_every_subscription(&mut socket).map_err(zmq_err("setting socket options"))?;
        }
        (|| {
            socket.set_sndhwm(HIGH_WATER_MARK)?;
            socket.set_rcvhwm(HIGH_WATER_MARK)?;
            socket.set_linger(200)?;
            socket.set_maxmsgsize(MAX_MESSAGE_BYTES as i64)?;
            if kind == zmq::SUB {
                socket.set_subscribe(b"")?;
            }
            if kind == zmq::ROUTER {
                socket.set_router_mandatory(true)?;
            }
            Ok(())
        })()
        .map_err(opt)?;
        match join {
            Join::Bind => socket
                .bind(endpoint)
                .map_err(zmq_err(format!("binding {endpoint}")))?,
            Join::Connect => socket
                .connect(endpoint)
                .map_err(zmq_err(format!("connecting to {endpoint}")))?,
        }
        Ok(Self {
            socket,
            run: run.to_owned(),
            me: me.to_owned(),
            dropped: 0,
            dropped_warned: 0,
            last_warning: None,
        })
    }

    /// A poll item for waiting on several sockets at once.
    pub fn poll_item(&self, events: zmq::PollEvents) -> zmq::PollItem<'_> {
        self.socket.as_poll_item(events)
    }

    /// Sends a message; waits at most `timeout_ms` for room (`Ok(false)` if there was none).
    pub fn send(&self, body: &Message, timeout_ms: i32) -> Result<bool, NetError> {
        Ok(self.send_parts(None, body, timeout_ms)?.is_some())
    }

    /// [`Socket::send`], with the encoded size of what was sent (`None`: not sent).
    pub fn send_len(&self, body: &Message, timeout_ms: i32) -> Result<Option<usize>, NetError> {
        self.send_parts(None, body, timeout_ms)
    }

    /// On an XPUB socket: subscribers that joined minus those that left since the last call
    /// (each subscribing peer's frame `\x01…`, each leaving one's `\x00…`; other frames are
    /// ignored). Never blocks.
    pub fn subscription_changes(&mut self) -> i64 {
        let mut change = 0;
        while let Ok(frame) = self.socket.recv_bytes(zmq::DONTWAIT) {
            match frame.first() {
                Some(1) => change += 1,
                Some(0) => change -= 1,
                _ => {}
            }
        }
        change
    }

    /// Sends a message to the peer `identity` of a ROUTER socket.
    pub fn send_to(
        &self,
        identity: &[u8],
        body: &Message,
        timeout_ms: i32,
    ) -> Result<bool, NetError> {
        Ok(self.send_parts(Some(identity), body, timeout_ms)?.is_some())
    }

    fn send_parts(
        &self,
        identity: Option<&[u8]>,
        body: &Message,
        timeout_ms: i32,
    ) -> Result<Option<usize>, NetError> {
        let bytes = wire::encode(&self.run, &self.me, body);
        let len = bytes.len();
        let ready = match self.socket.poll(zmq::POLLOUT, timeout_ms as i64) {
            // A signal (SIGTERM, SIGINT) interrupted the wait: the caller sees its stop flag.
            Err(zmq::Error::EINTR) => return Ok(None),
            other => other.map_err(zmq_err("waiting to send"))?,
        };
        if ready == 0 {
            return Ok(None);
        }
        let sent = match identity {
            Some(id) => self.socket.send_multipart([id, &bytes[..]], zmq::DONTWAIT),
            None => self.socket.send(bytes, zmq::DONTWAIT),
        };
        match sent {
            Ok(()) => Ok(Some(len)),
            Err(zmq::Error::EAGAIN) => Ok(None),
            Err(zmq::Error::EHOSTUNREACH) => Err(NetError::Unreachable),
            Err(e) => Err(zmq_err("sending")(e)),
        }
    }

    /// Waits up to `timeout_ms` for a valid message; `None` on timeout. The identity frame of a
    /// ROUTER socket comes back with it.
    pub fn recv(&mut self, timeout_ms: i64) -> Result<Option<(Vec<u8>, Envelope)>, NetError> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.max(0) as u64);
        loop {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as i64;
            let ready = match self.socket.poll(zmq::POLLIN, left) {
                // A signal interrupted the wait: report nothing yet; the caller sees its stop flag.
                Err(zmq::Error::EINTR) => return Ok(None),
                other => other.map_err(zmq_err("waiting for a message"))?,
            };
            if ready == 0 {
                return Ok(None);
            }
            let mut parts = self
                .socket
                .recv_multipart(zmq::DONTWAIT)
                .map_err(zmq_err("receiving"))?;
            let Some(payload) = parts.pop() else { continue };
            let identity = parts.into_iter().next().unwrap_or_default();
            match wire::decode(&payload, &self.run) {
                Ok(env) => return Ok(Some((identity, env))),
                Err(e) => self.count_dropped(&e),
            }
        }
    }

    /// Counts a dropped message; warns at most once per [`DROP_WARNING_EVERY`].
    fn count_dropped(&mut self, why: &dyn std::fmt::Display) {
        self.dropped += 1;
        let due = self
            .last_warning
            .is_none_or(|t| t.elapsed() >= DROP_WARNING_EVERY);
        if due {
            tracing::warn!(
                "{}: dropped {} message(s) since the last warning ({} in all); the latest: {why}",
                self.me,
                self.dropped - self.dropped_warned,
                self.dropped
            );
            self.dropped_warned = self.dropped;
            self.last_warning = Some(Instant::now());
        }
    }
}

/// Makes an XPUB socket pass every subscription and every unsubscription to the application
/// (ZMQ_XPUB_VERBOSE and ZMQ_XPUB_VERBOSER), so that it can count its subscribers: by default
/// it reports only the first subscriber of a topic and the last to leave.
fn count_every_subscription(socket: &mut zmq::Socket) -> Result<(), zmq::Error> {
    socket.set_xpub_verbose(true)?;
    let on: i32 = 1;
    // SAFETY: the pointer is a live socket owned by `socket`; the option takes an int, passed
    // by pointer with its size, and libzmq copies it before returning.
    let rc = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            zmq_sys::ZMQ_XPUB_VERBOSER as i32,
            (&on as *const i32).cast(),
            std::mem::size_of::<i32>(),
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() })),
    }
}
