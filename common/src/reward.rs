//! HyperGrid reward functions, with the float32 boundary semantics of the reference.

use crate::presets::{RewardSpec, DEFAULT_MODE_GAMMA};
use crate::tiered::{Tiered, TieredError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Which reward family to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RewardKind {
    /// Bengio et al. 2021: `R0 + R1·[outer ring] + R2·[thin band]`.
    #[default]
    Original,
    /// `R0 + R1·Π (cos(50 a) + 1)·φ(5 a)`.
    Cosine,
    /// Reward 1 on the GAFN target corners, ~0 elsewhere.
    Sparse,
    /// `(R0+R1) − R1·[away from the corner] + R2·[thin band]`.
    Deceptive,
    /// torchgfn's `BitwiseXORReward`: tiers of GF(2) parity checks on bit planes.
    BitwiseXor,
    /// torchgfn's `MultiplicativeCoprimeReward`: tiers of prime support, coprimality and lcm.
    MultiplicativeCoprime,
    /// torchgfn's `ConditionalMultiScaleReward`: tiers of shifted base-B digit filters.
    ConditionalMultiscale,
}

impl RewardKind {
    pub const ALL: [RewardKind; 7] = [
        Self::Original,
        Self::Cosine,
        Self::Sparse,
        Self::Deceptive,
        Self::BitwiseXor,
        Self::MultiplicativeCoprime,
        Self::ConditionalMultiscale,
    ];

    /// Whether this is one of the compositional, tiered rewards.
    pub fn is_tiered(self) -> bool {
        matches!(
            self,
            Self::BitwiseXor | Self::MultiplicativeCoprime | Self::ConditionalMultiscale
        )
    }
}

impl FromStr for RewardKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.to_string().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown reward `{s}` (expected original, cosine, sparse, deceptive, \
                     bitwise_xor, multiplicative_coprime or conditional_multiscale)"
                )
            })
    }
}

impl fmt::Display for RewardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Original => "original",
            Self::Cosine => "cosine",
            Self::Sparse => "sparse",
            Self::Deceptive => "deceptive",
            Self::BitwiseXor => "bitwise_xor",
            Self::MultiplicativeCoprime => "multiplicative_coprime",
            Self::ConditionalMultiscale => "conditional_multiscale",
        };
        f.write_str(s)
    }
}

/// A reward function on one grid, with its parameters. Cloning is cheap (the tiered rewards'
/// tables are shared).
#[derive(Debug, Clone, PartialEq)]
pub struct Reward {
    pub kind: RewardKind,
    pub height: usize,
    pub r0: f32,
    pub r1: f32,
    pub r2: f32,
    /// The cosine reward's mode closeness (torchgfn's `mode_gamma`).
    pub mode_gamma: f64,
    tiered: Option<Arc<Tiered>>,
}

/// Why a reward cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RewardError {
    #[error(
        "--R0 must be > 0 with the {0} reward (got {1}): log R would be -inf{hint}",
        hint = zero_base_hint(*.0)
    )]
    NonPositiveBase(RewardKind, f32),
    #[error("--R0, --R1 and --R2 must be finite and >= 0 (got R0 {0}, R1 {1}, R2 {2})")]
    BadParameter(f32, f32, f32),
    #[error("--mode_gamma must be finite and > 0 (got {0})")]
    ModeGamma(f64),
    #[error("{flag} has no meaning with the {kind} reward")]
    Foreign {
        flag: &'static str,
        kind: RewardKind,
    },
    #[error("the {0} reward needs its kwargs (Reward::from_spec)")]
    NeedsKwargs(RewardKind),
    #[error(transparent)]
    Tiered(#[from] TieredError),
}

fn zero_base_hint(kind: RewardKind) -> &'static str {
    match kind.is_tiered() {
        true => {
            " on every state below the first tier (torchgfn's presets set R0 = 0): \
             set a small one, e.g. --R0 1e-3"
        }
        false => " (a preset may set R0 = 0): set one, e.g. --R0 1e-3",
    }
}

impl Reward {
    /// One of the original families (original, cosine, sparse, deceptive) with `mode_gamma`
    /// 0.8; checks the parameters: a reward that can be zero would make `log R` infinite.
    pub fn new(
        kind: RewardKind,
        height: usize,
        r0: f32,
        r1: f32,
        r2: f32,
    ) -> Result<Self, RewardError> {
        if kind.is_tiered() {
            return Err(RewardError::NeedsKwargs(kind));
        }
        let spec = RewardSpec {
            kind,
            r0,
            r1,
            r2,
            mode_gamma: DEFAULT_MODE_GAMMA,
            tiered: None,
        };
        let reward = Self::from_spec(&spec, 1, height)?;
        reward.check_positive()?;
        Ok(reward)
    }

