//! `snap diff` on bundles taken around changes the tests make: a process (this test
//! process) that leaks file descriptors and CLOSE_WAIT sockets, a file filled on a
//! tmpfs the test mounts, and a setting changed under a test root. Also: a bundle
//! against itself, and bundles of different hosts.

mod common;

use std::fs::File;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::netns::is_root;
use common::{collect_window, snap};
use serde_json::Value;

/// The tests of this file one at a time: the leak test counts this process's open
/// files, and another test's pipes to its child would come and go in between.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn diff(before: &Path, after: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = snap().arg("diff").arg(before).arg(after).args(extra).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

fn diff_json(before: &Path, after: &Path) -> Value {
    let (code, out) = diff(before, after, &["--format", "json"]);
    assert_eq!(code, Some(0), "{out}");
    serde_json::from_str(&out).unwrap()
}

fn figure<'a>(d: &'a Value, group: &str, name: &str) -> &'a Value {
    d["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["group"] == group && f["name"] == name)
        .unwrap_or_else(|| panic!("no figure {group} {name}"))
}

fn growth<'a>(list: &'a Value, measure: &str, pid: u32) -> Option<&'a Value> {
    list.as_array().unwrap().iter().find(|g| g["measure"] == measure && g["pid"] == pid)
}

/// Holds `n` more CLOSE_WAIT sockets (the peer closed, this process did not) and `n`
/// more open files.
struct Leaker {
    listener: TcpListener,
    held: Vec<TcpStream>,
    files: Vec<File>,
}

impl Leaker {
    fn new() -> Leaker {
        Leaker { listener: TcpListener::bind("127.0.0.1:0").unwrap(), held: Vec::new(), files: Vec::new() }
    }

    fn leak(&mut self, n: usize) {
        let addr = self.listener.local_addr().unwrap();
        for _ in 0..n {
            let client = TcpStream::connect(addr).unwrap();
            let (server, _) = self.listener.accept().unwrap();
            drop(client);
            self.held.push(server);
            self.files.push(File::open("/proc/self/stat").unwrap());
        }
        // Wait for the FINs: a peek sees end of file once a socket is in CLOSE_WAIT.
        for s in &self.held {
            s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
            assert_eq!(s.peek(&mut [0u8; 1]).expect("the client's FIN"), 0);
        }
    }
}

struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_leak_a_filled_file_and_the_new_finding_are_reported_with_their_numbers() {
    let _serial = serial();
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs needs root (CI runs as root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("fill");
    std::fs::create_dir(&mnt).unwrap();
    let st =
        Command::new("mount").args(["-t", "tmpfs", "-o", "size=128m", "snap-diff-test"]).arg(&mnt).status().unwrap();
    assert!(st.success());
    let _mount = Tmpfs(mnt.clone());
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();

    let mut leaker = Leaker::new();
    leaker.leak(5);
    let before = collect_window(&out, "1");
    leaker.leak(50);
    let marker = format!("snap-diff-test marker {}", std::process::id());
    std::fs::write("/dev/kmsg", format!("{marker}\n")).unwrap();
    let mut f = File::create(mnt.join("filler")).unwrap();
    f.write_all(&vec![0x5a; 64 << 20]).unwrap();
    f.sync_all().unwrap();
    let after = collect_window(&out, "1");

    let d = diff_json(&before, &after);
    let me = std::process::id();
    let target = mnt.to_str().unwrap();

    // The filled file: exactly 64 MiB more used on the tmpfs, as much less available.
    let used = figure(&d, "space", &format!("{target} used"));
    assert_eq!(used["after"].as_f64().unwrap() - used["before"].as_f64().unwrap(), (64 << 20) as f64, "{used}");
    let avail = figure(&d, "space", &format!("{target} avail"));
    assert_eq!(avail["before"].as_f64().unwrap() - avail["after"].as_f64().unwrap(), (64 << 20) as f64, "{avail}");

    // The leak: 50 more CLOSE_WAIT sockets held by this process, and at least 100 more
    // descriptors (50 sockets and 50 files).
    let cw = growth(&d["processes"]["close_wait"], "close_wait", me).expect("CLOSE_WAIT growth of the leaker");
    assert_eq!((cw["before"].as_u64(), cw["after"].as_u64()), (Some(5), Some(55)), "{cw}");
    let fds = growth(&d["processes"]["growers"], "open files", me).expect("the leaker among the open-file growers");
    assert!(fds["after"].as_u64().unwrap() - fds["before"].as_u64().unwrap() >= 100, "{fds}");
    let port = d["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == format!(":{} CLOSE_WAIT", leaker.listener.local_addr().unwrap().port()))
        .expect("connections of the leaker's port by state");
    assert_eq!((port["before"].as_f64(), port["after"].as_f64()), (Some(5.0), Some(55.0)), "{port}");

    // 55 CLOSE_WAIT sockets make net.close_wait fire where 5 did not: a new warning.
    let new: Vec<&Value> =
        d["findings"]["new"].as_array().unwrap().iter().filter(|f| f["rule"] == "net.close_wait").collect();
    assert!(new.iter().any(|f| f["subject"].as_str().unwrap().contains(&me.to_string())), "{:#}", d["findings"]);
    assert_eq!(d["host"]["same_boot"], true);
    // The kernel message written in between, found by its sequence number.
    assert_eq!(d["kernel_log"]["matched_by"], "sequence");
    let msgs = d["kernel_log"]["messages"].as_array().unwrap();
    assert!(msgs.iter().any(|m| m["text"] == marker.as_str()), "{msgs:?}");
    assert!(d["rates"]["seconds"].as_f64().unwrap() > 0.0);
    assert!(d["rates"]["rates"].as_array().unwrap().iter().any(|r| r["group"] == "cpu" && r["name"] == "user"));

    // --exit-code: 1 for the new warning; the text names it and the numbers.
    let (code, text) = diff(&before, &after, &["--exit-code"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("new       warning  net.close_wait"), "{text}");
    assert!(text.contains("close_wait  pid ") && text.contains(": 5 -> 55 (+50)"), "{text}");
    assert!(text.contains(&format!("{target} used")) && text.contains("+64.0 MiB"), "{text}");
    // The other way round the finding is resolved. (Whether the exit status is then 0
    // depends on the load other tests put on the box during BEFORE's window.)
    let (_, text) = diff(&after, &before, &[]);
    assert!(text.contains("resolved  warning  net.close_wait"), "{text}");
    drop(leaker);
}

#[test]
fn a_setting_and_a_configuration_file_changed_under_a_test_root() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("proc/sys/net/ipv4")).unwrap();
    std::fs::create_dir_all(root.join("etc/sysctl.d")).unwrap();
    let set = |timeout: u32, conf: &str| {
        std::fs::write(root.join("proc/sys/net/ipv4/tcp_fin_timeout"), format!("{timeout}\n")).unwrap();
        std::fs::write(root.join("etc/sysctl.conf"), conf).unwrap();
    };
    let collect = |name: &str| {
        let path = dir.path().join(name);
        let out = snap()
            .args(["collect", "--window", "0", "--no-capture", "--quiet", "--root"])
            .arg(&root)
            .arg("-o")
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        path
    };
    set(60, "# tuning\nnet.ipv4.tcp_fin_timeout = 60\nvm.swappiness = 10\n");
    let before = collect("before.tar.zst");
    set(30, "# tuning\nnet.ipv4.tcp_fin_timeout = 30\nvm.swappiness = 10\n");
    std::fs::write(root.join("etc/sysctl.d/99-new.conf"), "net.core.somaxconn = 4096\n").unwrap();
    let after = collect("after.tar.zst");

    let d = diff_json(&before, &after);
    let sysctl = d["host"]["sysctl"].as_array().unwrap();
    assert_eq!(
        sysctl.iter().find(|s| s["name"] == "net.ipv4.tcp_fin_timeout"),
        Some(&serde_json::json!({"name": "net.ipv4.tcp_fin_timeout", "before": "60", "after": "30"})),
        "{sysctl:?}"
    );
    let config = d["host"]["config"].as_array().unwrap();
    let conf = config.iter().find(|c| c["entry"] == "etc/sysctl.conf").expect("sysctl.conf changed");
    assert_eq!(conf["change"], "changed");
    assert_eq!(
        conf["diff"],
        serde_json::json!([
            "@@ -1,3 +1,3 @@",
            " # tuning",
            "-net.ipv4.tcp_fin_timeout = 60",
            "+net.ipv4.tcp_fin_timeout = 30",
            " vm.swappiness = 10"
        ])
    );
    assert!(config.iter().any(|c| c["entry"] == "etc/sysctl.d/99-new.conf" && c["change"] == "added"), "{config:?}");
    let (_, text) = diff(&before, &after, &[]);
    assert!(text.contains("net.ipv4.tcp_fin_timeout = 60 -> 30"), "{text}");
    assert!(
        text.contains("-net.ipv4.tcp_fin_timeout = 60") && text.contains("+net.ipv4.tcp_fin_timeout = 30"),
        "{text}"
    );
}

#[test]
fn a_bundle_against_itself_is_no_change() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let b = collect_window(dir.path(), "1");
    let (code, text) = diff(&b, &b, &["--exit-code"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("same boot") && text.contains("\nNo changes.\n"), "{text}");
    let d = diff_json(&b, &b);
    for list in [
        &d["findings"]["new"],
        &d["findings"]["resolved"],
        &d["findings"]["changed"],
        &d["host"]["sysctl"],
        &d["host"]["config"],
    ] {
        assert_eq!(list.as_array().map(Vec::len), Some(0), "{d:#}");
    }
    for part in ["started", "exited", "growers", "close_wait"] {
        assert_eq!(d["processes"][part].as_array().map(Vec::len), Some(0), "{part}");
    }
    assert_eq!(d["kernel_log"]["messages"].as_array().map(Vec::len), Some(0));
    assert!(d["figures"].as_array().unwrap().len() > 10);
    assert!(d["figures"].as_array().unwrap().iter().all(|f| f["before"] == f["after"]));
}

#[test]
fn bundles_of_different_hosts_are_reported_as_such() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let b = collect_window(dir.path(), "0");
    // The same bundle as a directory whose manifest names another host and boot.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let st = Command::new("tar").arg("--zstd").arg("-xf").arg(&b).arg("-C").arg(&other).status().unwrap();
    assert!(st.success());
    let mpath = other.join("manifest.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m["host"]["hostname"] = "db-7".into();
    m["host"]["boot_id"] = "00000000-0000-0000-0000-000000000007".into();
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();

    let d = diff_json(&b, &other);
    assert_eq!(d["host"]["same_host"], false);
    assert_eq!(d["host"]["same_boot"], false);
    assert_eq!(d["host"]["after"]["hostname"], "db-7");
    assert!(d["rates"].is_null(), "no rates across hosts");
    assert!(d["skipped"]["rates"].as_str().unwrap().contains("same boot"));
    let (_, text) = diff(&b, &other, &[]);
    let me = m["host"]["hostname"].as_str().unwrap();
    assert!(text.contains(&format!("and {me}")) && text.contains("DIFFERENT HOSTS"), "{text}");
}

#[test]
fn an_unusable_bundle_is_refused_naming_it() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.tar.zst");
    std::fs::write(&junk, b"not a bundle").unwrap();
    let out = snap().arg("diff").arg(&junk).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("junk.tar.zst") && err.contains("not a snap bundle"), "{err}");
}
