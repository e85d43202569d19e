//! The time budget of a connection's handshake: one limit for the whole exchange,
//! not one per read.
//!
//! A socket timeout bounds each read, so a peer that sends one byte just before
//! every timeout could keep a handshake (and the server thread serving it) alive
//! for as many timeouts as the handshake has bytes. [`Budget`] wraps the stream for
//! the handshake and, before each read or write, sets the socket's timeout to what
//! is left of the budget, so the whole exchange ends within it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::transport::Stream;

/// A stream whose socket timeouts can be set.
pub(crate) trait Timed {
    /// The read timeout now set (the handshake's whole budget when it starts).
    fn read_timeout(&self) -> io::Result<Option<Duration>>;
    /// Sets both timeouts.
    fn set_timeouts(&self, t: Option<Duration>) -> io::Result<()>;
}

impl Timed for TcpStream {
    fn read_timeout(&self) -> io::Result<Option<Duration>> {
        TcpStream::read_timeout(self)
    }

    fn set_timeouts(&self, t: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(t)?;
        self.set_write_timeout(t)
    }
}

impl Timed for Stream {
    fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Stream::read_timeout(self)
    }

    fn set_timeouts(&self, t: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(t)?;
        self.set_write_timeout(t)
    }
}

/// The deadline a budget made now from `s`'s read timeout would have.
pub(crate) fn deadline_of(s: &impl Timed) -> io::Result<Option<Instant>> {
    Ok(s.read_timeout()?.and_then(crate::deadline::after))
}

/// `inner`, with every read and write bounded by what is left of one deadline.
pub(crate) struct Budget<'a, S: Timed> {
    inner: &'a mut S,
    until: Option<Instant>,
}

impl<'a, S: Timed> Budget<'a, S> {
    /// A budget as long as the socket's read timeout now (none: no limit).
    pub(crate) fn from_timeout(inner: &'a mut S) -> io::Result<Budget<'a, S>> {
        let until = deadline_of(inner)?;
        Ok(Budget { inner, until })
    }

    /// A budget that ends at `until` (`None`: no limit).
    #[cfg(feature = "tls")]
    pub(crate) fn until(inner: &'a mut S, until: Option<Instant>) -> Budget<'a, S> {
        Budget { inner, until }
    }

    /// Sets the socket's timeouts to what is left; `TimedOut` once nothing is.
    fn arm(&self) -> io::Result<()> {
        let Some(until) = self.until else {
            return Ok(());
        };
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the handshake took longer than its limit",
            ));
        }
        // A zero timeout means "none" to the socket: keep at least a microsecond.
        self.inner
            .set_timeouts(Some(left.max(Duration::from_micros(1))))
    }
}

impl<S: Timed + Read> Read for Budget<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm()?;
        self.inner.read(buf)
    }
}

impl<S: Timed + Write> Write for Budget<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_trickling_peer_runs_out_of_budget() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let trickle = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // One byte every 100 ms: each read alone would be in time.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if peer.write_all(&[1]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        let started = Instant::now();
        let mut b = Budget::from_timeout(&mut s).unwrap();
        let mut buf = [0u8; 1000];
        let err = b.read_exact(&mut buf).unwrap_err();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        trickle.join().unwrap();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            "{err}"
        );
        // Far less than the 100 s that 1000 per-read timeouts would allow.
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }
}
