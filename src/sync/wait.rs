//! Waiting: a brief bounded spin, then a futex sleep, against a deadline.
//!
//! On the machines mproc targets, waking a process asleep on the other CPU costs
//! about 30 µs, while a hand-over between two spinning processes takes about 60 ns.
//! So a waiter first spins for a short, fixed budget, watching the shared word
//! with plain loads; only then does it sleep in the kernel. The budget is about
//! twice the cost of a wake-up (the classic bound for competitive spinning: a
//! waiter never wastes more than about twice what sleeping at once would have
//! cost). An idle waiter therefore burns at most one budget of CPU per wait. On a
//! single CPU there is nobody to spin for, and the spin is skipped.
//!
//! Nor is there when the machine is oversubscribed: with more runnable threads than
//! CPUs, the process a waiter waits for is often not running, and spinning takes the
//! CPU it needs. [`oversubscribed`] samples the kernel's count of runnable threads
//! (`/proc/loadavg`) at most every [`LOAD_SAMPLE_EVERY`], shared by the threads of a
//! process; while it exceeds the online CPUs, waiters sleep at once.
//!
//! A lock's waiters are the exception ([`spin_for_release`]): the holder of a lock is
//! usually running and about to release it, so they poll a little even on an
//! oversubscribed machine, and poll seldom, so as not to take the lock's cache line
//! from the holder at every poll.

use std::hint;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sys::futex;

/// How long a waiter spins before it sleeps.
const SPIN_BUDGET: Duration = Duration::from_micros(50);

fn may_spin() -> bool {
    static MULTI_CPU: OnceLock<bool> = OnceLock::new();
    *MULTI_CPU.get_or_init(|| crate::sys::process::cpu_count() > 1)
}

/// How often a process samples the machine's run queue for [`oversubscribed`].
pub(crate) const LOAD_SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// CPUs online on the machine (`/sys/devices/system/cpu/online`), the figure the
/// machine-wide runnable count of `/proc/loadavg` compares with; this process's CPU
/// count when the file cannot be read.
fn online_cpus() -> usize {
    static ONLINE: OnceLock<usize> = OnceLock::new();
    *ONLINE.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/online")
            .ok()
            .and_then(|l| cpu_list_len(&l))
            .filter(|&n| n > 0)
            .unwrap_or_else(crate::sys::process::cpu_count)
    })
}

/// How many CPUs a kernel CPU list names (`0-3,8,10-11` names 7); `None` when it is
/// malformed.
fn cpu_list_len(list: &str) -> Option<usize> {
    let mut n = 0usize;
    for range in list.trim().split(',') {
        n += match range.split_once('-') {
            Some((a, b)) => {
                b.parse::<usize>()
                    .ok()?
                    .checked_sub(a.parse::<usize>().ok()?)?
                    + 1
            }
            None => {
                range.parse::<usize>().ok()?;
                1
            }
        };
    }
    Some(n)
}

