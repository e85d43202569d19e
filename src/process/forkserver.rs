//! The forkserver: one clean, single-threaded process that forks children on request.
//!
//! It is this executable started once (like a `Spawn` child) in "forkserver" mode,
//! before `main` and before any user state exists, so forking from it is safe
//! whatever threads the user's process has. Each request carries the job and the
//! child's descriptors; the server forks, answers with the child's pid and a pidfd,
//! and later writes the child's exit status to a pipe the request supplied.
//!
//! The server ends when its client's end of the socket closes (the client exited or
//! was killed, even with `SIGKILL`): it has no death signal of its own, so that it
//! can first kill its children and, for contained ones, their process groups. It
//! leads a process group of its own, so that a group kill aimed at its client (a
//! contained child that uses a forkserver itself) leaves it alive to do so. A start
//! that fails for want of a resource (a descriptor, a process) fails alone: the
//! server and its other children are untouched.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

use crate::process::launch::{Launched, Request, capture_pipes, on_launcher};
use crate::process::protocol::{
    BOOTSTRAP_ENV, CHANNEL_FD, ForkReply, ForkRequest, MAX_FRAME, ServerRequest, encode_status,
};
use crate::process::registry::ExitSource;
use crate::process::{SpawnError, bootstrap};
use crate::sys::process as os;
use crate::sys::socket;
use crate::wire::{self, Received};

struct Server {
    owner: u32,
    sock: OwnedFd,
    pidfd: OwnedFd,
}

static SERVER: Mutex<Option<Server>> = Mutex::new(None);

fn start_server() -> Result<Server, SpawnError> {
    let (sock, server_end) = socket::socketpair().map_err(SpawnError::io("socketpair"))?;
    let marker = format!("forkserver:{}", os::getpid());
    let pid = os::spawn_self(
        &[(BOOTSTRAP_ENV, &marker)],
        &[(server_end.as_fd(), CHANNEL_FD)],
        // A group of its own: killing the client's process group (its parent
        // containing it) must leave the server alive to clean up after it.
        true,
    )
    .map_err(SpawnError::io("posix_spawn of the forkserver"))?;
    let pidfd = os::pidfd_open(pid).map_err(SpawnError::io("pidfd_open"))?;
    Ok(Server {
        owner: os::getpid(),
        sock,
        pidfd,
    })
}

/// Starts the forkserver now instead of at the first `Forkserver` start, so that
/// its start-up cost is not paid by the first child.
pub(crate) fn ensure_started() -> Result<(), SpawnError> {
    server(lock()).map(|_| ())
}

/// Whether `s` is a live server started by this process.
/// Whether `s` is a server of this process (a forked child inherits its parent's
/// handle, which is not its own). A server that has died is found out by the
/// request that fails to reach it, and replaced then.
fn usable(s: &Option<Server>) -> bool {
    s.as_ref().is_some_and(|s| s.owner == os::getpid())
}

/// Makes sure `SERVER` holds a live server. The lock is not held while a new server
/// starts: starting runs on the launcher thread, which itself takes this lock
/// before a `fork` (see `fork_guard`).
fn server(
    mut g: MutexGuard<'static, Option<Server>>,
) -> Result<MutexGuard<'static, Option<Server>>, SpawnError> {
    if usable(&g) {
        return Ok(g);
    }
    let stale = g.take();
    drop(g);
    retire(stale);
    let fresh = on_launcher(start_server)?;
    let mut g = lock();
    if usable(&g) {
        // Another thread started one meanwhile: keep theirs.
        retire(Some(fresh));
    } else {
        *g = Some(fresh);
    }
    Ok(g)
}

/// Stops (if need be) and reaps a server of this process that no longer serves.
fn retire(old: Option<Server>) {
    if let Some(old) = old {
        if old.owner == os::getpid() {
            let _ = os::pidfd_signal(old.pidfd.as_fd(), os::SIGKILL);
            let _ = os::pidfd_reap(old.pidfd.as_fd(), true);
        }
    }
}

fn lock() -> MutexGuard<'static, Option<Server>> {
    SERVER.lock().unwrap_or_else(|e| e.into_inner())
}

/// Holds the server's lock across a `fork` (see `info::fork_guard`).
pub(crate) fn fork_guard() -> MutexGuard<'static, impl Sized> {
    lock()
}

