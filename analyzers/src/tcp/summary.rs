//! The aggregate of a capture's finished connections: the [`Report`] rules read.
//!
//! Each finished [`Connection`] is added once and dropped: totals for the whole capture,
//! per remote peer and per service, counts by end state, histograms (response time,
//! handshake RTT, retransmission timeout, idle time before the server closed, how long
//! clients waited before giving up) and, per kind of trouble, a bounded list of example
//! connections with all their facts, so findings can cite packet numbers and times.
//! Everything is bounded: [`Options::max_keys`] services and peers (the rest summed as
//! "other"), [`Options::examples_per_kind`] examples per kind.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use serde::{Serialize, Serializer};

use super::capture::{CaptureError, Format};
use super::decode::Skip;
use super::histogram::Histogram;
use super::track::{Connection, EndState, Locality, Options, ResetWhen, Side};

/// What the capture file held, packet-wise.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CaptureSummary {
    pub format: Option<Format>,
    /// Packets read (all kinds).
    pub packets: u64,
    /// Packets analyzed as TCP.
    pub tcp_packets: u64,
    /// Packets not analyzed, by reason.
    pub skipped: BTreeMap<Skip, u64>,
    pub link_types: BTreeSet<u32>,
    /// Time of the first and last packet (ns since the epoch).
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
    /// Packets whose timestamp is earlier than the one before.
    pub time_went_back: u64,
    /// The structural error that ended reading, if the file did not end cleanly: the
    /// report covers the packets before it.
    pub error: Option<CaptureError>,
}

impl CaptureSummary {
    /// Capture duration in nanoseconds.
    pub fn duration_ns(&self) -> i64 {
        match (self.first_ns, self.last_ns) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => 0,
        }
    }
}

/// Counts over a set of connections.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub connections: u64,
    pub packets: u64,
    /// Payload bytes both ways.
    pub bytes: u64,
    pub data_packets: u64,
    /// All kinds (tshark's `tcp.analysis.retransmission`), both directions.
    pub retransmissions: u64,
    pub fast_retransmissions: u64,
    pub spurious_retransmissions: u64,
    /// SYNs sent again (beyond the first of each connection).
    pub syn_retransmissions: u64,
    pub out_of_order: u64,
    pub dup_acks: u64,
    pub zero_windows: u64,
    pub lost_segments: u64,
    pub acked_unseen: u64,
    pub keep_alives: u64,
    /// Connections whose SYN got no SYN-ACK (refused included).
    pub connect_failures: u64,
    /// ... of which answered by RST.
    pub refused: u64,
    /// Connections reset, by who sent the first RST and when.
    pub resets: u64,
    pub resets_by_client: u64,
    pub resets_by_server: u64,
    pub resets_when: BTreeMap<ResetWhen, u64>,
    pub client_closed_first: u64,
    pub server_closed_first: u64,
    /// Clients that closed or reset with a request unanswered ([`GaveUp`](super::GaveUp))...
    pub gave_up: u64,
    /// ... of which certainly read timeouts ([`GaveUp::is_read_timeout`](super::GaveUp::is_read_timeout)).
    pub read_timeouts: u64,
    /// Requests sent on connections the server had closed.
    pub late_requests: u64,
    pub exchanges: u64,
    /// Connections whose last request got no response.
    pub unanswered: u64,
    pub max_rto_ns: i64,
}

impl Totals {
    fn add(&mut self, c: &Connection) {
        self.connections += 1;
        for s in [&c.client_sent, &c.server_sent] {
            self.packets += s.packets;
            self.bytes += s.bytes;
            self.data_packets += s.data_packets;
            self.retransmissions += s.retransmissions;
            self.fast_retransmissions += s.fast_retransmissions;
            self.spurious_retransmissions += s.spurious_retransmissions;
            self.out_of_order += s.out_of_order;
            self.dup_acks += s.dup_acks;
            self.zero_windows += s.zero_windows;
            self.lost_segments += s.lost_segments;
            self.acked_unseen += s.acked_unseen;
            self.keep_alives += s.keep_alives;
            if s.rto.count > 0 {
                self.max_rto_ns = self.max_rto_ns.max(s.rto.max_ns);
            }
        }
        self.syn_retransmissions += u64::from(c.syn_count.saturating_sub(1));
        if c.connect_failed() {
            self.connect_failures += 1;
        }
        if let Some(r) = c.reset {
            self.resets += 1;
            match r.by {
                Side::Client => self.resets_by_client += 1,
                Side::Server => self.resets_by_server += 1,
            }
            *self.resets_when.entry(r.when).or_default() += 1;
            if r.when == ResetWhen::Refused {
                self.refused += 1;
            }
        }
        match c.closed_first_by() {
            Some(Side::Client) => self.client_closed_first += 1,
            Some(Side::Server) => self.server_closed_first += 1,
            None => {}
        }
        self.gave_up += u64::from(c.gave_up.is_some());
        self.read_timeouts += u64::from(c.gave_up.is_some_and(|g| g.is_read_timeout()));
        self.late_requests += u64::from(c.late_request.is_some());
        self.exchanges += c.exchange_count;
        self.unanswered += u64::from(c.last_exchange.is_some_and(|x| x.response_first.is_none()));
    }

