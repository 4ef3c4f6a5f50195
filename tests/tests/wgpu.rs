//! The device path on a wgpu adapter (in CI: Mesa's lavapipe, Vulkan on the CPU): device
//! rollouts against the exact terminal distribution, a short TB run against the same run on the
//! CPU, and a `gfn learner --device wgpu` among CPU processes. Built with `--features wgpu`.
#![cfg(feature = "wgpu")]

use gfn_common::target::{distances, histogram, terminal_distribution};
use gfn_common::{Device, RunConfig, TrajectoryBatch};
use gfn_nn::any_gpu::{wgpu_device, Wgpu};
use gfn_nn::backend::{cpu_device, Cpu};
use gfn_nn::policy::forward_probs_all_states;
use gfn_nn::{params, GflowNet, NetConfig};
use gfn_pipeline::train::train;
use gfn_pipeline::HostOptions;
use gfn_sampler::Sampler;
use rand::{rngs::SmallRng, Rng, SeedableRng};

const WGPU: Device = Device::Wgpu(None);

#[test]
fn device_rollouts_on_wgpu_follow_the_exact_terminal_distribution() {
    let cfg = RunConfig {
        ndim: 2,
        height: 5,
        device: WGPU,
        ..RunConfig::default()
    };
    gfn_nn::backend::check_device(WGPU).expect("a wgpu adapter (lavapipe in CI)");
    let grid = cfg.grid().unwrap();
    // A random, non-uniform policy, evaluated exactly on the CPU.
    let net: GflowNet<Cpu> = GflowNet::new(
        &NetConfig::new(&cfg.model(), &grid),
        &mut SmallRng::seed_from_u64(9),
        &cpu_device(),
    );
    let mut rng = SmallRng::seed_from_u64(10);
    let flat: Vec<f32> = params::flatten(&net)
        .iter()
        .map(|_| rng.random_range(-0.3..0.3))
        .collect();
    let net = params::load(net, &flat).unwrap();
    let dev = cpu_device();
    let probs = forward_probs_all_states(&net, None, &grid, cfg.preprocessor(), &dev).unwrap();
    let exact = terminal_distribution(&grid, &probs);
    let mut sampler = Sampler::<Wgpu>::new(&cfg, 0, wgpu_device(None)).unwrap();
    sampler.set_weights(1, &flat).unwrap();
    let n = 20_000;
    let batch = sampler.sample(n);
    batch.validate(&grid).unwrap();
    let mut x = vec![0u16; 2];
    let idx: Vec<usize> = batch
        .iter()
        .map(|(a, _, _)| {
            TrajectoryBatch::terminal_state(2, a, &mut x);
            grid.index(&x)
        })
        .collect();
    let l1 = distances(&exact, &histogram(idx, exact.len())).l1;
    // Expected L1 of n perfect samples over 25 bins is about 0.03.
    assert!(l1 < 0.07, "wgpu device rollouts vs DP: L1 {l1}");
}

#[test]
fn a_tb_run_on_wgpu_ends_where_the_cpu_run_ends() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/tb-2d8-reference.toml");
    let cfg = RunConfig::from_toml_file(&path).unwrap();
    let on = |device| {
        let cfg = RunConfig {
            device,
            validation_samples: 0,
            ..cfg.clone()
        };
        train(&cfg, HostOptions::default()).unwrap().summary
    };
    let (cpu, gpu) = (on(Device::Cpu), on(WGPU));
    let l1 = |s: &gfn_host::metrics::Summary| s.final_validation.exact_l1.unwrap();
    assert!(
        (l1(&cpu) - l1(&gpu)).abs() <= 0.01,
        "exact L1 {} on the CPU, {} on {}",
        l1(&cpu),
        l1(&gpu),
        gpu.device
    );
    assert!(gpu.device.starts_with("wgpu:"), "{}", gpu.device);
}
