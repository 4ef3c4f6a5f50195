//! `gfn sample` against the exact terminal distribution. A short run on 2-D H=8 writes its
//! final checkpoint; 200,000 states drawn from it follow the policy's exact P_T (a chi-square
//! bound that the T = 2 law and the target R/Z both fail, so a sampler that ignored its
//! temperature or drew from anything else would fail it too), every row's `log_pt` is that
//! P_T, and Σ|P_T − R/Z| over the file's states is the run's final exact L1. Temperature and ε
//! change the law and `log_pt` with it; a seed gives the same file; noisy layers are sampled
//! without their noise; grids too large to enumerate leave `log_pt` empty. With `--features
//! python`, NumPy reads the `.npy` output as the CSV's numbers.

use gfn_common::pipe::Shutdown;
use gfn_common::target::{terminal_distribution, Target};
use gfn_common::{Device, HyperGrid, RunConfig};
use gfn_host::checkpoint;
use gfn_nn::backend::{cpu_device, Cpu};
use gfn_nn::policy::{forward_probs_all_states, Exploration};
use gfn_nn::{params, GflowNet, NetConfig};
use gfn_pipeline::sample::{sample, SampleRequest, SampleSummary};
use gfn_pipeline::HostOptions;
use rand::{rngs::SmallRng, SeedableRng};
use std::path::{Path, PathBuf};

/// One row of a CSV sample: the state, its log reward and its log P_T (if written).
struct Row {
    x: Vec<u16>,
    log_reward: f32,
    log_pt: Option<f64>,
}

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gfn-sample-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Trains `cfg` with a checkpoint folder in `dir` and checkpoints only every 1000 steps (more
/// than the run has): the folder, and the final validation's exact L1.
fn trained(cfg: RunConfig, dir: &Path) -> (PathBuf, f64) {
    let ck = dir.join("ck");
    let cfg = RunConfig {
        checkpoint_dir: Some(ck.clone()),
        checkpoint_every: 1000,
        run_dir: dir.join("run"),
        tensorboard: false,
        ..cfg
    };
    let opts = HostOptions {
        progress: false,
        write_files: true,
        observer: None,
    };
    gfn_tests::train(&cfg, opts).unwrap();
    let saved = checkpoint::load(&ck).unwrap().expect("a final checkpoint");
    assert_eq!(
        saved.step,
        cfg.n_iterations(),
        "the checkpoint holds the last step"
    );
    let (validations, _) = gfn_tests::read_metrics(&cfg.run_dir);
    let last = validations.last().expect("validations");
    (ck, last["exact_l1"].as_f64().unwrap_or(f64::NAN))
}

fn reference_config() -> RunConfig {
    RunConfig {
        ndim: 2,
        height: 8,
        n_trajectories: 3200,
        hidden_dim: 32,
        ..RunConfig::default()
    }
}

fn request(n: u64, seed: u64, temperature: f32, epsilon: f32) -> SampleRequest {
    SampleRequest {
        n,
        seed,
        temperature,
        epsilon,
        device: Device::Cpu,
    }
}

fn draw(ck: &Path, req: &SampleRequest, out: &Path) -> SampleSummary {
    sample(ck, req, out, &Shutdown::default())
        .unwrap()
        .expect("not stopped")
}

fn read_csv(path: &Path, ndim: usize) -> Vec<Row> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = (0..ndim).map(|d| format!("x{d}")).collect();
    assert_eq!(
        lines.next(),
        Some(format!("{},log_reward,log_pt", header.join(",")).as_str())
    );
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), ndim + 2, "{line}");
            Row {
                x: cells[..ndim].iter().map(|c| c.parse().unwrap()).collect(),
                log_reward: cells[ndim].parse().unwrap(),
                log_pt: (!cells[ndim + 1].is_empty()).then(|| cells[ndim + 1].parse().unwrap()),
            }
        })
        .collect()
}

/// The exact P_T of the checkpoint's policy under `explore`, computed here from its parameters.
fn exact_p_t(ck: &Path, explore: Exploration) -> Vec<f64> {
    let saved = checkpoint::load(ck).unwrap().unwrap();
    let grid = saved.config.grid().unwrap();
    let dev = cpu_device();
    let shape = NetConfig::new(&saved.config.model(), &grid);
    let net: GflowNet<Cpu> = GflowNet::new(&shape, &mut SmallRng::seed_from_u64(0), &dev);
    let net = params::load(net, &saved.params).unwrap();
    let pre = saved.config.preprocessor();
    let probs = forward_probs_all_states(&net, None, &grid, pre, explore, &dev).unwrap();
    terminal_distribution(&grid, &probs)
}

