//! gfn's compositional rewards (bitwise_xor, multiplicative_coprime, conditional_multiscale)
//! and the difficulty presets of every reward family, against torchgfn 2.4.1.
//!
//! The fixture `fixtures/torchgfn_compositional.json` is written by
//! `fixtures/torchgfn_compositional.py` (its docstring says how to run it). It holds torchgfn's
//! presets, the shift coefficients torch's generator draws for conditional_multiscale, the
//! float32 rewards, log rewards and mode flags of many states (small grids, 10-D H=128 and
//! H=256), and log partitions and mode counts of enumerable grids.
//!
//! Each case's kwargs are read as a gfn config (the keys of torchgfn's `reward_fn_kwargs`, with
//! `seed` spelt `reward_seed`, None as 0 inside lists, and R0 = 0 where the tiered kwargs leave
//! it out, torchgfn's class default), so the config path is tested too. The
//! tiered rewards are integer tests summed in float32: gfn's values must be bit-identical. The
//! cosine reward goes through `cos` and `exp` (see `torchgfn_rewards.rs`): relative 1e-6.

use gfn_common::target::Target;
use gfn_common::{HyperGrid, Reward, RewardKind, RewardKwargs, RewardPreset, RunConfig};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
struct Fixture {
    torchgfn: String,
    presets: Vec<PresetCase>,
    shift_coeffs: Vec<ShiftCase>,
    states: Vec<StatesCase>,
    partitions: Vec<PartitionCase>,
}

#[derive(Deserialize)]
struct PresetCase {
    reward: String,
    ndim: usize,
    height: usize,
    presets: BTreeMap<String, Map<String, Value>>,
}

#[derive(Deserialize)]
struct ShiftCase {
    seed: u64,
    base: u32,
    tiers: usize,
    shift_coeffs: Vec<Vec<u32>>,
}

#[derive(Deserialize)]
struct StatesCase {
    label: String,
    reward: String,
    ndim: usize,
    height: usize,
    kwargs: Map<String, Value>,
    mode_threshold: f64,
    states: Vec<Vec<u16>>,
    rewards: Vec<f64>,
    log_rewards: Vec<Option<f64>>,
    modes: Vec<bool>,
}

#[derive(Deserialize)]
struct PartitionCase {
    label: String,
    reward: String,
    ndim: usize,
    height: usize,
    kwargs: Map<String, Value>,
    log_partition: f64,
    n_mode_states: usize,
    mode_threshold: f64,
}

fn fixture() -> Fixture {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torchgfn_compositional.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let fx: Fixture = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("bad fixture {}: {e}", path.display()));
    assert_eq!(fx.torchgfn, "2.4.1");
    fx
}

/// torchgfn's kwargs as a gfn config of `reward` on an `ndim`-D grid of side `height`.
fn config(reward: &str, ndim: usize, height: usize, kwargs: &Map<String, Value>) -> RunConfig {
    let mut table = Map::new();
    for (key, value) in kwargs {
        let value = match key.as_str() {
            // TOML has no null: 0 is "no target" / "no constraint", {} the default parity.
            "target_lcms" | "cross_dim_mods" => Value::Array(
                value
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| if v.is_null() { json!(0) } else { v.clone() })
                    .collect(),
            ),
            "parity_checks" => Value::Array(
                value
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| if v.is_null() { json!({}) } else { v.clone() })
                    .collect(),
            ),
            _ => value.clone(),
        };
        let key = match key.as_str() {
            "seed" => "reward_seed",
            k => k,
        };
        table.insert(key.to_string(), value);
    }
    // torchgfn's tiered classes default R0 to 0 when given kwargs; gfn's default is
    // HyperGrid's 0.1 (torchgfn's too when HyperGrid gets no kwargs at all).
    let tiered = reward.parse::<RewardKind>().unwrap().is_tiered();
    if tiered && !kwargs.contains_key("R0") {
        table.insert("R0".into(), json!(0.0));
    }
    table.insert("reward".into(), json!(reward));
    table.insert("ndim".into(), json!(ndim));
    table.insert("height".into(), json!(height));
    serde_json::from_value(Value::Object(table))
        .unwrap_or_else(|e| panic!("{reward} kwargs {kwargs:?}: {e}"))
}

/// The reward as torchgfn defines it (R0 = 0 allowed, as torchgfn's presets have it).
fn reward_of(cfg: &RunConfig) -> Reward {
    let env = cfg.env();
    Reward::from_spec(&env.spec(), cfg.ndim, cfg.height).unwrap_or_else(|e| panic!("{}: {e}", env))
}

fn relative(a: f32, b: f32) -> f64 {
    if a == b {
        0.0
    } else {
        ((a as f64 - b as f64) / b as f64).abs()
    }
}

#[test]
fn presets_are_torchgfns() {
    let fx = fixture();
    let mut n = 0;
    for case in &fx.presets {
        let kind: RewardKind = case.reward.parse().unwrap();
        assert_eq!(case.presets.len(), 5, "{}", case.reward);
        for (name, kwargs) in &case.presets {
            let preset: RewardPreset = name.parse().unwrap();
            let theirs = config(&case.reward, case.ndim, case.height, kwargs);
            let what = format!("{kind} {preset} {}-D H={}", case.ndim, case.height);
            assert_eq!(
                RewardKwargs::preset(kind, preset, case.ndim),
                theirs.reward_kwargs(),
                "{what}"
            );
            // --reward_preset resolves to the same environment as the kwargs written out.
            let mine = RunConfig {
                reward: kind,
                reward_preset: Some(preset),
                ndim: case.ndim,
                height: case.height,
                ..RunConfig::default()
            };
            assert_eq!(mine.env(), theirs.env(), "{what}");
            n += 1;
        }
    }
    assert_eq!(n, 7 * 4 * 5);
}

