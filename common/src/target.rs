//! The target distribution `R(x)/Z` and exact distances to a policy's terminal distribution.

use crate::env::HyperGrid;
use crate::reward::Reward;

/// The true distribution over all grid states, in canonical-index order.
#[derive(Debug, Clone)]
pub struct Target {
    /// `R(x)/Z` for every state.
    pub probs: Vec<f64>,
    /// `ln Z`.
    pub log_z: f64,
    /// Canonical indices of the mode cells.
    pub modes: Vec<usize>,
}

impl Target {
    /// Enumerates the grid; `None` when it is too large to enumerate.
    pub fn new(grid: &HyperGrid, reward: &Reward) -> Option<Self> {
        let n = grid.enumerable_states()?;
        let mut state = vec![0u16; grid.ndim()];
        let mut probs = Vec::with_capacity(n);
        let mut modes = Vec::new();
        let threshold = reward.mode_threshold(grid.ndim());
        for i in 0..n {
            grid.state_of(i, &mut state);
            let r = reward.reward(&state);
            if r >= threshold {
                modes.push(i);
            }
            probs.push(r as f64);
        }
        let z: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= z);
        Some(Self {
            probs,
            log_z: z.ln(),
            modes,
        })
    }
}

/// The exact terminal distribution of a forward policy, by dynamic programming over the DAG:
/// `u(s0) = 1`, `u(s') = Σ_parents u(s)·P_F(s'|s)`, `P_T(x) = u(x)·P_F(exit|x)`.
///
/// `forward_probs` holds `P_F(·|s)` for every state in canonical-index order, `D + 1` entries a
/// state (the last is exit). Canonical order is a topological order: parents have smaller indices.
pub fn terminal_distribution(grid: &HyperGrid, forward_probs: &[f32]) -> Vec<f64> {
    let n = grid.enumerable_states().unwrap_or(0);
    let a = grid.n_actions();
    assert_eq!(forward_probs.len(), n * a, "one row of P_F per state");
    let strides: Vec<usize> = (0..grid.ndim()).map(|d| grid.stride(d)).collect();
    let mut u = vec![0f64; n];
    let mut p_t = vec![0f64; n];
    if n == 0 {
        return p_t;
    }
    u[0] = 1.0;
    let mut state = vec![0u16; grid.ndim()];
    for i in 0..n {
        let ui = u[i];
        let row = &forward_probs[i * a..(i + 1) * a];
        p_t[i] = ui * row[a - 1] as f64;
        if ui == 0.0 {
            continue;
        }
        grid.state_of(i, &mut state);
        for d in 0..grid.ndim() {
            if (state[d] as usize) < grid.height() - 1 {
                u[i + strides[d]] += ui * row[d] as f64;
            }
        }
    }
    p_t
}

/// Distances between two distributions on the same support.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Distances {
    /// `Σ |p − q|` (in `[0, 2]`).
    pub l1: f64,
    /// Jensen–Shannon divergence in nats (at most `ln 2`).
    pub jsd: f64,
    /// `KL(target ‖ model)` in nats (infinite where the model misses target mass).
    pub kl: f64,
}

/// Compares a model distribution `q` with the target `p`.
pub fn distances(p: &[f64], q: &[f64]) -> Distances {
    let mut d = Distances::default();
    for (&pi, &qi) in p.iter().zip(q) {
        d.l1 += (pi - qi).abs();
        let m = 0.5 * (pi + qi);
        if pi > 0.0 {
            d.jsd += 0.5 * pi * (pi / m).ln();
            d.kl += pi * (pi / qi).ln();
        }
        if qi > 0.0 {
            d.jsd += 0.5 * qi * (qi / m).ln();
        }
    }
    d
}

/// The empirical distribution of a list of canonical indices over `n` bins.
pub fn histogram(indices: impl IntoIterator<Item = usize>, n: usize) -> Vec<f64> {
    let mut h = vec![0f64; n];
    let mut total = 0usize;
    for i in indices {
        h[i] += 1.0;
        total += 1;
    }
    if total > 0 {
        h.iter_mut().for_each(|x| *x /= total as f64);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reward::RewardKind;

    fn target(d: usize, h: usize, r0: f32) -> Target {
        let g = HyperGrid::new(d, h).unwrap();
        let r = Reward::new(RewardKind::Original, h, r0, 0.5, 2.0).unwrap();
        Target::new(&g, &r).unwrap()
    }

    #[test]
    fn log_z_matches_the_reference_table() {
        for (d, h, r0, lz, modes) in [
            (2, 8, 0.1, 3.109061, 4),
            (4, 8, 0.1, 6.344934, 16),
            (2, 64, 0.1, 7.098045, 144),
            (4, 8, 0.001, 5.100452, 16),
            (2, 12, 1e-4, 3.258650, 4),
        ] {
            let t = target(d, h, r0);
            assert!(
                (t.log_z - lz).abs() < 1e-5,
                "D={d} H={h} R0={r0}: {}",
                t.log_z
            );
            assert_eq!(t.modes.len(), modes);
            assert!((t.probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn uniform_policy_dp_is_a_distribution() {
        let g = HyperGrid::new(2, 3).unwrap();
        // P_F uniform over allowed actions.
        let mut probs = vec![];
        let mut s = [0u16; 2];
        let mut m = [false; 3];
        for i in 0..9 {
            g.state_of(i, &mut s);
            g.forward_mask(&s, &mut m);
            let k = m.iter().filter(|&&x| x).count() as f32;
            probs.extend(m.iter().map(|&x| if x { 1.0 / k } else { 0.0 }));
        }
        let p = terminal_distribution(&g, &probs);
        // P_F is float32, so sums hold to float32 precision.
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-6);
        assert!((p[0] - 1.0 / 3.0).abs() < 1e-6); // exit at the origin
                                                  // (0,1): reached with 1/3, exits with 1/3.
        assert!((p[1] - 1.0 / 9.0).abs() < 1e-6);
    }

    #[test]
    fn distances_of_equal_and_disjoint() {
        let p = [0.5, 0.5, 0.0];
        assert_eq!(distances(&p, &p).l1, 0.0);
        let q = [0.0, 0.0, 1.0];
        let d = distances(&p, &q);
        assert!((d.l1 - 2.0).abs() < 1e-12);
        assert!((d.jsd - std::f64::consts::LN_2).abs() < 1e-12);
        assert!(d.kl.is_infinite());
        assert_eq!(histogram([0, 0, 2, 1], 3), vec![0.5, 0.25, 0.25]);
    }
}
