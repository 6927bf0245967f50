//! `snap collect` end to end, and under the faults it must survive: processes that exit
//! mid-scan, a read that blocks forever, an unprivileged user, Ctrl-C. Assertions are on
//! conditions the tests create (their own process and threads, their own children, a
//! fake collector root), not on whatever else the machine happens to run. CI runs these
//! as root on a Linux VM.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use snap_bundle::manifest::{EntryStatus, Manifest};
use snap_bundle::Bundle;

fn snap_bin() -> &'static str {
    env!("CARGO_BIN_EXE_snap")
}

fn snap() -> Command {
    Command::new(snap_bin())
}

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Waits for a spawned child with a generous limit, so that a hang fails the test
/// instead of stalling the suite; collects its stdout and stderr if piped.
fn wait(mut child: Child, limit: Duration) -> Output {
    let started = Instant::now();
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = pipe(child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let err = pipe(child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("snap did not finish within {limit:?}; stderr: {}", err.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    Output { code: status.code(), stdout: out.join().unwrap(), stderr: err.join().unwrap(), elapsed }
}

fn run(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn snap");
    wait(child, limit)
}

/// Runs a collection that must succeed and returns the bundle path printed last on stdout.
fn collect_ok(cmd: Command) -> (PathBuf, Output) {
    let out = run(cmd, Duration::from_secs(180));
    assert_eq!(out.code, Some(0), "snap collect failed: {}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let last = out.stdout.lines().last().unwrap_or_else(|| panic!("no bundle path on stdout: {:?}", out.stdout));
    (PathBuf::from(last), out)
}

fn manifest(bundle: &Bundle) -> Manifest {
    bundle.manifest().cloned().expect("the bundle has a manifest")
}

fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A few threads of this test process that stay alive until dropped, so the scan must
/// find them. Returns their tids.
struct ParkedThreads {
    tids: Vec<u32>,
    release: Vec<mpsc::Sender<()>>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl ParkedThreads {
    fn start(n: usize) -> ParkedThreads {
        let mut p = ParkedThreads { tids: Vec::new(), release: Vec::new(), handles: Vec::new() };
        for _ in 0..n {
            let (tid_tx, tid_rx) = mpsc::channel();
            let (rel_tx, rel_rx) = mpsc::channel::<()>();
            p.handles.push(std::thread::spawn(move || {
                // SAFETY: gettid has no preconditions.
                tid_tx.send(unsafe { libc::gettid() } as u32).unwrap();
                let _ = rel_rx.recv();
            }));
            p.tids.push(tid_rx.recv().unwrap());
            p.release.push(rel_tx);
        }
        p
    }
}

impl Drop for ParkedThreads {
    fn drop(&mut self) {
        self.release.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Every entry record's path must be unique, every stored entry must have an ok or
/// truncated record of its exact size, and every ok record must be stored.
fn check_records_match_archive(bundle: &Bundle, m: &Manifest) {
    let mut by_path = BTreeMap::new();
    for r in &m.entries {
        assert!(by_path.insert(r.path.as_str(), r).is_none(), "two records for {}", r.path);
    }
    let names = bundle.entries().unwrap();
    assert!(names.iter().any(|n| n == "manifest.json"));
    for name in names.iter().filter(|n| *n != "manifest.json") {
        let r = by_path.get(name.as_str()).unwrap_or_else(|| panic!("{name} is stored but has no record"));
        assert!(matches!(r.status, EntryStatus::Ok | EntryStatus::Truncated), "{name} stored as {:?}", r.status);
        let data = bundle.read(name).unwrap().unwrap();
        assert_eq!(r.bytes, data.len() as u64, "{name}: record bytes vs stored bytes");
    }
    let stored: HashSet<&str> = names.iter().map(String::as_str).collect();
    for r in &m.entries {
        if r.status == EntryStatus::Ok {
            assert!(stored.contains(r.path.as_str()), "{} recorded ok but not stored", r.path);
        } else if r.status != EntryStatus::Truncated {
            assert!(!stored.contains(r.path.as_str()), "{} recorded {:?} but stored", r.path, r.status);
            assert_eq!(r.bytes, 0, "{}", r.path);
        }
    }
    let sum: u64 = m.entries.iter().map(|r| r.bytes).sum();
    assert_eq!(sum, m.cost.bytes_stored, "cost.bytes_stored is the sum of the records' bytes");
}

#[test]
fn round_trip_holds_the_contract() {
    let threads = ParkedThreads::start(3);
    let pid = std::process::id();
    let dir = tempfile::tempdir().unwrap();
    let before_ns = now_ns();
    let mut cmd = snap();
    cmd.args(["collect", "--window", "2", "--interval", "1", "--quiet", "-o"]).arg(dir.path());
    let (path, _) = collect_ok(cmd);
    let after_ns = now_ns();

    // The file: where asked, named by snap, private.
    assert_eq!(path.parent(), Some(dir.path()), "{path:?}");
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("snap-") && name.ends_with(".tar.zst"), "{name}");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600, "bundle mode");
    let listed: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(listed, vec![name.clone()], "only the bundle is left in the output directory");

    // GNU tar reads it, manifest first.
    let tar = Command::new("tar").arg("--zstd").arg("-tf").arg(&path).output().expect("tar");
    assert!(tar.status.success(), "tar --zstd -tf: {}", String::from_utf8_lossy(&tar.stderr));
    let tar_list = String::from_utf8(tar.stdout).unwrap();
    assert_eq!(tar_list.lines().next(), Some("manifest.json"), "{}", &tar_list[..tar_list.len().min(500)]);

    let bundle = Bundle::open(&path).unwrap();
    let m = manifest(&bundle);
    let names: BTreeSet<String> = bundle.entries().unwrap().into_iter().collect();
    assert_eq!(names.len(), tar_list.lines().count(), "the reader and GNU tar see the same entries");

    let mut required: Vec<String> = [
        "proc/loadavg",
        "proc/uptime",
        "proc/stat",
        "proc/meminfo",
        "proc/vmstat",
        "proc/cpuinfo",
        "proc/diskstats",
        "proc/mounts",
        "proc/self/mountinfo",
        "proc/swaps",
        "proc/partitions",
        "proc/net/dev",
        "proc/net/snmp",
        "proc/net/netstat",
        "proc/net/sockstat",
        "proc/sys/kernel/pid_max",
        "proc/sys/kernel/threads-max",
        "proc/sys/kernel/hostname",
        "proc/sys/kernel/osrelease",
        "proc/sys/fs/file-nr",
        "proc/sys/fs/file-max",
        "proc/sys/net/core/somaxconn",
        "proc/1/stat",
        "sys/devices/system/cpu/online",
        "etc/os-release",
        "scan/open_files.jsonl",
        "samples/0/proc/stat",
        "samples/2/proc/stat",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for f in ["stat", "status", "cmdline", "limits", "io", "oom_score", "oom_score_adj", "wchan", "cgroup"] {
        required.push(format!("proc/{pid}/{f}"));
    }
    for tid in threads.tids.iter().chain([&pid]) {
        required.push(format!("proc/{pid}/task/{tid}/stat"));
    }
    for n in 0..=2 {
        required.push(format!("samples/{n}/proc/{pid}/stat"));
    }
    let absent: Vec<&String> = required.iter().filter(|r| !names.contains(*r)).collect();
    assert!(absent.is_empty(), "required entries absent: {absent:?}");
    assert!(names.iter().any(|n| n.starts_with("proc/sys/net/ipv4/tcp_")), "no proc/sys/net/ipv4/tcp_* entry");
    // What was stored is what the host said.
    assert_eq!(
        String::from_utf8(bundle.read(&format!("proc/{pid}/cmdline")).unwrap().unwrap()).unwrap(),
        std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap()
    );
    let stat =
        String::from_utf8(bundle.read(&format!("proc/{pid}/task/{}/stat", threads.tids[0])).unwrap().unwrap()).unwrap();
    assert!(stat.starts_with(&format!("{} (", threads.tids[0])), "{stat}");
    drop(threads);

    // Manifest: format, version, host facts.
    assert_eq!(m.format_version, 1);
    assert_eq!(m.snap_version, env!("CARGO_PKG_VERSION"));
    let h = &m.host;
    assert_eq!(h.hostname, read_trim("/proc/sys/kernel/hostname"));
    assert!(!h.hostname.is_empty());
    assert_eq!(h.kernel_release, sh("uname", &["-r"]));
    assert!(!h.kernel_version.is_empty() && !h.arch.is_empty());
    assert_eq!(h.arch, sh("uname", &["-m"]));
    assert_eq!(h.endianness, if cfg!(target_endian = "little") { "little" } else { "big" });
    if cfg!(target_arch = "x86_64") {
        assert_eq!(h.page_size, 4096);
    }
    assert_eq!(h.page_size.to_string(), sh("getconf", &["PAGESIZE"]));
    assert_eq!(h.clock_ticks.to_string(), sh("getconf", &["CLK_TCK"]));
    assert_eq!(h.boot_id, read_trim("/proc/sys/kernel/random/boot_id"));
    let btime: u64 = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("btime ").map(|v| v.trim().parse().unwrap()))
        .unwrap();
    assert!(h.boot_time.abs_diff(btime) <= 1, "boot_time {} vs btime {btime}", h.boot_time);
    // `nproc` counts the CPUs this process may use; it equals the online count unless an
    // affinity mask narrows it, which getconf does not see.
    assert_eq!(h.online_cpus.to_string(), sh("getconf", &["_NPROCESSORS_ONLN"]));
    assert!(u64::from(h.online_cpus) >= sh("nproc", &[]).parse::<u64>().unwrap());

    // Clocks: read at the start of the run, together.
    let c = m.clocks;
    assert!(c.realtime_ns > 0 && c.monotonic_ns > 0 && c.boottime_ns > 0, "{c:?}");
    assert!(c.realtime_ns + 2_000_000_000 >= before_ns && c.realtime_ns <= after_ns + 2_000_000_000, "{c:?}");
    assert!(c.boottime_ns >= c.monotonic_ns, "{c:?}");
    let boot_ns = c.realtime_ns.saturating_sub(c.boottime_ns);
    assert!((boot_ns / 1_000_000_000).abs_diff(btime) <= 2, "realtime - boottime is the boot time");

    // The window: samples 0, 1 and 2, spread over it. Each is due a whole interval after
    // the start, so a sample taken late on a busy box shortens the next gap: the gaps are
    // held to half an interval, the span (never early: sleeps do not wake early) to two.
    assert_eq!(m.samples.len(), 3, "{:?}", m.samples);
    for (i, s) in m.samples.iter().enumerate() {
        assert_eq!(s.index, i);
        assert!(s.clocks.realtime_ns > 0 && s.clocks.boottime_ns >= s.clocks.monotonic_ns, "{s:?}");
        assert!(s.clocks.monotonic_ns >= c.monotonic_ns);
        if i > 0 {
            let gap = s.clocks.monotonic_ns - m.samples[i - 1].clocks.monotonic_ns;
            assert!(gap >= 500_000_000, "sample {i} came {gap} ns after the previous one");
        }
    }
    assert!(m.samples[2].clocks.monotonic_ns - m.samples[0].clocks.monotonic_ns >= 1_950_000_000);
    assert_eq!(m.options.window_ms, 2000);
    assert_eq!(m.options.interval_ms, 1000);

    // Cost.
    let cost = &m.cost;
    assert!(cost.wall_ms > 0 && cost.peak_rss_kb > 0 && cost.bytes_read > 0 && cost.bytes_stored > 0, "{cost:?}");
    assert!(cost.wall_ms >= 2000, "a 2 s window takes at least 2 s: {cost:?}");
    assert!(cost.wall_ms as u128 <= (after_ns - before_ns) as u128 / 1_000_000 + 1000, "{cost:?}");

    // One record per attempted entry, consistent with the archive; collectors recorded.
    check_records_match_archive(&bundle, &m);
    assert!(m.entries.len() > 100);
    for r in &required {
        if r != "scan/open_files.jsonl" {
            let rec = m.entry(r).unwrap_or_else(|| panic!("no record for {r}"));
            assert_eq!(rec.status, EntryStatus::Ok, "{r}: {rec:?}");
        }
    }
    let collectors: Vec<&str> = m.collectors.iter().map(|c| c.name.as_str()).collect();
    for name in ["proc_system", "kernel_log", "processes", "sysfs", "config", "proc_sys", "window"] {
        assert!(collectors.contains(&name), "collector {name} not recorded: {collectors:?}");
    }
    let window = m.collectors.iter().find(|c| c.name == "window").unwrap();
    assert_eq!(window.status, EntryStatus::Ok);
    assert!(window.entries > 0);
}

#[test]
fn streaming_to_stdout_writes_a_valid_bundle_and_nothing_else() {
    let cwd = tempfile::tempdir().unwrap();
    let outdir = tempfile::tempdir().unwrap();
    let file = outdir.path().join("streamed.tar.zst");
    let child = snap()
        .args(["collect", "--window", "0", "--quiet", "-o", "-"])
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&file).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait(child, Duration::from_secs(180));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0, "nothing is left in the current directory");

    // The stream is exactly one zstd stream (no path or text after it) holding the bundle.
    let bytes = std::fs::read(&file).unwrap();
    let tar = zstd::decode_all(&bytes[..]).expect("stdout is one clean zstd stream");
    assert_eq!(&tar[..13], b"manifest.json");
    let bundle = Bundle::open(&file).unwrap();
    let m = manifest(&bundle);
    assert_eq!(m.format_version, 1);
    assert!(m.samples.is_empty());
    assert!(bundle.read("proc/loadavg").unwrap().is_some());
    assert!(bundle.read(&format!("proc/{}/stat", std::process::id())).unwrap().is_some());
    check_records_match_archive(&bundle, &m);
}

#[test]
fn processes_exiting_during_the_scan_are_recorded_missing() {
    // A churn of short-lived children of this test, each one recorded by pid.
    let stop = Arc::new(AtomicBool::new(false));
    let spawned = Arc::new(Mutex::new(HashSet::<u32>::new()));
    let churn = {
        let (stop, spawned) = (Arc::clone(&stop), Arc::clone(&spawned));
        std::thread::spawn(move || {
            let mut round = 0u32;
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
                let mut batch = Vec::new();
                for i in 0..8u32 {
                    let secs = format!("0.0{}", 1 + (round + i) % 9);
                    if let Ok(c) = Command::new("sleep").arg(secs).stdout(Stdio::null()).spawn() {
                        spawned.lock().unwrap().insert(c.id());
                        batch.push(c);
                    }
                }
                for mut c in batch {
                    let _ = c.wait();
                }
                round += 1;
            }
        })
    };
    // Children that exit at once and are reaped at once: a pid listed from /proc is
    // almost surely gone when its files are read, whatever the speed of the scan.
    // (The sleepers above stay readable as zombies until their batch is waited for,
    // so alone they vanish mid-scan only by luck; CI once saw none.)
    let quick: Vec<_> = (0..2)
        .map(|_| {
            let (stop, spawned) = (Arc::clone(&stop), Arc::clone(&spawned));
            std::thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
                    if let Ok(mut c) = Command::new("true").stdout(Stdio::null()).spawn() {
                        spawned.lock().unwrap().insert(c.id());
                        let _ = c.wait();
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = snap();
    cmd.args(["collect", "--window", "1", "--interval", "500ms", "--quiet", "-o"]).arg(dir.path());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| collect_ok(cmd)));
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    quick.into_iter().for_each(|t| t.join().unwrap());
    let (path, out) = result.unwrap_or_else(|e| std::panic::resume_unwind(e));
    assert_eq!(out.code, Some(0));

    let spawned = spawned.lock().unwrap().clone();
    assert!(spawned.len() >= 20, "the churn spawned only {} children", spawned.len());
    let bundle = Bundle::open(&path).unwrap();
    let m = manifest(&bundle);
    check_records_match_archive(&bundle, &m);

    // The pid an entry is about: proc/<pid>/... or samples/<n>/proc/<pid>/...
    let pid_of = |p: &str| -> Option<u32> {
        let rest = p.strip_prefix("samples/").and_then(|r| r.split_once('/')).map(|(_, r)| r).unwrap_or(p);
        rest.strip_prefix("proc/")?.split('/').next()?.parse().ok()
    };
    let ours: Vec<_> = m.entries.iter().filter(|r| pid_of(&r.path).is_some_and(|p| spawned.contains(&p))).collect();
    let missing = ours.iter().filter(|r| r.status == EntryStatus::Missing).count();
    let bad: Vec<_> = ours.iter().filter(|r| !matches!(r.status, EntryStatus::Ok | EntryStatus::Missing)).collect();
    eprintln!("{} children spawned, {} records about them, {missing} missing", spawned.len(), ours.len());
    assert!(bad.is_empty(), "entries of exiting children that are neither ok nor missing: {bad:#?}");
    assert!(missing > 0, "no vanished child was recorded missing ({} records of our children)", ours.len());
    // Missing entries carry the reason, and a process that vanished before its stat was
    // read is not asked for its other files.
    for r in ours.iter().filter(|r| r.status == EntryStatus::Missing) {
        assert!(r.message.is_some() && r.bytes == 0, "{r:?}");
        if let Some(dir) =
            r.path.strip_suffix("/stat").filter(|d| d.starts_with("proc/") && d.matches('/').count() == 1)
        {
            let asked: Vec<_> =
                ours.iter().filter(|o| o.path.starts_with(&format!("{dir}/")) && o.path != r.path).collect();
            assert!(asked.is_empty(), "{dir} was gone at its stat, yet its other files were read: {asked:?}");
        }
    }
    for c in &m.collectors {
        if c.name == "processes" || c.name == "window" {
            assert_eq!(c.status, EntryStatus::Ok, "{c:?}");
        }
    }
}

#[test]
fn blocking_read_is_cut_off_and_recorded() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for d in ["proc/sys/kernel", "proc/sys/fs", "etc", "sys/devices/system/cpu"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    // Nobody ever opens this FIFO for writing: opening it for reading blocks forever.
    let fifo = r.join("proc/loadavg");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    let files = [
        ("proc/stat", "cpu  10 0 10 100 0 0 0 0 0 0\nbtime 1700000000\n"),
        ("proc/sys/kernel/hostname", "fake-root-host\n"),
        ("proc/sys/kernel/osrelease", "9.9.9-fake\n"),
        ("proc/sys/fs/file-max", "12345\n"),
        ("etc/os-release", "NAME=\"Fake\"\nID=fake\n"),
        ("sys/devices/system/cpu/online", "0-5\n"),
    ];
    for (p, text) in files {
        std::fs::write(r.join(p), text).unwrap();
    }

    let out_dir = tempfile::tempdir().unwrap();
    let mut cmd = snap();
    cmd.arg("collect")
        .arg("--root")
        .arg(r)
        .args(["--window", "0", "--read-timeout", "300ms", "--quiet", "-o"])
        .arg(out_dir.path());
    let (path, out) = collect_ok(cmd);
    // Correctness, not speed: far below the 60 s default deadline, generous for a busy box.
    assert!(out.elapsed < Duration::from_secs(20), "took {:?}", out.elapsed);

    let bundle = Bundle::open(&path).unwrap();
    let m = manifest(&bundle);
    check_records_match_archive(&bundle, &m);
    let loadavg = m.entry("proc/loadavg").expect("proc/loadavg recorded");
    assert_eq!(loadavg.status, EntryStatus::TimedOut, "{loadavg:?}");
    assert!(loadavg.duration_us >= 250_000, "it was given its time limit: {loadavg:?}");
    assert!(bundle.read("proc/loadavg").unwrap().is_none());
    assert!(m.cost.stuck_reads >= 1, "{:?}", m.cost);
    assert_eq!(m.options.read_timeout_ms, 300);
    assert_eq!(m.options.root, r.display().to_string());

    // Files of the fake root read by other jobs are unaffected, and came from the root.
    for (p, text) in files.iter().filter(|(p, _)| *p != "proc/stat") {
        let rec = m.entry(p).unwrap_or_else(|| panic!("{p} not recorded"));
        assert_eq!(rec.status, EntryStatus::Ok, "{p}: {rec:?}");
        assert_eq!(bundle.read(p).unwrap().unwrap(), text.as_bytes(), "{p}");
    }
    assert_eq!(m.host.hostname, "fake-root-host");
    assert_eq!(m.host.kernel_release, "9.9.9-fake");
    assert_eq!(m.host.online_cpus, 6);
    assert_eq!(m.host.boot_time, 1_700_000_000);
    // Nothing of the real host's /proc leaked in: the fake root has no processes.
    assert!(!m.entries.iter().any(|e| e.path == format!("proc/{}/stat", std::process::id())));
}

#[test]
fn files_batched_after_a_blocked_read_are_still_read() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("proc")).unwrap();
    let c = std::ffi::CString::new(r.join("proc/loadavg").to_str().unwrap()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    std::fs::write(r.join("proc/uptime"), "12.50 20.00\n").unwrap();
    std::fs::write(r.join("proc/meminfo"), "MemTotal: 1000 kB\n").unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let mut cmd = snap();
    cmd.arg("collect").arg("--root").arg(r).args(["--window", "0", "--read-timeout", "300ms", "--quiet", "-o"]);
    cmd.arg(out_dir.path());
    let (path, _) = collect_ok(cmd);
    let m = manifest(&Bundle::open(&path).unwrap());
    assert_eq!(m.entry("proc/loadavg").unwrap().status, EntryStatus::TimedOut);
    for p in ["proc/uptime", "proc/meminfo"] {
        assert_eq!(m.entry(p).unwrap().status, EntryStatus::Ok, "{p}: {:?}", m.entry(p));
    }
}

#[test]
fn unprivileged_user_still_gets_a_bundle() {
    assert!(is_root(), "this test switches to the user nobody and needs root (CI runs as root)");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let me = std::process::id();
    const AS_NOBODY: [&str; 4] = ["--reuid=65534", "--regid=65534", "--clear-groups", "--"];
    // The build directory may be out of nobody's reach (a target dir under /root): then
    // run a copy of the binary from a directory nobody can enter.
    let bin_dir = tempfile::tempdir().unwrap();
    let reachable = Command::new("setpriv").args(AS_NOBODY).args(["test", "-x", snap_bin()]).status();
    let bin = if reachable.expect("setpriv").success() {
        PathBuf::from(snap_bin())
    } else {
        std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = bin_dir.path().join("snap");
        std::fs::copy(snap_bin(), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        copy
    };
    let mut cmd = Command::new("setpriv");
    cmd.args(AS_NOBODY)
        .arg(&bin)
        .args(["collect", "--window", "0", "--quiet", "-o"])
        .arg(dir.path())
        .current_dir(dir.path());
    let (path, _) = collect_ok(cmd);

    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.uid(), 65534, "the bundle belongs to the user who ran snap");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let bundle = Bundle::open(&path).unwrap();
    let m = manifest(&bundle);
    check_records_match_archive(&bundle, &m);

    // This root-owned test process: its io file is only for root; its stat is for all.
    let io = m.entry(&format!("proc/{me}/io")).expect("the test process's io was attempted");
    assert_eq!(io.status, EntryStatus::Denied, "{io:?}");
    assert!(io.message.is_some());
    assert_eq!(m.entry(&format!("proc/{me}/stat")).map(|r| r.status), Some(EntryStatus::Ok));
    assert_eq!(m.entry("proc/1/io").map(|r| r.status), Some(EntryStatus::Denied));
    let denied = m.entries.iter().filter(|e| e.status == EntryStatus::Denied).count();
    assert!(denied >= 2, "{denied} denied entries");
    assert!(m.entries.iter().filter(|e| e.status == EntryStatus::Ok).count() > 100);
    assert!(bundle.read("proc/loadavg").unwrap().is_some());

    // As lsof does for a non-root user, the open-file scan says that this root-owned
    // process's descriptors could not be listed, rather than silently omitting them.
    let files = bundle.read(snap_bundle::names::OPEN_FILES).unwrap().expect("open-file scan");
    let files = snap_bundle::scan::parse_jsonl::<snap_bundle::scan::OpenFile>(&files).unwrap();
    let nofd = files.iter().find(|f| f.pid == me && f.fd == "NOFD").expect("a NOFD line for the test process");
    assert_eq!(nofd.target, format!("/proc/{me}/fd (opendir: Permission denied)"));

    // The kernel log collector ran and said how it went, whatever that was.
    let klog = m.collectors.iter().find(|c| c.name == "kernel_log").expect("kernel_log recorded");
    assert!(
        klog.entries > 0 || klog.message.is_some() || m.kernel_log_source.is_some(),
        "kernel_log left no trace: {klog:?}"
    );
}

#[test]
fn ctrl_c_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let child = snap()
        .args(["collect", "--window", "5", "--quiet", "-o"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until snap catches SIGINT (its handler is installed), then let it work a while.
    let caught = |pid: u32| -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("SigCgt:").map(|v| v.trim().to_string())))
            .and_then(|v| u64::from_str_radix(&v, 16).ok())
            .is_some_and(|mask| mask & (1 << (libc::SIGINT - 1)) != 0)
    };
    let t = Instant::now();
    while !caught(pid) {
        assert!(t.elapsed() < Duration::from_secs(30), "snap never installed its SIGINT handler");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_secs(1));
    // SAFETY: pid is our own child, not yet waited for.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) }, 0);
    let out = wait(child, Duration::from_secs(60));
    assert_eq!(out.code, Some(130), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("interrupted"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "no bundle path is printed: {:?}", out.stdout);
    assert!(out.elapsed < Duration::from_secs(15), "SIGINT was honoured only after {:?}", out.elapsed);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
