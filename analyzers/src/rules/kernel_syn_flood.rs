//! `kernel.syn_flood`: the kernel's "possible SYN flooding on port N" messages per port,
//! with the SYN-cookie and listen-drop counters and the half-open connections of that
//! port in the socket scan.
//!
//! The message is printed when a SYN arrives for a listener whose SYN queue (request
//! sockets waiting for the final ACK) has reached the listen() backlog. Its wording
//! changed over the years; all of these are recognised:
//!
//! - 2.6: `possible SYN flooding on port 80. Sending cookies.`
//! - 3.x-4.x: `TCP: request_sock_TCP: Possible SYN flooding on port 80. Sending cookies.  Check SNMP counters.`
//! - 5.x-6.x: `TCP: request_sock_TCP: Possible SYN flooding on port 10.0.0.2:80. Sending cookies.`
//!   (`[::]:80` for IPv6, `Dropping request` when syncookies are off).
//!
//! The kernel prints it once per listening socket (and rate-limited), so the count is a
//! lower bound and the counters tell whether the flood is still going on: TcpExt
//! SyncookiesSent / SyncookiesRecv / SyncookiesFailed, TCPReqQFullDoCookies /
//! TCPReqQFullDrop (SYN queue full), ListenOverflows / ListenDrops (accept queue full),
//! as deltas over the sampling window, or since boot (labelled so) without one. The
//! counters belong to the collector's network namespace; the log is the host's.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use snap_bundle::names;

use super::net_counters::{Span, NETSTAT};
use super::tcp_common::local_ips;
use crate::klog::{self, Groups};
use crate::{Evidence, Finding, Input, Need, Rule, Severity, Skip};

pub struct SynFlood;

const SYNCOOKIES: &str = "proc/sys/net/ipv4/tcp_syncookies";
const MAX_SYN_BACKLOG: &str = "proc/sys/net/ipv4/tcp_max_syn_backlog";
const SOMAXCONN: &str = "proc/sys/net/core/somaxconn";

const COUNTERS: &[(&str, &str)] = &[
    ("TcpExt", "SyncookiesSent"),
    ("TcpExt", "SyncookiesRecv"),
    ("TcpExt", "SyncookiesFailed"),
    ("TcpExt", "TCPReqQFullDoCookies"),
    ("TcpExt", "TCPReqQFullDrop"),
    ("TcpExt", "ListenOverflows"),
    ("TcpExt", "ListenDrops"),
];

/// What one message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub port: u16,
    /// The listener's address, on kernels that print it.
    pub addr: Option<String>,
    /// `Sending cookies` or `Dropping request`.
    pub action: String,
}

/// Parses a "possible SYN flooding on port" message (any case, any kernel's wording).
pub fn parse(message: &str) -> Option<Message> {
    const KEY: &str = "possible syn flooding on port ";
    let at = message.to_ascii_lowercase().find(KEY)? + KEY.len();
    let rest = message.get(at..)?;
    let token = rest.split_whitespace().next()?.trim_end_matches(['.', ',']);
    let (addr, port) = match token.rsplit_once(':') {
        Some((a, p)) => (Some(a.trim_start_matches('[').trim_end_matches(']').to_string()), p),
        None => (None, token),
    };
    let port = port.parse().ok()?;
    let lower = rest.to_ascii_lowercase();
    let action = if lower.contains("sending cookies") {
        "Sending cookies"
    } else if lower.contains("dropping request") {
        "Dropping request"
    } else {
        ""
    };
    Some(Message { port, addr: addr.filter(|a| !a.is_empty()), action: action.to_string() })
}

