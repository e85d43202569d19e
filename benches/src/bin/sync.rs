//! Benchmark area `sync`; see `mproc_benches::sync`.
fn main() {
    mproc_benches::run_area(mproc_benches::sync::area);
}
