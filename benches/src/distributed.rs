//! Distributed throughput (issue 13): 2,000 trivial jobs (`x * x`) through one local
//! Redis, end to end (enqueue to result), and the enqueue rate alone.
//!
//! Contenders, each against its own fresh `redis-server` with the same settings
//! (no persistence), every job added with `removeOnComplete`:
//! - mproc: [`BullExecutor::map`] to a [`Worker`] in this process taking up to
//!   [`MPROC_IN_FLIGHT`] jobs at once, whose every job runs in a separate pool process
//!   ([`PROCESSES`] of them); results come back through the queue's event stream;
//! - bare `bullmq-official`: its `Worker` running the same job in-process at concurrency
//!   [`CONCURRENCY`], the producer adding the jobs with `add_bulk` and waiting until no
//!   job waits or runs (read every 5 ms);
//! - RQ (`py/py_rq.py`): `SimpleWorker` in burst mode (no fork per job), `enqueue_many`.
//!
//! Beside each end-to-end rate, the CPU time its `redis-server` spent per job
//! (`/proc/PID/schedstat` of the server's main thread, over the same sample): the
//! engine's cost on a quiet machine, which the jobs/s figures hide when the machine is
//! loaded (every round trip then waits for the scheduler).
//!
//! `DIST_MPROC_IN_FLIGHT` and `DIST_BULLMQ_CONCURRENCY` override the two settings, and
//! `DIST_REMOVE_ON_COMPLETE=0` keeps completed jobs, for experiments;
//! `DIST_COMMANDSTATS=1` prints each server's `INFO commandstats` when it stops.

use std::cell::RefCell;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bullmq::types::RemoveOnFinish;
use mproc::distributed::{BullExecutor, JobOptions, Task, Worker, register};
use mproc::futures::Executor;

use crate::anchors::PyAnchor;
use crate::{Area, Compare, Config, Local, Result, Role};

/// Jobs per sample.
pub const JOBS: u64 = 2_000;
/// Bare bullmq's concurrency (the setting).
pub const CONCURRENCY: usize = 8;
/// Jobs the mproc worker takes from Redis at once (its `concurrency`): the pool's
/// processes run two of them while the others wait in the pool's queue, so that a
/// process never waits for a round trip to Redis.
pub const MPROC_IN_FLIGHT: usize = 8;
/// Processes of the mproc worker's pool.
pub const PROCESSES: usize = 2;

/// Whether jobs are added with `removeOnComplete` (`DIST_REMOVE_ON_COMPLETE=0` turns
/// it off for both BullMQ contenders).
fn remove_on_complete() -> bool {
    std::env::var("DIST_REMOVE_ON_COMPLETE").map_or(true, |v| v.trim() != "0")
}

