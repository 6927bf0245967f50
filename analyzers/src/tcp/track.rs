//! The connection tracker: every TCP connection of a capture, reconstructed as the
//! packets stream by, each finished into a [`Connection`] record of facts once it is over.
//!
//! Connections are keyed by their 4-tuple, both directions together, in a hash map of
//! compact keys (no allocation per packet). The client is the side that sent the SYN,
//! else the side that received the SYN-ACK, else (captured mid-stream) a guess: the side
//! with the higher, ephemeral-looking port (see [`RoleSource::Guessed`]). Each packet goes
//! through Wireshark's sequence analysis ([`super::seq`]) and then the connection-level
//! bookkeeping: handshake, request/response exchanges, retransmission timeouts, closes
//! and resets.
//!
//! Memory is bounded by the connections live at once: a connection is finished (moved to
//! [`Tracker::take_finished`], its state dropped) [`Options::linger_ns`] of capture time
//! after it closed (both FINs acknowledged, or a RST), so that the late packets that
//! follow a close (the last ACK, a retransmitted FIN, a RST answering data after the
//! close) still land on it, as in Wireshark. A new SYN with a different initial sequence
//! number on the same ports finishes the old connection at once. If more than
//! [`Options::max_connections`] are open, the eighth that was idle longest is finished.
//! [`Tracker::finish`] finishes the rest at the end of the capture.
//!
//! Request/response exchanges: a request is a run of new client payload (retransmitted,
//! keep-alive and probe bytes are not new); the response is the server payload that
//! follows until the client sends new payload again. Response time = time of the first
//! response packet minus time of the last new request packet, so it includes what the
//! network added (lost requests resent, lost responses) but not the client's own
//! sending time. A connection keeps its first [`Options::exchanges_kept`] exchanges, its
//! slowest and its last, and counts the rest.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::IpAddr;

use serde::Serialize;

use super::decode::TcpPacket;
use super::histogram::Histogram;
use super::seq::{Analysis, Conversation, Reuse, SeqAnalysis};

/// How the tracker treats a capture.
#[derive(Debug, Clone)]
pub struct Options {
    /// The capturing host's addresses. With them, each connection is inbound (its server
    /// is local), outbound (its client is local), local (both) or transit (neither);
    /// without them every server is taken as local: the SYN receiver is "us".
    pub local_ips: Option<HashSet<IpAddr>>,
    /// Capture time a closed connection is kept for late packets before it is finished.
    pub linger_ns: i64,
    /// Connections tracked at once; past it the longest idle are finished early.
    pub max_connections: usize,
    /// Exchanges kept per connection (besides its slowest and its last).
    pub exchanges_kept: usize,
    /// Example connections kept per notable kind in the report.
    pub examples_per_kind: usize,
    /// Distinct services and peers the report keeps totals for; the rest are summed up
    /// as "other".
    pub max_keys: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            local_ips: None,
            linger_ns: 120 * 1_000_000_000,
            max_connections: 1 << 20,
            exchanges_kept: 16,
            examples_per_kind: 20,
            max_keys: 10_000,
        }
    }
}

impl Options {
    /// Options with the capturing host's addresses.
    pub fn with_local_ips(ips: impl IntoIterator<Item = IpAddr>) -> Options {
        Options { local_ips: Some(ips.into_iter().collect()), ..Options::default() }
    }
}

/// An address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

/// `10.0.0.1:80`, `[2001:db8::1]:443`.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// Where a packet is in the capture: the evidence rules cite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PacketRef {
    /// Packet number in the file, from 1 (as tshark and Wireshark number them).
    pub number: u64,
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
}

/// One side of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// How the client and server were told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleSource {
    /// The client sent a SYN.
    Syn,
    /// Only the SYN-ACK was seen: its sender is the server.
    SynAck,
    /// Captured mid-stream: the server is the side with a port below 1024 when the
    /// other's is not, else the side whose port is not ephemeral (32768 and up) when the
    /// other's is, else the lower port.
    Guessed,
}

/// Which side of a connection the capturing host is on (see [`Options::local_ips`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Locality {
    /// The server is local (or no local addresses were given).
    Inbound,
    /// The client is local, the server remote.
    Outbound,
    /// Both ends are local (loopback, containers).
    Local,
    /// Neither end is local (forwarded or bridged traffic).
    Transit,
}

/// Counters of what one side sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlowStats {
    pub packets: u64,
    /// Payload bytes, retransmissions included.
    pub bytes: u64,
    /// Packets carrying payload.
    pub data_packets: u64,
    /// As tshark's `tcp.analysis.retransmission`: plain, fast and spurious.
    pub retransmissions: u64,
    pub fast_retransmissions: u64,
    pub spurious_retransmissions: u64,
    pub out_of_order: u64,
    /// Segments after a gap: the capture missed what came before.
    pub lost_segments: u64,
    /// ACKs for data the capture never saw.
    pub acked_unseen: u64,
    pub dup_acks: u64,
    /// Zero windows advertised: this side could not take more data.
    pub zero_windows: u64,
    pub zero_window_probes: u64,
    pub keep_alives: u64,
    pub window_full: u64,
    /// Retransmission timeouts of the plain retransmissions (tshark's `tcp.analysis.rto`).
    pub rto: DurationStats,
    pub first_retransmission: Option<PacketRef>,
    pub first_zero_window: Option<PacketRef>,
    pub syns: u32,
    pub fins: u32,
    pub rsts: u32,
    pub fin: Option<PacketRef>,
    pub rst: Option<PacketRef>,
    /// Options of this side's SYN.
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamps: bool,
}

/// Count, minimum, maximum and sum of durations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DurationStats {
    pub count: u64,
    pub min_ns: i64,
    pub max_ns: i64,
    pub sum_ns: i64,
}

