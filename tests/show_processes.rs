//! `snap show`'s process and socket views (`ps`, `netstat`, `ss`, `lsof`) held to the
//! real tools (procps-ng 4.0.2, net-tools 2.10, iproute2 6.1, lsof 4.95 on Debian 12)
//! run on this machine around the capture, for processes, sockets and files the tests
//! create. Needs root (lsof and netstat see every process's descriptors), as CI runs.
//!
//! ps and top refuse a /proc that is not a real procfs, so the real tools cannot run on
//! the bundle's copy: the comparisons are with the live machine, for things that do not
//! move between the real run and the capture.
//!
//! What is compared, and why not more:
//! - ps: the whole line of a `sleep` the test started (it uses no CPU, so %CPU is 0.0
//!   both times); for a busy loop, every column but %CPU and TIME, and %CPU between the
//!   real tool's readings before and after the capture, within a slack computed from
//!   the manifest: procps's %CPU is CPU time over the process's whole life, and the
//!   instant the collector read the process is known only to within the processes
//!   collector's run (snap takes its middle), which on a 3-second-old process and a
//!   0.4-second run is a few points.
//! - netstat -napo: the whole lines of the test's listener, ESTABLISHED pair and
//!   CLOSE_WAIT socket (their timers are off and their queues still); netstat's columns
//!   have fixed widths.
//! - ss -tanp: the same sockets' lines field by field: ss sizes its columns to every
//!   socket on the box, which other tests on this machine change between the runs. A
//!   listener's Send-Q (its backlog, which /proc/net/tcp does not carry) is `-`.
//! - lsof: the whole output for the test's holder process (`-p PID`: every mapped
//!   library, a regular file, /dev/null, a deleted file) and of `+L1 -p PID`.
//!
//! The tests take a lock so that they run one at a time: a process forked by one test
//! holds copies of another test's sockets until it execs.

mod common;

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{collect_window, show, show_ok};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A real tool's stdout, in the C locale.
fn real(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).env("LC_ALL", "C").output().unwrap_or_else(|e| panic!("{tool}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The line of `text` whose whitespace-separated column `col` is `value`.
fn line_with<'a>(text: &'a str, col: usize, value: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().nth(col) == Some(value))
        .unwrap_or_else(|| panic!("no line with {value:?} in column {col}:\n{text}"))
}

