//! Oracle: snap's TCP analysis (`snap_analyzers::tcp`) against tshark's, packet by
//! packet, on every pcap and pcapng of the third-party corpus (`../shared/corpus/pcap`)
//! and on captures this test writes (scenarios, and seeded random conversations with
//! loss, reordering, duplicates, zero windows, keep-alives, resets and port reuse).
//!
//! Per packet it compares the sets of packets tshark flags with `tcp.analysis.*`
//! (retransmission, fast and spurious retransmission, out-of-order, duplicate ACK and its
//! number, zero window, zero window probe and its ACK, keep-alive and its ACK, lost
//! segment, ACKed unseen segment, window update, window full, reused ports), RSTs, the
//! relative sequence and acknowledgment numbers, the stream index, the RTO of
//! retransmissions, and per stream the initial RTT (`tcp.analysis.initial_rtt`).
//! Every difference must be listed in [`KNOWN`] with its reason, and every listed one
//! must still occur, so the list stays true. Needs tshark 4.0 (CI installs Debian 12's).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use snap_analyzers::tcp::synth::{merge, write_pcap, Conversation, Segment};
use snap_analyzers::tcp::{self, Analysis, Item, Options, Packets, Side, TcpFlags};

/// Differences from tshark on purpose: (file name, frame, field, reason).
const KNOWN: &[(&str, u64, &str, &str)] = &[
    // snap does not reassemble IP fragments (its capture keeps headers only, and
    // fragmented TCP is rare): the segment in frames 4-5 is not analyzed, so the next one
    // follows a gap and its ACK covers bytes snap never saw.
    ("ipv4_fragments.pcap", 5, "packet", "tshark analyzes the reassembled segment in its last fragment"),
    ("ipv4_fragments.pcap", 6, "tcp.analysis.lost_segment", "the fragmented segment before it was skipped"),
    ("ipv4_fragments.pcap", 7, "tcp.analysis.ack_lost_segment", "it acknowledges the skipped segment"),
];

/// tshark fields, in output order, and the name each is compared under.
const FIELDS: &[&str] = &[
    "frame.number",
    "tcp.stream",
    "tcp.seq",
    "tcp.ack",
    "tcp.flags.reset",
    "tcp.analysis.retransmission",
    "tcp.analysis.fast_retransmission",
    "tcp.analysis.spurious_retransmission",
    "tcp.analysis.out_of_order",
    "tcp.analysis.duplicate_ack",
    "tcp.analysis.duplicate_ack_num",
    "tcp.analysis.zero_window",
    "tcp.analysis.zero_window_probe",
    "tcp.analysis.zero_window_probe_ack",
    "tcp.analysis.keep_alive",
    "tcp.analysis.keep_alive_ack",
    "tcp.analysis.lost_segment",
    "tcp.analysis.ack_lost_segment",
    "tcp.analysis.window_update",
    "tcp.analysis.window_full",
    "tcp.analysis.reused_ports",
    "tcp.analysis.rto",
    "tcp.analysis.initial_rtt",
    "icmp.type",
    "icmpv6.type",
];

/// The analysis flags compared, with tshark's field for each.
const FLAGS: &[(&str, u16)] = &[
    ("tcp.analysis.retransmission", Analysis::ANY_RETRANSMISSION),
    ("tcp.analysis.fast_retransmission", Analysis::FAST_RETRANSMISSION),
    ("tcp.analysis.spurious_retransmission", Analysis::SPURIOUS_RETRANSMISSION),
    ("tcp.analysis.out_of_order", Analysis::OUT_OF_ORDER),
    ("tcp.analysis.duplicate_ack", Analysis::DUPLICATE_ACK),
    ("tcp.analysis.zero_window", Analysis::ZERO_WINDOW),
    ("tcp.analysis.zero_window_probe", Analysis::ZERO_WINDOW_PROBE),
    ("tcp.analysis.zero_window_probe_ack", Analysis::ZERO_WINDOW_PROBE_ACK),
    ("tcp.analysis.keep_alive", Analysis::KEEP_ALIVE),
    ("tcp.analysis.keep_alive_ack", Analysis::KEEP_ALIVE_ACK),
    ("tcp.analysis.lost_segment", Analysis::LOST_SEGMENT),
    ("tcp.analysis.ack_lost_segment", Analysis::ACKED_UNSEEN),
    ("tcp.analysis.window_update", Analysis::WINDOW_UPDATE),
    ("tcp.analysis.window_full", Analysis::WINDOW_FULL),
    ("tcp.analysis.reused_ports", Analysis::REUSED_PORTS),
];

