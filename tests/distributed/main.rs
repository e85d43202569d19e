//! `mproc::distributed` against a real `redis-server` (one per test, on a free
//! loopback port): round trips, a 10,000-item map, a worker SIGKILLed mid-job,
//! panics, hangs, delays and priorities, a Redis restart, malformed jobs, progress,
//! and interoperability with the Python `bullmq` package.
#![cfg(not(miri))]

#[path = "../common/mod.rs"]
mod common;
mod python;
mod redis;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{eventually, watchdog};
use mproc::distributed::{
    Admin, BullExecutor, Encoding, JobOptions, Task, Worker, WorkerReport, progress, register,
};
use mproc::futures::{Executor, SubmitError, as_completed};
use mproc::process::{Process, StartMethod};
use redis::RedisServer;

const LIMIT: Duration = Duration::from_secs(120);

// ---- the tasks (registered in every process that runs a worker or submits) ----

fn add((a, b): (u64, u64)) -> u64 {
    a + b
}

fn square(x: u64) -> u64 {
    x * x
}

fn explode(what: String) -> u32 {
    panic!("exploded on {what}");
}

fn hang(secs: u64) -> u64 {
    std::thread::sleep(Duration::from_secs(secs));
    secs
}

/// Appends `start <tag> <worker pid>` to `file`, sleeps `ms`, appends `done <tag>`.
fn record((file, tag, ms): (String, String, u64)) -> String {
    let line = |s: String| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    };
    let worker = mproc::process::parent_process().map_or(0, |p| p.pid());
    line(format!("start {tag} {worker}\n"));
    std::thread::sleep(Duration::from_millis(ms));
    line(format!("done {tag}\n"));
    tag
}

fn report_progress(x: u32) -> u32 {
    progress(50).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    x
}

fn register_all() {
    register("t.add", add).unwrap();
    register("t.square", square).unwrap();
    register("t.explode", explode).unwrap();
    register("t.hang", hang).unwrap();
    register("t.record", record).unwrap();
    register("t.progress", report_progress).unwrap();
}

// ---- helpers ----

static QUEUES: AtomicU64 = AtomicU64::new(0);

fn queue_name(tag: &str) -> String {
    format!("{tag}-{}", QUEUES.fetch_add(1, Ordering::Relaxed))
}

struct RunningWorker {
    stop: mproc::distributed::StopHandle,
    thread: Option<JoinHandle<WorkerReport>>,
}

impl RunningWorker {
    fn stop(mut self) -> WorkerReport {
        self.stop.stop();
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.stop();
            let _ = t.join();
        }
    }
}

fn worker_in_thread(url: &str, queue: &str, concurrency: usize) -> RunningWorker {
    register_all();
    let w = Worker::builder()
        .redis(url)
        .queue(queue)
        .concurrency(concurrency)
        .lock_duration(Duration::from_secs(5))
        .stalled_interval(Duration::from_secs(2))
        .shutdown_grace(Duration::from_secs(2))
        .start()
        .unwrap();
    let stop = w.stop_handle();
    RunningWorker {
        stop,
        thread: Some(std::thread::spawn(move || w.run().unwrap())),
    }
}

/// A worker in its own process (for the SIGKILL test).
fn worker_process_main((url, queue): (String, String)) -> u64 {
    register_all();
    let report = Worker::builder()
        .redis(url)
        .queue(queue)
        .concurrency(2)
        .lock_duration(Duration::from_secs(2))
        .stalled_interval(Duration::from_secs(1))
        .start()
        .unwrap()
        .run()
        .unwrap();
    report.completed
}

fn executor(url: &str, queue: &str) -> BullExecutor {
    register_all();
    BullExecutor::connect(url, queue).unwrap()
}

