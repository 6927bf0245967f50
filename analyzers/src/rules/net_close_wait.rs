//! `net.close_wait`: TCP sockets in CLOSE_WAIT grouped by the process that holds them,
//! and within a process by peer and by local port.
//!
//! CLOSE_WAIT means the peer sent its FIN (it closed) and the local application has
//! not yet called close(). The kernel keeps such a socket forever: only the
//! application can end it. Many of them in one process are a descriptor leak in that
//! application (a missing close after reading end of stream, a connection pool that
//! never checks its idle connections).

use std::collections::{BTreeMap, BTreeSet};

use snap_bundle::names;
use snap_bundle::scan::Socket;

use super::socket_tally::{endpoint, tally, to_object};
use crate::{Evidence, Finding, Input, Need, Rule, Severity};

pub struct CloseWait;

/// CLOSE_WAIT sockets of one process from which the rule warns; below it is quiet.
const WARN: usize = 10;
/// From this many the rule is critical whatever the process's other descriptors.
const CRITICAL: usize = 1000;
/// Critical too when at least this many are CLOSE_WAIT sockets and they make up at
/// least [`CRITICAL_SHARE_PERCENT`] of the process's open descriptors.
const CRITICAL_SHARE_MIN: usize = 100;
const CRITICAL_SHARE_PERCENT: u64 = 50;
/// Peers and local ports listed in the facts (the most frequent first).
const TOP: usize = 20;
/// Socket lines quoted as evidence per finding.
const EVIDENCE_LINES: usize = 5;

/// The group a socket is counted in: its owning pid (with program), or unowned.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    Pid(u32, String),
    Unowned,
}

impl Owner {
    fn subject(&self) -> String {
        match self {
            Owner::Pid(pid, program) => format!("pid {pid} ({program})"),
            Owner::Unowned => "unowned".into(),
        }
    }
}

