//! Tells the tests whether the CPU that builds them has AVX512-BF16 (`cfg(bf16_cpu)`), so that a
//! test of the bf16 path is ignored where it cannot run, never passed without running, and the
//! tests of the float32 fallback run there instead. The library itself detects the CPU at run
//! time (`nn::bf16::available`); a test checks that the two agree.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(bf16_cpu)");
    println!("cargo::rerun-if-changed=build.rs");
    let native = std::env::var("TARGET").ok() == std::env::var("HOST").ok();
    #[cfg(target_arch = "x86_64")]
    if native
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bf16")
    {
        println!("cargo::rustc-cfg=bf16_cpu");
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = native;
}
