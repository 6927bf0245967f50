//! `snap show`'s procps views (`uptime`, `free`, `vmstat`) held to the real procps-ng
//! tools (4.0.2 on Debian 12) run on the same data: the bundle's `proc/` (or a hand-made
//! tree) bind-mounted over /proc in a private mount namespace, so the real tool reads
//! exactly the files snap replays. Needs root (unshare, mount), as CI runs.
//!
//! What cannot match, and why:
//! - uptime's clock: the real tool prints the current time, snap the capture's. Compared
//!   instead with the manifest's clock computed here.
//! - uptime's user count is compared whole on a collected bundle (the collector copies
//!   this machine's /run/utmp, or records that it has none, and the real tool counts the
//!   same file), and on hand-made trees with and without a utmp.
//! - vmstat after its first line: the real tool samples the live host. The interval
//!   lines are checked against figures computed here from the samples' raw files.
//!
//! `free -h` is passed as it is: `-h` belongs to the view, help is `snap show --help`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{collect_window, show, show_ok};

/// Runs `script` in a private mount namespace after bind-mounting `proc_dir` over /proc
/// (and running `prepare` first, if given); its stdout.
fn real_with(proc_dir: &Path, prepare: &str, script: &str) -> String {
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!("set -e; {prepare} mount --bind '{}' /proc; {script}", proc_dir.display()))
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .output()
        .expect("unshare (util-linux) is installed");
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn real(proc_dir: &Path, script: &str) -> String {
    real_with(proc_dir, "", script)
}

/// ` 03:43:45 up  5:41,  ? users,  load average: ...` without the clock.
fn after_clock(line: &str) -> &str {
    assert!(line.len() > 9 && line.as_bytes()[3] == b':' && line.as_bytes()[6] == b':', "{line:?}");
    &line[9..]
}

/// An uptime line without its user count (`up 1 day,  1:01,,  load average: ...`).
fn without_users(line: &str) -> String {
    let u = line.find(" user").unwrap_or_else(|| panic!("no user count in {line:?}"));
    let start = line[..u].rfind(", ").unwrap() + 2;
    let end = u + line[u..].find(",  load average").unwrap();
    format!("{}{}", &line[..start], &line[end..])
}

fn numbers(line: &str) -> Vec<u64> {
    line.split_whitespace().map(|w| w.parse().unwrap()).collect()
}

/// The counters of a /proc/stat: the `cpu` line's ten fields, intr, ctxt, running, blocked.
fn stat_counters(text: &str) -> ([i64; 10], u64, u64, u64, u64) {
    let mut cpu = [0i64; 10];
    let (mut intr, mut ctxt, mut running, mut blocked) = (0, 0, 0, 0);
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w[0] {
            "cpu" => {
                for (i, v) in w[1..].iter().take(10).enumerate() {
                    cpu[i] = v.parse().unwrap();
                }
            }
            "intr" => intr = w[1].parse().unwrap(),
            "ctxt" => ctxt = w[1].parse().unwrap(),
            "procs_running" => running = w[1].parse().unwrap(),
            "procs_blocked" => blocked = w[1].parse().unwrap(),
            _ => {}
        }
    }
    (cpu, intr, ctxt, running, blocked)
}

fn key_value(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()?.trim_end_matches(':') == key).then(|| w.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {key}"))
}

const FREE_OPTIONS: &[&[&str]] = &[
    &[],
    &["-b"],
    &["-k"],
    &["-m"],
    &["-g"],
    &["-h"],
    &["-w"],
    &["-b", "-w"],
    &["-hw"],
    &["-m", "-t"],
    &["-l"],
    &["-v"],
    &["-w", "-h", "-l", "-t", "-v"],
];

const VMSTAT_OPTIONS: &[&[&str]] =
    &[&[], &["-w"], &["-a"], &["-S", "m"], &["-S", "b"], &["-a", "-w", "-S", "k"], &["-S", "M"]];

