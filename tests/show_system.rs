//! `snap show`'s system views (`df`, `mount`, `sysctl`, `dmesg`) held to the real tools
//! (coreutils 9.1, util-linux 2.38.1, procps-ng 4.0.2 on Debian 12) run on this machine
//! right before and right after `snap collect`. Only what the test itself made, or what
//! cannot move in between, is compared exactly:
//!
//! - df: the header lines and the line of a tmpfs the test mounts (with a space in its
//!   path and a file of known size in it), for every option set; of `/`, the source and
//!   size columns only (its used and available figures move with the machine).
//! - mount: the lines of that tmpfs, /proc, /sys and /.
//! - sysctl: the lines of stable keys (`sysctl NAME`), and the name column of
//!   `sysctl -a` in full, in order: the collector skips only what `sysctl -a` skips too
//!   (the deprecated neigh timers, unreadable files such as stable_secret, which give
//!   EIO), so the two list the same keys, with the same number of lines.
//! - dmesg: lines of markers the test writes into the kernel log at several levels.
//!
//! A round whose before and after runs of the real tool disagree (another process
//! mounted something, a key appeared) is retried; three such rounds fail the test. Needs
//! root (mount, /dev/kmsg), as CI runs; each oracle test says SKIPPED otherwise.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{show, show_ok, snap};
use snap_bundle::kmsg::{self, BootClock, CtimeRule};
use snap_bundle::Bundle;

/// A zone east of UTC with a half-hour offset, as a POSIX TZ rule (no zone database
/// needed): both snap and dmesg -T must apply it.
const TZ: &str = "IST-5:30";

fn is_root() -> bool {
    // SAFETY: geteuid has no failure mode.
    unsafe { libc::geteuid() == 0 }
}

