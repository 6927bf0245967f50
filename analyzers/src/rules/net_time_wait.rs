//! `net.time_wait`: TIME_WAIT sockets by local service port or by remote peer, saying
//! which side closes the connections first.
//!
//! TIME_WAIT sits on the side that closed first (the active closer), for 60 seconds on
//! Linux. On a service port (one a listener has) it means the server closes, typically
//! its keep-alive timeout or a one-request-per-connection protocol; that costs little
//! memory and no ports. On ephemeral ports toward one peer it means this host, as a
//! client, closes first: every such socket holds one ephemeral port toward that peer
//! address and port for a minute, and the range (net.ipv4.ip_local_port_range) can run
//! out, at which point connect() fails with EADDRNOTAVAIL.

use std::collections::{BTreeMap, BTreeSet};

use snap_bundle::names;
use snap_bundle::scan::Socket;

use super::socket_tally::{endpoint, tally, to_object};
use crate::{Evidence, Finding, Input, Need, Rule, Severity};

pub struct TimeWait;

/// TIME_WAIT sockets on one subject from which the rule warns.
const WARN: usize = 1000;
/// Outgoing TIME_WAIT toward one peer as a share of the ephemeral range: warning, critical.
const WARN_RANGE_PERCENT: u64 = 50;
const CRITICAL_RANGE_PERCENT: u64 = 80;
/// Peers or local addresses listed in the facts (the most frequent first).
const TOP: usize = 10;
const EVIDENCE_LINES: usize = 3;

const PORT_RANGE: &str = "proc/sys/net/ipv4/ip_local_port_range";
const TW_REUSE: &str = "proc/sys/net/ipv4/tcp_tw_reuse";
const MAX_TW: &str = "proc/sys/net/ipv4/tcp_max_tw_buckets";

/// Which side of a TIME_WAIT socket this host was.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Subject {
    /// This host served on this local port and closed first.
    Server(u16),
    /// This host connected to this peer (address, port) and closed first.
    Client(String, u16),
}

