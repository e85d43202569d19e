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
    super::auth::server(&mut Scripted { input: bytes }, key, &[]).is_ok()
}

/// Valid framed requests of many kinds, as seeds for mutation.
pub fn sample_stream() -> Vec<u8> {
    use super::proto::{Blob, Kind, Op, Place};
    use crate::sys::code::EntryPoint;
    fn double(x: Option<u32>) -> u32 {
        x.unwrap_or(0) * 2
    }
    let b = |v: &[u8]| Blob(v.to_vec());
    // Ids as a fresh fuzzing server (instance 1) hands them out, in creation order.
    let (dict, queue, list, barrier) = (
        (1u64 << 32) | 1,
        (1u64 << 32) | 2,
        (1u64 << 32) | 3,
        (1u64 << 32) | 4,
    );
    let requests = vec![
        Request::Hello {
            session: 42,
            pid: 7,
        },
        Request::Create(Kind::Dict),
        Request::Create(Kind::Queue {
            maxsize: Some(3),
            joinable: true,
        }),
        Request::Create(Kind::List),
        Request::Named {
            name: "n".into(),
            kind: Kind::Barrier { parties: 2 },
        },
        Request::Create(Kind::Custom {
            type_name: "counter".into(),
            init: b(&[0]),
        }),
        Request::Op {
            id: dict,
            op: Op::Set(b(b"k"), b(b"v")),
        },
        Request::Op {
            id: dict,
            op: Op::Update(vec![(b(b"a"), b(b"b"))]),
        },
        Request::Op {
            id: dict,
            op: Op::UpdateWith(b(b"k"), EntryPoint::for_fn(double)),
        },
        Request::Op {
            id: list,
            op: Op::Extend(vec![b(b"x"), b(b"y")]),
        },
        Request::Op {
            id: list,
            op: Op::Slice(Some(-1), None),
        },
        Request::Op {
            id: list,
            op: Op::Insert(-5, b(b"z")),
        },
        Request::Op {
            id: list,
            op: Op::PopIndex(Some(1)),
        },
        Request::Op {
            id: queue,
            op: Op::TaskDone,
        },
        Request::Op {
            id: barrier,
            op: Op::BarrierReset,
        },
        Request::Op {
            id: dict,
            op: Op::CompareAndSet {
                key: b(b"k"),
                expected: None,
                new: b(b"x"),
            },
        },
        Request::PutObject {
            id: dict,
            place: Place::Key(b(b"l")),
            target: list,
        },
        Request::GetObject {
            id: dict,
            place: Place::Key(b(b"l")),
            expect: "list".into(),
        },
        Request::Op {
            id: dict,
            op: Op::Items,
        },
        Request::Op {
            id: dict,
            op: Op::Pop(b(b"l")),
        },
        Request::Retain(list),
        Request::Adopt(list),
        Request::Release(list),
        Request::Stats,
        Request::Shutdown,
    ];
    let mut out = Vec::new();
    for r in &requests {
        out.extend(proto::frame(&proto::encode(r)));
    }
    out
}

/// Decodes every frame of `bytes` and runs the requests that do not wait on a
/// fresh in-process server (functions sent by address are refused, as on a remote
/// connection); returns how many ran. A panic here is a bug.
pub fn serve_stream(bytes: &[u8], max_frame: usize) -> usize {
    use super::proto::Op;
    let server = super::server::Server::for_fuzzing();
    let mut d = FrameDecoder::new(max_frame);
    d.push(bytes);
    let mut ran = 0;
    while let Ok(Some(f)) = d.next_frame() {
        let Ok(req) = proto::decode::<Request>(&f) else {
            continue;
        };
        let waits = matches!(
            &req,
            Request::Op {
                op: Op::Acquire { .. }
                    | Op::Take { .. }
                    | Op::Put { .. }
                    | Op::JoinQueue { .. }
                    | Op::WaitEvent { .. }
                    | Op::CondWait { .. }
                    | Op::BarrierWait { .. },
                ..
            }
        );
        if waits {
            continue;
        }
        server.handle_for_fuzzing(req);
        ran += 1;
    }
    ran
}
