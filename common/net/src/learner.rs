//! A learner's sockets: batches from its buffer ([`BufferClient`]) and, on rank 0, weights out
//! to the samplers ([`Publisher`]).

use crate::socket::{NetError, Socket};
use gfn_common::pipe::{Delivery, Shutdown, Weights};
use gfn_common::seam::{BatchSource, PipeError, SourceLosses, WeightSink};
use gfn_common::wire::{Message, WireWeights};
use gfn_common::HyperGrid;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Malformed replies in a row before the learner gives up on its buffer.
const MAX_BAD_REPLIES: usize = 100;

/// How often the latest weights go out again while the learner waits, so that samplers that
/// join late (or missed a message) catch up.
const REPUBLISH_EVERY: Duration = Duration::from_millis(200);

fn transport(e: NetError) -> PipeError {
    PipeError::Transport(e.to_string())
}

/// Rank 0's weight publisher (an XPUB socket: a PUB that also hears its subscribers come and
/// go, so that it knows how many copies of each message leave the process).
pub struct Publisher {
    socket: Socket,
    latest: Option<Message>,
    last_sent: Instant,
    subscribers: i64,
    /// Weight bytes handed to ZeroMQ for all subscribers together: each message's encoded
    /// size times the subscribers at the time.
    bytes_out: u64,
}

impl Publisher {
    /// Publishes on `socket` (XPUB; on a plain PUB socket no subscriber is counted).
    pub fn new(socket: Socket) -> Self {
        Self {
            socket,
            latest: None,
            last_sent: Instant::now(),
            subscribers: 0,
            bytes_out: 0,
        }
    }

