//! `FaultyFs`: a [`FileSystem`] that wraps [`StdFs`] and can fail chosen operations and
//! simulate a crash.
//!
//! Files stay real files (index files are memory-mapped through [`FileHandle::as_std_file`]),
//! so the fault injection is bookkeeping around real I/O:
//!
//! - **Failures.** [`FaultyFs::arm`] schedules one [`Fault`]: the Nth matching write, sync or
//!   `set_len` (counted from the moment it is armed) fails with an errno, optionally after writing only
//!   part of its buffer (a short write). A fault fires once; the log under test must not retry.
//! - **Syncs are simulated.** `sync_data` and `sync_dir` update the bookkeeping below without
//!   calling the real fsync, which would only make the tests slow on a busy disk.
//! - **Counters.** Every `write_all_at`, `sync_data`, `sync_dir` and `set_len` is recorded with
//!   its path,
//!   so tests can assert that no fsync is issued after a failure.
//! - **Crash.** For every file it has seen, `FaultyFs` tracks the *durable length* (its length
//!   at the last successful `sync_data`, or at first sight for files that existed before) and
//!   whether its directory entry is durable (a `sync_dir` of its parent after it was created).
//!   [`FaultyFs::crash`] truncates every file back to its durable length, deletes files (and
//!   directories) whose creation never reached a directory sync, and undoes renames that no
//!   directory sync followed, restoring the overwritten file's bytes.
//!
//! A crash leaves one of the states a real power loss can leave, the harshest for data that
//! was never synced. Simplifications (a real crash may also leave other states):
//! - data written over an already durable range is not modelled (the log only appends; a
//!   truncation lowers the durable length at once, as if the truncation itself were durable);
//! - deletions (`remove_file`, `remove_dir_all`) are durable at once: a crash never resurrects
//!   a deleted file;
//! - writes through a memory map (index entries) are invisible to it: an index file keeps its
//!   durable length but its mapped contents are whatever the page cache holds.
//!
//! Call [`FaultyFs::crash`] only after dropping every `Log` and `LogManager` that uses it: a
//! mapped file must not shrink under its map.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use kairos_storage::fs::{FileHandle, FileSystem, StdFs};

/// Linux `ENOSPC`: no space left on device.
pub(crate) const ENOSPC: i32 = 28;
/// Linux `EIO`: I/O error.
pub(crate) const EIO: i32 = 5;

/// Which operations a [`Fault`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultOp {
    /// `FileHandle::write_all_at`.
    Write,
    /// `FileHandle::sync_data`.
    SyncData,
    /// `FileSystem::sync_dir`.
    SyncDir,
    /// Either kind of sync.
    AnySync,
    /// `FileHandle::set_len`: preallocating, trimming or truncating a file.
    SetLen,
    /// Any of the above.
    Any,
}

/// One scheduled failure.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    /// The operations counted.
    pub op: FaultOp,
    /// Fail the `nth` matching operation after arming (1 is the next one).
    pub nth: u64,
    /// The errno the failing operation returns.
    pub errno: i32,
    /// For writes: write this many bytes of the buffer before failing (a short write).
    pub short_write_bytes: Option<usize>,
    /// Only operations on paths under this one count.
    pub under: Option<PathBuf>,
}

impl Fault {
    /// Fails the next matching operation with `errno`.
    pub(crate) fn next(op: FaultOp, errno: i32) -> Self {
        Self {
            op,
            nth: 1,
            errno,
            short_write_bytes: None,
            under: None,
        }
    }

    /// Counts only operations on paths under `dir`.
    pub(crate) fn under(mut self, dir: &Path) -> Self {
        self.under = Some(dir.to_path_buf());
        self
    }

    /// Fails the `nth` matching operation instead of the next one.
    pub(crate) fn nth(mut self, nth: u64) -> Self {
        self.nth = nth;
        self
    }

    /// Makes a write fault a short write of `bytes` bytes.
    pub(crate) fn short(mut self, bytes: usize) -> Self {
        self.short_write_bytes = Some(bytes);
        self
    }

    fn matches(&self, op: FaultOp, path: &Path) -> bool {
        let op_matches = match self.op {
            FaultOp::AnySync => matches!(op, FaultOp::SyncData | FaultOp::SyncDir),
            FaultOp::Any => true,
            wanted => wanted == op,
        };
        op_matches && self.under.as_ref().is_none_or(|dir| path.starts_with(dir))
    }
}

/// What the fault-injecting file system knows about one file or directory.
#[derive(Debug, Clone)]
struct Entry {
    path: PathBuf,
    is_dir: bool,
    /// Length at the last successful `sync_data` (files only).
    durable_len: u64,
    /// Whether the directory entry survives a crash.
    entry_durable: bool,
}

