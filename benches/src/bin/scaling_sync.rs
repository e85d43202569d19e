//! Benchmark area `scaling_sync`; see `mproc_benches::scaling_sync`.
fn main() {
    mproc_benches::run_area(mproc_benches::scaling_sync::area);
}
