//! Scenario tests for the socket-state rules of `snap analyze`: this test process makes
//! TCP connections on 127.0.0.1 end in CLOSE_WAIT, TIME_WAIT (either side closing first)
//! or SYN_RECV (a TCP_DEFER_ACCEPT listener), runs `snap collect` and
//! `snap analyze --format json`, and checks the finding, its subject and its numbers,
//! and that the rule is quiet for the test's subject when the condition is absent.
//! Needs root (to see every process's descriptors).

mod common;

use common::{analyze_json, collect};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The tests share this process's sockets: one runs at a time, so that one test's
/// transient CLOSE_WAIT sockets do not show in the other's count.
static SERIAL: Mutex<()> = Mutex::new(());

/// Collects and analyzes this host now; the findings of `rule` by subject.
fn findings_now(rule: &str) -> (Value, BTreeMap<String, Value>) {
    let dir = tempfile::tempdir().unwrap();
    let report = analyze_json(&collect(dir.path()));
    let found = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .map(|f| (f["subject"].as_str().unwrap().to_string(), f.clone()))
        .collect();
    assert!(
        matches!(report["rules"][rule].as_str(), Some("fired" | "passed")),
        "{rule} was evaluated: {}",
        report["rules"][rule]
    );
    (report, found)
}

/// This process's name as the scan records it (the Name line of /proc/self/status).
fn my_program() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().find_map(|l| l.strip_prefix("Name:")).unwrap().trim().to_string()
}

/// TCP sockets in /proc/net/tcp with this state (hex, as the kernel prints it) and
/// local (`local` true) or remote port.
fn count_tcp(state: &str, port: u16, local: bool) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[3] == state && f[if local { 1 } else { 2 }].ends_with(&port)
        })
        .count()
}

fn wait_for(what: &str, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads until end of stream (the peer's FIN).
fn read_eof(s: &mut TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).unwrap(), 0, "end of stream");
}

#[test]
fn close_wait_sockets_are_found_per_process_and_gone_after_close() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let subject = format!("pid {} ({})", std::process::id(), my_program());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();

    // 30 clients connect and close; the server reads their FIN and keeps its sockets.
    let mut held = Vec::new();
    for _ in 0..30 {
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        drop(client);
        read_eof(&mut server);
        held.push(server);
    }
    assert_eq!(count_tcp("08", port, true), 30, "30 sockets in CLOSE_WAIT");

    let (report, found) = findings_now("net.close_wait");
    let f = found.get(&subject).unwrap_or_else(|| panic!("no net.close_wait for {subject}: {report:#}"));
    assert_eq!(f["severity"], "warning", "{f:#}");
    assert_eq!(f["facts"]["count"], 30, "{f:#}");
    assert_eq!(f["facts"]["by_local_port"][port.to_string()], 30, "{f:#}");
    assert_eq!(f["facts"]["peers"], 30, "each client had its own port: {f:#}");
    assert_eq!(f["facts"]["recv_q_bytes"], 0, "{f:#}");
    assert_eq!(f["facts"]["pid"], std::process::id());
    assert!(f["facts"]["open_fds"].as_u64().unwrap() > 30, "{f:#}");
    assert!(f["summary"].as_str().unwrap().starts_with(&format!("30 TCP sockets in CLOSE_WAIT held by {subject}")));
    assert_eq!(report["rules"]["net.close_wait"], "fired");

    // Once the application closes them, nothing is reported for it.
    drop(held);
    wait_for("the CLOSE_WAIT sockets to close", || count_tcp("08", port, true) == 0);
    let (report, found) = findings_now("net.close_wait");
    assert!(!found.contains_key(&subject), "{report:#}");
    drop(listener);
}

#[test]
fn time_wait_on_a_server_port_says_the_server_closes_first() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let subject = format!(":{port}");

    // Quiet before any connection.
    let (report, found) = findings_now("net.time_wait");
    assert!(!found.contains_key(&subject), "{report:#}");

    // 1,200 connections that the server closes first: its side ends in TIME_WAIT.
    for _ in 0..1200 {
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (server, _) = listener.accept().unwrap();
        drop(server);
        read_eof(&mut client);
    }
    wait_for("1200 TIME_WAIT sockets on the server port", || count_tcp("06", port, true) >= 1200);

    let (report, found) = findings_now("net.time_wait");
    let f = found.get(&subject).unwrap_or_else(|| panic!("no net.time_wait for {subject}: {report:#}"));
    assert!(f["facts"]["count"].as_u64().unwrap() >= 1200, "{f:#}");
    assert_eq!(f["facts"]["closing_side"], "server", "{f:#}");
    assert_eq!(f["facts"]["local_port"], port);
    assert_eq!(f["facts"]["listening"], true);
    assert_eq!(f["facts"]["by_client"]["127.0.0.1"], f["facts"]["count"]);
    assert_eq!(f["severity"], "warning");
    assert!(f["summary"].as_str().unwrap().contains("the server closes connections first"), "{f:#}");
    // The clients closed second: no TIME_WAIT is attributed to them as a client.
    assert!(!found.contains_key(&format!("peer 127.0.0.1:{port}")), "{report:#}");
    drop(listener);
}

