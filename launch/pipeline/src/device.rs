//! Picks the burn backends of the configured `--device`.

/// Evaluates `$body` (a `Result`) with the type alias `$L` set to the training backend of
/// `$device` (its inference backend is `$L::InnerBackend`) and `$dev` bound to its burn device.
/// A device that this build or machine cannot use is a configuration error (exit code 2).
macro_rules! with_backend {
    ($device:expr, |$L:ident, $dev:ident| $body:expr) => {{
        let device: gfn_common::Device = $device;
        let described = gfn_nn::backend::check_device(device)?;
        tracing::info!("computing on {described}");
        match device {
            #[cfg(feature = "cuda")]
            gfn_common::Device::Cuda(index) => {
                type $L = gfn_nn::backend::GpuAutodiff;
                let $dev = gfn_nn::backend::gpu_device(index);
                $body
            }
            #[cfg(feature = "wgpu")]
            gfn_common::Device::Wgpu(index) => {
                type $L = gfn_nn::any_gpu::WgpuAutodiff;
                let $dev = gfn_nn::any_gpu::wgpu_device(index);
                $body
            }
            // The CPU; `check_device` has refused every GPU this build cannot drive.
            _ => {
                type $L = gfn_nn::backend::CpuAutodiff;
                let $dev = gfn_nn::backend::cpu_device();
                $body
            }
        }
    }};
}
pub(crate) use with_backend;

/// The float32 matrix-product rate of `device` on square matrices of side `n`, in GFLOP/s: the
/// ceiling `gfn bench` holds the learner's achieved rate against. On the CPU it runs on the
/// calling thread's pool; on a GPU the first product (kernel compilation, autotuning) is not
/// timed, and one element of each product is read back at the end, so the timed region holds
/// the products themselves and a single sync rather than `reps` full downloads.
pub fn sgemm_gflops(device: gfn_common::Device, n: usize, reps: usize) -> anyhow::Result<f64> {
    with_backend!(device, |L, dev| Ok(sgemm_on::<
        <L as gfn_nn::burn::tensor::backend::AutodiffBackend>::InnerBackend,
    >(&dev, n, reps)))
}

fn sgemm_on<B: gfn_nn::burn::tensor::backend::Backend>(
    dev: &B::Device,
    n: usize,
    reps: usize,
) -> f64 {
    use gfn_nn::burn::tensor::{Distribution, Tensor};
    let a = Tensor::<B, 2>::random([n, n], Distribution::Default, dev);
    let b = Tensor::<B, 2>::random([n, n], Distribution::Default, dev);
    let corner = |c: Tensor<B, 2>| c.slice([0..1, 0..1]);
    let _ = corner(a.clone().matmul(b.clone())).into_data();
    let t = std::time::Instant::now();
    let mut acc = Tensor::<B, 2>::zeros([1, 1], dev);
    for _ in 0..reps.max(1) {
        acc = acc + corner(a.clone().matmul(b.clone()));
    }
    let _ = acc.into_data();
    2.0 * (n * n * n * reps.max(1)) as f64 / t.elapsed().as_secs_f64() / 1e9
}