fn fields(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(script: &str) -> Kill {
    Kill(
        Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn ps_lines_equal_procps_for_processes_that_lived_through_the_capture() {
    let _one = lock();
    let dir = tempfile::tempdir().unwrap();
    let sleeper = spawn("exec sleep 300");
    let busy = spawn("while :; do :; done");
    std::thread::sleep(Duration::from_millis(2500));
    let (sleep_pid, busy_pid) = (sleeper.0.id().to_string(), busy.0.id().to_string());

    let before = real("ps", &["aux"]);
    let ef = real("ps", &["-ef"]);
    let elf = real("ps", &["-eLf"]);
    let e = real("ps", &["-e"]);
    let bundle = collect_window(dir.path(), "0");
    let after = real("ps", &["aux"]);

    let aux = show_ok(&bundle, &["ps", "aux"]);
    assert_eq!(aux.lines().next(), before.lines().next(), "header");
    assert_eq!(line_with(&aux, 1, &sleep_pid), line_with(&before, 1, &sleep_pid), "ps aux, sleep");
    assert_eq!(line_with(&aux, 1, &sleep_pid), line_with(&after, 1, &sleep_pid), "ps aux, sleep");

    // The busy loop: all but %CPU and TIME, which run on.
    let ours = fields(line_with(&aux, 1, &busy_pid));
    let (b, a) = (fields(line_with(&before, 1, &busy_pid)), fields(line_with(&after, 1, &busy_pid)));
    for i in [0, 1, 3, 4, 5, 6, 7, 8] {
        assert!(ours[i] == b[i] || ours[i] == a[i], "column {i}: {ours:?} vs {b:?} / {a:?}");
    }
    assert_eq!(ours[10..], b[10..], "command");
    let pct = |v: &[&str]| v[2].parse::<f64>().unwrap();
    let (lo, hi) = (pct(&b).min(pct(&a)), pct(&b).max(pct(&a)));
    assert!(pct(&ours) > 10.0, "a busy loop has a visible %CPU: {ours:?}");
    // snap takes "now" as the middle of the processes collector's run: the process was
    // read within half its duration of that, which moves CPU time over life by at most
    // that share of the process's age (plus procps's truncation to 0.1).
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    let ok = Command::new("tar").arg("--zstd").arg("-xf").arg(&bundle).arg("-C").arg(&tree).status().unwrap();
    assert!(ok.success());
    let m: serde_json::Value = serde_json::from_slice(&fs::read(tree.join("manifest.json")).unwrap()).unwrap();
    let collectors = m["collectors"].as_array().unwrap();
    let i = collectors.iter().position(|c| c["name"] == "processes").unwrap();
    let before: f64 = collectors[..i].iter().map(|c| c["duration_us"].as_f64().unwrap()).sum::<f64>() / 1e6;
    let half = collectors[i]["duration_us"].as_f64().unwrap() / 2e6;
    let stat = fs::read_to_string(tree.join(format!("proc/{busy_pid}/stat"))).unwrap();
    let start: f64 = stat.rsplit(')').next().unwrap().split_whitespace().nth(19).unwrap().parse().unwrap();
    let age = m["clocks"]["boottime_ns"].as_f64().unwrap() / 1e9 + before - start / 100.0;
    let slack = 100.0 * half / (age - half) + 0.2;
    assert!(
        pct(&ours) >= lo - slack && pct(&ours) <= hi + slack,
        "%CPU {ours:?} outside {lo}..{hi} +- {slack:.1} (the processes collector ran {:.2} s)",
        2.0 * half
    );

    for (opts, theirs, col) in [("-ef", &ef, 1), ("-eLf", &elf, 1), ("-e", &e, 0)] {
        let ours = show_ok(&bundle, &["ps", opts]);
        assert_eq!(ours.lines().next(), theirs.lines().next(), "ps {opts} header");
        assert_eq!(line_with(&ours, col, &sleep_pid), line_with(theirs, col, &sleep_pid), "ps {opts}, sleep");
    }
    // -eLf: one line per thread of every process, the thread ids in LWP.
    let ours = show_ok(&bundle, &["ps", "-eLf"]);
    let me = std::process::id().to_string();
    let mine: Vec<&str> = ours.lines().filter(|l| l.split_whitespace().nth(1) == Some(&me)).collect();
    let threads = fs::read_dir("/proc/self/task").unwrap().count();
    assert!(mine.len() >= 2 && threads >= 2, "this test binary has threads: {mine:?}");
    assert!(mine.iter().all(|l| l.split_whitespace().nth(5).unwrap().parse::<usize>().unwrap() == mine.len()));
}

/// Connects to `listener` and accepts: (client, server).
fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

#[test]
fn socket_lines_equal_netstat_and_ss() {
    let _one = lock();
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_client, _server) = pair(&listener);
    // CLOSE_WAIT: the peer closed, this end has read the end of stream and holds on.
    let (closing, mut close_wait) = pair(&listener);
    drop(closing);
    close_wait.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(close_wait.read(&mut [0u8; 8]).unwrap(), 0);
    let me = std::process::id();

    let netstat = real("netstat", &["-napo"]);
    let ss = real("ss", &["-tanp"]);
    let bundle = collect_window(dir.path(), "0");
    let ours_netstat = show_ok(&bundle, &["netstat", "-napo"]);
    let ours_ss = show_ok(&bundle, &["ss", "-tanp"]);

    // netstat: the header and every line of this process's TCP sockets.
    assert_eq!(ours_netstat.lines().take(2).collect::<Vec<_>>(), netstat.lines().take(2).collect::<Vec<_>>());
    let owned = |t: &str| -> Vec<String> {
        let mut v: Vec<String> = t
            .lines()
            .filter(|l| l.starts_with("tcp ") && l.contains(&format!(" {me}/")) && l.contains(&format!(":{port} ")))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    let theirs = owned(&netstat);
    assert_eq!(theirs.len(), 4, "listener, the pair's two ends, CLOSE_WAIT:\n{netstat}");
    assert!(theirs.iter().any(|l| l.contains("CLOSE_WAIT")), "{theirs:?}");
    assert_eq!(owned(&ours_netstat), theirs, "netstat -napo lines");
    assert!(ours_netstat.contains("\nActive UNIX domain sockets (servers and established)\n"));

    // ss: field by field, the listener's Send-Q aside.
    let users = format!("pid={me},");
    let owned_ss = |t: &str| -> Vec<Vec<String>> {
        let mut v: Vec<Vec<String>> = t
            .lines()
            .filter(|l| l.contains(&users) && l.contains(&format!(":{port} ")))
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect();
        v.sort();
        v
    };
    let (mut theirs, ours) = (owned_ss(&ss), owned_ss(&ours_ss));
    assert_eq!(theirs.len(), 4, "{ss}");
    for f in theirs.iter_mut().filter(|f| f[0] == "LISTEN") {
        f[2] = "-".into();
    }
    assert_eq!(ours, theirs, "ss -tanp lines");
    assert_eq!(fields(ours_ss.lines().next().unwrap()), fields(ss.lines().next().unwrap()), "ss header");
}

#[test]
fn lsof_output_equals_lsof_for_a_process_holding_files() {
    let _one = lock();
    let dir = tempfile::tempdir().unwrap();
    let regular = dir.path().join("regular.txt");
    fs::write(&regular, "twelve bytes").unwrap();
    let deleted = dir.path().join("deleted.log");
    let holder = spawn(&format!(
        "exec 3<'{}' 4>'{}'; printf 'seventeen bytes!!' >&4; rm '{}'; exec sleep 300",
        regular.display(),
        deleted.display(),
        deleted.display()
    ));
    let pid = holder.0.id().to_string();
    let start = Instant::now();
    while !fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e.ends_with("sleep")) {
        assert!(start.elapsed() < Duration::from_secs(10), "the holder never became sleep");
        std::thread::sleep(Duration::from_millis(20));
    }

    let plain = real("lsof", &["-nP", "-p", &pid]);
    let deleted_only = real("lsof", &["-nP", "-a", "+L1", "-p", &pid]);
    let bundle = collect_window(dir.path(), "0");

    assert!(plain.contains(" 3r ") && plain.contains("regular.txt"), "{plain}");
    assert_eq!(show_ok(&bundle, &["lsof", "-p", &pid]), plain, "lsof -p {pid}");
    assert!(deleted_only.contains("deleted.log (deleted)"), "{deleted_only}");
    assert_eq!(show_ok(&bundle, &["lsof", "-a", "+L1", "-p", &pid]), deleted_only, "lsof +L1 -p {pid}");
    // Unfiltered: the holder's deleted file among every other, with the NLINK column.
    let all = show_ok(&bundle, &["lsof", "+L1"]);
    assert!(all.starts_with("COMMAND ") && all.lines().next().unwrap().contains(" NLINK "), "{all}");
    assert_eq!(fields(line_with(&all, 1, &pid)), fields(deleted_only.lines().nth(1).unwrap()));
    let every = show_ok(&bundle, &["lsof"]);
    assert_eq!(fields(line_with(&every, 1, &pid)), fields(plain.lines().nth(1).unwrap()));
}

#[test]
fn missing_or_unreadable_entries_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("proc/42")).unwrap();
    fs::write(d.join("proc/stat"), "cpu  1 2 3 4\nbtime 1795903307\n").unwrap();
    fs::write(d.join("proc/uptime"), "100.00 50.00\n").unwrap();
    let expect = |args: &[&str], needle: &str| {
        let (code, out, err) = show(d, args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(out.is_empty() && err.contains(needle) && !err.contains("panicked"), "{args:?}: {err}");
    };
    expect(&["ps", "aux"], "proc/meminfo");
    fs::copy("/proc/meminfo", d.join("proc/meminfo")).unwrap();
    fs::write(d.join("proc/42/stat"), "42 (x) S 1 2").unwrap();
    expect(&["ps", "aux"], "proc/42/stat");
    fs::write(d.join("proc/42/stat"), "42 (x) S 1 42 42 0 -1 0 0 0 0 0 5 5 0 0 20 0 1 0 100 0 0").unwrap();
    fs::write(d.join("proc/42/status"), "Name:\tx\nUid:\t0\t0\t0\t0\nVmRSS:\t 100 kB\n").unwrap();
    let ok = show_ok(d, &["ps", "aux"]);
    assert!(ok.lines().nth(1).unwrap().contains(" 42 "), "{ok}");
    expect(&["ps", "-eLf"], "proc/42/task/");
    expect(&["netstat", "-napo"], "proc/net/tcp");
    expect(&["ss", "-tanp"], "proc/net/tcp");
    expect(&["lsof"], "scan/open_files.jsonl");
    fs::create_dir_all(d.join("proc/net")).unwrap();
    let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
    fs::write(d.join("proc/net/tcp"), format!("{header}   0: garbage\n")).unwrap();
    fs::write(d.join("proc/net/udp"), header).unwrap();
    fs::write(d.join("proc/net/unix"), "Num       RefCount Protocol Flags    Type St Inode Path\n").unwrap();
    expect(&["netstat", "-nat"], "proc/net/tcp: line 2");
    fs::write(d.join("proc/net/tcp"), header).unwrap();
    expect(&["netstat", "-napo"], "scan/sockets.jsonl");
    fs::create_dir_all(d.join("scan")).unwrap();
    fs::write(d.join("scan/open_files.jsonl"), "{\"pid\":1,\n").unwrap();
    expect(&["lsof"], "scan/open_files.jsonl");
    // Unknown options are usage errors.
    for (args, needle) in [
        (&["ps", "-Z"][..], "unknown option -Z"),
        (&["ps", "axjf"], "only `aux`"),
        (&["netstat", "-q"], "unknown option -q"),
        (&["ss", "-z"], "unknown option -z"),
        (&["lsof", "-x"], "unknown option"),
    ] {
        expect(args, needle);
    }
}

/// `netstat -s` reads /proc/net/snmp and /proc/net/netstat (and /proc/net/sctp/snmp,
/// absent here): with the bundle's copies bind-mounted over /proc in a private mount
/// namespace, the real net-tools prints exactly what snap replays, for every protocol
/// selection.
#[test]
fn netstat_statistics_equal_net_tools_on_the_bundles_counters() {
    let _one = lock();
    let dir = tempfile::tempdir().unwrap();
    let bundle = collect_window(dir.path(), "0");
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    assert!(Command::new("tar").arg("--zstd").arg("-xf").arg(&bundle).arg("-C").arg(&tree).status().unwrap().success());
    let proc_dir = tree.join("proc");
    assert!(!proc_dir.join("net/sctp/snmp").exists());
    for opts in ["-s", "-st", "-su", "-sw", "-s -t -u"] {
        let theirs = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!("set -e; mount --bind '{}' /proc; netstat {opts}", proc_dir.display()))
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        assert!(theirs.status.success(), "netstat {opts}: {}", String::from_utf8_lossy(&theirs.stderr));
        let mut args = vec!["netstat"];
        args.extend(opts.split(' '));
        let ours = show_ok(&bundle, &args);
        assert_eq!(ours, String::from_utf8(theirs.stdout).unwrap(), "netstat {opts}");
        assert!(ours.contains("Tcp:\n") || !opts.contains('t') && opts != "-s", "{ours}");
    }
    // Named when missing; -s with -x is not a statistics selection.
    let (code, out, err) = show(dir.path(), &["netstat", "-s"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("proc/net/snmp") && out.is_empty(), "{err}");
    let (code, _, _) = show(&bundle, &["netstat", "-sx"]);
    assert_eq!(code, Some(2));
}
