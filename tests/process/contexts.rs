//! `Spawn` re-executes the current binary: it must work from every kind of Rust
//! executable with no set-up. Unit tests (`src/process/tests.rs`), integration
//! tests (this binary) and doc tests (`Builder`'s example) are covered where they
//! live; here, examples are run as real programs (a `main` binary: the `mproc` command
//! line's self-test, `mproc-cli/tests/cli.rs`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::common::watchdog;

fn run(mut cmd: Command) -> String {
    let out = cmd.output().expect("cannot run the program");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The path of example `name`, built if a filtered run did not build it.
fn example(name: &str) -> PathBuf {
    // `cargo test` builds the examples next to the test binaries' `deps` folder.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", name, "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .status()
            .unwrap();
        assert!(status.success(), "cannot build example {name}");
    }
    assert!(path.exists(), "{} was not built", path.display());
    path
}

#[test]
fn spawn_works_from_an_example() {
    let _w = watchdog("example", Duration::from_secs(120));
    // `cargo test` builds the examples next to the test binaries' `deps` folder.
    let demo = example("processes");
    let text = run(Command::new(demo));
    assert!(text.contains("child 'primes-spawn'"), "{text}");
    assert!(text.contains("panicked at examples/processes.rs"), "{text}");
    assert!(text.contains("killed by signal 9 (SIGKILL)"), "{text}");
}

#[test]
fn returning_from_main_stops_daemons_and_waits_for_the_rest() {
    let _w = watchdog("exit policy of main", Duration::from_secs(120));
    let marker = crate::common::temp_path("exit-policy");
    let mut cmd = Command::new(example("exit_policy"));
    cmd.arg(&marker);
    let text = run(cmd);
    let pids: Vec<u32> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(pids.len(), 2, "{text}");
    // The program has exited: the worker must have finished before it did...
    assert_eq!(std::fs::read(&marker).unwrap(), b"finished");
    let _ = std::fs::remove_file(&marker);
    // ...and the daemon must be gone (it would sleep for an hour).
    assert!(
        crate::common::eventually(Duration::from_secs(30), || crate::common::is_dead(pids[0])),
        "daemon {} outlived main",
        pids[0]
    );
}