impl Rule for TimeWait {
    fn id(&self) -> &'static str {
        "net.time_wait"
    }

    fn detects(&self) -> &'static str {
        "many TCP sockets in TIME_WAIT on one service port or toward one peer, and which side closes first"
    }

    fn thresholds(&self) -> &'static str {
        "warning from 1000 TIME_WAIT sockets on one subject: a local service port (`:PORT`, a port \
         some socket listens on, or one outside the ephemeral range talking to ephemeral ports) or a \
         remote peer this host connected to (`peer ADDR:PORT`). TIME_WAIT lasts 60 s and sits on the \
         side that closed first, so 1000 means about 17 connections a second closed by this side. \
         Toward one peer each socket holds an ephemeral port: warning also from 50 % of \
         net.ipv4.ip_local_port_range, critical from 80 % (connect() fails with EADDRNOTAVAIL when \
         the range is used up; tcp_tw_reuse lets outgoing connections reuse TIME_WAIT ports when \
         TCP timestamps are on). On a server port TIME_WAIT costs only memory (a few hundred bytes \
         each, capped by tcp_max_tw_buckets), so the advice is about the close policy, not a fault."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &[names::SOCKETS, PORT_RANGE, TW_REUSE, MAX_TW]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let sockets = input.sockets()?;
        let tcp = || sockets.iter().filter(|s| matches!(s.proto.as_str(), "tcp" | "tcp6"));
        let listening: BTreeSet<u16> = tcp().filter(|s| s.state == "LISTEN").map(|s| s.local_port).collect();
        let range = input.text(PORT_RANGE).ok().and_then(|t| parse_range(&t));
        let mut groups: BTreeMap<Subject, Vec<&Socket>> = BTreeMap::new();
        for s in tcp().filter(|s| s.state == "TIME_WAIT") {
            groups.entry(classify(s, &listening, range)).or_default().push(s);
        }
        let range_size = range.map(|(lo, hi)| u64::from(hi.saturating_sub(lo)) + 1);
        let total: usize = groups.values().map(Vec::len).sum();
        let mut findings = Vec::new();
        for (subject, socks) in groups {
            let count = socks.len();
            let share = match (&subject, range_size) {
                (Subject::Client(..), Some(n)) => Some(count as u64 * 100 / n),
                _ => None,
            };
            let severity = match share {
                Some(p) if p >= CRITICAL_RANGE_PERCENT => Severity::Critical,
                Some(p) if p >= WARN_RANGE_PERCENT => Severity::Warning,
                _ if count >= WARN => Severity::Warning,
                _ => continue,
            };
            let mut evidence =
                Evidence::entry(names::SOCKETS).value("time_wait", count).value("time_wait_total", total);
            for s in socks.iter().take(EVIDENCE_LINES) {
                evidence = evidence.line(format!(
                    "{} {} -> {} TIME_WAIT timer {:.1}s",
                    s.proto,
                    endpoint(&s.local_addr, s.local_port),
                    endpoint(&s.remote_addr, s.remote_port),
                    s.timer_secs
                ));
            }
            let finding = match &subject {
                Subject::Server(port) => {
                    let peers = tally(socks.iter().map(|s| s.remote_addr.clone()));
                    Finding::new(
                        self.id(),
                        severity,
                        format!(":{port}"),
                        format!(
                            "{count} TCP sockets in TIME_WAIT on local service port {port} from {} client \
                             addresses: the server closes connections first (active close)",
                            peers.len()
                        ),
                    )
                    .fact("local_port", *port)
                    .fact("listening", listening.contains(port))
                    .fact("clients", peers.len())
                    .fact("by_client", to_object(&peers, TOP))
                    .advice(
                        "TIME_WAIT is on the side that closed first, here the server: it closes \
                         connections, typically when its keep-alive timeout expires or because it serves \
                         one request per connection (HTTP/1.0, Connection: close). On a server port this \
                         costs memory only, not ports. To reduce it let clients close first: keep \
                         connections alive longer on the server than on the clients (e.g. nginx \
                         keepalive_timeout above the client's idle timeout) and reuse connections. Do not \
                         shorten TIME_WAIT with tcp_tw_recycle (removed in Linux 4.12, it broke clients \
                         behind NAT).",
                    )
                }
                Subject::Client(addr, port) => {
                    let locals = tally(socks.iter().map(|s| s.local_addr.clone()));
                    let peer = endpoint(addr, *port);
                    let mut summary = format!(
                        "{count} TCP sockets in TIME_WAIT toward {peer} on ephemeral ports: this host, as \
                         client, closes its connections first"
                    );
                    if let (Some(p), Some((lo, hi))) = (share, range) {
                        summary.push_str(&format!(", {p}% of the ephemeral port range {lo}-{hi}"));
                    }
                    let mut f = Finding::new(self.id(), severity, format!("peer {peer}"), summary)
                        .fact("peer", peer.clone())
                        .fact("local_addresses", to_object(&locals, TOP));
                    if let (Some(p), Some((lo, hi)), Some(n)) = (share, range, range_size) {
                        f = f
                            .fact("ephemeral_range", vec![lo, hi])
                            .fact("ephemeral_ports", n)
                            .fact("share_of_range_percent", p)
                            .evidence(Evidence::entry(PORT_RANGE).value("low", lo).value("high", hi));
                    }
                    f.advice(format!(
                        "TIME_WAIT is on the side that closed first, here this host as a client of {peer}: \
                         each socket holds an ephemeral port toward that peer for 60 s, and when the range \
                         is used up connect() fails with EADDRNOTAVAIL. Reuse connections (keep-alive, a \
                         connection pool) instead of opening one per request, or let the server close \
                         first. If that is not possible: widen net.ipv4.ip_local_port_range, enable \
                         net.ipv4.tcp_tw_reuse = 1 (needs TCP timestamps; reuses TIME_WAIT ports for \
                         outgoing connections safely), or spread connections over more local addresses \
                         or peer ports."
                    ))
                }
            };
            let mut finding = finding
                .evidence(evidence)
                .fact("count", count)
                .fact("closing_side", if matches!(subject, Subject::Server(_)) { "server" } else { "client" })
                .fact("time_wait_total", total);
            if let Some(v) = input.text(TW_REUSE).ok().and_then(|t| t.trim().parse::<u64>().ok()) {
                finding = finding.fact("tcp_tw_reuse", v);
            }
            if let Some(v) = input.text(MAX_TW).ok().and_then(|t| t.trim().parse::<u64>().ok()) {
                finding = finding.fact("tcp_max_tw_buckets", v);
            }
            findings.push(finding);
        }
        Ok(findings)
    }
}

