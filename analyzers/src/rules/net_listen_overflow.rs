//! `net.listen_overflow`: connections the kernel dropped because a listener's accept
//! queue was full (`TcpExt: ListenOverflows`, and `ListenDrops`, which also counts the
//! other drops of a listening socket) in the sampling window, and the listening sockets
//! holding connections the application has not accepted yet.
//!
//! A LISTEN socket's Recv-Q in /proc/net/tcp is its accept-queue length; its backlog
//! (the queue's size) is not in /proc, so "full" cannot be read from one socket: the
//! counters say that some queue overflowed, the listeners with a non-empty queue say
//! which. Both counters are per network namespace.

use snap_bundle::names;
use snap_bundle::scan::Socket;

use super::net_counters::{Span, NETSTAT};
use crate::samples::round1;
use crate::{Evidence, Finding, Input, Need, Rule, Severity, Skip};

pub struct ListenOverflow;

/// Overflows per second (window average) from which the rule is critical.
const CRITICAL_PER_SECOND: f64 = 100.0;
/// Connections waiting in one accept queue reported on their own (info) when the
/// counters show no overflow.
const QUEUED_INFO: u64 = 16;
const SOMAXCONN: &str = "proc/sys/net/core/somaxconn";

const COUNTERS: &[(&str, &str)] = &[("TcpExt", "ListenOverflows"), ("TcpExt", "ListenDrops")];

impl Rule for ListenOverflow {
    fn id(&self) -> &'static str {
        "net.listen_overflow"
    }

    fn detects(&self) -> &'static str {
        "connections dropped because a listener's accept queue was full, and listeners with connections waiting to be accepted"
    }

    fn thresholds(&self) -> &'static str {
        "warning when TcpExt ListenOverflows or ListenDrops grew between the first and last \
         samples of the window (each is a client's handshake thrown away: it retries after 1 s, \
         3 s, 7 s, which users see as stalls), critical from 100 overflows per second. One \
         finding per listening port whose accept queue (the LISTEN socket's Recv-Q) is non-empty \
         in the scan, or one for all listeners when none is. Without a window, since-boot \
         counters above 0 give an info finding only (they may be old). With no overflow, a \
         listener holding 16 or more connections not yet accepted is reported as info: a \
         healthy server accepts within microseconds. The backlog is not visible in /proc; \
         net.core.somaxconn (its ceiling) is shown when the bundle has it."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &["samples/<n>/proc/net/netstat", NETSTAT, names::SOCKETS, SOMAXCONN]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let span = match Span::read(input, NETSTAT) {
            Ok(s) => Some(s),
            Err(Skip::Missing(_)) => None,
            Err(e) => return Err(e),
        };
        let sockets: &[Socket] = match (input.sockets(), &span) {
            (Ok(s), _) => s,
            (Err(Skip::Missing(_)), Some(_)) => &[],
            (Err(Skip::Missing(_)), None) => {
                return Err(Skip::Missing(vec![
                    format!("samples/<n>/{NETSTAT} or {NETSTAT}"),
                    names::SOCKETS.to_string(),
                ]))
            }
            (Err(e), _) => return Err(e),
        };
        let mut listeners: Vec<&Socket> =
            sockets.iter().filter(|s| s.proto.starts_with("tcp") && s.state == "LISTEN" && s.recv_q > 0).collect();
        listeners.sort_by(|a, b| b.recv_q.cmp(&a.recv_q).then_with(|| a.local_port.cmp(&b.local_port)));
        let somaxconn = input.text(SOMAXCONN).ok().and_then(|t| t.trim().parse::<u64>().ok());

        let overflows = span.as_ref().and_then(|s| s.value("TcpExt", "ListenOverflows")).unwrap_or(0);
        let drops = span.as_ref().and_then(|s| s.value("TcpExt", "ListenDrops")).unwrap_or(0);
        let grew = overflows > 0 || drops > 0;
        let in_window = matches!(span, Some(Span::Window(_)));

        let mut findings = Vec::new();
        let counter_text =
            |span: &Span| format!("{overflows} accept-queue overflows and {drops} listen drops {}", span.label());
        let add_counters = |mut f: Finding, span: &Span| {
            f = f.fact("scope", span.scope()).fact("listen_overflows", overflows).fact("listen_drops", drops);
            if let Some(s) = span.seconds() {
                f = f.fact("seconds", round1(s)).fact("overflows_per_second", round1(overflows as f64 / s));
            }
            for e in span.evidence(COUNTERS) {
                f = f.evidence(e);
            }
            f
        };
        let add_somaxconn = |f: Finding| match somaxconn {
            Some(v) => f.fact("somaxconn", v).evidence(Evidence::entry(SOMAXCONN).value("somaxconn", v)),
            None => f,
        };

        match &span {
            Some(span) if in_window && grew => {
                let rate = span.seconds().map(|s| overflows as f64 / s);
                let severity =
                    if rate.is_some_and(|r| r >= CRITICAL_PER_SECOND) { Severity::Critical } else { Severity::Warning };
                if listeners.is_empty() {
                    let f = Finding::new(
                        self.id(),
                        severity,
                        "all listeners",
                        format!(
                            "{} (all listeners of the namespace; no accept queue is non-empty in the scan)",
                            counter_text(span)
                        ),
                    );
                    findings.push(add_somaxconn(add_counters(f, span)));
                }
                for l in &listeners {
                    let mut f = listener_finding(self.id(), severity, l);
                    f.summary = format!("{}; {}", f.summary, counter_text(span));
                    findings.push(add_somaxconn(add_counters(f, span)));
                }
            }
            Some(span @ Span::SinceBoot(_)) if grew => {
                let f = Finding::new(
                    self.id(),
                    Severity::Info,
                    "all listeners",
                    format!("{} (no sampling window: they may be old)", counter_text(span)),
                );
                findings.push(add_somaxconn(add_counters(f, span)));
                for l in listeners.iter().filter(|l| l.recv_q >= QUEUED_INFO) {
                    findings.push(add_somaxconn(listener_finding(self.id(), Severity::Info, l)));
                }
            }
            _ => {
                for l in listeners.iter().filter(|l| l.recv_q >= QUEUED_INFO) {
                    findings.push(add_somaxconn(listener_finding(self.id(), Severity::Info, l)));
                }
            }
        }
        Ok(findings
            .into_iter()
            .map(|f| {
                f.advice(
                    "The application accepts connections more slowly than they arrive, or its backlog \
                     is too small for bursts. First make it accept faster (more acceptor threads or \
                     workers, nothing blocking in the accept loop, a process that is not stuck: see the \
                     owner in the evidence). Then raise the backlog it passes to listen() (nginx \
                     `listen ... backlog=`, Java `backlog`, ...) together with net.core.somaxconn, which \
                     caps it (and net.ipv4.tcp_max_syn_backlog for the SYN queue). With \
                     net.ipv4.tcp_abort_on_overflow=0 (the default) clients retry silently and see \
                     delays of seconds; kernel.syn_flood shows the SYN side.",
                )
            })
            .collect())
    }
}

