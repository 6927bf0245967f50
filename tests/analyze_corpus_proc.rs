//! `snap analyze` on third-party /proc and /sys data from ../shared/corpus/proc (see its
//! PROVENANCE.md), read in place: old and new kernels (2.6-era /proc/stat, RHEL 7,
//! Ubuntu 20.04 sosreports, Ubuntu 20.10, the node_exporter and prometheus/procfs
//! fixture trees). Each case is a temporary directory bundle holding corpus files at the
//! entry names they have on a host (`jc-linux-proc/pid_stat` -> `proc/<pid>/stat`, ...).
//!
//! What is checked:
//! - every case is analyzed (exit 0, JSON) and no rule fails, except on the corpus's
//!   deliberately broken files, each named with its reason;
//! - every rule of `snap rules` is in every report; the rules whose inputs the case lacks
//!   (samples, scans, kernel log) say `not_evaluated` with the missing entries;
//! - the /proc rules fire exactly where the data meets their documented thresholds
//!   (`snap rules`), computed here from the raw files by this test's own parsing, with
//!   their figures;
//! - node_exporter's own expected output for its fixture tree (e2e-output.txt) agrees with
//!   snap's parsers and findings where both report the same figure;
//! - old formats: meminfo without MemAvailable, 2.6-era stat lines, hacked comm fields.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/proc");
    if !dir.is_dir() {
        println!("the third-party corpus is absent: {} (CI has it; see DESIGN.md)", dir.display());
    }
    assert!(dir.is_dir(), "the corpus folder {} is required by this test", dir.display());
    dir
}

/// A rule allowed to fail on a case, because the corpus file it reads is broken on purpose.
#[derive(Clone)]
struct Broken {
    rule: &'static str,
    file: &'static str,
    reason: &'static str,
}

/// One bundle: corpus files at entry names, plus the few entries this test writes itself
/// (each stated where it is added).
#[derive(Clone, Default)]
struct Case {
    name: String,
    /// Entry name -> corpus file.
    files: BTreeMap<String, PathBuf>,
    /// Entry name -> content written by the test.
    written: BTreeMap<String, String>,
    broken: Vec<Broken>,
}

impl Case {
    fn new(name: &str) -> Case {
        Case { name: name.to_string(), ..Default::default() }
    }

    fn named(mut self, name: &str) -> Case {
        self.name = name.to_string();
        self
    }

    /// The corpus file `rel` at `entry`.
    fn file(mut self, entry: &str, rel: &str) -> Case {
        let src = corpus().join(rel);
        assert!(src.is_file(), "{} is not in the corpus", src.display());
        self.written.remove(entry);
        self.files.insert(entry.to_string(), src);
        self
    }

    /// Every regular file below the corpus folder `rel`, at `prefix/<path below rel>`.
    fn tree(self, prefix: &str, rel: &str) -> Case {
        self.tree_with(rel, |p| format!("{prefix}/{p}"))
    }

