//! Captures made to order, for tests of the engine and of the rules built on it: write
//! TCP conversations packet by packet with exact times, into a nanosecond pcap of link
//! type LINUX_SLL (as `snap collect` writes) that tshark reads too.
//!
//! ```
//! use snap_analyzers::tcp::synth::{Conversation, write_pcap};
//! use snap_analyzers::tcp::Side::{Client, Server};
//!
//! let mut c = Conversation::new("10.0.0.2:40000", "10.0.0.1:80", 1_700_000_000_000_000_000);
//! c.handshake(2_000_000);                    // SYN, SYN-ACK, ACK; 2 ms RTT
//! c.data(Client, 120).wait(5_000_000);       // a request, then 5 ms of server time
//! c.data(Server, 3000).ack(Client);
//! c.fin(Client).fin(Server).ack(Client);
//! let pcap = write_pcap(&c.segments(), true);
//! # assert!(snap_analyzers::tcp::analyze(&pcap, &Default::default()).is_ok());
//! ```

use std::net::{IpAddr, SocketAddr};

use super::decode::TcpFlags;
use super::track::Side;

/// One TCP segment to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub time_ns: i64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    /// [`TcpFlags`] bits.
    pub flags: u16,
    pub window: u16,
    /// Raw TCP option bytes (padded to 4 bytes when written).
    pub options: Vec<u8>,
    /// Payload length; the payload bytes are zeros.
    pub len: u32,
}

/// A nanosecond LINUX_SLL pcap of the segments, in the order given. With `payload`
/// false only headers are kept (as snap's headers-only capture), the IP lengths still
/// counting the payload.
pub fn write_pcap(segments: &[Segment], payload: bool) -> Vec<u8> {
    let mut f = Vec::with_capacity(24 + segments.len() * 100);
    f.extend(0xa1b2_3c4du32.to_le_bytes());
    f.extend(2u16.to_le_bytes());
    f.extend(4u16.to_le_bytes());
    f.extend([0; 8]);
    f.extend(262_144u32.to_le_bytes());
    f.extend(113u32.to_le_bytes());
    for s in segments {
        let mut opts = s.options.clone();
        opts.resize(opts.len().div_ceil(4) * 4, 1);
        let tcp_len = 20 + opts.len();
        let v6 = s.src.is_ipv6();
        let ip_len = if v6 { 40 } else { 20 };
        let wire = ip_len + tcp_len + s.len as usize;
        let mut p = Vec::with_capacity(16 + wire);
        // SLL: outgoing (4) on Ethernet (1), no address, the EtherType.
        p.extend([0, 4, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]);
        p.extend(if v6 { 0x86ddu16 } else { 0x0800u16 }.to_be_bytes());
        match (s.src.ip(), s.dst.ip()) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mut h = [0u8; 20];
                h[0] = 0x45;
                h[2..4].copy_from_slice(&(wire as u16).to_be_bytes());
                h[6] = 0x40;
                h[8] = 64;
                h[9] = 6;
                h[12..16].copy_from_slice(&a.octets());
                h[16..20].copy_from_slice(&b.octets());
                let sum = checksum(&h);
                h[10..12].copy_from_slice(&sum.to_be_bytes());
                p.extend(h);
            }
            (a, b) => {
                let v6 = |ip: IpAddr| match ip {
                    IpAddr::V4(x) => x.to_ipv6_mapped().octets(),
                    IpAddr::V6(x) => x.octets(),
                };
                p.extend([0x60, 0, 0, 0]);
                p.extend(((tcp_len + s.len as usize) as u16).to_be_bytes());
                p.extend([6, 64]);
                p.extend(v6(a));
                p.extend(v6(b));
            }
        }
        p.extend(s.src.port().to_be_bytes());
        p.extend(s.dst.port().to_be_bytes());
        p.extend(s.seq.to_be_bytes());
        p.extend(s.ack.to_be_bytes());
        p.extend((((tcp_len / 4) as u16) << 12 | (s.flags & 0x0fff)).to_be_bytes());
        p.extend(s.window.to_be_bytes());
        p.extend([0, 0, 0, 0]);
        p.extend(&opts);
        let orig = p.len() + s.len as usize;
        if payload {
            p.resize(orig, 0);
        }
        let (sec, nsec) = (s.time_ns.div_euclid(1_000_000_000), s.time_ns.rem_euclid(1_000_000_000));
        f.extend((sec as u32).to_le_bytes());
        f.extend((nsec as u32).to_le_bytes());
        f.extend((p.len() as u32).to_le_bytes());
        f.extend((orig as u32).to_le_bytes());
        f.extend(p);
    }
    f
}

fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Merges conversations into one capture order: by time, stable.
pub fn merge(conversations: &[&Conversation]) -> Vec<Segment> {
    let mut all: Vec<Segment> = conversations.iter().flat_map(|c| c.segments()).collect();
    all.sort_by_key(|s| s.time_ns);
    all
}

/// One connection written as it happens: each call appends a segment from one side at
/// the current time, with that side's next sequence number and (with ACK) the other
/// side's as acknowledgment, and advances the sender's sequence.
#[derive(Debug, Clone)]
pub struct Conversation {
    client: SocketAddr,
    server: SocketAddr,
    /// Next sequence number per side (client, server).
    next: [u32; 2],
    /// Acknowledgment each side sends (what it has received).
    acked: [u32; 2],
    window: [u16; 2],
    syn_options: [Vec<u8>; 2],
    now: i64,
    out: Vec<Segment>,
}

/// MSS 1460, SACK permitted, window scale 7.
const SYN_OPTIONS: [u8; 12] = [2, 4, 5, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7];

fn idx(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

impl Conversation {
    /// A connection between two `ip:port` addresses (IPv6 as `[addr]:port`), starting at
    /// `start_ns`. Initial sequence numbers are 1000 (client) and 5000 (server).
    pub fn new(client: &str, server: &str, start_ns: i64) -> Conversation {
        Conversation {
            client: client.parse().expect("client ip:port"),
            server: server.parse().expect("server ip:port"),
            next: [1000, 5000],
            acked: [0, 0],
            window: [64240, 65160],
            syn_options: [SYN_OPTIONS.to_vec(), SYN_OPTIONS.to_vec()],
            now: start_ns,
            out: Vec::new(),
        }
    }

    /// Sets the initial sequence numbers (before the first segment).
    pub fn isn(&mut self, client: u32, server: u32) -> &mut Self {
        self.next = [client, server];
        self
    }

    /// The options of each side's SYN (default: MSS 1460, SACK permitted, window scale 7).
    pub fn syn_options(&mut self, side: Side, options: &[u8]) -> &mut Self {
        self.syn_options[idx(side)] = options.to_vec();
        self
    }

    /// The window field a side sends from now on.
    pub fn window(&mut self, side: Side, window: u16) -> &mut Self {
        self.window[idx(side)] = window;
        self
    }

    /// Lets time pass.
    pub fn wait(&mut self, ns: i64) -> &mut Self {
        self.now += ns;
        self
    }

    /// Current time.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// A side's next sequence number.
    pub fn next_seq(&self, side: Side) -> u32 {
        self.next[idx(side)]
    }

    /// Appends a segment from `side` with `flags` and `len` payload bytes at its next
    /// sequence number, and advances that (SYN and FIN count one). The receiver's
    /// acknowledgment moves past it if it was in order (see [`Conversation::lose`]).
    pub fn send(&mut self, side: Side, flags: u16, len: u32) -> &mut Self {
        let i = idx(side);
        let seq = self.next[i];
        self.push(side, seq, flags, len);
        let adv = len + u32::from(flags & TcpFlags::SYN != 0) + u32::from(flags & TcpFlags::FIN != 0);
        self.next[i] = seq.wrapping_add(adv);
        // The receiver acknowledges it only if nothing before it is missing.
        if self.acked[1 - i] == seq || self.acked[1 - i] == 0 {
            self.acked[1 - i] = self.next[i];
        }
        self
    }

    /// Appends a segment at an explicit sequence number without advancing anything: a
    /// retransmission (`seq` below the next) or a segment after a gap.
    /// It fills the receiver's gap if it starts where the receiver's acknowledgment is.
    pub fn send_at(&mut self, side: Side, seq: u32, flags: u16, len: u32) -> &mut Self {
        self.push(side, seq, flags, len);
        let i = idx(side);
        if self.acked[1 - i] == seq {
            self.acked[1 - i] = seq.wrapping_add(len);
        }
        self
    }

    /// Advances a side's sequence by `len` without writing the segment: a packet the
    /// capture missed (the receiver does not acknowledge it).
    pub fn lose(&mut self, side: Side, len: u32) -> &mut Self {
        let i = idx(side);
        self.next[i] = self.next[i].wrapping_add(len);
        self
    }

    /// Marks everything a side sent as received by the other (its next ACK covers it).
    pub fn received(&mut self, by: Side) -> &mut Self {
        let i = idx(by);
        self.acked[i] = self.next[1 - i];
        self
    }

    fn push(&mut self, side: Side, seq: u32, flags: u16, len: u32) {
        let i = idx(side);
        let (src, dst) = if i == 0 { (self.client, self.server) } else { (self.server, self.client) };
        let options = if flags & TcpFlags::SYN != 0 { self.syn_options[i].clone() } else { Vec::new() };
        let ack = if flags & TcpFlags::ACK != 0 { self.acked[i] } else { 0 };
        self.out.push(Segment { time_ns: self.now, src, dst, seq, ack, flags, window: self.window[i], options, len });
    }

    /// SYN from the client.
    pub fn syn(&mut self) -> &mut Self {
        self.send(Side::Client, TcpFlags::SYN, 0)
    }

    /// The client's SYN again (same sequence number).
    pub fn syn_again(&mut self) -> &mut Self {
        let seq = self.next[0].wrapping_sub(1);
        self.send_at(Side::Client, seq, TcpFlags::SYN, 0)
    }

    pub fn syn_ack(&mut self) -> &mut Self {
        self.send(Side::Server, TcpFlags::SYN | TcpFlags::ACK, 0)
    }

    /// SYN, SYN-ACK half an RTT later, ACK after another half.
    pub fn handshake(&mut self, rtt_ns: i64) -> &mut Self {
        self.syn().wait(rtt_ns / 2).syn_ack().wait(rtt_ns - rtt_ns / 2).ack(Side::Client)
    }

    /// A pure ACK.
    pub fn ack(&mut self, side: Side) -> &mut Self {
        self.send(side, TcpFlags::ACK, 0)
    }

    /// `len` bytes of new payload with PSH and ACK.
    pub fn data(&mut self, side: Side, len: u32) -> &mut Self {
        self.send(side, TcpFlags::PSH | TcpFlags::ACK, len)
    }

    /// FIN with ACK.
    pub fn fin(&mut self, side: Side) -> &mut Self {
        self.send(side, TcpFlags::FIN | TcpFlags::ACK, 0)
    }

    /// RST with ACK.
    pub fn rst(&mut self, side: Side) -> &mut Self {
        self.send(side, TcpFlags::RST | TcpFlags::ACK, 0)
    }

    /// The segments so far.
    pub fn segments(&self) -> Vec<Segment> {
        self.out.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::{analyze, EndState, Options};

    #[test]
    fn a_written_conversation_reads_back() {
        let mut c = Conversation::new("10.0.0.2:40000", "10.0.0.1:80", 1_000_000_000);
        c.handshake(2_000_000).data(Side::Client, 100).wait(7_000_000).data(Side::Server, 500);
        c.ack(Side::Client).fin(Side::Client).fin(Side::Server).ack(Side::Client);
        for payload in [true, false] {
            let r = analyze(&write_pcap(&c.segments(), payload), &Options::default()).unwrap();
            assert_eq!(r.capture.packets, 9);
            assert_eq!(r.totals.connections, 1);
            assert_eq!(r.totals.bytes, 600);
            assert_eq!(r.by_state.get(&EndState::Closed), Some(&1));
            assert_eq!(r.handshake_rtt.max_ns, 2_000_000);
            assert_eq!(r.response_time.max_ns, 7_000_000);
        }
    }

    #[test]
    fn the_report_serializes_to_json() {
        let mut c = Conversation::new("[2001:db8::2]:40000", "[2001:db8::1]:443", 1_000_000_000);
        c.handshake(2_000_000).data(Side::Client, 100).wait(3_000_000).data(Side::Server, 10).rst(Side::Client);
        let r = analyze(&write_pcap(&c.segments(), false), &Options::default()).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["by_state"]["reset"], 1);
        assert_eq!(v["services"][":443"]["totals"]["resets_by_client"], 1);
        assert_eq!(v["peers"]["2001:db8::2"]["totals"]["connections"], 1);
        assert_eq!(v["capture"]["format"]["kind"], "pcap");
        let reset = &v["notable"]["resets"]["connections"][0]["reset"];
        assert_eq!((reset["by"].as_str(), reset["when"].as_str()), (Some("client"), Some("open")));
    }
}
