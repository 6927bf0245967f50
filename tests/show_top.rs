//! `snap show B top` held to procps-ng 4.0.2's `top -b -n1` (Debian 12). top refuses a
//! /proc that is not a procfs, so the real tool runs on the live machine right after
//! `snap collect`; what it prints then can be compared exactly only where nothing moves:
//!
//! - exactly: the process table's header; the line of a `sleep` the test started
//!   (PID USER PR NI VIRT RES SHR S %MEM COMMAND: its memory does not change while it
//!   sleeps); `MiB Mem`'s total; with `-1 -w 512`, how many CPUs are shown;
//! - not compared with the live tool: %CPU and TIME+ (top measures its own fraction of a
//!   second, snap the window), the Tasks counts, free/used memory and load (they move
//!   between the two runs). Instead, `%Cpu(s)` is checked against figures computed here
//!   from the first and last samples' proc/stat, and the process order against the
//!   per-process `utime + stime` deltas computed here from the samples' <pid>/stat.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{collect_window, show, show_ok};

fn real_top(args: &[&str]) -> String {
    let out = Command::new("top").args(args).env("LC_ALL", "C").env_remove("COLUMNS").output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(program: &str, args: &[&str]) -> Kill {
    Kill(Command::new(program).args(args).stdin(Stdio::null()).stdout(Stdio::null()).spawn().unwrap())
}

/// The `cpu` line counters of a proc/stat (user nice system idle iowait irq softirq steal).
fn cpu(stat: &str) -> [u64; 8] {
    let w: Vec<u64> =
        stat.lines().next().unwrap().split_whitespace().skip(1).take(8).map(|v| v.parse().unwrap()).collect();
    w.try_into().unwrap()
}

/// utime + stime of every samples/<n>/proc/<pid>/stat, with its start time.
fn ticks(dir: &Path) -> BTreeMap<u32, (u64, u64)> {
    let mut m = BTreeMap::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let Ok(pid) = e.file_name().to_str().unwrap().parse::<u32>() else { continue };
        let Ok(t) = fs::read_to_string(e.path().join("stat")) else { continue };
        let f: Vec<&str> = t[t.rfind(')').unwrap() + 1..].split_whitespace().collect();
        let n = |i: usize| f[i].parse::<u64>().unwrap();
        m.insert(pid, (n(19), n(11) + n(12)));
    }
    m
}