    fn tree_with(mut self, rel: &str, entry: impl Fn(&str) -> String) -> Case {
        let root = corpus().join(rel);
        assert!(root.is_dir(), "{} is not in the corpus", root.display());
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                let meta = std::fs::symlink_metadata(&p).unwrap();
                if meta.is_dir() {
                    stack.push(p);
                } else if meta.is_file() {
                    let below = p.strip_prefix(&root).unwrap().to_str().unwrap().to_string();
                    self.files.insert(entry(&below), p);
                }
            }
        }
        self
    }

    fn write(mut self, entry: &str, content: &str) -> Case {
        self.files.remove(entry);
        self.written.insert(entry.to_string(), content.to_string());
        self
    }

    fn broken(mut self, rule: &'static str, file: &'static str, reason: &'static str) -> Case {
        self.broken.push(Broken { rule, file, reason });
        self
    }

    /// An entry's content, as the bundle holds it.
    fn text(&self, entry: &str) -> Option<String> {
        if let Some(t) = self.written.get(entry) {
            return Some(t.clone());
        }
        let bytes = std::fs::read(self.files.get(entry)?).unwrap();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn entries(&self) -> impl Iterator<Item = &String> {
        self.files.keys().chain(self.written.keys())
    }

    /// Builds the bundle in a temporary directory and runs `snap analyze --format json`.
    fn analyze(&self) -> Result<Value, String> {
        let dir = scratch();
        let mut made = BTreeSet::new();
        let mut dest = |entry: &str| {
            let d = dir.path().join(entry);
            let parent = d.parent().unwrap().to_path_buf();
            if !made.contains(&parent) {
                std::fs::create_dir_all(&parent).unwrap();
                made.insert(parent);
            }
            d
        };
        for (entry, src) in &self.files {
            std::fs::copy(src, dest(entry)).unwrap();
        }
        for (entry, text) in &self.written {
            std::fs::write(dest(entry), text).unwrap();
        }
        let out = Command::new(env!("CARGO_BIN_EXE_snap"))
            .args(["analyze", "--format", "json"])
            .arg(dir.path())
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(format!("exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr)));
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }
}

/// A temporary directory for a bundle: in memory when the host has a tmpfs at /dev/shm,
/// since the fixture trees are thousands of small files (seconds to write on a disk).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

/// The pid a per-process file names: a stat line's first field.
fn pid_of_stat(rel: &str) -> String {
    let text = std::fs::read_to_string(corpus().join(rel)).unwrap();
    let pid = text.split_whitespace().next().unwrap().to_string();
    assert!(pid.parse::<u32>().is_ok(), "{rel} does not start with a pid");
    pid
}

/// jc's flat files (one Ubuntu 20.10 host, kernel 5.8, per its `version`) at their
/// host paths. Alternates of the same file (`cpuinfo2`, `stat2`, `pid_stat_hack`, ...)
/// go to other cases, see [`cases`].
fn jc() -> Case {
    let pid = pid_of_stat("jc-linux-proc/pid_stat");
    let status = std::fs::read_to_string(corpus().join("jc-linux-proc/pid_status")).unwrap();
    let status_pid = status.lines().find_map(|l| l.strip_prefix("Pid:")).unwrap().trim();
    assert_eq!(status_pid, pid, "jc's pid_stat and pid_status are of one process");
    let mut case = Case::new("jc-linux-proc");
    for name in JC_MAIN {
        let entry = if let Some(rest) = name.strip_prefix("net_") {
            format!("proc/net/{rest}")
        } else if let Some(rest) = name.strip_prefix("pid_") {
            format!("proc/{pid}/{rest}")
        } else if let Some(rest) = name.strip_prefix("scsi_") {
            format!("proc/scsi/{rest}")
        } else if *name == "driver_rtc" {
            "proc/driver/rtc".to_string()
        } else {
            format!("proc/{name}")
        };
        case = case.file(&entry, &format!("jc-linux-proc/{name}"));
    }
    case
}

/// jc's files that [`jc`] puts at their host path.
const JC_MAIN: &[&str] = &[
    "buddyinfo",
    "consoles",
    "cpuinfo",
    "crypto",
    "devices",
    "diskstats",
    "driver_rtc",
    "filesystems",
    "interrupts",
    "iomem",
    "ioports",
    "loadavg",
    "locks",
    "meminfo",
    "modules",
    "mtrr",
    "net_arp",
    "net_dev",
    "net_dev_mcast",
    "net_if_inet6",
    "net_igmp",
    "net_igmp6",
    "net_ipv6_route",
    "net_netlink",
    "net_netstat",
    "net_packet",
    "net_protocols",
    "net_route",
    "net_tcp",
    "net_tcp6",
    "net_unix",
    "pagetypeinfo",
    "partitions",
    "pid_io",
    "pid_maps",
    "pid_mountinfo",
    "pid_numa_maps",
    "pid_smaps",
    "pid_stat",
    "pid_statm",
    "pid_status",
    "scsi_device_info",
    "scsi_scsi",
    "slabinfo",
    "softirqs",
    "stat",
    "swaps",
    "uptime",
    "version",
    "vmallocinfo",
    "vmstat",
    "zoneinfo",
];

/// Corpus files no case uses, and why.
const UNUSED: &[(&str, &str)] = &[
    ("jc-linux-proc/pid_fdinfo", "a /proc/<pid>/fdinfo/<fd> file of an unknown fd; snap reads no fdinfo"),
    ("jc-linux-proc/pid_fdinfo_dma", "fdinfo of an unknown fd"),
    ("jc-linux-proc/pid_fdinfo_epoll", "fdinfo of an unknown fd"),
    ("jc-linux-proc/pid_fdinfo_fanotify", "fdinfo of an unknown fd"),
    ("jc-linux-proc/pid_fdinfo_inotify", "fdinfo of an unknown fd"),
    ("jc-linux-proc/pid_fdinfo_timerfd", "fdinfo of an unknown fd"),
    ("insights-core/mount-cmd.out", "the output of mount(8), not a /proc file"),
];

/// The two /proc/stat files that jc's `stat2` concatenates (jc parses them as one, the
/// later values winning): both of 2.6 kernels (7 cpu fields, no steal), the first of a
/// 1-CPU host booted in August 2004 (the date of `version3`, 2.6.8), the second of an
/// 8-CPU host. As one /proc/stat the file would count 9 CPUs, which no host had.
fn stat2_halves() -> (String, String) {
    let text = std::fs::read_to_string(corpus().join("jc-linux-proc/stat2")).unwrap();
    let second = text.match_indices("\ncpu ").next().map(|(i, _)| i + 1).expect("stat2 holds two files");
    (text[..second].to_string(), text[second..].to_string())
}

/// hotsos's trimmed sosreport /proc: `pid/<n>/status` was /proc/<n>/status.
fn hotsos(name: &str) -> Case {
    Case::new(name).tree_with(name, |p| match p.strip_prefix("pid/") {
        Some(rest) => format!("proc/{rest}"),
        None => format!("proc/{p}"),
    })
}

/// insights-core's RHEL 6/7 samples (strings of its parser tests; not one host).
fn insights() -> Case {
    Case::new("insights-core")
        .file("proc/meminfo", "insights-core/meminfo")
        .file("proc/stat", "insights-core/stat")
        .file("proc/net/snmp", "insights-core/net_snmp")
        .file("proc/net/snmp6", "insights-core/net_snmp6")
        .file("proc/net/netstat", "insights-core/net_netstat.1")
        .file("proc/net/sockstat", "insights-core/net_sockstat")
        .file("proc/net/softnet_stat", "insights-core/net_softnet_stat.1")
        .file("proc/mounts", "insights-core/mounts")
        .file("proc/1/mountinfo", "insights-core/mountinfo")
        .file("proc/slabinfo", "insights-core/slabinfo")
        .file("proc/interrupts", "insights-core/interrupts")
        .file("proc/buddyinfo", "insights-core/buddyinfo")
        // The sample names no process; pid 1 is as good as any.
        .file("proc/1/limits", "insights-core/pid_limits")
}

fn cases() -> Vec<Case> {
    let (stat_2_6_8, stat_2_6_smp) = stat2_halves();
    let cpus = |stat: &str| stat.lines().filter(|l| is_cpu_n(l)).count();
    // No loadavg of these hosts survives; this one (written by the test) puts half a task
    // more than there are CPUs on the 1-minute average, so load.high must fire if and only
    // if snap counts the CPUs of these 2.6-era stat files right (one too many: quiet).
    let loadavg = |stat: &str| format!("{}.50 1.00 0.50 2/100 1234\n", cpus(stat));
    vec![
        // Fake trees assembled from real captures, with oddities kept here on purpose:
        // node_exporter's proc/10/stat is pid 17's line, its kernel.pid_max (123) is below
        // loadavg's 719 tasks, and sys says 4 CPUs online where proc/stat has 8; procfs's
        // proc/584/stat has a stray second line and proc/26232/stat 64-bit extremes in int
        // fields (see old_and_hacked_stat_lines_through_snaps_parser), and its broken
        // crypto_corrupted, net/udp_broken and net/softnet_stat.broken are files no rule reads.
        Case::new("node_exporter-fixtures")
            .tree("proc", "node_exporter-fixtures/proc")
            .tree("sys", "node_exporter-fixtures/sys")
            .tree("run/udev", "node_exporter-fixtures/udev")
            .tree("usr", "node_exporter-fixtures/usr"),
        Case::new("prometheus-procfs-fixtures")
            .tree("proc", "prometheus-procfs-fixtures/proc")
            .tree("sys", "prometheus-procfs-fixtures/sys"),
        hotsos("hotsos-vault"),
        hotsos("hotsos-rabbitmq"),
        jc(),
        // A comm holding `) S 1 2 3 4 5` and one holding a space and a newline: both are
        // legal (comm is any 15 bytes), so both must parse.
        jc().named("jc-linux-proc pid_stat_hack")
            .file(&format!("proc/{}/stat", pid_of_stat("jc-linux-proc/pid_stat_hack")), "jc-linux-proc/pid_stat_hack"),
        jc().named("jc-linux-proc pid_stat_w_space_and_nl_in_comm").file(
            &format!("proc/{}/stat", pid_of_stat("jc-linux-proc/pid_stat_w_space_and_nl_in_comm")),
            "jc-linux-proc/pid_stat_w_space_and_nl_in_comm",
        ),
        // The alternates of jc's files, of other hosts: CentOS 7 (3.10) `version2` and the
        // second cpuinfo, consoles, zoneinfo and igmp samples.
        Case::new("jc-linux-proc alternates")
            .file("proc/version", "jc-linux-proc/version2")
            .file("proc/cpuinfo", "jc-linux-proc/cpuinfo2")
            .file("proc/consoles", "jc-linux-proc/consoles2")
            .file("proc/zoneinfo", "jc-linux-proc/zoneinfo2")
            .file("proc/net/igmp", "jc-linux-proc/net_igmp_more"),
        Case::new("jc-linux-proc 2.6.8 (stat2, first half)")
            .file("proc/version", "jc-linux-proc/version3")
            .write("proc/stat", &stat_2_6_8)
            .write("proc/loadavg", &loadavg(&stat_2_6_8)),
        Case::new("jc-linux-proc 2.6 SMP (stat2, second half)")
            .write("proc/stat", &stat_2_6_smp)
            .write("proc/loadavg", &loadavg(&stat_2_6_smp)),
        insights(),
        // PROC_NETSTAT_2: an older kernel's TcpExt (no PFMemallocDrop), as consistent as
        // any /proc/net/netstat; insights-core parses it.
        insights().named("insights-core net_netstat.2").file("proc/net/netstat", "insights-core/net_netstat.2"),
        insights()
            .named("insights-core net_netstat.4")
            .file("proc/net/netstat", "insights-core/net_netstat.4")
            .broken(
                "kernel.syn_flood",
                "insights-core/net_netstat.4",
                "PROC_NETSTAT_4 is broken on purpose: its headers lack SyncookiesSent and InNoRoutes, \
                 so names and values do not pair up (insights-core expects 'Invalid Contents')",
            )
            .broken("net.listen_overflow", "insights-core/net_netstat.4", "the same broken PROC_NETSTAT_4"),
        Case::new("insights-core alternates")
            .file("proc/net/softnet_stat", "insights-core/net_softnet_stat.3")
            .file("proc/mounts", "insights-core/mounts.quotes"),
    ]
}

/// Every case with its report, analyzed once for all the tests of this file.
fn reports() -> &'static [(Case, Result<Value, String>)] {
    static REPORTS: OnceLock<Vec<(Case, Result<Value, String>)>> = OnceLock::new();
    REPORTS.get_or_init(|| {
        cases()
            .into_iter()
            .map(|c| {
                let r = c.analyze();
                (c, r)
            })
            .collect()
    })
}

fn report<'a>(case: &str) -> &'a Value {
    let (_, r) = reports().iter().find(|(c, _)| c.name == case).unwrap_or_else(|| panic!("no case {case}"));
    r.as_ref().unwrap_or_else(|e| panic!("{case}: {e}"))
}

fn case(name: &str) -> &'static Case {
    &reports().iter().find(|(c, _)| c.name == name).unwrap().0
}

