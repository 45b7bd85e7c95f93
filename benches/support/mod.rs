//! Helpers shared by the storage benches: batches of an exact size, scratch directories on the
//! project's disk, writers that restart their file outside the timed region, and a tiny
//! deterministic random number generator.
//!
//! Every bench file includes this module with `mod support;`, and each uses a different subset.
#![allow(
    dead_code,
    reason = "each bench binary uses a different subset of these helpers"
)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use kairos_storage::builder::{RecordBatchBuilder, RecordSpec};
use kairos_storage::{AppendOrigin, AppendOutcome, Compression, Log, LogConfig, LogManager};
use kairos_storage::{TopicPartition, file_names};
use tempfile::TempDir;

/// The batch sizes the append benches cover, from a small producer batch to
/// `max.message.bytes`.
pub(crate) const SIZES: [(&str, usize); 4] = [
    ("1KiB", 1 << 10),
    ("16KiB", 16 << 10),
    ("256KiB", 256 << 10),
    ("1MiB", 1 << 20),
];

/// Broker time passed to the log. Record timestamps start here too, so no segment ever looks
/// older than `segment.ms` and rolls by time during a bench.
pub(crate) const NOW_MS: i64 = 1_700_000_000_000;

/// Writers restart their file once it holds this much. The bound keeps the disk footprint and
/// the dirty page cache of a bench small and the same for the log and the raw references, so
/// both pay for extending a file of the same size.
pub(crate) const RESTART_BYTES: u64 = 256 << 20;

/// Short runs: the whole suite has to fit in a few minutes on a shared two-core machine. Command
/// line options (`--measurement-time`, `--sample-size`, ...) still override these.
pub(crate) fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .without_plots()
}

/// A fresh directory under Cargo's per-target scratch directory, which lives in `target/` and
/// so on the same disk as the project (unlike a system temp dir that may be a tmpfs).
pub(crate) fn scratch_dir(name: &str) -> TempDir {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(root).expect("create the scratch root");
    tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(root)
        .expect("create a scratch dir")
}

/// A JSON-like value of `len` bytes: compressible the way real payloads are, unlike zeros.
pub(crate) fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        let id = rng.below(1_000_000);
        let price = rng.below(100_000);
        let line = format!(
            "{{\"sku\":\"SKU-{id:06}\",\"price\":{price},\"currency\":\"EUR\",\"status\":\"active\"}}"
        );
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(len);
    out
}

/// An uncompressed batch of exactly `total` bytes (framing included), made of keyed records of
/// about 1 KiB, the last one sized to hit `total`.
pub(crate) fn batch_of_size(total: usize) -> Vec<u8> {
    const RECORD_VALUE_BYTES: usize = 1000;
    let records = (total / 1024).max(1);
    let full = payload(RECORD_VALUE_BYTES, 7);
    let base = (0..records - 1).fold(RecordBatchBuilder::new(), |b, i| {
        b.record_spec(spec(i, full.clone()))
    });
    let mut last_len = RECORD_VALUE_BYTES;
    for _ in 0..8 {
        let bytes = base
            .clone()
            .record_spec(spec(records - 1, payload(last_len, 8)))
            .build();
        if bytes.len() == total {
            return bytes;
        }
        // The size is monotonic in the value length; varint widths move it by a byte or two.
        last_len = (last_len + total).saturating_sub(bytes.len());
    }
    panic!("no batch of exactly {total} bytes");
}

/// A batch of `records` keyed records with `value_bytes`-byte JSON-like values, compressed with
/// `codec`.
pub(crate) fn keyed_batch(records: usize, value_bytes: usize, codec: Compression) -> Vec<u8> {
    (0..records)
        .fold(RecordBatchBuilder::new().compression(codec), |b, i| {
            b.record_spec(spec(i, payload(value_bytes, i as u64)))
        })
        .build()
}

fn spec(i: usize, value: Vec<u8>) -> RecordSpec {
    RecordSpec {
        key: Some(format!("key-{i:08}").into_bytes()),
        value: Some(value),
        timestamp_ms: NOW_MS + i as i64,
        headers: Vec::new(),
    }
}

/// Appends `batch` (offsets are patched in place, so the same buffer can be appended again)
/// and returns the last offset assigned.
pub(crate) fn append(log: &Log, batch: &mut [u8]) -> i64 {
    match log.append(batch, AppendOrigin::Client, NOW_MS, 0) {
        Ok(AppendOutcome::Appended(info)) => info.last_offset,
        other => panic!("append failed: {other:?}"),
    }
}

