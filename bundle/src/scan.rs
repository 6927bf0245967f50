//! The records of the `scan/*.jsonl` entries: one JSON object per line.
//!
//! Scans are the few things snap derives at collection time because they cannot be
//! recomputed later (a statvfs, a walk of every process's file descriptors). They keep
//! raw figures (bytes, inode numbers, queue sizes); the percentages that `df` shows are
//! included with `df`'s own rounding so that a reader need not know it.

use serde::{Deserialize, Serialize};

/// One mount as `df` and `df -i` show it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Filesystem {
    pub source: String,
    pub target: String,
    pub fstype: String,
    pub options: String,
    /// `major:minor` of the mounted device, from mountinfo.
    pub device: String,
    /// `ok`, `timed_out`, `failed`, or `skipped` (autofs mount points are not probed,
    /// since statfs on one can trigger the automount); the figures are zero unless `ok`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether plain `df` (without `-a`) lists this mount.
    pub df_listed: bool,
    pub block_size: u64,
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub avail_bytes: u64,
    /// `df`'s Use%: used / (used + avail), rounded up. None when used + avail is 0.
    pub use_percent: Option<u32>,
    pub inodes: u64,
    pub inodes_used: u64,
    pub inodes_free: u64,
    /// `df -i`'s IUse%, rounded up. None when the filesystem has no inode count.
    pub inode_use_percent: Option<u32>,
    pub duration_us: u64,
}

/// One open file of one process, as a line of `lsof` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct OpenFile {
    pub pid: u32,
    pub command: String,
    pub uid: u32,
    pub user: String,
    /// `cwd`, `rtd`, `txt`, `mem` or the descriptor number.
    pub fd: String,
    /// Access mode of a descriptor: `r`, `w` or `u`; empty for cwd/rtd/txt/mem.
    pub mode: String,
    /// lsof's TYPE: REG, DIR, CHR, BLK, FIFO, sock, unix, IPv4, IPv6, a_inode, unknown.
    #[serde(rename = "type")]
    pub kind: String,
    /// The link target as the kernel gives it (`/var/log/x (deleted)`, `socket:[123]`).
    pub target: String,
    /// The path without the ` (deleted)` suffix.
    pub name: String,
    /// Device of the file as `major,minor`.
    pub device: String,
    pub inode: u64,
    /// Size in bytes (regular files, directories, block devices).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// File offset from fdinfo (descriptors only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    pub nlink: u64,
    pub deleted: bool,
    /// Flags from fdinfo, octal as the kernel prints them.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub flags: String,
    /// Why stat or fdinfo failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A process that holds a socket.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(default)]
pub struct SocketOwner {
    pub pid: u32,
    pub program: String,
    pub fd: u32,
}

/// One socket as `netstat -napo` / `ss -tanpuo` show it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Socket {
    /// `tcp`, `tcp6`, `udp`, `udp6`, `raw`, `raw6` or `unix`.
    pub proto: String,
    pub local_addr: String,
    pub local_port: u16,
    pub remote_addr: String,
    pub remote_port: u16,
    /// netstat's state name: ESTABLISHED, LISTEN, CLOSE_WAIT, TIME_WAIT, ...
    pub state: String,
    pub recv_q: u64,
    pub send_q: u64,
    /// netstat -o's timer: `off`, `on`, `keepalive`, `timewait`, `probe`.
    pub timer: String,
    /// Seconds left on the timer.
    pub timer_secs: f64,
    pub retransmits: u32,
    /// Owner uid of an inet socket; /proc/net/unix gives none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    pub inode: u64,
    /// Unix sockets: STREAM, DGRAM, SEQPACKET.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub socket_type: String,
    /// Unix sockets: the bound path (abstract names start with `@`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
    pub owners: Vec<SocketOwner>,
}

/// One process as `ps` lists it. snap's own bundles hold `proc/<pid>/stat` instead; this
/// record is what a reader makes of another tool's `ps` listings (a sos report's), so
/// that the process rules read one table whatever the source.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    /// The state letter as `/proc/<pid>/stat` gives it (`R`, `S`, `D`, `Z`, `T`, `I`...):
    /// the first letter of ps's STAT or S column.
    pub state: String,
    /// The command name (`comm`, at most 15 bytes on Linux) when the listing has it, else
    /// the base name of the first word of the command line.
    pub comm: String,
    /// The whole command line as ps printed it (`[kthreadd]` for kernel threads).
    pub args: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Threads; 0 when no listing gives them.
    pub threads: u32,
    /// Resident and virtual size in KiB, as ps's RSS and VSZ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_kib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vsz_kib: Option<u64>,
    /// ps's %CPU: CPU time over the process's lifetime, in percent of one CPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// CPU time used, in seconds (ps's TIME).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_time_s: Option<u64>,
    /// The start as the listing printed it (`Feb09`, `10:42`, or lstart's full date).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub start: String,
    /// The listing (bundle entry) this record was read from.
    pub source: String,
}

/// netstat's name of a TCP state number (include/net/tcp_states.h).
pub fn tcp_state(st: u8) -> &'static str {
    match st {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        12 => "NEW_SYN_RECV",
        _ => "UNKNOWN",
    }
}

/// Space used below one directory (or by one file of 1 MiB or more), one or two levels
/// under a nearly full mount. Directories the walk never reached before a bound cut it
/// are listed as `partial` with 0 bytes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DiskUsage {
    pub mount: String,
    pub path: String,
    /// 1 for children of the mount point, 2 for grandchildren.
    pub depth: u32,
    /// Allocated bytes (st_blocks * 512), hard links counted once, as `du` does.
    pub bytes: u64,
    pub files: u64,
    /// True when a time or entry bound stopped the walk before this directory was done.
    pub partial: bool,
}

/// Parses a `.jsonl` entry into records, naming the line that is wrong.
pub fn parse_jsonl<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, String> {
    parse_jsonl_with(bytes, |_| None)
}

/// [`parse_jsonl`], with `fast` tried on each line first: a reader of the lines in
/// the form snap writes them that returns None for anything else, which serde_json
/// then reads (and names when it is wrong).
pub fn parse_jsonl_with<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    fast: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| match fast(l) {
            Some(record) => Ok(record),
            None => serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)),
        })
        .collect()
}