#[test]
fn shift_coefficients_are_torchs_generator() {
    let fx = fixture();
    assert!(fx.shift_coeffs.len() >= 20);
    for case in &fx.shift_coeffs {
        assert_eq!(
            gfn_common::tiered::shift_coeffs(case.seed, case.base, case.tiers),
            case.shift_coeffs,
            "seed {} base {} tiers {}",
            case.seed,
            case.base,
            case.tiers
        );
    }
}

#[test]
fn rewards_and_modes_match_torchgfn() {
    let fx = fixture();
    let (mut states, mut mode_states) = (0, 0);
    let mut big = 0;
    for case in &fx.states {
        let cfg = config(&case.reward, case.ndim, case.height, &case.kwargs);
        let reward = reward_of(&cfg);
        let name = format!(
            "{} {} {}-D H={}",
            case.reward, case.label, case.ndim, case.height
        );
        let cosine = reward.kind == RewardKind::Cosine;
        let threshold = reward.mode_threshold(case.ndim);
        if !cosine {
            assert_eq!(
                threshold, case.mode_threshold as f32,
                "{name}: mode threshold"
            );
        }
        let mut worst = 0f64;
        for (k, state) in case.states.iter().enumerate() {
            let (want, got) = (case.rewards[k] as f32, reward.reward(state));
            if cosine {
                // With R0 = 0 (`impossible`) rewards near 0 keep an absolute error.
                let close = relative(got, want) <= 1e-6 || (got - want).abs() <= 1e-8;
                assert!(close, "{name} {state:?}: {got} {want}");
                worst = worst.max(relative(got, want));
            } else {
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{name} {state:?}: {got} {want}"
                );
            }
            let got_log = reward.log_reward(state);
            match case.log_rewards[k] {
                None => assert_eq!(got_log, f32::NEG_INFINITY, "{name} {state:?}"),
                Some(l) => assert!(
                    (got_log as f64 - l).abs() <= 1e-6 * (1.0 + l.abs()),
                    "{name} {state:?}: log {got_log} {l}"
                ),
            }
            // Cosine's last bits may differ: skip states within 1e-6 of its threshold.
            let borderline = cosine && relative(want, threshold) <= 1e-6;
            if !borderline {
                assert_eq!(reward.is_mode(state), case.modes[k], "{name} {state:?}");
            }
            states += 1;
            mode_states += case.modes[k] as usize;
        }
        big += (case.ndim == 10) as usize;
        if cosine {
            println!("{name}: max relative difference {worst:e}");
        }
    }
    println!("{states} states, {mode_states} modes, {big} cases on 10-D grids");
    assert!(states > 2500 && mode_states > 200 && big >= 30);
}

#[test]
fn log_partitions_and_mode_counts_match_torchgfn() {
    let fx = fixture();
    let mut tiered = 0;
    for case in &fx.partitions {
        let cfg = config(&case.reward, case.ndim, case.height, &case.kwargs);
        let reward = reward_of(&cfg);
        let grid = HyperGrid::new(case.ndim, case.height).unwrap();
        let target = Target::new(&grid, &reward).unwrap();
        let name = format!(
            "{} {} {}-D H={}",
            case.reward, case.label, case.ndim, case.height
        );
        let rel = ((target.log_z - case.log_partition) / case.log_partition).abs();
        println!(
            "{name}: log Z gfn {:.9} torchgfn {:.9} (relative {rel:.1e}), modes gfn {} \
             torchgfn {} (threshold {})",
            target.log_z,
            case.log_partition,
            target.modes.len(),
            case.n_mode_states,
            case.mode_threshold
        );
        assert!(rel <= 1e-6, "{name}");
        assert_eq!(target.modes.len(), case.n_mode_states, "{name}");
        tiered += reward.kind.is_tiered() as usize;
    }
    assert!(tiered >= 17, "{tiered}");
}

/// torchgfn's presets set R0 = 0: log R would be −inf below the first tier, so a run refuses
/// them until R0 is set, naming the fix; with --R0 the preset's other kwargs stay.
#[test]
fn zero_base_presets_are_refused_until_r0_is_set() {
    for kind in RewardKind::ALL.into_iter().filter(|k| k.is_tiered()) {
        let cfg = RunConfig {
            reward: kind,
            reward_preset: Some(RewardPreset::Easy),
            ndim: 4,
            height: 16,
            ..RunConfig::default()
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("--R0") && err.contains("1e-3"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let ok = RunConfig {
            r0: Some(1e-3),
            ..cfg.clone()
        };
        ok.validate().unwrap();
        let env = ok.env();
        assert_eq!(env.r0, 1e-3);
        assert_eq!(env.tiered, cfg.env().tiered, "{kind}");
        assert!(ok.reward_fn().unwrap().reward(&[0, 0, 0, 0]) > 0.0);
    }
    // The original families' `impossible` presets too (sparse has no R0).
    let cfg = RunConfig {
        reward: RewardKind::Original,
        reward_preset: Some(RewardPreset::Impossible),
        ..RunConfig::default()
    };
    assert!(cfg.validate().unwrap_err().to_string().contains("--R0"));
}