impl Rule for CloseWait {
    fn id(&self) -> &'static str {
        "net.close_wait"
    }

    fn detects(&self) -> &'static str {
        "TCP sockets in CLOSE_WAIT (the peer closed, the application did not), grouped by owning process and peer"
    }

    fn thresholds(&self) -> &'static str {
        "quiet below 10 CLOSE_WAIT sockets per process: a socket stays in CLOSE_WAIT only until \
         the application reads end of stream and closes it, so a few are normal on a busy \
         server. Warning from 10 in one process, critical from 1000, or from 100 when they are \
         at least half of the process's open descriptors (scan/open_files.jsonl): then most of \
         its descriptors are dead connections and it will run out of them. CLOSE_WAIT never \
         times out in the kernel; only the application's close() ends it, so the advice is \
         about the application: close after reading EOF, validate pooled connections, set \
         idle timeouts. Sockets whose owner the scan could not see are grouped as `unowned`."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &[
            names::SOCKETS,
            "scan/open_files.jsonl (optional, for the share of descriptors)",
            "capture/window.pcap (optional: connections the peer closed and this host did not)",
            "proc/net/fib_trie, proc/net/if_inet6 (optional: which end of a connection is this host)",
        ]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let sockets = input.sockets()?;
        let mut groups: BTreeMap<Owner, Vec<&Socket>> = BTreeMap::new();
        for s in sockets.iter().filter(|s| is_tcp(s) && s.state == "CLOSE_WAIT") {
            // A socket shared by several processes (inherited over fork) counts for each.
            let pids: BTreeMap<u32, &str> = s.owners.iter().map(|o| (o.pid, o.program.as_str())).collect();
            if pids.is_empty() {
                groups.entry(Owner::Unowned).or_default().push(s);
            }
            for (pid, program) in pids {
                groups.entry(Owner::Pid(pid, program.to_string())).or_default().push(s);
            }
        }
        groups.retain(|_, v| v.len() >= WARN);
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        // Descriptors per pid, only when the open-file scan is there.
        let fds: Option<BTreeMap<u32, usize>> =
            input.descriptors().ok().map(|d| d.per_pid.iter().map(|(pid, p)| (*pid, p.count as usize)).collect());
        let capture = super::tcp_common::report(input).ok();
        let mut findings = Vec::new();
        for (owner, socks) in groups {
            let count = socks.len();
            let by_peer = tally(socks.iter().map(|s| endpoint(&s.remote_addr, s.remote_port)));
            let by_port = tally(socks.iter().map(|s| s.local_port.to_string()));
            let recv_q: u64 = socks.iter().map(|s| s.recv_q).sum();
            let proc_fds = match (&owner, &fds) {
                (Owner::Pid(pid, _), Some(m)) => m.get(pid).copied().filter(|n| *n > 0),
                _ => None,
            };
            let share = proc_fds.map(|n| (count as u64 * 100 / n as u64).min(100));
            let severity = if count >= CRITICAL
                || (count >= CRITICAL_SHARE_MIN && share.is_some_and(|p| p >= CRITICAL_SHARE_PERCENT))
            {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let subject = owner.subject();
            let top_peer = by_peer.first().map(|(p, n)| format!("{n} to {p}")).unwrap_or_default();
            let ports: Vec<String> = by_port.iter().take(3).map(|(p, n)| format!("{n} on :{p}")).collect();
            let mut summary = format!(
                "{count} TCP sockets in CLOSE_WAIT held by {subject}: the peers closed, the application did not \
                 ({}; {top_peer}",
                ports.join(", ")
            );
            if by_peer.len() > 1 {
                summary.push_str(&format!(", {} peers in all", by_peer.len()));
            }
            summary.push(')');
            if let Some(p) = share {
                summary.push_str(&format!(", {p}% of its open descriptors"));
            }

            let mut evidence = Evidence::entry(names::SOCKETS).value("close_wait", count).value("recv_q_bytes", recv_q);
            for s in socks.iter().take(EVIDENCE_LINES) {
                evidence = evidence.line(socket_line(s));
            }
            let mut finding = Finding::new(self.id(), severity, subject.clone(), summary)
                .evidence(evidence)
                .fact("count", count)
                .fact("by_peer", to_object(&by_peer, TOP))
                .fact("by_local_port", to_object(&by_port, TOP))
                .fact("peers", by_peer.len())
                .fact("local_ports", by_port.len())
                .fact("recv_q_bytes", recv_q);
            if let Owner::Pid(pid, program) = &owner {
                finding = finding.fact("pid", *pid).fact("program", program.clone());
            }
            if let Some(report) = &capture {
                finding = cross_check(finding, report, &socks);
            }
            if let (Some(n), Some(p)) = (proc_fds, share) {
                finding = finding
                    .fact("open_fds", n)
                    .fact("share_of_fds_percent", p)
                    .evidence(Evidence::entry(names::OPEN_FILES).value("open_fds", n));
            }
            let who = match &owner {
                Owner::Pid(_, program) => program.as_str(),
                Owner::Unowned => "the owning application (the scan could not see which process holds them)",
            };
            findings.push(finding.advice(format!(
                "CLOSE_WAIT never times out in the kernel: {who} must close() these sockets. Look for a \
                 code path that reads end of stream (read returns 0, or the client library reports the \
                 connection closed) without closing, and for connection pools that keep idle \
                 connections the server already dropped: validate them before use, evict idle ones \
                 sooner than the server's keep-alive timeout, and set read timeouts so that a dead \
                 connection is noticed. Restarting the process releases them only until the leak \
                 refills; the peers listed show which client or backend the leaking code talks to."
            )));
        }
        Ok(findings)
    }
}

