//! [`Admin`]: looks at and manages one queue (what the `mproc` command line's
//! `queues` and `jobs` commands use): counts, workers, rates, jobs, retries,
//! removal, cleaning, pause and resume.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bullmq::{Job, JobProgress, Queue, QueueOptions};
use serde::Serialize;

use super::failure::{FailureRecord, LOG_PREFIX};
use super::runtime::Runtime;
use super::{DistributedError, connection_options};

/// The states a job can be in, in the order the command line shows them.
pub const STATES: [&str; 7] = [
    "waiting",
    "active",
    "delayed",
    "prioritized",
    "completed",
    "failed",
    "paused",
];

/// A queue at a glance.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct QueueInfo {
    /// The queue's name.
    pub name: String,
    /// Whether the queue is paused.
    pub paused: bool,
    /// Jobs per state: `waiting`, `active`, `delayed`, `prioritized`, `completed`,
    /// `failed`, `paused`, in that order (a JSON object).
    #[serde(serialize_with = "as_map")]
    pub counts: Vec<(String, u64)>,
    /// The connected workers' names (one per BullMQ worker connection).
    pub workers: Vec<String>,
    /// Jobs completed in the last minute.
    pub completed_last_minute: u64,
    /// Jobs failed in the last minute.
    pub failed_last_minute: u64,
}

/// One job, as stored in Redis.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct JobInfo {
    /// The job id.
    pub id: String,
    /// The job (task) name.
    pub name: String,
    /// Its state (`waiting`, `active`, `completed`, ...).
    pub state: String,
    /// Its data (the argument), as JSON text.
    pub data: String,
    /// Its return value as JSON text (empty until it completes).
    pub returnvalue: String,
    /// Why its last attempt failed (empty if none did).
    pub failed_reason: String,
    /// Attempts made so far.
    pub attempts_made: u32,
    /// The latest progress reported, as JSON text.
    pub progress: String,
    /// When it was added (ms since the epoch).
    pub timestamp: u64,
    /// When its last attempt started (ms since the epoch).
    pub processed_on: Option<u64>,
    /// When it finished (ms since the epoch).
    pub finished_on: Option<u64>,
    /// The job's log lines (only filled by [`Admin::job`]).
    pub logs: Vec<String>,
    /// Where an mproc worker's last failure happened: `host`, `pid`, `location`.
    pub failure_where: Option<String>,
}

