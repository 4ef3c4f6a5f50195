//! Learner replicas over MPI: gradient all-reduce (sum / K), the initial broadcast from rank 0,
//! and checksum gathering. One process started without `mpirun` is a world of one.

use anyhow::{anyhow, Result};
use gfn_learner::GradientSync;
use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

/// The MPI world of learner replicas.
pub struct MpiSync {
    _universe: mpi::environment::Universe,
    world: SimpleCommunicator,
    sum: Vec<f32>,
}

impl MpiSync {
    /// Initialises MPI (once per process).
    pub fn init() -> Result<Self> {
        let universe = mpi::initialize().ok_or_else(|| anyhow!("MPI was already initialised"))?;
        let world = universe.world();
        Ok(Self {
            _universe: universe,
            world,
            sum: vec![],
        })
    }
}

impl GradientSync for MpiSync {
    fn world_size(&self) -> usize {
        self.world.size() as usize
    }

    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn all_reduce_mean(&mut self, grads: &mut [f32]) {
        self.sum.resize(grads.len(), 0.0);
        self.world
            .all_reduce_into(&grads[..], &mut self.sum[..], SystemOperation::sum());
        let k = self.world.size() as f32;
        for (g, s) in grads.iter_mut().zip(&self.sum) {
            *g = s / k;
        }
    }

    fn broadcast(&mut self, params: &mut [f32]) {
        self.world.process_at_rank(0).broadcast_into(params);
    }

    fn broadcast_bytes(&mut self, bytes: &mut Vec<u8>) {
        let mut len = bytes.len() as u64;
        let root = self.world.process_at_rank(0);
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        // MPI refuses a broadcast of nothing (no checkpoint yet).
        if len > 0 {
            root.broadcast_into(&mut bytes[..]);
        }
    }

    fn agree_to_stop(&mut self, mine: bool) -> bool {
        let mut any = 0u8;
        self.world
            .all_reduce_into(&(mine as u8), &mut any, SystemOperation::max());
        any > 0
    }

    fn gather(&mut self, value: u64) -> Vec<u64> {
        let mut all = vec![0u64; self.world.size() as usize];
        self.world.all_gather_into(&value, &mut all[..]);
        all
    }
}
