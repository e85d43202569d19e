//! Helpers shared by the test binaries: watchdogs and process inspection.
#![allow(dead_code)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Aborts the whole test binary with a message if dropped no sooner than `limit`
/// after creation: a hang fails loudly instead of eating CI's time.
pub struct Watchdog {
    cancel: Option<mpsc::Sender<()>>,
}

pub fn watchdog(what: &str, limit: Duration) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    let what = what.to_string();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            // Straight to fd 2: libtest's capture of `eprintln!` passes to threads
            // spawned by a test and would swallow the message.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "watchdog: '{what}' still running after {limit:?}; aborting the test binary"
            );
            std::process::abort();
        }
    });
    Watchdog { cancel: Some(tx) }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.cancel.take() {
            let _ = tx.send(());
        }
    }
}

/// The state letter of process `pid` in `/proc` (`'Z'` for a zombie), or `None`
/// when the pid does not exist.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.chars().next()
}

/// Whether `pid` is gone or a zombie.
pub fn is_dead(pid: u32) -> bool {
    matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

/// Polls `cond` until it holds or `limit` passes; returns whether it held.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::park_timeout(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The children of process `parent`, each with its state letter from
/// `/proc/<pid>/stat` (`R`, `S`, `Z`...).
pub fn children_of(parent: u32) -> Vec<(u32, char)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let mut fields = stat[close + 2..].split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next());
        let ppid: Option<u32> = fields.next().and_then(|p| p.parse().ok());
        if let (Some(state), Some(ppid)) = (state, ppid) {
            if ppid == parent {
                out.push((pid, state));
            }
        }
    }
    out
}

/// The pids of zombie children of process `parent`.
pub fn zombie_children(parent: u32) -> Vec<u32> {
    children_of(parent)
        .into_iter()
        .filter(|&(_, state)| state == 'Z')
        .map(|(pid, _)| pid)
        .collect()
}

/// How many descriptors this process has open.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A fresh path in the temporary directory.
pub fn temp_path(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "mproc-test-{}-{}-{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The state letter of thread `tid` of this process, or `None` when it is gone.
pub fn thread_state(tid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.chars().next()
}

/// Whether every thread of process `pid` is asleep (`S`): a process that only
/// waits on a futex shows this once it is inside the kernel.
pub fn all_threads_asleep(pid: u32) -> bool {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let mut any = false;
    for entry in dir.flatten() {
        let path = entry.path().join("stat");
        let Ok(stat) = std::fs::read_to_string(path) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            return false;
        };
        if !stat[close + 2..].starts_with('S') {
            return false;
        }
        any = true;
    }
    any
}