/// What one side says about one packet: field name to value ("" when absent).
type Row = BTreeMap<&'static str, String>;

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/pcap");
    assert!(dir.is_dir(), "the third-party corpus is missing at {}: this oracle needs it (CI has it)", dir.display());
    dir
}

fn tshark_version() -> String {
    let out = Command::new("tshark").arg("-v").output().expect("tshark is installed (CI installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().next().unwrap_or_default().to_string()
}

fn tshark(file: &Path) -> BTreeMap<u64, Row> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-r"]).arg(file).args([
        "-n",
        "-o",
        "tcp.relative_sequence_numbers:TRUE",
        "-o",
        "tcp.analyze_sequence_numbers:TRUE",
        "-Y",
        "tcp",
        "-T",
        "fields",
        "-E",
        "occurrence=f",
    ]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(out.status.success(), "tshark on {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    let mut rows = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let mut row = Row::new();
        for (i, f) in FIELDS.iter().enumerate() {
            row.insert(*f, cols.get(i).copied().unwrap_or("").to_string());
        }
        let frame = row["frame.number"].parse().unwrap();
        // TCP headers quoted in ICMP errors are not TCP packets to snap.
        if !row["icmp.type"].is_empty() || !row["icmpv6.type"].is_empty() {
            continue;
        }
        rows.insert(frame, normalize(row));
    }
    rows
}

/// tshark's values in the form snap's are written: flags "1" or "", durations in ns.
fn normalize(mut row: Row) -> Row {
    row.remove("icmp.type");
    row.remove("icmpv6.type");
    let flag = |v: &str| if v.is_empty() || v == "0" || v == "False" { String::new() } else { "1".into() };
    let r = flag(&row["tcp.flags.reset"]);
    row.insert("tcp.flags.reset", r);
    for (name, _) in FLAGS {
        let v = flag(&row[name]);
        row.insert(name, v);
    }
    for f in ["tcp.analysis.rto", "tcp.analysis.initial_rtt"] {
        if !row[f].is_empty() {
            let ns = secs_to_ns(&row[f]);
            row.insert(f, ns.to_string());
        }
    }
    row
}

fn secs_to_ns(s: &str) -> i64 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut frac = frac.to_string();
    frac.truncate(9);
    while frac.len() < 9 {
        frac.push('0');
    }
    let neg = int.starts_with('-');
    let v = int.trim_start_matches('-').parse::<i64>().unwrap() * 1_000_000_000 + frac.parse::<i64>().unwrap();
    if neg {
        -v
    } else {
        v
    }
}

/// snap's rows, and its initial RTT per stream.
fn snap(bytes: &[u8]) -> (BTreeMap<u64, Row>, BTreeMap<u64, i64>) {
    let mut rows = BTreeMap::new();
    let mut irtt = BTreeMap::new();
    let mut packets = Packets::new(bytes, &Options::default()).expect("a capture");
    for item in packets.by_ref() {
        let Ok(Item::Tcp(p, info)) = item else { continue };
        let a = info.analysis;
        let mut row = Row::new();
        row.insert("frame.number", p.number.to_string());
        row.insert("tcp.stream", info.conn.to_string());
        row.insert("tcp.seq", a.rel_seq.to_string());
        row.insert("tcp.ack", a.rel_ack.to_string());
        row.insert("tcp.flags.reset", if p.flags.rst() { "1".into() } else { String::new() });
        for (name, bits) in FLAGS {
            row.insert(name, if a.flags.has(*bits) { "1".into() } else { String::new() });
        }
        row.insert(
            "tcp.analysis.duplicate_ack_num",
            if a.flags.has(Analysis::DUPLICATE_ACK) { a.dup_ack_num.to_string() } else { String::new() },
        );
        let rto = a.flags.has(Analysis::RETRANSMISSION) && a.rto_ns != 0;
        row.insert("tcp.analysis.rto", if rto { a.rto_ns.to_string() } else { String::new() });
        row.insert("tcp.analysis.initial_rtt", String::new());
        rows.insert(p.number, row);
        if let Some(rtt) = info.initial_rtt_ns {
            irtt.insert(info.conn, rtt);
        }
    }
    (rows, irtt)
}

