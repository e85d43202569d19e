//! Messages between a parent, its children and the forkserver.
//!
//! All travel as [`crate::wire`] frames; descriptors ride beside the bytes.

use serde::{Deserialize, Serialize};

use crate::sys::code::EntryPoint;

/// The environment variable that marks a process started by mproc. Its value is
/// `<mode>:<parent pid>`; the bootstrap channel is descriptor [`CHANNEL_FD`].
pub(crate) const BOOTSTRAP_ENV: &str = "__MPROC_BOOTSTRAP";

/// The descriptor number of the bootstrap channel in a spawned process.
pub(crate) const CHANNEL_FD: i32 = 3;

/// Largest frame accepted on a control channel (a task's arguments or result).
pub(crate) const MAX_FRAME: usize = u32::MAX as usize;

/// Who started a process.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Origin {
    pub(crate) pid: u32,
    pub(crate) name: String,
}

/// Everything a child needs to run one task. The arguments' descriptors travel in
/// the frame, after any the frame's own protocol puts first.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Job {
    pub(crate) entry: EntryPoint,
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pub(crate) parent: Origin,
    pub(crate) args: Vec<u8>,
    /// A failure to stage before the handshake, for tests of the parent's reporting.
    pub(crate) fault: StartFault,
    /// Whether the child leads a process group of its own, so that its descendants
    /// are killed with it (`Builder::contain_descendants`).
    pub(crate) contain: bool,
    /// When set, the child forwards its log records up to this level (a
    /// `log::LevelFilter` as a number, 1 = error .. 5 = trace) on the socket that
    /// is the first of the arguments' descriptors.
    pub(crate) logs: Option<u8>,
    /// When set, the child limits its data segment to this many bytes before the
    /// task runs, and reports an abort after a failed allocation by writing a byte
    /// to the descriptor that follows the log socket (or comes first, without one).
    pub(crate) memory_limit: Option<u64>,
}

/// A failure a child can be asked to simulate before its handshake. Only the
/// hidden `Builder::simulate_start_fault` sets anything but `None`; it exists so
/// that tests can reach the parent's error paths for children that never start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[doc(hidden)]
pub enum StartFault {
    /// Start normally.
    #[default]
    None,
    /// Exit with code 3 before the handshake, as a child without the bootstrap would.
    ExitBeforeHandshake,
    /// Sleep this many milliseconds before the handshake.
    StallHandshake(u64),
}

/// What a child tells its parent over the control channel.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Report {
    /// The bootstrap ran and the task is about to run.
    Started,
    /// The task returned; the bytes are its encoded result (descriptors in the frame).
    Returned(Vec<u8>),
    /// The task panicked.
    Panicked(PanicReport),
    /// The task could not run or its result could not be sent.
    Failed(String),
    /// The report was too large to leave on the socket without a reader: it is the
    /// first `len` bytes of the anonymous file that is the frame's first descriptor
    /// (the report's own descriptors follow). The parent reads reports only once
    /// the child has exited, so a child must never block on a full socket.
    Spilled {
        /// Length of the encoded report in the file.
        len: u64,
    },
}

/// A panic, as the child saw it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PanicReport {
    pub(crate) message: String,
    pub(crate) location: Option<String>,
    pub(crate) backtrace: String,
}

/// A request to the forkserver: run `job` in a fresh child. Descriptors: the
/// child's control channel, the exit-status pipe's write end, then stdout and
/// stderr when `capture`, then the arguments' descriptors.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ForkRequest {
    pub(crate) job: Job,
    pub(crate) capture: bool,
}

/// What a client asks of the forkserver.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ServerRequest {
    /// Start a child; answered by a [`ForkReply`].
    Fork(ForkRequest),
    /// Kill (`SIGKILL`) the child with this pid, whose start failed on the client's
    /// side after the fork (its pidfd could not be received). Not answered.
    Kill(u32),
}

/// The forkserver's answer: the child's pid (with its pidfd in the frame) or why not.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ForkReply {
    Started(u32),
    Failed {
        /// What failed, for the message.
        reason: String,
        /// The OS error number, when a system call failed (a resource that ran out
        /// is reported as such to the client).
        errno: Option<i32>,
    },
}

/// Encodes an exit status for the forkserver's status pipe.
pub(crate) fn encode_status(exit: crate::sys::process::RawExit) -> [u8; 8] {
    let (tag, value) = match exit {
        crate::sys::process::RawExit::Code(c) => (0u32, c),
        crate::sys::process::RawExit::Signal(s) => (1u32, s),
    };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&tag.to_le_bytes());
    out[4..].copy_from_slice(&value.to_le_bytes());
    out
}

/// Decodes what [`encode_status`] wrote.
pub(crate) fn decode_status(bytes: [u8; 8]) -> Option<crate::sys::process::RawExit> {
    let tag = u32::from_le_bytes(bytes[..4].try_into().ok()?);
    let value = i32::from_le_bytes(bytes[4..].try_into().ok()?);
    match tag {
        0 => Some(crate::sys::process::RawExit::Code(value)),
        1 => Some(crate::sys::process::RawExit::Signal(value)),
        _ => None,
    }
}
