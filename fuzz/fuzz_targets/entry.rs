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

/// A ustar archive of `entries` (name, data), written by the tar crate as the bundle
/// writer does.
fn ustar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, name, *data).expect("writing to memory");
    }
    tar.into_inner().expect("writing to memory")
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
