//! Scenario tests for the packet rules (`tcp.*`): real connections between two network
//! namespaces this test creates, captured by `snap collect` running in the client's
//! namespace, then `snap analyze`. Needs root; nothing leaves the namespaces.
//!
//! The kernel here has no netem, so the conditions are made by the applications and by
//! nftables rules inside the server's namespace:
//!
//! | port | scenario | expected rule |
//! |---|---|---|
//! | 7001 | the server answers after 5 s; the client's read timeout is 3 s, then it closes | `tcp.read_timeout` |
//! | 7002 | a bulk upload with one in five segments dropped on arrival (nft `numgen random`) | `tcp.retransmission` |
//! | 7003 | the server closes connections idle for 1 s; the client reuses them after 2 s | `tcp.idle_close`, `tcp.reset` |
//! | 7004 | SYNs to the port are dropped (nft); the client gives up after 3.5 s | `tcp.connect_timeout` |
//!
//! All four run during one capture; a second run with the same traffic minus the faults
//! (answers at once, no loss, no idle reuse, an open port) must leave every `tcp.*` rule
//! quiet.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::netns::{in_netns, is_root, Pair, Snap, StopOnDrop};
use common::{analyze_json, findings};

const SLOW: u16 = 7001;
const BULK: u16 = 7002;
const KEEPALIVE: u16 = 7003;
const BLACKHOLE: u16 = 7004;

/// The server's think time on SLOW, and the client's read timeout.
const SERVER_TIME: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// The server's keep-alive timeout on KEEPALIVE, and how long the client leaves a
/// connection idle before reusing it.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(1);
const CLIENT_IDLE: Duration = Duration::from_secs(2);
/// Keep-alive connections the client makes (a "consistent idle time" needs several).
const KEEPALIVE_CONNS: usize = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3500);

/// Whether the run has the faults, or is the healthy control.
#[derive(Clone, Copy, PartialEq)]
enum Run {
    Faulty,
    Healthy,
}

/// Servers for the four ports in the server namespace; they run until `stop`.
fn servers(ns: &str, ip: Ipv4Addr, run: Run, stop: Arc<AtomicBool>) -> Vec<JoinHandle<()>> {
    let listen = |port: u16| {
        let l = in_netns(ns, move || TcpListener::bind((ip, port)).unwrap()).join().unwrap();
        l.set_nonblocking(true).unwrap();
        l
    };
    let accept_loop = |l: TcpListener, stop: Arc<AtomicBool>, serve: fn(TcpStream, Run)| {
        std::thread::spawn(move || {
            let mut handlers = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        handlers.push(std::thread::spawn(move || serve(s, run)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            for h in handlers {
                let _ = h.join();
            }
        })
    };
    let mut out = Vec::new();
    out.push(accept_loop(listen(SLOW), Arc::clone(&stop), |mut s, run| {
        let mut line = String::new();
        let _ = BufReader::new(s.try_clone().unwrap()).read_line(&mut line);
        if run == Run::Faulty {
            std::thread::sleep(SERVER_TIME);
        }
        let _ = s.write_all(b"HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nslow\n");
    }));
    out.push(accept_loop(listen(BULK), Arc::clone(&stop), |mut s, _| {
        let mut buf = vec![0u8; 1 << 16];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    }));
    out.push(accept_loop(listen(KEEPALIVE), Arc::clone(&stop), |s, _| {
        // A keep-alive server: answers each request line, closes after an idle second.
        s.set_read_timeout(Some(KEEPALIVE_TIMEOUT)).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(n) if n > 0 => {
                    let _ = w.write_all(b"ok\n");
                }
                _ => break, // idle timeout or the client closed: close
            }
        }
    }));
    if run == Run::Healthy {
        // The healthy run has a listener on the port that is black-holed in the faulty one.
        out.push(accept_loop(listen(BLACKHOLE), stop, |_, _| {}));
    }
    out
}

/// What the clients saw, to compare with what snap reports.
#[derive(Debug, Default)]
struct Seen {
    read_timeouts: usize,
    connect_timeouts: usize,
    resets_on_reuse: usize,
    uploaded: u64,
}

