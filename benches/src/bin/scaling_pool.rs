//! Benchmark area `scaling_pool`; see `mproc_benches::scaling_pool`.
fn main() {
    mproc_benches::run_area(mproc_benches::scaling_pool::area);
}
