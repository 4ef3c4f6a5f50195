//! A learner's [`BufferClient`] against a fake buffer that answers badly: junk bytes, messages of
//! another run, replies to another request, batches that fail validation, batches of the wrong
//! size, or nothing at all. The client must neither crash nor hand any of it to the learner.
//!
//! The fake buffer is a raw ROUTER socket (so that it can send bytes that are no message at all)
//! on an `ipc://` endpoint in a temp folder of its own, served from a thread that reports what it
//! received and sent over a channel. The client runs in a thread of its own too, so that every
//! wait of the test is bounded even if the client hangs.

use gfn_common::pipe::Delivery;
use gfn_common::seam::{BatchSource, PipeError};
use gfn_common::wire::{self, Message};
use gfn_common::{HyperGrid, TrajectoryBatch};
use gfn_net::learner::BufferClient;
use gfn_net::{Join, Socket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const TOKEN: &str = "bad-replies-run";
const WRONG_TOKEN: &str = "some-other-run";
/// Trajectories the learner asks for each step.
const N: u32 = 4;
/// The learner's weight version in every request of these tests.
const VERSION: u64 = 5;
/// Mirrors `MAX_BAD_REPLIES` of `gfn_net::learner`: malformed replies in a row before the client
/// gives up on its buffer.
const MAX_BAD_REPLIES: usize = 100;
/// The longest any test waits for one event: far above what each step needs.
const WAIT: Duration = Duration::from_secs(20);

fn grid() -> HyperGrid {
    HyperGrid::new(2, 8).unwrap()
}

/// A batch of `n` valid trajectories of the 2-D, H = 8 grid (exit = 2), told apart by `mark`
/// (carried in every log-reward).
fn valid_batch(n: usize, mark: f32) -> TrajectoryBatch {
    let shapes: [&[u8]; 4] = [&[0, 1, 0, 2], &[2], &[1, 1, 1, 1, 1, 1, 1, 0, 2], &[0, 2]];
    let mut b = TrajectoryBatch::default();
    for i in 0..n {
        b.push(shapes[i % shapes.len()], mark - i as f32, VERSION);
    }
    assert!(b.validate(&grid()).is_ok());
    b
}

/// Four trajectories, the last of which is not valid on the grid (`defect` picks how), so
/// that only validation (not the size check) can refuse the batch.
fn invalid_batch(defect: usize) -> TrajectoryBatch {
    let mut b = valid_batch(3, -100.0 - defect as f32);
    match defect % 5 {
        // An action index out of range (the grid has actions 0, 1 and exit 2).
        0 => b.push(&[7, 2], -1.0, VERSION),
        // Walks off the grid: eight steps along axis 0 of a grid of height 8.
        1 => b.push(&[0, 0, 0, 0, 0, 0, 0, 0, 2], -1.0, VERSION),
        // Does not end with the exit action.
        2 => b.push(&[0, 1], -1.0, VERSION),
        // A NaN log-reward.
        3 => b.push(&[1, 2], f32::NAN, VERSION),
        // Arrays that disagree: one version too few.
        _ => {
            b.push(&[1, 2], -1.0, VERSION);
            b.versions.pop();
        }
    }
    assert!(b.validate(&grid()).is_err());
    assert_eq!(b.lengths.len(), N as usize);
    b
}

fn reply(id: u64, batch: TrajectoryBatch, queued: u64) -> Message {
    Message::Reply {
        id,
        batch,
        received: vec![("sampler-0".into(), 1000 + queued)],
        queued,
    }
}

/// Bytes from the fake buffer with the run's token.
fn from_buffer(body: &Message) -> Vec<u8> {
    wire::encode(TOKEN, "buffer-0", body)
}

/// What the fake buffer saw and did, in order.
#[derive(Debug)]
enum Event {
    /// A request from the client arrived (the `k`-th, counting from 0).
    Request {
        k: usize,
        id: u64,
        n: u32,
        version: u64,
        min_version: u64,
    },
    /// All answers to request `k` went out.
    Answered { k: usize, messages: usize },
}

/// A temp folder of one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("gfn-bad-replies-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn endpoint(&self, name: &str) -> String {
        format!("ipc://{}", self.0.join(name).display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How the fake answers its `k`-th request (of id `id`): the raw messages to send back.
type Script = Box<dyn FnMut(usize, u64) -> Vec<Vec<u8>> + Send>;

/// A fake buffer: a ROUTER bound on `endpoint`, answering each request as its script says.
struct FakeBuffer {
    events: Receiver<Event>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeBuffer {
    fn start(ctx: &zmq::Context, endpoint: &str, mut script: Script) -> Self {
        let socket = ctx.socket(zmq::ROUTER).unwrap();
        socket.set_linger(0).unwrap();
        // Refuse instead of silently dropping what cannot go out, and never block for long.
        socket.set_router_mandatory(true).unwrap();
        socket.set_sndtimeo(5_000).unwrap();
        socket.bind(endpoint).unwrap();
        let (tx, events) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            serve(&socket, &tx, &stopping, &mut script);
        });
        Self {
            events,
            stop,
            thread: Some(thread),
        }
    }

    /// The next event, or `None` if none came within `wait`.
    fn next_event(&self, wait: Duration) -> Option<Event> {
        match self.events.recv_timeout(wait) {
            Ok(e) => Some(e),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("the fake buffer's thread ended"),
        }
    }

    /// The next event while `client` is still waiting for its batch. Fails at once if the
    /// client returned (or panicked) first, and after `WAIT` if neither happened.
    fn next_event_while(&self, client: &Receiver<Outcome>, expecting: &str) -> Event {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(e) = self.next_event(Duration::from_millis(20)) {
                return e;
            }
            match client.try_recv() {
                Ok(out) => panic!("next_batch returned {:?} before {expecting}", out.result),
                Err(TryRecvError::Disconnected) => {
                    panic!("the client panicked before {expecting}")
                }
                Err(TryRecvError::Empty) => {}
            }
        }
        panic!("neither {expecting} nor an answer of the client within {WAIT:?}")
    }

    /// Every event so far.
    fn drain(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }
}

