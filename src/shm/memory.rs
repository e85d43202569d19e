//! `SharedMemory`: a block of bytes shared between processes.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ShmError;
use super::handle::{RegionIn, RegionOut};
use super::raw::{Region, ShmSafe, Unlink};

/// A block of memory shared between processes, like Python's
/// `multiprocessing.shared_memory.SharedMemory`.
///
/// Two kinds:
///
/// - **Anonymous** ([`SharedMemory::new`]): a `memfd`, reachable only through handles.
///   Pass a clone to a child as a task argument (or through a `Pipe`); the block
///   disappears when the last handle in the last process is gone, **including when
///   every process using it is killed**: nothing can leak.
/// - **Named** ([`SharedMemory::create`], [`SharedMemory::open`]): a POSIX object in
///   `/dev/shm`, for processes that are not related. Who removes the name:
///   the process that **created** it, when its last handle is dropped, unless it
///   called [`persist`](SharedMemory::persist) first. Processes that opened it by
///   name, or received a handle, never remove it (but may call
///   [`unlink`](SharedMemory::unlink) explicitly). Removing the name does not
///   disturb processes that have it mapped. If the creator is killed, the name is
///   left behind (the kernel cannot know it was meant to be temporary): the next
///   `create` of that name fails with [`ShmError::AlreadyExists`], and
///   `SharedMemory::open(name)?.unlink()` removes it.
///
/// Access is by copy ([`read`](SharedMemory::read), [`write`](SharedMemory::write),
/// [`load`](SharedMemory::load), [`store`](SharedMemory::store)): other processes
/// may write at any moment, so mproc never lends out references into the block.
/// Copies are made with atomic instructions, so a concurrent write can make a copy
/// *tear* (mix old and new bytes) but never causes undefined behaviour. Use a
/// [`Lock`](crate::sync::Lock) or atomics for consistency.
///
/// Cloning a handle is cheap (it shares the mapping).
///
/// # Examples
///
/// ```
/// use mproc::shm::SharedMemory;
///
/// let shm = SharedMemory::new(4096)?;
/// shm.write(0, b"hello");
/// let mut buf = [0u8; 5];
/// shm.read(0, &mut buf);
/// assert_eq!(&buf, b"hello");
/// # Ok::<(), mproc::shm::ShmError>(())
/// ```
#[derive(Clone)]
pub struct SharedMemory {
    region: Arc<Region>,
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory")
            .field("name", &self.name())
            .field("len", &self.len())
            .finish()
    }
}

fn shm_name(name: &str) -> Result<CString, ShmError> {
    let bad = |reason| ShmError::InvalidName {
        name: name.to_string(),
        reason,
    };
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() || bare == "." || bare == ".." {
        return Err(bad("the name is empty"));
    }
    if bare.contains('/') {
        return Err(bad(
            "the name may not contain '/' after the first character",
        ));
    }
    if bare.len() > 250 {
        return Err(bad("the name is longer than 250 bytes"));
    }
    CString::new(format!("/{bare}")).map_err(|_| bad("the name contains a NUL byte"))
}

