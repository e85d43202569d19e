//! Benchmark area `pipe`; see `mproc_benches::pipe`.
fn main() {
    mproc_benches::run_area(mproc_benches::pipe::area);
}
