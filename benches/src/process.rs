//! Process start+join latency (issue 2).
//!
//! Workload: start a child that runs an empty task, then join it; sequentially, [`N`] per
//! sample, reported as µs per process. Contenders:
//! - mproc `Process` with each [`StartMethod`] (plus a batch view: start [`BATCH`], then join
//!   them, as `py_process_batch_start_join_*` does);
//! - the floor of `Spawn`: a Rust `fn main() {}` binary (`src/bin/empty_main.rs`, built by the
//!   same cargo invocation and profile as this benchmark), started with `posix_spawn` and with
//!   `std::process::Command`, then reaped;
//! - the OS floor `c/os_spawn.c` (fork+waitpid, posix_spawn/fork+exec of a static binary);
//! - Python's `multiprocessing` (`py_process_start.py`, fork/spawn/forkserver).
//!
//! `StartMethod::Spawn` re-executes this very binary; mproc's load-time hook runs the task
//! before `main`, so nothing here has to cooperate.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;

use mproc::process::{Process, StartMethod};

use crate::anchors::{CAnchor, CArg, PyAnchor};
use crate::{Area, Compare, Config, Local, Result, Role, time_per_op};

/// Processes per sample of a sequential start+join figure. One sample of mproc's
/// takes only tens of milliseconds, so a VM hiccup moves a median of few samples:
/// four times Python's count keeps the figure steady.
pub const N: usize = 200;

/// Processes per sample of a batch figure (start them all, then join them all),
/// as many as `py_process_start.py` starts.
pub const BATCH: usize = 50;

/// The empty task.
fn empty(_: ()) {}

/// One start+join of a child that does nothing: the workload every in-process contender
/// implements.
pub trait StartJoin {
    /// Starts one child and waits for it to finish successfully.
    fn start_join(&mut self) -> Result<()>;
}

/// mproc `Process` with a given start method.
pub struct MprocStart(pub StartMethod);

impl StartJoin for MprocStart {
    fn start_join(&mut self) -> Result<()> {
        let p = Process::builder()
            .start_method(self.0)
            .start(empty, ())
            .map_err(|e| format!("start ({:?}): {e:?}", self.0))?;
        p.join()
            .map_err(|e| format!("join ({:?}): {e:?}", self.0))?;
        Ok(())
    }
}

/// Starts [`BATCH`] mproc processes, then joins them all; µs per process.
fn mproc_batch(method: StartMethod) -> Result<f64> {
    let t0 = std::time::Instant::now();
    let mut ps = Vec::with_capacity(BATCH);
    for _ in 0..BATCH {
        ps.push(
            Process::builder()
                .start_method(method)
                .start(empty, ())
                .map_err(|e| format!("start ({method:?}): {e:?}"))?,
        );
    }
    for p in ps {
        p.join().map_err(|e| format!("join ({method:?}): {e:?}"))?;
    }
    Ok(t0.elapsed().as_secs_f64() / BATCH as f64 * 1e6)
}

/// `posix_spawn` + `waitpid` of a binary (no arguments, the parent's environment).
pub struct PosixSpawn {
    path: CString,
}

impl PosixSpawn {
    /// Spawns `path`.
    pub fn new(path: &Path) -> Result<PosixSpawn> {
        Ok(PosixSpawn {
            path: CString::new(path.as_os_str().as_encoded_bytes())?,
        })
    }
}

