//! The device path on a wgpu adapter (in CI: Mesa's lavapipe, Vulkan on the CPU): device
//! rollouts against the exact terminal distribution, a short TB run against the same run on the
//! CPU, and a `gfn learner --device wgpu` among CPU processes. Built with `--features wgpu`.
#![cfg(feature = "wgpu")]

use gfn_common::{Device, RunConfig};
use gfn_nn::any_gpu::{wgpu_device, Wgpu};
use gfn_pipeline::HostOptions;
use gfn_sampler::Sampler;
use gfn_tests::train;

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
    let (flat, exact) = gfn_tests::random_policy(&cfg);
    let mut sampler = Sampler::<Wgpu>::new(&cfg, 0, wgpu_device(None)).unwrap();
    sampler.set_weights(1, &flat).unwrap();
    let n = 20_000;
    let l1 = gfn_tests::rollout_l1(&sampler.sample(n), &grid, &exact);
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