fn status<'a>(report: &'a Value, rule: &str) -> &'a str {
    report["rules"][rule].as_str().unwrap_or("(absent)")
}

fn findings<'a>(report: &'a Value, rule: &str) -> Vec<&'a Value> {
    report["findings"].as_array().unwrap().iter().filter(|f| f["rule"] == rule).collect()
}

/// Panics with every problem at once, so one run shows all of them.
fn assert_none(problems: Vec<String>) {
    assert!(problems.is_empty(), "{} problem(s):\n- {}", problems.len(), problems.join("\n- "));
}

// ---- This test's own reading of the raw files (independent of snap's parsers) ----

fn is_cpu_n(line: &str) -> bool {
    line.strip_prefix("cpu").is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
}

/// CPUs as `load.high` documents its sources: sys/devices/system/cpu/online, else the
/// cpuN lines of proc/stat (these bundles have no manifest).
fn cpus(case: &Case) -> Option<u32> {
    if let Some(list) = case.text("sys/devices/system/cpu/online") {
        let mut n = 0;
        for part in list.trim().split(',') {
            n += match part.split_once('-') {
                Some((a, b)) => b.parse::<u32>().unwrap() - a.parse::<u32>().unwrap() + 1,
                None => 1,
            };
        }
        return Some(n);
    }
    let n = case.text("proc/stat")?.lines().filter(|l| is_cpu_n(l)).count() as u32;
    (n > 0).then_some(n)
}

struct LoadAvg {
    one: f64,
    tasks: u64,
}

fn loadavg(case: &Case) -> Option<LoadAvg> {
    let text = case.text("proc/loadavg")?;
    let f: Vec<&str> = text.split_whitespace().collect();
    Some(LoadAvg { one: f[0].parse().unwrap(), tasks: f[3].split_once('/').unwrap().1.parse().unwrap() })
}

/// `Key: value [kB]` lines: the numbers as written.
fn meminfo(case: &Case) -> Option<BTreeMap<String, u64>> {
    let text = case.text("proc/meminfo")?;
    Some(
        text.lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.trim().to_string(), v.split_whitespace().next()?.parse().ok()?))
            })
            .collect(),
    )
}

/// `name value` lines (vmstat).
fn vmstat(case: &Case) -> Option<BTreeMap<String, u64>> {
    let text = case.text("proc/vmstat")?;
    Some(
        text.lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.trim().parse().ok()?))
            })
            .collect(),
    )
}

