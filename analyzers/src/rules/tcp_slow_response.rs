//! `tcp.slow_response`: server response times per service (from the last byte of a
//! request to the first byte of its response), p50 and p99, with the slowest
//! exchanges.

use serde_json::json;
use snap_bundle::names;

use super::tcp_common::{self, conn, packet, secs};
use crate::tcp::ServiceKey;
use crate::{Evidence, Finding, Input, Need, Rule, Severity};

pub struct SlowResponse;

/// p99 (or the slowest, with few exchanges) from which a service is slow, and very slow.
const WARN_S: f64 = 1.0;
const CRITICAL_S: f64 = 5.0;

impl Rule for SlowResponse {
    fn id(&self) -> &'static str {
        "tcp.slow_response"
    }

    fn detects(&self) -> &'static str {
        "services whose server response time (request's last byte to response's first byte) is high, with p50 and p99"
    }

    fn thresholds(&self) -> &'static str {
        "warning when a service's p99 response time is 1 s or more, critical from 5 s (with \
         fewer than 100 exchanges the p99 is the slowest one). Measured on the wire, so it is \
         the server's own time plus one network round trip, without the client's queueing. \
         Interactive services answer in milliseconds; a second is where users and default \
         client timeouts start giving up (tcp.read_timeout). p50 near p99 means everything is \
         slow (an overloaded or blocked server); p50 low with a high p99 means a few requests \
         are slow (a lock, a slow query, a GC pause)."
    }

    fn inputs(&self) -> &'static [&'static str] {
        tcp_common::INPUTS
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let report = tcp_common::report(input)?;
        let mut out = Vec::new();
        for (key, s) in &report.services {
            let h = &s.response_time;
            let (Some(p50), Some(p99)) = (h.quantile(0.5), h.quantile(0.99)) else { continue };
            let (p50, p99, max) = (secs(p50 as i64), secs(p99 as i64), secs(h.max_ns as i64));
            if p99 < WARN_S {
                continue;
            }
            let severity = if p99 >= CRITICAL_S { Severity::Critical } else { Severity::Warning };
            let service = key.to_string();
            let slow: Vec<_> =
                report.notable.slow_responses.connections().filter(|c| ServiceKey::of(c) == *key).take(5).collect();
            let mut ev = Evidence::entry(names::CAPTURE);
            for c in &slow {
                if let Some(e) = c.slowest {
                    ev = ev.line(format!(
                        "{}: request ended at {}, response began at {} ({:.3} s)",
                        conn(c),
                        packet(e.request_last),
                        e.response_first.map_or("-".to_string(), packet),
                        e.response_time_ns.map_or(0.0, secs)
                    ));
                }
            }
            out.push(
                Finding::new(
                    self.id(),
                    severity,
                    service.clone(),
                    format!("{service} answered in {p50:.3} s at p50 and {p99:.3} s at p99 over {} exchange(s) (slowest {max:.3} s)", h.count),
                )
                .evidence(ev)
                .fact("service", service.clone())
                .fact("exchanges", h.count)
                .fact("p50_s", p50)
                .fact("p99_s", p99)
                .fact("max_s", max)
                .fact("slowest", slow.iter().map(|c| json!({"connection": c.id, "client": c.client.to_string(),
                    "response_s": c.slowest.and_then(|e| e.response_time_ns).map(secs)})).collect::<Vec<_>>())
                .advice(format!(
                    "Look at the server behind {service} at the times listed: its CPU \
                     (cpu.*, load.*), its disk waits (load.io_bound), its own backends and \
                     logs. Clients waiting on it need a read timeout above its p99 plus one \
                     retransmission timeout, or they give up on answers that were coming."
                )),
            );
        }
        Ok(out)
    }
}
