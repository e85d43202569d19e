//! The anchors: this crate's comparison programs, C for the OS floor (`benches/c/os_*.c`)
//! and Python for `multiprocessing` (`benches/py/py_*.py`).
//!
//! Both follow one contract (`c/floor.h`, `py/_bench.py`): stdout has one line per
//! figure, `name<TAB>median<TAB>unit` (the median of `REPEATS` samples), stderr has
//! `#spread` lines. The C programs are compiled (`$CC $CFLAGS -pthread ... -lrt`, default
//! `gcc -O2 -Wall -Wextra`) into the build folder (`<target>/anchors`); the Python scripts
//! run as `$PYTHON $PYFLAGS py/script` (default `python3 -S`) from their own folder, so
//! `_bench.py` is found (also by spawn and forkserver children).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Config, Contender, Figure, Result, Role};

/// Parses `name<TAB>value<TAB>unit` lines; other lines are ignored.
pub fn parse_figures(stdout: &str) -> Vec<Figure> {
    stdout
        .lines()
        .filter_map(|l| {
            let mut it = l.split('\t');
            let (name, value, unit) = (it.next()?, it.next()?, it.next()?);
            let value: f64 = value.trim().parse().ok()?;
            Some(Figure {
                name: name.trim().to_owned(),
                value,
                unit: unit.trim().to_owned(),
            })
        })
        .collect()
}

/// Runs `cmd` to completion with a time limit; returns its stdout. Fails (with the tail of
/// stderr, `#spread` lines left out) on a non-zero exit, a signal or the time limit.
pub fn run_capture(mut cmd: Command, timeout: Duration) -> Result<String> {
    let shown = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{shown} did not finish within {} s and was killed",
                timeout.as_secs()
            )
            .into());
        }
        // Polling the exit of a program that runs for seconds: 20 ms granularity is plenty.
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("#spread"))
            .collect();
        let tail = tail[tail.len().saturating_sub(15)..].join("\n");
        return Err(format!("{shown} failed ({status}):\n{tail}").into());
    }
    Ok(stdout)
}

/// Compiles `src` with `$CC $CFLAGS -pthread -o out src -lrt`.
pub fn compile_c(cfg: &Config, src: &Path, out: &Path, extra: &[&str]) -> Result<()> {
    std::fs::create_dir_all(out.parent().expect("output has a folder"))?;
    let st = Command::new(&cfg.cc)
        .args(&cfg.cflags)
        .args(extra)
        .arg("-pthread")
        .arg("-o")
        .arg(out)
        .arg(src)
        .arg("-lrt")
        .status()
        .map_err(|e| format!("cannot run {}: {e}", cfg.cc))?;
    if !st.success() {
        return Err(format!("{} failed to compile {} ({st})", cfg.cc, src.display()).into());
    }
    Ok(())
}

/// Builds `c/<prog>.c` of the anchors into the build folder; returns the binary's path.
pub fn build_c(cfg: &Config, prog: &str) -> Result<PathBuf> {
    let out = cfg.build_dir.join(prog);
    compile_c(
        cfg,
        &cfg.anchors.join("c").join(format!("{prog}.c")),
        &out,
        &[],
    )?;
    Ok(out)
}

/// Builds `c/empty_main.c` statically (`gcc -O2 -static`), falling back
/// to a dynamic binary with a warning.
pub fn build_empty_static(cfg: &Config) -> Result<PathBuf> {
    let out = cfg.build_dir.join("empty_static");
    let src = cfg.anchors.join("c").join("empty_main.c");
    std::fs::create_dir_all(&cfg.build_dir)?;
    let ok = Command::new(&cfg.cc)
        .args(["-O2", "-static", "-o"])
        .arg(&out)
        .arg(&src)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("warning: static link failed; empty_static is dynamic");
        let st = Command::new(&cfg.cc)
            .args(["-O2", "-o"])
            .arg(&out)
            .arg(&src)
            .status()?;
        if !st.success() {
            return Err(format!("{} failed to compile {}", cfg.cc, src.display()).into());
        }
    }
    Ok(out)
}

/// An argument of a C anchor that is only known once it is built.
#[derive(Clone, Debug)]
pub enum CArg {
    /// A literal argument.
    Text(String),
    /// The path of the static `empty_main` helper (for `os_spawn`).
    EmptyStatic,
}

/// A C program of `benches/c` (the OS floor), run once per round.
pub struct CAnchor {
    prog: String,
    args: Vec<CArg>,
    bin: Option<PathBuf>,
    resolved: Vec<String>,
}

impl CAnchor {
    /// `c/<prog>.c`, with no arguments.
    pub fn new(prog: &str) -> CAnchor {
        CAnchor {
            prog: prog.to_owned(),
            args: Vec::new(),
            bin: None,
            resolved: Vec::new(),
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, a: CArg) -> CAnchor {
        self.args.push(a);
        self
    }
}

impl Contender for CAnchor {
    fn label(&self) -> String {
        format!("c/{}", self.prog)
    }

    fn role(&self) -> Role {
        Role::Floor
    }

    fn prepare(&mut self, cfg: &Config) -> Result<()> {
        self.bin = Some(build_c(cfg, &self.prog)?);
        self.resolved.clear();
        for a in &self.args {
            self.resolved.push(match a {
                CArg::Text(t) => t.clone(),
                CArg::EmptyStatic => build_empty_static(cfg)?.display().to_string(),
            });
        }
        Ok(())
    }