/// The side this host played: server when the local port is a listener's port, or
/// outside the ephemeral range while the remote port is inside it; client otherwise.
fn classify(s: &Socket, listening: &BTreeSet<u16>, range: Option<(u16, u16)>) -> Subject {
    let in_range = |p: u16| range.is_some_and(|(lo, hi)| (lo..=hi).contains(&p));
    if listening.contains(&s.local_port)
        || (range.is_some()
            && !in_range(s.local_port)
            && in_range(s.remote_port)
            && !listening.contains(&s.remote_port))
    {
        Subject::Server(s.local_port)
    } else {
        Subject::Client(s.remote_addr.clone(), s.remote_port)
    }
}

/// `32768\t60999` (two numbers, low first).
fn parse_range(text: &str) -> Option<(u16, u16)> {
    let mut it = text.split_whitespace().map(|w| w.parse::<u16>().ok());
    let (lo, hi) = (it.next()??, it.next()??);
    (lo <= hi).then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;
    use crate::Skip;

    // Shaped as this VM's scan prints them (`snap collect`, scan/sockets.jsonl).
    fn tw(local: (&str, u16), remote: (&str, u16)) -> String {
        format!(
            r#"{{"proto":"tcp","local_addr":"{}","local_port":{},"remote_addr":"{}","remote_port":{},"state":"TIME_WAIT","recv_q":0,"send_q":0,"timer":"timewait","timer_secs":59.79,"retransmits":0,"uid":0,"inode":0,"owners":[]}}"#,
            local.0, local.1, remote.0, remote.1
        ) + "\n"
    }
    const LISTEN_80: &str = "{\"proto\":\"tcp6\",\"local_addr\":\"::\",\"local_port\":80,\"remote_addr\":\"::\",\"remote_port\":0,\"state\":\"LISTEN\",\"recv_q\":0,\"send_q\":0,\"timer\":\"off\",\"timer_secs\":0.0,\"retransmits\":0,\"uid\":0,\"inode\":20214,\"owners\":[{\"pid\":812,\"program\":\"nginx\",\"fd\":6}]}\n";
    const RANGE: &str = "32768\t60999\n";

    #[test]
    fn quiet_below_the_threshold() {
        let mut scan = LISTEN_80.to_string();
        for i in 0..999 {
            scan += &tw(("10.0.0.2", 80), ("10.0.1.1", 33000 + i));
        }
        for i in 0..999 {
            scan += &tw(("10.0.0.2", 40000 + i), ("10.0.3.3", 5432));
        }
        let b = bundle_with(&[("scan/sockets.jsonl", &scan), (PORT_RANGE, RANGE)]);
        assert_eq!(TimeWait.evaluate(&Input::new(&b)).unwrap(), vec![]);
    }

    #[test]
    fn server_port_closes_first() {
        let mut scan = LISTEN_80.to_string();
        for i in 0..1200 {
            scan += &tw(("10.0.0.2", 80), (if i % 3 == 0 { "10.0.1.1" } else { "10.0.1.2" }, 33000 + i));
        }
        let b = bundle_with(&[("scan/sockets.jsonl", &scan), (PORT_RANGE, RANGE), (TW_REUSE, "2\n")]);
        let f = TimeWait.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 1, "{f:#?}");
        let f = &f[0];
        assert_eq!((f.subject.as_str(), f.severity), (":80", Severity::Warning));
        assert_eq!(f.facts["count"], 1200);
        assert_eq!(f.facts["closing_side"], "server");
        assert_eq!(f.facts["clients"], 2);
        assert_eq!(f.facts["by_client"]["10.0.1.1"], 400);
        assert_eq!(f.facts["tcp_tw_reuse"], 2);
        assert!(f.summary.contains("the server closes connections first"), "{}", f.summary);
    }

    #[test]
    fn server_port_without_its_listener_is_recognised_by_the_ephemeral_range() {
        // The service stopped (no listener any more) but its TIME_WAIT sockets remain.
        let scan: String = (0..1000).map(|i| tw(("10.0.0.2", 8443), ("10.0.1.1", 40000 + i))).collect();
        let b = bundle_with(&[("scan/sockets.jsonl", &scan), (PORT_RANGE, RANGE)]);
        let f = TimeWait.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f[0].subject, ":8443");
        assert_eq!(f[0].facts["listening"], false);
    }

    #[test]
    fn client_closes_first_against_the_ephemeral_range() {
        let mut scan = LISTEN_80.to_string();
        for i in 0..1500 {
            scan += &tw(("10.0.0.2", 33000 + i), ("10.0.3.3", 5432));
        }
        // A tiny range: 1500 of 1801 ports is 83 %, critical.
        let b = bundle_with(&[("scan/sockets.jsonl", &scan), (PORT_RANGE, "32000 33800\n")]);
        let f = &TimeWait.evaluate(&Input::new(&b)).unwrap()[0];
        assert_eq!((f.subject.as_str(), f.severity), ("peer 10.0.3.3:5432", Severity::Critical));
        assert_eq!(f.facts["closing_side"], "client");
        assert_eq!(f.facts["share_of_range_percent"], 83);
        assert_eq!(f.facts["ephemeral_ports"], 1801);
        assert!(f.summary.contains("this host, as client, closes its connections first"), "{}", f.summary);
        // The default range: a warning by count only; without the range known, the same.
        let b = bundle_with(&[("scan/sockets.jsonl", &scan), (PORT_RANGE, RANGE)]);
        let f = &TimeWait.evaluate(&Input::new(&b)).unwrap()[0];
        assert_eq!((f.severity, f.facts["share_of_range_percent"].clone()), (Severity::Warning, 5.into()));
        let b = bundle_with(&[("scan/sockets.jsonl", &scan)]);
        let f = &TimeWait.evaluate(&Input::new(&b)).unwrap()[0];
        assert_eq!((f.subject.as_str(), f.severity), ("peer 10.0.3.3:5432", Severity::Warning));
        assert!(!f.facts.contains_key("share_of_range_percent"));
    }

    #[test]
    fn half_the_range_toward_one_peer_warns_below_1000() {
        let scan: String =
            (0..600).map(|i| tw(("::1", 40000 + i), ("::1", 6379))).collect::<String>().replace("\"tcp\"", "\"tcp6\"");
        let b = bundle_with(&[("scan/sockets.jsonl", &scan), (PORT_RANGE, "40000 40999\n")]);
        let f = &TimeWait.evaluate(&Input::new(&b)).unwrap()[0];
        assert_eq!((f.subject.as_str(), f.severity), ("peer [::1]:6379", Severity::Warning));
        assert_eq!(f.facts["share_of_range_percent"], 60);
    }

    #[test]
    fn range_parsing_and_missing_scan() {
        assert_eq!(parse_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_range("60999 32768"), None);
        assert_eq!(parse_range("garbage"), None);
        let b = bundle_with(&[(PORT_RANGE, RANGE)]);
        assert_eq!(TimeWait.evaluate(&Input::new(&b)), Err(Skip::missing("scan/sockets.jsonl")));
    }
}
