//! Socket options.
//!
//! # Safety
//!
//! No unsafe code.

use std::io;
use std::os::fd::BorrowedFd;

/// Sets the socket's send buffer (the kernel doubles it and caps it at
/// `net.core.wmem_max`).
pub(crate) fn set_send_buffer(sock: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    Ok(rustix::net::sockopt::set_socket_send_buffer_size(
        sock, bytes,
    )?)
}
