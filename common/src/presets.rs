//! Reward kwargs and torchgfn 2.4.1's difficulty presets (`get_reward_presets`).
//!
//! A run's reward kwargs come, for each one, from the flag or config key when given, else from
//! the preset (`--reward_preset`) when it sets it, else from the default: HyperGrid's default
//! kwargs `R0 = 0.1, R1 = 0.5, R2 = 2.0` and `mode_gamma = 0.8`, and torchgfn's class defaults
//! for the tiered rewards' other kwargs.

use crate::reward::{RewardError, RewardKind};
use crate::tiered::{BitRange, DimPair, ParityCheck, TieredParams};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A difficulty preset of `get_reward_presets(reward, ndim, height)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RewardPreset {
    Easy,
    Medium,
    Hard,
    Challenging,
    Impossible,
}

impl RewardPreset {
    pub const ALL: [RewardPreset; 5] = [
        Self::Easy,
        Self::Medium,
        Self::Hard,
        Self::Challenging,
        Self::Impossible,
    ];
}

impl FromStr for RewardPreset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.to_string().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown reward preset `{s}` (expected easy, medium, hard, challenging or \
                     impossible)"
                )
            })
    }
}

impl fmt::Display for RewardPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Easy => "easy",
            Self::Medium => "medium",
            Self::Hard => "hard",
            Self::Challenging => "challenging",
            Self::Impossible => "impossible",
        })
    }
}

/// Every reward kwarg, each set or not (`None`). Field names are the flags' (`seed` is
/// `reward_seed`); a 0 in `target_lcms` or `cross_dim_mods` is torchgfn's `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RewardKwargs {
    pub r0: Option<f32>,
    pub r1: Option<f32>,
    pub r2: Option<f32>,
    pub mode_gamma: Option<f64>,
    pub tier_weights: Option<Vec<f64>>,
    pub dims_constrained: Option<Vec<usize>>,
    pub bits_per_tier: Option<Vec<BitRange>>,
    pub parity_checks: Option<Vec<ParityCheck>>,
    pub primes: Option<Vec<u64>>,
    pub exponent_caps: Option<Vec<u32>>,
    pub active_dims: Option<Vec<usize>>,
    pub coprime_pairs: Option<Vec<DimPair>>,
    pub target_lcms: Option<Vec<u64>>,
    pub base: Option<u32>,
    pub filter_width: Option<u32>,
    pub reward_seed: Option<u64>,
    pub cross_dim_mods: Option<Vec<u32>>,
}

/// The reward of a run, every kwarg resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardSpec {
    pub kind: RewardKind,
    pub r0: f32,
    pub r1: f32,
    pub r2: f32,
    pub mode_gamma: f64,
    pub tiered: Option<TieredParams>,
}

/// HyperGrid's default kwargs (gfn's defaults for every family).
pub const DEFAULT_R0: f32 = 0.1;
pub const DEFAULT_R1: f32 = 0.5;
pub const DEFAULT_R2: f32 = 2.0;
pub const DEFAULT_MODE_GAMMA: f64 = 0.8;

/// `_first_k_dims(k, ndim)`: `[0, …, min(max(k, 1), ndim) − 1]`.
fn first_k_dims(k: usize, ndim: usize) -> Vec<usize> {
    (0..k.max(1).min(ndim)).collect()
}

/// `chain_pairs(k)`: `(0,1), (1,2), …, (k−2, k−1)`.
fn chain_pairs(k: usize) -> Vec<DimPair> {
    (1..k).map(|i| DimPair(i - 1, i)).collect()
}

fn bits(ranges: &[(u32, u32)]) -> Option<Vec<BitRange>> {
    Some(ranges.iter().map(|&(a, b)| BitRange(a, b)).collect())
}