fn temp_file(tag: &str) -> PathBuf {
    common::temp_path(tag)
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

// ---- tests ----

#[test]
fn results_round_trip_in_both_encodings() {
    let _w = watchdog("round trip", LIMIT);
    let redis = RedisServer::start();
    let q = queue_name("rt");
    let ex = executor(&redis.url(), &q);
    let worker = worker_in_thread(&redis.url(), &q, 2);

    assert_eq!(ex.submit(add, (40, 2)).unwrap().result().unwrap(), 42);
    let task: Task<(u64, u64), u64> = Task::remote("t.add");
    let bin = JobOptions::new().encoding(Encoding::Binary);
    let h = ex.submit_job(&task, (1, 2), &bin).unwrap();
    assert_eq!(h.result().unwrap(), 3);

    // as_completed over the same futures as a local executor.
    let futures: Vec<_> = (0..20u64).map(|i| ex.submit(square, i).unwrap()).collect();
    let mut got: Vec<u64> = as_completed(futures).map(|f| f.result().unwrap()).collect();
    got.sort();
    assert_eq!(got, (0..20u64).map(|i| i * i).collect::<Vec<_>>());

    // An unregistered function is refused with a reason, not sent.
    let err = ex.submit(|x: u64| x + 1, 1).unwrap_err();
    assert!(
        matches!(err, SubmitError::Rejected(ref m) if m.contains("register")),
        "{err}"
    );

    let report = worker.stop();
    assert!(report.completed >= 22, "{report:?}");
}

#[test]
fn map_over_ten_thousand_items() {
    let _w = watchdog("map 10000", Duration::from_secs(300));
    let redis = RedisServer::start();
    let q = queue_name("map");
    let ex = executor(&redis.url(), &q);
    let worker = worker_in_thread(&redis.url(), &q, 8);
    let out: Vec<u64> = ex
        .map(square, 0..10_000u64, Some(Duration::from_secs(240)), 1)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(out.len(), 10_000);
    assert!(out.iter().enumerate().all(|(i, &v)| v == (i * i) as u64));
    assert_eq!(ex.pending(), 0);
    drop(worker);
}

#[test]
fn a_sigkilled_worker_job_is_completed_by_another_worker() {
    let _w = watchdog("sigkill", LIMIT);
    let redis = RedisServer::start();
    let q = queue_name("kill");
    let ex = executor(&redis.url(), &q);
    let file = temp_file("kill");
    let start = |_: ()| {
        Process::builder()
            .start_method(StartMethod::Spawn)
            .start(worker_process_main, (redis.url(), q.clone()))
            .unwrap()
    };
    let victim = start(());
    // Wait until the victim is consuming, so that it takes the first jobs.
    let admin = Admin::connect(&redis.url(), &q).unwrap();
    assert!(
        eventually(Duration::from_secs(30), || !admin
            .info()
            .unwrap()
            .workers
            .is_empty()),
        "the worker process never connected: {:?}",
        admin.info()
    );
    let task: Task<(String, String, u64), String> = Task::remote("t.record");
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let arg = (file.display().to_string(), format!("j{i}"), 1500);
            ex.submit_job(&task, arg, &JobOptions::new()).unwrap()
        })
        .collect();
    let victim_pid = victim.pid().to_string();
    assert!(
        eventually(Duration::from_secs(30), || lines(&file)
            .iter()
            .any(|l| l.starts_with("start") && l.ends_with(&victim_pid))),
        "the victim worker never started a job"
    );
    victim.kill().unwrap();
    let _ = victim.join();
    let survivor = start(());
    for h in handles {
        let tag = h.id().to_string();
        assert!(h.result().is_ok(), "job {tag} was lost");
    }
    let l = lines(&file);
    let mut starts: HashMap<String, usize> = HashMap::new();
    for s in l.iter().filter(|s| s.starts_with("start")) {
        *starts
            .entry(s.split(' ').nth(1).unwrap().to_string())
            .or_default() += 1;
    }
    for i in 0..4 {
        assert!(
            l.contains(&format!("done j{i}")),
            "job j{i} never finished: {l:?}"
        );
    }
    let rerun = starts.values().filter(|&&n| n >= 2).count();
    assert!(rerun >= 1, "no job was run again after the kill: {l:?}");
    survivor.terminate().unwrap();
    let completed = survivor.join().unwrap();
    assert!(completed >= 1);
}

