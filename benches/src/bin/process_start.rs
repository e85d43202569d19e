//! Benchmark area `process_start`; see `mproc_benches::process`.
fn main() {
    mproc_benches::run_area(mproc_benches::process::area);
}
