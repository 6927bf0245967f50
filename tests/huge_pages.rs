//! The commands that read a bundle re-execute themselves once with glibc's huge-page
//! heap tunable (see src/heap.rs); the others, and a user's explicit choice, are left
//! alone. Observed with strace: which execve calls the command makes, with what
//! environment.

use std::path::Path;
use std::process::Command;

/// The `execve` calls `snap args` made: (program, GLIBC_TUNABLES in its environment).
fn execs(args: &[&str], tunables: Option<&str>) -> Vec<(String, Option<String>)> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("strace.log");
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-v", "-s", "4096", "-e", "trace=execve", "-o"])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_snap"))
        .args(args)
        .env_remove("GLIBC_TUNABLES");
    if let Some(t) = tunables {
        cmd.env("GLIBC_TUNABLES", t);
    }
    let out = cmd.output().expect("strace runs (installed by .ci/run)");
    assert!(out.status.success(), "snap {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("execve(") && l.ends_with("= 0"))
        .map(|l| {
            let program = l.split('"').nth(1).unwrap_or_default().to_string();
            let tunable = l.split("\"GLIBC_TUNABLES=").nth(1).map(|rest| rest.split('"').next().unwrap().to_string());
            (program, tunable)
        })
        .collect()
}

fn bundle(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("proc")).unwrap();
    std::fs::write(dir.join("proc/loadavg"), "0.10 0.20 0.30 1/100 4242\n").unwrap();
    dir.to_str().unwrap().to_string()
}

fn thp_mode() -> String {
    let s = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    s.split('[').nth(1).and_then(|r| r.split(']').next()).unwrap_or("none").to_string()
}

#[test]
fn reading_a_bundle_reexecutes_once_with_the_heap_tunable_where_thp_is_madvise() {
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path());
    let snap = env!("CARGO_BIN_EXE_snap").to_string();
    for args in [vec!["inspect", b.as_str()], vec!["analyze", "--format", "json", b.as_str()]] {
        let seen = execs(&args, None);
        if thp_mode() == "madvise" {
            assert_eq!(
                seen,
                vec![(snap.clone(), None), ("/proc/self/exe".to_string(), Some("glibc.malloc.hugetlb=1".to_string()))],
                "{args:?}"
            );
            // Other tunables are kept.
            let seen = execs(&args, Some("glibc.malloc.arena_max=2"));
            assert_eq!(seen[1].1.as_deref(), Some("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"), "{args:?}");
        } else {
            assert_eq!(seen, vec![(snap.clone(), None)], "THP mode {}: nothing to gain", thp_mode());
        }
        // A user's own setting wins, either way.
        let seen = execs(&args, Some("glibc.malloc.hugetlb=0"));
        assert_eq!(seen, vec![(snap.clone(), Some("glibc.malloc.hugetlb=0".to_string()))], "{args:?}");
    }
}

#[test]
fn commands_that_do_not_read_a_bundle_run_as_they_are() {
    let snap = env!("CARGO_BIN_EXE_snap").to_string();
    assert_eq!(execs(&["rules"], None), vec![(snap, None)]);
}

/// The steps in which `snap args` grew its heap: `brk` calls (the main arena) and
/// `mprotect` calls (the other threads' arenas).
fn heap_steps(args: &[&str], tunables: &str) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("strace.log");
    let out = Command::new("strace")
        .args(["-f", "-e", "trace=brk,mprotect", "-o"])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_snap"))
        .args(args)
        .env("GLIBC_TUNABLES", tunables)
        .output()
        .expect("strace runs (installed by .ci/run)");
    assert!(out.status.success(), "snap {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(&log).unwrap().lines().filter(|l| l.contains("mprotect(") || l.contains("brk(")).count()
}

#[test]
fn reading_a_bundle_grows_the_heap_in_large_steps_unless_the_user_says_otherwise() {
    // A socket scan of 40,000 records: megabytes of small allocations.
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path());
    std::fs::create_dir_all(dir.path().join("scan")).unwrap();
    let mut scan = String::new();
    for i in 0..40_000u32 {
        scan.push_str(&format!(
            "{{\"proto\":\"tcp\",\"local_addr\":\"127.0.0.1\",\"local_port\":{},\"remote_addr\":\"127.0.0.1\",\
             \"remote_port\":8080,\"state\":\"ESTABLISHED\",\"recv_q\":0,\"send_q\":0,\"timer\":\"off\",\
             \"timer_secs\":0.0,\"retransmits\":0,\"uid\":0,\"inode\":{},\"owners\":[{{\"pid\":{},\
             \"program\":\"client-{i}\",\"fd\":{}}}]}}\n",
            10_000 + i % 50_000,
            100_000 + i,
            1000 + i % 500,
            3 + i
        ));
    }
    std::fs::write(dir.path().join("scan/sockets.jsonl"), scan).unwrap();
    let args = ["analyze", "--format", "json", b.as_str()];
    // hugetlb=0 keeps the process from re-executing itself, so one process is counted.
    let large = heap_steps(&args, "glibc.malloc.hugetlb=0");
    let default = heap_steps(&args, "glibc.malloc.hugetlb=0:glibc.malloc.top_pad=131072");
    assert!(large * 4 < default, "{large} heap steps with the large top pad, {default} with glibc's default");
}
