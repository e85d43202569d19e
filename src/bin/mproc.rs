//! The `mproc` command line: facts about this machine and a self-test of the start
//! methods. (Distributed workers will join it as `mproc worker`.)

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use mproc::process::{Process, StartMethod};

#[derive(Parser)]
#[command(
    name = "mproc",
    version,
    about = "Python's multiprocessing for Rust: tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print what mproc sees on this machine.
    Info,
    /// Start a child with each start method and check that it answers.
    Selftest {
        /// Children per start method.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
    },
}

fn triple(x: u64) -> u64 {
    x * 3
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Info => {
            println!("mproc {}", env!("CARGO_PKG_VERSION"));
            println!("cpus: {}", mproc::process::cpu_count());
            println!("pid: {}", std::process::id());
            println!("default start method: {:?}", StartMethod::default());
            ExitCode::SUCCESS
        }
        Command::Selftest { rounds } => {
            let mut ok = true;
            for method in StartMethod::ALL {
                for round in 0..rounds {
                    let started = Instant::now();
                    let result = Process::builder()
                        .start_method(method)
                        .start(triple, u64::from(round))
                        .map_err(|e| e.to_string())
                        .and_then(|p| p.join().map_err(|e| e.to_string()));
                    match result {
                        Ok(v) if v == 3 * u64::from(round) => {
                            println!(
                                "{method:?}: ok in {:.2} ms",
                                started.elapsed().as_secs_f64() * 1e3
                            )
                        }
                        Ok(v) => {
                            println!("{method:?}: wrong answer {v}");
                            ok = false;
                        }
                        Err(e) => {
                            println!("{method:?}: failed: {e}");
                            ok = false;
                        }
                    }
                }
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
