//! Benchmark area `distributed`; see `mproc_benches::distributed`.
fn main() {
    mproc_benches::run_area(mproc_benches::distributed::area);
}