    /// Weight bytes sent so far, every copy counted.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out
    }

    /// Processes that subscribe now.
    pub fn subscribers(&mut self) -> u64 {
        self.subscribers = (self.subscribers + self.socket.subscription_changes()).max(0);
        self.subscribers as u64
    }

    fn send(&mut self, msg: &Message) -> Result<(), NetError> {
        let copies = self.subscribers();
        if let Some(len) = self.socket.send_len(msg, 0)? {
            self.bytes_out += len as u64 * copies;
        }
        Ok(())
    }

    fn publish(&mut self, w: &Weights) {
        let msg = Message::Weights(WireWeights::from(w));
        if let Err(e) = self.send(&msg) {
            tracing::warn!("cannot publish weights: {e}");
        }
        self.latest = Some(msg);
        self.last_sent = Instant::now();
    }

    fn republish_if_quiet(&mut self) {
        if self.last_sent.elapsed() > REPUBLISH_EVERY {
            if let Some(msg) = self.latest.take() {
                let _ = self.send(&msg);
                self.latest = Some(msg);
            }
            self.last_sent = Instant::now();
        }
    }

    /// Tells the samplers that the run is over (a few times: PUB drops what nobody reads yet).
    pub fn shutdown(&self) {
        for _ in 0..5 {
            let _ = self.socket.send(&Message::Shutdown, 0);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The publisher, shared by the weight sink and the buffer client (which republishes while it
/// waits). The learner loop is single-threaded.
pub type SharedPublisher = Option<Rc<RefCell<Publisher>>>;

/// The learner's [`WeightSink`]: rank 0 publishes, other ranks hold `None`.
pub struct PublisherSink(pub SharedPublisher);

impl WeightSink for PublisherSink {
    fn publish(&mut self, weights: Weights) {
        if let Some(p) = &self.0 {
            p.borrow_mut().publish(&weights);
        }
    }
}

/// Asks the buffer for this replica's share of each batch. A request whose reply is late is
/// made again (same number), so a buffer that died and was started again gets it; a reply to an
/// earlier request is ignored.
pub struct BufferClient {
    socket: Socket,
    n: u32,
    resend_after: Duration,
    next_id: u64,
    strict: bool,
    publisher: SharedPublisher,
    received: Vec<(String, u64)>,
    queued: Option<u64>,
    patience: Duration,
    /// To check replies before they reach the learner.
    grid: HyperGrid,
    /// Once set (SIGINT, SIGTERM), waiting for a reply ends.
    stop: Shutdown,
    losses: SourceLosses,
}

impl BufferClient {
    /// Asks over `socket` (a DEALER connected to a buffer's serve endpoint) for `n` trajectories
    /// a step, only of the learner's own version when `strict`; gives up after `patience`
    /// without a reply.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        socket: Socket,
        n: u32,
        strict: bool,
        publisher: SharedPublisher,
        patience: Duration,
        resend_after: Duration,
        grid: HyperGrid,
    ) -> Self {
        Self {
            socket,
            n,
            resend_after,
            next_id: 0,
            strict,
            publisher,
            received: vec![],
            queued: None,
            patience,
            grid,
            stop: Shutdown::default(),
            losses: SourceLosses::default(),
        }
    }

    /// Stops waiting for replies once `stop` is set: the learner loop then stops at this step.
    pub fn stopping_on(mut self, stop: Shutdown) -> Self {
        self.stop = stop;
        self
    }

    /// A buffer counts what it received since it started: a count that went down means a new
    /// buffer, and what the old one held when last heard from is lost.
    fn notice_restart(&mut self, received: &[(String, u64)]) {
        let total = |r: &[(String, u64)]| r.iter().map(|(_, n)| n).sum::<u64>();
        if total(received) < total(&self.received) {
            let lost = self.queued.unwrap_or(0);
            self.losses.buffer_restarts += 1;
            self.losses.trajectories_lost += lost;
            tracing::warn!(
                "the buffer started over: at least {lost} trajectories were lost with it"
            );
        }
    }

    /// Tells the buffer that the run is over.
    pub fn shutdown(&self) {
        let _ = self.socket.send(&Message::Shutdown, 500);
    }

    /// Sends `request`, waiting for room for at most the patience.
    fn send_request(&mut self, request: &Message, start: Instant) -> Result<(), PipeError> {
        while !self.socket.send(request, 250).map_err(transport)? {
            if start.elapsed() > self.patience {
                return Err(self.timeout());
            }
        }
        Ok(())
    }

    fn timeout(&self) -> PipeError {
        PipeError::Timeout {
            what: "no batch from the buffer",
            secs: self.patience.as_secs(),
        }
    }

    /// Sends request `id` and waits for its reply, asking again every `resend_after`;
    /// `Ok(None)` on shutdown.
    fn request(&mut self, id: u64, request: &Message) -> Result<Option<Message>, PipeError> {
        let start = Instant::now();
        self.send_request(request, start)?;
        let mut sent = Instant::now();
        loop {
            if let Some(p) = &self.publisher {
                p.borrow_mut().republish_if_quiet();
            }
            if self.stop.is_set() {
                return Ok(None);
            }
            match self.socket.recv(100).map_err(transport)? {
                Some((_, env)) => match env.body {
                    reply @ Message::Reply { id: got, .. } if got == id => return Ok(Some(reply)),
                    Message::Shutdown => return Ok(None),
                    _ => {}
                },
                None if start.elapsed() > self.patience => return Err(self.timeout()),
                None if sent.elapsed() >= self.resend_after => {
                    tracing::debug!("no reply to request {id}: asking again");
                    self.send_request(request, start)?;
                    sent = Instant::now();
                }
                None => {}
            }
        }
    }
}

impl BatchSource for BufferClient {
    fn next_batch(&mut self, version: u64) -> Result<Option<Delivery>, PipeError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = Message::Request {
            id,
            n: self.n,
            version,
            min_version: if self.strict { version } else { 0 },
        };
        for _ in 0..MAX_BAD_REPLIES {
            let Some(Message::Reply {
                batch,
                received,
                queued,
                ..
            }) = self.request(id, &request)?
            else {
                return Ok(None);
            };
            let problem = match batch.validate(&self.grid) {
                Err(e) => e.to_string(),
                Ok(()) if batch.len() != self.n as usize => {
                    format!("{} trajectories for a request of {}", batch.len(), self.n)
                }
                Ok(()) => {
                    self.notice_restart(&received);
                    self.received = received;
                    self.queued = Some(queued);
                    return Ok(Some(Delivery {
                        fresh: batch.clone(),
                        training: batch,
                    }));
                }
            };
            tracing::warn!("dropped a reply of the buffer: {problem}");
        }
        Err(PipeError::Invalid(format!(
            "{MAX_BAD_REPLIES} malformed replies in a row from the buffer"
        )))
    }

    fn per_sampler(&self) -> Vec<(String, u64)> {
        self.received.clone()
    }

    fn losses(&self) -> SourceLosses {
        self.losses
    }

    fn queue_depth(&self) -> Option<u64> {
        self.queued
    }
}