impl DurationStats {
    pub fn add(&mut self, ns: i64) {
        if self.count == 0 || ns < self.min_ns {
            self.min_ns = ns;
        }
        if self.count == 0 || ns > self.max_ns {
            self.max_ns = ns;
        }
        self.count += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
    }

    pub fn mean_ns(&self) -> Option<i64> {
        (self.count > 0).then(|| self.sum_ns / self.count as i64)
    }
}

/// A request and its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Exchange {
    /// First and last packet of new request payload.
    pub request_first: PacketRef,
    pub request_last: PacketRef,
    pub request_bytes: u64,
    /// First and last packet of new response payload, if any came.
    pub response_first: Option<PacketRef>,
    pub response_last: Option<PacketRef>,
    pub response_bytes: u64,
    /// `response_first` minus `request_last`.
    pub response_time_ns: Option<i64>,
}

/// The first FIN of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Close {
    pub by: Side,
    pub packet: PacketRef,
    /// Time since the last payload (or SYN) in either direction; 0 if the FIN carries data.
    pub idle_ns: i64,
    /// A request was waiting for its response.
    pub pending_request: bool,
}

/// What the side that reset a connection had seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetWhen {
    /// The server answered the client's SYN with a RST: nothing listens (refused).
    Refused,
    /// During the handshake otherwise.
    Handshake,
    /// Both sides open.
    Open,
    /// The resetting side had already sent its FIN: it got data after closing (a
    /// response after the client gave up, a request on a connection the server closed).
    AfterOwnFin,
    /// The peer had sent its FIN, the resetting side had not.
    AfterPeerFin,
    /// Both had sent FINs.
    AfterBothFins,
}

/// The first RST of a connection and what preceded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reset {
    pub by: Side,
    pub packet: PacketRef,
    pub when: ResetWhen,
    /// The last packet the resetting side had received before the RST, and its payload.
    pub answering: Option<PacketRef>,
    pub answering_payload: u32,
    /// A request was waiting for its response.
    pub pending_request: bool,
}

/// The client closed (FIN) or reset while its request was unanswered. A read timeout for
/// certain when the client reset, or when the answer that came after its FIN was reset
/// ([`GaveUp::is_read_timeout`]); otherwise possibly a client that half-closes after
/// sending and still reads (an upload), whose late answer is then acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GaveUp {
    pub request: Exchange,
    /// The client's FIN or RST.
    pub close: PacketRef,
    pub by_reset: bool,
    /// The observed timeout: close time minus the request's last packet time.
    pub waited_ns: i64,
    /// The response that came after the client closed, and the server's response time.
    pub late_response: Option<PacketRef>,
    pub server_response_ns: Option<i64>,
    /// The client's RST answering that late response.
    pub response_reset: Option<PacketRef>,
}

impl GaveUp {
    /// The client reset, or reset the answer that came after its FIN: it had given up.
    pub fn is_read_timeout(&self) -> bool {
        self.by_reset || self.response_reset.is_some()
    }
}

/// New client data after the server's FIN: a request on a connection the server closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LateRequest {
    pub request: PacketRef,
    pub server_fin: PacketRef,
    /// The server's RST answering it.
    pub reset: Option<PacketRef>,
}

/// A connection's state when the capture (or its tracking) ended, as netstat would name
/// its ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndState {
    /// SYN sent, no answer.
    SynSent,
    /// SYN-ACK sent, the client's ACK not seen.
    SynReceived,
    Established,
    /// Only the client sent FIN (the server's end in CLOSE_WAIT, or its FIN not captured).
    ClientClosed,
    /// Only the server sent FIN.
    ServerClosed,
    /// Both sent FIN, not both acknowledged.
    Closing,
    /// Both FINs sent and acknowledged.
    Closed,
    /// Reset after the handshake or during it.
    Reset,
    /// SYN answered by RST.
    Refused,
}

impl EndState {
    pub fn as_str(self) -> &'static str {
        match self {
            EndState::SynSent => "syn_sent",
            EndState::SynReceived => "syn_received",
            EndState::Established => "established",
            EndState::ClientClosed => "client_closed",
            EndState::ServerClosed => "server_closed",
            EndState::Closing => "closing",
            EndState::Closed => "closed",
            EndState::Reset => "reset",
            EndState::Refused => "refused",
        }
    }
}

/// Why a connection's record was finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishedBy {
    /// Closed or reset, and the linger time passed.
    Closed,
    /// A new connection on the same ports started.
    PortsReused,
    /// Too many connections at once: this one was idle longest.
    Evicted,
    /// The capture ended.
    EndOfCapture,
}

/// Everything snap knows about one connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Connection {
    /// Index in order of first packet, from 0, as tshark's `tcp.stream`.
    pub id: u64,
    pub client: Endpoint,
    pub server: Endpoint,
    pub roles: RoleSource,
    pub locality: Locality,
    pub first: PacketRef,
    pub last: PacketRef,
    /// The client's first SYN and how many it sent (retransmissions included).
    pub syn: Option<PacketRef>,
    pub syn_count: u32,
    pub syn_ack: Option<PacketRef>,
    pub syn_ack_count: u32,
    /// The client's first ACK after the SYN-ACK.
    pub established: Option<PacketRef>,
    /// Handshake RTT as tshark's `tcp.analysis.initial_rtt`: first ACK (without SYN)
    /// after the last SYN, minus that SYN's time.
    pub initial_rtt_ns: Option<i64>,
    /// Smallest time from a data segment to the ACK of exactly its end (tshark's
    /// `tcp.analysis.ack_rtt`, minimum over the connection): an RTT estimate when the
    /// handshake was not captured.
    pub min_ack_rtt_ns: Option<i64>,
    pub client_sent: FlowStats,
    pub server_sent: FlowStats,
    pub exchange_count: u64,
    /// The first exchanges ([`Options::exchanges_kept`]).
    pub exchanges: Vec<Exchange>,
    pub slowest: Option<Exchange>,
    pub last_exchange: Option<Exchange>,
    /// Response times of all answered exchanges.
    pub response_times: Histogram,
    pub close: Option<Close>,
    pub reset: Option<Reset>,
    pub gave_up: Option<GaveUp>,
    pub late_request: Option<LateRequest>,
    pub end_state: EndState,
    pub finished_by: FinishedBy,
}

