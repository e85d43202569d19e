//! `mproc info`: what mproc sees on this machine.

use std::process::ExitCode;

use mproc::process::StartMethod;

/// Prints the version, CPU count, pid and default start method.
pub fn run() -> ExitCode {
    println!("mproc {}", env!("CARGO_PKG_VERSION"));
    println!("cpus: {}", mproc::process::cpu_count());
    println!("pid: {}", std::process::id());
    println!("default start method: {:?}", StartMethod::default());
    ExitCode::SUCCESS
}
