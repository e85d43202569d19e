//! Entry points for fuzzing the server's decoders with arbitrary bytes (used by the
//! `manager` test suite; not part of the API).

use std::io::{self, Read, Write};

use super::proto::{self, FrameDecoder, Request};

/// What feeding bytes to the decoder produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Whole frames split off.
    pub frames: usize,
    /// Frames that decoded to a request.
    pub requests: usize,
    /// Whether the stream was refused (a frame over the limit).
    pub refused: bool,
}

/// Feeds `bytes` to the server's frame decoder in pieces of `piece` bytes and
/// decodes every frame as a request, as the server does.
pub fn decode_stream(bytes: &[u8], piece: usize, max_frame: usize) -> Decoded {
    let mut d = FrameDecoder::new(max_frame);
    let mut out = Decoded::default();
    for chunk in bytes.chunks(piece.max(1)) {
        d.push(chunk);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => {
                    out.frames += 1;
                    if proto::decode::<Request>(&f).is_ok() {
                        out.requests += 1;
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    out.refused = true;
                    return out;
                }
            }
        }
    }
    out
}

/// Decodes `bytes` as one request; whether that worked.
pub fn decode_request(bytes: &[u8]) -> bool {
    proto::decode::<Request>(bytes).is_ok()
}

struct Scripted<'a> {
    input: &'a [u8],
}

impl Read for Scripted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Scripted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs the server's side of the handshake against `bytes` from a client; whether
/// the client was accepted (random bytes must never be).
pub fn server_handshake(bytes: &[u8], key: &[u8]) -> bool {
    super::auth::server(&mut Scripted { input: bytes }, key).is_ok()
}
