//! The HyperGrid environment: states, actions, masks and the canonical state index.
//!
//! A state is a point of `{0, …, H−1}^D`. Action `d < D` increments coordinate `d`; action `D`
//! is *exit*, which ends the trajectory at the current state. Every state can terminate.

use serde::{Deserialize, Serialize};

/// Largest number of grid states for which whole-grid computations (true distribution, exact
/// terminal distribution) are allowed.
pub const MAX_ENUMERABLE_STATES: usize = 1 << 24;

/// A `ndim`-dimensional grid of side `height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HyperGrid {
    ndim: usize,
    height: usize,
}

/// Why a grid cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GridError {
    #[error("--ndim must be at least 1 (got {0})")]
    NoDimensions(usize),
    #[error("--height must be at least 2 (got {0})")]
    TooLow(usize),
    #[error("--height must be at most 65535 (got {0})")]
    TooHigh(usize),
    #[error("--ndim must be at most 255 (got {0})")]
    TooManyDimensions(usize),
    #[error("trajectories of --ndim {ndim} --height {height} have up to {steps} steps; at most 65535 fit a trajectory batch")]
    TooLong {
        ndim: usize,
        height: usize,
        steps: usize,
    },
}

impl HyperGrid {
    /// Builds a grid, refusing shapes the rest of the system cannot represent.
    pub fn new(ndim: usize, height: usize) -> Result<Self, GridError> {
        if ndim == 0 {
            return Err(GridError::NoDimensions(ndim));
        }
        if ndim > 255 {
            return Err(GridError::TooManyDimensions(ndim));
        }
        if height < 2 {
            return Err(GridError::TooLow(height));
        }
        if height > u16::MAX as usize {
            return Err(GridError::TooHigh(height));
        }
        // The longest trajectory: every coordinate to H−1, then exit.
        let steps = ndim * (height - 1) + 1;
        if steps > u16::MAX as usize {
            return Err(GridError::TooLong {
                ndim,
                height,
                steps,
            });
        }
        Ok(Self { ndim, height })
    }

    /// Number of dimensions `D`.
    pub fn ndim(&self) -> usize {
        self.ndim
    }

    /// Side length `H`.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Number of forward actions, `D + 1` (the last one is exit).
    pub fn n_actions(&self) -> usize {
        self.ndim + 1
    }

    /// Index of the exit action.
    pub fn exit_action(&self) -> usize {
        self.ndim
    }

    /// Longest trajectory in actions, exit included: `D·(H−1) + 1`.
    pub fn max_length(&self) -> usize {
        self.ndim * (self.height - 1) + 1
    }

    /// Number of grid states `H^D`, or `None` when it overflows `usize`.
    pub fn n_states(&self) -> Option<usize> {
        let mut n: usize = 1;
        for _ in 0..self.ndim {
            n = n.checked_mul(self.height)?;
        }
        Some(n)
    }

    /// Number of states if the grid is small enough to enumerate.
    pub fn enumerable_states(&self) -> Option<usize> {
        self.n_states().filter(|&n| n <= MAX_ENUMERABLE_STATES)
    }

    /// Canonical index `Σ s_j · H^(D−1−j)` (first coordinate most significant).
    pub fn index(&self, state: &[u16]) -> usize {
        state
            .iter()
            .fold(0usize, |acc, &c| acc.wrapping_mul(self.height) + c as usize)
    }

    /// A key of `state` for sets of visited states at any grid size: the canonical index when
    /// `H^D` fits in 128 bits (10-D H=128 is about 2^70), otherwise, for every state of the
    /// grid, a 128-bit hash of the coordinates (two states share one with a vanishing
    /// probability). The hash is fixed here, so keys saved in a checkpoint stay valid.
    pub fn state_key(&self, state: &[u16]) -> u128 {
        let h = self.height as u128;
        let fits = u32::try_from(self.ndim)
            .ok()
            .and_then(|d| h.checked_pow(d))
            .is_some();
        if fits {
            return state.iter().fold(0u128, |acc, &c| acc * h + c as u128);
        }
        let half = |seed: u64| state.iter().fold(seed, |acc, &c| splitmix(acc ^ c as u64));
        ((half(1) as u128) << 64) | half(2) as u128
    }

