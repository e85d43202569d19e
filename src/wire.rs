//! Length-prefixed frames with descriptors over a Unix stream socket.
//!
//! A frame is an 8-byte header (`u32` payload length, `u32` descriptor count, both
//! little-endian) followed by the payload; the descriptors ride on the header's
//! `sendmsg`. Used by the process bootstrap and the forkserver.

use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;

use crate::codec::Message;
use crate::sys::socket;

const HEADER: usize = 8;

/// Sends one frame carrying `bytes` and `fds`.
pub(crate) fn send(sock: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame larger than 4 GiB"))?;
    let mut header = [0u8; HEADER];
    header[..4].copy_from_slice(&len.to_le_bytes());
    header[4..].copy_from_slice(&(fds.len() as u32).to_le_bytes());
    let mut sent = socket::send_with_fds(sock, &[IoSlice::new(&header), IoSlice::new(bytes)], fds)?;
    let total = HEADER + bytes.len();
    while sent < total {
        let n = if sent < HEADER {
            socket::send_with_fds(
                sock,
                &[IoSlice::new(&header[sent..]), IoSlice::new(bytes)],
                &[],
            )?
        } else {
            socket::send_with_fds(sock, &[IoSlice::new(&bytes[sent - HEADER..])], &[])?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        sent += n;
    }
    Ok(())
}

/// Receives one frame. `Ok(None)` at a clean end of stream (between frames); an end
/// of stream inside a frame is `UnexpectedEof`. A payload over `max_len` bytes is
/// `InvalidData` (its bytes are not read).
pub(crate) fn recv(sock: BorrowedFd<'_>, max_len: usize) -> io::Result<Option<Message>> {
    let mut fds = Vec::new();
    let mut header = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        let n = socket::recv_with_fds(sock, &mut header[got..], &mut fds)?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += n;
    }
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let nfds = u32::from_le_bytes(header[4..].try_into().expect("4 bytes")) as usize;
    if len > max_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the limit of {max_len}"),
        ));
    }
    let mut bytes = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = socket::recv_with_fds(sock, &mut bytes[got..], &mut fds)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got += n;
    }
    if fds.len() != nfds {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "frame announced {nfds} descriptors but {} arrived",
                fds.len()
            ),
        ));
    }
    Ok(Some(Message { bytes, fds }))
}
