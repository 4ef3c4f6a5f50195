//! torchgfn 2.4.1's compositional, tiered HyperGrid rewards (`BitwiseXORReward`,
//! `MultiplicativeCoprimeReward`, `ConditionalMultiScaleReward`), with their kwargs.
//!
//! Each has the form `R(s) = R0 + Σ_t w_t · 1[s passes tiers 0..t]`, summed in float32 in
//! torchgfn's order (`R0`, then each tier's weight or 0), so gfn's rewards are torchgfn's bit
//! for bit. Evaluation allocates nothing: the checks run over the state's coordinates in place.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An inclusive range of bit planes `(low, high)` of `bits_per_tier`; written `low:high` on the
/// command line and `[low, high]` in TOML. A range with `low > high` holds no plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BitRange(pub u32, pub u32);

/// Two dimensions (indices into `active_dims`) that may share no prime: `i:j` on the command
/// line, `[i, j]` in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DimPair(pub usize, pub usize);

fn parse_pair<T: FromStr>(s: &str, what: &str) -> Result<(T, T), String> {
    let bad = || format!("bad {what} `{s}` (expected two integers as a:b)");
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    Ok((
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    ))
}

impl FromStr for BitRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_pair(s, "bit range").map(|(a, b)| Self(a, b))
    }
}

impl FromStr for DimPair {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_pair(s, "dimension pair").map(|(a, b)| Self(a, b))
    }
}

impl fmt::Display for BitRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

impl fmt::Display for DimPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0, self.1)
    }
}

/// One tier's GF(2) parity system of `bitwise_xor`: `A · b ≡ c (mod 2)` on every bit plane b of
/// the tier (b the plane's bits over `dims_constrained`). The empty system (TOML `{}`, torchgfn's
/// `None`) is the default even parity `Σ b ≡ 0`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParityCheck {
    #[serde(rename = "A", alias = "a", default)]
    pub a: Vec<Vec<i64>>,
    #[serde(default)]
    pub c: Vec<i64>,
}

impl ParityCheck {
    fn is_default(&self) -> bool {
        self.a.is_empty() && self.c.is_empty()
    }
}

/// The resolved kwargs of a tiered reward (every one set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TieredParams {
    BitwiseXor {
        tier_weights: Vec<f64>,
        dims_constrained: Vec<usize>,
        bits_per_tier: Vec<BitRange>,
        /// One system per tier, or none at all (even parity everywhere).
        parity_checks: Option<Vec<ParityCheck>>,
    },
    MultiplicativeCoprime {
        tier_weights: Vec<f64>,
        primes: Vec<u64>,
        exponent_caps: Vec<u32>,
        active_dims: Vec<usize>,
        coprime_pairs: Vec<DimPair>,
        /// Per tier; 0 is torchgfn's None (no target).
        target_lcms: Vec<u64>,
    },
    ConditionalMultiscale {
        tier_weights: Vec<f64>,
        base: u32,
        filter_width: u32,
        seed: u64,
        /// Per tier; 0 is torchgfn's None (no cross-dimension constraint).
        cross_dim_mods: Vec<u32>,
        active_dims: Vec<usize>,
    },
}

impl TieredParams {
    pub fn tier_weights(&self) -> &[f64] {
        match self {
            Self::BitwiseXor { tier_weights, .. }
            | Self::MultiplicativeCoprime { tier_weights, .. }
            | Self::ConditionalMultiscale { tier_weights, .. } => tier_weights,
        }
    }
}