/// The clients in the client namespace; returns once all are done (at most ~10 s).
fn clients(ns: &str, server: Ipv4Addr, run: Run) -> Seen {
    let slow = in_netns(ns, move || {
        let mut s = TcpStream::connect((server, SLOW)).unwrap();
        s.write_all(b"GET /slow HTTP/1.0\r\n\r\n").unwrap();
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let mut buf = [0u8; 256];
        let timed_out = matches!(s.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut);
        drop(s); // FIN while the server is still thinking
        timed_out as usize
    });
    let bulk = in_netns(ns, move || {
        let mut s = TcpStream::connect((server, BULK)).unwrap();
        let chunk = vec![b'x'; 16 << 10];
        let started = Instant::now();
        let mut sent = 0u64;
        // At most ~8 MB/s: a full-speed upload can outrun the sink's reads and draw zero
        // windows, a finding of its own that this scenario is not about.
        while started.elapsed() < Duration::from_secs(3) {
            s.write_all(&chunk).unwrap();
            sent += chunk.len() as u64;
            std::thread::sleep(Duration::from_millis(2));
        }
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let _ = s.read(&mut [0u8; 1]);
        sent
    });
    let keepalive: Vec<JoinHandle<bool>> = (0..KEEPALIVE_CONNS)
        .map(|i| {
            in_netns(ns, move || {
                std::thread::sleep(Duration::from_millis(150 * i as u64));
                let s = TcpStream::connect((server, KEEPALIVE)).unwrap();
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                let mut line = String::new();
                w.write_all(b"GET /1\n").unwrap();
                r.read_line(&mut line).unwrap();
                let idle = if run == Run::Faulty { CLIENT_IDLE } else { KEEPALIVE_TIMEOUT / 4 };
                std::thread::sleep(idle);
                // Reuse: on the faulty run the server closed it meanwhile, so the request
                // meets a closed socket and the server's kernel answers with a reset.
                let _ = w.write_all(b"GET /2\n");
                line.clear();
                match r.read_line(&mut line) {
                    Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
                    Ok(0) => {
                        // FIN already read: a second write draws the reset.
                        std::thread::sleep(Duration::from_millis(100));
                        w.write_all(b"GET /3\n").is_err()
                    }
                    Ok(_) => false,
                }
            })
        })
        .collect();
    let connect = in_netns(ns, move || {
        let to = SocketAddr::from((server, BLACKHOLE));
        match TcpStream::connect_timeout(&to, CONNECT_TIMEOUT) {
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => 1,
            _ => 0,
        }
    });
    Seen {
        read_timeouts: slow.join().unwrap(),
        uploaded: bulk.join().unwrap(),
        resets_on_reuse: keepalive.into_iter().map(|h| h.join().unwrap() as usize).sum(),
        connect_timeouts: connect.join().unwrap(),
    }
}