impl Drop for FakeBuffer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let outcome = t.join();
            if !std::thread::panicking() {
                outcome.expect("the fake buffer's thread panicked");
            }
        }
    }
}

fn serve(socket: &zmq::Socket, tx: &Sender<Event>, stop: &AtomicBool, script: &mut Script) {
    let mut k = 0;
    while !stop.load(Ordering::SeqCst) {
        if socket.poll(zmq::POLLIN, 20).unwrap() == 0 {
            continue;
        }
        let parts = socket.recv_multipart(0).unwrap();
        assert_eq!(
            parts.len(),
            2,
            "a DEALER's message is its identity and one frame"
        );
        let (identity, payload) = (&parts[0], &parts[1]);
        let env = wire::decode(payload, TOKEN).expect("the client sends well-formed messages");
        let Message::Request {
            id,
            n,
            version,
            min_version,
        } = env.body
        else {
            continue;
        };
        let _ = tx.send(Event::Request {
            k,
            id,
            n,
            version,
            min_version,
        });
        let answers = script(k, id);
        for bytes in &answers {
            socket
                .send_multipart([&identity[..], &bytes[..]], 0)
                .expect("the client takes the fake buffer's answers");
        }
        let _ = tx.send(Event::Answered {
            k,
            messages: answers.len(),
        });
        k += 1;
    }
}

/// What a client thread reports back.
struct Outcome {
    result: Result<Option<Delivery>, PipeError>,
    took: Duration,
    per_sampler: Vec<(String, u64)>,
    queue_depth: Option<u64>,
    restarts: u64,
}

