//! The header's layout: where each shared word lives, creating a ring and checking
//! one that arrives from another process.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use super::wait::SPIN_START_NS;
use super::{Kind, MIN_RING_BYTES, Params, Ring, fault, max_message_for};
use crate::sys::barrier;
use crate::sys::memory::{Mapping, file_len, memfd};
use crate::sys::shm_region::SharedRegion;
use crate::sys::thread_mark;

pub(super) const MAGIC: u64 = u64::from_le_bytes(*b"mprocQ01");
/// 5: `H_CLOSED` holds the bits [`CLOSED`], [`SHUT_DOWN`], [`IMMEDIATE`].
pub(super) const VERSION: u32 = 5;

// Header: read-only after creation.
pub(super) const H_MAGIC: usize = 0;
pub(super) const H_VERSION: usize = 8;
pub(super) const H_KIND: usize = 12;
pub(super) const H_RING: usize = 16;
pub(super) const H_CAPACITY: usize = 24;
pub(super) const H_MAX_MSG: usize = 32;
pub(super) const H_WRAP_AT: usize = 40;
pub(super) const H_TYPE_HASH: usize = 48;
pub(super) const H_TYPE_LEN: usize = 56;
pub(super) const H_TYPE_NAME: usize = 64;
pub(super) const TYPE_NAME_MAX: usize = 192;
// Shared flags and statistics.
/// Why puts are refused: 0 (they are not), or the bits below.
pub(super) const H_CLOSED: usize = 256;
/// `close()` was called: puts fail, gets drain.
pub(super) const CLOSED: u32 = 1;
/// `shutdown()` was called: puts fail, gets drain.
pub(super) const SHUT_DOWN: u32 = 2;
/// `shutdown(immediate = true)` was called: what was queued was discarded.
pub(super) const IMMEDIATE: u32 = 4;
pub(super) const H_RECOVERIES: usize = 264;
/// 1: waiters issue a global `membarrier` before they sleep, and producers skip
/// their fence (see *Waiting*); 0: both sides fence.
pub(super) const H_ASYMMETRIC: usize = 272;
/// The creator's PID namespace ([`thread_mark::pid_namespace`]): lock holders are
/// named by thread id, which only means the same thread within one namespace.
pub(super) const H_PID_NAMESPACE: usize = 280;
// Producer side (written under the producer lock).
/// The producer lock: 0, or the holder's [`thread_mark`].
pub(super) const P_LOCK: usize = 512;
pub(super) const P_TAIL: usize = 576;
pub(super) const P_COUNT: usize = 584;
pub(super) const P_SEEN_HEAD: usize = 592;
pub(super) const P_SEEN_GOT: usize = 600;
pub(super) const P_WRAP_MARK: usize = 608;
// Consumer side (written by consumers' CASes, lock-free).
pub(super) const C_HEAD: usize = 832;
pub(super) const C_COUNT: usize = 840;
// Wait words, each pair on its own cache line.
pub(super) const W_DATA_SEQ: usize = 1024;
pub(super) const W_DATA_WAITERS: usize = 1028;
pub(super) const W_SPACE_SEQ: usize = 1088;
pub(super) const W_SPACE_WAITERS: usize = 1092;
pub(super) const J_DONE: usize = 1152;
pub(super) const J_SEQ: usize = 1160;
pub(super) const J_WAITERS: usize = 1164;
pub(super) const W_LOCK_SEQ: usize = 1216;
pub(super) const W_LOCK_WAITERS: usize = 1220;
/// Where the ring starts.
pub(super) const RING_OFF: usize = 4096;

pub(super) const HDR: u64 = 16;
pub(super) const PAD: u64 = 1 << 63;

pub(super) struct Layout {
    size: u64,
    capacity: u64,
    max_message: usize,
    wrap_at: u64,
    asymmetric: bool,
}

