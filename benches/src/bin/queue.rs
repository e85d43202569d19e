//! Benchmark area `queue`; see `mproc_benches::queue`.
fn main() {
    mproc_benches::run_area(mproc_benches::queue::area);
}
