//! The process-wide default start method and contexts (Python's
//! `set_start_method`, `get_start_method`, `get_all_start_methods`, `get_context`).
//! The default is global, so each scenario runs in a child of its own.

use std::time::Duration;

use mproc::pool::Pool;
use mproc::process::{
    Process, StartMethod, get_all_start_methods, get_context, get_start_method, set_start_method,
};

use crate::common::watchdog;

fn parent_pid(_: ()) -> u32 {
    std::os::unix::process::parent_id()
}

/// Whether a child started the default way was forked by this process itself (Spawn
/// and Fork children are; forkserver children are the server's).
fn default_child_is_mine() -> bool {
    Process::start(parent_pid, ()).unwrap().join().unwrap() == std::process::id()
}

fn set_once_then_builders_follow(_: ()) {
    assert_eq!(get_start_method(), StartMethod::Forkserver);
    assert!(
        !default_child_is_mine(),
        "the built-in default is the forkserver"
    );
    set_start_method(StartMethod::Spawn, false).unwrap();
    assert_eq!(get_start_method(), StartMethod::Spawn);
    assert_eq!(StartMethod::default(), StartMethod::Spawn);
    assert!(
        default_child_is_mine(),
        "Process::start ignored the default"
    );
    let pool = Pool::new(1).unwrap();
    assert_eq!(
        pool.apply(parent_pid, ()).unwrap(),
        std::process::id(),
        "the pool ignored the default"
    );
    drop(pool);
    let err = set_start_method(StartMethod::Fork, false).unwrap_err();
    assert_eq!(err.current, StartMethod::Spawn);
    assert!(err.to_string().contains("already set"), "{err}");
    set_start_method(StartMethod::Forkserver, true).unwrap();
    assert!(!default_child_is_mine());
    // A context overrides the default.
    let ctx = get_context(Some(StartMethod::Fork));
    assert_eq!(
        ctx.start(parent_pid, ()).unwrap().join().unwrap(),
        std::process::id()
    );
    let pool = ctx.pool().processes(1).build().unwrap();
    assert_eq!(pool.apply(parent_pid, ()).unwrap(), std::process::id());
    assert_eq!(get_context(None).start_method(), StartMethod::Forkserver);
}

#[test]
fn set_start_method_is_followed_by_every_builder() {
    let _w = watchdog("set_start_method", Duration::from_secs(90));
    Process::builder()
        .start_method(StartMethod::Spawn)
        .start(set_once_then_builders_follow, ())
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn every_start_method_is_listed_default_first() {
    let all = get_all_start_methods();
    assert_eq!(all[0], StartMethod::Forkserver);
    assert_eq!(all.len(), 3);
}
