//! The one place that talks to the operating system.
//!
//! Everything above this module sees a small, safe, internal API over std types
//! (`OwnedFd`, `BorrowedFd<'_>`, `io::Result`, `Duration`). The implementation for
//! each platform lives in its own directory and is picked here, once. Platforms
//! without an implementation get [`unsupported`], whose calls fail with
//! `ErrorKind::Unsupported`, so that the crate still builds there.
//!
//! No other module names `libc`, `rustix` or an operating system.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(not(target_os = "linux"))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
pub(crate) use unsupported::*;