/// Runnable threads on the machine now, the caller included (`/proc/loadavg`, fourth
/// field, `running/total`).
fn runnable() -> Option<usize> {
    use std::io::Read;
    let mut buf = [0u8; 128];
    let n = std::fs::File::open("/proc/loadavg")
        .ok()?
        .read(&mut buf)
        .ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    text.split_whitespace()
        .nth(3)?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// Whether the machine had more runnable threads than online CPUs when last sampled.
/// `now` is the caller's clock reading; a sample older than [`LOAD_SAMPLE_EVERY`] is
/// taken again by the first thread of the process that notices (the others use the old
/// answer meanwhile). Without `/proc`, never.
pub(crate) fn oversubscribed(now: Instant) -> bool {
    static BASE: OnceLock<Instant> = OnceLock::new();
    // (milliseconds since BASE + 1) << 1 | answer; 0: never sampled.
    static SAMPLE: AtomicU64 = AtomicU64::new(0);
    let base = *BASE.get_or_init(Instant::now);
    let ms = now.saturating_duration_since(base).as_millis() as u64 + 1;
    let last = SAMPLE.load(Ordering::Relaxed);
    let every = LOAD_SAMPLE_EVERY.as_millis() as u64;
    if last != 0 && ms < (last >> 1) + every {
        return last & 1 == 1;
    }
    // One thread takes the new sample; the others keep the last answer meanwhile.
    if SAMPLE
        .compare_exchange(
            last,
            (ms << 1) | (last & 1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        )
        .is_err()
    {
        return last & 1 == 1;
    }
    let over = runnable().is_some_and(|r| r > online_cpus());
    SAMPLE.store((ms << 1) | u64::from(over), Ordering::Relaxed);
    over
}

/// Spins until `done()` is true or the spin budget (or `deadline`) is spent.
/// Returns whether `done()` became true.
#[inline]
pub(crate) fn spin_until(deadline: Option<Instant>, mut done: impl FnMut() -> bool) -> bool {
    if done() {
        return true;
    }
    if !may_spin() {
        return false;
    }
    let start = Instant::now();
    if oversubscribed(start) {
        // The process we wait for may well be waiting for this CPU. Measured in the
        // `scaling_sync` benchmark (a token ring of 2-8 processes on 2 loaded CPUs):
        // sleeping at once gives 2-13 µs a hand-off, spinning 60-83 µs, spinning with
        // a `sched_yield` every 8 polls 4-27 µs.
        return false;
    }
    let mut end = start + SPIN_BUDGET;
    if let Some(d) = deadline {
        end = end.min(d);
    }
    let mut n: u32 = 0;
    loop {
        // Exponential back-off between polls, capped, as crossbeam's `Backoff`.
        for _ in 0..(1u32 << n.min(6)) {
            hint::spin_loop();
        }
        if done() {
            return true;
        }
        n += 1;
        if Instant::now() >= end {
            return false;
        }
    }
}

/// How long a lock waiter polls a held lock before it sleeps while the machine is
/// oversubscribed (see [`spin_for_release`]); otherwise it polls for [`SPIN_BUDGET`].
const RELEASE_SPIN_OVERSUBSCRIBED: Duration = Duration::from_micros(10);
/// The gap before a lock waiter's first poll of the held word; each later gap doubles,
/// up to [`RELEASE_POLL_GAP_MAX`].
const RELEASE_POLL_GAP_FIRST: Duration = Duration::from_nanos(250);
/// The widest gap between two polls of a held lock word.
const RELEASE_POLL_GAP_MAX: Duration = Duration::from_micros(2);

/// A lock waiter's spin: polls `done()` (the lock word is free) at widening gaps of
/// time (250 ns, doubling to 2 µs) until it is true or the budget (or `deadline`) is
/// spent. Returns whether `done()` became true.
///
/// A lock differs from an event: its holder's critical section is usually short and
/// the holder is usually running, on another CPU, even when the machine is
/// oversubscribed. So this spin is not skipped then (only shortened, to
/// [`RELEASE_SPIN_OVERSUBSCRIBED`]). And it polls seldom: every poll pulls the lock's
/// cache line away from the holder, whose next acquire then waits for it to come
/// back, so a waiter that polls every few tens of nanoseconds slows every one of the
/// holder's acquisitions. Measured in the `scaling_sync` benchmark (2, 4 and 8
/// processes on 2 CPUs, each taking one lock around a counter increment), against
/// the process-shared pthread mutex: [`spin_until`] (no spin at all when
/// oversubscribed: each waiter loops through futex calls, and each release makes
/// one) 0.94-1.2× with 8 processes; polls every 2 `pause`s (80 ns there), 0.85×;
/// polls at gaps growing to 1-2.5 µs, 2.6-3.5×, with 30 times fewer futex calls.
/// The gaps are measured on the clock, not in `pause`s, whose length varies more
/// than tenfold between CPUs.
pub(crate) fn spin_for_release(deadline: Option<Instant>, mut done: impl FnMut() -> bool) -> bool {
    if done() {
        return true;
    }
    if !may_spin() {
        return false;
    }
    let start = Instant::now();
    let budget = if oversubscribed(start) {
        RELEASE_SPIN_OVERSUBSCRIBED
    } else {
        SPIN_BUDGET
    };
    let mut end = start + budget;
    if let Some(d) = deadline {
        end = end.min(d);
    }
    let mut gap = RELEASE_POLL_GAP_FIRST;
    let mut now = start;
    loop {
        // Wait out the gap without touching the shared word: the clock is read
        // from the vDSO, in this CPU's own memory.
        let next = now + gap;
        while now < next {
            for _ in 0..4 {
                hint::spin_loop();
            }
            now = Instant::now();
        }
        if done() {
            return true;
        }
        if now >= end {
            return false;
        }
        gap = (gap * 2).min(RELEASE_POLL_GAP_MAX);
    }
}

/// What a futex sleep came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sleep {
    /// Woken, or the word no longer held `expected`, or a spurious wake-up: check
    /// the condition again.
    Woken,
    /// The deadline passed.
    TimedOut,
}

/// Sleeps while `*word == expected`, until `deadline`, but never longer than
/// `max` (for waiters that must look around now and then).
pub(crate) fn sleep(
    word: &AtomicU32,
    expected: u32,
    deadline: Option<Instant>,
    max: Option<Duration>,
) -> Sleep {
    let mut timeout = match deadline {
        None => None,
        Some(d) => match d.checked_duration_since(Instant::now()) {
            None => return Sleep::TimedOut,
            Some(left) if left.is_zero() => return Sleep::TimedOut,
            Some(left) => Some(left),
        },
    };
    if let Some(m) = max {
        timeout = Some(timeout.map_or(m, |t| t.min(m)));
    }
    match futex::futex_wait(word, expected, timeout) {
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                Sleep::TimedOut
            } else {
                Sleep::Woken
            }
        }
        // Woken, value changed, interrupted, or an unexpected error: the caller
        // re-checks its condition and its deadline either way.
        _ => Sleep::Woken,
    }
}

