//! How shared regions travel: the descriptor out-of-band (see `crate::codec`), the
//! name (if any) in the bytes.

use serde::{Deserialize, Serialize};
use std::ffi::CString;

use super::raw::{Region, Shared, ShmHeader, Unlink};
use crate::handle::{Fd, FdRef};

/// The wire form of a region, borrowed for sending.
#[derive(Serialize)]
pub(crate) struct RegionOut<'a> {
    fd: FdRef<'a>,
    name: Option<&'a [u8]>,
}

impl<'a> RegionOut<'a> {
    /// The wire form of `region`.
    pub(crate) fn new(region: &'a Region) -> RegionOut<'a> {
        RegionOut {
            fd: FdRef(region.fd()),
            name: region.name().map(|n| n.to_bytes()),
        }
    }
}

/// The wire form of a region, received.
#[derive(Deserialize)]
pub(crate) struct RegionIn {
    fd: Fd,
    name: Option<Vec<u8>>,
}

impl RegionIn {
    /// Maps the received region. A receiver never removes a name: that stays the
    /// creator's job.
    pub(crate) fn into_region<E: serde::de::Error>(self) -> Result<Region, E> {
        let name = match self.name {
            Some(n) => {
                Some(CString::new(n).map_err(|_| E::custom("shared memory name contains NUL"))?)
            }
            None => None,
        };
        Region::from_fd(self.fd.0, name, Unlink::Never)
            .map_err(|e| E::custom(format!("cannot map received shared memory: {e}")))
    }

    /// Maps the received region and views it as `H` plus `tail_len(header)` bytes.
    pub(crate) fn into_shared<H: ShmHeader, E: serde::de::Error>(
        self,
        tail_len: impl FnOnce(&Region) -> Result<usize, String>,
    ) -> Result<Shared<H>, E> {
        let region = self.into_region::<E>()?;
        let tail = tail_len(&region).map_err(E::custom)?;
        Shared::open(region, tail).map_err(|e| E::custom(e.to_string()))
    }
}
