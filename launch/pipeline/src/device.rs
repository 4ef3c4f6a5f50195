//! Picks the burn backends of the configured `--device`.

/// Evaluates `$body` (a `Result`) with the type alias `$L` set to the training backend of
/// `$device` (its inference backend is `$L::InnerBackend`) and `$dev` bound to its burn device.
/// A device that this build or machine cannot use is a configuration error (exit code 2).
macro_rules! with_backend {
    ($device:expr, |$L:ident, $dev:ident| $body:expr) => {{
        let device: gfn_common::Device = $device;
        gfn_nn::backend::check_device(device)?;
        match device {
            #[cfg(feature = "cuda")]
            gfn_common::Device::Cuda(index) => {
                type $L = gfn_nn::backend::GpuAutodiff;
                let $dev = gfn_nn::backend::gpu_device(index);
                $body
            }
            // The CPU; without the `cuda` feature, `check_device` has refused every GPU.
            _ => {
                type $L = gfn_nn::backend::CpuAutodiff;
                let $dev = gfn_nn::backend::cpu_device();
                $body
            }
        }
    }};
}
pub(crate) use with_backend;
