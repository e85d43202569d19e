//! Benchmark area `aio`; see `mproc_benches::aio`.
fn main() {
    mproc_benches::run_area(mproc_benches::aio::area);
}
