//! The error of a saved state that does not hold together once read back: a checkpoint's
//! buffer, optimizer or validation record that contradicts itself or the run's grid. One type
//! for every crate that restores state, so a caller can tell damage from an I/O failure.

/// What is wrong with a restored state, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Damaged(pub String);

impl Damaged {
    /// Damage described by `what`.
    pub fn new(what: impl Into<String>) -> Self {
        Self(what.into())
    }
}
