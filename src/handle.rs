//! A file descriptor as a field of a handle's serde form.
//!
//! Every handle type (shared region, pipe end, pool worker's socket) travels as a
//! serde value whose descriptors go out-of-band (see `crate::codec`): each
//! descriptor field serializes as an index into the list that travels beside the
//! bytes. [`FdRef`] is that field on the sending side (borrowed from the handle,
//! duplicated into the list by the encoder), [`Fd`] on the receiving side (the
//! descriptor taken out of the list, owned from then on).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A descriptor to send: serializes as the index of its duplicate in the
/// out-of-band list.
#[derive(Clone, Copy)]
pub(crate) struct FdRef<'a>(pub(crate) BorrowedFd<'a>);

impl Serialize for FdRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::codec::serialize_fd(self.0, s)
    }
}

/// A received descriptor (or an owned one to send, which serializes as
/// [`FdRef`] does).
pub(crate) struct Fd(pub(crate) OwnedFd);

impl Serialize for Fd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        FdRef(self.0.as_fd()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Fd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::codec::deserialize_fd(d).map(Fd)
    }
}