/// Sets up the namespaces and the faults, runs the traffic while snap collects in the
/// client namespace; the report, the bundle path, and what the clients saw.
fn scenario(tag: &str, net: u8, run: Run) -> (Value, PathBuf, Seen, tempfile::TempDir) {
    let pair = Pair::new(tag, [10, 214, net]);
    if run == Run::Faulty {
        Pair::nft(
            &pair.server,
            &format!(
                "table inet snaptest {{\n\
                   chain input {{\n\
                     type filter hook input priority 0; policy accept;\n\
                     tcp dport {BLACKHOLE} tcp flags & (syn|ack) == syn drop\n\
                     tcp dport {BULK} numgen random mod 5 == 0 drop\n\
                   }}\n\
                 }}\n"
            ),
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let guard = StopOnDrop(Arc::clone(&stop));
    let srv = servers(&pair.server, pair.server_ip(), run, Arc::clone(&stop));
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("ip");
    // --no-nice: the traffic is timed against the window, which nice 19 on a busy box
    // could delay.
    cmd.args(["netns", "exec", &pair.client, env!("CARGO_BIN_EXE_snap"), "collect", "--quiet", "--no-nice"])
        .args(["--window", "10", "--interval", "1", "--capture-seconds", "10", "-o"])
        .arg(dir.path());
    let mut snap = Snap::spawn(cmd);
    snap.wait_for_capture();
    let seen = clients(&pair.client, pair.server_ip(), run);
    let finished = snap.finish();
    assert_eq!(finished.code, Some(0), "collect failed: {}", finished.stderr);
    drop(guard);
    for h in srv {
        h.join().unwrap();
    }
    let bundle = PathBuf::from(finished.stdout.lines().last().expect("the bundle's path"));
    if let Some(keep) = std::env::var_os("SNAP_TEST_KEEP") {
        // A copy for whoever debugs this test: SNAP_TEST_KEEP=/some/dir.
        std::fs::copy(&bundle, Path::new(&keep).join(format!("{tag}.tar.zst"))).unwrap();
    }
    (analyze_json(&bundle), bundle, seen, dir)
}

fn tcp_findings(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"].as_str().unwrap().starts_with("tcp."))
        .map(|f| (f["rule"].as_str().unwrap().to_string(), f["subject"].as_str().unwrap().to_string()))
        .collect()
}

fn fact(f: &Value, name: &str) -> f64 {
    f["facts"][name].as_f64().unwrap_or_else(|| panic!("fact {name} in {f:#}"))
}

#[test]
fn faults_on_the_wire_are_found_and_quiet_without_them() {
    assert!(is_root(), "making namespaces and capturing needs root (CI runs as root)");
    let (report, bundle, seen, _dir) = scenario("tcpf", 1, Run::Faulty);
    assert_eq!(seen.read_timeouts, 1, "the client's read timed out");
    assert_eq!(seen.connect_timeouts, 1, "the client's connect timed out");
    assert_eq!(seen.resets_on_reuse, KEEPALIVE_CONNS, "every reused connection was reset");
    assert!(seen.uploaded > 0);
    let all = tcp_findings(&report);
    let pcap = tshark_check(&bundle);

    // tcp.read_timeout: timeout about 3 s, server time about 5 s (the answer came after
    // the client had closed, and was reset).
    let rt = findings(&report, "tcp.read_timeout");
    assert_eq!(rt.len(), 1, "{all:?}\n{report:#}");
    let f = rt[0];
    assert!(f["subject"].as_str().unwrap().ends_with(&format!(":{SLOW}")), "{f:#}");
    let timeout = fact(f, "client_timeout_s");
    // The client's thread shares 2 CPUs with a 20 MB upload and the capture: allow for
    // its scheduling.
    assert!((timeout - READ_TIMEOUT.as_secs_f64()).abs() < 0.5, "{f:#}");
    let server = fact(f, "server_time_s");
    assert!((server - SERVER_TIME.as_secs_f64()).abs() < 0.5, "{f:#}");
    assert!(fact(f, "rtt_s") < 0.05, "{f:#}");

    // tcp.retransmission on the lossy upload, with tshark's count of retransmissions.
    let rx = findings(&report, "tcp.retransmission");
    let f = rx
        .iter()
        .find(|f| f["subject"].as_str().unwrap().contains(&format!(":{BULK}")))
        .unwrap_or_else(|| panic!("{all:?}"));
    assert_eq!(fact(f, "retransmissions") as u64, pcap.retransmissions_to(BULK), "{f:#}");

    // tcp.idle_close: the server closes after about 1 s idle, on every connection.
    let ic = findings(&report, "tcp.idle_close");
    let f = ic
        .iter()
        .find(|f| f["subject"].as_str().unwrap().ends_with(&format!(":{KEEPALIVE}")))
        .unwrap_or_else(|| panic!("{all:?}"));
    assert!((fact(f, "idle_s") - KEEPALIVE_TIMEOUT.as_secs_f64()).abs() < 0.3, "{f:#}");
    assert_eq!(fact(f, "connections") as usize, KEEPALIVE_CONNS, "{f:#}");

    // tcp.reset: the requests sent on connections the server had closed.
    let rs = findings(&report, "tcp.reset");
    let f = rs
        .iter()
        .find(|f| f["subject"].as_str().unwrap().ends_with(&format!(":{KEEPALIVE}")))
        .unwrap_or_else(|| panic!("{all:?}"));
    assert!(fact(f, "after_peer_close") as usize >= KEEPALIVE_CONNS, "{f:#}");

    // tcp.connect_timeout: SYNs retransmitted, no SYN-ACK.
    let ct = findings(&report, "tcp.connect_timeout");
    let f = ct
        .iter()
        .find(|f| f["subject"].as_str().unwrap().ends_with(&format!(":{BLACKHOLE}")))
        .unwrap_or_else(|| panic!("{all:?}"));
    assert!(fact(f, "syn_retransmissions") >= 1.0, "{f:#}");

    // The views: `snap show tcpdump -nn` prints every TCP packet as tcpdump does, and
    // `conversations` one line per connection (six here).
    let ours = show(&bundle, &["tcpdump", "-nn"]);
    let theirs = real_tcpdump(&bundle);
    let tcp_lines = |text: &str| text.lines().filter(|l| l.contains(" IP ")).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(tcp_lines(&ours), tcp_lines(&theirs));
    assert!(tcp_lines(&ours).len() > 100, "{ours}");
    let conv = show(&bundle, &["conversations"]);
    let rows: Vec<&str> = conv.lines().skip(1).collect();
    assert_eq!(rows.len(), 3 + KEEPALIVE_CONNS, "{conv}");
    assert!(rows.iter().any(|r| r.contains(&format!(":{BLACKHOLE}")) && r.contains("syn_sent")), "{conv}");
    assert_eq!(
        rows.iter().filter(|r| r.contains(&format!(":{KEEPALIVE}")) && r.contains("server:after_own_fin")).count(),
        KEEPALIVE_CONNS,
        "{conv}"
    );

    // The healthy control: the same traffic without the faults.
    let (report, _bundle, seen, _dir2) = scenario("tcph", 2, Run::Healthy);
    assert_eq!((seen.read_timeouts, seen.connect_timeouts, seen.resets_on_reuse), (0, 0, 0));
    // No finding but those a busy box can really cause in healthy traffic: a starved
    // sink's zero window, packets the capture ring dropped.
    let busy_box = ["tcp.zero_window", "tcp.capture_gaps"];
    let unexpected: Vec<_> =
        tcp_findings(&report).into_iter().filter(|(r, _)| !busy_box.contains(&r.as_str())).collect();
    assert_eq!(unexpected, Vec::<(String, String)>::new(), "{report:#}");
    for rule in ["tcp.read_timeout", "tcp.retransmission", "tcp.idle_close", "tcp.reset", "tcp.connect_timeout"] {
        assert_eq!(report["rules"][rule], "passed", "{rule}: {report:#}");
    }
}

fn show(bundle: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_snap")).arg("show").arg(bundle).args(args).output().unwrap();
    assert!(out.status.success(), "snap show {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `tcpdump -nn -r` of the bundle's capture, in UTC as snap prints it.
fn real_tcpdump(bundle: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("window.pcap");
    let b = snap_bundle::Bundle::open(bundle).unwrap();
    std::fs::write(&pcap, b.read(snap_bundle::names::CAPTURE).unwrap().expect("a capture")).unwrap();
    let out = Command::new("tcpdump").args(["-nn", "-r"]).arg(&pcap).env("TZ", "UTC").output().expect("tcpdump");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Counts from tshark on the bundle's capture, to hold snap's figures against.
struct TsharkCounts {
    retransmissions_by_port: std::collections::BTreeMap<u16, u64>,
}

impl TsharkCounts {
    fn retransmissions_to(&self, port: u16) -> u64 {
        self.retransmissions_by_port.get(&port).copied().unwrap_or(0)
    }
}

fn tshark_check(bundle: &Path) -> TsharkCounts {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("window.pcap");
    let b = snap_bundle::Bundle::open(bundle).unwrap();
    std::fs::write(&pcap, b.read(snap_bundle::names::CAPTURE).unwrap().expect("a capture")).unwrap();
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(&pcap)
        .args(["-Y", "tcp.analysis.retransmission", "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.dstport"])
        .output()
        .expect("tshark");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut by_port = std::collections::BTreeMap::new();
    // Both directions of a service's connections count, as snap counts them.
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let ports: Vec<u16> = l.split_whitespace().filter_map(|p| p.parse().ok()).collect();
        if let Some(p) = ports.iter().copied().filter(|p| [SLOW, BULK, KEEPALIVE, BLACKHOLE].contains(p)).min() {
            *by_port.entry(p).or_insert(0) += 1;
        }
    }
    TsharkCounts { retransmissions_by_port: by_port }
}