impl Rule for SynFlood {
    fn id(&self) -> &'static str {
        "kernel.syn_flood"
    }

    fn detects(&self) -> &'static str {
        "SYN floods: the kernel's \"possible SYN flooding on port N\" messages, SYN-cookie and listen-drop counters, and half-open connections per port"
    }

    fn thresholds(&self) -> &'static str {
        "any \"possible SYN flooding\" message is critical (one level lower when the last was \
         logged more than an hour before the capture and the window shows no SYN_RECV \
         sockets on the port, SYN cookies or SYN-queue overflows), one finding per port: the listener's \
         SYN queue was full, so the kernel answered with SYN cookies (which lose TCP options \
         such as window scaling on old kernels) or, with syncookies off, dropped connection \
         attempts. The kernel prints it once per listening socket, so the count is a lower \
         bound; the TcpExt counters (SyncookiesSent/Recv/Failed, TCPReqQFullDoCookies/Drop, \
         ListenOverflows/Drops) show whether it is still going on: their increase over the \
         sampling window, or their value since boot when there is no window (labelled \
         since_boot). Without a message, SYN cookies sent or SYN-queue-full drops in the \
         window are a warning (the message may have been printed long ago, for the same \
         listener); since-boot counters alone never fire, nor do cookies sent with \
         tcp_syncookies=2 (always). SYN_RECV sockets of the port in the scan, \
         tcp_syncookies, tcp_max_syn_backlog and somaxconn are shown when present. The \
         kernel log is shared by all network namespaces, the counters and sockets are the \
         collector's: when the listener's address in the message is none of the collected \
         namespace's addresses (a container's listener), the finding says so \
         (other_namespace) and its age alone decides whether it is history."
    }

    fn inputs(&self) -> &'static [&'static str] {
        const I: &[&str] = &[
            "kernel/kmsg.txt (or another kernel log)",
            "samples/<n>/proc/net/netstat",
            NETSTAT,
            names::SOCKETS,
            SYNCOOKIES,
            MAX_SYN_BACKLOG,
            SOMAXCONN,
            "proc/net/fib_trie, proc/net/if_inet6 (optional: whether the listener is in the collected namespace)",
        ];
        I
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let lines = match klog::read(input) {
            Ok(l) => Some(l),
            Err(Skip::Missing(_)) => None,
            Err(e) => return Err(e),
        };
        let span = match Span::read(input, NETSTAT) {
            Ok(s) => Some(s),
            Err(Skip::Missing(_)) => None,
            Err(e) => return Err(e),
        };
        if lines.is_none() && span.is_none() {
            return Err(Skip::Missing(vec![klog::SOURCES.join(" or "), format!("samples/<n>/{NETSTAT} or {NETSTAT}")]));
        }

        let mut groups = Groups::default();
        let mut detail: BTreeMap<u16, (BTreeSet<String>, BTreeMap<String, usize>)> = BTreeMap::new();
        for line in lines.iter().flat_map(|l| l.iter()) {
            if let Some(m) = parse(&line.message) {
                groups.add(&format!(":{}", m.port), line);
                let d = detail.entry(m.port).or_default();
                if let Some(a) = m.addr {
                    d.0.insert(a);
                }
                if !m.action.is_empty() {
                    *d.1.entry(m.action).or_insert(0) += 1;
                }
            }
        }

        let sysctl = |entry: &str| input.text(entry).ok().and_then(|t| t.trim().parse::<u64>().ok());
        let sysctls: Vec<(&str, &str, Option<u64>)> = vec![
            ("tcp_syncookies", SYNCOOKIES, sysctl(SYNCOOKIES)),
            ("tcp_max_syn_backlog", MAX_SYN_BACKLOG, sysctl(MAX_SYN_BACKLOG)),
            ("somaxconn", SOMAXCONN, sysctl(SOMAXCONN)),
        ];
        let syn_recv: BTreeMap<u16, usize> = input
            .sockets()
            .map(|s| {
                let mut m = BTreeMap::new();
                for s in s
                    .iter()
                    .filter(|s| s.proto.starts_with("tcp") && matches!(s.state.as_str(), "SYN_RECV" | "NEW_SYN_RECV"))
                {
                    *m.entry(s.local_port).or_insert(0) += 1;
                }
                m
            })
            .unwrap_or_default();
        let have_scan = input.has(names::SOCKETS);

        let decorate = |mut f: Finding, port: Option<u16>| {
            if let Some(span) = &span {
                f = f.fact("counters", span.facts(COUNTERS)).fact("counters_scope", span.scope());
                if let Some(s) = span.seconds() {
                    f = f.fact("seconds", (s * 10.0).round() / 10.0);
                }
                for e in span.evidence(COUNTERS) {
                    f = f.evidence(e);
                }
            }
            if let (Some(p), true) = (port, have_scan) {
                let n = syn_recv.get(&p).copied().unwrap_or(0);
                f = f.fact("syn_recv", n).evidence(Evidence::entry(names::SOCKETS).value("syn_recv", n));
            }
            let mut sys = Evidence::entry("proc/sys/net");
            for (name, _, v) in &sysctls {
                if let Some(v) = v {
                    f = f.fact(name, *v);
                    sys = sys.value(name, *v);
                }
            }
            if !sys.values.is_empty() {
                f = f.evidence(sys);
            }
            f.advice(
                "Keep net.ipv4.tcp_syncookies=1 so that a full SYN queue degrades to cookies instead \
                 of dropping clients. Raise net.ipv4.tcp_max_syn_backlog and net.core.somaxconn, and \
                 the backlog the application passes to listen() (somaxconn only caps it): the SYN \
                 queue of a listener is as long as that backlog. If the sources are spoofed or \
                 hostile (many addresses, SYN_RECV sockets that never complete), filter or \
                 rate-limit them upstream (provider scrubbing, a SYN proxy, firewall rate limits); \
                 if they are real clients, the listener is too slow to accept (see \
                 net.listen_overflow and net.syn_recv).",
            )
        };

        let counters_line = |span: &Span| {
            let v = |n: &str| span.value("TcpExt", n).unwrap_or(0);
            format!(
                "{} SYN cookies sent, {} SYN-queue-full events, {} accept-queue overflows {}",
                v("SyncookiesSent"),
                v("TCPReqQFullDoCookies") + v("TCPReqQFullDrop"),
                v("ListenOverflows"),
                span.label()
            )
        };

        let now = klog::capture_uptime(input);
        // Every address the messages name is a specific one this namespace does not have
        // (its addresses read only when a message names one).
        let elsewhere = |addrs: &BTreeSet<String>| {
            !addrs.is_empty()
                && local_ips(input).as_ref().as_ref().is_some_and(|l| {
                    addrs.iter().all(|a| a.parse::<IpAddr>().is_ok_and(|ip| !ip.is_unspecified() && !l.contains(&ip)))
                })
        };
        let mut findings = Vec::new();
        if !groups.is_empty() {
            for (subject, g) in groups.into_groups() {
                let port: u16 = subject[1..].parse().unwrap_or(0);
                let (addrs, actions) = detail.remove(&port).unwrap_or_default();
                let other_namespace = elsewhere(&addrs);
                let action = actions.iter().max_by_key(|(_, n)| **n).map(|(a, _)| a.to_lowercase());
                let mut summary = format!(
                    "kernel logged possible SYN flooding on port {port} {} time{}{}",
                    g.count,
                    if g.count == 1 { "" } else { "s" },
                    action.map(|a| format!(" ({a})")).unwrap_or_default()
                );
                let mut f = g.finding(self.id(), Severity::Critical, &subject, String::new());
                summary.push_str(&g.span());
                if other_namespace {
                    let list: Vec<&str> = addrs.iter().map(String::as_str).collect();
                    summary.push_str(&format!(
                        "; {} is not an address of the collected network namespace (a container's?), so \
                         the figures that follow are not its listener's",
                        list.join(", ")
                    ));
                    f = f.fact("other_namespace", true);
                }
                if let Some(n) = syn_recv.get(&port).filter(|_| have_scan) {
                    summary.push_str(&format!("; {n} SYN_RECV now"));
                }
                if let Some(span) = &span {
                    summary.push_str(&format!("; {}", counters_line(span)));
                }
                f.summary = summary;
                f = f
                    .fact("port", port)
                    .fact("addresses", addrs.into_iter().collect::<Vec<_>>())
                    .fact("actions", serde_json::to_value(&actions).unwrap_or_default());
                // Half-open connections or SYN-queue overflows now: the flood is not history.
                // Not judged from this namespace's figures for another namespace's listener.
                let ongoing = !other_namespace
                    && (syn_recv.get(&port).is_some_and(|n| *n > 0 && have_scan)
                        || span.as_ref().is_some_and(|s| {
                            matches!(s, Span::Window(_))
                                && ["SyncookiesSent", "TCPReqQFullDoCookies", "TCPReqQFullDrop"]
                                    .iter()
                                    .any(|n| s.value("TcpExt", n).unwrap_or(0) > 0)
                        }));
                if !ongoing {
                    f = klog::aged(f, now, g.last_uptime_s);
                }
                findings.push(decorate(f, Some(port)));
            }
        } else if let Some(span @ Span::Window(_)) = &span {
            let sent = span.value("TcpExt", "SyncookiesSent").unwrap_or(0);
            let full_drop = span.value("TcpExt", "TCPReqQFullDrop").unwrap_or(0);
            let always_cookies = sysctls[0].2 == Some(2);
            if (sent > 0 && !always_cookies) || full_drop > 0 {
                let f = Finding::new(
                    self.id(),
                    Severity::Warning,
                    "all ports",
                    format!("SYN queue overflowing: {} (no SYN-flood message in the kernel log)", counters_line(span)),
                );
                findings.push(decorate(f, None));
            }
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::super::net_counters::fixtures::*;
    use super::*;
    use crate::rules::testing::bundle_with;

    #[test]
    fn parses_every_wording() {
        let m = |port, addr: Option<&str>, action: &str| Message {
            port,
            addr: addr.map(String::from),
            action: action.into(),
        };
        assert_eq!(parse("possible SYN flooding on port 80. Sending cookies."), Some(m(80, None, "Sending cookies")));
        assert_eq!(
            parse("TCP: request_sock_TCP: Possible SYN flooding on port 8080. Sending cookies.  Check SNMP counters."),
            Some(m(8080, None, "Sending cookies"))
        );
        assert_eq!(
            parse("TCP: request_sock_TCP: Possible SYN flooding on port 10.201.0.2:31938. Sending cookies."),
            Some(m(31938, Some("10.201.0.2"), "Sending cookies"))
        );
        assert_eq!(
            parse("TCPv6: request_sock_TCPv6: Possible SYN flooding on port [::]:443. Dropping request."),
            Some(m(443, Some("::"), "Dropping request"))
        );
        assert_eq!(parse("TCP: time wait bucket table overflow"), None);
        assert_eq!(parse("Possible SYN flooding on port x. Sending cookies."), None);
    }

    fn kmsg(lines: &[(u64, &str)]) -> String {
        lines.iter().enumerate().map(|(i, (us, m))| format!("6,{},{us},-;{m}\n", 1000 + i)).collect()
    }

    const FLOOD: &str = "TCP: request_sock_TCP: Possible SYN flooding on port 10.201.0.2:31938. Sending cookies.";

    fn syn_recv(port: u16, n: usize) -> String {
        (0..n)
            .map(|i| format!(
                r#"{{"proto":"tcp","local_addr":"10.201.0.2","local_port":{port},"remote_addr":"10.201.0.1","remote_port":{},"state":"SYN_RECV","recv_q":0,"send_q":0,"timer":"on","timer_secs":0.5,"retransmits":1,"inode":0,"owners":[]}}"#,
                40000 + i
            ) + "\n")
            .collect()
    }

    #[test]
    fn an_old_message_is_a_warning_unless_the_flood_goes_on() {
        // The message at 100 s after boot, the capture at 10,000 s (proc/uptime).
        let log = kmsg(&[(100_000_000, FLOOD)]);
        let at = |sockets: &str| {
            let b = bundle_with(&[
                ("kernel/kmsg.txt", &log),
                ("proc/uptime", "10000.00 19000.00\n"),
                ("scan/sockets.jsonl", sockets),
            ]);
            SynFlood.evaluate(&Input::new(&b)).unwrap().remove(0)
        };
        let history = at("");
        assert_eq!(history.severity, Severity::Warning);
        assert_eq!(history.facts["age_s"], 9900.0);
        assert!(history.summary.contains("the last 2 h 45 min before the capture"), "{}", history.summary);
        // Half-open connections on the port now: the flood is current, whatever the log's age.
        let ongoing = at(&syn_recv(31938, 3));
        assert_eq!(ongoing.severity, Severity::Critical);
    }

    #[test]
    fn message_is_critical_per_port_with_window_counters_and_syn_recv() {
        let log = kmsg(&[
            (5_927_290_787, FLOOD),
            (5_930_000_000, "TCP: request_sock_TCP: Possible SYN flooding on port 10.201.0.3:31938. Sending cookies."),
            (5_931_000_000, "possible SYN flooding on port 22. Sending cookies."),
            (5_932_000_000, "e1000: eth0 NIC Link is Up"),
        ]);
        let b = bundle_with(&[
            ("kernel/kmsg.txt", &log),
            ("manifest.json", &manifest_json(3)),
            ("samples/0/proc/net/netstat", &netstat(&[("ListenOverflows", 100), ("ListenDrops", 100)])),
            (
                "samples/2/proc/net/netstat",
                &netstat(&[
                    ("ListenOverflows", 400),
                    ("ListenDrops", 401),
                    ("SyncookiesSent", 12),
                    ("TCPReqQFullDoCookies", 290),
                ]),
            ),
            ("scan/sockets.jsonl", &syn_recv(31938, 2)),
            (SYNCOOKIES, "1\n"),
        ]);
        let f = SynFlood.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 2, "{f:#?}");
        let p = f.iter().find(|f| f.subject == ":31938").unwrap();
        assert_eq!(p.severity, Severity::Critical);
        assert_eq!(p.facts["count"], 2);
        assert_eq!(p.facts["first_time"], "5927.290787");
        assert_eq!(p.facts["last_time"], "5930.000000");
        assert_eq!(p.facts["addresses"], serde_json::json!(["10.201.0.2", "10.201.0.3"]));
        assert_eq!(p.facts["syn_recv"], 2);
        assert_eq!(p.facts["counters_scope"], "window");
        assert_eq!(p.facts["counters"]["ListenOverflows"], 300);
        assert_eq!(p.facts["counters"]["ListenDrops"], 301);
        assert_eq!(p.facts["counters"]["SyncookiesSent"], 12);
        assert_eq!(p.facts["tcp_syncookies"], 1);
        assert_eq!(
            p.summary,
            "kernel logged possible SYN flooding on port 31938 2 times (sending cookies) between 5927.290787 \
             and 5930.000000; 2 SYN_RECV now; 12 SYN cookies sent, 290 SYN-queue-full events, 300 \
             accept-queue overflows in the 2.0 s window"
        );
        let ssh = f.iter().find(|f| f.subject == ":22").unwrap();
        assert_eq!(ssh.facts["syn_recv"], 0);
        assert_eq!(ssh.facts["count"], 1);
    }

    #[test]
    fn a_listener_of_another_namespace_is_named_and_its_age_alone_counts() {
        const TRIE: &str = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 10.9.0.5\n        /32 host LOCAL\n";
        // Message at 100 s, capture at 10,000 s; half-open sockets on the same port here.
        let at = |trie: &str, message: &str| {
            let b = bundle_with(&[
                ("kernel/kmsg.txt", &kmsg(&[(100_000_000, message)])),
                ("proc/uptime", "10000.00 19000.00\n"),
                ("proc/net/fib_trie", trie),
                ("scan/sockets.jsonl", &syn_recv(31938, 3)),
            ]);
            SynFlood.evaluate(&Input::new(&b)).unwrap().remove(0)
        };
        let other = at(TRIE, FLOOD);
        assert_eq!(other.facts["other_namespace"], true);
        assert!(
            other.summary.contains(
                " at 100.000000; 10.201.0.2 is not an address of the collected network namespace (a container's?), \
                 so the figures that follow are not its listener's; 3 SYN_RECV now"
            ),
            "{}",
            other.summary
        );
        assert_eq!(other.severity, Severity::Warning, "old, and this namespace's SYN_RECV are not its");

        let here = at(&TRIE.replace("10.9.0.5", "10.201.0.2"), FLOOD);
        assert!(!here.facts.contains_key("other_namespace"), "{:?}", here.facts);
        assert_eq!(here.severity, Severity::Critical, "its half-open sockets are here: ongoing");
        let wildcard = at(TRIE, &FLOOD.replace("10.201.0.2", "0.0.0.0"));
        assert!(!wildcard.facts.contains_key("other_namespace"), "a wildcard listener may be anyone's");
        let no_address = at(TRIE, "possible SYN flooding on port 31938. Sending cookies.");
        assert!(!no_address.facts.contains_key("other_namespace"));
        let unknown = bundle_with(&[("kernel/kmsg.txt", &kmsg(&[(100_000_000, FLOOD)]))]);
        assert!(!SynFlood.evaluate(&Input::new(&unknown)).unwrap()[0].facts.contains_key("other_namespace"));
    }

    #[test]
    fn without_window_counters_are_since_boot() {
        let b = bundle_with(&[
            ("kernel/kmsg.txt", &kmsg(&[(1_000_000, FLOOD)])),
            (NETSTAT, &netstat(&[("SyncookiesSent", 5)])),
        ]);
        let f = &SynFlood.evaluate(&Input::new(&b)).unwrap()[0];
        assert_eq!(f.facts["counters_scope"], "since_boot");
        assert_eq!(f.facts["counters"]["SyncookiesSent"], 5);
        assert!(f.summary.ends_with("since boot"), "{}", f.summary);
        assert!(!f.facts.contains_key("syn_recv"), "no scan, no count");
    }

    #[test]
    fn quiet_on_the_idle_vm() {
        let b = bundle_with(&[
            ("kernel/kmsg.txt", &kmsg(&[(1_000_000, "e1000: eth0 NIC Link is Up")])),
            ("manifest.json", &manifest_json(2)),
            ("samples/0/proc/net/netstat", &netstat_idle()),
            ("samples/1/proc/net/netstat", &netstat_idle()),
            (NETSTAT, &netstat(&[("SyncookiesSent", 50)])),
        ]);
        assert_eq!(SynFlood.evaluate(&Input::new(&b)).unwrap(), vec![]);
    }

    #[test]
    fn cookies_in_the_window_without_message_warn_unless_always_on() {
        let entries = |cookies: &'static str| {
            vec![
                ("manifest.json", manifest_json(2)),
                ("samples/0/proc/net/netstat", netstat(&[("SyncookiesSent", 50)])),
                ("samples/1/proc/net/netstat", netstat(&[("SyncookiesSent", 80)])),
                (SYNCOOKIES, cookies.to_string()),
            ]
        };
        let run = |e: Vec<(&str, String)>| {
            let e: Vec<(&str, &str)> = e.iter().map(|(a, b)| (*a, b.as_str())).collect();
            SynFlood.evaluate(&Input::new(&bundle_with(&e))).unwrap()
        };
        let f = run(entries("1\n"));
        assert_eq!((f[0].subject.as_str(), f[0].severity), ("all ports", Severity::Warning));
        assert_eq!(f[0].facts["counters"]["SyncookiesSent"], 30);
        assert_eq!(run(entries("2\n")), vec![]);
    }

    #[test]
    fn not_evaluated_without_log_or_counters() {
        let b = bundle_with(&[("proc/stat", "cpu 1\n")]);
        assert!(matches!(SynFlood.evaluate(&Input::new(&b)), Err(Skip::Missing(_))));
    }
}