fn owners(l: &Socket) -> String {
    let mut o: Vec<String> = l.owners.iter().map(|o| format!("pid {} ({})", o.pid, o.program)).collect();
    o.sort();
    o.dedup();
    o.join(", ")
}

fn listener_facts(mut f: Finding, l: &Socket) -> Finding {
    f = f
        .fact("local_port", l.local_port)
        .fact("local_addr", l.local_addr.clone())
        .fact("accept_queue", l.recv_q)
        .fact(
            "owners",
            l.owners.iter().map(|o| serde_json::json!({"pid": o.pid, "program": o.program})).collect::<Vec<_>>(),
        );
    f.evidence(Evidence::entry(names::SOCKETS).line(format!(
        "{} {}:{} LISTEN recv_q {} (accept queue){}",
        l.proto,
        l.local_addr,
        l.local_port,
        l.recv_q,
        match owners(l) {
            o if o.is_empty() => String::new(),
            o => format!(" {o}"),
        }
    )))
}

fn listener_finding(rule: &str, severity: Severity, l: &Socket) -> Finding {
    let who = match owners(l) {
        o if o.is_empty() => String::new(),
        o => format!(" ({o})"),
    };
    let f = Finding::new(
        rule,
        severity,
        format!(":{}", l.local_port),
        format!("{} connections waiting to be accepted on port {}{who}", l.recv_q, l.local_port),
    );
    listener_facts(f, l)
}

#[cfg(test)]
mod tests {
    use super::super::net_counters::fixtures::*;
    use super::*;
    use crate::rules::testing::bundle_with;

