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
    recent: Mutex<VecDeque<Arc<Weights>>>,
    keep: usize,
    changed: Condvar,
}

impl WeightBoard {
    /// A board that remembers the last `keep` versions (at least one).
    pub fn new(keep: usize) -> Self {
        Self {
            recent: Mutex::new(VecDeque::new()),
            keep: keep.max(1),
            changed: Condvar::new(),
        }
    }

    /// Publishes new weights and wakes every waiting reader.
    pub fn publish(&self, weights: Weights) {
        let mut recent = self.recent.lock();
        recent.push_back(Arc::new(weights));
        while recent.len() > self.keep {
            recent.pop_front();
        }
        drop(recent);
        self.changed.notify_all();
    }

    /// The newest weights, if any.
    pub fn latest(&self) -> Option<Arc<Weights>> {
        self.recent.lock().back().cloned()
    }

    /// Waits until `version` is published and returns exactly that version while it is still
    /// remembered (else the oldest newer one). `None` once `shutdown` is set.
    pub fn wait_for(&self, version: u64, shutdown: &Shutdown) -> Option<Arc<Weights>> {
        let mut recent = self.recent.lock();
        loop {
            if recent.back().is_some_and(|w| w.version >= version) {
                return recent.iter().find(|w| w.version >= version).cloned();
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
        stop.trigger();
        assert!(board.wait_for(10, &stop).is_none());
    }
}
