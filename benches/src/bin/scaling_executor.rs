//! Benchmark area `scaling_executor`; see `mproc_benches::scaling_executor`.

/// Counts live heap bytes, for the heap per pending future.
#[global_allocator]
static ALLOC: mproc_benches::scaling_executor::CountingAlloc =
    mproc_benches::scaling_executor::CountingAlloc;

fn main() {
    mproc_benches::run_area(mproc_benches::scaling_executor::area);
}
