//! `snap show B iostat` held to sysstat 12.6.1's `iostat` (Debian 12) run on the same
//! data: the bundle's `proc/`, `sys/block/` and `sys/devices/system/cpu/` bind-mounted
//! over the live ones in a private mount namespace (iostat reads /proc/uptime,
//! /proc/stat, /sys/block/*/stat and counts /sys/devices/system/cpu/cpuN, as
//! `strace -e trace=openat,newfstatat iostat -x` shows). Needs root, as CI runs.
//!
//! What cannot match, and why:
//! - the header's date: the real tool prints today's, snap the capture's. When the two
//!   differ (a run across midnight) the rest is compared and snap's date is checked
//!   against the manifest's clock.
//! - the report over the window: the real tool samples the live host. Its figures are
//!   checked against values computed here from the first and last samples' diskstats
//!   and the manifest's sample clocks, around a write this test makes.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{collect_window, show, show_ok};

fn extract(bundle: &Path, dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    fs::create_dir(&tree).unwrap();
    let status = Command::new("tar").arg("--zstd").arg("-xf").arg(bundle).arg("-C").arg(&tree).status().unwrap();
    assert!(status.success());
    tree
}

/// The real iostat with `args`, on the tree's /proc and /sys copies.
fn real_iostat(tree: &Path, args: &str) -> String {
    let t = tree.display();
    let script = format!(
        "set -e; mount --bind '{t}/proc' /proc; mount --bind '{t}/sys/block' /sys/block; \
         mount --bind '{t}/sys/devices/system/cpu' /sys/devices/system/cpu; iostat {args}"
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .env_remove("S_TIME_FORMAT")
        .env_remove("POSIXLY_CORRECT")
        .env_remove("S_COLORS")
        .output()
        .expect("unshare (util-linux) is installed");
    assert!(out.status.success(), "iostat {args}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn manifest(tree: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(tree.join("manifest.json")).unwrap()).unwrap()
}

/// The header's date field (`\t11/29/26 \t`).
fn header_date(out: &str) -> &str {
    out.lines().next().unwrap().split('\t').nth(1).unwrap().trim_end()
}

const OPTIONS: &[&str] = &["", "-x", "-d -k", "-x -m", "-d -m", "-c", "-x -c", "-d -z", "-y"];

#[test]
fn since_boot_reports_equal_sysstat() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = collect_window(dir.path(), "1");
    let tree = extract(&bundle, dir.path());
    assert!(tree.join("sys/block").is_dir() && tree.join("sys/devices/system/cpu").is_dir());

    // The capture's date, in the box's time zone, as %x in the C locale.
    let m = manifest(&tree);
    let secs = m["clocks"]["realtime_ns"].as_u64().unwrap() / 1_000_000_000;
    let local = secs as i64 + m["host"]["utc_offset_seconds"].as_i64().unwrap();
    let date = Command::new("date").args(["-u", "-d", &format!("@{local}"), "+%m/%d/%y"]).output().unwrap();
    let capture_date = String::from_utf8(date.stdout).unwrap().trim().to_string();

    let mut devices = 0;
    for opts in OPTIONS {
        let mut args = vec!["iostat"];
        args.extend(opts.split_whitespace());
        let ours = show_ok(&bundle, &args);
        let theirs = real_iostat(&tree, opts);
        assert_eq!(header_date(&ours), capture_date, "{ours}");
        let theirs = if header_date(&theirs) == capture_date {
            theirs
        } else {
            theirs.replacen(header_date(&theirs), &capture_date, 1)
        };
        assert_eq!(ours, theirs, "iostat {opts}");
        if opts.is_empty() {
            devices = ours.lines().skip_while(|l| !l.starts_with("Device")).skip(1).filter(|l| !l.is_empty()).count();
        }
    }
    // Compared on something: this VM's disk did I/O since boot.
    assert!(devices > 0, "no device in the report");
}

/// The whole device holding `path`, as named in /proc/diskstats.
fn device_of(path: &str) -> String {
    let out = Command::new("stat").args(["-c", "%d", path]).output().unwrap();
    let dev: u64 = String::from_utf8(out.stdout).unwrap().trim().parse().unwrap();
    let (major, minor) = ((dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00));
    let sys = fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).unwrap();
    let whole = if sys.join("partition").exists() { sys.parent().unwrap().to_path_buf() } else { sys };
    whole.file_name().unwrap().to_str().unwrap().to_string()
}

fn diskstats_line(text: &str, name: &str) -> Vec<u64> {
    let line = text.lines().find(|l| l.split_whitespace().nth(2) == Some(name)).unwrap();
    line.split_whitespace().skip(3).map(|w| w.parse().unwrap()).collect()
}

