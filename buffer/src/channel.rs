//! The buffer in one process (`gfn train`): samplers' batches arrive on a crossbeam channel and
//! the learner asks on its own thread. The buffer reads the channel only when it cannot answer,
//! so the order of inserts and samples, and with it every result, is the same on every run.

use crate::core::{BufferCore, CoreState, Output};
use gfn_common::pipe::Delivery;
use gfn_common::seam::{BatchSource, PipeError};
use gfn_common::TrajectoryBatch;

/// The peer name of the learner and of the sampler in one process.
const LEARNER: &[u8] = b"learner";
const SAMPLER: &[u8] = b"sampler-0";

/// A [`BufferCore`] fed by a channel and asked by the learner's thread.
pub struct ChannelBuffer {
    core: BufferCore,
    inbox: crossbeam_channel::Receiver<TrajectoryBatch>,
    n: usize,
    /// Batches received so far (the sampler's batch numbers).
    received: u64,
}

impl ChannelBuffer {
    /// Serves batches of `n` from `core`, taking in what arrives on `inbox`.
    pub fn new(
        core: BufferCore,
        inbox: crossbeam_channel::Receiver<TrajectoryBatch>,
        n: usize,
    ) -> Self {
        Self {
            core,
            inbox,
            n,
            received: 0,
        }
    }

    /// The buffer's state machine (what it holds, its counters).
    pub fn core(&self) -> &BufferCore {
        &self.core
    }

    /// Closes the recording and returns the buffer's report.
    pub fn finish(self) -> crate::core::BufferReport {
        self.core.finish()
    }
}

impl BatchSource for ChannelBuffer {
    fn next_batch(&mut self, version: u64) -> Result<Option<Delivery>, PipeError> {
        self.core
            .request(LEARNER.to_vec(), version, self.n, version, 0)
            .map_err(|e| PipeError::Invalid(e.to_string()))?;
        loop {
            for out in self.core.step() {
                if let Output::Reply { batch, fresh, .. } = out {
                    return Ok(Some(Delivery {
                        training: batch,
                        fresh,
                    }));
                }
            }
            let Ok(batch) = self.inbox.recv() else {
                return Ok(None);
            };
            let seq = self.received;
            self.received += 1;
            if let Err(e) = self.core.offer(SAMPLER.to_vec(), "sampler-0", seq, batch) {
                return Err(PipeError::Invalid(format!("the sampler's batch: {e}")));
            }
        }
    }

    fn queue_depth(&self) -> Option<u64> {
        Some(self.inbox.len() as u64)
    }

    fn snapshot(&self) -> Option<Vec<u8>> {
        Some(self.core.state().encode())
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), PipeError> {
        let state = CoreState::decode(bytes, self.core.grid())
            .map_err(|e| PipeError::Invalid(format!("the buffer's contents: {e}")))?;
        self.core.restore(state);
        Ok(())
    }
}
