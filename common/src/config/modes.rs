//! Which flags mean something in which mode. A flag set to anything but its default in a mode
//! that cannot honour it is refused (exit code 2) instead of being accepted and ignored.
//!
//! The processes of one run (`gfn sampler`, `gfn buffer`, `gfn learner`) share one set of run
//! flags (the launch scripts pass the same ones to every role), so each role accepts the flags
//! of the others; what is refused there is what the multi-process mode as a whole cannot do.

use super::{ConfigError, RunConfig};

/// The commands that run a role or a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Replay,
    Sampler,
    Buffer,
    Learner,
}

/// A flag, whether a configuration sets it away from its default, and why a mode refuses it.
struct Rule {
    flag: &'static str,
    set: fn(&RunConfig, &RunConfig) -> bool,
    refused_in: &'static [Mode],
    why: &'static str,
}

const NO_SAMPLER: &str = "gfn replay trains on a recording: there is no sampler";
const NO_BUFFER: &str = "gfn replay serves the recording in order: there is no buffer";

const RULES: &[Rule] = &[
    Rule {
        flag: "--sync",
        set: |c, _| c.sync,
        refused_in: &[Mode::Train, Mode::Replay],
        why: "one process is strictly on-policy with --policy_lag 0 already",
    },
    Rule {
        flag: "--max_policy_lag",
        set: |c, _| c.max_policy_lag.is_some(),
        refused_in: &[Mode::Train, Mode::Replay],
        why: "in one process every batch is exactly --policy_lag versions old",
    },
    Rule {
        flag: "--policy_lag",
        set: |c, d| c.policy_lag != d.policy_lag,
        refused_in: &[Mode::Replay, Mode::Sampler, Mode::Buffer, Mode::Learner],
        why: "across processes samplers use the newest weights (or exact ones with --sync), \
              and gfn replay has no sampler",
    },
    Rule {
        flag: "--epsilon",
        set: |c, d| c.epsilon != d.epsilon,
        refused_in: &[Mode::Replay],
        why: NO_SAMPLER,
    },
    Rule {
        flag: "--temperature",
        set: |c, d| c.temperature != d.temperature,
        refused_in: &[Mode::Replay],
        why: NO_SAMPLER,
    },
    Rule {
        flag: "--record",
        set: |c, _| c.record.is_some(),
        refused_in: &[Mode::Replay],
        why: "gfn replay reads a recording; it records nothing new",
    },
    Rule {
        flag: "--replay_buffer_size",
        set: |c, d| c.replay_buffer_size != d.replay_buffer_size,
        refused_in: &[Mode::Replay],
        why: NO_BUFFER,
    },
    Rule {
        flag: "--samples_per_insert",
        set: |c, _| c.samples_per_insert.is_some(),
        refused_in: &[Mode::Replay],
        why: NO_BUFFER,
    },
    Rule {
        flag: "--min_size_to_sample",
        set: |c, _| c.min_size_to_sample.is_some(),
        refused_in: &[Mode::Replay],
        why: NO_BUFFER,
    },
    Rule {
        flag: "--diverse_replay_buffer",
        set: |c, _| c.diverse_replay_buffer,
        refused_in: &[Mode::Replay],
        why: NO_BUFFER,
    },
];

/// Refuses the first flag that `cfg` sets and `mode` cannot honour.
pub fn refuse_meaningless(mode: Mode, cfg: &RunConfig) -> Result<(), ConfigError> {
    let defaults = RunConfig::default();
    for rule in RULES {
        if rule.refused_in.contains(&mode) && (rule.set)(cfg, &defaults) {
            return Err(ConfigError::NotInMode {
                flag: rule.flag,
                mode: name(mode),
                why: rule.why,
            });
        }
    }
    Ok(())
}

/// The flags of one role process only: `--load` is a buffer's (it preloads the recording it
/// serves), `--samplers` a sampler process's (how many samplers it holds; 1 is the default).
pub fn refuse_role_flags(mode: Mode, load: bool, samplers: usize) -> Result<(), ConfigError> {
    let rules = [
        (
            "--load",
            Mode::Buffer,
            load,
            "only a buffer serves a recording (gfn replay --from trains on one offline)",
        ),
        (
            "--samplers",
            Mode::Sampler,
            samplers != 1,
            "only a sampler process holds samplers",
        ),
    ];
    for (flag, only, set, why) in rules {
        if set && mode != only {
            return Err(ConfigError::NotInMode {
                flag,
                mode: name(mode),
                why,
            });
        }
    }
    match (mode, samplers) {
        (Mode::Sampler, 0) => Err(ConfigError::OutOfRange {
            flag: "--samplers",
            rule: "at least 1",
            value: "0".into(),
        }),
        _ => Ok(()),
    }
}

fn name(mode: Mode) -> &'static str {
    match mode {
        Mode::Train => "gfn train",
        Mode::Replay => "gfn replay",
        Mode::Sampler => "gfn sampler",
        Mode::Buffer => "gfn buffer",
        Mode::Learner => "gfn learner",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_refuses_in_its_modes_and_only_there() {
        let all = [
            Mode::Train,
            Mode::Replay,
            Mode::Sampler,
            Mode::Buffer,
            Mode::Learner,
        ];
        for rule in RULES {
            // A configuration that sets exactly this flag.
            let cfg = set_only(rule.flag);
            assert!((rule.set)(&cfg, &RunConfig::default()), "{}", rule.flag);
            for mode in all {
                let refused = refuse_meaningless(mode, &cfg).is_err();
                assert_eq!(
                    refused,
                    rule.refused_in.contains(&mode),
                    "{} in {}",
                    rule.flag,
                    name(mode)
                );
            }
        }
        for mode in all {
            assert!(refuse_meaningless(mode, &RunConfig::default()).is_ok());
        }
        assert!(all
            .iter()
            .all(|&m| refuse_role_flags(m, true, 1).is_err() == (m != Mode::Buffer)));
        assert!(all
            .iter()
            .all(|&m| refuse_role_flags(m, false, 4).is_err() == (m != Mode::Sampler)));
        assert!(refuse_role_flags(Mode::Sampler, false, 0).is_err());
        let err = refuse_meaningless(Mode::Train, &set_only("--sync")).unwrap_err();
        assert!(err.to_string().contains("--sync"), "{err}");
    }

    fn set_only(flag: &str) -> RunConfig {
        let mut c = RunConfig::default();
        match flag {
            "--sync" => c.sync = true,
            "--max_policy_lag" => c.max_policy_lag = Some(3),
            "--policy_lag" => c.policy_lag = 1,
            "--epsilon" => c.epsilon = 0.1,
            "--temperature" => c.temperature = 2.0,
            "--record" => c.record = Some("rec".into()),
            "--replay_buffer_size" => c.replay_buffer_size = 64,
            "--samples_per_insert" => c.samples_per_insert = Some(1.0),
            "--min_size_to_sample" => c.min_size_to_sample = Some(32),
            "--diverse_replay_buffer" => c.diverse_replay_buffer = true,
            other => panic!("no test value for {other}"),
        }
        c
    }
}
