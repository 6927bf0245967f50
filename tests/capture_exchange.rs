//! `snap collect`'s packet capture against a TCP exchange the test makes itself: two
//! network namespaces joined by a veth pair, a server in one and a client in the other,
//! both run on threads of this test process that entered the namespace (setns is per
//! thread). snap runs inside the client's namespace; the file it writes is then read
//! with tcpdump and tshark, and the figures are compared with the manifest and with the
//! interfaces' own counters. Nothing leaves the namespaces, which are deleted even when
//! a test fails. CI runs these as root on a Linux VM with tcpdump and tshark installed.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use snap_bundle::manifest::{CaptureRecord, EntryStatus, Manifest};
use snap_bundle::{names, Bundle};

mod common;
use common::netns::{in_netns, is_root, Pair, Snap};

/// The tests that capture run one at a time: each has its own namespaces, but several
/// collections at once on a small machine would blur the timing the traffic relies on.
static NETWORK: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    NETWORK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The port of the exchange, and a second one some tests also talk to.
const P: u16 = 5080;
const Q: u16 = 5081;
/// Connections that end with a FIN from each side.
const N: usize = 5;
const RESPONSE_LEN: usize = 300;
/// How long any one network step may take before the test gives up.
const STEP: Duration = Duration::from_secs(10);

fn snap_bin() -> &'static str {
    env!("CARGO_BIN_EXE_snap")
}

/// The response to request `i`: 300 bytes whose end, past a 128-byte snaplen, carries
/// a marker that shows whether payload was kept.
fn response(i: usize) -> Vec<u8> {
    let marker = format!("<END OF RESPONSE {i}>");
    let mut r = format!("RESP {i} ").into_bytes();
    r.resize(RESPONSE_LEN - marker.len(), b'.');
    r.extend_from_slice(marker.as_bytes());
    r
}

// ---- the exchange ----

/// One connection the client made.
#[derive(Debug, Clone, Copy)]
struct Conn {
    index: usize,
    client_port: u16,
    server_port: u16,
    /// Ended by an RST from the client instead of FINs.
    reset: bool,
}

/// Serves each request line with its response on every port, one connection at a
/// time, then waits for the client's FIN (or RST) before closing: so the client's FIN
/// always comes first. Ends when `stop` is set, or after a bound.
fn server(ns: &str, ip: Ipv4Addr, ports: &[u16], stop: Arc<AtomicBool>) -> JoinHandle<usize> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let ports = ports.to_vec();
    let h = in_netns(ns, move || {
        let listeners: Vec<TcpListener> = ports
            .iter()
            .map(|p| {
                let l = TcpListener::bind((ip, *p)).unwrap_or_else(|e| panic!("bind {ip}:{p}: {e}"));
                l.set_nonblocking(true).unwrap();
                l
            })
            .collect();
        ready_tx.send(()).unwrap();
        let (started, mut served) = (Instant::now(), 0);
        while !stop.load(Ordering::Relaxed) && started.elapsed() < 3 * STEP {
            let mut idle = true;
            for l in &listeners {
                match l.accept() {
                    Ok((s, _)) => {
                        idle = false;
                        serve_one(s);
                        served += 1;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("accept: {e}"),
                }
            }
            if idle {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        served
    });
    ready_rx.recv_timeout(STEP).expect("the server did not start");
    h
}

fn serve_one(s: TcpStream) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.set_write_timeout(Some(STEP)).unwrap();
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).expect("reading the request");
    let i: usize = line.trim().strip_prefix("REQ ").and_then(|n| n.parse().ok()).expect("a request line");
    (&s).write_all(&response(i)).expect("writing the response");
    // Until the client's FIN (EOF) or RST (an error): then close.
    let mut rest = Vec::new();
    let _ = (&s).read_to_end(&mut rest);
}