/// The capture's side of the story: connections of the same services that ended with
/// only the peer's FIN (this host never closed its half): inbound ones to a local port
/// the client closed, outbound ones to a remote server that closed.
fn cross_check(finding: Finding, report: &crate::tcp::Report, socks: &[&Socket]) -> Finding {
    use crate::tcp::{EndState, ServiceKey};
    let mut services: BTreeSet<(ServiceKey, EndState)> = BTreeSet::new();
    for s in socks {
        let inbound = ServiceKey { ip: None, port: s.local_port };
        if report.services.contains_key(&inbound) {
            services.insert((inbound, EndState::ClientClosed));
        } else if let Ok(ip) = s.remote_addr.parse() {
            let outbound = ServiceKey { ip: Some(ip), port: s.remote_port };
            if report.services.contains_key(&outbound) {
                services.insert((outbound, EndState::ServerClosed));
            }
        }
    }
    let seen: u64 = services
        .iter()
        .map(|(k, state)| report.services.get(k).and_then(|s| s.by_state.get(state)).copied().unwrap_or(0))
        .sum();
    let names: Vec<String> = services.iter().map(|(k, _)| k.to_string()).collect();
    let mut e = Evidence::entry(names::CAPTURE).value("peer_closed_this_host_did_not", seen);
    if !names.is_empty() {
        e = e.line(format!(
            "{seen} connection(s) of {} in the capture ended with the peer's FIN and none from this host",
            names.join(", ")
        ));
    }
    finding.fact("capture_peer_closed_not_closed_here", seen).evidence(e)
}

fn is_tcp(s: &Socket) -> bool {
    matches!(s.proto.as_str(), "tcp" | "tcp6")
}