/// `Group: names` / `Group: values` line pairs of proc/net/netstat, by `Group.Name`.
fn netstat(case: &Case) -> Option<BTreeMap<String, u64>> {
    let text = case.text("proc/net/netstat")?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = BTreeMap::new();
    for pair in lines.chunks(2) {
        let (g, names) = pair[0].split_once(':').unwrap();
        let values = pair[1].split_once(':').unwrap().1;
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            out.insert(format!("{g}.{n}"), v.parse().unwrap());
        }
    }
    Some(out)
}

/// (entry pid, state, ppid, comm) of every proc/<pid>/stat: the comm is between the first
/// `(` and the last `)`, the state the first field after it.
fn process_states(case: &Case) -> Vec<(u32, char, i64, String)> {
    let mut out = Vec::new();
    for e in case.entries() {
        let Some(pid) = e.strip_prefix("proc/").and_then(|r| r.strip_suffix("/stat")).and_then(|p| p.parse().ok())
        else {
            continue;
        };
        let line = case.text(e).unwrap();
        let (open, close) = (line.find('(').unwrap(), line.rfind(')').unwrap());
        let mut rest = line[close + 1..].split_whitespace();
        let state = rest.next().unwrap().chars().next().unwrap();
        let ppid = rest.next().unwrap().parse().unwrap();
        out.push((pid, state, ppid, line[open + 1..close].to_string()));
    }
    out
}

/// The sysctl's number when the entry is present.
fn number(case: &Case, entry: &str) -> Option<u64> {
    case.text(entry).map(|t| t.trim().parse().unwrap())
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

// ---- Expectations ----

/// The rules this file judges case by case; the rest must not be evaluated at all, since
/// no case holds their inputs: a sampling window, the open-file, socket and filesystem
/// scans, or a kernel log.
const JUDGED: &[&str] = &[
    "load.high",
    "mem.available_low",
    "mem.swap",
    "mem.oom_candidates",
    "proc.zombies",
    "proc.pid_pressure",
    "fd.limit_near",
    "kernel.syn_flood",
    "net.listen_overflow",
    "app.nginx_workers",
];

struct Check<'a> {
    case: &'a Case,
    report: &'a Value,
    problems: Vec<String>,
}

impl Check<'_> {
    fn problem(&mut self, rule: &str, what: String) {
        self.problems.push(format!("{} / {rule}: {what}", self.case.name));
    }

    fn is_broken(&self, rule: &str) -> bool {
        self.case.broken.iter().any(|b| b.rule == rule)
    }

    fn not_evaluated(&mut self, rule: &str) {
        let s = status(self.report, rule);
        let reason = s.strip_prefix("not_evaluated: ").unwrap_or("");
        if reason.trim().is_empty() {
            self.problem(rule, format!("its inputs are absent, so it must be not_evaluated with a reason; got {s:?}"));
        }
    }

    /// The rule fired exactly these (subject, severity) findings, or passed when none.
    fn fired(&mut self, rule: &str, want: &[(String, &str)]) {
        let s = status(self.report, rule);
        let got: BTreeSet<(String, String)> = findings(self.report, rule)
            .iter()
            .map(|f| (f["subject"].as_str().unwrap().to_string(), f["severity"].as_str().unwrap().to_string()))
            .collect();
        let want_set: BTreeSet<(String, String)> = want.iter().map(|(s, v)| (s.clone(), v.to_string())).collect();
        let want_status = if want.is_empty() { "passed" } else { "fired" };
        if s != want_status || got != want_set {
            self.problem(rule, format!("expected {want_status} with {want_set:?}, got {s:?} with {got:?}"));
        }
    }

    /// A fact of the rule's only finding (with `subject` when given).
    fn fact(&mut self, rule: &str, subject: Option<&str>, name: &str, want: Value) {
        let fs = findings(self.report, rule);
        let Some(f) = fs.iter().find(|f| match subject {
            Some(s) => f["subject"] == s,
            None => true,
        }) else {
            return;
        };
        let got = &f["facts"][name];
        let same = match (got.as_f64(), want.as_f64()) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * b.abs().max(1.0),
            _ => *got == want,
        };
        if !same {
            self.problem(rule, format!("fact {name}: expected {want}, got {got}"));
        }
    }
}

