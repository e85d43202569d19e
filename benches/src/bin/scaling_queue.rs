//! Benchmark area `scaling_queue`; see `mproc_benches::scaling_queue`.
fn main() {
    mproc_benches::run_area(mproc_benches::scaling_queue::area);
}