/// The most frequent entries as a JSON object (key order is sorted by serde_json).
fn socket_line(s: &Socket) -> String {
    let fds: BTreeSet<String> = s.owners.iter().map(|o| format!("{}/{} fd {}", o.pid, o.program, o.fd)).collect();
    format!(
        "{} {} -> {} {} recv_q {} send_q {}{}",
        s.proto,
        endpoint(&s.local_addr, s.local_port),
        endpoint(&s.remote_addr, s.remote_port),
        s.state,
        s.recv_q,
        s.send_q,
        if fds.is_empty() { String::new() } else { format!(" ({})", fds.into_iter().collect::<Vec<_>>().join(", ")) }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::bundle_with;
    use crate::Skip;

    // Real lines from this VM's scan (snap collect while a test held CLOSE_WAIT sockets).
    fn close_wait(local_port: u16, remote: (&str, u16), pid: Option<(u32, &str, u32)>, recv_q: u64) -> String {
        let owners = match pid {
            Some((pid, program, fd)) => format!(r#"[{{"pid":{pid},"program":"{program}","fd":{fd}}}]"#),
            None => "[]".into(),
        };
        let proto = if remote.0.contains(':') { "tcp6" } else { "tcp" };
        let local = if remote.0.contains(':') { "::1" } else { "127.0.0.1" };
        format!(
            r#"{{"proto":"{proto}","local_addr":"{local}","local_port":{local_port},"remote_addr":"{}","remote_port":{},"state":"CLOSE_WAIT","recv_q":{recv_q},"send_q":0,"timer":"off","timer_secs":0.0,"retransmits":0,"uid":0,"inode":{},"owners":{owners}}}"#,
            remote.0,
            remote.1,
            600000 + remote.1 as u64
        )
    }

    const LISTEN: &str = r#"{"proto":"tcp","local_addr":"0.0.0.0","local_port":8080,"remote_addr":"0.0.0.0","remote_port":0,"state":"LISTEN","recv_q":0,"send_q":0,"timer":"off","timer_secs":0.0,"retransmits":0,"uid":0,"inode":1499,"owners":[{"pid":4242,"program":"java","fd":3}]}"#;
    const ESTAB: &str = r#"{"proto":"tcp","local_addr":"127.0.0.1","local_port":8080,"remote_addr":"127.0.0.1","remote_port":37346,"state":"ESTABLISHED","recv_q":100,"send_q":0,"timer":"keepalive","timer_secs":7199.74,"retransmits":0,"uid":0,"inode":20205,"owners":[{"pid":4242,"program":"java","fd":5}]}"#;

    fn scan(lines: &[String]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    fn open_files(pid: u32, fds: u32) -> String {
        (0..fds)
            .map(|fd| {
                format!(
                    r#"{{"pid":{pid},"command":"java","uid":0,"user":"root","fd":"{fd}","mode":"u","type":"IPv4","target":"socket:[{}]","name":"socket:[{}]","device":"0,8","inode":{},"nlink":1,"deleted":false}}"#,
                    700000 + fd,
                    700000 + fd,
                    700000 + fd
                ) + "\n"
            })
            .collect()
    }

    #[test]
    fn the_capture_shows_the_peers_fins_this_host_never_answered() {
        use crate::tcp::synth::{merge, write_pcap, Conversation};
        use crate::tcp::Side;
        // Ten clients of :8080 close; the server never closes its half.
        let mut conns = Vec::new();
        let mut lines = vec![LISTEN.to_string()];
        for i in 0..10u16 {
            let mut c =
                Conversation::new(&format!("10.0.0.7:{}", 40000 + i), "127.0.0.1:8080", 1_700_000_000_000_000_000);
            c.wait(i64::from(i) * 1_000_000).handshake(1_000_000).data(Side::Client, 100).data(Side::Server, 200);
            c.fin(Side::Client).ack(Side::Server);
            conns.push(c);
            lines.push(close_wait(8080, ("10.0.0.7", 40000 + i), Some((4242, "java", 10 + u32::from(i))), 0));
        }
        let refs: Vec<&Conversation> = conns.iter().collect();
        let pcap = write_pcap(&merge(&refs), false);
        let b = crate::rules::testing::bundle_with_bytes(&[
            ("scan/sockets.jsonl", scan(&lines).as_bytes()),
            ("capture/window.pcap", &pcap),
        ]);
        let f = CloseWait.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].facts["capture_peer_closed_not_closed_here"], 10, "{:#?}", f[0]);
        // Without a capture the fact is simply absent.
        let b = bundle_with(&[("scan/sockets.jsonl", &scan(&lines))]);
        let f = CloseWait.evaluate(&Input::new(&b)).unwrap();
        assert!(f[0].facts.get("capture_peer_closed_not_closed_here").is_none());
    }

    #[test]
    fn quiet_on_an_idle_box_and_below_the_threshold() {
        let mut lines = vec![LISTEN.to_string(), ESTAB.to_string()];
        for i in 0..(WARN as u16 - 1) {
            lines.push(close_wait(8080, ("10.0.0.7", 40000 + i), Some((4242, "java", 10 + i as u32)), 0));
        }
        let b = bundle_with(&[("scan/sockets.jsonl", &scan(&lines))]);
        assert_eq!(CloseWait.evaluate(&Input::new(&b)).unwrap(), vec![]);
    }

    #[test]
    fn grouped_by_process_peer_and_port() {
        let mut lines = vec![LISTEN.to_string(), ESTAB.to_string()];
        // java: 25 from its server port 8080 (20 from one client, 5 from another) and
        // 5 outgoing to a database whose connections it pools.
        for i in 0..20 {
            lines.push(close_wait(8080, ("10.0.0.7", 40000 + i), Some((4242, "java", 10 + i as u32)), 1));
        }
        for i in 0..5 {
            lines.push(close_wait(8080, ("10.0.0.8", 41000 + i), Some((4242, "java", 40 + i as u32)), 0));
        }
        for i in 0..5 {
            lines.push(close_wait(50000 + i, ("10.0.0.9", 5432), Some((4242, "java", 60 + i as u32)), 0));
        }
        // 12 without a visible owner, and 3 of another process (below the threshold).
        for i in 0..12 {
            lines.push(close_wait(443, ("2001:db8::1", 42000 + i), None, 0));
        }
        for i in 0..3 {
            lines.push(close_wait(9000, ("10.0.0.1", 43000 + i), Some((77, "nginx", 9 + i as u32)), 0));
        }
        let b =
            bundle_with(&[("scan/sockets.jsonl", &scan(&lines)), ("scan/open_files.jsonl", &open_files(4242, 200))]);
        let f = CloseWait.evaluate(&Input::new(&b)).unwrap();
        assert_eq!(f.len(), 2, "{f:#?}");
        let java = &f[0];
        assert_eq!(java.subject, "pid 4242 (java)");
        assert_eq!(java.severity, Severity::Warning);
        assert_eq!(java.facts["count"], 30);
        assert_eq!(java.facts["pid"], 4242);
        assert_eq!(java.facts["recv_q_bytes"], 20);
        assert_eq!(java.facts["by_peer"]["10.0.0.9:5432"], 5);
        assert_eq!(java.facts["peers"], 26);
        assert_eq!(java.facts["by_local_port"]["8080"], 25);
        assert_eq!(java.facts["local_ports"], 6);
        assert_eq!(java.facts["open_fds"], 200);
        assert_eq!(java.facts["share_of_fds_percent"], 15);
        assert!(java.summary.starts_with("30 TCP sockets in CLOSE_WAIT held by pid 4242 (java)"), "{}", java.summary);
        assert_eq!(java.evidence[0].lines.len(), EVIDENCE_LINES);
        let unowned = &f[1];
        assert_eq!(unowned.subject, "unowned");
        assert_eq!(unowned.facts["count"], 12);
        assert_eq!(unowned.facts["by_peer"]["[2001:db8::1]:42000"], 1);
        assert!(!unowned.facts.contains_key("open_fds"));
    }

    #[test]
    fn critical_by_volume_or_by_share_of_descriptors() {
        let lines: Vec<String> = (0..150)
            .map(|i| close_wait(8080, ("10.0.0.7", 30000 + i), Some((4242, "java", 10 + i as u32)), 0))
            .collect();
        // 150 of 200 descriptors: critical.
        let b =
            bundle_with(&[("scan/sockets.jsonl", &scan(&lines)), ("scan/open_files.jsonl", &open_files(4242, 200))]);
        let f = CloseWait.evaluate(&Input::new(&b)).unwrap();
        assert_eq!((f[0].severity, f[0].facts["share_of_fds_percent"].clone()), (Severity::Critical, 75.into()));
        // 150 of 1000: a warning; without the open-file scan: a warning.
        let b =
            bundle_with(&[("scan/sockets.jsonl", &scan(&lines)), ("scan/open_files.jsonl", &open_files(4242, 1000))]);
        assert_eq!(CloseWait.evaluate(&Input::new(&b)).unwrap()[0].severity, Severity::Warning);
        let b = bundle_with(&[("scan/sockets.jsonl", &scan(&lines))]);
        assert_eq!(CloseWait.evaluate(&Input::new(&b)).unwrap()[0].severity, Severity::Warning);
        let lines: Vec<String> = (0..1000)
            .map(|i| close_wait(8080, ("10.0.0.7", 30000 + i), Some((4242, "java", 10 + i as u32)), 0))
            .collect();
        let b = bundle_with(&[("scan/sockets.jsonl", &scan(&lines))]);
        assert_eq!(CloseWait.evaluate(&Input::new(&b)).unwrap()[0].severity, Severity::Critical);
    }

    #[test]
    fn shared_socket_counts_for_each_process() {
        let lines: Vec<String> = (0..10)
            .map(|i| {
                close_wait(8080, ("10.0.0.7", 30000 + i), Some((100, "gunicorn", 10 + i as u32)), 0)
                    .replace("}]}", r#"},{"pid":101,"program":"gunicorn","fd":7}]}"#)
            })
            .collect();
        let b = bundle_with(&[("scan/sockets.jsonl", &scan(&lines))]);
        let f = CloseWait.evaluate(&Input::new(&b)).unwrap();
        let subjects: Vec<&str> = f.iter().map(|f| f.subject.as_str()).collect();
        assert_eq!(subjects, ["pid 100 (gunicorn)", "pid 101 (gunicorn)"]);
        assert!(f[0].evidence[0].lines[0].contains("(100/gunicorn fd 10, 101/gunicorn fd 7)"), "{:?}", f[0].evidence);
    }

    #[test]
    fn missing_and_broken_scan() {
        let b = bundle_with(&[("proc/loadavg", "0.1 0.1 0.1 1/100 1\n")]);
        assert_eq!(CloseWait.evaluate(&Input::new(&b)), Err(Skip::missing("scan/sockets.jsonl")));
        let b = bundle_with(&[("scan/sockets.jsonl", "{\"proto\":\n")]);
        assert!(matches!(CloseWait.evaluate(&Input::new(&b)), Err(Skip::Bad { .. })));
    }
}
