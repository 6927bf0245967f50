//! `tcp.idle_close`: a server that closes idle keep-alive connections after a
//! consistent idle time (its keep-alive timeout: nginx's keepalive_timeout is 65 s by
//! default), and the TIME_WAIT sockets that leaves on the server, which closes first.

use serde_json::json;
use snap_bundle::names;

use super::tcp_common::{self, conn, packet, secs};
use crate::tcp::ServiceKey;
use crate::{Evidence, Finding, Input, Need, Rule, Severity};

pub struct IdleClose;

/// Connections closed by the server after idling that make a pattern; how close their
/// idle times must be (relative to the median, or absolutely for short ones).
const MIN_CONNECTIONS: u64 = 3;
const SPREAD: f64 = 0.2;
const SPREAD_ABS_S: f64 = 0.2;
/// Idle times shorter than this are an application closing after its answer, not a
/// keep-alive timeout.
const MIN_IDLE_S: f64 = 0.5;

impl Rule for IdleClose {
    fn id(&self) -> &'static str {
        "tcp.idle_close"
    }

    fn detects(&self) -> &'static str {
        "a server closing idle keep-alive connections after a consistent idle time, and the TIME_WAIT load that leaves on it"
    }

    fn thresholds(&self) -> &'static str {
        "info when at least 3 connections of a service were closed first by the server, with \
         no request pending, after idling 0.5 s or more, and their idle times agree (the 10th \
         and 90th percentiles within 20 % or 0.2 s of the median): that is the server's \
         keep-alive timeout. It matters in two ways: clients that keep pooled connections \
         longer than it send requests into closed connections (tcp.reset), and the side that \
         closes first keeps each connection in TIME_WAIT for 60 s, so a server closing many \
         short connections accumulates TIME_WAIT sockets (net.time_wait)."
    }

    fn inputs(&self) -> &'static [&'static str] {
        &[
            "capture/window.pcap",
            "proc/net/fib_trie, proc/net/if_inet6 (optional: which end of a connection is this host)",
            "scan/sockets.jsonl (optional: TIME_WAIT sockets of the port now)",
        ]
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let report = tcp_common::report(input)?;
        let mut out = Vec::new();
        for (key, s) in &report.services {
            let h = &s.server_idle_close;
            if h.count < MIN_CONNECTIONS {
                continue;
            }
            let (Some(p10), Some(p50), Some(p90)) = (h.quantile(0.1), h.quantile(0.5), h.quantile(0.9)) else {
                continue;
            };
            let (p10, p50, p90) = (secs(p10 as i64), secs(p50 as i64), secs(p90 as i64));
            if p50 < MIN_IDLE_S {
                continue;
            }
            let tolerance = (p50 * SPREAD).max(SPREAD_ABS_S);
            if p50 - p10 > tolerance || p90 - p50 > tolerance {
                continue;
            }
            let service = key.to_string();
            let conns: Vec<_> =
                report.notable.idle_closes.connections().filter(|c| ServiceKey::of(c) == *key).take(5).collect();
            let mut ev = Evidence::entry(names::CAPTURE);
            for c in &conns {
                if let Some(cl) = c.close {
                    ev = ev.line(format!(
                        "{}: server FIN at {} after {:.3} s idle",
                        conn(c),
                        packet(cl.packet),
                        secs(cl.idle_ns)
                    ));
                }
            }
            let t = &s.totals;
            let per_s = report.capture.duration_ns().max(1) as f64 / 1e9;
            let advice = format!(
                "The server closes keep-alive connections idle for about {p50:.1} s. Clients that \
                 pool connections must drop idle ones sooner than that (their idle or max-idle \
                 setting below {p50:.1} s), or they will send requests into closed connections \
                 (see tcp.reset). The server, closing first, holds each such connection in \
                 TIME_WAIT for 60 s: at the rate seen here ({:.1} closes/s) about {:.0} sockets; \
                 a longer keep-alive timeout, or letting clients close, moves that load.",
                t.server_closed_first as f64 / per_s,
                t.server_closed_first as f64 / per_s * 60.0
            );
            // Cross-check with the socket table: TIME_WAIT sockets of this port on the host
            // (when the server is this host, the closing side holds them).
            let time_wait = input.sockets().ok().map(|socks| {
                socks
                    .iter()
                    .filter(|s| s.state == "TIME_WAIT" && (s.local_port == key.port || s.remote_port == key.port))
                    .count()
            });
            out.push(
                Finding::new(
                    self.id(),
                    Severity::Info,
                    service.clone(),
                    format!(
                        "the server of {service} closed {} idle connection(s) after {p50:.1} s idle (p10 {p10:.1} s, p90 {p90:.1} s): its keep-alive timeout",
                        h.count
                    ),
                )
                .evidence(ev)
                .fact("service", service)
                .fact("connections", h.count)
                .fact("idle_s", p50)
                .fact("idle_p10_s", p10)
                .fact("idle_p90_s", p90)
                .fact("server_closed_first", t.server_closed_first)
                .fact("client_closed_first", t.client_closed_first)
                .fact("late_requests", t.late_requests)
                .fact("time_wait_sockets_in_scan", time_wait)
                .fact("examples", conns.iter().map(|c| json!({"connection": c.id, "client": c.client.to_string()})).collect::<Vec<_>>())
                .advice(advice),
            );
        }
        Ok(out)
    }
}
