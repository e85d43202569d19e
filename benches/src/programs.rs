//! The example programs measured (issue 17): the analysis example against the same
//! computation in Python and serially in Rust, and the game server's throughput
//! and round trip with 2 worker processes against 1.
//!
//! Workloads:
//! - `examples/analysis.rs` on a generated CSV of [`ANALYSIS_ROWS`] trips (made
//!   once, under `<target>/mproc-examples`): group-by aggregates over byte ranges
//!   of the file in a pool of 2 worker processes (`--json` reports the seconds),
//!   and the same aggregate computed serially in one process (`--check`); Python:
//!   `benches/py/py_analysis.py`, `multiprocessing.Pool(2)` and the `csv` module
//!   over the same byte ranges of the same file.
//! - `examples/game_server.rs --load 200 --seconds 2 --no-crash --json` with
//!   `--workers 1` and `--workers 2`: messages per second and the p99 round trip
//!   from the load generator's 200 connections.
//!
//! The example binaries come from `cargo build --release -p mproc --examples`
//! (`scripts/bench.sh` builds them), next to this binary's folder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::anchors::{PyAnchor, run_capture};
use crate::{Area, Compare, Config, Contender, Figure, Local, Result, Role, median};

/// Rows of the analysis data set: the example's own default (the issue's "a few
/// million rows"), so that what is measured is what `cargo run --example analysis`
/// does. The fixed costs (starting the pool, the last chunk's tail) weigh less on it
/// than on a smaller file, as they would on a real data set.
pub const ANALYSIS_ROWS: u64 = 4_000_000;
/// Load-generator connections for the game server.
pub const GAME_CLIENTS: usize = 200;
/// Seconds of load per game-server sample.
pub const GAME_SECONDS: f64 = 2.0;

/// `<target>/release/examples/<name>`, beside this benchmark binary.
fn example(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or("the benchmark binary has no folder")?;
    let path = dir.join("examples").join(name);
    if !path.is_file() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p mproc --examples`",
            path.display()
        )
        .into());
    }
    Ok(path)
}

/// Runs an example with `args` and returns the JSON line it printed last.
fn run_json(bin: &Path, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    let out = run_capture(cmd, Duration::from_secs(300))?;
    out.lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .map(str::to_owned)
        .ok_or_else(|| format!("{} printed no JSON line", bin.display()).into())
}

/// The number after `"key":` in a flat JSON line.
fn json_number(line: &str, key: &str) -> Result<f64> {
    let at = line
        .find(&format!("\"{key}\":"))
        .ok_or_else(|| format!("no {key} in {line}"))?;
    let rest = &line[at + key.len() + 3..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Ok(rest[..end].trim().parse()?)
}

/// The game server under load with 1 and 2 workers: four figures from each run.
struct GameServer {
    bin: PathBuf,
}

impl Contender for GameServer {
    fn label(&self) -> String {
        "mproc game_server example".into()
    }

    fn role(&self) -> Role {
        Role::Mproc
    }

    fn round(&mut self, cfg: &Config) -> Result<Vec<Figure>> {
        let mut figures = Vec::new();
        for workers in [1, 2] {
            let (mut rate, mut p99) = (Vec::new(), Vec::new());
            for _ in 0..cfg.repeats {
                let line = run_json(
                    &self.bin,
                    &[
                        "--workers",
                        &workers.to_string(),
                        "--load",
                        &GAME_CLIENTS.to_string(),
                        "--seconds",
                        &GAME_SECONDS.to_string(),
                        "--no-crash",
                        "--json",
                    ],
                )?;
                rate.push(json_number(&line, "msgs_per_s")?);
                p99.push(json_number(&line, "p99_us")?);
            }
            figures.push(Figure {
                name: format!("mproc_game_msgs_per_s_{workers}w"),
                value: median(&rate),
                unit: "msgs/s".into(),
            });
            figures.push(Figure {
                name: format!("mproc_game_p99_us_{workers}w"),
                value: median(&p99),
                unit: "us".into(),
            });
        }
        Ok(figures)
    }
}

/// The `programs` area.
pub fn area(_cfg: &Config) -> Result<Area> {
    let analysis = example("analysis")?;
    let game = example("game_server")?;
    // The data set, made once (the example caches it under its target folder).
    let target = analysis
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .ok_or("no target folder above the examples")?
        .to_path_buf();
    let data = target
        .join("mproc-examples")
        .join(format!("trips-{ANALYSIS_ROWS}.csv"));
    if !data.is_file() {
        let mut cmd = Command::new(&analysis);
        cmd.args(["--rows", &ANALYSIS_ROWS.to_string(), "--json"])
            .env("CARGO_TARGET_DIR", &target);
        run_capture(cmd, Duration::from_secs(300))?;
    }
    let data_arg = data.display().to_string();
    let (bin, arg) = (analysis.clone(), data_arg.clone());
    let parallel = Local::new("mproc analysis example (2 worker processes)", Role::Mproc).measure(
        "mproc_analysis_2w_s",
        "s",
        move || {
            let line = run_json(&bin, &["--data", &arg, "--workers", "2", "--json"])?;
            json_number(&line, "parallel_s")
        },
    );
    let (bin, arg) = (analysis, data_arg.clone());
    let serial = Local::new(
        "the same aggregate, serially in one Rust process",
        Role::InProcess,
    )
    .measure("rust_serial_analysis_s", "s", move || {
        let line = run_json(
            &bin,
            &["--data", &arg, "--workers", "2", "--check", "--json"],
        )?;
        json_number(&line, "serial_s")
    });
    Ok(Area {
        name: "programs",
        title: "Programs built with mproc (issue 17)",
        description: format!(
            "`examples/analysis.rs` on {ANALYSIS_ROWS} generated trips (seconds for the whole \
             group-by with a pool of 2 worker processes) against Python's `multiprocessing.Pool(2)` \
             with the `csv` module on the same file (`benches/py/py_analysis.py`) and against the \
             same aggregate computed serially in Rust. `examples/game_server.rs` under its load \
             generator ({GAME_CLIENTS} connections, {GAME_SECONDS} s a sample, no crash): messages \
             per second and p99 round trip, 1 worker process against 2."
        ),
        mproc_pending: None,
        contenders: vec![
            Box::new(parallel),
            Box::new(serial),
            Box::new(PyAnchor::new("py_analysis.py").arg(data_arg).arg("2")),
            Box::new(GameServer { bin: game }),
        ],
        comparisons: vec![
            Compare::new("mproc_analysis_2w_s", "py_analysis_s")
                .at_most(0.05, "issue 17: ≥ 20× Python (time ratio ≤ 0.05)"),
            Compare::new("mproc_analysis_2w_s", "rust_serial_analysis_s").at_most(
                1.0 / 1.8,
                "issue 17: ≥ 1.8× serial on 2 CPUs (time ratio ≤ 0.56)",
            ),
            Compare::new("mproc_game_msgs_per_s_2w", "mproc_game_msgs_per_s_1w"),
            Compare::new("mproc_game_p99_us_2w", "mproc_game_p99_us_1w"),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_are_read() {
        let line = r#"{"rows":3,"parallel_s":0.25,"serial_s":null,"p99_us":1200}"#;
        assert_eq!(json_number(line, "parallel_s").unwrap(), 0.25);
        assert_eq!(json_number(line, "p99_us").unwrap(), 1200.0);
        assert!(json_number(line, "serial_s").is_err());
        assert!(json_number(line, "missing").is_err());
    }
}