#[test]
fn a_panicking_task_fails_with_its_message_after_its_attempts() {
    let _w = watchdog("panic", LIMIT);
    let redis = RedisServer::start();
    let q = queue_name("panic");
    let ex = executor(&redis.url(), &q);
    let worker = worker_in_thread(&redis.url(), &q, 2);
    let task: Task<String, u32> = Task::remote("t.explode");
    let h = ex
        .submit_job(&task, "purpose".into(), &JobOptions::new().attempts(3))
        .unwrap();
    let id = h.id().to_string();
    let err = h.result().unwrap_err();
    assert!(err.is_panic(), "{err}");
    assert_eq!(err.panic_message(), Some("exploded on purpose"));
    assert!(err.panic_location().unwrap().contains("main.rs"), "{err:?}");
    assert!(err.worker_pid().is_some());
    let job = Admin::connect(&redis.url(), &q).unwrap().job(&id).unwrap();
    assert_eq!(job.attempts_made, 3);
    assert_eq!(job.state, "failed");
    assert!(
        job.failed_reason.contains("exploded on purpose"),
        "{}",
        job.failed_reason
    );
    let report = worker.stop();
    assert_eq!(report.failed, 3);
}

#[test]
fn a_hanging_task_is_killed_at_its_timeout_and_the_worker_goes_on() {
    let _w = watchdog("hang", LIMIT);
    let redis = RedisServer::start();
    let q = queue_name("hang");
    let ex = executor(&redis.url(), &q);
    let worker = worker_in_thread(&redis.url(), &q, 1);
    let task: Task<u64, u64> = Task::remote("t.hang");
    let opts = JobOptions::new().timeout(Duration::from_secs(1));
    let err = ex
        .submit_job(&task, 600, &opts)
        .unwrap()
        .result()
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.timeout(), Some(Duration::from_secs(1)));
    assert_eq!(ex.submit(square, 9).unwrap().result().unwrap(), 81);
    drop(worker);
}

#[test]
fn delayed_and_prioritised_jobs_run_in_order() {
    let _w = watchdog("order", LIMIT);
    let redis = RedisServer::start();
    let q = queue_name("order");
    let ex = executor(&redis.url(), &q);
    let file = temp_file("order");
    let task: Task<(String, String, u64), String> = Task::remote("t.record");
    let f = file.display().to_string();
    let mut handles = vec![
        ex.submit_job(
            &task,
            (f.clone(), "delayed".into(), 0),
            &JobOptions::new().delay(Duration::from_secs(3)),
        )
        .unwrap(),
    ];
    for p in [3u32, 1, 2] {
        handles.push(
            ex.submit_job(
                &task,
                (f.clone(), format!("p{p}"), 0),
                &JobOptions::new().priority(p),
            )
            .unwrap(),
        );
    }
    // Only now a worker, taking one job at a time.
    let worker = worker_in_thread(&redis.url(), &q, 1);
    for h in handles {
        h.result().unwrap();
    }
    let order: Vec<String> = lines(&file)
        .iter()
        .filter(|l| l.starts_with("done"))
        .map(|l| l[5..].to_string())
        .collect();
    assert_eq!(order, ["p1", "p2", "p3", "delayed"]);
    drop(worker);
}

