//! `gfn export` and the Python loader `python/gfn_policy.py`: short runs of four estimator
//! kinds (MLP TB; tied, leaky, noisy, one-hot SubTB; tabular DB with uniform PB; FM on the
//! identity encoding) are exported by the binary, and the loader, given only the file,
//! reproduces gfn's log P_F, log P_B, log F and log Z on every state to 1e-5. The file's
//! tensors are finite, its metadata complete. Built with `--features python`.
#![cfg(feature = "python")]

use gfn_common::HyperGrid;
use gfn_host::checkpoint;
use gfn_nn::backend::{cpu_device, Cpu};
use gfn_nn::burn::tensor::activation::log_softmax;
use gfn_nn::burn::tensor::{Bool, Tensor, TensorData};
use gfn_nn::policy::{encode, forward_probs_all_states, Exploration, MASKED_LOGIT};
use gfn_nn::{params, GflowNet, NetConfig};
use rand::{rngs::SmallRng, SeedableRng};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const TOLERANCE: f64 = 1e-5;

/// What gfn computes on every state of the checkpoint's grid, in canonical order.
struct Reference {
    states: Vec<Vec<u16>>,
    log_pf: Vec<Vec<f32>>,
    /// Learned PB (masked log-softmax, as the losses compute it) or uniform PB.
    log_pb: Option<Vec<Vec<f32>>>,
    log_f: Option<Vec<f32>>,
    log_z: Option<f32>,
    /// P_F as gfn's exact metrics compute it.
    probs: Vec<f32>,
    step: u64,
    n_params: usize,
}

fn gfn(args: &[&str]) {
    let out = Command::new(gfn_tests::gfn_binary())
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "gfn {args:?}: {err}");
}

/// A 300-step run on 2-D H=8 with checkpoints every 100 steps, exported; the folder.
fn train_and_export(name: &str, flags: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gfn-export-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (ck, run) = (dir.join("ck"), dir.join("run"));
    let mut args = vec![
        "train",
        "--quiet",
        "--ndim",
        "2",
        "--height",
        "8",
        "--batch_size",
        "16",
        "--n_trajectories",
        "4800",
        "--validation_interval",
        "100",
        "--checkpoint_every",
        "100",
        "--seed",
        "7",
    ];
    args.extend_from_slice(flags);
    let (ck_s, run_s) = (ck.to_str().unwrap(), run.to_str().unwrap());
    args.extend_from_slice(&["--checkpoint_dir", ck_s, "--run_dir", run_s]);
    gfn(&args);
    let out = dir.join("policy.safetensors");
    gfn(&["export", "--from", ck_s, "--out", out.to_str().unwrap()]);
    dir
}

fn rows<T: Copy>(flat: &[T], width: usize) -> Vec<Vec<T>> {
    flat.chunks_exact(width).map(<[T]>::to_vec).collect()
}

/// Masked log-softmax of `logits` `[n, width]`, as `gfn_learner`'s losses compute it.
fn masked_log_softmax(logits: Tensor<Cpu, 2>, forbidden: Vec<bool>, width: usize) -> Vec<Vec<f32>> {
    let n = forbidden.len() / width;
    let mask =
        Tensor::<Cpu, 2, Bool>::from_data(TensorData::new(forbidden, [n, width]), &cpu_device());
    let out = log_softmax(logits.mask_fill(mask, MASKED_LOGIT), 1);
    rows(&out.into_data().to_vec::<f32>().unwrap(), width)
}

