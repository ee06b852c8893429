//! CPU kernels: AVX-512 dispatch.
//!
//! The package is built for the baseline x86-64; loops wrapped in `simd!` are compiled a
//! second time for AVX-512 and that build runs on CPUs that have it (checked once).

/// Whether this CPU runs the fused loops' AVX-512 build (checked once).
pub(crate) fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Runs `f` (whose body and `#[inline(always)]` callees are then compiled for AVX-512) on
/// CPUs that have it; the package is built for the baseline x86-64, whose SSE2 loops are four
/// lanes wide and call libm for rounding.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
pub(crate) fn run_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `simd!(expr)`: `expr` compiled for AVX-512 where the CPU has it, for the baseline elsewhere.
macro_rules! simd {
    ($e:expr) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if $crate::kernels::avx512() {
                // SAFETY: the CPU has every feature `run_avx512` is compiled for.
                unsafe {
                    $crate::kernels::run_avx512(
                        #[inline(always)]
                        || $e,
                    )
                }
            } else {
                $e
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $e
        }
    }};
}
pub(crate) use simd;
