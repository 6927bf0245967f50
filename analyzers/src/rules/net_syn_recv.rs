//! `net.syn_recv`: half-open TCP connections (SYN received, SYN-ACK sent, final ACK not
//! yet received) per local port, with the listener of that port and its accept queue.
//!
//! /proc/net/tcp lists each pending connection request as a SYN_RECV line with inode 0
//! (newer kernels keep them as NEW_SYN_RECV request sockets; both are counted). Many on
//! one port mean either a SYN flood (many sources that never answer the SYN-ACK) or a
//! listener whose accept queue is full, so that the kernel drops the clients' final ACK
//! and the requests stay half-open.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use snap_bundle::names;
use snap_bundle::scan::Socket;

use super::socket_tally::{endpoint, tally, to_object};
use crate::{Evidence, Finding, Input, Need, Rule, Severity};

pub struct SynRecv;

/// Half-open connections on one port from which the rule warns, and is critical.
const WARN: usize = 100;
const CRITICAL: usize = 1000;
/// Sources listed in the facts (the most frequent first).
const TOP: usize = 10;
const EVIDENCE_LINES: usize = 3;

const SYNCOOKIES: &str = "proc/sys/net/ipv4/tcp_syncookies";
const MAX_SYN_BACKLOG: &str = "proc/sys/net/ipv4/tcp_max_syn_backlog";
const SOMAXCONN: &str = "proc/sys/net/core/somaxconn";

