//! Fault injection: every start path at the limit of a resource. A start that
//! cannot get a descriptor or a process fails alone, with an error naming the
//! resource; the children already running live on, nothing leaks (descriptors,
//! zombies), and starts succeed again once the resource is back (issue 10, items
//! 11 and 12).
//!
//! Limits are per process, so each scenario runs in a `Spawn` child of its own (with
//! its own forkserver): the test binary itself is never starved.
//!
//! Shared memory: no start path creates named shared memory. The pool's words, the
//! queue rings and spilled reports are `memfd`s, which live on the kernel's internal
//! tmpfs and are bounded by memory (an `ENOMEM`, reported as `Resource::Memory`),
//! not by the size of `/dev/shm`; so there is no `/dev/shm` scenario here.

use std::os::fd::AsRawFd;
use std::time::Duration;

use mproc::process::{Process, Resource, StartMethod};
use rustix::process::{Resource as Limit, Rlimit, getrlimit, setrlimit};

use crate::common::{eventually, is_dead, open_fds, watchdog, zombie_children};

fn host() -> mproc::process::Builder {
    let mut b = Process::builder();
    b.start_method(StartMethod::Spawn).daemon(true);
    b
}

fn child(m: StartMethod) -> mproc::process::Builder {
    let mut b = Process::builder();
    b.start_method(m).daemon(true);
    b
}

fn sleeper(m: StartMethod) -> Process<()> {
    child(m)
        .start(|s: u64| std::thread::sleep(Duration::from_secs(s)), 120)
        .unwrap()
}

/// The lowest free descriptor number: the next one a call would get.
fn next_free_fd() -> u64 {
    let f = std::fs::File::open("/dev/null").unwrap();
    f.as_raw_fd() as u64
}

fn set_soft(limit: Limit, soft: Option<u64>) {
    let hard = getrlimit(limit).maximum;
    setrlimit(
        limit,
        Rlimit {
            current: soft,
            maximum: hard,
        },
    )
    .unwrap();
}

/// In a child of its own: six healthy children, then starts with the descriptor
/// limit at each of the next twelve descriptor numbers, which makes every step of
/// the start path (socket pairs, pipes, the pidfd, the forkserver's reply) the one
/// that fails in turn. Returns how many starts failed.
fn descriptor_limit_host(m: StartMethod) -> u32 {
    let healthy: Vec<Process<()>> = (0..6).map(|_| sleeper(m)).collect();
    let pids: Vec<u32> = healthy.iter().map(Process::pid).collect();
    let original = getrlimit(Limit::Nofile).current;
    let baseline = open_fds();
    let mut failures = 0;
    for extra in 0..12u64 {
        let next = next_free_fd();
        set_soft(Limit::Nofile, Some(next + extra));
        let started = child(m).start(|x: u64| x + 1, extra);
        set_soft(Limit::Nofile, original);
        match started {
            Ok(p) => assert_eq!(p.join().unwrap(), extra + 1),
            Err(e) => {
                assert_eq!(
                    e.resource(),
                    Some(Resource::OpenFiles),
                    "a start at the descriptor limit (+{extra}) failed without naming it: {e}"
                );
                assert!(e.to_string().contains("too many open files"), "{e}");
                failures += 1;
            }
        }
        for &pid in &pids {
            assert!(
                !is_dead(pid),
                "healthy child {pid} died when a start at the descriptor limit (+{extra}) failed"
            );
        }
    }
    assert_eq!(
        open_fds(),
        baseline,
        "failed starts leaked descriptors ({m:?})"
    );
    // The resource is back: starting works again.
    assert_eq!(
        child(m).start(|x: u64| x * 2, 21).unwrap().join().unwrap(),
        42
    );
    for p in healthy {
        p.kill().unwrap();
        assert_eq!(p.join().unwrap_err().signal(), Some(9));
    }
    let zombies = zombie_children(std::process::id());
    assert!(zombies.is_empty(), "zombies left ({m:?}): {zombies:?}");
    failures
}

fn descriptor_limit(m: StartMethod) {
    let _w = watchdog("descriptor_limit", Duration::from_secs(120));
    let failures = host()
        .start(descriptor_limit_host, m)
        .unwrap()
        .join()
        .unwrap();
    assert!(failures > 0, "the descriptor limit never stopped a start");
}

#[test]
fn descriptor_limit_fails_the_start_alone_forkserver() {
    descriptor_limit(StartMethod::Forkserver);
}

#[test]
fn descriptor_limit_fails_the_start_alone_spawn() {
    descriptor_limit(StartMethod::Spawn);
}

#[test]
fn descriptor_limit_fails_the_start_alone_fork() {
    descriptor_limit(StartMethod::Fork);
}

const NOBODY: u32 = 65534;

/// The number of tasks (threads count: `RLIMIT_NPROC` counts them) of user `uid`.
fn tasks_of(uid: u32) -> u64 {
    let mut n = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        if field("Uid:") == Some(u64::from(uid)) {
            n += field("Threads:").unwrap_or(1);
        }
    }
    n
}

