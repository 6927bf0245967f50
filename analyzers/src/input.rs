//! What rules read: a bundle's entries, parsed on demand with the same parsers for
//! every source, and the reasons a rule cannot run.
//!
//! Raw /proc formats are parsed with procfs-core, given the captured page size and
//! clock ticks; snap's own scans with the bundle's record types. An absent entry is
//! [`Skip::Missing`] (the rule is "not evaluated"), an unreadable one [`Skip::Bad`]
//! (the rule "failed"), so one broken file never costs more than the rules reading it.

use std::any::Any;
use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::mpsc;

use snap_bundle::manifest::Manifest;
use snap_bundle::scan::{self, Filesystem, OpenFile, Process, Socket};
use snap_bundle::{names, Bundle};

use crate::compact;

mod descriptors;
pub use descriptors::{Descriptors, ProcessFds};

/// Why a rule could not produce its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// These entries are absent: the rule is not evaluated.
    Missing(Vec<String>),
    /// This entry is present but unusable: the rule failed.
    Bad { entry: String, detail: String },
}

impl Skip {
    pub fn missing(entry: &str) -> Skip {
        Skip::Missing(vec![entry.to_string()])
    }

    pub fn bad(entry: &str, detail: impl std::fmt::Display) -> Skip {
        Skip::Bad { entry: entry.to_string(), detail: detail.to_string() }
    }
}

pub type Need<T> = Result<T, Skip>;

/// Host facts with the defaults of the collecting machine's kind when unknown.
#[derive(Debug, Clone, Copy)]
pub struct SystemInfo {
    pub page_size: u64,
    pub clock_ticks: u64,
    pub boot_time: u64,
}

/// A bundle as the rules see it.
pub struct Input<'a> {
    bundle: &'a Bundle,
    filesystems: OnceCell<Need<Vec<Filesystem>>>,
    open_files: OnceCell<Need<Vec<OpenFile>>>,
    descriptors: OnceCell<Need<Descriptors>>,
    sockets: OnceCell<Need<Vec<Socket>>>,
    /// Results of the scans parsed ahead on another thread (see [`Input::prefetch`]).
    prefetched_sockets: RefCell<Option<mpsc::Receiver<Need<Vec<Socket>>>>>,
    prefetched_descriptors: RefCell<Option<mpsc::Receiver<Need<Descriptors>>>>,
    entries: OnceCell<Vec<String>>,
    processes: OnceCell<Need<Processes>>,
    /// Values derived once per analysis and shared by the rules (see [`Input::shared`]).
    memo: RefCell<HashMap<&'static str, Rc<dyn Any>>>,
}

impl<'a> Input<'a> {
    pub fn new(bundle: &'a Bundle) -> Input<'a> {
        Input {
            bundle,
            filesystems: OnceCell::new(),
            open_files: OnceCell::new(),
            descriptors: OnceCell::new(),
            sockets: OnceCell::new(),
            prefetched_sockets: RefCell::new(None),
            prefetched_descriptors: RefCell::new(None),
            entries: OnceCell::new(),
            processes: OnceCell::new(),
            memo: RefCell::new(HashMap::new()),
        }
    }

    /// A value several rules derive from the same entries (the kernel log's lines, the
    /// window's per-process CPU), computed by the first rule that asks and shared with the
    /// others. `key` names it; one key always holds one type.
    pub fn shared<T: 'static>(&self, key: &'static str, compute: impl FnOnce() -> T) -> Rc<T> {
        if let Some(v) = self.memo.borrow().get(key) {
            if let Ok(v) = Rc::clone(v).downcast::<T>() {
                return v;
            }
        }
        // Computed without holding the borrow: the computation may ask for other values.
        let v = Rc::new(compute());
        self.memo.borrow_mut().insert(key, Rc::clone(&v) as Rc<dyn Any>);
        v
    }

    /// The manifest without its per-entry records (see [`Bundle::manifest_head`]).
    pub fn manifest(&self) -> Option<&Manifest> {
        self.bundle.manifest_head()
    }

    /// The whole manifest, with the record of every attempted entry (read on first use).
    pub fn manifest_with_entries(&self) -> Option<&Manifest> {
        self.bundle.manifest()
    }