fn counts(rows: &[Row], grid: &HyperGrid) -> Vec<u64> {
    let mut c = vec![0u64; grid.enumerable_states().unwrap()];
    for r in rows {
        c[grid.index(&r.x)] += 1;
    }
    c
}

/// Pearson's chi-square of `counts` against `probs` (infinite if a state of probability 0 was
/// drawn).
fn chi_square(counts: &[u64], probs: &[f64]) -> f64 {
    let n: u64 = counts.iter().sum();
    counts
        .iter()
        .zip(probs)
        .map(|(&c, &p)| {
            let expected = n as f64 * p;
            match expected > 0.0 {
                true => (c as f64 - expected).powi(2) / expected,
                false if c > 0 => f64::INFINITY,
                false => 0.0,
            }
        })
        .sum()
}

/// Mean plus six standard deviations of a chi-square with one less degree of freedom than there
/// are states: a correct sampler stays under it except with a vanishing probability.
fn chi_square_bound(states: usize) -> f64 {
    let df = (states - 1) as f64;
    df + 6.0 * (2.0 * df).sqrt()
}

#[test]
fn a_large_sample_follows_the_exact_terminal_distribution() {
    let cfg = reference_config();
    let dir = folder("law");
    let (ck, final_l1) = trained(cfg.clone(), &dir);
    let grid = cfg.grid().unwrap();
    let target = Target::new(&grid, &cfg.reward_fn().unwrap()).unwrap();
    let out = dir.join("draws.csv");
    let summary = draw(&ck, &request(200_000, 0, 1.0, 0.0), &out);
    let rows = read_csv(&out, 2);
    assert_eq!(rows.len(), 200_000);
    let p_t = exact_p_t(&ck, Exploration::NONE);
    let bound = chi_square_bound(p_t.len());
    let c = counts(&rows, &grid);
    let chi = chi_square(&c, &p_t);
    assert!(
        chi < bound,
        "chi-square {chi} against the exact P_T (bound {bound})"
    );
    let tempered = exact_p_t(
        &ck,
        Exploration {
            temperature: 2.0,
            epsilon: 0.0,
        },
    );
    for (name, wrong) in [("the T = 2 law", &tempered), ("R/Z", &target.probs)] {
        let chi = chi_square(&c, wrong);
        assert!(chi > 4.0 * bound, "{name} must fail the bound: {chi}");
    }
    // Every row carries its state's exact log P_T and log R; all 64 states were drawn.
    let reward = cfg.reward_fn().unwrap();
    for r in &rows {
        let i = grid.index(&r.x);
        let log_pt = r.log_pt.expect("an enumerable grid has log_pt");
        assert!((log_pt - p_t[i].ln()).abs() < 1e-12, "{:?}", r.x);
        assert_eq!(r.log_reward, reward.log_reward(&r.x));
    }
    assert!(c.iter().all(|&k| k > 0), "every state is drawn: {c:?}");
    // Σ|P_T − R/Z| from the file alone is the run's final exact L1.
    let mut from_file = vec![None; p_t.len()];
    for r in &rows {
        let log_rz = r.log_reward as f64 - target.log_z;
        from_file[grid.index(&r.x)] = Some((r.log_pt.unwrap().exp(), log_rz.exp()));
    }
    let l1: f64 = from_file
        .iter()
        .map(|s| s.map(|(p, rz)| (p - rz).abs()).unwrap())
        .sum();
    assert!((l1 - final_l1).abs() < 1e-6, "{l1} against {final_l1}");
    let exact = summary.exact_l1.unwrap();
    assert!(
        (exact - final_l1).abs() < 1e-12,
        "{exact} against {final_l1}"
    );
    assert_eq!(summary.distinct_states, Some(64));
    let modes = rows.iter().filter(|r| reward.is_mode(&r.x)).count() as u64;
    assert_eq!(summary.modes, modes);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn temperature_and_epsilon_change_the_law_and_log_pt_follows_it() {
    let cfg = reference_config();
    let dir = folder("explore");
    let (ck, final_l1) = trained(cfg.clone(), &dir);
    let grid = cfg.grid().unwrap();
    let out = dir.join("draws.csv");
    let summary = draw(&ck, &request(100_000, 1, 2.0, 0.1), &out);
    let rows = read_csv(&out, 2);
    let explore = Exploration {
        temperature: 2.0,
        epsilon: 0.1,
    };
    let (law, plain) = (exact_p_t(&ck, explore), exact_p_t(&ck, Exploration::NONE));
    for r in &rows {
        let log_pt = r.log_pt.unwrap();
        assert!((log_pt - law[grid.index(&r.x)].ln()).abs() < 1e-12);
    }
    let c = counts(&rows, &grid);
    let bound = chi_square_bound(law.len());
    assert!(chi_square(&c, &law) < bound);
    assert!(
        chi_square(&c, &plain) > 4.0 * bound,
        "the plain policy's law differs"
    );
    assert!(summary.exact_l1.unwrap() > final_l1 + 0.05, "{summary:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_seed_gives_the_same_file_and_another_seed_another() {
    let dir = folder("seed");
    let (ck, _) = trained(
        RunConfig {
            n_trajectories: 320,
            ..reference_config()
        },
        &dir,
    );
    let read = |seed: u64, name: &str| {
        let out = dir.join(name);
        draw(&ck, &request(5000, seed, 1.0, 0.0), &out);
        std::fs::read(out).unwrap()
    };
    let (a, b, c) = (read(5, "a.csv"), read(5, "b.csv"), read(6, "c.csv"));
    assert_eq!(a, b);
    assert_ne!(a, c);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn noisy_layers_are_sampled_without_their_noise() {
    let dir = folder("noisy");
    let cfg = RunConfig {
        n_trajectories: 640,
        n_noisy_layers: 1,
        ..reference_config()
    };
    let (ck, final_l1) = trained(cfg, &dir);
    let summary = draw(&ck, &request(1000, 0, 1.0, 0.0), &dir.join("draws.csv"));
    // Validation measures the mean policy; the sample's law is that policy's.
    let exact = summary.exact_l1.unwrap();
    assert!(
        (exact - final_l1).abs() < 1e-12,
        "{exact} against {final_l1}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn grids_too_large_to_enumerate_have_no_log_pt() {
    let dir = folder("huge");
    let cfg = RunConfig {
        ndim: 10,
        height: 128,
        batch_size: 8,
        n_trajectories: 16,
        hidden_dim: 16,
        n_hidden: 1,
        ..RunConfig::default()
    };
    let (ck, _) = trained(cfg, &dir);
    let out = dir.join("draws.csv");
    let summary = draw(&ck, &request(20, 0, 1.0, 0.0), &out);
    let rows = read_csv(&out, 10);
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r.log_pt.is_none() && r.x.len() == 10));
    assert!(rows.iter().all(|r| r.x.iter().all(|&c| c < 128)));
    assert_eq!(summary.exact_l1, None);
    assert_eq!(summary.distinct_states, None);
    let _ = std::fs::remove_dir_all(&dir);
}

/// NumPy reads the `.npy` file as the CSV's numbers (`log_pt` NaN where the CSV has none).
#[cfg(feature = "python")]
#[test]
fn numpy_reads_the_npy_output_as_the_csv() {
    let dir = folder("npy");
    let (ck, _) = trained(
        RunConfig {
            n_trajectories: 320,
            ..reference_config()
        },
        &dir,
    );
    let (csv, npy) = (dir.join("draws.csv"), dir.join("draws.npy"));
    draw(&ck, &request(3000, 2, 1.0, 0.0), &csv);
    draw(&ck, &request(3000, 2, 1.0, 0.0), &npy);
    let script = "import sys, numpy as np\n\
                  a = np.load(sys.argv[1])\n\
                  b = np.loadtxt(sys.argv[2], delimiter=',', skiprows=1, dtype=np.float64)\n\
                  assert a.dtype == np.float64 and a.shape == b.shape == (3000, 4), (a.shape, b.shape)\n\
                  assert np.array_equal(a[:, :2], b[:, :2])\n\
                  assert np.array_equal(a[:, 2].astype(np.float32), b[:, 2].astype(np.float32))\n\
                  assert np.array_equal(a[:, 3], b[:, 3])\n\
                  print('ok')";
    let out = gfn_tests::python()
        .args(["-c", script])
        .arg(&npy)
        .arg(&csv)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
