//! `snap collect`'s packet capture under a flood on loopback: a bounded burst of UDP
//! datagrams to a port of the test's own, captured with a filter on that port. The
//! manifest's seen, captured and dropped figures must agree with what was sent, with
//! the file (as `tcpdump -r` counts it) and with the kernel's counter of loopback.
//! Drops are allowed (a debug build on a small machine may not keep up); the identities
//! between the figures are not. CI runs this as root on a Linux VM with tcpdump.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use snap_bundle::manifest::EntryStatus;
use snap_bundle::{names, Bundle};

mod common;
use common::netns::{is_root, Snap};

/// Datagrams to send, at most, and for how long at most.
const K: u64 = 200_000;
const SEND_FOR: Duration = Duration::from_millis(1500);
const PAYLOAD: usize = 16;

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// rx_packets of lo in /proc/net/dev (this process's network namespace).
fn lo_rx_packets() -> u64 {
    let text = std::fs::read_to_string("/proc/net/dev").unwrap();
    text.lines()
        .find_map(|l| {
            let (name, rest) = l.split_once(':')?;
            (name.trim() == "lo").then(|| rest.split_whitespace().nth(1)?.parse().ok())?
        })
        .expect("lo in /proc/net/dev")
}

/// Sends up to `K` datagrams to 127.0.0.1:`port` for at most `SEND_FOR`; returns how
/// many the kernel took (a full send() return each) and when the last one went.
fn flood(port: u16) -> (u64, u64) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.connect(("127.0.0.1", port)).unwrap();
    let buf = [0x5au8; PAYLOAD];
    let (started, mut sent, mut failed) = (Instant::now(), 0u64, 0u64);
    for i in 0..K {
        if i % 1024 == 0 && started.elapsed() >= SEND_FOR {
            break;
        }
        match s.send(&buf) {
            Ok(n) if n == PAYLOAD => sent += 1,
            Ok(n) => panic!("a short datagram: {n} bytes"),
            // ENOBUFS and the like: not sent, not counted.
            Err(_) => failed += 1,
        }
    }
    if failed > 0 {
        eprintln!("{failed} sends failed and were not counted");
    }
    eprintln!("sent {sent} datagrams in {:?}", started.elapsed());
    (sent, now_ns())
}

#[test]
fn a_loopback_flood_is_counted_as_the_kernel_counts_it() {
    assert!(is_root(), "capturing needs root (CI runs as root)");
    // The port: a socket of the test's own holds it, so no ICMP answers the flood.
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rx.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let filter = format!("udp port {port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_snap"));
    cmd.args(["collect", "--window", "3", "--iface", "lo", "--filter", &filter, "--max-packets", "1000000"]);
    // --no-nice: the flood must fall within the window, which nice 19 on a busy box
    // could cut short.
    cmd.args(["--quiet", "--no-nice", "-o"]).arg(dir.path());
    let mut snap = Snap::spawn(cmd);
    snap.wait_for_capture();

    let lo_before = lo_rx_packets();
    let sender = std::thread::spawn(move || flood(port));
    let (sent, last_sent_ns) = sender.join().expect("the sender failed");
    let lo_after = lo_rx_packets();
    drop(rx);
    let common::netns::Finished { code, stdout, stderr } = snap.finish();
    assert_eq!(code, Some(0), "snap collect failed: {stderr}");

    let path = PathBuf::from(stdout.lines().last().expect("the bundle path on stdout"));
    let bundle = Bundle::open(&path).unwrap();
    let cap = bundle.manifest().and_then(|m| m.capture.clone()).expect("a capture record");
    let pcap = dir.path().join("window.pcap");
    std::fs::write(&pcap, bundle.read(names::CAPTURE).unwrap().expect("the capture file")).unwrap();
    let tcpdump = Command::new("tcpdump").args(["-nn", "-q", "-r"]).arg(&pcap).output().expect("tcpdump");
    assert!(tcpdump.status.success(), "tcpdump -r: {}", String::from_utf8_lossy(&tcpdump.stderr));
    let records = tcpdump.stdout.iter().filter(|b| **b == b'\n').count() as u64;
    let to_port = String::from_utf8_lossy(&tcpdump.stdout).matches(&format!(".{port}: UDP")).count() as u64;

    let lo = lo_after - lo_before;
    eprintln!(
        "sent {sent}; lo counted {lo}; snap: seen {}, captured {}, dropped {}, {} bytes, stopped by {}; \
         tcpdump -r counts {records}",
        cap.packets_seen, cap.packets_captured, cap.packets_dropped, cap.bytes, cap.stopped_by
    );
    assert!(sent >= 1000, "only {sent} datagrams went out");
    assert!(last_sent_ns < cap.end_realtime_ns, "the flood outlasted the capture: {cap:?}");
    assert_eq!((cap.stopped_by.as_str(), cap.status), ("time", EntryStatus::Ok), "{cap:?}");
    // Every datagram crossed lo once and passed the filter once: the capture counts no
    // sent copy besides the received one, and nothing else matches the port.
    assert_eq!(cap.packets_seen, sent, "{cap:?}");
    assert!(lo >= sent, "lo received {lo} packets while {sent} were sent");
    assert_eq!(cap.packets_captured + cap.packets_dropped, cap.packets_seen, "{cap:?}");
    assert_eq!(cap.packets_captured, records, "the manifest counts the file's records");
    assert_eq!(to_port, records, "every record is one of the flood's datagrams");
    assert_eq!(cap.bytes, std::fs::metadata(&pcap).unwrap().len());
}