impl Rule for SynRecv {
    fn id(&self) -> &'static str {
        "net.syn_recv"
    }

    fn detects(&self) -> &'static str {
        "many half-open TCP connections (SYN_RECV) on one local port: a SYN flood or a listener that cannot accept fast enough"
    }

    fn thresholds(&self) -> &'static str {
        "warning from 100 half-open connections (SYN_RECV or NEW_SYN_RECV) on one local port, \
         critical from 1000. On loopback or a LAN a handshake completes in well under a \
         millisecond and on the Internet in one round trip, so even a busy server holds only a \
         few at any instant; 100 means SYN-ACKs are not being answered (spoofed sources of a \
         SYN flood: many distinct addresses) or the final ACKs are dropped because the \
         listener's accept queue is full (the LISTEN socket's Recv-Q, shown with its owner), or the listener uses TCP_DEFER_ACCEPT and \
         clients connect without sending (the kernel keeps those in SYN_RECV until data comes). \
         tcp_syncookies, tcp_max_syn_backlog and somaxconn are reported when the bundle has them."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &[names::SOCKETS, SYNCOOKIES, MAX_SYN_BACKLOG, SOMAXCONN]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let sockets = input.sockets()?;
        let tcp = || sockets.iter().filter(|s| matches!(s.proto.as_str(), "tcp" | "tcp6"));
        let mut by_port: BTreeMap<u16, Vec<&Socket>> = BTreeMap::new();
        for s in tcp().filter(|s| matches!(s.state.as_str(), "SYN_RECV" | "NEW_SYN_RECV")) {
            by_port.entry(s.local_port).or_default().push(s);
        }
        by_port.retain(|_, v| v.len() >= WARN);
        if by_port.is_empty() {
            return Ok(Vec::new());
        }
        let sysctl = |entry: &str| input.text(entry).ok().and_then(|t| t.trim().parse::<u64>().ok());
        let (syncookies, max_syn_backlog, somaxconn) = (sysctl(SYNCOOKIES), sysctl(MAX_SYN_BACKLOG), sysctl(SOMAXCONN));
        let mut findings = Vec::new();
        for (port, socks) in by_port {
            let count = socks.len();
            let sources = tally(socks.iter().map(|s| s.remote_addr.clone()));
            let listeners: Vec<&Socket> = tcp().filter(|s| s.state == "LISTEN" && s.local_port == port).collect();
            let accept_queue: u64 = listeners.iter().map(|l| l.recv_q).sum();
            let owners: Vec<String> = {
                let mut o: Vec<String> = listeners
                    .iter()
                    .flat_map(|l| &l.owners)
                    .map(|o| format!("pid {} ({})", o.pid, o.program))
                    .collect();
                o.sort();
                o.dedup();
                o
            };
            let severity = if count >= CRITICAL { Severity::Critical } else { Severity::Warning };
            let mut summary =
                format!("{count} half-open connections (SYN_RECV) on port {port} from {} sources", sources.len());
            if listeners.is_empty() {
                summary.push_str(", no listener on that port in the scan");
            } else {
                summary.push_str(&format!(", accept queue {accept_queue}"));
                if !owners.is_empty() {
                    summary.push_str(&format!(" ({})", owners.join(", ")));
                }
            }
            let mut evidence = Evidence::entry(names::SOCKETS).value("syn_recv", count);
            for s in socks.iter().take(EVIDENCE_LINES) {
                evidence = evidence.line(format!(
                    "{} {} <- {} {} retransmits {}",
                    s.proto,
                    endpoint(&s.local_addr, s.local_port),
                    endpoint(&s.remote_addr, s.remote_port),
                    s.state,
                    s.retransmits
                ));
            }
            for l in &listeners {
                evidence = evidence.line(format!(
                    "{} {} LISTEN recv_q {} (accept queue)",
                    l.proto,
                    endpoint(&l.local_addr, l.local_port),
                    l.recv_q
                ));
            }
            let listener_facts: Vec<Value> = listeners
                .iter()
                .map(|l| {
                    json!({
                        "local": endpoint(&l.local_addr, l.local_port),
                        "accept_queue": l.recv_q,
                        "owners": l.owners.iter().map(|o| json!({"pid": o.pid, "program": o.program, "fd": o.fd})).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let mut f = Finding::new(self.id(), severity, format!(":{port}"), summary)
                .evidence(evidence)
                .fact("local_port", port)
                .fact("count", count)
                .fact("sources", sources.len())
                .fact("by_source", to_object(&sources, TOP))
                .fact("listeners", listener_facts)
                .fact("accept_queue", accept_queue);
            let mut sys = Evidence::entry("proc/sys/net");
            for (name, v) in
                [("tcp_syncookies", syncookies), ("tcp_max_syn_backlog", max_syn_backlog), ("somaxconn", somaxconn)]
            {
                if let Some(v) = v {
                    f = f.fact(name, v);
                    sys = sys.value(name, v);
                }
            }
            if !sys.values.is_empty() {
                f = f.evidence(sys);
            }
            findings.push(f.advice(
                "Tell a flood from a slow listener. Many distinct sources that each appear once or twice, \
                 and an accept queue that is not full, point at a SYN flood: keep net.ipv4.tcp_syncookies \
                 enabled (1), raise tcp_max_syn_backlog, and filter or rate-limit the sources upstream; \
                 kernel.syn_flood shows the kernel's own messages. Few, real clients and a full accept \
                 queue point at the application: it does not call accept() fast enough (blocked workers, \
                 too few of them); raise its listen() backlog together with net.core.somaxconn only after \
                 making it accept faster (see net.listen_overflow). A listener with TCP_DEFER_ACCEPT also \
                 holds idle clients in SYN_RECV: then the sources are real clients that connect and send nothing.",
            ));
        }
        Ok(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;
    use crate::Skip;

    // A request socket as /proc/net/tcp prints it (state 03, inode 0, SYN-ACK timer
    // running) and the scan records it.
    fn syn_recv(port: u16, src: &str, sport: u16, state: &str) -> String {
        format!(
            r#"{{"proto":"tcp","local_addr":"10.0.0.2","local_port":{port},"remote_addr":"{src}","remote_port":{sport},"state":"{state}","recv_q":0,"send_q":0,"timer":"on","timer_secs":0.87,"retransmits":1,"uid":33,"inode":0,"owners":[]}}"#
        ) + "\n"
    }
    const LISTEN_80: &str = "{\"proto\":\"tcp\",\"local_addr\":\"0.0.0.0\",\"local_port\":80,\"remote_addr\":\"0.0.0.0\",\"remote_port\":0,\"state\":\"LISTEN\",\"recv_q\":129,\"send_q\":0,\"timer\":\"off\",\"timer_secs\":0.0,\"retransmits\":0,\"uid\":33,\"inode\":20203,\"owners\":[{\"pid\":812,\"program\":\"nginx\",\"fd\":6},{\"pid\":813,\"program\":\"nginx\",\"fd\":6}]}\n";

    #[test]
    fn quiet_below_100_per_port() {
        let mut scan = LISTEN_80.to_string();
        for i in 0..99 {
            scan += &syn_recv(80, "198.51.100.7", 40000 + i, "SYN_RECV");
            scan += &syn_recv(443, "198.51.100.7", 40000 + i, "SYN_RECV");
        }
        let b = bundle_with(&[("scan/sockets.jsonl", &scan)]);
        assert_eq!(SynRecv.evaluate(&Input::new(&b)).unwrap(), vec![]);
    }

    #[test]
    fn per_port_with_listener_and_accept_queue() {
        let mut scan = LISTEN_80.to_string();
        for i in 0..150u16 {
            let src = format!("203.0.113.{}", i % 50);
            scan += &syn_recv(80, &src, 20000 + i, if i % 2 == 0 { "SYN_RECV" } else { "NEW_SYN_RECV" });
        }
        let b = bundle_with(&[
            ("scan/sockets.jsonl", &scan),
            (SYNCOOKIES, "1\n"),
            (MAX_SYN_BACKLOG, "512\n"),
            (SOMAXCONN, "4096\n"),
        ]);
        let f = SynRecv.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 1);
        let f = &f[0];
        assert_eq!((f.subject.as_str(), f.severity), (":80", Severity::Warning));
        assert_eq!(f.facts["count"], 150);
        assert_eq!(f.facts["sources"], 50);
        assert_eq!(f.facts["by_source"].as_object().unwrap().len(), TOP);
        assert_eq!(f.facts["accept_queue"], 129);
        assert_eq!(f.facts["listeners"][0]["owners"][1]["pid"], 813);
        assert_eq!(f.facts["tcp_syncookies"], 1);
        assert_eq!(f.facts["somaxconn"], 4096);
        assert_eq!(
            f.summary,
            "150 half-open connections (SYN_RECV) on port 80 from 50 sources, accept queue 129 \
             (pid 812 (nginx), pid 813 (nginx))"
        );
    }

    #[test]
    fn critical_flood_without_listener() {
        let scan: String = (0..1000u32)
            .map(|i| syn_recv(8443, &format!("192.0.2.{}", i % 250), 1024 + i as u16, "SYN_RECV"))
            .collect();
        let b = bundle_with(&[("scan/sockets.jsonl", &scan)]);
        let f = &SynRecv.evaluate(&Input::new(&b)).unwrap()[0];
        assert_eq!((f.subject.as_str(), f.severity), (":8443", Severity::Critical));
        assert!(f.summary.ends_with("no listener on that port in the scan"), "{}", f.summary);
        assert!(!f.facts.contains_key("tcp_syncookies"));
    }

    #[test]
    fn missing_scan() {
        let b = bundle_with(&[(SYNCOOKIES, "1\n")]);
        assert_eq!(SynRecv.evaluate(&Input::new(&b)), Err(Skip::missing("scan/sockets.jsonl")));
    }
}
