//! The concrete backends, and the per-thread float settings they need on the CPU.

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

/// Configures the global thread pool of the CPU kernels (once per process) with `threads`
/// workers that all flush denormals.
pub fn init_cpu_threads(threads: usize) {
    flush_denormals();
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .start_handler(|_| flush_denormals())
        .build_global();
}
