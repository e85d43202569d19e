//! `tracing` events of a child reach the parent (feature `tracing`).
//!
//! A child started by mproc that has no `tracing` subscriber of its own gets one
//! that turns each event into a log record and sends it on the same socket as the
//! child's `log` records: same tags, same order, same guarantees (written as it is
//! made, so it outlives a crash). The parent emits it through `log`; a parent that
//! uses `tracing` sees it as a `tracing` event through `tracing-log`'s `LogTracer`,
//! which `tracing_subscriber::fmt().init()` installs by default.
//!
//! An event's fields other than `message` are appended to the message as
//! `name=value`. Spans are not forwarded (they are disabled in the child's own
//! subscriber: a `span!` costs one comparison).

use std::fmt::{self, Write as _};

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::subscriber::{Interest, Subscriber};
use tracing_core::{Event, Level, LevelFilter, Metadata};

use crate::observe::child;

fn log_level(level: &Level) -> log::Level {
    match *level {
        Level::ERROR => log::Level::Error,
        Level::WARN => log::Level::Warn,
        Level::INFO => log::Level::Info,
        Level::DEBUG => log::Level::Debug,
        _ => log::Level::Trace,
    }
}

fn level_filter(level: log::LevelFilter) -> LevelFilter {
    match level {
        log::LevelFilter::Off => LevelFilter::OFF,
        log::LevelFilter::Error => LevelFilter::ERROR,
        log::LevelFilter::Warn => LevelFilter::WARN,
        log::LevelFilter::Info => LevelFilter::INFO,
        log::LevelFilter::Debug => LevelFilter::DEBUG,
        log::LevelFilter::Trace => LevelFilter::TRACE,
    }
}

/// Whether this forwarding child passes an event of `metadata`'s level.
fn passes(metadata: &Metadata<'_>) -> bool {
    log_level(metadata.level()) <= log::max_level()
}

/// An event's text: its `message` field, then its other fields as `name=value`.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

/// Sends `event` to the parent as a log record; `false` when this process is not a
/// forwarding child (the caller handles the event itself).
pub(crate) fn forward_event(event: &Event<'_>) -> bool {
    if !child::is_forwarding() {
        return false;
    }
    let meta = event.metadata();
    let level = log_level(meta.level());
    if level > log::max_level() {
        // Filtered in the child: handled, by dropping it.
        return true;
    }
    let mut text = Text::default();
    event.record(&mut text);
    let message = if text.message.is_empty() {
        text.fields.trim_start()
    } else {
        text.message.push_str(&text.fields);
        text.message.as_str()
    };
    child::forward(
        &log::Record::builder()
            .level(level)
            .target(meta.target())
            .module_path(meta.module_path())
            .file(meta.file())
            .line(meta.line())
            .args(format_args!("{message}"))
            .build(),
    )
}

/// The subscriber a child installs when it has none: events are forwarded, spans
/// are disabled.
struct ChildSubscriber;

impl Subscriber for ChildSubscriber {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.is_event() && passes(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() && passes(metadata)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(level_filter(log::max_level()))
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        // Never called: spans are disabled. An id must not be 0.
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        forward_event(event);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Makes the forwarding subscriber this process's global default, unless it has one
/// (a `Fork` child inherits its parent's: see [`ForwardingSubscriber`]).
pub(crate) fn install() {
    let _ =
        tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(ChildSubscriber));
}

/// A `tracing` subscriber that is `S` in this process, and forwards events to the
/// parent in a child started by mproc: the `tracing` twin of
/// [`ForwardingLogger`](crate::observe::ForwardingLogger), for programs that start
/// children with [`StartMethod::Fork`](crate::process::StartMethod::Fork) (a forked
/// child inherits its parent's subscriber). With the other start methods it is not
/// needed, and does no harm.
///
/// # Examples
///
/// ```
/// use mproc::observe::ForwardingSubscriber;
/// # struct Quiet;
/// # impl tracing_core::Subscriber for Quiet {
/// #     fn enabled(&self, _: &tracing_core::Metadata<'_>) -> bool { true }
/// #     fn new_span(&self, _: &tracing_core::span::Attributes<'_>) -> tracing_core::span::Id {
/// #         tracing_core::span::Id::from_u64(1)
/// #     }
/// #     fn record(&self, _: &tracing_core::span::Id, _: &tracing_core::span::Record<'_>) {}
/// #     fn record_follows_from(&self, _: &tracing_core::span::Id, _: &tracing_core::span::Id) {}
/// #     fn event(&self, _: &tracing_core::Event<'_>) {}
/// #     fn enter(&self, _: &tracing_core::span::Id) {}
/// #     fn exit(&self, _: &tracing_core::span::Id) {}
/// # }
///
/// // `Quiet` stands for the program's own subscriber, e.g.
/// // `tracing_subscriber::fmt().finish()`.
/// let subscriber = ForwardingSubscriber::new(Quiet);
/// // In `main`: tracing::subscriber::set_global_default(subscriber).unwrap();
/// # drop(subscriber);
/// ```
#[derive(Debug)]
pub struct ForwardingSubscriber<S> {
    inner: S,
}

impl<S: Subscriber> ForwardingSubscriber<S> {
    /// Wraps `inner`, which handles everything in this process when it is not a
    /// forwarding child.
    pub fn new(inner: S) -> Self {
        ForwardingSubscriber { inner }
    }

    /// The wrapped subscriber.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: Subscriber> Subscriber for ForwardingSubscriber<S> {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.is_event() {
            // Decided per event: the same callsite passes in a forwarding child and
            // goes to `S` in the parent.
            self.inner.register_callsite(metadata);
            Interest::sometimes()
        } else {
            self.inner.register_callsite(metadata)
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        if metadata.is_event() && child::is_forwarding() {
            passes(metadata)
        } else {
            self.inner.enabled(metadata)
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        if child::is_forwarding() {
            Some(level_filter(log::max_level()))
        } else {
            self.inner.max_level_hint()
        }
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.inner.new_span(span)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        self.inner.record(span, values);
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.inner.record_follows_from(span, follows);
    }

    fn event_enabled(&self, event: &Event<'_>) -> bool {
        child::is_forwarding() || self.inner.event_enabled(event)
    }

    fn event(&self, event: &Event<'_>) {
        if !forward_event(event) {
            self.inner.event(event);
        }
    }

    fn enter(&self, span: &Id) {
        self.inner.enter(span);
    }

    fn exit(&self, span: &Id) {
        self.inner.exit(span);
    }

    fn clone_span(&self, id: &Id) -> Id {
        self.inner.clone_span(id)
    }

    fn try_close(&self, id: Id) -> bool {
        self.inner.try_close(id)
    }

    fn current_span(&self) -> tracing_core::span::Current {
        self.inner.current_span()
    }
}