fn as_map<S: serde::Serializer>(v: &[(String, u64)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(v.iter().map(|(k, n)| (k, n)))
}

/// The state's name as BullMQ clients print it (`waiting`, not the key's `wait`).
fn state_name(s: bullmq::JobState) -> String {
    match s {
        bullmq::JobState::Waiting => "waiting".into(),
        other => other.to_string(),
    }
}

fn info_of(job: &Job, state: String) -> JobInfo {
    JobInfo {
        id: job.id().to_string(),
        name: job.name().to_string(),
        state,
        data: job.data().to_string(),
        returnvalue: job.returnvalue().to_string(),
        failed_reason: job.failed_reason().to_string(),
        attempts_made: job.attempts_made(),
        progress: match job.progress() {
            JobProgress::Number(x) => x.to_string(),
            JobProgress::Object(v) => v.to_string(),
        },
        timestamp: job.timestamp(),
        processed_on: job.processed_on(),
        finished_on: job.finished_on(),
        logs: Vec::new(),
        failure_where: None,
    }
}

/// Management of one BullMQ queue (blocking).
///
/// # Examples
///
/// ```no_run
/// use mproc::distributed::Admin;
///
/// let admin = Admin::connect("redis://127.0.0.1:6379", "images")?;
/// let info = admin.info()?;
/// println!("{} workers, {:?}", info.workers.len(), info.counts);
/// for job in admin.jobs("failed", 0, 9)? {
///     admin.retry(&job.id)?;
/// }
/// # Ok::<(), mproc::distributed::DistributedError>(())
/// ```
pub struct Admin {
    rt: Runtime,
    queue: Arc<Queue>,
    url: String,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("queue", &self.queue.name())
            .finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Admin {
    /// Connects to the queue `queue` (prefix `bull`).
    ///
    /// # Errors
    ///
    /// [`DistributedError::Redis`] when Redis cannot be reached.
    pub fn connect(redis: &str, queue: &str) -> Result<Admin, DistributedError> {
        Admin::connect_with_prefix(redis, queue, "bull")
    }

    /// Connects to the queue `queue` under the key prefix `prefix`.
    ///
    /// # Errors
    ///
    /// As [`connect`](Admin::connect).
    pub fn connect_with_prefix(
        redis: &str,
        queue: &str,
        prefix: &str,
    ) -> Result<Admin, DistributedError> {
        let rt = Runtime::new("admin", 1)?;
        let opts = QueueOptions::new()
            .connection(connection_options(redis))
            .prefix(prefix.to_string());
        let name = queue.to_string();
        let q = rt
            .block(async move {
                let q = Queue::with_options(&name, opts).await?;
                q.connection().ping().await?;
                Ok::<_, bullmq::Error>(q)
            })
            .map_err(|e| DistributedError::redis(redis, e))?;
        Ok(Admin {
            rt,
            queue: Arc::new(q),
            url: redis.to_string(),
        })
    }

    fn run<T, F>(&self, fut: F) -> Result<T, DistributedError>
    where
        F: std::future::Future<Output = Result<T, bullmq::Error>> + Send + 'static,
        T: Send + 'static,
    {
        self.rt
            .block(fut)
            .map_err(|e| DistributedError::redis(&self.url, e))
    }

    fn q(&self) -> Arc<Queue> {
        Arc::clone(&self.queue)
    }

    /// Counts per state, workers and the last minute's rates.
    ///
    /// # Errors
    ///
    /// [`DistributedError::Redis`] when a command fails.
    pub fn info(&self) -> Result<QueueInfo, DistributedError> {
        let q = self.q();
        self.run(async move {
            let c = q.get_job_counts().await?;
            let paused = q.is_paused().await?;
            let workers = q
                .get_workers()
                .await?
                .into_iter()
                .map(|w| {
                    let name = w
                        .get("rawname")
                        .or(w.get("name"))
                        .cloned()
                        .unwrap_or_default();
                    let addr = w.get("addr").cloned().unwrap_or_default();
                    format!("{name} {addr}").trim().to_string()
                })
                .collect();
            let since = now_ms().saturating_sub(60_000);
            let conn = q.connection();
            let completed_last_minute: u64 = conn
                .cmd(
                    redis::cmd("ZCOUNT")
                        .arg(q.keys().completed())
                        .arg(since)
                        .arg("+inf"),
                )
                .await?;
            let failed_last_minute: u64 = conn
                .cmd(
                    redis::cmd("ZCOUNT")
                        .arg(q.keys().failed())
                        .arg(since)
                        .arg("+inf"),
                )
                .await?;
            let counts = [
                c.waiting,
                c.active,
                c.delayed,
                c.prioritized,
                c.completed,
                c.failed,
                c.paused,
            ];
            Ok(QueueInfo {
                name: q.name().to_string(),
                paused,
                counts: STATES
                    .iter()
                    .zip(counts)
                    .map(|(s, n)| (s.to_string(), n))
                    .collect(),
                workers,
                completed_last_minute,
                failed_last_minute,
            })
        })
    }

    /// The jobs in `state` (one of the states of [`QueueInfo::counts`], or `all`),
    /// newest first, from
    /// position `start` to `end` inclusive.
    ///
    /// # Errors
    ///
    /// [`DistributedError::Config`] for an unknown state; [`DistributedError::Redis`].
    pub fn jobs(
        &self,
        state: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<JobInfo>, DistributedError> {
        let types: Vec<&'static str> = match state {
            "all" => STATES.to_vec(),
            s => match STATES.iter().find(|t| **t == s) {
                Some(t) => vec![*t],
                None => {
                    return Err(DistributedError::Config(format!(
                        "unknown job state {s:?}; one of: all, {}",
                        STATES.join(", ")
                    )));
                }
            },
        };
        let q = self.q();
        self.run(async move {
            let jobs = q.get_jobs(&types, start, end, false).await?;
            let mut out = Vec::with_capacity(jobs.len());
            for j in jobs {
                let state = state_name(q.get_job_state(j.id()).await?);
                out.push(info_of(&j, state));
            }
            Ok(out)
        })
    }

    /// One job with its logs.
    ///
    /// # Errors
    ///
    /// [`DistributedError::NoSuchJob`]; [`DistributedError::Redis`].
    pub fn job(&self, id: &str) -> Result<JobInfo, DistributedError> {
        let q = self.q();
        let key = id.to_string();
        let found = self.run(async move {
            let Some(j) = q.get_job(&key).await? else {
                return Ok(None);
            };
            let state = state_name(q.get_job_state(&key).await?);
            let (logs, _) = q.get_job_logs(&key, 0, -1, true).await?;
            let mut info = info_of(&j, state);
            info.failure_where = logs
                .iter()
                .rev()
                .filter(|l| l.starts_with(LOG_PREFIX))
                .find_map(|l| FailureRecord::from_log_line(l))
                .map(|r| {
                    let mut w = format!(
                        "{} pid {}",
                        r.host,
                        r.pid.map_or("-".into(), |p| p.to_string())
                    );
                    if let Some(at) = r.location {
                        w.push_str(&format!(" at {at}"));
                    }
                    w
                });
            info.logs = logs;
            Ok(Some(info))
        })?;
        found.ok_or_else(|| DistributedError::NoSuchJob(id.to_string()))
    }

    /// Moves a failed (or completed) job back to wait.
    ///
    /// # Errors
    ///
    /// [`DistributedError::NoSuchJob`]; [`DistributedError::Redis`] (for example
    /// when the job is not finished).
    pub fn retry(&self, id: &str) -> Result<(), DistributedError> {
        let q = self.q();
        let key = id.to_string();
        let found = self.run(async move {
            let Some(mut j) = q.get_job(&key).await? else {
                return Ok(None);
            };
            let state = q.get_job_state(&key).await?;
            if matches!(
                state,
                bullmq::JobState::Failed | bullmq::JobState::Completed
            ) {
                j.retry(state.as_str(), None).await?;
            }
            Ok(Some(state))
        })?;
        match found {
            None => Err(DistributedError::NoSuchJob(id.to_string())),
            Some(bullmq::JobState::Failed | bullmq::JobState::Completed) => Ok(()),
            Some(other) => Err(DistributedError::Config(format!(
                "job {id} is {}; only a failed or completed job can be retried",
                state_name(other)
            ))),
        }
    }

    /// Retries every failed job.
    ///
    /// # Errors
    ///
    /// [`DistributedError::Redis`].
    pub fn retry_all_failed(&self) -> Result<(), DistributedError> {
        let q = self.q();
        self.run(async move { q.retry_jobs("failed", 1000, None).await })
    }

    /// Removes a job (not while a worker holds its lock).
    ///
    /// # Errors
    ///
    /// [`DistributedError::NoSuchJob`] when it does not exist or is locked;
    /// [`DistributedError::Redis`].
    pub fn remove(&self, id: &str) -> Result<(), DistributedError> {
        let q = self.q();
        let key = id.to_string();
        if self.run(async move { q.remove(&key).await })? {
            Ok(())
        } else {
            Err(DistributedError::NoSuchJob(format!(
                "{id} (or it is running and locked by a worker)"
            )))
        }
    }

    /// Removes up to `limit` jobs in `state` finished (or added) more than `grace`
    /// ago; returns their ids.
    ///
    /// # Errors
    ///
    /// [`DistributedError::Redis`].
    pub fn clean(
        &self,
        state: &str,
        grace: Duration,
        limit: u32,
    ) -> Result<Vec<String>, DistributedError> {
        let q = self.q();
        let state = match state {
            "waiting" => "wait".to_string(),
            s => s.to_string(),
        };
        self.run(async move { q.clean(grace.as_millis() as u64, limit, &state).await })
    }

    /// Pauses the queue: workers take no new job.
    ///
    /// # Errors
    ///
    /// [`DistributedError::Redis`].
    pub fn pause(&self) -> Result<(), DistributedError> {
        let q = self.q();
        self.run(async move { q.pause().await })
    }

    /// Resumes a paused queue.
    ///
    /// # Errors
    ///
    /// [`DistributedError::Redis`].
    pub fn resume(&self) -> Result<(), DistributedError> {
        let q = self.q();
        self.run(async move { q.resume().await })
    }
}
