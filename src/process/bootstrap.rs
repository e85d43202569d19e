//! The child's side: taking over a freshly started process and running its task.
//!
//! A `Spawn` child is this executable started again with [`BOOTSTRAP_ENV`] set. The
//! load hook (`sys::startup`) calls [`on_load`] before `main`; it removes the marker
//! (so the child's own children start clean), ties the child's life to its parent,
//! reads the [`Job`] and runs it, and the process ends without ever entering `main`.
//! The forkserver is started the same way with another mode. `Fork` and forkserver
//! children enter at [`run_job`] directly.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use crate::codec::Message;
use crate::process::protocol::{
    BOOTSTRAP_ENV, CHANNEL_FD, Job, MAX_FRAME, PanicReport, Report, StartFault,
};
use crate::process::{forkserver, info, registry};
use crate::sys::process as os;
use crate::sys::socket;
use crate::wire;

/// Called by the load hook in every process that links mproc, before `main`.
pub(crate) fn on_load() {
    let Some(value) = std::env::var_os(BOOTSTRAP_ENV) else {
        return;
    };
    os::remove_env_single_threaded(BOOTSTRAP_ENV);
    let value = value.to_string_lossy().into_owned();
    let (mode, parent) = value.split_once(':').unwrap_or((value.as_str(), "0"));
    let parent: u32 = parent.parse().unwrap_or(0);
    os::ignore_sigpipe();
    if !os::die_with_parent(parent) {
        // The parent is already gone; nobody is waiting for this process.
        os::exit_now(1);
    }
    let Some(channel) = os::take_inherited_fd(CHANNEL_FD) else {
        let _ = writeln!(
            std::io::stderr(),
            "mproc: started as a child but descriptor {CHANNEL_FD} is not open"
        );
        os::exit_now(1);
    };
    match mode {
        "spawn" => {
            let msg = match wire::recv(channel.as_fd(), MAX_FRAME) {
                Ok(Some(msg)) => msg,
                // The parent went away before sending the task.
                _ => os::exit_now(1),
            };
            let job: Job = match crate::codec::decode_bytes(&msg.bytes, Vec::new()) {
                Ok(job) => job,
                Err(e) => {
                    let _ = send_report(
                        &channel,
                        &Report::Failed(format!("cannot decode the job: {e}")),
                        &[],
                    );
                    os::exit_now(1);
                }
            };
            run_job(channel, job, msg.fds)
        }
        "forkserver" => forkserver::serve(channel),
        other => {
            let _ = writeln!(std::io::stderr(), "mproc: unknown bootstrap mode {other:?}");
            os::exit_now(1);
        }
    }
}