/// gfn's outputs from the checkpoint, through the library (not the export's code).
fn reference(ck_dir: &Path) -> Reference {
    let ck = checkpoint::load(ck_dir).unwrap().unwrap();
    let (cfg, dev) = (&ck.config, cpu_device());
    let grid: HyperGrid = cfg.grid().unwrap();
    let shape = NetConfig::new(&cfg.model(), &grid);
    let net = GflowNet::<Cpu>::new(&shape, &mut SmallRng::seed_from_u64(0), &dev);
    let net = params::load(net, &ck.params).unwrap();
    let (n, d) = (grid.enumerable_states().unwrap(), grid.ndim());
    let mut state = vec![0u16; d];
    let states: Vec<Vec<u16>> = (0..n)
        .map(|i| {
            grid.state_of(i, &mut state);
            state.clone()
        })
        .collect();
    let flat: Vec<u16> = states.concat();
    let out = net.forward(
        &encode::<Cpu>(&grid, cfg.preprocessor(), &flat, &dev),
        None,
        true,
        true,
    );
    let (mut fwd, mut bwd) = (vec![false; d + 1], vec![false; d]);
    let (mut f_forbidden, mut b_forbidden) = (vec![], vec![]);
    for s in &states {
        grid.forward_mask(s, &mut fwd);
        grid.backward_mask(s, &mut bwd);
        f_forbidden.extend(fwd.iter().map(|m| !m));
        b_forbidden.extend(bwd.iter().map(|m| !m));
    }
    let uniform = |s: &Vec<u16>| {
        let lp = -(grid.n_parents(s) as f32).ln();
        s.iter()
            .map(|&c| if c > 0 { lp } else { f32::NEG_INFINITY })
            .collect()
    };
    let log_pb = match out.pb {
        Some(pb) => Some(masked_log_softmax(pb, b_forbidden, d)),
        None if cfg.uniform_pb => Some(states.iter().map(uniform).collect()),
        None => None,
    };
    Reference {
        log_pf: masked_log_softmax(out.pf, f_forbidden, d + 1),
        log_pb,
        log_f: out.logf.map(|t| t.into_data().to_vec::<f32>().unwrap()),
        log_z: net
            .log_z_value()
            .map(|t| t.into_data().to_vec::<f32>().unwrap()[0]),
        probs: forward_probs_all_states(
            &net,
            None,
            &grid,
            cfg.preprocessor(),
            Exploration::NONE,
            &dev,
        )
        .unwrap(),
        states,
        step: ck.step,
        n_params: ck.params.len(),
    }
}

