//! The kernel log: every record `/dev/kmsg` holds, stored raw as `kernel/kmsg.txt` and
//! rendered as `dmesg -T` printed it on the host at that moment as `kernel/dmesg.txt`.
//!
//! `/dev/kmsg` is opened non-blocking under the collector root and read one record per
//! read() until EAGAIN; EPIPE (records overwritten while we read) just moves on. All
//! records are read, also those a `dmesg -C` hid from `dmesg`. Where it cannot be
//! opened or read (no device in a container, `kernel.dmesg_restrict` for a non-root
//! user), the syslog(2) READ_ALL buffer is taken instead, but only when the collector
//! root is the host's `/`. The per-file cap keeps the newest records. The `-T` times
//! use the clocks and the local time zone read here, as `dmesg -T` would (see
//! [`snap_bundle::kmsg`] for the arithmetic); the manifest says which source was used.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use snap_bundle::kmsg::{self, BootClock, CtimeRule};
use snap_bundle::manifest::EntryStatus;
use snap_bundle::names;

use crate::ctx::{Ctx, ReadOutcome};
use crate::guard::Progress;
use crate::{sys, Collector, Halt};

pub const NAME: &str = "kernel_log";

pub struct KernelLog;

/// How long reading may go on while the kernel keeps logging faster than we read.
const MAX_READ_TIME: Duration = Duration::from_secs(10);
/// The largest record buffer tried when read() says EINVAL (buffer too small).
const MAX_RECORD_BUF: usize = 1 << 20;

impl Collector for KernelLog {
    fn name(&self) -> &'static str {
        NAME
    }

    fn collect(&self, ctx: &mut Ctx) -> Result<(), Halt> {
        let started = Instant::now();
        let cap = ctx.limits().max_file_bytes;
        let path = ctx.host("/dev/kmsg");
        let stop_at = ctx.limits().deadline.min(started + MAX_READ_TIME);
        let kmsg = ctx
            .guarded(move |p| read_kmsg(&path, cap, stop_at, p))
            .unwrap_or_else(|stuck| Err(io::Error::new(io::ErrorKind::TimedOut, stuck.to_string())));
        let (log, source) = match kmsg {
            Ok(log) => (log, "/dev/kmsg"),
            Err(kmsg_err) => match syslog_fallback(ctx, cap, &kmsg_err) {
                Ok(log) => (log, "syslog(2)"),
                Err((status, why)) => {
                    let message = format!("/dev/kmsg: {kmsg_err}; {why}");
                    let status = status.unwrap_or_else(|| EntryStatus::from_io(&kmsg_err));
                    ctx.record_failure(names::KMSG, status, message, started.elapsed());
                    let not_rendered = "not rendered: no kernel log could be read".to_string();
                    ctx.record_failure(names::DMESG, status, not_rendered, Duration::ZERO);
                    return Ok(());
                }
            },
        };
        ctx.shared.kernel_log_source = Some(source.into());
        let read_us = started.elapsed().as_micros() as u64;
        let render_started = Instant::now();
        let records = kmsg::parse(&log.data);
        let dmesg = render_dmesg(&records, cap);
        let log_cut = log.notes.iter().any(|n| n.truncates);
        let kmsg_out = ReadOutcome {
            status: if log_cut { EntryStatus::Truncated } else { EntryStatus::Ok },
            message: (!log.notes.is_empty())
                .then(|| log.notes.iter().map(|n| n.text.as_str()).collect::<Vec<_>>().join("; ")),
            data: log.data,
            errno: None,
            duration_us: read_us,
        };
        ctx.put(names::KMSG, kmsg_out);
        let dmesg_out = ReadOutcome {
            status: if log_cut || dmesg.dropped > 0 { EntryStatus::Truncated } else { EntryStatus::Ok },
            message: if dmesg.dropped > 0 {
                Some(format!("oldest {} lines dropped to fit the per-file cap", dmesg.dropped))
            } else {
                log_cut.then(|| format!("rendered from {}, which was cut", names::KMSG))
            },
            data: dmesg.text.into_bytes(),
            errno: None,
            duration_us: render_started.elapsed().as_micros() as u64,
        };
        ctx.put(names::DMESG, dmesg_out);
        Ok(())
    }
}

/// A remark on how the log was read, for the manifest entry.
#[derive(Debug)]
struct Note {
    text: String,
    /// Whether records are missing from the stored log because of it.
    truncates: bool,
}

#[derive(Debug, Default)]
struct Log {
    data: Vec<u8>,
    notes: Vec<Note>,
}

