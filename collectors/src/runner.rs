//! The collection run: host facts, every registered collector, the sampling window,
//! then the manifest and the bundle, within one deadline and one byte budget.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use snap_bundle::manifest::{self, CollectorRecord, Cost, EntryStatus, Manifest, Options};
use snap_bundle::BundleWriter;

use crate::ctx::{Ctx, Limits, Stop};
use crate::{capture, collectors, host, sys, window, Halt};

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Config {
    /// Collector root: `/` on a live host.
    pub root: PathBuf,
    pub deadline: Duration,
    pub max_bytes: u64,
    pub max_file_bytes: u64,
    pub read_timeout: Duration,
    pub max_stuck: usize,
    /// Threads reading /proc in parallel (each read still under its time limit).
    pub workers: usize,
    pub window: Duration,
    pub interval: Duration,
    pub environ: bool,
    pub low_priority: bool,
    /// The packet capture during the window; None for `--no-capture`.
    pub capture: Option<capture::window::Settings>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            root: PathBuf::from("/"),
            deadline: Duration::from_secs(60),
            max_bytes: 128 << 20,
            max_file_bytes: 16 << 20,
            read_timeout: Duration::from_millis(500),
            max_stuck: 16,
            workers: 2,
            window: Duration::from_secs(5),
            interval: Duration::from_secs(1),
            environ: false,
            low_priority: true,
            capture: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("interrupted: no bundle written")]
    Interrupted,
    #[error("writing the bundle failed: {0}")]
    Output(#[source] io::Error),
}

/// What a finished run reports besides the bundle itself.
#[derive(Debug, Clone)]
pub struct Summary {
    pub manifest: Manifest,
    pub bundle_bytes: u64,
}

