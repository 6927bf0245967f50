//! `tcp.reset`: connections ended by a RST, per service, with who sent it and what came
//! before: a request sent on a connection the server had already closed (mismatched
//! keep-alive or idle timeouts), a response that arrived after the client gave up, or a
//! reset on an open connection (an application aborting, a middlebox).

use std::collections::BTreeMap;

use serde_json::json;
use snap_bundle::names;

use super::tcp_common::{self, conn, packet};
use crate::tcp::{Connection, ResetWhen, ServiceKey};
use crate::{Evidence, Finding, Input, Need, Rule, Severity};

pub struct Reset;

impl Rule for Reset {
    fn id(&self) -> &'static str {
        "tcp.reset"
    }

    fn detects(&self) -> &'static str {
        "connections reset, per service and side, with what preceded the reset"
    }

    fn thresholds(&self) -> &'static str {
        "one finding per service with resets after the handshake (a RST answering a SYN is \
         tcp.connect_timeout's): warning when a request was sent on a connection the server \
         had already closed (the client reused an idle keep-alive connection the server had \
         timed out: their idle timeouts do not match) or when resets are 5 % or more of the \
         service's connections; info otherwise. Resets that answer a response arriving after \
         the client gave up are counted here and explained by tcp.read_timeout."
    }

    fn inputs(&self) -> &'static [&'static str] {
        tcp_common::INPUTS
    }

    fn evaluate(&self, input: &Input) -> Need<Vec<Finding>> {
        let report = tcp_common::report(input)?;
        let mut examples: BTreeMap<ServiceKey, Vec<&Connection>> = BTreeMap::new();
        for c in report.notable.resets.connections() {
            examples.entry(ServiceKey::of(c)).or_default().push(c);
        }
        let mut late: BTreeMap<ServiceKey, Vec<&Connection>> = BTreeMap::new();
        for c in report.notable.late_requests.connections() {
            late.entry(ServiceKey::of(c)).or_default().push(c);
        }
        let mut out = Vec::new();
        for (key, s) in &report.services {
            let t = &s.totals;
            let refused = t.resets_when.get(&ResetWhen::Refused).copied().unwrap_or(0);
            let resets = t.resets.saturating_sub(refused);
            if resets == 0 {
                continue;
            }
            let service = key.to_string();
            let percent = resets as f64 * 100.0 / t.connections.max(1) as f64;
            let severity = if t.late_requests > 0 || percent >= 5.0 { Severity::Warning } else { Severity::Info };
            let when: BTreeMap<String, u64> = t
                .resets_when
                .iter()
                .filter(|(w, _)| **w != ResetWhen::Refused)
                .map(|(w, n)| {
                    (serde_json::to_value(w).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(), *n)
                })
                .collect();
            let mut summary = format!(
                "{resets} of {} connection(s) to {service} reset ({} by the client, {} by the server)",
                t.connections, t.resets_by_client, t.resets_by_server
            );
            if t.late_requests > 0 {
                summary.push_str(&format!(
                    "; {} request(s) sent on connections the server had already closed",
                    t.late_requests
                ));
            }
            if t.gave_up > 0 {
                summary.push_str(&format!("; {} client(s) had given up on a request (tcp.read_timeout)", t.gave_up));
            }
            let mut ev = Evidence::entry(names::CAPTURE);
            for c in late.get(key).into_iter().flatten().take(5) {
                if let Some(l) = c.late_request {
                    ev = ev.line(format!(
                        "{}: server FIN at {}, then a request at {}{}",
                        conn(c),
                        packet(l.server_fin),
                        packet(l.request),
                        l.reset.map_or(String::new(), |r| format!(", reset by the server at {}", packet(r)))
                    ));
                }
            }
            for c in examples.get(key).into_iter().flatten().filter(|c| c.late_request.is_none()).take(5) {
                if let Some(r) = c.reset {
                    ev = ev.line(format!(
                        "{}: RST by the {} at {}{}",
                        conn(c),
                        r.by.as_str(),
                        packet(r.packet),
                        r.answering.map_or(String::new(), |a| format!(", answering {}", packet(a)))
                    ));
                }
            }
            let advice = if t.late_requests > 0 {
                "The server closes idle keep-alive connections while clients still consider them \
                 usable, so a request can land on a closed connection and fail with a reset (or \
                 'connection reset by peer' / 'broken pipe' in the client). Make the client's idle \
                 timeout for pooled connections shorter than the server's keep-alive timeout (see \
                 tcp.idle_close for the server's), or have the client retry idempotent requests \
                 once on a fresh connection."
            } else {
                "A reset aborts the connection and discards what was in flight. Resets by the \
                 server on open connections usually mean the application aborted (SO_LINGER 0, a \
                 crash, a full accept queue) or a middlebox (load balancer, firewall) dropped its \
                 state; by the client, an application closing with unread data. Compare with the \
                 application's logs at the times listed."
            };
            out.push(
                Finding::new(self.id(), severity, service.clone(), summary)
                    .evidence(ev)
                    .fact("service", service)
                    .fact("resets", resets)
                    .fact("connections", t.connections)
                    .fact("by_client", t.resets_by_client)
                    .fact("by_server", t.resets_by_server)
                    .fact("after_peer_close", t.late_requests)
                    .fact("after_client_gave_up", t.gave_up)
                    .fact("when", json!(when))
                    .advice(advice),
            );
        }
        Ok(out)
    }
}
