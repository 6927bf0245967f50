//! Kernel-log rules on third-party logs from ../shared/corpus/dmesg (see its
//! PROVENANCE.md): each file is put, read in place and written into a temporary
//! directory bundle, at the entry a kernel log of its format has (`kernel/kmsg.txt`
//! for /dev/kmsg records, `var/log/kern.log`, `var/log/messages`,
//! `sos_commands/kernel/dmesg`, else `kernel/dmesg.txt`), then `snap analyze --format json`
//! must report exactly the expected kernel-log rules and stay quiet on the rest.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const RULES: &[&str] = &[
    "mem.oom_kill",
    "kernel.hung_task",
    "kernel.soft_lockup",
    "kernel.segfault",
    "kernel.conntrack_full",
    "kernel.io_error",
    "kernel.hardware_error",
];

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/dmesg");
    if !dir.is_dir() {
        println!("the third-party corpus is absent: {} (CI has it; see DESIGN.md)", dir.display());
    }
    assert!(dir.is_dir(), "the corpus folder {} is required by this test", dir.display());
    dir
}

/// The entry a file of this name would have in a bundle or a third-party tree.
fn entry_for(name: &str) -> &'static str {
    if name.starts_with("dev_kmsg") {
        "kernel/kmsg.txt"
    } else if name.ends_with(".kern.log") {
        "var/log/kern.log"
    } else if name.ends_with(".syslog") || name.starts_with("var_log_messages") {
        "var/log/messages"
    } else if name.ends_with(".sos_dmesg") {
        "sos_commands/kernel/dmesg"
    } else {
        "kernel/dmesg.txt"
    }
}

