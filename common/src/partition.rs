//! `ln Z` and the number of mode states of a reward without enumerating the grid, where the
//! reward allows it: grids far past enumeration (10-D H=128 has about 10^21 states) still get a
//! true log Z and a mode count.
//!
//! The original and deceptive rewards depend on a state only through two nested per-coordinate
//! sets: the thin band B inside an outer set O (the outer ring for the original reward, "away
//! from the centre" for the deceptive one). A state is in one of three classes: every
//! coordinate in B, every coordinate in O but not all in B, or some coordinate outside O. The
//! classes hold |B|^D, |O|^D − |B|^D and H^D − |O|^D states, and every state of a class has the
//! same float32 reward. Both the sets and each class's reward and mode status are read from
//! [`Reward::reward`] and [`Reward::is_mode`] themselves, so the float32 boundaries (H ≡ 1 mod
//! 10) and rounding are those of the enumerated target, exactly.

use crate::env::HyperGrid;
use crate::reward::{Reward, RewardKind};

/// What the closed form gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Partition {
    /// `ln Σ_x R(x)`.
    pub log_z: f64,
    /// Mode states; `None` when the count does not fit in 128 bits.
    pub n_modes: Option<u128>,
}

/// The closed form for `reward` on `grid`; `None` for the rewards that do not factorise this
/// way (cosine, sparse, the tiered rewards).
pub fn closed_form(grid: &HyperGrid, reward: &Reward) -> Option<Partition> {
    if !matches!(reward.kind, RewardKind::Original | RewardKind::Deceptive) {
        return None;
    }
    let (d, h) = (grid.ndim(), grid.height());
    let inner: Vec<u16> = (0..h as u16).filter(|&c| reward.in_band(c)).collect();
    let outer: Vec<u16> = (0..h as u16).filter(|&c| reward.in_outer(c)).collect();
    let rest: Vec<u16> = (0..h as u16).filter(|&c| !reward.in_outer(c)).collect();
    let only_outer: Vec<u16> = outer
        .iter()
        .copied()
        .filter(|&c| !reward.in_band(c))
        .collect();
    // One representative state per class (absent when the class is empty), and its size.
    let (b, o, hh) = (inner.len() as f64, outer.len() as f64, h as f64);
    let classes = [
        (inner.first().map(|&c| vec![c; d]), d as f64 * b.ln(), 0.0),
        (
            only_outer
                .first()
                .map(|&c| with_first(c, inner.first().copied(), d)),
            d as f64 * o.ln(),
            (b / o).powi(d as i32),
        ),
        (
            rest.first()
                .map(|&c| with_first(c, outer.first().copied(), d)),
            d as f64 * hh.ln(),
            (o / hh).powi(d as i32),
        ),
    ];
    // ln(n^D − m^D) = D ln n + ln(1 − (m/n)^D): no count is formed, so any D works.
    let terms: Vec<f64> = classes
        .iter()
        .filter_map(|(state, log_n, ratio)| {
            let state = state.as_ref()?;
            Some(log_n + (-ratio).ln_1p() + (reward.reward(state) as f64).ln())
        })
        .collect();
    let n_modes = classes
        .iter()
        .zip([
            (inner.len(), 0),
            (outer.len(), inner.len()),
            (h, outer.len()),
        ])
        .filter(|((state, _, _), _)| state.as_ref().is_some_and(|s| reward.is_mode(s)))
        .map(|(_, (n, m))| power(n, d)?.checked_sub(power(m, d)?))
        .try_fold(0u128, |acc, n| acc.checked_add(n?));
    Some(Partition {
        log_z: log_sum_exp(&terms),
        n_modes,
    })
}

/// What uniform sampling says where no closed form holds: torchgfn's `mode_stats="approx"`
/// (the fraction of uniformly drawn states that are modes, times the number of states), and
/// the same draws' mean reward for ln Z. Estimates, and labelled so wherever they are shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// `D ln H + ln(mean R)` over the draws.
    pub log_z: f64,
    /// Mode fraction of the draws times `H^D`.
    pub n_modes: f64,
    /// The mode fraction's relative standard error, `sqrt((1 − p) / (p n))`; infinite when no
    /// draw was a mode (the count is then only known to be small).
    pub n_modes_rel_se: f64,
    pub samples: usize,
}

/// States drawn for an [`Estimate`]: a mode fraction of 1 % is then known to 1 % (torchgfn
/// draws 20,000 by default). About 0.1–0.5 s once per run on 10-D grids.
pub const ESTIMATE_SAMPLES: usize = 1 << 20;

/// Draws `samples` states uniformly (a fixed stream, so every run of a grid and reward reports
/// the same estimate) and estimates ln Z and the number of mode states from them.
pub fn uniform_estimate(grid: &HyperGrid, reward: &Reward, samples: usize) -> Estimate {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(0x6766_6e5f_6573_7469);
    let (d, h) = (grid.ndim(), grid.height());
    let mut x = vec![0u16; d];
    let threshold = reward.mode_threshold(d);
    let (mut sum, mut modes) = (0.0f64, 0usize);
    for _ in 0..samples {
        for c in x.iter_mut() {
            *c = rng.random_range(0..h as u16);
        }
        // One evaluation for both: `is_mode` is this comparison.
        let r = reward.reward(&x);
        sum += r as f64;
        modes += (r >= threshold) as usize;
    }
    let n = samples.max(1) as f64;
    let log_states = d as f64 * (h as f64).ln();
    let p = modes as f64 / n;
    Estimate {
        log_z: log_states + (sum / n).ln(),
        n_modes: p * log_states.exp(),
        n_modes_rel_se: ((1.0 - p) / (p * n)).sqrt(),
        samples,
    }
}

