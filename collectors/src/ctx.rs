//! The collection context: everything a collector may touch.
//!
//! Collectors never open host files or write bundle entries themselves; they ask the
//! context, which reads under the collector root with a per-read time limit ([`Guard`]),
//! caps each file, charges the byte budget, writes the entry and records the outcome in
//! the manifest. That keeps limits, timeouts and bookkeeping in one place.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use snap_bundle::manifest::{EntryRecord, EntryStatus};
use snap_bundle::scan::{Filesystem, SocketOwner};
use snap_bundle::writer::Scratch;
use snap_bundle::BundleWriter;

use crate::guard::{Guard, Pending, Progress, Stuck};

/// Why a collection must stop now.
#[derive(Debug)]
pub enum Stop {
    /// The overall deadline passed: collectors stop, the bundle is still written.
    Deadline,
    /// Ctrl-C or SIGTERM: nothing is written.
    Interrupted,
    /// Writing the bundle failed (a full disk): nothing is written.
    Output(io::Error),
}

/// Data one collector leaves for a later one (the registry order guarantees who runs
/// first). Kept small and typed so the compiler checks every use.
#[derive(Default)]
pub struct Shared {
    /// Socket inode to the processes holding it, from the open-file scan.
    pub socket_owners: std::collections::HashMap<u64, Vec<SocketOwner>>,
    /// Mount figures from the filesystem scan, for the disk-usage walk.
    pub filesystems: Vec<Filesystem>,
    /// Where the kernel log came from, for the manifest.
    pub kernel_log_source: Option<String>,
}

/// The outcome of reading one host file.
#[derive(Debug, Clone, Default)]
pub struct ReadOutcome {
    pub status: EntryStatus,
    pub data: Vec<u8>,
    pub errno: Option<i32>,
    pub message: Option<String>,
    pub duration_us: u64,
}

impl ReadOutcome {
    pub fn failed(err: &io::Error, started: Instant) -> ReadOutcome {
        ReadOutcome {
            status: EntryStatus::from_io(err),
            data: Vec::new(),
            errno: err.raw_os_error(),
            message: Some(err.to_string()),
            duration_us: started.elapsed().as_micros() as u64,
        }
    }

    pub fn stuck(stuck: &Stuck, duration: Duration) -> ReadOutcome {
        ReadOutcome {
            status: if matches!(stuck, Stuck::Panicked) { EntryStatus::Failed } else { EntryStatus::TimedOut },
            message: Some(stuck.to_string()),
            duration_us: duration.as_micros() as u64,
            ..Default::default()
        }
    }
}

/// Reads at most `cap` bytes of a file; more is recorded as truncation.
pub fn read_capped(path: &Path, cap: u64) -> ReadOutcome {
    let started = Instant::now();
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return ReadOutcome::failed(&e, started),
    };
    // /proc and /sys files report size 0 and are generated per read: start with a page
    // so that a typical file takes one read plus the one that sees EOF.
    let mut data = Vec::with_capacity(4096.min(cap as usize + 1));
    match (&mut f).take(cap + 1).read_to_end(&mut data) {
        Ok(_) => {}
        Err(e) => return ReadOutcome::failed(&e, started),
    }
    let mut status = EntryStatus::Ok;
    let mut message = None;
    if data.len() as u64 > cap {
        data.truncate(cap as usize);
        status = EntryStatus::Truncated;
        message = Some(format!("cut at the per-file cap of {cap} bytes"));
    }
    ReadOutcome { status, data, errno: None, message, duration_us: started.elapsed().as_micros() as u64 }
}

/// Settings the context enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    pub deadline: Instant,
    pub max_bytes: u64,
    pub max_file_bytes: u64,
    pub read_timeout: Duration,
    pub max_stuck: usize,
    /// Worker threads for reads that can block.
    pub workers: usize,
}

pub struct Ctx {
    root: PathBuf,
    limits: Limits,
    writer: BundleWriter,
    records: Vec<EntryRecord>,
    guard: Guard,
    bytes_read: u64,
    interrupt: Arc<AtomicBool>,
    fatal: Option<io::Error>,
    progress: Box<dyn FnMut(&str)>,
    /// Whether environment variables may be collected (`--environ`).
    pub environ: bool,
    pub shared: Shared,
}