/// Sends `report` to the parent without ever blocking on a full socket: the parent
/// reads its child's reports once the child has exited (one wake-up per process
/// instead of one per report), so a report that might not fit in the socket's send
/// buffer travels in an anonymous file instead ([`Report::Spilled`]).
fn send_report(
    channel: &OwnedFd,
    report: &Report,
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> std::io::Result<()> {
    // Most reports are a few bytes: encoded on the stack, they cost a forked child
    // no allocation (and no page faults on the inherited heap).
    let mut small = [0u8; 256];
    let heap;
    let bytes: &[u8] = match postcard::to_slice(report, &mut small) {
        Ok(encoded) => encoded,
        Err(_) => {
            heap = postcard::to_stdvec(report).map_err(std::io::Error::other)?;
            &heap
        }
    };
    if bytes.len() <= inline_limit(channel, bytes.len()) {
        return wire::send(channel.as_fd(), bytes, fds);
    }
    let file = crate::sys::memory::memfd_with(c"mproc-report", bytes)?;
    let spilled = postcard::to_stdvec(&Report::Spilled {
        len: bytes.len() as u64,
    })
    .map_err(std::io::Error::other)?;
    let mut all = Vec::with_capacity(fds.len() + 1);
    all.push(file.as_fd());
    all.extend_from_slice(fds);
    wire::send(channel.as_fd(), &spilled, &all)
}

/// The largest report sent inline: a quarter of the socket's send buffer (a child
/// sends at most two reports, the first a few bytes), so that the send completes
/// with nobody reading; at most 64 KiB. Up to 1 KiB always fits (no socket buffer
/// is smaller than about 4.5 KiB), without asking the kernel.
fn inline_limit(channel: &OwnedFd, len: usize) -> usize {
    const ALWAYS_FITS: usize = 1024;
    if len <= ALWAYS_FITS {
        return ALWAYS_FITS;
    }
    socket::send_buffer_size(channel.as_fd())
        .map_or(ALWAYS_FITS, |size| (size / 4).clamp(ALWAYS_FITS, 64 * 1024))
}

/// The text of a panic payload (`&str` or `String`; anything else is named).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

/// Where a panic of the running task goes.
struct PanicContext {
    /// The process running the task (a forked child inherits a stale copy).
    pid: u32,
    /// The kernel id of the thread running the task (`gettid`).
    task_thread: u32,
    /// The task's panic, recorded by the hook for `run_job` (or a pool worker).
    caught: Option<PanicReport>,
    /// The control channel to the parent.
    channel: OwnedFd,
}

static PANIC_CONTEXT: Mutex<Option<PanicContext>> = Mutex::new(None);
static PANIC_HOOK: std::sync::Once = std::sync::Once::new();

fn panic_context() -> std::sync::MutexGuard<'static, Option<PanicContext>> {
    PANIC_CONTEXT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Holds the panic context's lock across a `fork` (see `info::fork_guard`).
pub(crate) fn fork_guard() -> std::sync::MutexGuard<'static, impl Sized> {
    panic_context()
}

/// Installs, once per process image, a panic hook that reports a task's panic
/// (message, location, backtrace) and hands every other panic to the hook that was
/// there before.
///
/// A `Fork` parent calls this *before* forking: the hook's lock in std may be held
/// by another thread at the moment of a fork (a thread that is panicking), and a
/// child that then called `set_hook` would wait for it forever. Installed in the
/// parent, the hook is simply inherited.
pub(crate) fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !report_task_panic(info) {
                previous(info);
            }
        }));
    });
}

/// Sets up, in a process that is about to fork children (the forkserver, a `Fork`
/// parent), what every child would otherwise set up for itself: the panic hook,
/// this thread's codec state (whose first use registers a thread-local destructor,
/// which binds a dynamic symbol lazily), std's stdout and stderr. A child inherits
/// all of it; set up in each child instead, it costs a dozen page faults per
/// child (measured: 36 down to 22 for a forkserver child running an empty task).
pub(crate) fn prepare_to_fork() {
    install_panic_hook();
    let _ = crate::codec::encode(&());
    let _ = crate::codec::decode_bytes::<()>(&[], Vec::new());
    let _ = std::io::stdout();
    let _ = std::io::stderr();
}

/// Takes the last panic recorded on the task's thread of this process, if any: for
/// code that runs many tasks in one child (a pool worker) and catches their panics.
pub(crate) fn take_task_panic() -> Option<PanicReport> {
    let mut guard = panic_context();
    let ctx = guard.as_mut().filter(|c| c.pid == os::getpid())?;
    ctx.caught.take()
}

/// Records (or, under `panic = "abort"`, sends) a panic of the task; `false` when
/// this process runs no task, so the previous hook should handle it.
fn report_task_panic(info: &std::panic::PanicHookInfo<'_>) -> bool {
    let mut guard = panic_context();
    let Some(ctx) = guard.as_mut().filter(|c| c.pid == os::getpid()) else {
        return false;
    };
    let report = PanicReport {
        message: panic_message(info.payload()),
        location: info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())),
        backtrace: std::backtrace::Backtrace::force_capture().to_string(),
    };
    if os::gettid() != ctx.task_thread {
        let name = std::thread::current()
            .name()
            .unwrap_or("<unnamed>")
            .to_string();
        let _ = writeln!(
            std::io::stderr(),
            "thread '{name}' panicked at {}:\n{}",
            report.location.as_deref().unwrap_or("?"),
            report.message
        );
    } else if cfg!(panic = "abort") {
        let _ = send_report(&ctx.channel, &Report::Panicked(report), &[]);
    } else {
        ctx.caught = Some(report);
    }
    true
}

