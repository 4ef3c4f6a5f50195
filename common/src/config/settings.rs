//! The validated run configuration: [`RunConfig`] is what flags and TOML files say, and
//! [`Settings`] is a `RunConfig` that passed every check for the mode that runs it. The entry
//! points of the pipeline take `Settings`, so a run is validated once, where flags and files
//! are merged, and no library checks the same setting again.

use super::modes::{refuse_meaningless, Mode};
use super::{ConfigError, RunConfig};
use std::ops::Deref;

/// A run configuration that passed [`RunConfig::validate`] and the flag rules of its mode.
/// It reads as the `RunConfig` it wraps; changing a setting means validating again.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    config: RunConfig,
    mode: Mode,
}

impl RunConfig {
    /// Validates every setting and the cross-field rules, then refuses the flags `mode`
    /// cannot honour (see [`Mode`]).
    pub fn settings(self, mode: Mode) -> Result<Settings, ConfigError> {
        self.validate()?;
        refuse_meaningless(mode, &self)?;
        Ok(Settings { config: self, mode })
    }
}

impl Settings {
    /// The mode these settings were validated for.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The validated configuration.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// Trajectories per step for each of `learners` replicas: the one cross-field rule that
    /// needs the number of learners, which a learner knows only once MPI has started.
    pub fn batch_per_learner(&self, learners: usize) -> Result<usize, ConfigError> {
        let batch = self.config.batch_size;
        if learners == 0 || !batch.is_multiple_of(learners) {
            return Err(ConfigError::UnevenBatch { batch, learners });
        }
        Ok(batch / learners)
    }
}

impl Deref for Settings {
    type Target = RunConfig;
    fn deref(&self) -> &RunConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_validate_and_apply_the_mode_rules() {
        assert!(RunConfig::default().settings(Mode::Train).is_ok());
        let bad = RunConfig {
            batch_size: 0,
            ..RunConfig::default()
        };
        assert!(bad.settings(Mode::Train).is_err());
        let sync = RunConfig {
            sync: true,
            ..RunConfig::default()
        };
        assert!(sync.clone().settings(Mode::Train).is_err());
        assert_eq!(sync.settings(Mode::Learner).unwrap().mode(), Mode::Learner);
    }

    #[test]
    fn batch_splits_only_evenly_across_learners() {
        let s = RunConfig {
            batch_size: 12,
            ..RunConfig::default()
        }
        .settings(Mode::Learner)
        .unwrap();
        assert_eq!(s.batch_per_learner(3).unwrap(), 4);
        let err = s.batch_per_learner(5).unwrap_err().to_string();
        assert!(
            err.contains("--batch_size") && err.contains("5 learners"),
            "{err}"
        );
        assert!(s.batch_per_learner(0).is_err());
    }
}