/// The loader's answer on `states` (written to a JSON file in `dir`).
fn python_outputs(dir: &Path, states: &[Vec<u16>]) -> Value {
    let states_file = dir.join("states.json");
    std::fs::write(&states_file, serde_json::to_string(states).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../python/gfn_policy.py");
    let out = gfn_tests::python()
        .arg(script)
        .arg(dir.join("policy.safetensors"))
        .arg(states_file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The largest |Δ| over allowed entries; forbidden ones (`None` from Python, -inf) must be
/// forbidden for gfn too: `allowed` says which are.
fn max_row_diff(
    what: &str,
    py: &Value,
    gfn: &[Vec<f32>],
    allowed: impl Fn(usize, usize) -> bool,
) -> f64 {
    let py = py.as_array().unwrap_or_else(|| panic!("{what}: no rows"));
    assert_eq!(py.len(), gfn.len(), "{what}");
    let mut worst = 0f64;
    for (i, (p, g)) in py.iter().zip(gfn).enumerate() {
        let p = p.as_array().unwrap();
        assert_eq!(p.len(), g.len(), "{what} row {i}");
        for (k, (p, &g)) in p.iter().zip(g).enumerate() {
            if !allowed(i, k) {
                assert!(
                    p.is_null(),
                    "{what}[{i}][{k}]: forbidden, the loader gives {p}"
                );
                continue;
            }
            let p = p
                .as_f64()
                .unwrap_or_else(|| panic!("{what}[{i}][{k}] is {p}"));
            worst = worst.max((p - g as f64).abs());
        }
    }
    worst
}

/// Compares the loader with gfn on every state; returns the largest |Δ log p|.
fn compare(dir: &Path) -> f64 {
    let r = reference(&dir.join("ck"));
    let py = python_outputs(dir, &r.states);
    let height = 8u16;
    let fwd_ok = |i: usize, k: usize| k == 2 || r.states[i][k] < height - 1;
    let mut worst = max_row_diff("log_pf", &py["log_pf"], &r.log_pf, fwd_ok);
    for (i, row) in r.log_pf.iter().enumerate() {
        for (k, &g) in row.iter().enumerate() {
            assert!(
                fwd_ok(i, k) || g < -1e8,
                "gfn's forbidden log_pf[{i}][{k}] = {g}"
            );
            // The exact metrics' probabilities are the same policy.
            let p = py["log_pf"][i][k].as_f64().map_or(0.0, f64::exp);
            assert!(
                (p - r.probs[i * 3 + k] as f64).abs() < 1e-6,
                "P_F[{i}][{k}]"
            );
        }
    }
    match &r.log_pb {
        Some(pb) => {
            let bwd_ok = |i: usize, k: usize| r.states[i][k] > 0;
            worst = worst.max(max_row_diff("log_pb", &py["log_pb"], pb, bwd_ok));
        }
        None => assert!(py["log_pb"].is_null()),
    }
    match &r.log_f {
        Some(f) => {
            let py_f = py["log_f"].as_array().unwrap();
            assert_eq!(py_f.len(), f.len());
            for (p, &g) in py_f.iter().zip(f) {
                worst = worst.max((p.as_f64().unwrap() - g as f64).abs());
            }
        }
        None => assert!(py["log_f"].is_null()),
    }
    match r.log_z {
        Some(z) => worst = worst.max((py["log_z"].as_f64().unwrap() - z as f64).abs()),
        None => assert!(py["log_z"].is_null()),
    }
    assert_eq!(py["metadata"]["step"], r.step.to_string());
    check_file(&dir.join("policy.safetensors"), r.n_params);
    worst
}

const METADATA: &[&str] = &[
    "format",
    "format_version",
    "gfn_version",
    "weight_layout",
    "ndim",
    "height",
    "reward",
    "R0",
    "R1",
    "R2",
    "preprocessor",
    "loss",
    "hidden_dim",
    "n_hidden",
    "activation",
    "leaky_relu_slope",
    "tied",
    "uniform_pb",
    "tabular",
    "n_noisy_layers",
    "noisy_std_init",
    "has_pb",
    "has_logf",
    "has_log_z",
    "masked_logit",
    "step",
    "config",
];

/// Reads the safetensors header itself (8-byte length, JSON): every tensor is F32, finite, of
/// the size its shape says, all of them together the checkpoint's parameters; the metadata has
/// every documented key and the config parses back.
fn check_file(path: &Path, n_params: usize) {
    let bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let data = &bytes[8 + len..];
    let meta = header["__metadata__"].as_object().unwrap();
    for key in METADATA {
        assert!(meta.contains_key(*key), "metadata lacks {key}");
    }
    assert_eq!(meta["format"], "gfn-policy");
    let toml_file = path.with_extension("toml");
    std::fs::write(&toml_file, meta["config"].as_str().unwrap()).unwrap();
    let config = gfn_common::RunConfig::from_toml_file(&toml_file).unwrap();
    assert_eq!((config.ndim, config.height), (2, 8));
    let mut total = 0;
    for (name, t) in header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
    {
        assert_eq!(t["dtype"], "F32", "{name}");
        let numel: u64 = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .product();
        let (a, b) = (
            t["data_offsets"][0].as_u64().unwrap(),
            t["data_offsets"][1].as_u64().unwrap(),
        );
        assert_eq!(b - a, 4 * numel, "{name}");
        let values = data[a as usize..b as usize].chunks_exact(4);
        assert!(
            values
                .map(|v| f32::from_le_bytes(v.try_into().unwrap()))
                .all(f32::is_finite),
            "{name}"
        );
        total += numel as usize;
    }
    assert_eq!(total, n_params, "every parameter is exported once");
}

/// The tensor names of the file (its header's keys).
fn names(dir: &Path) -> Vec<String> {
    let bytes = std::fs::read(dir.join("policy.safetensors")).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    header
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect()
}

#[test]
fn the_python_loader_reproduces_gfn_on_every_state() {
    let variants: [(&str, &[&str], &[&str]); 4] = [
        (
            "tb",
            &[],
            &[
                "pf.trunk.1.weight",
                "pf.head.bias",
                "pb.trunk.0.bias",
                "log_z",
            ],
        ),
        (
            "subtb-tied",
            &[
                "--loss",
                "SubTB",
                "--tied",
                "--activation",
                "leaky_relu",
                "--n_noisy_layers",
                "1",
                "--preprocessor",
                "onehot",
            ],
            &[
                "shared.1.weight",
                "pf.head.sigma_weight",
                "pb.head.weight",
                "logf.head.bias",
            ],
        ),
        (
            "db-tabular",
            &["--loss", "DB", "--tabular", "--uniform_pb"],
            &["pf.table", "pf.table_bias", "logf.table"],
        ),
        (
            "fm-identity",
            &["--loss", "FM", "--preprocessor", "identity"],
            &["pf.head.weight"],
        ),
    ];
    for (name, flags, expected) in variants {
        let dir = train_and_export(name, flags);
        let got = names(&dir);
        for e in expected {
            assert!(
                got.iter().any(|g| g == e),
                "{name}: {e} missing from {got:?}"
            );
        }
        let worst = compare(&dir);
        println!(
            "{name}: max |Δ log p| = {worst:.3e} over {} tensors",
            got.len()
        );
        assert!(worst <= TOLERANCE, "{name}: max |Δ log p| = {worst:e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
