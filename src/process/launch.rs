//! Starting a child with each start method.
//!
//! Children are started from the main thread or from one long-lived "launcher"
//! thread. The reason is `PR_SET_PDEATHSIG`: the kernel sends the death signal when
//! the *thread* that created the child exits, not the process, so a child started
//! from a short-lived thread (a test, a scoped worker) would be killed with it.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use crate::process::protocol::{BOOTSTRAP_ENV, CHANNEL_FD, Job};
use crate::process::registry::ExitSource;
use crate::process::{SpawnError, StartMethod, bootstrap, forkserver, info, registry};
use crate::sys::process as os;
use crate::sys::socket;
use crate::wire;

/// What the parent needs to know about a child it started.
pub(crate) struct Launched {
    pub(crate) pid: u32,
    pub(crate) pidfd: OwnedFd,
    pub(crate) control: OwnedFd,
    pub(crate) exit: ExitSource,
    /// Read ends of the child's stdout and stderr, when captured.
    pub(crate) output: Option<(OwnedFd, OwnedFd)>,
}

/// One child to start.
pub(crate) struct Request {
    pub(crate) job: Job,
    pub(crate) arg_fds: Vec<OwnedFd>,
    pub(crate) capture: bool,
    pub(crate) method: StartMethod,
    pub(crate) handshake_timeout: Duration,
}

/// Pipes for a captured stdout and stderr: `(read ends, write ends)`.
pub(crate) type CapturePipes = ((OwnedFd, OwnedFd), (OwnedFd, OwnedFd));

pub(crate) fn capture_pipes(capture: bool) -> Result<Option<CapturePipes>, SpawnError> {
    if !capture {
        return Ok(None);
    }
    let (out_r, out_w) = socket::pipe().map_err(SpawnError::io("pipe"))?;
    let (err_r, err_w) = socket::pipe().map_err(SpawnError::io("pipe"))?;
    Ok(Some(((out_r, err_r), (out_w, err_w))))
}

/// Starts the child described by `req`.
pub(crate) fn launch(req: Request) -> Result<Launched, SpawnError> {
    crate::sys::startup::linked();
    if std::env::var_os(BOOTSTRAP_ENV).is_some() {
        return Err(SpawnError::BootstrapMissing);
    }
    match req.method {
        StartMethod::Spawn => on_launcher(move || spawn(req)),
        StartMethod::Fork => on_launcher(move || fork(req)),
        StartMethod::Forkserver => forkserver::launch(req),
    }
}

type Work = Box<dyn FnOnce() + Send>;

static LAUNCHER: Mutex<Option<(u32, mpsc::Sender<Work>)>> = Mutex::new(None);