/// A rename not yet followed by a sync of its directory.
#[derive(Debug)]
struct PendingRename {
    from: PathBuf,
    to: PathBuf,
    /// The bytes `to` held before it was replaced, if it existed, and what was known of it.
    replaced: Option<(Vec<u8>, Option<Entry>)>,
}

#[derive(Debug, Default)]
struct State {
    /// Keyed by a stable id, so that open handles follow their file through renames.
    entries: HashMap<u64, Entry>,
    next_id: u64,
    renames: Vec<PendingRename>,
    armed: Option<Fault>,
    /// Matching operations seen since the fault was armed.
    armed_seen: u64,
    fired: u64,
    /// Index in `ops` of the operation the last fault failed.
    fired_at: Option<usize>,
    /// Every operation, in order: (kind, path).
    ops: Vec<(FaultOp, PathBuf)>,
}

impl State {
    fn id_of(&self, path: &Path) -> Option<u64> {
        self.entries
            .iter()
            .find(|(_, e)| e.path == path)
            .map(|(&id, _)| id)
    }

    fn insert(&mut self, entry: Entry) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let _ = self.entries.insert(id, entry);
        id
    }

    /// Records an operation and returns the errno to fail it with, if the armed fault fires.
    fn check(&mut self, op: FaultOp, path: &Path) -> Option<Fault> {
        self.ops.push((op, path.to_path_buf()));
        let fault = self.armed.as_ref()?;
        if !fault.matches(op, path) {
            return None;
        }
        self.armed_seen += 1;
        if self.armed_seen < fault.nth {
            return None;
        }
        self.fired += 1;
        self.fired_at = Some(self.ops.len() - 1);
        self.armed_seen = 0;
        self.armed.take()
    }
}

/// The fault-injecting file system. Cloning shares the state; hand `Arc::new(fs.clone())` to
/// the code under test and keep `fs` to drive it.
#[derive(Clone, Default)]
pub(crate) struct FaultyFs {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FaultyFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyFs").finish_non_exhaustive()
    }
}

impl FaultyFs {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The same state as a `FileSystem` for `LogManager::open` and `Log::open`.
    pub(crate) fn handle(&self) -> Arc<dyn FileSystem> {
        Arc::new(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the state from the others.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Schedules `fault`, replacing any fault not yet fired.
    pub(crate) fn arm(&self, fault: Fault) {
        let mut state = self.lock();
        state.armed = Some(fault);
        state.armed_seen = 0;
    }

    /// Cancels a fault not yet fired.
    pub(crate) fn disarm(&self) {
        self.lock().armed = None;
    }

    /// How many faults have fired.
    pub(crate) fn fired(&self) -> u64 {
        self.lock().fired
    }

    /// Number of operations of kind `op` (`AnySync` counts both syncs) on paths under `dir`.
    pub(crate) fn count(&self, op: FaultOp, dir: &Path) -> usize {
        let probe = Fault::next(op, 0).under(dir);
        self.lock()
            .ops
            .iter()
            .filter(|(kind, path)| probe.matches(*kind, path))
            .count()
    }

    /// Number of operations of kind `op` on paths under `dir` after the last fault fired.
    ///
    /// # Panics
    /// If no fault has fired.
    pub(crate) fn count_since_fault(&self, op: FaultOp, dir: &Path) -> usize {
        let probe = Fault::next(op, 0).under(dir);
        let state = self.lock();
        let fired_at = state.fired_at.expect("a fault fired");
        state.ops[fired_at + 1..]
            .iter()
            .filter(|(kind, path)| probe.matches(*kind, path))
            .count()
    }

    /// Simulates power loss; see the module docs. Everything that survives is durable
    /// afterwards.
    ///
    /// # Panics
    /// On I/O errors of the real file system.
    pub(crate) fn crash(&self) {
        let mut state = self.lock();
        state.armed = None;
        let renames = std::mem::take(&mut state.renames);
        for rename in renames.into_iter().rev() {
            if state.id_of(&rename.to).is_none() && !rename.to.exists() {
                continue;
            }
            std::fs::rename(&rename.to, &rename.from).unwrap();
            if let Some(id) = state.id_of(&rename.to) {
                state
                    .entries
                    .get_mut(&id)
                    .unwrap()
                    .path
                    .clone_from(&rename.from);
            }
            if let Some((bytes, entry)) = rename.replaced {
                std::fs::write(&rename.to, bytes).unwrap();
                if let Some(entry) = entry {
                    let _ = state.insert(entry);
                }
            }
        }
        let mut entries: Vec<Entry> = state.entries.drain().map(|(_, e)| e).collect();
        // Files first, then directories deepest first.
        entries.sort_by_key(|e| (e.is_dir, std::cmp::Reverse(e.path.components().count())));
        for entry in entries {
            if !entry.path.exists() {
                continue;
            }
            if !entry.entry_durable {
                if entry.is_dir {
                    std::fs::remove_dir_all(&entry.path).unwrap();
                } else {
                    std::fs::remove_file(&entry.path).unwrap();
                }
            } else if !entry.is_dir {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&entry.path)
                    .unwrap();
                if file.metadata().unwrap().len() > entry.durable_len {
                    file.set_len(entry.durable_len).unwrap();
                }
            }
        }
    }
}

/// A handle whose writes and syncs go through the fault checks.
struct FaultyFile {
    inner: Arc<dyn FileHandle>,
    id: u64,
    fs: FaultyFs,
}

impl fmt::Debug for FaultyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyFile").field("id", &self.id).finish()
    }
}