    fn round(&mut self, cfg: &Config) -> Result<Vec<Figure>> {
        let bin = self.bin.as_ref().ok_or("not prepared")?;
        let mut cmd = Command::new(bin);
        cmd.args(&self.resolved)
            .env("REPEATS", cfg.repeats.to_string());
        let figs = parse_figures(&run_capture(cmd, cfg.timeout)?);
        if figs.is_empty() {
            return Err(format!("{} printed no figure", self.prog).into());
        }
        Ok(figs)
    }
}

/// A Python script of `benches/py`, run once per round as `$PYTHON $PYFLAGS script` with
/// `REPEATS`.
pub struct PyAnchor {
    script: String,
    args: Vec<String>,
}

impl PyAnchor {
    /// `benches/py/<script>`.
    pub fn new(script: &str) -> PyAnchor {
        PyAnchor {
            script: script.to_owned(),
            args: Vec::new(),
        }
    }

    /// Adds a command-line argument for the script.
    pub fn arg(mut self, a: impl Into<String>) -> PyAnchor {
        self.args.push(a.into());
        self
    }

    fn path(&self, cfg: &Config) -> PathBuf {
        cfg.anchors.join("py").join(&self.script)
    }
}

impl Contender for PyAnchor {
    fn label(&self) -> String {
        format!("python {}", self.script)
    }

    fn role(&self) -> Role {
        Role::Python
    }

    fn prepare(&mut self, cfg: &Config) -> Result<()> {
        let p = self.path(cfg);
        if !p.is_file() {
            return Err(format!("{} not found", p.display()).into());
        }
        // Fail here, with what to do, rather than once per round.
        let mut check = Command::new(&cfg.python);
        check
            .args(&cfg.pyflags)
            .args(["-c", "import multiprocessing, concurrent.futures"]);
        run_capture(check, Duration::from_secs(60)).map_err(|e| {
            format!(
                "the Python interpreter does not work (set PYTHON to a Python 3 with the standard library): {e}"
            )
        })?;
        Ok(())
    }

    fn round(&mut self, cfg: &Config) -> Result<Vec<Figure>> {
        let path = self.path(cfg);
        let mut cmd = Command::new(&cfg.python);
        cmd.args(&cfg.pyflags)
            .arg(&path)
            .args(&self.args)
            .current_dir(path.parent().expect("script has a folder"))
            .env("REPEATS", cfg.repeats.to_string());
        let figs = parse_figures(&run_capture(cmd, cfg.timeout)?);
        if figs.is_empty() {
            return Err(format!("{} printed no figure", self.script).into());
        }
        Ok(figs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_anchor_lines() {
        let f = parse_figures("a\t1.5\tus/x\n#junk\nb\t2\tMB/s\n");
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].name, "b");
        assert_eq!(f[1].value, 2.0);
        assert_eq!(f[1].unit, "MB/s");
    }

    /// Every comparison program an area names is in this repository and builds: a fresh
    /// clone measures every row (they once lived outside the repository).
    #[test]
    fn every_comparison_program_is_in_the_repository_and_builds() {
        let mut cfg = Config::from_env().expect("the comparison programs are found");
        assert_eq!(cfg.anchors, PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        let build = std::env::temp_dir().join(format!("mproc-bench-test-{}", std::process::id()));
        cfg.build_dir = build.clone();
        // Every area whose comparison side needs nothing beyond this repository
        // (`programs` needs the example binaries, `distributed` a Redis and a venv).
        let areas: [fn(&Config) -> crate::Result<crate::Area>; 14] = [
            crate::process::area,
            crate::queue::area,
            crate::pipe::area,
            crate::sync::area,
            crate::pool::area,
            crate::observe::area,
            crate::threading::area,
            crate::manager::area,
            crate::aio::area,
            crate::scaling_queue::area,
            crate::scaling_pool::area,
            crate::scaling_sync::area,
            crate::scaling_start::area,
            crate::scaling_executor::area,
        ];
        let mut prepared = std::collections::BTreeSet::new();
        for make in areas {
            let mut area = make(&cfg).expect("area");
            for c in &mut area.contenders {
                // This module's contenders (the Rust floors are measured in-process).
                let label = c.label();
                let file = if let Some(prog) = label.strip_prefix("c/") {
                    format!("c/{}.c", prog.trim_end_matches(".c"))
                } else if let Some(script) = label.strip_prefix("python ") {
                    format!("py/{}", script.split_whitespace().next().unwrap_or(script))
                } else {
                    continue;
                };
                c.prepare(&cfg)
                    .unwrap_or_else(|e| panic!("{}: {}: {e}", area.name, c.label()));
                prepared.insert(file);
            }
        }
        let _ = std::fs::remove_dir_all(&build);
        // Each comparison program in the repository is run by one of those areas,
        // except those of the two areas that need more, and the helper `os_spawn`
        // builds for itself.
        let elsewhere = ["py/py_analysis.py", "py/py_rq.py", "c/empty_main.c"];
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        for dir in ["c", "py"] {
            for entry in std::fs::read_dir(root.join(dir)).expect("benches folder") {
                let name = entry.expect("entry").file_name();
                let name = name.to_string_lossy();
                let file = format!("{dir}/{name}");
                let program = (dir == "c" && name.ends_with(".c"))
                    || (dir == "py" && name.starts_with("py_") && name.ends_with(".py"));
                if program && !elsewhere.contains(&file.as_str()) {
                    assert!(
                        prepared.contains(&file),
                        "{file} is in the repository but no area runs it (prepared: {prepared:?})"
                    );
                }
            }
        }
    }
}
