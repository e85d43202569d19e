//! The `mproc` command line: facts about this machine and a self-test of the start
//! methods.
//!
//! Each subcommand lives in its own module under [`command`] and is one variant of
//! [`Command`]. A group of subcommands (the distributed ones to come, `mproc queues
//! info`, `mproc jobs ...`) is a variant holding its own `#[derive(Subcommand)]` enum,
//! defined in that group's module, with a `run` function returning an [`ExitCode`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod command;

/// The command line as parsed by clap.
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

/// The subcommands; each is run by the module of the same name.
#[derive(Subcommand)]
enum Command {
    /// Print what mproc sees on this machine.
    Info,
    /// Start a child with each start method and check that it answers.
    Selftest(command::selftest::Args),
    /// BullMQ queues in Redis: info, pause, resume, clean.
    #[cfg(feature = "distributed")]
    #[command(subcommand)]
    Queues(command::queues::Queues),
    /// Jobs of a BullMQ queue: list, show, retry, remove.
    #[cfg(feature = "distributed")]
    #[command(subcommand)]
    Jobs(command::jobs::Jobs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Info => command::info::run(),
        Command::Selftest(args) => command::selftest::run(&args),
        #[cfg(feature = "distributed")]
        Command::Queues(cmd) => command::queues::run(&cmd),
        #[cfg(feature = "distributed")]
        Command::Jobs(cmd) => command::jobs::run(&cmd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn selftest_rounds_parse_and_bad_values_are_refused() {
        let cli = Cli::try_parse_from(["mproc", "selftest", "--rounds", "5"]).unwrap();
        assert!(matches!(cli.command, Command::Selftest(a) if a.rounds == 5));
        let err = Cli::try_parse_from(["mproc", "selftest", "--rounds", "many"])
            .err()
            .expect("a non-number is refused");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }
}