impl Connection {
    pub fn sent_by(&self, side: Side) -> &FlowStats {
        match side {
            Side::Client => &self.client_sent,
            Side::Server => &self.server_sent,
        }
    }

    pub fn packets(&self) -> u64 {
        self.client_sent.packets + self.server_sent.packets
    }

    /// Who sent the first FIN, if anyone did.
    pub fn closed_first_by(&self) -> Option<Side> {
        self.close.map(|c| c.by)
    }

    /// Retransmitted packets (all kinds) per data packet, both directions.
    pub fn retransmission_rate(&self) -> f64 {
        let data = self.client_sent.data_packets + self.server_sent.data_packets;
        let rtx = self.client_sent.retransmissions + self.server_sent.retransmissions;
        if data == 0 {
            0.0
        } else {
            rtx as f64 / data as f64
        }
    }

    /// The remote end's address given [`Connection::locality`]: the server's for an
    /// outbound connection, else the client's.
    pub fn remote(&self) -> IpAddr {
        match self.locality {
            Locality::Outbound => self.server.ip,
            _ => self.client.ip,
        }
    }

    /// The client's SYNs were never answered by a SYN-ACK (refused or timed out).
    pub fn connect_failed(&self) -> bool {
        self.syn.is_some() && self.syn_ack.is_none() && self.client_sent.data_packets == 0
    }
}

/// What the tracker says about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PacketInfo {
    /// The connection's id ([`Connection::id`]).
    pub conn: u64,
    pub from_client: bool,
    pub analysis: SeqAnalysis,
    /// The connection's handshake RTT as known after this packet.
    pub initial_rtt_ns: Option<i64>,
}

/// Canonical 4-tuple: the lower (address, port) first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    lo: [u8; 16],
    hi: [u8; 16],
    lo_port: u16,
    hi_port: u16,
    v6: bool,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        let w = |b: &[u8; 16], i: usize| u64::from_ne_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        h.write_u64(w(&self.lo, 0) ^ w(&self.hi, 8).rotate_left(17));
        h.write_u64(w(&self.lo, 8) ^ w(&self.hi, 0).rotate_left(29));
        h.write_u64(u64::from(self.lo_port) << 32 | u64::from(self.hi_port) << 8 | u64::from(self.v6));
    }
}

fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

impl Key {
    fn new(p: &TcpPacket) -> Key {
        let (a, b) = ((ip_bytes(p.src), p.src_port), (ip_bytes(p.dst), p.dst_port));
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        Key { lo: lo.0, hi: hi.0, lo_port: lo.1, hi_port: hi.1, v6: p.src.is_ipv6() }
    }
}

/// FxHash: keys come from packets, but a capture is analyzed offline, once, so hash
/// flooding costs the analyst time at worst; speed matters more.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Where a connection's request/response exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Request,
    Response,
}

/// A connection being tracked.
#[derive(Debug)]
struct Conn {
    key: Key,
    /// Side 0 of the sequence analysis: the first packet's sender.
    a: Endpoint,
    b: Endpoint,
    /// 0 or 1: which side is the client.
    client: usize,
    ws: Conversation,
    facts: Connection,
    phase: Phase,
    cur: Option<Exchange>,
    /// The `ack` value that acknowledges each side's FIN, once sent.
    fin_end: [Option<u32>; 2],
    fin_acked: [bool; 2],
    /// Time of the last payload or SYN, either direction.
    last_activity: i64,
    /// Last packet from each side and its payload.
    last_from: [Option<(PacketRef, u32)>; 2],
    closed_at: Option<i64>,
}

fn guess_client(a: Endpoint, b: Endpoint) -> usize {
    let server_a = match (a.port < 1024, b.port < 1024) {
        (true, false) => true,
        (false, true) => false,
        _ => match (a.port >= 32768, b.port >= 32768) {
            (false, true) => true,
            (true, false) => false,
            _ => a.port <= b.port,
        },
    };
    if server_a {
        1
    } else {
        0
    }
}

fn locality(client: IpAddr, server: IpAddr, local: &Option<HashSet<IpAddr>>) -> Locality {
    let Some(local) = local else { return Locality::Inbound };
    match (local.contains(&client), local.contains(&server)) {
        (true, true) => Locality::Local,
        (false, true) => Locality::Inbound,
        (true, false) => Locality::Outbound,
        (false, false) => Locality::Transit,
    }
}

impl Conn {
    fn new(id: u64, key: Key, p: &TcpPacket, options: &Options) -> Conn {
        let a = Endpoint { ip: p.src, port: p.src_port };
        let b = Endpoint { ip: p.dst, port: p.dst_port };
        let (client, roles) = if p.flags.is_syn_only() {
            (0, RoleSource::Syn)
        } else if p.flags.is_syn_ack() {
            (1, RoleSource::SynAck)
        } else {
            (guess_client(a, b), RoleSource::Guessed)
        };
        let here = PacketRef { number: p.number, time_ns: p.time_ns };
        let (c, s) = if client == 0 { (a, b) } else { (b, a) };
        let facts = Connection {
            id,
            client: c,
            server: s,
            roles,
            locality: locality(c.ip, s.ip, &options.local_ips),
            first: here,
            last: here,
            syn: None,
            syn_count: 0,
            syn_ack: None,
            syn_ack_count: 0,
            established: None,
            initial_rtt_ns: None,
            min_ack_rtt_ns: None,
            client_sent: FlowStats::default(),
            server_sent: FlowStats::default(),
            exchange_count: 0,
            exchanges: Vec::new(),
            slowest: None,
            last_exchange: None,
            response_times: Histogram::new(),
            close: None,
            reset: None,
            gave_up: None,
            late_request: None,
            end_state: EndState::Established,
            finished_by: FinishedBy::EndOfCapture,
        };
        Conn {
            key,
            a,
            b,
            client,
            ws: Conversation::new(),
            facts,
            phase: Phase::Idle,
            cur: None,
            fin_end: [None; 2],
            fin_acked: [false; 2],
            last_activity: p.time_ns,
            last_from: [None; 2],
            closed_at: None,
        }
    }