/// Starts `req` as a child of the forkserver.
///
/// A start that fails for want of a resource fails alone: the server is given up
/// (killed, with its children) only when it is gone or the stream to it is out of
/// step, never because this process could not receive a reply's descriptor.
pub(crate) fn launch(req: Request) -> Result<Launched, SpawnError> {
    let Request {
        job,
        arg_fds,
        capture,
        ..
    } = req;
    let bytes = postcard::to_stdvec(&ServerRequest::Fork(ForkRequest { job, capture }))
        .map_err(|e| SpawnError::Encode(e.to_string()))?;
    let (control, child_end) = socket::socketpair().map_err(SpawnError::io("socketpair"))?;
    let (status_r, status_w) = socket::pipe().map_err(SpawnError::io("pipe"))?;
    let pipes = capture_pipes(capture)?;
    let mut fds: Vec<BorrowedFd<'_>> = vec![child_end.as_fd(), status_w.as_fd()];
    if let Some((_, (out_w, err_w))) = &pipes {
        fds.push(out_w.as_fd());
        fds.push(err_w.as_fd());
    }
    fds.extend(arg_fds.iter().map(|f| f.as_fd()));

    let mut g = lock();
    let mut reply = None;
    for _attempt in 0..2 {
        g = server(g)?;
        let srv = g.as_ref().expect("server() installs one");
        // Room for the pidfd the reply brings, taken before the server forks: a
        // process at its descriptor limit learns it here, with nothing started.
        let room = socket::dup(control.as_fd()).map_err(SpawnError::io(
            "reserving a descriptor for the child's pidfd",
        ))?;
        match wire::send_frame(srv.sock.as_fd(), &bytes, &fds) {
            Ok(()) => {}
            // Nothing was written: the server is as before; only this start failed.
            Err((e, false)) if !server_gone(&e) => {
                return Err(SpawnError::io("sending the request to the forkserver")(e));
            }
            // The server died, or half a request is on its way: replace it, once.
            Err(_) => {
                retire(g.take());
                continue;
            }
        }
        drop(room);
        match wire::recv_frame(srv.sock.as_fd(), MAX_FRAME) {
            Ok(Received::Frame(msg)) => {
                reply = Some(msg);
                break;
            }
            Ok(Received::DescriptorsDropped(msg)) => {
                // Another thread took the reserved slot: the child exists but cannot
                // be watched from here. Have the server kill it; the server and its
                // other children go on.
                if let Ok(ForkReply::Started(pid)) = postcard::from_bytes(&msg.bytes) {
                    let kill = postcard::to_stdvec(&ServerRequest::Kill(pid))
                        .map_err(|e| SpawnError::Encode(e.to_string()))?;
                    if wire::send(srv.sock.as_fd(), &kill, &[]).is_err() {
                        retire(g.take());
                    }
                }
                return Err(SpawnError::io(
                    "receiving the child's pidfd from the forkserver",
                )(crate::sys::process::descriptors_dropped()));
            }
            // The server died (for example, it was killed), or the stream is out of
            // step: reap it and start a new one, once.
            Ok(Received::End) | Err(_) => retire(g.take()),
        }
    }
    drop(g);
    let msg =
        reply.ok_or_else(|| SpawnError::Forkserver("the forkserver stopped answering".into()))?;
    let answer: ForkReply = postcard::from_bytes(&msg.bytes)
        .map_err(|e| SpawnError::Forkserver(format!("malformed reply: {e}")))?;
    match answer {
        ForkReply::Started(pid) => {
            let pidfd = msg
                .fds
                .into_iter()
                .next()
                .ok_or_else(|| SpawnError::Forkserver("the reply carried no pidfd".into()))?;
            Ok(Launched {
                pid,
                pidfd,
                control,
                exit: ExitSource::Server(status_r),
                output: pipes.map(|(r, _)| r),
            })
        }
        ForkReply::Failed {
            reason,
            errno: Some(errno),
        } => Err(SpawnError::io(server_step(&reason))(
            std::io::Error::from_raw_os_error(errno),
        )),
        ForkReply::Failed {
            reason,
            errno: None,
        } => Err(SpawnError::Forkserver(reason)),
    }
}

/// Whether a send error means the server is gone.
fn server_gone(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::NotConnected
    )
}

/// The step a server-side failure names (a `'static` text for [`SpawnError`]).
fn server_step(reason: &str) -> &'static str {
    if reason.starts_with("fork") {
        "fork (in the forkserver)"
    } else if reason.starts_with("pidfd_open") {
        "pidfd_open (in the forkserver)"
    } else {
        "receiving the request (in the forkserver)"
    }
}

struct Child {
    pid: u32,
    pidfd: OwnedFd,
    status: OwnedFd,
    /// Whether the child leads a process group of its own (and its descendants die
    /// with it).
    contained: bool,
}

/// Kills what is left of a contained child's process group. Called while the
/// child is unreaped, so the group's id cannot have been reused.
fn kill_descendants(child: &Child) {
    if child.contained {
        let _ = os::signal_group(child.pid, os::SIGKILL);
    }
}

