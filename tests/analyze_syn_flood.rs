//! Scenario tests for `kernel.syn_flood`, `net.listen_overflow` and `net.retransmits`:
//! real SYN floods and real packet loss between two network namespaces joined by a veth
//! pair, which this test creates (and deletes in a Drop guard, even when it fails).
//! Client and server run on threads of this test process that entered the namespace
//! (setns is per thread); `snap collect` runs inside a namespace with `ip netns exec`,
//! so the /proc/net counters and sockets it records are that namespace's alone. Needs
//! root; nothing leaves the namespaces.
//!
//! The SYN flood: a listener with backlog 1 and TCP_DEFER_ACCEPT that never accepts, in
//! a namespace with tcp_syncookies=1. Deferred connections stay in the SYN queue as
//! request sockets, so the next SYN finds the queue full and the kernel logs "Possible
//! SYN flooding on port ADDR:P. Sending cookies." (once per listener: each run uses a
//! fresh namespace and a port derived from the test's pid). Bursts of non-blocking
//! connects from the client namespace keep the queues overflowing while snap collects.
//!
//! The loss: netem is not always built into the kernel (it is not on the CI VM), so the
//! server drops one in five incoming segments with a classic BPF socket filter (`ld
//! rand; mod #5`) attached to the accepted socket: for the client's TCP that is 20 %
//! loss on the path, and it retransmits.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use snap_bundle::Bundle;

mod common;
use common::netns::{in_netns, is_root, run_ok, Pair, StopOnDrop};
use common::{analyze_json, findings};

/// One scenario at a time: each has its own namespaces, but two collections with
/// traffic at once on a 2-CPU machine would blur the windows.
static SERIAL: Mutex<()> = Mutex::new(());

/// How long any one step may take before the test gives up.
const STEP: Duration = Duration::from_secs(10);
/// Traffic runs until the collection is over; this only bounds it if the test dies
/// without saying stop.
const TRAFFIC_CAP: Duration = Duration::from_secs(120);

/// `snap collect` inside namespace `ns` with a 2-second window; the bundle's path.
/// `--no-nice`: at nice 19 on a busy box the window could start after the traffic ends.
fn collect_in(ns: &str, dir: &Path) -> PathBuf {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_snap")])
        .args(["collect", "--window", "2", "--interval", "1", "--no-capture", "--no-nice", "--quiet", "-o"])
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "collect failed: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().lines().last().unwrap())
}

fn text(bundle: &Bundle, entry: &str) -> String {
    String::from_utf8(bundle.read(entry).unwrap().unwrap_or_else(|| panic!("no {entry}"))).unwrap()
}

/// A counter of a `/proc/net/{snmp,netstat}` text, parsed here independently of snap.
fn counter(text: &str, group: &str, name: &str) -> u64 {
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&format!("{group}:"))).collect();
    let names: Vec<&str> = lines[0].split_whitespace().collect();
    let values: Vec<&str> = lines[1].split_whitespace().collect();
    values[names.iter().position(|n| *n == name).unwrap_or_else(|| panic!("no {group} {name}"))].parse().unwrap()
}

/// The increase of a counter between the bundle's first and last samples.
fn window_delta(bundle: &Bundle, file: &str, group: &str, name: &str) -> u64 {
    let samples = &bundle.manifest().unwrap().samples;
    assert!(samples.len() >= 2, "a window of samples: {samples:?}");
    let (a, b) = (samples.first().unwrap().index, samples.last().unwrap().index);
    let v = |i: usize| counter(&text(bundle, &format!("samples/{i}/proc/net/{file}")), group, name);
    v(b) - v(a)
}

fn dmesg_has(needle: &str) -> bool {
    run_ok(&["dmesg"]).lines().any(|l| l.contains(needle))
}

// ---- the SYN flood ----

/// A listener on `ip:port` with backlog 1 and TCP_DEFER_ACCEPT, created inside the
/// server namespace; it is never accepted from.
fn deferring_listener(ns: &str, ip: Ipv4Addr, port: u16) -> TcpListener {
    in_netns(ns, move || {
        let l = TcpListener::bind((ip, port)).unwrap_or_else(|e| panic!("bind {ip}:{port}: {e}"));
        let fd = l.as_raw_fd();
        let secs: libc::c_int = 30;
        // SAFETY: fd is a valid listening socket owned by `l`; the option value is a
        // c_int that outlives the call.
        unsafe {
            assert_eq!(libc::listen(fd, 1), 0, "listen");
            let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            let value = &secs as *const libc::c_int as *const libc::c_void;
            assert_eq!(libc::setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, value, size), 0);
        }
        l
    })
    .join()
    .unwrap()
}

