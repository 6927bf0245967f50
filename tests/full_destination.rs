//! Scenario tests: the destination fills up during collection, or has too little room
//! from the start. Either way snap exits with status 3, says why, and leaves nothing
//! behind (no temporary file, no partial bundle).
//!
//! The destination is a tiny tmpfs the test mounts; needs root, skipped otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    // SAFETY: geteuid has no failure mode.
    unsafe { libc::geteuid() == 0 }
}

/// A tmpfs made by the test, unmounted on drop (also when an assertion fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "snap-full-test"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount tmpfs at {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
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

/// Writes zeros to `path` until the filesystem refuses with ENOSPC; returns bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 4096];
    let mut written = 0;
    loop {
        match f.write(&chunk) {
            Ok(0) => panic!("write returned 0"),
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return written,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

/// Waits for a child at most `limit`, killing it if it takes longer.
fn wait(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("snap did not exit within {limit:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_destination_that_fills_up_during_collection_leaves_nothing_behind() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dest = Tmpfs::new(&tmp.path().join("dest"), "2M");
    let child = Command::new(env!("CARGO_BIN_EXE_snap"))
        .args(["collect", "--window", "3", "--max-bytes", "1M", "--quiet", "-o"])
        .arg(&dest.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start snap");
    // Fill only once snap is past its pre-flight room check: its temporary file exists.
    let start = Instant::now();
    while !dest.names().iter().any(|n| n.ends_with(".tmp")) {
        assert!(start.elapsed() < Duration::from_secs(30), "snap never created its temporary file");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let filled = fill(&dest.0.join("filler"));
    assert!(filled > 0, "the pre-flight check let snap start with room to spare");
    let out = wait(child, Duration::from_secs(90));
    let stderr = String::from_utf8_lossy(&out.stderr);

    assert_eq!(out.status.code(), Some(3), "exit status; stderr: {stderr}");
    // collect.rs also adds "(the destination is full)" when the error still carries
    // ENOSPC as its OS error; errors wrapped on the way (tar) lose it, so only the
    // kernel's wording is required here.
    assert!(stderr.contains("No space left"), "stderr names the problem: {stderr}");
    assert!(stderr.contains("nothing was left behind"), "{stderr}");
    assert!(out.stdout.is_empty(), "no bundle path is printed: {:?}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(dest.names(), ["filler"], "only the test's filler remains");
}

#[test]
fn a_destination_with_less_room_than_the_budget_is_refused_before_starting() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dest = Tmpfs::new(&tmp.path().join("dest"), "1M");
    for target in [dest.0.clone(), dest.0.join("named.tar.zst")] {
        let out = Command::new(env!("CARGO_BIN_EXE_snap"))
            .args(["collect", "--window", "0", "--max-bytes", "2M", "--quiet", "-o"])
            .arg(&target)
            .output()
            .expect("run snap");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "exit status; stderr: {stderr}");
        assert!(stderr.contains("not enough room"), "stderr names the problem: {stderr}");
        assert!(stderr.contains("--max-bytes") && stderr.contains("-o -"), "stderr gives a way out: {stderr}");
        assert!(out.stdout.is_empty());
        assert!(dest.names().is_empty(), "nothing written: {:?}", dest.names());
    }
}