/// One difference: frame, field, tshark's value, snap's.
type Diff = (u64, String, String, String);

/// Differences between tshark and snap on one file, and tshark's rows.
fn compare(file: &Path) -> (Vec<Diff>, BTreeMap<u64, Row>) {
    let bytes = std::fs::read(file).unwrap();
    let theirs = tshark(file);
    let (ours, our_irtt) = snap(&bytes);
    let mut diffs = Vec::new();
    // The initial RTT tshark shows per stream (on packets after the handshake that carry
    // any analysis), against snap's per connection.
    let mut their_irtt: BTreeMap<u64, (u64, i64)> = BTreeMap::new();
    for (frame, row) in &theirs {
        if let (Ok(stream), Ok(ns)) = (row["tcp.stream"].parse::<u64>(), row["tcp.analysis.initial_rtt"].parse()) {
            their_irtt.entry(stream).or_insert((*frame, ns));
        }
    }
    for (stream, (frame, ns)) in &their_irtt {
        let mine = our_irtt.get(stream).map_or("none".to_string(), |v| v.to_string());
        if mine != ns.to_string() {
            diffs.push((*frame, "tcp.analysis.initial_rtt".into(), ns.to_string(), mine));
        }
    }
    for (frame, row) in &theirs {
        let Some(mine) = ours.get(frame) else {
            diffs.push((*frame, "packet".into(), "tcp".into(), "not analyzed".into()));
            continue;
        };
        for (field, value) in row {
            if *field == "tcp.analysis.initial_rtt" {
                continue;
            }
            let m = mine.get(field).cloned().unwrap_or_default();
            if &m != value {
                diffs.push((*frame, field.to_string(), value.clone(), m));
            }
        }
    }
    for frame in ours.keys().filter(|f| !theirs.contains_key(f)) {
        diffs.push((*frame, "packet".into(), "not tcp".into(), "tcp".into()));
    }
    (diffs, theirs)
}

/// Compares every file, prints a table of the differences, and checks them against
/// [`KNOWN`]. Returns the number of packets compared and, per flag field, how many
/// packets tshark flagged.
fn check(files: &[PathBuf]) -> (usize, BTreeMap<&'static str, usize>) {
    let mut unexpected = String::new();
    let mut packets = 0;
    let mut flagged: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut seen_known = vec![false; KNOWN.len()];
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let (diffs, theirs) = compare(file);
        let n = theirs.len();
        packets += n;
        for row in theirs.values() {
            for (name, _) in FLAGS {
                *flagged.entry(name).or_default() += usize::from(!row[name].is_empty());
            }
            *flagged.entry("tcp.flags.reset").or_default() += usize::from(!row["tcp.flags.reset"].is_empty());
        }
        println!("{name}: {n} TCP packets, {} differences", diffs.len());
        for (frame, field, theirs, ours) in diffs {
            match KNOWN.iter().position(|k| k.0 == name && k.1 == frame && k.2 == field) {
                Some(i) => seen_known[i] = true,
                None => {
                    let _ = writeln!(unexpected, "{name} frame {frame} {field}: tshark {theirs:?}, snap {ours:?}");
                }
            }
        }
    }
    let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    let stale: Vec<_> = KNOWN
        .iter()
        .zip(&seen_known)
        .filter(|(k, seen)| !**seen && names.iter().any(|n| n == k.0))
        .map(|(k, _)| format!("{} frame {} {}", k.0, k.1, k.2))
        .collect();
    assert!(unexpected.is_empty(), "snap and tshark disagree:\n{unexpected}");
    assert!(stale.is_empty(), "listed differences that no longer occur: {stale:?}");
    println!("{} captures, {packets} TCP packets compared; packets tshark flagged: {flagged:?}", files.len());
    (packets, flagged)
}

fn require_tshark_4_0() {
    let v = tshark_version();
    assert!(
        v.contains(" 4.0."),
        "this oracle's known differences are for tshark 4.0 (Debian 12, as CI installs); found {v:?}"
    );
}