    /// The raw bytes of an entry (borrowed from an archive bundle, not copied).
    pub fn raw(&self, entry: &str) -> Need<Cow<'a, [u8]>> {
        match self.bundle.get(entry) {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(Skip::missing(entry)),
            Err(e) => Err(Skip::bad(entry, e)),
        }
    }

    /// An entry as a stream, for entries that may be too large to hold (a capture): a
    /// directory bundle's file is read as consumed, an archive's entry lent from memory.
    pub fn stream(&self, entry: &str) -> Need<snap_bundle::EntryReader<'a>> {
        match self.bundle.open_entry(entry) {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(Skip::missing(entry)),
            Err(e) => Err(Skip::bad(entry, e)),
        }
    }

    /// An entry as text (invalid UTF-8 replaced).
    pub fn text(&self, entry: &str) -> Need<Cow<'a, str>> {
        Ok(match self.raw(entry)? {
            Cow::Borrowed(b) => snap_bundle::text::lossy(b),
            Cow::Owned(v) => {
                Cow::Owned(String::from_utf8(v).unwrap_or_else(|e| snap_bundle::text::lossy(e.as_bytes()).into_owned()))
            }
        })
    }

    /// Whether the bundle holds an entry.
    pub fn has(&self, entry: &str) -> bool {
        matches!(self.bundle.get(entry), Ok(Some(_)))
    }

    /// Names of all entries (sorted).
    pub fn entries(&self) -> &[String] {
        // Listed once per analysis: rules ask for it many times and a busy host's
        // bundle has tens of thousands of entries.
        self.entries.get_or_init(|| self.bundle.entries().unwrap_or_default())
    }

    /// Page size, clock ticks and boot time from the manifest, or the usual x86_64 values.
    pub fn system_info(&self) -> SystemInfo {
        let h = self.manifest().map(|m| &m.host);
        let page_size = h.map(|h| h.page_size).filter(|v| *v > 0).unwrap_or(4096);
        let clock_ticks = h.map(|h| h.clock_ticks).filter(|v| *v > 0).unwrap_or(100);
        let boot_time = h.map(|h| h.boot_time).unwrap_or(0);
        SystemInfo { page_size, clock_ticks, boot_time }
    }

    /// Online CPUs: the manifest, else /sys's online list, else /proc/stat's cpuN lines.
    pub fn online_cpus(&self) -> Need<u32> {
        if let Some(n) = self.manifest().map(|m| m.host.online_cpus).filter(|n| *n > 0) {
            return Ok(n);
        }
        if let Ok(list) = self.text("sys/devices/system/cpu/online") {
            if let Some(n) = snap_bundle::cpulist::count(&list) {
                return Ok(n);
            }
        }
        let stat = self.text("proc/stat")?;
        let n = stat
            .lines()
            .filter(|l| l.strip_prefix("cpu").is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit())))
            .count() as u32;
        if n == 0 {
            return Err(Skip::bad("proc/stat", "no per-CPU lines"));
        }
        Ok(n)
    }

    /// `df` and `df -i` figures per mount.
    pub fn filesystems(&self) -> Need<&[Filesystem]> {
        self.filesystems.get_or_init(|| self.jsonl(names::FILESYSTEMS)).as_deref().map_err(Clone::clone)
    }

    /// The lsof-equivalent scan.
    pub fn open_files(&self) -> Need<&[OpenFile]> {
        self.open_files.get_or_init(|| self.jsonl(names::OPEN_FILES)).as_deref().map_err(Clone::clone)
    }

    /// What the rules need of the lsof-equivalent scan, in one pass that keeps only the
    /// per-process counts and the deleted files (a busy host's scan has hundreds of
    /// thousands of records).
    pub fn descriptors(&self) -> Need<&Descriptors> {
        self.descriptors
            .get_or_init(|| {
                let pending = self.prefetched_descriptors.borrow_mut().take();
                pending
                    .and_then(|rx| rx.recv().ok())
                    .unwrap_or_else(|| parse_descriptors(&self.raw(names::OPEN_FILES)?))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The netstat-equivalent scan.
    pub fn sockets(&self) -> Need<&[Socket]> {
        self.sockets
            .get_or_init(|| {
                let pending = self.prefetched_sockets.borrow_mut().take();
                pending.and_then(|rx| rx.recv().ok()).unwrap_or_else(|| parse_sockets(&self.raw(names::SOCKETS)?))
            })
            .as_deref()
            .map_err(Clone::clone)
    }

    /// Starts parsing the two large scans (sockets, open files) on threads of `scope`,
    /// so that the rules reading other entries run meanwhile; the accessors
    /// wait for the result. A scan that is absent, or a parse that panics, is left to
    /// the accessor, which reports it as usual.
    pub fn prefetch<'scope>(&self, scope: &'scope std::thread::Scope<'scope, '_>)
    where
        'a: 'scope,
    {
        let (Ok(sockets), Ok(open_files)) = (self.raw(names::SOCKETS), self.raw(names::OPEN_FILES)) else {
            return;
        };
        *self.prefetched_sockets.borrow_mut() = Some(spawn_parse(scope, sockets, parse_sockets));
        *self.prefetched_descriptors.borrow_mut() = Some(spawn_parse(scope, open_files, parse_descriptors));
    }

    fn jsonl<T: serde::de::DeserializeOwned>(&self, entry: &str) -> Need<Vec<T>> {
        let bytes = self.raw(entry)?;
        scan::parse_jsonl(&bytes).map_err(|e| Skip::bad(entry, e))
    }

    /// The entries whose names start with `prefix` (sorted, a slice of [`Input::entries`]).
    pub fn entries_under(&self, prefix: &str) -> &[String] {
        let all = self.entries();
        let start = all.partition_point(|e| e.as_str() < prefix);
        let len = all[start..].partition_point(|e| e.starts_with(prefix));
        &all[start..start + len]
    }

    /// Indexes of the samples holding `file` (`proc/stat`, `proc/net/snmp`), ascending.
    pub fn samples_with(&self, file: &str) -> Vec<usize> {
        let suffix = format!("/{file}");
        let mut indexes: Vec<usize> = self
            .entries_under("samples/")
            .iter()
            .filter_map(|e| e.strip_prefix("samples/")?.strip_suffix(&suffix)?.parse().ok())
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        indexes
    }

    /// Pids with a `proc/<pid>/stat` entry, ascending.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .entries_under("proc/")
            .iter()
            .filter_map(|e| e.strip_prefix("proc/")?.strip_suffix("/stat")?.parse().ok())
            .collect();
        pids.sort_unstable();
        pids
    }

    /// A process's stat, parsed by procfs-core. Every process's stat is parsed once, on
    /// the first call, and shared: several rules walk all processes.
    pub fn process_stat(&self, pid: u32) -> Need<procfs_core::process::Stat> {
        let all = self.shared("input::process_stats", || {
            self.pids()
                .into_iter()
                .map(|pid| {
                    let entry = format!("proc/{pid}/stat");
                    let parsed = self.raw(&entry).and_then(|b| process_stat(&b).map_err(|e| Skip::bad(&entry, e)));
                    (pid, parsed)
                })
                .collect::<BTreeMap<u32, Need<procfs_core::process::Stat>>>()
        });
        match all.get(&pid) {
            Some(parsed) => parsed.clone(),
            None => Err(Skip::missing(&format!("proc/{pid}/stat"))),
        }
    }

    /// Every process, for the rules that walk them: from `proc/<pid>/stat` in a snap
    /// bundle, else from the ps listings of a sos report (`scan/processes.jsonl`, made
    /// from them). Each row names the entry it came from.
    pub fn processes(&self) -> Need<&Processes> {
        self.processes
            .get_or_init(|| {
                let pids = self.pids();
                if !pids.is_empty() {
                    let page = self.system_info().page_size;
                    let rows = pids
                        .into_iter()
                        .filter_map(|pid| {
                            // A process whose stat cannot be parsed is left out.
                            let stat = self.process_stat(pid).ok()?;
                            Some((
                                pid,
                                ProcessRow {
                                    pid,
                                    ppid: stat.ppid.max(0) as u32,
                                    state: stat.state,
                                    comm: stat.comm,
                                    threads: stat.num_threads.max(0) as u64,
                                    rss_bytes: Some(stat.rss.saturating_mul(page)),
                                    start_ticks: Some(stat.starttime),
                                    entry: format!("proc/{pid}/stat"),
                                },
                            ))
                        })
                        .collect();
                    return Ok(Processes { rows, from_stat: true });
                }
                let listed: Vec<Process> = match self.jsonl(names::PROCESSES) {
                    Err(Skip::Missing(_)) => return Err(Skip::missing("proc/<pid>/stat")),
                    other => other?,
                };
                let rows = listed
                    .into_iter()
                    .map(|p| {
                        let row = ProcessRow {
                            pid: p.pid,
                            ppid: p.ppid,
                            state: p.state.chars().next().unwrap_or('?'),
                            comm: p.comm,
                            threads: u64::from(p.threads),
                            rss_bytes: p.rss_kib.map(|k| k.saturating_mul(1024)),
                            start_ticks: None,
                            entry: if p.source.is_empty() { names::PROCESSES.to_string() } else { p.source },
                        };
                        (p.pid, row)
                    })
                    .collect();
                Ok(Processes { rows, from_stat: false })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Whether the bundle is a sos report read through [`snap_bundle::sos`].
    pub fn sos(&self) -> Option<&snap_bundle::sos::Report> {
        self.bundle.sos()
    }

    /// `proc/meminfo` (or a sample of it), parsed by procfs-core.
    pub fn meminfo(&self, entry: &str) -> Need<procfs_core::Meminfo> {
        let bytes = self.raw(entry)?;
        meminfo(&bytes).map_err(|e| Skip::bad(entry, e))
    }
}

/// Every process of a bundle ([`Input::processes`]).
#[derive(Debug, Default)]
pub struct Processes {
    pub rows: BTreeMap<u32, ProcessRow>,
    /// True when the rows come from `proc/<pid>/stat`, false from ps listings.
    pub from_stat: bool,
}

/// What the process rules need of one process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessRow {
    pub pid: u32,
    pub ppid: u32,
    /// The state letter (`R`, `S`, `D`, `Z`...).
    pub state: char,
    pub comm: String,
    /// Threads; 0 when the source does not say.
    pub threads: u64,
    /// Resident memory, when the source says.
    pub rss_bytes: Option<u64>,
    /// Start time in clock ticks after boot (stat field 22); ps listings do not give it.
    pub start_ticks: Option<u64>,
    /// The entry this row was read from (`proc/42/stat`, or a sos report's ps listing).
    pub entry: String,
}

fn parse_sockets(bytes: &[u8]) -> Need<Vec<Socket>> {
    scan::parse_jsonl_with(bytes, compact::socket).map_err(|e| Skip::bad(names::SOCKETS, e))
}

fn parse_descriptors(bytes: &[u8]) -> Need<Descriptors> {
    Descriptors::parse(bytes).map_err(|e| Skip::bad(names::OPEN_FILES, e))
}

/// Runs `parse` on a thread of `scope`; the receiver gets its result, or nothing if it
/// panicked (the accessor then parses again and the rule reports the failure as usual).
fn spawn_parse<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    bytes: Cow<'scope, [u8]>,
    parse: fn(&[u8]) -> Need<T>,
) -> mpsc::Receiver<Need<T>> {
    let (tx, rx) = mpsc::channel();
    scope.spawn(move || {
        if let Ok(parsed) = std::panic::catch_unwind(|| parse(&bytes)) {
            let _ = tx.send(parsed);
        }
    });
    rx
}

/// A `/proc/<pid>/stat` line parsed by procfs-core, after the checks its parser lacks:
/// procfs-core 0.18 slices the line around the parentheses of the command name by byte
/// offsets, so a line starting with `(`, a multi-byte character next to a parenthesis,
/// or nothing after the `)` would panic.
pub fn process_stat(bytes: &[u8]) -> Result<procfs_core::process::Stat, String> {
    let line = snap_bundle::text::lossy(bytes);
    let line = line.trim();
    let (open, close) = match (line.find('('), line.rfind(')')) {
        (Some(o), Some(c)) if o < c => (o, c),
        _ => return Err("no `(command)` in the stat line".into()),
    };
    let pid = &line[..open];
    if pid.len() < 2 || !pid.ends_with(' ') || !pid[..pid.len() - 1].bytes().all(|b| b.is_ascii_digit()) {
        return Err("the stat line does not start with `<pid> (`".into());
    }
    if !line[close + 1..].starts_with(' ') || line.len() < close + 3 {
        return Err("nothing follows `(command)` in the stat line".into());
    }
    <procfs_core::process::Stat as procfs_core::FromRead>::from_read(line.as_bytes()).map_err(|e| e.to_string())
}

/// `/proc/meminfo` parsed by procfs-core, after the checks its parser lacks: it converts
/// `kB`/`MB`/`GB` values to bytes with unchecked multiplication (a panic on overflow in
/// debug builds, a wrong figure in release) and cuts the key's last byte by offset (a
/// panic when it is part of a multi-byte character).
pub fn meminfo(bytes: &[u8]) -> Result<procfs_core::Meminfo, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    for (i, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let (Some(key), value, unit) = (words.next(), words.next(), words.next()) else { continue };
        if !key.is_ascii() {
            return Err(format!("line {}: key {key:?} is not ASCII", i + 1));
        }
        let factor: u64 = match unit {
            None | Some("B") => 1,
            Some("KiB" | "kiB" | "kB" | "KB") => 1 << 10,
            Some("MiB" | "miB" | "MB" | "mB") => 1 << 20,
            Some("GiB" | "giB" | "GB" | "gB") => 1 << 30,
            Some(_) => continue, // procfs-core names the unknown unit
        };
        if let Some(v) = value.and_then(|v| v.parse::<u64>().ok()) {
            if v.checked_mul(factor).is_none() {
                return Err(format!(
                    "line {}: {key} {v} {} does not fit in 64 bits of bytes",
                    i + 1,
                    unit.unwrap_or("")
                ));
            }
        }
    }
    <procfs_core::Meminfo as procfs_core::FromRead>::from_read(bytes).map_err(|e| e.to_string())
}
