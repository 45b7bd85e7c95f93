//! The seam under the file system. Every create, open, rename, delete and sync in the crate goes
//! through [`FileSystem`], so tests can fail the Nth operation or simulate a crash that drops
//! whatever was never synced.
//!
//! Index files are memory-mapped, which needs a real file descriptor: every implementation hands
//! out handles backed by real files (see [`FileHandle::as_std_file`]). The fault-injecting
//! implementations wrap [`StdFs`] rather than simulate storage in memory.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An open file. Positions are explicit (`pread`/`pwrite`), so a handle can be shared by a
/// writer and many readers without a seek cursor.
#[expect(
    clippy::len_without_is_empty,
    reason = "a file's length is an I/O call, not a collection size"
)]
pub trait FileHandle: Send + Sync + Debug {
    /// Reads up to `buf.len()` bytes at `pos`; returns how many were read (0 at end of file).
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `pos`.
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;
    /// `fdatasync`: makes written data durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The real file behind the handle, for memory mapping.
    fn as_std_file(&self) -> &File;

    /// Reads exactly `buf.len()` bytes at `pos`, failing with `UnexpectedEof` if the file is
    /// shorter.
    fn read_exact_at(&self, mut buf: &mut [u8], mut pos: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, pos)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = buf.get_mut(n..).unwrap_or_default();
                    pos += n as u64;
                }
            }
        }
        Ok(())
    }
}

/// The file-system operations the log engine uses.
pub trait FileSystem: Send + Sync + Debug {
    /// Opens `path` for reading and writing, creating it if `create` is set.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileHandle>>;
    /// `mkdir -p`.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Names of the entries of a directory.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Atomic rename within one file system.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Deletes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Deletes a directory and everything in it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// `fsync` on a directory, making creations, renames and deletions in it durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Whether a path exists.
    fn exists(&self, path: &Path) -> bool;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

#[derive(Debug)]
struct StdFile {
    file: File,
}

impl FileHandle for StdFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.file.read_at(buf, pos)
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.file.write_all_at(buf, pos)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn as_std_file(&self) -> &File {
        &self.file
    }
}

impl FileSystem for StdFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileHandle>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Arc::new(StdFile { file }))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

/// Writes `bytes` to `path` atomically and durably: write a `.tmp` sibling, fsync it, rename it
/// over `path`, fsync the directory. A crash leaves either the old or the new contents.
pub fn write_atomically(fs: &dyn FileSystem, path: &Path, bytes: &[u8]) -> crate::Result<()> {
    let tmp = tmp_path(path);
    let io = |op, e| crate::Error::io(op, &tmp, e);
    let file = fs.open(&tmp, true).map_err(|e| io("open", e))?;
    file.set_len(0).map_err(|e| io("truncate", e))?;
    file.write_all_at(bytes, 0).map_err(|e| io("write", e))?;
    file.sync_data().map_err(|e| io("fsync", e))?;
    drop(file);
    fs.rename(&tmp, path)
        .map_err(|e| crate::Error::io("rename", path, e))?;
    if let Some(dir) = path.parent() {
        fs.sync_dir(dir)
            .map_err(|e| crate::Error::io("fsync dir", dir, e))?;
    }
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(crate::file_names::TMP_SUFFIX);
    path.with_file_name(name)
}