#[test]
fn top_replays_what_top_prints_and_the_windows_figures() {
    let sleeper = spawn("sleep", &["300"]);
    let _busy = spawn("sh", &["-c", "while :; do :; done"]);
    // Its line is compared whole with top's: wait until it sleeps, its memory settled.
    let stat = format!("/proc/{}/stat", sleeper.0.id());
    let started = std::time::Instant::now();
    while !fs::read_to_string(&stat).unwrap().rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('S')) {
        assert!(started.elapsed().as_secs() < 10, "sleep never went to sleep");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = collect_window(dir.path(), "2");
    let theirs = real_top(&["-b", "-n1", "-w", "512"]);
    let theirs_cpus = real_top(&["-b", "-n1", "-1", "-w", "512"]);
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    assert!(Command::new("tar").arg("--zstd").arg("-xf").arg(&bundle).arg("-C").arg(&tree).status().unwrap().success());

    let ours = show_ok(&bundle, &["top", "-w", "512"]);
    let (o, t): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
    assert!(o[0].starts_with("top - ") && o[0].contains(" up ") && o[0].contains("load average: "), "{ours}");
    assert!(o[1].starts_with("Tasks:") && o[2].starts_with("%Cpu(s):"), "{ours}");
    // Layout: the same lines in the same places, the table header equal.
    assert_eq!(o[5], "");
    assert_eq!(o[6], t[6], "header");
    let mem_total = |l: &str| l.split(',').next().unwrap().to_string();
    assert_eq!(mem_total(o[3]), mem_total(t[3]), "{}\n{}", o[3], t[3]);
    assert_eq!(&o[4][..10], &t[4][..10]);
    // The sleeping process's line, but for %CPU (column 8) and TIME+ (10).
    let pid = sleeper.0.id().to_string();
    let line = |lines: &[&str]| -> Vec<String> {
        let l = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(pid.as_str()))
            .unwrap_or_else(|| panic!("no {pid}"));
        let f: Vec<String> = l.split_whitespace().map(String::from).collect();
        assert_eq!(f.len(), 12, "{l}");
        f.into_iter().enumerate().filter(|(i, _)| *i != 8 && *i != 10).map(|(_, v)| v).collect()
    };
    assert_eq!(line(&o), line(&t));
    // Default 80 columns, as top without a terminal: the same cut.
    let narrow = show_ok(&bundle, &["top"]);
    assert!(narrow.lines().all(|l| l.len() <= 80), "{narrow}");
    assert_eq!(narrow.lines().nth(6), real_top(&["-b", "-n1"]).lines().nth(6));

    // -1: as many CPUs as the real tool shows, two abreast.
    let count = |s: &str| s.lines().take(6).map(|l| l.matches("%Cpu").count()).sum::<usize>();
    let ours_cpus = show_ok(&bundle, &["top", "-1", "-w", "512"]);
    assert_eq!(count(&ours_cpus), count(&theirs_cpus), "{ours_cpus}{theirs_cpus}");
    assert_eq!(ours_cpus.lines().nth(2 + count(&ours_cpus).div_ceil(2) + 1), Some(""), "{ours_cpus}");

    // %Cpu(s) from the first and last samples' proc/stat.
    let mut samples: Vec<usize> = fs::read_dir(tree.join("samples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    samples.sort_unstable();
    let (a, b) = (samples[0], *samples.last().unwrap());
    let stat = |n: usize| fs::read_to_string(tree.join(format!("samples/{n}/proc/stat"))).unwrap();
    let (ca, cb) = (cpu(&stat(a)), cpu(&stat(b)));
    let d: Vec<u64> = (0..8).map(|i| cb[i] - ca[i]).collect();
    let total: u64 = d.iter().sum();
    let pct = |v: u64| format!("{:5.1}", v as f64 * 100.0 / total as f64);
    let expected = format!(
        "%Cpu(s):{} us,{} sy,{} ni,{} id,{} wa,{} hi,{} si,{} st ",
        pct(d[0]),
        pct(d[2]),
        pct(d[1]),
        pct(d[3]),
        pct(d[4]),
        pct(d[5]),
        pct(d[6]),
        pct(d[7])
    );
    assert_eq!(o[2], expected);

    // Processes by CPU over the window: the deltas never increase down the list, and the
    // busy loop is above the sleeper.
    let (ta, tb) = (ticks(&tree.join(format!("samples/{a}/proc"))), ticks(&tree.join(format!("samples/{b}/proc"))));
    let delta = |pid: u32| match (ta.get(&pid), tb.get(&pid)) {
        (Some(x), Some(y)) if x.0 == y.0 => y.1 - x.1,
        _ => 0,
    };
    let pids: Vec<u32> = o[7..].iter().map(|l| l.split_whitespace().next().unwrap().parse().unwrap()).collect();
    let deltas: Vec<u64> = pids.iter().map(|p| delta(*p)).collect();
    assert!(deltas.windows(2).all(|w| w[0] >= w[1]), "{deltas:?}\n{ours}");
    assert!(deltas[0] > 0, "{ours}");
    let pos = |p: u32| pids.iter().position(|x| *x == p).unwrap();
    assert!(pos(_busy.0.id()) < pos(sleeper.0.id()), "{ours}");
}

#[test]
fn missing_entries_and_bad_options_are_named() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("proc")).unwrap();
    fs::write(dir.path().join("proc/uptime"), "100.00 50.00\n").unwrap();
    let (code, out, err) = show(dir.path(), &["top"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("proc/loadavg") && out.is_empty(), "{err}");
    fs::write(dir.path().join("proc/loadavg"), "0.00 0.00 0.00 1/1 1\n").unwrap();
    fs::write(dir.path().join("proc/stat"), "cpu  1 0 0 1 0 0 0 0 0 0\nbtime 1000\n").unwrap();
    fs::write(dir.path().join("proc/meminfo"), "MemTotal: lots\n").unwrap();
    let (code, _, err) = show(dir.path(), &["top"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("proc/meminfo") && !err.contains("panicked"), "{err}");
    // Without a sampling window there is no %CPU to show: said, not guessed.
    fs::copy("/proc/meminfo", dir.path().join("proc/meminfo")).unwrap();
    let (code, out, err) = show(dir.path(), &["top"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(err.contains("samples"), "{err}");
    let (code, _, err) = show(dir.path(), &["top", "-x"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown option -x"), "{err}");
}
