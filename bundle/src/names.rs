//! Entry names of the bundle contract and the rule every entry name must obey.
//!
//! Raw copies keep their host path without the leading `/` (`proc/meminfo`). Everything
//! snap derives at collection time lives under `kernel/`, `scan/`, `samples/` and
//! `capture/`, named here so that writer and readers cannot drift apart.

/// The manifest; always the first entry of an archive.
pub const MANIFEST: &str = "manifest.json";
/// Kernel log records as `/dev/kmsg` gives them (or the syslog(2) buffer as a fallback).
pub const KMSG: &str = "kernel/kmsg.txt";
/// The kernel log rendered as `dmesg -T` prints it.
pub const DMESG: &str = "kernel/dmesg.txt";
/// `df` and `df -i`: one JSON object per mount.
pub const FILESYSTEMS: &str = "scan/filesystems.jsonl";
/// `lsof`: one JSON object per open file.
pub const OPEN_FILES: &str = "scan/open_files.jsonl";
/// `netstat -napo`: one JSON object per socket.
pub const SOCKETS: &str = "scan/sockets.jsonl";
/// `ps`: one JSON object per process. Made only when reading another tool's report (a
/// sos report's ps listings); snap's own bundles hold `proc/<pid>/stat`.
pub const PROCESSES: &str = "scan/processes.jsonl";
/// `du` two levels down on nearly full filesystems.
pub const DISK_USAGE: &str = "scan/disk_usage.jsonl";
/// The bounded packet capture.
pub const CAPTURE: &str = "capture/window.pcap";

/// The entry name of sample `n` of the sampling window for host path `host_path`.
pub fn sample(n: usize, host_path: &str) -> String {
    format!("samples/{n}/{}", host_path.trim_start_matches('/'))
}

/// The entry name under which a raw copy of `host_path` is stored.
pub fn raw(host_path: &str) -> String {
    host_path.trim_start_matches('/').to_string()
}

/// Why an entry name is not acceptable in a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadName {
    Empty,
    Absolute,
    ParentDir,
    NotUtf8,
    Control,
}

impl std::fmt::Display for BadName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadName::Empty => "empty name",
            BadName::Absolute => "absolute path",
            BadName::ParentDir => "path climbs out of the bundle with '..'",
            BadName::NotUtf8 => "name is not UTF-8",
            BadName::Control => "name holds control characters",
        })
    }
}

/// Checks that an entry name stays inside the bundle and returns it normalised
/// (no `.` components, no repeated or trailing slashes).
pub fn validate(raw: &[u8]) -> Result<String, BadName> {
    // The common case, checked in one pass without building parts: printable ASCII
    // segments, none empty, `.` or `..` (so not absolute either). A bundle has tens of
    // thousands of names.
    let plain = raw
        .split(|&b| b == b'/')
        .all(|seg| !seg.is_empty() && seg != b"." && seg != b".." && seg.iter().all(|b| (0x20..0x7f).contains(b)));
    if plain {
        return std::str::from_utf8(raw).map(str::to_owned).map_err(|_| BadName::NotUtf8);
    }
    let s = std::str::from_utf8(raw).map_err(|_| BadName::NotUtf8)?;
    if s.starts_with('/') {
        return Err(BadName::Absolute);
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(BadName::Control);
    }
    let mut parts = Vec::new();
    for part in s.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err(BadName::ParentDir),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(BadName::Empty);
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_and_escapes_refused() {
        assert_eq!(validate(b"./proc//meminfo").unwrap(), "proc/meminfo");
        assert_eq!(validate(b"/etc/passwd"), Err(BadName::Absolute));
        assert_eq!(validate(b"proc/../../x"), Err(BadName::ParentDir));
        assert_eq!(validate(b"./"), Err(BadName::Empty));
        assert_eq!(validate(b"a\nb"), Err(BadName::Control));
        assert_eq!(validate(&[0xff, 0x41]), Err(BadName::NotUtf8));
        // The one-pass path and the general one agree.
        assert_eq!(validate(b"proc/1/task/1/stat").unwrap(), "proc/1/task/1/stat");
        assert_eq!(validate(b"proc/").unwrap(), "proc");
        assert_eq!(validate(b"a/./b").unwrap(), "a/b");
        assert_eq!(validate(b"a/.."), Err(BadName::ParentDir));
        assert_eq!(validate(b"a\x7fb"), Err(BadName::Control));
        assert_eq!(validate("café/x".as_bytes()).unwrap(), "café/x");
    }

    #[test]
    fn sample_and_raw_names() {
        assert_eq!(sample(3, "/proc/stat"), "samples/3/proc/stat");
        assert_eq!(raw("/proc/1/stat"), "proc/1/stat");
    }
}
