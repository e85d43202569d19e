//! Pipe ends from async code: the socket watched by the runtime's reactor.

use std::os::fd::{AsFd, BorrowedFd};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::conn::{Conn, Payload};
use super::{
    Connection, MessageError, Receiver, RecvError, SendError, Sender, recv_error, send_error,
};

async fn send_value_async<T: Serialize + ?Sized>(conn: &Conn, value: &T) -> Result<(), SendError> {
    let max = conn.max();
    let msg = crate::codec::encode_within(value, max).map_err(|e| {
        SendError::Invalid(match e {
            crate::codec::LimitedEncodeError::TooLarge { size } => {
                MessageError::too_large(size, max)
            }
            crate::codec::LimitedEncodeError::Codec(e) => MessageError::encode(e),
        })
    })?;
    let fds: Vec<BorrowedFd<'_>> = msg.fds.iter().map(|f| f.as_fd()).collect();
    conn.send_async(&msg.bytes, &fds).await.map_err(send_error)
}

async fn recv_value_async<T: DeserializeOwned>(conn: &Conn) -> Result<T, RecvError> {
    conn.recv_async(|payload, fds| crate::codec::decode_bytes::<T>(payload.as_slice(), fds))
        .await
        .map_err(recv_error)?
        .map_err(|e| RecvError::Invalid(MessageError::decode(e)))
}

async fn recv_bytes_async(conn: &Conn) -> Result<Vec<u8>, RecvError> {
    conn.recv_async(|payload: Payload<'_>, _fds| payload.into_vec())
        .await
        .map_err(recv_error)
}

macro_rules! send_async_methods {
    ($t:ident, $mk:literal) => {
        /// Sends `value` as [`send`](Self::send) does, without blocking the thread:
        /// while the socket's buffer is full (the peer is not reading), the task
        /// sleeps on the socket through the runtime's reactor.
        ///
        /// # Errors
        ///
        /// As for `send`.
        ///
        /// # Panics
        ///
        /// Outside a tokio runtime with I/O enabled (only when it has to wait).
        ///
        /// # Cancel safety
        ///
        /// Dropped before any byte of the message was written, nothing is sent.
        /// Once the first bytes are out the message is committed: if the future is
        /// dropped then, this end keeps the rest and writes it before the next
        /// message sent from it (a message is never torn or interleaved).
        ///
        /// # Examples
        ///
        /// ```
        /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        /// # rt.block_on(async {
        #[doc = concat!("let (tx, rx) = ", $mk, "::<String>()?;")]
        /// tx.send_async(&"hello".to_string()).await?;
        /// assert_eq!(rx.recv_async().await?, "hello");
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// # })?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub async fn send_async(&self, value: &$t) -> Result<(), SendError>
        where
            $t: Serialize,
        {
            send_value_async(&self.conn, value).await
        }

        /// Sends raw bytes as one message, as [`send_bytes`](Self::send_bytes)
        /// does, without blocking the thread.
        ///
        /// # Errors
        ///
        /// As for `send`.
        ///
        /// # Panics
        ///
        /// As for `send_async`.
        ///
        /// # Cancel safety
        ///
        /// As for `send_async`.
        ///
        /// # Examples
        ///
        /// ```
        /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        /// # rt.block_on(async {
        #[doc = concat!("let (tx, rx) = ", $mk, "::<()>()?;")]
        /// tx.send_bytes_async(b"raw").await?;
        /// assert_eq!(rx.recv_bytes_async().await?, b"raw");
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// # })?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub async fn send_bytes_async(&self, bytes: &[u8]) -> Result<(), SendError> {
            self.conn.send_async(bytes, &[]).await.map_err(send_error)
        }
    };
}

macro_rules! recv_async_methods {
    ($t:ident, $mk:literal) => {
        /// Receives the next message, as [`recv`](Self::recv) does, without
        /// blocking the thread: a message already here is taken at once (one
        /// non-blocking `recvmsg`, no spinning); otherwise the task sleeps on the
        /// socket through the runtime's reactor.
        ///
        /// # Errors
        ///
        /// As for `recv`: [`RecvError::Closed`] once the other end is gone (its
        /// process exited or was killed) and everything it sent is received.
        ///
        /// # Panics
        ///
        /// Outside a tokio runtime with I/O enabled (only when it has to wait).
        ///
        /// # Cancel safety
        ///
        /// Cancel-safe: bytes read from the socket, a partial message included,
        /// stay in this end until a receive completes, so dropping a pending
        /// `recv_async` loses no message. (Receiving on one end from a blocking
        /// thread and an async task at once makes the task wait for the thread's
        /// receive to finish; use one or the other per end.)
        ///
        /// # Examples
        ///
        /// ```
        /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        /// # rt.block_on(async {
        #[doc = concat!("let (tx, rx) = ", $mk, "::<u32>()?;")]
        /// let reader = async { rx.recv_async().await };
        /// let writer = async { tx.send_async(&7).await };
        /// let (got, sent) = tokio::join!(reader, writer);
        /// sent?;
        /// assert_eq!(got?, 7);
        /// drop(tx);
        /// assert!(rx.recv_async().await.unwrap_err().is_closed());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// # })?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub async fn recv_async(&self) -> Result<$t, RecvError>
        where
            $t: DeserializeOwned,
        {
            recv_value_async(&self.conn).await
        }

        /// Receives the next message as raw bytes, as
        /// [`recv_bytes`](Self::recv_bytes) does, without blocking the thread.
        ///
        /// # Errors
        ///
        /// As for `recv_bytes`.
        ///
        /// # Panics
        ///
        /// As for `recv_async`.
        ///
        /// # Cancel safety
        ///
        /// As for `recv_async`: cancel-safe.
        ///
        /// # Examples
        ///
        /// ```
        /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        /// # rt.block_on(async {
        #[doc = concat!("let (tx, rx) = ", $mk, "::<u8>()?;")]
        /// tx.send_bytes(&[1, 2, 3])?;
        /// assert_eq!(rx.recv_bytes_async().await?, [1, 2, 3]);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// # })?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub async fn recv_bytes_async(&self) -> Result<Vec<u8>, RecvError> {
            recv_bytes_async(&self.conn).await
        }
    };
}

impl<S, R> Connection<S, R> {
    send_async_methods!(S, "mproc::pipe::duplex");
    recv_async_methods!(R, "mproc::pipe::duplex");
}

impl<T> Sender<T> {
    send_async_methods!(T, "mproc::pipe::simplex");
}

impl<T> Receiver<T> {
    recv_async_methods!(T, "mproc::pipe::simplex");
}