    /// Retransmitted packets per data packet.
    pub fn retransmission_rate(&self) -> f64 {
        if self.data_packets == 0 {
            0.0
        } else {
            self.retransmissions as f64 / self.data_packets as f64
        }
    }
}

/// A service: a local port, or a remote address and port for outbound connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// The server's address when it is remote (outbound, transit); `None` when local.
    pub ip: Option<IpAddr>,
    pub port: u16,
}

/// `:443` for a local service, `10.0.0.5:5432` or `[2001:db8::5]:443` for a remote one.
impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            None => write!(f, ":{}", self.port),
            Some(IpAddr::V4(ip)) => write!(f, "{ip}:{}", self.port),
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

impl Serialize for ServiceKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl ServiceKey {
    /// The service a connection belongs to: its server's port when the server is
    /// local, else the server's address and port.
    pub fn of(c: &Connection) -> ServiceKey {
        match c.locality {
            Locality::Inbound | Locality::Local => ServiceKey { ip: None, port: c.server.port },
            Locality::Outbound | Locality::Transit => ServiceKey { ip: Some(c.server.ip), port: c.server.port },
        }
    }
}

/// Totals and distributions of one service.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServiceSummary {
    pub totals: Totals,
    /// Server response times of answered exchanges.
    pub response_time: Histogram,
    /// Handshake RTTs (tshark's iRTT).
    pub handshake_rtt: Histogram,
    /// Retransmission timeouts observed, both directions.
    pub rto: Histogram,
    /// Idle time before the server sent the first FIN with no request pending (its
    /// keep-alive timeout, when consistent).
    pub server_idle_close: Histogram,
    /// How long clients waited for an unanswered request before giving up (their read
    /// timeout).
    pub client_gave_up: Histogram,
    /// Connections by state at the end of the capture.
    pub by_state: BTreeMap<EndState, u64>,
}

/// Totals and distributions of one remote peer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PeerSummary {
    pub totals: Totals,
    pub handshake_rtt: Histogram,
    pub rto: Histogram,
}

/// A bounded list of connections, the most notable first.
#[derive(Debug, Clone, Default)]
pub struct Examples {
    cap: usize,
    /// (score, connection), by score descending then id ascending.
    items: Vec<(i64, Connection)>,
    /// Connections of this kind, listed or not.
    pub seen: u64,
}

impl Examples {
    fn new(cap: usize) -> Examples {
        Examples { cap, items: Vec::new(), seen: 0 }
    }

    fn offer(&mut self, score: i64, c: &Connection) {
        self.seen += 1;
        let better = |a: (i64, u64), b: (i64, u64)| a.0 > b.0 || (a.0 == b.0 && a.1 < b.1);
        if self.items.len() >= self.cap {
            let Some(last) = self.items.last() else { return };
            if !better((score, c.id), (last.0, last.1.id)) {
                return;
            }
            self.items.pop();
        }
        let at = self.items.partition_point(|(s, x)| better((*s, x.id), (score, c.id)));
        self.items.insert(at, (score, c.clone()));
    }

    /// The examples, most notable first.
    pub fn connections(&self) -> impl Iterator<Item = &Connection> {
        self.items.iter().map(|(_, c)| c)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl Serialize for Examples {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'a> {
            seen: u64,
            connections: Vec<&'a Connection>,
        }
        Shown { seen: self.seen, connections: self.connections().collect() }.serialize(s)
    }
}

/// Example connections per kind of trouble, each list bounded and ordered as documented.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Notable {
    /// Clients that closed or reset with a request unanswered: certain read timeouts
    /// ([`GaveUp::is_read_timeout`](super::GaveUp::is_read_timeout)) first, then earliest first.
    pub read_timeouts: Examples,
    /// SYNs never answered by a SYN-ACK (refused or timed out); most SYNs first.
    pub connect_failures: Examples,
    /// Connections reset; earliest first.
    pub resets: Examples,
    /// Requests on connections the server had closed; earliest first.
    pub late_requests: Examples,
    /// Zero windows advertised; most first.
    pub zero_windows: Examples,
    /// Retransmissions; most first.
    pub retransmissions: Examples,
    /// Slowest single response first.
    pub slow_responses: Examples,
    /// The server closed an idle connection (first FIN, nothing pending); earliest first.
    pub idle_closes: Examples,
    /// Packets the capture missed (lost segments, ACKed unseen data); most first.
    pub capture_gaps: Examples,
}

impl Notable {
    fn new(cap: usize) -> Notable {
        Notable {
            read_timeouts: Examples::new(cap),
            connect_failures: Examples::new(cap),
            resets: Examples::new(cap),
            late_requests: Examples::new(cap),
            zero_windows: Examples::new(cap),
            retransmissions: Examples::new(cap),
            slow_responses: Examples::new(cap),
            idle_closes: Examples::new(cap),
            capture_gaps: Examples::new(cap),
        }
    }

