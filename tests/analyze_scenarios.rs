//! Scenario tests for `snap analyze`: the test creates a condition for real, collects,
//! analyzes, and checks the finding and its numbers, then checks the rule is quiet
//! once the condition is gone. Also the exit codes and partial bundles.

mod common;

use common::{analyze_json, collect, findings, snap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn zombie_count(parent: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|s| {
            let rest = s.rsplit_once(')').map(|(_, r)| r.trim()).unwrap_or("");
            let mut f = rest.split(' ');
            f.next() == Some("Z") && f.next().and_then(|p| p.parse::<u32>().ok()) == Some(parent)
        })
        .count()
}

#[test]
fn zombies_are_found_grouped_by_parent_and_gone_after_reaping() {
    // perl (essential on Debian) forks 6 children that exit at once and never reaps them.
    let parent = Kill(
        Command::new("perl")
            .args(["-e", "for (1..6) { my $p = fork; exit 0 if $p == 0 } sleep 60"])
            .stdout(Stdio::null())
            .spawn()
            .expect("perl"),
    );
    let pid = parent.0.id();
    let t = Instant::now();
    while zombie_count(pid) < 6 {
        assert!(t.elapsed() < Duration::from_secs(10), "the 6 zombies did not appear");
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir = tempfile::tempdir().unwrap();
    let report = analyze_json(&collect(dir.path()));
    let subject = format!("pid {pid} (perl)");
    let ours: Vec<_> = findings(&report, "proc.zombies").into_iter().filter(|f| f["subject"] == subject).collect();
    assert_eq!(ours.len(), 1, "{report:#}");
    assert_eq!(ours[0]["facts"]["zombies"], 6);
    assert_eq!(ours[0]["severity"], "warning");
    assert_eq!(ours[0]["facts"]["zombie_pids"].as_array().unwrap().len(), 6);
    assert_eq!(report["rules"]["proc.zombies"], "fired");

    // Once the parent is gone, init reaps them: nothing is reported for it.
    drop(parent);
    let dir = tempfile::tempdir().unwrap();
    let report = analyze_json(&collect(dir.path()));
    assert!(findings(&report, "proc.zombies").iter().all(|f| f["subject"] != subject), "{report:#}");
}

#[test]
fn partial_directory_is_analyzed_and_absent_inputs_are_not_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    std::fs::write(dir.path().join("proc/loadavg"), "9.00 8.00 7.00 9/300 4242\n").unwrap();
    std::fs::write(dir.path().join("proc/stat"), "cpu  1 2 3 4 5 6 7 0 0 0\ncpu0 1 2 3 4 5 6 7 0 0 0\n").unwrap();
    let report = analyze_json(dir.path());
    assert_eq!(report["bundle"], Value::Null);
    assert_eq!(report["rules"]["load.high"], "fired");
    assert_eq!(report["rules"]["mem.available_low"], "not_evaluated: missing proc/meminfo");
    let load = &findings(&report, "load.high")[0];
    assert_eq!(load["facts"]["cpus"], 1);
    assert_eq!(load["severity"], "critical");

    // --fail-on: 1 when a finding at or above the level exists, 0 otherwise.
    let code = |level: &str| snap().args(["analyze", "--fail-on", level]).arg(dir.path()).status().unwrap().code();
    assert_eq!(code("critical"), Some(1));
    assert_eq!(code("warning"), Some(1));
    std::fs::write(dir.path().join("proc/loadavg"), "0.10 0.10 0.10 1/300 4242\n").unwrap();
    assert_eq!(code("warning"), Some(0));

    // Markdown and text name the host-less bundle and the rules not evaluated.
    let md = snap().args(["analyze", "--format", "markdown"]).arg(dir.path()).output().unwrap();
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(md.contains("`mem.available_low`: not_evaluated: missing proc/meminfo"), "{md}");
}

#[test]
fn unusable_input_exits_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.tar.zst");
    std::fs::write(&junk, b"not a bundle at all").unwrap();
    let out = snap().arg("analyze").arg(&junk).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("junk.tar.zst") && err.contains("not a snap bundle"), "{err}");
}