/// Runs one `next_batch(VERSION)` of a real `BufferClient` (n = 4, not strict, on the 2-D H = 8
/// grid) connected to `endpoint`, in a thread of its own; the outcome comes back on the channel
/// (which disconnects, without an outcome, if the client panics).
fn run_client(
    ctx: &zmq::Context,
    endpoint: &str,
    patience: Duration,
    resend_after: Duration,
) -> Receiver<Outcome> {
    let (tx, rx) = mpsc::channel();
    let ctx = ctx.clone();
    let endpoint = endpoint.to_owned();
    std::thread::spawn(move || {
        let socket = Socket::open(
            &ctx,
            zmq::DEALER,
            Join::Connect,
            &endpoint,
            TOKEN,
            "learner-0",
        )
        .unwrap();
        let mut client = BufferClient::new(socket, N, false, None, patience, resend_after, grid());
        let start = Instant::now();
        let result = client.next_batch(VERSION);
        let _ = tx.send(Outcome {
            result,
            took: start.elapsed(),
            per_sampler: client.per_sampler(),
            queue_depth: client.queue_depth(),
            restarts: client.losses().buffer_restarts,
        });
    });
    rx
}

/// The client's outcome, failing the test if it takes longer than `wait` or panics.
fn outcome(rx: &Receiver<Outcome>, wait: Duration) -> Outcome {
    match rx.recv_timeout(wait) {
        Ok(o) => o,
        Err(RecvTimeoutError::Timeout) => panic!("next_batch did not return within {wait:?}"),
        Err(RecvTimeoutError::Disconnected) => panic!("the client panicked"),
    }
}

/// Checks that `event` is the `k`-th request, for request 0 of `n = 4` at `VERSION`.
fn expect_request(event: Event, k: usize) {
    match event {
        Event::Request {
            k: got,
            id,
            n,
            version,
            min_version,
        } => {
            assert_eq!(got, k);
            assert_eq!(id, 0, "request {k} asks again for the same batch");
            assert_eq!((n, version, min_version), (N, VERSION, 0));
        }
        other => panic!("expected request {k}, got {other:?}"),
    }
}

#[test]
fn bad_replies_before_a_good_one_are_dropped() {
    let dir = TempDir::new("bad_replies_before_a_good_one_are_dropped");
    let endpoint = dir.endpoint("serve");
    let ctx = zmq::Context::new();
    let good = valid_batch(N as usize, 1.0);
    let good_reply = reply(0, good.clone(), 17);
    let fake = FakeBuffer::start(
        &ctx,
        &endpoint,
        Box::new(move |k, id| match k {
            0 => vec![
                // Bytes that are no message at all.
                b"\xff\x00 this is not MessagePack \xc1\xc1".to_vec(),
                // A reply, valid in every other way, of another run.
                wire::encode(WRONG_TOKEN, "buffer-0", &reply(id, valid_batch(4, 10.0), 1)),
                // A valid reply to another request.
                from_buffer(&reply(id + 1, valid_batch(4, 20.0), 2)),
                // The right request, a batch with an action index out of range.
                from_buffer(&reply(id, invalid_batch(0), 3)),
            ],
            // A batch that walks off the grid.
            1 => vec![from_buffer(&reply(id, invalid_batch(1), 4))],
            // Three trajectories for a request of four.
            2 => vec![from_buffer(&reply(id, valid_batch(3, 30.0), 5))],
            3 => vec![from_buffer(&good_reply)],
            _ => vec![],
        }),
    );
    // Long patience and resend period: every request the fake sees is one the client made after
    // dropping a reply, none is a resend for lack of an answer.
    let client = run_client(&ctx, &endpoint, WAIT, WAIT);
    for k in 0..4 {
        expect_request(fake.next_event_while(&client, &format!("request {k}")), k);
        match fake.next_event(WAIT) {
            Some(Event::Answered { k: got, .. }) => assert_eq!(got, k),
            other => panic!("expected the answers to request {k}, got {other:?}"),
        }
    }
    let out = outcome(&client, WAIT);
    let delivery = out
        .result
        .expect("the good reply gets through")
        .expect("a batch, not the end of the run");
    assert_eq!(
        delivery.training, good,
        "exactly the good batch is trained on"
    );
    assert_eq!(delivery.fresh, good);
    // Only the good reply's bookkeeping was taken.
    assert_eq!(out.queue_depth, Some(17));
    assert_eq!(out.per_sampler, vec![("sampler-0".to_string(), 1017)]);
    assert_eq!(out.restarts, 0);
    // Nothing else was asked.
    assert!(fake.drain().is_empty());
}

