//! One bundle entry with fuzzed content, in an archive made here, read by every rule:
//! no rule may panic (a rule's panic is caught and reported as "the rule panicked", so
//! it is turned back into a crash here), and opening the archive must not either.
//!
//! Input: one byte choosing the entry's name from [`NAMES`], then its content; more
//! entries may follow, each after a 0x1e byte (see [`entries`]).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use snap_analyzers::RuleStatus;
use snap_bundle::Bundle;

/// The entries the rules read (see `snap rules`), with the per-process and per-sample
/// ones at one pid and one sample.
pub const NAMES: &[&str] = &[
    "manifest.json",
    "kernel/kmsg.txt",
    "kernel/dmesg.txt",
    "scan/sockets.jsonl",
    "scan/open_files.jsonl",
    "scan/disk_usage.jsonl",
    "scan/filesystems.jsonl",
    "scan/processes.jsonl",
    "proc/loadavg",
    "proc/stat",
    "proc/meminfo",
    "proc/vmstat",
    "proc/uptime",
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/mounts",
    "proc/self/mountinfo",
    "proc/swaps",
    "proc/pressure/cpu",
    "proc/pressure/memory",
    "proc/pressure/io",
    "proc/net/snmp",
    "proc/net/netstat",
    "proc/net/sockstat",
    "proc/net/dev",
    "proc/net/fib_trie",
    "proc/net/if_inet6",
    "proc/sys/fs/file-nr",
    "proc/sys/net/core/somaxconn",
    "proc/sys/net/ipv4/tcp_syncookies",
    "proc/1/stat",
    "proc/1/status",
    "proc/1/limits",
    "proc/1/cmdline",
    "proc/1/io",
    "samples/0/proc/stat",
    "samples/1/proc/stat",
    "samples/1/proc/1/stat",
    "samples/1/proc/net/snmp",
    "samples/1/proc/diskstats",
    "capture/window.pcap",
    "etc/nginx/nginx.conf",
    "sys/fs/cgroup/memory.max",
];

/// A POSIX ustar archive of `entries` (name, data), as tar(1) would write it.
fn ustar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// The entries of an input: the first in the whole input; further ones where a record
/// separator byte (0x1e) is followed by a name byte, so that rules reading several
/// entries together (a process's stat and its samples, the manifest and the samples)
/// meet contents that disagree.
fn entries(data: &[u8]) -> Vec<(&'static str, &[u8])> {
    let mut out: Vec<(&'static str, &[u8])> = Vec::new();
    for part in data.split(|&b| b == 0x1e).take(8) {
        let Some((&which, content)) = part.split_first() else { continue };
        let name = NAMES[usize::from(which) % NAMES.len()];
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, content));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let entries = entries(data);
    let Some(&(name, _)) = entries.first() else { return };
    let tar = ustar(&entries);
    let Ok(bundle) = Bundle::from_bytes(Path::new("fuzz.tar"), &tar) else { return };
    let report = snap_analyzers::analyze(&bundle);
    for (rule, status) in &report.rules {
        if let RuleStatus::Failed(why) = status {
            assert!(!why.contains("panicked"), "{rule} on {name}: {why}");
        }
    }
});
