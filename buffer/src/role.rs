//! The embedded buffer loop: every batch that comes in yields exactly one training batch, so the
//! learner's data does not depend on thread timing.

use crate::dump::DumpWriter;
use crate::store::Store;
use gfn_common::pipe::{Delivery, Shutdown};
use gfn_common::rng::{stream_rng, Stream};
use gfn_common::TrajectoryBatch;
use rand::rngs::SmallRng;

/// What the buffer did.
#[derive(Debug, Clone, Default)]
pub struct BufferStats {
    pub inserted: u64,
    pub inserted_batches: u64,
    pub served: u64,
}

/// The random stream of buffer `id`'s `k`-th replay sample.
pub fn buffer_rng(seed: u64, id: u64, k: u64) -> SmallRng {
    stream_rng(seed, Stream::Buffer(id), k)
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
/// `shutdown` is set. The store is shared so that checkpoints can read it between steps;
/// `first_batch` is the index of the first batch (non-zero when resuming).
#[allow(clippy::too_many_arguments)]
pub fn run(
    store: &std::sync::Mutex<Store>,
    first_batch: u64,
    recorder: &mut Recorder,
    batch_size: usize,
    seed: u64,
    inbox: &crossbeam_channel::Receiver<TrajectoryBatch>,
    outbox: &crossbeam_channel::Sender<Delivery>,
    shutdown: &Shutdown,
) -> BufferStats {
    let mut stats = BufferStats::default();
    while let Ok(batch) = inbox.recv() {
        stats.inserted += batch.len() as u64;
        stats.inserted_batches += 1;
        recorder.record(&batch);
        let k = first_batch + stats.inserted_batches;
        let training = {
            let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
            store.insert(&batch);
            let n = batch_size.min(store.len()).max(1);
            store.take(n, 0, &mut buffer_rng(seed, 0, k))
        };
        let Some(training) = training else {
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