/// One non-blocking connect to `to`; the socket (its SYN is on its way).
fn syn(to: SocketAddrV4) -> OwnedFd {
    // SAFETY: plain socket/connect calls on a descriptor this function owns; the address
    // is a properly initialised sockaddr_in that outlives the call.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: to.port().to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(*to.ip()).to_be() },
            sin_zero: [0; 8],
        };
        let r = libc::connect(
            fd,
            &sa as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        let err = std::io::Error::last_os_error();
        assert!(r == 0 || err.raw_os_error() == Some(libc::EINPROGRESS), "connect: {err}");
        OwnedFd::from_raw_fd(fd)
    }
}

/// Bursts of 50 connects every 100 ms from the client namespace until `stop` (at most
/// [`TRAFFIC_CAP`], at most 600 sockets open at once); the number of connects made.
fn flood(ns: &str, to: SocketAddrV4, stop: Arc<AtomicBool>) -> JoinHandle<usize> {
    in_netns(ns, move || {
        let (start, mut open, mut made) = (Instant::now(), std::collections::VecDeque::new(), 0);
        while !stop.load(Ordering::Relaxed) && start.elapsed() < TRAFFIC_CAP {
            for _ in 0..50 {
                open.push_back(syn(to));
                made += 1;
                if open.len() > 600 {
                    open.pop_front();
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        made
    })
}

#[test]
fn syn_flood_on_a_tiny_backlog_is_logged_counted_and_attributed_to_its_port() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    let port = 20000 + (pid % 20000) as u16;
    let subject = format!(":{port}");
    let pair = Pair::new("synf", [10, 213, 1]);
    Pair::sysctl(&pair.server, "net.ipv4.tcp_syncookies=1");
    Pair::sysctl(&pair.server, "net.ipv4.tcp_max_syn_backlog=16");
    Pair::sysctl(&pair.server, "net.core.somaxconn=4");
    let dir = tempfile::tempdir().unwrap();

    // The fresh, idle server namespace: neither rule has anything to say about it.
    let idle = analyze_json(&collect_in(&pair.server, dir.path()));
    assert!(
        findings(&idle, "kernel.syn_flood")
            .iter()
            .all(|f| f["subject"] != subject.as_str() && f["subject"] != "all ports"),
        "{idle:#}"
    );
    assert_eq!(findings(&idle, "net.listen_overflow"), Vec::<&Value>::new(), "{idle:#}");
    assert_eq!(idle["rules"]["net.listen_overflow"], "passed");
    assert!(matches!(idle["rules"]["kernel.syn_flood"].as_str(), Some("passed" | "fired")), "{idle:#}");

    // The flood, kept going while snap collects in the server namespace.
    let listener = deferring_listener(&pair.server, pair.server_ip(), port);
    let stop = Arc::new(AtomicBool::new(false));
    let guard = StopOnDrop(stop.clone());
    let flooder = flood(&pair.client, SocketAddrV4::new(pair.server_ip(), port), stop);
    let needle = format!("Possible SYN flooding on port {}:{port}.", pair.server_ip());
    let start = Instant::now();
    while !dmesg_has(&needle) {
        assert!(start.elapsed() < STEP, "the kernel did not log {needle:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let path = collect_in(&pair.server, dir.path());
    drop(guard);
    let made = flooder.join().unwrap();
    eprintln!("{made} connects");
    let report = analyze_json(&path);
    let bundle = Bundle::open(&path).unwrap();

    // kernel.syn_flood: critical for the port, with the bundle's own numbers.
    let found = findings(&report, "kernel.syn_flood");
    let f =
        found.iter().find(|f| f["subject"] == subject.as_str()).unwrap_or_else(|| panic!("no {subject}: {report:#}"));
    let logged = text(&bundle, "kernel/kmsg.txt").lines().filter(|l| l.contains(&needle)).count();
    assert!(logged >= 1, "the message is in the bundle's kernel log");
    assert_eq!(f["severity"], "critical", "{f:#}");
    assert_eq!(f["facts"]["count"], logged, "{f:#}");
    assert_eq!(f["facts"]["port"], port);
    assert_eq!(f["facts"]["addresses"][0], pair.server_ip().to_string());
    assert_eq!(f["facts"]["actions"]["Sending cookies"], logged);
    assert_eq!(f["facts"]["tcp_syncookies"], 1);
    assert_eq!(f["facts"]["tcp_max_syn_backlog"], 16);
    assert_eq!(f["facts"]["somaxconn"], 4);
    assert_eq!(f["facts"]["counters_scope"], "window");
    for name in ["SyncookiesSent", "SyncookiesRecv", "TCPReqQFullDoCookies", "ListenOverflows", "ListenDrops"] {
        assert_eq!(f["facts"]["counters"][name], window_delta(&bundle, "netstat", "TcpExt", name), "{name}: {f:#}");
    }
    let overflows = window_delta(&bundle, "netstat", "TcpExt", "ListenOverflows");
    assert!(overflows > 0, "the accept queue overflowed in the window: {f:#}");
    let syn_recv = text(&bundle, "scan/sockets.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|s| s["local_port"] == port && matches!(s["state"].as_str(), Some("SYN_RECV" | "NEW_SYN_RECV")))
        .count();
    assert!(syn_recv >= 1, "deferred connections are half-open");
    assert_eq!(f["facts"]["syn_recv"], syn_recv, "{f:#}");
    assert!(
        f["summary"].as_str().unwrap().starts_with(&format!("kernel logged possible SYN flooding on port {port} ")),
        "{f:#}"
    );

    // net.listen_overflow: the namespace's overflows, attributed to the listener whose
    // accept queue holds connections (backlog 1: two).
    let found = findings(&report, "net.listen_overflow");
    let f =
        found.iter().find(|f| f["subject"] == subject.as_str()).unwrap_or_else(|| panic!("no {subject}: {report:#}"));
    assert!(matches!(f["severity"].as_str(), Some("warning" | "critical")), "{f:#}");
    assert_eq!(f["facts"]["listen_overflows"], overflows, "{f:#}");
    assert_eq!(f["facts"]["listen_drops"], window_delta(&bundle, "netstat", "TcpExt", "ListenDrops"));
    assert_eq!(f["facts"]["accept_queue"], 2, "backlog 1 holds 2 connections: {f:#}");
    assert_eq!(f["facts"]["owners"][0]["pid"], pid);
    drop(listener);

    // The same kernel log seen from the client namespace, which does not hold the
    // listener's address: the finding says its figures are not that listener's.
    let server_side = findings(&report, "kernel.syn_flood");
    let f = server_side.iter().find(|f| f["subject"] == subject.as_str()).unwrap();
    assert!(f["facts"].get("other_namespace").is_none(), "the listener is in the collected namespace: {f:#}");
    let client = analyze_json(&collect_in(&pair.client, dir.path()));
    let found = findings(&client, "kernel.syn_flood");
    let f = found.iter().find(|f| f["subject"] == subject.as_str()).unwrap_or_else(|| panic!("{client:#}"));
    assert_eq!(f["facts"]["other_namespace"], true, "{f:#}");
    let note = format!("{} is not an address of the collected network namespace", pair.server_ip());
    assert!(f["summary"].as_str().unwrap().contains(&note), "{f:#}");
}

// ---- retransmissions ----

/// Drops one in five packets arriving for `sock` (a classic BPF socket filter on the
/// kernel's random number): 20 % loss for the peer.
fn drop_one_in_five(sock: &TcpStream) {
    const SKF_AD_RANDOM: u32 = 56;
    let prog = [
        libc::sock_filter { code: 0x20, jt: 0, jf: 0, k: (libc::SKF_AD_OFF as u32).wrapping_add(SKF_AD_RANDOM) }, // ld rand
        libc::sock_filter { code: 0x94, jt: 0, jf: 0, k: 5 }, // mod #5
        libc::sock_filter { code: 0x15, jt: 0, jf: 1, k: 0 }, // jeq #0
        libc::sock_filter { code: 0x06, jt: 0, jf: 0, k: 0 }, // ret #0: drop
        libc::sock_filter { code: 0x06, jt: 0, jf: 0, k: u32::MAX }, // ret: keep
    ];
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr() as *mut libc::sock_filter };
    // SAFETY: the socket is open; fprog points at `prog`, which outlives the call (the
    // kernel copies the program).
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &fprog as *const libc::sock_fprog as *const libc::c_void,
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_ATTACH_FILTER: {}", std::io::Error::last_os_error());
}

/// A bulk transfer from the client namespace to a sink in the server namespace (about
/// 30 MB/s, until `stop`, at most [`TRAFFIC_CAP`]), with `lossy` 20 % of the segments dropped on
/// arrival; returns once the connection is up.
fn transfer(pair: &Pair, port: u16, lossy: bool, stop: Arc<AtomicBool>) -> (JoinHandle<u64>, JoinHandle<u64>) {
    let ip = pair.server_ip();
    let listener = in_netns(&pair.server, move || TcpListener::bind((ip, port)).unwrap()).join().unwrap();
    let sink_stop = stop.clone();
    let sink = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        if lossy {
            drop_one_in_five(&s);
        }
        s.set_read_timeout(Some(STEP)).unwrap();
        let (mut buf, mut got) = (vec![0u8; 1 << 16], 0u64);
        // Read until the sender closes. A pause longer than STEP is no end: with one
        // segment in five dropped, retransmission timeouts back off past a second.
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got += n as u64,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    if sink_stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        got
    });
    let sender = in_netns(&pair.client, move || {
        let mut s = TcpStream::connect((ip, port)).unwrap();
        s.set_write_timeout(Some(STEP)).unwrap();
        let (chunk, start, mut sent) = (vec![b'x'; 1 << 16], Instant::now(), 0u64);
        while !stop.load(Ordering::Relaxed) && start.elapsed() < TRAFFIC_CAP {
            match s.write(&chunk) {
                Ok(n) => sent += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("write: {e}"),
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        sent
    });
    (sender, sink)
}

/// Collects in the client namespace during a transfer; the report and the bundle.
fn collect_during_transfer(tag: &str, net: u8, lossy: bool) -> (Value, Bundle, tempfile::TempDir) {
    let pair = Pair::new(tag, [10, 213, net]);
    let stop = Arc::new(AtomicBool::new(false));
    let guard = StopOnDrop(stop.clone());
    // Four connections: under 20 % loss one connection spends much of its time in
    // retransmission timeouts, and the rule wants 1,000 segments in the window.
    let transfers: Vec<_> = (0..4).map(|i| transfer(&pair, 5201 + i, lossy, stop.clone())).collect();
    std::thread::sleep(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let path = collect_in(&pair.client, dir.path());
    drop(guard);
    let (mut sent, mut got) = (0, 0);
    for (sender, sink) in transfers {
        sent += sender.join().unwrap();
        got += sink.join().unwrap();
    }
    eprintln!("lossy {lossy}: sent {sent} bytes, received {got}");
    let report = analyze_json(&path);
    let bundle = Bundle::open(&path).unwrap();
    drop(pair);
    (report, bundle, dir)
}

#[test]
fn retransmissions_under_20_percent_loss_are_rated_and_quiet_without_loss() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());

    let (report, bundle, _dir) = collect_during_transfer("synr", 2, true);
    let out = window_delta(&bundle, "snmp", "Tcp", "OutSegs");
    let retrans = window_delta(&bundle, "snmp", "Tcp", "RetransSegs");
    let found = findings(&report, "net.retransmits");
    assert_eq!(found.len(), 1, "{report:#}");
    let f = found[0];
    assert_eq!(f["subject"], "tcp");
    assert_eq!(f["facts"]["out_segs"], out, "{f:#}");
    assert_eq!(f["facts"]["retrans_segs"], retrans, "{f:#}");
    let percent = f["facts"]["retrans_percent"].as_f64().unwrap();
    assert!((percent - retrans as f64 * 100.0 / out as f64).abs() < 0.01, "{f:#}");
    assert!(percent > 2.0, "{f:#}");
    let expected = if percent >= 10.0 { "critical" } else { "warning" };
    assert_eq!(f["severity"], expected, "{f:#}");
    assert_eq!(f["facts"]["tcpext"]["TCPTimeouts"], window_delta(&bundle, "netstat", "TcpExt", "TCPTimeouts"), "{f:#}");

    // Without loss: a veth drops nothing, but a starved receiver on a loaded box can
    // still earn a spurious timeout or a tail-loss probe (CI once saw 1), so the share
    // is held far under the rule's 2 % rather than to zero.
    let (report, bundle, _dir) = collect_during_transfer("synq", 3, false);
    let out = window_delta(&bundle, "snmp", "Tcp", "OutSegs");
    let retrans = window_delta(&bundle, "snmp", "Tcp", "RetransSegs");
    assert!(out >= 1000, "enough traffic to judge: {out} segments");
    assert!(retrans * 200 < out, "a lossless link retransmitted {retrans} of {out} segments (0.5 % or more)");
    assert_eq!(report["rules"]["net.retransmits"], "passed", "{report:#}");
}