    fn add(&mut self, c: &Connection) {
        if let Some(g) = c.gave_up {
            self.read_timeouts.offer(i64::from(g.is_read_timeout()), c);
        }
        if c.connect_failed() {
            self.connect_failures.offer(i64::from(c.syn_count), c);
        }
        if c.reset.is_some() {
            self.resets.offer(0, c);
        }
        if c.late_request.is_some() {
            self.late_requests.offer(0, c);
        }
        let zw = c.client_sent.zero_windows + c.server_sent.zero_windows;
        if zw > 0 {
            self.zero_windows.offer(zw as i64, c);
        }
        let rtx = c.client_sent.retransmissions + c.server_sent.retransmissions;
        if rtx > 0 {
            self.retransmissions.offer(rtx as i64, c);
        }
        if let Some(rt) = c.slowest.and_then(|x| x.response_time_ns) {
            self.slow_responses.offer(rt, c);
        }
        if c.close.is_some_and(|x| x.by == Side::Server && !x.pending_request) {
            self.idle_closes.offer(0, c);
        }
        let gaps = c.client_sent.lost_segments
            + c.server_sent.lost_segments
            + c.client_sent.acked_unseen
            + c.server_sent.acked_unseen;
        if gaps > 0 {
            self.capture_gaps.offer(gaps as i64, c);
        }
    }
}

/// Everything snap concluded from a capture's TCP traffic.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub capture: CaptureSummary,
    /// All connections.
    pub totals: Totals,
    /// Connections by their state at the end of the capture.
    pub by_state: BTreeMap<EndState, u64>,
    pub services: BTreeMap<ServiceKey, ServiceSummary>,
    /// Remote peers (see [`Connection::remote`]).
    pub peers: BTreeMap<IpAddr, PeerSummary>,
    /// Services and peers past [`Options::max_keys`], summed.
    pub other_services: Totals,
    pub other_peers: Totals,
    pub handshake_rtt: Histogram,
    pub response_time: Histogram,
    pub notable: Notable,
}

impl Report {
    /// The summary of a local service port, if it had connections.
    pub fn local_service(&self, port: u16) -> Option<&ServiceSummary> {
        self.services.get(&ServiceKey { ip: None, port })
    }
}

/// Adds up finished connections.
pub struct Summary {
    max_keys: usize,
    report: Report,
}

impl Summary {
    pub fn new(options: &Options) -> Summary {
        Summary {
            max_keys: options.max_keys,
            report: Report {
                capture: CaptureSummary::default(),
                totals: Totals::default(),
                by_state: BTreeMap::new(),
                services: BTreeMap::new(),
                peers: BTreeMap::new(),
                other_services: Totals::default(),
                other_peers: Totals::default(),
                handshake_rtt: Histogram::new(),
                response_time: Histogram::new(),
                notable: Notable::new(options.examples_per_kind),
            },
        }
    }

    /// The capture-level counters, filled by the caller.
    pub fn capture_mut(&mut self) -> &mut CaptureSummary {
        &mut self.report.capture
    }

    /// Adds one finished connection.
    pub fn add(&mut self, c: &Connection) {
        let r = &mut self.report;
        r.totals.add(c);
        *r.by_state.entry(c.end_state).or_default() += 1;
        r.notable.add(c);
        let key = ServiceKey::of(c);
        let service = if r.services.contains_key(&key) || r.services.len() < self.max_keys {
            Some(r.services.entry(key).or_default())
        } else {
            r.other_services.add(c);
            None
        };
        let remote = c.remote();
        let peer = if r.peers.contains_key(&remote) || r.peers.len() < self.max_keys {
            Some(r.peers.entry(remote).or_default())
        } else {
            r.other_peers.add(c);
            None
        };
        let rtos = [&c.client_sent.rto, &c.server_sent.rto];
        if let Some(s) = service {
            s.totals.add(c);
            *s.by_state.entry(c.end_state).or_default() += 1;
            s.response_time.merge(&c.response_times);
            if let Some(rtt) = c.initial_rtt_ns {
                s.handshake_rtt.add(rtt);
            }
            if let Some(close) = c.close.filter(|x| x.by == Side::Server && !x.pending_request) {
                s.server_idle_close.add(close.idle_ns);
            }
            if let Some(g) = c.gave_up {
                s.client_gave_up.add(g.waited_ns);
            }
            for rto in rtos.iter().filter(|r| r.count > 0) {
                s.rto.add(rto.max_ns);
            }
        }
        if let Some(p) = peer {
            p.totals.add(c);
            if let Some(rtt) = c.initial_rtt_ns {
                p.handshake_rtt.add(rtt);
            }
            for rto in rtos.iter().filter(|r| r.count > 0) {
                p.rto.add(rto.max_ns);
            }
        }
        if let Some(rtt) = c.initial_rtt_ns {
            r.handshake_rtt.add(rtt);
        }
        r.response_time.merge(&c.response_times);
    }

    pub fn finish(self) -> Report {
        self.report
    }
}