    fn side_of(&self, p: &TcpPacket) -> usize {
        if p.src == self.a.ip && p.src_port == self.a.port {
            0
        } else {
            1
        }
    }

    fn set_client(&mut self, client: usize, roles: RoleSource, options: &Options) {
        self.client = client;
        let (c, s) = if client == 0 { (self.a, self.b) } else { (self.b, self.a) };
        if c != self.facts.client {
            std::mem::swap(&mut self.facts.client_sent, &mut self.facts.server_sent);
        }
        self.facts.client = c;
        self.facts.server = s;
        self.facts.roles = roles;
        self.facts.locality = locality(c.ip, s.ip, &options.local_ips);
    }

    /// Ends the current exchange, if any, into the connection's record.
    fn end_exchange(&mut self, options: &Options) {
        let Some(x) = self.cur.take() else { return };
        let f = &mut self.facts;
        f.exchange_count += 1;
        if let Some(rt) = x.response_time_ns {
            f.response_times.add(rt);
            if !matches!(f.slowest.and_then(|s| s.response_time_ns), Some(s) if s >= rt) {
                f.slowest = Some(x);
            }
        }
        if f.exchanges.len() < options.exchanges_kept {
            f.exchanges.push(x);
        }
        f.last_exchange = Some(x);
    }