/// A log in its own scratch data directory.
pub(crate) struct BenchLog {
    pub(crate) log: Arc<Log>,
    /// Kept so the directory lock lives as long as the log.
    pub(crate) manager: LogManager,
    pub(crate) dir: TempDir,
}

impl BenchLog {
    pub(crate) fn new(name: &str, config: LogConfig) -> Self {
        let dir = scratch_dir(name);
        let manager = LogManager::open_std(dir.path(), NOW_MS).expect("open the data dir");
        let log = manager
            .get_or_create(&TopicPartition::new(name, 0), config, NOW_MS)
            .expect("create the log");
        Self { log, manager, dir }
    }

    /// Path of the `.log` file of the segment at `base_offset`.
    pub(crate) fn segment_path(&self, base_offset: i64) -> std::path::PathBuf {
        file_names::file_path(self.log.dir(), base_offset, file_names::LOG_SUFFIX)
    }

    /// Evicts every segment file of the log from the page cache, so the next read goes to disk.
    pub(crate) fn evict_page_cache(&self) {
        for base in self.log.segment_base_offsets() {
            evict_page_cache(&self.segment_path(base));
        }
    }
}

/// Asks the kernel to drop the cached pages of `path` (they must be clean: sync first). Mapped
/// pages, such as those of the memory-mapped indexes, stay resident.
pub(crate) fn evict_page_cache(path: &Path) {
    let file = File::open(path).expect("open for fadvise");
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).expect("posix_fadvise");
}

/// Something a batch is written to repeatedly: the log, or a plain file as the reference.
pub(crate) trait Sink {
    fn write(&mut self, batch: &mut [u8]);
    /// Whether the file has grown past [`RESTART_BYTES`].
    fn is_full(&self) -> bool;
    /// Empties the file. Runs outside the timed region.
    fn restart(&mut self);
}

/// Times `iters` writes of `batch`, excluding the restarts of the file.
pub(crate) fn time_writes(iters: u64, sink: &mut impl Sink, batch: &mut [u8]) -> Duration {
    let mut total = Duration::ZERO;
    let mut start = Instant::now();
    for _ in 0..iters {
        if sink.is_full() {
            total += start.elapsed();
            sink.restart();
            start = Instant::now();
        }
        sink.write(batch);
    }
    total + start.elapsed()
}

/// Appends to a log, optionally waiting for an fdatasync after every batch (acks=all with a
/// single producer).
pub(crate) struct LogSink {
    pub(crate) bench: BenchLog,
    pub(crate) sync_each: bool,
    written: u64,
}

impl LogSink {
    pub(crate) fn new(name: &str, config: LogConfig, sync_each: bool) -> Self {
        Self {
            bench: BenchLog::new(name, config),
            sync_each,
            written: 0,
        }
    }
}

impl Sink for LogSink {
    fn write(&mut self, batch: &mut [u8]) {
        let last = append(&self.bench.log, batch);
        if self.sync_each {
            self.bench
                .log
                .sync_to(last + 1, NOW_MS)
                .expect("sync_to failed");
        }
        self.written += batch.len() as u64;
    }
    fn is_full(&self) -> bool {
        self.written >= RESTART_BYTES
    }
    fn restart(&mut self) {
        self.bench.log.truncate_to(0).expect("truncate the log");
        self.written = 0;
    }
}

/// The raw reference: `write(2)` to a plain file, optionally followed by `fdatasync(2)`.
pub(crate) struct RawSink {
    file: File,
    pub(crate) sync_each: bool,
    written: u64,
    _dir: TempDir,
}

impl RawSink {
    pub(crate) fn new(name: &str, sync_each: bool) -> Self {
        let dir = scratch_dir(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(dir.path().join("raw.bin"))
            .expect("create the raw file");
        Self {
            file,
            sync_each,
            written: 0,
            _dir: dir,
        }
    }
}

impl Sink for RawSink {
    fn write(&mut self, batch: &mut [u8]) {
        self.file.write_all(batch).expect("write failed");
        if self.sync_each {
            self.file.sync_data().expect("fdatasync failed");
        }
        self.written += batch.len() as u64;
    }
    fn is_full(&self) -> bool {
        self.written >= RESTART_BYTES
    }
    fn restart(&mut self) {
        self.file.set_len(0).expect("truncate the raw file");
        // The descriptor is not O_APPEND: write from the start again.
        std::io::Seek::rewind(&mut self.file).expect("rewind");
        self.written = 0;
    }
}

/// xorshift64*: enough randomness to pick offsets, with no dependency and a fixed seed so
/// runs are comparable.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform enough in `[0, n)` for `n` much smaller than 2^64.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}
