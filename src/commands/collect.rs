//! `snap collect`: capture this host into one bundle, safely.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use snap_bundle::{time, AtomicOutput};
use snap_collectors::capture::filter;
use snap_collectors::capture::window::Settings;
use snap_collectors::{CollectError, Config};

use crate::exit;
use crate::units::{human_bytes, parse_duration, parse_size};

#[derive(clap::Args)]
pub struct Args {
    /// Where to write: a file, an existing directory (snap picks the name), or `-` for
    /// stdout. Default: the current directory.
    #[arg(short, long, value_name = "PATH")]
    output: Option<String>,
    /// Length of the sampling window (0 for none).
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    window: Duration,
    /// Time between samples in the window.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    interval: Duration,
    /// Overall deadline: collectors still running then are cut short and recorded so.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    deadline: Duration,
    /// Byte budget: uncompressed bytes stored in the bundle at most. The destination
    /// must have this much room.
    #[arg(long, default_value = "128M", value_parser = parse_size, value_name = "SIZE")]
    max_bytes: u64,
    /// Per-file cap; longer files are stored cut and recorded as truncated.
    #[arg(long, default_value = "16M", value_parser = parse_size, value_name = "SIZE")]
    max_file_bytes: u64,
    /// Time limit of one blocking read (a stuck task's /proc file, a hung mount).
    #[arg(long, default_value = "500ms", value_parser = parse_duration, value_name = "DURATION")]
    read_timeout: Duration,
    /// Also collect every process's environment (it can hold secrets).
    #[arg(long)]
    environ: bool,
    /// Run at normal CPU and I/O priority instead of nice 19 and best-effort/7.
    #[arg(long)]
    no_nice: bool,
    /// No progress on stderr.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    capture: CaptureArgs,
    /// Collector root, for tests: read `<ROOT>/proc` instead of `/proc`, and so on.
    #[arg(long, hide = true, default_value = "/")]
    root: PathBuf,
}

/// The packet capture taken during the sampling window.
#[derive(clap::Args)]
#[command(next_help_heading = "Packet capture")]
struct CaptureArgs {
    /// No packet capture.
    #[arg(long)]
    no_capture: bool,
    /// How long to capture (default: the sampling window).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    capture_seconds: Option<Duration>,
    /// Interface to capture on (repeatable; default: all).
    #[arg(long = "iface", value_name = "NAME")]
    ifaces: Vec<String>,
    /// tcpdump filter expression, e.g. `port 80 and host 10.1.1.1` (needs libpcap or tcpdump).
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,
    /// Bytes kept per packet, the 16-byte link header included: headers only by default.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(64..=262_144), conflicts_with = "payload")]
    snaplen: u32,
    /// Keep whole packets (they may hold secrets).
    #[arg(long)]
    payload: bool,
    /// Stop capturing after this many packets.
    #[arg(long, default_value_t = 200_000, value_name = "N")]
    max_packets: u64,
    /// Stop capturing before the file exceeds this size.
    #[arg(long, default_value = "32M", value_parser = parse_size, value_name = "SIZE")]
    max_capture_bytes: u64,
}

/// The full-packet snaplen of tcpdump and libpcap.
const PAYLOAD_SNAPLEN: u32 = 262_144;

impl CaptureArgs {
    /// The capture settings, with the filter compiled now so that a bad expression is
    /// refused before anything is collected.
    fn settings(&self, window: Duration) -> Result<Option<Settings>, String> {
        if self.no_capture {
            return Ok(None);
        }
        let snaplen = if self.payload { PAYLOAD_SNAPLEN } else { self.snaplen };
        let compiled = match &self.filter {
            Some(expr) => Some(filter::compile(expr, snaplen).map_err(|e| format!("--filter {expr:?}: {e}"))?),
            None => None,
        };
        Ok(Some(Settings {
            interfaces: self.ifaces.clone(),
            filter: self.filter.clone(),
            filter_compiler: compiled.as_ref().map(|c| c.compiler.clone()),
            program: compiled.map(|c| c.program),
            snaplen,
            payload: self.payload,
            max_packets: self.max_packets,
            max_bytes: self.max_capture_bytes,
            seconds: self.capture_seconds.unwrap_or(window),
        }))
    }
}