fn check(case: &Case, report: &Value) -> Vec<String> {
    let mut c = Check { case, report, problems: Vec::new() };
    let has_pid_stat = !process_states(case).is_empty();

    // load.high: warning from 1.0 task per online CPU, critical from 2.0.
    match (loadavg(case), cpus(case)) {
        (None, _) => c.not_evaluated("load.high"),
        (Some(la), Some(n)) => {
            let per = la.one / n as f64;
            let sev = if per >= 2.0 {
                Some("critical")
            } else if per >= 1.0 {
                Some("warning")
            } else {
                None
            };
            let want: Vec<(String, &str)> = sev.map(|s| ("host".to_string(), s)).into_iter().collect();
            c.fired("load.high", &want);
            c.fact("load.high", None, "load1", la.one.into());
            c.fact("load.high", None, "cpus", n.into());
        }
        (Some(_), None) => c.problem("load.high", "a case with loadavg but no CPU count".into()),
    }

    let mem = meminfo(case);
    // mem.available_low: warning below 10 % of MemTotal available, critical below 5 %.
    match &mem {
        None => c.not_evaluated("mem.available_low"),
        Some(m) => match m.get("MemAvailable") {
            // Kernels before 3.14: not judged here (not_evaluated, or an estimate this test
            // cannot check); `failed` is caught by every_case_is_analyzed_without_failure.
            None => {}
            Some(&avail) => {
                let total = m["MemTotal"];
                let percent = avail as f64 * 100.0 / total as f64;
                let sev = if percent < 5.0 {
                    Some("critical")
                } else if percent < 10.0 {
                    Some("warning")
                } else {
                    None
                };
                let want: Vec<(String, &str)> = sev.map(|s| ("memory".to_string(), s)).into_iter().collect();
                c.fired("mem.available_low", &want);
                c.fact("mem.available_low", None, "available_bytes", (avail * 1024).into());
                c.fact("mem.available_low", None, "total_bytes", (total * 1024).into());
            }
        },
    }

    // mem.swap: no case has a sampling window, so: quiet without swap used, warning from
    // 50 % used, info below; since-boot pswpin/pswpout from proc/vmstat as facts.
    match &mem {
        None => c.not_evaluated("mem.swap"),
        Some(m) => {
            let (total, free) = (m["SwapTotal"], m["SwapFree"]);
            let used = total - free;
            let sev = if used == 0 {
                None
            } else if used as f64 * 100.0 / total as f64 >= 50.0 {
                Some("warning")
            } else {
                Some("info")
            };
            let want: Vec<(String, &str)> = sev.map(|s| ("swap".to_string(), s)).into_iter().collect();
            c.fired("mem.swap", &want);
            c.fact("mem.swap", None, "swap_total_bytes", (total * 1024).into());
            c.fact("mem.swap", None, "swap_used_bytes", (used * 1024).into());
            if used > 0 {
                c.fact("mem.swap", None, "swap_used_percent", round1(used as f64 * 100.0 / total as f64).into());
            }
            if let Some(v) = vmstat(case) {
                c.fact("mem.swap", None, "rates_from", "since boot".into());
                c.fact("mem.swap", None, "pswpin_pages", v["pswpin"].into());
                c.fact("mem.swap", None, "pswpout_pages", v["pswpout"].into());
                if let Some(up) = case.text("proc/uptime") {
                    let up: f64 = up.split_whitespace().next().unwrap().parse().unwrap();
                    c.fact("mem.swap", None, "pswpin_per_s", round1(v["pswpin"] as f64 / up).into());
                    c.fact("mem.swap", None, "pswpout_per_s", round1(v["pswpout"] as f64 / up).into());
                }
            }
        }
    }

    // mem.oom_candidates needs proc/<pid>/oom_score, which no case has.
    assert!(!case.entries().any(|e| e.ends_with("/oom_score")), "{}: update this test", case.name);
    c.not_evaluated("mem.oom_candidates");

    // proc.zombies: info for 1 to 4 zombies of one parent, warning from 5.
    if has_pid_stat {
        let mut by_parent: BTreeMap<i64, usize> = BTreeMap::new();
        for (_, state, ppid, _) in process_states(case) {
            if state == 'Z' {
                *by_parent.entry(ppid).or_default() += 1;
            }
        }
        let stats = process_states(case);
        let want: Vec<(String, &str)> = by_parent
            .iter()
            .map(|(ppid, n)| {
                let comm = stats.iter().find(|s| s.0 as i64 == *ppid).map_or("?".to_string(), |s| s.3.clone());
                (format!("pid {ppid} ({comm})"), if *n >= 5 { "warning" } else { "info" })
            })
            .collect();
        c.fired("proc.zombies", &want);
    } else {
        c.not_evaluated("proc.zombies");
    }

    // proc.pid_pressure: tasks (loadavg's total) against pid_max and threads-max,
    // warning from 70 %, critical from 90 %.
    let limits = [
        ("pid_max", number(case, "proc/sys/kernel/pid_max")),
        ("threads-max", number(case, "proc/sys/kernel/threads-max")),
    ];
    match loadavg(case) {
        Some(la) if limits.iter().any(|(_, l)| l.is_some()) => {
            let mut want = Vec::new();
            for (name, limit) in limits {
                let Some(limit) = limit else { continue };
                let percent = la.tasks as f64 * 100.0 / limit as f64;
                if percent >= 90.0 {
                    want.push((name.to_string(), "critical"));
                } else if percent >= 70.0 {
                    want.push((name.to_string(), "warning"));
                }
                c.fact("proc.pid_pressure", Some(name), "tasks", la.tasks.into());
                c.fact("proc.pid_pressure", Some(name), "limit", limit.into());
                c.fact("proc.pid_pressure", Some(name), "used_percent", round1(percent).into());
            }
            c.fired("proc.pid_pressure", &want);
        }
        // Without loadavg snap counts proc/<pid>/task/<tid>/stat entries: no case has both
        // limits and such entries.
        la => {
            assert!(
                limits.iter().all(|(_, l)| l.is_none())
                    || (la.is_none() && !case.entries().any(|e| e.contains("/task/"))),
                "{}: update this test",
                case.name
            );
            c.not_evaluated("proc.pid_pressure");
        }
    }

    // fd.limit_near, system part (no case has the open-file scan the per-process part
    // needs): allocated handles (file-nr's first field) against fs.file-max, else
    // file-nr's third field; warning from 80 %, critical from 95 %.
    match case.text("proc/sys/fs/file-nr") {
        None => c.not_evaluated("fd.limit_near"),
        Some(nr) => {
            let f: Vec<u64> = nr.split_whitespace().map(|v| v.parse().unwrap()).collect();
            let max = number(case, "proc/sys/fs/file-max").unwrap_or(f[2]);
            let percent = f[0] as f64 * 100.0 / max as f64;
            let sev = if percent >= 95.0 {
                Some("critical")
            } else if percent >= 80.0 {
                Some("warning")
            } else {
                None
            };
            let want: Vec<(String, &str)> = sev.map(|s| ("system".to_string(), s)).into_iter().collect();
            c.fired("fd.limit_near", &want);
            c.fact("fd.limit_near", Some("system"), "allocated", f[0].into());
            c.fact("fd.limit_near", Some("system"), "file_max", max.into());
        }
    }

    // kernel.syn_flood and net.listen_overflow from proc/net/netstat alone (no samples, no
    // socket scan, no kernel log): since-boot SYN-cookie counters never fire; since-boot
    // ListenOverflows or ListenDrops above 0 give one info finding for all listeners.
    match netstat(case) {
        None => {
            c.not_evaluated("kernel.syn_flood");
            c.not_evaluated("net.listen_overflow");
        }
        Some(_) if c.is_broken("net.listen_overflow") => {}
        Some(n) => {
            c.fired("kernel.syn_flood", &[]);
            let (overflows, drops) = (n["TcpExt.ListenOverflows"], n["TcpExt.ListenDrops"]);
            let want: Vec<(String, &str)> =
                if overflows > 0 || drops > 0 { vec![("all listeners".to_string(), "info")] } else { vec![] };
            c.fired("net.listen_overflow", &want);
            c.fact("net.listen_overflow", None, "listen_overflows", overflows.into());
            c.fact("net.listen_overflow", None, "listen_drops", drops.into());
            c.fact("net.listen_overflow", None, "scope", "since_boot".into());
        }
    }

    // app.nginx_workers: no nginx process in any case, so it passes where processes are.
    if has_pid_stat {
        assert!(!process_states(case).iter().any(|s| s.3 == "nginx"), "{}: update this test", case.name);
        c.fired("app.nginx_workers", &[]);
    } else {
        c.not_evaluated("app.nginx_workers");
    }
    c.problems
}

