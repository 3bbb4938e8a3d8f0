//! What only the `shoplake` binary needs: the demo and the benchmarks, both over the
//! sandbox (the `sandbox` feature, on by default).

#[cfg(feature = "sandbox")]
pub mod bench;
#[cfg(feature = "sandbox")]
pub mod demo;
