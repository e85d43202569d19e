//! Benchmark area `threading`; see `mproc_benches::threading`.
fn main() {
    mproc_benches::run_area(mproc_benches::threading::area);
}