    /// Writes the state with canonical index `index` into `out` (length `D`).
    pub fn state_of(&self, mut index: usize, out: &mut [u16]) {
        for c in out.iter_mut().rev() {
            *c = (index % self.height) as u16;
            index /= self.height;
        }
    }

    /// Whether forward action `action` is allowed at `state`; exit always is.
    pub fn forward_allowed(&self, state: &[u16], action: usize) -> bool {
        action == self.ndim || (state[action] as usize) < self.height - 1
    }

    /// Forward mask of length `D + 1`.
    pub fn forward_mask(&self, state: &[u16], out: &mut [bool]) {
        for (d, m) in out.iter_mut().enumerate() {
            *m = self.forward_allowed(state, d);
        }
    }

    /// Backward mask of length `D`: undoing action `d` is allowed iff `s_d > 0`.
    pub fn backward_mask(&self, state: &[u16], out: &mut [bool]) {
        for (m, &c) in out.iter_mut().zip(state) {
            *m = c > 0;
        }
    }

    /// Number of parents of `state` (allowed backward actions).
    pub fn n_parents(&self, state: &[u16]) -> usize {
        state.iter().filter(|&&c| c > 0).count()
    }

    /// Canonical index stride of dimension `d`, `H^(D−1−d)`.
    pub fn stride(&self, d: usize) -> usize {
        self.height.pow((self.ndim - 1 - d) as u32)
    }
}

/// SplitMix64's finaliser: a fixed, well-mixed 64-bit permutation.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_match_the_reference() {
        let g = HyperGrid::new(2, 8).unwrap();
        let mut f = [false; 3];
        g.forward_mask(&[7, 0], &mut f);
        assert_eq!(f, [false, true, true]);
        let mut b = [false; 2];
        g.backward_mask(&[0, 3], &mut b);
        assert_eq!(b, [false, true]);
        g.backward_mask(&[0, 0], &mut b);
        assert_eq!(b, [false, false]);
        assert_eq!(g.max_length(), 15);
    }

    #[test]
    fn canonical_index_round_trips() {
        let g = HyperGrid::new(3, 5).unwrap();
        assert_eq!(g.index(&[1, 2, 3]), 25 + 10 + 3);
        let mut s = [0u16; 3];
        for i in 0..125 {
            g.state_of(i, &mut s);
            assert_eq!(g.index(&s), i);
        }
        assert_eq!(g.stride(0), 25);
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert_eq!(HyperGrid::new(0, 8), Err(GridError::NoDimensions(0)));
        assert_eq!(HyperGrid::new(2, 1), Err(GridError::TooLow(1)));
        assert!(HyperGrid::new(2, 70000).is_err());
    }

    #[test]
    fn state_keys_are_exact_indices_or_distinct_hashes() {
        let g = HyperGrid::new(3, 5).unwrap();
        assert_eq!(g.state_key(&[1, 2, 3]), 38);
        // 128^10 = 2^70: exact.
        let g = HyperGrid::new(10, 128).unwrap();
        let top = [127u16; 10];
        assert_eq!(g.state_key(&top), 128u128.pow(10) - 1);
        // 128^20 = 2^140: hashed, one key per state over many states.
        let g = HyperGrid::new(20, 128).unwrap();
        let mut keys = std::collections::HashSet::new();
        let mut x = [0u16; 20];
        for i in 0..100_000u64 {
            for (d, c) in x.iter_mut().enumerate() {
                *c = ((i >> (d % 8)) as u16 ^ (d as u16 * 37)) % 128;
            }
            x[19] = (i % 128) as u16;
            x[18] = ((i / 128) % 128) as u16;
            x[17] = ((i / 16384) % 128) as u16;
            keys.insert(g.state_key(&x));
            assert_eq!(g.state_key(&x), g.state_key(&x.clone()));
        }
        assert_eq!(keys.len(), 100_000);
    }
}
