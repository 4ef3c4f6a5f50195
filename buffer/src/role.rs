//! The embedded buffer loop: every batch that comes in yields exactly one training batch, so the
//! learner's data does not depend on thread timing.

use crate::dump::DumpWriter;
use crate::store::Store;
use gfn_common::pipe::{Delivery, Shutdown};
use gfn_common::TrajectoryBatch;
use rand::rngs::SmallRng;
use rand::SeedableRng;

/// What the buffer did.
#[derive(Debug, Clone, Default)]
pub struct BufferStats {
    pub inserted: u64,
    pub served: u64,
}

/// The buffer's random stream for a run seed (replay sampling).
pub fn buffer_rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed ^ 0xB0FF_E700)
}

/// Records inbound batches when asked to; a failing recording stops with an error message but
/// does not stop the run.
#[derive(Default)]
pub struct Recorder(Option<DumpWriter>);

impl Recorder {
    /// Records into `writer`.
    pub fn new(writer: Option<DumpWriter>) -> Self {
        Self(writer)
    }

    /// Appends a batch to the recording.
    pub fn record(&mut self, batch: &TrajectoryBatch) {
        if let Some(w) = &mut self.0 {
            if let Err(e) = w.write(batch) {
                tracing::error!("recording stopped: {e}");
                self.0 = None;
            }
        }
    }

    /// Closes the recording (writes its DONE marker).
    pub fn finish(self) {
        if let Some(w) = self.0 {
            if let Err(e) = w.finish() {
                tracing::error!("could not close the recording: {e}");
            }
        }
    }
}

/// Moves batches from `inbox` to `outbox` through the store, until either side closes or
/// `shutdown` is set.
pub fn run(
    mut store: Store,
    recorder: &mut Recorder,
    batch_size: usize,
    seed: u64,
    inbox: &crossbeam_channel::Receiver<TrajectoryBatch>,
    outbox: &crossbeam_channel::Sender<Delivery>,
    shutdown: &Shutdown,
) -> BufferStats {
    let mut rng = buffer_rng(seed);
    let mut stats = BufferStats::default();
    while let Ok(batch) = inbox.recv() {
        stats.inserted += batch.len() as u64;
        recorder.record(&batch);
        store.insert(&batch);
        let n = batch_size.min(store.len()).max(1);
        let Some(training) = store.take(n, 0, &mut rng) else {
            continue;
        };
        stats.served += training.len() as u64;
        if shutdown.is_set()
            || outbox
                .send(Delivery {
                    training,
                    fresh: batch,
                })
                .is_err()
        {
            break;
        }
    }
    stats
}
