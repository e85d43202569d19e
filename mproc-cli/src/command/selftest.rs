//! `mproc selftest`: start a child with each start method and check its answer.

use std::process::ExitCode;
use std::time::Instant;

use mproc::process::{Process, StartMethod};

/// Options of `mproc selftest`.
#[derive(clap::Args)]
pub struct Args {
    /// Children per start method.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
}

fn triple(x: u64) -> u64 {
    x * 3
}

/// Starts `rounds` children per start method; fails if any child fails or answers wrong.
pub fn run(args: &Args) -> ExitCode {
    let mut ok = true;
    for method in StartMethod::ALL {
        for round in 0..args.rounds {
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