    /// Connection-level bookkeeping for a packet from side `d`, after the sequence analysis.
    #[inline]
    fn observe(&mut self, d: usize, p: &TcpPacket, sa: &SeqAnalysis, options: &Options) {
        let th = p.flags;
        if th.is_syn_only() && self.facts.roles != RoleSource::Syn {
            self.set_client(d, RoleSource::Syn, options);
        } else if th.is_syn_ack() && self.facts.roles == RoleSource::Guessed {
            self.set_client(1 - d, RoleSource::SynAck, options);
        }
        let here = PacketRef { number: p.number, time_ns: p.time_ns };
        let from_client = d == self.client;
        let side = if from_client { Side::Client } else { Side::Server };
        let other = 1 - d;
        let flags = sa.flags;
        let len = p.payload_len;
        let new_data =
            len > 0 && !flags.has(Analysis::ANY_RETRANSMISSION | Analysis::KEEP_ALIVE | Analysis::ZERO_WINDOW_PROBE);
        let pending = self.phase == Phase::Request;

        let f = &mut self.facts;
        f.last = here;
        if self.ws.first_rtt != 0 {
            f.initial_rtt_ns = Some(self.ws.first_rtt);
        }
        if sa.acks_frame != 0 && sa.ack_rtt_ns >= 0 && !matches!(f.min_ack_rtt_ns, Some(m) if m <= sa.ack_rtt_ns) {
            f.min_ack_rtt_ns = Some(sa.ack_rtt_ns);
        }
        let st = if from_client { &mut f.client_sent } else { &mut f.server_sent };
        st.packets += 1;
        st.bytes += u64::from(len);
        st.data_packets += u64::from(len > 0);
        if flags.is_retransmission() {
            st.retransmissions += 1;
            st.first_retransmission.get_or_insert(here);
        }
        st.fast_retransmissions += u64::from(flags.has(Analysis::FAST_RETRANSMISSION));
        st.spurious_retransmissions += u64::from(flags.has(Analysis::SPURIOUS_RETRANSMISSION));
        st.out_of_order += u64::from(flags.has(Analysis::OUT_OF_ORDER));
        st.lost_segments += u64::from(flags.has(Analysis::LOST_SEGMENT));
        st.acked_unseen += u64::from(flags.has(Analysis::ACKED_UNSEEN));
        st.dup_acks += u64::from(flags.has(Analysis::DUPLICATE_ACK));
        st.zero_window_probes += u64::from(flags.has(Analysis::ZERO_WINDOW_PROBE));
        st.keep_alives += u64::from(flags.has(Analysis::KEEP_ALIVE));
        st.window_full += u64::from(flags.has(Analysis::WINDOW_FULL));
        if flags.has(Analysis::ZERO_WINDOW) {
            st.zero_windows += 1;
            st.first_zero_window.get_or_insert(here);
        }
        if flags.has(Analysis::RETRANSMISSION) && sa.rto_ns > 0 {
            st.rto.add(sa.rto_ns);
        }
        if th.syn() {
            st.syns += 1;
            let o = &p.options;
            st.mss = st.mss.or(o.mss);
            st.wscale = st.wscale.or(o.wscale);
            st.sack_permitted |= o.sack_permitted;
            st.timestamps |= o.timestamp.is_some();
        }
        if th.is_syn_only() && from_client {
            f.syn_count += 1;
            f.syn.get_or_insert(here);
        }
        if th.is_syn_ack() && !from_client {
            f.syn_ack_count += 1;
            f.syn_ack.get_or_insert(here);
        }
        if f.established.is_none() && f.syn_ack.is_some() && from_client && th.ack() && !th.syn() {
            f.established = Some(here);
        }

        // Exchanges.
        if new_data {
            if from_client {
                if let Some(fin) = f.server_sent.fin {
                    if f.client_sent.fin.is_none() && f.late_request.is_none() {
                        f.late_request = Some(LateRequest { request: here, server_fin: fin, reset: None });
                    }
                }
                match (self.phase, &mut self.cur) {
                    (Phase::Request, Some(x)) => {
                        x.request_last = here;
                        x.request_bytes += u64::from(len);
                    }
                    _ => {
                        self.end_exchange(options);
                        self.cur = Some(Exchange {
                            request_first: here,
                            request_last: here,
                            request_bytes: u64::from(len),
                            response_first: None,
                            response_last: None,
                            response_bytes: 0,
                            response_time_ns: None,
                        });
                        self.phase = Phase::Request;
                    }
                }
            } else if let Some(x) = &mut self.cur {
                if self.phase == Phase::Request {
                    let rt = here.time_ns.saturating_sub(x.request_last.time_ns);
                    x.response_first = Some(here);
                    x.response_time_ns = Some(rt);
                    self.phase = Phase::Response;
                    if let Some(g) = &mut self.facts.gave_up {
                        if g.late_response.is_none() && g.request.request_first == x.request_first {
                            g.late_response = Some(here);
                            g.server_response_ns = Some(rt);
                        }
                    }
                }
                x.response_last = Some(here);
                x.response_bytes += u64::from(len);
            }
        }
        let f = &mut self.facts;

        // Closes and resets.
        if th.fin() {
            let st = if from_client { &mut f.client_sent } else { &mut f.server_sent };
            st.fins += 1;
            if st.fin.is_none() {
                st.fin = Some(here);
                self.fin_end[d] = Some(p.seq.wrapping_add(len).wrapping_add(1 + u32::from(th.syn())));
            }
            if f.close.is_none() && f.reset.is_none() {
                let idle_ns = if len > 0 { 0 } else { p.time_ns.saturating_sub(self.last_activity) };
                f.close = Some(Close { by: side, packet: here, idle_ns, pending_request: pending });
            }
        }
        if th.ack() {
            if let Some(end) = self.fin_end[other] {
                if end.wrapping_sub(p.ack) as i32 <= 0 {
                    self.fin_acked[other] = true;
                }
            }
        }
        if (th.fin() || th.rst()) && from_client && pending && f.gave_up.is_none() {
            if let Some(x) = self.cur {
                f.gave_up = Some(GaveUp {
                    request: x,
                    close: here,
                    by_reset: th.rst(),
                    waited_ns: p.time_ns.saturating_sub(x.request_last.time_ns),
                    late_response: None,
                    server_response_ns: None,
                    response_reset: None,
                });
            }
        }
        if th.rst() {
            let st = if from_client { &mut f.client_sent } else { &mut f.server_sent };
            st.rsts += 1;
            st.rst.get_or_insert(here);
            if from_client {
                if let Some(g) = &mut f.gave_up {
                    if g.late_response.is_some() && g.response_reset.is_none() {
                        g.response_reset = Some(here);
                    }
                }
            } else if let Some(l) = &mut f.late_request {
                l.reset.get_or_insert(here);
            }
            if f.reset.is_none() {
                let (own_fin, peer_fin) = if from_client {
                    (f.client_sent.fin.is_some(), f.server_sent.fin.is_some())
                } else {
                    (f.server_sent.fin.is_some(), f.client_sent.fin.is_some())
                };
                let handshake_done = f.syn.is_none() || f.established.is_some() || f.client_sent.data_packets > 0;
                let when = if !from_client && f.syn.is_some() && f.syn_ack.is_none() && f.client_sent.data_packets == 0
                {
                    ResetWhen::Refused
                } else if !handshake_done {
                    ResetWhen::Handshake
                } else {
                    match (own_fin, peer_fin) {
                        (false, false) => ResetWhen::Open,
                        (true, false) => ResetWhen::AfterOwnFin,
                        (false, true) => ResetWhen::AfterPeerFin,
                        (true, true) => ResetWhen::AfterBothFins,
                    }
                };
                let (answering, answering_payload) = match self.last_from[other] {
                    Some((r, n)) => (Some(r), n),
                    None => (None, 0),
                };
                f.reset = Some(Reset {
                    by: side,
                    packet: here,
                    when,
                    answering,
                    answering_payload,
                    pending_request: pending,
                });
            }
        }
        if len > 0 || th.syn() {
            self.last_activity = p.time_ns;
        }
        self.last_from[d] = Some((here, len));
        if self.closed_at.is_none() && (th.rst() || (self.fin_acked[0] && self.fin_acked[1])) {
            self.closed_at = Some(p.time_ns);
        }
    }

    /// The finished record.
    fn finish(mut self, by: FinishedBy, options: &Options) -> Connection {
        self.end_exchange(options);
        let mut f = self.facts;
        f.finished_by = by;
        if self.ws.first_rtt != 0 {
            f.initial_rtt_ns = Some(self.ws.first_rtt);
        }
        let (cfin, sfin) = (f.client_sent.fin.is_some(), f.server_sent.fin.is_some());
        let no_data = f.client_sent.data_packets == 0 && f.server_sent.data_packets == 0;
        f.end_state = if let Some(r) = f.reset {
            if r.when == ResetWhen::Refused {
                EndState::Refused
            } else {
                EndState::Reset
            }
        } else if cfin && sfin {
            if self.fin_acked[0] && self.fin_acked[1] {
                EndState::Closed
            } else {
                EndState::Closing
            }
        } else if cfin {
            EndState::ClientClosed
        } else if sfin {
            EndState::ServerClosed
        } else if f.syn.is_some() && f.syn_ack.is_none() && no_data {
            EndState::SynSent
        } else if f.syn_ack.is_some() && f.established.is_none() && no_data {
            EndState::SynReceived
        } else {
            EndState::Established
        };
        f
    }
}