/// The client's side: one connection per `(port, reset)` of the plan, one after the
/// other; each sends its request, reads the whole response, then either shuts down
/// and waits for the server's FIN, or resets (SO_LINGER on with a zero timeout).
fn client(ns: &str, server: Ipv4Addr, plan: Vec<(u16, bool)>) -> JoinHandle<Vec<Conn>> {
    in_netns(ns, move || {
        let mut conns = Vec::new();
        for (index, (port, reset)) in plan.into_iter().enumerate() {
            let mut s = TcpStream::connect_timeout(&SocketAddr::from((server, port)), STEP)
                .unwrap_or_else(|e| panic!("connect {server}:{port}: {e}"));
            s.set_read_timeout(Some(STEP)).unwrap();
            s.set_write_timeout(Some(STEP)).unwrap();
            let client_port = s.local_addr().unwrap().port();
            s.write_all(format!("REQ {index}\n").as_bytes()).unwrap();
            let mut got = vec![0u8; RESPONSE_LEN];
            s.read_exact(&mut got).expect("reading the response");
            assert_eq!(got, response(index));
            if reset {
                let linger = libc::linger { l_onoff: 1, l_linger: 0 };
                // SAFETY: a valid linger struct of the size passed, on an open socket.
                let r = unsafe {
                    libc::setsockopt(
                        s.as_raw_fd(),
                        libc::SOL_SOCKET,
                        libc::SO_LINGER,
                        (&linger as *const libc::linger).cast(),
                        std::mem::size_of::<libc::linger>() as libc::socklen_t,
                    )
                };
                assert_eq!(r, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
                drop(s);
            } else {
                s.shutdown(Shutdown::Write).unwrap();
                let mut rest = Vec::new();
                s.read_to_end(&mut rest).expect("waiting for the server's FIN");
                assert!(rest.is_empty());
            }
            conns.push(Conn { index, client_port, server_port: port, reset });
        }
        conns
    })
}

/// N connections to `P` (each followed by one to `Q` when `with_q`), then one to `P`
/// that is reset.
fn plan(with_q: bool) -> Vec<(u16, bool)> {
    let mut plan = Vec::new();
    for _ in 0..N {
        plan.push((P, false));
        if with_q {
            plan.push((Q, false));
        }
    }
    plan.push((P, true));
    plan
}

fn exchange(pair: &Pair, plan: Vec<(u16, bool)>) -> Vec<Conn> {
    let stop = Arc::new(AtomicBool::new(false));
    let srv = server(&pair.server, pair.server_ip(), &[P, Q], Arc::clone(&stop));
    let conns = client(&pair.client, pair.server_ip(), plan.clone()).join();
    stop.store(true, Ordering::Relaxed);
    let served = srv.join().expect("the server thread failed");
    let conns = conns.expect("the client thread failed");
    assert_eq!((conns.len(), served), (plan.len(), plan.len()));
    conns
}

// ---- running snap ----

/// What a collection with traffic left behind.
struct Run {
    manifest: Manifest,
    capture: CaptureRecord,
    /// capture/window.pcap, extracted.
    pcap: PathBuf,
    _dir: tempfile::TempDir,
    conns: Vec<Conn>,
    /// Packets the interfaces of A counted while the traffic ran: (rx, tx) by name.
    before: HashMap<String, (u64, u64)>,
    after: HashMap<String, (u64, u64)>,
}

impl Run {
    fn delta(&self, dev: &str) -> (u64, u64) {
        let (b, a) = (self.before[dev], self.after[dev]);
        (a.0 - b.0, a.1 - b.1)
    }
}

/// `snap collect --window 3` in namespace A with `args`, and the exchange of `plan`
/// once its capture runs.
fn collect_with_traffic(pair: &Pair, args: &[&str], plan: Vec<(u16, bool)>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("ip");
    // --no-nice: the exchange must fall within the window, which nice 19 on a busy box
    // could cut short.
    cmd.args(["netns", "exec", &pair.client, snap_bin(), "collect", "--window", "3", "--quiet", "--no-nice"])
        .args(args);
    cmd.arg("-o").arg(dir.path());
    let mut snap = Snap::spawn(cmd);
    snap.wait_for_capture();
    let before = Pair::counters(&pair.client);
    let conns = exchange(pair, plan);
    // The last ACKs are sent at once, but give them a moment before counting.
    std::thread::sleep(Duration::from_millis(100));
    let after = Pair::counters(&pair.client);
    let f = snap.finish();
    assert_eq!(f.code, Some(0), "snap collect failed: {}", f.stderr);
    assert!(!f.stderr.contains("panicked"), "{}", f.stderr);
    let path = PathBuf::from(f.stdout.lines().last().expect("the bundle path on stdout"));
    let bundle = Bundle::open(&path).unwrap();
    let manifest = bundle.manifest().cloned().expect("a manifest");
    let capture = manifest.capture.clone().expect("a capture record");
    let pcap = dir.path().join("window.pcap");
    match bundle.read(names::CAPTURE).unwrap() {
        Some(bytes) => std::fs::write(&pcap, bytes).unwrap(),
        None => panic!("no {} in the bundle; capture record: {capture:?}", names::CAPTURE),
    }
    eprintln!(
        "snap {args:?}: seen {}, captured {}, dropped {}, {} bytes, stopped by {}",
        capture.packets_seen, capture.packets_captured, capture.packets_dropped, capture.bytes, capture.stopped_by
    );
    Run { manifest, capture, pcap, _dir: dir, conns, before, after }
}

// ---- reading the file with tcpdump and tshark ----

/// A record as `tcpdump -nn -tt -r` prints it.
#[derive(Debug, Clone)]
struct Pkt {
    line: String,
    ts_us: u64,
    tcp: Option<Tcp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Tcp {
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    /// tcpdump's flags: `S`, `S.`, `P.`, `.`, `F.`, `R.`...
    flags: String,
    len: usize,
}

fn addr_port(s: &str) -> Option<(Ipv4Addr, u16)> {
    let (ip, port) = s.trim_end_matches(':').rsplit_once('.')?;
    Some((ip.parse().ok()?, port.parse().ok()?))
}

fn parse_line(line: &str) -> Pkt {
    let t: Vec<&str> = line.split_whitespace().collect();
    let (sec, usec) = t[0].split_once('.').unwrap_or_else(|| panic!("no timestamp: {line}"));
    let ts_us = sec.parse::<u64>().unwrap() * 1_000_000 + usec.parse::<u64>().unwrap();
    let tcp = t.iter().position(|w| *w == "IP").and_then(|k| {
        let ((src, sport), (dst, dport)) = (addr_port(t.get(k + 1)?)?, addr_port(t.get(k + 3)?)?);
        if *t.get(k + 4)? != "Flags" {
            return None;
        }
        let flags = t.get(k + 5)?.trim_start_matches('[').trim_end_matches("],").to_string();
        let at = t.iter().rposition(|w| *w == "length")?;
        Some(Tcp { src, sport, dst, dport, flags, len: t.get(at + 1)?.trim_end_matches(',').parse().ok()? })
    });
    Pkt { line: line.to_string(), ts_us, tcp }
}

fn tcpdump(pcap: &Path) -> Vec<Pkt> {
    let out = Command::new("tcpdump").args(["-nn", "-tt", "-r"]).arg(pcap).output().expect("tcpdump");
    assert!(out.status.success(), "tcpdump -r: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(parse_line).collect()
}

/// One row per record of `tshark -T fields -e ...`.
fn tshark(pcap: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(pcap).args(["-T", "fields", "-E", "separator=/t"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark");
    assert!(out.status.success(), "tshark -r: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().map(|l| l.split('\t').map(str::to_string).collect()).collect()
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| *c != ':').collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// Every SYN, SYN-ACK, FIN and RST of `c` is in `pkts` exactly once, in the order the
/// exchange made them, with the right addresses and ports.
fn check_connection(pkts: &[Pkt], c: &Conn, pair: &Pair) {
    let (cli, srv) = ((pair.client_ip(), c.client_port), (pair.server_ip(), c.server_port));
    let mine: Vec<(usize, bool, &Tcp)> = pkts
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let t = p.tcp.as_ref()?;
            let (from, to) = ((t.src, t.sport), (t.dst, t.dport));
            if (from, to) == (cli, srv) {
                Some((i, true, t))
            } else if (from, to) == (srv, cli) {
                Some((i, false, t))
            } else {
                None
            }
        })
        .collect();
    let shown = || mine.iter().map(|(i, _, _)| pkts[*i].line.as_str()).collect::<Vec<_>>().join("\n");
    let find = |from_client: bool, what: &dyn Fn(&Tcp) -> bool| -> Vec<usize> {
        mine.iter().filter(|(_, fc, t)| *fc == from_client && what(t)).map(|(i, _, _)| *i).collect()
    };
    let once = |name: &str, v: Vec<usize>| -> usize {
        assert_eq!(v.len(), 1, "connection {c:?}: {name} {} times, not once:\n{}", v.len(), shown());
        v[0]
    };
    let syn = once("SYN", find(true, &|t| t.flags == "S"));
    let synack = once("SYN-ACK", find(false, &|t| t.flags == "S."));
    let syns = (find(true, &|t| t.flags.contains('S')).len(), find(false, &|t| t.flags.contains('S')).len());
    assert_eq!(syns, (1, 1), "connection {c:?}: SYN flags besides the handshake:\n{}", shown());
    assert_eq!(mine.first().map(|m| m.0), Some(syn), "the SYN opens connection {c:?}:\n{}", shown());
    let request = once("the request", find(true, &|t| t.len > 0));
    let replies = find(false, &|t| t.len > 0);
    let replied: usize = replies.iter().map(|i| pkts[*i].tcp.as_ref().unwrap().len).sum();
    assert_eq!(replied, RESPONSE_LEN, "connection {c:?}: the response's segments:\n{}", shown());
    let (first_reply, last_reply) = (replies[0], *replies.last().unwrap());
    assert!(syn < synack && synack < request && request < first_reply, "{c:?} out of order:\n{}", shown());
    let (fins_c, fins_s) = (find(true, &|t| t.flags.contains('F')), find(false, &|t| t.flags.contains('F')));
    let (rst_c, rst_s) = (find(true, &|t| t.flags.contains('R')), find(false, &|t| t.flags.contains('R')));
    assert!(rst_s.is_empty(), "connection {c:?}: an RST from the server:\n{}", shown());
    if c.reset {
        let rst = once("RST", rst_c);
        assert!(fins_c.is_empty() && fins_s.is_empty(), "connection {c:?}: a FIN besides the RST:\n{}", shown());
        assert!(rst > last_reply, "connection {c:?}: the RST before the response:\n{}", shown());
    } else {
        assert!(rst_c.is_empty(), "connection {c:?}: an RST:\n{}", shown());
        let (fin_c, fin_s) = (once("the client's FIN", fins_c), once("the server's FIN", fins_s));
        assert!(last_reply < fin_c && fin_c < fin_s, "connection {c:?}: FINs out of order:\n{}", shown());
    }
}

/// What every capture of the exchange must show: each connection's SYN, SYN-ACK, FINs
/// and RST once and in order, no TCP packet of anything else, records in time order
/// within the capture, and the manifest's counts those of the file.
fn check_exchange(run: &Run, pair: &Pair, pkts: &[Pkt], excluded: &[u16]) {
    for c in run.conns.iter().filter(|c| !excluded.contains(&c.server_port)) {
        check_connection(pkts, c, pair);
    }
    let ours = |t: &Tcp| {
        run.conns.iter().any(|c| {
            !excluded.contains(&c.server_port)
                && ((t.sport, t.dport) == (c.client_port, c.server_port)
                    || (t.sport, t.dport) == (c.server_port, c.client_port))
        })
    };
    for p in pkts {
        if let Some(t) = &p.tcp {
            assert!(ours(t), "a TCP packet the exchange did not make (or the filter excludes): {}", p.line);
        }
    }
    let cap = &run.capture;
    let (start_us, end_us) = (cap.start_realtime_ns / 1000, cap.end_realtime_ns.div_ceil(1000));
    for w in pkts.windows(2) {
        assert!(w[0].ts_us <= w[1].ts_us, "records out of time order:\n{}\n{}", w[0].line, w[1].line);
    }
    for p in pkts {
        assert!(p.ts_us >= start_us && p.ts_us <= end_us, "{} outside the capture [{start_us}, {end_us}]", p.line);
    }
    assert_eq!(cap.packets_captured, pkts.len() as u64, "the manifest counts the file's records: {cap:?}");
    assert_eq!(cap.bytes, std::fs::metadata(&run.pcap).unwrap().len(), "{cap:?}");
    assert_eq!((cap.stopped_by.as_str(), cap.status), ("time", EntryStatus::Ok), "{cap:?}");
    assert_eq!(cap.packets_seen, cap.packets_captured + cap.packets_dropped, "{cap:?}");
    assert_eq!(cap.linktype, 113);
    let rec = run.manifest.entry(names::CAPTURE).expect("an entry record for the capture");
    assert_eq!((rec.status, rec.bytes), (EntryStatus::Ok, cap.bytes), "{rec:?}");
}

fn contains(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

// ---- the tests ----

#[test]
fn known_exchange_on_one_interface_is_captured_once_in_order() {
    assert!(is_root(), "capturing and making namespaces needs root (CI runs as root)");
    let _one = one_at_a_time();
    let pair = Pair::new("capi", [10, 200, 201]);
    let run = collect_with_traffic(&pair, &["--iface", &pair.client_dev], plan(false));
    let pkts = tcpdump(&run.pcap);
    check_exchange(&run, &pair, &pkts, &[]);
    // The link carried nothing but the exchange (and ARP): every packet it counted is in
    // the file once, and nothing else is.
    let (rx, tx) = run.delta(&pair.client_dev);
    assert_eq!(pkts.len() as u64, rx + tx, "the veth counted {rx} received and {tx} sent");
    let cap = &run.capture;
    assert_eq!(cap.interfaces, vec![pair.client_dev.clone()]);
    assert_eq!((cap.filter.as_deref(), cap.filter_compiler.as_deref()), (None, None));
    assert_eq!((cap.snaplen, cap.payload), (128, false), "headers only by default");
    // Headers only: no record passes 128 bytes, so the responses' ends are not there.
    let rows = tshark(&run.pcap, &["frame.cap_len", "frame.len", "tcp.srcport"]);
    assert_eq!(rows.len(), pkts.len());
    let mut cut = 0;
    for r in &rows {
        let (caplen, len): (u64, u64) = (r[0].parse().unwrap(), r[1].parse().unwrap());
        assert!(caplen <= 128 && caplen <= len, "{r:?}");
        if r[2] == P.to_string() && len > 300 {
            assert_eq!(caplen, 128, "a response is cut at the snaplen: {r:?}");
            cut += 1;
        }
    }
    assert_eq!(cut, N + 1, "one cut response per connection");
    let file = std::fs::read(&run.pcap).unwrap();
    assert_eq!(contains(&file, b"<END OF RESPONSE"), 0, "payload past the snaplen was kept");
}

#[test]
fn known_exchange_on_all_interfaces_keeps_payload_when_asked() {
    assert!(is_root(), "capturing and making namespaces needs root (CI runs as root)");
    let _one = one_at_a_time();
    let pair = Pair::new("capa", [10, 200, 202]);
    let run = collect_with_traffic(&pair, &["--payload"], plan(false));
    let pkts = tcpdump(&run.pcap);
    check_exchange(&run, &pair, &pkts, &[]);
    // All interfaces of A: the veth, and lo, whose packets would be counted once.
    let ((rx, tx), (lo_rx, _)) = (run.delta(&pair.client_dev), run.delta("lo"));
    assert_eq!(pkts.len() as u64, rx + tx + lo_rx, "the veth counted {rx} + {tx}, lo {lo_rx}");
    let cap = &run.capture;
    assert!(cap.interfaces.is_empty(), "{cap:?}");
    assert_eq!((cap.snaplen, cap.payload), (262_144, true));
    // Whole packets: each response is in the file, byte for byte, once.
    let rows = tshark(&run.pcap, &["tcp.srcport", "tcp.dstport", "tcp.payload"]);
    let mut responses: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r[0] == P.to_string() && r.len() > 2 && !r[2].is_empty()) {
        responses.entry(r[1].parse().unwrap()).or_default().extend(hex(&r[2]));
    }
    assert_eq!(responses.len(), N + 1, "{:?}", responses.keys());
    for c in &run.conns {
        let got = responses.get(&c.client_port).map(|v| String::from_utf8_lossy(v).into_owned());
        assert_eq!(got, Some(String::from_utf8(response(c.index)).unwrap()), "{c:?}");
    }
    let file = std::fs::read(&run.pcap).unwrap();
    for c in &run.conns {
        assert_eq!(contains(&file, format!("<END OF RESPONSE {}>", c.index).as_bytes()), 1, "{c:?}");
    }
}

#[test]
fn a_filter_that_excludes_a_port_excludes_it() {
    assert!(is_root(), "capturing and making namespaces needs root (CI runs as root)");
    let _one = one_at_a_time();
    let pair = Pair::new("capf", [10, 200, 203]);
    let expr = format!("not port {Q}");
    let run = collect_with_traffic(&pair, &["--iface", &pair.client_dev, "--filter", &expr], plan(true));
    assert_eq!(run.conns.iter().filter(|c| c.server_port == Q).count(), N, "traffic went to {Q} too");
    let pkts = tcpdump(&run.pcap);
    for p in &pkts {
        if let Some(t) = &p.tcp {
            assert!(t.sport != Q && t.dport != Q, "the filter let through: {}", p.line);
        }
    }
    check_exchange(&run, &pair, &pkts, &[Q]);
    let cap = &run.capture;
    assert_eq!(cap.filter.as_deref(), Some(expr.as_str()));
    let compiler = cap.filter_compiler.as_deref().unwrap_or_default();
    assert!(["libpcap.so.1", "libpcap.so.0.8", "tcpdump -ddd"].contains(&compiler), "{cap:?}");
    // The kernel counted what the filter let through, not what it refused.
    let (rx, tx) = run.delta(&pair.client_dev);
    assert!(cap.packets_seen < rx + tx, "seen {} of {} packets on the link", cap.packets_seen, rx + tx);
}

#[test]
fn the_packet_bound_holds() {
    assert!(is_root(), "capturing and making namespaces needs root (CI runs as root)");
    let _one = one_at_a_time();
    let pair = Pair::new("capp", [10, 200, 204]);
    let run = collect_with_traffic(&pair, &["--iface", &pair.client_dev, "--max-packets", "7"], plan(false));
    let pkts = tcpdump(&run.pcap);
    let cap = &run.capture;
    assert_eq!(pkts.len(), 7, "{cap:?}");
    assert_eq!((cap.packets_captured, cap.stopped_by.as_str(), cap.status), (7, "packets", EntryStatus::Truncated));
    assert_eq!((cap.max_packets, cap.bytes), (7, std::fs::metadata(&run.pcap).unwrap().len()));
    assert!(cap.packets_seen >= 7, "{cap:?}");
    // The first seven packets of the link, in order: the exchange began with them.
    let first = pkts.iter().find_map(|p| p.tcp.as_ref()).expect("a TCP packet among the first seven");
    assert_eq!((first.flags.as_str(), first.dport), ("S", P), "{pkts:#?}");
}

#[test]
fn the_byte_bound_holds() {
    assert!(is_root(), "capturing and making namespaces needs root (CI runs as root)");
    let _one = one_at_a_time();
    let pair = Pair::new("capb", [10, 200, 205]);
    let run = collect_with_traffic(&pair, &["--iface", &pair.client_dev, "--max-capture-bytes", "2000"], plan(false));
    let pkts = tcpdump(&run.pcap);
    let (cap, size) = (&run.capture, std::fs::metadata(&run.pcap).unwrap().len());
    assert!(size <= 2000, "{size} bytes: {cap:?}");
    assert_eq!((cap.stopped_by.as_str(), cap.status), ("bytes", EntryStatus::Truncated), "{cap:?}");
    assert_eq!((cap.bytes, cap.packets_captured, cap.max_bytes), (size, pkts.len() as u64, 2000));
    // It stopped because the next record would not fit, and a record is at most 16 bytes
    // of record header and 128 of packet.
    assert!(size > 2000 - (16 + 128), "{size} bytes: stopped too early: {cap:?}");
    assert!(cap.packets_seen > cap.packets_captured, "{cap:?}");
}

/// The binary, or a copy of it that the user nobody can run.
fn binary_for_nobody(bin_dir: &Path) -> PathBuf {
    let reachable = Command::new("setpriv").args(AS_NOBODY).args(["test", "-x", snap_bin()]).status();
    if reachable.expect("setpriv").success() {
        return PathBuf::from(snap_bin());
    }
    std::fs::set_permissions(bin_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = bin_dir.join("snap");
    std::fs::copy(snap_bin(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

const AS_NOBODY: [&str; 4] = ["--reuid=65534", "--regid=65534", "--clear-groups", "--"];

#[test]
fn without_privilege_the_capture_is_recorded_denied() {
    assert!(is_root(), "this test switches to the user nobody and needs root (CI runs as root)");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let bin_dir = tempfile::tempdir().unwrap();
    let bin = binary_for_nobody(bin_dir.path());
    let mut cmd = Command::new("setpriv");
    cmd.args(AS_NOBODY).arg(&bin).args(["collect", "--window", "1", "--quiet", "-o"]).arg(dir.path());
    cmd.current_dir(dir.path());
    let f = Snap::spawn(cmd).finish();
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    assert!(!f.stderr.contains("panicked"), "{}", f.stderr);
    let bundle = Bundle::open(Path::new(f.stdout.lines().last().expect("a bundle path"))).unwrap();
    let m = bundle.manifest().cloned().unwrap();
    let cap = m.capture.clone().expect("a capture record");
    assert_eq!(cap.status, EntryStatus::Denied, "{cap:?}");
    assert!(cap.message.as_deref().is_some_and(|s| s.contains("CAP_NET_RAW")), "{cap:?}");
    assert_eq!((cap.packets_seen, cap.packets_captured, cap.bytes), (0, 0, 0), "{cap:?}");
    assert!(bundle.read(names::CAPTURE).unwrap().is_none(), "a capture file without privilege");
    assert_eq!(m.entry(names::CAPTURE).map(|r| r.status), Some(EntryStatus::Denied));
    // The rest of the collection went on.
    assert!(bundle.read("proc/loadavg").unwrap().is_some());
    assert_eq!(m.samples.len(), 2, "the window ran");
}

#[test]
fn a_bad_filter_is_refused_before_collecting() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(snap_bin());
    cmd.args(["collect", "--window", "30", "--quiet", "--filter", "port potato", "-o"]).arg(dir.path());
    let started = Instant::now();
    let f = Snap::spawn(cmd).finish();
    assert_eq!(f.code, Some(2), "{}", f.stderr);
    assert!(f.stderr.contains("--filter") && f.stderr.contains("port potato"), "{}", f.stderr);
    assert!(f.stderr.contains("not valid") || f.stderr.contains("needs libpcap"), "{}", f.stderr);
    assert!(f.stdout.is_empty(), "{}", f.stdout);
    // Refused at once, not after the 30 s window.
    assert!(started.elapsed() < Duration::from_secs(20), "refused only after {:?}", started.elapsed());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no bundle is written");
}
