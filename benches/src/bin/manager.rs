//! Benchmark area `manager`; see `mproc_benches::manager`.
fn main() {
    mproc_benches::run_area(mproc_benches::manager::area);
}
