//! Preprocessors: how a grid state becomes the input of an estimator.

use crate::env::HyperGrid;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How states are encoded for the networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Preprocessor {
    /// Concatenation of one one-hot vector of length `H` per dimension (`H·D` inputs).
    #[default]
    KHot,
    /// One-hot of the canonical index (`H^D` inputs).
    OneHot,
    /// The raw coordinates as floats (`D` inputs).
    Identity,
    /// The canonical index itself: the input of tabular estimators.
    Enum,
}

impl FromStr for Preprocessor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "khot" => Ok(Self::KHot),
            "onehot" => Ok(Self::OneHot),
            "identity" => Ok(Self::Identity),
            "enum" => Ok(Self::Enum),
            _ => Err(format!(
                "unknown preprocessor `{s}` (expected khot, onehot, identity or enum)"
            )),
        }
    }
}

impl fmt::Display for Preprocessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::KHot => "khot",
            Self::OneHot => "onehot",
            Self::Identity => "identity",
            Self::Enum => "enum",
        })
    }
}

impl Preprocessor {
    /// Width of one encoded state; `None` for [`Preprocessor::Enum`], which is an index, or
    /// for a one-hot encoding of a grid too large to enumerate.
    pub fn dim(&self, grid: &HyperGrid) -> Option<usize> {
        match self {
            Self::KHot => Some(grid.height() * grid.ndim()),
            Self::OneHot => grid.enumerable_states(),
            Self::Identity => Some(grid.ndim()),
            Self::Enum => None,
        }
    }

    /// Appends the encoding of `state` to `out` (`Enum` appends the index as one float).
    pub fn encode(&self, grid: &HyperGrid, state: &[u16], out: &mut Vec<f32>) {
        let start = out.len();
        match self {
            Self::KHot => {
                let h = grid.height();
                out.resize(start + h * grid.ndim(), 0.0);
                for (d, &c) in state.iter().enumerate() {
                    out[start + d * h + c as usize] = 1.0;
                }
            }
            Self::OneHot => {
                let n = grid.enumerable_states().unwrap_or(0);
                out.resize(start + n, 0.0);
                out[start + grid.index(state)] = 1.0;
            }
            Self::Identity => out.extend(state.iter().map(|&c| c as f32)),
            Self::Enum => out.push(grid.index(state) as f32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn khot_matches_reference() {
        let g = HyperGrid::new(2, 4).unwrap();
        let mut v = vec![];
        Preprocessor::KHot.encode(&g, &[1, 2], &mut v);
        assert_eq!(v, [0., 1., 0., 0., 0., 0., 1., 0.]);
        v.clear();
        Preprocessor::OneHot.encode(&g, &[1, 2], &mut v);
        assert_eq!(v.len(), 16);
        assert_eq!(v[6], 1.0);
        assert_eq!(Preprocessor::Enum.dim(&g), None);
    }
}
