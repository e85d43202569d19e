//! Test hooks, compiled to nothing outside tests. Crash injection for the
//! in-process tests: `step(n)` "kills" the calling thread at protocol step `n` (a
//! panic that leaves every lock it holds locked, as a `SIGKILL` would; once the
//! thread has exited, its thread mark is dead and the next producer takes the lock
//! over), or parks it there (`PARK_AT`). Rings can be made fenced (`FENCED`), and
//! futex sleeps counted (`SLEEPS`). Under `--cfg mproc_fault` (outside unit tests)
//! `step(n)` aborts the process at step `n` instead, for the crash-at-every-step
//! suite of `tests/queue`.

#[cfg(test)]
thread_local! {
    pub(crate) static CRASH_AT: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    static CRASHED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
thread_local! {
    /// `(step, resume)`: at `step` the thread blocks until `resume` yields
    /// (a live but stalled process, as under `SIGSTOP`).
    pub(crate) static PARK_AT: std::cell::RefCell<Option<(u32, std::sync::mpsc::Receiver<()>)>> =
        const { std::cell::RefCell::new(None) };
}

#[cfg(test)]
pub(crate) fn step(n: u32) {
    if CRASH_AT.with(|c| c.get()) == n {
        CRASHED.with(|c| c.set(true));
        panic!("simulated crash at step {n}");
    }
    let park = PARK_AT.with(|p| {
        let mut p = p.borrow_mut();
        if p.as_ref().is_some_and(|(at, _)| *at == n) {
            p.take()
        } else {
            None
        }
    });
    if let Some((_, resume)) = park {
        let _ = resume.recv();
    }
}

#[cfg(test)]
pub(crate) fn crashed() -> bool {
    CRASHED.with(|c| c.get())
}

#[cfg(not(any(test, mproc_fault)))]
#[inline(always)]
pub(crate) fn step(_: u32) {}

/// Under `--cfg mproc_fault`: the protocol step at which this process aborts
/// (0: none), set by the fault tests in a child through `queue::__fault_at`.
#[cfg(all(mproc_fault, not(test)))]
pub(crate) static ABORT_AT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[cfg(all(mproc_fault, not(test)))]
pub(crate) fn step(n: u32) {
    if ABORT_AT.load(std::sync::atomic::Ordering::Relaxed) == n {
        std::process::abort();
    }
}

#[cfg(not(test))]
#[inline(always)]
pub(crate) fn crashed() -> bool {
    false
}

#[cfg(test)]
thread_local! {
    /// Rings created on this thread use the fenced wake protocol, as where
    /// `membarrier` is unavailable.
    pub(crate) static FENCED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
thread_local! {
    /// Futex sleeps this thread has started in queue waits.
    pub(crate) static SLEEPS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
thread_local! {
    /// Whether this thread's queue waits may yield the CPU while the awaited side
    /// stands still. A test of sleeping and waking turns it off: on a loaded
    /// machine a yield can last as long as the other side's work, and the wait then
    /// ends without the sleep the test means to exercise.
    pub(crate) static YIELDS: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

#[cfg(test)]
pub(crate) fn may_yield() -> bool {
    YIELDS.with(|y| y.get())
}

#[cfg(not(test))]
#[inline(always)]
pub(crate) fn may_yield() -> bool {
    true
}

#[cfg(test)]
pub(crate) fn sleeping() {
    SLEEPS.with(|c| c.set(c.get() + 1));
}

#[cfg(not(test))]
#[inline(always)]
pub(crate) fn sleeping() {}

#[cfg(test)]
pub(crate) fn fenced() -> bool {
    FENCED.with(|f| f.get())
}

#[cfg(not(test))]
#[inline(always)]
pub(crate) fn fenced() -> bool {
    false
}