fn type_hash(name: &str) -> u64 {
    // FNV-1a: stable, and enough to tell two element types apart.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Ring {
    /// Creates a new ring in a fresh memfd.
    pub(crate) fn create(p: &Params) -> io::Result<Ring> {
        let size = p.ring_bytes;
        debug_assert!(size.is_power_of_two() && size >= MIN_RING_BYTES);
        debug_assert!(p.max_message <= max_message_for(size));
        let name: &CStr = match p.kind {
            Kind::Queue => c"mproc-queue",
            Kind::Joinable => c"mproc-joinable-queue",
            Kind::Simple => c"mproc-simple-queue",
        };
        let total = RING_OFF as u64 + size;
        let total = usize::try_from(total)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "queue too large"))?;
        let fd = memfd(name, total)?;
        let region = SharedRegion::new(Mapping::new(fd.as_fd(), total)?);
        let wrap_at = (256u64 << 10).min(size / 2);
        region.u32_at(H_VERSION).store(VERSION, Ordering::Relaxed);
        region
            .u32_at(H_KIND)
            .store(p.kind as u32, Ordering::Relaxed);
        region.u64_at(H_RING).store(size, Ordering::Relaxed);
        let cap = p.capacity.unwrap_or(u64::MAX);
        region.u64_at(H_CAPACITY).store(cap, Ordering::Relaxed);
        region
            .u64_at(H_MAX_MSG)
            .store(p.max_message as u64, Ordering::Relaxed);
        region.u64_at(H_WRAP_AT).store(wrap_at, Ordering::Relaxed);
        region
            .u64_at(H_TYPE_HASH)
            .store(type_hash(p.type_name), Ordering::Relaxed);
        let tn = &p.type_name.as_bytes()[..p.type_name.len().min(TYPE_NAME_MAX)];
        region
            .u32_at(H_TYPE_LEN)
            .store(tn.len() as u32, Ordering::Relaxed);
        region.write(H_TYPE_NAME, tn);
        region
            .u64_at(H_PID_NAMESPACE)
            .store(thread_mark::pid_namespace(), Ordering::Relaxed);
        let asymmetric = !fault::fenced() && barrier::register();
        region
            .u32_at(H_ASYMMETRIC)
            .store(u32::from(asymmetric), Ordering::Relaxed);
        region.u64_at(H_MAGIC).store(MAGIC, Ordering::Release);
        let layout = Layout {
            size,
            capacity: cap,
            max_message: p.max_message,
            wrap_at,
            asymmetric,
        };
        Ok(Ring::new(region, fd, p.kind, layout))
    }

    /// This process's view of a ring with the given layout (as `create` wrote it
    /// or `attach` checked it).
    pub(super) fn new(region: SharedRegion, fd: OwnedFd, kind: Kind, layout: Layout) -> Ring {
        Ring {
            region,
            fd,
            kind,
            size: layout.size,
            mask: layout.size - 1,
            capacity: layout.capacity,
            max_message: layout.max_message,
            wrap_at: layout.wrap_at,
            asymmetric: layout.asymmetric,
            spin_ns: AtomicU32::new(SPIN_START_NS),
            wake_misses: Default::default(),
        }
    }

    /// Maps a ring that arrived from another process, checking that it is a ring of
    /// the expected kind and element type.
    pub(crate) fn attach(fd: OwnedFd, kind: Kind, type_name: &str) -> io::Result<Ring> {
        let total = file_len(fd.as_fd())?;
        if total < RING_OFF + MIN_RING_BYTES as usize {
            return Err(invalid(format!(
                "descriptor is not an mproc queue (only {total} bytes)"
            )));
        }
        let region = SharedRegion::new(Mapping::new(fd.as_fd(), total)?);
        if region.u64_at(H_MAGIC).load(Ordering::Acquire) != MAGIC {
            return Err(invalid("descriptor is not an mproc queue".into()));
        }
        let version = region.u32_at(H_VERSION).load(Ordering::Relaxed);
        if version != VERSION {
            return Err(invalid(format!(
                "queue layout version {version} is not the supported {VERSION}"
            )));
        }
        let found = region.u32_at(H_KIND).load(Ordering::Relaxed);
        if found != kind as u32 {
            let name = [Kind::Queue, Kind::Joinable, Kind::Simple]
                .into_iter()
                .find(|k| *k as u32 == found)
                .map_or("unknown", Kind::name);
            return Err(invalid(format!(
                "a {name} arrived where a {} was expected",
                kind.name()
            )));
        }
        if region.u64_at(H_TYPE_HASH).load(Ordering::Relaxed) != type_hash(type_name) {
            let len =
                (region.u32_at(H_TYPE_LEN).load(Ordering::Relaxed) as usize).min(TYPE_NAME_MAX);
            let mut buf = vec![0u8; len];
            region.read(H_TYPE_NAME, &mut buf);
            return Err(invalid(format!(
                "a queue of `{}` arrived where a queue of `{type_name}` was expected",
                String::from_utf8_lossy(&buf)
            )));
        }
        let size = region.u64_at(H_RING).load(Ordering::Relaxed);
        let cap = region.u64_at(H_CAPACITY).load(Ordering::Relaxed);
        let max = region.u64_at(H_MAX_MSG).load(Ordering::Relaxed);
        let wrap_at = region.u64_at(H_WRAP_AT).load(Ordering::Relaxed);
        if !size.is_power_of_two()
            || size < MIN_RING_BYTES
            || RING_OFF as u64 + size != total as u64
            || cap == 0
            || max > max_message_for(size) as u64
            || wrap_at > size
        {
            return Err(invalid("queue header is damaged".into()));
        }
        let asymmetric = match region.u32_at(H_ASYMMETRIC).load(Ordering::Relaxed) {
            0 => false,
            1 if barrier::register() => true,
            1 => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "this queue was created in a process that uses membarrier(2) \
                     (MEMBARRIER_CMD_GLOBAL_EXPEDITED) to wake its waiters, and this \
                     process cannot register for it (an older kernel, or a seccomp \
                     filter that blocks membarrier); create the queue where every \
                     process that uses it can",
                ));
            }
            _ => return Err(invalid("queue header is damaged".into())),
        };
        let theirs = region.u64_at(H_PID_NAMESPACE).load(Ordering::Relaxed);
        let ours = thread_mark::pid_namespace();
        if theirs != 0 && ours != 0 && theirs != ours {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this queue was created in another PID namespace; its producers name \
                 each other by thread id, which differs between namespaces, so it can \
                 only be shared by processes of one namespace",
            ));
        }
        let layout = Layout {
            size,
            capacity: cap,
            max_message: max as usize,
            wrap_at,
            asymmetric,
        };
        Ok(Ring::new(region, fd, kind, layout))
    }
}
