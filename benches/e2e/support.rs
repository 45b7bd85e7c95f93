//! Helpers of the end-to-end benches (`e2e_*`): the `kairos` binary as a child process, the
//! raw machine references measured in the same run, and percentiles. Included with
//! `#[path = "e2e/support.rs"] mod e2e_support;`.
#![allow(
    dead_code,
    reason = "each end-to-end bench uses a different subset of these helpers"
)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A count from the environment variable `name`, or `default`.
pub(crate) fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `--override name=value` arguments for the broker from `KAIROS_BENCH_OVERRIDES`
/// (space-separated `name=value` pairs), to compare broker configs in the same bench.
pub(crate) fn override_args() -> Vec<String> {
    std::env::var("KAIROS_BENCH_OVERRIDES")
        .unwrap_or_default()
        .split_whitespace()
        .flat_map(|config| ["--override".to_owned(), config.to_owned()])
        .collect()
}

/// The `kairos` binary, running.
pub(crate) struct Broker {
    child: Child,
    /// `host:port` of its Kafka listener.
    pub(crate) bootstrap: String,
}

impl Broker {
    /// Starts the binary over `dir` on an ephemeral port with `extra` arguments, and waits for
    /// its "listening on" line.
    pub(crate) fn start(dir: &Path, extra: &[&str]) -> Broker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kairos"))
            .arg("--data-dir")
            .arg(dir)
            .args(["--listener", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("kairos starts");
        let mut line = String::new();
        let mut stdout = child.stdout.take().expect("stdout");
        let mut byte = [0_u8; 1];
        while stdout.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            line.push(char::from(byte[0]));
        }
        let bootstrap = line
            .trim()
            .trim_start_matches("kairos listening on ")
            .to_owned();
        // Keep draining: a closed pipe would make the broker's logging fail.
        let _drain = std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Broker { child, bootstrap }
    }

    /// The process id (to attach a profiler).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size, KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// CPU time the process has used so far (user + system), from `/proc/<pid>/stat`.
    pub(crate) fn cpu_time(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let ticks: u64 = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .skip(11)
                    .take(2)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum()
            })
            .unwrap_or(0);
        // USER_HZ is 100 on Linux.
        Duration::from_millis(ticks * 10)
    }

    /// Stops the broker cleanly (SIGTERM: snapshots and the clean-shutdown marker).
    pub(crate) fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sequential file write of `total` bytes in 1 MiB writes, then fdatasync: the disk reference.
pub(crate) fn disk_mb_s(dir: &Path, total: usize) -> f64 {
    let path = dir.join("reference.bin");
    let mut file = std::fs::File::create(&path).expect("create");
    let chunk = vec![b'd'; 1 << 20];
    let started = Instant::now();
    let mut written = 0;
    while written < total {
        file.write_all(&chunk).expect("write");
        written += chunk.len();
    }
    file.sync_data().expect("fdatasync");
    let elapsed = started.elapsed();
    let _ = std::fs::remove_file(&path);
    mb_s(written, elapsed)
}

/// Megabytes (10^6) per second.
pub(crate) fn mb_s(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / 1_000_000.0 / elapsed.as_secs_f64()
}

/// The `p` quantile of sorted values.
pub(crate) fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

/// `GET path` over HTTP/1.1 on `address`; the body.
pub(crate) fn http_get(address: &str, path: &str) -> String {
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return String::new();
    };
    let _ = stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// A free loopback port (for the metrics listener).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