/// Reconstructs connections from TCP packets given in capture order.
pub struct Tracker {
    options: Options,
    table: HashMap<Key, u32, BuildHasherDefault<Fx>>,
    slots: Vec<Option<Conn>>,
    free: Vec<u32>,
    /// (close time, slot, connection id) in order of closing.
    closed: VecDeque<(i64, u32, u64)>,
    next_id: u64,
    now: i64,
    finished: Vec<Connection>,
}

impl Tracker {
    pub fn new(options: Options) -> Tracker {
        Tracker {
            options,
            table: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            closed: VecDeque::new(),
            next_id: 0,
            now: i64::MIN,
            finished: Vec::new(),
        }
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Connections being tracked.
    pub fn live(&self) -> usize {
        self.table.len()
    }

    fn create(&mut self, p: &TcpPacket, key: Key) -> u32 {
        let conn = Conn::new(self.next_id, key, p, &self.options);
        self.next_id += 1;
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(conn);
                s
            }
            None => {
                self.slots.push(Some(conn));
                (self.slots.len() - 1) as u32
            }
        };
        self.table.insert(key, slot);
        slot
    }

    fn finish_slot(&mut self, slot: u32, by: FinishedBy) {
        if let Some(conn) = self.slots[slot as usize].take() {
            if self.table.get(&conn.key) == Some(&slot) {
                self.table.remove(&conn.key);
            }
            self.free.push(slot);
            self.finished.push(conn.finish(by, &self.options));
        }
    }

    /// Tracks one packet (in capture order) and says what it is.
    #[inline]
    pub fn packet(&mut self, p: &TcpPacket) -> PacketInfo {
        if p.time_ns > self.now {
            self.now = p.time_ns;
            self.sweep();
        }
        let key = Key::new(p);
        let mut slot = match self.table.get(&key) {
            Some(&s) => s,
            None => self.create(p, key),
        };
        let mut conn = self.slots[slot as usize].as_mut().expect("a tracked slot holds a connection");
        let mut d = conn.side_of(p);
        let mut preset = 0;
        match conn.ws.reuse(d, p) {
            Reuse::None => {}
            Reuse::SynAckRebased => preset = Analysis::REUSED_PORTS,
            Reuse::NewConversation => {
                self.finish_slot(slot, FinishedBy::PortsReused);
                slot = self.create(p, key);
                conn = self.slots[slot as usize].as_mut().expect("just created");
                d = 0;
                preset = Analysis::REUSED_PORTS;
            }
        }
        let analysis = conn.ws.packet(d, p, preset);
        let was_closed = conn.closed_at.is_some();
        conn.observe(d, p, &analysis, &self.options);
        let info = PacketInfo {
            conn: conn.facts.id,
            from_client: d == conn.client,
            analysis,
            initial_rtt_ns: conn.facts.initial_rtt_ns,
        };
        if !was_closed {
            if let Some(t) = conn.closed_at {
                self.closed.push_back((t, slot, conn.facts.id));
            }
        }
        if self.table.len() > self.options.max_connections {
            self.evict_idle();
        }
        info
    }

    /// Finishes the connections whose linger time has passed.
    fn sweep(&mut self) {
        while let Some(&(t, slot, id)) = self.closed.front() {
            if t.saturating_add(self.options.linger_ns) > self.now {
                break;
            }
            self.closed.pop_front();
            if self.slots[slot as usize].as_ref().is_some_and(|c| c.facts.id == id) {
                self.finish_slot(slot, FinishedBy::Closed);
            }
        }
    }

    /// Finishes the eighth of the connections idle longest.
    fn evict_idle(&mut self) {
        let mut idle: Vec<(i64, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (c.facts.last.time_ns, i as u32)))
            .collect();
        let n = (idle.len() / 8).max(1);
        idle.select_nth_unstable(n - 1);
        for &(_, slot) in &idle[..n] {
            self.finish_slot(slot, FinishedBy::Evicted);
        }
    }

    /// Whether connections finished since [`Tracker::take_finished`] was last called.
    pub fn has_finished(&self) -> bool {
        !self.finished.is_empty()
    }

    /// The connections finished since the last call, in the order they finished.
    pub fn take_finished(&mut self) -> std::vec::Drain<'_, Connection> {
        self.finished.drain(..)
    }

    /// Finishes every connection still tracked (the capture ended), in order of id.
    pub fn finish(mut self) -> Vec<Connection> {
        let mut slots: Vec<(u64, u32)> =
            self.slots.iter().enumerate().filter_map(|(i, c)| c.as_ref().map(|c| (c.facts.id, i as u32))).collect();
        slots.sort_unstable();
        for (_, slot) in slots {
            self.finish_slot(slot, FinishedBy::EndOfCapture);
        }
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::synth::{merge, write_pcap, Conversation};
    use crate::tcp::{Item, Packets, TcpFlags};
    use Side::{Client, Server};

    const MS: i64 = 1_000_000;
    const T0: i64 = 1_700_000_000_000_000_000;

    /// The finished connections of a capture made of `convs`, in order of id.
    fn connections(convs: &[&Conversation], options: &Options) -> Vec<Connection> {
        let pcap = write_pcap(&merge(convs), false);
        let mut packets = Packets::new(&pcap, options).unwrap();
        let mut all = Vec::new();
        while let Some(item) = packets.next() {
            assert!(matches!(item, Ok(Item::Tcp(..))));
            all.extend(packets.take_finished());
        }
        all.extend(packets.finish());
        all.sort_by_key(|c| c.id);
        all
    }

    fn one(c: &Conversation) -> Connection {
        let mut all = connections(&[c], &Options::default());
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    #[test]
    fn a_clean_exchange() {
        let mut c = Conversation::new("10.0.0.2:40000", "10.0.0.1:80", T0);
        c.handshake(4 * MS).data(Client, 100).wait(MS).data(Client, 50).wait(20 * MS).data(Server, 1000);
        c.wait(MS).data(Server, 1000).ack(Client).wait(30 * MS).data(Client, 10).wait(5 * MS).data(Server, 10);
        c.wait(100 * MS).fin(Client).fin(Server).ack(Client);
        let f = one(&c);
        assert_eq!((f.roles, f.locality, f.end_state), (RoleSource::Syn, Locality::Inbound, EndState::Closed));
        assert_eq!(f.client.to_string(), "10.0.0.2:40000");
        assert_eq!(f.initial_rtt_ns, Some(4 * MS));
        assert_eq!((f.syn.unwrap().number, f.syn_ack.unwrap().number, f.established.unwrap().number), (1, 2, 3));
        assert_eq!((f.client_sent.bytes, f.server_sent.bytes, f.client_sent.data_packets), (160, 2010, 3));
        assert_eq!(f.exchange_count, 2);
        let x = f.exchanges[0];
        assert_eq!((x.request_first.number, x.request_last.number, x.request_bytes), (4, 5, 150));
        assert_eq!((x.response_first.unwrap().number, x.response_bytes, x.response_time_ns), (6, 2000, Some(20 * MS)));
        assert_eq!(f.slowest.unwrap().response_time_ns, Some(20 * MS));
        assert_eq!(f.last_exchange.unwrap().response_time_ns, Some(5 * MS));
        assert_eq!((f.response_times.count, f.response_times.max_ns), (2, 20 * MS as u64));
        let close = f.close.unwrap();
        assert_eq!((close.by, close.idle_ns, close.pending_request), (Client, 100 * MS, false));
        assert!(f.reset.is_none() && f.gave_up.is_none() && f.late_request.is_none());
        assert_eq!(f.retransmission_rate(), 0.0);
    }

    #[test]
    fn a_client_that_gives_up_and_resets_the_late_answer() {
        let mut c = Conversation::new("10.0.0.2:40001", "10.0.0.1:8080", T0);
        c.handshake(2 * MS).data(Client, 300).ack(Server).wait(5000 * MS).fin(Client).ack(Server);
        c.wait(700 * MS).data(Server, 900).rst(Client);
        let f = one(&c);
        let g = f.gave_up.unwrap();
        assert_eq!((g.close.number, g.by_reset, g.waited_ns), (6, false, 5000 * MS));
        assert_eq!((g.late_response.unwrap().number, g.server_response_ns), (8, Some(5700 * MS)));
        assert_eq!(g.response_reset.unwrap().number, 9);
        assert!(g.is_read_timeout());
        let r = f.reset.unwrap();
        assert_eq!(
            (r.by, r.when, r.answering.unwrap().number, r.answering_payload),
            (Client, ResetWhen::AfterOwnFin, 8, 900)
        );
        assert!(f.close.unwrap().pending_request);
        assert_eq!(f.end_state, EndState::Reset);
        // Resetting instead of closing is giving up too.
        let mut c = Conversation::new("10.0.0.2:40001", "10.0.0.1:8080", T0);
        c.handshake(2 * MS).data(Client, 300).wait(3000 * MS).rst(Client);
        let g = one(&c).gave_up.unwrap();
        assert_eq!((g.by_reset, g.waited_ns, g.late_response), (true, 3000 * MS, None));
        assert!(g.is_read_timeout());
    }

    #[test]
    fn connect_failures_refused_and_unanswered() {
        let mut a = Conversation::new("10.0.0.2:40002", "10.0.0.9:5432", T0);
        a.syn().wait(1000 * MS).syn_again().wait(2000 * MS).syn_again();
        let mut b = Conversation::new("10.0.0.2:40003", "10.0.0.1:6379", T0 + MS);
        b.syn().wait(MS / 10).rst(Server);
        let all = connections(&[&a, &b], &Options::with_local_ips(["10.0.0.2".parse().unwrap()]));
        assert_eq!((all[0].end_state, all[0].syn_count, all[0].locality), (EndState::SynSent, 3, Locality::Outbound));
        assert!(all[0].connect_failed());
        assert_eq!(all[0].remote(), "10.0.0.9".parse::<IpAddr>().unwrap());
        assert_eq!(all[1].end_state, EndState::Refused);
        assert_eq!(all[1].reset.unwrap().when, ResetWhen::Refused);
        assert!(all[1].connect_failed());
        // SYN retransmissions are plain retransmissions with their timeout.
        assert_eq!(all[0].client_sent.retransmissions, 2);
        assert_eq!((all[0].client_sent.rto.min_ns, all[0].client_sent.rto.max_ns), (1000 * MS, 3000 * MS));
    }

    #[test]
    fn a_server_idle_close_then_a_request_on_it() {
        let mut c = Conversation::new("10.0.0.2:40004", "10.0.0.1:80", T0);
        c.handshake(MS).data(Client, 100).wait(3 * MS).data(Server, 2000).ack(Client);
        c.wait(60_000 * MS).fin(Server).ack(Client).wait(50 * MS).data(Client, 100).rst(Server);
        let f = one(&c);
        let close = f.close.unwrap();
        assert_eq!((close.by, close.idle_ns, close.pending_request), (Server, 60_000 * MS, false));
        let l = f.late_request.unwrap();
        assert_eq!((l.request.number, l.server_fin.number, l.reset.unwrap().number), (9, 7, 10));
        let r = f.reset.unwrap();
        assert_eq!((r.by, r.when, r.answering_payload, r.pending_request), (Server, ResetWhen::AfterOwnFin, 100, true));
        assert_eq!(f.last_exchange.unwrap().response_first, None);
    }

    #[test]
    fn roles_are_guessed_mid_stream() {
        let mut c = Conversation::new("10.0.0.2:51000", "10.0.0.1:443", T0);
        c.lose(Client, 1).lose(Server, 1).received(Client).received(Server);
        c.data(Server, 100).ack(Client).data(Client, 20).wait(3 * MS).data(Server, 70);
        let f = one(&c);
        assert_eq!((f.roles, f.server.port, f.end_state), (RoleSource::Guessed, 443, EndState::Established));
        assert_eq!(f.syn, None);
        // Server-first bytes are no exchange; the request after them is.
        assert_eq!((f.exchange_count, f.slowest.unwrap().response_time_ns), (1, Some(3 * MS)));
        for (a, b, server) in [(80, 40000, 80), (40000, 80, 80), (8080, 50000, 8080), (3306, 5432, 3306)] {
            let ea = Endpoint { ip: "10.0.0.1".parse().unwrap(), port: a };
            let eb = Endpoint { ip: "10.0.0.2".parse().unwrap(), port: b };
            let client = guess_client(ea, eb);
            assert_eq!(if client == 0 { eb.port } else { ea.port }, server, "{a} {b}");
        }
        // A SYN-ACK alone names the server.
        let mut c = Conversation::new("10.0.0.2:80", "10.0.0.1:40000", T0);
        c.syn_ack();
        let f = one(&c);
        assert_eq!((f.roles, f.server.port, f.end_state), (RoleSource::SynAck, 40000, EndState::SynReceived));
    }

    #[test]
    fn closed_connections_linger_then_finish_and_ports_can_be_reused() {
        let mut a = Conversation::new("10.0.0.2:40005", "10.0.0.1:80", T0);
        a.handshake(MS).data(Client, 10).data(Server, 10).fin(Client).fin(Server).ack(Client);
        // A retransmitted FIN lands on the closed connection.
        let fin_seq = a.next_seq(Client).wrapping_sub(1);
        a.wait(1000 * MS).send_at(Client, fin_seq, TcpFlags::FIN | TcpFlags::ACK, 0);
        let mut b = Conversation::new("10.0.0.2:40005", "10.0.0.1:80", T0 + 200_000 * MS);
        b.isn(7777, 8888).handshake(MS).rst(Client);
        let pcap = write_pcap(&merge(&[&a, &b]), false);
        let mut tracker = Tracker::new(Options::default());
        let mut finished = Vec::new();
        for frame in crate::tcp::Capture::new(&pcap).unwrap() {
            let p = crate::tcp::decode(&frame.unwrap()).unwrap();
            let info = tracker.packet(&p);
            if p.number == 9 {
                assert!(info.analysis.flags.is_retransmission());
                assert_eq!(info.conn, 0);
            }
            if p.number == 10 {
                // The first connection was finished by the linger time, before the SYN.
                assert_eq!(finished.len() + tracker.finished.len(), 1);
                assert!(!info.analysis.flags.has(Analysis::REUSED_PORTS));
            }
            finished.extend(tracker.take_finished());
        }
        finished.extend(tracker.finish());
        assert_eq!(finished.len(), 2);
        assert_eq!((finished[0].finished_by, finished[0].end_state), (FinishedBy::Closed, EndState::Closed));
        assert_eq!((finished[0].client_sent.fins, finished[0].client_sent.retransmissions), (2, 1));
        assert_eq!((finished[1].id, finished[1].end_state), (1, EndState::Reset));
        // Within the linger time, a new SYN on the same ports is a reused port.
        let mut b = Conversation::new("10.0.0.2:40005", "10.0.0.1:80", T0 + 5000 * MS);
        b.isn(7777, 8888).handshake(MS);
        let all = connections(&[&a, &b], &Options::default());
        assert_eq!((all[0].finished_by, all[1].finished_by), (FinishedBy::PortsReused, FinishedBy::EndOfCapture));
    }

    #[test]
    fn memory_follows_the_connections_open_at_once() {
        // 3000 short connections one after another, each closed within 3 ms.
        let convs: Vec<Conversation> = (0..3000)
            .map(|i| {
                let mut c =
                    Conversation::new(&format!("10.0.{}.{}:40000", i / 250, i % 250), "10.0.0.1:80", T0 + i * 10 * MS);
                c.handshake(MS).data(Client, 10).data(Server, 10).fin(Client).fin(Server).ack(Client);
                c
            })
            .collect();
        let refs: Vec<&Conversation> = convs.iter().collect();
        let pcap = write_pcap(&merge(&refs), false);
        let options = Options { linger_ns: 1000 * MS, ..Options::default() };
        let mut tracker = Tracker::new(options);
        let (mut most, mut finished) = (0, 0);
        for frame in crate::tcp::Capture::new(&pcap).unwrap() {
            tracker.packet(&crate::tcp::decode(&frame.unwrap()).unwrap());
            most = most.max(tracker.live());
            finished += tracker.take_finished().count();
        }
        // Open ones plus those closed within the last second (100 of them).
        assert!(most <= 102, "{most} tracked at once");
        assert_eq!(finished + tracker.finish().len(), 3000);
    }

    #[test]
    fn too_many_connections_evict_the_idle_ones() {
        let convs: Vec<Conversation> = (0..40)
            .map(|i| {
                let mut c = Conversation::new(&format!("10.0.1.{i}:40000"), "10.0.0.1:80", T0 + i * MS);
                c.handshake(MS);
                c
            })
            .collect();
        let refs: Vec<&Conversation> = convs.iter().collect();
        let options = Options { max_connections: 16, ..Options::default() };
        let all = connections(&refs, &options);
        assert_eq!(all.len(), 40);
        let evicted = all.iter().filter(|c| c.finished_by == FinishedBy::Evicted).count();
        assert!(evicted >= 24, "{evicted}");
        assert!(all.iter().all(|c| c.initial_rtt_ns == Some(MS)));
    }
}
