//! `mproc queues ...`: a BullMQ queue at a glance (counts per state, workers, the
//! last minute's rates), and `pause`, `resume`, `clean`.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use mproc::distributed::{Admin, DistributedError};

/// Where the queues are: shared by `queues` and `jobs`.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// The Redis URL.
    #[arg(
        long,
        env = "MPROC_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis: String,
    /// The BullMQ key prefix.
    #[arg(long, default_value = "bull")]
    pub prefix: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Target {
    /// Connects to `queue`.
    pub fn admin(&self, queue: &str) -> Result<Admin, DistributedError> {
        Admin::connect_with_prefix(&self.redis, queue, &self.prefix)
    }
}

/// `mproc queues` subcommands.
#[derive(Subcommand, Debug)]
pub enum Queues {
    /// Counts per state, connected workers, completed and failed in the last minute.
    Info {
        /// The queue's name.
        queue: String,
        #[command(flatten)]
        target: Target,
    },
    /// Stop workers from taking new jobs of the queue.
    Pause {
        /// The queue's name.
        queue: String,
        #[command(flatten)]
        target: Target,
    },
    /// Let workers take jobs of a paused queue again.
    Resume {
        /// The queue's name.
        queue: String,
        #[command(flatten)]
        target: Target,
    },
    /// Remove finished (or waiting) jobs older than a grace period.
    Clean {
        /// The queue's name.
        queue: String,
        /// Which jobs: completed, failed, waiting, delayed, prioritized, paused.
        #[arg(long, default_value = "completed")]
        state: String,
        /// Only jobs older than this many seconds.
        #[arg(long, default_value_t = 0)]
        grace_secs: u64,
        /// At most this many jobs.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
        #[command(flatten)]
        target: Target,
    },
}

/// Prints `e` and returns the failure code.
pub fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("mproc: {e}");
    ExitCode::FAILURE
}

/// Prints `value` as JSON (a closed pipe, as with `| head`, is not an error).
pub fn print_json(value: &impl serde::Serialize) -> ExitCode {
    use std::io::Write;
    match serde_json::to_string_pretty(value) {
        Ok(s) => {
            let _ = writeln!(std::io::stdout(), "{s}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// Runs a `queues` subcommand.
pub fn run(cmd: &Queues) -> ExitCode {
    match cmd {
        Queues::Info { queue, target } => {
            let info = match target.admin(queue).and_then(|a| a.info()) {
                Ok(i) => i,
                Err(e) => return fail(e),
            };
            if target.json {
                return print_json(&info);
            }
            println!(
                "queue {}{}",
                info.name,
                if info.paused { " (paused)" } else { "" }
            );
            println!("{:<12} {:>10}", "STATE", "JOBS");
            for (state, n) in &info.counts {
                println!("{state:<12} {n:>10}");
            }
            println!(
                "rates: {} completed, {} failed in the last minute",
                info.completed_last_minute, info.failed_last_minute
            );
            println!("workers: {}", info.workers.len());
            for w in &info.workers {
                println!("  {w}");
            }
            ExitCode::SUCCESS
        }
        Queues::Pause { queue, target } => match target.admin(queue).and_then(|a| a.pause()) {
            Ok(()) => {
                println!("queue {queue} paused");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        Queues::Resume { queue, target } => match target.admin(queue).and_then(|a| a.resume()) {
            Ok(()) => {
                println!("queue {queue} resumed");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        Queues::Clean {
            queue,
            state,
            grace_secs,
            limit,
            target,
        } => {
            let grace = Duration::from_secs(*grace_secs);
            match target
                .admin(queue)
                .and_then(|a| a.clean(state, grace, *limit))
            {
                Ok(ids) if target.json => print_json(&ids),
                Ok(ids) => {
                    println!("removed {} {state} jobs from {queue}", ids.len());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}