/// Why a tiered reward's kwargs cannot be used (torchgfn asserts or fails on the same ones, or
/// would produce a reward that is not finite and positive).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TieredError {
    #[error("--{0} must not be empty")]
    Empty(&'static str),
    #[error("--{what} has {got} entries, one per tier is needed ({tiers} tier weights)")]
    PerTier {
        what: &'static str,
        got: usize,
        tiers: usize,
    },
    #[error("--{0} has more than {max} entries", max = MAX_LIST)]
    TooLong(&'static str),
    #[error("--tier_weights must be finite and >= 0 (got {0})")]
    Weight(f64),
    #[error("--{what} names dimension {index}, the grid has {ndim}")]
    Dim {
        what: &'static str,
        index: usize,
        ndim: usize,
    },
    #[error("parity_checks tier {tier}: {why}")]
    Parity { tier: usize, why: String },
    #[error("--primes must be at least 2 (got {0})")]
    Prime(u64),
    #[error("--height {height} must be a power of --base {base} for conditional_multiscale")]
    NotAPower { height: usize, base: u32 },
    #[error("--base must be at least 2 (got {0})")]
    Base(u32),
    #[error("{tiers} tiers need {tiers} base-{base} digit levels, --height {height} has {levels}")]
    TooManyTiers {
        tiers: usize,
        base: u32,
        height: usize,
        levels: u32,
    },
    #[error("--filter_width must be in [1, --base {base}] (got {width})")]
    FilterWidth { width: u32, base: u32 },
    #[error(
        "--cross_dim_mods {m}: each must be 0 (none) or >= 2 and divide --filter_width {width}"
    )]
    CrossDimMod { m: u32, width: u32 },
}

/// Largest number of tiers, primes, dimensions, pairs or parity rows taken (torchgfn's presets
/// use at most 12).
pub const MAX_LIST: usize = 4096;

/// A tiered reward, checked, with what its evaluation needs precomputed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tiered {
    /// float32 weights, as torch multiplies them.
    weights: Vec<f32>,
    rule: Rule,
    /// The mode threshold, rounded to float32 as torch compares it.
    pub(crate) threshold: f32,
}