impl SharedMemory {
    /// Creates an anonymous block of `len` zero bytes (`memfd_create`).
    ///
    /// # Errors
    ///
    /// [`ShmError::Size`] when `len` is 0; [`ShmError::Create`] when the system
    /// refuses (out of descriptors or memory).
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = mproc::shm::SharedMemory::new(100)?;
    /// assert_eq!(shm.len(), 100);
    /// assert_eq!(shm.name(), None);
    /// assert_eq!(shm.load::<u64>(8), 0);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn new(len: usize) -> Result<SharedMemory, ShmError> {
        if len == 0 {
            return Err(ShmError::Size { len, elem_size: 1 });
        }
        let region = Region::anonymous(c"mproc-shm", len)
            .map_err(|source| ShmError::Create { len, source })?;
        Ok(SharedMemory {
            region: Arc::new(region),
        })
    }

    /// Creates the named block `name` of `len` zero bytes (`shm_open` with
    /// `O_CREAT | O_EXCL`), visible to unrelated processes as `/dev/shm/<name>`.
    ///
    /// `name` may start with `/` and may not contain another `/`. This process
    /// removes the name when its last handle is dropped, unless
    /// [`persist`](SharedMemory::persist) is called.
    ///
    /// # Errors
    ///
    /// [`ShmError::AlreadyExists`], [`ShmError::InvalidName`], [`ShmError::Size`]
    /// for a zero `len`, and [`ShmError::Create`].
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::shm::SharedMemory;
    ///
    /// let name = format!("mproc-doc-create-{}", std::process::id());
    /// let shm = SharedMemory::create(&name, 64)?;
    /// shm.store(0, 42u32);
    /// let other = SharedMemory::open(&name)?; // as an unrelated process would
    /// assert_eq!(other.load::<u32>(0), 42);
    /// drop((shm, other));
    /// assert!(SharedMemory::open(&name).is_err()); // the creator removed the name
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn create(name: &str, len: usize) -> Result<SharedMemory, ShmError> {
        let cname = shm_name(name)?;
        if len == 0 {
            return Err(ShmError::Size { len, elem_size: 1 });
        }
        let region = Region::create_named(&cname, len, Unlink::OnDrop).map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                ShmError::AlreadyExists { name: bare(&cname) }
            } else {
                ShmError::Create { len, source }
            }
        })?;
        Ok(SharedMemory {
            region: Arc::new(region),
        })
    }

    /// Opens the existing named block `name`, mapping all of it.
    ///
    /// # Errors
    ///
    /// [`ShmError::NotFound`], [`ShmError::InvalidName`], [`ShmError::Open`].
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::shm::{SharedMemory, ShmError};
    ///
    /// let err = SharedMemory::open("mproc-doc-no-such-block").unwrap_err();
    /// assert!(matches!(err, ShmError::NotFound { .. }));
    /// ```
    pub fn open(name: &str) -> Result<SharedMemory, ShmError> {
        let cname = shm_name(name)?;
        let region = Region::open_named(&cname).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                ShmError::NotFound { name: bare(&cname) }
            } else {
                ShmError::Open {
                    name: bare(&cname),
                    source,
                }
            }
        })?;
        Ok(SharedMemory {
            region: Arc::new(region),
        })
    }

    /// Keeps the name after this process's handles are dropped (a named block
    /// created here). The name then lives until someone calls
    /// [`unlink`](SharedMemory::unlink) or the machine reboots. No effect on other
    /// blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::shm::SharedMemory;
    ///
    /// let name = format!("mproc-doc-persist-{}", std::process::id());
    /// let shm = SharedMemory::create(&name, 8)?;
    /// shm.persist();
    /// drop(shm);
    /// let again = SharedMemory::open(&name)?; // still there
    /// assert_eq!(again.name(), Some(name.as_str()));
    /// again.unlink()?;
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn persist(&self) {
        self.region.set_unlink(Unlink::Never);
    }

    /// Removes the name of a named block now, as Python's `SharedMemory.unlink`
    /// (`shm_unlink`). Processes that have it mapped keep using it; nobody can open
    /// it by name any more. An anonymous block has no name: `Ok(())`.
    ///
    /// # Errors
    ///
    /// [`ShmError::NotFound`] when the name was already removed.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::shm::SharedMemory;
    ///
    /// let name = format!("mproc-doc-unlink-{}", std::process::id());
    /// let shm = SharedMemory::create(&name, 8)?;
    /// shm.unlink()?;
    /// assert!(SharedMemory::open(&name).is_err());
    /// shm.store(0, 7u8); // the mapping itself is still fine
    /// assert_eq!(shm.load::<u8>(0), 7);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn unlink(&self) -> Result<(), ShmError> {
        let Some(name) = self.region.name() else {
            return Ok(());
        };
        self.region.set_unlink(Unlink::Never);
        crate::sys::memory::shm_unlink(name).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                ShmError::NotFound { name: bare(name) }
            } else {
                ShmError::Open {
                    name: bare(name),
                    source,
                }
            }
        })
    }

    /// The name of a named block, without the leading `/` (as Python reports it);
    /// `None` for an anonymous block.
    ///
    /// # Examples
    ///
    /// ```
    /// use mproc::shm::SharedMemory;
    ///
    /// let name = format!("mproc-doc-name-{}", std::process::id());
    /// let shm = SharedMemory::create(&format!("/{name}"), 8)?;
    /// assert_eq!(shm.name(), Some(name.as_str()));
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        let n = self.region.name()?.to_str().ok()?;
        Some(n.strip_prefix('/').unwrap_or(n))
    }

    /// The size of the block in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = mproc::shm::SharedMemory::new(10)?;
    /// assert_eq!(shm.len(), 10);
    /// assert!(!shm.is_empty());
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.region.len()
    }

    /// Always `false`: a block has at least one byte. (For symmetry with `len`.)
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!mproc::shm::SharedMemory::new(1)?.is_empty());
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `buf.len()` bytes starting at `offset` into `buf`.
    ///
    /// # Panics
    ///
    /// When `offset + buf.len()` exceeds [`len`](SharedMemory::len).
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = mproc::shm::SharedMemory::new(8)?;
    /// shm.write(2, &[1, 2, 3]);
    /// let mut buf = [9u8; 4];
    /// shm.read(1, &mut buf);
    /// assert_eq!(buf, [0, 1, 2, 3]);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn read(&self, offset: usize, buf: &mut [u8]) {
        if self.region.read_bytes(offset, buf).is_none() {
            out_of_bounds(offset, buf.len(), self.len());
        }
    }

    /// Copies `buf` into the block at `offset`.
    ///
    /// # Panics
    ///
    /// When `offset + buf.len()` exceeds [`len`](SharedMemory::len).
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = mproc::shm::SharedMemory::new(4)?;
    /// shm.write(0, &[1, 2, 3, 4]);
    /// assert_eq!(shm.to_vec(), [1, 2, 3, 4]);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn write(&self, offset: usize, buf: &[u8]) {
        if self.region.write_bytes(offset, buf).is_none() {
            out_of_bounds(offset, buf.len(), self.len());
        }
    }

    /// Copies the whole block into a new vector.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = mproc::shm::SharedMemory::new(3)?;
    /// assert_eq!(shm.to_vec(), [0, 0, 0]);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len()];
        self.read(0, &mut v);
        v
    }

    /// Copies a `T` out of the block at byte `offset` (any alignment).
    ///
    /// # Panics
    ///
    /// When the value does not fit in the block at `offset`.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = mproc::shm::SharedMemory::new(16)?;
    /// shm.store(3, 1.5f64);
    /// assert_eq!(shm.load::<f64>(3), 1.5);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn load<T: ShmSafe>(&self, offset: usize) -> T {
        match self.region.read(offset) {
            Some(v) => v,
            None => out_of_bounds(offset, size_of::<T>(), self.len()),
        }
    }

    /// Copies `value` into the block at byte `offset` (any alignment).
    ///
    /// # Panics
    ///
    /// When the value does not fit in the block at `offset`.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = mproc::shm::SharedMemory::new(8)?;
    /// shm.store(0, [1u16, 2, 3, 4]);
    /// assert_eq!(shm.load::<[u16; 4]>(0), [1, 2, 3, 4]);
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn store<T: ShmSafe>(&self, offset: usize, value: T) {
        if self.region.write(offset, value).is_none() {
            out_of_bounds(offset, size_of::<T>(), self.len());
        }
    }

    /// The address of the first byte in this process, for foreign code that wants
    /// it (a C library, a GPU upload). Reading or writing through it is `unsafe`
    /// and subject to the same rule as everywhere: other processes may write at any
    /// moment. The address is valid while any handle to this block lives in this
    /// process.
    ///
    /// # Examples
    ///
    /// ```
    /// let shm = mproc::shm::SharedMemory::new(8)?;
    /// assert!(!shm.as_ptr().is_null());
    /// # Ok::<(), mproc::shm::ShmError>(())
    /// ```
    pub fn as_ptr(&self) -> *mut u8 {
        self.region.as_ptr()
    }
}

fn bare(name: &std::ffi::CStr) -> String {
    let n = name.to_string_lossy();
    n.strip_prefix('/').unwrap_or(&n).to_string()
}

#[cold]
#[track_caller]
fn out_of_bounds(offset: usize, len: usize, size: usize) -> ! {
    panic!(
        "shared memory access of {len} bytes at offset {offset} is out of bounds for a block of {size} bytes"
    )
}

impl Serialize for SharedMemory {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RegionOut::new(&self.region).serialize(s)
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let region = RegionIn::deserialize(d)?.into_region()?;
        Ok(SharedMemory {
            region: Arc::new(region),
        })
    }
}
