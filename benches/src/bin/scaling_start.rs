//! Benchmark area `scaling_start`; see `mproc_benches::scaling_start`.
fn main() {
    mproc_benches::run_area(mproc_benches::scaling_start::area);
}
