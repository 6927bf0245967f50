//! Scenario tests for the limit rules: the test creates the condition for real (root,
//! Linux), collects, analyzes, and checks the finding and its numbers, then checks that
//! the rule is quiet for the same subject once the condition is gone.

mod common;

use common::{analyze_json, collect, findings};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts perl under `prlimit --nofile=SOFT:HARD` holding stdio and `files` descriptors
/// on /dev/null, and waits until it says they are open.
fn holder(soft: u32, hard: u32, files: u32) -> Kill {
    // Descriptors inherited from the test harness (cargo's jobserver pipe) are closed
    // first so that the count is exactly stdio plus the files opened.
    let script = format!("use POSIX (); POSIX::close($_) for 3..1023; my @f; for (1..{files}) {{ open(my $h, '<', '/dev/null') or die $!; push @f, $h }} $| = 1; print \"ready\\n\"; sleep 60");
    let mut child = Kill(
        Command::new("prlimit")
            .arg(format!("--nofile={soft}:{hard}"))
            .args(["perl", "-e", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("prlimit perl"),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n", "perl did not open its files");
    child
}

/// Descriptors a process has open, as /proc shows them.
fn fd_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count() as u64
}

/// The soft and hard open-files limits of a process, from /proc.
fn nofile(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let v: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (v[0], v[1])
}

#[test]
fn process_near_its_open_files_limit_is_found_and_quiet_once_gone() {
    // 90 files plus stdin, stdout and stderr: 93 of a soft limit of 100.
    let near = holder(100, 100, 90);
    // The same descriptors under a roomy limit: not reported.
    let roomy = holder(1000, 1000, 90);
    let pid = near.0.id();
    let fds = fd_count(pid);
    assert_eq!(fds, 93, "perl holds stdio and its 90 files");
    assert_eq!(nofile(pid), (100, 100));

    let dir = tempfile::tempdir().unwrap();
    let report = analyze_json(&collect(dir.path()));
    assert_eq!(fd_count(pid), fds, "the descriptors stayed open during the collection");
    let subject = format!("pid {pid} (perl)");
    let ours: Vec<_> = findings(&report, "fd.limit_near").into_iter().filter(|f| f["subject"] == subject).collect();
    assert_eq!(ours.len(), 1, "{report:#}");
    let f = ours[0];
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["facts"]["fds"], fds);
    assert_eq!(f["facts"]["soft_limit"], 100);
    assert_eq!(f["facts"]["hard_limit"], 100);
    assert_eq!(f["facts"]["used_percent"], 93.0);
    assert_eq!(f["facts"]["highest_fd"], 92);
    assert_eq!(f["facts"]["fds_by_type"]["CHR"], 92, "/dev/null 90 times, stdin and stderr");
    assert_eq!(f["facts"]["fds_by_type"]["FIFO"], 1, "stdout, the pipe to the test");
    assert!(f["summary"].as_str().unwrap().contains("93 open files of its limit of 100"), "{f:#}");
    assert!(f["evidence"].to_string().contains("Max open files            100"), "{f:#}");
    assert_eq!(report["rules"]["fd.limit_near"], "fired");
    let roomy_subject = format!("pid {} (perl)", roomy.0.id());
    assert!(findings(&report, "fd.limit_near").iter().all(|f| f["subject"] != roomy_subject), "{report:#}");

    drop(near);
    drop(roomy);
    let dir = tempfile::tempdir().unwrap();
    let report = analyze_json(&collect(dir.path()));
    assert!(findings(&report, "fd.limit_near").iter().all(|f| f["subject"] != subject), "{report:#}");
}

#[test]
fn process_at_its_limit_is_critical() {
    // 95 files plus stdio: 98 of 100, past the critical threshold of 95 %.
    let at = holder(100, 4096, 95);
    let pid = at.0.id();
    assert_eq!(fd_count(pid), 98, "stdio and 95 files");
    let dir = tempfile::tempdir().unwrap();
    let report = analyze_json(&collect(dir.path()));
    let subject = format!("pid {pid} (perl)");
    let f = findings(&report, "fd.limit_near").into_iter().find(|f| f["subject"] == subject).expect("finding");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["facts"]["fds"], 98);
    assert_eq!(f["facts"]["soft_limit"], 100);
    assert_eq!(f["facts"]["hard_limit"], 4096);
}