impl StartJoin for PosixSpawn {
    fn start_join(&mut self) -> Result<()> {
        unsafe extern "C" {
            static environ: *const *mut libc::c_char;
        }
        let argv: [*mut libc::c_char; 2] = [self.path.as_ptr().cast_mut(), std::ptr::null_mut()];
        let mut pid: libc::pid_t = 0;
        // SAFETY:
        // - `self.path` is a NUL-terminated string that outlives the call; `argv` is a
        //   NULL-terminated array of such strings, alive for the call.
        // - `environ` is the process environment, NULL-terminated (libc's own global); no
        //   thread of this benchmark modifies the environment while it runs.
        // - null file actions and attributes mean "inherit everything".
        let rc = unsafe {
            libc::posix_spawn(
                &mut pid,
                self.path.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                argv.as_ptr(),
                environ,
            )
        };
        if rc != 0 {
            return Err(format!(
                "posix_spawn {:?}: {}",
                self.path,
                std::io::Error::from_raw_os_error(rc)
            )
            .into());
        }
        let mut status = 0;
        // SAFETY: `pid` is our child, not yet reaped; `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r != pid {
            return Err(format!("waitpid: {}", std::io::Error::last_os_error()).into());
        }
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            return Err(format!("{:?} failed (wait status {status})", self.path).into());
        }
        Ok(())
    }
}

/// `fork()`, the child `_exit(0)`s at once, `waitpid()`: the fork floor measured from this
/// benchmark's own process (a fork's cost grows with the parent's mappings, and this parent
/// is the one mproc's `Fork` forks).
pub struct ForkExit;

impl StartJoin for ForkExit {
    fn start_join(&mut self) -> Result<()> {
        // SAFETY: the child calls only `_exit`, which is async-signal-safe, so forking a
        // process that may have other threads is sound.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()).into());
        }
        if pid == 0 {
            // SAFETY: `_exit` ends the child at once, running nothing of the parent's state.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: `pid` is our child, not yet reaped; `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r != pid || !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            return Err(format!("fork child: waitpid {r}, status {status}").into());
        }
        Ok(())
    }
}

/// `std::process::Command::new(path).status()` (what a Rust user writes).
pub struct CommandStart {
    path: PathBuf,
}

impl StartJoin for CommandStart {
    fn start_join(&mut self) -> Result<()> {
        let st = Command::new(&self.path).status()?;
        if !st.success() {
            return Err(format!("{} failed ({st})", self.path.display()).into());
        }
        Ok(())
    }
}

/// µs per start+join over `n` sequential runs.
pub fn per_process_us(w: &mut impl StartJoin, n: usize) -> Result<f64> {
    Ok(time_per_op(n, || w.start_join())?.as_secs_f64() * 1e6)
}

/// The `empty_main` binary next to this benchmark's binary.
pub fn empty_main_path() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let p = exe.with_file_name("empty_main");
    if !p.is_file() {
        return Err(format!(
            "{} not found: build all benchmark binaries first (cargo build --release -p mproc-benches --bins)",
            p.display()
        )
        .into());
    }
    Ok(p)
}

const METHODS: [(StartMethod, &str); 3] = [
    (StartMethod::Fork, "fork"),
    (StartMethod::Forkserver, "forkserver"),
    (StartMethod::Spawn, "spawn"),
];

const RUST_FLOOR: &str = "rust fn main(){} (empty_main)";

/// The Rust floors: `posix_spawn` and `Command` of `empty`, and a fork from this process.
fn rust_floor(empty: &Path) -> Result<Local> {
    let mut ps = PosixSpawn::new(empty)?;
    let mut cs = CommandStart {
        path: empty.to_path_buf(),
    };
    Ok(Local::new(RUST_FLOOR, Role::Floor)
        .warmup({
            let mut w = PosixSpawn::new(empty)?;
            move || w.start_join()
        })
        .measure("rust_empty_posix_spawn_wait", "us/process", move || {
            per_process_us(&mut ps, N)
        })
        .measure("rust_empty_command_status", "us/process", move || {
            per_process_us(&mut cs, N)
        })
        .measure("rust_fork_exit_waitpid", "us/process", || {
            per_process_us(&mut ForkExit, N)
        }))
}