#[test]
fn corpus_captures_match_tshark() {
    require_tshark_4_0();
    let mut files = Vec::new();
    for sub in std::fs::read_dir(corpus()).unwrap() {
        let sub = sub.unwrap().path();
        if !sub.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&sub).unwrap() {
            let f = f.unwrap().path();
            let ext = f.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext == "pcap" || ext == "pcapng" {
                files.push(f);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 20, "the corpus holds {} captures", files.len());
    let (packets, flagged) = check(&files);
    assert!(packets > 3000, "{packets} packets");
    // The flags the tcp rules count are all in the corpus (window full, keep-alives and
    // zero window probes are only in the made captures).
    for name in [
        "tcp.analysis.retransmission",
        "tcp.analysis.fast_retransmission",
        "tcp.analysis.spurious_retransmission",
        "tcp.analysis.duplicate_ack",
        "tcp.analysis.zero_window",
        "tcp.analysis.lost_segment",
        "tcp.analysis.ack_lost_segment",
        "tcp.flags.reset",
    ] {
        assert!(flagged[name] > 0, "the corpus exercises {name}");
    }
}

/// A small deterministic generator (xorshift*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const MS: i64 = 1_000_000;
const T0: i64 = 1_700_000_000 * 1_000_000_000;

/// A random conversation: a handshake (or not), data both ways with losses,
/// retransmissions, duplicate ACKs, zero windows, keep-alives; then a close, a reset
/// or nothing.
fn random_conversation(rng: &mut Rng, client: &str, server: &str, start: i64) -> Conversation {
    let mut c = Conversation::new(client, server, start);
    let isn = |rng: &mut Rng| if rng.chance(20) { u32::MAX - rng.below(3000) as u32 } else { rng.next() as u32 };
    let (ci, si) = (isn(rng), isn(rng));
    c.isn(ci, si);
    let rtt = 1 + rng.below(40) as i64;
    match rng.below(10) {
        0 => {
            // Mid-stream: no handshake.
            c.lose(Side::Client, 1).lose(Side::Server, 1).received(Side::Client).received(Side::Server);
        }
        1 => {
            c.syn();
            for _ in 0..rng.below(4) {
                c.wait((1 << rng.below(3)) * 1000 * MS).syn_again();
            }
            if rng.chance(50) {
                c.wait(rtt * MS / 2).rst(Side::Server);
                return c;
            }
            c.wait(rtt * MS / 2).syn_ack().wait(rtt * MS / 2).ack(Side::Client);
        }
        _ => {
            c.handshake(rtt * MS);
        }
    }
    let mut sent: Vec<(Side, u32, u32)> = Vec::new();
    for _ in 0..rng.below(60) {
        let side = if rng.chance(50) { Side::Client } else { Side::Server };
        let other = if side == Side::Client { Side::Server } else { Side::Client };
        c.wait(if rng.chance(30) { 0 } else { rng.below(30) as i64 * MS / 2 });
        match rng.below(20) {
            0..=6 => {
                let len = 1 + rng.below(1460) as u32;
                sent.push((side, c.next_seq(side), len));
                c.data(side, len);
            }
            7 => {
                let len = 1 + rng.below(1460) as u32;
                c.lose(side, len);
            }
            8 | 9 => {
                if let Some(&(s, seq, len)) = sent.get(rng.below(sent.len() as u64) as usize) {
                    c.send_at(s, seq, TcpFlags::PSH | TcpFlags::ACK, len);
                }
            }
            10..=12 => {
                c.ack(side);
            }
            13 => {
                for _ in 0..2 + rng.below(3) {
                    c.ack(other);
                }
            }
            14 => {
                c.window(side, if rng.chance(50) { 0 } else { 1 + rng.below(65535) as u16 }).ack(side);
            }
            15 => {
                let seq = c.next_seq(side).wrapping_sub(1);
                c.send_at(side, seq, TcpFlags::ACK, rng.below(2) as u32);
            }
            16 => {
                c.received(other).ack(other);
            }
            17 => {
                c.window(other, 0).ack(other).wait(rng.below(200) as i64 * MS);
                let seq = c.next_seq(side);
                c.send_at(side, seq, TcpFlags::ACK, 1).window(other, 1000).ack(other);
            }
            18 => {
                c.wait(rng.below(3000) as i64 * MS);
            }
            _ => {
                c.received(other).ack(other).data(side, 1 + rng.below(100) as u32);
            }
        }
    }
    match rng.below(6) {
        0 => {
            c.rst(if rng.chance(50) { Side::Client } else { Side::Server });
        }
        1 => {}
        2 => {
            // The client closes; the server answers after; the client resets.
            c.fin(Side::Client).wait(rng.below(100) as i64 * MS).data(Side::Server, 100).rst(Side::Client);
        }
        _ => {
            let first = if rng.chance(50) { Side::Client } else { Side::Server };
            c.received(Side::Client).received(Side::Server);
            c.fin(first).ack(first.other()).fin(first.other()).ack(first);
            if rng.chance(30) {
                // A retransmitted FIN.
                let seq = c.next_seq(first).wrapping_sub(1);
                c.wait(200 * MS).send_at(first, seq, TcpFlags::FIN | TcpFlags::ACK, 0);
            }
        }
    }
    c
}

fn random_capture(seed: u64) -> Vec<Segment> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut convs = Vec::new();
    for i in 0..1 + rng.below(6) {
        let v6 = rng.chance(25);
        let port = 40000 + rng.below(3) as u16;
        let (client, server) = if v6 {
            (format!("[2001:db8::{}]:{port}", 2 + i % 2), "[2001:db8::1]:443".to_string())
        } else {
            (format!("10.0.0.{}:{port}", 2 + i % 2), "10.0.0.1:80".to_string())
        };
        let start = T0 + rng.below(2000) as i64 * MS;
        convs.push(random_conversation(&mut rng, &client, &server, start));
    }
    let refs: Vec<&Conversation> = convs.iter().collect();
    let mut segs = merge(&refs);
    // Some reordering in the capture: neighbours swapped, times kept in order.
    for i in 1..segs.len() {
        if rng.chance(3) {
            let (t0, t1) = (segs[i - 1].time_ns, segs[i].time_ns);
            segs.swap(i - 1, i);
            segs[i - 1].time_ns = t0;
            segs[i].time_ns = t1;
        }
    }
    segs
}