/// Runs `f` on a thread that lives as long as the process: the main thread when
/// called from it, the launcher thread otherwise.
pub(crate) fn on_launcher<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    if os::is_main_thread() {
        return f();
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let work: Work = Box::new(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    let sender = {
        let mut g = LAUNCHER.lock().unwrap_or_else(|e| e.into_inner());
        let me = os::getpid();
        match &*g {
            Some((owner, tx)) if *owner == me => tx.clone(),
            _ => {
                let (tx, rx) = mpsc::channel::<Work>();
                std::thread::Builder::new()
                    .name("mproc-launcher".into())
                    .spawn(move || {
                        for work in rx {
                            work();
                        }
                    })
                    .expect("cannot start the mproc launcher thread");
                *g = Some((me, tx.clone()));
                tx
            }
        }
    };
    sender
        .send(work)
        .expect("the mproc launcher thread is gone");
    match rx.recv().expect("the mproc launcher thread is gone") {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn launcher_fork_guard() -> std::sync::MutexGuard<'static, impl Sized> {
    LAUNCHER.lock().unwrap_or_else(|e| e.into_inner())
}

fn encode_job(job: &Job) -> Result<Vec<u8>, SpawnError> {
    postcard::to_stdvec(job).map_err(|e| SpawnError::Encode(e.to_string()))
}

fn spawn(req: Request) -> Result<Launched, SpawnError> {
    let job_bytes = encode_job(&req.job)?;
    let contain = req.job.contain;
    let (control, child_end) = socket::socketpair().map_err(SpawnError::io("socketpair"))?;
    let pipes = capture_pipes(req.capture)?;
    let mut fd_map: Vec<(BorrowedFd<'_>, i32)> = vec![(child_end.as_fd(), CHANNEL_FD)];
    if let Some((_, (out_w, err_w))) = &pipes {
        fd_map.push((out_w.as_fd(), 1));
        fd_map.push((err_w.as_fd(), 2));
    }
    let marker = format!("spawn:{}", os::getpid());
    let pid = os::spawn_self(&[(BOOTSTRAP_ENV, &marker)], &fd_map, req.job.contain)
        .map_err(SpawnError::io("posix_spawn"))?;
    drop(fd_map);
    drop(child_end);
    let pidfd = pidfd_of_new_child(pid)?;
    let output = pipes.map(|(read_ends, _write_ends)| read_ends);

    // The child reads the job right after its bootstrap; a child that never gets
    // there must not block this send forever.
    let fds: Vec<BorrowedFd<'_>> = req.arg_fds.iter().map(|f| f.as_fd()).collect();
    let sent = socket::set_send_timeout(control.as_fd(), Some(req.handshake_timeout))
        .and_then(|()| wire::send(control.as_fd(), &job_bytes, &fds))
        .and_then(|()| socket::set_send_timeout(control.as_fd(), None));
    match sent {
        Ok(()) => {}
        // The child died before reading; `join` reports how it ended.
        Err(e)
            if e.kind() == std::io::ErrorKind::BrokenPipe
                || e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => {
            let _ = os::pidfd_signal(pidfd.as_fd(), os::SIGKILL);
            let _ = os::pidfd_reap(pidfd.as_fd(), true);
            return Err(SpawnError::Io {
                what: "sending the task to the child",
                source: e,
            });
        }
    }
    Ok(Launched {
        pid,
        pidfd,
        control,
        exit: ExitSource::Direct {
            group: contain.then_some(pid),
        },
        output,
    })
}

/// Opens the pidfd of a direct child just created. When that fails (say, no
/// descriptor is left) the start fails alone: the child is killed and reaped at
/// once, leaving no zombie and no task running unwatched.
fn pidfd_of_new_child(pid: u32) -> Result<OwnedFd, SpawnError> {
    os::pidfd_open(pid).map_err(|e| {
        os::kill_and_reap_pid(pid);
        SpawnError::io("pidfd_open")(e)
    })
}

fn flush_stdio() {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

/// Logs, once per process, that `Fork` is used while other threads run. Counting
/// threads reads `/proc`, so it is done at most every 100 ms, not at every start.
fn warn_if_threaded() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    static WARNED: AtomicBool = AtomicBool::new(false);
    static LAST_CHECK_MS: AtomicU64 = AtomicU64::new(0);
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    if WARNED.load(Ordering::Relaxed) {
        return;
    }
    // Offset by one so that the first call always checks.
    let now_ms = EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
        + 1;
    let last = LAST_CHECK_MS.load(Ordering::Relaxed);
    if last != 0 && now_ms < last + 100 {
        return;
    }
    LAST_CHECK_MS.store(now_ms, Ordering::Relaxed);
    // The launcher thread itself does not count: it only ever waits for work.
    let others = os::thread_count().saturating_sub(if os::is_main_thread() { 1 } else { 2 });
    if others > 0 && !WARNED.swap(true, Ordering::Relaxed) {
        log::warn!(
            "mproc: StartMethod::Fork with {others} other thread(s) running: the child inherits any lock \
             they held at the fork and may deadlock; prefer Forkserver or Spawn"
        );
    }
}

fn fork(req: Request) -> Result<Launched, SpawnError> {
    warn_if_threaded();
    let (control, child_end) = socket::socketpair().map_err(SpawnError::io("socketpair"))?;
    let pipes = capture_pipes(req.capture)?;
    let (output, child_pipes) = match pipes {
        Some((r, w)) => (Some(r), Some(w)),
        None => (None, None),
    };
    flush_stdio();
    let parent = os::getpid();
    // Every lock of ours (and stdio's) is taken across the fork, in one order, so
    // that the child never inherits one held by a thread that does not exist there.
    bootstrap::prepare_to_fork();
    let guards = (
        forkserver::fork_guard(),
        bootstrap::fork_guard(),
        launcher_fork_guard(),
        registry::fork_guard(),
        info::fork_guard(),
        crate::observe::collect::fork_guard(),
        crate::observe::child::fork_guard(),
        std::io::stdout().lock(),
        std::io::stderr().lock(),
    );
    let Request { job, arg_fds, .. } = req;
    let contain = job.contain;
    let pid = os::fork_child(move || {
        drop(guards);
        if !os::die_with_parent(parent) {
            return 1;
        }
        if let Some((out_w, err_w)) = &child_pipes {
            if os::dup_to(out_w.as_fd(), 1).is_err() || os::dup_to(err_w.as_fd(), 2).is_err() {
                return 1;
            }
        }
        drop(child_pipes);
        bootstrap::run_job(child_end, job, arg_fds)
    })
    .map_err(SpawnError::io("fork"))?;
    if contain {
        // The child makes its group too; whichever runs first, it exists from here.
        let _ = os::set_process_group_of(pid);
    }
    let pidfd = pidfd_of_new_child(pid)?;
    Ok(Launched {
        pid,
        pidfd,
        control,
        exit: ExitSource::Direct {
            group: contain.then_some(pid),
        },
        output,
    })
}
