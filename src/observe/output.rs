//! A child's stdout and stderr as the parent reads them: captured (bounded) or
//! passed through line by line with the child's name in front.
//!
//! The pipes are read by the collector thread as output arrives (see
//! [`collect`](crate::observe::collect)), so a child that prints a lot, or
//! without end, never waits for its parent. What is kept is bounded: in capture
//! mode the first and the last half of the limit (the middle is dropped and
//! counted); in every mode the last [`RECENT`] bytes, for error messages.

use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};

use crate::observe::collect::{self, Source};
use crate::sys::socket;

/// How many of the last bytes of a stream are kept in every mode.
pub(crate) const RECENT: usize = 8 * 1024;

/// Which stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// What becomes of what the child writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Kept, at most this many bytes (the first half and the last half).
    Capture { limit: usize },
    /// Written to the parent's own stream, each line prefixed with `[name] `.
    Prefix,
}

/// One of a child's output pipes.
pub(crate) struct StreamSource {
    fd: OwnedFd,
    stream: Stream,
    name: String,
    mode: Mode,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    ended: bool,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    /// Bytes read in all.
    total: u64,
    /// The last [`RECENT`] bytes.
    recent: VecDeque<u8>,
    /// A line begun and not yet passed through (prefix mode).
    line: Vec<u8>,
}

impl StreamSource {
    /// Starts reading `fd` (the read end of the child's `stream`) as data arrives.
    pub(crate) fn start(fd: OwnedFd, stream: Stream, name: &str, mode: Mode) -> Arc<StreamSource> {
        let _ = socket::set_nonblocking(fd.as_fd(), true);
        let source = Arc::new(StreamSource {
            fd,
            stream,
            name: name.to_string(),
            mode,
            state: Mutex::new(State::default()),
        });
        collect::watch(Arc::clone(&source) as Arc<dyn Source>);
        source
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What was captured (the first and last halves of the limit) and how many
    /// bytes were left out between them.
    pub(crate) fn captured(&self) -> (Vec<u8>, u64) {
        let st = self.lock();
        let mut out = st.head.clone();
        out.extend(st.tail.iter());
        let dropped = st.total - out.len() as u64;
        (out, dropped)
    }

    /// The last `lines` lines written (from the last [`RECENT`] bytes), if any.
    pub(crate) fn last_lines(&self, lines: usize) -> Option<String> {
        let st = self.lock();
        if st.recent.is_empty() {
            return None;
        }
        let bytes: Vec<u8> = st.recent.iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim_end_matches('\n');
        let start = text
            .rmatch_indices('\n')
            .nth(lines.saturating_sub(1))
            .map_or(0, |(i, _)| i + 1);
        Some(text[start..].to_string())
    }

    fn keep(&self, st: &mut State, data: &[u8]) {
        st.total += data.len() as u64;
        push_bounded(&mut st.recent, data, RECENT);
        match self.mode {
            Mode::Capture { limit } => {
                let head_room = (limit / 2).saturating_sub(st.head.len());
                let (to_head, rest) = data.split_at(head_room.min(data.len()));
                st.head.extend_from_slice(to_head);
                push_bounded(&mut st.tail, rest, limit - limit / 2);
            }
            Mode::Prefix => {
                st.line.extend_from_slice(data);
                if let Some(end) = st.line.iter().rposition(|b| *b == b'\n') {
                    let complete: Vec<u8> = st.line.drain(..=end).collect();
                    self.pass_through(&complete);
                }
                // A line without end is passed through in pieces.
                if st.line.len() >= 64 * 1024 {
                    let mut piece = std::mem::take(&mut st.line);
                    piece.push(b'\n');
                    self.pass_through(&piece);
                }
            }
        }
    }

    /// Writes complete lines to this process's own stream, each prefixed.
    fn pass_through(&self, lines: &[u8]) {
        let mut out = Vec::with_capacity(lines.len() + 32);
        for line in lines.split_inclusive(|b| *b == b'\n') {
            out.extend_from_slice(b"[");
            out.extend_from_slice(self.name.as_bytes());
            out.extend_from_slice(b"] ");
            out.extend_from_slice(line);
        }
        let _ = match self.stream {
            Stream::Stdout => std::io::stdout().lock().write_all(&out),
            Stream::Stderr => std::io::stderr().lock().write_all(&out),
        };
    }
}

fn push_bounded(ring: &mut VecDeque<u8>, data: &[u8], max: usize) {
    if max == 0 {
        return;
    }
    let data = &data[data.len().saturating_sub(max)..];
    let over = (ring.len() + data.len()).saturating_sub(max);
    ring.drain(..over);
    ring.extend(data);
}

impl Source for StreamSource {
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn drain(&self) -> bool {
        let mut st = self.lock();
        if st.ended {
            return true;
        }
        let mut buf = [0u8; 64 * 1024];
        loop {
            match socket::read(self.fd.as_fd(), &mut buf) {
                Ok(0) => break,
                Ok(n) => self.keep(&mut st, &buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        st.ended = true;
        if self.mode == Mode::Prefix && !st.line.is_empty() {
            let mut rest = std::mem::take(&mut st.line);
            rest.push(b'\n');
            self.pass_through(&rest);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(mode: Mode) -> (Arc<StreamSource>, OwnedFd) {
        let (r, w) = socket::pipe().unwrap();
        socket::set_nonblocking(r.as_fd(), true).unwrap();
        let s = Arc::new(StreamSource {
            fd: r,
            stream: Stream::Stdout,
            name: "t".into(),
            mode,
            state: Mutex::new(State::default()),
        });
        (s, w)
    }

    #[test]
    fn capture_keeps_the_first_and_last_halves() {
        let (s, w) = source(Mode::Capture { limit: 10 });
        socket::write(w.as_fd(), b"0123456789abcdefghij").unwrap();
        drop(w);
        assert!(s.drain());
        let (out, dropped) = s.captured();
        assert_eq!(out, b"01234fghij");
        assert_eq!(dropped, 10);
    }

    #[test]
    fn output_under_the_limit_is_kept_whole() {
        let (s, w) = source(Mode::Capture { limit: 1 << 20 });
        socket::write(w.as_fd(), b"one\ntwo\nthree\n").unwrap();
        assert!(!s.drain());
        assert_eq!(s.captured(), (b"one\ntwo\nthree\n".to_vec(), 0));
        assert_eq!(s.last_lines(2).as_deref(), Some("two\nthree"));
        assert_eq!(s.last_lines(10).as_deref(), Some("one\ntwo\nthree"));
    }
}