pub fn run(a: Args) -> u8 {
    let capture = match a.capture.settings(a.window) {
        Ok(c) => c,
        Err(m) => {
            eprintln!("snap: {m}");
            return exit::BAD_INPUT;
        }
    };
    let cfg = Config {
        root: a.root.clone(),
        deadline: a.deadline,
        max_bytes: a.max_bytes,
        max_file_bytes: a.max_file_bytes,
        read_timeout: a.read_timeout,
        window: a.window,
        interval: a.interval.max(Duration::from_millis(10)),
        environ: a.environ,
        low_priority: !a.no_nice,
        capture,
        ..Config::default()
    };
    let interrupt = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&interrupt)) {
            eprintln!("snap: cannot install a handler for signal {sig}: {e}");
            return exit::FAILURE;
        }
    }
    let show = std::io::stderr().is_terminal() && !a.quiet;
    let progress: Box<dyn FnMut(&str)> = if show {
        let mut last = String::new();
        Box::new(move |s: &str| {
            if s != last {
                eprint!("\r\x1b[Ksnap: {s}");
                last = s.to_string();
            }
        })
    } else {
        Box::new(|_: &str| {})
    };

    if a.output.as_deref() == Some("-") {
        if std::io::stdout().is_terminal() {
            eprintln!("snap: refusing to write a binary bundle to a terminal; redirect stdout or use -o FILE");
            return exit::BAD_INPUT;
        }
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        return finish(snap_collectors::run(&cfg, None, &mut lock, interrupt, progress), show, None);
    }

    let dest = match destination(a.output.as_deref()) {
        Ok(d) => d,
        Err(m) => {
            eprintln!("snap: {m}");
            return exit::BAD_INPUT;
        }
    };
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    if let Err(m) = check_room(&dir, a.max_bytes) {
        eprintln!("snap: {m}");
        return exit::OUTPUT;
    }
    let mut out = match AtomicOutput::create(&dest) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("snap: cannot create a file in {}: {e}", dir.display());
            return exit::OUTPUT;
        }
    };
    let result = snap_collectors::run(&cfg, Some(&dir), out.file(), interrupt, progress);
    if result.is_err() {
        drop(out); // removes the temporary file: nothing half-written stays
        return finish(result, show, None);
    }
    match out.commit() {
        Ok(path) => finish(result, show, Some(&path)),
        Err(e) => {
            eprintln!("snap: cannot complete {}: {e}; nothing was left behind", dest.display());
            exit::OUTPUT
        }
    }
}

fn finish(result: Result<snap_collectors::Summary, CollectError>, show: bool, path: Option<&Path>) -> u8 {
    if show {
        eprint!("\r\x1b[K");
    }
    match result {
        Ok(summary) => {
            let m = &summary.manifest;
            if show {
                let not_ok = m.entries.iter().filter(|e| e.status != snap_bundle::EntryStatus::Ok).count();
                eprintln!(
                    "snap: {} entries ({} not ok), {} stored, {} written in {:.1} s",
                    m.entries.len(),
                    not_ok,
                    human_bytes(m.cost.bytes_stored),
                    human_bytes(summary.bundle_bytes),
                    m.cost.wall_ms as f64 / 1000.0
                );
            }
            if let Some(p) = path {
                println!("{}", p.display());
            }
            exit::OK
        }
        Err(CollectError::Interrupted) => {
            eprintln!("snap: interrupted; no bundle was written");
            exit::INTERRUPTED
        }
        Err(CollectError::Output(e)) => {
            let hint = if e.raw_os_error() == Some(libc::ENOSPC) { " (the destination is full)" } else { "" };
            eprintln!("snap: writing the bundle failed{hint}: {e}; nothing was left behind");
            exit::OUTPUT
        }
    }
}

/// The bundle's path: the file given, or a new name in the directory given.
fn destination(output: Option<&str>) -> Result<PathBuf, String> {
    let p = PathBuf::from(output.unwrap_or("."));
    if p.is_dir() {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        return Ok(p.join(format!("snap-{}-{}.tar.zst", hostname(), time::compact_utc(now))));
    }
    if p.exists() {
        return Err(format!("{} already exists; snap does not overwrite files", p.display()));
    }
    match p.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) if !d.is_dir() => Err(format!("{} is not a directory", d.display())),
        _ => Ok(p),
    }
}

fn hostname() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let h: String =
        h.trim().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
    if h.is_empty() {
        "unknown".into()
    } else {
        h
    }
}

/// Refuses to start when the destination cannot hold the byte budget.
fn check_room(dir: &Path, budget: u64) -> Result<(), String> {
    let s =
        snap_collectors::sys::statvfs(dir).map_err(|e| format!("cannot check free space in {}: {e}", dir.display()))?;
    let free = s.bavail.saturating_mul(s.frsize);
    if free < budget {
        return Err(format!(
            "not enough room in {}: {} free, but the byte budget is {}. Free some space, write elsewhere with -o, \
             lower --max-bytes, or stream the bundle with -o - (e.g. snap collect -o - | ssh host 'cat > b.tar.zst')",
            dir.display(),
            human_bytes(free),
            human_bytes(budget)
        ));
    }
    let _ = std::io::stderr().flush();
    Ok(())
}