fn setting(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// The trivial job.
pub fn square(x: u64) -> u64 {
    x * x
}

/// A `redis-server` on a free loopback port, without persistence.
pub struct LocalRedis(Child, u16);

/// What the last end-to-end sample measured besides its rate.
#[derive(Clone, Copy, Default)]
struct Sample {
    redis_us_per_job: f64,
}

impl LocalRedis {
    /// Starts one.
    pub fn start() -> Result<LocalRedis> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot run redis-server ({e}): apt-get install -y redis-server")
            })?;
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > end {
                return Err("redis-server did not start within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(LocalRedis(child, port))
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.1)
    }

    /// CPU time the server's main thread (the one that runs commands and scripts)
    /// has used so far, in ns.
    pub fn cpu_ns(&self) -> Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/schedstat", self.0.id()))?;
        stat.split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("cannot read /proc/{}/schedstat: {stat:?}", self.0.id()).into())
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        // `DIST_COMMANDSTATS=1`: what the server ran, for looking into its cost per job.
        if std::env::var("DIST_COMMANDSTATS").is_ok_and(|v| v == "1") {
            let _ = Command::new("redis-cli")
                .args(["-p", &self.1.to_string(), "info", "commandstats"])
                .stdout(Stdio::inherit())
                .status();
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct MprocSide {
    _redis: LocalRedis,
    ex: BullExecutor,
    _worker: std::thread::JoinHandle<()>,
    round: u64,
    last: Sample,
}

impl MprocSide {
    fn new() -> Result<MprocSide> {
        register("bench.square", square)?;
        let redis = LocalRedis::start()?;
        let worker = Worker::builder()
            .redis(redis.url())
            .queue("bench")
            .concurrency(setting("DIST_MPROC_IN_FLIGHT", MPROC_IN_FLIGHT))
            .processes(PROCESSES)
            .start()?;
        let worker = std::thread::spawn(move || {
            let _ = worker.run();
        });
        let ex = BullExecutor::builder("bench")
            .redis(redis.url())
            .defaults(JobOptions::new().remove_on_complete(remove_on_complete()))
            .build()?;
        Ok(MprocSide {
            _redis: redis,
            ex,
            _worker: worker,
            round: 0,
            last: Sample::default(),
        })
    }

    fn end_to_end(&mut self) -> Result<f64> {
        let cpu0 = self._redis.cpu_ns()?;
        let t0 = Instant::now();
        let sum: u64 = self
            .ex
            .map(square, 0..JOBS, None, 1)?
            .map(|r| r.map_err(|e| e.to_string()))
            .sum::<std::result::Result<u64, String>>()?;
        let dt = t0.elapsed().as_secs_f64();
        self.last.redis_us_per_job = (self._redis.cpu_ns()? - cpu0) as f64 / 1e3 / JOBS as f64;
        if sum != (0..JOBS).map(square).sum::<u64>() {
            return Err("wrong results".into());
        }
        Ok(JOBS as f64 / dt)
    }

    fn enqueue(&mut self) -> Result<f64> {
        // Into a queue no worker consumes, so that only the enqueue is timed.
        self.round += 1;
        let task: Task<u64, u64> = Task::remote("bench.square");
        let ex = BullExecutor::connect(&self._redis.url(), &format!("idle-{}", self.round))?;
        let t0 = Instant::now();
        let handles = ex.map_jobs(
            &task,
            0..JOBS,
            &JobOptions::new().remove_on_complete(remove_on_complete()),
        )?;
        let dt = t0.elapsed().as_secs_f64();
        drop(handles);
        Ok(JOBS as f64 / dt)
    }
}

struct BullSide {
    _redis: LocalRedis,
    rt: tokio::runtime::Runtime,
    queue: Arc<bullmq::Queue>,
    _worker: bullmq::Worker,
    round: u64,
    last: Sample,
}

impl BullSide {
    fn new() -> Result<BullSide> {
        let redis = LocalRedis::start()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let conn = bullmq::options::RedisConnectionOptions::new().url(redis.url());
        let (queue, worker) = rt.block_on(async {
            let q = bullmq::Queue::with_options(
                "bench",
                bullmq::QueueOptions::new().connection(conn.clone()),
            )
            .await?;
            let w = bullmq::Worker::with_options(
                "bench",
                |job: bullmq::Job, _t| async move {
                    let x = job.data().as_u64().unwrap_or(0);
                    Ok(serde_json::json!(square(x)))
                },
                bullmq::WorkerOptions::new()
                    .connection(conn)
                    .concurrency(setting("DIST_BULLMQ_CONCURRENCY", CONCURRENCY)),
            )
            .await?;
            Ok::<_, bullmq::Error>((q, w))
        })?;
        Ok(BullSide {
            _redis: redis,
            rt,
            queue: Arc::new(queue),
            _worker: worker,
            round: 0,
            last: Sample::default(),
        })
    }

    fn jobs() -> Vec<bullmq::BulkJob> {
        (0..JOBS)
            .map(|i| {
                bullmq::BulkJob::new("square", i).options(
                    bullmq::JobOptions::new()
                        .remove_on_complete(RemoveOnFinish::Bool(remove_on_complete())),
                )
            })
            .collect()
    }

    fn end_to_end(&mut self) -> Result<f64> {
        let q = Arc::clone(&self.queue);
        let cpu0 = self._redis.cpu_ns()?;
        let (dt, failed) = self.rt.block_on(async move {
            let t0 = Instant::now();
            q.add_bulk(BullSide::jobs()).await?;
            // Until no job waits or runs, looking every 5 ms (a negligible load); a
            // job leaves `active` in the script that completes it.
            while q.get_job_count_by_types(&["waiting", "active"]).await? > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let dt = t0.elapsed().as_secs_f64();
            Ok::<_, bullmq::Error>((dt, q.get_failed_count().await?))
        })?;
        self.last.redis_us_per_job = (self._redis.cpu_ns()? - cpu0) as f64 / 1e3 / JOBS as f64;
        if failed > 0 {
            return Err(format!("{failed} bullmq jobs failed").into());
        }
        Ok(JOBS as f64 / dt)
    }

    fn enqueue(&mut self) -> Result<f64> {
        self.round += 1;
        let conn = bullmq::options::RedisConnectionOptions::new().url(self._redis.url());
        let name = format!("idle-{}", self.round);
        let dt = self.rt.block_on(async move {
            let q =
                bullmq::Queue::with_options(&name, bullmq::QueueOptions::new().connection(conn))
                    .await?;
            let t0 = Instant::now();
            q.add_bulk(BullSide::jobs()).await?;
            Ok::<_, bullmq::Error>(t0.elapsed().as_secs_f64())
        })?;
        Ok(JOBS as f64 / dt)
    }
}

/// The area.
pub fn area(_cfg: &Config) -> Result<Area> {
    let m = Rc::new(RefCell::new(MprocSide::new()?));
    let b = Rc::new(RefCell::new(BullSide::new()?));
    let (m0, m1, m2, m3) = (Rc::clone(&m), Rc::clone(&m), Rc::clone(&m), m);
    let (b0, b1, b2, b3) = (Rc::clone(&b), Rc::clone(&b), Rc::clone(&b), b);
    let mproc_in_flight = setting("DIST_MPROC_IN_FLIGHT", MPROC_IN_FLIGHT);
    let bull_concurrency = setting("DIST_BULLMQ_CONCURRENCY", CONCURRENCY);
    Ok(Area {
        name: "distributed",
        title: "Distributed jobs through Redis (issue 13)",
        description: format!(
            "{JOBS} trivial jobs (`x * x`) through a local `redis-server` (one per contender, same \
             settings, no persistence; BullMQ jobs with `removeOnComplete`), end to end from \
             enqueue to every result (jobs/s), the CPU time the server spent per job during it \
             (us/job: the engine's cost, which a loaded machine's scheduling delays do not \
             inflate), and the enqueue alone (jobs/s). mproc: `BullExecutor::map` to a `Worker` \
             taking {mproc_in_flight} jobs at once and running every job in a separate process of \
             its {PROCESSES}-process pool, results through the queue's event stream. In-process: \
             bare `bullmq-official` running the job in its worker task (concurrency \
             {bull_concurrency}), `add_bulk`. Python: RQ's `SimpleWorker` in burst mode \
             (`py_rq.py`, in a venv it makes with `pip install rq`)."
        ),
        mproc_pending: None,
        contenders: vec![
            Box::new(
                Local::new("mproc BullExecutor + Worker", Role::Mproc)
                    // One untimed pass: the server loads BullMQ's scripts (a cold
                    // EVALSHA falls back to EVAL with the whole script) and the pool's
                    // processes start.
                    .warmup(move || m0.borrow_mut().end_to_end().map(drop))
                    .measure("mproc_dist_jobs_per_s", "jobs/s", move || {
                        m1.borrow_mut().end_to_end()
                    })
                    // Recorded by the end-to-end sample just before.
                    .measure("mproc_dist_redis_cpu_per_job", "us/job", move || {
                        Ok(m3.borrow().last.redis_us_per_job)
                    })
                    .measure("mproc_dist_enqueue", "jobs/s", move || {
                        m2.borrow_mut().enqueue()
                    }),
            ),
            Box::new(
                Local::new("bullmq-official in-process", Role::InProcess)
                    .warmup(move || b0.borrow_mut().end_to_end().map(drop))
                    .measure("bullmq_jobs_per_s", "jobs/s", move || {
                        b1.borrow_mut().end_to_end()
                    })
                    .measure("bullmq_redis_cpu_per_job", "us/job", move || {
                        Ok(b3.borrow().last.redis_us_per_job)
                    })
                    .measure("bullmq_enqueue", "jobs/s", move || {
                        b2.borrow_mut().enqueue()
                    }),
            ),
            Box::new(PyAnchor::new("py_rq.py")),
        ],
        comparisons: vec![
            Compare::new("mproc_dist_jobs_per_s", "py_rq_simpleworker_jobs_per_s")
                .at_least(20.0, "issue 13: ≥ 20× RQ's SimpleWorker"),
            Compare::new("mproc_dist_jobs_per_s", "bullmq_jobs_per_s")
                .at_least(0.5, "issue 13: ≥ 0.5× bare bullmq-official in-process"),
            Compare::new("mproc_dist_redis_cpu_per_job", "bullmq_redis_cpu_per_job"),
            Compare::new("mproc_dist_enqueue", "py_rq_enqueue"),
            Compare::new("mproc_dist_enqueue", "bullmq_enqueue"),
        ],
    })
}
