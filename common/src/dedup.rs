//! Deduplication of states before a network evaluates them. Trajectories of a batch share many
//! states (every one starts at the origin), so evaluating each distinct state once and gathering
//! rows afterwards saves work in proportion to the overlap.

use crate::env::HyperGrid;
use std::collections::HashMap;

/// Distinct states of a list, and where each input row went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dedup {
    /// `[U, D]` distinct states, in order of first appearance.
    pub unique: Vec<u16>,
    /// `[S]` row of `unique` holding input row `i`.
    pub row_of: Vec<i64>,
}

impl Dedup {
    /// Deduplicates `states` (`D` coordinates a row).
    pub fn new(grid: &HyperGrid, states: &[u16]) -> Self {
        let d = grid.ndim();
        let rows = states.len() / d;
        let mut out = Dedup {
            unique: Vec::with_capacity(states.len()),
            row_of: Vec::with_capacity(rows),
        };
        if grid.n_states().is_some() {
            // The canonical index is a perfect key when it fits in a usize.
            let mut seen = HashMap::<usize, i64>::with_capacity(rows);
            for s in states.chunks_exact(d) {
                let next = seen.len() as i64;
                let r = *seen.entry(grid.index(s)).or_insert_with(|| {
                    out.unique.extend_from_slice(s);
                    next
                });
                out.row_of.push(r);
            }
        } else {
            let mut seen = HashMap::<&[u16], i64>::with_capacity(rows);
            for s in states.chunks_exact(d) {
                let next = seen.len() as i64;
                let r = *seen.entry(s).or_insert_with(|| {
                    out.unique.extend_from_slice(s);
                    next
                });
                out.row_of.push(r);
            }
        }
        out
    }

    /// Number of distinct states.
    pub fn len(&self, grid: &HyperGrid) -> usize {
        self.unique.len() / grid.ndim()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedups_in_order_of_appearance() {
        let g = HyperGrid::new(2, 4).unwrap();
        let d = Dedup::new(&g, &[0, 0, 1, 0, 0, 0, 1, 1, 1, 0]);
        assert_eq!(d.unique, vec![0, 0, 1, 0, 1, 1]);
        assert_eq!(d.row_of, vec![0, 1, 0, 2, 1]);
        assert_eq!(d.len(&g), 3);
        let huge = HyperGrid::new(40, 1000).unwrap();
        let s: Vec<u16> = (0..80).map(|i| (i % 40) as u16).collect();
        let d = Dedup::new(&huge, &s);
        assert_eq!(d.row_of, vec![0, 0]);
    }
}