#[test]
fn everything_completes_across_a_redis_restart() {
    let _w = watchdog("restart", Duration::from_secs(240));
    let mut redis = RedisServer::start();
    let q = queue_name("restart");
    let ex = executor(&redis.url(), &q);
    let worker = worker_in_thread(&redis.url(), &q, 2);
    let file = temp_file("restart");
    let task: Task<(String, String, u64), String> = Task::remote("t.record");
    let items: Vec<_> = (0..60)
        .map(|i| (file.display().to_string(), format!("r{i}"), 50))
        .collect();
    let handles = ex
        .map_jobs(&task, items, &JobOptions::new().attempts(5))
        .unwrap();
    assert!(eventually(Duration::from_secs(60), || lines(&file)
        .iter()
        .filter(|l| l.starts_with("done"))
        .count()
        >= 10));
    redis.restart();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.result().unwrap(), format!("r{i}"));
    }
    drop(worker);
}

#[test]
fn a_malformed_job_fails_with_a_clear_reason_and_the_worker_goes_on() {
    let _w = watchdog("malformed", LIMIT);
    let redis = RedisServer::start();
    let q = queue_name("bad");
    let ex = executor(&redis.url(), &q);
    let worker = worker_in_thread(&redis.url(), &q, 1);
    let opts = JobOptions::new().attempts(3);

    let wrong_shape: Task<String, u64> = Task::remote("t.square");
    let h = ex.submit_job(&wrong_shape, "nine".into(), &opts).unwrap();
    let id = h.id().to_string();
    let err = h.result().unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("does not fit") && msg.contains("t.square"),
        "{msg}"
    );
    assert!(msg.contains("invalid type"), "{msg}");
    let admin = Admin::connect(&redis.url(), &q).unwrap();
    assert_eq!(
        admin.job(&id).unwrap().attempts_made,
        1,
        "retried a hopeless job"
    );

    let unknown: Task<u64, u64> = Task::remote("t.nope");
    let msg = ex
        .submit_job(&unknown, 1, &opts)
        .unwrap()
        .result()
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("\"t.nope\"") && msg.contains("does not know"),
        "{msg}"
    );

    assert_eq!(ex.submit(square, 12).unwrap().result().unwrap(), 144);
    drop(worker);
}

#[test]
fn progress_from_a_task_reaches_the_producer() {
    let _w = watchdog("progress", LIMIT);
    let redis = RedisServer::start();
    let q = queue_name("progress");
    let ex = executor(&redis.url(), &q);
    let worker = worker_in_thread(&redis.url(), &q, 1);
    let task: Task<u32, u32> = Task::remote("t.progress");
    let h = ex.submit_job(&task, 7, &JobOptions::new()).unwrap();
    assert!(eventually(Duration::from_secs(30), || h.progress::<u32>() == Some(50)));
    assert_eq!(h.result().unwrap(), 7);
    drop(worker);
}