fn mproc_test_threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// In a child of its own, as user `nobody` (root ignores `RLIMIT_NPROC`): a process
/// limit a few tasks above the current count, starts until one fails, then a
/// healthy child ends and starting works again. Returns how many children had
/// started when the limit bit.
fn process_limit_host(m: StartMethod) -> usize {
    // This process is single-threaded here (a `Spawn` child runs its task before
    // `main`), so changing the calling thread's credentials changes the process's.
    assert_eq!(
        mproc_test_threads(),
        1,
        "the host must be single-threaded to change its user"
    );
    rustix::thread::set_thread_groups(&[]).unwrap();
    rustix::thread::set_thread_gid(rustix::process::Gid::from_raw(NOBODY)).unwrap();
    rustix::thread::set_thread_uid(rustix::process::Uid::from_raw(NOBODY)).unwrap();
    set_soft(Limit::Nproc, Some(tasks_of(NOBODY) + 5));
    let mut healthy = Vec::new();
    let failure = loop {
        assert!(healthy.len() < 20, "the process limit never bit");
        match child(m).start(|s: u64| std::thread::sleep(Duration::from_secs(s)), 120) {
            Ok(p) => healthy.push(p),
            Err(e) => break e,
        }
    };
    assert_eq!(
        failure.resource(),
        Some(Resource::Processes),
        "a start at the process limit failed without naming it: {failure}"
    );
    assert!(
        failure.to_string().contains("too many processes"),
        "{failure}"
    );
    assert!(!healthy.is_empty(), "not even one child could start");
    for p in &healthy {
        assert!(!is_dead(p.pid()), "healthy child {} died", p.pid());
    }
    let started = healthy.len();
    let freed = healthy.pop().unwrap();
    freed.kill().unwrap();
    let _ = freed.join();
    // The resource is back (the freed child is reaped): starting works again.
    let mut again = None;
    assert!(
        eventually(Duration::from_secs(30), || {
            again = child(m).start(|x: u64| x + 1, 41).ok();
            again.is_some()
        }),
        "starting never worked again after a child ended"
    );
    assert_eq!(again.unwrap().join().unwrap(), 42);
    for p in healthy {
        p.kill().unwrap();
        assert_eq!(p.join().unwrap_err().signal(), Some(9));
    }
    let zombies = zombie_children(std::process::id());
    assert!(zombies.is_empty(), "zombies left ({m:?}): {zombies:?}");
    started
}

fn process_limit(m: StartMethod) {
    let _w = watchdog("process_limit", Duration::from_secs(120));
    let started = host().start(process_limit_host, m).unwrap().join().unwrap();
    assert!(started >= 1);
}

#[test]
fn process_limit_fails_the_start_alone_forkserver() {
    process_limit(StartMethod::Forkserver);
}

#[test]
fn process_limit_fails_the_start_alone_spawn() {
    process_limit(StartMethod::Spawn);
}

#[test]
fn process_limit_fails_the_start_alone_fork() {
    process_limit(StartMethod::Fork);
}

/// In a child of its own: a one-worker pool whose worker dies while no descriptor
/// is left, so that its replacement cannot start. Tasks fail with the cause while
/// the limit holds; once descriptors are back, the pool works again.
fn pool_descriptor_limit_host(m: StartMethod) -> String {
    let pool = mproc::pool::Pool::builder()
        .processes(1)
        .start_method(m)
        .build()
        .unwrap();
    assert_eq!(pool.map(|x: u32| x + 1, 0..4).unwrap(), vec![1, 2, 3, 4]);
    let original = getrlimit(Limit::Nofile).current;
    set_soft(Limit::Nofile, Some(next_free_fd()));
    let lost = pool
        .apply(|_: ()| -> u8 { std::process::abort() }, ())
        .unwrap_err();
    assert!(lost.is_worker_lost(), "{lost}");
    let failed = pool.apply(|x: u32| x, 7).unwrap_err();
    set_soft(Limit::Nofile, original);
    assert!(
        failed
            .to_string()
            .to_lowercase()
            .contains("too many open files"),
        "the failure does not name the resource: {failed}"
    );
    let mut last = String::new();
    let recovered = eventually(Duration::from_secs(30), || {
        match pool.map(|x: u32| x * 2, 0..4) {
            Ok(v) => v == vec![0, 2, 4, 6],
            Err(e) => {
                last = e.to_string();
                false
            }
        }
    });
    assert!(recovered, "the pool never recovered; last error: {last}");
    drop(pool);
    let zombies = zombie_children(std::process::id());
    assert!(zombies.is_empty(), "zombies left ({m:?}): {zombies:?}");
    failed.to_string()
}

fn pool_descriptor_limit(m: StartMethod) {
    let _w = watchdog("pool_descriptor_limit", Duration::from_secs(120));
    let failure = host()
        .start(pool_descriptor_limit_host, m)
        .unwrap()
        .join()
        .unwrap();
    assert!(
        failure.to_lowercase().contains("too many open files"),
        "{failure}"
    );
}

#[test]
fn pool_recovers_after_descriptor_exhaustion_forkserver() {
    pool_descriptor_limit(StartMethod::Forkserver);
}

#[test]
fn pool_recovers_after_descriptor_exhaustion_spawn() {
    pool_descriptor_limit(StartMethod::Spawn);
}

#[test]
fn pool_recovers_after_descriptor_exhaustion_fork() {
    pool_descriptor_limit(StartMethod::Fork);
}