impl FaultyFile {
    fn path(state: &State, id: u64) -> PathBuf {
        state
            .entries
            .get(&id)
            .map(|e| e.path.clone())
            .unwrap_or_default()
    }
}

impl FileHandle for FaultyFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.inner.read_at(buf, pos)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        let fault = {
            let mut state = self.fs.lock();
            let path = Self::path(&state, self.id);
            state.check(FaultOp::Write, &path)
        };
        match fault {
            None => self.inner.write_all_at(buf, pos),
            Some(fault) => {
                if let Some(n) = fault.short_write_bytes {
                    self.inner.write_all_at(&buf[..n.min(buf.len())], pos)?;
                }
                Err(io::Error::from_raw_os_error(fault.errno))
            }
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        let fault = {
            let mut state = self.fs.lock();
            let path = Self::path(&state, self.id);
            state.check(FaultOp::SyncData, &path)
        };
        if let Some(fault) = fault {
            return Err(io::Error::from_raw_os_error(fault.errno));
        }
        // Durability is simulated, so the real fdatasync is skipped: it would only slow the
        // tests down on a busy disk.
        let len = self.inner.len()?;
        if let Some(entry) = self.fs.lock().entries.get_mut(&self.id) {
            entry.durable_len = len;
        }
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let fault = {
            let mut state = self.fs.lock();
            let path = Self::path(&state, self.id);
            state.check(FaultOp::SetLen, &path)
        };
        if let Some(fault) = fault {
            return Err(io::Error::from_raw_os_error(fault.errno));
        }
        self.inner.set_len(len)?;
        if let Some(entry) = self.fs.lock().entries.get_mut(&self.id) {
            entry.durable_len = entry.durable_len.min(len);
        }
        Ok(())
    }

    fn as_std_file(&self) -> &File {
        self.inner.as_std_file()
    }
}

impl FileSystem for FaultyFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileHandle>> {
        let existed = path.exists();
        let inner = StdFs.open(path, create)?;
        let mut state = self.lock();
        let id = match state.id_of(path) {
            Some(id) => id,
            None => {
                let durable_len = if existed { inner.len()? } else { 0 };
                state.insert(Entry {
                    path: path.to_path_buf(),
                    is_dir: false,
                    durable_len,
                    entry_durable: existed,
                })
            }
        };
        drop(state);
        Ok(Arc::new(FaultyFile {
            inner,
            id,
            fs: self.clone(),
        }))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let missing: Vec<PathBuf> = path
            .ancestors()
            .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
            .map(Path::to_path_buf)
            .collect();
        StdFs.create_dir_all(path)?;
        let mut state = self.lock();
        for dir in missing {
            let _ = state.insert(Entry {
                path: dir,
                is_dir: true,
                durable_len: 0,
                entry_durable: false,
            });
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFs.list_dir(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let bytes = if to.exists() {
            Some(std::fs::read(to)?)
        } else {
            None
        };
        StdFs.rename(from, to)?;
        let mut state = self.lock();
        let old = state.id_of(to).and_then(|id| state.entries.remove(&id));
        let replaced = bytes.map(|b| (b, old));
        if let Some(id) = state.id_of(from) {
            state.entries.get_mut(&id).unwrap().path = to.to_path_buf();
        }
        state.renames.push(PendingRename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            replaced,
        });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_file(path)?;
        let mut state = self.lock();
        if let Some(id) = state.id_of(path) {
            let _ = state.entries.remove(&id);
        }
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_dir_all(path)?;
        let mut state = self.lock();
        state.entries.retain(|_, e| !e.path.starts_with(path));
        state
            .renames
            .retain(|r| !r.to.starts_with(path) && !r.from.starts_with(path));
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        if let Some(fault) = self.lock().check(FaultOp::SyncDir, path) {
            return Err(io::Error::from_raw_os_error(fault.errno));
        }
        // Simulated, as for `sync_data`.
        let mut state = self.lock();
        for entry in state.entries.values_mut() {
            if entry.path.parent() == Some(path) {
                entry.entry_durable = true;
            }
        }
        state.renames.retain(|r| r.to.parent() != Some(path));
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        StdFs.exists(path)
    }
}
