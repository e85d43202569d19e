//! The `mproc` binary run as a user runs it.
//!
//! `mproc selftest` is also the check that `StartMethod::Spawn` works from a plain `main`
//! binary with no set-up line (the library's own tests cover unit tests, integration
//! tests, doc tests and examples).

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `mproc args...`, killing it if it has not finished within `limit`.
fn mproc(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mproc"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start mproc");
    // Read both pipes on threads so that a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).map(|_| v)
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).map(|_| v)
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for mproc") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mproc {args:?} did not finish within {limit:?}");
        }
        // Polling a program that runs for up to seconds: 10 ms steps are plenty.
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: t_out.join().unwrap().unwrap(),
        stderr: t_err.join().unwrap().unwrap(),
    }
}

#[test]
fn selftest_starts_children_with_every_method_from_a_main_binary() {
    let out = mproc(&["selftest", "--rounds", "2"], Duration::from_secs(120));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for method in ["Forkserver", "Spawn", "Fork"] {
        assert_eq!(text.matches(&format!("{method}: ok")).count(), 2, "{text}");
    }
}

#[test]
fn info_names_the_default_start_method() {
    let out = mproc(&["info"], Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("default start method: Forkserver"), "{text}");
}

#[test]
fn a_bad_argument_is_refused_with_usage() {
    let out = mproc(&["selftest", "--rounds", "many"], Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--rounds"), "{err}");
}
