//! Tests of the async methods (`--features tokio`): each under a current-thread and
//! a multi-threaded tokio runtime, across real processes; cancellation that loses
//! nothing; a runtime that is never blocked; runtime shutdown with operations
//! pending; a peer killed while a task waits.
//!
//! Every test arms a watchdog (`tests/common`), and every wait is bounded.
#![cfg(not(miri))]

mod barrier;
mod pipe;
mod pool;
mod process;
mod queue;
mod sync;

#[path = "../common/mod.rs"]
mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::runtime::{Builder, Runtime};

pub(crate) use common::watchdog;

/// The two runtimes every async method is tried under.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Flavor {
    CurrentThread,
    MultiThread,
}

pub(crate) fn runtime(flavor: Flavor) -> Runtime {
    match flavor {
        Flavor::CurrentThread => Builder::new_current_thread().enable_all().build(),
        Flavor::MultiThread => Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
    }
    .expect("a tokio runtime")
}

/// Runs `body` as a task (on a worker thread under the multi-threaded runtime)
/// under each flavor, with a watchdog.
pub(crate) fn each_runtime<F, Fut>(what: &str, body: F)
where
    F: Fn(Flavor) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    for flavor in [Flavor::CurrentThread, Flavor::MultiThread] {
        let _w = watchdog(&format!("{what} ({flavor:?})"), Duration::from_secs(60));
        let rt = runtime(flavor);
        let task = rt.spawn(body(flavor));
        rt.block_on(task)
            .unwrap_or_else(|e| panic!("{what} ({flavor:?}): {e}"));
    }
}

/// A task that counts ticks of `period` on the current runtime: if an operation
/// blocked the runtime's only thread, the count would not move while it waits.
pub(crate) fn ticker(period: Duration) -> Arc<AtomicUsize> {
    let ticks = Arc::new(AtomicUsize::new(0));
    let t = Arc::clone(&ticks);
    tokio::spawn(async move {
        let mut iv = tokio::time::interval(period);
        iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            iv.tick().await;
            t.fetch_add(1, Ordering::Relaxed);
        }
    });
    ticks
}