    fn listen(port: u16, recv_q: u64) -> String {
        format!(
            r#"{{"proto":"tcp","local_addr":"10.0.0.2","local_port":{port},"remote_addr":"0.0.0.0","remote_port":0,"state":"LISTEN","recv_q":{recv_q},"send_q":0,"timer":"off","timer_secs":0.0,"retransmits":0,"inode":9,"owners":[{{"pid":812,"program":"java","fd":40}}]}}"#
        ) + "\n"
    }

    fn run(entries: &[(&str, String)]) -> Need<Vec<Finding>> {
        let e: Vec<(&str, &str)> = entries.iter().map(|(a, b)| (*a, b.as_str())).collect();
        ListenOverflow.evaluate(&Input::new(&bundle_with(&e)))
    }

    fn window(last: &[(&str, u64)]) -> Vec<(&'static str, String)> {
        vec![
            ("manifest.json", manifest_json(3)),
            ("samples/0/proc/net/netstat", netstat(&[("ListenOverflows", 7), ("ListenDrops", 7)])),
            ("samples/2/proc/net/netstat", netstat(last)),
            (NETSTAT, netstat(last)),
        ]
    }

    #[test]
    fn quiet_on_the_idle_vm() {
        let e = vec![
            ("manifest.json", manifest_json(2)),
            ("samples/0/proc/net/netstat", netstat_idle()),
            ("samples/1/proc/net/netstat", netstat_idle()),
            ("scan/sockets.jsonl", listen(22, 0) + &listen(80, 1)),
        ];
        assert_eq!(run(&e).unwrap(), vec![]);
    }

    #[test]
    fn quiet_when_old_overflows_do_not_grow() {
        let mut e = window(&[("ListenOverflows", 7), ("ListenDrops", 7)]);
        e.push(("scan/sockets.jsonl", listen(80, 3)));
        assert_eq!(run(&e).unwrap(), vec![]);
    }

    #[test]
    fn overflow_in_window_names_the_listener_with_a_queue() {
        let mut e = window(&[("ListenOverflows", 307), ("ListenDrops", 310)]);
        e.push(("scan/sockets.jsonl", listen(22, 0) + &listen(8080, 129)));
        e.push((SOMAXCONN, "4096\n".into()));
        let f = run(&e).unwrap();
        assert_eq!(f.len(), 1, "{f:#?}");
        let f = &f[0];
        assert_eq!((f.subject.as_str(), f.severity), (":8080", Severity::Critical));
        assert_eq!(f.facts["listen_overflows"], 300);
        assert_eq!(f.facts["listen_drops"], 303);
        assert_eq!(f.facts["overflows_per_second"], 150.0);
        assert_eq!(f.facts["accept_queue"], 129);
        assert_eq!(f.facts["somaxconn"], 4096);
        assert_eq!(f.facts["scope"], "window");
        assert_eq!(
            f.summary,
            "129 connections waiting to be accepted on port 8080 (pid 812 (java)); \
             300 accept-queue overflows and 303 listen drops in the 2.0 s window"
        );
    }

    #[test]
    fn overflow_without_a_queued_listener_is_for_all_listeners() {
        let f = run(&window(&[("ListenOverflows", 17), ("ListenDrops", 17)])).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].subject.as_str(), f[0].severity), ("all listeners", Severity::Warning));
        assert_eq!(f[0].facts["listen_overflows"], 10);
    }

    #[test]
    fn since_boot_is_info_only() {
        let e = vec![(NETSTAT, netstat(&[("ListenOverflows", 5), ("ListenDrops", 6)]))];
        let f = run(&e).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].subject.as_str(), f[0].severity), ("all listeners", Severity::Info));
        assert_eq!(f[0].facts["scope"], "since_boot");
        assert!(f[0].summary.contains("since boot"), "{}", f[0].summary);
        assert_eq!(run(&[(NETSTAT, netstat_idle())]).unwrap(), vec![]);
    }

    #[test]
    fn a_long_accept_queue_alone_is_info() {
        let e = vec![("scan/sockets.jsonl", listen(443, 40))];
        let f = run(&e).unwrap();
        assert_eq!((f[0].subject.as_str(), f[0].severity), (":443", Severity::Info));
    }

    #[test]
    fn not_evaluated_without_counters_or_scan() {
        assert!(matches!(run(&[("proc/stat", "cpu 1\n".into())]), Err(Skip::Missing(_))));
    }
}