/// The rule ids `snap rules` lists.
fn rule_ids() -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_snap")).arg("rules").output().unwrap();
    assert!(out.status.success());
    let ids: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(char::is_whitespace))
        .map(|l| l.trim().to_string())
        .collect();
    for id in JUDGED {
        assert!(ids.iter().any(|i| i == id), "snap rules does not list {id}: update this test");
    }
    ids
}

// ---- Tests ----

#[test]
fn every_case_is_analyzed_without_failure() {
    let ids = rule_ids();
    let mut problems = Vec::new();
    for (case, report) in reports() {
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{}: snap analyze: {e}", case.name));
                continue;
            }
        };
        for id in &ids {
            if report["rules"].get(id).is_none() {
                problems.push(format!("{}: rule {id} of `snap rules` is not in the report", case.name));
            }
        }
        for (rule, s) in report["rules"].as_object().unwrap() {
            let s = s.as_str().unwrap_or("");
            if !s.starts_with("failed") {
                continue;
            }
            match case.broken.iter().find(|b| b.rule == rule) {
                // Allowed, but the failure must name the broken file's entry.
                Some(b) => {
                    let entry = case.files.iter().find(|(_, p)| p.ends_with(b.file)).map(|(e, _)| e.as_str()).unwrap();
                    if !s.contains(entry) {
                        problems.push(format!("{}: {rule} {s:?} does not name {entry} ({})", case.name, b.reason));
                    }
                }
                None => {
                    let files: Vec<String> = case
                        .files
                        .iter()
                        .filter(|(e, _)| s.contains(e.as_str()))
                        .map(|(_, p)| p.strip_prefix(corpus()).unwrap().display().to_string())
                        .collect();
                    problems.push(format!("{}: {rule} {s:?} on valid data (corpus file {files:?})", case.name));
                }
            }
        }
    }
    assert_none(problems);
}

#[test]
fn rules_fire_exactly_where_the_data_meets_their_thresholds() {
    let ids = rule_ids();
    let mut problems = Vec::new();
    for (case, report) in reports() {
        let Ok(report) = report else {
            problems.push(format!("{}: not analyzed", case.name));
            continue;
        };
        problems.extend(check(case, report));
        // Rules whose inputs no case has.
        for id in ids.iter().filter(|i| !JUDGED.contains(&i.as_str())) {
            let s = status(report, id);
            if !s.starts_with("not_evaluated: missing ") {
                problems.push(format!("{} / {id}: none of its inputs is in the bundle, yet {s:?}", case.name));
            }
        }
    }
    assert_none(problems);
}

#[test]
fn the_corpus_shows_conditions_that_fire() {
    // Not every case may be quiet: these are the conditions the corpus holds.
    let r = report("node_exporter-fixtures");
    // 719 tasks (loadavg) against the fixture's kernel.pid_max of 123.
    assert_eq!(status(r, "proc.pid_pressure"), "fired");
    // 1,038,940 kB of 4,194,300 kB of swap used.
    assert_eq!(status(r, "mem.swap"), "fired");
    // 9,372 kB of swap used on the RHEL 7 sample.
    assert_eq!(status(report("insights-core"), "mem.swap"), "fired");
    // ListenDrops 84351589 since boot in PROC_NETSTAT_2.
    assert_eq!(status(report("insights-core net_netstat.2"), "net.listen_overflow"), "fired");
    // 1.5 tasks per CPU on the 2.6-era hosts.
    assert_eq!(status(report("jc-linux-proc 2.6.8 (stat2, first half)"), "load.high"), "fired");
    assert_eq!(status(report("jc-linux-proc 2.6 SMP (stat2, second half)"), "load.high"), "fired");
}

#[test]
fn meminfo_without_mem_available_is_not_a_failure() {
    // node_exporter's and procfs's meminfo have no MemAvailable line, as every kernel before
    // 3.14 (RHEL 6's 2.6.32 among them). That is a valid meminfo: the rule must say why it
    // cannot judge (not_evaluated with a reason) or estimate, never `failed`.
    let mut problems = Vec::new();
    for name in ["node_exporter-fixtures", "prometheus-procfs-fixtures"] {
        assert!(!meminfo(case(name)).unwrap().contains_key("MemAvailable"));
        let s = status(report(name), "mem.available_low");
        if s.starts_with("failed") {
            problems.push(format!("{name}: mem.available_low {s:?}"));
        }
        // mem.swap and mem.oom_candidates read the same file and do not need the line.
        for rule in ["mem.swap", "mem.oom_candidates"] {
            let s = status(report(name), rule);
            if s.starts_with("failed") {
                problems.push(format!("{name}: {rule} {s:?}"));
            }
        }
    }
    assert_none(problems);
}