    /// Any reward on an `ndim`-D grid of side `height`, as torchgfn defines it: the kwargs
    /// are checked as torchgfn checks them, and R0 = 0 is allowed (to compute torchgfn's
    /// log partitions and modes); a run needs [`Reward::check_positive`] too.
    pub fn from_spec(spec: &RewardSpec, ndim: usize, height: usize) -> Result<Self, RewardError> {
        let (r0, r1, r2) = (spec.r0, spec.r1, spec.r2);
        let ok = |x: f32| x.is_finite() && x >= 0.0;
        if !(ok(r0) && ok(r1) && ok(r2)) {
            return Err(RewardError::BadParameter(r0, r1, r2));
        }
        let gamma = spec.mode_gamma;
        if !(gamma.is_finite() && gamma > 0.0) {
            return Err(RewardError::ModeGamma(gamma));
        }
        let tiered = match (&spec.tiered, spec.kind.is_tiered()) {
            (Some(params), true) => Some(Arc::new(Tiered::new(params, ndim, height, r0)?)),
            (None, false) => None,
            _ => return Err(RewardError::NeedsKwargs(spec.kind)),
        };
        Ok(Self {
            kind: spec.kind,
            height,
            r0,
            r1,
            r2,
            mode_gamma: gamma,
            tiered,
        })
    }

    /// Refuses a reward that is 0 somewhere (log R = −inf): R0 must be positive, except for
    /// the sparse reward (which adds 1e-12 itself).
    pub fn check_positive(&self) -> Result<(), RewardError> {
        match self.r0 <= 0.0 && self.kind != RewardKind::Sparse {
            true => Err(RewardError::NonPositiveBase(self.kind, self.r0)),
            false => Ok(()),
        }
    }

    /// `|x/(H−1) − 0.5|` computed in float32, as torch does.
    fn centre_distance(&self, c: u16) -> f32 {
        ((c as f32) / ((self.height - 1) as f32) - 0.5f32).abs()
    }

    /// Whether coordinate `c` lies in the thin band `0.3 < |c/(H−1) − 0.5| < 0.4` (float32).
    pub fn in_band(&self, c: u16) -> bool {
        let x = self.centre_distance(c);
        0.3f32 < x && x < 0.4f32
    }

    /// Whether coordinate `c` lies in the outer set around the band: the outer ring
    /// `|c/(H−1) − 0.5| > 0.25` (original) or "away from the centre", `> 0.1` (deceptive).
    pub fn in_outer(&self, c: u16) -> bool {
        let bound = match self.kind {
            RewardKind::Deceptive => 0.1f32,
            _ => 0.25f32,
        };
        self.centre_distance(c) > bound
    }

    /// The reward of one terminal state.
    pub fn reward(&self, state: &[u16]) -> f32 {
        let a = |c: u16| self.centre_distance(c);
        let band = |c: u16| self.in_band(c);
        match self.kind {
            RewardKind::Original => {
                let ring = state.iter().all(|&c| self.in_outer(c));
                let band = state.iter().all(|&c| band(c));
                self.r0 + self.r1 * ring as u8 as f32 + self.r2 * band as u8 as f32
            }
            RewardKind::Cosine => {
                let inv_sqrt_2pi = 1.0 / (2.0 * std::f32::consts::PI).sqrt();
                let prod: f32 = state
                    .iter()
                    .map(|&c| {
                        let x = a(c);
                        let z = 5.0 * x;
                        ((50.0 * x).cos() + 1.0) * (-z * z / 2.0).exp() * inv_sqrt_2pi
                    })
                    .product();
                self.r0 + self.r1 * prod
            }
            RewardKind::Sparse => {
                let top = self.height.saturating_sub(2) as u16;
                let on_target = state.iter().all(|&c| c == 1 || c == top)
                    && state.iter().filter(|&&c| c == 1).count() < state.len().max(1)
                    || (top == 1 && state.iter().all(|&c| c == 1));
                on_target as u8 as f32 + 1e-12
            }
            RewardKind::Deceptive => {
                let away = state.iter().all(|&c| self.in_outer(c));
                let band = state.iter().all(|&c| band(c));
                (self.r0 + self.r1) - self.r1 * away as u8 as f32 + self.r2 * band as u8 as f32
            }
            RewardKind::BitwiseXor
            | RewardKind::MultiplicativeCoprime
            | RewardKind::ConditionalMultiscale => match &self.tiered {
                Some(t) => t.reward(self.r0, state),
                None => self.r0,
            },
        }
    }

    /// `ln R(x)` in float32.
    pub fn log_reward(&self, state: &[u16]) -> f32 {
        self.reward(state).ln()
    }

    /// Rewards at or above this value are modes.
    pub fn mode_threshold(&self, ndim: usize) -> f32 {
        match self.kind {
            RewardKind::Original => self.r0 + self.r1 + self.r2,
            RewardKind::Deceptive => self.r0 + self.r2,
            RewardKind::Sparse => 0.5,
            RewardKind::Cosine => {
                let peak = self.mode_gamma * 2.0 / (2.0 * std::f64::consts::PI).sqrt();
                (self.r0 as f64 + peak.powi(ndim as i32) * self.r1 as f64) as f32
            }
            // torchgfn: R0 + the sum of the tier weights (of the adaptive mode tier for
            // conditional_multiscale), float64 rounded to float32.
            RewardKind::BitwiseXor
            | RewardKind::MultiplicativeCoprime
            | RewardKind::ConditionalMultiscale => match &self.tiered {
                Some(t) => t.threshold,
                None => f32::INFINITY,
            },
        }
    }