#[derive(Debug, Clone, PartialEq)]
enum Rule {
    Xor {
        dims: Vec<usize>,
        tiers: Vec<XorTier>,
    },
    Coprime {
        dims: Vec<usize>,
        primes: Vec<u64>,
        caps: Vec<u32>,
        /// Pairs inside `dims` (torchgfn skips the others).
        pairs: Vec<(usize, usize)>,
        lcms: Vec<Lcm>,
    },
    Multiscale {
        dims: Vec<usize>,
        base: u32,
        filter: u32,
        shifts: Vec<Vec<u32>>,
        mods: Vec<u32>,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct XorTier {
    /// Planes `lo..=hi` that a u16 coordinate can have set (hi ≤ 15).
    lo: u32,
    hi: u32,
    /// Whether the planes above 15 (all bits zero) pass: always for even parity, and for a
    /// system only when every `c` is 0.
    zero_planes_ok: bool,
    /// `A` and `c` (c broadcast to every row, as torch's `expand_as`, when it has one entry).
    system: Option<(Vec<Vec<i64>>, Vec<i64>)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Lcm {
    None,
    /// The target has a prime outside `primes`: the tier never passes.
    Impossible,
    /// The target's exponent of each prime.
    Exponents(Vec<u32>),
}

fn check_dims(what: &'static str, dims: &[usize], ndim: usize) -> Result<(), TieredError> {
    if dims.is_empty() {
        return Err(TieredError::Empty(what));
    }
    if dims.len() > MAX_LIST {
        return Err(TieredError::TooLong(what));
    }
    match dims.iter().find(|&&d| d >= ndim) {
        Some(&index) => Err(TieredError::Dim { what, index, ndim }),
        None => Ok(()),
    }
}

fn per_tier(what: &'static str, got: usize, tiers: usize) -> Result<(), TieredError> {
    match got == tiers {
        true => Ok(()),
        false => Err(TieredError::PerTier { what, got, tiers }),
    }
}

impl Tiered {
    pub(crate) fn new(
        params: &TieredParams,
        ndim: usize,
        height: usize,
        r0: f32,
    ) -> Result<Self, TieredError> {
        let weights = params.tier_weights();
        if weights.is_empty() {
            return Err(TieredError::Empty("tier_weights"));
        }
        let tiers = weights.len();
        if tiers > MAX_LIST {
            return Err(TieredError::TooLong("tier_weights"));
        }
        if let Some(&w) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
            return Err(TieredError::Weight(w));
        }
        // torchgfn: R0 + float(sum(tier_weights)) in float64 (the first `mode_tiers` weights
        // for conditional_multiscale), compared with float32 rewards in float32.
        let mut mode_tiers = tiers;
        let rule = match params {
            TieredParams::BitwiseXor {
                dims_constrained,
                bits_per_tier,
                parity_checks,
                ..
            } => {
                check_dims("dims_constrained", dims_constrained, ndim)?;
                per_tier("bits_per_tier", bits_per_tier.len(), tiers)?;
                if let Some(p) = parity_checks {
                    per_tier("parity_checks", p.len(), tiers)?;
                }
                let m = dims_constrained.len();
                let mut xor_tiers = Vec::with_capacity(tiers);
                for (t, &BitRange(lo, hi)) in bits_per_tier.iter().enumerate() {
                    let check = parity_checks.as_ref().map(|p| &p[t]);
                    let system = match check {
                        Some(c) if !c.is_default() => {
                            let bad = |why: String| TieredError::Parity { tier: t, why };
                            if c.a.is_empty() != c.c.is_empty() {
                                return Err(bad("give both A and c, or neither".into()));
                            }
                            if c.a.len() > MAX_LIST {
                                return Err(bad(format!("more than {MAX_LIST} rows")));
                            }
                            if let Some(row) = c.a.iter().find(|r| r.len() != m) {
                                return Err(bad(format!(
                                    "a row of A has {} entries, dims_constrained has {m}",
                                    row.len()
                                )));
                            }
                            if c.c.len() != c.a.len() && c.c.len() != 1 {
                                return Err(bad(format!(
                                    "c has {} entries, A has {} rows",
                                    c.c.len(),
                                    c.a.len()
                                )));
                            }
                            Some((c.a.clone(), c.c.clone()))
                        }
                        _ => None,
                    };
                    let zero_planes_ok = match &system {
                        None => true,
                        Some((_, c)) => c.iter().all(|&v| v == 0),
                    };
                    xor_tiers.push(XorTier {
                        lo,
                        hi: hi.min(15),
                        // Planes above 15 exist in the window only when hi > 15.
                        zero_planes_ok: hi <= 15 || lo > hi || zero_planes_ok,
                        system,
                    });
                }
                Rule::Xor {
                    dims: dims_constrained.clone(),
                    tiers: xor_tiers,
                }
            }
            TieredParams::MultiplicativeCoprime {
                primes,
                exponent_caps,
                active_dims,
                coprime_pairs,
                target_lcms,
                ..
            } => {
                check_dims("active_dims", active_dims, ndim)?;
                if primes.is_empty() {
                    return Err(TieredError::Empty("primes"));
                }
                if primes.len() > MAX_LIST {
                    return Err(TieredError::TooLong("primes"));
                }
                if let Some(&p) = primes.iter().find(|&&p| p < 2) {
                    return Err(TieredError::Prime(p));
                }
                per_tier("exponent_caps", exponent_caps.len(), tiers)?;
                per_tier("target_lcms", target_lcms.len(), tiers)?;
                if coprime_pairs.len() > MAX_LIST {
                    return Err(TieredError::TooLong("coprime_pairs"));
                }
                let n = active_dims.len();
                let pairs = coprime_pairs
                    .iter()
                    .filter(|DimPair(i, j)| *i < n && *j < n)
                    .map(|&DimPair(i, j)| (i, j))
                    .collect();
                let lcms = target_lcms
                    .iter()
                    .map(|&target| {
                        if target == 0 {
                            return Lcm::None;
                        }
                        let mut rest = target;
                        let exps = primes
                            .iter()
                            .map(|&p| {
                                let mut e = 0;
                                while rest % p == 0 {
                                    rest /= p;
                                    e += 1;
                                }
                                e
                            })
                            .collect();
                        match rest {
                            1 => Lcm::Exponents(exps),
                            _ => Lcm::Impossible,
                        }
                    })
                    .collect();
                Rule::Coprime {
                    dims: active_dims.clone(),
                    primes: primes.clone(),
                    caps: exponent_caps.clone(),
                    pairs,
                    lcms,
                }
            }
            TieredParams::ConditionalMultiscale {
                base,
                filter_width,
                seed,
                cross_dim_mods,
                active_dims,
                ..
            } => {
                let (base, filter) = (*base, *filter_width);
                if base < 2 {
                    return Err(TieredError::Base(base));
                }
                let mut levels = 0u32;
                let mut h = height;
                while h > 1 {
                    if !h.is_multiple_of(base as usize) {
                        return Err(TieredError::NotAPower { height, base });
                    }
                    h /= base as usize;
                    levels += 1;
                }
                if levels == 0 {
                    return Err(TieredError::NotAPower { height, base });
                }
                if tiers > levels as usize {
                    return Err(TieredError::TooManyTiers {
                        tiers,
                        base,
                        height,
                        levels,
                    });
                }
                if !(1..=base).contains(&filter) {
                    return Err(TieredError::FilterWidth {
                        width: filter,
                        base,
                    });
                }
                per_tier("cross_dim_mods", cross_dim_mods.len(), tiers)?;
                if let Some(&m) = cross_dim_mods
                    .iter()
                    .find(|&&m| m != 0 && (m < 2 || filter % m != 0))
                {
                    return Err(TieredError::CrossDimMod { m, width: filter });
                }
                check_dims("active_dims", active_dims, ndim)?;
                mode_tiers = multiscale_mode_tier(filter, base, active_dims.len(), tiers);
                Rule::Multiscale {
                    dims: active_dims.clone(),
                    base,
                    filter,
                    shifts: shift_coeffs(*seed, base, tiers),
                    mods: cross_dim_mods.clone(),
                }
            }
        };
        let sum: f64 = weights[..mode_tiers].iter().sum();
        Ok(Self {
            weights: weights.iter().map(|&w| w as f32).collect(),
            rule,
            threshold: (r0 as f64 + sum) as f32,
        })
    }

    /// `R0 + Σ_t w_t · 1[tiers 0..t pass]` in float32, torchgfn's order of operations.
    pub(crate) fn reward(&self, r0: f32, state: &[u16]) -> f32 {
        let mut r = r0;
        let mut valid = true;
        for (t, &w) in self.weights.iter().enumerate() {
            valid = valid && self.passes(t, state);
            // torch adds `valid · w`, 0.0 for a failed tier: the same float32 sum.
            r += if valid { w } else { 0.0 };
        }
        r
    }

    /// How many tiers `state` passes in a row from tier 0 (the tiers whose weight it earns).
    pub(crate) fn tiers_passed(&self, state: &[u16]) -> usize {
        (0..self.weights.len())
            .take_while(|&t| self.passes(t, state))
            .count()
    }

    /// Number of tiers.
    pub(crate) fn n_tiers(&self) -> usize {
        self.weights.len()
    }

    fn passes(&self, t: usize, state: &[u16]) -> bool {
        match &self.rule {
            Rule::Xor { dims, tiers } => {
                let tier = &tiers[t];
                tier.zero_planes_ok
                    && (tier.lo..=tier.hi).all(|b| {
                        let bit = |d: usize| ((state[d] >> b) & 1) as i64;
                        match &tier.system {
                            None => dims.iter().map(|&d| bit(d)).sum::<i64>() & 1 == 0,
                            Some((a, c)) => a.iter().enumerate().all(|(row, coef)| {
                                let s = dims
                                    .iter()
                                    .zip(coef)
                                    .fold(0i64, |s, (&d, &k)| s.wrapping_add(bit(d) * k));
                                s & 1 == c[if c.len() == 1 { 0 } else { row }]
                            }),
                        }
                    })
            }
            Rule::Coprime {
                dims,
                primes,
                caps,
                pairs,
                lcms,
            } => {
                let x = |i: usize| state[dims[i]] as u64;
                let n = dims.len();
                // Zero has no factorisation (torchgfn's base_valid, part of every tier).
                if (0..n).any(|i| x(i) == 0) {
                    return false;
                }
                let cap = caps[t];
                let support = (0..n).all(|i| x(i) == 1 || strip(x(i), primes, cap).0 == 1);
                let coprime = pairs
                    .iter()
                    .all(|&(i, j)| primes.iter().all(|&p| !(x(i) % p == 0 && x(j) % p == 0)));
                let lcm = match &lcms[t] {
                    Lcm::None => true,
                    Lcm::Impossible => false,
                    Lcm::Exponents(want) => want.iter().enumerate().all(|(k, &e)| {
                        let exponent = |i: usize| strip(x(i), &primes[..=k], cap).1;
                        (0..n).map(exponent).max() == Some(e)
                    }),
                };
                support && coprime && lcm
            }
            Rule::Multiscale {
                dims,
                base,
                filter,
                shifts,
                mods,
            } => {
                let b = *base as u64;
                let digit = |v: u64, k: usize| (v / b.pow(k as u32)) % b;
                let per_dim = dims.iter().all(|&d| {
                    let v = state[d] as u64;
                    let shift = shifts[t]
                        .iter()
                        .enumerate()
                        .map(|(k, &a)| a as u64 * digit(v, k))
                        .sum::<u64>()
                        % b;
                    (digit(v, t) + shift) % b < *filter as u64
                });
                let cross = match mods[t] {
                    0 => true,
                    m => {
                        dims.iter().map(|&d| digit(state[d] as u64, t)).sum::<u64>() % m as u64 == 0
                    }
                };
                per_dim && cross
            }
        }
    }
}

/// `v` with each prime stripped at most `cap` times, in the order given (torchgfn's
/// `_factor_exponents_up_to_cap`), and the exponent found for the last prime.
fn strip(mut v: u64, primes: &[u64], cap: u32) -> (u64, u32) {
    let mut last = 0;
    for &p in primes {
        last = 0;
        while last < cap && v.is_multiple_of(p) {
            v /= p;
            last += 1;
        }
    }
    (v, last)
}

/// torchgfn's `ConditionalMultiScaleReward.mode_tier(0.10)`: the first tier t (1-based) whose
/// coverage `(f/B)^(t·d)` is below 10%, else the last.
fn multiscale_mode_tier(filter: u32, base: u32, d: usize, tiers: usize) -> usize {
    let ratio = filter as f64 / base as f64;
    (1..=tiers)
        .find(|&t| ratio.powf((t * d) as f64) < 0.10)
        .unwrap_or(tiers)
}

/// The shift coefficients `a_{t,k}` of `conditional_multiscale`: torchgfn draws
/// `torch.randint(0, base, (t,), generator=torch.Generator().manual_seed(seed))` for tiers
/// t = 1, 2, … in turn. torch's CPU generator is MT19937 seeded with the seed's low 32 bits, and
/// `randint` over a range below 2^32 takes one 32-bit draw per value, modulo the range.
pub fn shift_coeffs(seed: u64, base: u32, tiers: usize) -> Vec<Vec<u32>> {
    let mut mt = Mt19937::new(seed as u32);
    (0..tiers)
        .map(|t| (0..t).map(|_| mt.next_u32() % base).collect())
        .collect()
}

/// The 32-bit Mersenne Twister (MT19937), as `std::mt19937` and torch's CPU generator.
struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for j in 1..624 {
            let prev = state[j - 1];
            state[j] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(j as u32);
        }
        Self { state, index: 624 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for k in 0..624 {
                let y = (self.state[k] & 0x8000_0000) | (self.state[(k + 1) % 624] & 0x7fff_ffff);
                let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
                self.state[k] = self.state[(k + 397) % 624] ^ (y >> 1) ^ mag;
            }
            self.index = 0;
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_is_the_standard_one() {
        // std::mt19937(5489)'s 10000th output is 4123659995 (C++ standard, [rand.predef]).
        let mut mt = Mt19937::new(5489);
        let v = (0..10_000).map(|_| mt.next_u32()).last();
        assert_eq!(v, Some(4_123_659_995));
        // torch.Generator().manual_seed(42): torch.randint(0, 4, (1,)) then (2,), (3,).
        assert_eq!(
            shift_coeffs(42, 4, 4),
            vec![vec![], vec![2], vec![3, 0], vec![2, 2, 3]]
        );
    }

    #[test]
    fn pairs_and_ranges_parse() {
        assert_eq!("0:5".parse(), Ok(BitRange(0, 5)));
        assert_eq!(" 2 : 3".parse(), Ok(DimPair(2, 3)));
        assert!("2".parse::<DimPair>().is_err());
        assert!("a:1".parse::<BitRange>().is_err());
        assert!("-1:1".parse::<BitRange>().is_err());
    }
}
