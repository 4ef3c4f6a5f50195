//! The buffer's state machine, free of any transport: batches are offered by samplers and
//! requests made by learners; [`BufferCore::step`] says which batches are now stored (acknowledge
//! them) and which requests are now answered. The crossbeam driver ([`crate::channel`]) and the
//! ZeroMQ driver (`gfn-net`) only move messages in and out, so every rule below (the rate
//! limiter, the trajectory budget, stale data, per-peer limits, peers that vanish) holds in one
//! process and across processes alike.

use crate::limiter::RateLimiter;
use crate::recorder::Recorder;
use crate::store::Store;
use gfn_common::rng::{stream_rng, Stream};
use gfn_common::{Damaged, HyperGrid, TrajectoryBatch};
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// A peer as its driver knows it (a ZeroMQ routing identity; a fixed name in one process).
pub type Peer = Vec<u8>;

/// Most batches of one peer held before their acknowledgement: a sampler has one in flight, so
/// more come only from a peer that ignores the protocol.
pub const MAX_PARKED_PER_PEER: usize = 16;

/// The random stream of buffer `id`'s `k`-th replay sample.
pub fn buffer_rng(seed: u64, id: u64, k: u64) -> SmallRng {
    stream_rng(seed, Stream::Buffer(id), k)
}

/// The rules a buffer serves by (its section of the run configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct BufferRules {
    /// This buffer's number (its random stream).
    pub id: u64,
    pub seed: u64,
    /// Trajectories per learner step, all learner replicas together.
    pub batch_size: usize,
    /// Learner steps in the run: with a FIFO, the buffer takes in no more than they still need.
    pub n_steps: u64,
    /// Trajectories older than the requesting learner by more than this are dropped.
    pub max_policy_lag: Option<u64>,
    /// Strict on-policy (`--sync`): a request takes only trajectories of exactly its version.
    pub exact_versions: bool,
}

/// A learner's request waiting for data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pending {
    peer: Peer,
    /// The learner's number for the request, returned with the answer.
    id: u64,
    n: usize,
    version: u64,
    min_version: u64,
}

/// What a buffer did: written to `buffer-<id>.json` by a buffer process and into the summary of
/// `gfn train`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BufferReport {
    /// Trajectories received from each sampler.
    pub received: BTreeMap<String, u64>,
    /// Trajectories inserted into the store (recorded, with `--record`).
    pub inserted: u64,
    /// Batches inserted.
    pub inserted_batches: u64,
    /// Trajectories handed to learners.
    pub served: u64,
    /// Trajectories preloaded from a recording (`--load`).
    pub loaded: u64,
    /// Batches and requests rejected as invalid.
    pub invalid: u64,
    /// Messages dropped by the transport (malformed, foreign, oversized).
    pub dropped: u64,
    /// Answers that could not be delivered because their learner had gone; their trajectories
    /// went back into the store.
    pub undeliverable: u64,
    /// Batches a sampler sent again (its acknowledgement was late) that were already taken.
    #[serde(default)]
    pub duplicates: u64,
    /// Trajectories a full FIFO dropped unserved.
    #[serde(default)]
    pub evicted: u64,
    /// Trajectories dropped unserved for being older than `--max_policy_lag` allows (or, with
    /// `--sync`, of another version than the learner's).
    #[serde(default)]
    pub stale: u64,
    /// The rate limiter (with `--samples_per_insert`, or one sample per insert in one process).
    pub limiter: Option<RateLimiter>,
}

/// Why an offer or a request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    #[error("too many unacknowledged batches from this peer")]
    TooManyInFlight,
    #[error(
        "a request for {n} trajectories (this buffer holds at most {capacity}; is its \
         --batch_size the learner's?)"
    )]
    BadRequest { n: usize, capacity: usize },
}

/// What the driver must send after a [`BufferCore::step`].
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The peer's batch `seq` is stored: it may send the next.
    Ack { peer: Peer, seq: u64 },
    /// The answer to the peer's request `id`, and the trajectories inserted since the previous
    /// answer (the freshly sampled data behind it, for visited-state metrics).
    Reply {
        peer: Peer,
        id: u64,
        batch: TrajectoryBatch,
        fresh: TrajectoryBatch,
    },
}

