//! `mproc jobs ...`: list, show, retry and remove the jobs of a BullMQ queue.

use std::process::ExitCode;

use clap::Subcommand;

use super::queues::{Target, fail, print_json};

/// `mproc jobs` subcommands.
#[derive(Subcommand, Debug)]
pub enum Jobs {
    /// The jobs in one state (or all), newest first.
    List {
        /// The queue's name.
        queue: String,
        /// waiting, active, delayed, prioritized, completed, failed, paused or all.
        #[arg(long, default_value = "all")]
        state: String,
        /// How many jobs to show.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[command(flatten)]
        target: Target,
    },
    /// One job in full: data, result or failure (with where it happened), logs.
    Show {
        /// The queue's name.
        queue: String,
        /// The job id.
        id: String,
        #[command(flatten)]
        target: Target,
    },
    /// Move a failed or completed job (or, with `--all-failed`, every failed one)
    /// back to wait.
    Retry {
        /// The queue's name.
        queue: String,
        /// The job id.
        #[arg(required_unless_present = "all_failed")]
        id: Option<String>,
        /// Retry every failed job.
        #[arg(long, conflicts_with = "id")]
        all_failed: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Remove a job that no worker is running.
    Remove {
        /// The queue's name.
        queue: String,
        /// The job id.
        id: String,
        #[command(flatten)]
        target: Target,
    },
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(n.saturating_sub(1)).collect();
        c.push('…');
        c
    }
}

/// Runs a `jobs` subcommand.
pub fn run(cmd: &Jobs) -> ExitCode {
    match cmd {
        Jobs::List {
            queue,
            state,
            limit,
            target,
        } => {
            let jobs = match target
                .admin(queue)
                .and_then(|a| a.jobs(state, 0, (*limit - 1).max(0)))
            {
                Ok(j) => j,
                Err(e) => return fail(e),
            };
            if target.json {
                return print_json(&jobs);
            }
            println!(
                "{:<28} {:<16} {:<10} {:>8}  DATA / OUTCOME",
                "ID", "NAME", "STATE", "ATTEMPTS"
            );
            for j in &jobs {
                let outcome = if !j.failed_reason.is_empty() && j.state == "failed" {
                    format!("{} -> {}", j.data, j.failed_reason)
                } else if !j.returnvalue.is_empty() {
                    format!("{} -> {}", j.data, j.returnvalue)
                } else {
                    j.data.clone()
                };
                println!(
                    "{:<28} {:<16} {:<10} {:>8}  {}",
                    clip(&j.id, 28),
                    clip(&j.name, 16),
                    j.state,
                    j.attempts_made,
                    clip(&outcome, 60)
                );
            }
            ExitCode::SUCCESS
        }
        Jobs::Show { queue, id, target } => {
            let j = match target.admin(queue).and_then(|a| a.job(id)) {
                Ok(j) => j,
                Err(e) => return fail(e),
            };
            if target.json {
                return print_json(&j);
            }
            println!("id:        {}", j.id);
            println!("name:      {}", j.name);
            println!("state:     {}", j.state);
            println!("attempts:  {}", j.attempts_made);
            println!("data:      {}", j.data);
            println!("progress:  {}", j.progress);
            if !j.returnvalue.is_empty() {
                println!("result:    {}", j.returnvalue);
            }
            if !j.failed_reason.is_empty() {
                println!("failed:    {}", j.failed_reason);
            }
            if let Some(w) = &j.failure_where {
                println!("where:     {w}");
            }
            println!("added:     {} ms", j.timestamp);
            if let Some(t) = j.processed_on {
                println!("started:   {t} ms");
            }
            if let Some(t) = j.finished_on {
                println!("finished:  {t} ms");
            }
            if !j.logs.is_empty() {
                println!("logs:");
                for l in &j.logs {
                    println!("  {l}");
                }
            }
            ExitCode::SUCCESS
        }
        Jobs::Retry {
            queue,
            id,
            all_failed,
            target,
        } => {
            let admin = match target.admin(queue) {
                Ok(a) => a,
                Err(e) => return fail(e),
            };
            let done = match (id, all_failed) {
                (_, true) => admin
                    .retry_all_failed()
                    .map(|()| "every failed job".to_string()),
                (Some(id), false) => admin.retry(id).map(|()| format!("job {id}")),
                (None, false) => return fail("name a job id or pass --all-failed"),
            };
            match done {
                Ok(what) => {
                    println!("{what} of {queue} moved back to wait");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Jobs::Remove { queue, id, target } => {
            match target.admin(queue).and_then(|a| a.remove(id)) {
                Ok(()) => {
                    println!("job {id} removed from {queue}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}