/// Wakes up to `n` processes asleep on `word`.
#[inline]
pub(crate) fn wake(word: &AtomicU32, n: u32) {
    futex::futex_wake(word, n);
}

/// Whether `deadline` has passed.
pub(crate) fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// A 32-bit word that the futex-based algorithms (`Event`, `Semaphore`) work on.
///
/// In a program it is an `AtomicU32` in shared memory, waited on with a futex.
/// Under `--cfg loom` it is `crate::loom::Word`, a loom atomic with a model of
/// futex wait and wake, so that loom can check the algorithms for lost wake-ups
/// with threads standing in for processes (`src/sync/tests/loom_*.rs`).
pub(crate) trait FutexWord {
    fn load(&self, order: Ordering) -> u32;
    fn compare_exchange(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32>;
    fn compare_exchange_weak(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32>;
    fn fetch_add(&self, value: u32, order: Ordering) -> u32;
    fn fetch_sub(&self, value: u32, order: Ordering) -> u32;
    fn fetch_and(&self, value: u32, order: Ordering) -> u32;
    /// A sequentially consistent fence (`std::sync::atomic::fence(SeqCst)`). The
    /// "announce, then check the other side" handshakes between a sleeper and a
    /// waker put one between their store and their load: loom models `SeqCst`
    /// fences, but not `SeqCst` loads and stores.
    fn fence(&self);
    /// Sleeps while the word holds `expected`, until `deadline` (see [`sleep`]).
    fn sleep(&self, expected: u32, deadline: Option<Instant>) -> Sleep;
    /// Wakes up to `n` sleepers (see [`wake`]).
    fn wake(&self, n: u32);
    /// Spins until `done()` (see [`spin_until`]).
    fn spin_until(&self, deadline: Option<Instant>, done: impl FnMut() -> bool) -> bool;
}

impl FutexWord for AtomicU32 {
    #[inline]
    fn load(&self, order: Ordering) -> u32 {
        AtomicU32::load(self, order)
    }
    #[inline]
    fn compare_exchange(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32> {
        AtomicU32::compare_exchange(self, current, new, success, failure)
    }
    #[inline]
    fn compare_exchange_weak(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32> {
        AtomicU32::compare_exchange_weak(self, current, new, success, failure)
    }
    #[inline]
    fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_add(self, value, order)
    }
    #[inline]
    fn fetch_sub(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_sub(self, value, order)
    }
    #[inline]
    fn fetch_and(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_and(self, value, order)
    }
    #[inline]
    fn fence(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
    }
    #[inline]
    fn sleep(&self, expected: u32, deadline: Option<Instant>) -> Sleep {
        sleep(self, expected, deadline, None)
    }
    #[inline]
    fn wake(&self, n: u32) {
        wake(self, n);
    }
    #[inline]
    fn spin_until(&self, deadline: Option<Instant>, done: impl FnMut() -> bool) -> bool {
        spin_until(deadline, done)
    }
}

#[cfg(all(test, not(loom), not(miri)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn cpu_lists_are_counted() {
        assert_eq!(cpu_list_len("0-1\n"), Some(2));
        assert_eq!(cpu_list_len("0"), Some(1));
        assert_eq!(cpu_list_len("0-3,8,10-11"), Some(7));
        assert_eq!(cpu_list_len("3-1"), None);
        assert_eq!(cpu_list_len("x"), None);
        assert!(online_cpus() >= 1);
    }

    /// Runs `f` while four busy threads per online CPU spin, once the load sample says
    /// oversubscribed (at most 20 s); asserts that it did, after `f` (which runs with
    /// `false` if it never did, and should then do nothing).
    fn on_a_busy_machine<R>(f: impl FnOnce(bool) -> R) -> R {
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..4 * online_cpus() {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        hint::spin_loop();
                    }
                });
            }
            let limit = Instant::now() + Duration::from_secs(20);
            let mut seen = false;
            while !seen && Instant::now() < limit {
                seen = oversubscribed(Instant::now());
                std::thread::yield_now();
            }
            let r = f(seen);
            stop.store(true, Ordering::Relaxed);
            assert!(seen, "busy threads never showed as oversubscribed");
            r
        })
    }

    /// With four busy threads per online CPU, the sample soon says oversubscribed, and
    /// a waiter then looks at its condition once and goes to sleep instead of spinning.
    #[test]
    fn an_oversubscribed_machine_stops_the_spin() {
        let (spun, looks) = on_a_busy_machine(|seen| {
            let mut looks = 0;
            let spun = seen
                && spin_until(None, || {
                    looks += 1;
                    false
                });
            (spun, looks)
        });
        assert!(!spun);
        // The sample holds for LOAD_SAMPLE_EVERY and the busy threads outnumber the
        // CPUs throughout, so the waiter did not spin: one look only.
        assert_eq!(looks, 1, "the waiter spun on an oversubscribed machine");
    }

    /// Issue 16: a lock's holder is usually running and about to release, even on an
    /// oversubscribed machine, so a lock waiter still polls a few times before it
    /// sleeps (a waiter that sleeps at once makes every release a futex wake).
    #[test]
    fn a_lock_waiter_polls_on_an_oversubscribed_machine() {
        let looks = on_a_busy_machine(|seen| {
            // The release comes at the third look, within 2 µs of the first. A
            // preemption of this thread (among the busy ones) longer than the 10 µs
            // budget ends a spin early, so a few attempts are allowed; a waiter that
            // does not spin when oversubscribed fails them all after one look.
            let mut looks = Vec::new();
            for _ in 0..10 {
                if !seen {
                    break;
                }
                let mut n = 0;
                let taken = spin_for_release(None, || {
                    n += 1;
                    n == 3
                });
                looks.push(n);
                if taken {
                    break;
                }
            }
            looks
        });
        assert_eq!(
            looks.last(),
            Some(&3),
            "the lock waiter slept before the release; looks per attempt: {looks:?}"
        );
    }
}
