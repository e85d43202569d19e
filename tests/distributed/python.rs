//! The Python `bullmq` package in a throwaway virtualenv under the target
//! directory, made once per test run.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

const BULLMQ: &str = "bullmq==3.4.4";

/// The venv's python, creating the venv and installing `bullmq` on first use.
pub fn venv() -> PathBuf {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    VENV.get_or_init(make)
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn make() -> Result<PathBuf, String> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("py-bullmq");
    let py = dir.join("bin/python");
    let ok = |c: &mut Command| c.status().map(|s| s.success()).unwrap_or(false);
    if py.is_file() && ok(Command::new(&py).args(["-c", "import bullmq"])) {
        return Ok(py);
    }
    let python = std::env::var("MPROC_PYTHON").unwrap_or_else(|_| "python3".into());
    if !ok(Command::new(&python).arg("-m").arg("venv").arg(&dir)) {
        return Err(format!(
            "cannot make a virtualenv with `{python} -m venv {}`: the interop tests need \
             Python 3 with venv (apt-get install -y python3-venv)",
            dir.display()
        ));
    }
    let out = Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            BULLMQ,
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "cannot pip install {BULLMQ} into {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(py)
}

/// Runs `script` with `args`; its stdout, or a panic with its stderr.
pub fn run(py: &PathBuf, script: &str, args: &[&str]) -> String {
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("cannot run the venv's python");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