/// The part of a buffer that a checkpoint keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoreState {
    pub store: Store,
    pub limiter: Option<RateLimiter>,
    pub takes: u64,
    pub report: BufferReport,
}

impl CoreState {
    /// The state as bytes, for a checkpoint.
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).unwrap_or_default()
    }

    /// Reads a state written by [`CoreState::encode`] and checks it against `grid`.
    pub fn decode(bytes: &[u8], grid: &HyperGrid) -> Result<Self, Damaged> {
        let state: Self = rmp_serde::from_slice(bytes).map_err(|e| Damaged(e.to_string()))?;
        state.store.check(grid)?;
        Ok(state)
    }
}

/// The buffer between samplers and learners.
pub struct BufferCore {
    rules: BufferRules,
    grid: HyperGrid,
    state: CoreState,
    recorder: Recorder,
    /// Batches waiting for room, with their sender's number for them.
    parked: VecDeque<(Peer, u64, TrajectoryBatch)>,
    /// The newest batch number stored from each sampler: a batch sent again is recognised.
    stored_seq: std::collections::HashMap<Peer, u64>,
    /// Acknowledgements owed for batches sent again after they were stored.
    reacks: Vec<(Peer, u64)>,
    pending: VecDeque<Pending>,
    fresh: TrajectoryBatch,
    /// The newest version a learner asked with, and the trajectories served at it: the run
    /// still needs `n_steps − last_version` steps of data, less what was served at that version
    /// already. The version goes down when a learner resumes from a checkpoint.
    last_version: u64,
    served_at_last_version: u64,
    /// Whether the head batch, or the head request, already waited once (each wait counts once).
    insert_waiting: bool,
    sample_waiting: bool,
}

impl BufferCore {
    /// A buffer serving from `store`, limited by `limiter`, recording with `recorder`.
    pub fn new(
        rules: BufferRules,
        grid: HyperGrid,
        store: Store,
        limiter: Option<RateLimiter>,
        recorder: Recorder,
    ) -> Self {
        let state = CoreState {
            store,
            limiter: limiter.clone(),
            takes: 0,
            report: BufferReport {
                limiter,
                ..BufferReport::default()
            },
        };
        Self {
            rules,
            grid,
            state,
            recorder,
            parked: VecDeque::new(),
            stored_seq: std::collections::HashMap::new(),
            reacks: vec![],
            pending: VecDeque::new(),
            fresh: TrajectoryBatch::default(),
            last_version: 0,
            served_at_last_version: 0,
            insert_waiting: false,
            sample_waiting: false,
        }
    }

    /// Continues from a checkpointed state.
    pub fn restore(&mut self, state: CoreState) {
        self.state = state;
    }

    /// The grid the buffer's trajectories live on.
    pub fn grid(&self) -> &HyperGrid {
        &self.grid
    }

    /// The state a checkpoint keeps (batches still waiting for room are not part of it: their
    /// samplers send them again).
    pub fn state(&self) -> &CoreState {
        &self.state
    }

    /// What the buffer did so far.
    pub fn report(&self) -> BufferReport {
        let mut r = self.state.report.clone();
        r.limiter = self.state.limiter.clone();
        (r.evicted, r.stale) = self.state.store.discarded();
        r
    }