/// The server's loop; runs in the forkserver process until its client goes away.
pub(crate) fn serve(sock: OwnedFd) -> ! {
    bootstrap::prepare_to_fork();
    // The server outlives its client only long enough to clean up: it ends when
    // the client's end of the socket closes (the client exited or was killed),
    // after killing what its children started, which a death signal could not do.
    os::no_death_signal();
    let mut children: Vec<Child> = Vec::new();
    let shut_down = |children: &[Child]| -> ! {
        for c in children {
            let _ = os::pidfd_signal(c.pidfd.as_fd(), os::SIGKILL);
            kill_descendants(c);
        }
        os::exit_now(0)
    };
    loop {
        let mut fds: Vec<(BorrowedFd<'_>, bool)> = vec![(sock.as_fd(), false)];
        fds.extend(children.iter().map(|c| (c.pidfd.as_fd(), false)));
        let ready = match socket::poll(&fds, None) {
            Ok(r) => r,
            Err(_) => shut_down(&children),
        };
        let exited: Vec<usize> = ready[1..]
            .iter()
            .enumerate()
            .filter(|(_, r)| r.readable)
            .map(|(i, _)| i)
            .collect();
        for i in exited.into_iter().rev() {
            let child = children.swap_remove(i);
            kill_descendants(&child);
            if let Ok(Some(exit)) = os::pidfd_reap(child.pidfd.as_fd(), true) {
                let _ = socket::write(child.status.as_fd(), &encode_status(exit));
            }
        }
        if ready[0].readable {
            let msg = match wire::recv_frame(sock.as_fd(), MAX_FRAME) {
                Ok(Received::Frame(msg)) => msg,
                Ok(Received::DescriptorsDropped(_)) => {
                    // This server is at its descriptor limit: the request's
                    // descriptors are lost, so this start fails, and only it.
                    let answer = ForkReply::Failed {
                        reason: "receiving the request's descriptors".into(),
                        errno: os::descriptors_dropped().raw_os_error(),
                    };
                    let bytes = postcard::to_stdvec(&answer).unwrap_or_default();
                    if wire::send(sock.as_fd(), &bytes, &[]).is_err() {
                        shut_down(&children);
                    }
                    continue;
                }
                // The client is gone: so is the reason to exist.
                Ok(Received::End) | Err(_) => shut_down(&children),
            };
            let request = postcard::from_bytes::<ServerRequest>(&msg.bytes);
            let (answer, pidfd) = match request {
                Ok(ServerRequest::Kill(pid)) => {
                    if let Some(c) = children.iter().find(|c| c.pid == pid) {
                        let _ = os::pidfd_signal(c.pidfd.as_fd(), os::SIGKILL);
                        kill_descendants(c);
                    }
                    continue;
                }
                Ok(ServerRequest::Fork(req)) => match fork_one(req, msg.fds, &mut children) {
                    // The client gets its own copy of the pidfd with the reply.
                    Ok(pid) => (
                        ForkReply::Started(pid),
                        children.last().map(|c| c.pidfd.as_fd()),
                    ),
                    Err(failed) => (failed, None),
                },
                Err(e) => (
                    ForkReply::Failed {
                        reason: format!("malformed request: {e}"),
                        errno: None,
                    },
                    None,
                ),
            };
            let bytes = postcard::to_stdvec(&answer).unwrap_or_default();
            let extra: Vec<BorrowedFd<'_>> = pidfd.into_iter().collect();
            if wire::send(sock.as_fd(), &bytes, &extra).is_err() {
                shut_down(&children);
            }
        }
    }
}

/// Forks the child that `req` asks for; its pidfd is the last of `children`.
fn fork_one(
    req: ForkRequest,
    fds: Vec<OwnedFd>,
    children: &mut Vec<Child>,
) -> Result<u32, ForkReply> {
    let failed = |reason: &str| ForkReply::Failed {
        reason: reason.to_string(),
        errno: None,
    };
    let mut fds = fds.into_iter();
    let control = fds
        .next()
        .ok_or_else(|| failed("request without a control channel"))?;
    let status = fds
        .next()
        .ok_or_else(|| failed("request without a status pipe"))?;
    let outputs = if req.capture {
        Some((
            fds.next().ok_or_else(|| failed("request without stdout"))?,
            fds.next().ok_or_else(|| failed("request without stderr"))?,
        ))
    } else {
        None
    };
    let arg_fds: Vec<OwnedFd> = fds.collect();
    let server_pid = os::getpid();
    let job = req.job;
    let contained = job.contain;
    let pid = os::fork_child(|| {
        // Other children's status pipes are not this child's business.
        children.clear();
        if !os::die_with_parent(server_pid) {
            return 1;
        }
        if let Some((out, err)) = &outputs {
            if os::dup_to(out.as_fd(), 1).is_err() || os::dup_to(err.as_fd(), 2).is_err() {
                return 1;
            }
        }
        bootstrap::run_job(control, job, arg_fds)
    })
    .map_err(|e| ForkReply::Failed {
        reason: format!("fork failed: {e}"),
        errno: e.raw_os_error(),
    })?;
    if contained {
        // Also done by the child itself; whichever runs first makes the group, so
        // that it exists before anyone may signal it.
        let _ = os::set_process_group_of(pid);
    }
    let pidfd = match os::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) => {
            if contained {
                let _ = os::signal_group(pid, os::SIGKILL);
            }
            os::kill_and_reap_pid(pid);
            return Err(ForkReply::Failed {
                reason: format!("pidfd_open failed: {e}"),
                errno: e.raw_os_error(),
            });
        }
    };
    children.push(Child {
        pid,
        pidfd,
        status,
        contained,
    });
    Ok(pid)
}
