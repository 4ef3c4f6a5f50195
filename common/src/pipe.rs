//! The in-process pipes between roles: bounded crossbeam channels for data and a versioned
//! board for weights. The multi-process build replaces them with sockets behind the same traits.

use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Network parameters as a flat vector, stamped with the learner step that produced them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Weights {
    pub version: u64,
    pub params: Vec<f32>,
}

/// What the buffer hands the learner: the batch to train on, and the freshly sampled batch
/// behind it (the same on-policy), which the visited-state metrics count.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub training: crate::TrajectoryBatch,
    pub fresh: crate::TrajectoryBatch,
}

/// A stop flag shared by every loop of a run.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    /// Asks every loop holding a clone to stop.
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The most recently published weights (a few versions are kept); readers wait for a version.
#[derive(Debug)]
pub struct WeightBoard {
    recent: Mutex<Recent>,
    keep: usize,
    changed: Condvar,
}

/// The versions a board remembers, how often it was sent back to an older version, and how
/// often its newest version was announced again.
#[derive(Debug, Default)]
struct Recent {
    weights: VecDeque<Arc<Weights>>,
    rewinds: u64,
    announcements: u64,
}

impl WeightBoard {
    /// A board that remembers the last `keep` versions (at least one).
    pub fn new(keep: usize) -> Self {
        Self {
            recent: Mutex::new(Recent::default()),
            keep: keep.max(1),
            changed: Condvar::new(),
        }
    }

    /// Publishes new weights and wakes every waiting reader.
    pub fn publish(&self, weights: Weights) {
        let mut recent = self.recent.lock();
        recent.weights.push_back(Arc::new(weights));
        while recent.weights.len() > self.keep {
            recent.weights.pop_front();
        }
        drop(recent);
        self.changed.notify_all();
    }

    /// Replaces everything with older `weights`: the learner went back to a checkpoint. Readers
    /// waiting for a newer version get these instead, and can tell by their version.
    pub fn rewind(&self, weights: Weights) {
        let mut recent = self.recent.lock();
        recent.weights.clear();
        recent.weights.push_back(Arc::new(weights));
        recent.rewinds += 1;
        drop(recent);
        self.changed.notify_all();
    }

    /// The newest version was published again: its learner is still waiting at it. A reader
    /// waiting for a newer version wakes with it, as after a rewind. A learner that resumed from
    /// a checkpoint at the very version the samplers last saw (its predecessor died right after
    /// the checkpoint, before publishing the next one) can only be told apart this way: it
    /// keeps announcing that version while it waits for the batch sampled at it, which the dead
    /// learner took.
    pub fn reannounce(&self) {
        self.recent.lock().announcements += 1;
        self.changed.notify_all();
    }

    /// The newest weights, if any.
    pub fn latest(&self) -> Option<Arc<Weights>> {
        self.recent.lock().weights.back().cloned()
    }

    /// Waits until `version` is published and returns exactly that version while it is still
    /// remembered (else the oldest newer one). If the board is rewound, or its newest version
    /// announced again, meanwhile, returns those older weights. `None` once `shutdown` is set.
    pub fn wait_for(&self, version: u64, shutdown: &Shutdown) -> Option<Arc<Weights>> {
        let mut recent = self.recent.lock();
        let (rewinds, announcements) = (recent.rewinds, recent.announcements);
        loop {
            if recent.weights.back().is_some_and(|w| w.version >= version) {
                return recent
                    .weights
                    .iter()
                    .find(|w| w.version >= version)
                    .cloned();
            }
            if recent.rewinds != rewinds || recent.announcements != announcements {
                return recent.weights.back().cloned();
            }
            if shutdown.is_set() {
                return None;
            }
            self.changed
                .wait_for(&mut recent, Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_waits_for_a_version() {
        let board = Arc::new(WeightBoard::new(2));
        let stop = Shutdown::default();
        let b = board.clone();
        let t = std::thread::spawn(move || {
            for v in 0..5 {
                b.publish(Weights {
                    version: v,
                    params: vec![v as f32],
                });
            }
        });
        let w = board.wait_for(4, &stop).unwrap();
        assert_eq!(w.version, 4);
        t.join().unwrap();
        assert_eq!(
            board.wait_for(3, &stop).unwrap().version,
            3,
            "a recent version is kept"
        );
        assert_eq!(
            board.wait_for(1, &stop).unwrap().version,
            3,
            "older ones are not"
        );
        // A rewind wakes a reader waiting for a newer version with the older weights.
        let b = board.clone();
        let waiter = std::thread::spawn(move || b.wait_for(9, &Shutdown::default()));
        // Rewound until the waiter wakes: it may not be waiting yet when the first one comes.
        while !waiter.is_finished() {
            board.rewind(Weights {
                version: 2,
                params: vec![],
            });
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(waiter.join().unwrap().unwrap().version, 2);
        // So does the newest version announced again (a learner waiting at it).
        let b = board.clone();
        let waiter = std::thread::spawn(move || b.wait_for(3, &Shutdown::default()));
        while !waiter.is_finished() {
            board.reannounce();
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(waiter.join().unwrap().unwrap().version, 2);
        stop.trigger();
        assert!(board.wait_for(10, &stop).is_none());
    }
}