#[test]
fn time_wait_toward_a_peer_says_this_host_closes_first_as_client() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let subject = format!("peer 127.0.0.1:{port}");

    // 1,200 connections that the client closes first: the TIME_WAIT is on the client's
    // ephemeral ports, toward the server's port.
    for _ in 0..1200 {
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        drop(client);
        read_eof(&mut server);
    }
    wait_for("1200 TIME_WAIT sockets toward the server port", || count_tcp("06", port, false) >= 1200);

    let (report, found) = findings_now("net.time_wait");
    let f = found.get(&subject).unwrap_or_else(|| panic!("no net.time_wait for {subject}: {report:#}"));
    assert!(f["facts"]["count"].as_u64().unwrap() >= 1200, "{f:#}");
    assert_eq!(f["facts"]["closing_side"], "client", "{f:#}");
    assert!(f["summary"].as_str().unwrap().contains("this host, as client, closes its connections first"), "{f:#}");
    if Path::new("/proc/sys/net/ipv4/ip_local_port_range").exists() {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
        let r: Vec<u64> = range.split_whitespace().map(|w| w.parse().unwrap()).collect();
        assert_eq!(f["facts"]["ephemeral_ports"], r[1] - r[0] + 1, "{f:#}");
    }
    // The server closed second: its port has no TIME_WAIT finding.
    assert!(!found.contains_key(&format!(":{port}")), "{report:#}");
    drop(listener);
}

/// A listener with TCP_DEFER_ACCEPT and a backlog of 1024: the kernel keeps each
/// connection whose handshake completed without data as a request socket in SYN_RECV
/// (it drops the bare final ACK and waits for data), which is exactly what a listener
/// that never receives the final ACK shows. A real SYN flood needs spoofed packets; this
/// gives the same socket table with ordinary connects on loopback.
fn deferring_listener() -> TcpListener {
    use std::os::fd::AsRawFd;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let fd = listener.as_raw_fd();
    let secs: libc::c_int = 30;
    // SAFETY: fd is a valid listening socket owned by `listener`; the option value is
    // a c_int that outlives the call.
    unsafe {
        assert_eq!(libc::listen(fd, 1024), 0, "listen");
        let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let value = &secs as *const libc::c_int as *const libc::c_void;
        assert_eq!(libc::setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, value, size), 0);
    }
    listener
}

#[test]
fn half_open_connections_are_counted_per_port_with_the_listener() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let listener = deferring_listener();
    let port = listener.local_addr().unwrap().port();
    let subject = format!(":{port}");
    let program = my_program();

    let (report, found) = findings_now("net.syn_recv");
    assert!(!found.contains_key(&subject), "quiet before any connection: {report:#}");

    // 150 clients complete the handshake and send nothing: 150 SYN_RECV on the port.
    let clients: Vec<TcpStream> = (0..150).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    wait_for("150 SYN_RECV sockets", || count_tcp("03", port, true) == 150);

    let (report, found) = findings_now("net.syn_recv");
    let f = found.get(&subject).unwrap_or_else(|| panic!("no net.syn_recv for {subject}: {report:#}"));
    assert_eq!(f["severity"], "warning", "{f:#}");
    assert_eq!(f["facts"]["count"], 150, "{f:#}");
    assert_eq!(f["facts"]["local_port"], port);
    assert_eq!(f["facts"]["sources"], 1, "all from 127.0.0.1: {f:#}");
    assert_eq!(f["facts"]["by_source"]["127.0.0.1"], 150);
    assert_eq!(f["facts"]["accept_queue"], 0, "nothing reached the accept queue: {f:#}");
    let owner = &f["facts"]["listeners"][0]["owners"][0];
    assert_eq!((owner["pid"].as_u64(), owner["program"].as_str()), (Some(std::process::id() as u64), Some(&*program)));
    assert!(f["summary"]
        .as_str()
        .unwrap()
        .starts_with(&format!("150 half-open connections (SYN_RECV) on port {port}")));

    // Closing the listener drops its pending requests: quiet again.
    drop(listener);
    wait_for("the SYN_RECV sockets to go", || count_tcp("03", port, true) == 0);
    let (report, found) = findings_now("net.syn_recv");
    assert!(!found.contains_key(&subject), "{report:#}");
    drop(clients);
}