/// Runs `job` in this process, reports its outcome on `channel`, and exits.
///
/// For an empty task this allocates nothing: in a forked child, every heap page
/// written is a page copied.
pub(crate) fn run_job(channel: OwnedFd, job: Job, mut arg_fds: Vec<OwnedFd>) -> ! {
    let Job {
        entry,
        name,
        daemon,
        parent,
        args,
        fault,
        contain,
        logs,
        memory_limit,
    } = job;
    if let Some(level) = logs {
        if !arg_fds.is_empty() {
            crate::observe::child::install(arg_fds.remove(0), level_filter(level));
        }
    }
    if let Some(limit) = memory_limit {
        if !arg_fds.is_empty() {
            let report = arg_fds.remove(0);
            // Rust's allocation-error handler prints a backtrace when these ask for
            // one, and capturing it clobbers the `errno` that tells a failed
            // allocation from another abort (`sys::limits`). This process has one
            // thread here: the environment may change.
            os::remove_env_single_threaded("RUST_BACKTRACE");
            os::remove_env_single_threaded("RUST_LIB_BACKTRACE");
            let limited = crate::sys::limits::report_allocation_failure_aborts(report)
                .and_then(|()| crate::sys::limits::limit_data(limit));
            if let Err(e) = limited {
                let _ = send_report(
                    &channel,
                    &Report::Failed(format!("cannot set the memory limit of {limit} bytes: {e}")),
                    &[],
                );
                os::exit_now(1);
            }
        }
    }
    if contain {
        // Descendants stay in this group, so that they can be killed with us.
        let _ = os::own_process_group();
    }
    info::set_current(name, daemon, Some(parent));

    // A panic on the task's thread is reported with its location and backtrace.
    install_panic_hook();
    *panic_context() = Some(PanicContext {
        pid: os::getpid(),
        task_thread: os::gettid(),
        caught: None,
        channel,
    });

    match fault {
        StartFault::None => {}
        StartFault::ExitBeforeHandshake => os::exit_now(3),
        StartFault::StallHandshake(ms) => std::thread::sleep(std::time::Duration::from_millis(ms)),
    }
    // A parent that dropped its handle no longer listens; the task runs anyway,
    // as a Python process whose object was discarded does.
    report(&Report::Started, &[]);
    let input = Message {
        bytes: args,
        fds: arg_fds,
    };
    let outcome = std::panic::catch_unwind(move || entry.invoke(input));
    let code = match outcome {
        Ok(Ok(result)) => {
            let fds: Vec<_> = result.fds.iter().map(|f| f.as_fd()).collect();
            report(&Report::Returned(result.bytes), &fds);
            0
        }
        Ok(Err(reason)) => {
            report(&Report::Failed(reason), &[]);
            1
        }
        Err(payload) => {
            let caught = panic_context().as_mut().and_then(|c| c.caught.take());
            let panicked = caught.unwrap_or_else(|| PanicReport {
                message: panic_message(&*payload),
                location: None,
                backtrace: String::new(),
            });
            report(&Report::Panicked(panicked), &[]);
            1
        }
    };
    // As at the normal exit of any process: daemon children are terminated,
    // the others waited for.
    registry::shutdown_children();
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    os::exit_now(code)
}

/// The `log::LevelFilter` a [`Job`]'s `logs` number stands for.
fn level_filter(n: u8) -> log::LevelFilter {
    match n {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

/// Sends `r` on the channel of the running task (see [`send_report`]). A parent that
/// stopped listening is not this process's problem: the task runs to its end.
///
/// The context's lock is held across the send: the send never waits (a report that
/// might not fit in the socket goes to a file), and the only other taker is the
/// panic hook of a thread the task left running, which then waits that long.
fn report(r: &Report, fds: &[std::os::fd::BorrowedFd<'_>]) {
    if let Some(ctx) = panic_context().as_ref() {
        let _ = send_report(&ctx.channel, r, fds);
    }
}
