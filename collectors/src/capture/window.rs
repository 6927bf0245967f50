//! The capture window: the packet capture runs on its own thread while the sampling
//! window runs, writes its pcap into a scratch file beside the bundle, and ends in a
//! `capture/window.pcap` entry plus the manifest's [`CaptureRecord`].
//!
//! A capture that cannot start (no CAP_NET_RAW, an unknown interface) is recorded and
//! the collection goes on; a capture never holds up the run past its own bound, the
//! overall deadline or Ctrl-C, since the engine polls with a short timeout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use snap_bundle::manifest::{CaptureRecord, EntryStatus};
use snap_bundle::names;
use snap_bundle::writer::Scratch;

use super::filter::BpfInsn;
use super::{CaptureError, Config, Stats, StopReason, LINKTYPE_LINUX_SLL};
use crate::ctx::Ctx;

/// What the user asked of the capture (the filter already compiled, so that a bad
/// expression is refused before anything is collected).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub interfaces: Vec<String>,
    pub filter: Option<String>,
    pub program: Option<Vec<BpfInsn>>,
    pub filter_compiler: Option<String>,
    /// Bytes kept per packet, the 16-byte link header included.
    pub snaplen: u32,
    pub payload: bool,
    pub max_packets: u64,
    pub max_bytes: u64,
    pub seconds: Duration,
}

type Outcome = (Result<Stats, CaptureError>, Scratch);

/// A capture in progress.
pub struct Running {
    handle: JoinHandle<Outcome>,
    stop: Arc<AtomicBool>,
    record: CaptureRecord,
    started: Instant,
}

fn base_record(s: &Settings, max_bytes: u64) -> CaptureRecord {
    CaptureRecord {
        interfaces: s.interfaces.clone(),
        filter: s.filter.clone(),
        filter_compiler: s.filter_compiler.clone(),
        snaplen: s.snaplen,
        payload: s.payload,
        linktype: LINKTYPE_LINUX_SLL,
        max_packets: s.max_packets,
        max_bytes,
        seconds: s.seconds.as_secs_f64(),
        ..Default::default()
    }
}

fn failed(mut record: CaptureRecord, message: String) -> CaptureRecord {
    record.status = EntryStatus::Failed;
    record.message = Some(message);
    record.stopped_by = "error".into();
    record
}

/// Starts the capture for at most `s.seconds` (never past the deadline), or returns the
/// record of why it could not start.
///
/// The capture thread runs at `caller_nice`, the CPU priority snap was started with,
/// not at the nice 19 of the rest of the collection: its work is small (about 20 ms of
/// CPU per 100k packets) but must be prompt, since a ring read late is a ring that
/// overflows. At nice 19 on a busy box it dropped packets that tcpdump kept.
pub fn start(ctx: &mut Ctx, s: &Settings, caller_nice: i32) -> Result<Running, Box<CaptureRecord>> {
    // The capture file counts against the bundle's byte budget (0 asks for no bound of
    // the capture's own, never for none at all).
    let left = ctx.budget_left();
    let max_bytes = if s.max_bytes == 0 { left } else { s.max_bytes.min(left) };
    let mut record = base_record(s, max_bytes);
    if max_bytes < 64 {
        record.status = EntryStatus::Truncated;
        record.message = Some("not started: the byte budget is exhausted".into());
        record.stopped_by = "bytes".into();
        return Err(Box::new(record));
    }
    let scratch = match ctx.scratch() {
        Ok(scratch) => scratch,
        Err(e) => return Err(Box::new(failed(record, format!("no scratch space for the capture: {e}")))),
    };
    let left = ctx.limits().deadline.saturating_duration_since(Instant::now());
    let cfg = Config {
        interfaces: s.interfaces.clone(),
        program: s.program.clone(),
        snaplen: s.snaplen,
        max_packets: s.max_packets,
        max_bytes,
        duration: s.seconds.min(left),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let spawned = std::thread::Builder::new().name("snap-capture".into()).spawn(move || {
        crate::sys::set_thread_nice(caller_nice);
        let mut scratch = scratch;
        let r = super::capture(&cfg, &mut scratch, &flag);
        (r, scratch)
    });
    match spawned {
        Ok(handle) => Ok(Running { handle, stop, record, started: Instant::now() }),
        Err(e) => Err(Box::new(failed(record, format!("cannot start the capture thread: {e}")))),
    }
}

impl Running {
    /// Ends the capture early (Ctrl-C, deadline) without waiting for its bound.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

/// Waits for the capture, stores the pcap and returns the manifest record.
pub fn finish(ctx: &mut Ctx, r: Running) -> CaptureRecord {
    let Running { handle, mut record, started, .. } = r;
    let Ok((result, scratch)) = handle.join() else {
        return failed(record, "capture bug: the capture thread panicked".into());
    };
    let stats = match result {
        Ok(stats) => stats,
        Err(e) => {
            let status = if matches!(e, CaptureError::Denied(_)) { EntryStatus::Denied } else { EntryStatus::Failed };
            ctx.record_failure(names::CAPTURE, status, e.to_string(), started.elapsed());
            let mut record = failed(record, e.to_string());
            record.status = status;
            record.duration_ms = started.elapsed().as_millis() as u64;
            return record;
        }
    };
    record.packets_seen = stats.seen;
    record.packets_captured = stats.captured;
    record.packets_dropped = stats.dropped;
    record.bytes = stats.bytes;
    record.duration_ms = stats.duration.as_millis() as u64;
    record.start_realtime_ns = stats.start_realtime_ns;
    record.end_realtime_ns = stats.end_realtime_ns;
    record.stopped_by = stats.stopped_by.as_str().into();
    record.status = match stats.stopped_by {
        StopReason::Packets | StopReason::Bytes => EntryStatus::Truncated,
        StopReason::Time | StopReason::Interrupted => EntryStatus::Ok,
    };
    if !stats.notes.is_empty() {
        record.message = Some(stats.notes.join("; "));
    }
    if ctx.store_scratch(names::CAPTURE, scratch, started.elapsed()) == EntryStatus::Truncated {
        record.status = EntryStatus::Truncated;
        record.message = Some("the byte budget cut the capture file".into());
    }
    record
}