    /// Trajectories received so far from each sampler.
    pub fn received(&self) -> Vec<(String, u64)> {
        let r = &self.state.report.received;
        r.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Sets the count of messages its transport dropped so far.
    pub fn set_dropped(&mut self, n: u64) {
        self.state.report.dropped = n;
    }

    /// Trajectories held now.
    pub fn queued(&self) -> u64 {
        self.state.store.len() as u64
    }

    /// Stores a recording before the run starts (`--load`); it counts as inserted.
    pub fn preload(&mut self, batch: &TrajectoryBatch) {
        self.state.store.reserve(batch.len());
        self.state.store.insert(batch);
        self.state.report.loaded += batch.len() as u64;
        if let Some(l) = self.state.limiter.as_mut() {
            l.inserted(batch.len() as u64);
        }
    }

    /// A sampler offers its batch `seq`. Accepted batches wait until [`step`](Self::step)
    /// stores them and acknowledges them; a refused one should be acknowledged at once by the
    /// driver so that an honest sampler goes on. A batch sent again (its acknowledgement was
    /// late) is taken once: acknowledged again if stored, ignored if still waiting.
    pub fn offer(
        &mut self,
        peer: Peer,
        sender: &str,
        seq: u64,
        batch: TrajectoryBatch,
    ) -> Result<(), Refusal> {
        if self.stored_seq.get(&peer).is_some_and(|&s| seq <= s) {
            self.state.report.duplicates += 1;
            self.reacks.push((peer, seq));
            return Ok(());
        }
        if self.parked.iter().any(|(p, s, _)| *p == peer && *s == seq) {
            self.state.report.duplicates += 1;
            return Ok(());
        }
        if self.parked.iter().filter(|(p, _, _)| *p == peer).count() >= MAX_PARKED_PER_PEER {
            self.state.report.invalid += 1;
            return Err(Refusal::TooManyInFlight);
        }
        if let Err(e) = batch.validate(&self.grid) {
            self.state.report.invalid += 1;
            return Err(Refusal::InvalidBatch(e.to_string()));
        }
        let count = self
            .state
            .report
            .received
            .entry(sender.to_owned())
            .or_insert(0);
        if *count == 0 {
            tracing::info!("buffer-{}: {sender} joined", self.rules.id);
        }
        *count += batch.len() as u64;
        self.parked.push_back((peer, seq, batch));
        Ok(())
    }

    /// A learner asks for `n` trajectories at weight version `version` (none older than
    /// `min_version`). A peer has one request at a time: a new one replaces its older one, so a
    /// learner that asks again after a timeout is not served twice.
    pub fn request(
        &mut self,
        peer: Peer,
        id: u64,
        n: usize,
        version: u64,
        min_version: u64,
    ) -> Result<(), Refusal> {
        if n == 0 || n > self.state.store.capacity() {
            self.state.report.invalid += 1;
            return Err(Refusal::BadRequest {
                n,
                capacity: self.state.store.capacity(),
            });
        }
        let oldest = self
            .rules
            .max_policy_lag
            .map_or(0, |lag| version.saturating_sub(lag));
        self.pending.retain(|p| p.peer != peer);
        if version < self.last_version {
            // The learners went back to a checkpoint. A request made at one of the abandoned
            // steps comes from a learner that is gone; left first in line it would be served
            // nothing (no data of its version comes any more) and, with exact versions, it
            // would discard as stale the very batches the resumed learner waits for.
            self.pending.retain(|p| p.version <= version);
        }
        self.pending.push_back(Pending {
            peer,
            id,
            n,
            version,
            min_version: min_version.max(oldest),
        });
        if version != self.last_version {
            self.last_version = version;
            self.served_at_last_version = 0;
        }
        Ok(())
    }

    /// The peer is gone (its process died): its requests are forgotten and its waiting batches
    /// dropped, so that nothing is handed to nobody.
    pub fn peer_gone(&mut self, peer: &[u8]) {
        self.pending.retain(|p| p.peer != peer);
        self.parked.retain(|(p, _, _)| p != peer);
    }

    /// An answer could not be delivered (its learner is gone): the trajectories go back into the
    /// store and the learner's other requests are forgotten.
    pub fn undeliverable(&mut self, peer: &[u8], batch: &TrajectoryBatch) {
        let n = batch.len() as u64;
        self.state.store.put_back(batch);
        self.state.report.served -= n.min(self.state.report.served);
        self.state.report.undeliverable += 1;
        if let Some(l) = self.state.limiter.as_mut() {
            l.sampled = l.sampled.saturating_sub(n);
        }
        self.peer_gone(peer);
    }

    /// Stores the waiting batches that may go in now and answers the requests that can be
    /// answered now, oldest first.
    pub fn step(&mut self) -> Vec<Output> {
        let mut out: Vec<Output> = self
            .reacks
            .drain(..)
            .map(|(peer, seq)| Output::Ack { peer, seq })
            .collect();
        out.extend(self.insert_parked());
        let discarded = self.state.store.discarded();
        self.serve_pending(&mut out);
        if self.state.store.discarded() != discarded {
            // Stale data dropped while serving owes no samples any more: batches held back
            // by the rate limiter may go in now, and the requests be served with them.
            out.extend(self.insert_parked());
            self.serve_pending(&mut out);
        }
        out
    }

    /// Tells the rate limiter how many inserted trajectories the store dropped unserved.
    fn settle_discards(&mut self) {
        let (evicted, stale) = self.state.store.discarded();
        if let Some(l) = self.state.limiter.as_mut() {
            l.set_discarded(evicted + stale);
        }
    }

    /// Whether the learners still need more than the queue holds. A FIFO hands each trajectory
    /// out once: beyond what the remaining steps consume, nobody would use them. A batch goes in
    /// while any of it is needed (a sampler's batch may be larger than what one learner replica
    /// still lacks at the last step).
    fn within_budget(&self) -> bool {
        if !matches!(self.state.store, Store::Fifo(_)) {
            return true;
        }
        let remaining = self.rules.n_steps.saturating_sub(self.last_version);
        let need = remaining
            .saturating_mul(self.rules.batch_size as u64)
            .saturating_sub(self.served_at_last_version);
        self.queued() < need
    }

    fn insert_parked(&mut self) -> Vec<Output> {
        let mut out = vec![];
        while let Some((_, _, batch)) = self.parked.front() {
            let n = batch.len() as u64;
            // A full FIFO takes nothing, so samplers wait instead of producing trajectories that
            // would be evicted unused (backpressure); the rate limiter holds them back the same
            // way when they run ahead of the learners.
            let allowed = self.within_budget()
                && self.state.store.has_room_for(n as usize)
                && self.state.limiter.as_ref().is_none_or(|l| l.can_insert(n));
            if !allowed {
                let waits = self.state.limiter.as_mut().map(|l| &mut l.insert_waits);
                count_wait(&mut self.insert_waiting, waits);
                break;
            }
            self.insert_waiting = false;
            let Some((peer, seq, batch)) = self.parked.pop_front() else {
                break;
            };
            self.stored_seq.insert(peer.clone(), seq);
            self.recorder.record(&batch);
            self.state.store.insert(&batch);
            self.settle_discards();
            self.fresh.extend(&batch);
            self.state.report.inserted += n;
            self.state.report.inserted_batches += 1;
            if let Some(l) = self.state.limiter.as_mut() {
                l.inserted(n);
            }
            out.push(Output::Ack { peer, seq });
        }
        out
    }

    fn serve_pending(&mut self, out: &mut Vec<Output>) {
        while let Some(p) = self.pending.front() {
            let n = p.n as u64;
            if self
                .state
                .limiter
                .as_ref()
                .is_some_and(|l| !l.can_sample(n))
            {
                let waits = self.state.limiter.as_mut().map(|l| &mut l.sample_waits);
                count_wait(&mut self.sample_waiting, waits);
                break;
            }
            self.sample_waiting = false;
            let max_version = self.rules.exact_versions.then_some(p.version);
            let mut rng = buffer_rng(self.rules.seed, self.rules.id, self.state.takes);
            let batch = self
                .state
                .store
                .take(p.n, p.min_version, max_version, &mut rng);
            self.settle_discards();
            let Some(batch) = batch else {
                break;
            };
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            self.state.takes += 1;
            self.state.report.served += batch.len() as u64;
            if p.version == self.last_version {
                self.served_at_last_version += batch.len() as u64;
            }
            if let Some(l) = self.state.limiter.as_mut() {
                l.sampled(batch.len() as u64);
            }
            let fresh = std::mem::take(&mut self.fresh);
            out.push(Output::Reply {
                peer: p.peer,
                id: p.id,
                batch,
                fresh,
            });
        }
    }

    /// Closes the recording (its DONE marker).
    pub fn finish(self) -> BufferReport {
        let report = self.report();
        self.recorder.finish();
        report
    }
}

/// Counts a wait once for the item that waits (`waiting` stays set until it goes through).
fn count_wait(waiting: &mut bool, waits: Option<&mut u64>) {
    if !std::mem::replace(waiting, true) {
        if let Some(w) = waits {
            *w += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Fifo;
    use crate::ReplayBuffer;
    use gfn_common::ReplayPolicy;

    fn rules() -> BufferRules {
        BufferRules {
            id: 0,
            seed: 1,
            batch_size: 4,
            n_steps: 10,
            max_policy_lag: None,
            exact_versions: false,
        }
    }

    /// `n` one-step trajectories of a 1-D grid, all of `version`.
    fn trajectories(n: usize, version: u64) -> TrajectoryBatch {
        let mut b = TrajectoryBatch::default();
        for _ in 0..n {
            b.push(&[0, 1], 0.0, version);
        }
        b
    }

    fn core(store: Store, limiter: Option<RateLimiter>, rules: BufferRules) -> BufferCore {
        let grid = HyperGrid::new(1, 4).unwrap();
        BufferCore::new(rules, grid, store, limiter, Recorder::default())
    }

    /// A fresh batch number (each offer in these tests is a new batch).
    fn seq() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    fn replies(out: &[Output]) -> usize {
        out.iter()
            .filter(|o| matches!(o, Output::Reply { .. }))
            .count()
    }

    #[test]
    fn the_limiter_sets_the_ratio_of_samples_to_inserts() {
        let replay = Store::Replay(ReplayBuffer::new(64, ReplayPolicy::Fifo));
        let mut c = core(replay, Some(RateLimiter::new(2.0, 0.0, 4)), rules());
        let (mut inserts, mut samples) = (0, 0);
        for round in 0..20u64 {
            c.offer(b"s".to_vec(), "sampler-0", seq(), trajectories(4, round))
                .unwrap();
            for _ in 0..3 {
                c.request(b"l".to_vec(), 0, 4, round, 0).unwrap();
                let out = c.step();
                inserts += out
                    .iter()
                    .filter(|o| matches!(o, Output::Ack { .. }))
                    .count();
                samples += replies(&out);
            }
        }
        // Two samples per insert: the third request of each round waits.
        assert_eq!(samples, 2 * inserts, "{inserts} inserts, {samples} samples");
        let l = c.report().limiter.unwrap();
        assert_eq!(l.sampled, 2 * l.inserted);
        assert!(l.sample_waits > 0, "the learner was held back");
    }

    #[test]
    fn a_fifo_takes_no_more_than_the_remaining_steps_need() {
        let mut c = core(Store::Fifo(Fifo::new(100)), None, rules());
        // 10 steps of 4 trajectories: 40 in all.
        let mut acked = 0;
        for v in 0..15 {
            c.offer(
                format!("s{v}").into_bytes(),
                "sampler-0",
                seq(),
                trajectories(4, v),
            )
            .unwrap();
            acked += c.step().len();
        }
        assert_eq!(acked, 10, "the budget is 10 batches");
        // A learner resumed from step 3 needs 7 more steps (28 trajectories); 36 wait.
        c.request(b"l".to_vec(), 0, 4, 3, 0).unwrap();
        let out = c.step();
        assert_eq!(replies(&out), 1);
        assert_eq!(out.len(), 1, "nothing more goes in");
        // Served the last step's data, a run needs nothing more.
        let mut last = core(Store::Fifo(Fifo::new(100)), None, rules());
        last.request(b"l".to_vec(), 0, 4, 9, 0).unwrap();
        last.offer(b"a".to_vec(), "sampler-0", seq(), trajectories(4, 9))
            .unwrap();
        assert_eq!(replies(&last.step()), 1);
        last.offer(b"b".to_vec(), "sampler-0", seq(), trajectories(4, 9))
            .unwrap();
        assert!(last.step().is_empty(), "beyond the budget");
    }

    #[test]
    fn stale_data_is_dropped_and_sync_takes_exact_versions() {
        let mut lagged = rules();
        lagged.max_policy_lag = Some(2);
        let mut c = core(Store::Fifo(Fifo::new(100)), None, lagged);
        for v in [0, 1, 5] {
            c.offer(b"s".to_vec(), "sampler-0", seq(), trajectories(4, v))
                .unwrap();
        }
        c.step();
        c.request(b"l".to_vec(), 0, 4, 6, 0).unwrap();
        let Output::Reply { batch, .. } = c.step().pop().unwrap() else {
            panic!("no reply");
        };
        assert_eq!(
            batch.versions,
            vec![5; 4],
            "versions 0 and 1 are more than 2 behind 6"
        );

        let mut strict = rules();
        strict.exact_versions = true;
        let mut c = core(Store::Fifo(Fifo::new(100)), None, strict);
        // Version 7 was sampled for a learner that died; the resumed one asks for version 3.
        c.offer(b"s".to_vec(), "sampler-0", seq(), trajectories(4, 7))
            .unwrap();
        c.step();
        c.request(b"l".to_vec(), 0, 4, 3, 3).unwrap();
        assert_eq!(replies(&c.step()), 0, "version 7 is not version 3");
        c.offer(b"s".to_vec(), "sampler-0", seq(), trajectories(4, 3))
            .unwrap();
        let out = c.step();
        assert!(out.iter().any(|o| matches!(o,
            Output::Reply { batch, .. } if batch.versions == vec![3; 4])));
    }

    #[test]
    fn stale_data_owes_the_limiter_no_samples() {
        // One sample per insert: the buffer holds a batch of version 0 that nobody has sampled,
        // so the next batch waits. The learner, now at version 3, drops version 0 as stale;
        // the waiting batch must go in and be served, or learner and sampler wait forever.
        let mut lagged = rules();
        lagged.max_policy_lag = Some(2);
        let limiter = RateLimiter::new(1.0, 0.0, 4);
        let mut c = core(Store::Fifo(Fifo::new(100)), Some(limiter), lagged);
        c.offer(b"s".to_vec(), "sampler-0", seq(), trajectories(4, 0))
            .unwrap();
        assert_eq!(c.step().len(), 1, "the first batch goes in");
        c.offer(b"s".to_vec(), "sampler-0", seq(), trajectories(4, 3))
            .unwrap();
        assert!(c.step().is_empty(), "held back: 4 samples owed");
        c.request(b"l".to_vec(), 0, 4, 3, 0).unwrap();
        let out = c.step();
        assert!(
            out.iter().any(|o| matches!(o,
                Output::Reply { batch, .. } if batch.versions == vec![3; 4])),
            "{out:?}"
        );
        let r = c.report();
        assert_eq!((r.stale, r.evicted, r.served), (4, 0, 4));
        assert_eq!(r.limiter.unwrap().discarded, 4);
    }

    #[test]
    fn a_request_of_a_dead_learner_does_not_block_the_resumed_one() {
        let mut strict = rules();
        strict.exact_versions = true;
        let mut c = core(Store::Fifo(Fifo::new(100)), None, strict);
        // The killed learner asked for version 7 and died before the batch came; the learner
        // resumed from step 3 asks for version 3, and the sampler samples version 3 again.
        c.request(b"dead".to_vec(), 0, 4, 7, 7).unwrap();
        c.step();
        c.request(b"resumed".to_vec(), 0, 4, 3, 3).unwrap();
        c.offer(b"s".to_vec(), "sampler-0", seq(), trajectories(4, 3))
            .unwrap();
        let out = c.step();
        assert!(
            out.iter().any(|o| matches!(o,
                Output::Reply { peer, batch, .. }
                    if peer.as_slice() == b"resumed" && batch.versions == vec![3; 4])),
            "the resumed learner is served"
        );
    }

    #[test]
    fn a_vanished_learner_loses_nothing() {
        let mut c = core(Store::Fifo(Fifo::new(100)), None, rules());
        c.request(b"dead".to_vec(), 0, 4, 0, 0).unwrap();
        c.offer(b"s".to_vec(), "sampler-0", seq(), trajectories(4, 0))
            .unwrap();
        let out = c.step();
        let Some(Output::Reply { peer, batch, .. }) = out.last().cloned() else {
            panic!("no reply");
        };
        // The driver could not deliver it: the batch goes back, the next learner gets it.
        c.undeliverable(&peer, &batch);
        assert_eq!(c.report().served, 0);
        c.request(b"live".to_vec(), 0, 4, 0, 0).unwrap();
        let out = c.step();
        assert!(matches!(&out[..], [Output::Reply { peer, .. }] if peer == b"live"));
        // A peer that vanishes with a request pending is forgotten.
        c.request(b"gone".to_vec(), 0, 4, 1, 0).unwrap();
        c.peer_gone(b"gone");
        c.offer(b"s".to_vec(), "sampler-0", seq(), trajectories(4, 1))
            .unwrap();
        assert_eq!(replies(&c.step()), 0, "nobody to answer");
    }

    #[test]
    fn one_request_per_peer_and_bad_input_is_refused() {
        let mut c = core(Store::Fifo(Fifo::new(8)), None, rules());
        assert!(c.request(b"l".to_vec(), 0, 0, 0, 0).is_err());
        assert!(c.request(b"l".to_vec(), 0, 9, 0, 0).is_err());
        let mut bad = TrajectoryBatch::default();
        bad.push(&[7], 0.0, 0);
        assert!(matches!(
            c.offer(b"s".to_vec(), "x", seq(), bad),
            Err(Refusal::InvalidBatch(_))
        ));
        // Asking twice is one request: one batch served, not two.
        c.request(b"l".to_vec(), 0, 4, 0, 0).unwrap();
        c.request(b"l".to_vec(), 0, 4, 0, 0).unwrap();
        c.offer(b"s".to_vec(), "sampler-0", seq(), trajectories(4, 0))
            .unwrap();
        c.step();
        c.offer(b"s".to_vec(), "sampler-0", seq(), trajectories(4, 0))
            .unwrap();
        assert_eq!(replies(&c.step()), 0);
        assert_eq!(c.report().invalid, 3);
        for _ in 0..MAX_PARKED_PER_PEER {
            let _ = c.offer(b"flood".to_vec(), "x", seq(), trajectories(4, 0));
        }
        assert_eq!(
            c.offer(b"flood".to_vec(), "x", seq(), trajectories(4, 0)),
            Err(Refusal::TooManyInFlight)
        );
    }

    #[test]
    fn two_replicas_get_the_last_step_from_one_batch() {
        // Two learner replicas take 2 trajectories each of a step of 4; samplers send 4 at once.
        let mut c = core(Store::Fifo(Fifo::new(100)), None, rules());
        c.request(b"r0".to_vec(), 0, 2, 9, 0).unwrap();
        c.offer(b"s".to_vec(), "sampler-0", seq(), trajectories(4, 9))
            .unwrap();
        assert_eq!(replies(&c.step()), 1);
        c.request(b"r1".to_vec(), 0, 2, 9, 0).unwrap();
        assert_eq!(replies(&c.step()), 1, "the rest of the batch");
        // The queue is empty after rank 0 took its half of the last step (here from a smaller
        // batch): the next batch of 4 still goes in for rank 1, though only 2 will be used.
        let mut c = core(Store::Fifo(Fifo::new(100)), None, rules());
        c.request(b"r0".to_vec(), 0, 2, 9, 0).unwrap();
        c.offer(b"s".to_vec(), "sampler-0", seq(), trajectories(2, 9))
            .unwrap();
        assert_eq!(replies(&c.step()), 1);
        c.request(b"r1".to_vec(), 0, 2, 9, 0).unwrap();
        c.offer(b"s".to_vec(), "sampler-0", seq(), trajectories(4, 9))
            .unwrap();
        assert_eq!(
            replies(&c.step()),
            1,
            "rank 1 is not starved at the last step"
        );
    }

    #[test]
    fn a_batch_sent_again_is_taken_once() {
        let mut c = core(Store::Fifo(Fifo::new(100)), None, rules());
        let s = b"s".to_vec();
        c.offer(s.clone(), "sampler-0", 5, trajectories(4, 0))
            .unwrap();
        c.offer(s.clone(), "sampler-0", 5, trajectories(4, 0))
            .unwrap();
        let out = c.step();
        assert_eq!(
            out,
            vec![Output::Ack {
                peer: s.clone(),
                seq: 5
            }]
        );
        // The acknowledgement was lost: the sampler sends batch 5 again.
        c.offer(s.clone(), "sampler-0", 5, trajectories(4, 0))
            .unwrap();
        assert_eq!(c.step(), vec![Output::Ack { peer: s, seq: 5 }]);
        let r = c.report();
        assert_eq!((r.inserted, r.duplicates), (4, 2));
        assert_eq!(c.queued(), 4);
    }
}