/// free, and vmstat's header and first line, equal the real tools on `proc_dir`.
fn assert_free_and_vmstat_equal_procps(bundle: &Path, proc_dir: &Path) {
    for opts in FREE_OPTIONS {
        let mut args = vec!["free"];
        args.extend_from_slice(opts);
        let ours = show_ok(bundle, &args);
        let theirs = real(
            proc_dir,
            &format!("free {}", opts.iter().filter(|o| **o != "--").copied().collect::<Vec<_>>().join(" ")),
        );
        assert_eq!(ours, theirs, "free {opts:?}");
    }
    for opts in VMSTAT_OPTIONS {
        let mut args = vec!["vmstat"];
        args.extend_from_slice(opts);
        let ours = show_ok(bundle, &args);
        let theirs = real(proc_dir, &format!("vmstat {}", opts.join(" ")));
        // The real vmstat, given no delay, prints its header and the since-boot line.
        let ours: Vec<&str> = ours.lines().take(3).collect();
        assert_eq!(ours.join("\n") + "\n", theirs, "vmstat {opts:?}");
    }
}

#[test]
fn a_collected_bundle_replays_as_procps_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = collect_window(dir.path(), "2");
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    let status = Command::new("tar").arg("--zstd").arg("-xf").arg(&bundle).arg("-C").arg(&tree).status().unwrap();
    assert!(status.success());
    let proc_dir = tree.join("proc");

    assert_free_and_vmstat_equal_procps(&bundle, &proc_dir);

    // uptime: everything after the clock, the user count included: the real tool counts
    // this machine's /run/utmp, which the collector copied or recorded as absent.
    let ours = show_ok(&bundle, &["uptime"]);
    let theirs = real(&proc_dir, "uptime");
    assert_eq!(after_clock(&ours), after_clock(&theirs), "{ours}{theirs}");
    assert!(!ours.contains(" ? users"), "{ours}");
    // The clock is the capture's: the manifest's CLOCK_REALTIME in the box's time zone.
    let manifest: serde_json::Value = serde_json::from_slice(&fs::read(tree.join("manifest.json")).unwrap()).unwrap();
    let secs = manifest["clocks"]["realtime_ns"].as_u64().unwrap() / 1_000_000_000;
    let local = secs as i64 + manifest["host"]["utc_offset_seconds"].as_i64().unwrap();
    let sod = local.rem_euclid(86_400);
    assert_eq!(&ours[..9], format!(" {:02}:{:02}:{:02}", sod / 3600, sod / 60 % 60, sod % 60));
    assert_eq!(show_ok(&bundle, &["uptime", "-p"]), real(&proc_dir, "uptime -p"));
    let since = show_ok(&bundle, &["uptime", "-s"]);
    let up: f64 =
        fs::read_to_string(proc_dir.join("uptime")).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    let boot = ((manifest["clocks"]["realtime_ns"].as_u64().unwrap() as f64 / 1e9 - up) + 0.5) as i64
        + manifest["host"]["utc_offset_seconds"].as_i64().unwrap();
    let date = Command::new("date").arg("-u").arg("-d").arg(format!("@{boot}")).arg("+%F %T").output().unwrap();
    assert_eq!(since, String::from_utf8(date.stdout).unwrap());

    // vmstat: one line per interval of the window, from the samples' raw files.
    let mut samples: Vec<usize> = fs::read_dir(tree.join("samples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    samples.sort_unstable();
    assert!(samples.len() >= 2, "{samples:?}");
    let out = show_ok(&bundle, &["vmstat"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3 + samples.len() - 1, "{out}");
    let read = |n: usize, f: &str| fs::read_to_string(tree.join(format!("samples/{n}/proc/{f}"))).unwrap();
    for (k, pair) in samples.windows(2).enumerate() {
        let (a, b) = (pair[0], pair[1]);
        assert_eq!(b - a, 1, "a sample is missing: {samples:?}");
        let got = numbers(lines[3 + k]);
        assert_eq!(got.len(), 17, "{}", lines[3 + k]);
        let (ca, intr_a, ctxt_a, _, _) = stat_counters(&read(a, "stat"));
        let (cb, intr_b, ctxt_b, running, blocked) = stat_counters(&read(b, "stat"));
        let meminfo = read(b, "meminfo");
        let (vm_a, vm_b) = (read(a, "vmstat"), read(b, "vmstat"));
        // vmstat converts KiB through a C float: exact below 16 GiB, rounded above.
        let kib = |v: u64| (v as f32) as u64;
        let d: Vec<i64> = (0..10).map(|i| cb[i] - ca[i]).collect();
        let total = d[..8].iter().sum::<i64>().max(1);
        let pct = |v: i64| ((100 * v + total / 2) / total) as u64;
        let expected = [
            running,
            blocked,
            kib(key_value(&meminfo, "SwapTotal") - key_value(&meminfo, "SwapFree")),
            kib(key_value(&meminfo, "MemFree")),
            kib(key_value(&meminfo, "Buffers")),
            kib(key_value(&meminfo, "Cached") + key_value(&meminfo, "SReclaimable")),
            (key_value(&vm_b, "pswpin") - key_value(&vm_a, "pswpin")) * 4,
            (key_value(&vm_b, "pswpout") - key_value(&vm_a, "pswpout")) * 4,
            key_value(&vm_b, "pgpgin") - key_value(&vm_a, "pgpgin"),
            key_value(&vm_b, "pgpgout") - key_value(&vm_a, "pgpgout"),
            intr_b - intr_a,
            ctxt_b - ctxt_a,
            pct((d[0] + d[1] - d[8] - d[9]).max(0)),
            pct(d[2] + d[5] + d[6]),
            pct(d[3]),
            pct(d[4]),
            pct(d[7]),
        ];
        assert_eq!(got, expected, "interval {a}->{b}: {}", lines[3 + k]);
    }
    // -y leaves out the since-boot line; -n never repeats the header (nor is there
    // reason to in a short window).
    assert_eq!(show_ok(&bundle, &["vmstat", "-y"]).lines().count(), 2 + samples.len() - 1);
}

/// A hand-made tree: the files the real tools read, with values chosen to reach procps's
/// corners, and a manifest for the clock and page size.
fn crafted_tree(dir: &Path, meminfo: &str, stat: &str) -> PathBuf {
    let p = dir.join("proc");
    fs::create_dir_all(&p).unwrap();
    // libproc2 reads cpuinfo when it sets up; its content does not enter the figures.
    fs::copy("/proc/cpuinfo", p.join("cpuinfo")).unwrap();
    fs::write(p.join("meminfo"), meminfo).unwrap();
    fs::write(p.join("stat"), stat).unwrap();
    fs::write(p.join("vmstat"), "nr_free_pages 5\npgpgin 1234567\npgpgout 7654321\npswpin 4444\npswpout 5555\n")
        .unwrap();
    fs::write(p.join("uptime"), "1000.50 10.00\n").unwrap();
    fs::write(p.join("loadavg"), "1.00 2.50 13.37 1/1 1\n").unwrap();
    p
}

/// A real /proc/meminfo layout (Debian 12, 6.1 kernel) with figures at procps's edges:
/// more than 16 GiB (vmstat's float), committed beyond the commit limit (free -v prints
/// a negative), swap in use, low/high memory lines.
const EDGE_MEMINFO: &str = "MemTotal:       67108863 kB
MemFree:        33554433 kB
MemAvailable:   50331651 kB
Buffers:            1023 kB
Cached:         20000001 kB
SwapCached:         1024 kB
Active:         17000003 kB
Inactive:       25165827 kB
Active(anon):       1512 kB
Inactive(anon):     2964 kB
Active(file):    3736712 kB
Inactive(file):  8956376 kB
Unevictable:        9976 kB
Mlocked:            8272 kB
HighTotal:       1048576 kB
HighFree:         524287 kB
LowTotal:       66060287 kB
LowFree:        33030146 kB
SwapTotal:       8388607 kB
SwapFree:        1048575 kB
Dirty:              8076 kB
Writeback:             0 kB
AnonPages:          5600 kB
Mapped:            10016 kB
Shmem:           1048575 kB
KReclaimable:    1232120 kB
Slab:            1324348 kB
SReclaimable:    4777215 kB
SUnreclaim:        92228 kB
KernelStack:        1296 kB
PageTables:         1644 kB
NFS_Unstable:          0 kB
Bounce:                0 kB
WritebackTmp:          0 kB
CommitLimit:    41943039 kB
Committed_AS:   99999999 kB
VmallocTotal:   34359738367 kB
VmallocUsed:       19952 kB
VmallocChunk:          0 kB
Percpu:             1456 kB
HugePages_Total:       0
HugePages_Free:        0
HugePages_Rsvd:        0
HugePages_Surp:        0
Hugepagesize:       2048 kB
Hugetlb:               0 kB
";

/// Guest time inside user time, steal, and counters whose since-boot rates round.
const EDGE_STAT: &str = "cpu  1000 20 100 8800 50 3 50 7 500 10
cpu0 1000 20 100 8800 50 3 50 7 500 10
intr 99999 1 2 3
ctxt 123456
btime 1795903307
processes 100
procs_running 7
procs_blocked 3
softirq 1 0 0 0 0 0 0 0 0 0 1
";

#[test]
fn edge_figures_of_meminfo_and_stat_equal_procps() {
    let dir = tempfile::tempdir().unwrap();
    let proc_dir = crafted_tree(dir.path(), EDGE_MEMINFO, EDGE_STAT);
    assert_free_and_vmstat_equal_procps(dir.path(), &proc_dir);

    // MemAvailable above MemTotal (a container's view of the host): procps falls back to
    // MemFree for both `available` and `used`.
    let lxc = EDGE_MEMINFO.replace("MemAvailable:   50331651 kB", "MemAvailable:   99999999 kB");
    fs::write(proc_dir.join("meminfo"), lxc).unwrap();
    for opts in [&[][..], &["-b"], &["-w", "-t"]] {
        let mut args = vec!["free"];
        args.extend_from_slice(opts);
        assert_eq!(show_ok(dir.path(), &args), real(&proc_dir, &format!("free {}", opts.join(" "))), "{opts:?}");
    }
    let free = show_ok(dir.path(), &["free"]);
    assert!(free.contains("33554430    33554433"), "used falls back to total - free:\n{free}");
}

/// A glibc `struct utmp` record (x86_64 layout): type, pid, line, id, user.
fn utmp_record(kind: i16, line: &str, user: &str) -> Vec<u8> {
    let mut r = vec![0u8; 384];
    r[..2].copy_from_slice(&kind.to_le_bytes());
    r[4..8].copy_from_slice(&4242i32.to_le_bytes());
    r[8..8 + line.len()].copy_from_slice(line.as_bytes());
    r[44..44 + user.len()].copy_from_slice(user.as_bytes());
    r
}

#[test]
fn uptime_and_user_counts_equal_procps() {
    let dir = tempfile::tempdir().unwrap();
    let proc_dir = crafted_tree(dir.path(), EDGE_MEMINFO, EDGE_STAT);
    // 2026-11-28 22:10:00 UTC, shown in UTC+1 as the box's local time.
    let manifest = |entries: &str| {
        format!(
            r#"{{"format_version":1,"host":{{"utc_offset_seconds":3600,"timezone":"CET","page_size":4096,"clock_ticks":100}},
            "clocks":{{"realtime_ns":1795903800000000000}},"entries":[{entries}]}}"#
        )
    };

    // Uptimes at procps's boundaries: under a minute, exactly one minute and one hour,
    // a day, weeks, years, decades.
    for up in [
        "30.50",
        "60.00",
        "61.00",
        "3600.00",
        "3661.00",
        "86400.00",
        "90061.00",
        "800000.00",
        "63072120.50",
        "400000000.00",
    ] {
        fs::write(proc_dir.join("uptime"), format!("{up} 1.00\n")).unwrap();
        fs::write(dir.path().join("manifest.json"), manifest("")).unwrap();
        assert_eq!(show_ok(dir.path(), &["uptime", "-p"]), real(&proc_dir, "uptime -p"), "uptime -p at {up}");
        let ours = show_ok(dir.path(), &["uptime"]);
        assert!(ours.starts_with(" 23:10:00 up "), "{ours}");
        // The manifest records no attempt at utmp: the count is unknown.
        assert!(ours.contains(",  ? users,  load average: 1.00, 2.50, 13.37"), "{ours}");
        let theirs = real(&proc_dir, "uptime");
        assert_eq!(without_users(after_clock(&ours)), without_users(after_clock(&theirs)), "{ours}{theirs}");
    }

    // The box had no utmp (the collector looked and found none): procps counts 0, and so
    // does the real tool given an empty /run.
    fs::write(proc_dir.join("uptime"), "90061.00 1.00\n").unwrap();
    fs::write(dir.path().join("manifest.json"), manifest(r#"{"path":"run/utmp","status":"missing"}"#)).unwrap();
    let empty_run = "mount -t tmpfs tmpfs /run;";
    let ours = show_ok(dir.path(), &["uptime"]);
    assert_eq!(after_clock(&ours), after_clock(&real_with(&proc_dir, empty_run, "uptime")));
    assert!(ours.contains("  0 user,"), "{ours}");

    // The bundle holds utmp: the same records in the real /run/utmp give the same count.
    let mut utmp = Vec::new();
    for (kind, line, user) in [
        (2, "~", "reboot"),
        (6, "tty1", "LOGIN"),
        (7, "pts/0", "alice"),
        (7, "pts/1", ""),
        (7, "pts/2", "bob"),
        (8, "pts/3", "carol"),
    ] {
        utmp.extend(utmp_record(kind, line, user));
    }
    fs::create_dir_all(dir.path().join("run")).unwrap();
    fs::write(dir.path().join("run/utmp"), &utmp).unwrap();
    let with_utmp = format!("mount -t tmpfs tmpfs /run; cp '{}' /run/utmp;", dir.path().join("run/utmp").display());
    let ours = show_ok(dir.path(), &["uptime"]);
    assert_eq!(after_clock(&ours), after_clock(&real_with(&proc_dir, &with_utmp, "uptime")));
    assert!(ours.contains("  2 users,"), "{ours}");
}

#[test]
fn missing_or_unreadable_entries_are_named() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("proc")).unwrap();
    fs::write(dir.path().join("proc/loadavg"), "0.00 0.00 0.00 1/1 1\n").unwrap();
    fs::write(dir.path().join("proc/stat"), EDGE_STAT).unwrap();
    fs::write(dir.path().join("proc/vmstat"), "pgpgin 1\npgpgout 2\n").unwrap();
    for view in ["free", "vmstat"] {
        let (code, out, err) = show(dir.path(), &[view]);
        assert_eq!(code, Some(2), "{view}: {err}");
        assert!(err.contains("no proc/meminfo") && out.is_empty(), "{view}: {err}");
    }
    let (code, _, err) = show(dir.path(), &["uptime"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no proc/uptime"), "{err}");

    fs::write(dir.path().join("proc/meminfo"), "MemTotal: lots\n").unwrap();
    for view in ["free", "vmstat"] {
        let (code, _, err) = show(dir.path(), &[view]);
        assert_eq!(code, Some(2), "{view}: {err}");
        assert!(err.contains("proc/meminfo:") && !err.contains("panicked"), "{view}: {err}");
    }
    fs::write(dir.path().join("proc/meminfo"), EDGE_MEMINFO).unwrap();
    // A window sample without its meminfo: named, nothing printed.
    for (n, stat) in [(0, EDGE_STAT), (1, EDGE_STAT)] {
        let s = dir.path().join(format!("samples/{n}/proc"));
        fs::create_dir_all(&s).unwrap();
        fs::write(s.join("stat"), stat).unwrap();
        fs::write(s.join("vmstat"), "pgpgin 1\n").unwrap();
    }
    fs::write(dir.path().join("samples/0/proc/meminfo"), EDGE_MEMINFO).unwrap();
    let (code, out, err) = show(dir.path(), &["vmstat"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("samples/1/proc/meminfo") && out.is_empty(), "{err}");

    let (code, _, err) = show(dir.path(), &["free", "-m", "-g"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("multiple unit options"), "{err}");
    let (code, _, err) = show(dir.path(), &["vmstat", "-S", "x"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("-S requires k, K, m or M"), "{err}");
}
