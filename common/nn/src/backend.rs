//! The concrete backends, and the per-thread float settings they need on the CPU.

use gfn_common::config::ConfigError;

/// Inference backend on the CPU.
pub type Cpu = burn::backend::Flex;
/// Training backend on the CPU.
pub type CpuAutodiff = burn::backend::Autodiff<Cpu>;
/// The CPU device.
pub fn cpu_device() -> burn::backend::flex::FlexDevice {
    burn::backend::flex::FlexDevice
}

/// Sets flush-to-zero and denormals-are-zero on the calling thread. Without it Adam's moment
/// estimates go subnormal and steps get about 3x slower. Call it on every thread that computes.
pub fn flush_denormals() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: only sets the FTZ and DAZ bits of this thread's MXCSR.
    #[allow(deprecated)]
    unsafe {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        _mm_setcsr(_mm_getcsr() | 0x8040);
    }
}

/// Keeps large tensor buffers in the heap instead of mapping and unmapping them for every
/// operation (glibc's default for blocks over 128 KiB): with batch 512 the page faults of those
/// mappings cost a third of the forward pass.
fn keep_large_blocks_in_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before the compute threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

/// Sets up the process for CPU compute: the allocator for large tensors, and FTZ/DAZ here.
pub fn init_cpu_threads(threads: usize) {
    let _ = threads;
    keep_large_blocks_in_heap();
    flush_denormals();
}

/// A pool of `threads` compute threads that flush denormals. Run a role's loop inside it with
/// [`rayon::ThreadPool::install`]: the CPU backend's parallel kernels then run on the role's own
/// thread instead of being handed to the global pool and waited for, which costs a thread
/// wake-up per operation. Each role gets its own pool, so roles never wait on each other.
pub fn role_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .start_handler(|_| flush_denormals())
        .build()
        .unwrap_or_else(|_| {
            rayon::ThreadPoolBuilder::new()
                .build()
                .expect("a thread pool")
        })
}

/// Checks, without panicking, that `device` can be used by this build on this machine, and
/// describes it (for a GPU: the adapter that will be used).
pub fn check_device(device: gfn_common::Device) -> Result<String, ConfigError> {
    let described = match device {
        gfn_common::Device::Cpu => Ok("cpu (burn-flex)".to_string()),
        gfn_common::Device::Cuda(index) => check_gpu(index),
        gfn_common::Device::Wgpu(index) => crate::any_gpu::check(index),
    };
    described.map_err(ConfigError::Unavailable)
}

#[cfg(not(feature = "cuda"))]
fn check_gpu(index: usize) -> Result<String, String> {
    Err(format!(
        "--device cuda:{index}: this gfn was built without CUDA support (build with `--features cuda`)"
    ))
}

#[cfg(feature = "cuda")]
fn check_gpu(index: usize) -> Result<String, String> {
    use cudarc::driver::{result, sys};
    let name = format!("--device cuda:{index}");
    // SAFETY: only tries to load the driver library.
    if !unsafe { sys::is_culib_present() } {
        return Err(format!("{name}: no NVIDIA driver found (libcuda)"));
    }
    result::init().map_err(|e| format!("{name}: the CUDA driver failed to start: {e:?}"))?;
    let count =
        result::device::get_count().map_err(|e| format!("{name}: cannot count GPUs: {e:?}"))?;
    if index >= count.max(0) as usize {
        return Err(format!("{name}: there are {count} GPU(s)"));
    }
    let kernels = if cfg!(feature = "cuda-fusion") {
        "burn-cuda, fused kernels"
    } else {
        "burn-cuda"
    };
    Ok(format!("cuda:{index} ({kernels})"))
}

/// Inference backend on an NVIDIA GPU (the `cuda` feature).
#[cfg(feature = "cuda")]
pub type Gpu = burn_cuda::Cuda;
/// Training backend on an NVIDIA GPU (the `cuda` feature).
#[cfg(feature = "cuda")]
pub type GpuAutodiff = burn::backend::Autodiff<Gpu>;
/// The GPU with the given index.
#[cfg(feature = "cuda")]
pub fn gpu_device(index: usize) -> burn_cuda::CudaDevice {
    crate::gpu_runtime::configure();
    burn_cuda::CudaDevice::new(index)
}

#[cfg(all(test, not(feature = "cuda")))]
mod tests {
    use super::*;

    #[test]
    fn gpu_needs_the_cuda_build() {
        assert!(check_device(gfn_common::Device::Cpu).is_ok());
        let err = check_device(gfn_common::Device::Cuda(1))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cuda:1") && err.contains("--features cuda"),
            "{err}"
        );
        #[cfg(not(feature = "wgpu"))]
        {
            let err = check_device(gfn_common::Device::Wgpu(None))
                .unwrap_err()
                .to_string();
            assert!(err.contains("--features wgpu"), "{err}");
        }
    }
}