/// Scenario captures with a name each: the conditions the rules are about.
fn scenarios() -> Vec<(&'static str, Vec<Segment>)> {
    use Side::{Client, Server};
    let mut out = Vec::new();
    // A read timeout: the request is unanswered, the client closes, the late answer is reset.
    let mut c = Conversation::new("10.0.0.2:40001", "10.0.0.1:8080", T0);
    c.handshake(2 * MS).data(Client, 300).ack(Server).wait(5000 * MS).fin(Client).ack(Server);
    c.wait(700 * MS).data(Server, 900).rst(Client);
    out.push(("read_timeout", c.segments()));
    // Connect timeout: SYNs doubling their interval, then refused on another port.
    let mut a = Conversation::new("10.0.0.2:40002", "10.0.0.9:5432", T0);
    a.syn().wait(1000 * MS).syn_again().wait(2000 * MS).syn_again().wait(4000 * MS).syn_again();
    let mut b = Conversation::new("10.0.0.2:40003", "10.0.0.1:6379", T0 + MS);
    b.syn().wait(MS / 10).rst(Server);
    out.push(("connect_failures", merge(&[&a, &b])));
    // Idle keep-alive connection closed by the server, then a request on it is reset.
    let mut c = Conversation::new("10.0.0.2:40004", "10.0.0.1:80", T0);
    c.handshake(MS).data(Client, 100).wait(3 * MS).data(Server, 2000).ack(Client);
    c.wait(60_000 * MS).fin(Server).ack(Client).wait(50 * MS).data(Client, 100).rst(Server);
    out.push(("idle_close_then_request", c.segments()));
    // A zero window, probes, and its reopening.
    let mut c = Conversation::new("10.0.0.2:40005", "10.0.0.1:80", T0);
    c.handshake(MS).data(Client, 100).data(Server, 1400).data(Server, 1400);
    c.window(Client, 0).ack(Client).wait(200 * MS);
    let s = c.next_seq(Server);
    c.send_at(Server, s, TcpFlags::ACK, 1).ack(Client).wait(400 * MS).send_at(Server, s, TcpFlags::ACK, 1);
    c.ack(Client).window(Client, 500).ack(Client).data(Server, 1400);
    out.push(("zero_window", c.segments()));
    // Loss with fast retransmission, then a timeout retransmission.
    let mut c = Conversation::new("[2001:db8::2]:40006", "[2001:db8::1]:443", T0);
    c.handshake(10 * MS).data(Client, 200).wait(5 * MS);
    let lost = c.next_seq(Server);
    c.lose(Server, 1000);
    for _ in 0..4 {
        c.data(Server, 1000).ack(Client);
    }
    c.wait(MS).send_at(Server, lost, TcpFlags::ACK, 1000).received(Client).ack(Client);
    let again = c.next_seq(Server);
    c.data(Server, 500).wait(300 * MS).send_at(Server, again, TcpFlags::PSH | TcpFlags::ACK, 500).ack(Client);
    out.push(("retransmissions", c.segments()));
    // Keep-alives on an idle connection.
    let mut c = Conversation::new("10.0.0.2:40007", "10.0.0.1:22", T0);
    c.handshake(MS).data(Server, 40).ack(Client);
    for _ in 0..3 {
        let seq = c.next_seq(Client).wrapping_sub(1);
        c.wait(75_000 * MS).send_at(Client, seq, TcpFlags::ACK, 0).ack(Server);
    }
    out.push(("keep_alive", c.segments()));
    out
}