fn analyze(rel: &str) -> Value {
    let src = corpus().join(rel);
    let name = src.file_name().unwrap().to_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join(entry_for(&name));
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::write(&dest, std::fs::read(&src).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_snap"))
        .args(["analyze", "--format", "json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "analyze {rel}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn findings<'a>(report: &'a Value, rule: &str) -> Vec<&'a Value> {
    report["findings"].as_array().unwrap().iter().filter(|f| f["rule"] == rule).collect()
}

/// Every file with the kernel-log rules it must fire; all other rules must pass.
const EXPECTED: &[(&str, &[&str])] = &[
    ("gpud/dev_kmsg.1.log", &[]),
    ("gpud/dmesg-T-with-xid-119.log", &[]),
    ("gpud/dmesg.decode.iso.log.0", &[]),
    ("gpud/dmesg.decode.iso.log.1", &[]),
    ("gpud/memory-oom.dmesg.decode.iso.log", &["mem.oom_kill"]),
    ("gpud/os-file-max.dmesg.decode.iso.log", &[]),
    ("gpud/pstore-erst-panic.dmesg.txt", &[]),
    ("hotsos-scenarios/disk_failure.kern.log", &["kernel.io_error"]),
    ("hotsos-scenarios/disk_failure_2.kern.log", &["kernel.io_error"]),
    ("hotsos-scenarios/disk_failure_3.kern.log", &["kernel.io_error"]),
    ("hotsos-scenarios/excessive_failovers_w_mtu_drops.sos_dmesg", &[]),
    ("hotsos-scenarios/excessive_failovers_w_mtu_drops_kernlog.kern.log", &[]),
    ("hotsos-scenarios/kernlog_calltrace_any.kern.log", &[]),
    ("hotsos-scenarios/kernlog_calltrace_bcache_deadlock.kern.log", &["kernel.hung_task"]),
    ("hotsos-scenarios/kernlog_calltrace_fanotify.kern.log", &["kernel.hung_task"]),
    ("hotsos-scenarios/kernlog_calltrace_hungtasks.kern.log", &["kernel.hung_task"]),
    ("hotsos-scenarios/kernlog_calltrace_oom_killer.kern.log", &["mem.oom_kill"]),
    ("hotsos-scenarios/lp1807628_segfault.kern.log", &["kernel.segfault"]),
    ("hotsos-scenarios/lp1896506.syslog", &[]),
    ("hotsos-scenarios/lp1934937_syslog.syslog", &[]),
    ("hotsos-scenarios/misc_nf_conntrack_full.kern.log", &["kernel.conntrack_full"]),
    ("hotsos-scenarios/misc_over_mtu_dropped_packets.kern.log", &[]),
    ("hotsos-scenarios/misc_over_mtu_dropped_packets_w_ovs_ports.kern.log", &[]),
    ("hotsos-scenarios/nfs-name-or-service-not-known.syslog", &[]),
    ("hotsos-scenarios/qla2xxx.kern.log", &[]),
    ("insights-core/dmesg.MSGINFO.txt", &[]),
    ("insights-core/dmesg.TS_MSGINFO.txt", &[]),
    ("insights-core/dmesg_cmd.combiner.txt", &[]),
    ("insights-core/var_log_dmesg.DMESG_EXAMPLE.txt", &[]),
    ("insights-core/var_log_dmesg.combiner.txt", &[]),
    ("insights-core/var_log_messages.txt", &[]),
    ("insights-core/vmcore-dmesg.crash.txt", &[]),
    ("insights-core/vmcore-dmesg.txt", &[]),
];

#[test]
fn every_kernel_log_rule_fires_exactly_where_the_corpus_shows_its_condition() {
    for (rel, fire) in EXPECTED {
        let report = analyze(rel);
        for rule in RULES {
            let expected = if fire.contains(rule) { "fired" } else { "passed" };
            assert_eq!(report["rules"][rule], expected, "{rule} on {rel}: {:#}", report["findings"]);
        }
    }
}

#[test]
fn the_list_covers_the_corpus() {
    let dir = corpus();
    for sub in std::fs::read_dir(&dir).unwrap() {
        let sub = sub.unwrap().path();
        if !sub.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&sub).unwrap() {
            let f = f.unwrap().path();
            let rel = f.strip_prefix(&dir).unwrap().to_str().unwrap().to_string();
            assert!(EXPECTED.iter().any(|(r, _)| *r == rel), "{rel} has no expectation");
        }
    }
}

#[test]
fn oom_kernel_5_4_victim_memory_and_trigger() {
    // The file's last line: `Out of memory: Killed process 955 (gnome-shell)
    // total-vm:3289540kB, anon-rss:77868kB, file-rss:107372kB, shmem-rss:12kB, UID:121 ...`.
    let report = analyze("hotsos-scenarios/kernlog_calltrace_oom_killer.kern.log");
    let f = findings(&report, "mem.oom_kill");
    assert_eq!(f.len(), 1);
    let f = f[0];
    assert_eq!(f["subject"], "pid 955 (gnome-shell)");
    assert_eq!(f["severity"], "critical");
    let facts = &f["facts"];
    assert_eq!((facts["pid"].as_u64(), facts["command"].as_str()), (Some(955), Some("gnome-shell")));
    assert_eq!(facts["total_vm_kb"], 3289540);
    assert_eq!(facts["anon_rss_kb"], 77868);
    assert_eq!(facts["file_rss_kb"], 107372);
    assert_eq!(facts["shmem_rss_kb"], 12);
    assert_eq!(facts["triggered_by"], "kworker/0:0");
    assert_eq!(facts["constraint"], "CONSTRAINT_NONE");
    assert_eq!(facts["cgroup_limit"], false);
    assert_eq!(facts["task_memcg"], "/user.slice/user-121.slice/session-c1.scope");
    assert_eq!(facts["first_time"], "27742.909073");
    assert_eq!(facts["events"][0]["gfp_mask"], "0xcc0(GFP_KERNEL)");
    let lines = f["evidence"][0]["lines"].as_array().unwrap();
    assert_eq!(f["evidence"][0]["entry"], "var/log/kern.log");
    assert!(lines[0].as_str().unwrap().starts_with("line 1: kworker/0:0 invoked oom-killer"), "{lines:?}");
    assert!(lines.last().unwrap().as_str().unwrap().starts_with("line 207: Out of memory: Killed process 955"));
}

#[test]
fn oom_old_formats_and_cgroup_constraint_in_iso_dmesg() {
    // `Out of memory: Killed process 123, UID 48, (httpd)` twice (2.6.32 wording),
    // `Kill process 456 (python) score 50 or sacrifice child` (choice only, up to 5.0),
    // and an `oom-kill:constraint=CONSTRAINT_MEMCG,...,oom_memcg=/lxc.payload...,task=node,pid=863987`.
    let report = analyze("gpud/memory-oom.dmesg.decode.iso.log");
    let f = findings(&report, "mem.oom_kill");
    let subjects: Vec<&str> = f.iter().map(|f| f["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, ["pid 123 (httpd)", "pid 456 (python)", "pid 863987 (node)"]);
    assert_eq!(f[0]["facts"]["kills"], 2);
    // The report opens with the (truncated) constraint line at 08:42:30.
    assert_eq!(f[0]["facts"]["first_time"], "2025-01-21T08:42:30,287197+00:00");
    assert_eq!(f[0]["facts"]["last_time"], "2025-01-21T08:45:30,287197+00:00");
    assert_eq!(f[1]["facts"]["killed"], false);
    assert_eq!(f[1]["facts"]["events"][0]["score"], 50);
    assert_eq!(f[2]["facts"]["cgroup_limit"], true);
    assert!(f[2]["facts"]["oom_memcg"].as_str().unwrap().starts_with("/lxc.payload.ny2g2r5hh3-lxc/kubepods.slice/"));
}

#[test]
fn hung_task_segfault_conntrack_and_disk_numbers() {
    let r = analyze("hotsos-scenarios/kernlog_calltrace_hungtasks.kern.log");
    let f = findings(&r, "kernel.hung_task");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["subject"], "pid 1177107 (df)");
    assert_eq!(f[0]["facts"]["blocked_s"], 120);

    let r = analyze("hotsos-scenarios/kernlog_calltrace_fanotify.kern.log");
    assert_eq!(findings(&r, "kernel.hung_task")[0]["subject"], "pid 1428 (controller)");

    let r = analyze("hotsos-scenarios/lp1807628_segfault.kern.log");
    let f = findings(&r, "kernel.segfault");
    assert_eq!(f[0]["subject"], "lxcfs");
    assert_eq!(f[0]["facts"]["pids"], serde_json::json!([1925937]));
    assert_eq!(f[0]["facts"]["libraries"], serde_json::json!(["liblxcfs.so"]));

    let r = analyze("hotsos-scenarios/misc_nf_conntrack_full.kern.log");
    let f = findings(&r, "kernel.conntrack_full");
    assert_eq!(
        (f[0]["facts"]["count"].as_u64(), f[0]["facts"]["first_time"].as_str()),
        (Some(1), Some("Jun  8 10:48:13"))
    );

    for (file, dev, kind) in [
        ("disk_failure.kern.log", "sdk", "medium"),
        ("disk_failure_2.kern.log", "sdk", "io"),
        ("disk_failure_3.kern.log", "sdb", "medium"),
    ] {
        let r = analyze(&format!("hotsos-scenarios/{file}"));
        let f = findings(&r, "kernel.io_error");
        assert_eq!(f.len(), 1, "{file}");
        assert_eq!(f[0]["subject"], dev, "{file}");
        assert_eq!(f[0]["facts"]["kinds"][kind], 1, "{file}");
        assert_eq!(f[0]["severity"], "critical");
    }
}