/// Reads all `/dev/kmsg` records, keeping the newest `cap` bytes of them.
fn read_kmsg(path: &Path, cap: u64, stop_at: Instant, p: &Progress) -> io::Result<Log> {
    p.step("/dev/kmsg");
    let mut f = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let mut buf = vec![0u8; 16 << 10];
    let (mut data, mut notes, mut dropped, mut overwritten) = (Vec::new(), Vec::new(), 0u64, 0u64);
    loop {
        if Instant::now() >= stop_at {
            let text = "stopped reading: the kernel kept logging past the time limit".to_string();
            notes.push(Note { text, truncates: true });
            break;
        }
        match f.read(&mut buf) {
            Ok(0) => break, // a regular file under a test root
            Ok(n) => {
                p.step("/dev/kmsg");
                data.extend_from_slice(&buf[..n]);
                if data.len() as u64 > cap.saturating_mul(2).max(1 << 20) {
                    dropped += keep_newest(&mut data, cap, is_kmsg_start);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => overwritten += 1,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && buf.len() < MAX_RECORD_BUF => {
                buf.resize(buf.len() * 4, 0);
            }
            Err(e) if data.is_empty() => return Err(e),
            Err(e) => {
                notes.push(Note { text: format!("reading stopped early: {e}"), truncates: true });
                break;
            }
        }
    }
    dropped += keep_newest(&mut data, cap, is_kmsg_start);
    if dropped > 0 {
        let text = format!("oldest {dropped} bytes dropped to fit the per-file cap of {cap} bytes");
        notes.push(Note { text, truncates: true });
    }
    if overwritten > 0 {
        let text = format!("the kernel overwrote unread records {overwritten} times while they were read");
        notes.push(Note { text, truncates: false });
    }
    Ok(Log { data, notes })
}

/// The syslog(2) buffer, where `/dev/kmsg` failed. Err carries the status to record
/// (None: use the /dev/kmsg error's) and why the fallback gave nothing.
fn syslog_fallback(ctx: &mut Ctx, cap: u64, kmsg_err: &io::Error) -> Result<Log, (Option<EntryStatus>, String)> {
    if !ctx.is_host_root() {
        return Err((None, "syslog(2) not tried: the collector root is not the host's /".into()));
    }
    let read = ctx.guarded(|p| {
        p.step("syslog(2)");
        sys::klog_read_all()
    });
    let mut data = match read {
        Ok(Ok(data)) => data,
        Ok(Err(e)) => return Err((Some(EntryStatus::from_io(&e)), format!("syslog(2): {e}"))),
        Err(stuck) => return Err((Some(EntryStatus::TimedOut), format!("syslog(2): {stuck}"))),
    };
    let mut notes = vec![Note { text: format!("read with syslog(2); /dev/kmsg: {kmsg_err}"), truncates: false }];
    let dropped = keep_newest(&mut data, cap, |b| b == b'<');
    if dropped > 0 {
        let text = format!("oldest {dropped} bytes dropped to fit the per-file cap of {cap} bytes");
        notes.push(Note { text, truncates: true });
    }
    Ok(Log { data, notes })
}

/// A `/dev/kmsg` record starts a line; continuation lines start with a space.
fn is_kmsg_start(first: u8) -> bool {
    first != b' '
}

/// Cuts the front of `data` so that at most `cap` bytes remain, at the start of a record
/// (a line whose first byte satisfies `is_start`). Returns how many bytes were dropped.
fn keep_newest(data: &mut Vec<u8>, cap: u64, is_start: impl Fn(u8) -> bool) -> u64 {
    if data.len() as u64 <= cap {
        return 0;
    }
    let mut cut = data.len() - cap as usize;
    while cut < data.len() && !(data[cut - 1] == b'\n' && is_start(data[cut])) {
        cut += 1;
    }
    data.drain(..cut);
    cut as u64
}

struct Rendered {
    text: String,
    dropped: usize,
}

/// `dmesg -T` of the records with this host's clocks and time zone now, newest lines
/// kept within `cap`.
fn render_dmesg(records: &[kmsg::Record], cap: u64) -> Rendered {
    let clock = BootClock::new(&sys::clocks(), CtimeRule::WholeSeconds);
    // localtime_r per distinct second, as dmesg calls it per record: the offset can
    // change (DST) between boot and now.
    let mut offsets: HashMap<i64, i64> = HashMap::new();
    let lines: Vec<String> = kmsg::ctime_lines(records, clock, move |secs| {
        *offsets.entry(secs).or_insert_with(|| sys::local_offset(secs).0)
    })
    .collect();
    let mut total: u64 = lines.iter().map(|l| l.len() as u64).sum();
    let mut first = 0;
    while total > cap && first < lines.len() {
        total -= lines[first].len() as u64;
        first += 1;
    }
    Rendered { text: lines[first..].concat(), dropped: first }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use snap_bundle::{Bundle, BundleWriter};

    use crate::ctx::Limits;

    // Real /dev/kmsg records (Debian 12 VM, kernel 6.18), one with continuation lines.
    const RECORDS: &[u8] = b"6,190,186796,-;acpi PNP0A08:00: _OSC: OS supports [ExtendedConfig ASPM ClockPM Segments MSI HPX-Type3]\n SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A08:00\n\
6,193,186971,-;PCI host bridge to bus 0000:00\n\
14,340,702663146,-;probe-0\n";

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("snap-kmsg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Runs the collector under `root` and returns the bundle it wrote.
    fn collect(root: &Path, max_file_bytes: u64) -> (Bundle, Option<String>, Vec<snap_bundle::EntryRecord>) {
        let limits = Limits {
            deadline: Instant::now() + Duration::from_secs(30),
            max_bytes: 1 << 30,
            max_file_bytes,
            read_timeout: Duration::from_secs(5),
            max_stuck: 2,
            workers: 1,
        };
        let writer = BundleWriter::new(None, 0).unwrap();
        let interrupt = Arc::new(AtomicBool::new(false));
        let mut ctx = Ctx::new(root.to_path_buf(), limits, writer, interrupt, Box::new(|_| {}));
        KernelLog.collect(&mut ctx).map_err(|_| "collector failed").unwrap();
        let source = ctx.shared.kernel_log_source.take();
        let (writer, entries, _, _) = ctx.into_parts();
        let mut out = Vec::new();
        writer.finish(b"{}", &mut out).unwrap();
        let file = root.join("bundle.tar.zst");
        std::fs::write(&file, out).unwrap();
        (Bundle::open(&file).unwrap(), source, entries)
    }

    #[test]
    fn a_kmsg_file_under_a_test_root_is_stored_raw_and_rendered() {
        let root = scratch("root");
        std::fs::create_dir_all(root.join("dev")).unwrap();
        std::fs::write(root.join("dev/kmsg"), RECORDS).unwrap();
        let (bundle, source, entries) = collect(&root, 1 << 20);
        assert_eq!(source.as_deref(), Some("/dev/kmsg"));
        assert_eq!(bundle.read(names::KMSG).unwrap().unwrap(), RECORDS);
        let dmesg = String::from_utf8(bundle.read(names::DMESG).unwrap().unwrap()).unwrap();
        assert_eq!(dmesg.lines().count(), 3);
        assert!(dmesg.lines().last().unwrap().ends_with("] probe-0"), "{dmesg}");
        assert!(entries.iter().all(|e| e.status == EntryStatus::Ok), "{entries:?}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn the_cap_keeps_the_newest_whole_records() {
        let root = scratch("cap");
        std::fs::create_dir_all(root.join("dev")).unwrap();
        std::fs::write(root.join("dev/kmsg"), RECORDS).unwrap();
        let (bundle, _, entries) = collect(&root, 70);
        assert_eq!(bundle.read(names::KMSG).unwrap().unwrap(), b"14,340,702663146,-;probe-0\n");
        let dmesg = bundle.read(names::DMESG).unwrap().unwrap();
        assert!(dmesg.ends_with(b"] probe-0\n") && dmesg.len() <= 70);
        assert!(entries.iter().all(|e| e.status == EntryStatus::Truncated), "{entries:?}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn without_dev_kmsg_under_a_test_root_the_host_is_not_read() {
        let root = scratch("empty");
        let (bundle, source, entries) = collect(&root, 1 << 20);
        assert_eq!(source, None);
        assert_eq!(bundle.read(names::KMSG).unwrap(), None);
        let kmsg = entries.iter().find(|e| e.path == names::KMSG).unwrap();
        assert_eq!(kmsg.status, EntryStatus::Missing);
        assert!(kmsg.message.as_deref().unwrap().contains("syslog(2) not tried"), "{kmsg:?}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn keep_newest_cuts_at_record_starts() {
        let mut d = b"<6>[ 1.0] a\n<6>[ 2.0] bb\n<6>[ 3.0] c\n".to_vec();
        assert_eq!(keep_newest(&mut d, 20, |b| b == b'<'), 25);
        assert_eq!(d, b"<6>[ 3.0] c\n");
        let mut d = RECORDS.to_vec();
        assert_eq!(keep_newest(&mut d, 10, is_kmsg_start), RECORDS.len() as u64);
        assert!(d.is_empty());
    }

    /// Reads the live /dev/kmsg after writing a marker to it (root only).
    #[test]
    fn live_dev_kmsg_holds_a_marker_written_now() {
        if !sys::is_root() {
            println!("SKIPPED live_dev_kmsg_holds_a_marker_written_now: needs root to write /dev/kmsg");
            return;
        }
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let marker = format!("snap-unit-marker-{}-{nanos}", std::process::id());
        std::fs::write("/dev/kmsg", format!("<6>{marker}\n")).unwrap();
        let log =
            read_kmsg(Path::new("/dev/kmsg"), 64 << 20, Instant::now() + MAX_READ_TIME, &Progress::default()).unwrap();
        let records = kmsg::parse_kmsg(&log.data);
        let last = records.iter().rev().find(|r| r.message == marker).expect("marker read back");
        assert_eq!((last.facility, last.level), (1, 6), "a user write without facility is LOG_USER");
    }
}