/// A capture whose fourth packet's IPv4 datagram is split in two fragments, which tshark
/// reassembles and snap does not (see [`KNOWN`]).
fn fragmented() -> Vec<u8> {
    let mut c = Conversation::new("10.0.0.2:40008", "10.0.0.1:80", T0);
    c.handshake(MS).wait(MS).data(Side::Client, 1000).wait(MS).data(Side::Client, 200).ack(Side::Server);
    let pcap = write_pcap(&c.segments(), true);
    let mut out = pcap[..24].to_vec();
    let mut at = 24;
    let mut n = 0;
    while at < pcap.len() {
        let caplen = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        let rec = &pcap[at..at + 16 + caplen];
        at += 16 + caplen;
        n += 1;
        if n != 4 {
            out.extend(rec);
            continue;
        }
        // Record header (16), SLL (16), IPv4 header (20), then the TCP segment.
        let (head, sll, ip, payload) = (&rec[..16], &rec[16..32], &rec[32..52], &rec[52..]);
        for (i, part) in [&payload[..512], &payload[512..]].into_iter().enumerate() {
            let mut h = ip.to_vec();
            h[2..4].copy_from_slice(&((20 + part.len()) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
            let frag: u16 = if i == 0 { 0x2000 } else { 512 / 8 };
            h[6..8].copy_from_slice(&frag.to_be_bytes());
            h[10..12].copy_from_slice(&[0, 0]);
            let len = (16 + 20 + part.len()) as u32;
            out.extend(&head[..4]);
            out.extend((u32::from_le_bytes(head[4..8].try_into().unwrap()) + i as u32).to_le_bytes());
            out.extend(len.to_le_bytes());
            out.extend(len.to_le_bytes());
            out.extend(sll);
            out.extend(h);
            out.extend(part);
        }
    }
    out
}

#[test]
fn made_captures_match_tshark() {
    require_tshark_4_0();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, segs) in scenarios() {
        let path = dir.path().join(format!("scenario_{name}.pcap"));
        std::fs::write(&path, write_pcap(&segs, false)).unwrap();
        files.push(path);
    }
    let path = dir.path().join("ipv4_fragments.pcap");
    std::fs::write(&path, fragmented()).unwrap();
    files.push(path);
    let seeds: u64 = std::env::var("ORACLE_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    for seed in 1..=seeds {
        let path = dir.path().join(format!("random_{seed}.pcap"));
        std::fs::write(&path, write_pcap(&random_capture(seed), seed % 2 == 0)).unwrap();
        files.push(path);
    }
    let (_, flagged) = check(&files);
    // Every flag is exercised by the made captures.
    for (name, n) in &flagged {
        assert!(*n > 0, "no made capture has {name}");
    }
    // The scenarios show what the rules will read.
    let r = tcp::analyze(&std::fs::read(&files[0]).unwrap(), &Options::default()).unwrap();
    let g = r.notable.read_timeouts.connections().next().expect("a read timeout").gave_up.unwrap();
    assert_eq!((g.waited_ns, g.server_response_ns), (5000 * MS, Some(5700 * MS)));
    assert!(g.response_reset.is_some());
}

/// Real Linux TCP on loopback, captured by tcpdump while this test talks to itself: a
/// request answered, a client that gives up (its late answer is reset), a server that
/// closes first (the client's next request is reset), a refused connection and a bulk
/// transfer. Needs root and tcpdump (CI has both); says so and passes otherwise.
#[test]
fn loopback_capture_matches_tshark() {
    use std::io::{BufRead, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    // SAFETY: geteuid has no failure mode.
    if unsafe { libc::geteuid() } != 0 || Command::new("tcpdump").arg("--version").output().is_err() {
        println!("skipped: capturing on loopback needs root and tcpdump");
        return;
    }
    require_tshark_4_0();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let refused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loopback.pcap");
    let filter = format!("tcp port {port} or tcp port {refused}");
    let mut tcpdump = Command::new("tcpdump")
        .args(["-i", "lo", "-U", "-s", "0", "-w"])
        .arg(&path)
        .arg(&filter)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(tcpdump.stderr.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("listening"), "tcpdump: {line}");
    let (step_tx, step_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        // 1: answered after 50 ms.
        let (mut s, _) = listener.accept().unwrap();
        let n = s.read(&mut buf).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(&buf[..n]).unwrap();
        let _ = s.read(&mut buf);
        drop(s);
        // 2: the client gives up after 200 ms; the answer comes after 400 ms.
        let (mut s, _) = listener.accept().unwrap();
        let _ = s.read(&mut buf).unwrap();
        std::thread::sleep(Duration::from_millis(400));
        let _ = s.write_all(b"late answer");
        std::thread::sleep(Duration::from_millis(100));
        drop(s);
        step_tx.send(()).unwrap();
        // 3: the server closes an idle connection.
        let (s, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        drop(s);
        // 5: bulk.
        let (mut s, _) = listener.accept().unwrap();
        let mut total = 0;
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    let addr = format!("127.0.0.1:{port}");
    let mut c = TcpStream::connect(&addr).unwrap();
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut buf = [0u8; 64];
    let _ = c.read(&mut buf).unwrap();
    drop(c);
    let mut c = TcpStream::connect(&addr).unwrap();
    c.write_all(b"a slow request").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(c);
    step_rx.recv().unwrap();
    let mut c = TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let _ = c.write_all(b"request on a closed connection");
    std::thread::sleep(Duration::from_millis(50));
    drop(c);
    assert!(TcpStream::connect(format!("127.0.0.1:{refused}")).is_err());
    let mut c = TcpStream::connect(&addr).unwrap();
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..8 {
        c.write_all(&chunk).unwrap();
    }
    drop(c);
    assert_eq!(server.join().unwrap(), 8 << 20);
    std::thread::sleep(Duration::from_millis(200));
    Command::new("kill").args(["-TERM", &tcpdump.id().to_string()]).status().unwrap();
    tcpdump.wait().unwrap();
    let (packets, flagged) = check(std::slice::from_ref(&path));
    assert!(packets > 30, "{packets} packets captured");
    assert!(flagged["tcp.flags.reset"] >= 2, "{flagged:?}");
    let r = tcp::analyze(&std::fs::read(&path).unwrap(), &Options::default()).unwrap();
    assert_eq!(r.totals.connections, 5);
    assert_eq!((r.totals.refused, r.totals.read_timeouts, r.totals.late_requests), (1, 1, 1));
}

/// Throughput on a capture named by `SNAP_TCP_BENCH` (not a test of correctness; run it
/// with `cargo test --release --test oracle_tshark throughput -- --ignored --nocapture`):
/// the file streamed from disk ([`tcp::analyze_stream`], the time tshark is compared
/// with), and in memory ([`tcp::analyze`], as rules call it on a bundle entry).
#[test]
#[ignore]
fn throughput() {
    let Ok(path) = std::env::var("SNAP_TCP_BENCH") else {
        println!("set SNAP_TCP_BENCH to a capture file");
        return;
    };
    let size = std::fs::metadata(&path).unwrap().len() as f64;
    let report = |what: &str, r: &tcp::Report, secs: f64| {
        println!(
            "{what}: {} packets, {} connections in {secs:.3} s: {:.2} M packets/s, {:.0} MB/s",
            r.capture.packets,
            r.totals.connections,
            r.capture.packets as f64 / secs / 1e6,
            size / secs / 1e6
        );
    };
    for _ in 0..3 {
        let start = std::time::Instant::now();
        let r = tcp::analyze_stream(std::fs::File::open(&path).unwrap(), &Options::default()).unwrap();
        report("streamed from the file", &r, start.elapsed().as_secs_f64());
    }
    let bytes = std::fs::read(&path).unwrap();
    for _ in 0..3 {
        let start = std::time::Instant::now();
        let r = tcp::analyze(&bytes, &Options::default()).unwrap();
        report("in memory", &r, start.elapsed().as_secs_f64());
    }
}