/// Collects the host into a bundle written to `out`. The body spools in `spool_dir`
/// (an unlinked file) or in memory when None.
pub fn run(
    cfg: &Config,
    spool_dir: Option<&Path>,
    out: &mut dyn Write,
    interrupt: Arc<AtomicBool>,
    mut progress: Box<dyn FnMut(&str)>,
) -> Result<Summary, CollectError> {
    let started = Instant::now();
    let caller_nice = sys::current_priority().0;
    let (nice, io_priority) = if cfg.low_priority { sys::lower_priority() } else { sys::current_priority() };
    let clocks = sys::clocks();
    let realtime_secs = (clocks.realtime_ns / 1_000_000_000) as i64;
    let writer = BundleWriter::new(spool_dir, realtime_secs as u64).map_err(CollectError::Output)?;
    let limits = Limits {
        deadline: started + cfg.deadline,
        max_bytes: cfg.max_bytes,
        max_file_bytes: cfg.max_file_bytes,
        read_timeout: cfg.read_timeout,
        max_stuck: cfg.max_stuck,
        workers: cfg.workers,
    };
    progress("host facts");
    let mut ctx = Ctx::new(cfg.root.clone(), limits, writer, interrupt, Box::new(move |s| progress(s)));
    ctx.environ = cfg.environ;
    let host = host::facts(&mut ctx, realtime_secs);

    let mut records = Vec::new();
    let mut kernel_log_source = None;
    for c in collectors::registry() {
        let t = Instant::now();
        let before = ctx.record_count();
        let (status, message) = match ctx.check() {
            Err(Stop::Deadline) => (EntryStatus::TimedOut, Some("not run: overall deadline reached".to_string())),
            Err(s) => return Err(stop_error(s)),
            Ok(()) => {
                ctx.progress(c.name());
                match c.collect(&mut ctx) {
                    Ok(()) => (EntryStatus::Ok, None),
                    Err(Halt::Failed(m)) => (EntryStatus::Failed, Some(m)),
                    Err(Halt::Stop(Stop::Deadline)) => {
                        (EntryStatus::TimedOut, Some("cut short: overall deadline reached".to_string()))
                    }
                    Err(Halt::Stop(s)) => return Err(stop_error(s)),
                }
            }
        };
        if c.name() == collectors::kernel_log::NAME {
            kernel_log_source = ctx.shared.kernel_log_source.take();
        }
        let added = ctx.records_since(before);
        records.push(CollectorRecord {
            name: c.name().to_string(),
            status,
            message,
            duration_us: t.elapsed().as_micros() as u64,
            entries: added.len() as u64,
            bytes: added.iter().map(|r| r.bytes).sum(),
        });
    }

    let t = Instant::now();
    let before = ctx.record_count();
    let running = cfg.capture.as_ref().filter(|c| !c.seconds.is_zero()).map(|c| {
        ctx.progress("capture starting");
        capture::window::start(&mut ctx, c, caller_nice)
    });
    let sampled = window::run(&mut ctx, cfg.window, cfg.interval);
    let capture = running.map(|r| match r {
        Ok(r) => wait_for_capture(&mut ctx, r),
        Err(record) => *record,
    });
    let (samples, status, message) = match sampled {
        Ok(s) => (s, EntryStatus::Ok, None),
        Err((s, Stop::Deadline)) => (s, EntryStatus::TimedOut, Some("cut short: overall deadline reached".into())),
        Err((_, stop)) => return Err(stop_error(stop)),
    };
    if let Err(Stop::Interrupted) = ctx.check() {
        return Err(CollectError::Interrupted);
    }
    let added = ctx.records_since(before);
    records.push(CollectorRecord {
        name: "window".into(),
        status,
        message,
        duration_us: t.elapsed().as_micros() as u64,
        entries: added.len() as u64,
        bytes: added.iter().map(|r| r.bytes).sum(),
    });
    if let Some(e) = ctx.take_fatal() {
        return Err(CollectError::Output(e));
    }

    let (writer, entries, bytes_read, stuck) = ctx.into_parts();
    let bytes_stored = writer.stored_bytes();
    let body = writer.finish_body().map_err(CollectError::Output)?;
    let (user, system, rss) = sys::rusage();
    let manifest = Manifest {
        format_version: manifest::FORMAT_VERSION,
        snap_version: env!("CARGO_PKG_VERSION").to_string(),
        collector_pid: std::process::id(),
        host,
        clocks,
        options: Options {
            deadline_ms: cfg.deadline.as_millis() as u64,
            max_bytes: cfg.max_bytes,
            max_file_bytes: cfg.max_file_bytes,
            read_timeout_ms: cfg.read_timeout.as_millis() as u64,
            window_ms: cfg.window.as_millis() as u64,
            interval_ms: cfg.interval.as_millis() as u64,
            environ: cfg.environ,
            low_priority: cfg.low_priority,
            root: cfg.root.display().to_string(),
        },
        kernel_log_source,
        capture,
        samples,
        collectors: records,
        entries,
        cost: Cost {
            wall_ms: started.elapsed().as_millis() as u64,
            user_cpu_ms: user,
            system_cpu_ms: system,
            peak_rss_kb: rss,
            bytes_read,
            bytes_stored,
            bytes_written: body.len(),
            nice,
            io_priority,
            stuck_reads: stuck as u64,
        },
    };
    let (_, total) = body.write(&manifest.to_json(), out).map_err(CollectError::Output)?;
    Ok(Summary { manifest, bundle_bytes: total })
}

/// Lets the capture run to its own bound (it may outlast the window), ending it early
/// on Ctrl-C or at the deadline.
fn wait_for_capture(ctx: &mut Ctx, running: capture::window::Running) -> manifest::CaptureRecord {
    let mut cut = None;
    while !running.is_finished() {
        if let Err(stop) = ctx.check() {
            running.stop();
            cut = Some(if matches!(stop, Stop::Deadline) { "deadline" } else { "interrupted" });
            break;
        }
        ctx.progress("capture: finishing");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut record = capture::window::finish(ctx, running);
    if let (Some(why), "interrupted") = (cut, record.stopped_by.as_str()) {
        record.stopped_by = why.into();
    }
    record
}

fn stop_error(s: Stop) -> CollectError {
    match s {
        Stop::Interrupted => CollectError::Interrupted,
        Stop::Output(e) => CollectError::Output(e),
        Stop::Deadline => unreachable!("the deadline is not an error"),
    }
}
