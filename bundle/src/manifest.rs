//! `manifest.json`: what the bundle is, where it came from and what was attempted.
//!
//! Every field has a default so that readers accept manifests from older (and newer)
//! snap versions; a change that breaks that needs a new [`FORMAT_VERSION`].

use serde::{Deserialize, Serialize};

thread_local! {
    /// Set while [`Manifest::from_json_without_entries`] parses on this thread.
    static SKIP_ENTRIES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `entries`, or nothing (the JSON read past) while [`SKIP_ENTRIES`] is set.
fn entries_unless_skipped<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<EntryRecord>, D::Error> {
    if SKIP_ENTRIES.with(|skip| skip.get()) {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(Vec::new())
    } else {
        Vec::deserialize(d)
    }
}

/// The bundle format this snap writes.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Manifest {
    pub format_version: u32,
    pub snap_version: String,
    /// The pid of the collecting snap process, so analyses can leave snap itself out
    /// (its own spool files, its CPU use). 0 when unknown (older bundles).
    pub collector_pid: u32,
    /// The facts offline replay needs to interpret the raw files.
    pub host: HostFacts,
    /// Clocks read together at the start of the collection.
    pub clocks: Clocks,
    /// The options the collection ran with.
    pub options: Options,
    /// Where the kernel log came from: `/dev/kmsg`, `syslog(2)` or nothing.
    pub kernel_log_source: Option<String>,
    /// The sampling window: one record per sample taken.
    pub samples: Vec<SampleRecord>,
    /// The packet capture window, when one was attempted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<CaptureRecord>,
    /// One record per collector that ran.
    pub collectors: Vec<CollectorRecord>,
    /// One record per attempted entry. (Tens of thousands on a busy host: a manifest
    /// read with [`Manifest::from_json_without_entries`] leaves them out.)
    #[serde(deserialize_with = "entries_unless_skipped")]
    pub entries: Vec<EntryRecord>,
    /// What the collection itself cost the host.
    pub cost: Cost,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HostFacts {
    pub hostname: String,
    pub kernel_release: String,
    pub kernel_version: String,
    pub arch: String,
    /// `little` or `big`.
    pub endianness: String,
    pub page_size: u64,
    /// USER_HZ, the unit of the tick counts in `/proc/stat` and `/proc/<pid>/stat`.
    pub clock_ticks: u64,
    /// Boot time in seconds since the epoch (`btime` of /proc/stat).
    pub boot_time: u64,
    pub boot_id: String,
    pub online_cpus: u32,
    /// Offset of local time from UTC in seconds, as `dmesg -T` and `date` used it.
    pub utc_offset_seconds: i64,
    /// The time zone abbreviation in force (e.g. `UTC`, `CET`).
    pub timezone: String,
}

/// CLOCK_REALTIME, CLOCK_MONOTONIC and CLOCK_BOOTTIME in nanoseconds, read back to back.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Clocks {
    pub realtime_ns: u64,
    pub monotonic_ns: u64,
    pub boottime_ns: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Options {
    pub deadline_ms: u64,
    pub max_bytes: u64,
    pub max_file_bytes: u64,
    pub read_timeout_ms: u64,
    pub window_ms: u64,
    pub interval_ms: u64,
    pub environ: bool,
    pub low_priority: bool,
    pub root: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SampleRecord {
    pub index: usize,
    pub clocks: Clocks,
}

/// What the packet capture did: its settings, its bounds and the kernel's counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CaptureRecord {
    /// `ok`, `denied` (no CAP_NET_RAW), `failed`, `timed_out`, or `truncated` when a
    /// packet or byte bound (not time) ended it.
    pub status: EntryStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Interfaces captured; empty means all.
    pub interfaces: Vec<String>,
    /// The filter expression as given (tcpdump syntax), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// What compiled the filter: `libpcap.so.1`, `libpcap.so.0.8` or `tcpdump -ddd`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_compiler: Option<String>,
    /// Bytes kept per packet, link header included.
    pub snaplen: u32,
    /// Whether whole packets were asked for (`--payload`).
    pub payload: bool,
    /// pcap link type of the file (113 = LINUX_SLL).
    pub linktype: u32,
    /// Packets that passed the filter (the kernel's PACKET_STATISTICS tp_packets,
    /// without loopback's outgoing copies).
    pub packets_seen: u64,
    /// Packets written to the file.
    pub packets_captured: u64,
    /// Packets the kernel dropped because the ring was full (tp_drops).
    pub packets_dropped: u64,
    /// Size of the pcap file.
    pub bytes: u64,
    pub max_packets: u64,
    pub max_bytes: u64,
    /// The time bound asked for, and how long the capture really ran.
    pub seconds: f64,
    pub duration_ms: u64,
    /// What ended it: `time`, `packets`, `bytes`, `deadline`, `interrupted` or `error`.
    pub stopped_by: String,
    /// CLOCK_REALTIME at the start and end of the capture, as the packet timestamps.
    pub start_realtime_ns: u64,
    pub end_realtime_ns: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CollectorRecord {
    pub name: String,
    pub status: EntryStatus,
    pub message: Option<String>,
    pub duration_us: u64,
    pub entries: u64,
    pub bytes: u64,
}

/// The outcome of one attempted entry. Absence is data.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    #[default]
    Ok,
    /// The file did not exist (a process that exited, a kernel without the feature).
    Missing,
    /// Permission denied.
    Denied,
    /// Cut at the per-file cap or by the byte budget; the bytes kept are in the bundle.
    Truncated,
    /// The read did not finish within its time limit, or the deadline cut it.
    TimedOut,
    /// Any other error.
    Failed,
}

impl EntryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Ok => "ok",
            EntryStatus::Missing => "missing",
            EntryStatus::Denied => "denied",
            EntryStatus::Truncated => "truncated",
            EntryStatus::TimedOut => "timed_out",
            EntryStatus::Failed => "failed",
        }
    }

    /// Classifies an I/O error the way the manifest reports it.
    pub fn from_io(err: &std::io::Error) -> EntryStatus {
        use std::io::ErrorKind::*;
        match err.kind() {
            NotFound => EntryStatus::Missing,
            PermissionDenied => EntryStatus::Denied,
            TimedOut | WouldBlock => EntryStatus::TimedOut,
            _ => match err.raw_os_error() {
                Some(3) => EntryStatus::Missing, // ESRCH: the process is gone
                Some(1) => EntryStatus::Denied,  // EPERM
                _ => EntryStatus::Failed,
            },
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EntryRecord {
    pub path: String,
    pub status: EntryStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub bytes: u64,
    pub duration_us: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Cost {
    pub wall_ms: u64,
    pub user_cpu_ms: u64,
    pub system_cpu_ms: u64,
    pub peak_rss_kb: u64,
    /// Bytes read from the host (files, directories listed are not counted).
    pub bytes_read: u64,
    /// Uncompressed bytes stored in the bundle.
    pub bytes_stored: u64,
    /// Compressed bytes of the bundle body (everything but the manifest, whose size
    /// cannot be known inside itself).
    pub bytes_written: u64,
    /// The nice value the collection ran at.
    pub nice: i32,
    /// The I/O scheduling class and level, e.g. `best-effort/7`.
    pub io_priority: String,
    /// Reads abandoned because they blocked past their time limit.
    pub stuck_reads: u64,
}

impl Manifest {
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The manifest without its per-entry records (`entries` left empty, its JSON only
    /// checked for syntax): all that analysis needs, for a fraction of the parsing on a
    /// busy host, where the records are most of the manifest.
    pub fn from_json_without_entries(bytes: &[u8]) -> Result<Manifest, serde_json::Error> {
        SKIP_ENTRIES.with(|skip| skip.set(true));
        let parsed = serde_json::from_slice(bytes);
        SKIP_ENTRIES.with(|skip| skip.set(false));
        parsed
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifest serialises")
    }

    /// The record for an entry, if it was attempted.
    pub fn entry(&self, path: &str) -> Option<&EntryRecord> {
        self.entries.iter().find(|e| e.path == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_manifest_without_new_fields_still_loads() {
        let m = Manifest::from_json(br#"{"format_version":1,"host":{"hostname":"h"}}"#).unwrap();
        assert_eq!(m.host.hostname, "h");
        assert!(m.entries.is_empty());
    }

    #[test]
    fn statuses_serialise_as_contract_names() {
        let r = EntryRecord { path: "x".into(), status: EntryStatus::TimedOut, ..Default::default() };
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains(r#""status":"timed_out""#), "{j}");
    }
}
