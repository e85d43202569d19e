//! Thread marks: a name for a thread that another process can check for life, and
//! that a recycled thread id cannot impersonate.
//!
//! A mark is the thread's kernel id (`gettid`) in the high 32 bits and the low 32
//! bits of its start time (clock ticks since boot, field 22 of `/proc/<tid>/stat`)
//! in the low ones. Thread ids are recycled (`pid_max` is often 32768), but a
//! recycled id comes with a later start time, so [`liveness`] tells a live holder
//! of a mark from a dead one whose id now names somebody else. A mark is never 0.
//!
//! Marks compare thread ids as the kernel shows them in this process's PID
//! namespace: processes that exchange marks must share one ([`pid_namespace`]
//! tells). Without a readable `/proc` a mark carries start time 0, and [`liveness`]
//! answers `Dead` only when the kernel knows no thread of that id at all, `Unknown`
//! otherwise: callers never presume a holder dead without proof.
//!
//! No unsafe code: the start time comes from `/proc`, the thread id from rustix,
//! and a forked child learns that it is a new thread from the cached pid
//! ([`cached_pid`], which an `atfork` handler clears).

use std::cell::Cell;
use std::io;
use std::os::unix::fs::MetadataExt;

use super::pthread::cached_pid;

thread_local! {
    /// `(pid, mark)`: the mark, and the process it was computed in (a forked
    /// child's thread has a new id); pid 0 means not computed yet.
    static MARK: Cell<(u32, u64)> = const { Cell::new((0, 0)) };
}

/// Whether the thread a mark names still runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// The thread exists and started when the mark says.
    Alive,
    /// The thread is gone, a zombie, or its id now names a later thread.
    Dead,
    /// `/proc` could not tell.
    Unknown,
}

/// The calling thread's mark (computed once per thread and process).
#[inline]
pub(crate) fn current() -> u64 {
    let pid = cached_pid();
    let (cached_in, mark) = MARK.with(Cell::get);
    if cached_in == pid {
        return mark;
    }
    compute(pid)
}

#[cold]
fn compute(pid: u32) -> u64 {
    let tid = super::process::gettid();
    let start = read_stat(tid).map_or(0, |s| s.start_ticks as u32);
    let mark = (u64::from(tid) << 32) | u64::from(start);
    MARK.with(|m| m.set((pid, mark)));
    mark
}

/// Whether the thread named by `mark` still runs. `Dead` is only said on proof (a
/// zombie, a later start time under the same id, or no such process at all);
/// whatever `/proc` cannot show is `Unknown`.
pub(crate) fn liveness(mark: u64) -> Liveness {
    let tid = (mark >> 32) as u32;
    let start = mark as u32;
    if tid == 0 {
        return Liveness::Unknown;
    }
    match read_stat(tid) {
        Ok(stat) if matches!(stat.state, 'Z' | 'X' | 'x') => Liveness::Dead,
        Ok(stat) if start != 0 && stat.start_ticks as u32 != start => Liveness::Dead,
        Ok(_) if start == 0 => Liveness::Unknown,
        Ok(_) => Liveness::Alive,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => {
            // Gone, or hidden from us (`/proc` mounted `hidepid` and the thread
            // belongs to another user, or no `/proc` at all): only the kernel's
            // "no such process" is proof.
            match rustix::process::Pid::from_raw(tid as i32).map(rustix::process::test_kill_process)
            {
                Some(Err(rustix::io::Errno::SRCH)) => Liveness::Dead,
                _ => Liveness::Unknown,
            }
        }
        Err(_) => Liveness::Unknown,
    }
}

/// An identifier of this process's PID namespace (the inode of
/// `/proc/self/ns/pid`), or 0 when `/proc` cannot tell.
pub(crate) fn pid_namespace() -> u64 {
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

struct Stat {
    state: char,
    start_ticks: u64,
}

/// Fields 3 (state) and 22 (start time) of `/proc/<tid>/stat`.
fn read_stat(tid: u32) -> io::Result<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{tid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces and
    // parentheses itself: the fields after it start after the last ')'.
    let rest = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no ')' in stat"))?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields
        .next()
        .and_then(|s| s.chars().next())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no state in stat"))?;
    // Field 22 is the 20th after the state (field 3).
    let start_ticks = fields
        .nth(18)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no start time in stat"))?;
    Ok(Stat { state, start_ticks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_thread_is_alive_and_an_exited_one_is_dead() {
        let me = current();
        assert_ne!(me, 0);
        assert_eq!(current(), me, "cached");
        assert_eq!(liveness(me), Liveness::Alive);
        let other = std::thread::spawn(current).join().unwrap();
        assert_ne!(other >> 32, me >> 32);
        // The thread has exited: its id goes (or, recycled, starts later). `join`
        // returns when the thread has left user space, a little before the kernel
        // has released its id: wait for that, boundedly.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while liveness(other) != Liveness::Dead {
            assert!(
                std::time::Instant::now() < deadline,
                "an exited thread still looks {:?} after 10 s",
                liveness(other)
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_recycled_id_with_another_start_time_is_dead() {
        let me = current();
        let wrong_start = (me & !0xffff_ffff) | u64::from((me as u32).wrapping_add(1).max(1));
        assert_eq!(liveness(wrong_start), Liveness::Dead);
    }

    #[test]
    fn a_forked_child_gets_its_own_mark() {
        let parent = current();
        let (r, w) = std::os::unix::net::UnixStream::pair().unwrap();
        let pid = super::super::process::fork_child(move || {
            use std::io::Write;
            let mut w = &w;
            let _ = w.write_all(&current().to_le_bytes());
            0
        })
        .unwrap();
        let mut buf = [0u8; 8];
        std::io::Read::read_exact(&mut &r, &mut buf).unwrap();
        let child = u64::from_le_bytes(buf);
        assert_eq!(
            child >> 32,
            u64::from(pid),
            "the child's main thread id is its pid"
        );
        assert_ne!(child, parent);
        let fd = super::super::process::pidfd_open(pid).unwrap();
        let _ = super::super::process::pidfd_reap(std::os::fd::AsFd::as_fd(&fd), true);
    }
}