#[test]
fn window_report_measures_a_write_made_during_the_window() {
    let device = device_of("/var/tmp");
    let dir = tempfile::tempdir().unwrap();
    let file = format!("/var/tmp/snap-iostat-{}", std::process::id());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, file) = (stop.clone(), file.clone());
        // 64 MiB of direct writes, again and again until the window is over (the same
        // file rewritten; at most two minutes, should the test die without saying stop).
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < std::time::Duration::from_secs(120) {
                let st = Command::new("dd")
                    .args(["if=/dev/zero", &format!("of={file}"), "bs=1M", "count=64", "oflag=direct", "conv=notrunc"])
                    .stderr(std::process::Stdio::null())
                    .status()
                    .unwrap();
                assert!(st.success());
            }
        })
    };
    let bundle = collect_window(dir.path(), "2");
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let _ = fs::remove_file(&file);
    let tree = extract(&bundle, dir.path());

    let m = manifest(&tree);
    let mut samples: Vec<usize> = fs::read_dir(tree.join("samples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    samples.sort_unstable();
    let (first, last) = (samples[0], *samples.last().unwrap());
    assert!(last > first, "{samples:?}");
    let boottime_cs = |i: usize| {
        let s = m["samples"].as_array().unwrap().iter().find(|s| s["index"] == i).unwrap();
        s["clocks"]["boottime_ns"].as_u64().unwrap() / 10_000_000
    };
    let itv = (boottime_cs(last) - boottime_cs(first)) as f64;
    let read = |i: usize| fs::read_to_string(tree.join(format!("samples/{i}/proc/diskstats"))).unwrap();
    let (a, b) = (diskstats_line(&read(first), &device), diskstats_line(&read(last), &device));
    let d = |i: usize| (b[i] - a[i]) as f64;
    let rate = |i: usize| d(i) / itv * 100.0;
    let per_io = |ticks: usize, ios: usize| if d(ios) == 0.0 { 0.0 } else { d(ticks) / d(ios) };
    // r/s, w/s, wkB/s, w_await, aqu-sz, %util: diskstats fields 1, 5, 7 (sectors), 8, 11, 10.
    let expected = [
        (0, format!("{:.2}", rate(0))),
        (6, format!("{:.2}", rate(4))),
        (7, format!("{:.2}", rate(6) / 2.0)),
        (10, format!("{:.2}", per_io(7, 4))),
        (20, format!("{:.2}", rate(10) / 1000.0)),
        (21, format!("{:.2}", rate(9) / 10.0)),
    ];
    // The write happened in the window: at least 16 MiB of it.
    assert!(d(6) / 2.0 >= 16_384.0, "{device}: {} kB written in the window", d(6) / 2.0);

    let out = show_ok(&bundle, &["iostat", "-x", "-d", "--window"]);
    let lines: Vec<&str> = out.lines().filter(|l| l.split_whitespace().next() == Some(&device)).collect();
    assert_eq!(lines.len(), 2, "since boot, then the window:\n{out}");
    let got: Vec<&str> = lines[1].split_whitespace().skip(1).collect();
    assert_eq!(got.len(), 22, "{}", lines[1]);
    for (col, want) in &expected {
        assert_eq!(got[*col], want, "column {col} of {}", lines[1]);
    }
    // -y leaves the since-boot report out; the window's line is the same.
    let only = show_ok(&bundle, &["iostat", "-x", "-d", "-y", "--window"]);
    let line: Vec<&str> = only.lines().filter(|l| l.split_whitespace().next() == Some(&device)).collect();
    assert_eq!(line, [lines[1]], "{only}");
    assert_eq!(only.matches("Device ").count(), 1, "{only}");
}

#[test]
fn missing_or_bad_entries_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("proc");
    fs::create_dir_all(&p).unwrap();
    fs::write(p.join("stat"), "cpu  100 0 50 800 10 0 5 0 0 0\ncpu0 100 0 50 800 10 0 5 0 0 0\nbtime 1795903307\n")
        .unwrap();
    let fail = |args: &[&str], needle: &str| {
        let mut a = vec!["iostat"];
        a.extend_from_slice(args);
        let (code, out, err) = show(dir.path(), &a);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(needle) && out.is_empty() && !err.contains("panicked"), "{args:?}: {err}");
    };
    fail(&[], "no proc/uptime");
    fs::write(p.join("uptime"), "1000.50 10.00\n").unwrap();
    fail(&[], "no proc/diskstats");
    // Without /sys/block, partitions are told apart by name.
    fs::write(
        p.join("diskstats"),
        " 8 0 sda 100 5 800 40 50 10 400 60 0 70 100 0 0 0 0 0 0\n 8 1 sda1 100 5 800 40 50 10 400 60 0 70 100 0 0 0 0 0 0\n",
    )
    .unwrap();
    let out = show_ok(dir.path(), &["iostat", "-d"]);
    assert!(out.contains("\nsda ") && !out.contains("sda1"), "{out}");
    // tps = 150 I/Os over 1000.50 s.
    assert!(out.contains("sda               0.15"), "{out}");
    fs::create_dir_all(dir.path().join("sys/block/sda")).unwrap();
    fs::write(dir.path().join("sys/block/sda/stat"), "lots\n").unwrap();
    fail(&[], "sys/block/sda/stat:");
    fs::remove_dir_all(dir.path().join("sys")).unwrap();
    fs::write(p.join("stat"), "intr 1\n").unwrap();
    fail(&["-c"], "proc/stat: no `cpu` line");
    fs::write(p.join("stat"), "cpu  100 0 50 800 10 0 5 0 0 0\n").unwrap();
    fail(&["--window"], "samples/<n>/proc/diskstats");
    fs::create_dir_all(dir.path().join("samples/0/proc")).unwrap();
    fs::write(dir.path().join("samples/0/proc/diskstats"), " 8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n").unwrap();
    fs::create_dir_all(dir.path().join("samples/1/proc")).unwrap();
    fs::write(dir.path().join("samples/1/proc/diskstats"), " 8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n").unwrap();
    fail(&["--window"], "samples/0/proc/stat");
    fail(&["-k", "-m"], "-k and -m");
    fail(&["-p"], "unknown option -p");
    fail(&["vda"], "unexpected argument");
}
