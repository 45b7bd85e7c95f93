//! The only `unsafe` code in the workspace: memory-mapping index files.
//!
//! SAFETY contract, upheld by [`super::IndexFile`]:
//! - the mapped file belongs to a log directory this process holds the lock on, so no other
//!   process truncates it;
//! - the file is never shrunk while mapped: `IndexFile` drops the map before `set_len` and
//!   maps again afterwards;
//! - the map is only accessed through `&`/`&mut` borrows of the `MmapMut`, which Rust's
//!   borrow rules keep exclusive for writes.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

use memmap2::MmapMut;

/// Maps the whole of `file` read-write.
pub(crate) fn map_mut(file: &File) -> io::Result<MmapMut> {
    // SAFETY: see the module contract: the file is private to this process and is not resized
    // while this map lives.
    unsafe { MmapMut::map_mut(file) }
}