#[test]
fn a_python_bullmq_job_runs_on_an_mproc_worker() {
    let _w = watchdog("python producer", Duration::from_secs(300));
    let py = python::venv();
    let redis = RedisServer::start();
    let q = queue_name("py-in");
    let worker = worker_in_thread(&redis.url(), &q, 1);
    let out = python::run(
        &py,
        r#"
import asyncio, json, sys
from bullmq import Queue, Job
async def main(url, name):
    q = Queue(name, {"connection": url})
    job = await q.add("t.add", [20, 22])
    for _ in range(600):
        j = await Job.fromId(q, job.id)
        if j.finishedOn:
            print(json.dumps({"ret": j.returnvalue, "failed": j.failedReason}))
            break
        await asyncio.sleep(0.1)
    await q.close()
asyncio.run(main(sys.argv[1], sys.argv[2]))
"#,
        &[&redis.url(), &q],
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    assert_eq!(v["ret"], 42, "{out}");
    drop(worker);
}

#[test]
fn an_mproc_job_is_seen_by_python_get_jobs() {
    let _w = watchdog("python consumer", Duration::from_secs(300));
    let py = python::venv();
    let redis = RedisServer::start();
    let q = queue_name("py-out");
    let ex = executor(&redis.url(), &q);
    let task: Task<(u64, u64), u64> = Task::remote("t.add");
    let h = ex.submit_job(&task, (3, 4), &JobOptions::new()).unwrap();
    let out = python::run(
        &py,
        r#"
import asyncio, json, sys
from bullmq import Queue
async def main(url, name):
    q = Queue(name, {"connection": url})
    jobs = await q.getJobs(["waiting"])
    print(json.dumps([{"id": j.id, "name": j.name, "data": j.data,
                       "state": await j.getState()} for j in jobs]))
    await q.close()
asyncio.run(main(sys.argv[1], sys.argv[2]))
"#,
        &[&redis.url(), &q],
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    assert_eq!(
        v,
        serde_json::json!([{"id": h.id(), "name": "t.add", "data": [3, 4], "state": "waiting"}])
    );
}

#[test]
fn a_stopping_worker_hands_unfinished_jobs_back_within_its_grace() {
    let _w = watchdog("hand back", LIMIT);
    let redis = RedisServer::start();
    let q = queue_name("handback");
    let ex = executor(&redis.url(), &q);
    let file = temp_file("handback");
    register_all();
    let first = Worker::builder()
        .redis(redis.url())
        .queue(&q)
        .concurrency(1)
        .shutdown_grace(Duration::from_millis(500))
        .start()
        .unwrap();
    let stop = first.stop_handle();
    let first = std::thread::spawn(move || first.run().unwrap());
    let task: Task<(String, String, u64), String> = Task::remote("t.record");
    let h = ex
        .submit_job(
            &task,
            (file.display().to_string(), "long".into(), 4000),
            &JobOptions::new(),
        )
        .unwrap();
    assert!(eventually(Duration::from_secs(30), || lines(&file).len() == 1));
    stop.stop();
    let report = first.join().unwrap();
    assert_eq!(report.handed_back, 1, "{report:?}");
    assert_eq!(report.completed, 0, "{report:?}");
    // Another worker takes it from the queue at once (no lock to expire) and finishes it.
    let second = worker_in_thread(&redis.url(), &q, 1);
    assert_eq!(h.result().unwrap(), "long");
    let l = lines(&file);
    assert_eq!(
        l.iter().filter(|s| s.starts_with("start long")).count(),
        2,
        "{l:?}"
    );
    drop(second);
}

#[test]
fn a_long_job_keeps_its_lock_and_is_never_taken_for_stalled() {
    let _w = watchdog("lock renewal", LIMIT);
    let redis = RedisServer::start();
    let q = queue_name("lock");
    let ex = executor(&redis.url(), &q);
    let file = temp_file("lock");
    register_all();
    // Two workers with a 1 s lock checking for stalled jobs every 300 ms: a 4 s job
    // whose lock were not renewed would be taken by the other one and run twice.
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let w = Worker::builder()
                .redis(redis.url())
                .queue(&q)
                .concurrency(1)
                .lock_duration(Duration::from_secs(1))
                .stalled_interval(Duration::from_millis(300))
                .start()
                .unwrap();
            let stop = w.stop_handle();
            (stop, std::thread::spawn(move || w.run().unwrap()))
        })
        .collect();
    let task: Task<(String, String, u64), String> = Task::remote("t.record");
    let h = ex
        .submit_job(
            &task,
            (file.display().to_string(), "cpu".into(), 4000),
            &JobOptions::new(),
        )
        .unwrap();
    let id = h.id().to_string();
    assert_eq!(h.result().unwrap(), "cpu");
    let starts = lines(&file)
        .iter()
        .filter(|l| l.starts_with("start"))
        .count();
    assert_eq!(starts, 1, "the job ran {starts} times");
    let job = Admin::connect(&redis.url(), &q).unwrap().job(&id).unwrap();
    assert_eq!(job.state, "completed");
    for (stop, t) in workers {
        stop.stop();
        t.join().unwrap();
    }
}