/// node_exporter's expected metrics for its fixture tree: `name{labels} value` lines.
fn node_exporter_metrics() -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(corpus().join("node_exporter-fixtures/e2e-output.txt")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn node_exporter_oracle_meminfo_through_snaps_parser() {
    let oracle = node_exporter_metrics();
    let raw = std::fs::read(corpus().join("node_exporter-fixtures/proc/meminfo")).unwrap();
    let m = snap_analyzers::input::meminfo(&raw).unwrap();
    // Every node_memory_* of /proc/meminfo (not the per-NUMA-node ones from /sys) with the
    // field snap's parser gives it. node_exporter has no MemAvailable either: the fixture
    // predates it.
    let snap: BTreeMap<&str, Option<u64>> = [
        ("MemTotal_bytes", Some(m.mem_total)),
        ("MemFree_bytes", Some(m.mem_free)),
        ("MemAvailable_bytes", m.mem_available),
        ("Buffers_bytes", Some(m.buffers)),
        ("Cached_bytes", Some(m.cached)),
        ("SwapCached_bytes", Some(m.swap_cached)),
        ("Active_bytes", Some(m.active)),
        ("Inactive_bytes", Some(m.inactive)),
        ("Active_anon_bytes", m.active_anon),
        ("Inactive_anon_bytes", m.inactive_anon),
        ("Active_file_bytes", m.active_file),
        ("Inactive_file_bytes", m.inactive_file),
        ("Unevictable_bytes", m.unevictable),
        ("Mlocked_bytes", m.mlocked),
        ("SwapTotal_bytes", Some(m.swap_total)),
        ("SwapFree_bytes", Some(m.swap_free)),
        ("Dirty_bytes", Some(m.dirty)),
        ("Writeback_bytes", Some(m.writeback)),
        ("AnonPages_bytes", m.anon_pages),
        ("Mapped_bytes", Some(m.mapped)),
        ("Shmem_bytes", m.shmem),
        ("Slab_bytes", Some(m.slab)),
        ("SReclaimable_bytes", m.s_reclaimable),
        ("SUnreclaim_bytes", m.s_unreclaim),
        ("KernelStack_bytes", m.kernel_stack),
        ("PageTables_bytes", m.page_tables),
        ("NFS_Unstable_bytes", m.nfs_unstable),
        ("Bounce_bytes", m.bounce),
        ("WritebackTmp_bytes", m.writeback_tmp),
        ("CommitLimit_bytes", m.commit_limit),
        ("Committed_AS_bytes", Some(m.committed_as)),
        ("VmallocTotal_bytes", Some(m.vmalloc_total)),
        ("VmallocUsed_bytes", Some(m.vmalloc_used)),
        ("VmallocChunk_bytes", Some(m.vmalloc_chunk)),
        ("HardwareCorrupted_bytes", m.hardware_corrupted),
        ("AnonHugePages_bytes", m.anon_hugepages),
        ("HugePages_Total", m.hugepages_total),
        ("HugePages_Free", m.hugepages_free),
        ("HugePages_Rsvd", m.hugepages_rsvd),
        ("HugePages_Surp", m.hugepages_surp),
        ("Hugepagesize_bytes", m.hugepagesize),
        ("DirectMap4k_bytes", m.direct_map_4k),
        ("DirectMap2M_bytes", m.direct_map_2M),
    ]
    .into_iter()
    .collect();
    let mut problems = Vec::new();
    for (name, value) in oracle.iter().filter(|(k, _)| k.starts_with("node_memory_") && !k.contains("numa_")) {
        let key = &name["node_memory_".len()..];
        match snap.get(key) {
            None => problems.push(format!("{name} has no counterpart in this test's table")),
            Some(Some(v)) if *v as f64 == *value => {}
            Some(got) => problems.push(format!("{name}: node_exporter {value}, snap {got:?}")),
        }
    }
    for (key, v) in &snap {
        if v.is_some() && !oracle.contains_key(&format!("node_memory_{key}")) {
            problems.push(format!("snap reads {key} = {v:?}, node_exporter does not report it"));
        }
    }
    assert_none(problems);
}

#[test]
fn node_exporter_oracle_process_stats_through_snaps_parser() {
    // node_exporter's processes collector walks /proc/<pid>/stat like snap's rules: pids
    // counted by directory, states and threads from each stat line.
    let oracle = node_exporter_metrics();
    let dir = corpus().join("node_exporter-fixtures/proc");
    let mut states: BTreeMap<char, f64> = BTreeMap::new();
    let (mut pids, mut threads) = (0.0, 0.0);
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_str().unwrap().parse::<u32>().is_err() || !p.join("stat").is_file() {
            continue;
        }
        let stat = snap_analyzers::input::process_stat(&std::fs::read(p.join("stat")).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        pids += 1.0;
        threads += stat.num_threads as f64;
        *states.entry(stat.state).or_default() += 1.0;
    }
    assert_eq!(pids, oracle["node_processes_pids"]);
    assert_eq!(threads, oracle["node_processes_threads"]);
    let oracle_states: BTreeMap<char, f64> = oracle
        .iter()
        .filter_map(|(k, v)| {
            let s = k.strip_prefix("node_processes_state{state=\"")?.strip_suffix("\"}")?;
            Some((s.chars().next().unwrap(), *v))
        })
        .collect();
    assert_eq!(states, oracle_states);
}

#[test]
fn node_exporter_oracle_findings() {
    let oracle = node_exporter_metrics();
    let r = report("node_exporter-fixtures");

    // mem.swap: SwapTotal, SwapTotal - SwapFree, and vmstat's since-boot pswpin/pswpout.
    let swap = findings(r, "mem.swap");
    assert_eq!(swap.len(), 1, "{swap:#?}");
    let f = &swap[0]["facts"];
    assert_eq!(f["swap_total_bytes"].as_f64().unwrap(), oracle["node_memory_SwapTotal_bytes"]);
    assert_eq!(
        f["swap_used_bytes"].as_f64().unwrap(),
        oracle["node_memory_SwapTotal_bytes"] - oracle["node_memory_SwapFree_bytes"]
    );
    assert_eq!(f["pswpin_pages"].as_f64().unwrap(), oracle["node_vmstat_pswpin"]);
    assert_eq!(f["pswpout_pages"].as_f64().unwrap(), oracle["node_vmstat_pswpout"]);

    // proc.pid_pressure: the limits are node_processes_max_processes / _max_threads. The
    // task count differs on purpose: snap takes the kernel's count of every task from
    // loadavg's `1/719` (documented in `snap rules`), node_exporter sums the threads of the
    // pid directories it can read (node_processes_threads, 3 in this trimmed tree). So the
    // pid_max finding exists (719 of 123) and the threads-max one (719 of 7801, 9 %) not.
    let p = findings(r, "proc.pid_pressure");
    let subjects: Vec<&str> = p.iter().map(|f| f["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, ["pid_max"]);
    assert_eq!(p[0]["facts"]["limit"].as_f64().unwrap(), oracle["node_processes_max_processes"]);
    assert_eq!(number(case("node_exporter-fixtures"), "proc/sys/kernel/threads-max").unwrap() as f64, {
        oracle["node_processes_max_threads"]
    });
    assert_eq!(p[0]["facts"]["tasks"], 719);
    // No process in state Z, as node_processes_state has none.
    assert!(!oracle.contains_key("node_processes_state{state=\"Z\"}"));
    assert_eq!(p[0]["facts"]["zombies"], 0);

    // load.high: node_load1 0.21 on 4 online CPUs is quiet, so snap shows no load figures to
    // compare. (node_exporter counts 8 CPUs from /proc/stat's cpuN lines; snap prefers
    // sys/devices/system/cpu/online, 0-3 in this fixture. Either way 0.21 is far below.)
    assert!(oracle["node_load1"] < 4.0);
    assert_eq!(status(r, "load.high"), "passed");

    // fd.limit_near (system): node_filefd_allocated 1024 of node_filefd_maximum 1631329 is
    // quiet. To see snap's reading of file-nr, the same tree with fs.file-max set (by this
    // test) to 1024 * 100 / 90, so that the allocated handles are at 90 %: a warning whose
    // figures must be node_exporter's.
    assert_eq!(status(r, "fd.limit_near"), "passed");
    let allocated = oracle["node_filefd_allocated"];
    let file_max = (allocated * 100.0 / 90.0).round();
    let tight = case("node_exporter-fixtures")
        .clone()
        .named("node_exporter-fixtures, fs.file-max lowered")
        .write("proc/sys/fs/file-max", &format!("{file_max}\n"));
    let lowered = tight.analyze().unwrap();
    let fd = findings(&lowered, "fd.limit_near");
    assert_eq!(fd.len(), 1, "{fd:#?}");
    assert_eq!(fd[0]["severity"], "warning");
    assert_eq!(fd[0]["facts"]["allocated"].as_f64().unwrap(), allocated);
    assert_eq!(fd[0]["facts"]["file_max"].as_f64().unwrap(), file_max);
    assert_eq!(fd[0]["facts"]["unused"], 0);
    // Without file-max, snap's limit is file-nr's third field, node_filefd_maximum.
    assert!(allocated / oracle["node_filefd_maximum"] < 0.8);

    // net.listen_overflow and kernel.syn_flood: ListenOverflows and ListenDrops are 0 and
    // since-boot SYN-cookie counters never fire (node_netstat_TcpExt_SyncookiesFailed is 2).
    assert_eq!(oracle["node_netstat_TcpExt_ListenOverflows"], 0.0);
    assert_eq!(oracle["node_netstat_TcpExt_ListenDrops"], 0.0);
    assert_eq!(status(r, "net.listen_overflow"), "passed");
    assert_eq!(status(r, "kernel.syn_flood"), "passed");
}

#[test]
fn swap_rates_are_not_invented_without_uptime() {
    // node_exporter's tree has proc/vmstat (pswpout 35045 since boot) but no proc/uptime and
    // no manifest: the since-boot rate is unknown. It must not be reported as 0.0 pages/s,
    // which contradicts the 136.9 MiB swapped out that the same finding shows.
    let swap = findings(report("node_exporter-fixtures"), "mem.swap");
    let f = &swap[0]["facts"];
    assert!(f["pswpout_pages"].as_u64().unwrap() > 0);
    for rate in ["pswpin_per_s", "pswpout_per_s"] {
        assert!(
            f[rate].is_null() || f[rate].as_f64().unwrap() > 0.0,
            "{rate} is {} with no uptime to divide by: {:#}",
            f[rate],
            swap[0]
        );
    }
}

#[test]
fn old_and_hacked_stat_lines_through_snaps_parser() {
    let parse = |rel: &str| {
        snap_analyzers::input::process_stat(&std::fs::read(corpus().join(rel)).unwrap())
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
    };
    let s = parse("jc-linux-proc/pid_stat_hack");
    assert_eq!((s.pid, s.comm.as_str(), s.state, s.ppid), (2001, "bad) S 1 2 3 4 5", 'S', 1888));
    let s = parse("jc-linux-proc/pid_stat_w_space_and_nl_in_comm");
    assert_eq!((s.pid, s.comm.as_str(), s.state, s.ppid), (2001, "my file with\nsp", 'S', 1888));
    // Parentheses and spaces in the comm; the pid inside differs from the directory's. The
    // fixture file has a second line, `#!/bin/cat /proc/self/stat` (how procfs's authors
    // made a process of that name: a script run by cat), which no kernel writes; the
    // stat line is the first.
    let text = std::fs::read_to_string(corpus().join("prometheus-procfs-fixtures/proc/584/stat")).unwrap();
    let s = snap_analyzers::input::process_stat(text.lines().next().unwrap().as_bytes()).unwrap();
    assert_eq!((s.pid, s.comm.as_str(), s.state, s.ppid), (1020, "(a b ) ( c d) ", 'R', 28378));
    // procfs's proc/26232/stat is hand-edited to 64-bit extremes, also in exit_signal and
    // processor, which the kernel prints from ints: snap's parser may refuse it (the rules
    // then skip that process), and the analysis of the tree must not fail for it, which
    // every_case_is_analyzed_without_failure checks.

    // In a bundle: the hacked lines are processes like any other (not zombies, no nginx).
    for name in ["jc-linux-proc pid_stat_hack", "jc-linux-proc pid_stat_w_space_and_nl_in_comm"] {
        let r = report(name);
        assert_eq!(status(r, "proc.zombies"), "passed", "{name}");
        assert_eq!(status(r, "app.nginx_workers"), "passed", "{name}");
    }

    // 2.6-era /proc/stat (7 cpu fields): the CPU count load.high divides by.
    for (name, cpus) in
        [("jc-linux-proc 2.6.8 (stat2, first half)", 1), ("jc-linux-proc 2.6 SMP (stat2, second half)", 8)]
    {
        let f = findings(report(name), "load.high");
        assert_eq!(f.len(), 1, "{name}");
        assert_eq!(f[0]["facts"]["cpus"], cpus, "{name}");
        assert_eq!(f[0]["severity"], "warning", "{name}");
    }
}

#[test]
fn the_cases_cover_the_corpus() {
    let dir = corpus();
    let mut used: BTreeSet<PathBuf> = BTreeSet::new();
    for (case, _) in reports() {
        used.extend(case.files.values().cloned());
    }
    // stat2 is used split in two (written entries).
    used.insert(dir.join("jc-linux-proc/stat2"));
    let mut problems = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(&dir).unwrap().to_str().unwrap().to_string();
            if rel == "PROVENANCE.md" || rel == "node_exporter-fixtures/e2e-output.txt" {
                continue;
            }
            if !used.contains(&p) && !UNUSED.iter().any(|(u, _)| *u == rel) {
                problems.push(format!("{rel} is in no case and not listed as unused"));
            }
        }
    }
    assert_none(problems);
}
