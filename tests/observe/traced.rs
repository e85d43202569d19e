//! `tracing` events from children reach the parent's logger (feature `tracing`):
//! with their fields, level filtered in the child, tagged like `log` records, and
//! the last one before a panic too.

use mproc::pool::Pool;
use mproc::process::{Process, StartMethod};

use crate::common::watchdog;
use crate::{LIMIT, kept, logger};

/// The program's own subscriber in the parent: it drops what it is given (the
/// parent's own events do not matter here). `ForwardingSubscriber` around it makes
/// `Fork` children forward.
struct Dropping;

impl tracing::Subscriber for Dropping {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn subscriber() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing::subscriber::set_global_default(mproc::observe::ForwardingSubscriber::new(
            Dropping,
        ))
        .expect("no other subscriber in this binary");
    });
}

fn traced(marker: String) -> u32 {
    tracing::debug!("{marker} filtered out in the child");
    let span = tracing::info_span!("work", marker = %marker);
    let _in = span.enter();
    tracing::info!(target: "traced", answer = 42, who = "child", "{marker} hello");
    tracing::warn!(count = 3_u64);
    tracing::error!(marker = %marker, "{marker} last words before the panic");
    panic!("{marker} boom")
}

fn each_method(method: StartMethod) {
    logger();
    subscriber();
    let _w = watchdog("tracing events reach the parent", LIMIT);
    let marker = format!("tracing-{method:?}#");
    let child = Process::builder()
        .name(format!("traced-{method:?}"))
        .start_method(method)
        .start(traced, marker.clone())
        .expect("child starts");
    let (pid, name) = (child.pid(), child.name().to_string());
    assert!(child.join().unwrap_err().is_panic());
    let got = kept(&marker);
    assert_eq!(got.len(), 2, "{got:?}");
    for k in &got {
        assert_eq!(k.pid, Some(pid as u64), "{k:?}");
        assert_eq!(k.process.as_deref(), Some(name.as_str()), "{k:?}");
        assert!(
            k.message.starts_with(&format!("[{name} pid {pid}] ")),
            "{k:?}"
        );
    }
    assert_eq!(got[0].level, log::Level::Info);
    assert_eq!(got[0].target, "traced");
    assert!(
        got[0]
            .message
            .ends_with(&format!("{marker} hello answer=42 who=child")),
        "{:?}",
        got[0].message
    );
    assert_eq!(got[1].level, log::Level::Error);
    assert!(
        got[1].message.ends_with(&format!(
            "{marker} last words before the panic marker={marker}"
        )),
        "{:?}",
        got[1].message
    );
}

#[test]
fn tracing_events_arrive_forkserver() {
    each_method(StartMethod::Forkserver);
}

#[test]
fn tracing_events_arrive_spawn() {
    each_method(StartMethod::Spawn);
}

#[test]
fn tracing_events_arrive_fork() {
    each_method(StartMethod::Fork);
}

fn traced_item((marker, i): (String, u32)) -> u32 {
    tracing::info!(item = i, "{marker}");
    i
}

#[test]
fn pool_tasks_tracing_events_carry_their_index() {
    logger();
    subscriber();
    let _w = watchdog("pool tasks trace with their index", LIMIT);
    let pool = Pool::builder()
        .processes(2)
        .handle_ctrl_c(false)
        .build()
        .expect("pool starts");
    let marker = "tracing-pool#".to_string();
    let items: Vec<_> = (0..50).map(|i| (marker.clone(), i)).collect();
    assert_eq!(
        pool.map(traced_item, items).unwrap(),
        (0..50).collect::<Vec<_>>()
    );
    let got = kept(&marker);
    assert_eq!(got.len(), 50, "{got:?}");
    for k in &got {
        let i: u64 = k.message.rsplit("item=").next().unwrap().parse().unwrap();
        assert_eq!(k.task, Some(i), "{k:?}");
    }
}
