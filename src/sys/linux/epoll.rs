//! An epoll set: many descriptors watched by one thread, where adding or removing
//! one needs no wake-up of the watcher.
//!
//! # Safety
//!
//! No unsafe code: rustix wraps every call.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::epoll;

/// A set of descriptors watched for readability, each with a key.
pub(crate) struct Poller {
    fd: OwnedFd,
}

impl Poller {
    /// An empty set (close-on-exec).
    pub(crate) fn new() -> io::Result<Poller> {
        Ok(Poller {
            fd: epoll::create(epoll::CreateFlags::CLOEXEC)?,
        })
    }

    /// Watches `fd` for input (and hang-up), reported with `key`.
    pub(crate) fn add(&self, fd: BorrowedFd<'_>, key: u64) -> io::Result<()> {
        Ok(epoll::add(
            &self.fd,
            fd,
            epoll::EventData::new_u64(key),
            epoll::EventFlags::IN | epoll::EventFlags::RDHUP,
        )?)
    }

    /// Stops watching `fd`.
    pub(crate) fn remove(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        Ok(epoll::delete(&self.fd, fd)?)
    }

    /// Waits up to `timeout` (forever for `None`) and appends the keys of the
    /// ready descriptors to `keys`.
    pub(crate) fn wait(&self, keys: &mut Vec<u64>, timeout: Option<Duration>) -> io::Result<()> {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(64);
        let ts = timeout.map(|t| rustix::time::Timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: t.subsec_nanos() as _,
        });
        loop {
            events.clear();
            match epoll::wait(
                self.fd.as_fd(),
                rustix::buffer::spare_capacity(&mut events),
                ts.as_ref(),
            ) {
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(_) => break,
            }
        }
        keys.extend(events.iter().map(|e| e.data.u64()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_readable_descriptor_is_reported_with_its_key() {
        let poller = Poller::new().unwrap();
        let (r, w) = crate::sys::socket::pipe().unwrap();
        poller.add(r.as_fd(), 7).unwrap();
        let mut keys = Vec::new();
        poller.wait(&mut keys, Some(Duration::ZERO)).unwrap();
        assert!(keys.is_empty());
        crate::sys::socket::write(w.as_fd(), b"x").unwrap();
        poller
            .wait(&mut keys, Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(keys, [7]);
        poller.remove(r.as_fd()).unwrap();
        keys.clear();
        poller.wait(&mut keys, Some(Duration::ZERO)).unwrap();
        assert!(keys.is_empty());
    }
}
