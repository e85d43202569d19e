//! Benchmark area `pool`; see `mproc_benches::pool`.
fn main() {
    mproc_benches::run_area(mproc_benches::pool::area);
}