    /// For a tiered reward, how many tiers `state` passes in a row from tier 0; `None` for the
    /// other families.
    pub fn tiers_passed(&self, state: &[u16]) -> Option<usize> {
        self.tiered.as_ref().map(|t| t.tiers_passed(state))
    }

    /// Number of tiers of a tiered reward; `None` for the other families.
    pub fn n_tiers(&self) -> Option<usize> {
        self.tiered.as_ref().map(|t| t.n_tiers())
    }

    /// Whether `state` is a mode.
    pub fn is_mode(&self, state: &[u16]) -> bool {
        self.reward(state) >= self.mode_threshold(state.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn original(h: usize) -> Reward {
        Reward::new(RewardKind::Original, h, 0.1, 0.5, 2.0).unwrap()
    }

    #[test]
    fn original_matches_reference_values() {
        let r = original(16);
        assert!((r.reward(&[0, 0]) - 0.6).abs() < 1e-6);
        assert!((r.reward(&[2, 2]) - 2.6).abs() < 1e-6);
        assert!((r.reward(&[5, 5]) - 0.1).abs() < 1e-6);
        assert!((r.reward(&[13, 13]) - 2.6).abs() < 1e-6);
    }

    fn modes(h: usize) -> Vec<(u16, u16)> {
        let r = original(h);
        let mut v = vec![];
        for i in 0..h as u16 {
            for j in 0..h as u16 {
                if r.is_mode(&[i, j]) {
                    v.push((i, j));
                }
            }
        }
        v
    }

    #[test]
    fn float32_band_boundaries() {
        assert_eq!(modes(11), vec![(9, 9)]);
        let m = modes(21);
        assert_eq!(m.len(), 9);
        for (i, j) in m {
            assert!([3, 17, 18].contains(&i) && [3, 17, 18].contains(&j));
        }
        assert_eq!(modes(8).len(), 4);
    }

    #[test]
    fn zero_base_reward_is_refused() {
        assert!(Reward::new(RewardKind::Original, 8, 0.0, 0.5, 2.0).is_err());
        assert!(Reward::new(RewardKind::Original, 8, -1.0, 0.5, 2.0).is_err());
        assert!(Reward::new(RewardKind::Sparse, 8, 0.0, 0.5, 2.0).is_ok());
    }

    #[test]
    fn sparse_and_deceptive() {
        let s = Reward::new(RewardKind::Sparse, 6, 0.1, 0.5, 2.0).unwrap();
        assert!(s.reward(&[1, 4]) > 0.9);
        assert!(s.reward(&[0, 0]) < 1e-6);
        assert!(s.reward(&[1, 1]) < 1e-6, "k = D is excluded");
        let d = Reward::new(RewardKind::Deceptive, 16, 1e-5, 0.1, 2.0).unwrap();
        assert!((d.reward(&[0, 0]) - 1e-5).abs() < 1e-7);
        assert!((d.reward(&[7, 7]) - (1e-5 + 0.1)).abs() < 1e-6);
        assert!(d.is_mode(&[2, 2]));
    }

    #[test]
    fn cosine_peaks_at_centre() {
        let c = Reward::new(RewardKind::Cosine, 21, 0.1, 0.5, 2.0).unwrap();
        assert!(c.reward(&[10, 10]) > c.reward(&[0, 0]));
        assert!(c.is_mode(&[10, 10]));
    }

    /// The tiers passed are the ones whose weights the reward adds, and only tiered rewards
    /// have tiers.
    #[test]
    fn tiers_passed_explain_the_reward() {
        assert_eq!(original(8).tiers_passed(&[1, 1]), None);
        for kind in RewardKind::ALL.into_iter().filter(|k| k.is_tiered()) {
            let spec = crate::RewardKwargs::default().resolve(kind, None, 3);
            let r = Reward::from_spec(&spec, 3, 64).unwrap();
            let weights: Vec<f32> = spec
                .tiered
                .as_ref()
                .unwrap()
                .tier_weights()
                .iter()
                .map(|&w| w as f32)
                .collect();
            assert_eq!(r.n_tiers(), Some(weights.len()));
            let mut seen = vec![0; weights.len() + 1];
            for i in 0..64u16 * 64 {
                let x = [i % 64, i / 64, (i * 7) % 64];
                let k = r.tiers_passed(&x).unwrap();
                seen[k] += 1;
                let expected = weights[..k].iter().fold(r.r0, |acc, &w| acc + w);
                assert_eq!(r.reward(&x), expected, "{kind} at {x:?}");
                assert_eq!(r.is_mode(&x), r.reward(&x) >= r.mode_threshold(3));
            }
            assert!(
                seen[0] > 0 && seen[1..].iter().any(|&n| n > 0),
                "{kind}: {seen:?}"
            );
        }
    }
}
