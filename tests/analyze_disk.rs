//! Scenario tests for the `disk.*` rules: a tmpfs filled to 100 %, a tmpfs out of
//! inodes, and a deleted file this test process keeps open. Each test creates the
//! condition for real, runs `snap collect` and `snap analyze`, checks the finding and
//! its numbers, then removes the condition and checks the rule is quiet for it.
//! Needs root (mount); skipped otherwise. Mounts are undone on drop, also on failure.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn is_root() -> bool {
    // SAFETY: geteuid has no failure mode.
    unsafe { libc::geteuid() == 0 }
}

fn snap() -> Command {
    Command::new(env!("CARGO_BIN_EXE_snap"))
}

/// A tmpfs made by the test, unmounted on drop (also when an assertion fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(dir: &Path, options: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "snap-disk-test"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount tmpfs at {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.0).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Collects into `dir` (not on the test's tmpfs) and returns the analysis as JSON.
fn collect_and_analyze(dir: &Path) -> Value {
    let out = snap().args(["collect", "--window", "0", "--no-capture", "--quiet", "-o"]).arg(dir).output().unwrap();
    assert!(out.status.success(), "collect failed: {}", String::from_utf8_lossy(&out.stderr));
    let bundle = PathBuf::from(String::from_utf8(out.stdout).unwrap().lines().last().unwrap());
    let out = snap().args(["analyze", "--format", "json"]).arg(&bundle).output().unwrap();
    assert!(out.status.success(), "analyze failed: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_file(&bundle).unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

fn finding<'a>(report: &'a Value, rule: &str, subject: &str) -> Option<&'a Value> {
    report["findings"].as_array().unwrap().iter().find(|f| f["rule"] == rule && f["subject"] == subject)
}

fn is_enospc(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSPC) || e.kind() == ErrorKind::StorageFull
}

/// Writes to `path` until the filesystem is full; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5au8; 64 << 10];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if is_enospc(&e) => break,
            Err(e) => panic!("writing {}: {e}", path.display()),
        }
    }
    written
}

#[test]
fn a_full_tmpfs_is_critical_with_its_largest_directory() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let fs = Tmpfs::new(&tmp.path().join("full"), "size=4M");
    let mount = fs.path().to_string();
    std::fs::create_dir(fs.0.join("logs")).unwrap();
    let written = fill(&fs.0.join("logs/huge.log"));
    assert!(written > 3 << 20, "wrote only {written} bytes");

    let report = collect_and_analyze(&out);
    let f = finding(&report, "disk.space_low", &mount).unwrap_or_else(|| panic!("no finding for {mount}: {report:#}"));
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["facts"]["use_percent"], 100);
    assert_eq!(f["facts"]["avail_bytes"], 0);
    assert_eq!(f["facts"]["size_bytes"], 4 << 20);
    assert_eq!(f["facts"]["fstype"], "tmpfs");
    assert_eq!(f["facts"]["source"], "snap-disk-test");
    assert_eq!(f["facts"]["usage_walk"], "complete");
    let largest = f["facts"]["largest"].as_array().unwrap();
    let logs = format!("{mount}/logs");
    let entry = largest.iter().find(|u| u["path"] == logs.as_str()).unwrap_or_else(|| panic!("{logs} not in {f:#}"));
    // tmpfs allocates exactly what was written, in pages.
    assert_eq!(entry["bytes"], written.div_ceil(4096) * 4096);
    assert_eq!(entry["files"], 1);
    assert_eq!(largest[0]["path"], logs.as_str(), "the directory is the largest entry");
    assert!(f["advice"].as_str().unwrap().contains(&logs));
    assert_eq!(report["rules"]["disk.space_low"], "fired");

    std::fs::remove_file(fs.0.join("logs/huge.log")).unwrap();
    let report = collect_and_analyze(&out);
    assert!(finding(&report, "disk.space_low", &mount).is_none(), "{report:#}");
}

#[test]
fn a_tmpfs_out_of_inodes_is_critical() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let fs = Tmpfs::new(&tmp.path().join("inodes"), "size=4M,nr_inodes=64");
    let mount = fs.path().to_string();
    let mut created = Vec::new();
    for i in 0.. {
        let p = fs.0.join(format!("f{i}"));
        match std::fs::File::create(&p) {
            Ok(_) => created.push(p),
            Err(e) if is_enospc(&e) => break,
            Err(e) => panic!("creating {}: {e}", p.display()),
        }
        assert!(i < 1000, "nr_inodes=64 did not limit the files");
    }

    let report = collect_and_analyze(&out);
    let f = finding(&report, "disk.inodes_low", &mount).unwrap_or_else(|| panic!("no finding for {mount}: {report:#}"));
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["facts"]["inodes"], 64);
    assert_eq!(f["facts"]["inodes_free"], 0);
    assert_eq!(f["facts"]["inodes_used"], 64);
    assert_eq!(f["facts"]["inode_use_percent"], 100);
    // The root directory takes one inode; every other one is a file the test made.
    assert_eq!(created.len(), 63);
    // Space is not short, so this is no space finding.
    assert!(finding(&report, "disk.space_low", &mount).is_none());

    for p in &created {
        std::fs::remove_file(p).unwrap();
    }
    let report = collect_and_analyze(&out);
    assert!(finding(&report, "disk.inodes_low", &mount).is_none(), "{report:#}");
}

#[test]
fn a_deleted_file_held_open_is_counted_for_this_process() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let fs = Tmpfs::new(&tmp.path().join("held"), "size=64M");
    let mount = fs.path().to_string();
    let path = fs.0.join("app.log");
    const SIZE: u64 = 5 << 20;
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&vec![b'x'; SIZE as usize]).unwrap();
    std::fs::remove_file(&path).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);

    let pid = std::process::id();
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap().trim().to_string();
    let subject = format!("pid {pid} ({comm})");
    let report = collect_and_analyze(&out);
    let p = finding(&report, "disk.deleted_open", &subject).unwrap_or_else(|| panic!("no {subject}: {report:#}"));
    assert_eq!(p["facts"]["pid"], pid);
    assert_eq!(p["facts"]["held_bytes"], SIZE);
    assert_eq!(p["facts"]["held_bytes_by_filesystem"][&mount], SIZE);
    let files = p["facts"]["files"].as_array().unwrap();
    let ours = files.iter().find(|f| f["path"] == path.to_str().unwrap()).unwrap_or_else(|| panic!("{p:#}"));
    assert_eq!(ours["size"], SIZE);
    assert_eq!(ours["fd"], fd.to_string());
    assert_eq!(ours["mount"], mount.as_str());
    // 5 MiB of a 64 MiB filesystem is above 5 % of its size.
    assert_eq!(p["severity"], "warning");
    assert!(p["advice"].as_str().unwrap().contains(&format!(": > /proc/{pid}/fd/{fd}")));

    let m = finding(&report, "disk.deleted_open", &mount).unwrap_or_else(|| panic!("no {mount}: {report:#}"));
    assert_eq!(m["facts"]["held_bytes"], SIZE);
    assert_eq!(m["facts"]["files"], 1);
    assert_eq!(m["facts"]["pids"], serde_json::json!([pid]));
    assert_eq!(m["facts"]["size_bytes"], 64 << 20);

    drop(file);
    let report = collect_and_analyze(&out);
    assert!(finding(&report, "disk.deleted_open", &subject).is_none(), "{report:#}");
    assert!(finding(&report, "disk.deleted_open", &mount).is_none(), "{report:#}");
}
