//! Any GPU through wgpu (Vulkan, Metal, DirectX 12) with burn-wgpu: the adapter list, the choice
//! of adapter, and a one-line error (never a panic mid-run) when there is none. On a machine
//! without a GPU, Mesa's lavapipe is a Vulkan adapter on the CPU: a correctness target for CI,
//! not a fast one.

/// Inference backend through wgpu (the `wgpu` feature).
#[cfg(feature = "wgpu")]
pub type Wgpu = burn::backend::Wgpu;
/// Training backend through wgpu (the `wgpu` feature).
#[cfg(feature = "wgpu")]
pub type WgpuAutodiff = burn::backend::Autodiff<Wgpu>;

#[cfg(not(feature = "wgpu"))]
pub(crate) fn check(index: Option<usize>) -> Result<String, String> {
    let device = index.map_or("wgpu".into(), |i| format!("wgpu:{i}"));
    Err(format!(
        "--device {device}: this gfn was built without wgpu support (build with `--features wgpu`)"
    ))
}

#[cfg(feature = "wgpu")]
pub use with_wgpu::*;

#[cfg(feature = "wgpu")]
mod with_wgpu {
    use burn::backend::wgpu::WgpuDevice;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    /// Runs a wgpu future to completion: on native platforms they are ready at once.
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::yield_now();
        }
    }

    /// The adapters burn-wgpu can use, in the order it lists them.
    fn adapters() -> Vec<wgpu::Adapter> {
        let instance = wgpu::Instance::default();
        block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY))
            .into_iter()
            .filter(|a| a.get_info().device_type != wgpu::DeviceType::Other)
            .collect()
    }

    /// The adapter `--device wgpu` (the most powerful) or `wgpu:N` (the N-th listed) means.
    fn pick(index: Option<usize>) -> Result<(usize, Vec<wgpu::Adapter>), String> {
        let all = adapters();
        let name = index.map_or("wgpu".into(), |i| format!("wgpu:{i}"));
        if all.is_empty() {
            return Err(format!(
                "--device {name}: no wgpu adapter found (a Vulkan, Metal or DirectX 12 driver is \
                 needed; without a GPU on Linux, Mesa's lavapipe: apt install mesa-vulkan-drivers)"
            ));
        }
        let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            _ => 3,
        };
        let chosen = match index {
            Some(i) if i >= all.len() => {
                return Err(format!(
                    "--device {name}: there are {} adapter(s)",
                    all.len()
                ))
            }
            Some(i) => i,
            None => (0..all.len()).min_by_key(|&i| rank(&all[i])).unwrap_or(0),
        };
        Ok((chosen, all))
    }

    /// Checks that the adapter exists and describes it: name, backend, driver.
    pub(crate) fn check(index: Option<usize>) -> Result<String, String> {
        let (i, all) = pick(index)?;
        let info = all[i].get_info();
        Ok(format!(
            "wgpu:{i} {} ({:?}, {:?}, driver {} {})",
            info.name, info.device_type, info.backend, info.driver, info.driver_info
        ))
    }

    /// burn's device for the adapter `--device wgpu[:N]` picks: burn-wgpu addresses adapters
    /// by kind and rank within the kind.
    pub fn wgpu_device(index: Option<usize>) -> WgpuDevice {
        crate::gpu_runtime::configure();
        let Ok((i, all)) = pick(index) else {
            return WgpuDevice::DefaultDevice;
        };
        let kind = all[i].get_info().device_type;
        let rank = all[..i]
            .iter()
            .filter(|a| a.get_info().device_type == kind)
            .count();
        match kind {
            wgpu::DeviceType::DiscreteGpu => WgpuDevice::DiscreteGpu(rank),
            wgpu::DeviceType::IntegratedGpu => WgpuDevice::IntegratedGpu(rank),
            wgpu::DeviceType::VirtualGpu => WgpuDevice::VirtualGpu(rank),
            _ => WgpuDevice::Cpu,
        }
    }
}