/// The stdout of a real tool, in the C locale and the test's zone. df exits 1 when some
/// mount cannot be read; its listing is still the oracle.
fn real(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .env("LC_ALL", "C")
        .env("TZ", TZ)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `snap collect` without window or capture, in the test's zone.
fn collect(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let out = snap()
        .args(["collect", "--window", "0", "--no-capture", "--quiet", "-o"])
        .arg(dir)
        .env("TZ", TZ)
        .output()
        .unwrap();
    assert!(out.status.success(), "collect failed: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().lines().last().unwrap())
}

/// Runs `oracle` before and after `snap collect` until both agree (at most three
/// rounds): the bundle and what the real tools said.
fn collect_between<T: PartialEq + std::fmt::Debug>(dir: &Path, oracle: impl Fn() -> T) -> (PathBuf, T) {
    let mut last = None;
    for round in 0..3 {
        let before = oracle();
        let bundle = collect(&dir.join(format!("round{round}")));
        let after = oracle();
        if before == after {
            return (bundle, after);
        }
        last = Some((before, after));
    }
    panic!("the real tools' output kept changing around snap collect: {last:?}");
}

/// A mount made by the test, unmounted on drop (also when an assertion fails).
struct Mounted(PathBuf);

impl Mounted {
    fn tmpfs(dir: &Path, source: &str, options: &str) -> Mounted {
        fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount").args(["-t", "tmpfs", "-o", options, source]).arg(dir).status().unwrap();
        assert!(st.success(), "mount tmpfs on {}", dir.display());
        Mounted(dir.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.0).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

const DF_OPTIONS: &[&[&str]] = &[
    &[],
    &["-k"],
    &["-h"],
    &["-H"],
    &["-m"],
    &["-i"],
    &["-T"],
    &["-hT"],
    &["-i", "-h"],
    &["-iT"],
    &["-a"],
    &["-a", "-h", "-T"],
    &["-t", "tmpfs"],
];

/// What of one df output is compared: the header, the line of `target`, and the source
/// and size columns of `/`.
fn df_part(text: &str, target: &str) -> (String, String, Vec<String>) {
    let header = text.lines().next().unwrap_or_default().to_string();
    let mine: Vec<&str> = text.lines().filter(|l| l.ends_with(&format!(" {target}"))).collect();
    assert_eq!(mine.len(), 1, "one line for {target} in\n{text}");
    let root: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.last() == Some(&"/"))
        .map(|f| vec![f[0].to_string(), f[f.len() - 5].to_string()])
        .unwrap_or_default();
    (header, mine[0].to_string(), root)
}

fn mount_part(text: &str, targets: &[&str]) -> Vec<String> {
    text.lines().filter(|l| targets.iter().any(|t| l.contains(&format!(" on {t} type ")))).map(String::from).collect()
}

#[test]
fn df_and_mount_lines_equal_coreutils_and_util_linux() {
    if !is_root() {
        println!("SKIPPED df_and_mount_lines_equal_coreutils_and_util_linux: needs root (mount)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("snap df");
    let target = dir.to_str().unwrap().to_string();
    let _tmpfs = Mounted::tmpfs(&dir, "snap-show-df", "size=8M,nr_inodes=1000");
    fs::write(dir.join("three-mib"), vec![0x5a; 3 << 20]).unwrap();
    fs::write(dir.join("small"), b"x").unwrap();
    let targets = [target.as_str(), "/proc", "/sys", "/"];

    let oracle = || {
        let df: Vec<_> = DF_OPTIONS.iter().map(|o| df_part(&real("df", o), &target)).collect();
        (df, mount_part(&real("mount", &[]), &targets))
    };
    let (bundle, (df, mount)) = collect_between(tmp.path(), oracle);

    for (opts, want) in DF_OPTIONS.iter().zip(&df) {
        let mut args = vec!["df"];
        args.extend_from_slice(opts);
        let got = df_part(&show_ok(&bundle, &args), &target);
        assert_eq!(&got, want, "df {opts:?}");
    }
    // The figures of the test's own tmpfs, spelled out once.
    let h = df_part(&show_ok(&bundle, &["df", "-h"]), &target).1;
    assert!(h.starts_with("snap-show-df ") && h.contains(" 8.0M  3.1M  5.0M  38% "), "{h}");
    let i = df_part(&show_ok(&bundle, &["df", "-i"]), &target).1;
    assert!(i.contains(" 1000 ") && i.contains(" 3 ") && i.contains(" 997 ") && i.contains(" 1% "), "{i}");

    assert_eq!(mount.len(), 4, "{mount:?}");
    assert_eq!(mount_part(&show_ok(&bundle, &["mount"]), &targets), mount);
    let mine = format!("snap-show-df on {target} type tmpfs (rw,relatime,size=8192k,nr_inodes=1000)");
    assert!(mount.contains(&mine), "{mount:?}");
    let only: Vec<String> = mount_part(&real("mount", &["-t", "proc,sysfs"]), &targets);
    assert_eq!(mount_part(&show_ok(&bundle, &["mount", "-t", "proc,sysfs"]), &targets), only);
}

/// Keys whose value does not change while the test runs, as `sysctl` takes them.
const STABLE_KEYS: &[&str] = &[
    "kernel.pid_max",
    "net.ipv4.tcp_fin_timeout",
    "vm.swappiness",
    "fs.file-max",
    "net.ipv4.ip_local_port_range",
    "kernel.printk",
    "kernel.ostype",
    // Given with slashes, printed with dots.
    "net/ipv4/tcp_syn_retries",
    // A directory: every key below it.
    "net.ipv4.conf.lo",
];

fn names(text: &str) -> Vec<String> {
    text.lines().map(|l| l.split(" = ").next().unwrap().to_string()).collect()
}

#[test]
fn sysctl_lines_equal_procps() {
    if !is_root() {
        println!("SKIPPED sysctl_lines_equal_procps: needs root (some keys are root-only)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // kernel.core_modes is a multi-line file on recent kernels: one line per line.
    let multi = Path::new("/proc/sys/kernel/core_modes").exists();
    let oracle = || {
        let mut keys: Vec<String> = STABLE_KEYS.iter().map(|k| real("sysctl", &[k])).collect();
        if multi {
            keys.push(real("sysctl", &["kernel.core_modes"]));
        }
        keys.push(real("sysctl", &["-n", "kernel.pid_max"]));
        (keys, names(&real("sysctl", &["-a"])), real("sysctl", &["-aN"]))
    };
    let (bundle, (keys, all_names, all_n)) = collect_between(tmp.path(), oracle);

    for (k, want) in STABLE_KEYS.iter().zip(&keys) {
        assert!(!want.is_empty(), "sysctl {k} printed nothing");
        assert_eq!(&show_ok(&bundle, &["sysctl", k]), want, "sysctl {k}");
    }
    if multi {
        let want = &keys[STABLE_KEYS.len()];
        assert!(want.lines().count() > 1, "{want}");
        assert_eq!(&show_ok(&bundle, &["sysctl", "kernel.core_modes"]), want);
    }
    assert_eq!(&show_ok(&bundle, &["sysctl", "-n", "kernel.pid_max"]), keys.last().unwrap());
    assert!(keys[0].starts_with("kernel.pid_max = "), "{}", keys[0]);
    assert!(keys[4].contains('\t'), "ip_local_port_range's values are tab-separated: {:?}", keys[4]);

    // sysctl -a: the same keys in the same order, as many lines.
    let ours = show_ok(&bundle, &["sysctl", "-a"]);
    assert!(all_names.len() > 100, "{}", all_names.len());
    assert_eq!(names(&ours), all_names);
    assert!(ours.lines().all(|l| l.contains(" = ")));
    // -N lists even the keys no one could read (stable_secret), as sysctl does.
    assert_eq!(show_ok(&bundle, &["sysctl", "-a", "-N"]), all_n);
}

/// Writes `<level>snap-show-<tag>-<name> ...` lines into the kernel log; their names.
fn write_markers(tag: &str) -> Vec<(u8, String)> {
    [(3, "err"), (4, "warn"), (6, "info"), (7, "debug")]
        .into_iter()
        .map(|(level, name)| {
            let text = format!("snap-show-{tag}-{name} marker");
            fs::write("/dev/kmsg", format!("<{level}>{text}\n")).expect("root can write /dev/kmsg");
            (level, text)
        })
        .collect()
}

fn lines_with(text: &str, tag: &str) -> Vec<String> {
    text.lines().filter(|l| l.contains(tag)).map(String::from).collect()
}

/// `[Sat Nov 28 22:14:39 2026] message` as (time, message).
fn ctime_parts(line: &str) -> (String, String) {
    let end = line.find("] ").unwrap_or_else(|| panic!("no time in {line:?}"));
    (line[1..end].to_string(), line[end + 2..].to_string())
}

#[test]
fn dmesg_lines_of_markers_equal_util_linux() {
    if !is_root() {
        println!("SKIPPED dmesg_lines_of_markers_equal_util_linux: needs root (writes /dev/kmsg)");
        return;
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let tag = format!("{}-{nanos}", std::process::id());
    let markers = write_markers(&tag);
    let tmp = tempfile::tempdir().unwrap();
    let oracle = || {
        [&[][..], &["-T"], &["--level", "err"], &["-l", "warn,err"], &["-t"], &["-T", "-l", "info"]]
            .map(|a| lines_with(&real("dmesg", a), &tag))
    };
    let (bundle, [plain, ctime, err, warn_err, notime, ctime_info]) = collect_between(tmp.path(), oracle);
    assert_eq!(plain.len(), markers.len(), "{plain:?}");

    assert_eq!(lines_with(&show_ok(&bundle, &["dmesg"]), &tag), plain);
    assert_eq!(lines_with(&show_ok(&bundle, &["dmesg", "--level", "err"]), &tag), err);
    assert_eq!(lines_with(&show_ok(&bundle, &["dmesg", "-l", "warn,err"]), &tag), warn_err);
    assert_eq!(lines_with(&show_ok(&bundle, &["dmesg", "-t"]), &tag), notime);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].ends_with(&markers[0].1), "{err:?}");
    let ours_err = show_ok(&bundle, &["dmesg", "--level=err"]);
    assert!(ours_err.contains(&markers[0].1) && !ours_err.contains(&markers[2].1), "err shows err, not info");

    // dmesg -T: exact, unless util-linux's whole-second arithmetic on clocks read a
    // moment apart from snap's can tip over a second (see tests/oracle_dmesg.rs).
    let b = Bundle::open(&bundle).unwrap();
    let m = b.manifest().expect("manifest").clone();
    assert_eq!(m.host.utc_offset_seconds, 5 * 3600 + 1800, "TZ={TZ} reached snap");
    let c = m.clocks;
    let boot_frac_ns = c.realtime_ns.wrapping_sub(c.boottime_ns) % 1_000_000_000;
    let exact =
        c.boottime_ns.saturating_sub(c.monotonic_ns) < 1_000_000 && (5_000_000..995_000_000).contains(&boot_frac_ns);
    for (args, want) in [(&["dmesg", "-T"][..], &ctime), (&["dmesg", "-T", "-l", "info"], &ctime_info)] {
        let got = lines_with(&show_ok(&bundle, args), &tag);
        if exact {
            assert_eq!(&got, want, "{args:?}");
        } else {
            // Within a second: the real line is one of snap's times shifted by one.
            let clock = BootClock::new(&c, CtimeRule::WholeSeconds);
            let log = b.read(snap_bundle::names::KMSG).unwrap().unwrap();
            let near: Vec<String> = kmsg::parse(&log)
                .iter()
                .filter(|r| r.message.contains(&tag))
                .flat_map(|r| {
                    (-1..=1).map(move |d| {
                        kmsg::ctime_line(clock.wall_secs(r.ts_usec) + d, m.host.utc_offset_seconds, &r.message)
                    })
                })
                .map(|l| l.trim_end().to_string())
                .collect();
            assert_eq!(got.len(), want.len(), "{args:?}");
            assert!(want.iter().all(|l| near.contains(l)), "{args:?}: {want:?} vs {got:?}");
        }
        assert!(got.iter().all(|l| !ctime_parts(l).0.is_empty()));
    }
}

/// A directory bundle holding `files` (path, contents).
fn hand_made(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    dir
}

fn assert_fails(bundle: &Path, args: &[&str], names: &[&str]) {
    let (code, out, err) = show(bundle, args);
    assert_eq!(code, Some(2), "{args:?}: {out}{err}");
    for n in names {
        assert!(err.contains(n), "{args:?}: {err:?} does not name {n}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn missing_or_bad_entries_and_bad_options_are_named() {
    let empty = hand_made(&[("proc/loadavg", "0.00 0.00 0.00 1/1 1\n")]);
    let b = empty.path();
    assert_fails(b, &["df"], &["scan/filesystems.jsonl"]);
    assert_fails(b, &["mount"], &["proc/self/mountinfo"]);
    assert_fails(b, &["sysctl", "-a"], &["proc/sys/"]);
    assert_fails(
        b,
        &["sysctl", "kernel.pid_max", "vm.swappiness"],
        &["proc/sys/kernel/pid_max", "proc/sys/vm/swappiness"],
    );
    assert_fails(b, &["dmesg"], &["kernel/kmsg.txt"]);

    let bad = hand_made(&[
        ("scan/filesystems.jsonl", "{\"target\": \"/\"\n"),
        ("proc/self/mountinfo", "garbage\n"),
        ("kernel/kmsg.txt", "6,1,1000,-;hello\n"),
        ("proc/sys/kernel/pid_max", "4194304\n"),
    ]);
    let b = bad.path();
    assert_fails(b, &["df"], &["scan/filesystems.jsonl", "line 1"]);
    assert_fails(b, &["mount"], &["proc/self/mountinfo"]);
    // No manifest, so no clocks: dmesg -T cannot tell the time, plain dmesg can.
    assert_fails(b, &["dmesg", "-T"], &["manifest.json"]);
    assert_eq!(show_ok(b, &["dmesg"]), "[    0.001000] hello\n");
    // A key that exists prints before the one that does not is named.
    let (code, out, err) = show(b, &["sysctl", "kernel.pid_max", "kernel.nosuch"]);
    assert_eq!((code, out.as_str()), (Some(2), "kernel.pid_max = 4194304\n"), "{err}");
    assert!(err.contains("proc/sys/kernel/nosuch"), "{err}");
    assert_eq!(show_ok(b, &["sysctl", "-e", "kernel.nosuch"]), "");

    // Unknown options are usage errors, also exit 2.
    assert_fails(b, &["df", "-Z"], &["unknown option -Z"]);
    assert_fails(b, &["df", "--bogus"], &["unknown option --bogus"]);
    assert_fails(b, &["dmesg", "--level", "loud"], &["unknown level 'loud'"]);
    assert_fails(b, &["sysctl"], &["-a"]);
    assert_fails(b, &["sysctl", "vm.swappiness=10"], &["written"]);
    assert_fails(b, &["mount", "-l"], &["unknown option -l"]);
}

#[test]
fn df_rows_follow_coreutils_choice_and_order_on_a_hand_made_scan() {
    // The scan of a box where /dev/shm is mounted twice and a bind mount of / comes
    // before / itself: df lists one row per device, the winner in the loser's place.
    let fs = |source: &str, target: &str, fstype: &str, device: &str, listed: bool, size: u64| {
        format!(
            "{{\"source\":\"{source}\",\"target\":\"{target}\",\"fstype\":\"{fstype}\",\"device\":\"{device}\",\
             \"status\":\"ok\",\"df_listed\":{listed},\"block_size\":4096,\"size_bytes\":{size},\"used_bytes\":4096,\
             \"avail_bytes\":{},\"use_percent\":1,\"inodes\":10,\"inodes_used\":1,\"inodes_free\":9,\
             \"inode_use_percent\":10}}\n",
            size - 4096
        )
    };
    let scan = [
        fs("proc", "/proc", "proc", "0:21", false, 4096),
        fs("/dev/vda", "/srv/bind", "ext4", "254:0", false, 1 << 30),
        fs("tmpfs", "/dev/shm", "tmpfs", "0:23", true, 1 << 20),
        fs("/dev/vda", "/", "ext4", "254:0", true, 1 << 30),
        fs("tmpfs", "/dev/shm", "tmpfs", "0:27", false, 1 << 20),
    ]
    .concat();
    let b = hand_made(&[("scan/filesystems.jsonl", &scan)]);
    let out = show_ok(b.path(), &["df"]);
    assert_eq!(
        out,
        "Filesystem     1K-blocks  Used Available Use% Mounted on\n\
         /dev/vda         1048576     4   1048572   1% /\n\
         tmpfs               1024     4      1020   1% /dev/shm\n"
    );
    let all = show_ok(b.path(), &["df", "-a"]);
    assert_eq!(all.lines().count(), 6, "{all}");
    assert!(all.lines().nth(1).unwrap().starts_with("proc "), "{all}");
}