#[test]
fn only_malformed_replies_end_in_an_error() {
    let dir = TempDir::new("only_malformed_replies_end_in_an_error");
    let endpoint = dir.endpoint("serve");
    let ctx = zmq::Context::new();
    let fake = FakeBuffer::start(
        &ctx,
        &endpoint,
        // Decodable replies to the right request, each malformed in some way: four kinds that
        // fail validation and one of the wrong size.
        Box::new(|k, id| {
            let batch = match k % 6 {
                5 => valid_batch(N as usize + 1, 50.0),
                d => invalid_batch(d),
            };
            vec![from_buffer(&reply(id, batch, k as u64))]
        }),
    );
    let client = run_client(&ctx, &endpoint, WAIT, WAIT);
    let out = outcome(&client, 3 * WAIT);
    match &out.result {
        Err(PipeError::Invalid(why)) => assert!(why.contains("malformed"), "{why}"),
        other => panic!("expected PipeError::Invalid, got {other:?}"),
    }
    assert!(out.took < 2 * WAIT, "gave up only after {:?}", out.took);
    assert_eq!(
        out.queue_depth, None,
        "no malformed reply's bookkeeping was taken"
    );
    assert!(out.per_sampler.is_empty());
    let events = fake.drain();
    let requests = events
        .iter()
        .filter(|e| matches!(e, Event::Request { id: 0, .. }))
        .count();
    assert!(
        events.iter().all(|e| match e {
            Event::Request { id, .. } => *id == 0,
            Event::Answered { messages, .. } => *messages == 1,
        }),
        "{events:?}"
    );
    assert_eq!(
        requests, MAX_BAD_REPLIES,
        "one request per malformed reply, up to the bound"
    );
}

#[test]
fn a_buffer_that_never_answers_times_out() {
    let dir = TempDir::new("a_buffer_that_never_answers_times_out");
    let endpoint = dir.endpoint("serve");
    let ctx = zmq::Context::new();
    let fake = FakeBuffer::start(&ctx, &endpoint, Box::new(|_, _| vec![]));
    let patience = Duration::from_millis(1500);
    let client = run_client(&ctx, &endpoint, patience, Duration::from_millis(200));
    // The request, then at least one resend of it, as the client waits.
    expect_request(fake.next_event_while(&client, "the request"), 0);
    let mut requests = 1;
    while requests < 2 {
        match fake.next_event_while(&client, "the request is made again") {
            Event::Answered { .. } => {}
            Event::Request { k, id, .. } => {
                assert_eq!((k, id), (requests, 0), "the same request again");
                requests += 1;
            }
        }
    }
    let out = outcome(&client, patience + WAIT);
    match &out.result {
        Err(PipeError::Timeout { what, .. }) => assert!(what.contains("buffer"), "{what}"),
        other => panic!("expected PipeError::Timeout, got {other:?}"),
    }
    assert!(out.took >= patience, "gave up after {:?}", out.took);
    assert!(
        out.took < patience + WAIT,
        "gave up only after {:?}",
        out.took
    );
    assert_eq!(out.queue_depth, None);
    let resends = fake
        .drain()
        .iter()
        .filter(|e| matches!(e, Event::Request { id: 0, .. }))
        .count();
    // Every 200 ms for 1.5 s: a handful, not a flood.
    assert!(requests + resends <= 15, "{} requests", requests + resends);
}
