//! Picks the burn backends of the configured `--device`.

/// Evaluates `$body` (a `Result`) with the type alias `$L` set to the training backend of
/// `$device` (its inference backend is `$L::InnerBackend`) and `$dev` bound to its burn device.
/// A device that this build or machine cannot use is a configuration error (exit code 2).
macro_rules! with_backend {
    ($device:expr, |$L:ident, $dev:ident| $body:expr) => {{
        let device: gfn_common::Device = $device;
        let unavailable =
            |e: String| -> anyhow::Error { gfn_common::config::ConfigError::Unavailable(e).into() };
        match device {
            gfn_common::Device::Cpu => {
                type $L = gfn_nn::backend::CpuAutodiff;
                let $dev = gfn_nn::backend::cpu_device();
                $body
            }
            #[cfg(feature = "cuda")]
            gfn_common::Device::Cuda(index) => {
                gfn_nn::backend::check_device(device).map_err(unavailable)?;
                type $L = gfn_nn::backend::GpuAutodiff;
                let $dev = gfn_nn::backend::gpu_device(index);
                $body
            }
            #[cfg(not(feature = "cuda"))]
            gfn_common::Device::Cuda(_) => Err(unavailable(
                gfn_nn::backend::check_device(device)
                    .err()
                    .unwrap_or_default(),
            )),
        }
    }};
}
pub(crate) use with_backend;