/// The `process_start` area.
pub fn area(_cfg: &Config) -> Result<Area> {
    let mut mproc = Local::new("mproc Process", Role::Mproc).warmup(|| {
        // One untimed process per method: starts the forkserver, faults in the machinery.
        for (m, _) in METHODS {
            MprocStart(m).start_join()?;
        }
        Ok(())
    });
    for (m, name) in METHODS {
        mproc = mproc.measure(
            format!("mproc_process_start_join_{name}"),
            "us/process",
            move || per_process_us(&mut MprocStart(m), N),
        );
    }
    for (m, name) in METHODS {
        mproc = mproc.measure(
            format!("mproc_process_batch_start_join_{name}"),
            "us/process",
            move || mproc_batch(m),
        );
    }

    // Without the `empty_main` binary (a test build has none) the Rust floor fails when
    // it is prepared, with the reason; the area itself can still be listed and checked.
    let rust_floor = match empty_main_path() {
        Ok(empty) => rust_floor(&empty)?,
        Err(e) => {
            let why = e.to_string();
            Local::new(RUST_FLOOR, Role::Floor).warmup(move || Err(why.clone().into()))
        }
    };

    let target_floor = "issue 2: within 2× of its floor";
    Ok(Area {
        name: "process_start",
        title: "Process start+join (issue 2)",
        description: format!(
            "Start+join of an empty task, {N} processes one after the other per sample (µs per process). \
             Floors: `Fork` and `Forkserver` against fork+`_exit`+waitpid (`c/os_spawn.c`); `Spawn` against \
             `posix_spawn`+waitpid of a Rust `fn main() {{}}` binary built by the same cargo invocation and \
             profile (`benches/src/bin/empty_main.rs`). `rust_fork_exit_waitpid` is fork+`_exit`+waitpid \
             from this benchmark's own process, for reference (a fork costs more in a bigger parent). Python: `py_process_start.py` (`python3 -S`, an empty \
             function, 50 processes a sample, fork/spawn/forkserver). The batch rows start {BATCH} processes, then join them."
        ),
        mproc_pending: None,
        contenders: vec![
            Box::new(mproc),
            Box::new(rust_floor),
            Box::new(CAnchor::new("os_spawn").arg(CArg::EmptyStatic)),
            Box::new(PyAnchor::new("py_process_start.py")),
        ],
        comparisons: vec![
            Compare::new("mproc_process_start_join_fork", "os_fork_exit_waitpid")
                .at_most(2.0, target_floor),
            Compare::new(
                "mproc_process_start_join_fork",
                "py_process_start_join_fork",
            )
            .at_most(0.25, "issue 2: ≥ 4× faster than Python"),
            Compare::new(
                "mproc_process_start_join_forkserver",
                "os_fork_exit_waitpid",
            )
            .at_most(2.0, target_floor),
            Compare::new(
                "mproc_process_start_join_forkserver",
                "py_process_start_join_forkserver",
            )
            .at_most(0.1, "issue 2: ≥ 10× faster than Python"),
            Compare::new(
                "mproc_process_start_join_spawn",
                "rust_empty_posix_spawn_wait",
            )
            .at_most(2.0, target_floor),
            Compare::new(
                "mproc_process_start_join_spawn",
                "py_process_start_join_spawn",
            )
            .at_most(0.1, "issue 2: ≥ 10× faster than Python"),
            Compare::new("mproc_process_start_join_fork", "rust_fork_exit_waitpid"),
            Compare::new(
                "mproc_process_start_join_forkserver",
                "rust_fork_exit_waitpid",
            ),
            Compare::new(
                "mproc_process_start_join_spawn",
                "rust_empty_command_status",
            ),
            Compare::new(
                "mproc_process_start_join_spawn",
                "os_posix_spawn_static_wait",
            ),
            Compare::new(
                "mproc_process_batch_start_join_fork",
                "py_process_batch_start_join_fork",
            ),
            Compare::new(
                "mproc_process_batch_start_join_forkserver",
                "py_process_batch_start_join_forkserver",
            ),
            Compare::new(
                "mproc_process_batch_start_join_spawn",
                "py_process_batch_start_join_spawn",
            ),
        ],
    })
}
