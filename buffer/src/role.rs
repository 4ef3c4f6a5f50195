//! The buffer's loop: every batch that comes in yields exactly one training batch, so the
//! learner's data does not depend on thread timing.

use crate::replay::ReplayBuffer;
use gfn_common::pipe::{Delivery, Shutdown};
use gfn_common::TrajectoryBatch;
use rand::rngs::SmallRng;
use rand::SeedableRng;

/// How the buffer chooses what the learner trains on.
#[derive(Debug, Clone)]
pub enum Selector {
    /// Each batch goes to the learner once, as it came (on-policy).
    OnPolicy,
    /// Batches are added to a replay buffer; the learner gets a uniform sample of it.
    Replay(ReplayBuffer),
}

/// What the buffer did.
#[derive(Debug, Clone, Default)]
pub struct BufferStats {
    pub inserted: u64,
    pub served: u64,
}

/// Moves batches from `inbox` to `outbox` through the selector, until either side closes or
/// `shutdown` is set. `seed` drives the replay sampling.
pub fn run(
    mut selector: Selector,
    batch_size: usize,
    seed: u64,
    inbox: &crossbeam_channel::Receiver<TrajectoryBatch>,
    outbox: &crossbeam_channel::Sender<Delivery>,
    shutdown: &Shutdown,
) -> BufferStats {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xB0FF_E700);
    let mut stats = BufferStats::default();
    while let Ok(batch) = inbox.recv() {
        stats.inserted += batch.len() as u64;
        let training = match &mut selector {
            Selector::OnPolicy => batch.clone(),
            Selector::Replay(rb) => {
                rb.add(&batch);
                rb.sample(batch_size, &mut rng)
            }
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