impl Ctx {
    pub fn new(
        root: PathBuf,
        limits: Limits,
        writer: BundleWriter,
        interrupt: Arc<AtomicBool>,
        progress: Box<dyn FnMut(&str)>,
    ) -> Ctx {
        let guard = Guard::with_workers(limits.read_timeout, limits.max_stuck, limits.workers);
        Ctx {
            root,
            limits,
            writer,
            records: Vec::new(),
            guard,
            bytes_read: 0,
            interrupt,
            fatal: None,
            progress,
            environ: false,
            shared: Shared::default(),
        }
    }

    /// The collector root (`/` on a live host, a prepared tree in tests).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the collector root is the real host root.
    pub fn is_host_root(&self) -> bool {
        self.root == Path::new("/")
    }

    /// The real path of a host path under the collector root.
    pub fn host(&self, host_path: &str) -> PathBuf {
        self.root.join(host_path.trim_start_matches('/'))
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Tells the user what is happening (on a terminal only; the runner decides).
    pub fn progress(&mut self, what: &str) {
        (self.progress)(what)
    }

    /// Ok while the collection may go on.
    pub fn check(&self) -> Result<(), Stop> {
        if self.interrupt.load(Ordering::Relaxed) {
            return Err(Stop::Interrupted);
        }
        if let Some(e) = &self.fatal {
            // Keep the errno (ENOSPC tells the user the destination is full).
            let copy =
                e.raw_os_error().map_or_else(|| io::Error::new(e.kind(), e.to_string()), io::Error::from_raw_os_error);
            return Err(Stop::Output(copy));
        }
        if Instant::now() >= self.limits.deadline {
            return Err(Stop::Deadline);
        }
        Ok(())
    }

    pub(crate) fn take_fatal(&mut self) -> Option<io::Error> {
        self.fatal.take()
    }

    /// Runs blocking-prone work under the per-read time limit.
    pub fn guarded<T, F>(&mut self, f: F) -> Result<T, Stuck>
    where
        T: Send + 'static,
        F: FnOnce(&Progress) -> T + Send + 'static,
    {
        self.guard.run(self.limits.deadline, f)
    }

    /// Starts blocking-prone work on an idle worker; see [`Guard::submit`].
    pub fn submit<T, F>(&mut self, f: F) -> Result<Pending<T>, Stuck>
    where
        T: Send + 'static,
        F: FnOnce(&Progress) -> T + Send + 'static,
    {
        self.guard.submit(f)
    }

    /// Waits for submitted work under the per-read time limit and the deadline.
    pub fn wait<T>(&mut self, pending: Pending<T>) -> Result<T, Stuck> {
        self.guard.wait(pending, self.limits.deadline)
    }

    pub fn has_idle_worker(&self) -> bool {
        self.guard.has_idle_worker()
    }

    /// Reads one host file under the time limit without storing it.
    pub fn read(&mut self, host_path: &str) -> ReadOutcome {
        let path = self.host(host_path);
        let cap = self.limits.max_file_bytes;
        let started = Instant::now();
        let label = host_path.to_string();
        let out = self
            .guarded(move |p| {
                p.step(&label);
                read_capped(&path, cap)
            })
            .unwrap_or_else(|s| ReadOutcome::stuck(&s, started.elapsed()));
        self.bytes_read += out.data.len() as u64;
        out
    }

    /// Copies host files to the given entry names. Reads run as one guarded job; if
    /// one blocks, it is recorded as timed out and the rest of the batch is skipped
    /// (they usually share the stuck process or mount). Returns each outcome's status
    /// and, when `keep` is set, its data.
    pub fn copy_batch(&mut self, items: Vec<(String, String)>, keep: bool) -> Vec<(EntryStatus, Vec<u8>)> {
        if items.is_empty() {
            return Vec::new();
        }
        let cap = self.limits.max_file_bytes;
        let mut outcomes: Vec<ReadOutcome> = Vec::with_capacity(items.len());
        // A read that blocks is recorded as timed out and the rest of the batch goes on
        // on a fresh worker; `max_stuck` bounds how often that can happen.
        while outcomes.len() < items.len() {
            let first = outcomes.len();
            let paths: Vec<(String, PathBuf)> = items[first..].iter().map(|(h, _)| (h.clone(), self.host(h))).collect();
            let results: Arc<Mutex<Vec<ReadOutcome>>> = Arc::new(Mutex::new(Vec::with_capacity(paths.len())));
            let sink = Arc::clone(&results);
            let started = Instant::now();
            let run = self.guarded(move |p| {
                for (label, path) in paths {
                    p.step(&label);
                    let out = read_capped(&path, cap);
                    sink.lock().expect("results lock").push(out);
                }
            });
            outcomes.append(&mut results.lock().expect("results lock"));
            let Err(stuck) = run else { break };
            outcomes.push(ReadOutcome::stuck(&stuck, started.elapsed()));
            if !matches!(stuck, Stuck::TimedOut { .. }) {
                // Deadline, refusal or a bug: the rest is not attempted.
                while outcomes.len() < items.len() {
                    let mut o = ReadOutcome::stuck(&stuck, Duration::ZERO);
                    o.message = Some(format!("not attempted: an earlier read in its batch {stuck}"));
                    outcomes.push(o);
                }
            }
        }
        items
            .into_iter()
            .zip(outcomes)
            .map(|((_, entry), out)| {
                self.bytes_read += out.data.len() as u64;
                let status = out.status;
                let mut data = if keep { out.data.clone() } else { Vec::new() };
                let status = self.put(&entry, out).unwrap_or(status);
                // What is returned is what was stored, even when the budget cut it.
                data.truncate(self.records.last().map_or(0, |r| r.bytes as usize));
                (status, data)
            })
            .collect()
    }

    /// Copies host files to their own paths in the bundle.
    pub fn copy_all<S: AsRef<str>>(&mut self, host_paths: &[S]) {
        let items = host_paths.iter().map(|h| (h.as_ref().to_string(), snap_bundle::names::raw(h.as_ref()))).collect();
        self.copy_batch(items, false);
    }

    /// Stores derived data (a scan) under `entry`.
    pub fn store(&mut self, entry: &str, data: Vec<u8>, duration: Duration) -> EntryStatus {
        let out = ReadOutcome { data, duration_us: duration.as_micros() as u64, ..Default::default() };
        self.put(entry, out).unwrap_or(EntryStatus::Failed)
    }

    /// A `.jsonl` scan under construction, kept out of memory when the bundle is
    /// written to a file.
    pub fn jsonl(&mut self) -> JsonLines {
        let scratch = self.writer.scratch();
        match scratch {
            Ok(scratch) => JsonLines { scratch: Some(scratch), error: None },
            Err(e) => JsonLines { scratch: None, error: Some(e) },
        }
    }

    /// Stores a finished `.jsonl` scan within the byte budget. A write error while it
    /// was built (a full disk) stops the run like any other output failure.
    pub fn store_jsonl(&mut self, entry: &str, lines: JsonLines, duration: Duration) -> EntryStatus {
        match (lines.scratch, lines.error) {
            (Some(s), None) => self.store_scratch(entry, s, duration),
            (_, e) => {
                self.fatal.get_or_insert(e.unwrap_or_else(|| io::Error::other("scan buffer missing")));
                EntryStatus::Failed
            }
        }
    }

    /// A scratch buffer for a large entry built elsewhere (the packet capture).
    pub fn scratch(&mut self) -> io::Result<Scratch> {
        self.writer.scratch()
    }

    /// Bytes the budget still allows.
    pub fn budget_left(&self) -> u64 {
        self.limits.max_bytes.saturating_sub(self.writer.stored_bytes())
    }

    /// Stores a scratch buffer as one entry within the byte budget.
    pub fn store_scratch(&mut self, entry: &str, scratch: Scratch, duration: Duration) -> EntryStatus {
        if self.fatal.is_some() {
            return EntryStatus::Failed;
        }
        let len = scratch.len();
        let left = self.limits.max_bytes.saturating_sub(self.writer.stored_bytes());
        let (status, message) = if len > left {
            (EntryStatus::Truncated, Some(format!("byte budget of {} bytes exhausted", self.limits.max_bytes)))
        } else {
            (EntryStatus::Ok, None)
        };
        match self.writer.add_scratch(entry, scratch, left) {
            Ok(bytes) => {
                self.records.push(EntryRecord {
                    path: entry.to_string(),
                    status,
                    errno: None,
                    message,
                    bytes,
                    duration_us: duration.as_micros() as u64,
                });
                status
            }
            Err(e) => {
                self.fatal = Some(e);
                EntryStatus::Failed
            }
        }
    }

    /// Records an entry that was attempted but produced no data.
    pub fn record_failure(&mut self, entry: &str, status: EntryStatus, message: String, duration: Duration) {
        self.records.push(EntryRecord {
            path: entry.to_string(),
            status,
            errno: None,
            message: Some(message),
            bytes: 0,
            duration_us: duration.as_micros() as u64,
        });
    }

    /// Writes an outcome into the bundle (within the byte budget) and the manifest.
    pub fn put(&mut self, entry: &str, mut out: ReadOutcome) -> Option<EntryStatus> {
        if self.fatal.is_some() {
            return None;
        }
        let storable = matches!(out.status, EntryStatus::Ok | EntryStatus::Truncated);
        if storable {
            let left = self.limits.max_bytes.saturating_sub(self.writer.stored_bytes());
            if out.data.len() as u64 > left {
                out.data.truncate(left as usize);
                out.status = EntryStatus::Truncated;
                out.message = Some(format!("byte budget of {} bytes exhausted", self.limits.max_bytes));
            }
            if !(out.status == EntryStatus::Truncated && out.data.is_empty()) {
                if let Err(e) = self.writer.add(entry, &out.data) {
                    self.fatal = Some(e);
                    return None;
                }
            }
        }
        self.records.push(EntryRecord {
            path: entry.to_string(),
            status: out.status,
            errno: out.errno,
            message: out.message,
            bytes: if storable { out.data.len() as u64 } else { 0 },
            duration_us: out.duration_us,
        });
        Some(out.status)
    }

    pub(crate) fn record_count(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn records_since(&self, n: usize) -> &[EntryRecord] {
        &self.records[n..]
    }

    pub(crate) fn into_parts(self) -> (BundleWriter, Vec<EntryRecord>, u64, usize) {
        let stuck = self.guard.stuck();
        (self.writer, self.records, self.bytes_read, stuck)
    }

    pub(crate) fn add_bytes_read(&mut self, n: u64) {
        self.bytes_read += n;
    }
}

/// One directory entry as collectors see it (symbolic links are not followed).
#[derive(Debug, Clone)]
pub struct Listed {
    pub name: String,
    /// Host path of the entry.
    pub path: String,
    pub is_dir: bool,
    pub is_file: bool,
    pub is_symlink: bool,
}

impl Ctx {
    /// Lists a host directory under the collector root, sorted by name; empty when it
    /// is absent or unreadable.
    pub fn list(&self, host_dir: &str) -> Vec<Listed> {
        let mut out: Vec<Listed> = std::fs::read_dir(self.host(host_dir))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let ft = e.file_type().ok()?;
                        let name = e.file_name().to_str()?.to_string();
                        Some(Listed {
                            path: format!("{}/{}", host_dir.trim_end_matches('/'), name),
                            name,
                            is_dir: ft.is_dir(),
                            is_file: ft.is_file(),
                            is_symlink: ft.is_symlink(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

/// Records of one `.jsonl` scan, serialised as they come (see [`Ctx::jsonl`]).
pub struct JsonLines {
    scratch: Option<Scratch>,
    error: Option<io::Error>,
}

impl JsonLines {
    /// Appends one record as a line. The first write error is kept for
    /// [`Ctx::store_jsonl`]; later records are dropped.
    pub fn push<T: serde::Serialize>(&mut self, record: &T) {
        if self.error.is_some() {
            return;
        }
        let Some(scratch) = self.scratch.as_mut() else { return };
        let r = serde_json::to_writer(&mut *scratch, record)
            .map_err(io::Error::from)
            .and_then(|()| scratch.write_all(b"\n"));
        if let Err(e) = r {
            self.error = Some(e);
        }
    }
}
