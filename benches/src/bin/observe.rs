//! Benchmark area `observe`; see `mproc_benches::observe`.
fn main() {
    mproc_benches::run_area(mproc_benches::observe::area);
}
