//! The floor of `StartMethod::Spawn`: a Rust program that does nothing, built by the same
//! cargo invocation and profile as the benchmarks (see `mproc_benches::process`).
fn main() {}