/// A state with `first` as its first coordinate and `other` (or `first`) elsewhere: every
/// coordinate but the first in the next inner set, so that it lies in exactly one class.
fn with_first(first: u16, other: Option<u16>, d: usize) -> Vec<u16> {
    let mut s = vec![other.unwrap_or(first); d];
    s[0] = first;
    s
}

fn power(n: usize, d: usize) -> Option<u128> {
    (n as u128).checked_pow(u32::try_from(d).ok()?)
}

fn log_sum_exp(terms: &[f64]) -> f64 {
    let m = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Target;

    #[test]
    fn the_closed_form_is_the_enumerated_target() {
        let mut checked = 0;
        for kind in [RewardKind::Original, RewardKind::Deceptive] {
            for (d, h) in [(2, 8), (4, 8), (3, 11), (2, 64), (1, 21), (5, 6), (2, 31)] {
                for (r0, r1, r2) in [(0.1, 0.5, 2.0), (0.001, 0.5, 2.0), (1e-4, 3.0, 0.7)] {
                    let grid = HyperGrid::new(d, h).unwrap();
                    let reward = Reward::new(kind, h, r0, r1, r2).unwrap();
                    let target = Target::new(&grid, &reward).unwrap();
                    let p = closed_form(&grid, &reward).unwrap();
                    let what = format!("{kind} {d}-D H={h} R0={r0}");
                    assert!(
                        (p.log_z - target.log_z).abs() < 1e-9 * target.log_z.abs().max(1.0),
                        "{what}: {} against {}",
                        p.log_z,
                        target.log_z
                    );
                    assert_eq!(p.n_modes, Some(target.modes.len() as u128), "{what}");
                    checked += !target.modes.is_empty() as usize;
                }
            }
        }
        assert!(checked > 30, "most settings have modes ({checked})");
    }

    #[test]
    fn other_rewards_have_none() {
        let grid = HyperGrid::new(2, 8).unwrap();
        for kind in [RewardKind::Cosine, RewardKind::Sparse] {
            let reward = Reward::new(kind, 8, 0.1, 0.5, 2.0).unwrap();
            assert_eq!(closed_form(&grid, &reward), None);
        }
        for kind in RewardKind::ALL.into_iter().filter(|k| k.is_tiered()) {
            let spec = crate::RewardKwargs::default().resolve(kind, None, 2);
            let reward = Reward::from_spec(&spec, 2, 64).unwrap();
            let grid = HyperGrid::new(2, 64).unwrap();
            assert_eq!(closed_form(&grid, &reward), None, "{kind}");
        }
    }

    /// The estimate is close to the enumerated value where both exist, for a tiered reward
    /// and the original one.
    #[test]
    fn uniform_estimates_agree_with_enumeration() {
        let grid = HyperGrid::new(4, 16).unwrap();
        let xor = crate::RewardKwargs::default().resolve(
            RewardKind::BitwiseXor,
            Some(crate::presets::RewardPreset::Easy),
            4,
        );
        let rewards = [
            Reward::new(RewardKind::Original, 16, 0.1, 0.5, 2.0).unwrap(),
            Reward::from_spec(&xor, 4, 16).unwrap(),
        ];
        for reward in rewards {
            let target = Target::new(&grid, &reward).unwrap();
            let e = uniform_estimate(&grid, &reward, 1 << 18);
            let n = target.modes.len() as f64;
            assert!(
                (e.n_modes - n).abs() < 4.0 * e.n_modes_rel_se * n,
                "{}: {} modes estimated, {n} enumerated (rel. se {})",
                reward.kind,
                e.n_modes,
                e.n_modes_rel_se
            );
            assert!(
                (e.log_z - target.log_z).abs() < 0.02,
                "{e:?} against {}",
                target.log_z
            );
        }
    }

    /// 10-D H=128: 26 band coordinates of 128 (13 on each side), 64 in the outer ring.
    #[test]
    fn huge_grids_get_log_z_and_mode_counts() {
        let grid = HyperGrid::new(10, 128).unwrap();
        let reward = Reward::new(RewardKind::Original, 128, 0.1, 0.5, 2.0).unwrap();
        let p = closed_form(&grid, &reward).unwrap();
        assert_eq!(p.n_modes, Some(26u128.pow(10)));
        let r = |x: f32| x as f64;
        let z = r(0.1) * (128f64.powi(10) - 64f64.powi(10))
            + r(0.1 + 0.5) * (64f64.powi(10) - 26f64.powi(10))
            + r(0.1 + 0.5 + 2.0) * 26f64.powi(10);
        assert!(
            (p.log_z - z.ln()).abs() < 1e-12,
            "{} against {}",
            p.log_z,
            z.ln()
        );
        // Past f64's range of counts the logarithms still hold.
        let grid = HyperGrid::new(200, 128).unwrap();
        let p = closed_form(&grid, &reward).unwrap();
        assert!((p.log_z - (200.0 * 128f64.ln() + 0.1f32.ln() as f64)).abs() < 1e-6);
        assert_eq!(p.n_modes, None, "26^200 does not fit in 128 bits");
    }
}
