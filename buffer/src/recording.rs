//! Serving a recording to an offline learner (`gfn replay`).

use crate::dump::Dump;
use gfn_common::pipe::Delivery;
use gfn_common::seam::{BatchSource, PipeError};
use gfn_common::TrajectoryBatch;

/// Serves a recording's trajectories in recorded order, `n` at a time, starting over when they
/// run out (one pass is an epoch): the batch source of offline replay.
pub struct DumpSource {
    data: TrajectoryBatch,
    next: usize,
    n: usize,
    /// Complete passes over the recording so far.
    pub epochs: u64,
}

impl DumpSource {
    /// Serves `dump` in batches of `n`; `None` when the recording holds no trajectory.
    pub fn new(dump: &Dump, n: usize) -> Option<Self> {
        let mut data = TrajectoryBatch::default();
        for b in &dump.batches {
            data.extend(b);
        }
        (!data.is_empty()).then_some(Self {
            data,
            next: 0,
            n,
            epochs: 0,
        })
    }
}

impl BatchSource for DumpSource {
    /// Continues from a position saved by [`BatchSource::snapshot`].
    fn restore(&mut self, bytes: &[u8]) -> Result<(), PipeError> {
        let word = |i: usize| -> Option<u64> {
            Some(u64::from_le_bytes(
                bytes.get(i * 8..i * 8 + 8)?.try_into().ok()?,
            ))
        };
        match (bytes.len(), word(0), word(1)) {
            (16, Some(next), Some(epochs)) if next < self.data.len() as u64 => {
                self.next = next as usize;
                self.epochs = epochs;
                Ok(())
            }
            _ => Err(PipeError::Invalid(format!(
                "not a position in a recording of {} trajectories",
                self.data.len()
            ))),
        }
    }

    fn snapshot(&self) -> Option<Vec<u8>> {
        let mut b = (self.next as u64).to_le_bytes().to_vec();
        b.extend(self.epochs.to_le_bytes());
        Some(b)
    }

    fn next_batch(&mut self, _version: u64) -> Result<Option<Delivery>, PipeError> {
        let len = self.data.len();
        let picked: Vec<usize> = (0..self.n.min(len))
            .map(|i| (self.next + i) % len)
            .collect();
        self.next += picked.len();
        if self.next >= len {
            self.next %= len;
            self.epochs += 1;
        }
        let batch = self.data.select(&picked);
        Ok(Some(Delivery {
            fresh: batch.clone(),
            training: batch,
        }))
    }
}
