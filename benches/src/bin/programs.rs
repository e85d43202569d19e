//! Benchmark area `programs`; see `mproc_benches::programs`.
fn main() {
    mproc_benches::run_area(mproc_benches::programs::area);
}
