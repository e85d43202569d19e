//! Distributed throughput (issue 13): 2,000 trivial jobs (`x * x`) through one local
//! Redis, end to end (enqueue to result), and the enqueue rate alone.
//!
//! Contenders, each against its own fresh `redis-server` with the same settings:
//! - mproc: [`BullExecutor::map`] to a [`Worker`] of concurrency [`CONCURRENCY`] in this
//!   process whose every job runs in a separate pool process ([`PROCESSES`] of them);
//! - bare `bullmq-official`: its `Worker` running the same job in-process at concurrency
//!   [`CONCURRENCY`], the producer adding the jobs with `add_bulk` and waiting for the
//!   `completed` count (read every 5 ms);
//! - RQ (`py/py_rq.py`): `SimpleWorker` in burst mode (no fork per job), `enqueue_many`.

use std::cell::RefCell;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mproc::distributed::{BullExecutor, JobOptions, Task, Worker, register};
use mproc::futures::Executor;

use crate::anchors::PyAnchor;
use crate::{Area, Compare, Config, Local, Result, Role};

/// Jobs per sample.
pub const JOBS: u64 = 2_000;
/// Jobs in flight per worker.
pub const CONCURRENCY: usize = 8;
/// Processes of the mproc worker's pool.
pub const PROCESSES: usize = 2;

/// The trivial job.
pub fn square(x: u64) -> u64 {
    x * x
}

/// A `redis-server` on a free loopback port, without persistence.
pub struct LocalRedis(Child, u16);

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
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct MprocSide {
    _redis: LocalRedis,
    ex: BullExecutor,
    _worker: std::thread::JoinHandle<()>,
    round: u64,
}

impl MprocSide {
    fn new() -> Result<MprocSide> {
        register("bench.square", square)?;
        let redis = LocalRedis::start()?;
        let worker = Worker::builder()
            .redis(redis.url())
            .queue("bench")
            .concurrency(CONCURRENCY)
            .processes(PROCESSES)
            .start()?;
        let worker = std::thread::spawn(move || {
            let _ = worker.run();
        });
        let ex = BullExecutor::connect(&redis.url(), "bench")?;
        Ok(MprocSide {
            _redis: redis,
            ex,
            _worker: worker,
            round: 0,
        })
    }

    fn end_to_end(&mut self) -> Result<f64> {
        let t0 = Instant::now();
        let sum: u64 = self
            .ex
            .map(square, 0..JOBS, None, 1)?
            .map(|r| r.map_err(|e| e.to_string()))
            .sum::<std::result::Result<u64, String>>()?;
        let dt = t0.elapsed().as_secs_f64();
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
        let handles = ex.map_jobs(&task, 0..JOBS, &JobOptions::new())?;
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
                    .concurrency(CONCURRENCY),
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
        })
    }

    fn jobs() -> Vec<bullmq::BulkJob> {
        (0..JOBS)
            .map(|i| bullmq::BulkJob::new("square", i))
            .collect()
    }

    fn end_to_end(&mut self) -> Result<f64> {
        let q = Arc::clone(&self.queue);
        let dt = self.rt.block_on(async move {
            let before = q.get_completed_count().await?;
            let t0 = Instant::now();
            q.add_bulk(BullSide::jobs()).await?;
            // Wait for the completed count, looking every 5 ms (a negligible load).
            while q.get_completed_count().await? < before + JOBS {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<_, bullmq::Error>(t0.elapsed().as_secs_f64())
        })?;
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
    let (m1, m2, b1, b2) = (Rc::clone(&m), m, Rc::clone(&b), b);
    Ok(Area {
        name: "distributed",
        title: "Distributed jobs through Redis (issue 13)",
        description: format!(
            "{JOBS} trivial jobs (`x * x`) through a local `redis-server` (one per contender, same \
             settings), end to end from enqueue to every result (jobs/s), and the enqueue alone \
             (jobs/s). mproc: `BullExecutor::map` to a `Worker` (concurrency {CONCURRENCY}) running \
             every job in a separate process of its {PROCESSES}-process pool. In-process: bare \
             `bullmq-official` running the job in its worker task (concurrency {CONCURRENCY}). \
             Python: RQ's `SimpleWorker` in burst mode (`py_rq.py`, in a venv it makes with `pip \
             install rq`)."
        ),
        mproc_pending: None,
        contenders: vec![
            Box::new(
                Local::new("mproc BullExecutor + Worker", Role::Mproc)
                    .measure("mproc_dist_jobs_per_s", "jobs/s", move || {
                        m1.borrow_mut().end_to_end()
                    })
                    .measure("mproc_dist_enqueue", "jobs/s", move || {
                        m2.borrow_mut().enqueue()
                    }),
            ),
            Box::new(
                Local::new("bullmq-official in-process", Role::InProcess)
                    .measure("bullmq_jobs_per_s", "jobs/s", move || {
                        b1.borrow_mut().end_to_end()
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
            Compare::new("mproc_dist_enqueue", "py_rq_enqueue"),
            Compare::new("mproc_dist_enqueue", "bullmq_enqueue"),
        ],
    })
}
