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
