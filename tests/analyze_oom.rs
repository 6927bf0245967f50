//! Scenario: a real OOM kill inside a memory cgroup. A child is put into a fresh cgroup
//! limited to 32 MiB (no swap), allocates and touches 256 MiB, and is killed by the
//! kernel; `snap collect` + `snap analyze` must report `mem.oom_kill` for that pid with
//! the cgroup constraint. Uses cgroup v2 when its memory controller is available, else
//! the v1 memory hierarchy. Needs root (CI runs as root on a Linux VM).

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn snap() -> Command {
    Command::new(env!("CARGO_BIN_EXE_snap"))
}

/// A memory cgroup removed on drop (its only process has exited by then).
struct Cgroup {
    dir: PathBuf,
    /// The path the kernel prints (`oom_memcg=/name`).
    name: String,
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn write(path: &Path, value: &str) {
    std::fs::write(path, value).unwrap_or_else(|e| panic!("writing {value} to {}: {e}", path.display()));
}

/// A cgroup with a 32 MiB limit and no swap.
fn limited_cgroup() -> Cgroup {
    let name = format!("snap-oom-test-{}", std::process::id());
    let v2 = Path::new("/sys/fs/cgroup");
    let v1 = Path::new("/sys/fs/cgroup/memory");
    let controllers = std::fs::read_to_string(v2.join("cgroup.controllers")).unwrap_or_default();
    if controllers.split_whitespace().any(|c| c == "memory") {
        let subtree = std::fs::read_to_string(v2.join("cgroup.subtree_control")).unwrap_or_default();
        if !subtree.split_whitespace().any(|c| c == "memory") {
            write(&v2.join("cgroup.subtree_control"), "+memory");
        }
        let cg = Cgroup { dir: v2.join(&name), name: format!("/{name}") };
        std::fs::create_dir(&cg.dir).unwrap();
        write(&cg.dir.join("memory.max"), "32M");
        if cg.dir.join("memory.swap.max").exists() {
            write(&cg.dir.join("memory.swap.max"), "0");
        }
        cg
    } else if v1.join("memory.limit_in_bytes").exists() {
        let cg = Cgroup { dir: v1.join(&name), name: format!("/{name}") };
        std::fs::create_dir(&cg.dir).unwrap();
        write(&cg.dir.join("memory.limit_in_bytes"), "33554432");
        if cg.dir.join("memory.memsw.limit_in_bytes").exists() {
            write(&cg.dir.join("memory.memsw.limit_in_bytes"), "33554432");
        }
        if cg.dir.join("memory.swappiness").exists() {
            let _ = std::fs::write(cg.dir.join("memory.swappiness"), "0");
        }
        cg
    } else {
        panic!(
            "no cgroup memory controller: neither cgroup v2 with memory nor /sys/fs/cgroup/memory (need root on Linux)"
        );
    }
}

#[test]
fn oom_kill_inside_a_memory_cgroup_is_reported_with_the_cgroup_constraint() {
    let cg = limited_cgroup();
    // The shell moves itself into the cgroup, then becomes perl: the victim's pid is the child's.
    let script = format!(
        "echo $$ > {} && exec perl -e '$x = \"a\" x (256*1024*1024); sleep 1'",
        cg.dir.join("cgroup.procs").display()
    );
    let mut child = Command::new("sh").args(["-c", &script]).spawn().expect("sh");
    let pid = child.id();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "the child should have been OOM-killed (SIGKILL), got {status:?}");

    let dir = tempfile::tempdir().unwrap();
    let out =
        snap().args(["collect", "--window", "0", "--no-capture", "--quiet", "-o"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "collect failed: {}", String::from_utf8_lossy(&out.stderr));
    let bundle = PathBuf::from(String::from_utf8(out.stdout).unwrap().lines().last().unwrap());
    let out = snap().args(["analyze", "--format", "json"]).arg(&bundle).output().unwrap();
    assert!(out.status.success(), "analyze failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(report["rules"]["mem.oom_kill"], "fired");
    let subject = format!("pid {pid} (perl)");
    let ours: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "mem.oom_kill" && f["subject"] == subject)
        .collect();
    assert_eq!(ours.len(), 1, "no mem.oom_kill for {subject}: {report:#}");
    let f = ours[0];
    assert_eq!(f["severity"], "critical");
    let facts = &f["facts"];
    assert_eq!(facts["pid"], pid);
    assert_eq!(facts["command"], "perl");
    assert_eq!(facts["killed"], true);
    assert_eq!(facts["cgroup_limit"], true, "{f:#}");
    assert_eq!(facts["constraint"], "CONSTRAINT_MEMCG");
    assert_eq!(facts["oom_memcg"], cg.name.as_str());
    assert_eq!(facts["triggered_by"], "perl");
    // The victim held at most the limit in anonymous memory (plus a little slack for
    // pages charged elsewhere), and its address space is larger than the limit.
    let anon = facts["anon_rss_kb"].as_u64().unwrap();
    assert!(anon > 1024 && anon <= 33 * 1024, "anon-rss {anon} kB");
    assert!(facts["total_vm_kb"].as_u64().unwrap() > 32 * 1024);
    assert_eq!(f["evidence"][0]["entry"], "kernel/kmsg.txt");
    assert!(f["advice"].as_str().unwrap().contains("cgroup"));
}