impl RewardKwargs {
    /// The names of the kwargs that are set, as flags.
    pub fn set_names(&self) -> Vec<&'static str> {
        let flags = [
            ("--R0", self.r0.is_some()),
            ("--R1", self.r1.is_some()),
            ("--R2", self.r2.is_some()),
            ("--mode_gamma", self.mode_gamma.is_some()),
            ("--tier_weights", self.tier_weights.is_some()),
            ("--dims_constrained", self.dims_constrained.is_some()),
            ("--bits_per_tier", self.bits_per_tier.is_some()),
            ("parity_checks", self.parity_checks.is_some()),
            ("--primes", self.primes.is_some()),
            ("--exponent_caps", self.exponent_caps.is_some()),
            ("--active_dims", self.active_dims.is_some()),
            ("--coprime_pairs", self.coprime_pairs.is_some()),
            ("--target_lcms", self.target_lcms.is_some()),
            ("--base", self.base.is_some()),
            ("--filter_width", self.filter_width.is_some()),
            ("--reward_seed", self.reward_seed.is_some()),
            ("--cross_dim_mods", self.cross_dim_mods.is_some()),
        ];
        flags.iter().filter(|f| f.1).map(|f| f.0).collect()
    }

    /// The kwargs `kind` reads (torchgfn's `kwargs.get` names); R0 … R2 of the original
    /// families are always accepted, as gfn always did.
    pub fn meaningful(kind: RewardKind) -> &'static [&'static str] {
        const R: [&str; 3] = ["--R0", "--R1", "--R2"];
        match kind {
            RewardKind::Original | RewardKind::Sparse | RewardKind::Deceptive => &R,
            RewardKind::Cosine => &["--R0", "--R1", "--R2", "--mode_gamma"],
            RewardKind::BitwiseXor => &[
                "--R0",
                "--tier_weights",
                "--dims_constrained",
                "--bits_per_tier",
                "parity_checks",
            ],
            RewardKind::MultiplicativeCoprime => &[
                "--R0",
                "--tier_weights",
                "--primes",
                "--exponent_caps",
                "--active_dims",
                "--coprime_pairs",
                "--target_lcms",
            ],
            RewardKind::ConditionalMultiscale => &[
                "--R0",
                "--tier_weights",
                "--base",
                "--filter_width",
                "--reward_seed",
                "--cross_dim_mods",
                "--active_dims",
            ],
        }
    }

    /// Refuses a kwarg that `kind` does not read (it would be ignored).
    pub fn refuse_foreign(&self, kind: RewardKind) -> Result<(), RewardError> {
        let ok = Self::meaningful(kind);
        match self.set_names().into_iter().find(|n| !ok.contains(n)) {
            Some(flag) => Err(RewardError::Foreign { flag, kind }),
            None => Ok(()),
        }
    }

    /// `get_reward_presets(kind, ndim, height)[preset]` of torchgfn 2.4.1.
    pub fn preset(kind: RewardKind, preset: RewardPreset, ndim: usize) -> Self {
        use RewardPreset::*;
        let p = preset;
        let weights = |n: usize| Some([1.0, 10.0, 100.0, 1000.0, 10000.0][..n].to_vec());
        match kind {
            RewardKind::Original => {
                let (r0, r1, r2) = match p {
                    Easy => (0.1, 0.3, 1.0),
                    Medium => (0.1, 0.5, 2.0),
                    Hard => (0.05, 0.6, 3.0),
                    Challenging => (0.01, 0.6, 4.0),
                    Impossible => (0.0, 0.7, 5.0),
                };
                Self::classic(r0, r1, Some(r2), None)
            }
            RewardKind::Cosine => {
                let (r0, r1, gamma) = match p {
                    Easy => (0.1, 0.3, 0.7),
                    Medium => (0.1, 0.5, 0.8),
                    Hard => (0.05, 0.6, 0.85),
                    Challenging => (0.01, 0.7, 0.9),
                    Impossible => (0.0, 0.8, 0.92),
                };
                Self::classic(r0, r1, None, Some(gamma))
            }
            // SparseReward ignores its kwargs: every preset is empty.
            RewardKind::Sparse => Self::default(),
            RewardKind::Deceptive => {
                let (r1, r2) = match p {
                    Easy => (0.05, 1.0),
                    Medium => (0.1, 2.0),
                    Hard => (0.15, 3.0),
                    Challenging => (0.2, 4.0),
                    Impossible => (0.25, 5.0),
                };
                Self::classic(1e-5, r1, Some(r2), None)
            }
            RewardKind::BitwiseXor => {
                let (tiers, k, ranges): (usize, usize, &[(u32, u32)]) = match p {
                    Easy => (3, 3, &[(0, 4), (0, 5), (0, 5)]),
                    Medium => (4, 4, &[(0, 6), (0, 7), (0, 7), (0, 7)]),
                    Hard => (4, 8, &[(0, 8); 4]),
                    Challenging => (4, 6, &[(0, 9); 4]),
                    Impossible => (5, 12, &[(0, 9), (0, 10), (0, 10), (0, 10), (0, 10)]),
                };
                Self {
                    r0: Some(0.0),
                    tier_weights: weights(tiers),
                    dims_constrained: Some(first_k_dims(k, ndim)),
                    bits_per_tier: bits(ranges),
                    ..Self::default()
                }
            }
            RewardKind::MultiplicativeCoprime => {
                let all = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29];
                // The targets are 2^3·3^2·5·7·11, 2^3·3^2·5^2·13 and 2^4·3^3·5^2·7·11
                // (torchgfn's comments say 9240 and 5850 for the first two; the values are
                // the products).
                let (tiers, n_primes, caps, k, lcms): (usize, usize, &[u32], usize, &[u64]) =
                    match p {
                        Easy => (3, 3, &[2, 2, 2], 3, &[0, 0, 0]),
                        Medium => (4, 4, &[2, 2, 2, 2], 5, &[0, 0, 0, 0]),
                        Hard => (4, 5, &[3, 3, 3, 3], 8, &[0, 0, 27_720, 27_720]),
                        Challenging => (4, 6, &[3, 3, 4, 4], 10, &[0, 0, 0, 23_400]),
                        Impossible => (5, 10, &[4; 5], 12, &[0, 0, 0, 0, 831_600]),
                    };
                Self {
                    r0: Some(0.0),
                    tier_weights: weights(tiers),
                    primes: Some(all[..n_primes].to_vec()),
                    exponent_caps: Some(caps.to_vec()),
                    active_dims: Some(first_k_dims(k, ndim)),
                    coprime_pairs: Some(chain_pairs(k)),
                    target_lcms: Some(lcms.to_vec()),
                    ..Self::default()
                }
            }
            RewardKind::ConditionalMultiscale => {
                let (tiers, k, mods): (usize, usize, Option<&[u32]>) = match p {
                    Easy => (2, 3, None),
                    Medium => (3, 4, None),
                    Hard => (3, 6, Some(&[0, 2, 2])),
                    Challenging => (4, 8, Some(&[0, 0, 2, 2])),
                    Impossible => (4, 12, Some(&[0, 2, 2, 2])),
                };
                Self {
                    r0: Some(0.0),
                    tier_weights: weights(tiers),
                    base: Some(4),
                    filter_width: Some(2),
                    reward_seed: Some(42),
                    active_dims: Some(first_k_dims(k, ndim)),
                    cross_dim_mods: mods.map(<[u32]>::to_vec),
                    ..Self::default()
                }
            }
        }
    }

    fn classic(r0: f32, r1: f32, r2: Option<f32>, mode_gamma: Option<f64>) -> Self {
        Self {
            r0: Some(r0),
            r1: Some(r1),
            r2,
            mode_gamma,
            ..Self::default()
        }
    }

    /// Each kwarg from `self` where set, else from `fallback`.
    pub fn or(self, fallback: Self) -> Self {
        Self {
            r0: self.r0.or(fallback.r0),
            r1: self.r1.or(fallback.r1),
            r2: self.r2.or(fallback.r2),
            mode_gamma: self.mode_gamma.or(fallback.mode_gamma),
            tier_weights: self.tier_weights.or(fallback.tier_weights),
            dims_constrained: self.dims_constrained.or(fallback.dims_constrained),
            bits_per_tier: self.bits_per_tier.or(fallback.bits_per_tier),
            parity_checks: self.parity_checks.or(fallback.parity_checks),
            primes: self.primes.or(fallback.primes),
            exponent_caps: self.exponent_caps.or(fallback.exponent_caps),
            active_dims: self.active_dims.or(fallback.active_dims),
            coprime_pairs: self.coprime_pairs.or(fallback.coprime_pairs),
            target_lcms: self.target_lcms.or(fallback.target_lcms),
            base: self.base.or(fallback.base),
            filter_width: self.filter_width.or(fallback.filter_width),
            reward_seed: self.reward_seed.or(fallback.reward_seed),
            cross_dim_mods: self.cross_dim_mods.or(fallback.cross_dim_mods),
        }
    }

    /// The reward these kwargs give `kind` on an `ndim`-D grid, with `preset` under them and
    /// the defaults under both. Kwargs that `kind` does not read are left out (see
    /// [`RewardKwargs::refuse_foreign`]).
    pub fn resolve(
        &self,
        kind: RewardKind,
        preset: Option<RewardPreset>,
        ndim: usize,
    ) -> RewardSpec {
        let k = match preset {
            Some(p) => self.clone().or(Self::preset(kind, p, ndim)),
            None => self.clone(),
        };
        let all_dims = || (0..ndim).collect::<Vec<_>>();
        let tier_weights = k.tier_weights.clone().unwrap_or(vec![1.0, 10.0, 100.0]);
        let tiers = tier_weights.len();
        let tiered = match kind {
            RewardKind::BitwiseXor => Some(TieredParams::BitwiseXor {
                tier_weights,
                dims_constrained: k.dims_constrained.clone().unwrap_or_else(all_dims),
                bits_per_tier: k
                    .bits_per_tier
                    .clone()
                    .or_else(|| bits(&[(0, 5), (0, 7), (0, 9)]))
                    .unwrap_or_default(),
                parity_checks: k.parity_checks.clone(),
            }),
            RewardKind::MultiplicativeCoprime => Some(TieredParams::MultiplicativeCoprime {
                tier_weights,
                primes: k.primes.clone().unwrap_or(vec![2, 3, 5]),
                exponent_caps: k.exponent_caps.clone().unwrap_or(vec![2; tiers]),
                active_dims: k.active_dims.clone().unwrap_or_else(all_dims),
                coprime_pairs: k.coprime_pairs.clone().unwrap_or_default(),
                target_lcms: k.target_lcms.clone().unwrap_or(vec![0; tiers]),
            }),
            RewardKind::ConditionalMultiscale => {
                let base = k.base.unwrap_or(4);
                Some(TieredParams::ConditionalMultiscale {
                    tier_weights,
                    base,
                    filter_width: k.filter_width.unwrap_or(base / 2),
                    seed: k.reward_seed.unwrap_or(42),
                    cross_dim_mods: k.cross_dim_mods.clone().unwrap_or(vec![0; tiers]),
                    active_dims: k.active_dims.clone().unwrap_or_else(all_dims),
                })
            }
            _ => None,
        };
        RewardSpec {
            kind,
            r0: k.r0.unwrap_or(DEFAULT_R0),
            r1: k.r1.unwrap_or(DEFAULT_R1),
            r2: k.r2.unwrap_or(DEFAULT_R2),
            mode_gamma: k.mode_gamma.unwrap_or(DEFAULT_MODE_GAMMA),
            tiered,
        }
    }
}
